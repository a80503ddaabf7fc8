"""Two owners stepping down at the same moment still leave the agency an owner: the last-owner check
locks the owners' rows, so the second demotion sees the first."""

from __future__ import annotations

import asyncio
import uuid

from ghl_adapters.container import Container
from ghl_core.shared.errors import Conflict
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import AgencyRole
from ghl_core.tenancy.permissions import Actor, ActorKind
from ghl_core.tenancy.services import NewUser


async def test_concurrent_demotions_keep_one_owner(container: Container) -> None:
    operator = Actor.operator()
    tenancy = container.tenancy()
    agency = await tenancy.create_agency(operator, "Two Owners")
    owners = [
        await tenancy.create_user(
            operator,
            NewUser(f"owner-{uuid.uuid4().hex[:8]}@example.com", f"Owner {i}", role=AgencyRole.OWNER),
            agency_id=agency.id,
        )
        for i in range(2)
    ]
    actors = [Actor(ActorKind.USER, o.id, agency.id, agency_role=AgencyRole.OWNER) for o in owners]

    results = await asyncio.gather(
        *(tenancy.update_user(a, a.id, role=AgencyRole.ADMIN) for a in actors if a.id),
        return_exceptions=True,
    )

    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    remaining = [
        u
        for u in (await tenancy.list_users(operator, PageRequest(limit=100))).items
        if u.agency_id == agency.id
    ]
    assert [u.role for u in remaining].count(AgencyRole.OWNER) == 1
