"""TenancyService: agencies, locations, users and grants, with the audit trail and domain events."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from fakes import InMemoryStore
from ghl_core.identity.auth import AuthService
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import AgencyRole, LocationGrant, LocationRole, PlanTier
from ghl_core.tenancy.permissions import Actor, ActorKind, Permission
from ghl_core.tenancy.services import LocationChanges, NewLocation, NewUser, TenancyService
from world import PASSWORD, World, location_actor, user_actor

PAGE = PageRequest(limit=100)


def pointers(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.pointer for e in exc.value.errors]


def key_actor(world: World, location_id: uuid.UUID, *scopes: Permission) -> Actor:
    return Actor(
        ActorKind.API_KEY,
        uuid.uuid4(),
        world.agency.id,
        location_id=location_id,
        scopes=frozenset(scopes or Permission),
    )


# -- agencies --------------------------------------------------------------------------------------------


async def test_operator_creates_an_agency(
    tenancy: TenancyService, operator: Actor, store: InMemoryStore, clock: FixedClock
) -> None:
    agency = await tenancy.create_agency(operator, "  Acme   Marketing ")
    assert agency.name == "Acme Marketing"
    assert agency.created_at == clock.now()
    assert store.data.agencies[agency.id].name == "Acme Marketing"
    [entry] = store.data.audit
    assert (entry.action, entry.entity_type, entry.entity_id) == ("create", "agency", agency.id)
    assert (entry.actor_type, entry.actor_id, entry.agency_id) == ("operator", None, agency.id)
    assert entry.before is None
    assert entry.after == {"id": str(agency.id), "name": "Acme Marketing"}
    [event] = store.data.events
    assert event.type == "AgencyCreate"
    assert event.payload == {"before": None, "after": entry.after}
    assert event.occurred_at == clock.now()


async def test_only_the_operator_creates_and_lists_agencies(
    tenancy: TenancyService, world: World, store: InMemoryStore
) -> None:
    with pytest.raises(PermissionDenied):
        await tenancy.create_agency(world.owner_actor, "Mine")
    with pytest.raises(PermissionDenied):
        await tenancy.list_agencies(world.owner_actor, PAGE)
    assert store.data.audit == []


async def test_agency_name_is_validated(
    tenancy: TenancyService, operator: Actor, store: InMemoryStore
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await tenancy.create_agency(operator, "   ")
    assert pointers(exc) == ["/name"]
    assert store.data.agencies == {}


async def test_operator_lists_agencies(tenancy: TenancyService, operator: Actor, world: World) -> None:
    page = await tenancy.list_agencies(operator, PAGE)
    assert {a.id for a in page.items} == {world.agency.id, world.other_agency.id}


# -- locations -------------------------------------------------------------------------------------------


async def test_operator_creates_a_location_in_a_named_agency(
    tenancy: TenancyService, operator: Actor, world: World, store: InMemoryStore
) -> None:
    loc = await tenancy.create_location(
        operator, NewLocation("Delta", "Europe/Paris", "fr", PlanTier.ENTERPRISE), world.other_agency.id
    )
    assert (loc.agency_id, loc.name, loc.timezone, loc.country, loc.tier) == (
        world.other_agency.id,
        "Delta",
        "Europe/Paris",
        "FR",
        PlanTier.ENTERPRISE,
    )
    assert loc.created_by is None
    [entry] = store.data.audit
    assert (entry.action, entry.entity_type, entry.location_id) == ("create", "location", loc.id)
    assert entry.after == loc.snapshot()
    assert [e.type for e in store.data.events] == ["LocationCreate"]


async def test_operator_naming_an_unknown_agency(
    tenancy: TenancyService, operator: Actor, world: World
) -> None:
    with pytest.raises(NotFound):
        await tenancy.create_location(operator, NewLocation("X"), uuid.uuid4())


async def test_operator_without_agency_id_and_no_agency(tenancy: TenancyService, operator: Actor) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await tenancy.create_location(operator, NewLocation("X"))
    assert pointers(exc) == ["/agency_id"]
    assert "create an agency first" in str(exc.value)


async def test_operator_without_agency_id_and_exactly_one_agency(
    tenancy: TenancyService, operator: Actor
) -> None:
    agency = await tenancy.create_agency(operator, "Solo")
    loc = await tenancy.create_location(operator, NewLocation("X"))
    assert loc.agency_id == agency.id


async def test_operator_without_agency_id_and_several_agencies(
    tenancy: TenancyService, operator: Actor, world: World, store: InMemoryStore
) -> None:
    before = len(store.data.locations)
    with pytest.raises(ValidationFailed) as exc:
        await tenancy.create_location(operator, NewLocation("X"))
    assert "not exactly one" in str(exc.value)
    assert len(store.data.locations) == before


async def test_agency_owner_creates_in_its_own_agency_only(
    tenancy: TenancyService, world: World, store: InMemoryStore
) -> None:
    loc = await tenancy.create_location(world.owner_actor, NewLocation("Mine"), world.other_agency.id)
    assert loc.agency_id == world.agency.id
    assert loc.created_by == world.owner.id
    [entry] = store.data.audit
    assert (entry.actor_type, entry.actor_id) == ("user", world.owner.id)


async def test_agency_user_cannot_create_locations(tenancy: TenancyService, world: World) -> None:
    with pytest.raises(PermissionDenied):
        await tenancy.create_location(world.member_actor, NewLocation("Nope"))
    token = location_actor(world.owner, world.loc_a.id, LocationRole.ADMIN)
    with pytest.raises(PermissionDenied):
        await tenancy.create_location(token, NewLocation("Nope"))


async def test_location_fields_are_all_reported(
    tenancy: TenancyService, operator: Actor, world: World, store: InMemoryStore
) -> None:
    before = dict(store.data.locations)
    with pytest.raises(ValidationFailed) as exc:
        await tenancy.create_location(operator, NewLocation(" ", "Nowhere/City", "USA"), world.agency.id)
    assert pointers(exc) == ["/name", "/timezone", "/country"]
    assert store.data.locations == before
    assert store.data.audit == []


async def test_get_location_visibility(tenancy: TenancyService, world: World, operator: Actor) -> None:
    assert (await tenancy.get_location(world.owner_actor, world.loc_b.id)).id == world.loc_b.id
    assert (await tenancy.get_location(world.admin_actor, world.loc_b.id)).id == world.loc_b.id
    assert (await tenancy.get_location(operator, world.other_location.id)).name == "Gamma"
    # An agency user sees only the locations it was granted.
    assert (await tenancy.get_location(world.member_actor, world.loc_a.id)).id == world.loc_a.id
    with pytest.raises(NotFound):
        await tenancy.get_location(world.member_actor, world.loc_b.id)
    # Another agency's location does not exist for this caller.
    with pytest.raises(NotFound):
        await tenancy.get_location(world.other_actor, world.loc_a.id)
    with pytest.raises(NotFound):
        await tenancy.get_location(world.owner_actor, uuid.uuid4())


async def test_agency_user_that_no_longer_exists_sees_nothing(tenancy: TenancyService, world: World) -> None:
    ghost = Actor(ActorKind.USER, uuid.uuid4(), world.agency.id, agency_role=AgencyRole.USER)
    with pytest.raises(NotFound):
        await tenancy.get_location(ghost, world.loc_a.id)
    assert (await tenancy.list_locations(ghost, PAGE)).items == []
    nameless = Actor(ActorKind.USER, None, world.agency.id, agency_role=AgencyRole.USER)
    with pytest.raises(NotFound):
        await tenancy.get_location(nameless, world.loc_a.id)
    assert (await tenancy.list_locations(nameless, PAGE)).items == []


async def test_location_credentials_see_their_location_only(tenancy: TenancyService, world: World) -> None:
    key = key_actor(world, world.loc_a.id)
    assert (await tenancy.get_location(key, world.loc_a.id)).id == world.loc_a.id
    assert (await tenancy.current_location(key)).id == world.loc_a.id
    with pytest.raises(NotFound):
        await tenancy.get_location(key, world.loc_b.id)
    page = await tenancy.list_locations(key, PAGE)
    assert [loc.id for loc in page.items] == [world.loc_a.id]
    assert page.next_cursor is None
    with pytest.raises(PermissionDenied):
        await tenancy.get_location(key_actor(world, world.loc_a.id, Permission.CONTACTS_READ), world.loc_a.id)
    with pytest.raises(PermissionDenied):
        await tenancy.current_location(world.owner_actor)


async def test_list_locations(tenancy: TenancyService, world: World, operator: Actor) -> None:
    every = await tenancy.list_locations(operator, PAGE)
    assert {loc.id for loc in every.items} == {world.loc_a.id, world.loc_b.id, world.other_location.id}
    own = await tenancy.list_locations(world.owner_actor, PAGE)
    assert {loc.id for loc in own.items} == {world.loc_a.id, world.loc_b.id}
    granted = await tenancy.list_locations(world.member_actor, PAGE)
    assert [loc.id for loc in granted.items] == [world.loc_a.id]


async def test_list_locations_pages(tenancy: TenancyService, world: World) -> None:
    first = await tenancy.list_locations(world.owner_actor, PageRequest(limit=1))
    assert first.next_cursor is not None
    second = await tenancy.list_locations(world.owner_actor, PageRequest.parse(1, first.next_cursor, None))
    assert second.next_cursor is None
    assert {first.items[0].id, second.items[0].id} == {world.loc_a.id, world.loc_b.id}


async def test_update_location(
    tenancy: TenancyService, world: World, store: InMemoryStore, clock: FixedClock
) -> None:
    clock.advance(timedelta(hours=1))
    updated = await tenancy.update_location(
        world.admin_actor, world.loc_b.id, LocationChanges(name="Beta 2", tier=PlanTier.ENTERPRISE)
    )
    assert (updated.name, updated.tier, updated.timezone) == ("Beta 2", PlanTier.ENTERPRISE, "UTC")
    assert updated.updated_at == clock.now()
    assert updated.updated_by == world.admin.id
    assert store.data.locations[world.loc_b.id].name == "Beta 2"
    [entry] = store.data.audit
    assert entry.action == "update"
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["name"], entry.after["name"]) == ("Beta", "Beta 2")
    assert (entry.before["tier"], entry.after["tier"]) == ("free", "enterprise")
    assert [e.type for e in store.data.events] == ["LocationUpdate"]


async def test_update_location_by_operator(tenancy: TenancyService, world: World, operator: Actor) -> None:
    updated = await tenancy.update_location(
        operator, world.other_location.id, LocationChanges(timezone="Asia/Tokyo", country="jp")
    )
    assert (updated.timezone, updated.country) == ("Asia/Tokyo", "JP")


async def test_update_location_no_op_records_nothing(
    tenancy: TenancyService, world: World, store: InMemoryStore
) -> None:
    commits = store.commits
    same = await tenancy.update_location(world.owner_actor, world.loc_a.id, LocationChanges(name="Alpha"))
    assert same == world.loc_a
    nothing = await tenancy.update_location(world.owner_actor, world.loc_a.id, LocationChanges())
    assert nothing == world.loc_a
    assert store.data.audit == []
    assert store.data.events == []
    assert store.commits == commits


async def test_update_location_refusals(tenancy: TenancyService, world: World, store: InMemoryStore) -> None:
    with pytest.raises(PermissionDenied):
        await tenancy.update_location(world.member_actor, world.loc_a.id, LocationChanges(name="X"))
    with pytest.raises(NotFound):
        await tenancy.update_location(world.other_actor, world.loc_a.id, LocationChanges(name="X"))
    with pytest.raises(ValidationFailed) as exc:
        await tenancy.update_location(
            world.owner_actor, world.loc_a.id, LocationChanges(name="", country="1")
        )
    assert pointers(exc) == ["/name", "/country"]
    assert store.data.locations[world.loc_a.id].name == "Alpha"
    assert store.data.audit == []


async def test_delete_location(
    tenancy: TenancyService, world: World, store: InMemoryStore, clock: FixedClock
) -> None:
    await tenancy.delete_location(world.owner_actor, world.loc_b.id)
    assert store.data.locations[world.loc_b.id].deleted_at == clock.now()
    with pytest.raises(NotFound):
        await tenancy.get_location(world.owner_actor, world.loc_b.id)
    assert [loc.id for loc in (await tenancy.list_locations(world.owner_actor, PAGE)).items] == [
        world.loc_a.id
    ]
    [entry] = store.data.audit
    assert entry.action == "delete"
    assert entry.before is not None
    assert entry.after is not None
    assert entry.before["deleted_at"] is None
    assert entry.after["deleted_at"] == clock.now().isoformat()
    assert [e.type for e in store.data.events] == ["LocationDelete"]
    with pytest.raises(NotFound):
        await tenancy.delete_location(world.owner_actor, world.loc_b.id)


async def test_delete_location_refusals(
    tenancy: TenancyService, world: World, operator: Actor, store: InMemoryStore
) -> None:
    with pytest.raises(NotFound):
        await tenancy.delete_location(world.other_actor, world.loc_a.id)
    with pytest.raises(PermissionDenied):
        await tenancy.delete_location(world.member_actor, world.loc_a.id)
    assert store.data.locations[world.loc_a.id].deleted_at is None
    await tenancy.delete_location(operator, world.loc_a.id)
    assert store.data.locations[world.loc_a.id].deleted_at is not None


# -- users -----------------------------------------------------------------------------------------------


async def test_owner_creates_a_user(tenancy: TenancyService, world: World, store: InMemoryStore) -> None:
    user = await tenancy.create_user(
        world.owner_actor,
        NewUser(
            " New.Person@Acme.IO ",
            "New  Person",
            AgencyRole.ADMIN,
            "long enough password",
            grants=(LocationGrant(world.loc_b.id, LocationRole.ADMIN),),
        ),
        agency_id=world.other_agency.id,  # ignored: an agency user creates in its own agency
    )
    assert (user.email, user.name, user.role, user.agency_id) == (
        "new.person@acme.io",
        "New Person",
        AgencyRole.ADMIN,
        world.agency.id,
    )
    assert user.password_hash == "plain$long enough password"
    assert user.created_by == world.owner.id
    [entry] = store.data.audit
    assert (entry.action, entry.entity_type, entry.location_id) == ("create", "user", None)
    assert entry.after is not None
    assert entry.after["grants"] == {str(world.loc_b.id): "admin"}
    assert "password_hash" not in entry.after
    assert "long enough password" not in repr(entry.after)
    assert [e.type for e in store.data.events] == ["UserCreate"]


async def test_user_without_password(tenancy: TenancyService, world: World) -> None:
    user = await tenancy.create_user(
        world.admin_actor, NewUser("sso@acme.io", "Sso", clerk_user_id="user_123")
    )
    assert user.password_hash is None
    assert user.clerk_user_id == "user_123"
    assert user.role is AgencyRole.USER


async def test_create_user_reports_every_bad_field(
    tenancy: TenancyService, world: World, store: InMemoryStore
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await tenancy.create_user(world.owner_actor, NewUser("not-an-email", " ", password="short"))
    assert pointers(exc) == ["/email", "/name", "/password"]
    assert store.data.audit == []


async def test_create_user_with_foreign_or_deleted_grants(
    tenancy: TenancyService, world: World, store: InMemoryStore
) -> None:
    await tenancy.delete_location(world.owner_actor, world.loc_b.id)
    store.data.audit.clear()
    grants = (
        LocationGrant(world.loc_a.id, LocationRole.USER),
        LocationGrant(world.other_location.id, LocationRole.USER),
        LocationGrant(world.loc_b.id, LocationRole.USER),
        LocationGrant(uuid.uuid4(), LocationRole.USER),
    )
    with pytest.raises(ValidationFailed) as exc:
        await tenancy.create_user(world.owner_actor, NewUser("g@acme.io", "G", grants=grants))
    assert pointers(exc) == [
        "/locations/1/location_id",
        "/locations/2/location_id",
        "/locations/3/location_id",
    ]
    assert not any(u.email == "g@acme.io" for u in store.data.users.values())
    assert store.data.audit == []


async def test_duplicate_email_conflicts_and_writes_nothing(
    tenancy: TenancyService, world: World, store: InMemoryStore
) -> None:
    users = len(store.data.users)
    with pytest.raises(Conflict):
        await tenancy.create_user(world.owner_actor, NewUser("MEMBER@acme.io", "Twin"))
    # Another agency cannot take the address either: e-mail addresses are global.
    with pytest.raises(Conflict):
        await tenancy.create_user(world.other_actor, NewUser("member@acme.io", "Twin"))
    assert len(store.data.users) == users
    assert store.data.audit == []
    assert store.data.events == []


async def test_who_may_create_users(tenancy: TenancyService, world: World, operator: Actor) -> None:
    with pytest.raises(PermissionDenied):
        await tenancy.create_user(world.member_actor, NewUser("x@acme.io", "X"))
    with pytest.raises(PermissionDenied, match="owner"):
        await tenancy.create_user(world.admin_actor, NewUser("x@acme.io", "X", AgencyRole.OWNER))
    second_owner = await tenancy.create_user(world.owner_actor, NewUser("x@acme.io", "X", AgencyRole.OWNER))
    assert second_owner.role is AgencyRole.OWNER
    with pytest.raises(ValidationFailed) as exc:
        await tenancy.create_user(operator, NewUser("y@acme.io", "Y"))
    assert pointers(exc) == ["/agency_id"]
    made = await tenancy.create_user(operator, NewUser("y@acme.io", "Y"), world.other_agency.id)
    assert made.agency_id == world.other_agency.id
    assert made.created_by is None


async def test_get_and_list_users(tenancy: TenancyService, world: World, operator: Actor) -> None:
    got = await tenancy.get_user(world.admin_actor, world.member.id)
    assert got.email == "member@acme.io"
    assert got.grants == [LocationGrant(world.loc_a.id, LocationRole.USER)]
    assert (await tenancy.get_user(operator, world.other_owner.id)).id == world.other_owner.id
    with pytest.raises(NotFound):
        await tenancy.get_user(world.owner_actor, world.other_owner.id)
    with pytest.raises(NotFound):
        await tenancy.get_user(world.owner_actor, uuid.uuid4())
    with pytest.raises(PermissionDenied):
        await tenancy.get_user(world.member_actor, world.owner.id)
    own = await tenancy.list_users(world.owner_actor, PAGE)
    assert {u.id for u in own.items} == {world.owner.id, world.admin.id, world.member.id}
    every = await tenancy.list_users(operator, PAGE)
    assert len(every.items) == 4
    with pytest.raises(PermissionDenied):
        await tenancy.list_users(world.member_actor, PAGE)


async def test_update_user(
    tenancy: TenancyService, world: World, store: InMemoryStore, clock: FixedClock
) -> None:
    clock.advance(timedelta(minutes=3))
    updated = await tenancy.update_user(
        world.admin_actor, world.member.id, name=" Mia  M. ", role=AgencyRole.ADMIN
    )
    assert (updated.name, updated.role) == ("Mia M.", AgencyRole.ADMIN)
    assert updated.updated_at == clock.now()
    assert updated.updated_by == world.admin.id
    assert updated.grants == world.member.grants
    stored = store.data.users[world.member.id]
    assert (stored.name, stored.role, stored.password_hash) == (
        "Mia M.",
        AgencyRole.ADMIN,
        "plain$" + PASSWORD,
    )
    [entry] = store.data.audit
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["role"], entry.after["role"]) == ("agency_user", "agency_admin")
    assert (entry.action, entry.entity_id) == ("update", world.member.id)
    assert [e.type for e in store.data.events] == ["UserUpdate"]


async def test_update_user_no_op(tenancy: TenancyService, world: World, store: InMemoryStore) -> None:
    same = await tenancy.update_user(world.owner_actor, world.member.id, name="Mia Member")
    assert same.name == "Mia Member"
    assert await tenancy.update_user(world.owner_actor, world.member.id) == same
    assert store.data.audit == []


async def test_owner_protections_on_update(
    tenancy: TenancyService, world: World, store: InMemoryStore
) -> None:
    with pytest.raises(PermissionDenied):
        await tenancy.update_user(world.admin_actor, world.owner.id, role=AgencyRole.USER)
    with pytest.raises(PermissionDenied):
        await tenancy.update_user(world.admin_actor, world.admin.id, role=AgencyRole.OWNER)
    with pytest.raises(PermissionDenied):
        await tenancy.update_user(world.member_actor, world.member.id, name="Me")
    assert store.data.users[world.owner.id].role is AgencyRole.OWNER
    renamed = await tenancy.update_user(world.admin_actor, world.owner.id, name="Olive O.")
    assert renamed.role is AgencyRole.OWNER
    demoted = await tenancy.update_user(world.owner_actor, world.admin.id, role=AgencyRole.USER)
    assert demoted.role is AgencyRole.USER
    promoted = await tenancy.update_user(world.owner_actor, world.member.id, role=AgencyRole.OWNER)
    assert promoted.role is AgencyRole.OWNER


async def test_update_user_refusals(tenancy: TenancyService, world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await tenancy.update_user(world.owner_actor, world.member.id, name="  ")
    assert pointers(exc) == ["/name"]
    with pytest.raises(NotFound):
        await tenancy.update_user(world.other_actor, world.member.id, name="Stolen")


async def test_delete_user(
    tenancy: TenancyService, auth: AuthService, world: World, store: InMemoryStore, clock: FixedClock
) -> None:
    tokens = await auth.log_in("member@acme.io", PASSWORD)
    store.data.audit.clear()
    await tenancy.delete_user(world.owner_actor, world.member.id)
    assert store.data.users[world.member.id].deleted_at == clock.now()
    with pytest.raises(NotFound):
        await tenancy.get_user(world.owner_actor, world.member.id)
    assert world.member.id not in {u.id for u in (await tenancy.list_users(world.owner_actor, PAGE)).items}
    [entry] = store.data.audit
    assert entry.action == "delete"
    assert [e.type for e in store.data.events] == ["UserDelete"]
    assert all(
        t.revoked_at == clock.now()
        for t in store.data.refresh_tokens.values()
        if t.user_id == world.member.id
    )
    assert any(t.user_id == world.member.id for t in store.data.refresh_tokens.values())
    assert tokens.refresh_token
    # The address is free again.
    again = await tenancy.create_user(world.owner_actor, NewUser("member@acme.io", "Mia Again"))
    assert again.id != world.member.id
    with pytest.raises(NotFound):
        await tenancy.delete_user(world.owner_actor, world.member.id)


async def test_delete_user_refusals(tenancy: TenancyService, world: World, store: InMemoryStore) -> None:
    with pytest.raises(Conflict, match="yourself"):
        await tenancy.delete_user(world.owner_actor, world.owner.id)
    with pytest.raises(PermissionDenied):
        await tenancy.delete_user(world.admin_actor, world.owner.id)
    with pytest.raises(PermissionDenied):
        await tenancy.delete_user(world.member_actor, world.admin.id)
    with pytest.raises(NotFound):
        await tenancy.delete_user(world.other_actor, world.member.id)
    assert all(u.deleted_at is None for u in store.data.users.values())
    await tenancy.delete_user(world.admin_actor, world.member.id)
    assert store.data.users[world.member.id].deleted_at is not None


async def test_grant_and_revoke_location(tenancy: TenancyService, world: World, store: InMemoryStore) -> None:
    user = await tenancy.grant_location(
        world.owner_actor, world.member.id, world.loc_b.id, LocationRole.ADMIN
    )
    assert set(user.grants) == {
        LocationGrant(world.loc_a.id, LocationRole.USER),
        LocationGrant(world.loc_b.id, LocationRole.ADMIN),
    }
    assert (await tenancy.get_location(world.member_actor, world.loc_b.id)).id == world.loc_b.id
    # Granting again replaces the role instead of adding a second grant.
    user = await tenancy.grant_location(
        world.owner_actor, world.member.id, world.loc_a.id, LocationRole.ADMIN
    )
    assert sorted(g.role.value for g in user.grants) == ["admin", "admin"]
    assert len(store.data.audit) == 2
    # The same grant twice changes nothing and records nothing.
    await tenancy.grant_location(world.owner_actor, world.member.id, world.loc_a.id, LocationRole.ADMIN)
    assert len(store.data.audit) == 2
    user = await tenancy.revoke_location(world.admin_actor, world.member.id, world.loc_b.id)
    assert user.grants == [LocationGrant(world.loc_a.id, LocationRole.ADMIN)]
    assert store.data.users[world.member.id].grants == user.grants
    with pytest.raises(NotFound):
        await tenancy.get_location(world.member_actor, world.loc_b.id)
    last = store.data.audit[-1]
    assert last.before is not None
    assert last.after is not None
    assert str(world.loc_b.id) in last.before["grants"]
    assert str(world.loc_b.id) not in last.after["grants"]


async def test_grant_refusals(tenancy: TenancyService, world: World, store: InMemoryStore) -> None:
    with pytest.raises(NotFound):
        await tenancy.grant_location(
            world.owner_actor, world.member.id, world.other_location.id, LocationRole.USER
        )
    with pytest.raises(NotFound):
        await tenancy.grant_location(world.owner_actor, world.member.id, uuid.uuid4(), LocationRole.USER)
    with pytest.raises(NotFound):
        await tenancy.grant_location(world.other_actor, world.member.id, world.loc_b.id, LocationRole.USER)
    with pytest.raises(PermissionDenied):
        await tenancy.grant_location(world.member_actor, world.member.id, world.loc_b.id, LocationRole.ADMIN)
    await tenancy.delete_location(world.owner_actor, world.loc_b.id)
    with pytest.raises(NotFound):
        await tenancy.grant_location(world.owner_actor, world.member.id, world.loc_b.id, LocationRole.USER)
    with pytest.raises(NotFound, match="no grant"):
        await tenancy.revoke_location(world.owner_actor, world.admin.id, world.loc_a.id)
    assert store.data.users[world.member.id].grants == [LocationGrant(world.loc_a.id, LocationRole.USER)]


async def test_operator_manages_any_agency_users(
    tenancy: TenancyService, world: World, operator: Actor
) -> None:
    user = await tenancy.grant_location(
        operator, world.other_owner.id, world.other_location.id, LocationRole.USER
    )
    assert user.grants == [LocationGrant(world.other_location.id, LocationRole.USER)]
    with pytest.raises(Conflict, match="at least one owner"):
        await tenancy.delete_user(operator, world.other_owner.id)
    successor = NewUser("successor@other.io", "Sam Successor", role=AgencyRole.OWNER)
    await tenancy.create_user(operator, successor, agency_id=world.other_agency.id)
    await tenancy.delete_user(operator, world.other_owner.id)
    with pytest.raises(NotFound):
        await tenancy.get_user(operator, world.other_owner.id)


def test_user_actor_helper(world: World) -> None:
    assert user_actor(world.owner).agency_role is AgencyRole.OWNER


async def test_an_agency_keeps_at_least_one_owner(
    tenancy: TenancyService, world: World, store: InMemoryStore
) -> None:
    with pytest.raises(Conflict, match="at least one owner"):
        await tenancy.update_user(world.owner_actor, world.owner.id, role=AgencyRole.ADMIN)
    assert store.data.users[world.owner.id].role is AgencyRole.OWNER
    # With a second owner, either may step down or be removed, but not the last one left.
    await tenancy.update_user(world.owner_actor, world.member.id, role=AgencyRole.OWNER)
    await tenancy.update_user(world.owner_actor, world.owner.id, role=AgencyRole.ADMIN)
    second_owner = user_actor(store.data.users[world.member.id])
    with pytest.raises(Conflict, match="at least one owner"):
        await tenancy.update_user(second_owner, world.member.id, role=AgencyRole.USER)
    await tenancy.update_user(second_owner, world.admin.id, role=AgencyRole.OWNER)
    await tenancy.delete_user(second_owner, world.admin.id)
    assert store.data.users[world.member.id].role is AgencyRole.OWNER
