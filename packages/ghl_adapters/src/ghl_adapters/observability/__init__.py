"""Structured logs with masked personal data, request context and Prometheus metrics."""

from __future__ import annotations

from ghl_adapters.observability.logging import (
    bind_request_id,
    clear_request_context,
    configure_logging,
    configure_logging_from,
    get_logger,
    wants_json,
)
from ghl_adapters.observability.metrics import HttpMetrics

__all__ = [
    "HttpMetrics",
    "bind_request_id",
    "clear_request_context",
    "configure_logging",
    "configure_logging_from",
    "get_logger",
    "wants_json",
]
