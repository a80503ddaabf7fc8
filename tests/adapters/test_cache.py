"""The cache adapters: in-process (TTL, LRU, tombstones), Redis with its first level, and the two
invalidation buses (Redis pub/sub, PostgreSQL LISTEN/NOTIFY) between independent caches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

import pytest
from redis.asyncio import Redis

from ghl_adapters.cache import InProcessCache, PostgresInvalidationBus, RedisCache, RedisInvalidationBus
from ghl_adapters.cache.bus import InvalidationBus, _chunks
from ghl_adapters.cache.wiring import libpq_url
from ghl_adapters.sql.engines import create_engines


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeBus:
    """A bus under the test's control: up or down, and what was published."""

    def __init__(self, connected: bool = True) -> None:
        self.connected = connected
        self.published: list[list[str]] = []
        self.on_keys: Callable[[Iterable[str]], None] | None = None
        self.on_reset: Callable[[], None] | None = None

    def listen(self, on_keys: Callable[[Iterable[str]], None], on_reset: Callable[[], None]) -> None:
        self.on_keys, self.on_reset = on_keys, on_reset

    async def publish(self, keys: Sequence[str]) -> None:
        self.published.append(list(keys))

    async def close(self) -> None:
        self.connected = False


async def eventually(check: Callable[[], object], seconds: float = 5.0) -> None:
    """Waits (bounded) for a message from another connection to arrive; not a timing assertion."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the invalidation never arrived")
        await asyncio.sleep(0.01)


# --- in-process -----------------------------------------------------------------------------------


async def test_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    cache = InProcessCache(clock=clock)
    await cache.set("a", b"1", 10)
    assert await cache.get("a") == b"1"
    clock.now += 9.9
    assert await cache.get("a") == b"1"
    clock.now += 0.1
    assert await cache.get("a") is None
    assert len(cache) == 0
    await cache.set("z", b"0", 0)  # a TTL of zero stores nothing
    assert await cache.get("z") is None


async def test_the_least_recently_used_entry_goes_first() -> None:
    cache = InProcessCache(max_entries=2, clock=FakeClock())
    await cache.set("a", b"1", 60)
    await cache.set("b", b"2", 60)
    assert await cache.get("a") == b"1"  # now b is the least recently used
    await cache.set("c", b"3", 60)
    assert len(cache) == 2
    assert (await cache.get("a"), await cache.get("b"), await cache.get("c")) == (b"1", None, b"3")
    with pytest.raises(ValueError, match="max_entries"):
        InProcessCache(max_entries=0)


async def test_invalidate_drops_and_blocks_the_key_for_a_while() -> None:
    clock = FakeClock()
    cache = InProcessCache(clock=clock, tombstone_seconds=5)
    await cache.set("a", b"old", 60)
    await cache.set("b", b"2", 60)
    await cache.invalidate("a")
    assert await cache.get("a") is None
    assert await cache.get("b") == b"2"
    await cache.set("a", b"old", 60)  # a read that began before the write committed
    assert await cache.get("a") is None
    clock.now += 5
    await cache.set("a", b"new", 60)
    assert await cache.get("a") == b"new"


async def test_ttl_is_capped_for_a_first_level() -> None:
    clock = FakeClock()
    cache = InProcessCache(clock=clock, max_ttl_seconds=5)
    await cache.set("a", b"1", 60)
    clock.now += 5
    assert await cache.get("a") is None


async def test_tombstones_are_pruned() -> None:
    clock = FakeClock()
    cache = InProcessCache(max_entries=2, clock=clock, tombstone_seconds=1)
    cache.evict(["a", "b"])
    clock.now += 2
    cache.evict(["c"])  # over the bound: the expired ones go
    await cache.set("a", b"1", 60)
    assert await cache.get("a") == b"1"


async def test_with_a_bus_invalidations_are_published_and_received() -> None:
    bus = FakeBus()
    cache = InProcessCache(clock=FakeClock(), bus=bus, tombstone_seconds=0)
    await cache.set("a", b"1", 60)
    assert bus.on_keys is not None
    await cache.invalidate("a", "b")
    assert bus.published == [["a", "b"]]
    await cache.set("a", b"1", 60)
    bus.on_keys(["a"])  # another process's invalidation
    assert await cache.get("a") is None


async def test_nothing_is_served_or_stored_while_the_bus_is_down() -> None:
    bus = FakeBus()
    cache = InProcessCache(clock=FakeClock(), bus=bus)
    await cache.set("a", b"1", 60)
    bus.connected = False
    assert await cache.get("a") is None
    await cache.set("b", b"2", 60)
    bus.connected = True
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1"
    assert bus.on_reset is not None
    bus.on_reset()  # the bus reconnected: whatever was missed is forgotten
    assert await cache.get("a") is None


def test_notify_payloads_stay_under_the_limit() -> None:
    keys = [f"location:{i:040d}" for i in range(500)]
    chunks = _chunks(keys, 7000)
    assert len(chunks) > 1
    assert all(len(c.encode()) <= 7000 for c in chunks)
    assert [k for c in chunks for k in c.split("\n")] == keys
    assert _chunks([], 7000) == []


# --- Redis ----------------------------------------------------------------------------------------


@pytest.fixture
async def redis_pair(
    redis_client: Redis, unique_key: Callable[[str], str]
) -> AsyncIterator[tuple[RedisCache, RedisCache]]:
    """Two caches as two processes would have them: one Redis, each its own first level and subscription."""
    channel = unique_key("channel")
    buses = [RedisInvalidationBus(redis_client, channel=channel) for _ in range(2)]
    first, second = (RedisCache(redis_client, bus, prefix=unique_key("c") + ":") for bus in buses)
    try:
        yield first, second
    finally:
        for bus in buses:
            await bus.close()


async def _listening(*buses: InvalidationBus) -> None:
    await eventually(lambda: all(b.connected for b in buses))


@pytest.mark.redis
async def test_redis_shares_values_and_invalidates_every_first_level(
    redis_pair: tuple[RedisCache, RedisCache],
) -> None:
    first, second = redis_pair
    await first.get("warm-up")
    await second.get("warm-up")
    await _listening(first._l1._bus, second._l1._bus)  # type: ignore[arg-type]
    await first.set("k", b"v1", 60)
    assert await second.get("k") == b"v1"  # from Redis, now in second's first level too
    assert await second.l1.get("k") == b"v1"
    await first.invalidate("k")
    await eventually(lambda: second.l1._entries.get("k") is None)
    assert await second.get("k") is None
    await second.set("k", b"stale", 60)  # refused: the tombstone is still there
    assert await first.get("k") is None


@pytest.mark.redis
async def test_redis_down_means_the_database_answers(unique_key: Callable[[str], str]) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    bus = RedisInvalidationBus(dead, channel=unique_key("channel"))
    cache = RedisCache(dead, bus)
    try:
        assert await cache.get("k") is None
        await cache.set("k", b"v", 60)
        assert await cache.get("k") is None
        assert not bus.connected
        with pytest.raises(Exception, match=r"[Cc]onnect"):
            await cache.invalidate("k")
    finally:
        await bus.close()
        await dead.aclose()


# --- PostgreSQL LISTEN/NOTIFY -----------------------------------------------------------------------


async def test_postgres_bus_invalidates_another_process_cache(migrated_url: str) -> None:
    engines = create_engines(migrated_url, pool_size=1)
    buses = [PostgresInvalidationBus(libpq_url(migrated_url), engines.owner, channel="ghl_cache_test")]
    buses.append(PostgresInvalidationBus(libpq_url(migrated_url), engines.owner, channel="ghl_cache_test"))
    first, second = (InProcessCache(bus=bus) for bus in buses)
    try:
        await first.get("warm-up")
        await second.get("warm-up")
        await _listening(*buses)
        await second.set("location:1", b"old", 60)
        assert await second.get("location:1") == b"old"
        keys = ["location:1", *(f"filler:{i:060d}" for i in range(200))]  # more than one NOTIFY
        await first.invalidate(*keys)
        await eventually(lambda: second._entries.get("location:1") is None)
        await second.set("location:1", b"old", 60)  # tombstoned here too
        assert await second.get("location:1") is None
    finally:
        for bus in buses:
            await bus.close()
        await engines.dispose()
