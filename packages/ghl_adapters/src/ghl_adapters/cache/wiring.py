"""Which cache a process gets: Redis (with pub/sub) when REDIS_URL is set, in-process (with PostgreSQL
LISTEN/NOTIFY between processes) otherwise, or none when GHL_CACHE_TTL_SECONDS is 0."""

from __future__ import annotations

from redis.asyncio import Redis

from ghl_adapters.cache.bus import InvalidationBus, PostgresInvalidationBus, RedisInvalidationBus
from ghl_adapters.cache.memory import InProcessCache
from ghl_adapters.cache.redis import RedisCache
from ghl_adapters.settings import Settings
from ghl_adapters.sql.engines import Engines, async_url
from ghl_core.shared.cache import Cache, NoCache


def libpq_url(database_url: str) -> str:
    return async_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def cache_bus(
    settings: Settings, redis: Redis | None, database_url: str, engines: Engines
) -> InvalidationBus | None:
    if settings.cache_ttl_seconds <= 0:
        return None
    if redis is not None:
        return RedisInvalidationBus(redis)
    return PostgresInvalidationBus(libpq_url(database_url), engines.owner)


def cache(settings: Settings, redis: Redis | None, bus: InvalidationBus | None) -> Cache:
    if bus is None:
        return NoCache()
    if redis is not None:
        return RedisCache(redis, bus, max_entries=settings.cache_max_entries)
    return InProcessCache(settings.cache_max_entries, bus=bus)
