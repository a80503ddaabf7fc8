"""An authenticated read through the whole HTTP stack (gate: API-key look-up, rate limit; RLS-scoped
unit of work; serialisation) beside the SQL it boils down to, run in the same process.

    uv run python bench/api_read.py            # embedded PostgreSQL
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres uv run python bench/api_read.py
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

import httpx
from dependency_injector import providers
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_database, measure

from ghl_adapters.container import build_container, close_container
from ghl_adapters.observability import configure_logging
from ghl_adapters.ratelimit import InMemoryRateLimiter
from ghl_adapters.settings import Settings
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation
from ghl_http.app import create_app

N = 1000


async def run(url: str) -> None:
    settings = Settings(database_url=url, secret_key="bench-" + "x" * 40, _env_file=None)  # type: ignore[call-arg]
    configure_logging("WARNING")
    container = build_container(settings, url)
    # The real token bucket, on a clock that moves a second per call, so the bench never waits on its plan.
    ticks = itertools.count()
    container.rate_limiter.override(providers.Object(InMemoryRateLimiter(clock=lambda: float(next(ticks)))))
    operator = Actor.operator()
    agency = await container.tenancy().create_agency(operator, "Bench Agency")
    location = await container.tenancy().create_location(
        operator, NewLocation(name="Bench", tier=PlanTier.ENTERPRISE), agency_id=agency.id
    )
    _, key = await container.api_keys().create(operator, "bench", location_id=location.id)
    headers = {"Authorization": f"Bearer {key}"}
    engines = container.engines()

    async def raw_sql() -> None:
        async with engines.app.connect() as conn, conn.begin():
            await conn.execute(
                text("SELECT set_config('app.location_id', :l, true)"), {"l": str(location.id)}
            )
            await conn.execute(text("SELECT * FROM locations WHERE id = :l"), {"l": location.id})

    async def raw_sql_with_key_lookup() -> None:
        async with engines.app.connect() as conn, conn.begin():
            await conn.execute(text("SELECT * FROM ghl_auth_api_key(:h)"), {"h": "0" * 64})
        await raw_sql()

    app = create_app(container, close_container_on_shutdown=False)
    # In the same event loop as the app (no test-client thread), so the figures are the app's own.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench.local"
    ) as client:

        async def api() -> None:
            response = await client.get("/api/v1/location", headers=headers)
            if response.status_code != 200:
                raise RuntimeError(response.text)

        async def health() -> None:
            await client.get("/health/live")

        where = "embedded" if "host=" in url else "DATABASE_URL"
        print(f"GET /api/v1/location vs its SQL ({where} PostgreSQL):")
        print((await measure("baseline: raw SQL (RLS transaction + select)", N, raw_sql)).line())
        print(
            (await measure("baseline: raw SQL + API-key look-up function", N, raw_sql_with_key_lookup)).line()
        )
        print((await measure("ASGI floor: GET /health/live (no DB)", N, health)).line())
        api_timing = await measure("API: GET /api/v1/location (in-process ASGI)", N, api)
        print(api_timing.line())
    await close_container(container)


def main() -> None:
    with bench_database() as url:
        asyncio.run(run(url))


if __name__ == "__main__":
    main()
