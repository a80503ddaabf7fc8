"""Every error is an RFC 9457 problem document, whatever produced it; every response has a request id."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ghl_adapters.container import Container
from ghl_core.shared.untrusted import MAX_DEPTH
from http_kit import API, Tenant, assert_problem, pointers

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


# ------------------------------------------------------------------------------------ hostile input
# Inputs that once answered 500: each is a 4xx problem now, and changes nothing.


def nested(depth: int) -> bytes:
    return b'{"first_name": "Ada", "custom_fields": {"x": ' + b"[" * depth + b"]" * depth + b"}}"


async def contact_count(api: httpx.AsyncClient, tenant: Tenant) -> int:
    listed = await api.get(f"{API}/contacts", headers=tenant.headers, params={"limit": 100})
    assert listed.status_code == 200, listed.text
    return len(listed.json()["items"])


@pytest.mark.parametrize(
    "body",
    [nested(10_000), nested(100), b'{"first_name": "\xff\xfe"}'],
    ids=["deep-10000", "deep-100", "not-utf8"],
)
async def test_an_unreadable_json_body_is_400_and_changes_nothing(
    api: httpx.AsyncClient, tenant: Tenant, body: bytes
) -> None:
    before = await contact_count(api, tenant)
    headers = {**tenant.headers, "Content-Type": "application/json"}

    for extra in ({}, {"Idempotency-Key": f"hostile-{uuid.uuid4().hex}"}):
        response = await api.post(f"{API}/contacts", content=body, headers={**headers, **extra})

        assert_problem(response, 400, "bad_request")
    assert await contact_count(api, tenant) == before


async def test_a_json_body_nested_as_deep_as_allowed_is_read(api: httpx.AsyncClient, tenant: Tenant) -> None:
    # Reaches validation (the custom field does not exist): the depth limit refuses nothing shallower.
    response = await api.post(
        f"{API}/contacts",
        content=nested(MAX_DEPTH - 2),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )

    assert pointers(assert_problem(response, 422)) == ["/custom_fields/x"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"first_name": "Ada", "last_name": "a\\u0000b"}', ["/last_name"]),
        (b'{"first_name": "Ada", "custom_fields": {"a\\u0000": "x"}}', ["/custom_fields/a\x00"]),
        (b'{"first_name": "Ada", "tags": ["ok", "b\\u0000"], "source": "\\u0000"}', ["/source", "/tags/1"]),
    ],
    ids=["value", "name", "several"],
)
async def test_a_nul_anywhere_in_a_json_body_is_422_with_its_pointer(
    api: httpx.AsyncClient, tenant: Tenant, body: bytes, expected: list[str]
) -> None:
    before = await contact_count(api, tenant)

    response = await api.post(
        f"{API}/contacts", content=body, headers={**tenant.headers, "Content-Type": "application/json"}
    )

    assert pointers(assert_problem(response, 422, "validation_failed")) == expected
    assert await contact_count(api, tenant) == before


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", None])
async def test_no_content_type_takes_a_json_body_past_the_guard(
    api: httpx.AsyncClient, tenant: Tenant, content_type: str | None
) -> None:
    # The handler decodes JSON whatever the header says, so the guard checks it whatever the header says.
    headers = {**tenant.headers, **({"Content-Type": content_type} if content_type else {})}

    response = await api.post(f"{API}/contacts", content=b'{"first_name": "A\\u0000"}', headers=headers)

    assert pointers(assert_problem(response, 422)) == ["/first_name"]


async def test_an_escaped_backslash_before_u0000_is_no_nul(api: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await api.post(
        f"{API}/contacts", json={"first_name": "back\\u0000slash"}, headers=tenant.headers
    )

    assert response.status_code == 201, response.text
    assert response.json()["first_name"] == "back\\u0000slash"


async def test_a_nul_in_a_public_json_body_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        f"{API}/auth/signup",
        json={"agency_name": "Acme", "email": "nul@example.com", "password": "x" * 12, "name": "N\x00"},
    )

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"] == [{"pointer": "/name", "detail": "must not contain NUL characters"}]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/audit-log", {"entity_type": "a\x00b"}),
        ("/contacts/export", {"tag": "a\x00b"}),
        ("/opportunities", {"tag": "vip\x00"}),
        ("/contacts", {"offset": "\x00"}),
    ],
)
async def test_a_nul_in_a_query_parameter_is_422_with_its_name(
    api: httpx.AsyncClient, tenant: Tenant, path: str, query: dict[str, str]
) -> None:
    response = await api.get(f"{API}{path}", headers=tenant.headers, params=query)

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"] == [
        {"pointer": f"/{next(iter(query))}", "detail": "must not contain NUL characters"}
    ]


@pytest.mark.parametrize("query", [{"offset": str(10**30)}, {"limit": str(10**30)}], ids=["offset", "limit"])
async def test_huge_audit_log_paging_is_422(
    api: httpx.AsyncClient, tenant: Tenant, query: dict[str, str]
) -> None:
    response = await api.get(f"{API}/audit-log", headers=tenant.headers, params=query)

    assert pointers(assert_problem(response, 422)) == [f"/{next(iter(query))}"]


@pytest.mark.parametrize(
    "path",
    ["/contacts", "/opportunities", "/tasks", "/workflows", "/webhooks", "/inbound-webhooks", "/campaigns"],
)
async def test_an_offset_beyond_any_table_is_422_on_list_routes(
    api: httpx.AsyncClient, tenant: Tenant, path: str
) -> None:
    response = await api.get(f"{API}{path}", headers=tenant.headers, params={"offset": str(10**30)})

    assert pointers(assert_problem(response, 422)) == ["/offset"]


@pytest.mark.parametrize("bound", ["due_after", "due_before"])
@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-14:00"])
async def test_task_filters_at_the_edge_of_the_calendar_are_422(
    api: httpx.AsyncClient, tenant: Tenant, bound: str, instant: str
) -> None:
    response = await api.get(f"{API}/tasks", headers=tenant.headers, params={bound: instant})

    assert pointers(assert_problem(response, 422)) == [f"/{bound}"]


async def new_workflow(api: httpx.AsyncClient, tenant: Tenant) -> str:
    document = {
        "name": f"Edge {uuid.uuid4().hex[:6]}",
        "triggers": [{"type": "manual"}],
        "steps": [{"id": "pause", "type": "wait", "wait": {"days": 2}}, {"id": "done", "type": "end"}],
    }
    created = await api.post(f"{API}/workflows", json=document, headers=tenant.headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.mark.parametrize("version", [str(10**20), str(2**31)])
async def test_a_workflow_version_beyond_any_is_422(
    api: httpx.AsyncClient, tenant: Tenant, version: str
) -> None:
    workflow_id = await new_workflow(api, tenant)

    response = await api.get(
        f"{API}/workflows/{workflow_id}/export", headers=tenant.headers, params={"version": version}
    )

    assert pointers(assert_problem(response, 422)) == ["/version"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"start": "9999-12-31T23:00:00+00:00"}, "/start"),
        ({"start": "0001-01-01T00:00:00+14:00"}, "/start"),
        ({"events": [{"at": "0001-01-01T00:00:00+14:00", "event": "tag.added", "data": {}}]}, "/events/0/at"),
        ({"version": 10**20}, "/version"),
    ],
    ids=["start-late", "start-early", "event-early", "version"],
)
async def test_a_simulation_beyond_the_calendar_is_422(
    api: httpx.AsyncClient, tenant: Tenant, body: dict[str, object], pointer: str
) -> None:
    workflow_id = await new_workflow(api, tenant)
    contact = await api.post(f"{API}/contacts", json={"first_name": "Edge"}, headers=tenant.headers)
    assert contact.status_code == 201, contact.text

    response = await api.post(
        f"{API}/workflows/{workflow_id}/simulate",
        json={"contact_id": contact.json()["id"], **body},
        headers=tenant.headers,
    )

    assert pointers(assert_problem(response, 422)) == [pointer]


async def test_a_nul_in_an_opportunity_custom_field_is_422(api: httpx.AsyncClient, tenant: Tenant) -> None:
    pipeline = await api.post(
        f"{API}/pipelines",
        json={"name": f"P {uuid.uuid4().hex[:6]}", "stages": [{"name": "New"}]},
        headers=tenant.headers,
    )
    contact = await api.post(f"{API}/contacts", json={"first_name": "Opal"}, headers=tenant.headers)
    payload = {
        "pipeline_id": pipeline.json()["id"],
        "contact_id": contact.json()["id"],
        "name": "Deal",
        "custom_fields": {"deal_size": "lar\x00ge"},
    }

    response = await api.post(f"{API}/opportunities", json=payload, headers=tenant.headers)

    assert pointers(assert_problem(response, 422)) == ["/custom_fields/deal_size"]
    listed = await api.get(f"{API}/opportunities", headers=tenant.headers)
    assert listed.json()["items"] == []


async def test_a_nul_in_a_provider_config_is_422(api: httpx.AsyncClient, tenant: Tenant) -> None:
    config = {"api_key": "SG.key\x00", "from_email": "sender@example.com", "from_name": "Acme"}

    response = await api.put(
        f"{API}/messaging/providers/email",
        json={"kind": "sendgrid", "config": config},
        headers=tenant.headers,
    )

    assert pointers(assert_problem(response, 422)) == ["/config/api_key"]
    shown = await api.get(f"{API}/messaging/providers/email", headers=tenant.headers)
    assert shown.json()["kind"] != "sendgrid"


async def test_the_workflow_hook_reads_its_raw_body_as_every_json_body(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = {"name": f"Hook {uuid.uuid4().hex[:6]}", "triggers": [{"type": "inbound_webhook"}]}
    document["steps"] = [{"id": "tag_them", "type": "add_tag", "tags": ["from-web"]}]
    created = await api.post(f"{API}/workflows", json=document, headers=tenant.headers)
    workflow_id = created.json()["id"]
    assert (
        await api.post(f"{API}/workflows/{workflow_id}/publish", headers=tenant.headers)
    ).status_code == 200
    secret = await api.post(f"{API}/workflows/{workflow_id}/hook-secret", headers=tenant.headers)
    hook = f"/hooks/workflows/{tenant.location_id}/{workflow_id}/{secret.json()['secret']}"
    as_json = {"Content-Type": "application/json"}

    assert_problem(await api.post(hook, content=b"[" * 10_000 + b"]" * 10_000, headers=as_json), 400)
    assert_problem(await api.post(hook, content=b'{"email": "\xff@example.com"}', headers=as_json), 400)
    nul = await api.post(hook, json={"email": "w@example.com", "first_name": "W", "extra": {"a": "\x00"}})
    assert pointers(assert_problem(nul, 422)) == ["/extra/a"]
    listed = await api.get(f"{API}/workflows/{workflow_id}/enrollments", headers=tenant.headers)
    assert listed.json()["items"] == []


# ------------------------------------------------------------------------------------ a hostile sweep
# Every query parameter of every API operation, sent values that once broke something somewhere.
HOSTILE_VALUES = [
    str(10**30),
    str(-(10**30)),
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "a\x00b",
    "%FF%FE",  # sent as is: not UTF-8 once decoded
    "[" * 2000,
    "x" * 5000,
]


HOSTILE_BODIES = [
    b"[" * 10_000 + b"]" * 10_000,
    b'{"name": "\xff\xfe"}',
    b'{"name": "a\\u0000", "x": {"y\\u0000": ["\\u0000"]}}',
    b'{"name": 1e400, "limit": 123456789012345678901234567890}',
    b'{"start": "9999-12-31T23:59:59-14:00", "due_at": "0001-01-01T00:00:00+14:00"}',
]


def body_operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if path.startswith(API) and method in ("post", "put", "patch") and "requestBody" in operation
    ]


def query_operations(spec: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
            if names and path.startswith(API) and method in ("get", "delete"):
                found.append((method.upper(), path, names))
    return found


async def test_no_query_value_answers_a_server_error(api: httpx.AsyncClient, tenant: Tenant) -> None:
    spec = (await api.get("/docs/openapi.json")).json()
    operations = query_operations(spec)
    assert len(operations) > 10
    failures = []
    for method, template, names in operations:
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
        for name in names:
            for value in HOSTILE_VALUES:
                query = f"{name}={value}" if value.startswith("%") else str(httpx.QueryParams({name: value}))
                response = await api.request(method, f"{path}?{query}", headers=tenant.headers)
                if response.status_code >= 500:
                    failures.append((method, template, name, value[:30], response.status_code))
    assert failures == []


async def test_no_hostile_body_answers_a_server_error(api: httpx.AsyncClient, tenant: Tenant) -> None:
    spec = (await api.get("/docs/openapi.json")).json()
    operations = body_operations(spec)
    assert len(operations) > 10
    failures = []
    headers = {**tenant.headers, "Content-Type": "application/json"}
    for method, template in operations:
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
        for body in HOSTILE_BODIES:
            response = await api.request(method, path, content=body, headers=headers)
            if response.status_code >= 500:
                failures.append((method, template, body[:30], response.status_code))
    assert failures == []
