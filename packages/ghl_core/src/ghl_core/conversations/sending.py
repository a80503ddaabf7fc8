"""Sending: a message to a contact now or later, written to the send ledger with its send job in the
caller's transaction (the inbox, the API, campaigns, workflows and keyword replies all come here).

The rules that protect recipients hold for every sender: nothing goes to a contact with do-not-disturb
on the channel (compliance replies aside), marketing SMS waits out the location's quiet hours in the
contact's time zone, each cause writes one message, and new messages count toward the location's daily
allowance."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from ghl_core.contacts.models import Contact, DndChannel
from ghl_core.conversations.common import SEND_KIND, message_event, preview
from ghl_core.conversations.drafts import Draft, Queued, clean_draft
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import (
    Channel,
    ContactOptedOut,
    Direction,
    Message,
    MessageSource,
    NoAddress,
)
from ghl_core.conversations.ports import ConversationTouch, SendingUnitOfWork
from ghl_core.conversations.quiet_hours import resolve_zone
from ghl_core.conversations.quota import SendQuota
from ghl_core.conversations.sms import sms_segments
from ghl_core.conversations.templates import HtmlSanitizer
from ghl_core.jobs.ports import JobRequest
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.ids import new_id
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, ActorKind, Permission

# A message whose send time is this close is sent now rather than scheduled.
SOON = timedelta(seconds=1)


class SendingService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[SendingUnitOfWork],
        clock: Clock,
        sanitizer: HtmlSanitizer,
        quota: SendQuota,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._sanitizer = sanitizer
        # Each location's daily allowance (see conversations/quota.py): its plan's, defaults if unset.
        self.quota = quota

    async def send(self, actor: Actor, contact_id: uuid.UUID, data: dict[str, Any]) -> tuple[Message, bool]:
        """Sends a message to a contact now or at `send_at`. `cause` (or the request's idempotency key)
        makes a repeat return the first message: (message, created)."""
        location_id = actor.require_location(Permission.CONVERSATIONS_WRITE)
        draft, cause = clean_draft(data, self._sanitizer)
        source = MessageSource.API if actor.kind is ActorKind.API_KEY else MessageSource.MANUAL
        async with self._uow(actor.scope) as uow:
            location = await live_location(uow, location_id)
            contact = await uow.contacts.get(contact_id)
            if contact is None or contact.deleted_at is not None or contact.erased_at is not None:
                raise NotFound(f"contact {contact_id} not found")
            message, created = await self.enqueue(
                uow, location, contact, draft, source=source, cause=cause, created_by=actor.id
            )
            await uow.commit()
        return message, created

    async def enqueue(
        self,
        uow: SendingUnitOfWork,
        location: Location,
        contact: Contact,
        draft: Draft,
        *,
        source: MessageSource,
        cause: str | None,
        created_by: uuid.UUID | None = None,
        compliance: bool = False,
        defer: bool = True,
    ) -> tuple[Message, bool]:
        """Records an outbound message and its send job in the caller's transaction. `cause` is the
        ledger key (a campaign and contact, a workflow step visit): a second message with the same cause
        is not created, the first is returned. `compliance` replies (STOP confirmations, HELP) go out
        despite do-not-disturb. `defer` False: no send job is queued, the caller delivers it
        (`deliver_many`) itself, as campaigns do in batches. Raises ContactOptedOut or NoAddress."""
        [queued] = await self.enqueue_many(
            uow,
            location,
            [(contact, draft, cause)],
            source=source,
            created_by=created_by,
            compliance=compliance,
            defer=defer,
        )
        if queued.message is None:
            if queued.skipped == "contact_dnd":
                raise ContactOptedOut(f"contact {contact.id} has do-not-disturb on for {draft.channel.value}")
            channel = "phone" if draft.channel is Channel.SMS else "email"
            raise NoAddress(f"contact {contact.id} has no {channel}")
        return queued.message, queued.created

    async def enqueue_many(
        self,
        uow: SendingUnitOfWork,
        location: Location,
        items: list[tuple[Contact, Draft, str | None]],
        *,
        source: MessageSource,
        created_by: uuid.UUID | None = None,
        compliance: bool = False,
        defer: bool = True,
        metered: bool = True,
    ) -> list[Queued]:
        """`enqueue` for many contacts at once, in a handful of statements whatever their number: a
        contact that may not be messaged comes back `skipped` ("contact_dnd", "no_address"). The new
        messages count toward the location's daily allowance (all or none: DailyLimitReached), except
        compliance replies and when `metered` is False (a campaign reserves its batches' shares ahead)."""
        now = self._clock.now()
        causes = [cause for _, _, cause in items if cause is not None]
        existing = await uow.messages.by_causes(location.id, causes) if causes else {}
        settings = await uow.messaging_settings.get(location.id)
        results: list[Queued] = []
        fresh: list[tuple[int, Contact, Draft, str | None]] = []
        for contact, draft, cause in items:
            if cause is not None and cause in existing:
                results.append(Queued(contact.id, existing[cause], created=False))
                continue
            dnd = DndChannel.SMS if draft.channel is Channel.SMS else DndChannel.EMAIL
            if not compliance and not contact.can_receive(dnd):
                results.append(Queued(contact.id, None, skipped="contact_dnd"))
                continue
            if not (contact.phone if draft.channel is Channel.SMS else contact.email):
                results.append(Queued(contact.id, None, skipped="no_address"))
                continue
            results.append(Queued(contact.id, None))
            fresh.append((len(results) - 1, contact, draft, cause))
        if not fresh:
            return results
        charged: tuple[date, int] | None = None
        if metered and not compliance:
            charged = await self.quota.charge(uow, location, len(fresh))
        conversations: dict[tuple[Channel, uuid.UUID], uuid.UUID] = {}
        for channel in {draft.channel for _, _, draft, _ in fresh}:
            ids = [c.id for _, c, d, _ in fresh if d.channel is channel]
            found = await uow.conversations.get_or_create_many(location.id, channel, ids, now)
            conversations |= {(channel, contact_id): cid for contact_id, cid in found.items()}
        built: list[tuple[int, Message]] = []
        for index, contact, draft, cause in fresh:
            send_at = max(draft.send_at or now, now)
            if draft.channel is Channel.SMS and draft.marketing and settings.quiet_hours is not None:
                zone = resolve_zone(contact.timezone, location.timezone)
                send_at = settings.quiet_hours.next_allowed(send_at, zone)
            status = MessageStatus.SCHEDULED if send_at - now > SOON else MessageStatus.QUEUED
            encoding = sms_segments(draft.body) if draft.channel is Channel.SMS else None
            message = Message(
                id=new_id(),
                location_id=location.id,
                conversation_id=conversations[(draft.channel, contact.id)],
                contact_id=contact.id,
                channel=draft.channel,
                direction=Direction.OUTBOUND,
                status=status,
                source=source,
                created_at=now,
                updated_at=now,
                body=draft.body,
                subject=draft.subject,
                html=draft.html,
                attachments=list(draft.attachments),
                recipient=contact.phone if draft.channel is Channel.SMS else contact.email,
                marketing=draft.marketing,
                cause=cause,
                segments=encoding.segments if encoding else None,
                encoding=encoding.encoding if encoding else None,
                send_at=send_at,
                created_by=created_by,
                campaign_id=draft.campaign_id,
            )
            built.append((index, message))
        stored = await uow.messages.add_many([m for _, m in built])
        if charged is not None and len(stored) < len(built):  # a concurrent caller wrote the same cause
            await uow.messages.release_daily(location.id, charged[0], len(built) - len(stored))
        lost = [m.cause for _, m in built if m.id not in stored and m.cause is not None]
        winners = await uow.messages.by_causes(location.id, lost) if lost else {}
        written: list[Message] = []
        for index, message in built:
            if message.id in stored:
                results[index] = Queued(message.contact_id, message, created=True)
                written.append(message)
            elif message.cause in winners:  # the same cause, written by a concurrent caller
                results[index] = Queued(message.contact_id, winners[message.cause], created=False)
            else:  # pragma: no cover - the unique rule that refused it names a stored message
                raise NotFound("the message this one duplicates is gone")
        await uow.conversations.touch_many(
            [
                ConversationTouch(m.conversation_id, now, preview(m.subject or m.body), Direction.OUTBOUND)
                for m in written
            ]
        )
        jobs = [
            JobRequest(
                kind=SEND_KIND,
                args={"message_id": str(m.id)},
                location_id=location.id,
                run_at=m.send_at if m.status is MessageStatus.SCHEDULED else None,
            )
            for m in written
            if defer or m.status is MessageStatus.SCHEDULED
        ]
        if jobs:
            await uow.jobs.enqueue(*jobs)
        await uow.events.add_many(
            [message_event(self._clock, location, "message.outbound", m) for m in written]
        )
        return results
