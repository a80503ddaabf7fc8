"""The in-process cache: TTL and a bounded size (least recently used goes first), for one event loop.

Alone it serves one process. With an invalidation bus it keeps several processes coherent: `invalidate`
publishes the keys, every process drops them on receipt, and while the bus is down nothing is served or
stored (a process that may have missed an invalidation must not answer from memory).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from ghl_adapters.cache.bus import InvalidationBus

# An invalidated key is not stored again for this long: a read that began before the write committed
# would otherwise put the old row back.
TOMBSTONE_SECONDS = 5.0


class InProcessCache:
    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        clock: Callable[[], float] = time.monotonic,
        bus: InvalidationBus | None = None,
        max_ttl_seconds: float | None = None,
        tombstone_seconds: float = TOMBSTONE_SECONDS,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._clock = clock
        self._bus = bus
        self._max_ttl = max_ttl_seconds
        self._tombstone = tombstone_seconds
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._tombstones: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _usable(self) -> bool:
        if self._bus is None:
            return True
        self._bus.listen(self.evict, self.clear)
        return self._bus.connected

    async def get(self, key: str) -> bytes | None:
        if not self._usable():
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        ttl = ttl_seconds if self._max_ttl is None else min(ttl_seconds, self._max_ttl)
        if ttl <= 0 or not self._usable():
            return
        now = self._clock()
        blocked_until = self._tombstones.get(key)
        if blocked_until is not None:
            if blocked_until > now:
                return
            del self._tombstones[key]
        self._entries[key] = (now + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def invalidate(self, *keys: str) -> None:
        self.evict(keys)
        if self._bus is not None and keys:
            await self._bus.publish(keys)

    def evict(self, keys: Iterable[str]) -> None:
        """Drops keys from this process only (what a bus message does)."""
        now = self._clock()
        until = now + self._tombstone
        for key in keys:
            self._entries.pop(key, None)
            self._tombstones[key] = until
        if len(self._tombstones) > self._max:
            self._tombstones = {k: t for k, t in self._tombstones.items() if t > now}

    def clear(self) -> None:
        self._entries.clear()
