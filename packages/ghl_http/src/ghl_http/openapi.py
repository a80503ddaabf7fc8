"""The OpenAPI document: stable operation ids, and the error responses every operation really gives.

Operation ids. `operation_id` names an operation after its handler: the controller's class name without
`Controller`, in snake_case, then the handler function's name (`ContactsController.get_contact` ->
`contacts_get_contact`); a handler outside a controller is its function's name. The path, its parameter
names and Litestar's own scheme play no part, so moving a route or renaming a path parameter keeps its id
(and the method name a generated client gives it); renaming a handler is what changes one. A handler
that serves several methods gets `_<method>` appended.

Error responses. Every error leaves as an RFC 9457 problem document (ghl_http.problems), and the
document says which, per operation, from the rules below rather than from a `responses=` on each of the
~170 handlers. `ApiDocsConfig` finishes the document Litestar generated (`finish_document`): it adds
the `Problem` and `FieldProblem` schemas and, to each operation, the statuses it can answer (replacing
Litestar's own `400`, whose body is not what the exception handlers send):

- every `/api/v1` operation: 422 (a field fails validation, a NUL anywhere in the query or body), 429
  (rate limits, plan limits; `Retry-After`) and 503 (the database is unreachable; nothing changed);
- behind the bearer credential (all of `/api/v1` but sign-up, log-in, refresh and log-out): 401 (none,
  invalid, expired or revoked; `WWW-Authenticate`) and 403 (a scope or role is missing);
- log-in, refresh and log-out: 401 (wrong password, unknown or revoked refresh token);
- a path parameter: 404 (no such thing in the caller's location; another tenant's ids answer the same);
- a request body: 400 (not UTF-8 JSON, nested too deep) and 413 (over the size limit); a POST: 400 too
  (a malformed `Idempotency-Key`), and query parameters;
- a write (POST, PUT, PATCH, DELETE) of `/api/v1`: 409 (a duplicate, a state that does not allow it, a
  plan limit on counts; for a POST also a request with the same `Idempotency-Key` still running);
- the public receivers outside `/api/v1` (signed webhooks, tracking, unsubscribe, the workflow hook):
  404 for their path parameters, 429 and 503, 400/413/422 for a POST, 401 where a signature is checked,
  409 for the workflow hook.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPI
from litestar.types import Method, OperationIDCreator
from litestar.types.internal_types import PathParameterDefinition
from litestar.utils.helpers import unwrap_partial

from ghl_http.gate import API_PREFIX, PUBLIC_PATHS
from ghl_http.problems import PROBLEM_JSON
from ghl_http.schema_rules import COMPONENT, contact_filter_schemas
from ghl_http.schemas import Body

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WRITES = frozenset({"post", "put", "patch", "delete"})
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROBLEM_REF = "#/components/schemas/Problem"
REF_TEMPLATE = "#/components/schemas/{model}"
READY_PATH = "/health/ready"

# Public operations outside /api/v1 with statuses the rules cannot see: a checked signature, a state.
_SIGNED = frozenset(
    {
        "inbound_receive_receive",
        "provider_callbacks_twilio",
        "provider_callbacks_sendgrid_events",
        "provider_callbacks_sendgrid_inbound",
    }
)
_EXTRA_STATUSES: dict[str, frozenset[int]] = {"workflow_hook_receive": frozenset({409})}
# Public auth operations whose credential is in the body: a wrong one is a 401 too.
_BODY_CREDENTIALS = frozenset(f"{API_PREFIX}/auth/{name}" for name in ("login", "refresh", "logout"))

_DESCRIPTIONS: dict[int, str] = {
    400: (
        "The request cannot be read: a body that is not UTF-8 JSON or nests too deep, a malformed "
        "Idempotency-Key"
    ),
    401: "No credential, or one that is invalid, expired or revoked",
    403: "The credential lacks the scope or role this operation needs",
    404: "Nothing with this id in the caller's location (another location's ids answer the same)",
    409: (
        "The change conflicts with the current state (a duplicate, a state that does not allow it, a plan "
        "limit), or a request with the same Idempotency-Key is still being processed"
    ),
    413: "The request body is over the size limit",
    422: (
        "Invalid input: `errors` holds a JSON pointer to each bad field (into the body, or `/<name>` for a "
        "query parameter); a NUL character is refused everywhere"
    ),
    429: "A rate limit or a plan limit was reached: retry after `Retry-After` seconds",
    503: "The database cannot be reached right now: nothing was changed, retry after `Retry-After` seconds",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "The bearer challenge", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
}

_ZONES = sorted(zoneinfo.available_timezones())


def _constant(value: str) -> str:
    """An enum member's name for a value: Etc/GMT+5 -> ETC_GMT_PLUS_5."""
    value = re.sub(r"\+(?=\d)", "_plus_", re.sub(r"-(?=\d)", "_minus_", value))
    return re.sub(r"[^A-Za-z0-9]+", "_", value).strip("_").upper()


SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "type": "object",
        "title": "Problem",
        "description": (
            "An RFC 9457 problem document (application/problem+json). `code` is a stable machine-readable "
            "slug (also the last part of `type`); other members may be added for some problems (e.g. "
            "`limit` and `tier` for a plan limit)."
        ),
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "description": "urn:ghl:problem:<code>"},
            "title": {"type": "string", "description": "A short summary of the kind of problem"},
            "status": {"type": "integer", "description": "The HTTP status code"},
            "detail": {"type": "string", "description": "What went wrong with this request"},
            "code": {"type": "string", "description": "A stable slug, e.g. validation_failed, not_found"},
            "instance": {"type": "string", "description": "The request's path"},
            "request_id": {"type": "string", "description": "The request's id, as in the server's logs"},
            "errors": {
                "type": "array",
                "description": "Each bad field (422)",
                "items": {"$ref": "#/components/schemas/FieldProblem"},
            },
        },
        "additionalProperties": True,
    },
    "TimeZone": {
        "type": "string",
        "title": "TimeZone",
        "description": "An IANA time zone name, e.g. America/New_York",
        "enum": _ZONES,
        # Names a generated client can give the values: Etc/GMT+5 and Etc/GMT-5 must not both be GMT5.
        "x-enum-varnames": [_constant(zone) for zone in _ZONES],
    },
    **contact_filter_schemas(),
    "FieldProblem": {
        "type": "object",
        "title": "FieldProblem",
        "required": ["pointer", "detail"],
        "properties": {
            "pointer": {
                "type": "string",
                "description": "A JSON pointer to the bad field, e.g. /email or /steps/1/wait/minutes",
            },
            "detail": {"type": "string", "description": "What is wrong with it"},
        },
        "additionalProperties": False,
    },
}


def _snake(name: str) -> str:
    return _WORD_BOUNDARY.sub("_", name).lower()


def operation_id(
    route_handler: HTTPRouteHandler,
    http_method: Method,
    path_components: list[str | PathParameterDefinition],
) -> str:
    """`<controller>_<handler>`: see the module's docstring. `path_components` is deliberately unused."""
    parts = [p for p in unwrap_partial(route_handler.fn).__qualname__.split(".") if p != "<locals>"]
    name = parts[-1]
    if len(parts) > 1 and parts[-2].endswith("Controller"):
        name = f"{_snake(parts[-2].removesuffix('Controller'))}_{name}"
    if len(route_handler.http_methods) > 1:
        name = f"{name}_{http_method.lower()}"
    return name


