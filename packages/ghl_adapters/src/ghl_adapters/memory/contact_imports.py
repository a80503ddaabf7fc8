"""Contact imports in memory: the import records with their error reports, and the batch writes.

A new contact travels from the import's encoder to `create_contacts` as `NewContactRows`, whose fields
are the storage's write form (text). Here that form is a token: `MemoryNewContactEncoder` keeps the
objects themselves on the store under it until `create_contacts` takes them (same process, no
serialisation)."""

from __future__ import annotations

import builtins
import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ghl_core.contacts.import_models import ContactImport, ImportStatus, NewContactRows, RowError
from ghl_core.contacts.models import Contact, DuplicatePolicy
from ghl_core.contacts.ports import DuplicateContact
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.events import DomainEvent

from .contacts import CONTACTS, MemoryContactRepository, live
from .recording import AUDIT, EVENTS
from .store import MemoryRepository, MemoryStore, Table


@dataclass(slots=True)
class ImportRow:
    job: ContactImport
    errors: list[RowError] = field(default_factory=list)  # the whole stored report


IMPORTS: Table[uuid.UUID, ImportRow] = Table("contact_imports")

INTERRUPTED = (
    "interrupted: the process running it stopped; run the same file again "
    "(re-runs change nothing that was already imported)"
)


_Staged = tuple[Contact, DuplicatePolicy, AuditEntry, DomainEvent]


class MemoryNewContactEncoder:
    """The `NewContactEncoder` of the in-memory storage (one per store)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def __call__(
        self, contact: Contact, policy: DuplicatePolicy, audit: AuditEntry, event: DomainEvent
    ) -> NewContactRows:
        token = str(uuid.uuid4())
        staged(self._store)[token] = (copy.deepcopy(contact), policy, audit, event)
        return NewContactRows(event=event, contact=token, audit=token, event_row=token)


def staged(store: MemoryStore) -> dict[str, _Staged]:
    found: dict[str, _Staged] = store.scratch.setdefault("new_contacts", {})
    return found


class MemoryContactImportRepository(MemoryRepository):
    def _visible(self, import_id: uuid.UUID) -> ImportRow | None:
        found = self.rows(IMPORTS).get(import_id)
        return found if found is not None and self.sees_location(found.job.location_id) else None

    async def add(self, job: ContactImport) -> None:
        self.check_write(self.sees_location(job.location_id), "contact_imports")
        stored = copy.deepcopy(job)
        stored.errors = []
        self.rows(IMPORTS)[job.id] = ImportRow(stored)

    async def get(self, import_id: uuid.UUID, errors: int = 20) -> ContactImport | None:
        found = self._visible(import_id)
        if found is None:
            return None
        job = copy.deepcopy(found.job)
        job.errors = list(found.errors[: max(0, errors)])
        return job

    async def errors(self, import_id: uuid.UUID) -> builtins.list[RowError]:
        found = self._visible(import_id)
        return list(found.errors) if found is not None else []

    async def save(self, job: ContactImport, new_errors: Sequence[RowError] = ()) -> None:
        found = self._visible(job.id)
        if found is None:
            return
        stored = found.job
        stored.status, stored.failure, stored.runner = job.status, job.failure, job.runner
        stored.heartbeat_at, stored.started_at = job.heartbeat_at, job.started_at
        stored.finished_at, stored.open_groups = job.finished_at, tuple(job.open_groups)
        stored.counters = copy.deepcopy(job.counters)
        found.errors.extend(new_errors)

    async def fail_abandoned(self, runner: str, stale_before: datetime, now: datetime) -> int:
        failed = 0
        for row in self.rows(IMPORTS).values():
            job = row.job
            if not self.sees_location(job.location_id):
                continue
            if (
                job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)
                and job.source is None  # a durable import is its job's: a worker resumes it
                and (job.runner is None or job.runner != runner)
                and (job.heartbeat_at is None or job.heartbeat_at < stale_before)
            ):
                job.status, job.failure, job.finished_at = ImportStatus.FAILED, INTERRUPTED, now
                failed += 1
        return failed

    async def lock_location(self, location_id: uuid.UUID) -> None:
        """One event loop and no other writer: nothing to wait for."""

    async def matches(
        self, emails: Sequence[str], phones: Sequence[str], ids: Sequence[uuid.UUID] = ()
    ) -> builtins.list[Contact]:
        wanted_emails, wanted_phones, wanted_ids = set(emails), set(phones), set(ids)
        location_id = self.scope.location_id
        found = [
            c
            for c in self.rows(CONTACTS).values()
            if self.sees_location(c.location_id)
            and (location_id is None or c.location_id == location_id)
            and c.deleted_at is None
            and (c.email in wanted_emails or c.phone in wanted_phones or c.id in wanted_ids)
        ]
        return [copy.deepcopy(c) for c in sorted(found, key=lambda c: (c.created_at, c.id))]

    async def refresh_statistics(self) -> None:
        """No query planner here."""

    async def create_contacts(self, rows: Sequence[NewContactRows]) -> builtins.set[uuid.UUID]:
        contacts = MemoryContactRepository(self._uow)
        pending = staged(self._uow.store)
        taken = [pending.pop(row.contact) for row in rows]
        created: set[uuid.UUID] = set()
        for contact, policy, _, _ in taken:
            try:
                await contacts.add(contact, policy)
            except DuplicateContact:
                continue  # the unique indexes refused it: left out, not raised
            created.add(contact.id)
        if len(created) == len(rows):
            await self.record([t[2] for t in taken], [t[3] for t in taken])
        return created

    async def update_contacts(self, contacts: Sequence[Contact], policy: DuplicatePolicy) -> None:
        repository = MemoryContactRepository(self._uow)
        for contact in contacts:
            await repository.update(contact, policy)

    async def record(self, audit: Sequence[AuditEntry], events: Sequence[DomainEvent]) -> None:
        audit_rows, event_rows = self.rows(AUDIT), self.rows(EVENTS)
        for entry in audit:
            self.check_write(self.sees_either(entry.agency_id, entry.location_id), "audit_log")
            audit_rows[entry.id] = entry
        for event in events:
            self.check_write(self.sees_either(event.agency_id, event.location_id), "domain_events")
            event_rows[event.id] = event

    async def export_batch(
        self, after: tuple[datetime, uuid.UUID] | None, limit: int, tag: str | None
    ) -> builtins.list[Contact]:
        found = sorted(
            (
                c
                for c in self.rows(CONTACTS).values()
                if self.sees_location(c.location_id)
                and live(c)
                and (tag is None or tag in c.tags)
                and (after is None or (c.created_at, c.id) > after)
            ),
            key=lambda c: (c.created_at, c.id),
        )
        return [copy.deepcopy(c) for c in found[:limit]]
