"""Exporting a location's contacts as CSV, in keyset batches of short transactions (constant memory).

The columns are the import's own targets, so an export imports back into another location unchanged."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from ghl_core.contacts.fields import normalize_tag
from ghl_core.contacts.import_mapping import CUSTOM_PREFIX, DND_PREFIX, export_value
from ghl_core.contacts.models import ATTRIBUTION_KEYS, Contact, DndChannel
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission

EXPORT_BATCH = 1000
BASE_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "address1",
    "city",
    "state",
    "postal_code",
    "country",
    "website",
    "timezone",
    "date_of_birth",
    "gender",
    "source",
    "tags",
    "dnd",
    *(f"{DND_PREFIX}{c.value}" for c in DndChannel),
    *ATTRIBUTION_KEYS,  # the latest touch
    "created_at",
    "updated_at",
)


def contact_row(contact: Contact, custom_keys: list[str]) -> list[str]:
    values: list[str] = []
    last_touch = contact.attribution.get("last", {})
    for column in BASE_COLUMNS:
        if column.startswith(DND_PREFIX):
            # Blank when never set, so a round trip does not invent a setting.
            value: object = contact.dnd_channels.get(column[len(DND_PREFIX) :])
        elif column in ATTRIBUTION_KEYS:
            value = last_touch.get(column)
        else:
            value = getattr(contact, column)
        values.append(export_value(value))
    values.extend(export_value(contact.custom_fields.get(key)) for key in custom_keys)
    return values


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


class ContactExportService:
    def __init__(self, uow: UnitOfWorkFactory, batch_size: int = EXPORT_BATCH) -> None:
        self._uow = uow
        self._batch = batch_size

    async def export(self, actor: Actor, tag: str | None = None) -> AsyncIterator[str]:
        """Checks the caller now, then yields CSV text: the header, then one chunk per batch."""
        location_id = actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            definitions = await uow.custom_fields.definitions(location_id)
        custom_keys = [d.key for d in definitions]
        header = [*BASE_COLUMNS, *(f"{CUSTOM_PREFIX}{k}" for k in custom_keys)]
        wanted = normalize_tag(tag) if tag else None
        return self._chunks(actor, header, custom_keys, wanted)

    async def _chunks(
        self, actor: Actor, header: list[str], custom_keys: list[str], tag: str | None
    ) -> AsyncIterator[str]:
        yield _csv_text([header])
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            # One short transaction per batch: a long export holds no snapshot or connection open.
            async with self._uow(actor.scope) as uow:
                batch = await uow.contact_imports.export_batch(after, self._batch, tag)
            if not batch:
                return
            yield _csv_text([contact_row(c, custom_keys) for c in batch])
            if len(batch) < self._batch:
                return
            after = (batch[-1].created_at, batch[-1].id)
