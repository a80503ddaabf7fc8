"""Prometheus metrics for the HTTP shell, each instance with its own registry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Anything else a client sends as a method is folded into one label so it cannot grow the series count.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def _method_label(method: str) -> str:
    upper = method.upper()
    return upper if upper in _KNOWN_METHODS else "OTHER"


class HttpMetrics:
    """Request count, latency and concurrency, labelled by route template rather than raw path."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._requests = Counter(
            "ghl_http_requests_total",
            "HTTP requests answered.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self._duration = Histogram(
            "ghl_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ("method", "route"),
            registry=self.registry,
        )
        self._in_progress = Gauge(
            "ghl_http_requests_in_progress",
            "HTTP requests being answered.",
            ("method",),
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        label = _method_label(method)
        self._requests.labels(label, route, str(status)).inc()
        self._duration.labels(label, route).observe(max(seconds, 0.0))

    @contextmanager
    def in_progress(self, method: str) -> Iterator[None]:
        gauge = self._in_progress.labels(_method_label(method))
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text exposition format, with its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
