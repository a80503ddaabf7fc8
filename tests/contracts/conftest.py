"""Contract tests: the same cases over the in-memory and the SQL implementation of each repository, so
the two cannot drift.

Every test here that takes `world` runs twice: `[memory]` on a fresh `MemoryUnitOfWorkFactory` (no
database) and `[sql]` on the suite's migrated database (the session container's unit of work factory).
`world` holds the factory (`world.uow(scope)` opens a unit of work like any service does) and two
locations of two agencies created through the repositories themselves, so a test can check that a
location scope never sees the other location's rows.
"""

from __future__ import annotations

import pytest
from contract_world import Factory, World, new_tenant

from ghl_adapters.memory import MemoryUnitOfWorkFactory


@pytest.fixture(params=["memory", "sql"])
def uow_factory(request: pytest.FixtureRequest) -> tuple[str, Factory]:
    """Synchronous, so that it may ask for the (async, session) container only when the SQL kind runs:
    the memory kind never starts a database."""
    if request.param == "memory":
        return "memory", MemoryUnitOfWorkFactory()
    return "sql", request.getfixturevalue("container").uow()


@pytest.fixture
async def world(uow_factory: tuple[str, Factory]) -> World:
    kind, factory = uow_factory
    agency_id, location_id = await new_tenant(factory)
    other_agency_id, other_location_id = await new_tenant(factory)
    return World(kind, factory, agency_id, location_id, other_agency_id, other_location_id)
