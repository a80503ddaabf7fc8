"""Rate limiters and failure counters: in-process, or shared through Redis."""

from __future__ import annotations

from ghl_adapters.ratelimit.memory import InMemoryFailureCounter, InMemoryRateLimiter
from ghl_adapters.ratelimit.redis import RedisFailureCounter, RedisRateLimiter

__all__ = ["InMemoryFailureCounter", "InMemoryRateLimiter", "RedisFailureCounter", "RedisRateLimiter"]
