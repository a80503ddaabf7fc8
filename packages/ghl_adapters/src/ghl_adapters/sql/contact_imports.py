"""SQL side of contact import and export: the contact_imports table, batch writes of contacts (with their
audit rows and events) and keyset reads for export. Every statement runs in the caller's RLS-scoped
transaction."""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    TextClause,
    any_,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ghl_core.contacts.import_models import (
    ContactImport,
    DuplicateMode,
    ImportCounters,
    ImportOptions,
    ImportStatus,
    NewContactRows,
    RowError,
)
from ghl_core.contacts.models import Contact, DuplicatePolicy
from ghl_core.contacts.ports import DuplicateContact
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.events import DomainEvent

from . import tables as t
from .audit import SqlEventOutbox
from .contacts import _COLUMNS, _from_row, _values
from .request_context import current_request_id

metadata = MetaData()


def _ts(name: str) -> Column[Any]:
    return Column(name, DateTime(timezone=True))


contact_imports = Table(
    "contact_imports",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("location_id", UUID(as_uuid=True)),
    Column("status", Text),
    Column("mapping", JSONB),
    Column("options", JSONB),
    *(Column(name, Integer) for name in ("processed", "created", "updated", "skipped", "failed")),
    Column("errors", JSONB),
    Column("failure", Text),
    Column("runner", Text),
    _ts("heartbeat_at"),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("started_at"),
    _ts("finished_at"),
    Column("created_by", UUID(as_uuid=True)),
    Column("updated_by", UUID(as_uuid=True)),
    Column("source", Text),
    Column("open_groups", JSONB),
)

# Batch writes are set-based: one statement per table and batch, its rows bound as one JSON document and
# read back by json_to_recordset, so a batch of any size is one parameter. The document is built by
# json.dumps (C) from values already in their JSON form: psycopg's text-array dumper, used before, escaped
# every element of every text column with a regex in Python, a large share of the writer's CPU. COPY is not
# open to the application role on tables with row-level security. Column kinds: the SQL type each column is
# read as (text when not named).
_KINDS: dict[str, str] = {
    "id": "uuid",
    "location_id": "uuid",
    "agency_id": "uuid",
    "actor_id": "uuid",
    "entity_id": "uuid",
    "assigned_user_id": "uuid",
    "merged_into": "uuid",
    "created_by": "uuid",
    "updated_by": "uuid",
    "date_of_birth": "date",
    "dnd": "boolean",
    "attribution": "jsonb",
    "dnd_channels": "jsonb",
    "custom_fields": "jsonb",
    "before": "jsonb",
    "after": "jsonb",
    "payload": "jsonb",
    "tags": "text[]",
    "last_activity_at": "timestamptz",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "deleted_at": "timestamptz",
    "erased_at": "timestamptz",
    "occurred_at": "timestamptz",
    "published_at": "timestamptz",
}


def _iso(value: Any) -> str:
    return str(value.isoformat())


_TO_JSON: dict[str, Callable[[Any], Any]] = {
    name: (str if kind == "uuid" else _iso)
    for name, kind in _KINDS.items()
    if kind in ("uuid", "timestamptz", "date")
}


def _read(name: str) -> str:
    """The column's value from the recordset row `v`. A None in a jsonb column is JSON null, as the JSONB
    column type writes it (json_to_recordset reads JSON null as SQL NULL)."""
    if _KINDS.get(name) == "jsonb":
        return f"coalesce(v.{name}, 'null'::jsonb)"
    return f"v.{name}"


def _recordset(columns: Sequence[str]) -> str:
    typed = ", ".join(f"{c} {_KINDS.get(c, 'text')}" for c in columns)
    return f"json_to_recordset(CAST(:rows AS json)) AS v({typed})"


