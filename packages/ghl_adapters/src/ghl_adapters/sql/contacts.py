"""SQL repositories of the contacts context: contacts and their location's duplicate rule."""

from __future__ import annotations

import builtins
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Row,
    any_,
    bindparam,
    column,
    extract,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import table as table_clause
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.contacts.models import Contact, DuplicatePolicy, DuplicatePriority
from ghl_core.contacts.ports import DuplicateContact
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows

from . import tables as t
from .repositories import _paginate

_COLUMNS = (
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
    "attribution",
    "assigned_user_id",
    "dnd",
    "dnd_channels",
    "tags",
    "custom_fields",
    "last_activity_at",
    "merged_into",
    "created_at",
    "updated_at",
    "deleted_at",
    "erased_at",
    "created_by",
    "updated_by",
)


# The caller's location's contacts through the view of migration 0006 (see contact_search): EXTRACT and @>
# are not LEAKPROOF, so through row-level security the planner may not make them index conditions and
# each lookup would read every contact of the location. Only ids come from the view.
_scoped = table_clause(
    "contacts_scoped",
    column("id", PG_UUID(as_uuid=True)),
    column("location_id", PG_UUID(as_uuid=True)),
    column("date_of_birth", Date()),
    column("custom_fields", JSONB()),
    column("deleted_at", DateTime(timezone=True)),
    column("erased_at", DateTime(timezone=True)),
)


def _from_row(row: Row[Any]) -> Contact:
    return Contact(id=row.id, location_id=row.location_id, **{c: getattr(row, c) for c in _COLUMNS})


def _values(contact: Contact, policy: DuplicatePolicy) -> dict[str, Any]:
    values = {c: getattr(contact, c) for c in _COLUMNS}
    keyed = not policy.allow_duplicates and contact.deleted_at is None
    values["email_key"] = contact.email if keyed else None
    values["phone_key"] = contact.phone if keyed else None
    return values


class SqlContactRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _write(self, statement: Any, contact: Contact) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(statement)
        except IntegrityError as exc:
            if "contacts_email_key" not in str(exc.orig) and "contacts_phone_key" not in str(exc.orig):
                raise
            existing = [
                c.id for c in await self.find_matches(contact.email, contact.phone) if c.id != contact.id
            ]
            which = "e-mail address" if "contacts_email_key" in str(exc.orig) else "phone number"
            ids = ", ".join(map(str, existing)) or "another contact"
            raise DuplicateContact(f"a contact with this {which} already exists: {ids}", existing) from None

    async def ids_with_birthday(
        self, location_id: uuid.UUID, month: int, day: int
    ) -> builtins.list[uuid.UUID]:
        s = _scoped.c
        # The expressions and the predicate of contacts_birthday_idx (migration 0016), as written there.
        query = select(s.id).where(
            s.location_id == location_id,
            extract("month", s.date_of_birth) == month,
            extract("day", s.date_of_birth) == day,
            s.date_of_birth.is_not(None),
            s.deleted_at.is_(None),
            s.erased_at.is_(None),
        )
        return list((await self._c.execute(query)).scalars())

    async def ids_with_custom_date(
        self, location_id: uuid.UUID, key: str, day: date
    ) -> builtins.list[uuid.UUID]:
        s = _scoped.c
        # Containment is what the custom_fields GIN index (jsonb_path_ops, migration 0006) answers; a
        # value nested in an array does not match it, so it is as exact as comparing `->> key`.
        query = select(s.id).where(
            s.location_id == location_id,
            s.custom_fields.contains({key: day.isoformat()}),
            s.deleted_at.is_(None),
            s.erased_at.is_(None),
        )
        return list((await self._c.execute(query)).scalars())

    async def add(self, contact: Contact, policy: DuplicatePolicy) -> None:
        values = _values(contact, policy)
        await self._write(
            insert(t.contacts).values(id=contact.id, location_id=contact.location_id, **values), contact
        )

    async def update(self, contact: Contact, policy: DuplicatePolicy) -> None:
        values = _values(contact, policy)
        await self._write(update(t.contacts).where(t.contacts.c.id == contact.id).values(**values), contact)

    async def get(self, contact_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        query = select(t.contacts).where(t.contacts.c.id == contact_id)
        row = (await self._c.execute(query.with_for_update() if for_update else query)).first()
        return _from_row(row) if row else None

    async def get_many(self, contact_ids: builtins.list[uuid.UUID]) -> dict[uuid.UUID, Contact]:
        if not contact_ids:
            return {}
        ids = bindparam("ids", contact_ids, type_=ARRAY(PG_UUID(as_uuid=True)))
        query = select(t.contacts).where(t.contacts.c.id == any_(ids))
        return {row.id: _from_row(row) for row in (await self._c.execute(query)).all()}

    async def find_matches(self, email: str | None, phone: str | None) -> builtins.list[Contact]:
        c = t.contacts.c
        conditions = [c.email == email] if email else []
        if phone:
            conditions.append(c.phone == phone)
        if not conditions:
            return []
        q = select(t.contacts).where(or_(*conditions), c.deleted_at.is_(None)).order_by(c.created_at, c.id)
        return [_from_row(r) for r in (await self._c.execute(q)).all()]

    async def list(self, page: PageRequest, include_deleted: bool = False) -> Page[Contact]:
        c = t.contacts.c
        q = select(t.contacts).where(c.erased_at.is_(None))
        if not include_deleted:
            q = q.where(c.deleted_at.is_(None))
        rows = (await self._c.execute(_paginate(q, page, c.created_at, c.id, descending=True))).all()
        return page_from_rows(
            [_from_row(r) for r in rows], page.limit, lambda x: (x.created_at.isoformat(), str(x.id))
        )

    async def policy(self, location_id: uuid.UUID) -> DuplicatePolicy:
        s = t.contact_settings.c
        row = (await self._c.execute(select(t.contact_settings).where(s.location_id == location_id))).first()
        if row is None:
            return DuplicatePolicy()
        return DuplicatePolicy(
            allow_duplicates=row.allow_duplicates, priority=DuplicatePriority(row.duplicate_priority)
        )

    async def set_policy(self, location_id: uuid.UUID, policy: DuplicatePolicy) -> None:
        values = {"allow_duplicates": policy.allow_duplicates, "duplicate_priority": policy.priority.value}
        statement = insert(t.contact_settings).values(location_id=location_id, **values)
        await self._c.execute(statement.on_conflict_do_update(index_elements=["location_id"], set_=values))
        c = t.contacts.c
        keys = (
            {"email_key": None, "phone_key": None}
            if policy.allow_duplicates
            else {"email_key": c.email, "phone_key": c.phone}
        )
        try:
            async with self._c.begin_nested():
                await self._c.execute(
                    update(t.contacts)
                    .where(c.location_id == location_id, c.deleted_at.is_(None))
                    .values(**keys)
                )
        except IntegrityError:
            raise DuplicateContact(
                "this location already has contacts sharing an e-mail address or phone number: merge them "
                "before forbidding duplicates",
                [],
            ) from None

    async def touch_activity(self, contact_id: uuid.UUID, at: datetime) -> bool:
        c = t.contacts.c
        statement = (
            update(t.contacts)
            .where(c.id == contact_id, c.deleted_at.is_(None), c.erased_at.is_(None))
            .values(last_activity_at=func.greatest(func.coalesce(c.last_activity_at, at), at))
            .returning(c.id)
        )
        return (await self._c.execute(statement)).first() is not None

    async def move_references(self, from_id: uuid.UUID, to_id: uuid.UUID) -> None:
        await _move_references(self._c, from_id, to_id)

    async def erase_history(self, contact_id: uuid.UUID) -> int:
        result = await self._c.execute(text("SELECT ghl_erase_contact_history(:c)"), {"c": contact_id})
        return int(result.scalar_one())


# Tables whose rows belong to a contact; merging points them at the survivor. Each later context that
# adds such a table lists it here.
CONTACT_REFERENCES: tuple[str, ...] = ("notes", "tasks", "opportunities")


async def _move_references(conn: AsyncConnection, from_id: uuid.UUID, to_id: uuid.UUID) -> None:
    for table in CONTACT_REFERENCES:
        await conn.execute(
            text(f"UPDATE {table} SET contact_id = :to WHERE contact_id = :from"),  # noqa: S608 - fixed names
            {"to": to_id, "from": from_id},
        )
