from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
import structlog
from litestar import Litestar, get
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath
from litestar.testing import TestClient

from ghl_adapters.observability import HttpMetrics, bind_request_id, clear_request_context, configure_logging
from ghl_adapters.observability import get_logger as ghl_logger
from ghl_http.middleware.request_context import (
    RequestContextMiddleware,
    install_request_context,
    metrics_route,
)

LOCATION_ID = "3f2a9c1e-1234-4234-8234-123456789abc"
LogLines = Callable[[], list[dict[str, Any]]]


@get("/api/v1/locations/{location_id:uuid}", sync_to_thread=False)
def read_location(location_id: FromPath[UUID]) -> dict[str, str]:
    ghl_logger("tests.handler").info("location_read", owner_email="jane.doe@example.com")
    logging.getLogger("sqlalchemy.engine").warning("slow query for +14155550123")
    return {"id": str(location_id)}


@get("/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("failed for jane.doe@example.com")


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    configure_logging("INFO", json_logs=True)
    stream = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and handler not in saved_handlers:
            handler.setStream(stream)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield lines
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.reset_defaults()
    clear_request_context()


@pytest.fixture
def metrics() -> HttpMetrics:
    return HttpMetrics()


@pytest.fixture
def client(metrics: HttpMetrics, log_lines: LogLines) -> Iterator[TestClient[Litestar]]:
    app = Litestar([read_location, boom, metrics_route(metrics)], logging_config=None)
    install_request_context(app, metrics=metrics)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("logger") == "ghl.http.access"]


def test_a_sane_request_id_is_echoed_and_logged(client: TestClient[Litestar], log_lines: LogLines) -> None:
    response = client.get(f"/api/v1/locations/{LOCATION_ID}", headers={"X-Request-ID": "trace-42.a_b"})

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-42.a_b"
    [access] = access_lines(log_lines())
    assert access["request_id"] == "trace-42.a_b"
    assert access["route"] == "/api/v1/locations/{location_id}"
    assert access["status"] == 200
    assert access["method"] == "GET"
    assert access["duration_ms"] >= 0


def test_a_missing_request_id_is_generated(client: TestClient[Litestar]) -> None:
    first = client.get(f"/api/v1/locations/{LOCATION_ID}").headers["x-request-id"]
    second = client.get(f"/api/v1/locations/{LOCATION_ID}").headers["x-request-id"]

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


@pytest.mark.parametrize("bad", [b"x" * 129, b"", b"has space", b"semi;colon", b"a\\nb", "ü".encode()])
def test_an_unsafe_request_id_is_replaced(client: TestClient[Litestar], bad: bytes) -> None:
    response = client.get(f"/api/v1/locations/{LOCATION_ID}", headers={b"X-Request-ID": bad})

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_every_line_of_a_request_carries_its_id_and_masks_pii(
    client: TestClient[Litestar], log_lines: LogLines
) -> None:
    client.get(
        f"/api/v1/locations/{LOCATION_ID}?email=jane.doe@example.com&access_token=s3cr3t&page=2",
        headers={"X-Request-ID": "req-1"},
    )

    lines = [line for line in log_lines() if line.get("logger") != "httpx"]
    by_logger = {line["logger"]: line for line in lines}
    assert set(by_logger) == {"tests.handler", "sqlalchemy.engine", "ghl.http.access"}
    assert all(line["request_id"] == "req-1" for line in lines)
    assert by_logger["tests.handler"]["owner_email"] == "j***@example.com"
    assert by_logger["sqlalchemy.engine"]["event"] == "slow query for +1******0123"
    assert by_logger["ghl.http.access"]["query"] == "email=j***@example.com&access_token=***&page=2"
    raw = json.dumps(lines)
    assert "jane.doe@example.com" not in raw
    assert "s3cr3t" not in raw
    assert "4155550123" not in raw
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", line["timestamp"]) for line in lines)


async def test_the_request_context_is_restored_after_the_request(log_lines: LogLines) -> None:
    seen: dict[str, Any] = {}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.update(structlog.contextvars.get_contextvars())
        await send({"type": "http.response.start", "status": 204, "headers": [(b"x-request-id", b"old")]})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [(b"x-request-id", b"ctx-1")]}
    bind_request_id("outer")
    await RequestContextMiddleware(inner)(scope, receive, send)  # type: ignore[arg-type]

    assert seen["request_id"] == "ctx-1"
    assert structlog.contextvars.get_contextvars() == {"request_id": "outer"}
    assert sent[0]["headers"] == [(b"x-request-id", b"ctx-1")]


