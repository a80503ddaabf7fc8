"""Validation of note input: every bad field reported with its pointer."""

from __future__ import annotations

from typing import Any

from ghl_core.notes.models import MAX_NOTE_BODY
from ghl_core.shared.errors import FieldError, ValidationFailed

NOTE_FIELDS = frozenset({"body", "pinned"})


def check_long_text(value: object, pointer: str, errors: list[FieldError], limit: int) -> str | None:
    """Free text keeps its line breaks and spacing; it must not be blank, hold NUL or exceed `limit`."""
    if not isinstance(value, str):
        errors.append(FieldError(pointer, "must be a string"))
        return None
    if not value.strip():
        errors.append(FieldError(pointer, "must not be blank"))
        return None
    if "\x00" in value:
        errors.append(FieldError(pointer, "must not contain NUL characters"))
        return None
    if len(value) > limit:
        errors.append(FieldError(pointer, f"must be at most {limit:,} characters"))
        return None
    return value


def clean_note_fields(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for key, value in data.items():
        pointer = f"/{key}"
        if key not in NOTE_FIELDS:
            errors.append(FieldError(pointer, "is not a note field"))
        elif key == "body":
            out[key] = check_long_text(value, pointer, errors, MAX_NOTE_BODY)
        elif not isinstance(value, bool):
            errors.append(FieldError(pointer, "must be true or false"))
        else:
            out[key] = value
    if creating and "body" not in data:
        errors.append(FieldError("/body", "is required"))
    if errors:
        raise ValidationFailed(errors)
    return out
