"""Checks custom field values against their definitions (the values a contact carries, keyed by field key)."""

from __future__ import annotations

from typing import Any

from ghl_core.custom_fields.models import CustomFieldDefinition
from ghl_core.shared.errors import FieldError, ValidationFailed


def validate_values(
    definitions: list[CustomFieldDefinition], values: dict[str, Any], pointer: str = "/custom_fields"
) -> dict[str, Any]:
    """Returns the values normalised; None clears a value. Unknown keys are errors."""
    by_key = {d.key: d for d in definitions}
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for key, value in values.items():
        definition = by_key.get(key)
        if definition is None:
            errors.append(FieldError(f"{pointer}/{key}", "no custom field with this key is defined"))
            continue
        out[key] = value
    if errors:
        raise ValidationFailed(errors)
    return out
