"""Repositories of the contacts context, and the narrow units of work of its services.

Contacts sit below tags and conversations, yet a contact's change touches them: a new tag joins the
location's tag list, a merge moves the loser's conversations, an erasure wipes its messages. Contacts
declare here, by what they call, the little they need of those repositories (`TagList`, `ContactThreads`,
`ContactMessages`); the tags and conversations repositories satisfy them, and so does the unit of work
that holds those.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import date, datetime
from typing import Protocol

from ghl_core.contacts.import_models import ContactImportRepository
from ghl_core.contacts.models import Contact, DuplicatePolicy
from ghl_core.custom_fields.ports import DefinitionsUnitOfWork
from ghl_core.jobs.ports import JobQueue
from ghl_core.shared.errors import Conflict
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import Recording
from ghl_core.tenancy.ports import AssigneesUnitOfWork, LocationRepository


class DuplicateContact(Conflict):
    """The database refused a second live contact with the same e-mail or phone in a location."""

    code = "duplicate_contact"
    title = "Duplicate contact"

    def __init__(self, detail: str, existing_ids: builtins.list[uuid.UUID]) -> None:
        super().__init__(detail)
        self.existing_ids = existing_ids

    def extensions(self) -> dict[str, object]:
        return {"existing_ids": [str(i) for i in self.existing_ids]}


class ContactRepository(Protocol):
    async def ids_with_birthday(
        self, location_id: uuid.UUID, month: int, day: int
    ) -> builtins.list[uuid.UUID]:
        """Live (not deleted, not erased) contacts of the location born on that month and day."""
        ...

    async def ids_with_custom_date(
        self, location_id: uuid.UUID, key: str, day: date
    ) -> builtins.list[uuid.UUID]:
        """Live contacts whose custom field `key` holds that date (stored as ISO text)."""
        ...

    async def add(self, contact: Contact, policy: DuplicatePolicy) -> None:
        """Raises DuplicateContact when the policy forbids duplicates and one exists (enforced by a
        unique index, so racing inserts cannot both succeed)."""
        ...

    async def update(self, contact: Contact, policy: DuplicatePolicy) -> None:
        """Same duplicate rule as add."""
        ...

    async def get(self, contact_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        """Soft-deleted contacts too; callers decide. `for_update` locks the row until the transaction
        ends, so a read-modify-write cannot undo a concurrent change."""
        ...

    async def get_many(self, contact_ids: builtins.list[uuid.UUID]) -> dict[uuid.UUID, Contact]:
        """The contacts of these ids that exist (deleted and erased ones included), by id."""
        ...

    async def find_matches(self, email: str | None, phone: str | None) -> builtins.list[Contact]:
        """Live contacts of the scope's location with this e-mail or this phone, oldest first."""
        ...

    async def list(self, page: PageRequest, include_deleted: bool = False) -> Page[Contact]:
        """Newest first."""
        ...

    async def policy(self, location_id: uuid.UUID) -> DuplicatePolicy:
        """The location's duplicate setting (the default when never set)."""
        ...

    async def set_policy(self, location_id: uuid.UUID, policy: DuplicatePolicy) -> None: ...

    async def touch_activity(self, contact_id: uuid.UUID, at: datetime) -> bool:
        """Moves the live contact's last_activity_at forward to `at` (never back), locking its row until
        the transaction ends; False when no live contact has this id."""
        ...

    async def move_references(self, from_id: uuid.UUID, to_id: uuid.UUID) -> None:
        """Points everything that belongs to one contact (notes, tasks, opportunities, ...) at another."""
        ...

    async def erase_history(self, contact_id: uuid.UUID) -> int:
        """Replaces the contact's personal data in the audit trail and the event outbox; returns the
        audit rows scrubbed."""
        ...


class TagList(Protocol):
    """The location's tag list, as far as contacts add to it."""

    async def ensure(self, location_id: uuid.UUID, names: builtins.list[str]) -> None:
        """Adds to the location's tag list the names it does not have yet."""
        ...


class ContactThreads(Protocol):
    """A contact's conversations, as far as a merge moves them."""

    async def move_contact(self, from_contact: uuid.UUID, to_contact: uuid.UUID) -> int:
        """The loser's conversations and messages join the survivor's."""
        ...


class ContactMessages(Protocol):
    """A contact's messages, as far as an erasure wipes them."""

    async def erase_contact(self, contact_id: uuid.UUID) -> int:
        """Every message's content and addresses removed for good (the rows stay)."""
        ...


class ContactsUnitOfWork(DefinitionsUnitOfWork, AssigneesUnitOfWork, Recording, Protocol):
    """What the contact service touches in one transaction."""

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def contacts(self) -> ContactRepository: ...

    @property
    def tags(self) -> TagList: ...

    @property
    def conversations(self) -> ContactThreads: ...

    @property
    def messages(self) -> ContactMessages: ...


class ContactImportsUnitOfWork(DefinitionsUnitOfWork, Recording, Protocol):
    """What an import touches in one transaction."""

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def contacts(self) -> ContactRepository: ...

    @property
    def contact_imports(self) -> ContactImportRepository: ...

    @property
    def tags(self) -> TagList: ...

    @property
    def jobs(self) -> JobQueue: ...
