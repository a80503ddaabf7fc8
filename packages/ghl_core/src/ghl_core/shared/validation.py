"""Small validators shared by the contexts: names, e-mail addresses, time zones, countries, web
addresses."""

from __future__ import annotations

import functools
import re
import unicodedata
import zoneinfo
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from ghl_core.shared.errors import FieldError

MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 500


def check_name(value: str, pointer: str, errors: list[FieldError]) -> str:
    cleaned = " ".join(value.split())
    if not cleaned:
        errors.append(FieldError(pointer, "must not be blank"))
    elif any(unicodedata.category(ch) == "Cc" for ch in cleaned):
        errors.append(FieldError(pointer, "must not contain control characters"))
    elif len(cleaned) > MAX_NAME_LENGTH:
        errors.append(FieldError(pointer, f"must be at most {MAX_NAME_LENGTH} characters"))
    return cleaned


def normalize_email(value: str) -> str:
    """Lower-cased and validated; raises ValueError with a readable reason."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized.lower()


def check_email(value: str, pointer: str, errors: list[FieldError]) -> str:
    try:
        return normalize_email(value)
    except ValueError as exc:
        errors.append(FieldError(pointer, f"is not a valid e-mail address: {exc}"))
        return value


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(value: str, pointer: str, errors: list[FieldError]) -> str:
    if value not in _zones():
        errors.append(FieldError(pointer, f"'{value}' is not an IANA time zone (e.g. America/New_York)"))
    return value


def check_country(value: str, pointer: str, errors: list[FieldError]) -> str:
    code = value.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        errors.append(FieldError(pointer, "must be an ISO 3166-1 alpha-2 country code, e.g. US"))
    return code


MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


def check_password(value: str, pointer: str, errors: list[FieldError]) -> str:
    if len(value) < MIN_PASSWORD_LENGTH:
        errors.append(FieldError(pointer, f"must be at least {MIN_PASSWORD_LENGTH} characters"))
    elif len(value) > MAX_PASSWORD_LENGTH:
        errors.append(FieldError(pointer, f"must be at most {MAX_PASSWORD_LENGTH} characters"))
    return value


def clean_text(
    value: object, pointer: str, errors: list[FieldError], max_length: int = MAX_TEXT_LENGTH
) -> str | None:
    """A short free-text field: whitespace collapsed, printable, bounded; blank becomes None."""
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(pointer, "must be a string"))
        return None
    cleaned = " ".join(value.split())
    if len(cleaned) > max_length or not cleaned.isprintable():
        errors.append(FieldError(pointer, f"must be printable and at most {max_length} characters"))
        return None
    return cleaned or None


WEB_SCHEMES = frozenset({"http", "https"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?![0-9])")  # "example.com:8080" is a host and a port
_NOT_WEB = "must be a web address (http or https), e.g. https://example.com"


def clean_web_url(
    value: object, pointer: str, errors: list[FieldError], max_length: int = MAX_TEXT_LENGTH
) -> str | None:
    """A web address (a contact's website): http or https only, because merge fields put it in an
    email's href. Written without a scheme ("example.com/shop") it gets https:// in front; any other
    scheme (javascript:, data:, mailto:) is refused. Blank becomes None."""
    text = clean_text(value, pointer, errors, max_length)
    if text is None:
        return None
    bare = _SCHEME.match(text) is None
    url = f"https://{text}" if bare else text
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        scheme, host = "", ""
    if " " in text or scheme not in WEB_SCHEMES or not host or (bare and "." not in host):
        errors.append(FieldError(pointer, _NOT_WEB))
        return None
    if len(url) > max_length:
        errors.append(FieldError(pointer, f"must be at most {max_length} characters"))
        return None
    return url