_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def _row_json(row: dict[str, Any]) -> str:
    """One row of `_recordset`'s document: ids, dates and times in their text forms (read back as their
    types), everything else as it is (a value JSON cannot hold is an error)."""
    return _JSON.encode(
        {k: (convert(v) if v is not None and (convert := _TO_JSON.get(k)) else v) for k, v in row.items()}
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _document(rows: Sequence[str]) -> dict[str, Any]:
    """Rows in their JSON form as the one bound parameter of `_recordset`."""
    return {"rows": f"[{','.join(rows)}]"}


def _rows(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return _document([_row_json(row) for row in rows])


def _insert_from_rows(table: str, columns: Sequence[str], tail: str = "") -> TextClause:
    return text(
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - only fixed names are interpolated
        f"SELECT {', '.join(_read(c) for c in columns)} FROM {_recordset(columns)}{tail}"
    )


_CONTACT_WRITE_COLUMNS = (*_COLUMNS, "email_key", "phone_key")
_CONTACT_INSERT_COLUMNS = ("id", "location_id", *_CONTACT_WRITE_COLUMNS)
_CONTACT_UPDATE_COLUMNS = ("id", *_CONTACT_WRITE_COLUMNS)
_AUDIT_COLUMNS = tuple(c.name for c in t.audit_log.columns)
_EVENT_COLUMNS = tuple(c.name for c in t.domain_events.columns)

_INSERT_CONTACTS = _insert_from_rows(
    "contacts", _CONTACT_INSERT_COLUMNS, " ON CONFLICT DO NOTHING RETURNING id"
).columns(column("id", UUID(as_uuid=True)))
_UPDATE_CONTACTS = text(
    "UPDATE contacts SET "  # noqa: S608 - only fixed names are interpolated
    + ", ".join(f"{c} = {_read(c)}" for c in _CONTACT_WRITE_COLUMNS)
    + f" FROM {_recordset(_CONTACT_UPDATE_COLUMNS)} WHERE contacts.id = v.id"
)
_INSERT_AUDIT = _insert_from_rows("audit_log", _AUDIT_COLUMNS)
_INSERT_EVENTS = _insert_from_rows("domain_events", _EVENT_COLUMNS)


def _audit_row(e: AuditEntry, request_id: str | None) -> dict[str, Any]:
    """The audit entry as a row of `_recordset`'s document, written out field by field (this runs once
    per imported row)."""
    return {
        "id": str(e.id),
        "agency_id": str(e.agency_id),
        "location_id": _text(e.location_id),
        "actor_type": e.actor_type,
        "actor_id": _text(e.actor_id),
        "action": e.action,
        "entity_type": e.entity_type,
        "entity_id": str(e.entity_id),
        "before": e.before,
        "after": e.after,
        "request_id": e.request_id or request_id,
        "created_at": e.created_at.isoformat(),
    }


def _event_row(e: DomainEvent) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "agency_id": str(e.agency_id),
        "location_id": _text(e.location_id),
        "type": e.type,
        "entity_id": str(e.entity_id),
        "payload": e.payload,
        "occurred_at": e.occurred_at.isoformat(),
        "published_at": e.occurred_at.isoformat(),  # handed to the job engine at commit
    }


_CONTACT_CONVERSIONS = [(c, _TO_JSON[c]) for c in _CONTACT_INSERT_COLUMNS if c in _TO_JSON]


def encode_new_contact(
    contact: Contact, policy: DuplicatePolicy, audit: AuditEntry, event: DomainEvent
) -> NewContactRows:
    """The `NewContactEncoder` of this storage: the three rows as JSON, for `create_contacts`. Called
    while the import's batch before is written, in the import's context (so with its request id)."""
    row = {"id": contact.id, "location_id": contact.location_id, **_values(contact, policy)}
    for name, convert in _CONTACT_CONVERSIONS:
        if (value := row[name]) is not None:
            row[name] = convert(value)
    return NewContactRows(
        event=event,
        contact=_JSON.encode(row),
        audit=_JSON.encode(_audit_row(audit, current_request_id())),
        event_row=_JSON.encode(_event_row(event)),
    )


def _job(row: Any) -> ContactImport:
    options = row.options or {}
    return ContactImport(
        id=row.id,
        location_id=row.location_id,
        status=ImportStatus(row.status),
        options=ImportOptions(
            mapping=dict(row.mapping or {}),
            tags=tuple(options.get("tags", ())),
            duplicates=DuplicateMode(options.get("duplicate_policy", DuplicateMode.UPDATE.value)),
            filename=options.get("filename"),
        ),
        created_at=row.created_at,
        counters=ImportCounters(row.processed, row.created, row.updated, row.skipped, row.failed),
        errors=[RowError(int(e["line"]), str(e["reason"])) for e in (row.errors or [])],
        failure=row.failure,
        runner=row.runner,
        heartbeat_at=row.heartbeat_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        created_by=row.created_by,
        source=row.source,
        open_groups=tuple(uuid.UUID(i) for i in row.open_groups or ()),
    )


async def pending_sources(owner: AsyncEngine) -> builtins.set[str]:
    """The stored files of every location's durable imports that are still to run or running (read as
    the owner: the upload spool's sweep keeps them)."""
    c = contact_imports.c
    unfinished = [ImportStatus.QUEUED.value, ImportStatus.RUNNING.value]
    async with owner.connect() as conn:
        q = select(c.source).where(c.source.is_not(None), c.status.in_(unfinished))
        return {str(name) for name in (await conn.execute(q)).scalars()}


class SqlContactImportRepository:
    def __init__(
        self, conn: AsyncConnection, request_id: str | None = None, outbox: SqlEventOutbox | None = None
    ) -> None:
        self._c = conn
        self._request_id = request_id
        self._outbox = outbox

    # -- the import records -------------------------------------------------------------------------
    async def add(self, job: ContactImport) -> None:
        await self._c.execute(
            insert(contact_imports).values(
                id=job.id,
                location_id=job.location_id,
                status=job.status.value,
                mapping=job.options.mapping,
                options=job.options.as_dict(),
                errors=[],
                runner=job.runner,
                heartbeat_at=job.heartbeat_at,
                created_at=job.created_at,
                updated_at=job.created_at,
                created_by=job.created_by,
                updated_by=job.created_by,
                source=job.source,
                open_groups=[str(i) for i in job.open_groups],
                **job.counters.as_dict(),
            )
        )

    async def get(self, import_id: uuid.UUID, errors: int = 20) -> ContactImport | None:
        c = contact_imports.c
        first = (
            func.jsonb_path_query_array(c.errors, text(f"'$[0 to {errors - 1}]'::jsonpath"))
            if errors > 0
            else literal_column("'[]'::jsonb")
        )
        columns = [col for col in contact_imports.columns if col.name != "errors"]
        q = select(*columns, first.label("errors")).where(c.id == import_id)
        row = (await self._c.execute(q)).first()
        return _job(row) if row else None

    async def errors(self, import_id: uuid.UUID) -> builtins.list[RowError]:
        c = contact_imports.c
        raw = (await self._c.execute(select(c.errors).where(c.id == import_id))).scalar_one_or_none()
        return [RowError(int(e["line"]), str(e["reason"])) for e in (raw or [])]

    async def save(self, job: ContactImport, new_errors: Sequence[RowError] = ()) -> None:
        c = contact_imports.c
        values: dict[str, Any] = {
            "status": job.status.value,
            "failure": job.failure,
            "runner": job.runner,
            "heartbeat_at": job.heartbeat_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "updated_at": func.now(),
            "open_groups": [str(i) for i in job.open_groups],
            **job.counters.as_dict(),
        }
        if new_errors:
            values["errors"] = c.errors.op("||")(
                cast([{"line": e.line, "reason": e.reason} for e in new_errors], JSONB)
            )
        await self._c.execute(update(contact_imports).where(c.id == job.id).values(**values))

    async def fail_abandoned(self, runner: str, stale_before: datetime, now: datetime) -> int:
        c = contact_imports.c
        result = await self._c.execute(
            update(contact_imports)
            .where(
                c.status.in_([ImportStatus.QUEUED.value, ImportStatus.RUNNING.value]),
                c.source.is_(None),  # a durable import is its job's: a worker resumes it
                or_(c.runner.is_(None), c.runner != runner),
                or_(c.heartbeat_at.is_(None), c.heartbeat_at < stale_before),
            )
            .values(
                status=ImportStatus.FAILED.value,
                failure="interrupted: the process running it stopped; run the same file again "
                "(re-runs change nothing that was already imported)",
                finished_at=now,
                updated_at=now,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    # -- batch writes -------------------------------------------------------------------------------
    async def lock_location(self, location_id: uuid.UUID) -> None:
        await self._c.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"contact_import:{location_id}"},
        )

    async def matches(
        self, emails: Sequence[str], phones: Sequence[str], ids: Sequence[uuid.UUID] = ()
    ) -> builtins.list[Contact]:
        """Live contacts with one of these e-mail addresses or phone numbers, or one of these ids, oldest
        first. One lookup per identifier kind, each an equality its (location, value) index serves, the
        values bound as one array; sorted here, as asking for the order in SQL invites a walk of the
        location's contacts in that order. (Without statistics on the location's new contacts the planner
        walks them instead: the import refreshes the statistics as it grows the location, see
        `refresh_statistics`.)"""
        c = t.contacts.c
        lookups = [
            select(t.contacts).where(col == any_(bindparam(name, list(values), type_=ARRAY(Text))))
            for col, name, values in ((c.email, "emails", emails), (c.phone, "phones", phones))
            if values
        ]
        if ids:
            lookups.append(
                select(t.contacts).where(
                    c.id == any_(bindparam("ids", list(ids), type_=ARRAY(UUID(as_uuid=True))))
                )
            )
        if not lookups:
            return []
        q = union_all(*(lookup.where(c.deleted_at.is_(None)) for lookup in lookups))
        found = {row.id: row for row in (await self._c.execute(q)).all()}
        return [_from_row(r) for r in sorted(found.values(), key=lambda r: (r.created_at, r.id))]

    async def refresh_statistics(self) -> None:
        """ANALYZE contacts through the owner's function (migration 0017)."""
        await self._c.execute(text("SELECT ghl_analyze_contacts()"))

    async def create_contacts(self, rows: Sequence[NewContactRows]) -> builtins.set[uuid.UUID]:
        if not rows:
            return set()
        # One statement per table. No conflict target: any unique index (the e-mail and phone keys)
        # makes the row a no-op.
        result = await self._c.execute(_INSERT_CONTACTS, _document([r.contact for r in rows]))
        created = set(result.scalars().all())
        if len(created) == len(rows):
            await self._c.execute(_INSERT_AUDIT, _document([r.audit for r in rows]))
            await self._c.execute(_INSERT_EVENTS, _document([r.event_row for r in rows]))
            if self._outbox is not None:
                self._outbox.track([r.event for r in rows])
        return created

    async def update_contacts(self, contacts: Sequence[Contact], policy: DuplicatePolicy) -> None:
        if not contacts:
            return
        rows = [{"id": x.id, **_values(x, policy)} for x in contacts]
        try:
            await self._c.execute(_UPDATE_CONTACTS, _rows(rows))
        except IntegrityError as exc:
            if "contacts_email_key" in str(exc.orig) or "contacts_phone_key" in str(exc.orig):
                raise DuplicateContact(
                    "a concurrent change took an e-mail address or phone number", []
                ) from None
            raise

    async def record(self, audit: Sequence[AuditEntry], events: Sequence[DomainEvent]) -> None:
        if audit:
            rows = [_JSON.encode(_audit_row(e, self._request_id)) for e in audit]
            await self._c.execute(_INSERT_AUDIT, _document(rows))
        if events:
            await self._c.execute(_INSERT_EVENTS, _document([_JSON.encode(_event_row(e)) for e in events]))
            if self._outbox is not None:
                self._outbox.track(events)

    # -- export -------------------------------------------------------------------------------------
    async def export_batch(
        self, after: tuple[datetime, uuid.UUID] | None, limit: int, tag: str | None
    ) -> builtins.list[Contact]:
        c = t.contacts.c
        q = select(t.contacts).where(c.deleted_at.is_(None), c.erased_at.is_(None))
        if tag:
            q = q.where(c.tags.contains([tag]))
        if after is not None:
            q = q.where(
                tuple_(c.created_at, c.id) > tuple_(bindparam("a_ts", after[0]), bindparam("a_id", after[1]))
            )
        q = q.order_by(c.created_at, c.id).limit(limit)
        return [_from_row(r) for r in (await self._c.execute(q)).all()]
