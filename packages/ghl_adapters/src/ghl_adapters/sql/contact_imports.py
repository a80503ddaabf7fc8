"""SQL side of contact import and export: the contact_imports table, batch writes of contacts (with their
audit rows and events) and keyset reads for export. Every statement runs in the caller's RLS-scoped
transaction."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.contacts.import_models import (
    ContactImport,
    DuplicateMode,
    ImportCounters,
    ImportOptions,
    ImportStatus,
    RowError,
)
from ghl_core.contacts.models import Contact, DuplicatePolicy
from ghl_core.contacts.ports import DuplicateContact
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.events import DomainEvent

from . import tables as t
from .contacts import _COLUMNS, _from_row, _values

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
)

_UPDATE_CONTACT = (
    update(t.contacts)
    .where(t.contacts.c.id == bindparam("_id"))
    .values({name: bindparam(name) for name in (*_COLUMNS, "email_key", "phone_key")})
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
    )


class SqlContactImportRepository:
    def __init__(self, conn: AsyncConnection, request_id: str | None = None) -> None:
        self._c = conn
        self._request_id = request_id

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

    async def matches(self, emails: Sequence[str], phones: Sequence[str]) -> builtins.list[Contact]:
        c = t.contacts.c
        conditions = []
        if emails:
            conditions.append(c.email.in_(list(emails)))
        if phones:
            conditions.append(c.phone.in_(list(phones)))
        if not conditions:
            return []
        q = select(t.contacts).where(or_(*conditions), c.deleted_at.is_(None)).order_by(c.created_at, c.id)
        return [_from_row(r) for r in (await self._c.execute(q)).all()]

    async def insert_contacts(
        self, contacts: Sequence[Contact], policy: DuplicatePolicy
    ) -> builtins.set[uuid.UUID]:
        rows = [{"id": x.id, "location_id": x.location_id, **_values(x, policy)} for x in contacts]
        # No conflict target: any unique index (the e-mail and phone keys) makes the row a no-op.
        statement = pg_insert(t.contacts).on_conflict_do_nothing().returning(t.contacts.c.id)
        result = await self._c.execute(statement, rows)
        return set(result.scalars().all())

    async def update_contacts(self, contacts: Sequence[Contact], policy: DuplicatePolicy) -> None:
        rows = [{"_id": x.id, **_values(x, policy)} for x in contacts]
        try:
            await self._c.execute(_UPDATE_CONTACT, rows)
        except IntegrityError as exc:
            if "contacts_email_key" in str(exc.orig) or "contacts_phone_key" in str(exc.orig):
                raise DuplicateContact(
                    "a concurrent change took an e-mail address or phone number", []
                ) from None
            raise

    async def record(self, audit: Sequence[AuditEntry], events: Sequence[DomainEvent]) -> None:
        if audit:
            await self._c.execute(
                insert(t.audit_log),
                [
                    {
                        "id": e.id,
                        "agency_id": e.agency_id,
                        "location_id": e.location_id,
                        "actor_type": e.actor_type,
                        "actor_id": e.actor_id,
                        "action": e.action,
                        "entity_type": e.entity_type,
                        "entity_id": e.entity_id,
                        "before": e.before,
                        "after": e.after,
                        "request_id": e.request_id or self._request_id,
                        "created_at": e.created_at,
                    }
                    for e in audit
                ],
            )
        if events:
            await self._c.execute(
                insert(t.domain_events),
                [
                    {
                        "id": e.id,
                        "agency_id": e.agency_id,
                        "location_id": e.location_id,
                        "type": e.type,
                        "entity_id": e.entity_id,
                        "payload": e.payload,
                        "occurred_at": e.occurred_at,
                    }
                    for e in events
                ],
            )

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
