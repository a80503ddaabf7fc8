"""SQL repository of custom field definitions, and the JSONB updates that keep stored values in step."""

from __future__ import annotations

import builtins
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.custom_fields.errors import DuplicateFieldKey
from ghl_core.custom_fields.models import CustomFieldDefinition, FieldType

from . import tables as t

# What is left of a multiple options value once the removed options are filtered out (order kept).
_KEPT = """(SELECT coalesce(jsonb_agg(e ORDER BY o), '[]'::jsonb)
   FROM jsonb_array_elements(custom_fields -> :key) WITH ORDINALITY AS x(e, o)
  WHERE NOT ((e #>> '{}') = ANY(CAST(:removed AS text[]))))"""

_REMOVE_MULTIPLE = text(f"""
UPDATE contacts
   SET custom_fields = CASE WHEN {_KEPT} = '[]'::jsonb THEN custom_fields - CAST(:key AS text)
                            ELSE jsonb_set(custom_fields, ARRAY[CAST(:key AS text)], {_KEPT}) END,
       updated_at = :now
 WHERE location_id = :location
   AND jsonb_typeof(custom_fields -> :key) = 'array'
   AND (custom_fields -> :key) ?| CAST(:removed AS text[])
""")  # noqa: S608 - only fixed text is interpolated

_REMOVE_SINGLE = text("""
UPDATE contacts SET custom_fields = custom_fields - CAST(:key AS text), updated_at = :now
 WHERE location_id = :location AND (custom_fields ->> :key) = ANY(CAST(:removed AS text[]))
""")

_REMOVE_KEY = text("""
UPDATE contacts SET custom_fields = custom_fields - CAST(:key AS text), updated_at = :now
 WHERE location_id = :location AND custom_fields ? :key
""")

_STORED = text("""
SELECT id, custom_fields -> :key AS value FROM contacts
 WHERE location_id = :location AND custom_fields ? :key ORDER BY id
""")

_SET_VALUES = text("""
UPDATE contacts c SET custom_fields = jsonb_set(c.custom_fields, ARRAY[CAST(:key AS text)], v.value),
       updated_at = :now
  FROM unnest(CAST(:ids AS uuid[]), CAST(:values AS jsonb[])) AS v(id, value)
 WHERE c.id = v.id AND c.location_id = :location
""")


def _from_row(r: Row[Any]) -> CustomFieldDefinition:
    return CustomFieldDefinition(
        id=r.id,
        location_id=r.location_id,
        key=r.key,
        label=r.label,
        type=FieldType(r.type),
        options=list(r.options),
        created_at=r.created_at,
        updated_at=r.updated_at,
        deleted_at=r.deleted_at,
        created_by=r.created_by,
        updated_by=r.updated_by,
    )


class SqlCustomFieldRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def definitions(self, location_id: uuid.UUID) -> builtins.list[CustomFieldDefinition]:
        d = t.custom_field_definitions.c
        q = (
            select(t.custom_field_definitions)
            .where(d.location_id == location_id, d.deleted_at.is_(None))
            .order_by(d.created_at, d.id)
            # KEY SHARE: contact writes do not block each other, but a definition change (FOR UPDATE)
            # waits for them, and they for it.
            .with_for_update(key_share=True, read=True)
        )
        return [_from_row(r) for r in (await self._c.execute(q)).all()]

    async def get(
        self, definition_id: uuid.UUID, *, for_update: bool = False
    ) -> CustomFieldDefinition | None:
        q = select(t.custom_field_definitions).where(t.custom_field_definitions.c.id == definition_id)
        if for_update:
            q = q.with_for_update()
        row = (await self._c.execute(q)).first()
        return _from_row(row) if row else None

    async def add(self, definition: CustomFieldDefinition) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(
                    insert(t.custom_field_definitions).values(
                        id=definition.id,
                        location_id=definition.location_id,
                        key=definition.key,
                        label=definition.label,
                        type=definition.type.value,
                        options=definition.options,
                        created_at=definition.created_at,
                        updated_at=definition.updated_at,
                        created_by=definition.created_by,
                        updated_by=definition.updated_by,
                    )
                )
        except IntegrityError as exc:
            if "custom_field_definitions_key" not in str(exc.orig):
                raise
            raise DuplicateFieldKey(
                f"a custom field with the key '{definition.key}' already exists"
            ) from None

    async def update(self, definition: CustomFieldDefinition) -> None:
        await self._c.execute(
            update(t.custom_field_definitions)
            .where(t.custom_field_definitions.c.id == definition.id)
            .values(
                label=definition.label,
                type=definition.type.value,
                options=definition.options,
                updated_at=definition.updated_at,
                updated_by=definition.updated_by,
                deleted_at=definition.deleted_at,
            )
        )

    async def stored_values(self, location_id: uuid.UUID, key: str) -> builtins.list[tuple[uuid.UUID, Any]]:
        rows = (await self._c.execute(_STORED, {"location": location_id, "key": key})).all()
        return [(r.id, r.value) for r in rows]

    async def remove_key(self, location_id: uuid.UUID, key: str, now: datetime) -> int:
        result = await self._c.execute(_REMOVE_KEY, {"location": location_id, "key": key, "now": now})
        return int(result.rowcount)

    async def remove_options(
        self, location_id: uuid.UUID, key: str, removed: builtins.list[str], *, multiple: bool, now: datetime
    ) -> int:
        statement = _REMOVE_MULTIPLE if multiple else _REMOVE_SINGLE
        params = {"location": location_id, "key": key, "removed": removed, "now": now}
        return int((await self._c.execute(statement, params)).rowcount)

    async def set_values(
        self, location_id: uuid.UUID, key: str, values: dict[uuid.UUID, Any], now: datetime
    ) -> int:
        params = {
            "location": location_id,
            "key": key,
            "ids": list(values),
            "values": [json.dumps(v) for v in values.values()],
            "now": now,
        }
        return int((await self._c.execute(_SET_VALUES, params)).rowcount)
