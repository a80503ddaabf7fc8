"""A contact import: its options, its progress and its error report; and the port that stores it and
writes contacts in batches."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from ghl_core.contacts.models import Contact, DuplicatePolicy
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.events import DomainEvent

# The stored report keeps this many rejected rows; the counters keep counting past it.
ERROR_CAP = 10_000


class DuplicateMode(StrEnum):
    """What a row that matches an existing contact (by e-mail or phone) does."""

    SKIP = "skip"  # leave the existing contact alone
    UPDATE = "update"  # fill it with the row's non-blank values
    CREATE = "create"  # add another contact (only where the location allows duplicates)


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str


@dataclass(slots=True)
class ImportCounters:
    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "processed": self.processed,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "failed": self.failed,
        }


@dataclass(frozen=True, slots=True)
class ImportOptions:
    mapping: dict[str, str] = field(default_factory=dict)  # header -> target; resolved at start
    tags: tuple[str, ...] = ()
    duplicates: DuplicateMode = DuplicateMode.UPDATE
    filename: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "duplicate_policy": self.duplicates.value, "filename": self.filename}


@dataclass(slots=True)
class ContactImport:
    id: uuid.UUID
    location_id: uuid.UUID
    status: ImportStatus
    options: ImportOptions
    created_at: datetime
    counters: ImportCounters = field(default_factory=ImportCounters)
    errors: list[RowError] = field(default_factory=list)  # the first ones, up to the count asked for
    failure: str | None = None  # why the whole import stopped, when it did
    runner: str | None = None  # the process running it
    heartbeat_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_by: uuid.UUID | None = None
    # A durable import (one run as a job) reads its file from storage by this name; None for one run
    # by its caller (the CLI). `counters.processed` is where a resumed run starts again: the rows of
    # the batches committed so far, counted in the batch's own transaction.
    source: str | None = None
    # The contacts identity groups made in the batches committed so far and whose later rows may still
    # come (ghl_core.contacts.imports): saved with each batch so a resumed run merges into them.
    open_groups: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True, slots=True)
class NewContactRows:
    """A contact an import creates, with its audit entry and `contact.created` event, in the storage's
    write form. Made by a `NewContactEncoder` while the batch before it is written, so writing a batch of
    new contacts is the storage's work only."""

    event: DomainEvent  # handed on to the event consumers once written
    contact: str
    audit: str
    event_row: str


class NewContactEncoder(Protocol):
    def __call__(
        self, contact: Contact, policy: DuplicatePolicy, audit: AuditEntry, event: DomainEvent
    ) -> NewContactRows:
        """The write form of a new contact, its audit entry and its event (no I/O)."""
        ...


class ContactImportRepository(Protocol):
    async def add(self, job: ContactImport) -> None: ...

    async def get(self, import_id: uuid.UUID, errors: int = 20) -> ContactImport | None:
        """With its first `errors` rejected rows."""
        ...

    async def errors(self, import_id: uuid.UUID) -> builtins.list[RowError]:
        """The whole stored report (up to ERROR_CAP rows), in line order."""
        ...

    async def save(self, job: ContactImport, new_errors: Sequence[RowError] = ()) -> None:
        """Status, counters and times; appends `new_errors` to the stored report."""
        ...

    async def fail_abandoned(self, runner: str, stale_before: datetime, now: datetime) -> int:
        """Marks failed the queued or running imports of other runners not heard of since
        `stale_before` (their process stopped): they can be run again, re-runs being idempotent."""
        ...

    async def lock_location(self, location_id: uuid.UUID) -> None:
        """Serialises batch writes of one location until the transaction ends."""
        ...

    async def matches(
        self, emails: Sequence[str], phones: Sequence[str], ids: Sequence[uuid.UUID] = ()
    ) -> builtins.list[Contact]:
        """Live contacts of the scope's location holding any of these e-mails or phones, or having one
        of these ids, oldest first."""
        ...

    async def refresh_statistics(self) -> None:
        """Brings the storage's query-planning statistics for contacts up to date (the import calls it as
        its location grows, so look-ups keep using their indexes); a no-op where there are none."""
        ...

    async def create_contacts(self, rows: Sequence[NewContactRows]) -> builtins.set[uuid.UUID]:
        """Inserts the contacts it can and returns the ids inserted; a row the unique e-mail/phone indexes
        refuse (a concurrent writer got there first) is left out, not raised. When every contact went in,
        their audit entries and events are written too (otherwise the caller rolls back and retries)."""
        ...

    async def update_contacts(self, contacts: Sequence[Contact], policy: DuplicatePolicy) -> None:
        """Raises DuplicateContact if a concurrent writer took one of the identifiers."""
        ...

    async def record(self, audit: Sequence[AuditEntry], events: Sequence[DomainEvent]) -> None: ...

    async def export_batch(
        self, after: tuple[datetime, uuid.UUID] | None, limit: int, tag: str | None
    ) -> builtins.list[Contact]:
        """Live contacts of the scope's location, oldest first, after a (created_at, id) key."""
        ...
