"""Bodies of the notes and tasks endpoints. Inputs are loosely typed on purpose: the core validates every
field (a naive due time, a blank title, an assignee outside the location) and reports each with its
pointer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ghl_core.notes.models import MAX_NOTE_BODY, Note
from ghl_core.tasks.models import MAX_TASK_BODY, MAX_TASK_TITLE, Task
from ghl_http.schema_rules import INSTANT, NOT_BLANK, UUID, requires, rule
from ghl_http.schemas import Body


class NotePatch(Body):
    # Above the core's 50,000-character limit, so the core's own message reports a long body.
    model_config = ConfigDict(str_max_length=60_000)

    body: Annotated[str | None, rule(nullable=False, maxLength=MAX_NOTE_BODY, pattern=NOT_BLANK)] = Field(
        None, description="1 to 50,000 characters; required on create"
    )
    pinned: Annotated[bool | None, rule(nullable=False)] = Field(None, description="Pinned notes list first")


class NoteIn(NotePatch):
    model_config = ConfigDict(json_schema_extra=requires("body"))


class NoteOut(BaseModel):
    id: uuid.UUID
    contact_id: uuid.UUID
    body: str
    pinned: bool
    author_type: str = Field(description="user, api_key or operator")
    author_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, n: Note) -> NoteOut:
        return cls(
            id=n.id,
            contact_id=n.contact_id,
            body=n.body,
            pinned=n.pinned,
            author_type=n.author_type,
            author_id=n.author_id,
            created_at=n.created_at,
            updated_at=n.updated_at,
        )


class TaskPatch(Body):
    model_config = ConfigDict(str_max_length=60_000)

    title: Annotated[str | None, rule(nullable=False, maxLength=MAX_TASK_TITLE, pattern=NOT_BLANK)] = Field(
        None, description="1 to 500 characters; required on create"
    )
    body: Annotated[str | None, rule(maxLength=MAX_TASK_BODY, pattern=NOT_BLANK)] = Field(
        None, description="Up to 50,000 characters; null clears it"
    )
    due_at: Annotated[str | None, rule(**INSTANT)] = Field(
        None, description="ISO 8601 with an offset, e.g. 2026-03-01T09:00:00-05:00; null clears it"
    )
    assignee_id: Annotated[str | None, rule(**UUID)] = Field(
        None, description="A user of the agency with access to this location; null unassigns"
    )
    completed: Annotated[bool | None, rule(nullable=False)] = Field(None)


class TaskIn(TaskPatch):
    model_config = ConfigDict(json_schema_extra=requires("title"))


class TaskOut(BaseModel):
    id: uuid.UUID
    contact_id: uuid.UUID
    title: str
    body: str | None
    due_at: datetime | None
    assignee_id: uuid.UUID | None
    completed: bool
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, k: Task) -> TaskOut:
        return cls(
            id=k.id,
            contact_id=k.contact_id,
            title=k.title,
            body=k.body,
            due_at=k.due_at,
            assignee_id=k.assignee_id,
            completed=k.completed,
            completed_at=k.completed_at,
            created_at=k.created_at,
            updated_at=k.updated_at,
        )
