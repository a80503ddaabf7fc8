"""What providers and recipients report after a send: delivery reports and email events (moving a
message forward, never back; bounces, spam reports and unsubscribes turning email do-not-disturb on),
the open pixel, tracked clicks and the one-click unsubscribe (credited to the campaign whose message
carried them), and where a provider's callbacks for a location go."""

from __future__ import annotations

import hmac
import uuid

from ghl_core.contacts.models import DndChannel
from ghl_core.conversations.common import message_event, set_dnd
from ghl_core.conversations.configs import ProviderConfigs
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.inbound import EmailEvent, EmailEventKind, StatusUpdate
from ghl_core.conversations.links import LinkSigner
from ghl_core.conversations.models import PENDING, STATUS_RANK, Channel, EngagementKind, Message
from ghl_core.conversations.ports import ReportsUnitOfWork
from ghl_core.inbound.models import InboundTarget
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.shared.validation import normalize_email
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.models import Location

_ENGAGEMENT = {
    EmailEventKind.OPEN: EngagementKind.OPEN,
    EmailEventKind.CLICK: EngagementKind.CLICK,
    EmailEventKind.BOUNCE: EngagementKind.BOUNCE,
    EmailEventKind.DROPPED: EngagementKind.BOUNCE,
    EmailEventKind.UNSUBSCRIBE: EngagementKind.UNSUBSCRIBE,
    EmailEventKind.SPAM_REPORT: EngagementKind.UNSUBSCRIBE,
}


class ReportService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[ReportsUnitOfWork],
        clock: Clock,
        links: LinkSigner,
        configs: ProviderConfigs,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._links = links
        self._configs = configs

    async def apply_status(self, uow: ReportsUnitOfWork, location: Location, update: StatusUpdate) -> bool:
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
            await set_dnd(uow, self._clock, location, message.contact_id, DndChannel.SMS, True)
        await uow.events.add(message_event(self._clock, location, "message.status_changed", message))
        return True

    async def _reported(
        self,
        uow: ReportsUnitOfWork,
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

    async def apply_email_event(self, uow: ReportsUnitOfWork, location: Location, event: EmailEvent) -> bool:
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
                await set_dnd(uow, self._clock, location, contact_id, DndChannel.EMAIL, True)
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

    async def unsubscribe(self, token: str) -> None:
        """The one-click unsubscribe link: email do-not-disturb for the contact it names (credited to
        the campaign whose email carried it)."""
        target = self._links.read_unsubscribe(token)
        async with self._uow(TenantScope.location(target.location_id)) as uow:
            location = await live_location(uow, target.location_id)
            await set_dnd(uow, self._clock, location, target.contact_id, DndChannel.EMAIL, True)
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
            location = await live_location(uow, location_id)
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
                await uow.events.add(message_event(self._clock, location, "message.status_changed", message))
            await uow.commit()

    async def callback_target(
        self, location_id: uuid.UUID, channel: Channel, provider: str, token: str | None = None
    ) -> InboundTarget:
        """Where a provider callback for a location goes, with the key it is signed with. A location
        without that provider configured (or a wrong URL token) is not found: nothing is stored."""
        async with self._uow(TenantScope.anonymous()) as uow:
            resolved = await uow.messaging_providers.resolve(location_id, channel)
        if resolved is None and not self._configs.has_platform(channel):
            raise NotFound("no such callback URL")
        if token is not None:
            # The platform's configuration has no stored token: its token is derived from the location.
            expected = resolved.inbound_token if resolved else self._links.callback_token(location_id)
            if not hmac.compare_digest(token.encode(), expected.encode()):
                raise NotFound("no such callback URL")
        config = self._configs.config(channel, resolved)
        if config is None or not config.callbacks:
            raise NotFound("no such callback URL")  # SMTP has no callbacks
        secret = config.callback_key(inbound=token is not None)
        return InboundTarget(
            provider=provider, scope=str(location_id), location_id=location_id, secret=secret
        )
