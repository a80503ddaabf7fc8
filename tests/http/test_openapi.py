"""The OpenAPI document says what the server does: stable operation ids named after their handlers, the
problem documents each operation can answer, and request schemas that refuse what the server refuses."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from ghl_adapters.container import Container
from ghl_http.app import create_app
from http_kit import API, Tenant, assert_problem, open_api, unique_email

METHODS = ("get", "put", "post", "patch", "delete")
PUBLIC = {f"{API}/auth/{name}" for name in ("signup", "login", "refresh", "logout")}


@pytest.fixture(scope="module")
async def document(container: Container) -> AsyncIterator[dict[str, Any]]:
    async with open_api(container) as api:
        response = await api.get("/docs/openapi.json")
        assert response.status_code == 200, response.text
        yield response.json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def body_schema(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    # An optional body: the object, or null.
    objects = [s for s in schema.get("oneOf", schema.get("anyOf", [])) if s.get("type") != "null"]
    return resolve(document, objects[0] if len(objects) == 1 else schema)


# -- operation ids ---------------------------------------------------------------------------------


async def test_every_operation_has_a_unique_operation_id_named_after_its_handler(
    document: dict[str, Any],
) -> None:
    ids = {(method, path): op["operationId"] for method, path, op in operations(document)}

    assert len(set(ids.values())) == len(ids)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", op_id) for op_id in ids.values()), ids
    # <controller without "Controller", snake_case>_<handler>; a handler outside a controller: its name.
    assert ids["get", f"{API}/contacts/{{contact_id}}"] == "contacts_get_contact"
    assert ids["post", f"{API}/contacts"] == "contacts_create_contact"
    assert ids["post", f"{API}/contacts/{{contact_id}}/messages"] == "contact_messages_send"
    assert ids["get", f"{API}/location"] == "location_current"
    assert ids["get", "/health/ready"] == "ready"


async def test_an_operation_id_does_not_depend_on_the_path(container: Container) -> None:
    from ghl_http.openapi import operation_id

    app = create_app(container, close_container_on_shutdown=False)
    handler = next(
        h
        for route in app.routes
        for h in getattr(route, "route_handlers", [])
        if h.handler_name == "get_contact"
    )

    named = operation_id(handler, "GET", ["api", "v1", "contacts", "{contact_id}"])
    moved = operation_id(handler, "GET", ["v2", "people", "{person}", "details"])

    assert named == moved == "contacts_get_contact"


# -- problem responses -----------------------------------------------------------------------------


def expected_problems(method: str, path: str, operation: dict[str, Any]) -> set[str]:
    """At least these: what the gate, the input guard and the services answer (docs/api.md)."""
    if not path.startswith(API):
        return {"429", "503"}
    expected = {"422", "429", "503"}
    if path not in PUBLIC:
        expected |= {"401", "403"}
    if "{" in path:
        expected.add("404")
    if method != "get":
        expected.add("409")
    if "requestBody" in operation:
        expected |= {"400", "413"}
    return expected


async def test_every_operation_documents_the_problems_it_can_answer(document: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(document):
        if path.startswith("/health/"):
            continue
        responses = operation["responses"]
        for status in sorted(expected_problems(method, path, operation) - set(responses)):
            missing.append((method, path, status))
        for status, response in responses.items():
            if status[0] in "45":
                content = response.get("content", {})
                assert list(content) == ["application/problem+json"], (method, path, status, content)
                schema = content["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
    assert missing == []
    unauthorized = document["paths"][f"{API}/contacts"]["get"]["responses"]["401"]
    assert "WWW-Authenticate" in unauthorized["headers"]
    assert "Retry-After" in document["paths"][f"{API}/contacts"]["get"]["responses"]["429"]["headers"]


async def test_the_problem_schema_describes_what_the_api_answers(
    document: dict[str, Any], api: httpx.AsyncClient, tenant: Tenant
) -> None:
    problem = document["components"]["schemas"]["Problem"]
    field = document["components"]["schemas"]["FieldProblem"]
    invalid = await api.post(f"{API}/contacts", json={"email": "not an address"}, headers=tenant.headers)
    missing = await api.get(f"{API}/contacts/{uuid.uuid4()}", headers=tenant.headers)
    anonymous = await api.get(f"{API}/contacts")

    for response, status in ((invalid, 422), (missing, 404), (anonymous, 401)):
        body = assert_problem(response, status)
        assert set(problem["required"]) <= set(body)
        types = {"string": str, "integer": int, "array": list}
        for name, value in body.items():
            if name in problem["properties"]:
                assert isinstance(value, types[problem["properties"][name]["type"]]), (name, value)
    errors = invalid.json()["errors"]
    assert errors
    assert all(set(error) == set(field["required"]) for error in errors)
    assert str(invalid.status_code) in document["paths"][f"{API}/contacts"]["post"]["responses"]


# -- request schemas -------------------------------------------------------------------------------


async def test_every_request_body_is_a_typed_object_that_refuses_unknown_members(
    document: dict[str, Any],
) -> None:
    loose = []
    for method, path, operation in operations(document):
        if "requestBody" not in operation or "application/json" not in operation["requestBody"]["content"]:
            continue
        schema = body_schema(document, operation)
        if schema.get("type") != "object" or not schema.get("properties"):
            loose.append((method, path, "untyped"))
        elif schema.get("additionalProperties") is not False:
            loose.append((method, path, "takes unknown members"))
    assert loose == []


async def test_the_workflow_document_is_described(document: dict[str, Any]) -> None:
    schema = body_schema(document, document["paths"][f"{API}/workflows"]["post"])

    assert {"name", "triggers", "steps"} <= set(schema["required"])
    steps = resolve(document, schema["properties"]["steps"])
    assert steps["minItems"] == 1
    step = resolve(document, steps["items"])
    assert "send_sms" in step["properties"]["type"]["enum"]
    assert "wait" in step["properties"]["type"]["enum"]


async def test_page_parameters_are_bounded_as_the_server_bounds_them(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p["schema"] for p in document["paths"][f"{API}/contacts"]["get"]["parameters"]}

    assert (parameters["limit"]["minimum"], parameters["limit"]["maximum"]) == (1, 100)
    assert (parameters["offset"]["minimum"], parameters["offset"]["maximum"]) == (0, 1_000_000_000)
    assert parameters["cursor"]["pattern"] == "^[A-Za-z0-9_-]*$"


async def test_bounds_in_the_schema_are_the_bounds_the_server_keeps(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    for query, pointer in (("limit=0", "/limit"), ("limit=101", "/limit"), ("offset=-1", "/offset")):
        response = await api.get(f"{API}/contacts?{query}", headers=tenant.headers)
        body = assert_problem(response, 422)
        assert [e["pointer"] for e in body["errors"]] == [pointer]
    assert (await api.get(f"{API}/contacts?limit=100&offset=0", headers=tenant.headers)).status_code == 200


def member(document: dict[str, Any], component: str, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][component]["properties"][name]
    return schema


def takes_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    branches = schema.get("anyOf", []) + schema.get("oneOf", [])
    return kind == "null" or (isinstance(kind, list) and "null" in kind) or any(map(takes_null, branches))


async def post_json(api: httpx.AsyncClient, tenant: Tenant, path: str, body: dict[str, Any]) -> Any:
    response = await api.post(f"{API}{path}", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_null_is_documented_only_where_the_server_takes_it(
    document: dict[str, Any], api: httpx.AsyncClient, tenant: Tenant
) -> None:
    contact = await post_json(api, tenant, "/contacts", {"first_name": "Nora", "email": unique_email()})
    note = await post_json(api, tenant, f"/contacts/{contact['id']}/notes", {"body": "called"})
    task = await post_json(api, tenant, f"/contacts/{contact['id']}/tasks", {"title": "call back"})
    pipeline = await post_json(api, tenant, "/pipelines", {"name": "Sales", "stages": [{"name": "New"}]})
    deal = {"pipeline_id": pipeline["id"], "contact_id": contact["id"], "name": "Deal"}
    opportunity = await post_json(api, tenant, "/opportunities", deal)
    endpoint = await post_json(api, tenant, "/inbound-webhooks", {"name": "Forms"})
    cases = [
        ("NotePatch", "body", f"/contacts/{contact['id']}/notes/{note['id']}"),
        ("NotePatch", "pinned", f"/contacts/{contact['id']}/notes/{note['id']}"),
        ("TaskPatch", "title", f"/contacts/{contact['id']}/tasks/{task['id']}"),
        ("TaskPatch", "completed", f"/contacts/{contact['id']}/tasks/{task['id']}"),
        ("OpportunityPatch", "status", f"/opportunities/{opportunity['id']}"),
        ("OpportunityPatch", "name", f"/opportunities/{opportunity['id']}"),
        ("InboundEndpointPatch", "enabled", f"/inbound-webhooks/{endpoint['id']}"),
    ]

    for component, name, path in cases:
        assert not takes_null(member(document, component, name)), (component, name)
        response = await api.patch(f"{API}{path}", json={name: None}, headers=tenant.headers)
        assert [e["pointer"] for e in assert_problem(response, 422)["errors"]] == [f"/{name}"]
    # Where null clears a value, the schema says so.
    assert takes_null(member(document, "TaskPatch", "due_at"))
    cleared = await api.patch(
        f"{API}/contacts/{contact['id']}/tasks/{task['id']}", json={"due_at": None}, headers=tenant.headers
    )
    assert cleared.status_code == 200, cleared.text


async def test_what_a_create_needs_is_required_in_its_schema(
    document: dict[str, Any], api: httpx.AsyncClient, tenant: Tenant
) -> None:
    schemas = document["components"]["schemas"]

    assert set(schemas["OpportunityIn"]["required"]) == {"pipeline_id", "contact_id", "name"}
    assert schemas["NoteIn"]["required"] == ["body"]
    assert set(schemas["CustomFieldIn"]["required"]) == {"key", "label", "type"}
    # A contact needs a name, an e-mail address or a phone number: one of them, with a value.
    assert [alternative["required"] for alternative in schemas["ContactIn"]["allOf"][0]["anyOf"]] == [
        ["first_name"],
        ["last_name"],
        ["email"],
        ["phone"],
    ]
    missing = await api.post(f"{API}/opportunities", json={}, headers=tenant.headers)
    assert {"/pipeline_id", "/contact_id", "/name"} <= {
        e["pointer"] for e in assert_problem(missing, 422)["errors"]
    }
    nobody = await api.post(f"{API}/contacts", json={"city": "Lyon"}, headers=tenant.headers)
    assert [e["pointer"] for e in assert_problem(nobody, 422)["errors"]] == ["/"]


async def test_a_change_documents_only_the_members_the_server_lets_change(
    document: dict[str, Any], api: httpx.AsyncClient, tenant: Tenant
) -> None:
    schemas = document["components"]["schemas"]
    template = await post_json(api, tenant, "/templates", {"name": "Hi", "channel": "sms", "body": "Hi"})

    for create, change in (("CampaignIn", "CampaignPatch"), ("TemplateIn", "TemplatePatch")):
        assert "channel" in schemas[create]["properties"]
        assert "channel" not in schemas[change]["properties"]
    response = await api.patch(
        f"{API}/templates/{template['id']}", json={"channel": "sms"}, headers=tenant.headers
    )
    assert [e["pointer"] for e in assert_problem(response, 422)["errors"]] == ["/channel"]


async def test_filters_in_query_strings_carry_the_formats_the_core_parses(
    document: dict[str, Any], api: httpx.AsyncClient, tenant: Tenant
) -> None:
    opportunities = {
        p["name"]: p["schema"] for p in document["paths"][f"{API}/opportunities"]["get"]["parameters"]
    }
    tasks = {p["name"]: p["schema"] for p in document["paths"][f"{API}/tasks"]["get"]["parameters"]}
    jobs = {p["name"] for p in document["paths"][f"{API}/jobs/failed"]["get"]["parameters"]}

    assert opportunities["pipeline_id"]["format"] == "uuid"
    assert opportunities["status"]["enum"] == ["open", "won", "lost", "abandoned"]
    assert tasks["due_before"]["format"] == "date-time"
    assert "offset" not in jobs  # failed jobs page by cursor only
    for query, pointer in (("pipeline_id=nope", "/pipeline_id"), ("status=closed", "/status")):
        response = await api.get(f"{API}/opportunities?{query}", headers=tenant.headers)
        assert [e["pointer"] for e in assert_problem(response, 422)["errors"]] == [pointer]


async def test_every_pattern_is_one_other_regular_expression_engines_take(document: dict[str, Any]) -> None:
    """JSON Schema patterns are ECMA-262; a lone surrogate (\\ud800) is no character there, nor in the
    regular expressions of the Rust and Go validators clients use."""
    patterns: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("pattern"), str):
                patterns.append(value["pattern"])
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(document)
    assert len(patterns) > 20
    for pattern in patterns:
        re.compile(pattern)
        assert not re.search(r"\\u[dD][89a-fA-F]", pattern), pattern
