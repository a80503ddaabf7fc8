"""Bodies of the tags endpoints. The core normalises and checks every tag name."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from ghl_core.tags.models import BulkTagResult, Tag
from ghl_http.schemas import Body


class TagIn(Body):
    name: str = Field(description="Compared case-insensitively; stored lower-cased with single spaces")


class TagOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, tag: Tag) -> TagOut:
        return cls(id=tag.id, name=tag.name, created_at=tag.created_at, updated_at=tag.updated_at)


class ContactTagsIn(Body):
    tags: list[str] = Field(max_length=200)


class ContactTagsOut(BaseModel):
    contact_id: uuid.UUID
    tags: list[str]


class BulkTagsIn(Body):
    contact_ids: list[str] = Field(description="At most 1,000 contacts; all must exist, or nothing changes")
    add: list[str] | None = Field(None, max_length=200)
    remove: list[str] | None = Field(None, max_length=200)


class BulkTagsOut(BaseModel):
    contacts: int = Field(description="Distinct contacts named in the request")
    changed: int = Field(description="Contacts whose tags changed")
    tags_added: int
    tags_removed: int

    @classmethod
    def of(cls, result: BulkTagResult) -> BulkTagsOut:
        return cls(
            contacts=result.contacts,
            changed=result.changed,
            tags_added=result.tags_added,
            tags_removed=result.tags_removed,
        )
