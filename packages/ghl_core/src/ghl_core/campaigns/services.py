"""Use cases of templates and campaigns.

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

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import partial as partial_call
from typing import Any

from ghl_core.campaigns.models import (
    EDITABLE,
    FINISHED,
    Campaign,
    CampaignStateError,
    CampaignStats,
    CampaignStatus,
    EngagementKind,
    MessageTemplate,
    RecipientStatus,
)
from ghl_core.contacts.models import Contact
from ghl_core.contacts.search import SearchPage, SearchSpec
from ghl_core.contacts.selection import ContactFinder, ContactSelection
from ghl_core.conversations.common import system_actor
from ghl_core.conversations.drafts import Draft
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import (
    MAX_EMAIL_BODY,
    MAX_SMS_BODY,
    MAX_SUBJECT,
    PENDING,
    Channel,
    MessageSource,
)
from ghl_core.conversations.sender import MessageSender
from ghl_core.conversations.templates import (
    HtmlSanitizer,
    TemplateError,
    TemplateRenderer,
    merge_context,
    off_loop,
)
from ghl_core.jobs.ports import JobRequest, RetryLater
from ghl_core.legacy_uow import UnitOfWork, UnitOfWorkFactory
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_change
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, Permission
from ghl_core.tenancy.plans import PlanLimitReached

RUN_KIND = "campaigns.run"
FREEZE_BATCH = 5000
# Recipients per batch when the location sets no pace: big enough to keep the provider busy, small
# enough that a pause or cancel is seen within about a second.
DEFAULT_BATCH = 500
# Batches in flight at once in one run (see CampaignService.run).
DEFAULT_LANES = 3
_MAX_NAME = 200
_AUDIENCE_KEYS = {"query", "filter", "tags", "smart_list_id"}


@dataclass(slots=True)
class _Cursor:
    position: int = -1


class _DailyLimit(Exception):
    """Today's allowance of the location is spent: the run stops and goes on at its next midnight."""


def run_job(campaign: Campaign, at: datetime | None = None) -> JobRequest:
    """One run per campaign at a time (lock), and at most one waiting (queueing lock). A scheduled start
    is a lock-free wake-up instead: jobs sharing a lock run in the order queued, so a locked job for
    later would hold back every run queued after it (a campaign moved to now) until its time."""
    if at is not None:
        return JobRequest(
            kind=RUN_KIND,
            args={"campaign_id": str(campaign.id), "wake": True},
            location_id=campaign.location_id,
            run_at=at,
        )
    return JobRequest(
        kind=RUN_KIND,
        args={"campaign_id": str(campaign.id)},
        location_id=campaign.location_id,
        lock=f"campaign:{campaign.id}",
        queueing_lock=f"campaign:{campaign.id}",
    )


def _selection(audience: dict[str, Any]) -> ContactSelection:
    smart = audience.get("smart_list_id")
    return ContactSelection(
        query=audience.get("query"),
        filter=audience.get("filter"),
        tags=tuple(audience.get("tags") or ()),
        smart_list_id=uuid.UUID(str(smart)) if smart else None,
    )


def _clean_audience(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValidationFailed.one("/audience", "must be an object with query, filter, tags or smart_list_id")
    errors = [FieldError(f"/audience/{k}", "is not a known field") for k in sorted(set(raw) - _AUDIENCE_KEYS)]
    tags = raw.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags)):
        errors.append(FieldError("/audience/tags", "must be a list of tag names"))
    smart = raw.get("smart_list_id")
    if smart is not None:
        try:
            uuid.UUID(str(smart))
        except ValueError:
            errors.append(FieldError("/audience/smart_list_id", "must be a UUID"))
    query = raw.get("query")
    if query is not None and not isinstance(query, str):
        errors.append(FieldError("/audience/query", "must be a string"))
    if errors:
        raise ValidationFailed(errors)
    return {k: v for k, v in raw.items() if v is not None}


