"""AuthService: sign-up, log-in with throttling, refresh rotation, location tokens, bearer credentials."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from fakes import (
    FakeExternalVerifier,
    FakePasswordHasher,
    FakeTokenCodec,
    InMemoryCache,
    InMemoryFailureCounter,
    InMemoryStore,
)
from ghl_core.identity.api_keys import ApiKeyService
from ghl_core.identity.auth import API_KEY_TOUCH_INTERVAL, LOGIN_MAX_FAILURES, AuthService, describe
from ghl_core.identity.secrets import REFRESH_TOKEN_PREFIX, secret_hash
from ghl_core.shared.cache import user_cache_key
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)
from ghl_core.tenancy.models import AgencyRole, LocationRole, PlanTier
from ghl_core.tenancy.permissions import LOCATION_SCOPES, Actor, ActorKind, Permission
from ghl_core.tenancy.services import LocationChanges, NewUser, TenancyService
from world import PASSWORD, World, location_actor

MEMBER = "member@acme.io"


def family_of(store: InMemoryStore, refresh_token: str) -> uuid.UUID:
    [token] = [t for t in store.data.refresh_tokens.values() if t.token_hash == secret_hash(refresh_token)]
    family: uuid.UUID = token.family_id  # the store's views are untyped rows
    return family


# -- sign-up ---------------------------------------------------------------------------------------------


async def test_sign_up(
    auth: AuthService, store: InMemoryStore, codec: FakeTokenCodec, clock: FixedClock
) -> None:
    result = await auth.sign_up(" New  Agency ", "Founder@Startup.IO", PASSWORD, " Fay Founder ")
    agency, user, tokens = result.agency, result.user, result.tokens
    assert agency.name == "New Agency"
    assert (user.email, user.name, user.role, user.agency_id) == (
        "founder@startup.io",
        "Fay Founder",
        AgencyRole.OWNER,
        agency.id,
    )
    assert user.password_hash == "plain$" + PASSWORD
    assert user.created_by == user.id
    assert store.data.agencies[agency.id] == agency
    assert store.data.users[user.id].email == "founder@startup.io"
    assert [(e.entity_type, e.action, e.actor_type, e.actor_id) for e in store.data.audit] == [
        ("agency", "create", "user", user.id),
        ("user", "create", "user", user.id),
    ]
    assert [e.type for e in store.data.events] == ["AgencyCreate", "UserCreate"]
    claims = codec.verify(tokens.access_token)
    assert (claims.user_id, claims.agency_id, claims.agency_role) == (user.id, agency.id, AgencyRole.OWNER)
    assert claims.location_id is None
    assert tokens.expires_in == 15 * 60
    assert tokens.token_type == "Bearer"
    assert tokens.refresh_token.startswith(REFRESH_TOKEN_PREFIX)
    [stored] = store.data.refresh_tokens.values()
    assert stored.token_hash == secret_hash(tokens.refresh_token)
    assert stored.expires_at == clock.now() + timedelta(days=30)
    assert tokens.refresh_token not in repr(store.data)


async def test_sign_up_lists_every_bad_field(auth: AuthService, store: InMemoryStore) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await auth.sign_up(" ", "nope", "short", "")
    assert [e.pointer for e in exc.value.errors] == ["/agency_name", "/email", "/name", "/password"]
    assert store.data.agencies == {}
    assert store.commits == 0


async def test_sign_up_with_a_taken_email_leaves_nothing(
    auth: AuthService, world: World, store: InMemoryStore
) -> None:
    agencies = set(store.data.agencies)
    with pytest.raises(Conflict):
        await auth.sign_up("Copycat", MEMBER.upper(), PASSWORD, "Copy Cat")
    assert set(store.data.agencies) == agencies
    assert store.data.audit == []
    assert store.data.refresh_tokens == {}


# -- log-in ----------------------------------------------------------------------------------------------


async def test_log_in(auth: AuthService, world: World, codec: FakeTokenCodec, store: InMemoryStore) -> None:
    tokens = await auth.log_in("  Member@ACME.io ", PASSWORD)
    claims = codec.verify(tokens.access_token)
    assert (claims.user_id, claims.agency_id, claims.agency_role) == (
        world.member.id,
        world.agency.id,
        AgencyRole.USER,
    )
    [token] = store.data.refresh_tokens.values()
    assert token.user_id == world.member.id
    assert token.token_hash == secret_hash(tokens.refresh_token)


@pytest.mark.parametrize(
    ("email", "password"),
    [(MEMBER, "wrong password!"), ("nobody@acme.io", PASSWORD), ("not an address", PASSWORD), ("", "")],
)
async def test_log_in_failures_look_alike(
    auth: AuthService, world: World, hasher: FakePasswordHasher, email: str, password: str
) -> None:
    with pytest.raises(Unauthenticated) as exc:
        await auth.log_in(email, password)
    assert exc.value.detail == "wrong e-mail address or password"


async def test_unknown_email_still_verifies_a_hash(
    auth: AuthService, world: World, hasher: FakePasswordHasher
) -> None:
    before = hasher.verified
    with pytest.raises(Unauthenticated):
        await auth.log_in("nobody@acme.io", PASSWORD)
    assert hasher.verified == before + 1


async def test_disabled_and_passwordless_users_cannot_log_in(
    auth: AuthService, tenancy: TenancyService, world: World, store: InMemoryStore
) -> None:
    await tenancy.create_user(world.owner_actor, NewUser("sso@acme.io", "Sso", clerk_user_id="user_sso"))
    with pytest.raises(Unauthenticated):
        await auth.log_in("sso@acme.io", "")
    store.data.deleted_agencies.add(world.agency.id)
    with pytest.raises(Unauthenticated):
        await auth.log_in(MEMBER, PASSWORD)
    assert store.data.refresh_tokens == {}


async def test_throttled_after_five_failures(auth: AuthService, world: World, clock: FixedClock) -> None:
    assert LOGIN_MAX_FAILURES == 5
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await auth.log_in(MEMBER, "wrong password!")
    clock.advance(timedelta(seconds=100))
    # Even the right password is refused while the window lasts, and the caller is told how long.
    with pytest.raises(TooManyRequests) as exc:
        await auth.log_in(MEMBER.upper(), PASSWORD)
    assert exc.value.retry_after == 15 * 60 - 100
    # Other addresses are not affected.
    assert await auth.log_in("admin@acme.io", PASSWORD)
    clock.advance(timedelta(seconds=15 * 60 - 100))
    assert await auth.log_in(MEMBER, PASSWORD)


async def test_unknown_addresses_are_throttled_too(
    auth: AuthService, failures: InMemoryFailureCounter
) -> None:
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await auth.log_in("ghost@acme.io", PASSWORD)
    with pytest.raises(TooManyRequests):
        await auth.log_in("ghost@acme.io", PASSWORD)
    assert (await failures.failures("login:ghost@acme.io"))[0] == 5


async def test_success_clears_the_failures(
    auth: AuthService, world: World, failures: InMemoryFailureCounter
) -> None:
    for _ in range(4):
        with pytest.raises(Unauthenticated):
            await auth.log_in(MEMBER, "wrong password!")
    await auth.log_in(MEMBER, PASSWORD)
    assert await failures.failures(f"login:{MEMBER}") == (0, 0)
    for _ in range(4):
        with pytest.raises(Unauthenticated):
            await auth.log_in(MEMBER, "wrong password!")
    assert await auth.log_in(MEMBER, PASSWORD)


async def test_log_in_rehashes_an_outdated_hash(
    auth: AuthService, world: World, store: InMemoryStore, hasher: FakePasswordHasher
) -> None:
    store.data.users[world.member.id].password_hash = "old$" + PASSWORD
    await auth.log_in(MEMBER, PASSWORD)
    assert store.data.users[world.member.id].password_hash == "plain$" + PASSWORD
    # A current hash is left alone.
    hashed = len(hasher.hashed)
    await auth.log_in(MEMBER, PASSWORD)
    assert len(hasher.hashed) == hashed


# -- refresh tokens --------------------------------------------------------------------------------------


async def test_refresh_rotates(
    auth: AuthService, world: World, store: InMemoryStore, codec: FakeTokenCodec, clock: FixedClock
) -> None:
    first = await auth.log_in(MEMBER, PASSWORD)
    clock.advance(timedelta(minutes=20))
    second = await auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert codec.verify(second.access_token).user_id == world.member.id
    assert family_of(store, first.refresh_token) == family_of(store, second.refresh_token)
    old = next(
        t for t in store.data.refresh_tokens.values() if t.token_hash == secret_hash(first.refresh_token)
    )
    assert old.rotated_at == clock.now()
    assert old.revoked_at is None
    third = await auth.refresh(second.refresh_token)
    assert third.refresh_token not in {first.refresh_token, second.refresh_token}


async def test_refresh_carries_the_current_role(
    auth: AuthService, tenancy: TenancyService, world: World, codec: FakeTokenCodec
) -> None:
    tokens = await auth.log_in(MEMBER, PASSWORD)
    await tenancy.update_user(world.owner_actor, world.member.id, role=AgencyRole.ADMIN)
    pair = await auth.refresh(tokens.refresh_token)
    assert codec.verify(pair.access_token).agency_role is AgencyRole.ADMIN


async def test_replaying_a_rotated_token_revokes_the_family(
    auth: AuthService, world: World, store: InMemoryStore
) -> None:
    stolen = await auth.log_in(MEMBER, PASSWORD)
    other_session = await auth.log_in(MEMBER, PASSWORD)
    current = await auth.refresh(stolen.refresh_token)
    with pytest.raises(Unauthenticated, match="already used"):
        await auth.refresh(stolen.refresh_token)
    family = family_of(store, stolen.refresh_token)
    assert all(t.revoked_at is not None for t in store.data.refresh_tokens.values() if t.family_id == family)
    with pytest.raises(Unauthenticated, match="revoked"):
        await auth.refresh(current.refresh_token)
    # Another log-in is another family: untouched.
    assert await auth.refresh(other_session.refresh_token)


async def test_expired_revoked_and_unknown_refresh_tokens(
    auth: AuthService, world: World, clock: FixedClock
) -> None:
    with pytest.raises(Unauthenticated):
        await auth.refresh(REFRESH_TOKEN_PREFIX + "unknown")
    tokens = await auth.log_in(MEMBER, PASSWORD)
    clock.advance(timedelta(days=30))
    with pytest.raises(Unauthenticated, match="expired"):
        await auth.refresh(tokens.refresh_token)
    tokens = await auth.log_in(MEMBER, PASSWORD)
    await auth.log_out(tokens.refresh_token)
    with pytest.raises(Unauthenticated, match="revoked"):
        await auth.refresh(tokens.refresh_token)


async def test_refresh_ttl_is_configurable(
    store: InMemoryStore,
    clock: FixedClock,
    hasher: FakePasswordHasher,
    codec: FakeTokenCodec,
    failures: InMemoryFailureCounter,
    world: World,
) -> None:
    short = AuthService(store, clock, hasher, codec, failures, refresh_ttl=timedelta(hours=1))
    tokens = await short.log_in(MEMBER, PASSWORD)
    clock.advance(timedelta(minutes=59))
    tokens = await short.refresh(tokens.refresh_token)
    clock.advance(timedelta(hours=1))
    with pytest.raises(Unauthenticated):
        await short.refresh(tokens.refresh_token)


async def test_refresh_for_deleted_or_disabled_users(
    auth: AuthService, tenancy: TenancyService, world: World, store: InMemoryStore
) -> None:
    admin_tokens = await auth.log_in("admin@acme.io", PASSWORD)
    member_tokens = await auth.log_in(MEMBER, PASSWORD)
    await tenancy.delete_user(world.owner_actor, world.member.id)
    with pytest.raises(Unauthenticated, match="invalid"):
        await auth.refresh(member_tokens.refresh_token)
    store.data.deleted_agencies.add(world.agency.id)
    with pytest.raises(Unauthenticated, match="invalid"):
        await auth.refresh(admin_tokens.refresh_token)


async def test_log_out(auth: AuthService, world: World, store: InMemoryStore, clock: FixedClock) -> None:
    first = await auth.log_in(MEMBER, PASSWORD)
    second = await auth.refresh(first.refresh_token)
    await auth.log_out(second.refresh_token)
    assert all(t.revoked_at == clock.now() for t in store.data.refresh_tokens.values())
    commits = store.commits
    await auth.log_out("ghr_never-issued")
    assert store.commits == commits


# -- location tokens -------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "admin"])
async def test_owners_and_admins_get_admin_location_tokens(
    auth: AuthService, world: World, codec: FakeTokenCodec, who: str
) -> None:
    user = getattr(world, who)
    token, ttl = await auth.location_token(getattr(world, f"{who}_actor"), world.loc_a.id)
    assert ttl == 15 * 60
    claims = codec.verify(token)
    assert (claims.user_id, claims.location_id, claims.location_role, claims.tier) == (
        user.id,
        world.loc_a.id,
        LocationRole.ADMIN,
        PlanTier.PRO,
    )
    assert claims.agency_role is user.role
    actor = await auth.authenticate(token)
    assert actor.location_id == world.loc_a.id
    assert actor.scope.location_id == world.loc_a.id
    assert actor.permissions() == LOCATION_SCOPES


async def test_agency_user_needs_a_grant(auth: AuthService, world: World, codec: FakeTokenCodec) -> None:
    token, _ = await auth.location_token(world.member_actor, world.loc_a.id)
    claims = codec.verify(token)
    assert (claims.location_role, claims.tier) == (LocationRole.USER, PlanTier.PRO)
    with pytest.raises(NotFound):
        await auth.location_token(world.member_actor, world.loc_b.id)


async def test_location_token_for_locations_out_of_reach(
    auth: AuthService, tenancy: TenancyService, world: World
) -> None:
    with pytest.raises(NotFound):
        await auth.location_token(world.owner_actor, world.other_location.id)
    with pytest.raises(NotFound):
        await auth.location_token(world.owner_actor, uuid.uuid4())
    await tenancy.delete_location(world.owner_actor, world.loc_b.id)
    with pytest.raises(NotFound):
        await auth.location_token(world.owner_actor, world.loc_b.id)
    await tenancy.delete_user(world.owner_actor, world.admin.id)
    with pytest.raises(NotFound):
        await auth.location_token(world.admin_actor, world.loc_a.id)


async def test_location_token_needs_an_agency_level_user(
    auth: AuthService, world: World, operator: Actor
) -> None:
    key = Actor(ActorKind.API_KEY, uuid.uuid4(), world.agency.id, location_id=world.loc_a.id)
    token_actor = location_actor(world.owner, world.loc_a.id, LocationRole.ADMIN)
    nameless = Actor(ActorKind.USER, None, world.agency.id, agency_role=AgencyRole.OWNER)
    for actor in (key, token_actor, operator, nameless):
        with pytest.raises(PermissionDenied):
            await auth.location_token(actor, world.loc_a.id)


# -- bearer credentials ----------------------------------------------------------------------------------


async def test_empty_bearer(auth: AuthService) -> None:
    with pytest.raises(Unauthenticated, match="Bearer"):
        await auth.authenticate("")


async def test_api_key_bearer(
    auth: AuthService,
    api_keys: ApiKeyService,
    operator: Actor,
    world: World,
    store: InMemoryStore,
    clock: FixedClock,
) -> None:
    scopes = frozenset({Permission.CONTACTS_READ, Permission.CONTACTS_WRITE})
    key, secret = await api_keys.create(operator, "k", scopes, location_id=world.loc_a.id)
    actor = await auth.authenticate(secret)
    assert (actor.kind, actor.id, actor.agency_id, actor.location_id) == (
        ActorKind.API_KEY,
        key.id,
        world.agency.id,
        world.loc_a.id,
    )
    assert actor.scopes == scopes
    assert actor.tier is PlanTier.PRO
    assert actor.credential_id == f"apikey:{key.id}"
    assert store.data.api_keys[key.id].last_used_at == clock.now()
    await api_keys.revoke(operator, key.id)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(secret)


async def test_unknown_api_key(auth: AuthService, world: World) -> None:
    with pytest.raises(Unauthenticated, match="API key"):
        await auth.authenticate("ghl_" + "x" * 43)


async def test_api_key_of_a_deleted_location_or_agency(
    auth: AuthService,
    api_keys: ApiKeyService,
    tenancy: TenancyService,
    operator: Actor,
    world: World,
    store: InMemoryStore,
    clock: FixedClock,
) -> None:
    _, on_b = await api_keys.create(operator, "b", location_id=world.loc_b.id)
    _, on_a = await api_keys.create(operator, "a", location_id=world.loc_a.id)
    assert (await auth.authenticate(on_b)).location_id == world.loc_b.id  # now cached
    await tenancy.delete_location(operator, world.loc_b.id)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(on_b)
    assert (await auth.authenticate(on_a)).location_id == world.loc_a.id
    # No service deletes an agency (an operator does it in SQL): its keys stop when their cached entry
    # is next checked against the database.
    store.data.deleted_agencies.add(world.agency.id)
    clock.advance(API_KEY_TOUCH_INTERVAL)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(on_a)


async def test_our_access_token(auth: AuthService, world: World, clock: FixedClock) -> None:
    tokens = await auth.log_in("admin@acme.io", PASSWORD)
    actor = await auth.authenticate(tokens.access_token)
    assert (actor.kind, actor.id, actor.agency_id, actor.agency_role) == (
        ActorKind.USER,
        world.admin.id,
        world.agency.id,
        AgencyRole.ADMIN,
    )
    assert actor.location_id is None
    assert actor.tier is PlanTier.PRO
    assert actor.credential_id == f"user:{world.admin.id}:-"
    clock.advance(timedelta(minutes=15))
    with pytest.raises(Unauthenticated):
        await auth.authenticate(tokens.access_token)
    with pytest.raises(Unauthenticated):
        await auth.authenticate("garbage")


async def test_location_token_carries_its_tier(auth: AuthService, world: World) -> None:
    token, _ = await auth.location_token(world.member_actor, world.loc_a.id)
    actor = await auth.authenticate(token)
    assert (actor.location_role, actor.tier) == (LocationRole.USER, PlanTier.PRO)
    assert actor.credential_id == f"user:{world.member.id}:{world.loc_a.id}"
    assert Permission.AUDIT_READ not in actor.permissions()


async def test_an_access_token_ends_when_its_users_access_shrinks(
    auth: AuthService, tenancy: TenancyService, world: World, cache: InMemoryCache
) -> None:
    """Served from the cache in between: each change invalidates the user's entry after it commits."""
    agency = (await auth.log_in("member@acme.io", PASSWORD)).access_token
    located, _ = await auth.location_token(await auth.authenticate(agency), world.loc_a.id)
    await auth.authenticate(located)
    assert user_cache_key(world.member.id) in cache.values

    # A new grant or a new name takes nothing away: the tokens stand.
    await tenancy.grant_location(world.owner_actor, world.member.id, world.loc_b.id, LocationRole.USER)
    await tenancy.update_user(world.owner_actor, world.member.id, name="Mia M.")
    await auth.authenticate(agency)
    await auth.authenticate(located)

    # A grant taken away ends every token issued before, the agency token included.
    await tenancy.revoke_location(world.owner_actor, world.member.id, world.loc_a.id)
    for token in (agency, located):
        with pytest.raises(Unauthenticated, match="refresh"):
            await auth.authenticate(token)
    assert user_cache_key(world.member.id) in cache.invalidated


