"""Fakes of the core's ports for fast unit tests of the services.

The repositories and the unit of work are the shipped in-memory adapters (`ghl_adapters.memory`, checked
against the SQL ones by tests/contracts): `InMemoryStore` is their unit of work factory plus `data`, a view
of the committed tables that the tests read (and, to arrange a case, write). What stays here are fakes of
ports with no in-memory adapter of their own: a password hasher, a token codec, an external verifier, a
failure counter and a cache. Imports only the core, the memory adapters and the standard library.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, overload

from ghl_adapters.memory import MemoryStore, MemoryUnitOfWork, MemoryUnitOfWorkFactory
from ghl_adapters.memory.clocked import MemoryCache, MemoryFailureCounter
from ghl_adapters.memory.identity import API_KEYS, REFRESH_TOKENS
from ghl_adapters.memory.queue import JOBS
from ghl_adapters.memory.recording import AUDIT, EVENTS
from ghl_adapters.memory.store import Table
from ghl_adapters.memory.tenancy import AGENCIES, DELETED_AGENCIES, LOCATIONS, USERS
from ghl_adapters.memory.webhooks import ATTEMPTS, DELIVERIES, SUBSCRIPTIONS
from ghl_core.identity.models import AccessClaims, ExternalIdentity
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import Unauthenticated
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.models import AgencyRole, LocationRole, PlanTier

T = TypeVar("T")
R = TypeVar("R")

# The unit of work the services get (holds every repository).
InMemoryUnitOfWork = MemoryUnitOfWork


class _RowsView(Generic[R, T]):
    """A committed table read as a list of its rows in the order written (the audit trail, the event
    log, the job queue). `clear` and `append` replace the committed table, as a commit does."""

    def __init__(
        self, store: MemoryStore, table: Table[Any, R], project: Callable[[R], T], key: Callable[[T], Any]
    ) -> None:
        self._store, self._table, self._project, self._key = store, table, project, key

    def _rows(self) -> list[T]:
        return [self._project(r) for r in self._store.committed(self._table).values()]

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        return self._rows()[index]

    def __iter__(self) -> Iterator[T]:
        return iter(self._rows())

    def __len__(self) -> int:
        return len(self._store.committed(self._table))

    def __eq__(self, other: object) -> bool:
        return self._rows() == other

    def __repr__(self) -> str:
        return repr(self._rows())

    def clear(self) -> None:
        self._store.tables[self._table.name] = {}

    def append(self, row: R) -> None:
        rows = dict(self._store.committed(self._table))
        rows[self._key(self._project(row))] = row
        self._store.tables[self._table.name] = rows


class _DeletedAgencies:
    """An operator's soft delete of agencies, as a set."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def add(self, agency_id: uuid.UUID) -> None:
        rows = dict(self._store.committed(DELETED_AGENCIES))
        rows[agency_id] = self._store.clock.now()
        self._store.tables[DELETED_AGENCIES.name] = rows

    def __contains__(self, agency_id: object) -> bool:
        return agency_id in self._store.committed(DELETED_AGENCIES)


class _WebhookData:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    @property
    def subscriptions(self) -> dict[Any, Any]:
        return self._store.committed(SUBSCRIPTIONS)

    @property
    def deliveries(self) -> dict[Any, Any]:
        return self._store.committed(DELIVERIES)

    @property
    def attempts(self) -> list[Any]:
        return list(self._store.committed(ATTEMPTS).values())


def _same(row: T) -> T:
    return row


def _by_id(row: Any) -> Any:
    return row.id


