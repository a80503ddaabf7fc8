"""Every error is an RFC 9457 problem document, whatever produced it; every response has a request id."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from ghl_adapters.container import Container
from http_kit import API, Tenant, assert_problem

MAX_BODY = 1_048_576


def oversized_json() -> bytes:
    return b'{"name": "' + b"x" * (MAX_BODY + 10) + b'"}'


async def in_chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_the_body_limit_is_the_configured_one(container: Container) -> None:
    assert container.settings().max_body_bytes == MAX_BODY


async def test_an_unknown_route_is_404(api: httpx.AsyncClient, tenant: Tenant) -> None:
    body = assert_problem(await api.get(f"{API}/no-such-thing", headers=tenant.headers), 404)
    assert "/api/v1/no-such-thing" in body["detail"]
    assert_problem(await api.get("/no-such-thing"), 404)


async def test_an_unknown_api_route_without_a_credential_is_404(api: httpx.AsyncClient) -> None:
    # The gate runs for matched routes only: an unknown path is 404 whoever asks.
    assert_problem(await api.get(f"{API}/no-such-thing"), 404)


async def test_a_wrong_method_is_405(api: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await api.put(f"{API}/location", json={}, headers=tenant.headers)

    assert_problem(response, 405)
    assert "GET" in response.headers.get("allow", "GET")


async def test_a_wrong_method_on_a_public_path_is_405(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get(f"{API}/auth/login"), 405)


async def test_malformed_json_is_400(api: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await api.post(
        f"{API}/api-keys",
        content=b'{"name": ',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )

    assert_problem(response, 400)


async def test_malformed_json_on_sign_up_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post(
        f"{API}/auth/signup", content=b"[1, 2", headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 400)


async def test_a_json_body_of_the_wrong_shape_is_a_problem(api: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await api.post(f"{API}/api-keys", json=["name"], headers=tenant.headers)

    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code)


async def test_a_wrong_field_type_is_422_with_its_pointer(api: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await api.post(f"{API}/api-keys", json={"name": 12, "scopes": "all"}, headers=tenant.headers)

    body = assert_problem(response, 422, "validation_failed")
    assert sorted(error["pointer"] for error in body["errors"]) == ["/name", "/scopes"]


async def test_a_bad_path_id_is_a_problem(api: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await api.delete(f"{API}/api-keys/not-a-uuid", headers=tenant.headers)

    assert response.status_code in (400, 404, 422)
    assert_problem(response, response.status_code)


@pytest.mark.parametrize("idempotent", [False, True])
async def test_a_body_over_the_limit_is_413(api: httpx.AsyncClient, tenant: Tenant, idempotent: bool) -> None:
    headers = {**tenant.headers, "Content-Type": "application/json"}
    if idempotent:
        headers["Idempotency-Key"] = "too-big"

    response = await api.post(f"{API}/api-keys", content=oversized_json(), headers=headers)

    assert_problem(response, 413)
    listed = (await api.get(f"{API}/api-keys", headers=tenant.headers)).json()
    assert len(listed["items"]) == 1


@pytest.mark.parametrize("idempotent", [False, True])
async def test_a_chunked_body_over_the_limit_is_413(
    api: httpx.AsyncClient, tenant: Tenant, idempotent: bool
) -> None:
    headers = {**tenant.headers, "Content-Type": "application/json"}
    if idempotent:
        headers["Idempotency-Key"] = "too-big-chunked"
    request = api.build_request(
        "POST", f"{API}/api-keys", content=in_chunks(oversized_json()), headers=headers
    )
    assert "content-length" not in request.headers

    response = await api.send(request)

    assert_problem(response, 413)
    listed = (await api.get(f"{API}/api-keys", headers=tenant.headers)).json()
    assert len(listed["items"]) == 1


async def test_a_public_endpoint_refuses_an_oversized_body(api: httpx.AsyncClient) -> None:
    response = await api.post(
        f"{API}/auth/signup", content=oversized_json(), headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 413)


async def test_a_body_just_under_the_limit_is_read(api: httpx.AsyncClient, tenant: Tenant) -> None:
    # Well-formed and under the limit: it reaches validation, which refuses the long name.
    content = b'{"name": "' + b"x" * 20_000 + b'"}'
    response = await api.post(
        f"{API}/api-keys", content=content, headers={**tenant.headers, "Content-Type": "application/json"}
    )

    assert_problem(response, 422)


async def test_a_sane_request_id_is_echoed_in_header_and_problem(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{API}/auth/me", headers={"X-Request-ID": "trace-77.a_b"})

    body = assert_problem(response, 401)
    assert response.headers["x-request-id"] == "trace-77.a_b"
    assert body["request_id"] == "trace-77.a_b"


async def test_every_response_carries_a_request_id(api: httpx.AsyncClient, tenant: Tenant) -> None:
    responses = [
        await api.get(f"{API}/location", headers=tenant.headers),
        await api.get(f"{API}/nowhere", headers=tenant.headers),
        await api.get("/health/live"),
        await api.get(f"{API}/location", headers={"X-Request-ID": "bad id with spaces"}),
    ]

    ids = [response.headers["x-request-id"] for response in responses]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    assert re.fullmatch(r"[0-9a-f]{32}", ids[-1])


async def test_problem_documents_are_json_with_the_standard_members(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await api.get(f"{API}/locations/00000000-0000-4000-8000-000000000000", headers=tenant.headers)

    body = assert_problem(response, 404, "not_found")
    assert body["type"].startswith("urn:ghl:problem:")
    assert body["instance"] == "/api/v1/locations/00000000-0000-4000-8000-000000000000"
