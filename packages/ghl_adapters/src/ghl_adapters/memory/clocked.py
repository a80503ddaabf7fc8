"""The cache and the login failure counter in memory, timed by a `Clock` (so tests and simulations that
move the clock move their expiries too). For one process: nothing is shared between processes."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from ghl_core.shared.clock import Clock


class MemoryCache:
    """The `Cache` port: values expire on the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.values: dict[str, tuple[bytes, datetime]] = {}

    async def get(self, key: str) -> bytes | None:
        found = self.values.get(key)
        if found is None or found[1] <= self.clock.now():
            return None
        return found[0]

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self.values[key] = (value, self.clock.now() + timedelta(seconds=ttl_seconds))

    async def invalidate(self, *keys: str) -> None:
        for key in keys:
            self.values.pop(key, None)

    def clear(self) -> None:
        self.values.clear()


class MemoryFailureCounter:
    """The `FailureCounter` port: fixed windows that start with the first failure."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._windows: dict[str, tuple[int, datetime]] = {}

    def _live(self, key: str) -> tuple[int, datetime] | None:
        window = self._windows.get(key)
        if window is not None and window[1] <= self.clock.now():
            del self._windows[key]
            return None
        return window

    async def record_failure(self, key: str, window: timedelta) -> int:
        live = self._live(key)
        count, ends = live if live else (0, self.clock.now() + window)
        self._windows[key] = (count + 1, ends)
        return count + 1

    async def failures(self, key: str) -> tuple[int, int]:
        live = self._live(key)
        if live is None:
            return 0, 0
        return live[0], math.ceil((live[1] - self.clock.now()).total_seconds())

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)
