"""A location row read through the cache: contact writes and `GET /location` load it on every call."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from ghl_core.shared.cache import ReadCache, location_cache_key
from ghl_core.tenancy.models import Location, PlanTier


def _opt_uuid(value: Any) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def location_to_json(location: Location) -> dict[str, Any]:
    return {
        "id": str(location.id),
        "agency_id": str(location.agency_id),
        "name": location.name,
        "timezone": location.timezone,
        "country": location.country,
        "tier": location.tier.value,
        "created_at": location.created_at.isoformat(),
        "updated_at": location.updated_at.isoformat(),
        "deleted_at": location.deleted_at.isoformat() if location.deleted_at else None,
        "created_by": str(location.created_by) if location.created_by else None,
        "updated_by": str(location.updated_by) if location.updated_by else None,
    }


def location_from_json(data: Any) -> Location:
    return Location(
        id=uuid.UUID(data["id"]),
        agency_id=uuid.UUID(data["agency_id"]),
        name=data["name"],
        timezone=data["timezone"],
        country=data["country"],
        tier=PlanTier(data["tier"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        deleted_at=datetime.fromisoformat(data["deleted_at"]) if data["deleted_at"] else None,
        created_by=_opt_uuid(data["created_by"]),
        updated_by=_opt_uuid(data["updated_by"]),
    )


async def cached_location(
    cache: ReadCache, location_id: uuid.UUID, load: Callable[[], Awaitable[Location | None]]
) -> Location | None:
    """The location as `uow.locations.get` answers it (deleted ones included): from the cache, else from
    `load` (which may open its unit of work only then). Each call decodes a fresh object."""
    return await cache.get_or_load(
        location_cache_key(location_id), load, location_to_json, location_from_json
    )
