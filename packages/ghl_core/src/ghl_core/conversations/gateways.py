"""The provider ports: what sending an SMS or an email asks of a provider, and what it answers.

Adapters (Twilio, SendGrid, SMTP, the local outbox) implement these; the core never sees an SDK."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class MessageStatus(StrEnum):
    SCHEDULED = "scheduled"  # waits for its send time (or the end of quiet hours)
    QUEUED = "queued"  # a send job will hand it to the provider
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    READ = "read"  # opened (email) / read receipt
    RECEIVED = "received"  # inbound


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """`key` is the send ledger's key of this message (our message id): providers that take an
    idempotency token get it, and `find_sent` looks for it."""

    key: str
    to: str  # E.164
    from_number: str | None  # E.164; None when the credentials name a messaging service
    body: str
    media_urls: tuple[str, ...] = ()
    status_callback: str | None = None


@dataclass(frozen=True, slots=True)
class EmailMessage:
    key: str
    to: str
    from_email: str
    subject: str
    text: str
    html: str | None = None
    to_name: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. List-Unsubscribe, Message-ID
    # Our ids, echoed back by providers that support it (SendGrid custom_args), so status events find
    # the message they are about.
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    provider: str  # "twilio", "sendgrid", "smtp", "outbox"
    provider_message_id: str | None
    status: MessageStatus = MessageStatus.SENT
    sent_at: datetime | None = None


class SendFailed(Exception):
    """The provider refused or could not be reached. `permanent`: retrying cannot help (a bad number, a
    rejected address, bad credentials); otherwise the send is retried later. `unknown`: the request may
    have reached the provider (no answer came: a read timeout, a cut connection), so the message keeps
    its claim and the retry first asks the provider (`find_sent`) rather than sending it again."""

    def __init__(
        self, detail: str, *, permanent: bool, code: str | None = None, unknown: bool = False
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent
        self.code = code
        self.unknown = unknown


class SmsGateway(Protocol):
    provider: str

    async def send_sms(self, message: SmsMessage) -> SendResult:
        """Raises `SendFailed`."""
        ...

    async def find_sent(self, message: SmsMessage, since: datetime) -> SendResult | None:
        """After a send whose outcome was lost (the worker died between the provider call and the
        commit): the provider's record of this message when it has one, else None. A gateway that cannot
        tell raises `NotImplementedError`, and the message is then not sent again (at most once)."""
        ...


class EmailGateway(Protocol):
    provider: str

    async def send_email(self, message: EmailMessage) -> SendResult:
        """Raises `SendFailed`."""
        ...

    async def find_sent(self, message: EmailMessage, since: datetime) -> SendResult | None:
        """As `SmsGateway.find_sent`."""
        ...


class BulkEmailGateway(EmailGateway, Protocol):
    """An email gateway whose provider takes many messages in one call (SendGrid's personalizations).
    Each message keeps its own ledger entry and key; the answers come back one per message, in order."""

    @property
    def max_batch(self) -> int:
        """At most this many messages per `send_emails` call."""
        ...

    async def send_emails(self, messages: list[EmailMessage]) -> list[SendResult | SendFailed]:
        """Never raises `SendFailed`: a refusal is the answer of each message it concerns."""
        ...
