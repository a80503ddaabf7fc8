"""Custom field definitions in memory, and the updates that keep contacts' stored values in step."""

from __future__ import annotations

import builtins
import copy
import uuid
from datetime import datetime
from typing import Any

from ghl_core.contacts.models import Contact
from ghl_core.custom_fields.errors import DuplicateFieldKey
from ghl_core.custom_fields.models import CustomFieldDefinition

from .contacts import CONTACTS
from .store import MemoryRepository, Table

DEFINITIONS: Table[uuid.UUID, CustomFieldDefinition] = Table("custom_field_definitions")


class MemoryCustomFieldRepository(MemoryRepository):
    def _contacts(self, location_id: uuid.UUID) -> builtins.list[Contact]:
        if not self.sees_location(location_id):
            return []
        return [c for c in self.rows(CONTACTS).values() if c.location_id == location_id]

    async def definitions(self, location_id: uuid.UUID) -> builtins.list[CustomFieldDefinition]:
        found = [
            d
            for d in self.rows(DEFINITIONS).values()
            if d.location_id == location_id and d.deleted_at is None and self.sees_location(d.location_id)
        ]
        return [copy.deepcopy(d) for d in sorted(found, key=lambda d: (d.created_at, d.id))]

    async def get(
        self, definition_id: uuid.UUID, *, for_update: bool = False
    ) -> CustomFieldDefinition | None:
        found = self.rows(DEFINITIONS).get(definition_id)
        if found is None or not self.sees_location(found.location_id):
            return None
        return copy.deepcopy(found)

    async def add(self, definition: CustomFieldDefinition) -> None:
        self.check_write(self.sees_location(definition.location_id), "custom_field_definitions")
        rows = self.rows(DEFINITIONS)
        if definition.deleted_at is None and any(
            d.location_id == definition.location_id and d.key == definition.key and d.deleted_at is None
            for d in self.unique_rows(DEFINITIONS)
        ):
            raise DuplicateFieldKey(f"a custom field with the key '{definition.key}' already exists")
        rows[definition.id] = copy.deepcopy(definition)

    async def update(self, definition: CustomFieldDefinition) -> None:
        stored = self.rows(DEFINITIONS).get(definition.id)
        if stored is None or not self.sees_location(stored.location_id):
            return
        stored.label, stored.type, stored.options = (
            definition.label,
            definition.type,
            list(definition.options),
        )
        stored.updated_at, stored.updated_by = definition.updated_at, definition.updated_by
        stored.deleted_at = definition.deleted_at

    async def stored_values(self, location_id: uuid.UUID, key: str) -> builtins.list[tuple[uuid.UUID, Any]]:
        found = [
            (c.id, copy.deepcopy(c.custom_fields[key]))
            for c in self._contacts(location_id)
            if key in c.custom_fields
        ]
        return sorted(found, key=lambda pair: pair[0])

    async def remove_key(self, location_id: uuid.UUID, key: str, now: datetime) -> int:
        changed = 0
        for contact in self._contacts(location_id):
            if key in contact.custom_fields:
                del contact.custom_fields[key]
                contact.updated_at = now
                changed += 1
        return changed

    async def remove_options(
        self, location_id: uuid.UUID, key: str, removed: builtins.list[str], *, multiple: bool, now: datetime
    ) -> int:
        gone = set(removed)
        changed = 0
        for contact in self._contacts(location_id):
            value = contact.custom_fields.get(key)
            if multiple:
                if not isinstance(value, list) or not any(isinstance(v, str) and v in gone for v in value):
                    continue
                kept = [v for v in value if _as_text(v) not in gone]
                if kept:
                    contact.custom_fields[key] = kept
                else:
                    del contact.custom_fields[key]
            else:
                if key not in contact.custom_fields or _as_text(value) not in gone:
                    continue
                del contact.custom_fields[key]
            contact.updated_at = now
            changed += 1
        return changed

    async def set_values(
        self, location_id: uuid.UUID, key: str, values: dict[uuid.UUID, Any], now: datetime
    ) -> int:
        changed = 0
        for contact in self._contacts(location_id):
            if contact.id in values:
                contact.custom_fields[key] = copy.deepcopy(values[contact.id])
                contact.updated_at = now
                changed += 1
        return changed


def _as_text(value: object) -> str | None:
    """`value #>> '{}'` / `->>`: a JSON string's text, a scalar's JSON text, None for null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else None
