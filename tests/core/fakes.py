"""In-memory fakes of the core's ports, for fast unit tests of the services.

A unit of work stages its writes in a deep copy of the shared store and publishes them on commit only,
so a unit of work that exits without committing leaves nothing behind, as a database transaction would.
Objects go in and come out as copies: a service that mutates what it read without saving it changes
nothing. Imports only the core and the standard library.
"""

from __future__ import annotations

import base64
import builtins
import copy
import json
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

from webhook_fakes import InMemoryWebhookRepository, WebhookData

from ghl_core.audit.ports import AuditLog, EventOutbox
from ghl_core.identity.models import (
    AccessClaims,
    ApiKey,
    ApiKeyCredential,
    ExternalIdentity,
    RefreshToken,
    UserCredential,
)
from ghl_core.identity.repositories import ApiKeyRepository, CredentialLookup, RefreshTokenRepository
from ghl_core.jobs.models import FailedJob, FailedJobRepository
from ghl_core.jobs.ports import JobQueue, JobRequest
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import Conflict, Unauthenticated
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.shared.scope import ScopeKind, TenantScope
from ghl_core.tenancy.models import Agency, AgencyRole, Location, LocationGrant, LocationRole, PlanTier, User
from ghl_core.tenancy.ports import AgencyRepository, LocationRepository, UserRepository
from ghl_core.webhooks.ports import WebhookRepository

T = TypeVar("T")

API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass
class StoreData:
    agencies: dict[uuid.UUID, Agency] = field(default_factory=dict)
    locations: dict[uuid.UUID, Location] = field(default_factory=dict)
    users: dict[uuid.UUID, User] = field(default_factory=dict)
    api_keys: dict[uuid.UUID, ApiKey] = field(default_factory=dict)
    refresh_tokens: dict[uuid.UUID, RefreshToken] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)
    jobs: list[JobRequest] = field(default_factory=list)
    failed_jobs: dict[uuid.UUID | None, list[FailedJob]] = field(default_factory=dict)  # by location
    # Agencies soft-deleted by an operator: their users are disabled and their keys revoked.
    deleted_agencies: set[uuid.UUID] = field(default_factory=set)
    webhooks: WebhookData = field(default_factory=WebhookData)


class InMemoryStore:
    """The committed state every unit of work starts from."""

    def __init__(self, clock: FixedClock | None = None) -> None:
        self.clock = clock or FixedClock()
        self.data = StoreData()
        self.commits = 0
        self.scopes: list[TenantScope] = []  # every scope a unit of work was opened in

    def uow(self, scope: TenantScope) -> InMemoryUnitOfWork:
        """The `UnitOfWorkFactory`."""
        self.scopes.append(scope)
        return InMemoryUnitOfWork(self, scope)

    def __call__(self, scope: TenantScope) -> InMemoryUnitOfWork:
        return self.uow(scope)


def _key(item: Any) -> tuple[str, str]:
    return (item.created_at.isoformat(), str(item.id))


def _sort_key(item: Any) -> tuple[datetime, str]:
    return (item.created_at, str(item.id))


def _paginate(items: Iterable[T], page: PageRequest, descending: bool = False) -> Page[T]:
    rows = sorted(items, key=_sort_key, reverse=descending)
    if page.after is not None:
        if len(page.after) != 2:
            from ghl_core.shared.errors import ValidationFailed

            raise ValidationFailed.one("/cursor", "is not a cursor this API issued")
        after = (datetime.fromisoformat(page.after[0]), page.after[1])
        rows = [r for r in rows if (_sort_key(r) < after if descending else _sort_key(r) > after)]
    if page.offset is not None:
        rows = rows[page.offset :]
    return page_from_rows([copy.deepcopy(r) for r in rows[: page.limit + 1]], page.limit, _key)


class _Repo:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    @property
    def _d(self) -> StoreData:
        return self._uow.working()


class InMemoryAgencyRepository(_Repo):
    async def add(self, agency: Agency) -> None:
        if agency.id in self._d.agencies:
            raise Conflict(f"agency {agency.id} exists")
        self._d.agencies[agency.id] = copy.deepcopy(agency)

    async def get(self, agency_id: uuid.UUID) -> Agency | None:
        return copy.deepcopy(self._d.agencies.get(agency_id))

    async def list(self, page: PageRequest) -> Page[Agency]:
        live = [a for a in self._d.agencies.values() if a.id not in self._d.deleted_agencies]
        return _paginate(live, page)


