"""Rate limiters and failure counters, in memory and on a real Redis."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import ConnectionPool, Redis

from ghl_adapters.ratelimit import (
    InMemoryFailureCounter,
    InMemoryRateLimiter,
    RedisFailureCounter,
    RedisRateLimiter,
)
from ghl_core.identity.ports import FailureCounter
from ghl_core.shared.ratelimit import RateLimiter, RateLimitPolicy

# One token a minute: the few milliseconds a Redis round trip takes cannot refill anything that matters.
SLOW = RateLimitPolicy(per_minute=1, burst=10)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=BACKENDS)
def limiter(request: pytest.FixtureRequest, unique_key: Callable[[str], str]) -> RateLimiter:
    if request.param == "memory":
        return InMemoryRateLimiter(clock=FakeClock())
    client: Redis = request.getfixturevalue("redis_client")
    return RedisRateLimiter(client, prefix=unique_key("rl") + ":")


@pytest.fixture(params=BACKENDS)
def counter(request: pytest.FixtureRequest, unique_key: Callable[[str], str]) -> FailureCounter:
    if request.param == "memory":
        return InMemoryFailureCounter(clock=FakeClock())
    client: Redis = request.getfixturevalue("redis_client")
    return RedisFailureCounter(client, prefix=unique_key("fail") + ":")


# --- both rate limiters -------------------------------------------------------------------------


async def test_first_request_reports_the_bucket(limiter: RateLimiter) -> None:
    decision = await limiter.acquire("a", SLOW)

    assert decision.allowed
    assert decision.limit == 10
    assert decision.remaining == 9
    assert decision.retry_after == 0
    # One token spent at one token a minute: full again in a minute.
    assert 59 < decision.reset_after <= 60


async def test_burst_is_allowed_then_denied_with_retry_after(limiter: RateLimiter) -> None:
    decisions = [await limiter.acquire("a", SLOW) for _ in range(10)]

    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(9, -1, -1))
    denied = await limiter.acquire("a", SLOW)
    assert not denied.allowed
    assert denied.remaining == 0
    assert 59 < denied.retry_after <= 60
    assert 599 < denied.reset_after <= 600


async def test_keys_have_independent_buckets(limiter: RateLimiter) -> None:
    policy = RateLimitPolicy(per_minute=1, burst=1)
    assert (await limiter.acquire("a", policy)).allowed
    assert not (await limiter.acquire("a", policy)).allowed

    other = await limiter.acquire("b", policy)

    assert other.allowed
    assert other.remaining == 0


async def test_concurrent_callers_never_overspend(limiter: RateLimiter) -> None:
    decisions = await asyncio.gather(*(limiter.acquire("hot", SLOW) for _ in range(50)))

    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))


async def test_a_shared_bucket_bounds_every_key_that_draws_on_it(limiter: RateLimiter) -> None:
    """A credential's own bucket and its location's: five keys of one location together get the
    location's burst, not five times their own."""
    own = RateLimitPolicy(per_minute=1, burst=3)
    shared = RateLimitPolicy(per_minute=1, burst=5)
    decisions = [
        await limiter.acquire_all([(f"key{k}", own), ("location", shared)])
        for k in range(5)
        for _ in range(3)
    ]

    assert sum(all(d.allowed for d in pair) for pair in decisions) == 5
    assert all(len({d.allowed for d in pair}) == 1 for pair in decisions)  # all or none
    refused = decisions[-1]
    assert refused[0].retry_after == 0  # key4's own bucket was not spent
    assert refused[0].remaining == 3
    assert 59 < refused[1].retry_after <= 60


async def test_a_refused_request_spends_no_other_bucket(limiter: RateLimiter) -> None:
    one = RateLimitPolicy(per_minute=1, burst=1)
    assert all(d.allowed for d in await limiter.acquire_all([("a", one), ("b", one)]))

    refused = await limiter.acquire_all([("c", one), ("b", one)])

    assert [d.allowed for d in refused] == [False, False]
    assert (await limiter.acquire("c", one)).allowed


@pytest.mark.parametrize(
    "policy", [RateLimitPolicy(per_minute=0, burst=10), RateLimitPolicy(per_minute=60, burst=0)]
)
async def test_a_policy_that_can_never_allow_is_refused(
    limiter: RateLimiter, policy: RateLimitPolicy
) -> None:
    with pytest.raises(ValueError, match="positive"):
        await limiter.acquire("a", policy)


