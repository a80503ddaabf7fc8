"""The API gate, in front of every /api/v1 handler: who is calling (bearer credential), whether they
are within their plan's rate limits, and whether this POST repeats one already answered.

A request draws on its credential's bucket and, for a location credential, on its location's bucket
too (both sized by the plan, see ghl_core.tenancy.plans): more keys never buy more throughput. The
RateLimit-* headers describe the tighter of the two."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ghl_core.shared.errors import DomainError, TooManyRequests
from ghl_core.shared.idempotency import MAX_KEY_LENGTH, IdempotencyState, IdempotencyStore, StoredResponse
from ghl_core.shared.ratelimit import RateLimitDecision, RateLimiter, RateLimitPolicy
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.plans import PlanCatalog
from ghl_http.problems import PROBLEM_JSON, domain_problem, problem_bytes
from ghl_http.receiving import BodyOverLimit, read_asgi_body

API_PREFIX = "/api/v1"
# Reached without a credential; limited per client address instead.
PUBLIC_PATHS = frozenset({f"{API_PREFIX}/auth/{name}" for name in ("signup", "login", "refresh", "logout")})
# POSTs that only read and answer a stream: an Idempotency-Key would hold (and store) the whole stream.
STREAMED_READS = frozenset({f"{API_PREFIX}/contacts/export"})

Authenticate = Callable[[str], Awaitable[Actor]]
# Plain ASGI shapes: this middleware reads and writes raw messages.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _rate_headers(decision: RateLimitDecision, per_minute: int) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"ratelimit-limit", str(decision.limit).encode()),
        (b"ratelimit-remaining", str(max(0, decision.remaining)).encode()),
        (b"ratelimit-reset", str(math.ceil(decision.reset_after)).encode()),
        (b"ratelimit-policy", f"{decision.limit};w=60;burst={decision.limit};rate={per_minute}".encode()),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(max(1, math.ceil(decision.retry_after))).encode()))
    return headers


def _binding(decisions: list[RateLimitDecision]) -> int:
    """The index of the bucket the client should hear about: the one that refused (the longest wait),
    else the one with the fewest tokens left (the first on a tie: the credential's own)."""
    if not decisions[0].allowed:
        return max(range(len(decisions)), key=lambda i: decisions[i].retry_after)
    return min(range(len(decisions)), key=lambda i: decisions[i].remaining)


class ApiGate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate,
        rate_limiter: RateLimiter,
        idempotency: IdempotencyStore,
        max_body_bytes: int,
        plans: PlanCatalog | None = None,
    ) -> None:
        self.app = app
        self._authenticate = authenticate
        self._limiter = rate_limiter
        self._plans = plans or PlanCatalog()
        self._idempotency = idempotency
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        try:
            length = int(_header(scope, b"content-length") or 0)
        except ValueError:
            length = 0
        if length > self._max_body:
            await self._problem(
                send, 413, f"the request body is over {self._max_body} bytes", path, "payload_too_large"
            )
            return
        try:
            buckets: list[tuple[str, RateLimitPolicy]]
            if path in PUBLIC_PATHS:
                actor = None
                client = (scope.get("client") or ("unknown", 0))[0]
                tier = PlanTier.FREE
                buckets = [(f"ip:{client}", self._plans.limits(tier).credential_policy)]
            else:
                actor = await self._authenticate(self._bearer(scope))
                scope.setdefault("state", {})["actor"] = actor
                tier = actor.tier
                limits = self._plans.limits(tier)
                buckets = [(actor.credential_id, limits.credential_policy)]
                if actor.location_id is not None:
                    buckets.append((f"location:{actor.location_id}", limits.location_policy))
            decisions = await self._limiter.acquire_all(buckets)
        except DomainError as exc:
            await self._domain_problem(scope, send, exc)
            return
        binding = _binding(decisions)
        decision = decisions[binding]
        extra = _rate_headers(decision, buckets[binding][1].per_minute)
        if not decision.allowed:
            retry = max(1, math.ceil(decision.retry_after))
            what = "the location's" if binding else "this address's" if actor is None else "this credential's"
            await self._domain_problem(
                scope,
                send,
                TooManyRequests(f"{what} rate limit of the {tier.value} plan reached", retry),
                extra,
            )
            return
        send = self._with_headers(send, extra)
        idem_key = _header(scope, b"idempotency-key")
        streamed_read = scope["path"].rstrip("/") in STREAMED_READS
        if scope["method"] == "POST" and idem_key is not None and actor is not None and not streamed_read:
            await self._idempotent(scope, receive, send, actor, idem_key)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _bearer(scope: Scope) -> str:
        value = _header(scope, b"authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    @staticmethod
    def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        return wrapped

    async def _problem(self, send: Send, status: int, detail: str, path: str, code: str) -> None:
        body = problem_bytes(status, detail, code=code, instance=path)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _domain_problem(
        self, scope: Scope, send: Send, exc: DomainError, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        status, exc_headers, fields = domain_problem(exc)
        body = problem_bytes(status, exc.detail, instance=scope["path"], **fields)
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in exc_headers.items()]
        headers += [h for h in (extra or []) if h[0] not in {k for k, _ in headers}]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _idempotent(self, scope: Scope, receive: Receive, send: Send, actor: Actor, key: str) -> None:
        path = scope["path"]
        if not key or len(key) > MAX_KEY_LENGTH:
            await self._problem(
                send, 400, f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters", path, "bad_request"
            )
            return
        try:
            body = await read_asgi_body(receive, self._max_body)
        except BodyOverLimit:
            await self._problem(
                send, 413, f"the request body is over {self._max_body} bytes", path, "payload_too_large"
            )
            return
        fingerprint = hashlib.sha256(
            b"\0".join([scope["method"].encode(), path.encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        tenant: TenantScope = actor.scope
        outcome = await self._idempotency.begin(tenant, actor.credential_id, key, fingerprint)
        if outcome.state is IdempotencyState.REPLAY and outcome.response is not None:
            stored = outcome.response
            await send(
                {
                    "type": "http.response.start",
                    "status": stored.status,
                    "headers": [
                        (b"content-type", stored.content_type.encode()),
                        (b"content-length", str(len(stored.body)).encode()),
                        (b"idempotent-replayed", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": stored.body})
            return
        if outcome.state is IdempotencyState.MISMATCH:
            await self._problem(
                send,
                422,
                "this Idempotency-Key was used with a different request",
                path,
                "idempotency_key_reused",
            )
            return
        if outcome.state is IdempotencyState.IN_PROGRESS:
            await self._problem(
                send,
                409,
                "a request with this Idempotency-Key is still being processed",
                path,
                "idempotency_key_in_progress",
            )
            return

        delivered = False

        async def replay_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        captured: dict[str, Any] = {"status": 500, "content_type": "application/json", "body": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        captured["content_type"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await self._idempotency.abandon(tenant, actor.credential_id, key)
            raise
        if captured["status"] >= 500:
            await self._idempotency.abandon(tenant, actor.credential_id, key)
            return
        await self._idempotency.complete(
            tenant,
            actor.credential_id,
            key,
            StoredResponse(
                status=captured["status"],
                content_type=captured["content_type"],
                body=b"".join(captured["body"]),
            ),
        )
