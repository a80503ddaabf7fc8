"""The in-memory repository of outbound webhooks: subscriptions, deliveries and their attempts.

Decisions:
- The tables are named here and kept by the unit of work's working set (`store.py`): the repository
  holds no state of its own, so the unit of work decides what commit and rollback mean.
- The domain events a delivery refers to are the outbox's table (`recording.py`), read as the SQL adapter
  reads the `domain_events` table.
- One delivery per (subscription, event), as the SQL unique index: `add_deliveries` skips one that
  exists and answers only those it stored.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import replace

from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.webhooks.models import Attempt, Delivery, DeliveryStatus, Subscription

from .recording import EVENTS
from .rows import check_write, clone, keyset_page, unique_rows
from .store import MemoryRepository, Table

_ERROR_LIMIT = 2000  # as the SQL adapter keeps of an error


SUBSCRIPTIONS: Table[uuid.UUID, Subscription] = Table("webhook_subscriptions")
DELIVERIES: Table[uuid.UUID, Delivery] = Table("webhook_deliveries")
ATTEMPTS: Table[uuid.UUID, Attempt] = Table("webhook_attempts")


class MemoryWebhookRepository(MemoryRepository):
    def _sees(self, location_id: uuid.UUID | None) -> bool:
        return self.sees_location(location_id)

    @property
    def _subscriptions(self) -> dict[uuid.UUID, Subscription]:
        return self.rows(SUBSCRIPTIONS)

    @property
    def _deliveries(self) -> dict[uuid.UUID, Delivery]:
        return self.rows(DELIVERIES)

    @property
    def _attempts(self) -> dict[uuid.UUID, Attempt]:
        return self.rows(ATTEMPTS)

    async def add_subscription(self, subscription: Subscription) -> None:
        check_write(self.scope, subscription.location_id, "webhook_subscriptions")
        if subscription.id in self._subscriptions:
            raise KeyError(f"webhook subscription {subscription.id} exists")
        self._subscriptions[subscription.id] = clone(subscription)

    async def update_subscription(self, subscription: Subscription) -> None:
        stored = self._subscriptions.get(subscription.id)
        if stored is None or not self._sees(stored.location_id):
            return
        # Every column but the creation time (and the keys) is written.
        self._subscriptions[subscription.id] = replace(
            clone(subscription), location_id=stored.location_id, created_at=stored.created_at
        )

    async def get_subscription(
        self, subscription_id: uuid.UUID, for_update: bool = False
    ) -> Subscription | None:
        found = self._subscriptions.get(subscription_id)
        return clone(found) if found is not None and self._sees(found.location_id) else None

    async def list_subscriptions(self, page: PageRequest) -> Page[Subscription]:
        rows = [s for s in self._subscriptions.values() if s.deleted_at is None and self._sees(s.location_id)]
        return keyset_page(rows, page, lambda s: s.created_at, descending=True)

    async def sending_subscriptions(self) -> builtins.list[Subscription]:
        rows = [
            s
            for s in self._subscriptions.values()
            if s.deleted_at is None and s.active and self._sees(s.location_id)
        ]
        return [clone(s) for s in sorted(rows, key=lambda s: (s.created_at, s.id))]

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> builtins.list[Delivery]:
        # The unique index holds across every location: a pair taken elsewhere is skipped too.
        taken = {(d.subscription_id, d.event_id) for d in unique_rows(self, DELIVERIES)}
        stored: builtins.list[Delivery] = []
        for delivery in deliveries:
            check_write(self.scope, delivery.location_id, "webhook_deliveries")
            key = (delivery.subscription_id, delivery.event_id)
            if key in taken or delivery.id in self._deliveries:
                continue
            taken.add(key)
            self._deliveries[delivery.id] = _kept(delivery)
            stored.append(delivery)
        return stored

    async def get_delivery(self, delivery_id: uuid.UUID, for_update: bool = False) -> Delivery | None:
        found = self._deliveries.get(delivery_id)
        return clone(found) if found is not None and self._sees(found.location_id) else None

    async def find_delivery(self, subscription_id: uuid.UUID, event_id: uuid.UUID) -> Delivery | None:
        for d in self._deliveries.values():
            if d.subscription_id == subscription_id and d.event_id == event_id and self._sees(d.location_id):
                return clone(d)
        return None

    async def update_delivery(self, delivery: Delivery) -> None:
        stored = self._deliveries.get(delivery.id)
        if stored is None or not self._sees(stored.location_id):
            return
        fresh = _kept(delivery)
        # Its keys and creation time stay as stored; the rest is written.
        self._deliveries[delivery.id] = replace(
            stored,
            status=fresh.status,
            attempts=fresh.attempts,
            last_status_code=fresh.last_status_code,
            last_error=fresh.last_error,
            delivered_at=fresh.delivered_at,
            updated_at=fresh.updated_at,
        )

    async def list_deliveries(
        self, subscription_id: uuid.UUID, page: PageRequest, status: DeliveryStatus | None = None
    ) -> Page[Delivery]:
        rows = [
            d
            for d in self._deliveries.values()
            if d.subscription_id == subscription_id
            and self._sees(d.location_id)
            and (status is None or d.status is status)
        ]
        return keyset_page(rows, page, lambda d: d.created_at, descending=True)

    async def add_attempt(self, attempt: Attempt) -> None:
        check_write(self.scope, attempt.location_id, "webhook_attempts")
        if attempt.id in self._attempts:
            raise KeyError(f"webhook attempt {attempt.id} exists")
        error = attempt.error[:_ERROR_LIMIT] if attempt.error else None
        self._attempts[attempt.id] = replace(clone(attempt), error=error)

    async def attempts(self, delivery_id: uuid.UUID) -> builtins.list[Attempt]:
        rows = [
            a for a in self._attempts.values() if a.delivery_id == delivery_id and self._sees(a.location_id)
        ]
        return [clone(a) for a in sorted(rows, key=lambda a: a.number)]

    async def event(self, event_id: uuid.UUID) -> DomainEvent | None:
        found = self.rows(EVENTS).get(event_id)
        return clone(found) if found is not None and self._sees(found.location_id) else None


def _kept(delivery: Delivery) -> Delivery:
    """What the table keeps of a delivery: the error cut to its column's length."""
    kept = clone(delivery)
    if kept.last_error:
        kept = replace(kept, last_error=kept.last_error[:_ERROR_LIMIT])
    return kept
