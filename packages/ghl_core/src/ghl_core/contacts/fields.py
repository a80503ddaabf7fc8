"""Validation of contact input: one pass over the given fields, every bad field reported with its pointer,
values normalised (e-mail lower-cased, phone in E.164, tags trimmed) before any duplicate check."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from ghl_core.contacts.models import ATTRIBUTION_KEYS, TEXT_FIELDS, DndChannel
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.phones import normalize_phone
from ghl_core.shared.validation import (
    check_country,
    check_timezone,
    clean_text,
    clean_web_url,
    normalize_email,
)

MAX_TAG = 100
MAX_TAGS = 200
KNOWN_FIELDS = frozenset(
    {
        *TEXT_FIELDS,
        "email",
        "phone",
        "timezone",
        "date_of_birth",
        "attribution",
        "assigned_user_id",
        "dnd",
        "dnd_channels",
        "tags",
        "custom_fields",
    }
)


def normalize_tag(raw: str) -> str:
    """Tags compare case-insensitively and ignore extra spaces, as agencies expect."""
    return " ".join(raw.split()).lower()


def clean_tags(values: object, pointer: str, errors: list[FieldError]) -> list[str]:
    if not isinstance(values, list):
        errors.append(FieldError(pointer, "must be a list of tag names"))
        return []
    tags: list[str] = []
    for i, raw in enumerate(values):
        if not isinstance(raw, str) or not normalize_tag(raw):
            errors.append(FieldError(f"{pointer}/{i}", "must be a non-blank tag name"))
            continue
        tag = normalize_tag(raw)
        if len(tag) > MAX_TAG or not tag.isprintable():
            errors.append(FieldError(f"{pointer}/{i}", f"must be printable and at most {MAX_TAG} characters"))
        elif tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        errors.append(FieldError(pointer, f"at most {MAX_TAGS} tags per contact"))
    return tags


# Outcomes of e-mail and phone parsing, by (kind, region, raw value): the normalised value, or the reason
# it is invalid. A caller validating many rows (an import) passes one, and bounds its size itself.
Memo = dict[tuple[str, str, str], tuple[bool, str]]


def clean_contact_fields(
    data: dict[str, Any], region: str, prefix: str = "", memo: Memo | None = None
) -> dict[str, Any]:
    """Validates and normalises the given fields (a partial set). Unknown fields are errors. A value of
    None clears the field. Custom field values are returned as given, for their definitions to check.
    `memo` remembers e-mail and phone outcomes across calls (parsing them is most of the cost)."""
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for key, value in data.items():
        pointer = f"{prefix}/{key}"
        if key not in KNOWN_FIELDS:
            errors.append(FieldError(pointer, "is not a contact field"))
        elif key == "website":
            out[key] = clean_web_url(value, pointer, errors)
        elif key in TEXT_FIELDS:
            text = clean_text(value, pointer, errors)
            if key == "country" and text:
                text = check_country(text, pointer, errors)
            out[key] = text
        elif key == "email":
            out[key] = _email(value, pointer, errors, memo)
        elif key == "phone":
            out[key] = _phone(value, region, pointer, errors, memo)
        elif key == "timezone":
            out[key] = check_timezone(value, pointer, errors) if isinstance(value, str) and value else None
        elif key == "date_of_birth":
            out[key] = _date(value, pointer, errors)
        elif key == "attribution":
            out[key] = _attribution(value, pointer, errors)
        elif key == "assigned_user_id":
            out[key] = _uuid(value, pointer, errors)
        elif key == "dnd":
            if not isinstance(value, bool):
                errors.append(FieldError(pointer, "must be true or false"))
            out[key] = bool(value)
        elif key == "dnd_channels":
            out[key] = _dnd_channels(value, pointer, errors)
        elif key == "tags":
            out[key] = clean_tags(value, pointer, errors)
        else:  # custom_fields
            if not isinstance(value, dict):
                errors.append(FieldError(pointer, "must be an object of field keys to values"))
            out[key] = value if isinstance(value, dict) else {}
    if errors:
        raise ValidationFailed(errors)
    return out


def _memoised(memo: Memo | None, key: tuple[str, str, str], parse: Callable[[], str]) -> tuple[bool, str]:
    """(True, normalised) or (False, reason), from `memo` when it has seen `key`."""
    if memo is not None and (known := memo.get(key)) is not None:
        return known
    try:
        outcome = (True, parse())
    except ValueError as exc:
        outcome = (False, str(exc))
    if memo is not None:
        memo[key] = outcome
    return outcome


def _email(value: object, pointer: str, errors: list[FieldError], memo: Memo | None = None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors.append(FieldError(pointer, "must be a string"))
        return None
    ok, result = _memoised(memo, ("email", "", value), lambda: normalize_email(value))
    if not ok:
        errors.append(FieldError(pointer, f"is not a valid e-mail address: {result}"))
        return None
    return result


def _phone(
    value: object, region: str, pointer: str, errors: list[FieldError], memo: Memo | None = None
) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        errors.append(FieldError(pointer, "must be a string"))
        return None
    raw = str(value)
    ok, result = _memoised(memo, ("phone", region, raw), lambda: normalize_phone(raw, region))
    if not ok:
        errors.append(FieldError(pointer, result))
        return None
    return result


def _date(value: object, pointer: str, errors: list[FieldError]) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        parsed = date.fromisoformat(str(value))
    except ValueError:
        errors.append(FieldError(pointer, "must be a date as YYYY-MM-DD"))
        return None
    if parsed > date.today() or parsed.year < 1900:
        errors.append(FieldError(pointer, "must be a date between 1900 and today"))
    return parsed


def _uuid(value: object, pointer: str, errors: list[FieldError]) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        errors.append(FieldError(pointer, "must be a UUID"))
        return None


def _dnd_channels(value: object, pointer: str, errors: list[FieldError]) -> dict[str, bool]:
    if not isinstance(value, dict):
        errors.append(FieldError(pointer, 'must be an object such as {"sms": true}'))
        return {}
    out: dict[str, bool] = {}
    for channel, flag in value.items():
        if channel not in DndChannel._value2member_map_:
            errors.append(FieldError(f"{pointer}/{channel}", "is not a channel (sms, email, call, whatsapp)"))
        elif not isinstance(flag, bool):
            errors.append(FieldError(f"{pointer}/{channel}", "must be true or false"))
        else:
            out[channel] = flag
    return out


def _attribution(value: object, pointer: str, errors: list[FieldError]) -> dict[str, dict[str, str]]:
    """{"first": {...}, "last": {...}}, or a flat {utm_source: ...} taken as this touch."""
    if not isinstance(value, dict):
        errors.append(FieldError(pointer, "must be an object"))
        return {}
    touches = value if set(value) <= {"first", "last"} else {"last": value}
    out: dict[str, dict[str, str]] = {}
    for touch, keys in touches.items():
        if not isinstance(keys, dict):
            errors.append(FieldError(f"{pointer}/{touch}", "must be an object"))
            continue
        clean: dict[str, str] = {}
        for key, raw in keys.items():
            if key not in ATTRIBUTION_KEYS:
                errors.append(
                    FieldError(f"{pointer}/{touch}/{key}", f"is not one of {', '.join(ATTRIBUTION_KEYS)}")
                )
            elif (text := clean_text(raw, f"{pointer}/{touch}/{key}", errors)) is not None:
                clean[key] = text
        out[touch] = clean
    return out
