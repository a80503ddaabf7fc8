"""Transactions, tenancy, identity and the audit trail: one contract over the in-memory and the SQL
implementation (see conftest.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from contract_world import NOW, World

from ghl_core.identity.models import ApiKey, RefreshToken
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.errors import Conflict
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import PageRequest
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.models import AgencyRole, LocationGrant, LocationRole, User
from ghl_core.tenancy.permissions import Permission


def _user(agency_id: uuid.UUID, email: str | None = None, **fields: object) -> User:
    return User(
        id=uuid.uuid4(),
        agency_id=agency_id,
        email=email or f"{uuid.uuid4().hex[:10]}@contract.test",
        name="Uma User",
        role=AgencyRole.USER,
        created_at=NOW,
        updated_at=NOW,
        **fields,  # type: ignore[arg-type]
    )


def _key(world: World, **fields: object) -> ApiKey:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "location_id": world.location_id,
        "agency_id": world.agency_id,
        "name": "key",
        "prefix": "ghl_abcd",
        "key_hash": uuid.uuid4().hex,
        "scopes": frozenset({Permission.CONTACTS_READ}),
        "created_at": NOW,
        **fields,
    }
    return ApiKey(**values)  # type: ignore[arg-type]


async def test_changes_are_seen_after_commit_and_dropped_without(world: World) -> None:
    agency = TenantScope.agency(world.agency_id)
    kept, dropped = _user(world.agency_id), _user(world.agency_id)
    async with world.uow(agency) as uow:
        await uow.users.add(kept)
        await uow.commit()
    async with world.uow(agency) as uow:
        await uow.users.add(dropped)
    async with world.uow(agency) as uow:
        assert await uow.users.get(kept.id) == kept
        assert await uow.users.get(dropped.id) is None


async def test_an_uncommitted_change_is_not_seen_by_another_unit_of_work(world: World) -> None:
    agency = TenantScope.agency(world.agency_id)
    user = _user(world.agency_id)
    async with world.uow(agency) as uow:
        await uow.users.add(user)
        async with world.uow(agency) as other:
            assert await other.users.get(user.id) is None
        await uow.commit()


async def test_a_location_scope_sees_its_own_location_only(world: World) -> None:
    async with world.uow(world.scope) as uow:
        assert (await uow.locations.get(world.location_id)) is not None
        assert await uow.locations.get(world.other_location_id) is None
    async with world.uow(TenantScope.agency(world.agency_id)) as uow:
        page = await uow.locations.list(world.agency_id, PageRequest())
        assert [loc.id for loc in page.items] == [world.location_id]
        assert await uow.agencies.get(world.other_agency_id) is None


async def test_users_are_unique_by_email_while_live_and_carry_their_grants(world: World) -> None:
    agency = TenantScope.agency(world.agency_id)
    user = _user(world.agency_id, grants=[LocationGrant(world.location_id, LocationRole.ADMIN)])
    async with world.uow(agency) as uow:
        await uow.users.add(user)
        await uow.commit()
    async with world.uow(agency) as uow:
        with pytest.raises(Conflict):
            await uow.users.add(_user(world.agency_id, email=user.email))
    async with world.uow(agency) as uow:
        await uow.users.bump_token_version(user.id)
        assert await uow.users.grants_for_location(world.location_id) == [
            (user.id, LocationGrant(world.location_id, LocationRole.ADMIN))
        ]
        await uow.commit()
    async with world.uow(TenantScope.anonymous()) as uow:
        credential = await uow.credentials.user_by_email(user.email)
        assert credential is not None
        assert (credential.id, credential.token_version, credential.disabled) == (user.id, 1, False)
        access = await uow.credentials.location_access(user.id, world.location_id)
        assert access == ("admin", "enterprise")
        assert await uow.credentials.location_access(user.id, world.other_location_id) is None


async def test_api_keys_count_list_and_look_up(world: World) -> None:
    live, revoked = _key(world), _key(world)
    async with world.uow(world.scope) as uow:
        await uow.api_keys.add(live)
        await uow.api_keys.add(revoked)
        revoked.revoked_at = NOW  # only the name and the revocation are writable, by update
        await uow.api_keys.update(revoked)
        await uow.commit()
    async with world.uow(world.scope) as uow:
        assert await uow.api_keys.count_live(world.location_id) == 1
        listed = await uow.api_keys.list(world.location_id, PageRequest())
        assert [k.id for k in listed.items] == [live.id]
        everything = await uow.api_keys.list(world.location_id, PageRequest(), include_revoked=True)
        assert {k.id for k in everything.items} == {live.id, revoked.id}
    async with world.uow(world.other_scope) as uow:
        assert await uow.api_keys.get(live.id) is None
    async with world.uow(TenantScope.anonymous()) as uow:
        found = await uow.credentials.api_key(live.key_hash)
        assert found is not None
        assert (found.location_id, found.revoked) == (world.location_id, False)
        gone = await uow.credentials.api_key(revoked.key_hash)
        assert gone is not None
        assert gone.revoked


async def test_a_refresh_token_rotates_once(world: World) -> None:
    agency = TenantScope.agency(world.agency_id)
    user = _user(world.agency_id)
    token = RefreshToken(
        id=uuid.uuid4(),
        user_id=user.id,
        agency_id=world.agency_id,
        family_id=uuid.uuid4(),
        token_hash=uuid.uuid4().hex,
        expires_at=NOW + timedelta(days=30),
        created_at=NOW,
    )
    async with world.uow(agency) as uow:
        await uow.users.add(user)
        await uow.refresh_tokens.add(token)
        await uow.commit()
    async with world.uow(agency) as uow:
        assert await uow.refresh_tokens.mark_rotated(token.id, NOW)
        assert not await uow.refresh_tokens.mark_rotated(token.id, NOW)
        await uow.refresh_tokens.revoke_family(token.family_id, NOW)
        await uow.commit()
    async with world.uow(TenantScope.anonymous()) as uow:
        found = await uow.credentials.refresh_token(token.token_hash)
        assert found is not None
        assert (found.rotated_at, found.revoked_at) == (NOW, NOW)


async def test_the_audit_trail_lists_newest_first_by_entity(world: World) -> None:
    entity = uuid.uuid4()

    def entry(minutes: int, entity_id: uuid.UUID) -> AuditEntry:
        return AuditEntry(
            agency_id=world.agency_id,
            location_id=world.location_id,
            actor_type="operator",
            actor_id=None,
            action="update",
            entity_type="contact",
            entity_id=entity_id,
            before=None,
            after={"n": minutes},
            created_at=NOW + timedelta(minutes=minutes),
        )

    entries = [entry(0, entity), entry(1, uuid.uuid4()), entry(2, entity)]
    event = DomainEvent("ContactUpdate", world.agency_id, world.location_id, entity, {}, NOW)
    async with world.uow(world.scope) as uow:
        for e in entries:
            await uow.audit.record(e)
        await uow.events.add(event)
        await uow.events.add_many([])
        await uow.commit()
    async with world.uow(world.scope) as uow:
        page = await uow.audit.list(world.location_id, PageRequest(limit=2))
        assert [e.id for e in page.items] == [entries[2].id, entries[1].id]
        assert page.next_cursor is not None
        mine = await uow.audit.list(world.location_id, PageRequest(), entity_id=entity)
        assert [e.id for e in mine.items] == [entries[2].id, entries[0].id]
        since = await uow.audit.list(world.location_id, PageRequest(), since=NOW + timedelta(minutes=1))
        assert len(since.items) == 2
    async with world.uow(world.other_scope) as uow:
        assert (await uow.audit.list(world.location_id, PageRequest())).items == []
