"""Bodies of the tags endpoints. The core normalises and checks every tag name."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ghl_core.contacts.fields import MAX_TAG
from ghl_core.tags.models import BulkTagResult, Tag
from ghl_core.tags.services import MAX_BULK_CONTACTS
from ghl_http.schema_rules import TAG, UUID, rule
from ghl_http.schemas import Body


class TagIn(Body):
    name: Annotated[str, rule(pattern=TAG, maxLength=MAX_TAG)] = Field(
        description="Compared case-insensitively; stored lower-cased with single spaces"
    )


class TagOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, tag: Tag) -> TagOut:
        return cls(id=tag.id, name=tag.name, created_at=tag.created_at, updated_at=tag.updated_at)


_TAGS = rule(minItems=1, items={"type": "string", "pattern": TAG, "maxLength": MAX_TAG})


class ContactTagsIn(Body):
    tags: Annotated[list[str], _TAGS] = Field(max_length=200)


class ContactTagsOut(BaseModel):
    contact_id: uuid.UUID
    tags: list[str]


class BulkTagsIn(Body):
    # Tags to add, to remove, or both.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "anyOf": [
                        {"required": [name], "properties": {name: {"type": "array", "minItems": 1}}}
                        for name in ("add", "remove")
                    ]
                }
            ]
        }
    )

    contact_ids: Annotated[
        list[str], rule(minItems=1, maxItems=MAX_BULK_CONTACTS, items={"type": "string", **UUID})
    ] = Field(description="At most 1,000 contacts; all must exist, or nothing changes")
    add: Annotated[list[str] | None, _TAGS] = Field(None, max_length=200)
    remove: Annotated[list[str] | None, _TAGS] = Field(None, max_length=200)


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