def problem_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer with a problem document (the rules of the module)."""
    if path.startswith("/health/"):
        return set()
    parameters = operation.get("parameters", [])
    has_path_id = any(p.get("in") == "path" for p in parameters)
    has_query = any(p.get("in") == "query" for p in parameters)
    has_body = "requestBody" in operation
    statuses = {429, 503}
    if has_path_id:
        statuses.add(404)
    if has_body or method == "post":
        statuses |= {400, 413, 422}
    if not path.startswith(API_PREFIX):
        if operation.get("operationId") in _SIGNED:
            statuses.add(401)
        return statuses | _EXTRA_STATUSES.get(operation.get("operationId", ""), frozenset())
    statuses.add(422)
    if has_query:
        statuses.add(400)
    if path in PUBLIC_PATHS:
        if path in _BODY_CREDENTIALS:
            statuses.add(401)
    else:
        statuses |= {401, 403}
    if method in _WRITES:
        statuses.add(409)
    return statuses


def problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _DESCRIPTIONS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield path, method, item[method]


def _request_models() -> dict[str, type[Body]]:
    """Every request body model by the title its component carries (all of them derive from `Body`)."""
    found: dict[str, type[Body]] = {}
    pending: list[type[Body]] = [Body]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model is not Body:
            found[str(model.model_config.get("title") or model.__name__)] = model
    return found


def _request_schemas(schema: dict[str, Any], components: dict[str, Any]) -> None:
    """Each request body's component becomes the JSON schema pydantic validates it with; a body taken as
    a plain object (checked by the core) and titled after a model is described by that model."""
    models = _request_models()
    for _, _, operation in _operations(schema):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            title = media.get("schema", {}).get("title")
            if title in models and "$ref" not in media["schema"]:
                media["schema"] = {"$ref": REF_TEMPLATE.format(model=title)}
                components.setdefault(title, {"title": title})
    for key, component in list(components.items()):
        model = models.get(component.get("title", ""))
        if model is None:
            continue
        pydantic_schema = model.model_json_schema(mode="validation", ref_template=REF_TEMPLATE)
        for name, definition in pydantic_schema.pop("$defs", {}).items():
            components.setdefault(name, _without_null_defaults(definition))
        components[key] = _without_null_defaults(pydantic_schema)


def _takes_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    branches = schema.get("anyOf", []) + schema.get("oneOf", [])
    return kind == "null" or (isinstance(kind, list) and "null" in kind) or any(map(_takes_null, branches))


def _without_null_defaults(schema: Any) -> Any:
    """A field the core requires to be given as a value (`rule(nullable=False)`) keeps pydantic's
    `default: null`, which the schema itself refuses: dropped. A rule's `x-component` becomes a $ref."""
    if isinstance(schema, dict):
        if "default" in schema and schema["default"] is None and not _takes_null(schema):
            del schema["default"]
        if COMPONENT in schema:
            schema["$ref"] = REF_TEMPLATE.format(model=schema.pop(COMPONENT))
        for value in schema.values():
            _without_null_defaults(value)
    elif isinstance(schema, list):
        for value in schema:
            _without_null_defaults(value)
    return schema


# Handlers that read their body raw (a signed form, a CSV upload) declare no `data`: their bodies, here.
_RAW_BODIES: dict[str, dict[str, Any]] = {
    "unsubscribe_unsubscribe": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
                    "required": ["List-Unsubscribe"],
                }
            }
        },
    },
    "contact_imports_start_import": {
        "required": True,
        "description": "A CSV file with a header row (UTF-8, UTF-16 or UTF-32), as the body or a form's file",
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "mapping": {"type": "array", "items": {"type": "string"}},
                        "tag": {"type": "array", "items": {"type": "string"}},
                        "duplicate_policy": {"type": "string", "enum": ["skip", "update", "create"]},
                    },
                    "required": ["file"],
                }
            },
        },
    },
}


def finish_document(schema: dict[str, Any]) -> dict[str, Any]:
    """The generated document with the problem schemas and each operation's problem responses."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _request_schemas(schema, components)
    components.update(SCHEMAS)
    ready = schema.get("paths", {}).get(READY_PATH, {}).get("get")
    if ready is not None:  # not a problem: the same report as a 200, saying what is down
        ready["responses"]["503"] = {**ready["responses"]["200"], "description": "A check failed"}
    for path, method, operation in _operations(schema):
        if operation.get("operationId") in _RAW_BODIES:
            operation.setdefault("requestBody", _RAW_BODIES[operation["operationId"]])
        responses = operation.setdefault("responses", {})
        # Litestar's own error entries describe its exception shape, which never leaves this app.
        for status in [s for s in responses if s[:1] in "45"]:
            del responses[status]
        for status in sorted(problem_statuses(path, method, operation)):
            responses[str(status)] = problem_response(status)
    return schema


class _FinishedOpenAPI(OpenAPI):
    """The generated document, finished with `finish_document` as it is serialised (once: the app's
    OpenAPI plugin keeps the result)."""

    def to_schema(self) -> dict[str, Any]:
        return finish_document(super().to_schema())


@dataclass
class ApiDocsConfig(OpenAPIConfig):
    """`OpenAPIConfig` whose document gets the problem responses (see the module's docstring)."""

    operation_id_creator: OperationIDCreator = operation_id

    def to_openapi_schema(self) -> OpenAPI:
        base = super().to_openapi_schema()
        return _FinishedOpenAPI(**{f.name: getattr(base, f.name) for f in fields(base)})
