"""Bodies of the custom fields endpoints. Inputs are loosely typed: the core checks each with its pointer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ghl_core.custom_fields.models import CustomFieldDefinition, FieldType
from ghl_http.schemas import Body


class CustomFieldIn(Body):
    key: Any = Field(None, description="Slug ^[a-z][a-z0-9_]{0,63}$, unique in the location; never changes")
    label: Any = None
    type: Any = Field(None, description=", ".join(t.value for t in FieldType))
    options: Any = Field(
        None, description="Required (non-empty, distinct) for single_option/multiple_options"
    )


class CustomFieldOut(BaseModel):
    id: uuid.UUID
    key: str
    label: str
    type: FieldType
    options: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: CustomFieldDefinition) -> CustomFieldOut:
        return cls(
            id=d.id,
            key=d.key,
            label=d.label,
            type=d.type,
            options=d.options,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )
