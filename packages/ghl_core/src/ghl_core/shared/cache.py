"""The cache port, and typed JSON reads through it for the hot look-ups (credentials, locations, custom
field definitions).

What is cached is a copy of committed rows, keyed by a namespaced name (`cred:apikey:<sha256>`,
`cred:user:<id>`, `location:<id>`, `custom_fields:<location_id>`). A service that changes one of those
rows calls `invalidate` after its transaction commits: invalidating before the commit would let another
process read the old row and cache it again between the two. The adapters drop an invalidated key in every
process at once and refuse, for a few seconds, to store it again, so a read that started before the
commit cannot put the old row back either.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

DEFAULT_TTL_SECONDS = 60.0


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    async def invalidate(self, *keys: str) -> None:
        """Drops the keys in every process that shares the cache, before returning."""
        ...


class NoCache:
    """Caching switched off: every read goes to the database."""

    async def get(self, key: str) -> bytes | None:
        return None

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        return None

    async def invalidate(self, *keys: str) -> None:
        return None


def api_key_cache_key(key_hash: str) -> str:
    return f"cred:apikey:{key_hash}"


def user_cache_key(user_id: uuid.UUID) -> str:
    """A live user's token version (access token liveness)."""
    return f"cred:user:{user_id}"


def location_cache_key(location_id: uuid.UUID) -> str:
    return f"location:{location_id}"


def custom_fields_cache_key(location_id: uuid.UUID) -> str:
    return f"custom_fields:{location_id}"


class ReadCache:
    """Typed values stored as JSON in a `Cache`, all with one TTL. Without a cache it only loads."""

    def __init__(self, cache: Cache | None = None, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self._cache: Cache = cache if cache is not None and ttl_seconds > 0 else NoCache()
        self._ttl = ttl_seconds

    async def get_or_load(
        self,
        key: str,
        load: Callable[[], Awaitable[T | None]],
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
        *,
        fresh: Callable[[T], bool] | None = None,
    ) -> T | None:
        """The cached value, else `load()` (cached when not None). `fresh` may refuse a cached value,
        which is then loaded again."""
        raw = await self._cache.get(key)
        if raw is not None:
            try:
                value = decode(json.loads(raw))
            except (ValueError, KeyError, TypeError):
                value = None  # written by another version of the code: load it again
            if value is not None and (fresh is None or fresh(value)):
                return value
        loaded = await load()
        if loaded is not None:
            await self.put(key, loaded, encode)
        return loaded

    async def put(self, key: str, value: T, encode: Callable[[T], Any]) -> None:
        body = json.dumps(encode(value), separators=(",", ":")).encode()
        await self._cache.set(key, body, self._ttl)

    async def invalidate(self, *keys: str) -> None:
        if keys:
            await self._cache.invalidate(*keys)
