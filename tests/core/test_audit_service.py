"""AuditService: a location's history, for location credentials holding audit:read."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from ghl_core.audit.services import AuditService
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import PermissionDenied
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import LocationRole
from ghl_core.tenancy.permissions import Actor, ActorKind, Permission
from ghl_core.tenancy.services import LocationChanges, TenancyService
from world import World, location_actor

PAGE = PageRequest(limit=100)


def key_actor(world: World, location_id: uuid.UUID, *scopes: Permission) -> Actor:
    return Actor(
        ActorKind.API_KEY, uuid.uuid4(), world.agency.id, location_id=location_id, scopes=frozenset(scopes)
    )


@pytest.fixture
async def history(tenancy: TenancyService, world: World, clock: FixedClock) -> World:
    for name in ("Alpha 1", "Alpha 2", "Alpha 3"):
        clock.advance(timedelta(minutes=1))
        await tenancy.update_location(world.owner_actor, world.loc_a.id, LocationChanges(name=name))
    clock.advance(timedelta(minutes=1))
    await tenancy.update_location(world.owner_actor, world.loc_b.id, LocationChanges(name="Beta 1"))
    return world


async def test_lists_the_location_history_newest_first(audit_service: AuditService, history: World) -> None:
    reader = key_actor(history, history.loc_a.id, Permission.AUDIT_READ)
    page = await audit_service.list(reader, PAGE)
    assert [e.after["name"] for e in page.items if e.after] == ["Alpha 3", "Alpha 2", "Alpha 1"]
    assert all(e.location_id == history.loc_a.id for e in page.items)
    assert page.next_cursor is None


async def test_pages_and_filters(audit_service: AuditService, history: World, clock: FixedClock) -> None:
    reader = location_actor(history.owner, history.loc_a.id, LocationRole.ADMIN)
    first = await audit_service.list(reader, PageRequest(limit=2))
    assert len(first.items) == 2
    assert first.next_cursor is not None
    rest = await audit_service.list(reader, PageRequest.parse(2, first.next_cursor, None))
    assert [e.after["name"] for e in rest.items if e.after] == ["Alpha 1"]
    assert rest.next_cursor is None
    recent = await audit_service.list(reader, PAGE, since=clock.now() - timedelta(minutes=1))
    assert [e.after["name"] for e in recent.items if e.after] == ["Alpha 3"]
    by_entity = await audit_service.list(reader, PAGE, entity_type="location", entity_id=history.loc_a.id)
    assert len(by_entity.items) == 3
    assert (await audit_service.list(reader, PAGE, entity_type="user")).items == []
    assert (await audit_service.list(reader, PAGE, entity_id=uuid.uuid4())).items == []


async def test_needs_a_location_credential_with_audit_read(
    audit_service: AuditService, history: World
) -> None:
    with pytest.raises(PermissionDenied):
        await audit_service.list(history.owner_actor, PAGE)
    with pytest.raises(PermissionDenied):
        await audit_service.list(Actor.operator(), PAGE)
    with pytest.raises(PermissionDenied, match="audit:read"):
        await audit_service.list(key_actor(history, history.loc_a.id, Permission.CONTACTS_READ), PAGE)
    user_token = location_actor(history.member, history.loc_a.id, LocationRole.USER)
    with pytest.raises(PermissionDenied, match="audit:read"):
        await audit_service.list(user_token, PAGE)
