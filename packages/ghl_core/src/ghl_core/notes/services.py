"""Use cases of the notes context: write, read, change and delete the notes of a contact."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from ghl_core.notes.fields import clean_note_fields
from ghl_core.notes.models import Note
from ghl_core.notes.ports import NotesUnitOfWork
from ghl_core.notes.records import agency_of, existing, live_contact, raced
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_entity_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission


async def _existing(uow: NotesUnitOfWork, location_id: uuid.UUID, note_id: uuid.UUID) -> Note | None:
    return await existing(uow.notes, location_id, note_id, "note")


async def _raced(uow: NotesUnitOfWork, location_id: uuid.UUID, note_id: uuid.UUID) -> Note:
    return await raced(uow.notes, location_id, note_id, "note")


class NoteService:
    def __init__(self, uow: UnitOfWorkFactory[NotesUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    @staticmethod
    async def _visible(
        uow: NotesUnitOfWork, contact_id: uuid.UUID, note_id: uuid.UUID, *, lock: bool = False
    ) -> Note:
        await live_contact(uow, contact_id)
        note = await uow.notes.get(note_id, lock=lock)
        if note is None or note.contact_id != contact_id or note.deleted_at is not None:
            raise NotFound(f"note {note_id} not found")
        return note

    async def _record(
        self, uow: NotesUnitOfWork, actor: Actor, action: str, before: Note | None, after: Note, event: str
    ) -> None:
        await record_entity_change(
            uow,
            self._clock,
            actor,
            action=action,
            entity_type="note",
            agency_id=await agency_of(uow, after.location_id),
            before=before,
            after=after,
            event_type=event,
        )

    async def create(
        self, actor: Actor, contact_id: uuid.UUID, data: dict[str, Any], *, id: uuid.UUID | None = None
    ) -> Note:
        """With `id` (a workflow step's deterministic id) the create is idempotent: when the location
        already has a note with that id, deleted or not, that note is returned and nothing is written."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        fields = clean_note_fields(data, creating=True)
        async with self._uow(actor.scope) as uow:
            # Before the contact check: a retry finds its note even if the contact was deleted since.
            if id is not None and (existing := await _existing(uow, location_id, id)) is not None:
                return existing
            await live_contact(uow, contact_id)
            now = self._clock.now()
            note = Note(
                id=id if id is not None else new_id(),
                location_id=location_id,
                contact_id=contact_id,
                body=fields["body"],
                pinned=fields.get("pinned", False),
                author_type=actor.kind.value,
                author_id=actor.id,
                created_at=now,
                updated_at=now,
                created_by=actor.id,
                updated_by=actor.id,
            )
            # Touching the contact locks its row: a delete racing this note either waits for it or
            # wins, and then the note is refused rather than written onto a deleted contact.
            if not await uow.contacts.touch_activity(contact_id, now):
                raise NotFound(f"contact {contact_id} not found")
            if not await uow.notes.add(note):
                # A racing create with the same id committed first: its note is the answer.
                return await _raced(uow, location_id, note.id)
            await self._record(uow, actor, "create", None, note, "note.created")
            await uow.commit()
        return note

    async def get(self, actor: Actor, contact_id: uuid.UUID, note_id: uuid.UUID) -> Note:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, contact_id, note_id)

    async def list(self, actor: Actor, contact_id: uuid.UUID, page: PageRequest) -> Page[Note]:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            await live_contact(uow, contact_id)
            return await uow.notes.list_for_contact(contact_id, page)

    async def update(
        self, actor: Actor, contact_id: uuid.UUID, note_id: uuid.UUID, data: dict[str, Any]
    ) -> Note:
        actor.require_location(Permission.CONTACTS_WRITE)
        fields = clean_note_fields(data, creating=False)
        async with self._uow(actor.scope) as uow:
            before = await self._visible(uow, contact_id, note_id, lock=True)
            after = replace(before, **fields)
            if after.snapshot() == before.snapshot():
                return before
            after.updated_at, after.updated_by = self._clock.now(), actor.id
            await uow.notes.update(after)
            await self._record(uow, actor, "update", before, after, "note.updated")
            await uow.commit()
        return after

    async def delete(self, actor: Actor, contact_id: uuid.UUID, note_id: uuid.UUID) -> None:
        actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            before = await self._visible(uow, contact_id, note_id, lock=True)
            now = self._clock.now()
            after = replace(before, deleted_at=now, updated_at=now, updated_by=actor.id)
            await uow.notes.update(after)
            await self._record(uow, actor, "delete", before, after, "note.deleted")
            await uow.commit()
