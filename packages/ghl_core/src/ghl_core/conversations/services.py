"""Use cases of conversations: send (now or later) through the location's provider, deliver in a job
under the send ledger, take in replies and delivery reports, and the inbox.

The rules that protect recipients live here, so every sender (the inbox, campaigns, workflows) obeys
them: nothing goes to a contact with do-not-disturb on the channel, marketing SMS waits out the
location's quiet hours in the contact's time zone, STOP/START/HELP are honoured, and each message is
handed to a provider at most once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html as _html
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

from ghl_core.campaigns.models import EngagementKind
from ghl_core.contacts.models import Contact, DndChannel
from ghl_core.contacts.phones import normalize_phone
from ghl_core.conversations.callbacks import twilio_callback_url
from ghl_core.conversations.gateways import (
    BulkEmailGateway,
    EmailMessage,
    MessageStatus,
    SendFailed,
    SendResult,
    SmsMessage,
)
from ghl_core.conversations.inbound import (
    EmailEvent,
    EmailEventKind,
    InboundEmail,
    InboundSms,
    StatusUpdate,
)
from ghl_core.conversations.keywords import KeywordAction, classify_keyword
from ghl_core.conversations.links import LinkSigner
from ghl_core.conversations.models import (
    DEFAULT_HELP_TEXT,
    DEFAULT_START_TEXT,
    DEFAULT_STOP_TEXT,
    MAX_EMAIL_BODY,
    MAX_SMS_BODY,
    MAX_SUBJECT,
    PENDING,
    PREVIEW,
    STATUS_RANK,
    Channel,
    ContactOptedOut,
    Conversation,
    Direction,
    Message,
    MessageSource,
    NoAddress,
)
from ghl_core.conversations.ports import ConversationTouch, InboxFilter, ResolvedProvider
from ghl_core.conversations.providers import (
    GatewayFactory,
    ProviderKind,
    SendGridConfig,
    SmtpConfig,
    SmtpSecurity,
    TwilioConfig,
)
from ghl_core.conversations.quiet_hours import resolve_zone
from ghl_core.conversations.quota import SendQuota
from ghl_core.conversations.sms import sms_segments
from ghl_core.conversations.templates import HtmlSanitizer
from ghl_core.identity.ports import SecretBox
from ghl_core.inbound.models import InboundTarget
from ghl_core.jobs.ports import JobRequest, RetryLater
from ghl_core.legacy_uow import UnitOfWork, UnitOfWorkFactory
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_change
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.validation import normalize_email
from ghl_core.tenancy.assignees import check_assignee
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, ActorKind, Permission
from ghl_core.tenancy.plans import PlanCatalog

SEND_KIND = "messages.send"
# A send whose last attempt got no answer: the provider is asked later whether it has the message.
RECONCILE_KIND = "messages.reconcile"
OUTBOX_SENDER_EMAIL = "outbox@localhost"
_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)
# How long after a campaign message a reply is credited to its campaign.
REPLY_WINDOW = timedelta(days=7)
# A message whose send time is this close is sent now rather than scheduled.
_SOON = timedelta(seconds=1)
# Provider configurations kept opened (decrypted) in memory, most recently used.
_OPENED_KEEP = 256
# How far before a lost claim the provider is asked about it (clock skew between us and the provider).
_RECONCILE_SLACK = timedelta(minutes=2)
# How long after a last attempt that got no answer the provider is asked about it: long enough for a
# message it accepted to show in its log (Twilio lists a message once it has handed it on).
RECONCILE_AFTER = timedelta(minutes=15)


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


@dataclass(slots=True)
class DeliveryOutcome:
    """Per message: its status after the run; `retry`: refused for now (unclaimed), with the reason."""

    statuses: dict[uuid.UUID, MessageStatus] = field(default_factory=dict)
    retry: dict[uuid.UUID, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Queued:
    """One contact's outcome of `enqueue_many`: its message (created now or found by its cause), or why
    it was skipped."""

    contact_id: uuid.UUID
    message: Message | None
    created: bool = False
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    """What to send, already rendered: the body text (SMS, or the email's text part)."""

    channel: Channel
    body: str
    subject: str | None = None
    html: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    marketing: bool = False
    send_at: datetime | None = None
    campaign_id: uuid.UUID | None = None


ProviderConfig = TwilioConfig | SendGridConfig | SmtpConfig


def provider_config(kind: ProviderKind, data: dict[str, Any]) -> TwilioConfig | SendGridConfig | SmtpConfig:
    if kind is ProviderKind.TWILIO:
        return TwilioConfig(**data)
    if kind is ProviderKind.SENDGRID:
        return SendGridConfig(**data)
    if kind is ProviderKind.SMTP:
        return SmtpConfig(**{**data, "security": SmtpSecurity(data.get("security", "starttls"))})
    raise ValueError(f"no configuration for provider {kind}")  # pragma: no cover - enum is closed


def seal_config(
    box: SecretBox, kind: ProviderKind, config: TwilioConfig | SendGridConfig | SmtpConfig
) -> bytes:
    return box.encrypt(json.dumps(asdict(config)).encode(), kind.value.encode())


def open_config(box: SecretBox, resolved: ResolvedProvider) -> TwilioConfig | SendGridConfig | SmtpConfig:
    data = json.loads(box.decrypt(resolved.config_ciphertext, resolved.kind.value.encode()))
    return provider_config(resolved.kind, data)


def system_actor(location: Location) -> Actor:
    """The platform acting on what a provider reported (a reply, a bounce, a STOP)."""
    return Actor(ActorKind.SYSTEM, None, location.agency_id, location_id=location.id)


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW else flat[: PREVIEW - 1] + "…"


class ConversationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        box: SecretBox,
        gateways: GatewayFactory,
        sanitizer: HtmlSanitizer,
        links: LinkSigner,
        public_url: str,
        platform: Mapping[Channel, ProviderConfig] | None = None,
        quota: SendQuota | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        # Each location's daily allowance (see conversations/quota.py): its plan's, defaults if unset.
        self.quota = quota or SendQuota(PlanCatalog(), clock)
        self._box = box
        self._gateways = gateways
        self._sanitizer = sanitizer
        self._links = links
        self._public_url = public_url.rstrip("/")
        # The platform-wide providers from the environment (TWILIO_*, SENDGRID_*, SMTP_*): used by
        # locations whose agency and location configure none.
        self._platform = dict(platform or {})
        self._opened: dict[tuple[ProviderKind, bytes], ProviderConfig] = {}  # most recently used last

    # ---------------------------------------------------------------- sending

    async def send(self, actor: Actor, contact_id: uuid.UUID, data: dict[str, Any]) -> tuple[Message, bool]:
        """Sends a message to a contact now or at `send_at`. `cause` (or the request's idempotency key)
        makes a repeat return the first message: (message, created)."""
        location_id = actor.require_location(Permission.CONVERSATIONS_WRITE)
        draft, cause = self._clean_draft(data)
        source = MessageSource.API if actor.kind is ActorKind.API_KEY else MessageSource.MANUAL
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            contact = await uow.contacts.get(contact_id)
            if contact is None or contact.deleted_at is not None or contact.erased_at is not None:
                raise NotFound(f"contact {contact_id} not found")
            message, created = await self.enqueue(
                uow, location, contact, draft, source=source, cause=cause, created_by=actor.id
            )
            await uow.commit()
        return message, created

    def _clean_draft(self, data: dict[str, Any]) -> tuple[Draft, str | None]:
        errors: list[FieldError] = []
        allowed = {"channel", "body", "subject", "html", "send_at", "marketing", "cause", "attachments"}
        errors += [FieldError(f"/{k}", "is not a known field") for k in sorted(set(data) - allowed)]
        try:
            channel = Channel(str(data.get("channel")))
        except ValueError:
            raise ValidationFailed.one("/channel", "must be 'sms' or 'email'") from None
        body = data.get("body") or ""
        if not isinstance(body, str):
            errors.append(FieldError("/body", "must be a string"))
            body = ""
        html = data.get("html")
        subject = data.get("subject")
        if channel is Channel.SMS:
            if not body.strip():
                errors.append(FieldError("/body", "is required for an SMS"))
            elif len(body) > MAX_SMS_BODY:
                errors.append(FieldError("/body", f"must be at most {MAX_SMS_BODY} characters"))
            if subject is not None or html is not None:
                errors.append(FieldError("/subject" if subject is not None else "/html", "an SMS has none"))
        else:
            if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT:
                errors.append(FieldError("/subject", f"is required, 1 to {MAX_SUBJECT} characters"))
            elif "\n" in subject or "\r" in subject:
                errors.append(FieldError("/subject", "must be one line"))
            if html is not None and not isinstance(html, str):
                errors.append(FieldError("/html", "must be a string"))
                html = None
            if not body.strip() and not (html or "").strip():
                errors.append(FieldError("/body", "an email needs a body or html"))
            if len(body) + len(html or "") > MAX_EMAIL_BODY:
                errors.append(FieldError("/body", f"must be at most {MAX_EMAIL_BODY} characters in all"))
        send_at = data.get("send_at")
        if send_at is not None and not isinstance(send_at, datetime):
            errors.append(FieldError("/send_at", "must be a date-time"))
            send_at = None
        elif isinstance(send_at, datetime) and send_at.tzinfo is None:
            errors.append(FieldError("/send_at", "must carry a time zone offset"))
        cause = data.get("cause")
        if cause is not None and (not isinstance(cause, str) or not 1 <= len(cause) <= 200):
            errors.append(FieldError("/cause", "must be 1 to 200 characters"))
        marketing = data.get("marketing", False)
        if not isinstance(marketing, bool):
            errors.append(FieldError("/marketing", "must be true or false"))
        if errors:
            raise ValidationFailed(errors)
        clean_html = self._sanitizer.clean(html) if html else None
        if channel is Channel.EMAIL and not body.strip() and clean_html:
            body = _html_to_text(clean_html)
        draft = Draft(
            channel=channel,
            body=body,
            subject=subject.strip() if isinstance(subject, str) else None,
            html=clean_html,
            marketing=bool(marketing),
            send_at=send_at,
        )
        return draft, (f"api:{cause}" if cause else None)

    async def enqueue(
        self,
        uow: UnitOfWork,
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
        uow: UnitOfWork,
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
            status = MessageStatus.SCHEDULED if send_at - now > _SOON else MessageStatus.QUEUED
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
                ConversationTouch(m.conversation_id, now, _preview(m.subject or m.body), Direction.OUTBOUND)
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
        await uow.events.add_many([self._domain_event(location, "message.outbound", m) for m in written])
        return results

    async def _conversation(
        self, uow: UnitOfWork, location_id: uuid.UUID, contact_id: uuid.UUID, channel: Channel, now: datetime
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
    async def _touch(uow: UnitOfWork, conversation: Conversation, message: Message, now: datetime) -> None:
        locked = await uow.conversations.get(conversation.id, lock=True)
        current = locked or conversation
        current.last_message_at = now
        current.last_message_preview = _preview(message.subject or message.body)
        current.last_direction = message.direction
        current.updated_at = now
        if message.direction is Direction.INBOUND:
            current.unread_count += 1
        await uow.conversations.update(current)

    def _domain_event(self, location: Location, kind: str, message: Message) -> DomainEvent:
        return DomainEvent(
            type=kind,
            agency_id=location.agency_id,
            location_id=location.id,
            entity_id=message.id,
            payload={"message": message.snapshot()},
            occurred_at=self._clock.now(),
        )

    async def _event(self, uow: UnitOfWork, location: Location, kind: str, message: Message) -> None:
        await uow.events.add(self._domain_event(location, kind, message))

    @staticmethod
    async def _location(uow: UnitOfWork, location_id: uuid.UUID) -> Location:
        location = await uow.locations.get(location_id)
        if location is None or location.deleted_at is not None:
            raise NotFound(f"location {location_id} not found")
        return location

    # ---------------------------------------------------------------- delivering (the send job)

    async def deliver(
        self, location_id: uuid.UUID, message_id: uuid.UUID, *, final_attempt: bool = True
    ) -> MessageStatus | None:
        """The `messages.send` job: one message, retried later (RetryLater) when the provider refuses
        for now."""
        outcome = await self.deliver_many(location_id, [message_id], final_attempt=final_attempt)
        if message_id in outcome.retry:
            raise RetryLater(outcome.retry[message_id])
        return outcome.statuses.get(message_id)

    async def deliver_many(
        self,
        location_id: uuid.UUID,
        message_ids: list[uuid.UUID],
        *,
        final_attempt: bool = True,
        concurrency: int = 64,
        contacts: dict[uuid.UUID, Contact] | None = None,
        campaign_id: uuid.UUID | None = None,
    ) -> DeliveryOutcome:
        """Hands queued messages to their provider, each at most once. The claims are committed before
        the provider calls; a claim found on a later run means a worker died mid-send, and the provider
        is asked whether it has the message before anything is sent again. Messages refused for now
        are released (unclaimed) and named in `retry`. `contacts`: the recipients as the caller just
        read them (a campaign batch), so they are not read again. `campaign_id`: the batch's campaign,
        whose send gate the claims hold (see CampaignService): a cancel either comes before them, and
        they find the campaign cancelled, or after them, with these messages in flight."""
        scope = TenantScope.location(location_id)
        outcome = DeliveryOutcome()
        to_send: list[tuple[Message, ProviderConfig | None, SmsMessage | EmailMessage]] = []
        async with self._uow(scope) as uow:
            if campaign_id is not None:
                await uow.campaigns.gate(campaign_id, exclusive=False)
            found = await uow.messages.get_many(message_ids, lock=True)
            if not found:
                return outcome
            location = await self._location(uow, location_id)
            wanted = sorted({m.contact_id for m in found})
            if contacts is None or any(c not in contacts for c in wanted):
                contacts = await uow.contacts.get_many(wanted)
            config_by: dict[Channel, ProviderConfig | None] = {}
            campaign_status: dict[uuid.UUID, str] = {}
            settings = await uow.messaging_settings.get(location_id)
            claims: list[tuple[uuid.UUID, datetime, str | None]] = []
            now = self._clock.now()
            for message in found:
                if message.status not in PENDING:
                    outcome.statuses[message.id] = message.status
                    continue
                contact = contacts.get(message.contact_id)
                refusal = self._refusal(message, contact)
                if refusal is None and message.campaign_id is not None:
                    # A campaign message held for later (quiet hours) does not outlive its campaign.
                    if message.campaign_id not in campaign_status:
                        # Held shared until the claims commit: a cancel under way is waited for.
                        held_by = await uow.campaigns.get(message.campaign_id, share=True)
                        campaign_status[message.campaign_id] = (
                            held_by.status.value if held_by else "cancelled"
                        )
                    if campaign_status[message.campaign_id] == "cancelled":
                        refusal = (
                            "campaign_cancelled",
                            "the campaign was cancelled before this message went out",
                        )
                if refusal is not None or contact is None:
                    await self._fail(uow, location, message, *(refusal or ("contact_deleted", "")))
                    outcome.statuses[message.id] = MessageStatus.FAILED
                    continue
                if message.channel is Channel.SMS and message.marketing and settings.quiet_hours is not None:
                    zone = resolve_zone(contact.timezone, location.timezone)
                    allowed = settings.quiet_hours.next_allowed(now, zone)
                    if allowed - now > _SOON:  # quiet hours began since it was queued: wait them out
                        await self._reschedule(uow, message, allowed, now)
                        outcome.statuses[message.id] = MessageStatus.SCHEDULED
                        continue
                if message.channel not in config_by:
                    config_by[message.channel] = self._config(
                        message.channel, await uow.messaging_providers.resolve(location_id, message.channel)
                    )
                config = config_by[message.channel]
                outbound = self._outbound(location, contact, message, config)
                if message.claimed_at is not None and await self._reconciled(
                    uow, location, message, config, outbound, outcome
                ):
                    continue
                message.claimed_at = now
                message.attempts += 1
                message.sender = _sender(outbound)
                message.updated_at = now
                claims.append((message.id, now, message.sender))
                to_send.append((message, config, outbound))
            await uow.messages.claim_many(claims)
            await uow.commit()
        if not to_send:
            return outcome
        results = await self._send_all([(config, outbound) for _, config, outbound in to_send], concurrency)
        async with self._uow(scope) as uow:
            location = await self._location(uow, location_id)
            done: list[Message] = []
            failed = [
                m.id for (m, _, _), r in zip(to_send, results, strict=True) if not isinstance(r, SendResult)
            ]
            current = {m.id: m for m in await uow.messages.get_many(failed, lock=True)} if failed else {}
            for (sent, _, outbound), result in zip(to_send, results, strict=True):
                if isinstance(result, SendResult):
                    # Written below in one statement, guarded by the status (still queued, as we claimed it).
                    self._apply_sent(sent, result, outbound)
                    done.append(sent)
                    outcome.statuses[sent.id] = result.status
                    continue
                held = current.get(sent.id)
                if held is None or held.status not in PENDING:  # pragma: no cover - we hold the claim
                    continue
                message = held
                if result.permanent or (final_attempt and not result.unknown):
                    await self._fail(uow, location, message, result.code or "provider_error", result.detail)
                    if result.code == "21610":  # Twilio: the recipient replied STOP to this sender
                        await self._set_dnd(uow, location, message.contact_id, DndChannel.SMS, True)
                    outcome.statuses[message.id] = MessageStatus.FAILED
                elif result.unknown:
                    # No answer: it may have gone out. The claim stays, so the retry asks the provider
                    # (`_reconciled`) before sending again. After the last attempt nothing is sent
                    # again: a later job only asks the provider (`reconcile`), so a message that went
                    # out is never recorded as failed, nor sent twice.
                    message.error_code, message.error_message = result.code, result.detail[:2000]
                    message.updated_at = self._clock.now()
                    await uow.messages.update(message)
                    outcome.statuses[message.id] = message.status
                    if final_attempt:
                        await uow.jobs.enqueue(
                            JobRequest(
                                kind=RECONCILE_KIND,
                                args={"message_id": str(message.id)},
                                location_id=message.location_id,
                                run_at=self._clock.now() + RECONCILE_AFTER,
                            )
                        )
                    else:
                        outcome.retry[message.id] = result.detail
                else:
                    # The provider answered and refused for now: nothing went out, the claim is released.
                    message.claimed_at = None
                    message.error_code, message.error_message = result.code, result.detail[:2000]
                    message.updated_at = self._clock.now()
                    await uow.messages.update(message)
                    outcome.statuses[message.id] = message.status
                    outcome.retry[message.id] = result.detail
            await uow.messages.mark_sent_many(done)
            await uow.events.add_many([self._domain_event(location, "message.sent", m) for m in done])
            await uow.commit()
        return outcome

    async def reconcile(
        self, location_id: uuid.UUID, message_id: uuid.UUID, *, final_attempt: bool = True
    ) -> MessageStatus | None:
        """The `messages.reconcile` job: a message whose last send attempt got no answer. The provider
        is asked whether it has it: if so it is recorded as sent, else (or when the provider cannot say)
        it is failed. It is never sent again. A provider that cannot be reached now is asked again
        (RetryLater) until the job's last attempt, which fails the message as outcome_unknown."""
        async with self._uow(TenantScope.location(location_id)) as uow:
            message = await uow.messages.get(message_id, lock=True)
            if message is None or message.status not in PENDING or message.claimed_at is None:
                return message.status if message else None  # settled since (a delivery report)
            location = await self._location(uow, location_id)
            contacts = await uow.contacts.get_many([message.contact_id])
            contact = contacts.get(message.contact_id)
            if contact is None:  # pragma: no cover - erasing a contact keeps its row
                await self._fail(uow, location, message, "contact_deleted", "")
                await uow.commit()
                return MessageStatus.FAILED
            config = self._config(
                message.channel, await uow.messaging_providers.resolve(location_id, message.channel)
            )
            outbound = self._outbound(location, contact, message, config)
            outcome = DeliveryOutcome()
            try:
                settled = await self._reconciled(uow, location, message, config, outbound, outcome)
            except SendFailed as exc:
                if not final_attempt:
                    raise RetryLater(str(exc)) from exc
                await self._fail(
                    uow,
                    location,
                    message,
                    "outcome_unknown",
                    f"no answer on the last send attempt and the provider could not be asked: {exc}",
                )
                await uow.commit()
                return MessageStatus.FAILED
            if not settled:
                await self._fail(
                    uow,
                    location,
                    message,
                    message.error_code or "provider_error",
                    "no answer on the last send attempt, and the provider has no record of the message: "
                    f"not sent ({message.error_message or 'no detail'})",
                )
                outcome.statuses[message.id] = MessageStatus.FAILED
            await uow.commit()
        return outcome.statuses.get(message_id)

    async def _reconciled(
        self,
        uow: UnitOfWork,
        location: Location,
        message: Message,
        config: ProviderConfig | None,
        outbound: SmsMessage | EmailMessage,
        outcome: DeliveryOutcome,
    ) -> bool:
        """A claimed message whose outcome was lost: True when the provider's answer settled it (it has
        the message, or cannot say and the message is failed rather than risk a second send)."""
        assert message.claimed_at is not None  # noqa: S101 - only called for claimed messages
        try:
            found = await self._find_sent(config, outbound, message.claimed_at - _RECONCILE_SLACK)
        except NotImplementedError:
            await self._fail(
                uow,
                location,
                message,
                "outcome_unknown",
                "the send was interrupted and this provider cannot say whether it went out; "
                "not sent again, to never send twice",
            )
            outcome.statuses[message.id] = MessageStatus.FAILED
            return True
        if found is None:
            return False
        await self._sent(uow, location, message, found, outbound)
        outcome.statuses[message.id] = found.status
        return True

    @staticmethod
    def _refusal(message: Message, contact: Contact | None) -> tuple[str, str] | None:
        if contact is None or contact.deleted_at is not None or contact.erased_at is not None:
            return "contact_deleted", "the contact was deleted before the message went out"
        dnd = DndChannel.SMS if message.channel is Channel.SMS else DndChannel.EMAIL
        if message.source is not MessageSource.SYSTEM and not contact.can_receive(dnd):
            return "contact_dnd", f"the contact has do-not-disturb on for {message.channel.value}"
        address = contact.phone if message.channel is Channel.SMS else contact.email
        if not address:
            return "no_address", "the contact no longer has an address for this channel"
        return None

    async def _reschedule(self, uow: UnitOfWork, message: Message, at: datetime, now: datetime) -> None:
        message.status, message.send_at, message.updated_at = MessageStatus.SCHEDULED, at, now
        await uow.messages.update(message)
        await uow.jobs.enqueue(
            JobRequest(
                kind=SEND_KIND,
                args={"message_id": str(message.id)},
                location_id=message.location_id,
                run_at=at,
            )
        )

    def _config(self, channel: Channel, resolved: ResolvedProvider | None) -> ProviderConfig | None:
        """The location's own configuration, else its agency's (both in `resolved`), else the
        platform's from the environment, else None: the local outbox."""
        if resolved is not None:
            # Opened once per stored configuration, not per batch or message: the sealed bytes name it
            # (a new nonce with every change), so a changed configuration is a new entry.
            key = (resolved.kind, resolved.config_ciphertext)
            config = self._opened.pop(key, None) or open_config(self._box, resolved)
            self._opened[key] = config
            while len(self._opened) > _OPENED_KEEP:
                del self._opened[next(iter(self._opened))]
            return config
        return self._platform.get(channel)

    def _outbound(
        self, location: Location, contact: Contact, message: Message, config: ProviderConfig | None
    ) -> SmsMessage | EmailMessage:
        address = (contact.phone if message.channel is Channel.SMS else contact.email) or ""
        if message.channel is Channel.SMS:
            twilio = config if isinstance(config, TwilioConfig) else None
            return SmsMessage(
                key=str(message.id),
                to=address,
                from_number=twilio.from_number if twilio else None,
                body=message.body,
                status_callback=twilio_callback_url(self._public_url, location.id) if twilio else None,
            )
        from_email, from_name = OUTBOX_SENDER_EMAIL, location.name
        if isinstance(config, SendGridConfig | SmtpConfig):
            from_email, from_name = config.from_email, config.from_name or location.name
        domain = from_email.rpartition("@")[2] or "localhost"
        headers = {"Message-ID": f"<{message.id}@{domain}>"}
        text, html = message.body, message.html
        if html and message.campaign_id is not None:
            html = self._tracked(location.id, message.id, html)
        if message.marketing:
            token = self._links.unsubscribe_token(location.id, contact.id, message.id)
            link = f"{self._public_url}/unsubscribe/{token}"
            headers["List-Unsubscribe"] = f"<{link}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            text = f"{text}\n\n--\nUnsubscribe: {link}"
            if html:
                html = f'{html}\n<p style="font-size:12px;color:#666"><a href="{link}">Unsubscribe</a></p>'
        return EmailMessage(
            key=str(message.id),
            to=address,
            to_name=contact.name or None,
            from_email=from_email,
            from_name=from_name,
            subject=message.subject or "",
            text=text,
            html=html,
            headers=headers,
            tags={"ghl_location": str(location.id), "ghl_message": str(message.id)},
        )

    def _tracked(self, location_id: uuid.UUID, message_id: uuid.UUID, html: str) -> str:
        """Campaign email: every http(s) link through the click redirect, and the open pixel."""
        base = self._public_url

        def swap(match: re.Match[str]) -> str:
            url = _html.unescape(match.group(2))
            token = self._links.click_token(location_id, message_id, url)
            tracked = f"{base}/t/c/{token}?u={quote(url, safe='')}"
            return f"{match.group(1)}{_html.escape(tracked)}{match.group(3)}"

        rewritten = _HREF.sub(swap, html)
        pixel = f"{base}/t/o/{self._links.open_token(location_id, message_id)}.gif"
        return f'{rewritten}\n<img src="{pixel}" width="1" height="1" alt="" style="display:none">'

    async def _send_all(
        self, calls: list[tuple[ProviderConfig | None, SmsMessage | EmailMessage]], concurrency: int
    ) -> list[SendResult | SendFailed]:
        """Each message handed to its provider, `concurrency` calls at a time; emails to a gateway that
        takes many per call (`BulkEmailGateway`) go in batches of its size. One answer per message."""
        answers: list[SendResult | SendFailed] = [SendFailed("not sent", permanent=False)] * len(calls)
        gate = asyncio.Semaphore(max(1, concurrency))
        bulk: dict[int, tuple[BulkEmailGateway, list[int]]] = {}
        singles: list[int] = []
        for index, (config, outbound) in enumerate(calls):
            if isinstance(outbound, EmailMessage):
                gateway = self._gateways.email(
                    config if isinstance(config, SendGridConfig | SmtpConfig) else None
                )
                if hasattr(gateway, "send_emails"):
                    bulk.setdefault(id(gateway), (cast("BulkEmailGateway", gateway), []))[1].append(index)
                    continue
            singles.append(index)

        async def one(index: int) -> None:
            async with gate:
                try:
                    answers[index] = await self._send(*calls[index])
                except SendFailed as exc:
                    answers[index] = exc

        async def many(gateway: BulkEmailGateway, indexes: list[int]) -> None:
            async with gate:
                sent = await gateway.send_emails([cast("EmailMessage", calls[i][1]) for i in indexes])
            for index, answer in zip(indexes, sent, strict=True):
                answers[index] = answer

        batches = [
            many(gateway, indexes[start : start + gateway.max_batch])
            for gateway, indexes in bulk.values()
            for start in range(0, len(indexes), max(1, gateway.max_batch))
        ]
        await asyncio.gather(*(one(i) for i in singles), *batches)
        return answers

    async def _send(self, config: ProviderConfig | None, outbound: SmsMessage | EmailMessage) -> SendResult:
        if isinstance(outbound, SmsMessage):
            return await self._gateways.sms(config if isinstance(config, TwilioConfig) else None).send_sms(
                outbound
            )
        email_config = config if isinstance(config, SendGridConfig | SmtpConfig) else None
        return await self._gateways.email(email_config).send_email(outbound)

    async def _find_sent(
        self,
        config: ProviderConfig | None,
        outbound: SmsMessage | EmailMessage,
        since: datetime,
    ) -> SendResult | None:
        if isinstance(outbound, SmsMessage):
            gateway = self._gateways.sms(config if isinstance(config, TwilioConfig) else None)
            return await gateway.find_sent(outbound, since)
        email_config = config if isinstance(config, SendGridConfig | SmtpConfig) else None
        return await self._gateways.email(email_config).find_sent(outbound, since)

    def _apply_sent(self, message: Message, result: SendResult, outbound: SmsMessage | EmailMessage) -> None:
        now = self._clock.now()
        message.status = result.status
        message.provider = result.provider
        message.provider_message_id = result.provider_message_id
        message.sender = _sender(outbound)
        message.sent_at = result.sent_at or now
        message.delivered_at = message.sent_at if result.status is MessageStatus.DELIVERED else None
        if isinstance(outbound, EmailMessage):
            message.rfc_message_id = outbound.headers.get("Message-ID")
        message.error_code = message.error_message = None
        message.updated_at = now

    async def _sent(
        self,
        uow: UnitOfWork,
        location: Location,
        message: Message,
        result: SendResult,
        outbound: SmsMessage | EmailMessage,
    ) -> None:
        self._apply_sent(message, result, outbound)
        await uow.messages.update(message)
        await self._event(uow, location, "message.sent", message)

    async def _fail(
        self, uow: UnitOfWork, location: Location, message: Message, code: str, detail: str
    ) -> None:
        now = self._clock.now()
        message.status = MessageStatus.FAILED
        message.error_code, message.error_message = code[:100], detail[:2000]
        message.failed_at = message.updated_at = now
        await uow.messages.update(message)
        await self._event(uow, location, "message.failed", message)

    # ---------------------------------------------------------------- what providers report

    async def receive_sms(self, uow: UnitOfWork, location: Location, sms: InboundSms) -> Message | None:
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
        self, uow: UnitOfWork, location: Location, contact: Contact, action: KeywordAction, ref: str
    ) -> None:
        settings = await uow.messaging_settings.get(location.id)
        if action is KeywordAction.STOP:
            changed = await self._set_dnd(uow, location, contact.id, DndChannel.SMS, True)
            reply = settings.stop_text or DEFAULT_STOP_TEXT
        elif action is KeywordAction.START:
            changed = await self._set_dnd(uow, location, contact.id, DndChannel.SMS, False)
            reply = settings.start_text or DEFAULT_START_TEXT
        else:
            changed = True
            reply = settings.help_text or DEFAULT_HELP_TEXT
        if not changed:  # a repeated STOP (or START) is not confirmed twice
            return
        fresh = await uow.contacts.get(contact.id)
        if fresh is None or not fresh.phone:  # pragma: no cover - just threaded into its conversation
            return
        await self.enqueue(
            uow,
            location,
            fresh,
            Draft(channel=Channel.SMS, body=reply),
            source=MessageSource.SYSTEM,
            cause=f"keyword:{ref}",
            compliance=True,
        )

    async def receive_email(self, uow: UnitOfWork, location: Location, email: InboundEmail) -> Message | None:
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
            body=email.text or (_html_to_text(html) if html else ""),
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
        uow: UnitOfWork,
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
        uow: UnitOfWork,
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
        await self._event(uow, location, "message.inbound", message)
        return message

    async def apply_status(self, uow: UnitOfWork, location: Location, update: StatusUpdate) -> bool:
        """A delivery report: moves the message forward (never back). Raises LookupError when the
        message is not recorded yet (the report beat our own commit), so the job retries."""
        message = await self._reported(uow, location, update.message_key, update.provider_message_id)
        if message is None:
            raise LookupError(f"no message with provider id {update.provider_message_id} (yet)")
        if STATUS_RANK[update.status] < STATUS_RANK[message.status] or update.status is message.status:
            return False
        now = self._clock.now()
        message.status = update.status
        at = update.at or now
        if update.status is MessageStatus.DELIVERED:
            message.delivered_at = at
        elif update.status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
            message.failed_at = at
            message.error_code, message.error_message = update.error_code, update.error_message
        elif update.status is MessageStatus.READ:
            message.read_at = at
        elif update.status is MessageStatus.SENT and message.sent_at is None:
            message.sent_at = at
        if message.provider_message_id is None:
            message.provider_message_id = update.provider_message_id
        message.updated_at = now
        await uow.messages.update(message)
        if update.error_code == "21610":
            await self._set_dnd(uow, location, message.contact_id, DndChannel.SMS, True)
        await self._event(uow, location, "message.status_changed", message)
        return True

    async def _reported(
        self,
        uow: UnitOfWork,
        location: Location,
        key: str | None,
        provider_message_id: str | None,
        *,
        recipient: str | None = None,
    ) -> Message | None:
        if key:
            try:
                message = await uow.messages.get(uuid.UUID(key), lock=True)
            except ValueError:
                message = None
            if message is not None and message.location_id == location.id:
                return message
        if provider_message_id:
            found = await uow.messages.by_provider_id(location.id, provider_message_id, recipient=recipient)
            if found is not None:
                return await uow.messages.get(found.id, lock=True)
        return None

    async def apply_email_event(self, uow: UnitOfWork, location: Location, event: EmailEvent) -> bool:
        """Delivered, bounced, opened, unsubscribed...: the message's status and, for bounces, spam
        reports and unsubscribes, the contact's email do-not-disturb."""
        # By provider id, the event's recipient too: one bulk send gives all its recipients one id.
        message = await self._reported(
            uow, location, event.message_key, event.provider_message_id, recipient=event.email or None
        )
        if event.kind in (EmailEventKind.BOUNCE, EmailEventKind.SPAM_REPORT, EmailEventKind.UNSUBSCRIBE):
            contact_id = message.contact_id if message else None
            if contact_id is None:
                matches = await uow.contacts.find_matches(normalize_email(event.email), None)
                contact_id = matches[0].id if matches else None
            if contact_id is not None:
                await self._set_dnd(uow, location, contact_id, DndChannel.EMAIL, True)
        if message is not None and message.campaign_id is not None:
            kind = _ENGAGEMENT.get(event.kind)
            if kind is not None:
                await uow.campaigns.record_engagement(
                    message.campaign_id, message.contact_id, location.id, kind, event.at or self._clock.now()
                )
        status = {
            EmailEventKind.DELIVERED: MessageStatus.DELIVERED,
            EmailEventKind.BOUNCE: MessageStatus.UNDELIVERED,
            EmailEventKind.DROPPED: MessageStatus.FAILED,
            EmailEventKind.OPEN: MessageStatus.READ,
        }.get(event.kind)
        if message is None or status is None:
            return False
        return await self.apply_status(
            uow,
            location,
            StatusUpdate(
                provider=event.provider,
                provider_message_id=message.provider_message_id or event.provider_message_id or "",
                status=status,
                error_code=event.kind.value
                if status in (MessageStatus.UNDELIVERED, MessageStatus.FAILED)
                else None,
                error_message=event.reason,
                at=event.at,
                message_key=str(message.id),
            ),
        )

    async def _set_dnd(
        self, uow: UnitOfWork, location: Location, contact_id: uuid.UUID, channel: DndChannel, on: bool
    ) -> bool:
        """Sets one channel's do-not-disturb, audited and announced as `contact.dnd_changed`; False when
        it already was so."""
        before = await uow.contacts.get(contact_id, for_update=True)
        if before is None or before.deleted_at is not None or before.erased_at is not None:
            return False
        if before.dnd_channels.get(channel.value, False) is on:
            return False
        after = replace(before, dnd_channels={**before.dnd_channels, channel.value: on})
        after.updated_at = self._clock.now()
        await uow.contacts.update(after, await uow.contacts.policy(location.id))
        await record_change(
            uow,
            self._clock,
            system_actor(location),
            action="update",
            entity_type="contact",
            entity_id=after.id,
            agency_id=location.agency_id,
            location_id=location.id,
            before=before.snapshot(),
            after=after.snapshot(),
            event_type="contact.dnd_changed",
        )
        return True

    async def unsubscribe(self, token: str) -> None:
        """The one-click unsubscribe link: email do-not-disturb for the contact it names (credited to
        the campaign whose email carried it)."""
        target = self._links.read_unsubscribe(token)
        async with self._uow(TenantScope.location(target.location_id)) as uow:
            location = await self._location(uow, target.location_id)
            await self._set_dnd(uow, location, target.contact_id, DndChannel.EMAIL, True)
            if target.message_id is not None:
                message = await uow.messages.get(target.message_id)
                if message is not None and message.campaign_id is not None:
                    await uow.campaigns.record_engagement(
                        message.campaign_id,
                        message.contact_id,
                        location.id,
                        EngagementKind.UNSUBSCRIBE,
                        self._clock.now(),
                    )
            await uow.commit()

    async def track_open(self, token: str) -> None:
        """The open pixel: the message is read, and its campaign counts an open."""
        tracked = self._links.read_open(token)
        await self._engaged(tracked.location_id, tracked.message_id, EngagementKind.OPEN)

    async def track_click(self, token: str, url: str) -> str:
        """A tracked link: counted, then the destination it signs (never another one)."""
        tracked = self._links.read_click(token, url)
        await self._engaged(tracked.location_id, tracked.message_id, EngagementKind.CLICK)
        return url

    async def _engaged(self, location_id: uuid.UUID, message_id: uuid.UUID, kind: EngagementKind) -> None:
        async with self._uow(TenantScope.location(location_id)) as uow:
            message = await uow.messages.get(message_id, lock=True)
            if message is None or message.location_id != location_id:
                raise NotFound("link not found")
            location = await self._location(uow, location_id)
            now = self._clock.now()
            if message.campaign_id is not None:
                await uow.campaigns.record_engagement(
                    message.campaign_id, message.contact_id, location_id, kind, now
                )
            if (
                STATUS_RANK[message.status] < STATUS_RANK[MessageStatus.READ]
                and message.status not in PENDING
            ):
                message.status, message.read_at, message.updated_at = MessageStatus.READ, now, now
                await uow.messages.update(message)
                await self._event(uow, location, "message.status_changed", message)
            await uow.commit()

    async def callback_target(
        self, location_id: uuid.UUID, channel: Channel, provider: str, token: str | None = None
    ) -> InboundTarget:
        """Where a provider callback for a location goes, with the key it is signed with. A location
        without that provider configured (or a wrong URL token) is not found: nothing is stored."""
        async with self._uow(TenantScope.anonymous()) as uow:
            resolved = await uow.messaging_providers.resolve(location_id, channel)
        if resolved is None and channel not in self._platform:
            raise NotFound("no such callback URL")
        if token is not None:
            # The platform's configuration has no stored token: its token is derived from the location.
            expected = resolved.inbound_token if resolved else self._links.callback_token(location_id)
            if not hmac.compare_digest(token.encode(), expected.encode()):
                raise NotFound("no such callback URL")
        config = self._config(channel, resolved)
        secret: str | None
        if isinstance(config, TwilioConfig):
            secret = config.auth_token
        elif isinstance(config, SendGridConfig):
            secret = config.inbound_parse_public_key if token is not None else config.event_webhook_public_key
        else:
            raise NotFound("no such callback URL")  # SMTP has no callbacks
        return InboundTarget(
            provider=provider, scope=str(location_id), location_id=location_id, secret=secret
        )

    # ---------------------------------------------------------------- the inbox

    async def list(self, actor: Actor, flt: InboxFilter, page: PageRequest) -> Page[Conversation]:
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.conversations.list(location_id, flt, page)

    async def _visible(
        self, uow: UnitOfWork, location_id: uuid.UUID, conversation_id: uuid.UUID, *, lock: bool = False
    ) -> Conversation:
        conversation = await uow.conversations.get(conversation_id, lock=lock)
        if conversation is None or conversation.location_id != location_id:
            raise NotFound(f"conversation {conversation_id} not found")
        return conversation

    async def get(self, actor: Actor, conversation_id: uuid.UUID) -> Conversation:
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, location_id, conversation_id)

    async def thread(self, actor: Actor, conversation_id: uuid.UUID, page: PageRequest) -> Page[Message]:
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            await self._visible(uow, location_id, conversation_id)
            return await uow.messages.thread(conversation_id, page)

    async def mark(self, actor: Actor, conversation_id: uuid.UUID, *, read: bool) -> Conversation:
        location_id = actor.require_location(Permission.CONVERSATIONS_WRITE)
        async with self._uow(actor.scope) as uow:
            conversation = await self._visible(uow, location_id, conversation_id, lock=True)
            wanted = 0 if read else max(conversation.unread_count, 1)
            if conversation.unread_count != wanted:
                conversation.unread_count = wanted
                conversation.updated_at = self._clock.now()
                await uow.conversations.update(conversation)
                await uow.commit()
            return conversation

    async def assign(
        self, actor: Actor, conversation_id: uuid.UUID, user_id: uuid.UUID | None
    ) -> Conversation:
        location_id = actor.require_location(Permission.CONVERSATIONS_WRITE)
        async with self._uow(actor.scope) as uow:
            conversation = await self._visible(uow, location_id, conversation_id, lock=True)
            if conversation.assigned_user_id != user_id:
                if user_id is not None:
                    location = await self._location(uow, location_id)
                    await check_assignee(uow, location.agency_id, location_id, user_id)
                conversation.assigned_user_id = user_id
                conversation.updated_at = self._clock.now()
                await uow.conversations.update(conversation)
                await uow.commit()
            return conversation

    async def get_message(self, actor: Actor, message_id: uuid.UUID) -> Message:
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            message = await uow.messages.get(message_id)
        if message is None or message.location_id != location_id:
            raise NotFound(f"message {message_id} not found")
        return message

    async def outbox(self, actor: Actor, page: PageRequest) -> Page[Message]:
        """What the local outbox adapter took (nothing of it left the platform)."""
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.messages.outbox(location_id, page)


_ENGAGEMENT = {
    EmailEventKind.OPEN: EngagementKind.OPEN,
    EmailEventKind.CLICK: EngagementKind.CLICK,
    EmailEventKind.BOUNCE: EngagementKind.BOUNCE,
    EmailEventKind.DROPPED: EngagementKind.BOUNCE,
    EmailEventKind.UNSUBSCRIBE: EngagementKind.UNSUBSCRIBE,
    EmailEventKind.SPAM_REPORT: EngagementKind.UNSUBSCRIBE,
}


def _sender(outbound: SmsMessage | EmailMessage) -> str | None:
    return outbound.from_number if isinstance(outbound, SmsMessage) else outbound.from_email


def _html_to_text(html: str) -> str:
    """A plain-text part for an HTML-only email: tags dropped, whitespace folded."""
    from html.parser import HTMLParser

    parts: list[str] = []

    class _Text(HTMLParser):
        def handle_data(self, data: str) -> None:
            parts.append(data)

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("br", "p", "div", "tr", "li", "h1", "h2", "h3"):
                parts.append("\n")

    _Text().feed(html)
    lines = (" ".join(line.split()) for line in "".join(parts).splitlines())
    return "\n".join(line for line in lines if line).strip()
