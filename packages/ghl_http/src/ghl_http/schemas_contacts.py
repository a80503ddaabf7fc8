"""Bodies of the contacts endpoints. Inputs are loosely typed on purpose: the core validates and
normalises every field and reports each bad one with its pointer."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ghl_core.contacts.fields import MAX_TAG
from ghl_core.contacts.models import ATTRIBUTION_KEYS, Contact, DndChannel, DuplicatePolicy, DuplicatePriority
from ghl_core.custom_fields.definitions import KEY_PATTERN
from ghl_core.shared.validation import MAX_TEXT_LENGTH
from ghl_http.schema_rules import (
    BIRTH_DATE,
    COUNTRY,
    EMAIL,
    NOT_BLANK,
    TAG,
    TEXT,
    TIME_ZONE,
    UUID,
    WEB_URL,
    JsonSchema,
    rule,
)
from ghl_http.schemas import Body

_TEXT = rule(pattern=TEXT, maxLength=MAX_TEXT_LENGTH)
_TOUCH: JsonSchema = {
    "type": "object",
    "properties": {key: {"type": ["string", "null"], "pattern": TEXT} for key in ATTRIBUTION_KEYS},
    "additionalProperties": False,
}


class ContactPatch(Body):
    """A contact's fields; on a change, null (or an empty string) clears one."""

    first_name: Annotated[str | None, _TEXT] = None
    last_name: Annotated[str | None, _TEXT] = None
    email: Annotated[str | None, rule(pattern=f"{EMAIL}|^$", format="email", maxLength=254)] = None
    phone: str | None = Field(
        None, description="Any format; stored in E.164 (the location's country by default)"
    )
    company_name: Annotated[str | None, _TEXT] = None
    address1: Annotated[str | None, _TEXT] = None
    city: Annotated[str | None, _TEXT] = None
    state: Annotated[str | None, _TEXT] = None
    postal_code: Annotated[str | None, _TEXT] = None
    country: Annotated[str | None, rule(pattern=COUNTRY)] = Field(None, description="ISO 3166-1 alpha-2")
    website: Annotated[str | None, rule(pattern=WEB_URL, maxLength=MAX_TEXT_LENGTH)] = None
    timezone: Annotated[str | None, rule(**TIME_ZONE)] = Field(None, description="IANA time zone")
    date_of_birth: Annotated[str | None, rule(pattern=BIRTH_DATE, format="date")] = Field(
        None, description="YYYY-MM-DD"
    )
    gender: Annotated[str | None, _TEXT] = None
    source: Annotated[str | None, _TEXT] = None
    attribution: Annotated[
        dict[str, Any] | None,
        rule(
            nullable=False,
            anyOf=[
                {
                    "properties": {"first": _TOUCH, "last": _TOUCH},
                    "additionalProperties": False,
                },
                _TOUCH,
            ],
        ),
    ] = Field(None, description='{"first": {...}, "last": {...}} or flat UTM keys taken as the latest touch')
    assigned_user_id: Annotated[str | None, rule(**UUID)] = None
    dnd: Annotated[bool | None, rule(nullable=False)] = None
    dnd_channels: Annotated[
        dict[str, bool] | None,
        rule(nullable=False, propertyNames={"enum": [c.value for c in DndChannel]}),
    ] = Field(None, description='e.g. {"sms": true, "email": false}')
    tags: Annotated[
        list[str] | None, rule(nullable=False, items={"type": "string", "pattern": TAG, "maxLength": MAX_TAG})
    ] = Field(None, max_length=200)
    custom_fields: Annotated[
        dict[str, Any] | None, rule(nullable=False, propertyNames={"pattern": KEY_PATTERN.pattern})
    ] = Field(None, description="Values keyed by custom field key (of the location's custom fields)")


def _one_of_given(*names: str) -> JsonSchema:
    """At least one of these members, with a value (inside allOf: a generated client then keeps one
    class for the body rather than one per alternative)."""
    alternatives = [
        {"required": [name], "properties": {name: {"type": "string", "pattern": NOT_BLANK}}} for name in names
    ]
    return {"allOf": [{"anyOf": alternatives}]}


class ContactIn(ContactPatch):
    """A new contact: at least a name, an e-mail address or a phone number."""

    model_config = ConfigDict(json_schema_extra=_one_of_given("first_name", "last_name", "email", "phone"))


class ContactUpsertIn(ContactPatch):
    """Found by e-mail address or phone number (the location's duplicate rule): one of them is needed."""

    model_config = ConfigDict(json_schema_extra=_one_of_given("email", "phone"))


class ContactOut(BaseModel):
    id: uuid.UUID
    first_name: str | None
    last_name: str | None
    name: str
    email: str | None
    phone: str | None
    company_name: str | None
    address1: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None
    website: str | None
    timezone: str | None
    date_of_birth: date | None
    gender: str | None
    source: str | None
    attribution: dict[str, dict[str, str]]
    assigned_user_id: uuid.UUID | None
    dnd: bool
    dnd_channels: dict[str, bool]
    tags: list[str]
    custom_fields: dict[str, Any]
    last_activity_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Contact) -> ContactOut:
        return cls(
            id=c.id,
            first_name=c.first_name,
            last_name=c.last_name,
            name=c.name,
            email=c.email,
            phone=c.phone,
            company_name=c.company_name,
            address1=c.address1,
            city=c.city,
            state=c.state,
            postal_code=c.postal_code,
            country=c.country,
            website=c.website,
            timezone=c.timezone,
            date_of_birth=c.date_of_birth,
            gender=c.gender,
            source=c.source,
            attribution=c.attribution,
            assigned_user_id=c.assigned_user_id,
            dnd=c.dnd,
            dnd_channels=c.dnd_channels,
            tags=c.tags,
            custom_fields=c.custom_fields,
            last_activity_at=c.last_activity_at,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class MergeIn(Body):
    survivor_id: uuid.UUID = Field(description="The contact that stays")
    loser_id: uuid.UUID = Field(description="The contact merged into the survivor, then deleted")


class UpsertOut(BaseModel):
    contact: ContactOut
    action: Literal["created", "updated"]


class ContactSettingsIO(Body):
    allow_duplicates: bool = False
    duplicate_priority: DuplicatePriority = DuplicatePriority.EMAIL

    @classmethod
    def of(cls, policy: DuplicatePolicy) -> ContactSettingsIO:
        return cls(allow_duplicates=policy.allow_duplicates, duplicate_priority=policy.priority)
