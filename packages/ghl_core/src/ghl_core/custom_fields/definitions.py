"""Validation of a definition's own fields: key, label, type and options."""

from __future__ import annotations

import re
from typing import Any

from ghl_core.custom_fields.models import FieldType
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.validation import check_name

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_OPTIONS = 500
MAX_OPTION = 200


def check_key(value: object, errors: list[FieldError]) -> str:
    if not isinstance(value, str) or not KEY_PATTERN.match(value):
        errors.append(
            FieldError(
                "/key", "must start with a letter and hold only a-z, 0-9 and _ (at most 64 characters)"
            )
        )
        return ""
    return value


def check_type(value: object, errors: list[FieldError]) -> FieldType | None:
    if isinstance(value, FieldType):
        return value
    if isinstance(value, str) and value in FieldType._value2member_map_:
        return FieldType(value)
    errors.append(FieldError("/type", f"must be one of {', '.join(t.value for t in FieldType)}"))
    return None


def check_options(kind: FieldType | None, value: object, errors: list[FieldError]) -> list[str]:
    """Option types need a non-empty list of distinct options; other types take none."""
    options = [] if value is None else value
    if not isinstance(options, list):
        errors.append(FieldError("/options", "must be a list of strings"))
        return []
    if kind is None:
        return []
    if not kind.has_options:
        if options:
            errors.append(FieldError("/options", f"a {kind.value} field takes no options"))
        return []
    if not options:
        errors.append(FieldError("/options", f"a {kind.value} field needs at least one option"))
    if len(options) > MAX_OPTIONS:
        errors.append(FieldError("/options", f"at most {MAX_OPTIONS} options"))
    cleaned: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(options):
        text = " ".join(raw.split()) if isinstance(raw, str) else ""
        if not text or len(text) > MAX_OPTION or not text.isprintable():
            errors.append(
                FieldError(f"/options/{i}", f"must be a non-blank string of at most {MAX_OPTION} characters")
            )
        elif text.casefold() in seen:
            errors.append(FieldError(f"/options/{i}", f"'{text}' is already an option"))
        else:
            seen.add(text.casefold())
            cleaned.append(text)
    return cleaned


def clean_new_definition(data: dict[str, Any]) -> tuple[str, str, FieldType, list[str]]:
    errors: list[FieldError] = []
    unknown = sorted(set(data) - {"key", "label", "type", "options"})
    errors.extend(FieldError(f"/{name}", "is not a custom field property") for name in unknown)
    key = check_key(data.get("key"), errors)
    label_raw = data.get("label")
    label = check_name(label_raw, "/label", errors) if isinstance(label_raw, str) else ""
    if not isinstance(label_raw, str):
        errors.append(FieldError("/label", "must be a string"))
    kind = check_type(data.get("type"), errors)
    options = check_options(kind, data.get("options"), errors)
    if errors or kind is None:
        raise ValidationFailed(errors)
    return key, label, kind, options
