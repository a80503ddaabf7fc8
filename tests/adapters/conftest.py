"""Fixtures for adapter tests that reach real infrastructure."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    """A client for the test Redis; skips without one, unless CI requires it (`GHL_REQUIRE_REDIS=1`)."""
    client: Redis = Redis.from_url(redis_url(), socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        reason = f"Redis unreachable at {redis_url()}: {exc}"
        if os.environ.get("GHL_REQUIRE_REDIS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def unique_key() -> Callable[[str], str]:
    """Names keys no other test, or earlier run against the same server, can share.

    The same name gives the same key within one test, so a test can refer to a key twice.
    """
    run = uuid.uuid4().hex

    def make(name: str = "key") -> str:
        return f"test:{run}:{name}"

    return make
