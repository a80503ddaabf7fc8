"""Rate limiting: a token bucket per credential, sized by the location's plan tier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ghl_core.tenancy.models import PlanTier


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    per_minute: int  # the sustained rate: tokens added per minute
    burst: int  # the bucket's size: requests allowed back to back


TIER_LIMITS: dict[PlanTier, RateLimitPolicy] = {
    PlanTier.FREE: RateLimitPolicy(per_minute=60, burst=10),
    PlanTier.PRO: RateLimitPolicy(per_minute=300, burst=50),
    PlanTier.ENTERPRISE: RateLimitPolicy(per_minute=1000, burst=100),
}


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