class StoreView:
    """The committed state as the tests read it."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.audit = _RowsView(store, AUDIT, _same, _by_id)
        self.events = _RowsView(store, EVENTS, _same, _by_id)
        self.jobs = _RowsView(store, JOBS, lambda queued: queued.request, id)
        self.deleted_agencies = _DeletedAgencies(store)
        self.webhooks = _WebhookData(store)

    @property
    def agencies(self) -> dict[Any, Any]:
        return self._store.committed(AGENCIES)

    @property
    def locations(self) -> dict[Any, Any]:
        return self._store.committed(LOCATIONS)

    @property
    def users(self) -> dict[Any, Any]:
        return self._store.committed(USERS)

    @property
    def api_keys(self) -> dict[Any, Any]:
        return self._store.committed(API_KEYS)

    @property
    def refresh_tokens(self) -> dict[Any, Any]:
        return self._store.committed(REFRESH_TOKENS)

    def __repr__(self) -> str:
        return repr(self._store.tables)


class InMemoryStore(MemoryUnitOfWorkFactory):
    """The `UnitOfWorkFactory` of the core tests, over a fixed clock."""

    def __init__(self, clock: FixedClock | None = None) -> None:
        self.fixed_clock = clock or FixedClock()
        super().__init__(MemoryStore(self.fixed_clock))
        self.data = StoreView(self.store)

    @property
    def clock(self) -> FixedClock:
        return self.fixed_clock

    @property
    def commits(self) -> int:
        return self.store.commits

    def uow(self, scope: TenantScope) -> MemoryUnitOfWork:
        return self(scope)


# -- identity ports ----------------------------------------------------------------------------------


class FakePasswordHasher:
    """`prefix$password`: a hash from an older prefix verifies but needs rehashing."""

    def __init__(self, needs_rehash: bool = False, prefix: str = "plain$") -> None:
        self.rehash = needs_rehash
        self.prefix = prefix
        self.hashed: list[str] = []
        self.verified = 0

    def hash(self, password: str) -> str:
        self.hashed.append(password)
        return self.prefix + password

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        _, sep, stored = password_hash.partition("$")
        return bool(sep) and stored == password

    def needs_rehash(self, password_hash: str) -> bool:
        return self.rehash or not password_hash.startswith(self.prefix)


class FakeTokenCodec:
    """Claims as JSON, with an expiry read from the fixed clock. Not signed: tests only."""

    PREFIX = "fake."

    def __init__(self, clock: FixedClock, ttl: timedelta = timedelta(minutes=15)) -> None:
        self.clock = clock
        self.ttl = ttl

    def issue(self, claims: AccessClaims) -> str:
        body = {
            "sub": str(claims.user_id),
            "agency_id": str(claims.agency_id),
            "agency_role": claims.agency_role.value,
            "location_id": str(claims.location_id) if claims.location_id else None,
            "location_role": claims.location_role.value if claims.location_role else None,
            "tier": claims.tier.value if claims.tier else None,
            "jti": claims.token_id or uuid.uuid4().hex,
            "ver": claims.token_version,
            "exp": (self.clock.now() + self.ttl).isoformat(),
        }
        return self.PREFIX + base64.urlsafe_b64encode(json.dumps(body).encode()).decode()

    def verify(self, token: str) -> AccessClaims:
        if not token.startswith(self.PREFIX):
            raise Unauthenticated("not one of our access tokens")
        try:
            body = json.loads(base64.urlsafe_b64decode(token[len(self.PREFIX) :].encode()))
            expires = datetime.fromisoformat(body["exp"])
            claims = AccessClaims(
                user_id=uuid.UUID(body["sub"]),
                agency_id=uuid.UUID(body["agency_id"]),
                agency_role=AgencyRole(body["agency_role"]),
                location_id=uuid.UUID(body["location_id"]) if body["location_id"] else None,
                location_role=LocationRole(body["location_role"]) if body["location_role"] else None,
                tier=PlanTier(body["tier"]) if body["tier"] else None,
                token_id=body["jti"],
                token_version=int(body["ver"]),
            )
        except (ValueError, KeyError, TypeError):
            raise Unauthenticated("malformed access token") from None
        if expires <= self.clock.now():
            raise Unauthenticated("access token has expired")
        return claims


class FakeExternalVerifier:
    """Accepts tokens that start with `ext.`; answers with the identity registered for each token."""

    PREFIX = "ext."

    def __init__(self, provider: str = "clerk") -> None:
        self.provider = provider
        self.identities: dict[str, ExternalIdentity] = {}

    def register(self, subject: str, location_id: uuid.UUID | None = None) -> str:
        token = f"{self.PREFIX}{uuid.uuid4().hex}"
        self.identities[token] = ExternalIdentity(self.provider, subject, location_id)
        return token

    def accepts(self, token: str) -> bool:
        return token.startswith(self.PREFIX)

    async def verify(self, token: str) -> ExternalIdentity:
        identity = self.identities.get(token)
        if identity is None:
            raise Unauthenticated(f"the {self.provider} token does not verify")
        return identity


class InMemoryFailureCounter(MemoryFailureCounter):
    """The shipped one, on the fixed clock."""

    clock: FixedClock


class InMemoryCache(MemoryCache):
    """The shipped cache on the fixed clock; `invalidated` records every invalidation."""

    clock: FixedClock

    def __init__(self, clock: FixedClock) -> None:
        super().__init__(clock)
        self.invalidated: list[str] = []

    async def invalidate(self, *keys: str) -> None:
        self.invalidated.extend(keys)
        await super().invalidate(*keys)
