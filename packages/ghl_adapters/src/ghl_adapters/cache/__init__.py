"""Adapters of the cache port: in-process, and Redis with an in-process first level; and the buses
that carry invalidations between processes (Redis pub/sub, PostgreSQL LISTEN/NOTIFY)."""

from ghl_adapters.cache.bus import InvalidationBus, PostgresInvalidationBus, RedisInvalidationBus
from ghl_adapters.cache.memory import InProcessCache
from ghl_adapters.cache.redis import RedisCache

__all__ = [
    "InProcessCache",
    "InvalidationBus",
    "PostgresInvalidationBus",
    "RedisCache",
    "RedisInvalidationBus",
]
