"""Keyset pagination with opaque cursors, and an offset fallback."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ghl_core.shared.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Beyond any table; the database's OFFSET is a bigint, so 10**30 failed there as a server error.
MAX_OFFSET = 1_000_000_000
# What `encode_cursor` writes (URL-safe base64 without padding), so the API can document it.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
MAX_CURSOR = 1024


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    after: tuple[str, ...] | None = None
    offset: int | None = None

    @classmethod
    def parse(cls, limit: int | None, cursor: str | None, offset: int | None) -> PageRequest:
        errors = []
        lim = DEFAULT_LIMIT if limit is None else limit
        if not 1 <= lim <= MAX_LIMIT:
            errors.append(("limit", f"must be between 1 and {MAX_LIMIT}"))
        if offset is not None and not 0 <= offset <= MAX_OFFSET:
            errors.append(("offset", f"must be between 0 and {MAX_OFFSET:,}"))
        if cursor and offset is not None:
            errors.append(("cursor", "give either cursor or offset, not both"))
        if errors:
            from ghl_core.shared.errors import FieldError

            raise ValidationFailed([FieldError(f"/{name}", msg) for name, msg in errors])
        return cls(limit=lim, after=decode_cursor(cursor) if cursor else None, offset=offset)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(key: tuple[Any, ...]) -> str:
    raw = json.dumps([str(k) for k in key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, ...]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: deeply nested JSON ("[[[[...") exhausts the parser; still just a bad cursor.
        raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed.one("/cursor", "is not a cursor this API issued")
    return tuple(value)


def page_from_rows(rows: list[T], limit: int, key: Any) -> Page[T]:
    """`rows` was fetched with limit + 1; `key(row)` gives the keyset tuple of a row."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(key(rows[-1])))
    return Page(items=rows, next_cursor=None)
