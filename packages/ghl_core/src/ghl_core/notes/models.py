"""The note entity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_NOTE_BODY = 50_000


@dataclass(slots=True)
class Note:
    id: uuid.UUID
    location_id: uuid.UUID
    contact_id: uuid.UUID
    body: str
    created_at: datetime
    updated_at: datetime
    pinned: bool = False
    # The author is whoever wrote it: a user, an API key (an integration) or the operator.
    author_type: str = "user"
    author_id: uuid.UUID | None = None
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "contact_id": str(self.contact_id),
            "body": self.body,
            "pinned": self.pinned,
            "author_type": self.author_type,
            "author_id": str(self.author_id) if self.author_id else None,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }
