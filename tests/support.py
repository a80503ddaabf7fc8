"""Helpers shared by the tests: a container wired for tests, tenants to test with, and an HTTP client on
the real app running in the test's own event loop (so pooled connections never cross event loops)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from dependency_injector import providers

from ghl_adapters.container import Container, build_container
from ghl_adapters.identity import Argon2PasswordHasher
from ghl_adapters.settings import Settings
from ghl_core.tenancy.models import AgencyRole, LocationGrant, LocationRole, PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation, NewUser

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"


def cheap_hasher() -> Argon2PasswordHasher:
    # Real argon2id, with parameters small enough for a test suite.
    return Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def make_container(settings: Settings) -> Container:
    assert settings.database_url
    container = build_container(settings, settings.database_url)
    container.password_hasher.override(providers.Singleton(cheap_hasher))
    return container


@dataclass(frozen=True)
class Tenant:
    agency_id: uuid.UUID
    location_id: uuid.UUID
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def new_tenant(container: Container, tier: PlanTier = PlanTier.ENTERPRISE) -> Tenant:
    operator = Actor.operator()
    tenancy = container.tenancy()
    agency = await tenancy.create_agency(operator, f"Agency {uuid.uuid4().hex[:6]}")
    location = await tenancy.create_location(
        operator, NewLocation(name="Main Street", timezone="America/Chicago", tier=tier), agency_id=agency.id
    )
    _, secret = await container.api_keys().create(operator, "test key", location_id=location.id)
    return Tenant(agency_id=agency.id, location_id=location.id, api_key=secret)


async def new_user(
    container: Container, tenant: Tenant, role: AgencyRole = AgencyRole.USER, granted: bool = True
) -> uuid.UUID:
    """A user of the tenant's agency, granted its location unless told otherwise (owners and admins reach
    every location anyway): someone a contact, conversation, opportunity or task may be assigned to."""
    grants = (LocationGrant(tenant.location_id, LocationRole.USER),) if granted else ()
    user = await container.tenancy().create_user(
        Actor.operator(),
        NewUser(email=f"u.{uuid.uuid4().hex[:10]}@example.com", name="Tess Tasker", role=role, grants=grants),
        agency_id=tenant.agency_id,
    )
    return user.id


def unique_ip() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2]}"


@asynccontextmanager
async def open_api(container: Container, ip: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    from ghl_http.app import create_app

    app = create_app(container, close_container_on_shutdown=False)
    # httpx types an ASGI app with plain mappings, Litestar with its TypedDict scopes and events: the same
    # protocol, spelt in two ways that mypy cannot match.
    transport = httpx.ASGITransport(app=app, client=(ip or unique_ip(), 50000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
        yield client
