"""Custom field definitions: what a location's contacts may carry beyond the standard fields."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class FieldType(StrEnum):
    TEXT = "text"
    LARGE_TEXT = "large_text"
    NUMBER = "number"
    MONEY = "money"
    PHONE = "phone"
    EMAIL = "email"
    DATE = "date"
    CHECKBOX = "checkbox"
    SINGLE_OPTION = "single_option"
    MULTIPLE_OPTIONS = "multiple_options"

    @property
    def has_options(self) -> bool:
        return self in (FieldType.SINGLE_OPTION, FieldType.MULTIPLE_OPTIONS)


@dataclass(slots=True)
class CustomFieldDefinition:
    id: uuid.UUID
    location_id: uuid.UUID
    key: str
    label: str
    type: FieldType
    created_at: datetime
    updated_at: datetime
    options: list[str] = field(default_factory=list)
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "key": self.key,
            "label": self.label,
            "type": self.type.value,
            "options": list(self.options),
        }
