"""Checks custom field values against their definitions (the values a contact carries, keyed by field key).

Each type has one normaliser that either returns the stored form or raises ValueError with a reason;
the same normalisers decide whether stored values survive a change of a definition's type."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from ghl_core.custom_fields.currencies import CURRENCIES
from ghl_core.custom_fields.models import CustomFieldDefinition, FieldType
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.phones import normalize_phone
from ghl_core.shared.validation import normalize_email

MAX_TEXT = 500
MAX_LARGE_TEXT = 10_000
# Beyond 2**53 JavaScript clients silently lose precision in a JSON number.
MAX_MONEY_AMOUNT = 2**53 - 1
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value.strip()


def _text(value: object, limit: int, multiline: bool) -> str:
    text = _string(value)
    if len(text) > limit:
        raise ValueError(f"must be at most {limit:,} characters")
    allowed = "\n\r\t" if multiline else ""
    if any(not ch.isprintable() and ch not in allowed for ch in text):
        raise ValueError("must not contain control characters")
    return text


def _number(value: object) -> int | float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError("must be a number") from None
        if not parsed.is_finite():
            raise ValueError("must be a finite number")
        value = int(parsed) if parsed == parsed.to_integral_value() else float(parsed)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    raise ValueError("must be a number")


def _money(value: object) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
        raise ValueError('must be {"amount": <integer minor units>, "currency": "USD"}')
    amount, currency = value["amount"], value["currency"]
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError("amount must be an integer number of minor units (e.g. cents), never a fraction")
    if abs(amount) > MAX_MONEY_AMOUNT:
        raise ValueError(f"amount must be between -{MAX_MONEY_AMOUNT} and {MAX_MONEY_AMOUNT}")
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if code not in CURRENCIES:
        raise ValueError("currency must be an ISO 4217 code such as USD or EUR")
    return {"amount": amount, "currency": code}


def _phone(value: object, region: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return normalize_phone(_string(value), region)


def _email(value: object) -> str:
    try:
        return normalize_email(_string(value))
    except ValueError as exc:
        raise ValueError(f"is not a valid e-mail address: {exc}") from None


def _date(value: object) -> str:
    text = _string(value)
    if not _DATE.match(text):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError("must be a real date as YYYY-MM-DD") from None


def _checkbox(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be true or false")


def _single(value: object, options: list[str]) -> str:
    text = _string(value)
    if text not in options:
        raise ValueError(f"must be one of the field's options: {', '.join(options)}")
    return text


def _multiple(value: object, options: list[str]) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("must be a list of the field's options")
    chosen: list[str] = []
    for item in value:
        text = _string(item)
        if text not in options:
            raise ValueError(f"'{text}' is not one of the field's options: {', '.join(options)}")
        if text not in chosen:
            chosen.append(text)
    return chosen


def _normalizer(definition: CustomFieldDefinition, region: str) -> Callable[[object], Any]:
    kind, options = definition.type, definition.options
    table: dict[FieldType, Callable[[object], Any]] = {
        FieldType.TEXT: lambda v: _text(v, MAX_TEXT, multiline=False),
        FieldType.LARGE_TEXT: lambda v: _text(v, MAX_LARGE_TEXT, multiline=True),
        FieldType.NUMBER: _number,
        FieldType.MONEY: _money,
        FieldType.PHONE: lambda v: _phone(v, region),
        FieldType.EMAIL: _email,
        FieldType.DATE: _date,
        FieldType.CHECKBOX: _checkbox,
        FieldType.SINGLE_OPTION: lambda v: _single(v, options),
        FieldType.MULTIPLE_OPTIONS: lambda v: _multiple(v, options),
    }
    return table[kind]


def _is_empty(value: object) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def normalize_value(definition: CustomFieldDefinition, value: object, region: str = "US") -> Any:
    """The stored form of `value` (None when it clears the field); raises ValueError with a reason."""
    if _is_empty(value):
        return None
    normalized = _normalizer(definition, region)(value)
    return None if _is_empty(normalized) else normalized


def _escape(key: str) -> str:
    """A key as one JSON pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def validate_values(
    definitions: list[CustomFieldDefinition],
    values: dict[str, Any],
    pointer: str = "/custom_fields",
    *,
    region: str = "US",
) -> dict[str, Any]:
    """Returns the values normalised; None clears a value. Unknown keys are errors. `region` is the
    location's country, the default for phone numbers written without a country code."""
    by_key = {d.key: d for d in definitions}
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for key, value in values.items():
        at = f"{pointer}/{_escape(key)}"
        definition = by_key.get(key)
        if definition is None:
            errors.append(FieldError(at, "no custom field with this key is defined"))
            continue
        try:
            out[key] = normalize_value(definition, value, region)
        except ValueError as exc:
            errors.append(FieldError(at, str(exc)))
    if errors:
        raise ValidationFailed(errors)
    return out
