"""Rate limiting and failure counting shared by every process through Redis."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from ghl_adapters.ratelimit.memory import check_policy, window_seconds
from ghl_core.shared.ratelimit import RateLimitDecision, RateLimitPolicy

# One script run is one atomic step, so concurrent callers can never both spend the last token.
# The server's clock is the only clock: processes on machines with skewed clocks still agree.
# Floats leave the script as strings because Redis truncates Lua numbers to integers in replies.
# KEYS are the request's buckets and ARGV their (burst, per_minute) pairs: a token is taken from every
# bucket or, when any of them is empty, from none (a request one bucket refuses costs the others nothing).
_BUCKET_SCRIPT = """
local epsilon = 1e-9
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tokens = {}
local allowed = 1
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i]) / 60
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local held = tonumber(state[1])
  local ts = tonumber(state[2])
  if held == nil or ts == nil then
    held = burst
  else
    held = math.min(burst, held + math.max(0, now - ts) * rate)
  end
  tokens[i] = held
  if held < 1 - epsilon then
    allowed = 0
  end
end
local reply = {}
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i]) / 60
  local held = tokens[i]
  local retry_after = 0
  if allowed == 1 then
    held = math.max(0, held - 1)
  elseif held < 1 - epsilon then
    retry_after = (1 - held) / rate
  end
  local reset_after = math.max(0, (burst - held) / rate)
  -- Once reset_after passes, a missing key means the same as a full bucket.
  redis.call('HSET', key, 'tokens', string.format('%.17g', held), 'ts', string.format('%.17g', now))
  redis.call('PEXPIRE', key, math.max(1, math.ceil(reset_after * 1000)))
  reply[i] = {allowed, math.floor(held + epsilon), string.format('%.17g', reset_after),
              string.format('%.17g', retry_after)}
end
return reply
"""


class RedisRateLimiter:
    """Token buckets in Redis hashes that expire once the bucket would be full again."""

    def __init__(self, client: Redis, prefix: str = "ghl:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_BUCKET_SCRIPT)

    def key_for(self, key: str) -> str:
        return self._prefix + key

    async def acquire(self, key: str, policy: RateLimitPolicy) -> RateLimitDecision:
        [decision] = await self.acquire_all([(key, policy)])
        return decision

    async def acquire_all(self, buckets: Sequence[tuple[str, RateLimitPolicy]]) -> list[RateLimitDecision]:
        args: list[int] = []
        for _, policy in buckets:
            check_policy(policy)
            args += [policy.burst, policy.per_minute]
        reply: list[Any] = await self._script(keys=[self.key_for(key) for key, _ in buckets], args=args)
        return [
            RateLimitDecision(
                allowed=int(allowed) == 1,
                limit=policy.burst,
                remaining=int(remaining),
                reset_after=float(reset_after),
                retry_after=float(retry_after),
            )
            for (allowed, remaining, reset_after, retry_after), (_, policy) in zip(
                reply, buckets, strict=True
            )
        ]


class RedisFailureCounter:
    """A counter per key whose expiry is set by the failure that creates it (a fixed window)."""

    def __init__(self, client: Redis, prefix: str = "ghl:fail:") -> None:
        self._client = client
        self._prefix = prefix

    def key_for(self, key: str) -> str:
        return self._prefix + key

    async def record_failure(self, key: str, window: timedelta) -> int:
        window_ms = max(1, math.ceil(window_seconds(window) * 1000))
        name = self.key_for(key)
        # MULTI/EXEC: the expiry exists from the moment the key does, so a crash never leaves a
        # counter without one; NX keeps later failures from extending the window; INCR keeps the TTL.
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(name, 0, px=window_ms, nx=True)
            pipe.incr(name)
            _, count = await pipe.execute()
        return int(count)

    async def failures(self, key: str) -> tuple[int, int]:
        name = self.key_for(key)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.get(name)
            pipe.pttl(name)
            count, ttl_ms = await pipe.execute()
        if count is None or int(ttl_ms) < 0:
            # -1 (no expiry) cannot come from this class; treat a foreign key as no window at all.
            return 0, 0
        return int(count), max(1, math.ceil(int(ttl_ms) / 1000))

    async def clear(self, key: str) -> None:
        await self._client.delete(self.key_for(key))
