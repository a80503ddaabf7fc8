"""A location's daily sending allowance: its plan's `messages_per_day`, counted per day in the location's
own time zone (a day starts at its local midnight, whatever daylight saving does).

Every outbound message a location writes counts on the day it is written (queued, or scheduled for
later), whoever sends it: the inbox, the API, a workflow or a campaign. Compliance replies (STOP, START
and HELP confirmations) neither count nor wait: the law wants them sent. What happens at the limit:
- a single send (inbox, API, workflow step) is refused with `DailyLimitReached` (429, Retry-After until
  the location's next midnight), and writes nothing;
- a campaign takes its batches' shares ahead (`reserve`, a short transaction of its own, so its lanes do
  not queue behind one another's batches) and hands back what a batch did not use after it, again in a
  transaction of its own (a batch holding its rows never waits for the count: a single send holding the
  count may wait for those rows). A worker killed in between leaves at most a batch counted but unsent,
  never the reverse. When nothing is left for today the campaign's remaining recipients wait, still
  pending, until the location's next midnight (see CampaignService.run).
The count is kept beside the ledger (`MessageRepository.reserve_daily`), so no send scans a day of
messages."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, time, timedelta

from ghl_core.conversations.ports import QuotaUnitOfWork
from ghl_core.conversations.quiet_hours import resolve_zone
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.plans import DailyLimitReached, PlanCatalog, PlanLimits


class SendQuota:
    def __init__(self, plans: PlanCatalog, clock: Clock) -> None:
        self._plans = plans
        self._clock = clock

    def limits(self, location: Location) -> PlanLimits:
        return self._plans.limits(location.tier)

    def today(self, location: Location) -> date:
        return self._clock.now().astimezone(resolve_zone(None, location.timezone)).date()

    def next_day(self, location: Location) -> datetime:
        """When the location's next day begins (its next local midnight), in UTC."""
        zone = resolve_zone(None, location.timezone)
        tomorrow = self._clock.now().astimezone(zone).date() + timedelta(days=1)
        return datetime.combine(tomorrow, time(0), tzinfo=zone).astimezone(UTC)

    async def charge(self, uow: QuotaUnitOfWork, location: Location, count: int) -> tuple[date, int]:
        """Counts `count` messages written in the caller's transaction, or raises DailyLimitReached
        having counted none. Returns (day, count) so the caller can hand back what it did not write."""
        day = self.today(location)
        allowed = self.limits(location).messages_per_day
        granted = await uow.messages.reserve_daily(location.id, day, count, allowed)
        if granted < count:
            await uow.messages.release_daily(location.id, day, granted)
            raise self.refusal(location)
        return day, granted

    async def reserve(
        self, uow: UnitOfWorkFactory[QuotaUnitOfWork], location_id: uuid.UUID, wanted: int
    ) -> tuple[date, int]:
        """Takes up to `wanted` of today's allowance in a transaction of its own, committed at once;
        (day, how many were granted: 0 when today's is spent). The location is read there too, so a
        change of plan or time zone applies from the next reservation."""
        async with uow(TenantScope.location(location_id)) as tx:
            location = await tx.locations.get(location_id)
            if location is None:
                raise NotFound(f"location {location_id} not found")
            day = self.today(location)
            allowed = self.limits(location).messages_per_day
            granted = await tx.messages.reserve_daily(location.id, day, wanted, allowed)
            await tx.commit()
        return day, granted

    async def left_today(self, uow: UnitOfWorkFactory[QuotaUnitOfWork], location_id: uuid.UUID) -> int:
        """How many more messages the location may write today."""
        async with uow(TenantScope.location(location_id)) as tx:
            location = await tx.locations.get(location_id)
            if location is None:
                raise NotFound(f"location {location_id} not found")
            used = await tx.messages.count_daily(location_id, self.today(location))
        return max(0, self.limits(location).messages_per_day - used)

    def refusal(self, location: Location) -> DailyLimitReached:
        allowed = self.limits(location).messages_per_day
        wait = math.ceil((self.next_day(location) - self._clock.now()).total_seconds())
        return DailyLimitReached(
            f"the {location.tier.value} plan sends at most {allowed} messages a day; "
            f"this location's day ends at its next midnight ({location.timezone})",
            tier=location.tier,
            allowed=allowed,
            retry_after=max(1, wait),
        )
