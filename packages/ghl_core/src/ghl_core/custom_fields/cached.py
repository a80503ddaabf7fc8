"""A location's custom field definitions read through the cache: every contact write that carries
custom values, and every search, import and export, needs them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ghl_core.custom_fields.models import CustomFieldDefinition, FieldType
from ghl_core.custom_fields.ports import DefinitionsUnitOfWork
from ghl_core.shared.cache import ReadCache, custom_fields_cache_key


def _definition_to_json(d: CustomFieldDefinition) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "location_id": str(d.location_id),
        "key": d.key,
        "label": d.label,
        "type": d.type.value,
        "options": list(d.options),
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
        "deleted_at": d.deleted_at.isoformat() if d.deleted_at else None,
        "created_by": str(d.created_by) if d.created_by else None,
        "updated_by": str(d.updated_by) if d.updated_by else None,
    }


def _definition_from_json(data: Any) -> CustomFieldDefinition:
    return CustomFieldDefinition(
        id=uuid.UUID(data["id"]),
        location_id=uuid.UUID(data["location_id"]),
        key=data["key"],
        label=data["label"],
        type=FieldType(data["type"]),
        options=[str(o) for o in data["options"]],
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        deleted_at=datetime.fromisoformat(data["deleted_at"]) if data["deleted_at"] else None,
        created_by=uuid.UUID(data["created_by"]) if data["created_by"] else None,
        updated_by=uuid.UUID(data["updated_by"]) if data["updated_by"] else None,
    )


def definitions_to_json(definitions: list[CustomFieldDefinition]) -> list[dict[str, Any]]:
    return [_definition_to_json(d) for d in definitions]


def definitions_from_json(data: Any) -> list[CustomFieldDefinition]:
    if not isinstance(data, list):
        raise TypeError("custom field definitions are cached as a list")
    return [_definition_from_json(item) for item in data]


async def cached_definitions(
    cache: ReadCache, uow: DefinitionsUnitOfWork, location_id: uuid.UUID
) -> list[CustomFieldDefinition]:
    """What `uow.custom_fields.definitions` answers, from the cache when it holds it."""

    async def load() -> list[CustomFieldDefinition]:
        return await uow.custom_fields.definitions(location_id)

    found = await cache.get_or_load(
        custom_fields_cache_key(location_id), load, definitions_to_json, definitions_from_json
    )
    return found or []
