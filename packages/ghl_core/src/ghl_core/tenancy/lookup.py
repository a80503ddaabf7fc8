"""The live location a service works in: one look-up, one error, for every context.

Every context that writes under a location first checks that the location exists and is not deleted,
and answers `NotFound("location <id> not found")` otherwise; that check lives here once. It asks only
for a unit of work with `locations`, so any context's narrow unit of work satisfies it. A service that
keeps locations in its read cache passes the cache; a hit then spares the query, and the deleted check
still applies to what the cache answered.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from ghl_core.shared.cache import ReadCache
from ghl_core.shared.errors import NotFound
from ghl_core.tenancy.cached import cached_location
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.ports import LocationRepository


class HasLocations(Protocol):
    # Read-only, so a unit of work whose `locations` is a narrower or derived repository still fits.
    @property
    def locations(self) -> LocationRepository: ...


async def live_location(
    uow: HasLocations, location_id: uuid.UUID, *, cache: ReadCache | None = None
) -> Location:
    """The location, unless it is missing or soft-deleted (then `NotFound`)."""
    if cache is None:
        location = await uow.locations.get(location_id)
    else:
        location = await cached_location(cache, location_id, lambda: uow.locations.get(location_id))
    if location is None or location.deleted_at is not None:
        raise NotFound(f"location {location_id} not found")
    return location
