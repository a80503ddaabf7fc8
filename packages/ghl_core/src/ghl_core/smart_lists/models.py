"""The smart list entity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class SmartList:
    id: uuid.UUID
    location_id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime
    query: str | None = None
    filter: dict[str, Any] | None = None  # as the caller wrote it, checked on every save and every run
    sort: list[dict[str, Any]] = field(default_factory=list)
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "query": self.query,
            "filter": self.filter,
            "sort": self.sort,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }
