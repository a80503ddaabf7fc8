"""Bodies of the conversations, messages, outbox and messaging setup endpoints, and the provider callback
URLs a location pastes into Twilio and SendGrid. Inputs are loosely typed on purpose: the core validates
each field and names it with its pointer. No output ever carries a provider credential."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ghl_core.conversations.callbacks import callback_urls
from ghl_core.conversations.models import (
    Conversation,
    Message,
    MessagingSettings,
)
from ghl_core.conversations.providers import ProviderKind
from ghl_core.conversations.setup import ProviderView
from ghl_http.schema_rules import BY_CHANNEL, CLOCK, INSTANT, NOT_BLANK, rule
from ghl_http.schemas import Body

UNSUBSCRIBE_PATH = "/unsubscribe"
OUTBOX_NOTE = "Taken by the local outbox: nothing was sent to anyone. Configure a provider to send for real."
# An agency default serves every location; each location's URLs carry its own id.
LOCATION_PLACEHOLDER = "{location_id}"


class ConversationOut(BaseModel):
    id: uuid.UUID
    contact_id: uuid.UUID
    channel: str = Field(description="sms or email")
    assigned_user_id: uuid.UUID | None
    unread_count: int
    last_message_at: datetime | None
    last_message_preview: str | None
    last_direction: str | None = Field(description="inbound or outbound")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Conversation) -> ConversationOut:
        return cls(
            id=c.id,
            contact_id=c.contact_id,
            channel=c.channel.value,
            assigned_user_id=c.assigned_user_id,
            unread_count=c.unread_count,
            last_message_at=c.last_message_at,
            last_message_preview=c.last_message_preview,
            last_direction=c.last_direction.value if c.last_direction else None,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class MessageOut(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    contact_id: uuid.UUID
    channel: str
    direction: str
    status: str = Field(
        description="scheduled, queued, sent, delivered, undelivered, failed, read or received"
    )
    source: str
    body: str
    subject: str | None
    html: str | None
    attachments: list[dict[str, Any]]
    sender: str | None
    recipient: str | None
    marketing: bool
    provider: str | None = Field(description="twilio, sendgrid, smtp or outbox (nothing sent)")
    provider_message_id: str | None
    error_code: str | None
    error_message: str | None
    segments: int | None
    encoding: str | None
    send_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        return cls(
            id=m.id,
            conversation_id=m.conversation_id,
            contact_id=m.contact_id,
            channel=m.channel.value,
            direction=m.direction.value,
            status=m.status.value,
            source=m.source.value,
            body=m.body,
            subject=m.subject,
            html=m.html,
            attachments=m.attachments,
            sender=m.sender,
            recipient=m.recipient,
            marketing=m.marketing,
            provider=m.provider,
            provider_message_id=m.provider_message_id,
            error_code=m.error_code,
            error_message=m.error_message,
            segments=m.segments,
            encoding=m.encoding,
            send_at=m.send_at,
            sent_at=m.sent_at,
            delivered_at=m.delivered_at,
            read_at=m.read_at,
            failed_at=m.failed_at,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )


class OutboxOut(BaseModel):
    provider: str = Field("outbox", description="Always outbox: these messages never left the platform")
    note: str = OUTBOX_NOTE
    items: list[MessageOut]
    next_cursor: str | None


class SendIn(Body):
    # Above the core's limits, so the core's own messages report a long body or subject. Titled apart
    # from the campaigns' SendIn: a generated client names its classes after the titles.
    model_config = ConfigDict(
        str_max_length=1_100_000,
        title="MessageSendIn",
        json_schema_extra={"required": ["channel"], "allOf": [BY_CHANNEL]},
    )

    channel: Annotated[str | None, rule(nullable=False, enum=["sms", "email"])] = Field(
        None, description="sms or email"
    )
    body: str | None = Field(None, description="The SMS text, or the email's text part")
    subject: str | None = Field(None, description="Email only; one line")
    html: str | None = Field(None, description="Email only; sanitised before it is stored or sent")
    send_at: Annotated[datetime | None, rule(**INSTANT)] = Field(
        None, description="Schedule it (ISO 8601 with an offset)"
    )
    marketing: Annotated[bool | None, rule(nullable=False)] = Field(
        None, description="Marketing SMS waits out quiet hours; marketing email gets one-click unsubscribe"
    )
    cause: Annotated[str | None, rule(minLength=1, maxLength=200)] = Field(
        None, description="Your key for this send: a repeat with the same cause returns the first message"
    )


class AssignIn(Body):
    assigned_user_id: uuid.UUID | None = Field(description="A user of the location; null unassigns")


class ProviderIn(Body):
    kind: Annotated[str, rule(enum=[k.value for k in ProviderKind if k is not ProviderKind.OUTBOX])] = Field(
        description="sms: twilio; email: sendgrid or smtp"
    )
    config: dict[str, Any] = Field(
        description=(
            "twilio: account_sid, auth_token, from_number or messaging_service_sid. sendgrid: api_key, "
            "from_email, from_name, event_webhook_public_key, inbound_parse_public_key. smtp: host, port, "
            "from_email, from_name, username, password, security (starttls, tls, none)"
        )
    )


class ProviderOut(BaseModel):
    channel: str
    kind: str = Field(description="outbox (the default: nothing is sent), twilio, sendgrid or smtp")
    agency_default: bool = Field(description="The agency's configuration, used by locations without one")
    summary: dict[str, Any] = Field(description="What identifies the account; credentials are masked")
    callback_urls: dict[str, str] = Field(description="Paste these into the provider's console")
    note: str | None = None

    @classmethod
    def of(cls, view: ProviderView, base_url: str, location_id: uuid.UUID | None) -> ProviderOut:
        note = None
        if view.kind is ProviderKind.OUTBOX:
            note = "No provider is configured: the local outbox records messages and nothing is sent."
        elif view.kind is ProviderKind.SMTP:
            note = "SMTP reports neither delivery nor replies: no callback URL to configure."
        target: uuid.UUID | str = location_id if location_id is not None else LOCATION_PLACEHOLDER
        return cls(
            channel=view.channel.value,
            kind=view.kind.value,
            agency_default=view.agency_default,
            summary=view.summary,
            callback_urls=callback_urls(base_url, target, view.kind, view.inbound_token),
            note=note,
        )


class QuietHoursOut(BaseModel):
    start: str = Field(description="HH:MM in the contact's time zone (the location's when unknown)")
    end: str


class MessagingSettingsOut(BaseModel):
    quiet_hours: QuietHoursOut | None = Field(description="Marketing SMS is held until the window ends")
    help_text: str | None
    stop_text: str | None
    start_text: str | None
    sms_per_second: int | None
    email_per_second: int | None

    @classmethod
    def of(cls, s: MessagingSettings) -> MessagingSettingsOut:
        quiet = s.quiet_window()
        return cls(
            quiet_hours=QuietHoursOut(start=quiet[0].strftime("%H:%M"), end=quiet[1].strftime("%H:%M"))
            if quiet
            else None,
            help_text=s.help_text,
            stop_text=s.stop_text,
            start_text=s.start_text,
            sms_per_second=s.sms_per_second,
            email_per_second=s.email_per_second,
        )


_REPLY = rule(pattern=NOT_BLANK, maxLength=320)
_PER_SECOND = rule(minimum=1, maximum=10_000)


class MessagingSettingsPatch(Body):
    quiet_hours: Annotated[
        dict[str, Any] | None,
        rule(
            properties={
                "start": {"type": "string", "pattern": CLOCK},
                "end": {"type": "string", "pattern": CLOCK},
            },
            required=["start", "end"],
            additionalProperties=False,
        ),
    ] = Field(None, description="{start: 'HH:MM', end: 'HH:MM'} (may wrap midnight, must differ); null: none")
    help_text: Annotated[str | None, _REPLY] = Field(
        None, description="The answer to HELP; null: the default"
    )
    stop_text: Annotated[str | None, _REPLY] = Field(
        None, description="The confirmation of STOP; null: the default"
    )
    start_text: Annotated[str | None, _REPLY] = Field(
        None, description="The confirmation of START; null: the default"
    )
    sms_per_second: Annotated[int | None, _PER_SECOND] = Field(
        None, description="At most the plan's pace (GHL_PLAN_LIMITS)"
    )
    email_per_second: Annotated[int | None, _PER_SECOND] = Field(
        None, description="At most the plan's pace (GHL_PLAN_LIMITS)"
    )
