"""The audit trail and the event log in memory: append-only, written in the change's unit of work.

Events committed here are what the SQL adapter writes to `domain_events`; the in-memory set hands them to
no consumer by itself (an embedder reads `committed_events(store)` or wires its own consumers)."""

from __future__ import annotations

import uuid
from datetime import datetime

from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import Page, PageRequest

from .store import MemoryRepository, MemoryStore, Table, paginate

# Keyed by id, in the order written (a dict keeps it): an erasure rewrites entries in place, and a commit
# merges by key, so a concurrent commit's entries and this one's scrubbing both survive.
AUDIT: Table[uuid.UUID, AuditEntry] = Table("audit_log")
EVENTS: Table[uuid.UUID, DomainEvent] = Table("domain_events")


class MemoryAuditLog(MemoryRepository):
    async def record(self, entry: AuditEntry) -> None:
        self.check_write(self.sees_either(entry.agency_id, entry.location_id), "audit_log")
        self.rows(AUDIT)[entry.id] = entry

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        entity_type: str | None = None,
        entity_id: uuid.UUID | None = None,
        since: datetime | None = None,
    ) -> Page[AuditEntry]:
        found = [
            e
            for e in self.rows(AUDIT).values()
            if e.location_id == location_id
            and (entity_type is None or e.entity_type == entity_type)
            and (entity_id is None or e.entity_id == entity_id)
            and (since is None or e.created_at >= since)
            and self.sees_either(e.agency_id, e.location_id)
        ]
        return paginate(found, page, descending=True)


class MemoryEventOutbox(MemoryRepository):
    async def add(self, event: DomainEvent) -> None:
        self.check_write(self.sees_either(event.agency_id, event.location_id), "domain_events")
        self.rows(EVENTS)[event.id] = event

    async def add_many(self, events: list[DomainEvent]) -> None:
        for event in events:
            await self.add(event)


def committed_audit(store: MemoryStore) -> list[AuditEntry]:
    return list(store.committed(AUDIT).values())


def committed_events(store: MemoryStore) -> list[DomainEvent]:
    return list(store.committed(EVENTS).values())
