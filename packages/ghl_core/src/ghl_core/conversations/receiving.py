"""Inbound: an SMS or an email from a contact threaded into their conversation (a new contact for an
unknown sender), STOP/START/HELP applied and answered once, a reply credited to the campaign whose
message it answers. Called by the providers' callback processors inside their unit of work."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from ghl_core.contacts.models import Contact, DndChannel
from ghl_core.contacts.phones import normalize_phone
from ghl_core.conversations.common import message_event, preview, set_dnd, system_actor
from ghl_core.conversations.drafts import Draft, html_to_text
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.inbound import InboundEmail, InboundSms
from ghl_core.conversations.keywords import KeywordAction, classify_keyword
from ghl_core.conversations.models import (
    DEFAULT_HELP_TEXT,
    DEFAULT_START_TEXT,
    DEFAULT_STOP_TEXT,
    MAX_SUBJECT,
    Channel,
    Conversation,
    Direction,
    EngagementKind,
    Message,
    MessageSource,
)
from ghl_core.conversations.ports import ReceivingUnitOfWork
from ghl_core.conversations.sending import SendingService
from ghl_core.conversations.templates import HtmlSanitizer
from ghl_core.shared.clock import Clock
from ghl_core.shared.ids import new_id
from ghl_core.shared.recording import record_change
from ghl_core.shared.validation import normalize_email
from ghl_core.tenancy.models import Location

# How long after a campaign message a reply is credited to its campaign.
REPLY_WINDOW = timedelta(days=7)
# How far back a sender's own date of a reply (an e-mail's Date header) is believed.
CLAIMED_AGE_MAX = timedelta(days=1)


def arrival(claimed: datetime | None, now: datetime) -> datetime:
    """When an inbound message is filed in its conversation: the time the sender claims (an e-mail's Date
    header), when that is in the last day; otherwise now. A message dated in the future, or far in the
    past (a wrong clock, a forged header), would otherwise sit at the top of the inbox for good or out of
    sight below the replies that answer it."""
    if claimed is None or claimed > now or claimed < now - CLAIMED_AGE_MAX:
        return now
    return claimed


class ReceivingService:
    def __init__(self, *, clock: Clock, sanitizer: HtmlSanitizer, sending: SendingService) -> None:
        self._clock = clock
        self._sanitizer = sanitizer
        # Keyword answers (STOP, START, HELP) go out as any message does, in the same transaction.
        self._sending = sending

    async def _conversation(
        self,
        uow: ReceivingUnitOfWork,
        location_id: uuid.UUID,
        contact_id: uuid.UUID,
        channel: Channel,
        now: datetime,
    ) -> Conversation:
        return await uow.conversations.get_or_create(
            Conversation(
                id=new_id(),
                location_id=location_id,
                contact_id=contact_id,
                channel=channel,
                created_at=now,
                updated_at=now,
            )
        )

    @staticmethod
    async def _touch(
        uow: ReceivingUnitOfWork, conversation: Conversation, message: Message, now: datetime
    ) -> None:
        locked = await uow.conversations.get(conversation.id, lock=True)
        current = locked or conversation
        current.last_message_at = now
        current.last_message_preview = preview(message.subject or message.body)
        current.last_direction = message.direction
        current.updated_at = now
        if message.direction is Direction.INBOUND:
            current.unread_count += 1
        await uow.conversations.update(current)

    async def receive_sms(
        self, uow: ReceivingUnitOfWork, location: Location, sms: InboundSms
    ) -> Message | None:
        """An SMS from a contact: threaded into their conversation (a new contact for an unknown
        number); STOP/START/HELP applied and answered once."""
        cause = f"in:{sms.provider}:{sms.provider_message_id}"
        if await uow.messages.by_cause(location.id, cause) is not None:
            return None
        try:
            phone = normalize_phone(sms.from_number, location.country)
        except ValueError:
            phone = sms.from_number.strip()
        contact = await self._contact_for(uow, location, phone=phone, email=None, source="SMS")
        now = self._clock.now()
        message = await self._record_inbound(
            uow,
            location,
            contact,
            Channel.SMS,
            cause=cause,
            body=sms.body,
            sender=phone,
            recipient=sms.to_number,
            provider=sms.provider,
            provider_message_id=sms.provider_message_id,
            attachments=[asdict(a) for a in sms.media],
            at=arrival(sms.received_at, now),
        )
        action = classify_keyword(sms.body)
        if action is not None:
            await self._keyword(uow, location, contact, action, sms.provider_message_id)
        return message

    async def _keyword(
        self, uow: ReceivingUnitOfWork, location: Location, contact: Contact, action: KeywordAction, ref: str
    ) -> None:
        settings = await uow.messaging_settings.get(location.id)
        if action is KeywordAction.STOP:
            changed = await set_dnd(uow, self._clock, location, contact.id, DndChannel.SMS, True)
            reply = settings.stop_text or DEFAULT_STOP_TEXT
        elif action is KeywordAction.START:
            changed = await set_dnd(uow, self._clock, location, contact.id, DndChannel.SMS, False)
            reply = settings.start_text or DEFAULT_START_TEXT
        else:
            changed = True
            reply = settings.help_text or DEFAULT_HELP_TEXT
        if not changed:  # a repeated STOP (or START) is not confirmed twice
            return
        fresh = await uow.contacts.get(contact.id)
        if fresh is None or not fresh.phone:  # pragma: no cover - just threaded into its conversation
            return
        await self._sending.enqueue(
            uow,
            location,
            fresh,
            Draft(channel=Channel.SMS, body=reply),
            source=MessageSource.SYSTEM,
            cause=f"keyword:{ref}",
            compliance=True,
        )

    async def receive_email(
        self, uow: ReceivingUnitOfWork, location: Location, email: InboundEmail
    ) -> Message | None:
        ref = (
            email.message_id
            or hashlib.sha256(f"{email.from_email}\x00{email.subject}\x00{email.text}".encode()).hexdigest()
        )
        cause = f"in:{email.provider}:{ref}"[:300]
        if await uow.messages.by_cause(location.id, cause) is not None:
            return None
        address = normalize_email(email.from_email)
        contact = await self._contact_for(
            uow, location, phone=None, email=address, source="Email", first_name=email.from_name
        )
        html = self._sanitizer.clean(email.html) if email.html else None
        return await self._record_inbound(
            uow,
            location,
            contact,
            Channel.EMAIL,
            cause=cause,
            body=email.text or (html_to_text(html) if html else ""),
            subject=email.subject[:MAX_SUBJECT],
            html=html,
            sender=address,
            recipient=", ".join(email.to_emails)[:500],
            provider=email.provider,
            provider_message_id=None,
            rfc_message_id=email.message_id,
            attachments=[asdict(a) for a in email.attachments],
            at=arrival(email.received_at, self._clock.now()),
        )

    async def _contact_for(
        self,
        uow: ReceivingUnitOfWork,
        location: Location,
        *,
        phone: str | None,
        email: str | None,
        source: str,
        first_name: str | None = None,
    ) -> Contact:
        matches = await uow.contacts.find_matches(email, phone)
        live = [c for c in matches if c.deleted_at is None and c.erased_at is None]
        if live:
            return min(live, key=lambda c: c.created_at)
        now = self._clock.now()
        contact = Contact(
            id=new_id(),
            location_id=location.id,
            created_at=now,
            updated_at=now,
            phone=phone,
            email=email,
            source=source,
            first_name=first_name,
        )
        policy = await uow.contacts.policy(location.id)
        await uow.contacts.add(contact, policy)
        await record_change(
            uow,
            self._clock,
            system_actor(location),
            action="create",
            entity_type="contact",
            entity_id=contact.id,
            agency_id=location.agency_id,
            location_id=location.id,
            before=None,
            after=contact.snapshot(),
            event_type="contact.created",
        )
        return contact

    async def _record_inbound(
        self,
        uow: ReceivingUnitOfWork,
        location: Location,
        contact: Contact,
        channel: Channel,
        *,
        cause: str,
        body: str,
        sender: str,
        recipient: str,
        provider: str,
        provider_message_id: str | None,
        attachments: list[dict[str, Any]],
        at: datetime,
        subject: str | None = None,
        html: str | None = None,
        rfc_message_id: str | None = None,
    ) -> Message | None:
        now = self._clock.now()
        conversation = await self._conversation(uow, location.id, contact.id, channel, now)
        message = Message(
            id=new_id(),
            location_id=location.id,
            conversation_id=conversation.id,
            contact_id=contact.id,
            channel=channel,
            direction=Direction.INBOUND,
            status=MessageStatus.RECEIVED,
            source=MessageSource.PROVIDER,
            created_at=at,
            updated_at=now,
            body=body,
            subject=subject,
            html=html,
            attachments=attachments,
            sender=sender,
            recipient=recipient,
            cause=cause,
            provider=provider,
            provider_message_id=provider_message_id,
            rfc_message_id=rfc_message_id,
        )
        if not await uow.messages.add(message):
            return None
        await self._touch(uow, conversation, message, now)
        await uow.contacts.touch_activity(contact.id, now)
        credited = await uow.campaigns.latest_campaign_message(conversation.id, at - REPLY_WINDOW)
        if credited is not None:
            await uow.campaigns.record_engagement(
                credited[0], credited[1], location.id, EngagementKind.REPLY, at
            )
        await uow.events.add(message_event(self._clock, location, "message.inbound", message))
        return message
