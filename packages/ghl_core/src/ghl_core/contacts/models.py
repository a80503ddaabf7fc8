"""The contact aggregate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class DndChannel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    CALL = "call"
    WHATSAPP = "whatsapp"


class DuplicatePriority(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


@dataclass(frozen=True, slots=True)
class DuplicatePolicy:
    """A location's setting: whether duplicate contacts are allowed, and which identifier wins."""

    allow_duplicates: bool = False
    priority: DuplicatePriority = DuplicatePriority.EMAIL


ATTRIBUTION_KEYS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "referrer",
    "gclid",
    "fbclid",
)
ADDRESS_FIELDS = ("address1", "city", "state", "postal_code", "country")
# Fields a caller may set directly (the HTTP body and CSV columns use the same names).
TEXT_FIELDS = ("first_name", "last_name", "company_name", *ADDRESS_FIELDS, "website", "source", "gender")
PII_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    *ADDRESS_FIELDS,
    "website",
    "date_of_birth",
    "gender",
)


@dataclass(slots=True)
class Contact:
    id: uuid.UUID
    location_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company_name: str | None = None
    address1: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    website: str | None = None
    timezone: str | None = None
    date_of_birth: date | None = None
    gender: str | None = None
    source: str | None = None
    attribution: dict[str, dict[str, str]] = field(default_factory=dict)  # {"first": {...}, "last": {...}}
    assigned_user_id: uuid.UUID | None = None
    dnd: bool = False
    dnd_channels: dict[str, bool] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    last_activity_at: datetime | None = None
    deleted_at: datetime | None = None
    erased_at: datetime | None = None
    merged_into: uuid.UUID | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    def can_receive(self, channel: DndChannel) -> bool:
        return not self.dnd and not self.dnd_channels.get(channel.value, False)

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "phone": self.phone,
            "company_name": self.company_name,
            **{f: getattr(self, f) for f in ADDRESS_FIELDS},
            "website": self.website,
            "timezone": self.timezone,
            "date_of_birth": self.date_of_birth.isoformat() if self.date_of_birth else None,
            "gender": self.gender,
            "source": self.source,
            "attribution": self.attribution,
            "assigned_user_id": str(self.assigned_user_id) if self.assigned_user_id else None,
            "dnd": self.dnd,
            "dnd_channels": dict(sorted(self.dnd_channels.items())),
            "tags": sorted(self.tags),
            "custom_fields": self.custom_fields,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }
