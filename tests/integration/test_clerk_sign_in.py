"""With CLERK_* set, Clerk session tokens are verified against Clerk's JWKS (here a local double) and
mapped to our users through their Clerk user id."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from clerk_double import ORIGIN, JwksServer, clerk_token, rsa_key
from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_core.tenancy.models import AgencyRole, LocationGrant, LocationRole
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation, NewUser
from support import make_container, open_api

KEY = rsa_key()
PUBLISHABLE = "pk_test_" + base64.b64encode(b"clerk.example.test$").decode()


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.serve(("kid-1", KEY))
        yield server


@pytest.fixture
async def clerk_container(settings: Settings, jwks: JwksServer) -> AsyncIterator[Container]:
    configured = settings.model_copy(
        update={
            "clerk_publishable_key": PUBLISHABLE,
            "clerk_jwks_url": jwks.url,
            "clerk_authorized_parties": [ORIGIN],
        }
    )
    container = make_container(configured)
    try:
        yield container
    finally:
        await close_container(container)


async def test_clerk_tokens_sign_users_in(clerk_container: Container) -> None:
    operator = Actor.operator()
    tenancy = clerk_container.tenancy()
    agency = await tenancy.create_agency(operator, "Clerk Agency")
    location = await tenancy.create_location(operator, NewLocation(name="Downtown"), agency_id=agency.id)
    hidden = await tenancy.create_location(operator, NewLocation(name="Uptown"), agency_id=agency.id)
    subject = f"user_{uuid.uuid4().hex[:10]}"
    await tenancy.create_user(
        operator,
        NewUser(
            email=f"{subject}@example.com",
            name="Clerk User",
            role=AgencyRole.USER,
            clerk_user_id=subject,
            grants=(LocationGrant(location.id, LocationRole.USER),),
        ),
        agency_id=agency.id,
    )
    async with open_api(clerk_container) as client:
        agency_token = clerk_token(KEY, "kid-1", sub=subject)
        me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {agency_token}"})
        assert me.status_code == 200, me.text
        assert me.json()["agency_id"] == str(agency.id)
        assert me.json()["location_id"] is None

        # The location claim (a Clerk session-token customisation) scopes the token to a location.
        scoped = clerk_token(KEY, "kid-1", sub=subject, location_id=str(location.id))
        current = await client.get("/api/v1/location", headers={"Authorization": f"Bearer {scoped}"})
        assert current.status_code == 200, current.text
        assert current.json()["id"] == str(location.id)

        # A location the user was not granted, an unknown subject and a foreign signature are refused.
        ungranted = clerk_token(KEY, "kid-1", sub=subject, location_id=str(hidden.id))
        stranger = clerk_token(KEY, "kid-1", sub="user_nobody")
        forged = clerk_token(rsa_key(), "kid-1", sub=subject)
        for token in (ungranted, stranger, forged):
            refused = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert refused.status_code == 401
            assert refused.headers["content-type"].startswith("application/problem+json")

        # Our own credentials keep working beside Clerk's.
        _, key = await clerk_container.api_keys().create(operator, "beside clerk", location_id=location.id)
        assert not clerk_container.external_verifiers()[0].accepts(key)
        by_key = await client.get("/api/v1/location", headers={"Authorization": f"Bearer {key}"})
        assert by_key.status_code == 200
