"""Exporting a location's contacts as CSV, in keyset batches of short transactions (constant memory).

The columns are the import's own targets, so an export imports back into another location unchanged.
Every contact, or those with a tag, are read straight from the table; a smart list, a query or a filter
select through the search port, page by page with its cursors (see ghl_core.contacts.selection).

Cells a spreadsheet would run as a formula (`=…`, `+…`, `-…`, `@…`) are written with a leading apostrophe
unless the caller asks for the raw values (see ghl_core.shared.csv_cells); the import takes it off again."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

from ghl_core.contacts.fields import normalize_tag
from ghl_core.contacts.import_mapping import CUSTOM_PREFIX, DND_PREFIX, export_value
from ghl_core.contacts.import_models import ContactImportRepository
from ghl_core.contacts.models import ATTRIBUTION_KEYS, Contact, DndChannel
from ghl_core.contacts.search import SearchPage, SearchSpec
from ghl_core.contacts.selection import (
    ContactFinder,
    ContactSelection,
    SelectionUnitOfWork,
    oldest_first,
    tag_filter,
)
from ghl_core.custom_fields.cached import cached_definitions
from ghl_core.shared.cache import ReadCache
from ghl_core.shared.clock import Clock
from ghl_core.shared.csv_cells import neutralize_row
from ghl_core.shared.pagination import decode_cursor
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


class ExportUnitOfWork(SelectionUnitOfWork, Protocol):
    """What an export touches: the selection, and the plain table read of every contact (or one tag)."""

    @property
    def contact_imports(self) -> ContactImportRepository: ...


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


def _csv_text(rows: list[list[str]], neutralize: bool = True) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(
        [neutralize_row(r) for r in rows] if neutralize else rows
    )
    return buffer.getvalue()


class ContactExportService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[ExportUnitOfWork],
        clock: Clock,
        batch_size: int = EXPORT_BATCH,
        cache: ReadCache | None = None,
    ) -> None:
        self._uow = uow
        self._batch = batch_size
        self._cache = cache or ReadCache()
        self.finder = ContactFinder(uow, clock, cache)

    async def export(
        self,
        actor: Actor,
        selection: ContactSelection | None = None,
        *,
        neutralize_formulas: bool = True,
    ) -> AsyncIterator[str]:
        """Checks the caller and the selection now (so a mistake is an error, not a broken stream), then
        yields CSV text: the header, then one chunk per batch. `neutralize_formulas=False` writes cells
        that a spreadsheet would run as formulas as they are."""
        location_id = actor.require_location(Permission.CONTACTS_READ)
        selection = selection or ContactSelection()
        spec: SearchSpec | None = None
        if _one_tag(selection):
            tag_filter(selection.tags)  # the plain read checks nothing: a bad tag broke the stream
        async with self._uow(actor.scope) as uow:
            if not selection.everyone and not _one_tag(selection):
                spec = oldest_first(await self.finder.spec(uow, location_id, selection))
            definitions = await cached_definitions(self._cache, uow, location_id)
        custom_keys = [d.key for d in definitions]
        header = [*BASE_COLUMNS, *(f"{CUSTOM_PREFIX}{k}" for k in custom_keys)]
        if spec is not None:
            return self._searched(actor, location_id, spec, header, custom_keys, neutralize_formulas)
        wanted = normalize_tag(selection.tags[0]) if selection.tags and selection.tags[0] else None
        return self._chunks(actor, header, custom_keys, wanted, neutralize_formulas)

    async def _chunks(
        self, actor: Actor, header: list[str], custom_keys: list[str], tag: str | None, neutralize: bool
    ) -> AsyncIterator[str]:
        yield _csv_text([header], neutralize)
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            # One short transaction per batch: a long export holds no snapshot or connection open.
            async with self._uow(actor.scope) as uow:
                batch = await uow.contact_imports.export_batch(after, self._batch, tag)
            if not batch:
                return
            yield _csv_text([contact_row(c, custom_keys) for c in batch], neutralize)
            if len(batch) < self._batch:
                return
            after = (batch[-1].created_at, batch[-1].id)

    async def _searched(
        self,
        actor: Actor,
        location_id: uuid.UUID,
        spec: SearchSpec,
        header: list[str],
        custom_keys: list[str],
        neutralize: bool,
    ) -> AsyncIterator[str]:
        """The search's keyset pages, one short transaction each, continued by the page's cursor."""
        yield _csv_text([header], neutralize)
        page = SearchPage(limit=self._batch)
        while True:
            async with self._uow(actor.scope) as uow:
                found = await uow.contact_search.search(location_id, spec, page)
            if found.items:
                yield _csv_text([contact_row(c, custom_keys) for c in found.items], neutralize)
            if found.next_cursor is None:
                return
            parts = decode_cursor(found.next_cursor)
            page = SearchPage(limit=self._batch, after=(parts[2], parts[3]))


def _one_tag(selection: ContactSelection) -> bool:
    """Only one tag: the plain table read answers it (the path exports always took)."""
    return (
        len(selection.tags) == 1
        and selection.smart_list_id is None
        and selection.filter is None
        and not (selection.query or "").strip()
    )
