"""Reading and writing the audit trail; writing domain events to the outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import Page, PageRequest


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        entity_type: str | None = None,
        entity_id: uuid.UUID | None = None,
        since: datetime | None = None,
    ) -> Page[AuditEntry]: ...


class EventOutbox(Protocol):
    async def add(self, event: DomainEvent) -> None: ...

    async def add_many(self, events: list[DomainEvent]) -> None:
        """Several events in one statement (bulk work: a campaign batch)."""
        ...
