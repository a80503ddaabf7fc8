"""Bodies of the template and campaign endpoints. Inputs are loosely typed on purpose: the core checks
each field (the channel's rules, template syntax with its line, the audience's filter) and names it with
its pointer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ghl_core.campaigns.models import Campaign, CampaignStats, MessageTemplate
from ghl_core.contacts.search import MAX_QUERY
from ghl_core.shared.validation import MAX_NAME_LENGTH
from ghl_http.schema_rules import BY_CHANNEL, CONTACT_FILTER, INSTANT, NAME, TAGS, UUID, JsonSchema, rule
from ghl_http.schemas import Body
from ghl_http.schemas_contact_search import FILTER_HELP

TRACKING_PATH = "/t"
MERGE_HELP = (
    "Merge fields such as {{ contact.first_name | default('there') }}, {{ location.name }}; rendered in a "
    "sandbox (see docs/campaigns.md)"
)


class _Content(Body):
    # Above the core's limits, so the core's own messages report a long body or subject.
    model_config = ConfigDict(str_max_length=1_100_000)

    subject: str | None = Field(None, description="Email only; one line. " + MERGE_HELP)
    body: str | None = Field(None, description="The SMS text, or the email's text part. " + MERGE_HELP)
    html: str | None = Field(None, description="Email only; sanitised before it is stored. " + MERGE_HELP)


_NAME = rule(nullable=False, pattern=NAME, maxLength=MAX_NAME_LENGTH)
_CHANNEL = rule(nullable=False, enum=["sms", "email"])


class TemplatePatch(_Content):
    name: Annotated[str | None, _NAME] = Field(None, description="1 to 200 characters; required on create")


class TemplateIn(TemplatePatch):
    model_config = ConfigDict(json_schema_extra={"required": ["name", "channel"], "allOf": [BY_CHANNEL]})

    channel: Annotated[str | None, _CHANNEL] = Field(None, description="sms or email; fixed once created")


class TemplateOut(BaseModel):
    id: uuid.UUID
    name: str
    channel: str
    subject: str | None
    body: str
    html: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, t: MessageTemplate) -> TemplateOut:
        return cls(
            id=t.id,
            name=t.name,
            channel=t.channel.value,
            subject=t.subject,
            body=t.body,
            html=t.html,
            created_at=t.created_at,
            updated_at=t.updated_at,
        )


class PreviewIn(Body):
    contact_id: uuid.UUID = Field(description="The contact whose merge fields fill the template")


class PreviewOut(BaseModel):
    subject: str | None
    body: str
    html: str | None


class AudienceIn(Body):
    """Chosen like a contact search; the parts combine with AND. None at all means every contact."""

    query: Annotated[str | None, rule(maxLength=MAX_QUERY)] = Field(
        None, description="Words matched in names, e-mail, company and phone"
    )
    filter: Annotated[dict[str, Any] | None, rule(**CONTACT_FILTER)] = Field(None, description=FILTER_HELP)
    tags: Annotated[list[str] | None, TAGS] = Field(None, description="Tags a contact must all have")
    smart_list_id: Annotated[str | None, rule(**UUID)] = Field(
        None, description="A saved smart list of this location"
    )


class CampaignPatch(_Content):
    name: Annotated[str | None, _NAME] = Field(None, description="1 to 200 characters; required on create")
    template_id: Annotated[str | None, rule(**UUID)] = Field(
        None, description="Copy subject, body and html from this template (of the same channel)"
    )
    audience: AudienceIn | None = Field(None, description="Who receives it, frozen when sending starts")


_COPIES_A_TEMPLATE: JsonSchema = {
    "required": ["template_id"],
    "properties": {"template_id": {"type": "string"}},
}


class CampaignIn(CampaignPatch):
    # Without a template to copy, the content is the channel's.
    model_config = ConfigDict(
        json_schema_extra={
            "required": ["name", "channel"],
            "allOf": [{"if": {"not": _COPIES_A_TEMPLATE}, "then": BY_CHANNEL}],
        }
    )

    channel: Annotated[str | None, _CHANNEL] = Field(None, description="sms or email; fixed once created")


class SendIn(Body):
    at: Annotated[datetime | None, rule(**INSTANT)] = Field(
        None, description="Schedule for this instant (ISO 8601 with an offset); absent sends now"
    )


class CampaignOut(BaseModel):
    id: uuid.UUID
    name: str
    channel: str
    status: str = Field(description="draft, scheduled, sending, paused, completed or cancelled")
    template_id: uuid.UUID | None
    subject: str | None
    body: str
    html: str | None
    audience: dict[str, Any]
    recipients: int = Field(description="How many contacts the audience held when sending started")
    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    note: str | None = Field(
        description="Why it waits (the plan's messages a day are spent: it goes on at the location's next "
        "midnight) or went back to draft (its audience outgrew the plan); null otherwise"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Campaign) -> CampaignOut:
        return cls(
            id=c.id,
            name=c.name,
            channel=c.channel.value,
            status=c.status.value,
            template_id=c.template_id,
            subject=c.subject,
            body=c.body,
            html=c.html,
            audience=c.audience,
            recipients=c.recipients,
            scheduled_at=c.scheduled_at,
            started_at=c.started_at,
            completed_at=c.completed_at,
            note=c.note,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class CampaignStatsOut(BaseModel):
    recipients: int
    pending: int = Field(description="Recipients whose message is not written or not yet handed over")
    skipped: int = Field(description="Do-not-disturb, no address, or deleted when their turn came")
    sent: int = Field(description="Accepted by the provider (delivered ones included)")
    delivered: int
    failed: int
    opened: int = Field(description="Recipients who opened (email; counted once each)")
    clicked: int = Field(description="Recipients who clicked a link (counted once each)")
    replied: int
    unsubscribed: int
    bounced: int

    @classmethod
    def of(cls, s: CampaignStats) -> CampaignStatsOut:
        return cls(
            recipients=s.recipients,
            pending=s.pending,
            skipped=s.skipped,
            sent=s.sent,
            delivered=s.delivered,
            failed=s.failed,
            opened=s.opened,
            clicked=s.clicked,
            replied=s.replied,
            unsubscribed=s.unsubscribed,
            bounced=s.bounced,
        )