class TemplateService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, renderer: TemplateRenderer, sanitizer: HtmlSanitizer
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._renderer = renderer
        self._sanitizer = sanitizer

    async def clean_content(
        self, channel: Channel, data: dict[str, Any], *, partial: bool = False
    ) -> dict[str, Any]:
        """Subject, body and html checked for the channel, for template syntax and by a test render
        within the render limits, off the event loop (errors point at the field and line); html
        sanitised."""
        errors: list[FieldError] = []
        out: dict[str, Any] = {}
        for key in ("subject", "body", "html"):
            if key not in data:
                continue
            value = data[key]
            if value is not None and not isinstance(value, str):
                errors.append(FieldError(f"/{key}", "must be a string"))
                continue
            out[key] = value
        if channel is Channel.SMS:
            if out.get("subject") or out.get("html"):
                errors.append(FieldError("/subject" if out.get("subject") else "/html", "an SMS has none"))
            if not partial and not (out.get("body") or "").strip():
                errors.append(FieldError("/body", "is required for an SMS"))
            if len(out.get("body") or "") > MAX_SMS_BODY * 4:
                errors.append(FieldError("/body", "is too long for an SMS template"))
        else:
            subject = out.get("subject")
            if not partial and not (subject or "").strip():
                errors.append(FieldError("/subject", "is required for an email"))
            if subject and (len(subject) > MAX_SUBJECT or "\n" in subject or "\r" in subject):
                errors.append(FieldError("/subject", f"must be one line of at most {MAX_SUBJECT} characters"))
            if not partial and not ((out.get("body") or "").strip() or (out.get("html") or "").strip()):
                errors.append(FieldError("/body", "an email needs a body or html"))
            if len(out.get("body") or "") + len(out.get("html") or "") > MAX_EMAIL_BODY:
                errors.append(FieldError("/body", f"must be at most {MAX_EMAIL_BODY} characters in all"))
        if errors:
            raise ValidationFailed(errors)
        for key in ("subject", "body", "html"):
            if out.get(key):
                source, pointer, html = out[key], f"/{key}", key == "html"
                await off_loop(
                    partial_call(self._renderer.check, source, pointer, html=html), pointer=pointer
                )
        if out.get("html"):
            out["html"] = await off_loop(partial_call(self._sanitizer.clean, out["html"]), pointer="/html")
        return out

    async def create(self, actor: Actor, data: dict[str, Any]) -> MessageTemplate:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        unknown = sorted(set(data) - {"name", "channel", "subject", "body", "html"})
        if unknown:
            raise ValidationFailed([FieldError(f"/{k}", "is not a known field") for k in unknown])
        name = _name(data.get("name"))
        try:
            channel = Channel(str(data.get("channel")))
        except ValueError:
            raise ValidationFailed.one("/channel", "must be 'sms' or 'email'") from None
        content = await self.clean_content(channel, data)
        now = self._clock.now()
        template = MessageTemplate(
            id=new_id(),
            location_id=location_id,
            name=name,
            channel=channel,
            created_at=now,
            updated_at=now,
            body=content.get("body") or "",
            subject=content.get("subject"),
            html=content.get("html"),
            created_by=actor.id,
            updated_by=actor.id,
        )
        async with self._uow(actor.scope) as uow:
            await uow.templates.add(template)
            await uow.commit()
        return template

    async def _visible(
        self, uow: UnitOfWork, location_id: uuid.UUID, template_id: uuid.UUID
    ) -> MessageTemplate:
        template = await uow.templates.get(template_id)
        if template is None or template.location_id != location_id or template.deleted_at is not None:
            raise NotFound(f"template {template_id} not found")
        return template

    async def get(self, actor: Actor, template_id: uuid.UUID) -> MessageTemplate:
        location_id = actor.require_location(Permission.CAMPAIGNS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, location_id, template_id)

    async def list(self, actor: Actor, page: PageRequest) -> Page[MessageTemplate]:
        location_id = actor.require_location(Permission.CAMPAIGNS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.templates.list(location_id, page)

    async def update(self, actor: Actor, template_id: uuid.UUID, data: dict[str, Any]) -> MessageTemplate:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        unknown = sorted(set(data) - {"name", "subject", "body", "html"})
        if unknown:
            raise ValidationFailed([FieldError(f"/{k}", "is not a known field") for k in unknown])
        async with self._uow(actor.scope) as uow:
            template = await self._visible(uow, location_id, template_id)
            content = await self.clean_content(template.channel, data, partial=True)
            changed = replace(template, **content)
            if "name" in data:
                changed.name = _name(data["name"])
            await self.clean_content(
                changed.channel, {"subject": changed.subject, "body": changed.body, "html": changed.html}
            )
            changed.updated_at, changed.updated_by = self._clock.now(), actor.id
            await uow.templates.update(changed)
            await uow.commit()
        return changed

    async def delete(self, actor: Actor, template_id: uuid.UUID) -> None:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        async with self._uow(actor.scope) as uow:
            template = await self._visible(uow, location_id, template_id)
            now = self._clock.now()
            await uow.templates.update(replace(template, deleted_at=now, updated_at=now, updated_by=actor.id))
            await uow.commit()

    async def preview(
        self, actor: Actor, template_id: uuid.UUID, contact_id: uuid.UUID
    ) -> dict[str, str | None]:
        """The template rendered for one contact, as it would be sent."""
        location_id = actor.require_location(Permission.CAMPAIGNS_READ)
        async with self._uow(actor.scope) as uow:
            template = await self._visible(uow, location_id, template_id)
            contact = await uow.contacts.get(contact_id)
            location = await uow.locations.get(location_id)
        if (
            contact is None
            or contact.deleted_at is not None
            or contact.erased_at is not None
            or location is None
        ):
            raise NotFound(f"contact {contact_id} not found")
        context = merge_context(contact, location)
        renderer = self._renderer

        def rendered() -> dict[str, str | None]:
            return {
                "subject": renderer.render(template.subject, context, pointer="/subject")
                if template.subject
                else None,
                "body": renderer.render(template.body, context, pointer="/body"),
                "html": renderer.render_html(template.html, context, pointer="/html")
                if template.html
                else None,
            }

        return await off_loop(rendered)


def _too_large(location: Location, allowed: int) -> PlanLimitReached:
    return PlanLimitReached(
        f"the audience holds more than {allowed} contacts, the most the {location.tier.value} plan "
        "sends one campaign to; narrow it (tags, a filter) or split it into several campaigns",
        limit="audience",
        tier=location.tier,
        allowed=allowed,
    )


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > _MAX_NAME:
        raise ValidationFailed.one("/name", f"must be 1 to {_MAX_NAME} characters")
    return value.strip()


class CampaignService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
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
        self._conversations = conversations
        self._templates = templates
        self._renderer = renderer
        self._finder = finder
        self._batch = batch_size
        self._lanes = lanes

    # ------------------------------------------------------------ authoring

    async def create(self, actor: Actor, data: dict[str, Any]) -> Campaign:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        allowed = {"name", "channel", "template_id", "subject", "body", "html", "audience"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValidationFailed([FieldError(f"/{k}", "is not a known field") for k in unknown])
        name = _name(data.get("name"))
        try:
            channel = Channel(str(data.get("channel")))
        except ValueError:
            raise ValidationFailed.one("/channel", "must be 'sms' or 'email'") from None
        audience = _clean_audience(data.get("audience"))
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
            await self._check_audience(uow, campaign)
            await uow.campaigns.add(campaign)
            await self._record(uow, actor, "create", campaign)
            await uow.commit()
        return campaign

    async def _content(
        self, uow: UnitOfWork, campaign: Campaign, data: dict[str, Any], *, partial: bool
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

    async def _check_audience(self, uow: UnitOfWork, campaign: Campaign) -> SearchSpec:
        try:
            return await self._finder.spec(uow, campaign.location_id, _selection(campaign.audience))
        except ValidationFailed as exc:
            raise ValidationFailed(
                [FieldError(f"/audience{e.pointer}", e.detail) for e in exc.errors]
            ) from None
        except NotFound:
            raise ValidationFailed.one(
                "/audience/smart_list_id", "no such smart list in this location"
            ) from None

    async def _check_size(self, uow: UnitOfWork, campaign: Campaign, spec: SearchSpec) -> int:
        """The audience within the plan's largest (returned); counted exactly, no further than one past
        it. Raises PlanLimitReached."""
        location = await uow.locations.get(campaign.location_id)
        if location is None:  # pragma: no cover - the campaign's foreign key keeps it
            raise NotFound(f"location {campaign.location_id} not found")
        allowed = self._conversations.quota.limits(location).audience
        if await uow.contact_search.count_up_to(campaign.location_id, spec, allowed + 1) > allowed:
            raise _too_large(location, allowed)
        return allowed

    async def _record(self, uow: UnitOfWork, actor: Actor, action: str, campaign: Campaign) -> None:
        location = await uow.locations.get(campaign.location_id)
        if location is None:  # pragma: no cover - the campaign's foreign key keeps it
            raise NotFound(f"location {campaign.location_id} not found")
        await record_change(
            uow,
            self._clock,
            actor,
            action=action,
            entity_type="campaign",
            entity_id=campaign.id,
            agency_id=location.agency_id,
            location_id=campaign.location_id,
            before=None,
            after={"name": campaign.name, "status": campaign.status.value, "channel": campaign.channel.value},
            event_type=f"campaign.{action}"
            if action in ("started", "paused", "resumed", "cancelled", "completed")
            else None,
        )

    async def _visible(
        self, uow: UnitOfWork, location_id: uuid.UUID, campaign_id: uuid.UUID, *, lock: bool = False
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
                campaign.name = _name(data["name"])
            if "audience" in data:
                campaign.audience = _clean_audience(data["audience"])
                await self._check_audience(uow, campaign)
            await self._content(uow, campaign, data, partial=True)
            campaign.updated_at, campaign.updated_by = self._clock.now(), actor.id
            await uow.campaigns.update(campaign)
            await self._record(uow, actor, "update", campaign)
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
            await self._record(uow, actor, "delete", campaign)
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
            spec = await self._check_audience(uow, campaign)
            await self._check_size(uow, campaign, spec)
            now = self._clock.now()
            campaign.note = None
            later = at is not None and at > now + timedelta(seconds=1)
            campaign.status = CampaignStatus.SCHEDULED if later else CampaignStatus.SENDING
            campaign.scheduled_at = at if later else None
            campaign.updated_at, campaign.updated_by = now, actor.id
            await uow.campaigns.update(campaign)
            await uow.jobs.enqueue(run_job(campaign, at if later else None))
            await self._record(uow, actor, "scheduled" if later else "started", campaign)
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
                await self._drop_released(uow, campaign.id, now)
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
            await self._record(uow, actor, action, campaign)
            await uow.commit()
        return campaign

    async def _drop_released(self, uow: UnitOfWork, campaign_id: uuid.UUID, now: datetime) -> None:
        """A message the provider refused for now waits for the next run, which a cancel stops: it is
        failed (never sent) and its recipient cancelled. A claimed message is in flight and is left."""
        held = [
            r.message_id
            for r in await uow.campaigns.take(campaign_id, FREEZE_BATCH, resume=True)
            if r.message_id
        ]
        # Read first, then lock only the unclaimed ones: a claimed message is in flight and the run that
        # claimed it records its outcome under its lock; waiting on that lock here could deadlock.
        unclaimed = [
            m.id
            for m in await uow.messages.get_many(held)
            if m.status is MessageStatus.QUEUED and m.claimed_at is None
        ]
        updates: list[tuple[uuid.UUID, RecipientStatus, uuid.UUID | None, str | None]] = []
        for message in await uow.messages.get_many(unclaimed, lock=True):
            if message.status is MessageStatus.QUEUED and message.claimed_at is None:
                message.status, message.failed_at, message.updated_at = MessageStatus.FAILED, now, now
                message.error_code, message.error_message = "campaign_cancelled", "the campaign was cancelled"
                await uow.messages.update(message)
                updates.append((message.contact_id, RecipientStatus.CANCELLED, message.id, None))
        await uow.campaigns.set_recipients(campaign_id, updates)

    # ------------------------------------------------------------ the run (a job)

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
                    await self._drop_released(uow, campaign.id, self._clock.now())
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
            status, done = await self._batch_once(scope, campaign_id, batch, resume=True)
            if status is not CampaignStatus.SENDING:
                return status
            if done:
                break
        stop = asyncio.Event()
        failures: list[BaseException] = []
        deferred: list[_DailyLimit] = []
        cursor = _Cursor()  # the highest position any lane has taken: lanes take only beyond it

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
                    status, done = await self._batch_once(scope, campaign_id, batch, cursor=cursor)
                    if status is not CampaignStatus.SENDING:
                        stop.set()
                        return status
                    if done:
                        return CampaignStatus.COMPLETED
                    await asyncio.sleep(max(0.0, batch * lanes / pace - (time.monotonic() - tick)))
                return CampaignStatus.SENDING
            except _DailyLimit as exc:
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
            if not await self._conversations.quota.left_today(self._uow, location_id):
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
        most = self._conversations.quota.limits(location).sends_per_second
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
                await self._record(uow, system_actor(location), "update", campaign)
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
            quota = self._conversations.quota
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

    async def _freeze(self, uow: UnitOfWork, campaign: Campaign) -> None:
        """The audience as it is now, in search order, into recipient rows (one transaction with the
        switch to sending, so a crash freezes again from scratch)."""
        spec = await self._check_audience(uow, campaign)
        # Counted again now: contacts added since the send (or its schedule) may have outgrown the plan.
        allowed = await self._check_size(uow, campaign, spec)
        page = SearchPage(limit=FREEZE_BATCH)
        position = 0
        while True:
            found = await uow.contact_search.search(campaign.location_id, spec, page)
            ids = [c.id for c in found.items if c.deleted_at is None and c.erased_at is None]
            position += await uow.campaigns.add_recipients(campaign.id, campaign.location_id, ids, position)
            if position > allowed:  # contacts added while freezing: all of it is rolled back
                location = await uow.locations.get(campaign.location_id)
                raise _too_large(location, allowed) if location else NotFound("location gone")
            if found.next_cursor is None:
                break
            from ghl_core.shared.pagination import decode_cursor

            parts = decode_cursor(found.next_cursor)
            page = SearchPage(limit=FREEZE_BATCH, after=(parts[2], parts[3]))
        campaign.recipients = position
        campaign.started_at = self._clock.now()

    async def _batch_once(
        self,
        scope: TenantScope,
        campaign_id: uuid.UUID,
        size: int,
        *,
        resume: bool = False,
        cursor: _Cursor | None = None,
    ) -> tuple[CampaignStatus, bool]:
        """One batch: its messages written through the ledger, then delivered together. Returns the
        campaign's status and whether nothing was left to do. Raises _DailyLimit when today's allowance
        is spent before the batch begins."""
        assert scope.location_id is not None  # noqa: S101 - a location scope
        # New messages first take their share of today's allowance (a short transaction of its own, so
        # lanes do not wait on each other's batches).
        day, granted = (None, 0) if resume else await self._reserve(scope.location_id, size)
        size = size if resume else granted
        # What the batch does not write goes back after it (a transaction of its own: the day's count is
        # never locked while the batch holds its rows), all of it when the batch fails.
        unused = granted
        try:
            async with self._uow(scope) as uow:
                await uow.campaigns.gate(campaign_id, exclusive=False)
                campaign = await uow.campaigns.get(campaign_id)
                after = cursor.position if cursor else -1
                sending = campaign is not None and campaign.status is CampaignStatus.SENDING
                taken = (
                    await uow.campaigns.take(campaign_id, size, resume=resume, after=after) if sending else []
                )
                if cursor is not None and taken:
                    cursor.position = max(cursor.position, taken[-1].position)
                if campaign is None or not taken:
                    if campaign is None or not sending:
                        return (campaign.status if campaign else CampaignStatus.CANCELLED), False
                    return campaign.status, True
                location = await uow.locations.get(campaign.location_id)
                if location is None:  # pragma: no cover - the campaign's foreign key keeps it
                    raise NotFound("location gone")
                contacts = await uow.contacts.get_many([r.contact_id for r in taken])
                updates: list[tuple[uuid.UUID, RecipientStatus, uuid.UUID | None, str | None]] = []
                message_ids: list[uuid.UUID] = []
                items: list[tuple[Contact, Draft, str | None]] = []
                to_render: list[Contact] = []
                for recipient in taken:
                    if recipient.status is RecipientStatus.SENDING and recipient.message_id is not None:
                        message_ids.append(recipient.message_id)  # a run that died mid-batch: finish it
                        continue
                    contact = contacts.get(recipient.contact_id)
                    if contact is None or contact.deleted_at is not None or contact.erased_at is not None:
                        updates.append(
                            (recipient.contact_id, RecipientStatus.SKIPPED, None, "contact_deleted")
                        )
                        continue
                    to_render.append(contact)
                drafts = await self._drafts(campaign, to_render, location)
                for contact, draft in zip(to_render, drafts, strict=True):
                    if isinstance(draft, str):  # the template failed for this contact: recorded, not retried
                        updates.append((contact.id, RecipientStatus.SKIPPED, None, draft))
                    else:
                        items.append((contact, draft, f"campaign:{campaign.id}:{contact.id}"))
                queued = await self._conversations.enqueue_many(
                    uow, location, items, source=MessageSource.CAMPAIGN, defer=False, metered=False
                )
                for one in queued:
                    if one.message is None:
                        updates.append((one.contact_id, RecipientStatus.SKIPPED, None, one.skipped))
                    else:
                        updates.append((one.contact_id, RecipientStatus.SENDING, one.message.id, None))
                        message_ids.append(one.message.id)
                await uow.campaigns.set_recipients(campaign_id, updates)
                await uow.commit()
                unused = granted - sum(one.created for one in queued)
        finally:
            await self._refund(scope.location_id, day, unused)
        outcome = await self._conversations.deliver_many(
            scope.location_id, message_ids, final_attempt=False, contacts=contacts, campaign_id=campaign_id
        )
        by_message = {r.message_id: r.contact_id for r in taken if r.message_id is not None}
        by_message.update({m: c for c, s, m, _ in updates if m is not None})
        finished: list[tuple[uuid.UUID, RecipientStatus, uuid.UUID | None, str | None]] = [
            (by_message[mid], RecipientStatus.DONE, mid, None)
            for mid, status in outcome.statuses.items()
            if status not in PENDING or status is MessageStatus.SCHEDULED
        ]
        async with self._uow(scope) as uow:
            await uow.campaigns.set_recipients(campaign_id, finished)
            await uow.commit()
        if outcome.retry:
            # The provider refuses for now: this run stops and the job's retry schedule brings it back.
            raise RetryLater(next(iter(outcome.retry.values())))
        return CampaignStatus.SENDING, False

    async def _drafts(
        self, campaign: Campaign, contacts: Sequence[Contact], location: Location
    ) -> Sequence[Draft | str]:
        """Each contact's message, or why it cannot be made ("template: ..."), rendered in one worker
        thread for the batch (renders are CPU work with their own limits: they stay off the loop)."""

        def render_all() -> list[Draft | str]:
            out: list[Draft | str] = []
            for contact in contacts:
                try:
                    out.append(self._draft(campaign, contact, location))
                except ValidationFailed as exc:
                    out.append(f"template: {exc.detail}"[:500])
            return out

        if not contacts:
            return []
        try:
            return await off_loop(render_all, pointer="/body")
        except TemplateError as exc:  # the batch outlasted the wait: its recipients are not sent
            return [f"template: {exc.detail}"[:500]] * len(contacts)

    async def _reserve(self, location_id: uuid.UUID, wanted: int) -> tuple[date, int]:
        """(day, how many new messages this batch may write): raises _DailyLimit when none."""
        day, granted = await self._conversations.quota.reserve(self._uow, location_id, wanted)
        if granted == 0:
            raise _DailyLimit
        return day, granted

    async def _refund(self, location_id: uuid.UUID, day: date | None, unused: int) -> None:
        if day is not None and unused > 0:
            async with self._uow(TenantScope.location(location_id)) as uow:
                await uow.messages.release_daily(location_id, day, unused)
                await uow.commit()

    def _draft(self, campaign: Campaign, contact: Contact, location: Location) -> Draft:
        context = merge_context(contact, location)
        render = self._renderer.render
        return Draft(
            channel=campaign.channel,
            body=render(campaign.body, context, pointer="/body"),
            subject=render(campaign.subject, context, pointer="/subject").strip()
            if campaign.subject
            else None,
            html=self._renderer.render_html(campaign.html, context, pointer="/html")
            if campaign.html
            else None,
            marketing=True,
            campaign_id=campaign.id,
        )

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
