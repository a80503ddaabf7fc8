"""What authoring, the lifecycle and the run all apply to a campaign: its audience cleaned and checked
(against the location's contacts and the plan's largest audience), its name, a change recorded, and a
cancelled campaign's held messages failed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ghl_core.campaigns.models import Campaign, RecipientStatus
from ghl_core.campaigns.ports import CampaignsUnitOfWork
from ghl_core.contacts.search import SearchSpec
from ghl_core.contacts.selection import ContactFinder, ContactSelection
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.quota import SendQuota
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.recording import ActorRef, record_change
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.plans import PlanLimitReached

FREEZE_BATCH = 5000
_MAX_NAME = 200
_AUDIENCE_KEYS = {"query", "filter", "tags", "smart_list_id"}


def selection(audience: dict[str, Any]) -> ContactSelection:
    smart = audience.get("smart_list_id")
    return ContactSelection(
        query=audience.get("query"),
        filter=audience.get("filter"),
        tags=tuple(audience.get("tags") or ()),
        smart_list_id=uuid.UUID(str(smart)) if smart else None,
    )


def clean_audience(raw: Any) -> dict[str, Any]:
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


def too_large(location: Location, allowed: int) -> PlanLimitReached:
    return PlanLimitReached(
        f"the audience holds more than {allowed} contacts, the most the {location.tier.value} plan "
        "sends one campaign to; narrow it (tags, a filter) or split it into several campaigns",
        limit="audience",
        tier=location.tier,
        allowed=allowed,
    )


def clean_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > _MAX_NAME:
        raise ValidationFailed.one("/name", f"must be 1 to {_MAX_NAME} characters")
    return value.strip()


class CampaignRules:
    def __init__(self, *, clock: Clock, finder: ContactFinder, quota: SendQuota) -> None:
        self._clock = clock
        self._finder = finder
        self._quota = quota

    async def check_audience(self, uow: CampaignsUnitOfWork, campaign: Campaign) -> SearchSpec:
        try:
            return await self._finder.spec(uow, campaign.location_id, selection(campaign.audience))
        except ValidationFailed as exc:
            raise ValidationFailed(
                [FieldError(f"/audience{e.pointer}", e.detail) for e in exc.errors]
            ) from None
        except NotFound:
            raise ValidationFailed.one(
                "/audience/smart_list_id", "no such smart list in this location"
            ) from None

    async def check_size(self, uow: CampaignsUnitOfWork, campaign: Campaign, spec: SearchSpec) -> int:
        """The audience within the plan's largest (returned); counted exactly, no further than one past
        it. Raises PlanLimitReached."""
        location = await uow.locations.get(campaign.location_id)
        if location is None:  # pragma: no cover - the campaign's foreign key keeps it
            raise NotFound(f"location {campaign.location_id} not found")
        allowed = self._quota.limits(location).audience
        if await uow.contact_search.count_up_to(campaign.location_id, spec, allowed + 1) > allowed:
            raise too_large(location, allowed)
        return allowed

    async def record(
        self, uow: CampaignsUnitOfWork, actor: ActorRef, action: str, campaign: Campaign
    ) -> None:
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

    async def drop_released(self, uow: CampaignsUnitOfWork, campaign_id: uuid.UUID, now: datetime) -> None:
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