class InMemoryLocationRepository(_Repo):
    async def add(self, location: Location) -> None:
        if location.id in self._d.locations:
            raise Conflict(f"location {location.id} exists")
        self._d.locations[location.id] = copy.deepcopy(location)

    async def get(self, location_id: uuid.UUID) -> Location | None:
        return copy.deepcopy(self._d.locations.get(location_id))

    async def update(self, location: Location) -> None:
        if location.id in self._d.locations:
            self._d.locations[location.id] = copy.deepcopy(location)

    async def list(
        self,
        agency_id: uuid.UUID | None,
        page: PageRequest,
        include_deleted: bool = False,
        only: builtins.set[uuid.UUID] | None = None,
    ) -> Page[Location]:
        rows = [
            loc
            for loc in self._d.locations.values()
            if (agency_id is None or loc.agency_id == agency_id)
            and (include_deleted or loc.deleted_at is None)
            and (only is None or loc.id in only)
        ]
        return _paginate(rows, page)

    async def count_for_agency(self, agency_id: uuid.UUID) -> int:
        return sum(
            1 for loc in self._d.locations.values() if loc.agency_id == agency_id and loc.deleted_at is None
        )


class InMemoryUserRepository(_Repo):
    def _check_unique(self, user: User) -> None:
        """The partial unique indexes: one live user per e-mail address and per external identity."""
        if user.deleted_at is not None:
            return
        for other in self._d.users.values():
            if other.id == user.id or other.deleted_at is not None:
                continue
            if other.email == user.email:
                raise Conflict(f"a user with the e-mail address {user.email} already exists")
            if user.clerk_user_id is not None and other.clerk_user_id == user.clerk_user_id:
                raise Conflict("that e-mail address or identity belongs to another user")

    async def add(self, user: User) -> None:
        if user.id in self._d.users:
            raise Conflict(f"user {user.id} exists")
        self._check_unique(user)
        self._d.users[user.id] = copy.deepcopy(user)

    async def get(self, user_id: uuid.UUID) -> User | None:
        return copy.deepcopy(self._d.users.get(user_id))

    async def update(self, user: User) -> None:
        if user.id not in self._d.users:
            return
        self._check_unique(user)
        self._d.users[user.id] = copy.deepcopy(user)

    async def list(self, agency_id: uuid.UUID | None, page: PageRequest) -> Page[User]:
        rows = [
            u
            for u in self._d.users.values()
            if u.deleted_at is None and (agency_id is None or u.agency_id == agency_id)
        ]
        return _paginate(rows, page)

    async def bump_token_version(self, user_id: uuid.UUID) -> None:
        user = self._d.users.get(user_id)
        if user is not None:
            user.token_version += 1

    async def count_owners(self, agency_id: uuid.UUID) -> int:
        return sum(
            1
            for u in self._d.users.values()
            if u.agency_id == agency_id and u.role is AgencyRole.OWNER and u.deleted_at is None
        )

    async def grants_for_location(
        self, location_id: uuid.UUID
    ) -> builtins.list[tuple[uuid.UUID, LocationGrant]]:
        return [(u.id, g) for u in self._d.users.values() for g in u.grants if g.location_id == location_id]


class InMemoryApiKeyRepository(_Repo):
    async def add(self, key: ApiKey) -> None:
        if key.id in self._d.api_keys:
            raise Conflict(f"API key {key.id} exists")
        self._d.api_keys[key.id] = copy.deepcopy(key)

    async def get(self, key_id: uuid.UUID) -> ApiKey | None:
        return copy.deepcopy(self._d.api_keys.get(key_id))

    async def update(self, key: ApiKey) -> None:
        stored = self._d.api_keys.get(key.id)
        if stored is not None:
            # Like the SQL adapter: only the name and the revocation are writable.
            stored.name = key.name
            stored.revoked_at = key.revoked_at

    async def count_live(self, location_id: uuid.UUID, *, lock: bool = False) -> int:
        # One event loop and no await between the count and the add: nothing to lock.
        return sum(k.location_id == location_id and k.revoked_at is None for k in self._d.api_keys.values())

    async def list(
        self, location_id: uuid.UUID, page: PageRequest, include_revoked: bool = False
    ) -> Page[ApiKey]:
        rows = [
            k
            for k in self._d.api_keys.values()
            if k.location_id == location_id and (include_revoked or k.revoked_at is None)
        ]
        return _paginate(rows, page)


class InMemoryRefreshTokenRepository(_Repo):
    async def add(self, token: RefreshToken) -> None:
        self._d.refresh_tokens[token.id] = copy.deepcopy(token)

    async def mark_rotated(self, token_id: uuid.UUID, at: datetime) -> bool:
        token = self._d.refresh_tokens.get(token_id)
        if token is None or token.rotated_at is not None or token.revoked_at is not None:
            return False
        token.rotated_at = at
        return True

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        for token in self._d.refresh_tokens.values():
            if token.family_id == family_id and token.revoked_at is None:
                token.revoked_at = at

    async def revoke_for_user(self, user_id: uuid.UUID, at: datetime) -> None:
        for token in self._d.refresh_tokens.values():
            if token.user_id == user_id and token.revoked_at is None:
                token.revoked_at = at


class InMemoryCredentialLookup(_Repo):
    """The security-definer functions of the SQL adapter, answered from the same store."""

    async def api_key(self, key_hash: str) -> ApiKeyCredential | None:
        d = self._d
        key = next((k for k in d.api_keys.values() if k.key_hash == key_hash), None)
        if key is None:
            return None
        location = d.locations.get(key.location_id)
        if location is None:
            return None
        now = self._uow.store.clock.now()
        if key.revoked_at is None and (
            key.last_used_at is None or key.last_used_at < now - API_KEY_TOUCH_INTERVAL
        ):
            key.last_used_at = now
        return ApiKeyCredential(
            id=key.id,
            location_id=key.location_id,
            agency_id=key.agency_id,
            scopes=frozenset(key.scopes),
            tier=location.tier,
            revoked=(
                key.revoked_at is not None
                or location.deleted_at is not None
                or key.agency_id in d.deleted_agencies
            ),
        )

    def _user(self, match: Callable[[User], bool]) -> UserCredential | None:
        user = next((u for u in self._d.users.values() if u.deleted_at is None and match(u)), None)
        if user is None:
            return None
        return UserCredential(
            id=user.id,
            agency_id=user.agency_id,
            role=user.role,
            password_hash=user.password_hash,
            disabled=user.agency_id in self._d.deleted_agencies,
            token_version=user.token_version,
        )

    async def user_by_email(self, email: str) -> UserCredential | None:
        return self._user(lambda u: u.email == email)

    async def user_by_id(self, user_id: uuid.UUID) -> UserCredential | None:
        return self._user(lambda u: u.id == user_id)

    async def user_by_clerk_id(self, clerk_user_id: str) -> UserCredential | None:
        return self._user(lambda u: u.clerk_user_id == clerk_user_id)

    async def refresh_token(self, token_hash: str) -> RefreshToken | None:
        token = next((t for t in self._d.refresh_tokens.values() if t.token_hash == token_hash), None)
        return copy.deepcopy(token)

    async def location_access(
        self, user_id: uuid.UUID, location_id: uuid.UUID
    ) -> tuple[str | None, str] | None:
        user = self._d.users.get(user_id)
        location = self._d.locations.get(location_id)
        if user is None or user.deleted_at is not None:
            return None
        if location is None or location.deleted_at is not None or location.agency_id != user.agency_id:
            return None
        grant = user.grant_for(location_id)
        return (grant.role.value if grant else None, location.tier.value)


class InMemoryAuditLog(_Repo):
    async def record(self, entry: AuditEntry) -> None:
        self._d.audit.append(entry)

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        entity_type: str | None = None,
        entity_id: uuid.UUID | None = None,
        since: datetime | None = None,
    ) -> Page[AuditEntry]:
        rows = [
            e
            for e in self._d.audit
            if e.location_id == location_id
            and (entity_type is None or e.entity_type == entity_type)
            and (entity_id is None or e.entity_id == entity_id)
            and (since is None or e.created_at >= since)
        ]
        return _paginate(rows, page, descending=True)


class InMemoryEventOutbox(_Repo):
    async def add(self, event: DomainEvent) -> None:
        self._d.events.append(event)


class InMemoryJobQueue(_Repo):
    async def enqueue(self, *jobs: JobRequest) -> None:
        self._d.jobs.extend(jobs)


