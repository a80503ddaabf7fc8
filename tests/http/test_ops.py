"""Health probes, the OpenAPI document and its interactive docs, and Prometheus metrics."""

from __future__ import annotations

import uuid

import httpx
import structlog

from ghl_adapters.container import Container
from http_kit import API, Tenant


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
