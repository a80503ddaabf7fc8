"""Bodies of the contacts endpoints. Inputs are loosely typed on purpose: the core validates and
normalises every field and reports each bad one with its pointer."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ghl_core.contacts.models import Contact, DuplicatePolicy, DuplicatePriority
from ghl_http.schemas import Body


class ContactIn(Body):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = Field(
        None, description="Any format; stored in E.164 (the location's country by default)"
    )
    company_name: str | None = None
    address1: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    website: str | None = None
    timezone: str | None = Field(None, description="IANA time zone")
    date_of_birth: str | None = Field(None, description="YYYY-MM-DD")
    gender: str | None = None
    source: str | None = None
    attribution: dict[str, Any] | None = Field(
        None, description='{"first": {...}, "last": {...}} or flat UTM keys taken as the latest touch'
    )
    assigned_user_id: str | None = None
    dnd: bool | None = None
    dnd_channels: dict[str, bool] | None = Field(None, description='e.g. {"sms": true, "email": false}')
    tags: list[str] | None = Field(None, max_length=200)
    custom_fields: dict[str, Any] | None = Field(None, description="Values keyed by custom field key")


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