class InMemoryFailedJobRepository(_Repo):
    def _mine(self) -> list[FailedJob]:
        return self._d.failed_jobs.get(self._uow.scope.location_id, [])

    async def list(self, limit: int, before: int | None) -> list[FailedJob]:
        rows = sorted((j for j in self._mine() if before is None or j.id < before), key=lambda j: -j.id)
        return rows[:limit]

    async def retry(self, job_id: int) -> bool:
        mine = self._mine()
        for job in mine:
            if job.id == job_id:
                mine.remove(job)
                return True
        return False


class InMemoryUnitOfWork:
    def __init__(self, store: InMemoryStore, scope: TenantScope) -> None:
        self.store = store
        self.scope = scope
        self.committed = False
        self._work: StoreData | None = None
        # Typed as the ports so mypy checks that this class is a `UnitOfWork`.
        self.agencies: AgencyRepository = InMemoryAgencyRepository(self)
        self.locations: LocationRepository = InMemoryLocationRepository(self)
        self.users: UserRepository = InMemoryUserRepository(self)
        self.api_keys: ApiKeyRepository = InMemoryApiKeyRepository(self)
        self.refresh_tokens: RefreshTokenRepository = InMemoryRefreshTokenRepository(self)
        self.credentials: CredentialLookup = InMemoryCredentialLookup(self)
        self.audit: AuditLog = InMemoryAuditLog(self)
        self.events: EventOutbox = InMemoryEventOutbox(self)
        self.jobs: JobQueue = InMemoryJobQueue(self)
        self.failed_jobs: FailedJobRepository = InMemoryFailedJobRepository(self)
        self.webhooks: WebhookRepository = InMemoryWebhookRepository(self)

    def working(self) -> StoreData:
        if self._work is None:
            raise RuntimeError("use the unit of work inside 'async with'")
        return self._work

    async def __aenter__(self) -> InMemoryUnitOfWork:
        self._work = copy.deepcopy(self.store.data)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._work = None  # whatever was not committed is gone

    async def commit(self) -> None:
        if self.scope.kind is ScopeKind.ANONYMOUS:
            self._check_anonymous_writes()
        self.store.data = copy.deepcopy(self.working())
        self.store.commits += 1
        self.committed = True

    def _check_anonymous_writes(self) -> None:
        """Row-level security lets the anonymous scope write nothing but a key's last use."""
        before, after = self.store.data, self.working()
        for name in ("agencies", "locations", "users", "refresh_tokens"):
            if getattr(before, name) != getattr(after, name):
                raise AssertionError(f"the anonymous scope wrote to {name}")
        if before.audit != after.audit or before.events != after.events:
            raise AssertionError("the anonymous scope wrote audit rows or events")
        if _without_last_use(before.api_keys) != _without_last_use(after.api_keys):
            raise AssertionError("the anonymous scope changed an API key")


def _without_last_use(keys: dict[uuid.UUID, ApiKey]) -> dict[uuid.UUID, ApiKey]:
    return {k: replace(v, last_used_at=None) for k, v in keys.items()}


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


class InMemoryFailureCounter:
    """Fixed windows that start with the first failure, timed by the fixed clock."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self._windows: dict[str, tuple[int, datetime]] = {}

    def _live(self, key: str) -> tuple[int, datetime] | None:
        window = self._windows.get(key)
        if window is not None and window[1] <= self.clock.now():
            del self._windows[key]
            return None
        return window

    async def record_failure(self, key: str, window: timedelta) -> int:
        live = self._live(key)
        count, ends = live if live else (0, self.clock.now() + window)
        self._windows[key] = (count + 1, ends)
        return count + 1

    async def failures(self, key: str) -> tuple[int, int]:
        live = self._live(key)
        if live is None:
            return 0, 0
        return live[0], math.ceil((live[1] - self.clock.now()).total_seconds())

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)


class InMemoryCache:
    """The cache port for core tests: values expire on the fixed clock; `invalidated` records every call."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.values: dict[str, tuple[bytes, datetime]] = {}
        self.invalidated: list[str] = []

    async def get(self, key: str) -> bytes | None:
        found = self.values.get(key)
        if found is None or found[1] <= self.clock.now():
            return None
        return found[0]

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self.values[key] = (value, self.clock.now() + timedelta(seconds=ttl_seconds))

    async def invalidate(self, *keys: str) -> None:
        self.invalidated.extend(keys)
        for key in keys:
            self.values.pop(key, None)

    def clear(self) -> None:
        self.values.clear()
