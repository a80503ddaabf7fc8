"""Location endpoints: the current location, its API keys and its audit log."""

from __future__ import annotations

import uuid

import httpx
import pytest

from http_kit import (
    API,
    Account,
    Tenant,
    assert_problem,
    bearer,
    create_api_key,
    create_location,
    create_user,
    location_token,
    log_in,
    pointers,
)


# -- the current location -----------------------------------------------------------------------------
async def test_current_location_with_an_api_key(api: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await api.get(f"{API}/location", headers=tenant.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(tenant.location_id)
    assert body["agency_id"] == str(tenant.agency_id)
    assert body["timezone"] == "America/Chicago"
    assert body["tier"] == "enterprise"


async def test_current_location_with_a_location_token(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers)
    headers = await location_token(api, owner.headers, location["id"])

    response = await api.get(f"{API}/location", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json() == location


async def test_an_agency_token_is_told_to_use_a_location_credential(
    api: httpx.AsyncClient, owner: Account
) -> None:
    for path in ("/location", "/api-keys", "/audit-log"):
        body = assert_problem(await api.get(f"{API}{path}", headers=owner.headers), 403, "permission_denied")
        assert "location" in body["detail"]
        assert "location-token" in body["detail"]


async def test_a_location_token_stops_working_when_its_location_is_deleted(
    api: httpx.AsyncClient, owner: Account
) -> None:
    location = await create_location(api, owner.headers)
    headers = await location_token(api, owner.headers, location["id"])
    await api.delete(f"{API}/locations/{location['id']}", headers=owner.headers)

    # Refused as a credential (the token's liveness check), before any look-up could answer 404.
    assert_problem(await api.get(f"{API}/location", headers=headers), 401)


# -- API keys ------------------------------------------------------------------------------------------
async def test_an_api_key_is_shown_once_and_listed_by_prefix(api: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_api_key(api, tenant.headers, scopes=["contacts:read"], name="Zapier")

    secret = created["key"]
    assert secret.startswith("ghl_")
    assert secret.startswith(created["prefix"])
    assert len(created["prefix"]) < len(secret)
    assert created["scopes"] == ["contacts:read"]
    assert created["location_id"] == str(tenant.location_id)
    listed = await api.get(f"{API}/api-keys", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    [mine] = [item for item in listed.json()["items"] if item["id"] == created["id"]]
    assert mine["prefix"] == created["prefix"]
    assert mine["name"] == "Zapier"
    assert "key" not in mine
    assert secret not in listed.text
    assert "hash" not in listed.text
    # The secret works, and its use is recorded.
    me = await api.get(f"{API}/auth/me", headers=bearer(secret))
    assert me.json()["permissions"] == ["contacts:read"]
    listed_again = (await api.get(f"{API}/api-keys", headers=tenant.headers)).json()["items"]
    assert next(item for item in listed_again if item["id"] == created["id"])["last_used_at"]


async def test_no_scopes_means_every_scope_of_the_creator(api: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_api_key(api, tenant.headers)

    me = (await api.get(f"{API}/auth/me", headers=tenant.headers)).json()
    assert created["scopes"] == me["permissions"]


async def test_a_key_without_apikeys_write_cannot_create_keys(api: httpx.AsyncClient, tenant: Tenant) -> None:
    weak = await create_api_key(api, tenant.headers, scopes=["apikeys:read", "contacts:read"])

    response = await api.post(f"{API}/api-keys", json={"name": "more"}, headers=bearer(weak["key"]))

    body = assert_problem(response, 403, "permission_denied")
    assert "apikeys:write" in body["detail"]
    assert (await api.get(f"{API}/api-keys", headers=bearer(weak["key"]))).status_code == 200


async def test_a_key_cannot_grant_scopes_it_lacks(api: httpx.AsyncClient, tenant: Tenant) -> None:
    limited = await create_api_key(api, tenant.headers, scopes=["apikeys:write", "contacts:read"])

    response = await api.post(
        f"{API}/api-keys",
        json={"name": "escalate", "scopes": ["contacts:read", "contacts:write"]},
        headers=bearer(limited["key"]),
    )

    body = assert_problem(response, 422)
    assert pointers(body) == ["/scopes"]
    assert "contacts:write" in body["detail"]
    # Leaving scopes out asks for every scope, which it lacks too.
    assert_problem(
        await api.post(f"{API}/api-keys", json={"name": "all"}, headers=bearer(limited["key"])), 422
    )
    subset = await create_api_key(api, bearer(limited["key"]), scopes=["contacts:read"])
    assert subset["scopes"] == ["contacts:read"]


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["contacts:fly"], ["/scopes/0"]),
        (["contacts:read", "nope", "users:write"], ["/scopes/1", "/scopes/2"]),
        ([], ["/scopes"]),
    ],
)
async def test_bad_scopes(
    api: httpx.AsyncClient, tenant: Tenant, scopes: list[str], expected: list[str]
) -> None:
    response = await api.post(f"{API}/api-keys", json={"name": "k", "scopes": scopes}, headers=tenant.headers)

    assert pointers(assert_problem(response, 422)) == expected


async def test_revoke_a_key(api: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_api_key(api, tenant.headers)
    assert (await api.get(f"{API}/location", headers=bearer(created["key"]))).status_code == 200

    response = await api.delete(f"{API}/api-keys/{created['id']}", headers=tenant.headers)

    assert response.status_code == 204, response.text
    refused = await api.get(f"{API}/location", headers=bearer(created["key"]))
    assert_problem(refused, 401)
    assert refused.headers["www-authenticate"]
    listed = (await api.get(f"{API}/api-keys", headers=tenant.headers)).json()["items"]
    assert created["id"] not in [item["id"] for item in listed]
    with_revoked = await api.get(
        f"{API}/api-keys", params={"include_revoked": "true"}, headers=tenant.headers
    )
    [revoked] = [item for item in with_revoked.json()["items"] if item["id"] == created["id"]]
    assert revoked["revoked_at"]


async def test_another_locations_key_is_404(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await create_api_key(api, other_tenant.headers)

    assert_problem(await api.delete(f"{API}/api-keys/{theirs['id']}", headers=tenant.headers), 404)
    assert_problem(await api.delete(f"{API}/api-keys/{uuid.uuid4()}", headers=tenant.headers), 404)
    assert (await api.get(f"{API}/location", headers=bearer(theirs["key"]))).status_code == 200
    listed = (await api.get(f"{API}/api-keys", headers=tenant.headers)).json()["items"]
    assert theirs["id"] not in [item["id"] for item in listed]


async def test_a_location_user_cannot_manage_keys(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers)
    user = await create_user(api, owner.headers, grants=[{"location_id": location["id"], "role": "user"}])
    user_token = bearer((await log_in(api, user["email"]))["access_token"])
    headers = await location_token(api, user_token, location["id"])

    assert (await api.get(f"{API}/location", headers=headers)).status_code == 200
    assert_problem(await api.get(f"{API}/api-keys", headers=headers), 403)
    assert_problem(await api.post(f"{API}/api-keys", json={"name": "k"}, headers=headers), 403)


async def test_a_location_admin_token_manages_keys(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers)
    headers = await location_token(api, owner.headers, location["id"])

    created = await create_api_key(api, headers, scopes=["locations:read"])

    assert created["location_id"] == location["id"]
    assert (await api.get(f"{API}/location", headers=bearer(created["key"]))).json()["id"] == location["id"]


# -- audit log -------------------------------------------------------------------------------------------
async def audit_rows(
    api: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> list[dict[str, object]]:
    response = await api.get(f"{API}/audit-log", params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_key_changes_are_audited(api: httpx.AsyncClient, tenant: Tenant) -> None:
    me = (await api.get(f"{API}/auth/me", headers=tenant.headers)).json()
    created = await create_api_key(api, tenant.headers, scopes=["contacts:read"])
    await api.delete(
        f"{API}/api-keys/{created['id']}", headers={**tenant.headers, "X-Request-ID": "revoke-1"}
    )

    rows = await audit_rows(api, tenant.headers, entity_id=created["id"])

    assert [row["action"] for row in rows] == ["revoke", "create"]
    revoke, create = rows
    for row in rows:
        assert row["entity_type"] == "api_key"
        assert row["actor_type"] == "api_key"
        assert row["actor_id"] == me["id"]
    assert create["before"] is None
    assert create["after"]["scopes"] == ["contacts:read"]  # type: ignore[index]
    assert revoke["before"]["revoked_at"] is None  # type: ignore[index]
    assert revoke["after"]["revoked_at"]  # type: ignore[index]
    assert revoke["request_id"] == "revoke-1"
    assert created["key"] not in str(rows)
    assert "hash" not in str(rows)


async def test_location_changes_are_audited(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers, name="Old Name")
    await api.patch(f"{API}/locations/{location['id']}", json={"name": "New Name"}, headers=owner.headers)
    headers = await location_token(api, owner.headers, location["id"])

    rows = await audit_rows(api, headers, entity_type="location")

    assert [row["action"] for row in rows] == ["update", "create"]
    update, create = rows
    assert update["actor_type"] == "user"
    assert update["actor_id"] == owner.user_id
    assert update["before"]["name"] == "Old Name"  # type: ignore[index]
    assert update["after"]["name"] == "New Name"  # type: ignore[index]
    assert create["before"] is None


async def test_the_audit_log_pages(api: httpx.AsyncClient, tenant: Tenant) -> None:
    for _ in range(3):
        await create_api_key(api, tenant.headers)

    first = (await api.get(f"{API}/audit-log", params={"limit": 2}, headers=tenant.headers)).json()
    second = (
        await api.get(
            f"{API}/audit-log", params={"limit": 2, "cursor": first["next_cursor"]}, headers=tenant.headers
        )
    ).json()

    ids = [row["id"] for row in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 4  # of five: the location, the fixture's key and three more
    assert second["next_cursor"]
    times = [row["created_at"] for row in first["items"] + second["items"]]
    assert times == sorted(times, reverse=True)


async def test_reading_the_audit_log_needs_audit_read(api: httpx.AsyncClient, tenant: Tenant) -> None:
    weak = await create_api_key(api, tenant.headers, scopes=["contacts:read"])

    body = assert_problem(await api.get(f"{API}/audit-log", headers=bearer(weak["key"])), 403)
    assert "audit:read" in body["detail"]


async def test_a_location_user_cannot_read_the_audit_log(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers)
    user = await create_user(api, owner.headers, grants=[{"location_id": location["id"], "role": "user"}])
    user_token = bearer((await log_in(api, user["email"]))["access_token"])
    headers = await location_token(api, user_token, location["id"])

    assert_problem(await api.get(f"{API}/audit-log", headers=headers), 403)

    # A location admin may.
    admin = await create_user(api, owner.headers, grants=[{"location_id": location["id"], "role": "admin"}])
    admin_token = bearer((await log_in(api, admin["email"]))["access_token"])
    assert await audit_rows(api, await location_token(api, admin_token, location["id"]))


async def test_tenants_never_see_each_others_audit_rows(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await create_api_key(api, tenant.headers)
    theirs = await create_api_key(api, other_tenant.headers)

    my_rows = await audit_rows(api, tenant.headers, limit="100")
    their_rows = await audit_rows(api, other_tenant.headers, limit="100")

    my_entities = {row["entity_id"] for row in my_rows}
    their_entities = {row["entity_id"] for row in their_rows}
    assert {str(tenant.location_id), mine["id"]} <= my_entities
    assert {str(other_tenant.location_id), theirs["id"]} <= their_entities
    assert not my_entities & their_entities
    assert await audit_rows(api, tenant.headers, entity_id=theirs["id"]) == []