# --- the in-memory rate limiter -----------------------------------------------------------------


async def test_memory_bucket_refills_at_the_sustained_rate() -> None:
    clock = FakeClock()
    limiter = InMemoryRateLimiter(clock=clock)
    free = RateLimitPolicy(per_minute=60, burst=10)
    for _ in range(10):
        assert (await limiter.acquire("a", free)).allowed

    denied = await limiter.acquire("a", free)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(1.0)
    assert denied.reset_after == pytest.approx(10.0)

    clock.advance(0.5)
    half = await limiter.acquire("a", free)
    assert not half.allowed
    assert half.retry_after == pytest.approx(0.5)

    clock.advance(0.5)
    assert (await limiter.acquire("a", free)).allowed
    assert not (await limiter.acquire("a", free)).allowed

    clock.advance(3_600)
    refilled = await limiter.acquire("a", free)
    assert refilled.allowed
    # Capped at the burst, however long the key was idle.
    assert refilled.remaining == 9


@pytest.mark.parametrize("per_minute", [1, 7, 13, 60, 1_000])
async def test_waiting_retry_after_is_always_enough(per_minute: int) -> None:
    clock = FakeClock()
    limiter = InMemoryRateLimiter(clock=clock)
    policy = RateLimitPolicy(per_minute=per_minute, burst=3)
    for _ in range(3):
        await limiter.acquire("a", policy)

    for _ in range(20):
        denied = await limiter.acquire("a", policy)
        assert not denied.allowed
        clock.advance(denied.retry_after)
        assert (await limiter.acquire("a", policy)).allowed


async def test_memory_clock_stepping_back_does_not_drain_a_bucket() -> None:
    clock = FakeClock()
    limiter = InMemoryRateLimiter(clock=clock)
    await limiter.acquire("a", SLOW)

    clock.advance(-3_600)

    assert (await limiter.acquire("a", SLOW)).remaining == 8


async def test_memory_evicts_the_least_recently_used_bucket() -> None:
    limiter = InMemoryRateLimiter(clock=FakeClock(), max_keys=3)
    one = RateLimitPolicy(per_minute=1, burst=1)
    for key in ("a", "b", "c"):
        assert (await limiter.acquire(key, one)).allowed
    assert not (await limiter.acquire("a", one)).allowed  # "a" is now the most recently used

    await limiter.acquire("d", one)

    assert len(limiter) == 3
    assert not (await limiter.acquire("a", one)).allowed  # kept, still empty
    assert (await limiter.acquire("b", one)).allowed  # evicted, so it came back full


async def test_memory_stays_within_max_keys() -> None:
    limiter = InMemoryRateLimiter(clock=FakeClock(), max_keys=100)
    for i in range(1_000):
        await limiter.acquire(f"k{i}", SLOW)

    assert len(limiter) == 100


@given(
    per_minute=st.integers(min_value=1, max_value=6_000),
    burst=st.integers(min_value=1, max_value=100),
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=120, allow_nan=False, allow_infinity=False),
            st.integers(min_value=0, max_value=30),
        ),
        max_size=40,
    ),
)
async def test_memory_never_allows_more_than_burst_plus_refill(
    per_minute: int, burst: int, steps: list[tuple[float, int]]
) -> None:
    clock = FakeClock()
    limiter = InMemoryRateLimiter(clock=clock)
    policy = RateLimitPolicy(per_minute=per_minute, burst=burst)
    allowed = 0
    for advance, acquires in steps:
        clock.advance(advance)
        for _ in range(acquires):
            decision = await limiter.acquire("k", policy)
            allowed += decision.allowed
            assert 0 <= decision.remaining <= (burst - 1 if decision.allowed else 0)
            assert (decision.retry_after == 0) == decision.allowed

    elapsed = clock.now - 1_000.0
    assert allowed <= burst + per_minute / 60 * elapsed + 1e-6


# --- the Redis rate limiter ---------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_bucket_expires_when_it_would_be_full(
    redis_client: Redis, unique_key: Callable[[str], str]
) -> None:
    prefix = unique_key("rl") + ":"
    limiter = RedisRateLimiter(redis_client, prefix=prefix)
    for _ in range(3):
        decision = await limiter.acquire("a", SLOW)

    ttl_ms = await redis_client.pttl(prefix + "a")
    assert 0 < ttl_ms <= math.ceil(decision.reset_after * 1_000)
    assert ttl_ms > 179_000  # three tokens at one a minute


