"""The world a contract test runs in: a unit of work factory of one kind and two tenants made through it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ghl_adapters.memory import MemoryUnitOfWork
from ghl_adapters.sql.uow import SqlUnitOfWork
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.models import Agency, Location, PlanTier

# Both hold every repository; a contract test uses them through the core's ports only.
AnyUnitOfWork = MemoryUnitOfWork | SqlUnitOfWork
Factory = Callable[[TenantScope], AnyUnitOfWork]

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    kind: str  # "memory" or "sql"
    uow: Factory
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


async def new_tenant(uow: Factory) -> tuple[uuid.UUID, uuid.UUID]:
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
