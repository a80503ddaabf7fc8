"""Agency endpoints with an agency-level user token: locations, users and their location grants."""

from __future__ import annotations

import uuid

import httpx
import pytest

from http_kit import (
    API,
    PASSWORD,
    Account,
    Tenant,
    assert_problem,
    bearer,
    create_location,
    create_user,
    location_token,
    log_in,
    pointers,
    sign_up,
    unique_email,
)


# -- locations ---------------------------------------------------------------------------------------
async def test_create_and_get_a_location(api: httpx.AsyncClient, owner: Account) -> None:
    created = await create_location(api, owner.headers, name="Downtown", country="gb", tier="pro")

    assert created["agency_id"] == owner.agency_id
    assert created["country"] == "GB"
    assert created["tier"] == "pro"
    assert created["timezone"] == "America/New_York"
    fetched = await api.get(f"{API}/locations/{created['id']}", headers=owner.headers)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == created


async def test_location_defaults(api: httpx.AsyncClient, owner: Account) -> None:
    response = await api.post(f"{API}/locations", json={"name": "Plain"}, headers=owner.headers)

    assert response.status_code == 201, response.text
    assert response.json()["timezone"] == "UTC"
    assert response.json()["tier"] == "free"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"name": "X", "timezone": "Mars/Olympus"}, ["/timezone"]),
        ({"name": "X", "country": "USA"}, ["/country"]),
        ({"name": "X", "tier": "platinum"}, ["/tier"]),
        ({"timezone": "UTC"}, ["/name"]),
        ({"name": "X", "colour": "red"}, ["/colour"]),
        ({"name": "  ", "timezone": "Nowhere", "country": "1"}, ["/country", "/name", "/timezone"]),
    ],
)
async def test_bad_location_fields(
    api: httpx.AsyncClient, owner: Account, payload: dict[str, str], expected: list[str]
) -> None:
    body = assert_problem(await api.post(f"{API}/locations", json=payload, headers=owner.headers), 422)

    assert pointers(body) == expected
    listed = await api.get(f"{API}/locations", headers=owner.headers)
    assert listed.json()["items"] == []


async def test_a_name_with_a_nul_character_is_refused_not_a_server_error(
    api: httpx.AsyncClient, owner: Account
) -> None:
    response = await api.post(f"{API}/locations", json={"name": "Bad\u0000Name"}, headers=owner.headers)

    assert pointers(assert_problem(response, 422)) == ["/name"]


async def test_a_nul_in_any_body_string_is_refused(api: httpx.AsyncClient, owner: Account) -> None:
    response = await api.post(
        f"{API}/users",
        json={"email": unique_email(), "name": "Uma", "clerk_user_id": "user_\u0000x"},
        headers=owner.headers,
    )

    assert pointers(assert_problem(response, 422)) == ["/clerk_user_id"]


async def test_list_locations_pages_with_cursor_and_offset(api: httpx.AsyncClient, owner: Account) -> None:
    created = [(await create_location(api, owner.headers))["id"] for _ in range(5)]

    first = (await api.get(f"{API}/locations", params={"limit": 2}, headers=owner.headers)).json()
    assert [item["id"] for item in first["items"]] == created[:2]
    assert first["next_cursor"]
    second = (
        await api.get(
            f"{API}/locations", params={"limit": 2, "cursor": first["next_cursor"]}, headers=owner.headers
        )
    ).json()
    assert [item["id"] for item in second["items"]] == created[2:4]
    third = (
        await api.get(
            f"{API}/locations", params={"limit": 2, "cursor": second["next_cursor"]}, headers=owner.headers
        )
    ).json()
    assert [item["id"] for item in third["items"]] == created[4:]
    assert third["next_cursor"] is None

    by_offset = (await api.get(f"{API}/locations", params={"offset": 3}, headers=owner.headers)).json()
    assert [item["id"] for item in by_offset["items"]] == created[3:]
    assert by_offset["next_cursor"] is None
    everything = (await api.get(f"{API}/locations", headers=owner.headers)).json()
    assert [item["id"] for item in everything["items"]] == created


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"limit": "0"}, "/limit"),
        ({"limit": "101"}, "/limit"),
        ({"limit": "-1"}, "/limit"),
        ({"offset": "-5"}, "/offset"),
        ({"cursor": "not-a-cursor!"}, "/cursor"),
        ({"cursor": "WyJ4Il0"}, "/cursor"),  # base64 of ["x"]: decodes, but is not one of ours
        ({"cursor": "WyJ4IiwieSJd"}, "/cursor"),  # ["x","y"]: the right shape, unparseable values
    ],
)
async def test_bad_paging_is_a_validation_problem(
    api: httpx.AsyncClient, owner: Account, params: dict[str, str], pointer: str
) -> None:
    response = await api.get(f"{API}/locations", params=params, headers=owner.headers)

    assert pointer in pointers(assert_problem(response, 422))


