"""Masking of personal data and secrets before anything reaches a log line.

Every function here is total: whatever it is given, it returns something printable and never raises,
because a crash inside a log call would turn a harmless log line into a failed request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

_SENSITIVE_KEYS = frozenset(
    {
        "password",
        "passwd",
        "password_hash",
        "token",
        "access_token",
        "refresh_token",
        "secret",
        "api_key",
        "x_api_key",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "key_hash",
    }
)
_SENSITIVE_SUFFIXES = ("_token", "_secret", "_password")
_EMAIL_KEYS = frozenset({"email", "email_address"})
_PHONE_KEYS = frozenset({"phone", "phone_number", "mobile", "mobile_phone", "sms_to", "sms_from"})

_DIGITS = frozenset("0123456789")
_MAX_DEPTH = 32

# The local part accepts all of RFC 5322 atext so unusual addresses are caught; the domain needs a dot
# only, because internationalised TLDs (xn--...) contain digits and hyphens.
_EMAIL = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
# Valid in an address but far likelier to delimit a URL or query string (``?email=jane@x.com``).
_URL_DELIMITER = re.compile(r".*[/?=&]", re.DOTALL)
# Digit groups joined by single separators; the lookarounds keep hex ids, uuids and ISO timestamps
# (digits glued to letters or hyphens) from being mistaken for phone numbers.
_PHONE = r"(?<![\w+.\-])(?:\+\d{1,4}[\s.\-]?)?(?:\(\d{1,5}\)[\s.\-]?)?\d+(?:[\s.\-]\d+)*(?![\w@+\-]|\.\d)"
_PII = re.compile(f"(?P<email>{_EMAIL})|(?P<phone>{_PHONE})")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MIN_PHONE_DIGITS = 7


def mask_email(email: str) -> str:
    """``jane.doe@example.com`` -> ``j***@example.com``: enough to recognise, not enough to contact."""
    text = _as_text(email).strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return MASK
    return f"{local[:1]}{MASK}@{domain}"


def mask_phone(phone: str) -> str:
    """``+14155550123`` -> ``+1******0123``: the country hint and the tail a support agent reads back."""
    text = _as_text(phone).strip()
    digits = [c for c in text if c in _DIGITS]
    if len(digits) < _MIN_PHONE_DIGITS:
        return MASK
    head = f"+{digits[0]}" if text.startswith("+") else ""
    keep = 4 if len(digits) >= 10 else 2
    hidden = len(digits) - keep - len(head[1:])
    return f"{head}{'*' * hidden}{''.join(digits[-keep:])}"


def mask_text(text: str) -> str:
    """Mask every email address and phone-like number (7+ digits) inside free text."""
    return _PII.sub(_replace, _as_text(text))


def mask_value(obj: Any, *, stringify_unknown: bool = False) -> Any:
    """Return a masked copy of ``obj``, recursing through mappings and sequences.

    ``stringify_unknown`` turns objects of other types into masked strings, for sinks (such as a JSON
    log renderer) that would otherwise print their ``repr`` unmasked.
    """
    return _mask(obj, None, 0, stringify_unknown)


def is_sensitive_key(key: str) -> bool:
    norm = _norm_key(key)
    return norm in _SENSITIVE_KEYS or norm.endswith(_SENSITIVE_SUFFIXES)


def _mask(obj: Any, key: str | None, depth: int, stringify: bool) -> Any:
    if depth > _MAX_DEPTH:
        # Deep or cyclic structures are cut rather than walked forever.
        return MASK
    if key is not None:
        norm = _norm_key(key)
        if norm in _SENSITIVE_KEYS or norm.endswith(_SENSITIVE_SUFFIXES):
            return MASK
        if isinstance(obj, str) and (norm in _EMAIL_KEYS or norm.endswith("_email")):
            return mask_email(obj)
        if isinstance(obj, str) and (norm in _PHONE_KEYS or norm.endswith("_phone")):
            return mask_phone(obj)
    if isinstance(obj, str):
        return mask_text(obj)
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, bytes | bytearray):
        return mask_text(bytes(obj).decode("utf-8", "replace"))
    if isinstance(obj, Mapping):
        return _mask_mapping(obj, depth, stringify)
    if isinstance(obj, list | tuple | set | frozenset):
        items = [_mask(item, None, depth + 1, stringify) for item in obj]
        return items if isinstance(obj, list | set | frozenset) else tuple(items)
    return mask_text(_as_text(obj)) if stringify else obj


def _mask_mapping(obj: Mapping[Any, Any], depth: int, stringify: bool) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    try:
        items = list(obj.items())
    except Exception:
        return {MASK: MASK}
    for k, v in items:
        name = k if isinstance(k, str) else None
        out[mask_text(k) if name is not None else k] = _mask(v, name, depth + 1, stringify)
    return out


def _replace(match: re.Match[str]) -> str:
    found = match.group(0)
    if match.group("email") is not None:
        lead = _URL_DELIMITER.match(found.partition("@")[0])
        prefix = lead.group(0) if lead else ""
        return prefix + mask_email(found[len(prefix) :])
    if sum(c in _DIGITS for c in found) < _MIN_PHONE_DIGITS or _ISO_DATE.fullmatch(found):
        return found
    return mask_phone(found)


def _norm_key(key: str) -> str:
    return key.strip().lower().replace("-", "_")


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
