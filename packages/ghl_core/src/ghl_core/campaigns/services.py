"""Use cases of campaigns: authoring, the lifecycle (send, pause, resume, cancel) and statistics.

The context's modules: `templates` (message templates), `rules` (audience, plan size, recording, a
cancel's held messages), `runner` (the `campaigns.run` job), `batches` (one batch of it), `jobs` (the job
request), `ports` (repositories and the narrow units of work).

A campaign sends one message (an SMS or an email rendered from its template for each contact) to an
audience chosen like a contact search. When sending starts the audience is frozen into recipient rows;
the `campaigns.run` job then works through them in batches: each batch's messages are written through
the conversations ledger (cause `campaign:{id}:{contact}`, so a contact gets one message per campaign
however often a batch is retried) and delivered together at the location's pace. Pause, resume and
cancel are read between batches, so they take effect within a batch (about a second).

The location's plan bounds what a campaign sends (ghl_core.tenancy.plans): its audience (refused at
send; a scheduled campaign whose audience grew past it goes back to draft, with a note, when its time
comes), its pace (the messaging settings' rate, never above the plan's; the plan's when none is set) and
the messages a day (each batch reserves its share of today's allowance first; when it is spent, the
campaign waits, still sending, until the location's next midnight).

Locks, always taken in this order so no two transactions wait on each other: the campaign's send gate
(`CampaignRepository.gate`), the campaign row, its recipient rows, then its messages (in id order). A
batch holds the gate shared while it writes its messages and again while it claims them; pause, resume
and cancel hold it alone. So a cancel waits for the batch under way (never for long: no provider call
is made under it), and once it commits no message of the campaign is claimed for a provider: the ones
claimed before it are in flight and finish; the ones written but not claimed are failed, never sent."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from ghl_core.campaigns.batches import CampaignBatches
from ghl_core.campaigns.jobs import RUN_KIND, run_job
from ghl_core.campaigns.models import (
    EDITABLE,
    FINISHED,
    Campaign,
    CampaignStateError,
    CampaignStats,
    CampaignStatus,
    EngagementKind,
    RecipientStatus,
)
from ghl_core.campaigns.ports import CampaignsUnitOfWork
from ghl_core.campaigns.rules import CampaignRules, clean_audience, clean_name
from ghl_core.campaigns.runner import DEFAULT_BATCH, DEFAULT_LANES, CampaignRunner
from ghl_core.campaigns.templates import TemplateService
from ghl_core.contacts.selection import ContactFinder
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import Channel
from ghl_core.conversations.sender import MessageSender
from ghl_core.conversations.templates import TemplateRenderer
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission

# Re-exported: where the container, the job kinds and the benches have always found them.
__all__ = ["DEFAULT_BATCH", "DEFAULT_LANES", "RUN_KIND", "CampaignService", "TemplateService", "run_job"]


class CampaignService:
    """Authoring, the lifecycle (send, pause, resume, cancel) and statistics; the run it hands to a
    `CampaignRunner` it builds from the same collaborators."""

    def __init__(
        self,
        uow: UnitOfWorkFactory[CampaignsUnitOfWork],
        clock: Clock,
        conversations: MessageSender,
        templates: TemplateService,
        renderer: TemplateRenderer,
        finder: ContactFinder,
        *,
        batch_size: int = DEFAULT_BATCH,
        lanes: int = DEFAULT_LANES,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._templates = templates
        self._rules = CampaignRules(clock=clock, finder=finder, quota=conversations.quota)
        self._runner = CampaignRunner(
            uow=uow,
            clock=clock,
            rules=self._rules,
            batches=CampaignBatches(uow=uow, sender=conversations, renderer=renderer),
            quota=conversations.quota,
            batch_size=batch_size,
            lanes=lanes,
        )

    # ------------------------------------------------------------ authoring

    async def create(self, actor: Actor, data: dict[str, Any]) -> Campaign:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        allowed = {"name", "channel", "template_id", "subject", "body", "html", "audience"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValidationFailed([FieldError(f"/{k}", "is not a known field") for k in unknown])
        name = clean_name(data.get("name"))
        try:
            channel = Channel(str(data.get("channel")))
        except ValueError:
            raise ValidationFailed.one("/channel", "must be 'sms' or 'email'") from None
        audience = clean_audience(data.get("audience"))
        now = self._clock.now()
        campaign = Campaign(
            id=new_id(),
            location_id=location_id,
            name=name,
            channel=channel,
            status=CampaignStatus.DRAFT,
            created_at=now,
            updated_at=now,
            audience=audience,
            created_by=actor.id,
            updated_by=actor.id,
        )
        async with self._uow(actor.scope) as uow:
            await self._content(uow, campaign, data, partial=False)
            await self._rules.check_audience(uow, campaign)
            await uow.campaigns.add(campaign)
            await self._rules.record(uow, actor, "create", campaign)
            await uow.commit()
        return campaign

    async def _content(
        self, uow: CampaignsUnitOfWork, campaign: Campaign, data: dict[str, Any], *, partial: bool
    ) -> None:
        template_id = data.get("template_id")
        if template_id is not None:
            try:
                tid = uuid.UUID(str(template_id))
            except ValueError:
                raise ValidationFailed.one("/template_id", "must be a UUID") from None
            template = await uow.templates.get(tid)
            if template is None or template.location_id != campaign.location_id or template.deleted_at:
                raise ValidationFailed.one("/template_id", "no such template in this location")
            if template.channel is not campaign.channel:
                raise ValidationFailed.one("/template_id", f"is a {template.channel.value} template")
            campaign.template_id = tid
            campaign.subject, campaign.body, campaign.html = template.subject, template.body, template.html
        content = await self._templates.clean_content(
            campaign.channel, data, partial=partial or template_id is not None
        )
        for key, value in content.items():
            setattr(campaign, key, value if key != "body" else (value or ""))
        if not partial:
            await self._templates.clean_content(
                campaign.channel, {"subject": campaign.subject, "body": campaign.body, "html": campaign.html}
            )

    async def _visible(
        self, uow: CampaignsUnitOfWork, location_id: uuid.UUID, campaign_id: uuid.UUID, *, lock: bool = False
    ) -> Campaign:
        campaign = await uow.campaigns.get(campaign_id, lock=lock)
        if campaign is None or campaign.location_id != location_id or campaign.deleted_at is not None:
            raise NotFound(f"campaign {campaign_id} not found")
        return campaign

    async def get(self, actor: Actor, campaign_id: uuid.UUID) -> Campaign:
        location_id = actor.require_location(Permission.CAMPAIGNS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, location_id, campaign_id)

    async def list(self, actor: Actor, page: PageRequest) -> Page[Campaign]:
        location_id = actor.require_location(Permission.CAMPAIGNS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.campaigns.list(location_id, page)

    async def update(self, actor: Actor, campaign_id: uuid.UUID, data: dict[str, Any]) -> Campaign:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        allowed = {"name", "template_id", "subject", "body", "html", "audience"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValidationFailed([FieldError(f"/{k}", "is not a known field") for k in unknown])
        async with self._uow(actor.scope) as uow:
            campaign = await self._visible(uow, location_id, campaign_id, lock=True)
            if campaign.status not in EDITABLE:
                raise CampaignStateError(f"a {campaign.status.value} campaign cannot be changed")
            if "name" in data:
                campaign.name = clean_name(data["name"])
            if "audience" in data:
                campaign.audience = clean_audience(data["audience"])
                await self._rules.check_audience(uow, campaign)
            await self._content(uow, campaign, data, partial=True)
            campaign.updated_at, campaign.updated_by = self._clock.now(), actor.id
            await uow.campaigns.update(campaign)
            await self._rules.record(uow, actor, "update", campaign)
            await uow.commit()
        return campaign

    async def delete(self, actor: Actor, campaign_id: uuid.UUID) -> None:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        async with self._uow(actor.scope) as uow:
            campaign = await self._visible(uow, location_id, campaign_id, lock=True)
            if campaign.status not in (CampaignStatus.DRAFT, *FINISHED):
                raise CampaignStateError("cancel the campaign before deleting it")
            campaign.deleted_at = campaign.updated_at = self._clock.now()
            await uow.campaigns.update(campaign)
            await self._rules.record(uow, actor, "delete", campaign)
            await uow.commit()

    # ------------------------------------------------------------ the lifecycle

    async def send(self, actor: Actor, campaign_id: uuid.UUID, at: datetime | None = None) -> Campaign:
        """Sends now, or schedules for `at`. Only a draft (or a scheduled campaign, to move it)."""
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        if at is not None and at.tzinfo is None:
            raise ValidationFailed.one("/at", "must carry a time zone offset")
        async with self._uow(actor.scope) as uow:
            campaign = await self._visible(uow, location_id, campaign_id, lock=True)
            if campaign.status not in EDITABLE:
                raise CampaignStateError(f"a {campaign.status.value} campaign cannot be sent again")
            spec = await self._rules.check_audience(uow, campaign)
            await self._rules.check_size(uow, campaign, spec)
            now = self._clock.now()
            campaign.note = None
            later = at is not None and at > now + timedelta(seconds=1)
            campaign.status = CampaignStatus.SCHEDULED if later else CampaignStatus.SENDING
            campaign.scheduled_at = at if later else None
            campaign.updated_at, campaign.updated_by = now, actor.id
            await uow.campaigns.update(campaign)
            await uow.jobs.enqueue(run_job(campaign, at if later else None))
            await self._rules.record(uow, actor, "scheduled" if later else "started", campaign)
            await uow.commit()
        return campaign

    async def pause(self, actor: Actor, campaign_id: uuid.UUID) -> Campaign:
        return await self._move(
            actor,
            campaign_id,
            {CampaignStatus.SENDING, CampaignStatus.SCHEDULED},
            CampaignStatus.PAUSED,
            "paused",
        )

    async def resume(self, actor: Actor, campaign_id: uuid.UUID) -> Campaign:
        return await self._move(
            actor, campaign_id, {CampaignStatus.PAUSED}, CampaignStatus.SENDING, "resumed"
        )

    async def cancel(self, actor: Actor, campaign_id: uuid.UUID) -> Campaign:
        return await self._move(
            actor,
            campaign_id,
            {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED},
            CampaignStatus.CANCELLED,
            "cancelled",
        )

    async def _move(
        self,
        actor: Actor,
        campaign_id: uuid.UUID,
        sources: set[CampaignStatus],
        target: CampaignStatus,
        action: str,
    ) -> Campaign:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        async with self._uow(actor.scope) as uow:
            # First the gate, alone (see the module's note on locks): the batch under way finishes its
            # writes, and none begins until this change commits.
            await uow.campaigns.gate(campaign_id, exclusive=True)
            campaign = await self._visible(uow, location_id, campaign_id, lock=True)
            if campaign.status is target:
                return campaign
            if campaign.status not in sources:
                raise CampaignStateError(f"a {campaign.status.value} campaign cannot be {action}")
            now = self._clock.now()
            campaign.status, campaign.updated_at, campaign.updated_by = target, now, actor.id
            if target is CampaignStatus.CANCELLED:
                campaign.completed_at = now
                await uow.campaigns.cancel_pending(campaign.id)
                await self._rules.drop_released(uow, campaign.id, now)
            if target is CampaignStatus.SENDING:
                later = campaign.scheduled_at is not None and campaign.scheduled_at > now + timedelta(
                    seconds=1
                )
                if campaign.started_at is None and later:
                    # Paused before its time came: resuming puts it back on its schedule.
                    campaign.status = CampaignStatus.SCHEDULED
                    await uow.jobs.enqueue(run_job(campaign, campaign.scheduled_at))
                else:
                    await uow.jobs.enqueue(run_job(campaign))
            await uow.campaigns.update(campaign)
            await self._rules.record(uow, actor, action, campaign)
            await uow.commit()
        return campaign

    # ------------------------------------------------------------ the run (a job)

    async def run(
        self,
        location_id: uuid.UUID,
        campaign_id: uuid.UUID,
        *,
        max_seconds: float = 300.0,
        wake: bool = False,
    ) -> CampaignStatus | None:
        """See `CampaignRunner.run`."""
        return await self._runner.run(location_id, campaign_id, max_seconds=max_seconds, wake=wake)

    # ------------------------------------------------------------ statistics and engagement

    async def stats(self, actor: Actor, campaign_id: uuid.UUID) -> CampaignStats:
        location_id = actor.require_location(Permission.CAMPAIGNS_READ)
        async with self._uow(actor.scope) as uow:
            campaign = await self._visible(uow, location_id, campaign_id)
            recipients = await uow.campaigns.recipient_counts(campaign_id)
            messages = await uow.campaigns.message_counts(campaign_id)
            engaged = await uow.campaigns.engagement_counts(campaign_id)
        delivered = messages.get(MessageStatus.DELIVERED, 0) + messages.get(MessageStatus.READ, 0)
        return CampaignStats(
            recipients=campaign.recipients,
            pending=recipients.get(RecipientStatus.PENDING, 0) + recipients.get(RecipientStatus.SENDING, 0),
            skipped=recipients.get(RecipientStatus.SKIPPED, 0),
            sent=delivered + messages.get(MessageStatus.SENT, 0),
            delivered=delivered,
            failed=messages.get(MessageStatus.FAILED, 0) + messages.get(MessageStatus.UNDELIVERED, 0),
            opened=engaged.get(EngagementKind.OPEN, 0),
            clicked=engaged.get(EngagementKind.CLICK, 0),
            replied=engaged.get(EngagementKind.REPLY, 0),
            unsubscribed=engaged.get(EngagementKind.UNSUBSCRIBE, 0),
            bounced=engaged.get(EngagementKind.BOUNCE, 0),
        )
