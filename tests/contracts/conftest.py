"""Contract tests: the same cases over the in-memory and the SQL implementation of each repository, so
the two cannot drift.

Every test here that takes `world` runs twice: `[memory]` on a fresh `MemoryUnitOfWorkFactory` (no
database) and `[sql]` on the suite's migrated database (the session container's unit of work factory).
`world` holds the factory (`world.uow(scope)` opens a unit of work like any service does) and two
locations of two agencies created through the repositories themselves, so a test can check that a
location scope never sees the other location's rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from ghl_adapters.memory import MemoryUnitOfWorkFactory
from ghl_core.legacy_uow import UnitOfWork
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.models import Agency, Location, PlanTier

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    kind: str  # "memory" or "sql"
    uow: UnitOfWorkFactory[UnitOfWork]
    agency_id: uuid.UUID
    location_id: uuid.UUID
    other_agency_id: uuid.UUID
    other_location_id: uuid.UUID

    @property
    def scope(self) -> TenantScope:
        return TenantScope.location(self.location_id)

    @property
    def other_scope(self) -> TenantScope:
        return TenantScope.location(self.other_location_id)


async def _tenant(uow: UnitOfWorkFactory[UnitOfWork]) -> tuple[uuid.UUID, uuid.UUID]:
    agency = Agency(id=uuid.uuid4(), name="Contract agency", created_at=NOW, updated_at=NOW)
    location = Location(
        id=uuid.uuid4(),
        agency_id=agency.id,
        name="Contract location",
        timezone="America/Chicago",
        country="US",
        tier=PlanTier.ENTERPRISE,
        created_at=NOW,
        updated_at=NOW,
    )
    async with uow(TenantScope.operator()) as work:
        await work.agencies.add(agency)
        await work.locations.add(location)
        await work.commit()
    return agency.id, location.id


@pytest.fixture(params=["memory", "sql"])
async def world(request: pytest.FixtureRequest) -> World:
    factory: UnitOfWorkFactory[UnitOfWork]
    if request.param == "memory":
        factory = MemoryUnitOfWorkFactory()
    else:
        factory = request.getfixturevalue("container").uow()
    agency_id, location_id = await _tenant(factory)
    other_agency_id, other_location_id = await _tenant(factory)
    return World(request.param, factory, agency_id, location_id, other_agency_id, other_location_id)
