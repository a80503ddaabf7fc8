"""What providers report, normalised: an inbound SMS or email, a delivery status, an email event.

Provider adapters parse their verified callbacks into these; the conversations service applies them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ghl_core.conversations.gateways import MessageStatus


@dataclass(frozen=True, slots=True)
class Attachment:
    """Metadata only: the content stays with the provider (or is dropped)."""

    filename: str | None
    content_type: str | None
    size: int | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class InboundSms:
    provider: str
    provider_message_id: str
    from_number: str  # as the provider gives it (E.164 for Twilio)
    to_number: str
    body: str
    media: tuple[Attachment, ...] = ()
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery report about one of our outbound messages."""

    provider: str
    provider_message_id: str
    status: MessageStatus
    error_code: str | None = None
    error_message: str | None = None
    at: datetime | None = None
    message_key: str | None = None  # our message id when the provider echoes it back


@dataclass(frozen=True, slots=True)
class InboundEmail:
    provider: str
    from_email: str
    to_emails: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    from_name: str | None = None
    message_id: str | None = None  # the RFC 5322 Message-ID
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime | None = None


class EmailEventKind(StrEnum):
    PROCESSED = "processed"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCE = "bounce"
    DROPPED = "dropped"
    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"
    SPAM_REPORT = "spamreport"


@dataclass(frozen=True, slots=True)
class EmailEvent:
    provider: str
    kind: EmailEventKind
    event_id: str  # the provider's id of this event (sg_event_id)
    email: str
    provider_message_id: str | None = None
    message_key: str | None = None  # our message id, from the custom args we sent
    at: datetime | None = None
    reason: str | None = None
    url: str | None = None  # clicks
    extra: dict[str, str] = field(default_factory=dict)
