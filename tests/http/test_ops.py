"""Health probes, the OpenAPI document and its interactive docs, and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from http_kit import API, Tenant, assert_problem, bearer, open_api
from support import make_container


async def test_live(api: httpx.AsyncClient) -> None:
    response = await api.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "ratelimit-limit" not in response.headers


async def test_ready_checks_the_database_and_redis_when_configured(
    api: httpx.AsyncClient, container: Container
) -> None:
    response = await api.get("/health/ready")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == importlib.metadata.version("ghl-http")
    assert body["checks"]["database"] == "ok"
    if container.redis() is not None:
        assert body["checks"]["redis"] == "ok"
    else:
        assert "redis" not in body["checks"]


async def test_the_openapi_document(api: httpx.AsyncClient) -> None:
    response = await api.get("/docs/openapi.json")

    assert response.status_code == 200, response.text
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["version"] == importlib.metadata.version("ghl-http")
    paths = spec["paths"]
    for path in (
        f"{API}/locations",
        f"{API}/locations/{{location_id}}",
        f"{API}/users",
        f"{API}/auth/signup",
        f"{API}/location",
        f"{API}/api-keys",
        f"{API}/audit-log",
        "/health/ready",
    ):
        assert path in paths, sorted(paths)
    assert {"get", "post"} <= set(paths[f"{API}/locations"])
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert {"bearer": []} in spec["security"]
    assert "/metrics" not in paths


async def test_the_interactive_docs(api: httpx.AsyncClient) -> None:
    for path in ("/docs", "/docs/swagger"):
        response = await api.get(path)
        assert response.status_code == 200, (path, response.text[:200])
        assert response.headers["content-type"].startswith("text/html")
        assert "GHL-style CRM platform API" in response.text


async def test_metrics_in_prometheus_text_by_route_template(api: httpx.AsyncClient, tenant: Tenant) -> None:
    missing = uuid.uuid4()
    await api.get(f"{API}/locations/{missing}", headers=tenant.headers)
    await api.get(f"{API}/location", headers=tenant.headers)

    response = await api.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE ghl_http_requests_total counter" in text
    assert 'route="/api/v1/locations/{location_id}",status="404"' in text
    assert 'route="/api/v1/location",status="200"' in text
    assert "ghl_http_request_duration_seconds_bucket" in text
    assert str(missing) not in text


@contextlib.asynccontextmanager
async def api_with(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    built = make_container(settings.model_copy(update=overrides))
    try:
        async with open_api(built) as api:
            yield api
    finally:
        await close_container(built)


async def test_metrics_need_the_token_when_one_is_set(settings: Settings) -> None:
    token = "scrape-" + uuid.uuid4().hex
    async with api_with(settings, metrics_token=SecretStr(token)) as api:
        for headers in ({}, bearer("wrong"), {"Authorization": f"Basic {token}"}, bearer(token + "x")):
            refused = await api.get("/metrics", headers=headers)
            body = assert_problem(refused, 401, "unauthenticated")
            assert "GHL_METRICS_TOKEN" in body["detail"]
            assert refused.headers["www-authenticate"].lower().startswith("bearer")
            assert "ghl_http_requests_total" not in refused.text

        allowed = await api.get("/metrics", headers=bearer(token))

    assert allowed.status_code == 200, allowed.text
    assert "# TYPE ghl_http_requests_total counter" in allowed.text


async def test_metrics_can_be_turned_off(settings: Settings) -> None:
    async with api_with(settings, metrics_enabled=False) as api:
        response = await api.get("/metrics")

    assert_problem(response, 404)


async def test_caller_mistakes_are_not_logged_as_server_errors(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    with structlog.testing.capture_logs() as logs:
        assert (await api.get(f"{API}/locations/{uuid.uuid4()}", headers=tenant.headers)).status_code == 404
        assert (await api.get(f"{API}/auth/me")).status_code == 401
        assert (
            await api.post(f"{API}/api-keys", json={"name": " "}, headers=tenant.headers)
        ).status_code == 422

    assert [entry["event"] for entry in logs if entry.get("log_level") == "error"] == []
    assert [entry["status"] for entry in logs if entry["event"] == "http_request"] == [404, 401, 422]


# ------------------------------------------------------------------------------------ database outage


class TcpRelay:
    """A TCP relay on 127.0.0.1 in front of the test's PostgreSQL: stopping it is the database going away
    (new connections refused, open ones cut), starting it again on the same port is its return."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._open |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()
                self._open.discard(sink)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def relay(settings: Settings) -> AsyncIterator[TcpRelay]:
    url = make_url(settings.database_url or "")
    relay = TcpRelay((url.host or "127.0.0.1", url.port or 5432))
    await relay.start()
    yield relay
    with contextlib.suppress(AssertionError):
        await relay.stop()


async def test_while_the_database_is_gone_requests_answer_503_until_it_is_back(
    settings: Settings, tenant: Tenant, relay: TcpRelay
) -> None:
    served = make_url(settings.database_url or "")
    if not served.host or "host" in served.query:  # the embedded server's URL names its socket folder
        pytest.skip("the embedded server listens on a unix socket; the relay needs TCP")
    url = served.set(host="127.0.0.1", port=relay.port)
    relayed = make_container(
        settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)})
    )
    try:
        async with open_api(relayed) as api:
            contacts = f"{API}/contacts"
            assert (await api.get(contacts, headers=tenant.headers)).status_code == 200
            assert (await api.get("/health/ready")).status_code == 200

            await relay.stop()
            with structlog.testing.capture_logs() as logs:
                for attempt in range(2):  # pooled connections cut, then new ones refused
                    gone = await api.get(contacts, headers=tenant.headers)
                    body = assert_problem(gone, 503, "database_unavailable")
                    assert int(gone.headers["retry-after"]) >= 1, attempt
                    assert "psycopg" not in body["detail"].lower()
                created = await api.post(contacts, json={"first_name": "Ann"}, headers=tenant.headers)
                assert_problem(created, 503, "database_unavailable")
                once = {**tenant.headers, "Idempotency-Key": f"outage-{uuid.uuid4().hex}"}
                replayable = await api.post(contacts, json={"first_name": "Ann"}, headers=once)
                assert_problem(replayable, 503, "database_unavailable")
                unknown_key = {"Authorization": f"Bearer ghl_{uuid.uuid4().hex}"}  # looked up, not cached
                assert_problem(await api.get(contacts, headers=unknown_key), 503, "database_unavailable")
                signup = await api.post(
                    f"{API}/auth/signup",
                    json={"agency_name": "A", "email": "x@example.com", "password": "x" * 12, "name": "N"},
                )
                assert_problem(signup, 503, "database_unavailable")
                ready = await api.get("/health/ready")
                assert ready.status_code == 503
                assert ready.json()["checks"]["database"].startswith("error")
            # An outage is a warning, each request once, without a traceback per request.
            assert not [e for e in logs if e.get("log_level") == "error" and e["event"] != "http_request"]

            await relay.start()
            assert (await api.get("/health/ready")).status_code == 200
            back = await api.get(contacts, headers=tenant.headers)
            assert back.status_code == 200, back.text
    finally:
        await close_container(relayed)
