"""A campaign's run, the `campaigns.run` job: the audience frozen into recipients when sending starts, then
batches (`batches.CampaignBatches`) side by side in lanes at the location's pace until the campaign is
done, paused or cancelled, waits for the next day when the day's allowance is spent, or goes back to
draft when its audience outgrew the plan. See `ghl_core.campaigns.services` for the locks."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from ghl_core.campaigns.batches import CampaignBatches, Cursor, DailyLimit
from ghl_core.campaigns.jobs import run_job
from ghl_core.campaigns.models import Campaign, CampaignStatus
from ghl_core.campaigns.ports import CampaignsUnitOfWork
from ghl_core.campaigns.rules import FREEZE_BATCH, CampaignRules, too_large
from ghl_core.contacts.search import SearchPage
from ghl_core.conversations.common import system_actor
from ghl_core.conversations.models import Channel
from ghl_core.conversations.quota import SendQuota
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.pagination import decode_cursor
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.plans import PlanLimitReached

# Recipients per batch when the location sets no pace: big enough to keep the provider busy, small
# enough that a pause or cancel is seen within about a second.
DEFAULT_BATCH = 500
# Batches in flight at once in one run (see CampaignRunner.run).
DEFAULT_LANES = 3


class CampaignRunner:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[CampaignsUnitOfWork],
        clock: Clock,
        rules: CampaignRules,
        batches: CampaignBatches,
        quota: SendQuota,
        batch_size: int = DEFAULT_BATCH,
        lanes: int = DEFAULT_LANES,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._rules = rules
        self._batches = batches
        self._quota = quota
        self._batch = batch_size
        self._lanes = lanes

    async def run(
        self,
        location_id: uuid.UUID,
        campaign_id: uuid.UUID,
        *,
        max_seconds: float = 300.0,
        wake: bool = False,
    ) -> CampaignStatus | None:
        """Works through the campaign's recipients until it is done, paused or cancelled. After
        `max_seconds` it queues its own continuation, so no job holds a worker for hours. `wake`: the
        lock-free scheduled start, which only queues a (locked) run when the campaign is still due."""
        scope = TenantScope.location(location_id)
        started = time.monotonic()
        try:
            async with self._uow(scope) as uow:
                campaign = await uow.campaigns.get(campaign_id, lock=True)
                if campaign is None or campaign.deleted_at is not None:
                    return None
                if wake:
                    due = campaign.scheduled_at is None or (
                        campaign.scheduled_at <= self._clock.now() + timedelta(seconds=1)
                    )
                    # A scheduled start, or a campaign waiting for the location's next day.
                    if campaign.status in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING) and due:
                        await uow.jobs.enqueue(run_job(campaign))
                        await uow.commit()
                    return campaign.status  # moved, paused or cancelled since: nothing to do
                if campaign.status is CampaignStatus.SCHEDULED:
                    if campaign.scheduled_at and campaign.scheduled_at > self._clock.now() + timedelta(
                        seconds=1
                    ):
                        return campaign.status  # moved later: the job for the new time will come
                    campaign.status = CampaignStatus.SENDING
                if campaign.status is CampaignStatus.CANCELLED:
                    # A message whose provider refused it for now while the cancel ran: failed now.
                    await self._rules.drop_released(uow, campaign.id, self._clock.now())
                    await uow.commit()
                if campaign.status is not CampaignStatus.SENDING:
                    return campaign.status
                if campaign.started_at is None:
                    await self._freeze(uow, campaign)
                campaign.note = None
                await uow.campaigns.update(campaign)
                await uow.commit()
        except PlanLimitReached as exc:  # the audience grew past the plan's largest: nothing was frozen
            return await self._back_to_draft(scope, campaign_id, exc.detail)
        pace = await self._pace(location_id, campaign.channel)
        lanes = max(1, self._lanes)
        batch = max(1, min(self._batch, pace // lanes))
        # First what an earlier run left mid-send (messages written, outcome not recorded), alone: the
        # ledger settles each (sent, found at the provider, or sent now) before new batches begin.
        while True:
            status, done = await self._batches.once(scope, campaign_id, batch, resume=True)
            if status is not CampaignStatus.SENDING:
                return status
            if done:
                break
        stop = asyncio.Event()
        failures: list[BaseException] = []
        deferred: list[DailyLimit] = []
        cursor = Cursor()  # the highest position any lane has taken: lanes take only beyond it

        async def lane() -> CampaignStatus | None:
            """Batches one after another; lanes run side by side (their recipients never overlap: each
            takes rows the others do not hold), so the database and provider wait of one overlaps the
            work of another. A lane that sees a pause, a cancel or an error stops the others after
            their current batch: no lane is ever cut off mid-send."""
            try:
                while not stop.is_set():
                    if time.monotonic() - started > max_seconds:
                        return None
                    tick = time.monotonic()
                    status, done = await self._batches.once(scope, campaign_id, batch, cursor=cursor)
                    if status is not CampaignStatus.SENDING:
                        stop.set()
                        return status
                    if done:
                        return CampaignStatus.COMPLETED
                    await asyncio.sleep(max(0.0, batch * lanes / pace - (time.monotonic() - tick)))
                return CampaignStatus.SENDING
            except DailyLimit as exc:
                stop.set()
                deferred.append(exc)
                return CampaignStatus.SENDING
            except BaseException as exc:
                stop.set()
                failures.append(exc)
                raise

        outcomes = await asyncio.gather(*(lane() for _ in range(lanes)), return_exceptions=True)
        if failures:
            raise failures[0]  # a provider refusing for now (RetryLater) or a fault: the job retries
        for outcome in outcomes:
            if outcome in (CampaignStatus.PAUSED, CampaignStatus.CANCELLED):
                return outcome
        if deferred:
            # A lane found today's allowance spent. Perhaps only for a moment: the others' reservations
            # held what their batches then did not use (the campaign's last recipients, skipped ones).
            status = await self._complete(scope, campaign_id)
            if status is not CampaignStatus.SENDING:
                return status
            if not await self._quota.left_today(self._uow, location_id):
                return await self._wait_for_tomorrow(scope, campaign_id)
        elif all(outcome is CampaignStatus.COMPLETED for outcome in outcomes):
            status = await self._complete(scope, campaign_id)
            if status is not CampaignStatus.SENDING:
                return status
        # Time is up (or a recipient came back): a continuation finishes the campaign.
        async with self._uow(scope) as uow:
            await uow.jobs.enqueue(run_job(campaign))
            await uow.commit()
        return CampaignStatus.SENDING

    async def _pace(self, location_id: uuid.UUID, channel: Channel) -> int:
        """Messages a second: the location's setting for the channel, never above its plan's (the
        plan's own when there is no setting)."""
        async with self._uow(TenantScope.location(location_id)) as uow:
            settings = await uow.messaging_settings.get(location_id)
            location = await uow.locations.get(location_id)
        if location is None:  # pragma: no cover - the campaign's foreign key keeps it
            raise NotFound(f"location {location_id} not found")
        most = self._quota.limits(location).sends_per_second
        wanted = settings.sms_per_second if channel is Channel.SMS else settings.email_per_second
        return min(wanted or most, most)

    async def _back_to_draft(self, scope: TenantScope, campaign_id: uuid.UUID, why: str) -> CampaignStatus:
        """A campaign that may not start as it is (its audience outgrew the plan): editable again, with
        the reason in its note."""
        async with self._uow(scope) as uow:
            campaign = await uow.campaigns.get(campaign_id, lock=True)
            if campaign is None or campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING):
                return campaign.status if campaign else CampaignStatus.CANCELLED
            if campaign.started_at is not None:  # pragma: no cover - frozen meanwhile: it goes on
                return campaign.status
            campaign.status, campaign.scheduled_at, campaign.note = (
                CampaignStatus.DRAFT,
                None,
                f"not sent: {why}",
            )
            campaign.updated_at = self._clock.now()
            await uow.campaigns.update(campaign)
            location = await uow.locations.get(campaign.location_id)
            if location is not None:
                await self._rules.record(uow, system_actor(location), "update", campaign)
            await uow.commit()
        return CampaignStatus.DRAFT

    async def _wait_for_tomorrow(self, scope: TenantScope, campaign_id: uuid.UUID) -> CampaignStatus:
        """Today's messages are spent: the campaign stays sending, says why in its note, and a wake-up at
        the location's next midnight starts the next run."""
        async with self._uow(scope) as uow:
            campaign = await uow.campaigns.get(campaign_id, lock=True)
            location = await uow.locations.get(scope.location_id) if scope.location_id else None
            if campaign is None or location is None or campaign.status is not CampaignStatus.SENDING:
                return campaign.status if campaign else CampaignStatus.CANCELLED
            quota = self._quota
            resumes, most = quota.next_day(location), quota.limits(location).messages_per_day
            campaign.note = (
                f"waiting: the {location.tier.value} plan sends at most {most} messages a day; "
                f"the rest go on at {resumes.isoformat()} (the location's next midnight)"
            )
            campaign.updated_at = self._clock.now()
            await uow.campaigns.update(campaign)
            await uow.jobs.enqueue(run_job(campaign, resumes))
            await uow.commit()
        return CampaignStatus.SENDING

    async def _freeze(self, uow: CampaignsUnitOfWork, campaign: Campaign) -> None:
        """The audience as it is now, in search order, into recipient rows (one transaction with the
        switch to sending, so a crash freezes again from scratch)."""
        spec = await self._rules.check_audience(uow, campaign)
        # Counted again now: contacts added since the send (or its schedule) may have outgrown the plan.
        allowed = await self._rules.check_size(uow, campaign, spec)
        page = SearchPage(limit=FREEZE_BATCH)
        position = 0
        while True:
            found = await uow.contact_search.search(campaign.location_id, spec, page)
            ids = [c.id for c in found.items if c.deleted_at is None and c.erased_at is None]
            position += await uow.campaigns.add_recipients(campaign.id, campaign.location_id, ids, position)
            if position > allowed:  # contacts added while freezing: all of it is rolled back
                location = await uow.locations.get(campaign.location_id)
                raise too_large(location, allowed) if location else NotFound("location gone")
            if found.next_cursor is None:
                break
            parts = decode_cursor(found.next_cursor)
            page = SearchPage(limit=FREEZE_BATCH, after=(parts[2], parts[3]))
        campaign.recipients = position
        campaign.started_at = self._clock.now()

    async def _complete(self, scope: TenantScope, campaign_id: uuid.UUID) -> CampaignStatus:
        async with self._uow(scope) as uow:
            campaign = await uow.campaigns.get(campaign_id, lock=True)
            if campaign is None or campaign.status is not CampaignStatus.SENDING:
                return campaign.status if campaign else CampaignStatus.CANCELLED
            if await uow.campaigns.take(campaign_id, 1) or await uow.campaigns.take(
                campaign_id, 1, resume=True
            ):
                return CampaignStatus.SENDING
            campaign.status = CampaignStatus.COMPLETED
            campaign.completed_at = campaign.updated_at = self._clock.now()
            await uow.campaigns.update(campaign)
            await uow.commit()
        return CampaignStatus.COMPLETED
