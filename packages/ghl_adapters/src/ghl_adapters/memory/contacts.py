"""Contacts and their location's duplicate rule, in memory.

The SQL table enforces "one live contact per e-mail and per phone in a location" with unique indexes on
key columns that hold the e-mail and phone only while the location forbids duplicates and the contact is
live; the same keys are kept here beside each contact and checked on every write, so a write the database
would refuse raises `DuplicateContact` here too.

What belongs to a contact (notes, tasks, opportunities, later contexts' rows) is found through
`CONTACT_REFERENCES`, which those modules extend; erasing a contact's history scrubs the audit trail and
event log entries of the contact and of its notes and tasks, then runs the `CONTACT_ERASERS` other modules
register (as `ghl_erase_contact_history` does in the database)."""

from __future__ import annotations

import builtins
import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from ghl_core.contacts.models import Contact, DuplicatePolicy
from ghl_core.contacts.ports import DuplicateContact
from ghl_core.shared.pagination import Page, PageRequest

from .recording import AUDIT, EVENTS
from .store import MemoryRepository, Table, paginate


@dataclass(frozen=True, slots=True)
class ContactKeys:
    """The unique-index keys of a contact: set while duplicates are forbidden and the contact is live."""

    contact_id: uuid.UUID
    location_id: uuid.UUID
    email: str | None
    phone: str | None


CONTACTS: Table[uuid.UUID, Contact] = Table("contacts")
CONTACT_KEYS: Table[uuid.UUID, ContactKeys] = Table("contact_keys")
CONTACT_SETTINGS: Table[uuid.UUID, DuplicatePolicy] = Table("contact_settings")

# Tables of rows with a `contact_id` (merging points them at the survivor). Later modules append theirs.
CONTACT_REFERENCES: list[Table[uuid.UUID, Any]] = []
# Extra scrubbing when a contact's history is erased: (repository, location id, contact id) -> None.
ContactEraser = Callable[[MemoryRepository, uuid.UUID, uuid.UUID], None]
CONTACT_ERASERS: list[ContactEraser] = []
# Ids of rows (notes, tasks) whose audit entries and events are erased with their contact's.
CONTACT_OWNED: list[Table[uuid.UUID, Any]] = []


def _keys(contact: Contact, policy: DuplicatePolicy) -> ContactKeys:
    keyed = not policy.allow_duplicates and contact.deleted_at is None
    return ContactKeys(
        contact.id, contact.location_id, contact.email if keyed else None, contact.phone if keyed else None
    )


def live(contact: Contact) -> bool:
    return contact.deleted_at is None and contact.erased_at is None


