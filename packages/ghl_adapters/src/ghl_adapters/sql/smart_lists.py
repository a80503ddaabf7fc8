"""The SQL repository of smart lists, and its table."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, Row, Table, Text, select, update
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.smart_lists.models import SmartList
from ghl_core.smart_lists.ports import DuplicateSmartList

from .repositories import _paginate

metadata = MetaData()
smart_lists = Table(
    "smart_lists",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("query", Text),
    Column("filter", JSONB(none_as_null=True)),
    Column("sort", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    Column("created_by", UUID(as_uuid=True)),
    Column("updated_by", UUID(as_uuid=True)),
)
_FIELDS = (
    "name",
    "query",
    "filter",
    "sort",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
)


def _from_row(row: Row[Any]) -> SmartList:
    return SmartList(id=row.id, location_id=row.location_id, **{f: getattr(row, f) for f in _FIELDS})


class SqlSmartListRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _write(self, statement: Any, name: str) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(statement)
        except IntegrityError as exc:
            if "smart_lists_name_key" not in str(exc.orig):
                raise
            raise DuplicateSmartList(f"a smart list named '{name}' already exists") from None

    async def add(self, smart_list: SmartList) -> None:
        values = {f: getattr(smart_list, f) for f in _FIELDS}
        await self._write(
            insert(smart_lists).values(id=smart_list.id, location_id=smart_list.location_id, **values),
            smart_list.name,
        )

    async def update(self, smart_list: SmartList) -> None:
        values = {f: getattr(smart_list, f) for f in _FIELDS}
        await self._write(
            update(smart_lists).where(smart_lists.c.id == smart_list.id).values(**values), smart_list.name
        )

    async def get(self, smart_list_id: uuid.UUID) -> SmartList | None:
        row = (await self._c.execute(select(smart_lists).where(smart_lists.c.id == smart_list_id))).first()
        return _from_row(row) if row else None

    async def list(self, page: PageRequest) -> Page[SmartList]:
        s = smart_lists.c
        q = select(smart_lists).where(s.deleted_at.is_(None))
        rows = (await self._c.execute(_paginate(q, page, s.created_at, s.id, descending=True))).all()
        return page_from_rows(
            [_from_row(r) for r in rows], page.limit, lambda x: (x.created_at.isoformat(), str(x.id))
        )
