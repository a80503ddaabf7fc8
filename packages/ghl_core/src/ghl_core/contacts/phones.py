"""Phone numbers in E.164, parsed with the location's country as the default region."""

from __future__ import annotations

import phonenumbers


def normalize_phone(value: str, default_region: str) -> str:
    """E.164 form of `value`; raises ValueError with a readable reason."""
    text = value.strip()
    if not text:
        raise ValueError("is empty")
    try:
        parsed = phonenumbers.parse(text, default_region.upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"is not a phone number ({exc.args[0] if exc.args else 'unparseable'})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"'{value}' is not a valid phone number for region {default_region.upper()}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
