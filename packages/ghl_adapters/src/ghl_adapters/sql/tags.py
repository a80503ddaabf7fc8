"""SQL repository of the tag list, and the array updates that tag many contacts in one statement."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.tags.errors import DuplicateTag
from ghl_core.tags.models import Tag, TagChange

from . import tables as t
from .contacts import _from_row as contact_from_row

# Locks the chosen contacts first (so `before_tags` is what the update replaces), then computes the new
# array: rename, append what is missing, drop what is removed, keep the first occurrence of each tag.
_RETAG = """
WITH target AS (
  SELECT id, tags AS before_tags FROM contacts WHERE location_id = :location AND {where} FOR UPDATE
), computed AS (
  SELECT target.id, target.before_tags, ARRAY(
    SELECT u.tag
      FROM unnest(array_cat(array_replace(target.before_tags, CAST(:old AS text), CAST(:new AS text)),
                            CAST(:add AS text[]))) WITH ORDINALITY AS u(tag, ord)
     WHERE NOT (u.tag = ANY(CAST(:remove AS text[])))
     GROUP BY u.tag ORDER BY min(u.ord)
  ) AS after_tags
  FROM target
)
UPDATE contacts c SET tags = computed.after_tags, updated_at = :now, updated_by = :actor
  FROM computed
 WHERE c.id = computed.id AND c.tags IS DISTINCT FROM computed.after_tags
RETURNING c.*, computed.before_tags
"""
_BY_IDS = text(
    _RETAG.format(where="id = ANY(CAST(:ids AS uuid[])) AND deleted_at IS NULL AND erased_at IS NULL")
)
_HAVING = text(_RETAG.format(where="tags @> ARRAY[CAST(:having AS text)]"))


def _tag(r: Row[Any]) -> Tag:
    return Tag(r.id, r.location_id, r.name, r.created_at, r.updated_at, r.created_by, r.updated_by)


class SqlTagRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def ensure(self, location_id: uuid.UUID, names: builtins.list[str]) -> None:
        if names:
            rows = [{"id": new_id(), "location_id": location_id, "name": n} for n in sorted(set(names))]
            await self._c.execute(
                insert(t.tags).values(rows).on_conflict_do_nothing(index_elements=["location_id", "name"])
            )

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Tag]:
        c = t.tags.c
        q = select(t.tags).where(c.location_id == location_id)
        if page.after is not None:
            try:
                name, ident = page.after
                q = q.where(tuple_(c.name, c.id) > (name, uuid.UUID(ident)))
            except ValueError:
                raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None
        q = q.order_by(c.name, c.id).limit(page.limit + 1)
        if page.offset is not None:
            q = q.offset(page.offset)
        rows = [_tag(r) for r in (await self._c.execute(q)).all()]
        return page_from_rows(rows, page.limit, lambda tag: (tag.name, str(tag.id)))

    async def get(self, tag_id: uuid.UUID) -> Tag | None:
        row = (await self._c.execute(select(t.tags).where(t.tags.c.id == tag_id))).first()
        return _tag(row) if row else None

    async def by_name(self, location_id: uuid.UUID, name: str) -> Tag | None:
        c = t.tags.c
        row = (
            await self._c.execute(select(t.tags).where(c.location_id == location_id, c.name == name))
        ).first()
        return _tag(row) if row else None

    async def _write(self, statement: Any, tag: Tag) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(statement)
        except IntegrityError as exc:
            if "tags_location_id_name_key" not in str(exc.orig):
                raise
            existing = await self.by_name(tag.location_id, tag.name)
            raise DuplicateTag(
                f"the tag '{tag.name}' already exists", existing.id if existing else None
            ) from None

    async def add(self, tag: Tag) -> None:
        values = {
            "id": tag.id,
            "location_id": tag.location_id,
            "name": tag.name,
            "created_at": tag.created_at,
            "updated_at": tag.updated_at,
            "created_by": tag.created_by,
            "updated_by": tag.updated_by,
        }
        await self._write(insert(t.tags).values(**values), tag)

    async def update(self, tag: Tag) -> None:
        values = {"name": tag.name, "updated_at": tag.updated_at, "updated_by": tag.updated_by}
        await self._write(update(t.tags).where(t.tags.c.id == tag.id).values(**values), tag)

    async def delete(self, tag_id: uuid.UUID) -> None:
        await self._c.execute(delete(t.tags).where(t.tags.c.id == tag_id))

    async def live_contact_ids(
        self, location_id: uuid.UUID, contact_ids: builtins.list[uuid.UUID]
    ) -> set[uuid.UUID]:
        c = t.contacts.c
        q = select(c.id).where(
            c.location_id == location_id,
            c.id.in_(contact_ids),
            c.deleted_at.is_(None),
            c.erased_at.is_(None),
        )
        return set((await self._c.execute(q)).scalars().all())

    async def retag(
        self,
        location_id: uuid.UUID,
        *,
        contact_ids: builtins.list[uuid.UUID] | None = None,
        having: str | None = None,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        rename: tuple[str, str] | None = None,
        now: datetime,
        actor_id: uuid.UUID | None,
    ) -> builtins.list[TagChange]:
        if (contact_ids is None) == (having is None):
            raise ValueError("give either contact_ids or having")
        params: dict[str, Any] = {
            "location": location_id,
            "old": rename[0] if rename else None,
            "new": rename[1] if rename else None,
            "add": list(add),
            "remove": list(remove),
            "now": now,
            "actor": actor_id,
        }
        if contact_ids is not None:
            if not contact_ids:
                return []
            statement, params["ids"] = _BY_IDS, contact_ids
        else:
            statement, params["having"] = _HAVING, having
        rows = (await self._c.execute(statement, params)).all()
        return [TagChange(contact_from_row(r), list(r.before_tags)) for r in rows]
