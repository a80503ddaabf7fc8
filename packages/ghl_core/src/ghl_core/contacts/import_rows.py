"""An import's rows made ready for their batch, while the batch before is written: each row validated as
the API validates a contact (or rejected with its reason, naming the file's column), and each valid row's
new contact built with its audit entry and `contact.created` event in the storage's write form, so the
batch writer only decides and sends (ghl_core.contacts.imports)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ghl_core.contacts.csv_rows import CsvRow
from ghl_core.contacts.fields import Memo, clean_contact_fields
from ghl_core.contacts.import_identities import Identities
from ghl_core.contacts.import_mapping import row_input, row_reason
from ghl_core.contacts.import_models import ContactImport, NewContactEncoder, NewContactRows, RowError
from ghl_core.contacts.models import Contact, DuplicatePolicy
from ghl_core.contacts.services import ContactService
from ghl_core.custom_fields.models import CustomFieldDefinition
from ghl_core.custom_fields.values import validate_values
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.ids import new_id
from ghl_core.tenancy.models import Location

# Parsed e-mail addresses and phone numbers an import remembers (a file often repeats them); past this many
# it starts over, so memory stays flat however long the file.
MEMO_CAP = 20_000
# Rows validated between two looks at the batch being written (about a third of a millisecond): measured
# at 50,000 rows, 5 rows a slice gave 3,645 rows/s, 50 rows 2,969 (the writer waits on a slice longer).
PREPARE_SLICE = 5

# A valid row: its line, its cleaned fields, the contact it becomes if it is created, that contact's
# rows in the storage's write form (all made while the batch before it is written, so the writer only
# decides and sends), and its identity group of two rows or more (-1 when none).
Prepared = tuple[int, dict[str, Any], Contact, NewContactRows, int]


@dataclass
class ImportContext:
    """What a run of an import knows between its rows and batches."""

    location: Location
    policy: DuplicatePolicy
    definitions: list[CustomFieldDefinition]
    columns: dict[str, str]  # target -> header, to name the column in a reason
    memo: Memo = field(default_factory=dict)  # e-mail and phone parsing outcomes, for this import only
    statistics_at: int = 0  # created contacts at which to refresh the statistics next
    actor_id: uuid.UUID | None = None  # who creates the contacts
    actor_type: str = "user"
    identities: Identities | None = None  # the file's groups of rows that are one person
    own: set[uuid.UUID] = field(default_factory=set)  # a resumed run's contacts of open_groups
    group_contacts: dict[int, uuid.UUID] = field(default_factory=dict)  # group -> the contact it made


class RowPreparer:
    def __init__(self, *, clock: Clock, encode: NewContactEncoder) -> None:
        self._clock = clock
        self._encode = encode

    def prepare(
        self, job: ContactImport, ctx: ImportContext, chunk: Sequence[CsvRow]
    ) -> tuple[list[Prepared], list[RowError]]:
        prepared: list[Prepared] = []
        errors: list[RowError] = []
        if len(ctx.memo) > MEMO_CAP:
            ctx.memo.clear()
        identities = ctx.identities
        for row in chunk:
            fields = self.validate(job, ctx, row)
            if isinstance(fields, str):
                errors.append(RowError(row.line, fields))
                continue
            group = identities.group(fields.get("email"), fields.get("phone")) if identities else -1
            now = self._clock.now()
            draft = Contact(
                id=new_id(),
                location_id=ctx.location.id,
                created_at=now,
                updated_at=now,
                created_by=ctx.actor_id,
                updated_by=ctx.actor_id,
            )
            contact = ContactService._apply(draft, fields)
            prepared.append((row.line, fields, contact, self.new_rows(ctx, contact), group))
        return prepared, errors

    def validate(self, job: ContactImport, ctx: ImportContext, row: CsvRow) -> dict[str, Any] | str:
        """The row's cleaned fields, or why it is rejected."""
        if row.problem:
            return row.problem
        data, problems = row_input(row.values, job.options.mapping, job.options.tags)
        try:
            if problems:
                raise ValidationFailed(problems)
            fields = clean_contact_fields(data, ctx.location.country, memo=ctx.memo)
            if "custom_fields" in fields:
                fields["custom_fields"] = validate_values(ctx.definitions, fields["custom_fields"])
            if not any(fields.get(k) for k in ("email", "phone", "first_name", "last_name")):
                raise ValidationFailed.one("/", "needs a name, an e-mail address or a phone number")
        except ValidationFailed as exc:
            return row_reason(exc, ctx.columns)
        return fields

    def new_rows(self, ctx: ImportContext, contact: Contact) -> NewContactRows:
        """The rows creating `contact` writes: the contact, its audit entry and its event."""
        after = contact.snapshot()
        agency_id, location_id = ctx.location.agency_id, ctx.location.id
        audit = AuditEntry(
            agency_id=agency_id,
            location_id=location_id,
            actor_type=ctx.actor_type,
            actor_id=ctx.actor_id,
            action="create",
            entity_type="contact",
            entity_id=contact.id,
            before=None,
            after=after,
            created_at=contact.created_at,
        )
        event = DomainEvent(
            "contact.created",
            agency_id,
            location_id,
            contact.id,
            {"before": None, "after": after},
            contact.created_at,
        )
        return self._encode(contact, ctx.policy, audit, event)

    async def prepare_sliced(
        self, job: ContactImport, ctx: ImportContext, chunk: Sequence[CsvRow]
    ) -> tuple[list[Prepared], list[RowError]]:
        """`prepare` in slices, yielding to the event loop between them (the batch being written)."""
        prepared: list[Prepared] = []
        errors: list[RowError] = []
        for start in range(0, len(chunk), PREPARE_SLICE):
            if start:
                await asyncio.sleep(0)
            done, failed = self.prepare(job, ctx, chunk[start : start + PREPARE_SLICE])
            prepared += done
            errors += failed
        return prepared, errors


def groups_written(ctx: ImportContext, prepared: list[Prepared]) -> None:
    """Forgets the contact a group made once its last row is written (memory stays bounded)."""
    if ctx.identities is None:
        return
    for *_, group in prepared:
        if group >= 0 and ctx.identities.written(group):
            ctx.group_contacts.pop(group, None)
