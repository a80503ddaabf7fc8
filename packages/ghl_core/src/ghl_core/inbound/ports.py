"""The ports a provider plugs into (a verifier, processors) and the repositories of inbound webhooks."""

from __future__ import annotations

import builtins
import uuid
from typing import Any, Protocol

from ghl_core.inbound.models import (
    EndpointKey,
    EventStatus,
    InboundEndpoint,
    InboundEnvelope,
    InboundEvent,
    InboundRequest,
)
from ghl_core.jobs.ports import JobQueue
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import Recording
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.ports import LocationRepository


class InboundVerifier(Protocol):
    """One per provider, wrapping the provider SDK's own validator."""

    def verify(self, request: InboundRequest, secret: str | None) -> InboundEnvelope:
        """The verified envelope, or `SignatureInvalid`. `secret` is the endpoint's own signing secret
        for providers that sign per endpoint; others hold their key themselves and ignore it."""
        ...


class InboundProcessor(Protocol):
    """What a provider's event does, run by the `inbound.process` job in the unit of work that marks
    the event processed: its writes and that mark commit together, so a rerun never repeats them.

    `uow` is that unit of work as the composition root's factory built it (it holds every repository).
    Inbound sits below the contexts whose processors it runs, so it cannot name what they need: each
    processor types `uow` as the narrow unit of work of its own context."""

    async def process(self, uow: Any, event: InboundEvent, location: Location) -> None: ...


class InboundEndpointRepository(Protocol):
    async def add(self, endpoint: InboundEndpoint) -> None: ...

    async def get(self, endpoint_id: uuid.UUID) -> InboundEndpoint | None:
        """A soft-deleted endpoint is returned too; callers decide."""
        ...

    async def update(self, endpoint: InboundEndpoint) -> None: ...

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[InboundEndpoint]:
        """The live endpoints, oldest first."""
        ...

    async def lookup(self, endpoint_id: uuid.UUID) -> EndpointKey | None:
        """Before the tenant is known (the receiving request is unauthenticated): one narrow question."""
        ...


class InboundEventRepository(Protocol):
    async def add(self, event: InboundEvent) -> bool:
        """Stores the event unless one with its (provider, scope, provider_event_id) exists: then stores
        nothing and returns False. Concurrent deliveries of one event id store it once."""
        ...

    async def find(self, provider: str, scope: str, provider_event_id: str) -> InboundEvent | None: ...

    async def get(self, event_id: uuid.UUID, *, lock: bool = False) -> InboundEvent | None:
        """With `lock`, held until the transaction ends, so two runs of its job take turns."""
        ...

    async def update(self, event: InboundEvent) -> None:
        """Writes its status, attempts, last error and processed time."""
        ...

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        endpoint_id: uuid.UUID | None = None,
        status: EventStatus | None = None,
    ) -> Page[InboundEvent]:
        """Newest first, without their body and headers (`body_size` says how big the body is)."""
        ...


class InboundRegistry:
    """The providers the receiving path knows: a verifier each, and processors by event type."""

    def __init__(self) -> None:
        self._verifiers: dict[str, InboundVerifier] = {}
        self._processors: dict[tuple[str, str | None], InboundProcessor] = {}

    def add_verifier(self, provider: str, verifier: InboundVerifier) -> None:
        self._verifiers[provider] = verifier

    def add_processor(
        self, provider: str, processor: InboundProcessor, event_type: str | None = None
    ) -> None:
        """`event_type` None: the provider's events of every type without a processor of their own."""
        self._processors[(provider, event_type)] = processor

    def verifier(self, provider: str) -> InboundVerifier:
        try:
            return self._verifiers[provider]
        except KeyError:
            raise LookupError(f"no inbound verifier is registered for {provider!r}") from None

    def processor(self, provider: str, event_type: str | None) -> InboundProcessor | None:
        return self._processors.get((provider, event_type)) or self._processors.get((provider, None))

    @property
    def providers(self) -> builtins.list[str]:
        return sorted(self._verifiers)


class InboundUnitOfWork(Recording, Protocol):
    """What the inbound context touches in one transaction (its processors may touch more: see
    `InboundProcessor`)."""

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def inbound_endpoints(self) -> InboundEndpointRepository: ...

    @property
    def inbound_events(self) -> InboundEventRepository: ...

    @property
    def jobs(self) -> JobQueue: ...