async def test_a_role_change_or_removal_ends_the_users_tokens(
    auth: AuthService, tenancy: TenancyService, world: World
) -> None:
    tokens = await auth.log_in("admin@acme.io", PASSWORD)
    await tenancy.update_user(world.owner_actor, world.admin.id, role=AgencyRole.USER)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(tokens.access_token)

    renewed = await auth.refresh(tokens.refresh_token)
    actor = await auth.authenticate(renewed.access_token)
    assert actor.agency_role is AgencyRole.USER

    await tenancy.delete_user(world.owner_actor, world.admin.id)
    with pytest.raises(Unauthenticated, match="removed"):
        await auth.authenticate(renewed.access_token)


async def test_a_location_token_follows_its_locations_current_row(
    auth: AuthService, tenancy: TenancyService, world: World
) -> None:
    token, _ = await auth.location_token(world.owner_actor, world.loc_a.id)
    assert (await auth.authenticate(token)).tier is PlanTier.PRO

    await tenancy.update_location(world.owner_actor, world.loc_a.id, LocationChanges(tier=PlanTier.FREE))
    assert (await auth.authenticate(token)).tier is PlanTier.FREE

    await tenancy.delete_location(world.owner_actor, world.loc_a.id)
    with pytest.raises(Unauthenticated, match="deleted"):
        await auth.authenticate(token)


