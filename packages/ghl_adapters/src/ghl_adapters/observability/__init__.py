"""Structured logs with masked personal data, request context and Prometheus metrics."""

from __future__ import annotations

from ghl_adapters.observability.logging import (
    bind_request_id,
    clear_request_context,
    configure_logging,
    get_logger,
)
from ghl_adapters.observability.metrics import HttpMetrics

__all__ = ["HttpMetrics", "bind_request_id", "clear_request_context", "configure_logging", "get_logger"]
