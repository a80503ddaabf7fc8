"""Request ids, access logs and metrics for every HTTP request, including those no route matched.

Litestar runs middleware declared on the app only for requests a route matched, so unknown paths
(404) and wrong methods (405) would pass unseen. ``install_request_context`` therefore wraps the app's
ASGI handler, the same place Litestar puts its CORS and OpenTelemetry middleware.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl

import structlog
from litestar import Litestar, Request, Response, get
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException

from ghl_adapters.observability import HttpMetrics, get_logger
from ghl_adapters.sql.availability import database_unavailable
from ghl_core.shared.errors import DomainError, Unauthenticated
from ghl_core.shared.masking import mask_value
from ghl_http.problems import BAD_INPUT_ERRORS

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
UNMATCHED_ROUTE = "unmatched"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_MAX_QUERY_CHARS = 512


class RequestContextMiddleware:
    """Pure ASGI middleware; also usable as ``DefineMiddleware(RequestContextMiddleware, ...)``."""

    def __init__(
        self, app: ASGIApp, *, metrics: HttpMetrics | None = None, logger_name: str = "ghl.http.access"
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.logger_name = logger_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        method = str(scope.get("method", "GET"))
        # Read before routing, which rewrites it; ``raw_path`` is avoided as some servers put the query in it.
        path = str(scope.get("path", ""))
        status = 500
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept = [h for h in message.get("headers", ()) if h[0].lower() != header[0]]
                message = cast("Message", {**message, "headers": [*kept, header]})
            await send(message)

        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                if self.metrics is None:
                    await self.app(scope, receive, send_with_id)
                else:
                    with self.metrics.in_progress(method):
                        await self.app(scope, receive, send_with_id)
            finally:
                self._record(scope, path, method, status, time.perf_counter() - started)

    def _record(self, scope: Scope, path: str, method: str, status: int, seconds: float) -> None:
        # Litestar's router stores the matched route's template in the scope it was handed, which is
        # this very dict; it is absent when routing failed.
        route = str(scope.get("path_template") or UNMATCHED_ROUTE)
        if self.metrics is not None:
            self.metrics.observe(method, route, status, seconds)
        log = get_logger(self.logger_name)
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
        }
        if query := masked_query(scope.get("query_string", b"")):
            fields["query"] = query
        if status >= 500:
            log.error("http_request", **fields)
        else:
            log.info("http_request", **fields)


def request_id_from(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name.lower() == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def masked_query(query_string: bytes) -> str:
    """The query string with secrets and personal data masked, for logging."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    masked = [(mask_value(k), mask_value({k: v})[k]) for k, v in pairs]
    return "&".join(f"{k}={v}" for k, v in masked)[:_MAX_QUERY_CHARS]


async def log_unhandled_exception(exc: Exception, scope: Scope) -> None:
    """``after_exception`` hook: with Litestar's own logging disabled, server errors are logged here."""
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return
    # Domain errors are the caller's mistakes (401, 403, 404, 409, 422, 429), answered as problems:
    # not server errors, and a traceback for each was slow and drowned the real ones.
    if isinstance(exc, DomainError):
        return
    log = get_logger("ghl.http.error")
    if database_unavailable(exc):
        # Answered 503: during an outage every request fails alike; one line each, no traceback.
        log.warning("database_unavailable", error=type(exc).__name__)
    elif isinstance(exc, BAD_INPUT_ERRORS):
        # Answered 400; the traceback shows which check let the input through.
        log.warning("bad_input_exception", exc_info=exc)
    else:
        log.error("unhandled_exception", exc_info=exc)


def install_request_context(
    app: Litestar, *, metrics: HttpMetrics | None = None, logger_name: str = "ghl.http.access"
) -> Litestar:
    """Wrap every request of ``app``, matched or not, and log its server errors."""
    app.asgi_handler = RequestContextMiddleware(app.asgi_handler, metrics=metrics, logger_name=logger_name)
    app.after_exception = [*app.after_exception, log_unhandled_exception]
    return app


def metrics_route(metrics: HttpMetrics, path: str = "/metrics", token: str | None = None) -> HTTPRouteHandler:
    """A ``GET`` handler exposing ``metrics`` for Prometheus to scrape; with ``token``, only to a scrape
    that sends ``Authorization: Bearer <token>`` (GHL_METRICS_TOKEN)."""

    @get(path, include_in_schema=False, sync_to_thread=False, name="ghl_metrics")
    def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
        if token is not None and not bearer_matches(request.headers.get("authorization", ""), token):
            raise Unauthenticated("send 'Authorization: Bearer <GHL_METRICS_TOKEN>' to read the metrics")
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return scrape


def bearer_matches(authorization: str, token: str) -> bool:
    """Whether an Authorization header carries this bearer token, compared in constant time."""
    scheme, _, presented = authorization.partition(" ")
    same = hmac.compare_digest(presented.strip().encode(), token.encode())
    return scheme.lower() == "bearer" and same
