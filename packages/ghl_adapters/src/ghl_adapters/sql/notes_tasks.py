"""SQL tables and repositories of the notes and tasks contexts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, Row, Select, Table, Text, and_, exists, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.notes.models import Note
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.tasks.models import Task, TaskFilter

from . import tables as t
from .tables import _stamps, _ts, _uuid, metadata

notes = Table(
    "notes",
    metadata,
    _uuid("id", True),
    _uuid("location_id", nullable=False),
    _uuid("contact_id", nullable=False),
    Column("body", Text, nullable=False),
    Column("pinned", Boolean, nullable=False),
    Column("author_type", Text, nullable=False),
    _uuid("author_id"),
    *_stamps(),
)

tasks = Table(
    "tasks",
    metadata,
    _uuid("id", True),
    _uuid("location_id", nullable=False),
    _uuid("contact_id", nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text),
    _ts("due_at"),
    _uuid("assignee_id"),
    Column("completed", Boolean, nullable=False),
    _ts("completed_at"),
    *_stamps(),
)

_NOTE_COLUMNS = (
    "contact_id",
    "body",
    "pinned",
    "author_type",
    "author_id",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
)
_TASK_COLUMNS = (
    "contact_id",
    "title",
    "body",
    "due_at",
    "assignee_id",
    "completed",
    "completed_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
)


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed.one("/cursor", "is not a cursor this API issued")


def _note(row: Row[Any]) -> Note:
    return Note(id=row.id, location_id=row.location_id, **{c: getattr(row, c) for c in _NOTE_COLUMNS})


def _task(row: Row[Any]) -> Task:
    return Task(id=row.id, location_id=row.location_id, **{c: getattr(row, c) for c in _TASK_COLUMNS})


def _lockable(query: Select[Any], lock: bool) -> Select[Any]:
    return query.with_for_update() if lock else query


class SqlNoteRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, note: Note) -> bool:
        values = {c: getattr(note, c) for c in _NOTE_COLUMNS}
        query = (
            insert(notes)
            .values(id=note.id, location_id=note.location_id, **values)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(notes.c.id)
        )
        return (await self._c.execute(query)).first() is not None

    async def update(self, note: Note) -> None:
        values = {c: getattr(note, c) for c in _NOTE_COLUMNS}
        await self._c.execute(update(notes).where(notes.c.id == note.id).values(**values))

    async def get(self, note_id: uuid.UUID, *, lock: bool = False) -> Note | None:
        row = (await self._c.execute(_lockable(select(notes).where(notes.c.id == note_id), lock))).first()
        return _note(row) if row else None

    async def list_for_contact(self, contact_id: uuid.UUID, page: PageRequest) -> Page[Note]:
        n = notes.c
        q = select(notes).where(n.contact_id == contact_id, n.deleted_at.is_(None))
        if page.after is not None:
            try:
                pinned, created, ident = page.after
                if pinned not in ("True", "False"):
                    raise ValueError(pinned)
                key = (pinned == "True", datetime.fromisoformat(created), uuid.UUID(ident))
            except ValueError:
                raise _bad_cursor() from None
            # Every key descends, so one row comparison continues after the cursor.
            q = q.where(tuple_(n.pinned, n.created_at, n.id) < key)
        q = q.order_by(n.pinned.desc(), n.created_at.desc(), n.id.desc()).limit(page.limit + 1)
        if page.offset is not None:
            q = q.offset(page.offset)
        rows = [_note(r) for r in (await self._c.execute(q)).all()]
        return page_from_rows(rows, page.limit, lambda x: (x.pinned, x.created_at.isoformat(), x.id))


def _due_keyset(query: Select[Any], page: PageRequest) -> Select[Any]:
    """Orders by (due_at, id) with undated tasks last, continuing after the page's cursor."""
    k = tasks.c
    if page.after is not None:
        try:
            due, ident = page.after
            after_id = uuid.UUID(ident)
            after_due = datetime.fromisoformat(due) if due else None
        except ValueError:
            raise _bad_cursor() from None
        if after_due is None:
            query = query.where(k.due_at.is_(None), k.id > after_id)
        else:
            query = query.where(or_(tuple_(k.due_at, k.id) > (after_due, after_id), k.due_at.is_(None)))
    query = query.order_by(k.due_at.asc().nulls_last(), k.id).limit(page.limit + 1)
    if page.offset is not None:
        query = query.offset(page.offset)
    return query


def _due_key(task: Task) -> tuple[str, str]:
    return (task.due_at.isoformat() if task.due_at else "", str(task.id))


class SqlTaskRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, task: Task) -> bool:
        values = {c: getattr(task, c) for c in _TASK_COLUMNS}
        query = (
            insert(tasks)
            .values(id=task.id, location_id=task.location_id, **values)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(tasks.c.id)
        )
        return (await self._c.execute(query)).first() is not None

    async def update(self, task: Task) -> None:
        values = {c: getattr(task, c) for c in _TASK_COLUMNS}
        await self._c.execute(update(tasks).where(tasks.c.id == task.id).values(**values))

    async def get(self, task_id: uuid.UUID, *, lock: bool = False) -> Task | None:
        row = (await self._c.execute(_lockable(select(tasks).where(tasks.c.id == task_id), lock))).first()
        return _task(row) if row else None

    async def list_for_contact(self, contact_id: uuid.UUID, page: PageRequest) -> Page[Task]:
        k = tasks.c
        q = _due_keyset(select(tasks).where(k.contact_id == contact_id, k.deleted_at.is_(None)), page)
        return page_from_rows([_task(r) for r in (await self._c.execute(q)).all()], page.limit, _due_key)

    async def list(self, filter: TaskFilter, page: PageRequest) -> Page[Task]:
        k, c = tasks.c, t.contacts.c
        # A deleted contact's tasks drop out of the list (and come back if it is restored).
        live_contact = exists().where(c.id == k.contact_id, c.deleted_at.is_(None), c.erased_at.is_(None))
        conditions: list[Any] = [k.deleted_at.is_(None), live_contact]
        if filter.assignee_id is not None:
            conditions.append(k.assignee_id == filter.assignee_id)
        if filter.completed is not None:
            conditions.append(k.completed == filter.completed)
        if filter.due_after is not None:
            conditions.append(k.due_at >= filter.due_after)
        if filter.due_before is not None:
            conditions.append(k.due_at < filter.due_before)
        q = _due_keyset(select(tasks).where(and_(*conditions)), page)
        return page_from_rows([_task(r) for r in (await self._c.execute(q)).all()], page.limit, _due_key)