async def test_external_token_without_location(
    auth: AuthService, tenancy: TenancyService, verifier: FakeExternalVerifier, world: World
) -> None:
    linked = await tenancy.create_user(
        world.owner_actor, NewUser("sso@acme.io", "Sso", AgencyRole.ADMIN, clerk_user_id="user_abc")
    )
    actor = await auth.authenticate(verifier.register("user_abc"))
    assert (actor.kind, actor.id, actor.agency_id, actor.agency_role) == (
        ActorKind.USER,
        linked.id,
        world.agency.id,
        AgencyRole.ADMIN,
    )
    assert actor.location_id is None
    assert actor.tier is PlanTier.PRO
    assert actor.credential_id == "clerk:user_abc"


async def test_external_token_with_location_claim(
    auth: AuthService, tenancy: TenancyService, verifier: FakeExternalVerifier, world: World
) -> None:
    await tenancy.update_user(world.owner_actor, world.member.id, name="Mia")
    member = world.member
    store_user = await tenancy.get_user(world.owner_actor, member.id)
    assert store_user.clerk_user_id is None
    linked = await tenancy.create_user(
        world.owner_actor,
        NewUser("sso@acme.io", "Sso", clerk_user_id="user_loc"),
    )
    await tenancy.grant_location(world.owner_actor, linked.id, world.loc_a.id, LocationRole.ADMIN)
    actor = await auth.authenticate(verifier.register("user_loc", world.loc_a.id))
    assert (actor.location_id, actor.location_role, actor.tier) == (
        world.loc_a.id,
        LocationRole.ADMIN,
        PlanTier.PRO,
    )
    assert actor.credential_id == f"clerk:user_loc:{world.loc_a.id}"
    with pytest.raises(Unauthenticated, match="location"):
        await auth.authenticate(verifier.register("user_loc", world.loc_b.id))
    with pytest.raises(Unauthenticated, match="location"):
        await auth.authenticate(verifier.register("user_loc", world.other_location.id))


