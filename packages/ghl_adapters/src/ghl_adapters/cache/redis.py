"""The Redis cache: an in-process first level (short TTL) in front of Redis (the TTL asked for).

`invalidate` replaces the keys in Redis with a short-lived tombstone (so a read that began before the
write committed cannot store the old row again), then publishes them: every process drops them from its
first level. While the subscription is down the first level is bypassed; when Redis itself is down,
reads and stores fail soft (the database answers) and `invalidate` raises, so the write's caller learns
that other processes may still hold the old value.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ghl_adapters.cache.bus import InvalidationBus
from ghl_adapters.cache.memory import TOMBSTONE_SECONDS, InProcessCache

log = logging.getLogger(__name__)

L1_TTL_SECONDS = 5.0
PREFIX = "ghl:cache:"
TOMBSTONE = b"\x00tombstone"  # cached values are JSON, never starting with NUL

# Store unless the key holds a tombstone.
_SET_UNLESS_TOMBSTONE = """
if redis.call('GET', KEYS[1]) == ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisCache:
    def __init__(
        self,
        redis: Redis,
        bus: InvalidationBus,
        *,
        max_entries: int = 10_000,
        l1_ttl_seconds: float = L1_TTL_SECONDS,
        tombstone_seconds: float = TOMBSTONE_SECONDS,
        prefix: str = PREFIX,
    ) -> None:
        self._redis = redis
        self._l1 = InProcessCache(
            max_entries, bus=bus, max_ttl_seconds=l1_ttl_seconds, tombstone_seconds=tombstone_seconds
        )
        self._tombstone_ms = max(1, int(tombstone_seconds * 1000))
        self._prefix = prefix
        self._set_script = redis.register_script(_SET_UNLESS_TOMBSTONE)

    @property
    def l1(self) -> InProcessCache:
        return self._l1

    async def get(self, key: str) -> bytes | None:
        value = await self._l1.get(key)
        if value is not None:
            return value
        try:
            raw = await self._redis.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            log.warning("cache read failed, going to the database: %s", exc)
            return None
        if raw is None or raw == TOMBSTONE:
            return None
        value = raw if isinstance(raw, bytes) else str(raw).encode()
        await self._l1.set(key, value, L1_TTL_SECONDS)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            return
        try:
            stored = await self._set_script(
                keys=[self._prefix + key], args=[value, max(1, int(ttl_seconds * 1000)), TOMBSTONE]
            )
        except (RedisError, OSError) as exc:
            log.warning("cache write failed: %s", exc)
            return
        if stored:
            await self._l1.set(key, value, ttl_seconds)

    async def invalidate(self, *keys: str) -> None:
        if not keys:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(self._prefix + key, TOMBSTONE, px=self._tombstone_ms)
            await pipe.execute()
        await self._l1.invalidate(*keys)  # drops them here, and publishes them to every process
