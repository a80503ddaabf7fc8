"""Conversations, their messages, and a location's messaging settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.quiet_hours import QuietHours
from ghl_core.shared.errors import Conflict, DomainError

MAX_SMS_BODY = 1600  # ten segments of GSM-7, what carriers accept as one concatenated message
MAX_SUBJECT = 998  # RFC 5322 line limit
MAX_EMAIL_BODY = 1_000_000
PREVIEW = 160


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class EngagementKind(StrEnum):
    """What a recipient did with a campaign's message. Declared here, where it is recorded (replies,
    opens, clicks, unsubscribes, bounces all arrive through conversations); campaigns count it."""

    OPEN = "open"
    CLICK = "click"
    REPLY = "reply"
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"


class MessageSource(StrEnum):
    MANUAL = "manual"
    WORKFLOW = "workflow"
    CAMPAIGN = "campaign"
    API = "api"
    SYSTEM = "system"  # compliance replies (STOP confirmation, HELP)
    PROVIDER = "provider"  # inbound


# Statuses a send can still leave (the send job acts only on these).
PENDING = frozenset({MessageStatus.SCHEDULED, MessageStatus.QUEUED})
# Later statuses never go back to earlier ones (a late "sent" callback after "delivered" is ignored).
STATUS_RANK = {
    MessageStatus.SCHEDULED: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.READ: 4,
    MessageStatus.RECEIVED: 0,
}


class ContactOptedOut(Conflict):
    """The contact has do-not-disturb on for this channel: nothing is sent, by anyone."""

    code = "contact_dnd"
    title = "Contact opted out"


class NoAddress(DomainError):
    code = "no_address"
    title = "Contact has no address for this channel"


@dataclass(slots=True)
class Conversation:
    id: uuid.UUID
    location_id: uuid.UUID
    contact_id: uuid.UUID
    channel: Channel
    created_at: datetime
    updated_at: datetime
    assigned_user_id: uuid.UUID | None = None
    unread_count: int = 0
    last_message_at: datetime | None = None
    last_message_preview: str | None = None
    last_direction: Direction | None = None


@dataclass(slots=True)
class Message:
    id: uuid.UUID
    location_id: uuid.UUID
    conversation_id: uuid.UUID
    contact_id: uuid.UUID
    channel: Channel
    direction: Direction
    status: MessageStatus
    source: MessageSource
    created_at: datetime
    updated_at: datetime
    body: str = ""
    subject: str | None = None
    html: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    sender: str | None = None
    recipient: str | None = None
    marketing: bool = False
    cause: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    rfc_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    segments: int | None = None
    encoding: str | None = None
    send_at: datetime | None = None
    claimed_at: datetime | None = None
    attempts: int = 0
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None
    created_by: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None

    def snapshot(self) -> dict[str, Any]:
        """The event payload: what a consumer needs, without the body of an email's HTML."""
        return {
            "id": str(self.id),
            "conversation_id": str(self.conversation_id),
            "contact_id": str(self.contact_id),
            "channel": self.channel.value,
            "direction": self.direction.value,
            "status": self.status.value,
            "source": self.source.value,
            "subject": self.subject,
            "body": self.body,
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "error_code": self.error_code,
            "campaign_id": str(self.campaign_id) if self.campaign_id else None,
        }


@dataclass(frozen=True, slots=True)
class MessagingSettings:
    location_id: uuid.UUID
    quiet_hours: QuietHours | None = None
    help_text: str | None = None
    stop_text: str | None = None
    start_text: str | None = None
    sms_per_second: int | None = None
    email_per_second: int | None = None

    def quiet_window(self) -> tuple[time, time] | None:
        return (self.quiet_hours.start, self.quiet_hours.end) if self.quiet_hours else None


DEFAULT_STOP_TEXT = (
    "You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
)
DEFAULT_START_TEXT = "You have been resubscribed. Reply STOP to unsubscribe, HELP for help."
DEFAULT_HELP_TEXT = "Reply STOP to unsubscribe. Msg & data rates may apply."
