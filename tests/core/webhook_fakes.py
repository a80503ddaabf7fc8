"""In-memory fakes of the webhooks ports: the repository (held in the fake unit of work's staged data),
a resolver answering from a table, a sender that records requests and answers from a script, and a
secret box that only pretends to encrypt. Imports only the core and the standard library."""

from __future__ import annotations

import base64
import builtins
import copy
import hashlib
import hmac
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.webhooks.addresses import Target
from ghl_core.webhooks.models import Attempt, Delivery, DeliveryStatus, Subscription
from ghl_core.webhooks.ports import SendResult


@dataclass
class WebhookData:
    subscriptions: dict[uuid.UUID, Subscription] = field(default_factory=dict)
    deliveries: dict[uuid.UUID, Delivery] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)


class _Staged(Protocol):
    webhooks: WebhookData
    events: list[DomainEvent]


class _Uow(Protocol):
    scope: Any

    def working(self) -> Any: ...


def _newest_first(items: Sequence[Any], page: PageRequest) -> Page[Any]:
    rows = sorted(items, key=lambda r: (r.created_at, str(r.id)), reverse=True)
    if page.after is not None:
        after = (datetime.fromisoformat(page.after[0]), page.after[1])
        rows = [r for r in rows if (r.created_at, str(r.id)) < after]
    return page_from_rows(
        [copy.deepcopy(r) for r in rows[: page.limit + 1]],
        page.limit,
        lambda r: (r.created_at.isoformat(), str(r.id)),
    )


class InMemoryWebhookRepository:
    def __init__(self, uow: _Uow) -> None:
        self._uow = uow

    @property
    def _d(self) -> WebhookData:
        data: _Staged = self._uow.working()
        return data.webhooks

    def _mine(self, location_id: uuid.UUID) -> bool:
        scope = self._uow.scope
        return scope.location_id is None or scope.location_id == location_id

    async def add_subscription(self, subscription: Subscription) -> None:
        self._d.subscriptions[subscription.id] = copy.deepcopy(subscription)

    async def update_subscription(self, subscription: Subscription) -> None:
        if subscription.id in self._d.subscriptions and self._mine(subscription.location_id):
            self._d.subscriptions[subscription.id] = copy.deepcopy(subscription)

    async def get_subscription(
        self, subscription_id: uuid.UUID, for_update: bool = False
    ) -> Subscription | None:
        found = self._d.subscriptions.get(subscription_id)
        return copy.deepcopy(found) if found and self._mine(found.location_id) else None

    async def list_subscriptions(self, page: PageRequest) -> Page[Subscription]:
        rows = [s for s in self._d.subscriptions.values() if s.live and self._mine(s.location_id)]
        return _newest_first(rows, page)

    async def sending_subscriptions(self) -> builtins.list[Subscription]:
        rows = [s for s in self._d.subscriptions.values() if s.sending and self._mine(s.location_id)]
        return [copy.deepcopy(s) for s in sorted(rows, key=lambda s: (s.created_at, str(s.id)))]

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> builtins.list[Delivery]:
        taken = {(d.subscription_id, d.event_id) for d in self._d.deliveries.values()}
        created = []
        for delivery in deliveries:
            key = (delivery.subscription_id, delivery.event_id)
            if key in taken:
                continue
            taken.add(key)
            self._d.deliveries[delivery.id] = copy.deepcopy(delivery)
            created.append(delivery)
        return created

    async def get_delivery(self, delivery_id: uuid.UUID, for_update: bool = False) -> Delivery | None:
        found = self._d.deliveries.get(delivery_id)
        return copy.deepcopy(found) if found and self._mine(found.location_id) else None

    async def find_delivery(self, subscription_id: uuid.UUID, event_id: uuid.UUID) -> Delivery | None:
        for d in self._d.deliveries.values():
            if d.subscription_id == subscription_id and d.event_id == event_id and self._mine(d.location_id):
                return copy.deepcopy(d)
        return None

    async def update_delivery(self, delivery: Delivery) -> None:
        if delivery.id in self._d.deliveries:
            self._d.deliveries[delivery.id] = copy.deepcopy(delivery)

    async def list_deliveries(
        self, subscription_id: uuid.UUID, page: PageRequest, status: DeliveryStatus | None = None
    ) -> Page[Delivery]:
        rows = [
            d
            for d in self._d.deliveries.values()
            if d.subscription_id == subscription_id
            and self._mine(d.location_id)
            and (status is None or d.status is status)
        ]
        return _newest_first(rows, page)

    async def add_attempt(self, attempt: Attempt) -> None:
        if any(a.delivery_id == attempt.delivery_id and a.number == attempt.number for a in self._d.attempts):
            raise AssertionError("two attempts with one number")
        self._d.attempts.append(attempt)

    async def attempts(self, delivery_id: uuid.UUID) -> builtins.list[Attempt]:
        return sorted((a for a in self._d.attempts if a.delivery_id == delivery_id), key=lambda a: a.number)

    async def event(self, event_id: uuid.UUID) -> DomainEvent | None:
        data: _Staged = self._uow.working()
        for event in data.events:
            if event.id == event_id and event.location_id is not None and self._mine(event.location_id):
                return event
        return None


class TableResolver:
    """Names resolve to what the table says; a name not in it does not resolve."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table if table is not None else {}
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise LookupError(host)
        return list(self.table[host])


@dataclass
class Sent:
    target: Target
    headers: dict[str, str]
    body: bytes
    method: str = "POST"


class ScriptedSender:
    """Answers each send with the next scripted result (a status code, or an error text for a network
    error); once the script is used up, 200."""

    def __init__(self, *script: int | str) -> None:
        self.script = list(script)
        self.sent: list[Sent] = []

    async def send(
        self, target: Target, headers: Mapping[str, str], body: bytes, *, method: str = "POST"
    ) -> SendResult:
        self.sent.append(Sent(target, dict(headers), body, method))
        answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, str):
            return SendResult(duration_ms=5, error=answer)
        return SendResult(duration_ms=5, status_code=answer, response_excerpt=f"answer {answer}")


class FakeSecretBox:
    """Not encryption: a reversible wrap that still refuses the wrong associated data."""

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        tag = hashlib.sha256(associated_data + plaintext).digest()[:8]
        return tag + base64.b64encode(plaintext)

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytes:
        plaintext = base64.b64decode(ciphertext[8:])
        if not hmac.compare_digest(ciphertext[:8], hashlib.sha256(associated_data + plaintext).digest()[:8]):
            raise ValueError("wrong associated data")
        return plaintext


class HmacSigner:
    """The Standard Webhooks signature, computed here so the core tests need no third-party library."""

    def sign(self, secret: str, msg_id: str, timestamp: datetime, body: str) -> str:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{msg_id}.{int(timestamp.timestamp())}.{body}".encode()
        return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
