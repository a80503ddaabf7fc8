"""A location to run services in on the shipped in-memory adapters (`ghl_adapters.memory`), no database:
an agency with two locations made through the tenancy service, and an operator acting in each."""

from __future__ import annotations

from dataclasses import dataclass

from ghl_adapters.memory import MemoryStore, MemoryUnitOfWorkFactory
from ghl_core.shared.clock import FixedClock
from ghl_core.tenancy.models import Agency, Location, PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation, TenancyService


class NoPasswords:
    """The tenancy service's password port, for worlds that make no user."""

    def hash(self, password: str) -> str:
        raise AssertionError("this world makes no password")

    def verify(self, password_hash: str, password: str) -> bool:
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        return False


@dataclass(frozen=True)
class MemoryWorld:
    uows: MemoryUnitOfWorkFactory
    clock: FixedClock
    agency: Agency
    location: Location
    other_location: Location

    @property
    def store(self) -> MemoryStore:
        return self.uows.store

    @property
    def actor(self) -> Actor:
        """Every permission, in `location`'s scope (as an API key of the location)."""
        return Actor.operator_at(self.location.id)

    @property
    def other_actor(self) -> Actor:
        return Actor.operator_at(self.other_location.id)


async def memory_world(tier: PlanTier = PlanTier.ENTERPRISE) -> MemoryWorld:
    clock = FixedClock()
    uows = MemoryUnitOfWorkFactory(MemoryStore(clock))
    tenancy = TenancyService(uows, clock, NoPasswords())
    operator = Actor.operator()
    agency = await tenancy.create_agency(operator, "Memory Agency")
    location = await tenancy.create_location(
        operator, NewLocation("Alpha", timezone="America/Chicago", tier=tier), agency.id
    )
    other = await tenancy.create_location(operator, NewLocation("Beta", tier=tier), agency.id)
    return MemoryWorld(uows, clock, agency, location, other)
