"""In-process rate limiting and failure counting, for a single process without Redis."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from ghl_core.shared.ratelimit import RateLimitDecision, RateLimitPolicy

# Refill arithmetic in floats can leave 0.9999999 of a token after exactly `retry_after` seconds;
# this tolerance keeps "wait retry_after, then try again" working.
EPSILON = 1e-9


def check_policy(policy: RateLimitPolicy) -> float:
    """Returns the refill rate in tokens per second."""
    if policy.per_minute <= 0 or policy.burst <= 0:
        raise ValueError(f"a rate limit policy needs a positive rate and burst, got {policy}")
    return policy.per_minute / 60.0


def window_seconds(window: timedelta) -> float:
    seconds = window.total_seconds()
    if seconds <= 0:
        raise ValueError(f"a failure window must be positive, got {window}")
    return seconds


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at: float


class InMemoryRateLimiter:
    """Token buckets in a dict, least recently used evicted beyond `max_keys`.

    Evicting a bucket forgets its debt (it comes back full), so `max_keys` should exceed the number of
    keys active within one refill period; LRU order makes the forgotten buckets the idle ones.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        # Sync route handlers may run in worker threads, so asyncio's single thread is not enough.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    async def acquire(self, key: str, policy: RateLimitPolicy) -> RateLimitDecision:
        return self.try_acquire(key, policy)

    async def acquire_all(self, buckets: Sequence[tuple[str, RateLimitPolicy]]) -> list[RateLimitDecision]:
        return self.try_acquire_all(buckets)

    def try_acquire(self, key: str, policy: RateLimitPolicy) -> RateLimitDecision:
        [decision] = self.try_acquire_all([(key, policy)])
        return decision

    def try_acquire_all(self, buckets: Sequence[tuple[str, RateLimitPolicy]]) -> list[RateLimitDecision]:
        rates = [check_policy(policy) for _, policy in buckets]
        with self._lock:
            now = self._clock()
            held = [
                self._refilled(key, policy, rate, now)
                for (key, policy), rate in zip(buckets, rates, strict=True)
            ]
            allowed = all(bucket.tokens >= 1.0 - EPSILON for bucket in held)
            return [
                _take(bucket, policy.burst, rate, allowed)
                for bucket, (_, policy), rate in zip(held, buckets, rates, strict=True)
            ]

    def _refilled(self, key: str, policy: RateLimitPolicy, rate: float, now: float) -> _Bucket:
        burst = float(policy.burst)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=burst, updated_at=now)
            self._buckets[key] = bucket
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            # max(0, ...) so a clock that steps back never drains a bucket.
            elapsed = max(0.0, now - bucket.updated_at)
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
            bucket.updated_at = now
        return bucket


def _take(bucket: _Bucket, burst: int, rate: float, allowed: bool) -> RateLimitDecision:
    """`allowed`: every bucket of the request has a token, so this one gives one."""
    if allowed:
        bucket.tokens = max(0.0, bucket.tokens - 1.0)
    retry_after = 0.0 if bucket.tokens >= 1.0 - EPSILON or allowed else (1.0 - bucket.tokens) / rate
    return RateLimitDecision(
        allowed=allowed,
        limit=burst,
        remaining=math.floor(bucket.tokens + EPSILON),
        reset_after=max(0.0, (burst - bucket.tokens) / rate),
        retry_after=retry_after,
    )


class InMemoryFailureCounter:
    """Fixed windows that start at a key's first failure; least recently failed evicted beyond `max_keys`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._clock = clock
        self._max_keys = max_keys
        self._windows: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (count, ends_at)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._windows)

    async def record_failure(self, key: str, window: timedelta) -> int:
        seconds = window_seconds(window)
        with self._lock:
            now = self._clock()
            count, ends_at = self._live(key, now)
            if count == 0:
                ends_at = now + seconds
            self._windows[key] = (count + 1, ends_at)
            self._windows.move_to_end(key)
            # Windows share a few lengths, so the least recently failed are mostly the expired ones.
            while len(self._windows) > self._max_keys:
                self._windows.popitem(last=False)
            return count + 1

    async def failures(self, key: str) -> tuple[int, int]:
        with self._lock:
            now = self._clock()
            count, ends_at = self._live(key, now)
            if count == 0:
                return 0, 0
            # Rounded up so a live window never reports 0 seconds left.
            return count, max(1, math.ceil(ends_at - now))

    async def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)

    def _live(self, key: str, now: float) -> tuple[int, float]:
        entry = self._windows.get(key)
        if entry is None:
            return 0, now
        if entry[1] <= now:
            del self._windows[key]
            return 0, now
        return entry
