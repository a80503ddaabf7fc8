"""Notes and tasks in memory. Both belong to a contact: they follow it when contacts are merged, and are
scrubbed with it when its history is erased (see contacts.py)."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from typing import Any

from ghl_core.notes.models import Note
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.tasks.models import Task, TaskFilter

from .contacts import CONTACT_ERASERS, CONTACT_OWNED, CONTACT_REFERENCES, CONTACTS, live
from .store import MemoryRepository, Table

NOTES: Table[uuid.UUID, Note] = Table("notes")
TASKS: Table[uuid.UUID, Task] = Table("tasks")


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed.one("/cursor", "is not a cursor this API issued")


def _erase(repo: MemoryRepository, location_id: uuid.UUID, contact_id: uuid.UUID) -> None:
    for note in repo.rows(NOTES).values():
        if note.contact_id == contact_id and note.location_id == location_id:
            note.body = "[erased]"
    for task in repo.rows(TASKS).values():
        if task.contact_id == contact_id and task.location_id == location_id:
            task.title, task.body = "[erased]", None


CONTACT_REFERENCES.extend([NOTES, TASKS])
CONTACT_OWNED.extend([NOTES, TASKS])
CONTACT_ERASERS.append(_erase)


class MemoryNoteRepository(MemoryRepository):
    async def add(self, note: Note) -> bool:
        self.check_write(self.sees_location(note.location_id), "notes")
        rows = self.rows(NOTES)
        if note.id in rows:
            return False
        rows[note.id] = copy.deepcopy(note)
        return True

    async def update(self, note: Note) -> None:
        stored = self.rows(NOTES).get(note.id)
        if stored is not None and self.sees_location(stored.location_id):
            self.rows(NOTES)[note.id] = copy.deepcopy(note)

    async def get(self, note_id: uuid.UUID, *, lock: bool = False) -> Note | None:
        found = self.rows(NOTES).get(note_id)
        if found is None or not self.sees_location(found.location_id):
            return None
        return copy.deepcopy(found)

    async def list_for_contact(self, contact_id: uuid.UUID, page: PageRequest) -> Page[Note]:
        def key(n: Note) -> tuple[bool, datetime, uuid.UUID]:
            return (n.pinned, n.created_at, n.id)

        found = sorted(
            (
                n
                for n in self.rows(NOTES).values()
                if n.contact_id == contact_id and n.deleted_at is None and self.sees_location(n.location_id)
            ),
            key=key,
            reverse=True,
        )
        if page.after is not None:
            try:
                pinned, created, ident = page.after
                if pinned not in ("True", "False"):
                    raise ValueError(pinned)
                after = (pinned == "True", datetime.fromisoformat(created), uuid.UUID(ident))
            except ValueError:
                raise _bad_cursor() from None
            found = [n for n in found if key(n) < after]
        if page.offset is not None:
            found = found[page.offset :]
        rows = [copy.deepcopy(n) for n in found[: page.limit + 1]]
        return page_from_rows(rows, page.limit, lambda x: (x.pinned, x.created_at.isoformat(), x.id))


def _due_key(task: Task) -> tuple[str, str]:
    return (task.due_at.isoformat() if task.due_at else "", str(task.id))


def _due_page(found: list[Task], page: PageRequest) -> Page[Task]:
    """By (due_at, id), undated tasks last, continuing after the page's cursor."""

    def order(t: Task) -> tuple[bool, Any, uuid.UUID]:
        return (t.due_at is None, t.due_at or datetime.min, t.id)

    found = sorted(found, key=order)
    if page.after is not None:
        try:
            due, ident = page.after
            after_id = uuid.UUID(ident)
            after_due = datetime.fromisoformat(due) if due else None
        except ValueError:
            raise _bad_cursor() from None
        if after_due is None:
            found = [t for t in found if t.due_at is None and t.id > after_id]
        else:
            found = [t for t in found if t.due_at is None or (t.due_at, t.id) > (after_due, after_id)]
    if page.offset is not None:
        found = found[page.offset :]
    return page_from_rows([copy.deepcopy(t) for t in found[: page.limit + 1]], page.limit, _due_key)


class MemoryTaskRepository(MemoryRepository):
    async def add(self, task: Task) -> bool:
        self.check_write(self.sees_location(task.location_id), "tasks")
        rows = self.rows(TASKS)
        if task.id in rows:
            return False
        rows[task.id] = copy.deepcopy(task)
        return True

    async def update(self, task: Task) -> None:
        stored = self.rows(TASKS).get(task.id)
        if stored is not None and self.sees_location(stored.location_id):
            self.rows(TASKS)[task.id] = copy.deepcopy(task)

    async def get(self, task_id: uuid.UUID, *, lock: bool = False) -> Task | None:
        found = self.rows(TASKS).get(task_id)
        if found is None or not self.sees_location(found.location_id):
            return None
        return copy.deepcopy(found)

    def _live(self) -> list[Task]:
        return [
            t for t in self.rows(TASKS).values() if t.deleted_at is None and self.sees_location(t.location_id)
        ]

    async def list_for_contact(self, contact_id: uuid.UUID, page: PageRequest) -> Page[Task]:
        return _due_page([t for t in self._live() if t.contact_id == contact_id], page)

    async def list(self, filter: TaskFilter, page: PageRequest) -> Page[Task]:
        contacts = self.rows(CONTACTS)
        found = [
            t
            for t in self._live()
            if t.contact_id in contacts
            and live(contacts[t.contact_id])
            and (filter.assignee_id is None or t.assignee_id == filter.assignee_id)
            and (filter.completed is None or t.completed == filter.completed)
            and (filter.due_after is None or (t.due_at is not None and t.due_at >= filter.due_after))
            and (filter.due_before is None or (t.due_at is not None and t.due_at < filter.due_before))
        ]
        return _due_page(found, page)
