"""Idempotency-Key on POST: replays, mismatches, concurrent duplicates, and keys per credential."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx

from ghl_adapters.container import Container
from ghl_core.tenancy.permissions import Actor
from ghl_http.gate import ApiGate
from http_kit import API, Tenant, assert_problem, bearer


def with_key(tenant: Tenant, key: str) -> dict[str, str]:
    return {**tenant.headers, "Idempotency-Key": key}


async def key_names(api: httpx.AsyncClient, tenant: Tenant) -> list[str]:
    response = await api.get(f"{API}/api-keys", params={"limit": 100}, headers=tenant.headers)
    return [item["name"] for item in response.json()["items"]]


async def test_a_repeat_returns_the_stored_response(api: httpx.AsyncClient, tenant: Tenant) -> None:
    key = uuid.uuid4().hex
    payload = {"name": "once", "scopes": ["contacts:read"]}

    first = await api.post(f"{API}/api-keys", json=payload, headers=with_key(tenant, key))
    second = await api.post(f"{API}/api-keys", json=payload, headers=with_key(tenant, key))

    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.json() == first.json()
    assert (await key_names(api, tenant)).count("once") == 1


async def test_the_same_key_with_another_body_is_refused(api: httpx.AsyncClient, tenant: Tenant) -> None:
    key = uuid.uuid4().hex
    first = await api.post(f"{API}/api-keys", json={"name": "a"}, headers=with_key(tenant, key))
    assert first.status_code == 201

    response = await api.post(f"{API}/api-keys", json={"name": "b"}, headers=with_key(tenant, key))

    assert_problem(response, 422, "idempotency_key_reused")
    assert "b" not in await key_names(api, tenant)


async def test_the_same_key_on_another_endpoint_is_refused(api: httpx.AsyncClient, tenant: Tenant) -> None:
    key = uuid.uuid4().hex
    await api.post(f"{API}/api-keys", json={"name": "a"}, headers=with_key(tenant, key))

    response = await api.post(f"{API}/auth/location-token", json={"name": "a"}, headers=with_key(tenant, key))

    assert_problem(response, 422)


async def test_concurrent_duplicates_create_one_resource(api: httpx.AsyncClient, tenant: Tenant) -> None:
    key = uuid.uuid4().hex
    payload = {"name": "raced"}

    responses = await asyncio.gather(
        *(api.post(f"{API}/api-keys", json=payload, headers=with_key(tenant, key)) for _ in range(4))
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(201) >= 1, [r.text for r in responses]
    assert set(statuses) <= {201, 409}
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "idempotency_key_in_progress")
    assert (await key_names(api, tenant)).count("raced") == 1
    # Once the first one has finished, a retry replays it.
    retry = await api.post(f"{API}/api-keys", json=payload, headers=with_key(tenant, key))
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] in created


async def test_a_client_error_is_stored_and_replayed(api: httpx.AsyncClient, tenant: Tenant) -> None:
    key = uuid.uuid4().hex
    payload = {"name": "bad", "scopes": ["nope"]}

    first = await api.post(f"{API}/api-keys", json=payload, headers=with_key(tenant, key))
    second = await api.post(f"{API}/api-keys", json=payload, headers=with_key(tenant, key))

    assert_problem(first, 422)
    assert_problem(second, 422)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()


async def test_keys_are_per_credential(
    api: httpx.AsyncClient, container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    key = uuid.uuid4().hex
    _, second_secret = await container.api_keys().create(
        Actor.operator(), "second", location_id=tenant.location_id
    )
    payload = {"name": "shared-key"}

    mine = await api.post(f"{API}/api-keys", json=payload, headers=with_key(tenant, key))
    theirs = await api.post(f"{API}/api-keys", json=payload, headers=with_key(other_tenant, key))
    sibling = await api.post(
        f"{API}/api-keys", json=payload, headers={**bearer(second_secret), "Idempotency-Key": key}
    )

    for response in (mine, theirs, sibling):
        assert response.status_code == 201, response.text
        assert "idempotent-replayed" not in response.headers
    assert len({mine.json()["id"], theirs.json()["id"], sibling.json()["id"]}) == 3
    assert theirs.json()["location_id"] == str(other_tenant.location_id)


async def test_an_overlong_key_is_400(api: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await api.post(f"{API}/api-keys", json={"name": "x"}, headers=with_key(tenant, "k" * 256))

    assert_problem(response, 400)
    assert "x" not in await key_names(api, tenant)


async def test_the_header_is_ignored_on_other_methods(api: httpx.AsyncClient, tenant: Tenant) -> None:
    created = (await api.post(f"{API}/api-keys", json={"name": "gone"}, headers=tenant.headers)).json()
    key = uuid.uuid4().hex

    first = await api.delete(f"{API}/api-keys/{created['id']}", headers=with_key(tenant, key))
    second = await api.get(f"{API}/api-keys", headers=with_key(tenant, key))

    assert first.status_code == 204
    assert second.status_code == 200
    assert "idempotent-replayed" not in second.headers


async def test_a_server_error_is_not_stored(container: Container, tenant: Tenant) -> None:
    """Through the gate itself, around an app that fails once: the retry runs again."""
    calls: list[bytes] = []

    async def flaky(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        calls.append(body)
        status = 500 if len(calls) == 1 else 201
        payload = json.dumps({"call": len(calls)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    gate = ApiGate(
        flaky,
        authenticate=container.auth().authenticate,
        rate_limiter=container.rate_limiter(),
        idempotency=container.idempotency(),
        max_body_bytes=container.settings().max_body_bytes,
    )
    transport = httpx.ASGITransport(app=gate)
    key = uuid.uuid4().hex
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
        failed = await client.post(f"{API}/anything", json={"a": 1}, headers=with_key(tenant, key))
        retried = await client.post(f"{API}/anything", json={"a": 1}, headers=with_key(tenant, key))
        replayed = await client.post(f"{API}/anything", json={"a": 1}, headers=with_key(tenant, key))

    assert failed.status_code == 500
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert retried.json() == {"call": 2}
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == {"call": 2}
    assert calls == [b'{"a":1}', b'{"a":1}']
