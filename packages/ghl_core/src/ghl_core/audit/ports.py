"""Reading and writing the audit trail; writing domain events to the outbox. The two ports are declared on
the floor (`ghl_core.shared.recording`), since every context writes to them; they are named here too."""

from __future__ import annotations

from ghl_core.shared.recording import AuditLog, EventOutbox

__all__ = ["AuditLog", "EventOutbox"]