async def test_a_non_numeric_limit_is_a_problem(api: httpx.AsyncClient, owner: Account) -> None:
    response = await api.get(f"{API}/locations", params={"limit": "ten"}, headers=owner.headers)

    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


async def test_patch_a_location(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers, name="Before")

    response = await api.patch(
        f"{API}/locations/{location['id']}",
        json={"name": "After", "timezone": "Europe/Paris"},
        headers=owner.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "After"
    assert response.json()["timezone"] == "Europe/Paris"
    assert response.json()["country"] == location["country"]
    fetched = (await api.get(f"{API}/locations/{location['id']}", headers=owner.headers)).json()
    assert fetched["name"] == "After"


async def test_a_bad_patch_changes_nothing(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers, name="Kept")

    response = await api.patch(
        f"{API}/locations/{location['id']}",
        json={"name": "Lost", "timezone": "Not/AZone"},
        headers=owner.headers,
    )

    assert pointers(assert_problem(response, 422)) == ["/timezone"]
    fetched = (await api.get(f"{API}/locations/{location['id']}", headers=owner.headers)).json()
    assert fetched["name"] == "Kept"


async def test_delete_a_location(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers)

    response = await api.delete(f"{API}/locations/{location['id']}", headers=owner.headers)

    assert response.status_code == 204, response.text
    assert_problem(await api.get(f"{API}/locations/{location['id']}", headers=owner.headers), 404)
    assert_problem(await api.delete(f"{API}/locations/{location['id']}", headers=owner.headers), 404)
    listed = (await api.get(f"{API}/locations", headers=owner.headers)).json()
    assert location["id"] not in [item["id"] for item in listed["items"]]


async def test_another_agencys_location_is_404_never_403(
    api: httpx.AsyncClient, owner: Account, tenant: Tenant
) -> None:
    theirs = str(tenant.location_id)

    assert_problem(await api.get(f"{API}/locations/{theirs}", headers=owner.headers), 404)
    assert_problem(
        await api.patch(f"{API}/locations/{theirs}", json={"name": "Mine"}, headers=owner.headers), 404
    )
    assert_problem(await api.delete(f"{API}/locations/{theirs}", headers=owner.headers), 404)
    assert_problem(await api.get(f"{API}/locations/{uuid.uuid4()}", headers=owner.headers), 404)
    listed = (await api.get(f"{API}/locations", headers=owner.headers)).json()
    assert theirs not in [item["id"] for item in listed["items"]]
    # Still there for its owner.
    assert (await api.get(f"{API}/location", headers=tenant.headers)).json()["name"] == "Main Street"


async def test_an_api_key_cannot_use_agency_endpoints(api: httpx.AsyncClient, tenant: Tenant) -> None:
    calls = [
        api.post(f"{API}/locations", json={"name": "Nope"}, headers=tenant.headers),
        api.patch(f"{API}/locations/{tenant.location_id}", json={"name": "Nope"}, headers=tenant.headers),
        api.delete(f"{API}/locations/{tenant.location_id}", headers=tenant.headers),
        api.get(f"{API}/users", headers=tenant.headers),
        api.post(f"{API}/users", json={"email": unique_email(), "name": "Nope"}, headers=tenant.headers),
    ]
    for call in calls:
        assert_problem(await call, 403, "permission_denied")


async def test_a_location_token_cannot_use_agency_endpoints(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers)
    headers = await location_token(api, owner.headers, location["id"])

    assert_problem(await api.post(f"{API}/locations", json={"name": "Nope"}, headers=headers), 403)
    assert_problem(await api.get(f"{API}/users", headers=headers), 403)


# -- users -------------------------------------------------------------------------------------------
async def test_create_list_get_and_delete_users(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers)

    user = await create_user(
        api, owner.headers, role="agency_user", grants=[{"location_id": location["id"], "role": "admin"}]
    )

    assert user["agency_id"] == owner.agency_id
    assert user["locations"] == [{"location_id": location["id"], "role": "admin"}]
    assert "password" not in str(user)
    listed = (await api.get(f"{API}/users", headers=owner.headers)).json()
    assert [item["id"] for item in listed["items"]] == [owner.user_id, user["id"]]
    fetched = await api.get(f"{API}/users/{user['id']}", headers=owner.headers)
    assert fetched.json() == user

    deleted = await api.delete(f"{API}/users/{user['id']}", headers=owner.headers)
    assert deleted.status_code == 204, deleted.text
    assert_problem(await api.get(f"{API}/users/{user['id']}", headers=owner.headers), 404)
    assert_problem(
        await api.post(f"{API}/auth/login", json={"email": user["email"], "password": "x" * 12}), 401
    )


async def test_a_deleted_user_cannot_log_in(api: httpx.AsyncClient, owner: Account) -> None:
    user = await create_user(api, owner.headers)
    tokens = await log_in(api, user["email"])

    await api.delete(f"{API}/users/{user['id']}", headers=owner.headers)

    refreshed = await api.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(refreshed, 401)


async def test_a_removed_admins_access_token_stops_working_at_once(
    api: httpx.AsyncClient, owner: Account
) -> None:
    admin = await create_user(api, owner.headers, role="agency_admin")
    admin_headers = bearer((await log_in(api, admin["email"]))["access_token"])
    assert (await api.get(f"{API}/users", headers=admin_headers)).status_code == 200

    removed = await api.delete(f"{API}/users/{admin['id']}", headers=owner.headers)
    assert removed.status_code == 204, removed.text

    # Within the token's 15 minutes: the removed admin cannot make an account to come back with.
    created = await api.post(
        f"{API}/users",
        json={"email": unique_email(), "name": "Mallory", "role": "agency_admin", "password": PASSWORD},
        headers=admin_headers,
    )
    assert_problem(created, 401, "unauthenticated")
    assert_problem(await api.get(f"{API}/users", headers=admin_headers), 401)
    listed = (await api.get(f"{API}/users", headers=owner.headers)).json()
    assert [item["id"] for item in listed["items"]] == [owner.user_id]


async def test_a_demoted_admin_loses_the_admin_rights_at_once(api: httpx.AsyncClient, owner: Account) -> None:
    admin = await create_user(api, owner.headers, role="agency_admin")
    tokens = await log_in(api, admin["email"])

    demoted = await api.patch(
        f"{API}/users/{admin['id']}", json={"role": "agency_user"}, headers=owner.headers
    )
    assert demoted.status_code == 200, demoted.text

    stale = await api.post(
        f"{API}/users", json={"email": unique_email(), "name": "Nope"}, headers=bearer(tokens["access_token"])
    )
    assert_problem(stale, 401, "unauthenticated")
    # The session lives on: a refresh gives a token with the new role.
    refreshed = await api.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    fresh = bearer(refreshed.json()["access_token"])
    assert (await api.get(f"{API}/auth/me", headers=fresh)).json()["agency_role"] == "agency_user"
    assert_problem(
        await api.post(f"{API}/users", json={"email": unique_email(), "name": "Nope"}, headers=fresh), 403
    )


async def test_a_renamed_user_keeps_their_token(api: httpx.AsyncClient, owner: Account) -> None:
    user = await create_user(api, owner.headers)
    headers = bearer((await log_in(api, user["email"]))["access_token"])

    renamed = await api.patch(f"{API}/users/{user['id']}", json={"name": "Ursula"}, headers=owner.headers)
    assert renamed.status_code == 200, renamed.text

    assert (await api.get(f"{API}/auth/me", headers=headers)).status_code == 200


async def test_a_revoked_grant_ends_the_location_token_at_once(
    api: httpx.AsyncClient, owner: Account
) -> None:
    location = await create_location(api, owner.headers)
    user = await create_user(api, owner.headers, grants=[{"location_id": location["id"], "role": "admin"}])
    user_headers = bearer((await log_in(api, user["email"]))["access_token"])
    loc_headers = await location_token(api, user_headers, location["id"])
    assert (await api.get(f"{API}/location", headers=loc_headers)).status_code == 200

    revoked = await api.delete(f"{API}/users/{user['id']}/locations/{location['id']}", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text

    assert_problem(await api.get(f"{API}/location", headers=loc_headers), 401)
    assert_problem(await api.post(f"{API}/api-keys", json={"name": "back door"}, headers=loc_headers), 401)


async def test_a_duplicate_user_email_is_a_conflict(api: httpx.AsyncClient, owner: Account) -> None:
    email = unique_email()
    await create_user(api, owner.headers, email=email)

    response = await api.post(
        f"{API}/users", json={"email": email.upper(), "name": "Twin"}, headers=owner.headers
    )

    assert_problem(response, 409)


async def test_bad_user_fields(api: httpx.AsyncClient, owner: Account) -> None:
    response = await api.post(
        f"{API}/users",
        json={"email": "nope", "name": "Uma", "password": "short", "role": "agency_user"},
        headers=owner.headers,
    )

    assert pointers(assert_problem(response, 422)) == ["/email", "/password"]


async def test_a_grant_on_another_agencys_location_is_refused(
    api: httpx.AsyncClient, owner: Account, tenant: Tenant
) -> None:
    response = await api.post(
        f"{API}/users",
        json={
            "email": unique_email(),
            "name": "Uma",
            "locations": [{"location_id": str(tenant.location_id), "role": "admin"}],
        },
        headers=owner.headers,
    )

    body = assert_problem(response, 422)
    # The pointer names the field of the request body that was sent.
    assert pointers(body) == ["/locations/0/location_id"]
    listed = (await api.get(f"{API}/users", headers=owner.headers)).json()
    assert len(listed["items"]) == 1


async def test_patch_a_users_name_and_role(api: httpx.AsyncClient, owner: Account) -> None:
    user = await create_user(api, owner.headers)

    response = await api.patch(
        f"{API}/users/{user['id']}", json={"name": "Ada Admin", "role": "agency_admin"}, headers=owner.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Ada Admin"
    assert response.json()["role"] == "agency_admin"


async def test_an_admin_cannot_make_or_unmake_an_owner(api: httpx.AsyncClient, owner: Account) -> None:
    admin = await create_user(api, owner.headers, role="agency_admin")
    admin_headers = bearer((await log_in(api, admin["email"]))["access_token"])
    user = await create_user(api, admin_headers)

    promote = await api.patch(
        f"{API}/users/{user['id']}", json={"role": "agency_owner"}, headers=admin_headers
    )
    assert_problem(promote, 403, "permission_denied")
    demote = await api.patch(
        f"{API}/users/{owner.user_id}", json={"role": "agency_user"}, headers=admin_headers
    )
    assert_problem(demote, 403)
    assert_problem(await api.delete(f"{API}/users/{owner.user_id}", headers=admin_headers), 403)
    create_owner = await api.post(
        f"{API}/users",
        json={"email": unique_email(), "name": "O", "role": "agency_owner"},
        headers=admin_headers,
    )
    assert_problem(create_owner, 403)
    fetched = (await api.get(f"{API}/users/{user['id']}", headers=owner.headers)).json()
    assert fetched["role"] == "agency_user"
    # The owner may.
    ok = await api.patch(f"{API}/users/{user['id']}", json={"role": "agency_owner"}, headers=owner.headers)
    assert ok.status_code == 200, ok.text


async def test_an_owner_cannot_delete_themselves(api: httpx.AsyncClient, owner: Account) -> None:
    assert_problem(await api.delete(f"{API}/users/{owner.user_id}", headers=owner.headers), 409)


async def test_grant_and_revoke_a_location(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers)
    user = await create_user(api, owner.headers)
    tokens = await log_in(api, user["email"])
    user_headers = bearer(tokens["access_token"])
    refused = await api.post(
        f"{API}/auth/location-token", json={"location_id": location["id"]}, headers=user_headers
    )
    assert_problem(refused, 404)

    granted = await api.put(
        f"{API}/users/{user['id']}/locations/{location['id']}", json={"role": "admin"}, headers=owner.headers
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["locations"] == [{"location_id": location["id"], "role": "admin"}]
    await location_token(api, user_headers, location["id"])

    revoked = await api.delete(f"{API}/users/{user['id']}/locations/{location['id']}", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text
    assert (await api.get(f"{API}/users/{user['id']}", headers=owner.headers)).json()["locations"] == []
    # Taking a grant away ends the user's access tokens; a refreshed one no longer reaches the location.
    stale = await api.post(
        f"{API}/auth/location-token", json={"location_id": location["id"]}, headers=user_headers
    )
    assert_problem(stale, 401)
    refreshed = await api.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    again = await api.post(
        f"{API}/auth/location-token",
        json={"location_id": location["id"]},
        headers=bearer(refreshed.json()["access_token"]),
    )
    assert_problem(again, 404)
    assert_problem(
        await api.delete(f"{API}/users/{user['id']}/locations/{location['id']}", headers=owner.headers), 404
    )


async def test_grants_across_agencies_are_404(api: httpx.AsyncClient, owner: Account) -> None:
    other = await sign_up(api)
    their_location = await create_location(api, other.headers)
    their_user = await create_user(api, other.headers)
    my_location = await create_location(api, owner.headers)
    my_user = await create_user(api, owner.headers)

    cases = [
        api.put(
            f"{API}/users/{my_user['id']}/locations/{their_location['id']}",
            json={"role": "user"},
            headers=owner.headers,
        ),
        api.put(
            f"{API}/users/{their_user['id']}/locations/{my_location['id']}",
            json={"role": "user"},
            headers=owner.headers,
        ),
        api.get(f"{API}/users/{their_user['id']}", headers=owner.headers),
        api.patch(f"{API}/users/{their_user['id']}", json={"name": "Mine"}, headers=owner.headers),
        api.delete(f"{API}/users/{their_user['id']}", headers=owner.headers),
        api.get(f"{API}/users/{uuid.uuid4()}", headers=owner.headers),
    ]
    for case in cases:
        assert_problem(await case, 404)
    assert (await api.get(f"{API}/users/{their_user['id']}", headers=other.headers)).json()[
        "name"
    ] == "Uma User"


async def test_an_agency_user_sees_only_granted_locations(api: httpx.AsyncClient, owner: Account) -> None:
    granted = await create_location(api, owner.headers)
    hidden = await create_location(api, owner.headers)
    user = await create_user(api, owner.headers, grants=[{"location_id": granted["id"], "role": "user"}])
    headers = bearer((await log_in(api, user["email"]))["access_token"])

    listed = (await api.get(f"{API}/locations", headers=headers)).json()

    assert [item["id"] for item in listed["items"]] == [granted["id"]]
    assert (await api.get(f"{API}/locations/{granted['id']}", headers=headers)).status_code == 200
    assert_problem(await api.get(f"{API}/locations/{hidden['id']}", headers=headers), 404)
    assert_problem(await api.post(f"{API}/locations", json={"name": "Mine"}, headers=headers), 403)
    assert_problem(
        await api.patch(f"{API}/locations/{granted['id']}", json={"name": "Mine"}, headers=headers), 403
    )
    assert_problem(await api.get(f"{API}/users", headers=headers), 403)
    assert_problem(
        await api.post(f"{API}/users", json={"email": unique_email(), "name": "U"}, headers=headers), 403
    )


async def test_an_agency_user_pages_through_granted_locations_only(
    api: httpx.AsyncClient, owner: Account
) -> None:
    hidden = [await create_location(api, owner.headers) for _ in range(3)]
    granted = [await create_location(api, owner.headers) for _ in range(2)]
    user = await create_user(
        api, owner.headers, grants=[{"location_id": loc["id"], "role": "user"} for loc in granted]
    )
    headers = bearer((await log_in(api, user["email"]))["access_token"])

    first = (await api.get(f"{API}/locations", params={"limit": 2}, headers=headers)).json()

    # A full first page of what the user may see; the hidden locations take no room in it.
    assert [item["id"] for item in first["items"]] == [loc["id"] for loc in granted]
    assert hidden