@pytest.mark.redis
async def test_redis_clients_on_separate_connections_share_buckets(
    redis_client: Redis, unique_key: Callable[[str], str]
) -> None:
    prefix = unique_key("rl") + ":"
    pool = redis_client.connection_pool
    other = Redis(
        connection_pool=ConnectionPool(connection_class=pool.connection_class, **pool.connection_kwargs)
    )
    try:
        limiters = [RedisRateLimiter(redis_client, prefix=prefix), RedisRateLimiter(other, prefix=prefix)]
        decisions = await asyncio.gather(*(limiters[i % 2].acquire("shared", SLOW) for i in range(40)))
    finally:
        await other.aclose()

    assert sum(d.allowed for d in decisions) == 10


# --- both failure counters ----------------------------------------------------------------------

MINUTE = timedelta(minutes=1)


async def test_failures_are_counted_within_the_window(counter: FailureCounter) -> None:
    assert await counter.failures("user@example.com") == (0, 0)

    counts = [await counter.record_failure("user@example.com", MINUTE) for _ in range(3)]

    assert counts == [1, 2, 3]
    count, seconds_left = await counter.failures("user@example.com")
    assert count == 3
    assert 55 <= seconds_left <= 60


async def test_a_later_failure_does_not_extend_the_window(counter: FailureCounter) -> None:
    await counter.record_failure("k", MINUTE)

    await counter.record_failure("k", timedelta(hours=1))

    count, seconds_left = await counter.failures("k")
    assert count == 2
    assert seconds_left <= 60


async def test_clearing_starts_over(counter: FailureCounter) -> None:
    await counter.record_failure("k", MINUTE)
    await counter.record_failure("k", MINUTE)

    await counter.clear("k")

    assert await counter.failures("k") == (0, 0)
    assert await counter.record_failure("k", MINUTE) == 1


async def test_failure_keys_are_independent(counter: FailureCounter) -> None:
    await counter.record_failure("a", MINUTE)
    await counter.record_failure("a", MINUTE)

    assert await counter.record_failure("b", MINUTE) == 1
    await counter.clear("b")
    assert (await counter.failures("a"))[0] == 2


async def test_concurrent_failures_are_all_counted(counter: FailureCounter) -> None:
    counts = await asyncio.gather(*(counter.record_failure("k", MINUTE) for _ in range(25)))

    assert sorted(counts) == list(range(1, 26))


@pytest.mark.parametrize("window", [timedelta(0), timedelta(seconds=-1)])
async def test_an_empty_window_is_refused(counter: FailureCounter, window: timedelta) -> None:
    with pytest.raises(ValueError, match="positive"):
        await counter.record_failure("k", window)


async def test_memory_window_expires() -> None:
    clock = FakeClock()
    counter = InMemoryFailureCounter(clock=clock)
    await counter.record_failure("k", MINUTE)
    clock.advance(30)
    await counter.record_failure("k", MINUTE)
    assert await counter.failures("k") == (2, 30)

    clock.advance(29.5)
    assert await counter.failures("k") == (2, 1)  # rounded up: still inside the window
    clock.advance(0.5)

    assert await counter.failures("k") == (0, 0)
    assert await counter.record_failure("k", MINUTE) == 1
    assert len(counter) == 1


async def test_memory_failure_counter_stays_within_max_keys() -> None:
    counter = InMemoryFailureCounter(clock=FakeClock(), max_keys=10)
    for i in range(100):
        await counter.record_failure(f"k{i}", MINUTE)

    assert len(counter) == 10
    assert await counter.failures("k99") == (1, 60)
    assert await counter.failures("k0") == (0, 0)


@pytest.mark.redis
async def test_redis_window_is_a_ttl_that_ends_it(
    redis_client: Redis, unique_key: Callable[[str], str]
) -> None:
    prefix = unique_key("fail") + ":"
    counter = RedisFailureCounter(redis_client, prefix=prefix)
    await counter.record_failure("slow", MINUTE)
    await counter.record_failure("slow", MINUTE)
    ttl_ms = await redis_client.pttl(prefix + "slow")
    assert 55_000 < ttl_ms <= 60_000

    await counter.record_failure("fast", timedelta(milliseconds=50))
    assert await counter.failures("fast") == (1, 1)  # sub-second windows round up to a second
    await asyncio.sleep(0.1)

    assert await counter.failures("fast") == (0, 0)
    assert await redis_client.exists(prefix + "fast") == 0
    assert await counter.record_failure("fast", MINUTE) == 1
