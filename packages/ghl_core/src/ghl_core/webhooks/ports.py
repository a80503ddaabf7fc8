"""What the webhooks context needs from the outside: its tables, an HTTP sender and a signer."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ghl_core.jobs.ports import JobQueue
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import Recording
from ghl_core.tenancy.ports import LocationRepository
from ghl_core.webhooks.addresses import Target
from ghl_core.webhooks.models import Attempt, Delivery, DeliveryStatus, Subscription


class WebhookRepository(Protocol):
    """Scoped to the unit of work's location (and by row-level security underneath)."""

    async def add_subscription(self, subscription: Subscription) -> None: ...

    async def update_subscription(self, subscription: Subscription) -> None: ...

    async def get_subscription(
        self, subscription_id: uuid.UUID, for_update: bool = False
    ) -> Subscription | None:
        """Deleted ones too (the caller decides)."""
        ...

    async def list_subscriptions(self, page: PageRequest) -> Page[Subscription]:
        """Live subscriptions, newest first."""
        ...

    async def sending_subscriptions(self) -> builtins.list[Subscription]:
        """Live and active subscriptions of the location."""
        ...

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> builtins.list[Delivery]:
        """Inserts those not there yet (one per subscription and event) and returns them; a delivery
        that already exists is left as it is and not returned."""
        ...

    async def get_delivery(self, delivery_id: uuid.UUID, for_update: bool = False) -> Delivery | None: ...

    async def find_delivery(self, subscription_id: uuid.UUID, event_id: uuid.UUID) -> Delivery | None: ...

    async def update_delivery(self, delivery: Delivery) -> None: ...

    async def list_deliveries(
        self, subscription_id: uuid.UUID, page: PageRequest, status: DeliveryStatus | None = None
    ) -> Page[Delivery]:
        """Newest first."""
        ...

    async def add_attempt(self, attempt: Attempt) -> None: ...

    async def attempts(self, delivery_id: uuid.UUID) -> builtins.list[Attempt]:
        """In the order they were made."""
        ...

    async def event(self, event_id: uuid.UUID) -> DomainEvent | None:
        """A domain event the location recorded."""
        ...


@dataclass(frozen=True, slots=True)
class SendResult:
    """What came back: a status code, or the network error that stopped the request. `response_body` is
    the start of the body as received (capped, 64 KiB by default), for a caller that parses it; the
    excerpt is the short text kept with a delivery attempt."""

    duration_ms: int
    status_code: int | None = None
    response_excerpt: str | None = None
    error: str | None = None
    final: bool = False  # a refusal before sending (a forbidden address) that retrying cannot fix
    response_body: bytes | None = field(default=None, repr=False)


SEND_METHODS = frozenset({"POST", "PUT", "PATCH", "GET"})


class WebhookSender(Protocol):
    async def send(
        self, target: Target, headers: Mapping[str, str], body: bytes, *, method: str = "POST"
    ) -> SendResult:
        """Sends `body` with `method` (one of SEND_METHODS; a GET sends no body) to one of the target's
        checked addresses (never to whatever the name resolves to now), never follows redirects, gives
        up after the configured timeout. Network errors are returned, not raised; a method outside
        SEND_METHODS raises ValueError before anything is sent."""
        ...


class WebhookSigner(Protocol):
    def sign(self, secret: str, msg_id: str, timestamp: datetime, body: str) -> str:
        """The `webhook-signature` header value (Standard Webhooks, `v1,<base64 HMAC-SHA256>`)."""
        ...


class WebhooksUnitOfWork(Recording, Protocol):
    """What the webhooks context touches in one transaction."""

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def jobs(self) -> JobQueue: ...