class MemoryContactRepository(MemoryRepository):
    def _visible(self) -> builtins.list[Contact]:
        return [c for c in self.rows(CONTACTS).values() if self.sees_location(c.location_id)]

    def _write(self, contact: Contact, policy: DuplicatePolicy) -> None:
        keys = _keys(contact, policy)
        # Against rows committed since this unit of work began too, as the unique index refuses them.
        for other in self.unique_rows(CONTACT_KEYS):
            if other.contact_id == contact.id or other.location_id != contact.location_id:
                continue
            email = keys.email is not None and other.email == keys.email
            if email or (keys.phone is not None and other.phone == keys.phone):
                existing = [
                    c.id
                    for c in self._matches(contact.location_id, contact.email, contact.phone)
                    if c.id != contact.id
                ]
                which = "e-mail address" if email else "phone number"
                ids = ", ".join(map(str, existing)) or "another contact"
                raise DuplicateContact(f"a contact with this {which} already exists: {ids}", existing)
        self.rows(CONTACTS)[contact.id] = copy.deepcopy(contact)
        self.rows(CONTACT_KEYS)[contact.id] = keys

    def _matches(
        self, location_id: uuid.UUID, email: str | None, phone: str | None
    ) -> builtins.list[Contact]:
        if not email and not phone:
            return []
        found = [
            c
            for c in self._visible()
            if c.location_id == location_id
            and c.deleted_at is None
            and ((email and c.email == email) or (phone and c.phone == phone))
        ]
        return sorted(found, key=lambda c: (c.created_at, str(c.id)))

    async def ids_with_birthday(
        self, location_id: uuid.UUID, month: int, day: int
    ) -> builtins.list[uuid.UUID]:
        return [
            c.id
            for c in self._visible()
            if c.location_id == location_id
            and live(c)
            and c.date_of_birth is not None
            and (c.date_of_birth.month, c.date_of_birth.day) == (month, day)
        ]

    async def ids_with_custom_date(
        self, location_id: uuid.UUID, key: str, day: date
    ) -> builtins.list[uuid.UUID]:
        wanted = day.isoformat()
        return [
            c.id
            for c in self._visible()
            if c.location_id == location_id and live(c) and c.custom_fields.get(key) == wanted
        ]

    async def add(self, contact: Contact, policy: DuplicatePolicy) -> None:
        self.check_write(self.sees_location(contact.location_id), "contacts")
        if contact.id in self.rows(CONTACTS):
            raise DuplicateContact(f"contact {contact.id} exists", [contact.id])
        self._write(contact, policy)

    async def update(self, contact: Contact, policy: DuplicatePolicy) -> None:
        stored = self.rows(CONTACTS).get(contact.id)
        if stored is not None and self.sees_location(stored.location_id):
            self._write(contact, policy)

    async def get(self, contact_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        found = self.rows(CONTACTS).get(contact_id)
        if found is None or not self.sees_location(found.location_id):
            return None
        return copy.deepcopy(found)

    async def get_many(self, contact_ids: builtins.list[uuid.UUID]) -> dict[uuid.UUID, Contact]:
        rows = self.rows(CONTACTS)
        return {
            i: copy.deepcopy(rows[i])
            for i in contact_ids
            if i in rows and self.sees_location(rows[i].location_id)
        }

    async def find_matches(self, email: str | None, phone: str | None) -> builtins.list[Contact]:
        location_id = self.scope.location_id
        found = [
            c
            for c in self._visible()
            if (location_id is None or c.location_id == location_id)
            and c.deleted_at is None
            and ((email and c.email == email) or (phone and c.phone == phone))
        ]
        return [copy.deepcopy(c) for c in sorted(found, key=lambda c: (c.created_at, str(c.id)))]

    async def list(self, page: PageRequest, include_deleted: bool = False) -> Page[Contact]:
        found = [
            c for c in self._visible() if c.erased_at is None and (include_deleted or c.deleted_at is None)
        ]
        return paginate(found, page, descending=True)

    async def policy(self, location_id: uuid.UUID) -> DuplicatePolicy:
        if not self.sees_location(location_id):
            return DuplicatePolicy()
        return self.rows(CONTACT_SETTINGS).get(location_id, DuplicatePolicy())

    async def set_policy(self, location_id: uuid.UUID, policy: DuplicatePolicy) -> None:
        self.check_write(self.sees_location(location_id), "contact_settings")
        contacts = self.rows(CONTACTS)
        keys = {
            c.id: _keys(c, policy)
            for c in contacts.values()
            if c.location_id == location_id and c.deleted_at is None
        }
        seen: set[tuple[str, str]] = set()
        for key in keys.values():
            for kind, value in (("email", key.email), ("phone", key.phone)):
                if value is None:
                    continue
                if (kind, value) in seen:
                    raise DuplicateContact(
                        "this location already has contacts sharing an e-mail address or phone number: "
                        "merge them before forbidding duplicates",
                        [],
                    )
                seen.add((kind, value))
        self.rows(CONTACT_SETTINGS)[location_id] = policy
        self.rows(CONTACT_KEYS).update(keys)

    async def touch_activity(self, contact_id: uuid.UUID, at: datetime) -> bool:
        found = self.rows(CONTACTS).get(contact_id)
        if found is None or not self.sees_location(found.location_id) or not live(found):
            return False
        if found.last_activity_at is None or found.last_activity_at < at:
            found.last_activity_at = at
        return True

    async def move_references(self, from_id: uuid.UUID, to_id: uuid.UUID) -> None:
        for table in CONTACT_REFERENCES:
            for row in self.rows(table).values():
                if row.contact_id == from_id and self.sees_location(row.location_id):
                    row.contact_id = to_id

    async def erase_history(self, contact_id: uuid.UUID) -> int:
        location_id = self.scope.location_id
        if location_id is None:
            raise PermissionError("no location in scope")
        entities = {contact_id}
        for table in CONTACT_OWNED:
            entities |= {
                r.id
                for r in self.rows(table).values()
                if r.contact_id == contact_id and r.location_id == location_id
            }
        erased = {"erased": True}
        audit = self.rows(AUDIT)
        scrubbed = 0
        for key, entry in audit.items():
            if entry.location_id == location_id and entry.entity_id in entities:
                # As the SQL function does in effect: the trail stores a missing before/after as JSON
                # null, which its `before IS NULL` test does not see, so both are always rewritten.
                audit[key] = replace(entry, before=dict(erased), after=dict(erased))
                scrubbed += 1
        events = self.rows(EVENTS)
        for key, event in events.items():
            if event.location_id == location_id and event.entity_id in entities:
                events[key] = replace(event, payload={"erased": True, "contact_id": str(contact_id)})
        for eraser in CONTACT_ERASERS:
            eraser(self, location_id, contact_id)
        return scrubbed
