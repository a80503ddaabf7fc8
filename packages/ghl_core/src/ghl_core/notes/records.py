"""What notes and tasks share: both are records kept on a live contact, stored by an id the client may
choose (so a replayed create answers the record it made), recorded with their location's agency.

Tasks sit above notes in the layers, so the shared part lives here and tasks import it.
"""

from __future__ import annotations

import uuid
from typing import Protocol, TypeVar

from ghl_core.contacts.models import Contact
from ghl_core.contacts.ports import ContactRepository
from ghl_core.shared.errors import Conflict, NotFound
from ghl_core.shared.recording import Recording
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.ports import LocationRepository


class ContactRecordsUnitOfWork(Recording, Protocol):
    """What any record kept on a contact needs: the contact, its location, the audit trail."""

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def contacts(self) -> ContactRepository: ...


class _Located(Protocol):
    @property
    def location_id(self) -> uuid.UUID: ...


R = TypeVar("R", bound=_Located)
R_co = TypeVar("R_co", bound=_Located, covariant=True)


class _ById(Protocol[R_co]):
    async def get(self, record_id: uuid.UUID, /) -> R_co | None: ...


async def live_contact(uow: ContactRecordsUnitOfWork, contact_id: uuid.UUID) -> Contact:
    """The contact, if it is live: a deleted or erased contact's notes and tasks are out of reach."""
    contact = await uow.contacts.get(contact_id)
    if contact is None or contact.deleted_at is not None or contact.erased_at is not None:
        raise NotFound(f"contact {contact_id} not found")
    return contact


async def agency_of(uow: ContactRecordsUnitOfWork, location_id: uuid.UUID) -> uuid.UUID:
    return (await live_location(uow, location_id)).agency_id


async def existing(records: _ById[R], location_id: uuid.UUID, record_id: uuid.UUID, kind: str) -> R | None:
    """The record with this id, if the location has it; an id taken in another location is a Conflict."""
    record = await records.get(record_id)
    if record is not None and record.location_id != location_id:
        raise Conflict(f"{kind} {record_id} already exists")
    return record


async def raced(records: _ById[R], location_id: uuid.UUID, record_id: uuid.UUID, kind: str) -> R:
    """The record an insert that did nothing collided with; another location's (invisible) is a
    Conflict."""
    record = await existing(records, location_id, record_id, kind)
    if record is None:
        raise Conflict(f"{kind} {record_id} already exists")
    return record