def test_an_unknown_route_gets_an_id_and_the_unmatched_label(
    client: TestClient[Litestar], metrics: HttpMetrics, log_lines: LogLines
) -> None:
    response = client.get("/no/such/place/12345678", headers={"X-Request-ID": "lost-1"})

    assert response.status_code == 404
    assert response.headers["x-request-id"] == "lost-1"
    [access] = access_lines(log_lines())
    assert access["route"] == "unmatched"
    body = metrics.render()[0].decode()
    assert 'ghl_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in body
    assert "no/such/place" not in body


def test_a_failing_handler_answers_500_with_an_id_and_a_masked_traceback(
    client: TestClient[Litestar], metrics: HttpMetrics, log_lines: LogLines
) -> None:
    response = client.get("/boom", headers={"X-Request-ID": "boom-1"})

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    lines = log_lines()
    [error] = [line for line in lines if line["logger"] == "ghl.http.error"]
    assert error["request_id"] == "boom-1"
    assert "RuntimeError: failed for j***@example.com" in error["exception"]
    assert "jane.doe@example.com" not in json.dumps(lines)
    assert access_lines(lines)[0]["level"] == "error"
    body = metrics.render()[0].decode()
    assert 'ghl_http_requests_total{method="GET",route="/boom",status="500"} 1.0' in body


def test_metrics_use_the_route_template_never_the_raw_id(
    client: TestClient[Litestar], metrics: HttpMetrics
) -> None:
    client.get(f"/api/v1/locations/{LOCATION_ID}")
    client.get("/api/v1/locations/00000000-0000-4000-8000-000000000000")

    response = client.get("/metrics")

    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    labels = 'method="GET",route="/api/v1/locations/{location_id}"'
    assert f'ghl_http_requests_total{{{labels},status="200"}} 2.0' in body
    assert f"ghl_http_request_duration_seconds_count{{{labels}}} 2.0" in body
    assert LOCATION_ID not in body
    assert "00000000-0000" not in body
    # The scrape itself is still in flight while it renders; the two earlier requests are not.
    assert 'ghl_http_requests_in_progress{method="GET"} 1.0' in body


def test_it_also_works_declared_as_litestar_middleware(metrics: HttpMetrics, log_lines: LogLines) -> None:
    middleware = DefineMiddleware(RequestContextMiddleware, metrics=metrics, logger_name="tests.access")
    app = Litestar([read_location], middleware=[middleware], logging_config=None)

    with TestClient(app) as test_client:
        response = test_client.get(f"/api/v1/locations/{LOCATION_ID}", headers={"X-Request-ID": "mw-1"})

    assert response.headers["x-request-id"] == "mw-1"
    [access] = [line for line in log_lines() if line["logger"] == "tests.access"]
    assert access["route"] == "/api/v1/locations/{location_id}"
    assert 'route="/api/v1/locations/{location_id}",status="200"' in metrics.render()[0].decode()


def test_configure_logging_twice_installs_one_handler(log_lines: LogLines) -> None:
    configure_logging("DEBUG")
    configure_logging("INFO")

    root = logging.getLogger()
    assert [h.get_name() for h in root.handlers].count("ghl-structlog") == 1
    assert root.level == logging.INFO


def test_console_rendering_is_plain_text_and_still_masked(log_lines: LogLines) -> None:
    configure_logging("INFO", json_logs=False)
    stream = io.StringIO()
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "ghl-structlog"]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    bind_request_id("console-1")

    ghl_logger("tests.console").info("hello", email="jane.doe@example.com")

    text = stream.getvalue()
    assert "console-1" in text
    assert "j***@example.com" in text
    assert "jane.doe@example.com" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_each_metrics_instance_has_its_own_registry() -> None:
    first, second = HttpMetrics(), HttpMetrics()

    first.observe("get", "/a", 200, 0.01)
    second.observe("BREW", "/a", 418, 0.01)

    assert 'method="GET",route="/a",status="200"} 1.0' in first.render()[0].decode()
    assert 'status="200"' not in second.render()[0].decode()
    assert 'method="OTHER",route="/a",status="418"} 1.0' in second.render()[0].decode()
