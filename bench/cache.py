"""The cache on the hottest path: GET /api/v1/location with an API key (authentication, then the
location row), with the cache off, in-process, and Redis, beside the raw SQL the uncached request runs,
all in one run.

    uv run python bench/cache.py            # embedded PostgreSQL; Redis rows when REDIS_URL is set
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        uv run python bench/cache.py
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from pathlib import Path

import httpx
from dependency_injector import providers
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_database, measure

from ghl_adapters.container import Container, build_container, close_container
from ghl_adapters.observability import configure_logging
from ghl_adapters.ratelimit import InMemoryRateLimiter
from ghl_adapters.settings import Settings
from ghl_core.identity.secrets import secret_hash
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation
from ghl_http.app import create_app

N = 2000


def _container(url: str, redis_url: str | None, ttl: float) -> Container:
    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        cache_ttl_seconds=ttl,
        secret_key="bench-" + "x" * 40,
        _env_file=None,  # type: ignore[call-arg]
    )
    container = build_container(settings, url)
    # Rate limiting in memory for every row (the Redis rows measure the cache, not the limiter), on a
    # clock that moves a second per call so the bench never waits on its plan.
    ticks = itertools.count()
    container.rate_limiter.override(providers.Object(InMemoryRateLimiter(clock=lambda: float(next(ticks)))))
    return container


async def scenario(label: str, url: str, redis_url: str | None, ttl: float, key: str) -> None:
    container = _container(url, redis_url, ttl)
    app = create_app(container, close_container_on_shutdown=False)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench.local"
    ) as client:

        async def api() -> None:
            response = await client.get("/api/v1/location", headers=headers)
            if response.status_code != 200:
                raise RuntimeError(response.text)

        await api()
        bus = container.cache_bus()
        for _ in range(500):  # the subscription comes up on the first cached read
            if bus is None or bus.connected:
                break
            await asyncio.sleep(0.01)
        print((await measure(label, N, api)).line())
    await close_container(container)


async def run(url: str) -> None:
    configure_logging("WARNING")
    setup = _container(url, None, 0)
    operator = Actor.operator()
    agency = await setup.tenancy().create_agency(operator, "Bench Agency")
    location = await setup.tenancy().create_location(
        operator, NewLocation(name="Bench", tier=PlanTier.ENTERPRISE), agency_id=agency.id
    )
    _, key = await setup.api_keys().create(operator, "bench", location_id=location.id)
    engines = setup.engines()

    async def raw_sql() -> None:
        async with engines.app.connect() as conn, conn.begin():
            await conn.execute(text("SELECT * FROM ghl_auth_api_key(:h)"), {"h": secret_hash(key)})
        async with engines.app.connect() as conn, conn.begin():
            await conn.execute(
                text("SELECT set_config('app.location_id', :l, true)"), {"l": str(location.id)}
            )
            await conn.execute(text("SELECT * FROM locations WHERE id = :l"), {"l": location.id})

    where = "embedded" if "host=" in url else "DATABASE_URL"
    print(f"GET /api/v1/location with an API key ({where} PostgreSQL), {N} requests each:")
    print((await measure("raw SQL: key look-up + RLS location select", N, raw_sql)).line())
    await close_container(setup)
    await scenario("cache off (GHL_CACHE_TTL_SECONDS=0)", url, None, 0, key)
    await scenario("in-process cache (NOTIFY bus)", url, None, 60, key)
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        await scenario("Redis cache (5 s first level, pub/sub)", url, redis_url, 60, key)
    else:
        print("(REDIS_URL unset: no Redis row)")


def main() -> None:
    with bench_database() as url:
        asyncio.run(run(url))


if __name__ == "__main__":
    main()
