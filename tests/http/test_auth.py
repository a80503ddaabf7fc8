"""/api/v1/auth: sign-up, log-in, throttling, refresh rotation, log-out, /me and location tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from ghl_adapters.container import Container
from ghl_adapters.identity import JwtAccessTokenCodec
from ghl_core.identity.models import AccessClaims
from ghl_core.shared.clock import FixedClock
from ghl_core.tenancy.models import AgencyRole
from http_kit import (
    API,
    PASSWORD,
    Tenant,
    assert_problem,
    bearer,
    create_api_key,
    create_location,
    create_user,
    location_token,
    log_in,
    open_api,
    pointers,
    sign_up,
    unique_email,
)


# -- sign-up -----------------------------------------------------------------------------------------
async def test_sign_up_creates_an_agency_and_its_owner(api: httpx.AsyncClient) -> None:
    email = unique_email("Owner").upper()
    response = await api.post(
        f"{API}/auth/signup",
        json={"agency_name": "  Acme   Agency ", "email": email, "password": PASSWORD, "name": "Olive"},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["agency"]["name"] == "Acme Agency"
    assert body["user"]["email"] == email.lower()
    assert body["user"]["role"] == "agency_owner"
    assert body["user"]["agency_id"] == body["agency"]["id"]
    assert "password" not in response.text
    tokens = body["tokens"]
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] > 0
    me = await api.get(f"{API}/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == body["user"]["id"]


async def test_a_duplicate_email_is_a_conflict(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)

    response = await api.post(
        f"{API}/auth/signup",
        json={"agency_name": "Other", "email": account.email.upper(), "password": PASSWORD, "name": "X"},
    )

    assert_problem(response, 409, "conflict")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"password": "short"}, ["/password"]),
        ({"email": "not-an-email"}, ["/email"]),
        ({"email": "nope", "password": "short", "name": "   "}, ["/email", "/name", "/password"]),
        ({"favourite_colour": "blue"}, ["/favourite_colour"]),
        ({"email": None}, ["/email"]),
    ],
)
async def test_bad_sign_up_fields_are_listed_one_by_one(
    api: httpx.AsyncClient, changes: dict[str, object], expected: list[str]
) -> None:
    payload: dict[str, object] = {
        "agency_name": "Acme",
        "email": unique_email(),
        "password": PASSWORD,
        "name": "Olive",
    }
    payload.update(changes)
    payload = {k: v for k, v in payload.items() if v is not None}

    body = assert_problem(await api.post(f"{API}/auth/signup", json=payload), 422)

    assert pointers(body) == expected
    assert all(error["detail"] for error in body["errors"])


async def test_a_refused_sign_up_creates_nothing(api: httpx.AsyncClient) -> None:
    email = unique_email()
    bad = {"agency_name": "Acme", "email": email, "password": "short", "name": "Olive"}
    assert_problem(await api.post(f"{API}/auth/signup", json=bad), 422)

    assert_problem(await api.post(f"{API}/auth/login", json={"email": email, "password": "short"}), 401)


# -- log-in and throttling -----------------------------------------------------------------------------
async def test_log_in_returns_tokens(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)

    tokens = await log_in(api, account.email.upper())

    me = await api.get(f"{API}/auth/me", headers=bearer(tokens["access_token"]))
    assert me.json()["id"] == account.user_id
    assert tokens["refresh_token"] != account.refresh_token


async def test_a_wrong_password_is_401_with_a_challenge(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)

    response = await api.post(
        f"{API}/auth/login", json={"email": account.email, "password": "wrong-password"}
    )

    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_an_unknown_email_answers_like_a_wrong_password(api: httpx.AsyncClient) -> None:
    response = await api.post(f"{API}/auth/login", json={"email": unique_email(), "password": PASSWORD})

    body = assert_problem(response, 401)
    assert body["detail"] == "wrong e-mail address or password"


async def test_five_failures_lock_the_account_even_for_the_right_password(container: Container) -> None:
    async with open_api(container) as api:
        account = await sign_up(api)
        for _ in range(5):
            bad = await api.post(
                f"{API}/auth/login", json={"email": account.email, "password": "wrong-pass!"}
            )
            assert_problem(bad, 401)

        response = await api.post(f"{API}/auth/login", json={"email": account.email, "password": PASSWORD})

        assert_problem(response, 429, "too_many_requests")
        assert int(response.headers["retry-after"]) >= 1
    # The throttle follows the account, not the address it is attacked from.
    async with open_api(container) as elsewhere:
        again = await elsewhere.post(f"{API}/auth/login", json={"email": account.email, "password": PASSWORD})
        assert_problem(again, 429)


# -- refresh and log-out -------------------------------------------------------------------------------
async def refresh(api: httpx.AsyncClient, token: str) -> httpx.Response:
    return await api.post(f"{API}/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_reuse_revokes_the_family(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)

    first = await refresh(api, account.refresh_token)
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != account.refresh_token
    second = await refresh(api, rotated["refresh_token"])
    assert second.status_code == 200, second.text
    newest = second.json()["refresh_token"]

    reuse = await refresh(api, account.refresh_token)
    assert_problem(reuse, 401)
    assert reuse.headers["www-authenticate"]

    # Someone else holds a copy: the newest token of the family is dead too.
    assert_problem(await refresh(api, newest), 401)


async def test_refresh_with_an_unknown_token_is_401(api: httpx.AsyncClient) -> None:
    assert_problem(await refresh(api, "not-a-token"), 401)


async def test_log_out_revokes_the_refresh_token(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)
    other_session = await log_in(api, account.email)

    response = await api.post(f"{API}/auth/logout", json={"refresh_token": account.refresh_token})

    assert response.status_code == 204, response.text
    assert_problem(await refresh(api, account.refresh_token), 401)
    # Only this log-in's family ends.
    assert (await refresh(api, other_session["refresh_token"])).status_code == 200


# -- /me -------------------------------------------------------------------------------------------------
async def test_me_for_an_api_key(api: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await api.get(f"{API}/auth/me", headers=tenant.headers)

    assert response.status_code == 200, response.text
    me = response.json()
    assert me["kind"] == "api_key"
    assert me["location_id"] == str(tenant.location_id)
    assert me["agency_id"] == str(tenant.agency_id)
    assert me["tier"] == "enterprise"
    assert "contacts:read" in me["permissions"]
    assert "users:write" not in me["permissions"]


async def test_me_for_agency_and_location_tokens(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)
    location = await create_location(api, account.headers, tier="pro")

    agency_me = (await api.get(f"{API}/auth/me", headers=account.headers)).json()
    assert agency_me["kind"] == "user"
    assert agency_me["agency_role"] == "agency_owner"
    assert agency_me["location_id"] is None
    assert "users:write" in agency_me["permissions"]

    loc_headers = await location_token(api, account.headers, location["id"])
    loc_me = (await api.get(f"{API}/auth/me", headers=loc_headers)).json()
    assert loc_me["location_id"] == location["id"]
    assert loc_me["location_role"] == "admin"
    assert loc_me["tier"] == "pro"
    assert "users:write" not in loc_me["permissions"]
    assert "audit:read" in loc_me["permissions"]


# -- location tokens ---------------------------------------------------------------------------------------
async def test_an_owner_gets_a_token_for_any_agency_location(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)
    location = await create_location(api, account.headers)

    headers = await location_token(api, account.headers, location["id"])

    current = await api.get(f"{API}/location", headers=headers)
    assert current.status_code == 200, current.text
    assert current.json()["id"] == location["id"]


async def test_an_agency_user_needs_a_grant(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)
    granted = await create_location(api, account.headers)
    not_granted = await create_location(api, account.headers)
    user = await create_user(api, account.headers, grants=[{"location_id": granted["id"], "role": "user"}])
    tokens = await log_in(api, user["email"])
    user_headers = bearer(tokens["access_token"])

    headers = await location_token(api, user_headers, granted["id"])
    me = (await api.get(f"{API}/auth/me", headers=headers)).json()
    assert me["location_role"] == "user"

    refused = await api.post(
        f"{API}/auth/location-token", json={"location_id": not_granted["id"]}, headers=user_headers
    )
    assert_problem(refused, 404)


async def test_a_deleted_locations_tokens_and_keys_stop_working_at_once(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)
    location = await create_location(api, account.headers)
    loc_headers = await location_token(api, account.headers, location["id"])
    key = bearer((await create_api_key(api, loc_headers))["key"])
    for headers in (loc_headers, key):
        assert (await api.get(f"{API}/location", headers=headers)).status_code == 200

    deleted = await api.delete(f"{API}/locations/{location['id']}", headers=account.headers)
    assert deleted.status_code == 204, deleted.text

    for headers in (loc_headers, key):
        assert_problem(await api.get(f"{API}/location", headers=headers), 401, "unauthenticated")
        assert_problem(await api.post(f"{API}/contacts", json={"first_name": "Z"}, headers=headers), 401)


async def test_a_downgraded_tier_applies_to_a_location_token_at_once(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)
    location = await create_location(api, account.headers, tier="enterprise")
    loc_headers = await location_token(api, account.headers, location["id"])
    assert (await api.get(f"{API}/auth/me", headers=loc_headers)).json()["tier"] == "enterprise"

    changed = await api.patch(
        f"{API}/locations/{location['id']}", json={"tier": "free"}, headers=account.headers
    )
    assert changed.status_code == 200, changed.text

    me = await api.get(f"{API}/auth/me", headers=loc_headers)
    assert me.status_code == 200, me.text
    assert me.json()["tier"] == "free"  # the tier the gate limits by


async def test_another_agencys_location_is_not_found(api: httpx.AsyncClient, tenant: Tenant) -> None:
    account = await sign_up(api)

    for location_id in (str(tenant.location_id), str(uuid.uuid4())):
        response = await api.post(
            f"{API}/auth/location-token", json={"location_id": location_id}, headers=account.headers
        )
        assert_problem(response, 404)


async def test_a_location_token_cannot_mint_another(api: httpx.AsyncClient, tenant: Tenant) -> None:
    account = await sign_up(api)
    location = await create_location(api, account.headers)
    headers = await location_token(api, account.headers, location["id"])

    for credential in (headers, tenant.headers):
        response = await api.post(
            f"{API}/auth/location-token", json={"location_id": location["id"]}, headers=credential
        )
        assert_problem(response, 403)


# -- bad bearer credentials ----------------------------------------------------------------------------------
async def test_an_expired_access_token_is_401(api: httpx.AsyncClient, container: Container) -> None:
    account = await sign_up(api)
    past = JwtAccessTokenCodec(container.secret_key(), clock=FixedClock(datetime(2020, 1, 1, tzinfo=UTC)))
    claims = AccessClaims(
        user_id=uuid.UUID(account.user_id),
        agency_id=uuid.UUID(account.agency_id),
        agency_role=AgencyRole.OWNER,
    )

    response = await api.get(f"{API}/auth/me", headers=bearer(past.issue(claims)))

    body = assert_problem(response, 401)
    assert "expired" in body["detail"]
    assert response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer garbage",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad-signature",
        "Bearer ghl_not_a_real_key",
        "Basic dXNlcjpwYXNz",
        "",
    ],
)
async def test_a_bad_credential_is_401(api: httpx.AsyncClient, authorization: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = await api.get(f"{API}/auth/me", headers=headers)

    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_a_token_signed_with_another_key_is_401(api: httpx.AsyncClient) -> None:
    account = await sign_up(api)
    forger = JwtAccessTokenCodec("x" * 64, clock=FixedClock(datetime.now(UTC)))
    claims = AccessClaims(
        user_id=uuid.UUID(account.user_id),
        agency_id=uuid.UUID(account.agency_id),
        agency_role=AgencyRole.OWNER,
    )

    assert_problem(await api.get(f"{API}/auth/me", headers=bearer(forger.issue(claims))), 401)
