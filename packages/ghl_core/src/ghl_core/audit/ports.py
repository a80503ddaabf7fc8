"""Reading and writing the audit trail; writing domain events to the outbox. The two ports are declared on
the floor (`ghl_core.shared.recording`), since every context writes to them; they are named here too."""

from __future__ import annotations

from typing import Protocol

from ghl_core.shared.recording import AuditLog, EventOutbox
from ghl_core.shared.uow import Transaction

__all__ = ["AuditLog", "AuditUnitOfWork", "EventOutbox"]


class AuditUnitOfWork(Transaction, Protocol):
    """Reading the trail."""

    @property
    def audit(self) -> AuditLog: ...
