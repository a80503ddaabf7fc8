"""The SQL repository of outbound webhooks: subscriptions, deliveries and attempts."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.webhooks.models import Attempt, Delivery, DeliveryStatus, Subscription

from . import tables as t
from .repositories import _paginate

metadata = MetaData()


def _id(name: str, **kw: Any) -> Column[Any]:
    return Column(name, UUID(as_uuid=True), **kw)


webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    _id("id", primary_key=True),
    _id("location_id", nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("disabled_at", DateTime(timezone=True)),
    Column("consecutive_failures", Integer, nullable=False),
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    _id("created_by"),
    _id("updated_by"),
)
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id("id", primary_key=True),
    _id("location_id", nullable=False),
    _id("subscription_id", nullable=False),
    _id("event_id", nullable=False),
    Column("event_type", Text, nullable=False),
    _id("entity_id", nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    _id("id", primary_key=True),
    _id("location_id", nullable=False),
    _id("delivery_id", nullable=False),
    Column("number", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("response_excerpt", Text),
)

_SUBSCRIPTION_FIELDS = (
    "url",
    "description",
    "event_types",
    "active",
    "disabled_reason",
    "disabled_at",
    "consecutive_failures",
    "secret_ciphertext",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
)
_DELIVERY_FIELDS = (
    "attempts",
    "last_status_code",
    "last_error",
    "delivered_at",
    "created_at",
    "updated_at",
)
_ERROR_LIMIT = 2000


def _subscription(row: Row[Any]) -> Subscription:
    values = {f: getattr(row, f) for f in _SUBSCRIPTION_FIELDS}
    values["event_types"] = list(values["event_types"])
    values["secret_ciphertext"] = bytes(values["secret_ciphertext"])
    return Subscription(id=row.id, location_id=row.location_id, **values)


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        location_id=row.location_id,
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=row.event_type,
        entity_id=row.entity_id,
        status=DeliveryStatus(row.status),
        **{f: getattr(row, f) for f in _DELIVERY_FIELDS},
    )


def _delivery_values(delivery: Delivery) -> dict[str, Any]:
    values = {f: getattr(delivery, f) for f in _DELIVERY_FIELDS}
    values["status"] = delivery.status.value
    if values["last_error"]:
        values["last_error"] = values["last_error"][:_ERROR_LIMIT]
    return values


class SqlWebhookRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add_subscription(self, subscription: Subscription) -> None:
        values = {f: getattr(subscription, f) for f in _SUBSCRIPTION_FIELDS}
        await self._c.execute(
            insert(webhook_subscriptions).values(
                id=subscription.id, location_id=subscription.location_id, **values
            )
        )

    async def update_subscription(self, subscription: Subscription) -> None:
        values = {f: getattr(subscription, f) for f in _SUBSCRIPTION_FIELDS if f != "created_at"}
        await self._c.execute(
            update(webhook_subscriptions)
            .where(webhook_subscriptions.c.id == subscription.id)
            .values(**values)
        )

    async def get_subscription(
        self, subscription_id: uuid.UUID, for_update: bool = False
    ) -> Subscription | None:
        q = select(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
        if for_update:
            q = q.with_for_update()
        row = (await self._c.execute(q)).first()
        return _subscription(row) if row else None

    async def list_subscriptions(self, page: PageRequest) -> Page[Subscription]:
        s = webhook_subscriptions.c
        q = select(webhook_subscriptions).where(s.deleted_at.is_(None))
        rows = (await self._c.execute(_paginate(q, page, s.created_at, s.id, descending=True))).all()
        return page_from_rows(
            [_subscription(r) for r in rows], page.limit, lambda x: (x.created_at.isoformat(), str(x.id))
        )

    async def sending_subscriptions(self) -> builtins.list[Subscription]:
        s = webhook_subscriptions.c
        q = (
            select(webhook_subscriptions)
            .where(s.deleted_at.is_(None), s.active.is_(True))
            .order_by(s.created_at, s.id)
        )
        return [_subscription(r) for r in (await self._c.execute(q)).all()]

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> builtins.list[Delivery]:
        if not deliveries:
            return []
        rows = [
            {
                "id": d.id,
                "location_id": d.location_id,
                "subscription_id": d.subscription_id,
                "event_id": d.event_id,
                "event_type": d.event_type,
                "entity_id": d.entity_id,
                **_delivery_values(d),
            }
            for d in deliveries
        ]
        statement = (
            insert(webhook_deliveries)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
            .returning(webhook_deliveries.c.id)
        )
        inserted = {r.id for r in (await self._c.execute(statement)).all()}
        return [d for d in deliveries if d.id in inserted]

    async def get_delivery(self, delivery_id: uuid.UUID, for_update: bool = False) -> Delivery | None:
        q = select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
        if for_update:
            q = q.with_for_update()
        row = (await self._c.execute(q)).first()
        return _delivery(row) if row else None

    async def find_delivery(self, subscription_id: uuid.UUID, event_id: uuid.UUID) -> Delivery | None:
        d = webhook_deliveries.c
        q = select(webhook_deliveries).where(d.subscription_id == subscription_id, d.event_id == event_id)
        row = (await self._c.execute(q.with_for_update())).first()
        return _delivery(row) if row else None

    async def update_delivery(self, delivery: Delivery) -> None:
        values = _delivery_values(delivery)
        values.pop("created_at")
        await self._c.execute(
            update(webhook_deliveries).where(webhook_deliveries.c.id == delivery.id).values(**values)
        )

    async def list_deliveries(
        self, subscription_id: uuid.UUID, page: PageRequest, status: DeliveryStatus | None = None
    ) -> Page[Delivery]:
        d = webhook_deliveries.c
        q = select(webhook_deliveries).where(d.subscription_id == subscription_id)
        if status is not None:
            q = q.where(d.status == status.value)
        rows = (await self._c.execute(_paginate(q, page, d.created_at, d.id, descending=True))).all()
        return page_from_rows(
            [_delivery(r) for r in rows], page.limit, lambda x: (x.created_at.isoformat(), str(x.id))
        )

    async def add_attempt(self, attempt: Attempt) -> None:
        await self._c.execute(
            insert(webhook_attempts).values(
                id=attempt.id,
                location_id=attempt.location_id,
                delivery_id=attempt.delivery_id,
                number=attempt.number,
                started_at=attempt.started_at,
                duration_ms=attempt.duration_ms,
                status_code=attempt.status_code,
                error=attempt.error[:_ERROR_LIMIT] if attempt.error else None,
                response_excerpt=attempt.response_excerpt,
            )
        )

    async def attempts(self, delivery_id: uuid.UUID) -> builtins.list[Attempt]:
        a = webhook_attempts.c
        q = select(webhook_attempts).where(a.delivery_id == delivery_id).order_by(a.number)
        return [
            Attempt(
                id=r.id,
                location_id=r.location_id,
                delivery_id=r.delivery_id,
                number=r.number,
                started_at=r.started_at,
                duration_ms=r.duration_ms,
                status_code=r.status_code,
                error=r.error,
                response_excerpt=r.response_excerpt,
            )
            for r in (await self._c.execute(q)).all()
        ]

    async def event(self, event_id: uuid.UUID) -> DomainEvent | None:
        e = t.domain_events.c
        row = (await self._c.execute(select(t.domain_events).where(e.id == event_id))).first()
        if row is None:
            return None
        return DomainEvent(
            type=row.type,
            agency_id=row.agency_id,
            location_id=row.location_id,
            entity_id=row.entity_id,
            payload=row.payload,
            occurred_at=row.occurred_at,
            id=row.id,
        )
