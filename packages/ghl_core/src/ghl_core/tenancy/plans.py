"""What each plan tier allows, in one place: the API's rate limits (per credential, and per location for
all of its credentials together), how many live API keys a location may hold, and how much it may send
(the audience of one campaign, messages per day, and the fastest pace).

Decisions:
- Limits bound the location, not the credential: minting more keys (or location tokens) never buys more
  throughput, because every credential of a location also draws on the location's bucket (twice one
  credential's, so one busy integration cannot starve the others completely), and live keys are capped.
- The defaults below suit a hosted service; the operator replaces any of them per tier
  (`GHL_PLAN_LIMITS`, see docs/configuration.md), so a private deployment or a load test sets its own.
  `PlanCatalog.from_overrides` checks what it is given and names each bad entry.
- Sending limits are read when sending, not only when a campaign is saved: a location moved to a lower
  tier is held to the new limits from its next batch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ghl_core.shared.errors import Conflict, TooManyRequests
from ghl_core.shared.ratelimit import RateLimitPolicy
from ghl_core.tenancy.models import PlanTier

# The largest value any limit may be given: keeps arithmetic on it (buckets, counters) in range.
MAX_LIMIT = 1_000_000_000


@dataclass(frozen=True, slots=True)
class PlanLimits:
    api_per_minute: int  # one credential's sustained request rate
    api_burst: int  # one credential's requests back to back
    location_per_minute: int  # every credential of a location together
    location_burst: int
    api_keys: int  # live (unrevoked) API keys per location
    audience: int  # recipients of one campaign
    messages_per_day: int  # outbound messages per location per day (in the location's time zone)
    sends_per_second: int  # the fastest pace of a campaign, per channel

    @property
    def credential_policy(self) -> RateLimitPolicy:
        return RateLimitPolicy(per_minute=self.api_per_minute, burst=self.api_burst)

    @property
    def location_policy(self) -> RateLimitPolicy:
        return RateLimitPolicy(per_minute=self.location_per_minute, burst=self.location_burst)


DEFAULT_PLAN_LIMITS: Mapping[PlanTier, PlanLimits] = {
    PlanTier.FREE: PlanLimits(
        api_per_minute=60,
        api_burst=10,
        location_per_minute=120,
        location_burst=20,
        api_keys=5,
        audience=1_000,
        messages_per_day=2_000,
        sends_per_second=10,
    ),
    PlanTier.PRO: PlanLimits(
        api_per_minute=300,
        api_burst=50,
        location_per_minute=600,
        location_burst=100,
        api_keys=20,
        audience=50_000,
        messages_per_day=100_000,
        sends_per_second=100,
    ),
    PlanTier.ENTERPRISE: PlanLimits(
        api_per_minute=1000,
        api_burst=100,
        location_per_minute=2000,
        location_burst=200,
        api_keys=100,
        audience=1_000_000,
        messages_per_day=5_000_000,
        sends_per_second=10_000,
    ),
}

LIMIT_NAMES = tuple(f.name for f in fields(PlanLimits))


class PlanLimitReached(Conflict):
    """What was asked for goes beyond the location's plan (more live API keys, a larger audience)."""

    code = "plan_limit"
    title = "Beyond the plan's limits"

    def __init__(self, detail: str, *, limit: str, tier: PlanTier, allowed: int) -> None:
        super().__init__(detail)
        self.limit, self.tier, self.allowed = limit, tier, allowed

    def extensions(self) -> dict[str, object]:
        return {"limit": self.limit, "tier": self.tier.value, "allowed": self.allowed}


class DailyLimitReached(TooManyRequests):
    """The location has sent its plan's messages for today (its own time zone); more go out tomorrow."""

    code = "daily_message_limit"
    title = "Daily message limit reached"

    def __init__(self, detail: str, *, tier: PlanTier, allowed: int, retry_after: int) -> None:
        super().__init__(detail, retry_after)
        self.tier, self.allowed = tier, allowed

    def extensions(self) -> dict[str, object]:
        return {"limit": "messages_per_day", "tier": self.tier.value, "allowed": self.allowed}


class PlanCatalog:
    """The limits of each tier: the defaults, with the operator's overrides applied."""

    def __init__(self, limits: Mapping[PlanTier, PlanLimits] | None = None) -> None:
        self._limits = dict(DEFAULT_PLAN_LIMITS if limits is None else limits)
        missing = [tier.value for tier in PlanTier if tier not in self._limits]
        if missing:
            raise ValueError(f"no limits for the tier(s) {', '.join(missing)}")

    def limits(self, tier: PlanTier) -> PlanLimits:
        return self._limits[tier]

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None) -> PlanCatalog:
        """`{"free": {"messages_per_day": 500}, ...}`: any tier, any of its limits; the rest keep their
        defaults. Raises ValueError naming every unknown tier, unknown limit or bad value."""
        if not overrides:
            return cls()
        if not isinstance(overrides, Mapping):
            raise ValueError('must be a JSON object such as {"free": {"messages_per_day": 500}}')
        problems: list[str] = []
        limits = dict(DEFAULT_PLAN_LIMITS)
        for tier_name, changes in overrides.items():
            try:
                tier = PlanTier(tier_name)
            except ValueError:
                problems.append(f"unknown tier '{tier_name}' (one of {', '.join(t.value for t in PlanTier)})")
                continue
            if not isinstance(changes, Mapping):
                problems.append(f"{tier_name}: must be an object of limits")
                continue
            clean: dict[str, int] = {}
            for name, value in changes.items():
                if name not in LIMIT_NAMES:
                    problems.append(f"{tier_name}.{name}: unknown limit (one of {', '.join(LIMIT_NAMES)})")
                elif not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LIMIT:
                    problems.append(f"{tier_name}.{name}: must be a whole number from 1 to {MAX_LIMIT}")
                else:
                    clean[name] = value
            limits[tier] = replace(limits[tier], **clean)
        if problems:
            raise ValueError("; ".join(problems))
        return cls(limits)
