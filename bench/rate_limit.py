"""The per-request cost of the rate limiter: the in-process bucket beside a bare dict update, and the
Redis Lua script beside a bare PING round trip to the same server.

    uv run python bench/rate_limit.py      # REDIS_URL, default redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).parent))
from common import measure

from ghl_adapters.ratelimit import InMemoryRateLimiter, RedisRateLimiter
from ghl_core.shared.ratelimit import RateLimitPolicy

N = 5000
POLICY = RateLimitPolicy(per_minute=10_000_000, burst=10_000_000)


async def run() -> None:
    memory = InMemoryRateLimiter()
    buckets: dict[str, float] = {}

    async def bare_dict() -> None:
        buckets["k"] = buckets.get("k", 0.0) + 1.0

    async def in_memory() -> None:
        await memory.acquire("bench", POLICY)

    print("rate limiter, per request:")
    print((await measure("baseline: dict update", N, bare_dict)).line())
    print((await measure("in-process token bucket", N, in_memory)).line())

    client = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        await client.ping()
    except OSError as exc:
        print(f"Redis unreachable ({exc}); skipped the Redis figures")
        return
    limiter = RedisRateLimiter(client, prefix=f"ghl:bench:{uuid.uuid4().hex[:6]}:")

    async def ping() -> None:
        await client.ping()

    async def redis_bucket() -> None:
        await limiter.acquire("bench", POLICY)

    print((await measure("baseline: Redis PING round trip", N, ping)).line())
    print((await measure("Redis token bucket (one Lua script)", N, redis_bucket)).line())
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(run())
