"""The SQL audit trail and domain event outbox, written in the transaction of the change they record."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows

from . import tables as t
from .repositories import _key, _paginate
from .tables import json_rows, recordset_insert


class SqlAuditLog:
    def __init__(self, conn: AsyncConnection, request_id: str | None = None) -> None:
        self._c = conn
        self._request_id = request_id

    async def record(self, entry: AuditEntry) -> None:
        await self._c.execute(
            insert(t.audit_log).values(
                id=entry.id,
                agency_id=entry.agency_id,
                location_id=entry.location_id,
                actor_type=entry.actor_type,
                actor_id=entry.actor_id,
                action=entry.action,
                entity_type=entry.entity_type,
                entity_id=entry.entity_id,
                before=entry.before,
                after=entry.after,
                request_id=entry.request_id or self._request_id,
                created_at=entry.created_at,
            )
        )

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        entity_type: str | None = None,
        entity_id: uuid.UUID | None = None,
        since: datetime | None = None,
    ) -> Page[AuditEntry]:
        a = t.audit_log.c
        conditions = [a.location_id == location_id]
        if entity_type:
            conditions.append(a.entity_type == entity_type)
        if entity_id:
            conditions.append(a.entity_id == entity_id)
        if since:
            conditions.append(a.created_at >= since)
        q = _paginate(select(t.audit_log).where(and_(*conditions)), page, a.created_at, a.id, descending=True)
        rows = (await self._c.execute(q)).all()
        entries = [
            AuditEntry(
                id=r.id,
                agency_id=r.agency_id,
                location_id=r.location_id,
                actor_type=r.actor_type,
                actor_id=r.actor_id,
                action=r.action,
                entity_type=r.entity_type,
                entity_id=r.entity_id,
                before=r.before,
                after=r.after,
                created_at=r.created_at,
                request_id=r.request_id,
            )
            for r in rows
        ]
        return page_from_rows(entries, page.limit, _key())


class SqlEventOutbox:
    """Writes events and remembers them: the unit of work hands them to the job engine at commit."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn
        self.recorded: list[DomainEvent] = []

    def track(self, events: Iterable[DomainEvent]) -> None:
        """Events another repository wrote in bulk, to be dispatched like the ones added here."""
        self.recorded.extend(events)

    async def add(self, event: DomainEvent) -> None:
        self.recorded.append(event)
        await self._c.execute(
            insert(t.domain_events).values(
                id=event.id,
                agency_id=event.agency_id,
                location_id=event.location_id,
                type=event.type,
                entity_id=event.entity_id,
                payload=event.payload,
                occurred_at=event.occurred_at,
                # Handed to the job engine in this same transaction (see SqlUnitOfWork.commit).
                published_at=func.now(),
            )
        )

    async def add_many(self, events: list[DomainEvent]) -> None:
        if not events:
            return
        self.recorded.extend(events)
        rows = [
            {
                "id": e.id,
                "agency_id": e.agency_id,
                "location_id": e.location_id,
                "type": e.type,
                "entity_id": e.entity_id,
                "payload": e.payload,
                "occurred_at": e.occurred_at,
                # Handed to the job engine in this same transaction (see SqlUnitOfWork.commit).
                "published_at": e.occurred_at,
            }
            for e in events
        ]
        await self._c.execute(_INSERT_EVENTS, {"rows": json_rows(rows)})


_INSERT_EVENTS = recordset_insert(
    "domain_events",
    [
        ("id", "uuid"),
        ("agency_id", "uuid"),
        ("location_id", "uuid"),
        ("type", "text"),
        ("entity_id", "uuid"),
        ("payload", "jsonb"),
        ("occurred_at", "timestamptz"),
        ("published_at", "timestamptz"),
    ],
)
