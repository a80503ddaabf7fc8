"""A location's tag, and the change of one contact's tags."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ghl_core.contacts.models import Contact


@dataclass(slots=True)
class Tag:
    id: uuid.UUID
    location_id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    def snapshot(self) -> dict[str, Any]:
        return {"id": str(self.id), "name": self.name}


@dataclass(frozen=True, slots=True)
class TagChange:
    """One contact whose tags changed: the contact as written, and its tags before."""

    contact: Contact
    before: list[str]

    @property
    def added(self) -> list[str]:
        return [t for t in self.contact.tags if t not in self.before]

    @property
    def removed(self) -> list[str]:
        return [t for t in self.before if t not in self.contact.tags]


@dataclass(frozen=True, slots=True)
class BulkTagResult:
    contacts: int  # contacts named in the request
    changed: int  # contacts whose tags changed
    tags_added: int  # tag additions over all contacts
    tags_removed: int
