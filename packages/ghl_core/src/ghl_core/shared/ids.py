"""Identifiers: UUID v4 everywhere."""

from __future__ import annotations

import uuid


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def parse_id(value: str, pointer: str = "/id") -> uuid.UUID:
    from ghl_core.shared.errors import ValidationFailed

    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed.one(pointer, "must be a UUID") from None
