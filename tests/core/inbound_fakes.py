"""In-memory fakes of the inbound webhook ports: repositories staged and published like the other fakes,
a verifier with a trivial signature, processors that record or fail, and a reversible secret box."""

from __future__ import annotations

import builtins
import copy
import uuid
from dataclasses import dataclass, field
from types import TracebackType

from fakes import InMemoryStore, InMemoryUnitOfWork, _paginate
from ghl_core.inbound.models import (
    EndpointKey,
    EventStatus,
    InboundEndpoint,
    InboundEnvelope,
    InboundEvent,
    InboundRequest,
    SignatureInvalid,
    parse_json,
)
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.scope import ScopeKind, TenantScope
from ghl_core.shared.uow import Transaction
from ghl_core.tenancy.models import Location


@dataclass
class InboundData:
    endpoints: dict[uuid.UUID, InboundEndpoint] = field(default_factory=dict)
    events: dict[uuid.UUID, InboundEvent] = field(default_factory=dict)


class InboundStore(InMemoryStore):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.inbound = InboundData()

    def uow(self, scope: TenantScope) -> InboundUnitOfWork:
        self.scopes.append(scope)
        return InboundUnitOfWork(self, scope)

    def __call__(self, scope: TenantScope) -> InboundUnitOfWork:
        return self.uow(scope)


class _InboundRepo:
    def __init__(self, uow: InboundUnitOfWork) -> None:
        self._uow = uow

    @property
    def _d(self) -> InboundData:
        return self._uow.inbound_working()

    def _visible(self, location_id: uuid.UUID) -> bool:
        """Row-level security: a location scope sees its own rows, the anonymous scope none."""
        scope = self._uow.scope
        if scope.kind is ScopeKind.OPERATOR:
            return True
        return scope.kind is ScopeKind.LOCATION and scope.location_id == location_id


class FakeEndpointRepository(_InboundRepo):
    async def add(self, endpoint: InboundEndpoint) -> None:
        assert self._visible(endpoint.location_id)
        self._d.endpoints[endpoint.id] = copy.deepcopy(endpoint)

    async def get(self, endpoint_id: uuid.UUID) -> InboundEndpoint | None:
        found = self._d.endpoints.get(endpoint_id)
        return copy.deepcopy(found) if found and self._visible(found.location_id) else None

    async def update(self, endpoint: InboundEndpoint) -> None:
        assert self._visible(endpoint.location_id)
        self._d.endpoints[endpoint.id] = copy.deepcopy(endpoint)

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[InboundEndpoint]:
        rows = [
            e
            for e in self._d.endpoints.values()
            if e.location_id == location_id and e.deleted_at is None and self._visible(e.location_id)
        ]
        return _paginate(rows, page)

    async def lookup(self, endpoint_id: uuid.UUID) -> EndpointKey | None:
        found = self._d.endpoints.get(endpoint_id)
        if found is None or found.deleted_at is not None:
            return None
        location = self._uow.working().locations.get(found.location_id)
        live = location is not None and location.deleted_at is None
        return EndpointKey(found.id, found.location_id, found.secret_ciphertext, found.enabled and live)


class FakeEventRepository(_InboundRepo):
    async def add(self, event: InboundEvent) -> bool:
        assert self._visible(event.location_id)
        key = (event.provider, event.scope, event.provider_event_id)
        if any((e.provider, e.scope, e.provider_event_id) == key for e in self._d.events.values()):
            return False
        self._d.events[event.id] = copy.deepcopy(event)
        return True

    async def find(self, provider: str, scope: str, provider_event_id: str) -> InboundEvent | None:
        for e in self._d.events.values():
            if (e.provider, e.scope, e.provider_event_id) == (provider, scope, provider_event_id):
                return copy.deepcopy(e) if self._visible(e.location_id) else None
        return None

    async def get(self, event_id: uuid.UUID, *, lock: bool = False) -> InboundEvent | None:
        found = self._d.events.get(event_id)
        return copy.deepcopy(found) if found and self._visible(found.location_id) else None

    async def update(self, event: InboundEvent) -> None:
        assert self._visible(event.location_id)
        self._d.events[event.id] = copy.deepcopy(event)

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        endpoint_id: uuid.UUID | None = None,
        status: EventStatus | None = None,
    ) -> Page[InboundEvent]:
        rows = [
            e
            for e in self._d.events.values()
            if e.location_id == location_id
            and self._visible(e.location_id)
            and (endpoint_id is None or e.endpoint_id == endpoint_id)
            and (status is None or e.status is status)
        ]
        rows.sort(key=lambda e: (e.received_at, e.id), reverse=True)
        return Page(items=[copy.deepcopy(e) for e in rows[: page.limit]], next_cursor=None)


class InboundUnitOfWork(InMemoryUnitOfWork):
    store: InboundStore

    def __init__(self, store: InboundStore, scope: TenantScope) -> None:
        super().__init__(store, scope)
        self._inbound: InboundData | None = None
        self.inbound_endpoints = FakeEndpointRepository(self)
        self.inbound_events = FakeEventRepository(self)

    def inbound_working(self) -> InboundData:
        if self._inbound is None:
            raise RuntimeError("use the unit of work inside 'async with'")
        return self._inbound

    async def __aenter__(self) -> InboundUnitOfWork:
        await super().__aenter__()
        self._inbound = copy.deepcopy(self.store.inbound)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        self._inbound = None

    async def commit(self) -> None:
        await super().commit()
        self.store.inbound = copy.deepcopy(self.inbound_working())


class FakeVerifier:
    """Signed means: the `x-signature` header equals the secret. Event id and type come from headers."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.calls = 0

    def verify(self, request: InboundRequest, secret: str | None) -> InboundEnvelope:
        self.calls += 1
        if not secret or request.headers.get("x-signature") != secret:
            raise SignatureInvalid("bad signature")
        return InboundEnvelope(
            provider=self.provider,
            provider_event_id=request.headers.get("x-event-id", ""),
            type=request.headers.get("x-event-type"),
            payload=parse_json(request.body),
        )


class RecordingProcessor:
    """Records each event it processes; fails its first `failures` runs."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.seen: builtins.list[uuid.UUID] = []

    async def process(self, uow: Transaction, event: InboundEvent, location: Location) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("processor down")
        self.seen.append(event.id)


class FakeSecretBox:
    """Reversible, bound to its associated data like the real one; not encryption."""

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        return b"sealed:" + associated_data + b":" + plaintext[::-1]

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytes:
        prefix = b"sealed:" + associated_data + b":"
        if not ciphertext.startswith(prefix):
            raise ValueError("not sealed for this associated data")
        return ciphertext[len(prefix) :][::-1]
