"""SQL tables and repositories of inbound webhooks: endpoints and the raw events they received."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    LargeBinary,
    Row,
    Select,
    Table,
    Text,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.inbound.models import EndpointKey, EventStatus, InboundEndpoint, InboundEvent
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows

from .tables import _stamps, _ts, _uuid, metadata

inbound_endpoints = Table(
    "inbound_endpoints",
    metadata,
    _uuid("id", True),
    _uuid("location_id", nullable=False),
    Column("name", Text, nullable=False),
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("secret_hint", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    _ts("secret_rotated_at"),
    *_stamps(),
)

inbound_events = Table(
    "inbound_events",
    metadata,
    _uuid("id", True),
    _uuid("location_id", nullable=False),
    _uuid("endpoint_id"),
    Column("provider", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("provider_event_id", Text, nullable=False),
    Column("type", Text),
    Column("headers", JSONB, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("content_type", Text),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    _ts("received_at", False),
    _ts("processed_at"),
)

_ENDPOINT_COLUMNS = (
    "name",
    "secret_ciphertext",
    "secret_hint",
    "enabled",
    "secret_rotated_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
)
_EVENT_COLUMNS = (
    "location_id",
    "endpoint_id",
    "provider",
    "scope",
    "provider_event_id",
    "type",
    "headers",
    "body",
    "content_type",
    "status",
    "attempts",
    "last_error",
    "received_at",
    "processed_at",
)
_LOOKUP = text("SELECT location_id, secret_ciphertext, active FROM ghl_inbound_endpoint(:id)")


def _endpoint(row: Row[Any]) -> InboundEndpoint:
    values = {c: getattr(row, c) for c in _ENDPOINT_COLUMNS}
    values["secret_ciphertext"] = bytes(values["secret_ciphertext"])
    return InboundEndpoint(id=row.id, location_id=row.location_id, **values)


def _event(row: Row[Any], *, summary: bool = False) -> InboundEvent:
    """`summary`: a listed row, selected without its headers and body."""
    values = {c: getattr(row, c) for c in _EVENT_COLUMNS if c not in ("headers", "body", "status")}
    status = EventStatus(row.status)
    if summary:
        return InboundEvent(id=row.id, status=status, headers={}, body=b"", body_size=row.body_size, **values)
    return InboundEvent(id=row.id, status=status, headers=dict(row.headers), body=bytes(row.body), **values)


def _after(page: PageRequest) -> tuple[datetime, uuid.UUID] | None:
    if page.after is None:
        return None
    try:
        created, ident = page.after
        return datetime.fromisoformat(created), uuid.UUID(ident)
    except ValueError:
        raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None


class SqlInboundEndpointRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, endpoint: InboundEndpoint) -> None:
        values = {c: getattr(endpoint, c) for c in _ENDPOINT_COLUMNS}
        await self._c.execute(
            insert(inbound_endpoints).values(id=endpoint.id, location_id=endpoint.location_id, **values)
        )

    async def get(self, endpoint_id: uuid.UUID) -> InboundEndpoint | None:
        query = select(inbound_endpoints).where(inbound_endpoints.c.id == endpoint_id)
        row = (await self._c.execute(query)).first()
        return _endpoint(row) if row else None

    async def update(self, endpoint: InboundEndpoint) -> None:
        values = {c: getattr(endpoint, c) for c in _ENDPOINT_COLUMNS}
        await self._c.execute(
            update(inbound_endpoints).where(inbound_endpoints.c.id == endpoint.id).values(**values)
        )

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[InboundEndpoint]:
        e = inbound_endpoints.c
        query = select(inbound_endpoints).where(e.location_id == location_id, e.deleted_at.is_(None))
        after = _after(page)
        if after is not None:
            query = query.where(tuple_(e.created_at, e.id) > after)
        query = query.order_by(e.created_at, e.id).limit(page.limit + 1)
        if page.offset is not None:
            query = query.offset(page.offset)
        rows = [_endpoint(r) for r in (await self._c.execute(query)).all()]
        return page_from_rows(rows, page.limit, lambda x: (x.created_at.isoformat(), str(x.id)))

    async def lookup(self, endpoint_id: uuid.UUID) -> EndpointKey | None:
        row = (await self._c.execute(_LOOKUP, {"id": endpoint_id})).first()
        if row is None:
            return None
        return EndpointKey(
            endpoint_id=endpoint_id,
            location_id=row.location_id,
            secret_ciphertext=bytes(row.secret_ciphertext),
            active=bool(row.active),
        )


class SqlInboundEventRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, event: InboundEvent) -> bool:
        values = {c: getattr(event, c) for c in _EVENT_COLUMNS}
        values["status"] = event.status.value
        query = (
            insert(inbound_events)
            .values(id=event.id, **values)
            .on_conflict_do_nothing(constraint="inbound_events_provider_event_key")
            .returning(inbound_events.c.id)
        )
        return (await self._c.execute(query)).first() is not None

    async def find(self, provider: str, scope: str, provider_event_id: str) -> InboundEvent | None:
        v = inbound_events.c
        query = select(inbound_events).where(
            v.provider == provider, v.scope == scope, v.provider_event_id == provider_event_id
        )
        row = (await self._c.execute(query)).first()
        return _event(row) if row else None

    async def get(self, event_id: uuid.UUID, *, lock: bool = False) -> InboundEvent | None:
        query = select(inbound_events).where(inbound_events.c.id == event_id)
        if lock:
            query = query.with_for_update()
        row = (await self._c.execute(query)).first()
        return _event(row) if row else None

    async def update(self, event: InboundEvent) -> None:
        await self._c.execute(
            update(inbound_events)
            .where(inbound_events.c.id == event.id)
            .values(
                status=event.status.value,
                attempts=event.attempts,
                last_error=event.last_error,
                processed_at=event.processed_at,
            )
        )

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        endpoint_id: uuid.UUID | None = None,
        status: EventStatus | None = None,
    ) -> Page[InboundEvent]:
        v = inbound_events.c
        columns = [c for c in inbound_events.c if c.name not in ("headers", "body")]
        query: Select[Any] = select(*columns, func.octet_length(v.body).label("body_size")).where(
            v.location_id == location_id
        )
        if endpoint_id is not None:
            query = query.where(v.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(v.status == status.value)
        after = _after(page)
        if after is not None:
            query = query.where(tuple_(v.received_at, v.id) < after)
        query = query.order_by(v.received_at.desc(), v.id.desc()).limit(page.limit + 1)
        if page.offset is not None:
            query = query.offset(page.offset)
        rows = [_event(r, summary=True) for r in (await self._c.execute(query)).all()]
        return page_from_rows(rows, page.limit, lambda x: (x.received_at.isoformat(), str(x.id)))
