"""Delivery and reconciliation: the `messages.send` job hands queued messages to their provider, each at
most once under the send ledger's claims; the `messages.reconcile` job asks a provider about a message
whose last attempt got no answer, and never sends it again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ghl_core.contacts.models import Contact, DndChannel
from ghl_core.conversations.common import RECONCILE_KIND, SEND_KIND, message_event, set_dnd
from ghl_core.conversations.composing import OutboundComposer, sender_of
from ghl_core.conversations.configs import ProviderConfigs
from ghl_core.conversations.dispatch import ProviderCalls
from ghl_core.conversations.gateways import EmailMessage, MessageStatus, SendFailed, SendResult, SmsMessage
from ghl_core.conversations.models import PENDING, Channel, Message, MessageSource
from ghl_core.conversations.ports import DeliveryUnitOfWork
from ghl_core.conversations.providers import ProviderConfig
from ghl_core.conversations.quiet_hours import resolve_zone
from ghl_core.conversations.sending import SOON
from ghl_core.jobs.ports import JobRequest, RetryLater
from ghl_core.shared.clock import Clock
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.models import Location

# How far before a lost claim the provider is asked about it (clock skew between us and the provider).
_RECONCILE_SLACK = timedelta(minutes=2)
# How long after a last attempt that got no answer the provider is asked about it: long enough for a
# message it accepted to show in its log (Twilio lists a message once it has handed it on).
RECONCILE_AFTER = timedelta(minutes=15)


@dataclass(slots=True)
class DeliveryOutcome:
    """Per message: its status after the run; `retry`: refused for now (unclaimed), with the reason."""

    statuses: dict[uuid.UUID, MessageStatus] = field(default_factory=dict)
    retry: dict[uuid.UUID, str] = field(default_factory=dict)


class DeliveryService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[DeliveryUnitOfWork],
        clock: Clock,
        configs: ProviderConfigs,
        calls: ProviderCalls,
        composer: OutboundComposer,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._configs = configs
        self._calls = calls
        self._composer = composer

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
        whose send gate the claims hold (see the campaigns' run): a cancel either comes before them, and
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
            location = await live_location(uow, location_id)
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
                    if allowed - now > SOON:  # quiet hours began since it was queued: wait them out
                        await self._reschedule(uow, message, allowed, now)
                        outcome.statuses[message.id] = MessageStatus.SCHEDULED
                        continue
                if message.channel not in config_by:
                    config_by[message.channel] = self._configs.config(
                        message.channel, await uow.messaging_providers.resolve(location_id, message.channel)
                    )
                config = config_by[message.channel]
                outbound = self._composer.outbound(location, contact, message, config)
                if message.claimed_at is not None and await self._reconciled(
                    uow, location, message, config, outbound, outcome
                ):
                    continue
                message.claimed_at = now
                message.attempts += 1
                message.sender = sender_of(outbound)
                message.updated_at = now
                claims.append((message.id, now, message.sender))
                to_send.append((message, config, outbound))
            await uow.messages.claim_many(claims)
            await uow.commit()
        if not to_send:
            return outcome
        results = await self._calls.send_all(
            [(config, outbound) for _, config, outbound in to_send], concurrency
        )
        async with self._uow(scope) as uow:
            location = await live_location(uow, location_id)
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
                        await set_dnd(uow, self._clock, location, message.contact_id, DndChannel.SMS, True)
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
            await uow.events.add_many([message_event(self._clock, location, "message.sent", m) for m in done])
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
            location = await live_location(uow, location_id)
            contacts = await uow.contacts.get_many([message.contact_id])
            contact = contacts.get(message.contact_id)
            if contact is None:  # pragma: no cover - erasing a contact keeps its row
                await self._fail(uow, location, message, "contact_deleted", "")
                await uow.commit()
                return MessageStatus.FAILED
            config = self._configs.config(
                message.channel, await uow.messaging_providers.resolve(location_id, message.channel)
            )
            outbound = self._composer.outbound(location, contact, message, config)
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
        uow: DeliveryUnitOfWork,
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
            found = await self._calls.find_sent(config, outbound, message.claimed_at - _RECONCILE_SLACK)
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

    async def _reschedule(
        self, uow: DeliveryUnitOfWork, message: Message, at: datetime, now: datetime
    ) -> None:
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

    def _apply_sent(self, message: Message, result: SendResult, outbound: SmsMessage | EmailMessage) -> None:
        now = self._clock.now()
        message.status = result.status
        message.provider = result.provider
        message.provider_message_id = result.provider_message_id
        message.sender = sender_of(outbound)
        message.sent_at = result.sent_at or now
        message.delivered_at = message.sent_at if result.status is MessageStatus.DELIVERED else None
        if isinstance(outbound, EmailMessage):
            message.rfc_message_id = outbound.headers.get("Message-ID")
        message.error_code = message.error_message = None
        message.updated_at = now

    async def _sent(
        self,
        uow: DeliveryUnitOfWork,
        location: Location,
        message: Message,
        result: SendResult,
        outbound: SmsMessage | EmailMessage,
    ) -> None:
        self._apply_sent(message, result, outbound)
        await uow.messages.update(message)
        await self._event(uow, location, "message.sent", message)

    async def _fail(
        self, uow: DeliveryUnitOfWork, location: Location, message: Message, code: str, detail: str
    ) -> None:
        now = self._clock.now()
        message.status = MessageStatus.FAILED
        message.error_code, message.error_message = code[:100], detail[:2000]
        message.failed_at = message.updated_at = now
        await uow.messages.update(message)
        await self._event(uow, location, "message.failed", message)

    async def _event(self, uow: DeliveryUnitOfWork, location: Location, kind: str, message: Message) -> None:
        await uow.events.add(message_event(self._clock, location, kind, message))
