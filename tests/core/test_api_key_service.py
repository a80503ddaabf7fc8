"""ApiKeyService and parse_scopes: keys belong to one location and never exceed their creator."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from fakes import InMemoryStore
from ghl_core.identity.api_keys import ApiKeyService, parse_scopes
from ghl_core.identity.models import API_KEY_PREFIX
from ghl_core.identity.secrets import DISPLAY_PREFIX_LENGTH, secret_hash
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import NotFound, PermissionDenied, ValidationFailed
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import LocationRole
from ghl_core.tenancy.permissions import LOCATION_SCOPES, Actor, ActorKind, Permission
from ghl_core.tenancy.services import TenancyService
from world import World, location_actor

PAGE = PageRequest(limit=100)


def pointers(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.pointer for e in exc.value.errors]


def key_actor(world: World, location_id: uuid.UUID, *scopes: Permission) -> Actor:
    return Actor(
        ActorKind.API_KEY, uuid.uuid4(), world.agency.id, location_id=location_id, scopes=frozenset(scopes)
    )


def test_parse_scopes() -> None:
    assert parse_scopes(None) == LOCATION_SCOPES
    assert parse_scopes(["contacts:read", "contacts:read", "audit:read"]) == {
        Permission.CONTACTS_READ,
        Permission.AUDIT_READ,
    }


def test_parse_scopes_reports_every_bad_entry() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_scopes(["contacts:read", "contacts:delete", "users:write", "nope"], pointer="/body/scopes")
    assert pointers(exc) == ["/body/scopes/1", "/body/scopes/2", "/body/scopes/3"]
    assert "agency permission" in exc.value.errors[1].detail
    assert "unknown scope 'nope'" in exc.value.errors[2].detail


def test_parse_scopes_refuses_an_empty_list() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_scopes([])
    assert pointers(exc) == ["/scopes"]


async def test_operator_creates_a_key_for_a_named_location(
    api_keys: ApiKeyService, operator: Actor, world: World, store: InMemoryStore, clock: FixedClock
) -> None:
    key, secret = await api_keys.create(operator, " Zapier  sync ", location_id=world.loc_a.id)
    assert secret.startswith(API_KEY_PREFIX)
    assert key.prefix == secret[:DISPLAY_PREFIX_LENGTH]
    assert key.key_hash == secret_hash(secret)
    assert secret not in repr(key.snapshot())
    assert (key.name, key.location_id, key.agency_id) == ("Zapier sync", world.loc_a.id, world.agency.id)
    assert key.scopes == LOCATION_SCOPES
    assert key.created_at == clock.now()
    assert key.created_by is None
    assert store.data.api_keys[key.id].key_hash == secret_hash(secret)
    [entry] = store.data.audit
    assert (entry.action, entry.entity_type, entry.location_id) == ("create", "api_key", world.loc_a.id)
    assert entry.after == key.snapshot()
    assert store.data.events == []


async def test_operator_must_name_the_location(
    api_keys: ApiKeyService, operator: Actor, world: World
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await api_keys.create(operator, "k")
    assert pointers(exc) == ["/location_id"]
    with pytest.raises(ValidationFailed):
        await api_keys.list(operator, PAGE)
    with pytest.raises(NotFound):
        await api_keys.create(operator, "k", location_id=uuid.uuid4())


async def test_no_key_for_a_deleted_location(
    api_keys: ApiKeyService, tenancy: TenancyService, operator: Actor, world: World, store: InMemoryStore
) -> None:
    await tenancy.delete_location(operator, world.loc_b.id)
    with pytest.raises(NotFound):
        await api_keys.create(operator, "k", location_id=world.loc_b.id)
    assert store.data.api_keys == {}


async def test_a_key_creates_keys_within_its_own_scopes(
    api_keys: ApiKeyService, world: World, store: InMemoryStore
) -> None:
    creator = key_actor(world, world.loc_a.id, Permission.APIKEYS_WRITE, Permission.CONTACTS_READ)
    key, _ = await api_keys.create(creator, "child", frozenset({Permission.CONTACTS_READ}), world.loc_b.id)
    # A location credential always creates in its own location, whatever it names.
    assert key.location_id == world.loc_a.id
    assert key.created_by == creator.id
    with pytest.raises(ValidationFailed) as exc:
        await api_keys.create(creator, "wider", frozenset({Permission.CONTACTS_WRITE, Permission.AUDIT_READ}))
    assert pointers(exc) == ["/scopes"]
    assert "audit:read, contacts:write" in str(exc.value)
    with pytest.raises(ValidationFailed):
        await api_keys.create(creator, "everything")  # None means every location scope
    assert len(store.data.api_keys) == 1


async def test_location_admin_may_create_a_full_key(api_keys: ApiKeyService, world: World) -> None:
    admin_token = location_actor(world.member, world.loc_a.id, LocationRole.ADMIN)
    key, _ = await api_keys.create(admin_token, "all")
    assert key.scopes == LOCATION_SCOPES
    assert key.location_id == world.loc_a.id


async def test_who_may_not_create_keys(api_keys: ApiKeyService, world: World) -> None:
    with pytest.raises(PermissionDenied):
        await api_keys.create(world.owner_actor, "k")  # agency-level: no location
    user_token = location_actor(world.member, world.loc_a.id, LocationRole.USER)
    with pytest.raises(PermissionDenied):
        await api_keys.create(user_token, "k")
    with pytest.raises(PermissionDenied):
        await api_keys.create(key_actor(world, world.loc_a.id, Permission.APIKEYS_READ), "k")
    with pytest.raises(ValidationFailed) as exc:
        await api_keys.create(key_actor(world, world.loc_a.id, Permission.APIKEYS_WRITE), "  ")
    assert pointers(exc) == ["/name"]


async def test_list_and_revoke(
    api_keys: ApiKeyService, operator: Actor, world: World, store: InMemoryStore, clock: FixedClock
) -> None:
    first, _ = await api_keys.create(operator, "first", location_id=world.loc_a.id)
    clock.advance(timedelta(seconds=1))
    second, _ = await api_keys.create(operator, "second", location_id=world.loc_a.id)
    elsewhere, _ = await api_keys.create(operator, "b", location_id=world.loc_b.id)
    admin = key_actor(world, world.loc_a.id, Permission.APIKEYS_READ, Permission.APIKEYS_WRITE)
    assert [k.id for k in (await api_keys.list(admin, PAGE)).items] == [first.id, second.id]

    clock.advance(timedelta(minutes=1))
    revoked = await api_keys.revoke(admin, first.id)
    assert revoked.revoked_at == clock.now()
    assert store.data.api_keys[first.id].revoked_at == clock.now()
    entry = store.data.audit[-1]
    assert (entry.action, entry.entity_id) == ("revoke", first.id)
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["revoked_at"], entry.after["revoked_at"]) == (None, clock.now().isoformat())

    assert [k.id for k in (await api_keys.list(admin, PAGE)).items] == [second.id]
    listed = await api_keys.list(admin, PAGE, include_revoked=True)
    assert [k.id for k in listed.items] == [first.id, second.id]
    by_operator = await api_keys.list(operator, PAGE, location_id=world.loc_b.id)
    assert [k.id for k in by_operator.items] == [elsewhere.id]


async def test_revoke_is_idempotent(
    api_keys: ApiKeyService, operator: Actor, world: World, store: InMemoryStore, clock: FixedClock
) -> None:
    key, _ = await api_keys.create(operator, "k", location_id=world.loc_a.id)
    first = await api_keys.revoke(operator, key.id)
    audits = len(store.data.audit)
    clock.advance(timedelta(hours=1))
    again = await api_keys.revoke(operator, key.id, location_id=world.loc_a.id)
    assert again.revoked_at == first.revoked_at
    assert len(store.data.audit) == audits


async def test_another_locations_key_is_not_found(
    api_keys: ApiKeyService, operator: Actor, world: World, store: InMemoryStore
) -> None:
    key, _ = await api_keys.create(operator, "k", location_id=world.loc_b.id)
    intruder = key_actor(world, world.loc_a.id, Permission.APIKEYS_WRITE)
    with pytest.raises(NotFound):
        await api_keys.revoke(intruder, key.id)
    with pytest.raises(NotFound):
        await api_keys.revoke(operator, key.id, location_id=world.loc_a.id)
    with pytest.raises(NotFound):
        await api_keys.revoke(operator, uuid.uuid4())
    with pytest.raises(PermissionDenied):
        await api_keys.revoke(key_actor(world, world.loc_b.id, Permission.APIKEYS_READ), key.id)
    assert store.data.api_keys[key.id].revoked_at is None


async def test_keys_never_carry_agency_permissions(
    api_keys: ApiKeyService, operator: Actor, world: World
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await api_keys.create(
            operator,
            "too wide",
            frozenset({Permission.CONTACTS_READ, Permission.USERS_WRITE}),
            location_id=world.loc_a.id,
        )
    assert exc.value.errors[0].pointer == "/scopes"
    assert "users:write" in exc.value.errors[0].detail