async def test_external_owner_with_location_claim_is_admin(
    auth: AuthService, tenancy: TenancyService, verifier: FakeExternalVerifier, world: World
) -> None:
    await tenancy.create_user(
        world.owner_actor, NewUser("boss2@acme.io", "Boss", AgencyRole.OWNER, clerk_user_id="user_own")
    )
    actor = await auth.authenticate(verifier.register("user_own", world.loc_b.id))
    assert (actor.location_role, actor.tier) == (LocationRole.ADMIN, PlanTier.FREE)


async def test_external_token_refusals(
    auth: AuthService,
    tenancy: TenancyService,
    verifier: FakeExternalVerifier,
    world: World,
    store: InMemoryStore,
) -> None:
    with pytest.raises(Unauthenticated, match="clerk"):
        await auth.authenticate(verifier.register("user_nobody"))
    with pytest.raises(Unauthenticated, match="clerk"):
        await auth.authenticate(verifier.register("user_nobody", world.loc_a.id))
    with pytest.raises(Unauthenticated):
        await auth.authenticate("ext.never-issued")
    await tenancy.create_user(world.owner_actor, NewUser("sso@acme.io", "Sso", clerk_user_id="user_off"))
    store.data.deleted_agencies.add(world.agency.id)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(verifier.register("user_off"))


async def test_describe() -> None:
    agency, location, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    member = Actor(
        ActorKind.USER,
        user,
        agency,
        location_id=location,
        agency_role=AgencyRole.USER,
        location_role=LocationRole.USER,
        tier=PlanTier.FREE,
    )
    shown = describe(member)
    assert shown["kind"] == "user"
    assert shown["id"] == str(user)
    assert shown["agency_id"] == str(agency)
    assert shown["location_id"] == str(location)
    assert (shown["agency_role"], shown["location_role"], shown["tier"]) == ("agency_user", "user", "free")
    permissions = shown["permissions"]
    assert isinstance(permissions, list)
    assert permissions == sorted(permissions)
    assert "contacts:read" in permissions
    assert "audit:read" not in permissions
    op = describe(Actor.operator())
    assert (op["kind"], op["id"], op["agency_id"], op["location_id"]) == ("operator", None, None, None)
    assert (op["agency_role"], op["location_role"], op["tier"]) == (None, None, "pro")
    assert len(op["permissions"]) == len(Permission)  # type: ignore[arg-type]
