"""Bad bytes stop at the door: the one place that refuses input nothing behind it can hold.

Every request's query string, and the JSON body of every handler that takes one (a `data` parameter),
are checked here once, before any handler, service or database sees them:

- a NUL (U+0000, `%00` in a query, `\\u0000` in JSON), in a value or a name: 422 with a pointer to each
  (PostgreSQL text and JSON cannot hold it; each field used to need its own check, and those without
  one answered 500 from the insert);
- a body that is not UTF-8, not JSON, or nested deeper than `MAX_DEPTH`: 400 (the decoder itself
  recursed until Python gave up on JSON nested 10,000 deep).

Runs after the API gate, so a caller is authenticated and rate limited before its body is read, and a
replayed Idempotency-Key answer includes these refusals. Handlers that read their body raw (CSV imports,
signed provider callbacks, inbound webhooks, the workflow hook) check it themselves: a signature covers
the exact bytes, and `checked_json` serves those that parse JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from litestar.enums import RequestEncodingType
from litestar.exceptions import SerializationException
from litestar.serialization import decode_json

from ghl_core.shared.errors import DomainError, FieldError, ValidationFailed
from ghl_core.shared.untrusted import MAX_DEPTH, NUL, NUL_VALUE, depth_exceeds, nul_errors
from ghl_http.problems import PROBLEM_JSON, domain_problem, problem_bytes
from ghl_http.receiving import BodyOverLimit, read_asgi_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_NUL = b"\\u0000"  # the only way a JSON text can spell NUL (a raw one is malformed JSON)


class MalformedBody(DomainError):
    """The body cannot be read as what the route takes: answered 400."""

    code = "bad_request"
    title = "Bad request"


def query_errors(query_string: bytes) -> list[FieldError]:
    """A pointer (the parameter's name) for each query parameter whose name or value holds a NUL."""
    if b"%00" not in query_string and b"\x00" not in query_string:
        return []
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    names = dict.fromkeys(name.replace(NUL, "") for name, value in pairs if NUL in name + value)
    return [FieldError(f"/{name}", NUL_VALUE) for name in names]


def checked_json(body: bytes) -> Any:
    """The body decoded as JSON once it is UTF-8 JSON nested at most MAX_DEPTH deep (MalformedBody
    otherwise) and holds no NUL (ValidationFailed, with a pointer to each)."""
    try:
        value = decode_json(body)
    except UnicodeDecodeError:
        raise MalformedBody("the body is not valid UTF-8") from None
    except RecursionError:
        raise MalformedBody(f"the body nests arrays and objects more than {MAX_DEPTH} deep") from None
    except SerializationException as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc.detail}") from None
    # Cheap tests on the bytes first: most bodies cannot nest that deep, and most hold no escaped NUL.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and depth_exceeds(value):
        raise MalformedBody(f"the body nests arrays and objects more than {MAX_DEPTH} deep")
    if _JSON_NUL in body and (errors := nul_errors(value)):
        raise ValidationFailed(errors)
    return value


def _takes_json(scope: Scope) -> bool:
    """The handler takes `data` decoded as JSON (its declared encoding decides, whatever the request's
    Content-Type says: Litestar decodes it as JSON all the same)."""
    handler = scope.get("route_handler")
    field = getattr(handler, "parsed_data_field", None)
    if field is None:
        return False
    media_type = getattr(field.kwarg_definition, "media_type", RequestEncodingType.JSON)
    return bool(media_type == RequestEncodingType.JSON)


class InputGuard:
    """Pure ASGI middleware, declared on the app after the API gate."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            errors = query_errors(scope.get("query_string", b""))
            if errors:
                raise ValidationFailed(errors)
            if not _takes_json(scope):
                await self.app(scope, receive, send)
                return
            body = await read_asgi_body(receive, self._limit(scope))
            if body.strip():
                checked_json(body)
        except DomainError as exc:
            await _problem(scope, send, *domain_problem(exc), exc.detail)
            return
        except BodyOverLimit:
            detail = f"the request body is over {self._limit(scope)} bytes"
            await _problem(scope, send, 413, {}, {"code": "payload_too_large"}, detail)
            return
        await self.app(scope, _replay(body, receive), send)

    def _limit(self, scope: Scope) -> int:
        handler = scope.get("route_handler")
        resolve = getattr(handler, "resolve_request_max_body_size", None)
        limit = resolve() if callable(resolve) else None
        return limit if isinstance(limit, int) else self._max_body


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, read already, handed over again; later calls wait on the client as before (a streamed
    response listens for the disconnect)."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _problem(
    scope: Scope, send: Send, status: int, headers: dict[str, str], fields: dict[str, Any], detail: str
) -> None:
    body = problem_bytes(status, detail, instance=scope.get("path"), **fields)
    raw_headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
