"""Repository of the notes context."""

from __future__ import annotations

import uuid
from typing import Protocol

from ghl_core.notes.models import Note
from ghl_core.notes.records import ContactRecordsUnitOfWork
from ghl_core.shared.pagination import Page, PageRequest


class NoteRepository(Protocol):
    async def add(self, note: Note) -> bool:
        """Stores it unless a note with its id exists (in any location): then False, nothing stored."""
        ...

    async def update(self, note: Note) -> None: ...

    async def get(self, note_id: uuid.UUID, *, lock: bool = False) -> Note | None:
        """Soft-deleted notes too; callers decide. `lock` holds the row until the transaction ends, so
        two concurrent changes of one note apply one after the other."""
        ...

    async def list_for_contact(self, contact_id: uuid.UUID, page: PageRequest) -> Page[Note]:
        """Live notes of the contact: pinned first, then newest first."""
        ...


class NotesUnitOfWork(ContactRecordsUnitOfWork, Protocol):
    """What the notes context touches in one transaction."""

    @property
    def notes(self) -> NoteRepository: ...
