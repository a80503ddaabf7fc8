"""The task entity and the filter of the location-wide task list."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_TASK_TITLE = 500
MAX_TASK_BODY = 50_000


@dataclass(slots=True)
class Task:
    id: uuid.UUID
    location_id: uuid.UUID
    contact_id: uuid.UUID
    title: str
    created_at: datetime
    updated_at: datetime
    body: str | None = None
    due_at: datetime | None = None
    assignee_id: uuid.UUID | None = None
    completed: bool = False
    completed_at: datetime | None = None
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "contact_id": str(self.contact_id),
            "title": self.title,
            "body": self.body,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "assignee_id": str(self.assignee_id) if self.assignee_id else None,
            "completed": self.completed,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """The location-wide list's filter: `due_after <= due_at < due_before`. A task without a due time
    matches no due bound."""

    assignee_id: uuid.UUID | None = None
    completed: bool | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
