"""Bodies of the custom fields endpoints. Inputs are loosely typed: the core checks each with its pointer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict, JsonValue
from pydantic.json_schema import SkipJsonSchema

from ghl_core.custom_fields.definitions import KEY_PATTERN, MAX_OPTION, MAX_OPTIONS
from ghl_core.custom_fields.models import CustomFieldDefinition, FieldType
from ghl_core.shared.validation import MAX_NAME_LENGTH
from ghl_http.schema_rules import NAME, TAG, rule
from ghl_http.schemas import Body

_WITH_OPTIONS: list[JsonValue] = [t.value for t in FieldType if t.has_options]
# Option types need options; the others take none (an empty list or null).
_OPTIONS_BY_TYPE: JsonDict = {
    "if": {"required": ["type"], "properties": {"type": {"enum": _WITH_OPTIONS}}},
    "then": {"properties": {"options": {"minItems": 1}}},
    "else": {"properties": {"options": {"anyOf": [{"maxItems": 0}, {"type": "null"}]}}},
}


_KEY = rule(nullable=False, type="string", pattern=KEY_PATTERN.pattern)
_KEY_HELP = "Slug ^[a-z][a-z0-9_]{0,63}$, unique in the location; never changes"


class CustomFieldPatch(Body):
    """A change: label, type or options. The key never changes: the server takes it unchanged (what a
    whole definition sent back holds), so it is no member of this schema."""

    key: SkipJsonSchema[Any] = None
    label: Annotated[Any, rule(nullable=False, type="string", pattern=NAME, maxLength=MAX_NAME_LENGTH)] = (
        Field(None)
    )
    type: Annotated[Any, rule(nullable=False, type="string", enum=[t.value for t in FieldType])] = Field(
        None, description=", ".join(t.value for t in FieldType)
    )
    options: Annotated[
        Any,
        rule(
            type=["array", "null"],
            maxItems=MAX_OPTIONS,
            uniqueItems=True,
            items={"type": "string", "pattern": TAG, "maxLength": MAX_OPTION},
        ),
    ] = Field(None, description="Required (non-empty, distinct) for single_option/multiple_options")


class CustomFieldIn(CustomFieldPatch):
    """A new field: key, label and type; options exactly when the type takes them."""

    model_config = ConfigDict(
        json_schema_extra={"required": ["key", "label", "type"], "allOf": [_OPTIONS_BY_TYPE]}
    )

    key: Annotated[Any, _KEY] = Field(None, description=_KEY_HELP)


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
