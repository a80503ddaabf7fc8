"""Inbound webhooks through the API: endpoints managed under /api/v1/inbound-webhooks, and senders posting
to /webhooks/inbound/{id} signed per the Standard Webhooks spec (signed here with its reference library)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from ghl_adapters.container import Container
from ghl_adapters.inbound.jobs import inbound_kind
from ghl_core.inbound.endpoints import RECEIVED_EVENT
from ghl_core.jobs.ports import JobContext
from ghl_core.shared.ratelimit import RateLimitPolicy
from ghl_http import receiving
from http_kit import API, Tenant, assert_problem, open_api
from jobs_kit import run_jobs

HOOKS = f"{API}/inbound-webhooks"


async def new_endpoint(api: httpx.AsyncClient, tenant: Tenant, name: str = "Lead form") -> dict[str, Any]:
    response = await api.post(HOOKS, headers=tenant.headers, json={"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def signed(secret: str, body: bytes, msg_id: str | None = None, at: datetime | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
        "content-type": "application/json",
    }


def receive_path(endpoint_id: str) -> str:
    return f"/webhooks/inbound/{endpoint_id}"


async def scalar(container: Container, sql: str, **params: Any) -> Any:
    async with container.engines().owner.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def stored(container: Container, endpoint_id: str) -> int:
    return int(
        await scalar(container, "SELECT count(*) FROM inbound_events WHERE endpoint_id = :e", e=endpoint_id)
    )


async def jobs_for(container: Container, event_id: str) -> int:
    return int(
        await scalar(
            container,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'inbound.process' "
            "AND args ->> 'event_id' = :e",
            e=event_id,
        )
    )


async def test_an_endpoint_shows_its_secret_once(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    created = await new_endpoint(api, tenant)
    assert created["secret"].startswith("whsec_")
    assert created["url"].endswith(receive_path(created["id"]))
    assert created["secret_hint"] == created["secret"][:10]

    shown = (await api.get(f"{HOOKS}/{created['id']}", headers=tenant.headers)).json()
    assert "secret" not in shown
    assert shown["name"] == "Lead form"
    listed = (await api.get(HOOKS, headers=tenant.headers)).json()
    assert [e["id"] for e in listed["items"]] == [created["id"]]
    # Sealed at rest: the stored bytes are not the secret.
    sealed = await scalar(
        container, "SELECT secret_ciphertext FROM inbound_endpoints WHERE id = :e", e=created["id"]
    )
    assert created["secret"].encode() not in bytes(sealed)


async def test_a_signed_webhook_is_stored_and_queued_once(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    endpoint = await new_endpoint(api, tenant)
    body = json.dumps({"type": "lead.created", "lead": {"name": "Ann"}}).encode()
    headers = signed(endpoint["secret"], body, msg_id="msg_1")

    response = await api.post(
        receive_path(endpoint["id"]), content=body, headers={**headers, "Authorization": "Basic eDp5"}
    )
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert receipt["duplicate"] is False
    assert await jobs_for(container, receipt["id"]) == 1

    event = (await api.get(f"{HOOKS}/{endpoint['id']}/events/{receipt['id']}", headers=tenant.headers)).json()
    assert event["status"] == "received"
    assert event["provider_event_id"] == "msg_1"
    assert event["type"] == "lead.created"
    assert event["json_body"] == {"type": "lead.created", "lead": {"name": "Ann"}}
    assert event["size"] == len(body)
    assert "authorization" not in event["headers"]
    assert event["headers"]["webhook-id"] == "msg_1"

    again = await api.post(receive_path(endpoint["id"]), content=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json() == {"id": receipt["id"], "duplicate": True}
    assert await stored(container, endpoint["id"]) == 1
    assert await jobs_for(container, receipt["id"]) == 1


async def test_concurrent_deliveries_of_one_webhook_id_store_one_event_and_one_job(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    endpoint = await new_endpoint(api, tenant)
    body = b'{"n": 1}'
    headers = signed(endpoint["secret"], body)

    responses = await asyncio.gather(
        *(api.post(receive_path(endpoint["id"]), content=body, headers=headers) for _ in range(6))
    )

    assert sorted(r.status_code for r in responses) == [200] * 5 + [202]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert await stored(container, endpoint["id"]) == 1
    assert await jobs_for(container, ids.pop()) == 1


def _stale(secret: str, body: bytes) -> dict[str, str]:
    return signed(secret, body, at=datetime.now(UTC) - timedelta(minutes=10))


def _tampered(secret: str, body: bytes) -> dict[str, str]:
    return signed(secret, body + b" ")


def _other_secret(secret: str, body: bytes) -> dict[str, str]:
    return signed("whsec_" + "QUJD" * 8, body)


def _missing(secret: str, body: bytes) -> dict[str, str]:
    headers = signed(secret, body)
    del headers["webhook-signature"]
    return headers


def _malformed(secret: str, body: bytes) -> dict[str, str]:
    return {**signed(secret, body), "webhook-signature": "garbage"}


@pytest.mark.parametrize("make", [_stale, _tampered, _other_secret, _missing, _malformed])
async def test_a_webhook_that_does_not_verify_is_refused_and_not_stored(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, make: Any
) -> None:
    endpoint = await new_endpoint(api, tenant)
    body = b'{"x": 1}'
    response = await api.post(
        receive_path(endpoint["id"]), content=body, headers=make(endpoint["secret"], body)
    )
    assert_problem(response, 401, "signature_invalid")
    assert "www-authenticate" not in response.headers
    assert await stored(container, endpoint["id"]) == 0


async def test_a_body_that_is_not_utf8_is_refused(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    endpoint = await new_endpoint(api, tenant)
    headers = signed(endpoint["secret"], b"ok")
    response = await api.post(receive_path(endpoint["id"]), content=b"\xff\xfe", headers=headers)
    assert_problem(response, 401, "signature_invalid")
    assert await stored(container, endpoint["id"]) == 0


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        (b'{"type": "lead.created", "lead": {"name": "A\\u0000n"}}', 422, "/lead/name"),
        (b'{"a\\u0000b": 1}', 422, "/a\x00b"),
        (b'{"x": ' + b"[" * 100 + b"]" * 100 + b"}", 400, None),
    ],
    ids=["nul-value", "nul-name", "too-deep"],
)
async def test_a_signed_body_no_job_could_store_is_refused_at_receipt(
    api: httpx.AsyncClient,
    tenant: Tenant,
    container: Container,
    body: bytes,
    status: int,
    pointer: str | None,
) -> None:
    # Accepted (202), such a body failed its processing job on every retry.
    endpoint = await new_endpoint(api, tenant)

    response = await api.post(
        receive_path(endpoint["id"]), content=body, headers=signed(endpoint["secret"], body)
    )

    problem = assert_problem(response, status)
    if pointer:
        assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert await stored(container, endpoint["id"]) == 0


async def test_unknown_disabled_and_deleted_endpoints_are_not_found(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    body = b"{}"
    assert_problem(
        await api.post(receive_path(str(uuid.uuid4())), content=body, headers=signed("whsec_QUJD", body)), 404
    )
    assert_problem(await api.post("/webhooks/inbound/not-a-uuid", content=body), 404)

    endpoint = await new_endpoint(api, tenant)
    path = receive_path(endpoint["id"])
    patched = await api.patch(f"{HOOKS}/{endpoint['id']}", headers=tenant.headers, json={"enabled": False})
    assert patched.json()["enabled"] is False
    assert_problem(await api.post(path, content=body, headers=signed(endpoint["secret"], body)), 404)

    await api.patch(f"{HOOKS}/{endpoint['id']}", headers=tenant.headers, json={"enabled": True})
    assert (await api.post(path, content=body, headers=signed(endpoint["secret"], body))).status_code == 202

    deleted = await api.delete(f"{HOOKS}/{endpoint['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert_problem(await api.post(path, content=body, headers=signed(endpoint["secret"], body)), 404)
    assert_problem(await api.get(f"{HOOKS}/{endpoint['id']}", headers=tenant.headers), 404)
    assert await stored(container, endpoint["id"]) == 1


async def test_an_oversized_body_is_refused_and_not_stored(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    endpoint = await new_endpoint(api, tenant)
    body = b'"' + b"x" * container.settings().max_body_bytes + b'"'
    response = await api.post(
        receive_path(endpoint["id"]), content=body, headers=signed(endpoint["secret"], body)
    )
    assert_problem(response, 413, "payload_too_large")
    assert await stored(container, endpoint["id"]) == 0


async def test_a_streamed_oversized_body_is_refused(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    endpoint = await new_endpoint(api, tenant)
    limit = container.settings().max_body_bytes

    async def chunks() -> Any:  # no content-length: the size is only known while reading
        for _ in range(3):
            yield b"x" * (limit // 2 + 1)

    response = await api.post(receive_path(endpoint["id"]), content=chunks(), headers={"webhook-id": "m"})
    assert_problem(response, 413, "payload_too_large")
    assert await stored(container, endpoint["id"]) == 0


async def test_rotating_the_secret_stops_the_old_one(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    endpoint = await new_endpoint(api, tenant)
    rotated = await api.post(f"{HOOKS}/{endpoint['id']}/rotate-secret", headers=tenant.headers)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    assert rotated.json()["secret_rotated_at"] is not None

    body = b"{}"
    path = receive_path(endpoint["id"])
    assert_problem(await api.post(path, content=body, headers=signed(endpoint["secret"], body)), 401)
    assert (await api.post(path, content=body, headers=signed(new_secret, body))).status_code == 202


async def test_another_locations_endpoints_and_events_are_not_found(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    endpoint = await new_endpoint(api, tenant)
    body = b"{}"
    receipt = (
        await api.post(receive_path(endpoint["id"]), content=body, headers=signed(endpoint["secret"], body))
    ).json()
    base = f"{HOOKS}/{endpoint['id']}"
    for method, path in (
        ("GET", base),
        ("PATCH", base),
        ("DELETE", base),
        ("POST", f"{base}/rotate-secret"),
        ("GET", f"{base}/events"),
        ("GET", f"{base}/events/{receipt['id']}"),
    ):
        response = await api.request(
            method, path, headers=other_tenant.headers, json={} if method == "PATCH" else None
        )
        assert_problem(response, 404)
    assert (await api.get(HOOKS, headers=other_tenant.headers)).json()["items"] == []
    # An event read through another of the location's own endpoints is not found either.
    second = await new_endpoint(api, tenant, "Second")
    assert_problem(
        await api.get(f"{HOOKS}/{second['id']}/events/{receipt['id']}", headers=tenant.headers), 404
    )


async def test_bad_management_input_is_a_problem(api: httpx.AsyncClient, tenant: Tenant) -> None:
    assert_problem(await api.post(HOOKS, headers=tenant.headers, json={"name": ""}), 422)
    assert_problem(await api.post(HOOKS, headers=tenant.headers, json={"name": "x", "bogus": 1}), 422)
    assert_problem(await api.get(HOOKS), 401)


async def test_processing_records_one_inbound_webhook_received_event_even_when_run_twice(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    endpoint = await new_endpoint(api, tenant)
    body = json.dumps({"lead": "Ann"}).encode()
    receipt = (
        await api.post(
            receive_path(endpoint["id"]),
            content=body,
            headers={**signed(endpoint["secret"], body), "webhook-event-type": "lead.created"},
        )
    ).json()

    await run_jobs(container, queues=["inbound"])
    ctx = JobContext(
        job_id=0, kind="inbound.process", attempt=1, max_attempts=1, location_id=tenant.location_id
    )
    await inbound_kind(inbound=container.inbound()).handler(
        ctx, {"event_id": receipt["id"]}
    )  # a rerun changes nothing

    rows = await scalar(
        container,
        "SELECT json_agg(payload) FROM domain_events WHERE type = :t AND entity_id = :e",
        t=RECEIVED_EVENT,
        e=endpoint["id"],
    )
    assert len(rows) == 1
    after = rows[0]["after"]
    assert after["body"] == {"lead": "Ann"}
    assert after["event_type"] == "lead.created"
    assert after["inbound_event_id"] == receipt["id"]
    event = (await api.get(f"{HOOKS}/{endpoint['id']}/events/{receipt['id']}", headers=tenant.headers)).json()
    assert event["status"] == "processed"
    assert event["attempts"] == 1
    assert event["processed_at"] is not None
    listed = await api.get(
        f"{HOOKS}/{endpoint['id']}/events", headers=tenant.headers, params={"status": "processed"}
    )
    assert [e["id"] for e in listed.json()["items"]] == [receipt["id"]]
    actor = await scalar(
        container,
        "SELECT actor_type FROM audit_log WHERE entity_id = :e AND action = 'receive'",
        e=endpoint["id"],
    )
    assert actor == "system"


async def test_the_receiving_url_is_limited_per_client_address(
    container: Container, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receiving, "CLIENT_LIMIT", RateLimitPolicy(per_minute=1, burst=2))
    async with open_api(container) as api:
        endpoint = await new_endpoint(api, tenant)
        body = b"{}"
        statuses = [
            (
                await api.post(
                    receive_path(endpoint["id"]), content=body, headers=signed(endpoint["secret"], body)
                )
            ).status_code
            for _ in range(3)
        ]
        assert statuses[:2] == [202, 202]
        limited = await api.post(
            receive_path(endpoint["id"]), content=body, headers=signed(endpoint["secret"], body)
        )
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
    assert statuses[2] == 429
