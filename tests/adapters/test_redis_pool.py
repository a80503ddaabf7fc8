"""The container's Redis client under a burst: more concurrent callers than its pool holds wait for a
connection, as they would in a burst of requests that each take a rate-limit token, instead of failing
(the default pool raises MaxConnectionsError at once, which became a 500)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from ghl_adapters.container import REDIS_MAX_CONNECTIONS, _redis
from ghl_adapters.settings import Settings


@pytest.mark.redis
async def test_a_burst_beyond_the_pool_waits_for_a_connection(
    redis_client: Redis, unique_key: Callable[[str], str], tmp_path: Path
) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://unused@127.0.0.1:1/unused",
        redis_url=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        secret_key="x" * 32,
        data_dir=tmp_path,
        _env_file=None,
    )
    client = _redis(settings)
    assert client is not None
    empty = unique_key("empty-list")
    try:
        # Each call holds its connection for 0.1 s (a blocking pop on a list nobody fills).
        callers = REDIS_MAX_CONNECTIONS + 50
        results = await asyncio.gather(*(client.blpop([empty], timeout=0.1) for _ in range(callers)))
    finally:
        await client.aclose(close_connection_pool=True)
    assert results == [None] * callers
