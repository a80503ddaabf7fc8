"""How the endpoints with no bearer token receive a request: one recipe, here, for all of them.

Provider callbacks (Twilio, SendGrid), a location's inbound webhook endpoints and a workflow's hook URL
are posted to by strangers' systems, so each follows the same steps, in this order, and a stranger pays
for a request before anything is looked up or stored:

1. the client address's rate limit, before the body is read;
2. the headers as the sender signed them (a repeated name's values joined with ", ");
3. the body, read up to a limit with our own 413 problem. Such a route sets `request_max_body_size=None`:
   a signature covers the exact bytes, and the limit is the receiver's (GHL_MAX_BODY_BYTES, or a hook's
   own), not Litestar's;
4. the target looked up (404 when there is none: an unknown endpoint, a location with no such provider),
   then the target's own rate limit;
5. the public URL the sender was given (signatures cover it), and the inbound service verifying and
   storing the event once.

`receive_signed` runs all five for the signed endpoints; the workflow hook, which is no signed event,
takes the steps one by one; the links in emails (tracking, unsubscribe) use its rate limits only.
The ASGI middlewares that must see a body before any handler (the API gate's Idempotency-Key, the
input guard) read it with `read_asgi_body`, the same bounded read over ASGI messages.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.types import ExceptionHandlersMap

from ghl_adapters.container import Container
from ghl_core.inbound.models import (
    CLIENT_LIMIT,
    ENDPOINT_LIMIT,
    BodyTooLarge,
    InboundReceipt,
    InboundRequest,
    InboundTarget,
    SignatureInvalid,
)
from ghl_core.inbound.services import InboundService
from ghl_core.shared.errors import DomainError, TooManyRequests
from ghl_core.shared.ratelimit import RateLimiter, RateLimitPolicy
from ghl_http.problems import PROBLEM_JSON, domain_problem, problem_body

_STATUS = {SignatureInvalid: 401, BodyTooLarge: 413}


def receive_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Problem documents for the receiving URL's own errors (a bad signature is no bearer challenge)."""
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for these domain errors only
    status, headers, fields = domain_problem(exc)
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), status)
    body = problem_body(status, exc.detail, instance=request.url.path, **fields)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def receive_problems() -> ExceptionHandlersMap:
    """A receiving controller's `exception_handlers`: a bad signature answers 401, a long body 413."""
    return {SignatureInvalid: receive_problem, BodyTooLarge: receive_problem}


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


async def limit(
    limiter: RateLimiter,
    key: str,
    policy: RateLimitPolicy,
    detail: str = "too many webhook deliveries; retry later",
) -> None:
    """Takes a token from `key`'s bucket; raises TooManyRequests (with Retry-After) when it has none."""
    decision = await limiter.acquire(key, policy)
    if not decision.allowed:
        retry = max(1, math.ceil(decision.retry_after))
        raise TooManyRequests(detail, retry)


def headers_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def read_body(request: Request[Any, Any, Any], headers: dict[str, str], max_bytes: int) -> bytes:
    """The raw body, at most `max_bytes` (a declared length over it is refused before reading)."""
    too_large = BodyTooLarge(f"the request body is over {max_bytes} bytes")
    try:
        if int(headers.get("content-length") or 0) > max_bytes:
            raise too_large
    except ValueError:
        pass
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class BodyOverLimit(Exception):
    """`read_asgi_body` read past its limit; the middleware answers its own 413 problem."""


AsgiMessage = MutableMapping[str, Any]


async def read_asgi_body(receive: Callable[[], Awaitable[AsgiMessage]], max_bytes: int) -> bytes:
    """The body from a middleware's `receive`, at most `max_bytes` (BodyOverLimit past it). A client
    that disconnects ends the body there."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyOverLimit
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def public_url(request: Request[Any, Any, Any], base_url: str) -> str:
    """The URL as the sender was given it (behind a proxy the request's own host may differ)."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{base_url}{request.url.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True)
class Receiver:
    """What the signed endpoints receive with."""

    limiter: RateLimiter
    inbound: InboundService
    base_url: str
    max_body: int

    @classmethod
    def of(cls, container: Container) -> Receiver:
        settings = container.settings()
        return cls(
            limiter=container.rate_limiter(),
            inbound=container.inbound(),
            base_url=settings.base_url,
            max_body=settings.max_body_bytes,
        )


async def receive_signed(
    receiver: Receiver,
    request: Request[Any, Any, Any],
    *,
    target: Callable[[], Awaitable[InboundTarget]],
    target_key: str,
) -> InboundReceipt:
    """The five steps of the module docstring for a signed event. `target` looks the receiving target
    up (raising NotFound); `target_key` names its rate limit bucket."""
    await limit(receiver.limiter, f"inbound:ip:{client_address(request)}", CLIENT_LIMIT)
    headers = headers_of(request)
    body = await read_body(request, headers, receiver.max_body)
    found = await target()
    await limit(receiver.limiter, target_key, ENDPOINT_LIMIT)
    url = public_url(request, receiver.base_url)
    return await receiver.inbound.receive(
        found, InboundRequest(method=request.method, url=url, headers=headers, body=body)
    )
