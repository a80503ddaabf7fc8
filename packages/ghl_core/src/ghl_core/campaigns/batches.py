"""One batch of a campaign's run: its recipients taken, their messages rendered (off the event loop) and
written through the conversations ledger under the day's allowance, then delivered together. The locks
it takes, and why in that order, are in the docstring of `ghl_core.campaigns.services`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ghl_core.campaigns.models import Campaign, CampaignStatus, RecipientStatus
from ghl_core.campaigns.ports import CampaignsUnitOfWork
from ghl_core.contacts.models import Contact
from ghl_core.conversations.drafts import Draft
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import PENDING, MessageSource
from ghl_core.conversations.sender import MessageSender
from ghl_core.conversations.templates import TemplateError, TemplateRenderer, merge_context, off_loop
from ghl_core.jobs.ports import RetryLater
from ghl_core.shared.errors import NotFound, ValidationFailed
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.models import Location


@dataclass(slots=True)
class Cursor:
    """The highest audience position any lane has taken: lanes take only beyond it."""

    position: int = -1


class DailyLimit(Exception):
    """Today's allowance of the location is spent: the run stops and goes on at its next midnight."""


class CampaignBatches:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[CampaignsUnitOfWork],
        sender: MessageSender,
        renderer: TemplateRenderer,
    ) -> None:
        self._uow = uow
        self._sender = sender
        self._renderer = renderer

    async def once(
        self,
        scope: TenantScope,
        campaign_id: uuid.UUID,
        size: int,
        *,
        resume: bool = False,
        cursor: Cursor | None = None,
    ) -> tuple[CampaignStatus, bool]:
        """One batch: its messages written through the ledger, then delivered together. Returns the
        campaign's status and whether nothing was left to do. Raises DailyLimit when today's allowance
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
                queued = await self._sender.enqueue_many(
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
        outcome = await self._sender.deliver_many(
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
        """(day, how many new messages this batch may write): raises DailyLimit when none."""
        day, granted = await self._sender.quota.reserve(self._uow, location_id, wanted)
        if granted == 0:
            raise DailyLimit
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
