"""Rate limiting: token buckets. Which buckets a request draws on, and their sizes by plan tier, are
decided by the caller (see ghl_core.tenancy.plans): one per credential and one per location."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    per_minute: int  # the sustained rate: tokens added per minute
    burst: int  # the bucket's size: requests allowed back to back


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    allowed: bool
    limit: int  # the bucket's size
    remaining: int  # whole tokens left after this request
    reset_after: float  # seconds until the bucket is full again
    retry_after: float  # seconds until one token is available (0 when allowed)


class RateLimiter(Protocol):
    async def acquire(self, key: str, policy: RateLimitPolicy) -> RateLimitDecision:
        """Takes one token from `key`'s bucket if it has one. Atomic across concurrent callers."""
        ...

    async def acquire_all(self, buckets: Sequence[tuple[str, RateLimitPolicy]]) -> list[RateLimitDecision]:
        """Takes one token from every bucket, or from none when any of them is empty (so a request
        refused by one bucket costs the others nothing). One decision per bucket, in order; all allowed
        or all refused. Atomic across concurrent callers."""
        ...
