"""Fixtures for unit tests of the core: services wired to the in-memory fakes, and a small world."""

from __future__ import annotations

import pytest

from fakes import (
    FakeExternalVerifier,
    FakePasswordHasher,
    FakeTokenCodec,
    InMemoryCache,
    InMemoryFailureCounter,
    InMemoryStore,
)
from ghl_core.audit.services import AuditService
from ghl_core.identity.api_keys import ApiKeyService
from ghl_core.identity.auth import AuthService
from ghl_core.shared.cache import ReadCache
from ghl_core.shared.clock import FixedClock
from ghl_core.tenancy.models import AgencyRole, LocationGrant, LocationRole, PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation, NewUser, TenancyService
from world import PASSWORD, World


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store(clock: FixedClock) -> InMemoryStore:
    return InMemoryStore(clock)


@pytest.fixture
def hasher() -> FakePasswordHasher:
    return FakePasswordHasher()


@pytest.fixture
def codec(clock: FixedClock) -> FakeTokenCodec:
    return FakeTokenCodec(clock)


@pytest.fixture
def verifier() -> FakeExternalVerifier:
    return FakeExternalVerifier()


@pytest.fixture
def failures(clock: FixedClock) -> InMemoryFailureCounter:
    return InMemoryFailureCounter(clock)


@pytest.fixture
def cache(clock: FixedClock) -> InMemoryCache:
    return InMemoryCache(clock)


@pytest.fixture
def read_cache(cache: InMemoryCache) -> ReadCache:
    return ReadCache(cache, ttl_seconds=60)


@pytest.fixture
def tenancy(
    store: InMemoryStore, clock: FixedClock, hasher: FakePasswordHasher, read_cache: ReadCache
) -> TenancyService:
    return TenancyService(store, clock, hasher, read_cache)


@pytest.fixture
def api_keys(store: InMemoryStore, clock: FixedClock, read_cache: ReadCache) -> ApiKeyService:
    return ApiKeyService(store, clock, read_cache)


@pytest.fixture
def auth(
    store: InMemoryStore,
    clock: FixedClock,
    hasher: FakePasswordHasher,
    codec: FakeTokenCodec,
    failures: InMemoryFailureCounter,
    verifier: FakeExternalVerifier,
    read_cache: ReadCache,
) -> AuthService:
    return AuthService(store, clock, hasher, codec, failures, external=[verifier], cache=read_cache)


@pytest.fixture
def audit_service(store: InMemoryStore) -> AuditService:
    return AuditService(store)


@pytest.fixture
def operator() -> Actor:
    return Actor.operator()


@pytest.fixture
async def world(tenancy: TenancyService, operator: Actor, store: InMemoryStore) -> World:
    agency = await tenancy.create_agency(operator, "Acme Agency")
    loc_a = await tenancy.create_location(operator, NewLocation("Alpha", tier=PlanTier.PRO), agency.id)
    loc_b = await tenancy.create_location(operator, NewLocation("Beta"), agency.id)
    owner = await tenancy.create_user(
        operator, NewUser("owner@acme.io", "Olive Owner", AgencyRole.OWNER, PASSWORD), agency.id
    )
    admin = await tenancy.create_user(
        operator, NewUser("admin@acme.io", "Adam Admin", AgencyRole.ADMIN, PASSWORD), agency.id
    )
    member = await tenancy.create_user(
        operator,
        NewUser(
            "member@acme.io",
            "Mia Member",
            AgencyRole.USER,
            PASSWORD,
            grants=(LocationGrant(loc_a.id, LocationRole.USER),),
        ),
        agency.id,
    )
    other = await tenancy.create_agency(operator, "Other Agency")
    other_loc = await tenancy.create_location(operator, NewLocation("Gamma"), other.id)
    other_owner = await tenancy.create_user(
        operator, NewUser("boss@other.io", "Otto Other", AgencyRole.OWNER, PASSWORD), other.id
    )
    store.data.audit.clear()
    store.data.events.clear()
    return World(agency, loc_a, loc_b, owner, admin, member, other, other_loc, other_owner)
