"""The current request's id (bound to the log context by the HTTP shell), so audit rows can point back
at the request that made them."""

from __future__ import annotations

import structlog


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None
