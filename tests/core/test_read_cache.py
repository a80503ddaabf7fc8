"""Reads through the cache port: what is cached, that every write invalidates what it changes after its
commit, and that a key's `last_used_at` keeps being recorded."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from fakes import InMemoryCache, InMemoryStore
from ghl_core.identity.api_keys import ApiKeyService
from ghl_core.identity.auth import API_KEY_TOUCH_INTERVAL, AuthService
from ghl_core.identity.secrets import secret_hash
from ghl_core.shared.cache import (
    NoCache,
    ReadCache,
    api_key_cache_key,
    custom_fields_cache_key,
    location_cache_key,
)
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import NotFound, Unauthenticated
from ghl_core.shared.scope import ScopeKind
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import LocationChanges, TenancyService
from world import World


class Loads:
    def __init__(self, value: dict[str, int] | None) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> dict[str, int] | None:
        self.calls += 1
        return self.value


def _same(value: dict[str, int]) -> dict[str, int]:
    return value


def _decode(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise TypeError("not an object")
    return {str(k): int(v) for k, v in value.items()}


async def test_get_or_load_caches_until_invalidated(cache: InMemoryCache) -> None:
    reads = ReadCache(cache, ttl_seconds=30)
    load = Loads({"a": 1})
    assert await reads.get_or_load("k", load, _same, _decode) == {"a": 1}
    assert await reads.get_or_load("k", load, _same, _decode) == {"a": 1}
    assert load.calls == 1
    assert json.loads(cache.values["k"][0]) == {"a": 1}
    await reads.invalidate("k")
    load.value = {"a": 2}
    assert await reads.get_or_load("k", load, _same, _decode) == {"a": 2}
    assert load.calls == 2


async def test_expiry_absence_refusal_and_foreign_values(cache: InMemoryCache, clock: FixedClock) -> None:
    reads = ReadCache(cache, ttl_seconds=30)
    missing = Loads(None)
    assert await reads.get_or_load("none", missing, _same, _decode) is None
    assert "none" not in cache.values  # absence is not cached
    load = Loads({"a": 1})
    await reads.get_or_load("k", load, _same, _decode)
    clock.advance(timedelta(seconds=31))
    await reads.get_or_load("k", load, _same, _decode)
    assert load.calls == 2
    await reads.get_or_load("k", load, _same, _decode, fresh=lambda v: False)
    assert load.calls == 3
    cache.values["k"] = (b"[1, 2]", clock.now() + timedelta(minutes=1))  # another version's shape
    assert await reads.get_or_load("k", load, _same, _decode) == {"a": 1}
    assert load.calls == 4
    await reads.invalidate()  # nothing to do
    assert cache.invalidated == []


@pytest.mark.parametrize("reads", [ReadCache(), ReadCache(InMemoryCache(FixedClock()), ttl_seconds=0)])
async def test_without_a_cache_every_read_loads(reads: ReadCache) -> None:
    load = Loads({"a": 1})
    for _ in range(2):
        assert await reads.get_or_load("k", load, _same, _decode) == {"a": 1}
    assert load.calls == 2
    await reads.invalidate("k")


async def test_no_cache_holds_nothing() -> None:
    none = NoCache()
    await none.set("k", b"1", 10)
    assert await none.get("k") is None
    await none.invalidate("k")


async def test_api_key_is_served_from_the_cache_and_still_touched(
    auth: AuthService,
    api_keys: ApiKeyService,
    operator: Actor,
    world: World,
    store: InMemoryStore,
    cache: InMemoryCache,
    clock: FixedClock,
) -> None:
    key, secret = await api_keys.create(operator, "k", location_id=world.loc_a.id)
    first = await auth.authenticate(secret)
    assert api_key_cache_key(secret_hash(secret)) in cache.values
    anonymous = sum(1 for s in store.scopes if s.kind is ScopeKind.ANONYMOUS)
    again = await auth.authenticate(secret)
    assert (again.id, again.scopes, again.tier, again.location_id) == (
        first.id,
        first.scopes,
        first.tier,
        first.location_id,
    )
    assert sum(1 for s in store.scopes if s.kind is ScopeKind.ANONYMOUS) == anonymous  # no look-up
    touched = store.data.api_keys[key.id].last_used_at
    clock.advance(API_KEY_TOUCH_INTERVAL + timedelta(seconds=1))
    await auth.authenticate(secret)
    assert store.data.api_keys[key.id].last_used_at == clock.now() != touched


async def test_revoking_a_cached_key_stops_it_at_once(
    auth: AuthService,
    api_keys: ApiKeyService,
    operator: Actor,
    world: World,
    cache: InMemoryCache,
) -> None:
    key, secret = await api_keys.create(operator, "k", location_id=world.loc_a.id)
    await auth.authenticate(secret)
    await api_keys.revoke(operator, key.id)
    assert cache.invalidated == [api_key_cache_key(secret_hash(secret))]
    with pytest.raises(Unauthenticated):
        await auth.authenticate(secret)
    assert api_key_cache_key(secret_hash(secret)) not in cache.values  # a revoked key is not cached
    await api_keys.revoke(operator, key.id)  # again: invalidates again (a retry finishes the job)
    assert len(cache.invalidated) == 2


async def test_a_location_change_reaches_its_cached_keys_and_row(
    auth: AuthService,
    api_keys: ApiKeyService,
    tenancy: TenancyService,
    operator: Actor,
    world: World,
    cache: InMemoryCache,
) -> None:
    _, secret = await api_keys.create(operator, "k", location_id=world.loc_a.id)
    _, other = await api_keys.create(operator, "other", location_id=world.loc_b.id)
    actor = await auth.authenticate(secret)
    assert actor.tier is PlanTier.PRO
    assert (await tenancy.get_location(actor, world.loc_a.id)).tier is PlanTier.PRO
    assert location_cache_key(world.loc_a.id) in cache.values
    await auth.authenticate(other)

    await tenancy.update_location(operator, world.loc_a.id, LocationChanges(tier=PlanTier.ENTERPRISE))
    assert set(cache.invalidated) == {
        location_cache_key(world.loc_a.id),
        api_key_cache_key(secret_hash(secret)),
    }
    actor = await auth.authenticate(secret)
    assert actor.tier is PlanTier.ENTERPRISE
    assert (await tenancy.get_location(actor, world.loc_a.id)).tier is PlanTier.ENTERPRISE
    assert api_key_cache_key(secret_hash(other)) in cache.values  # another location's key stays

    await tenancy.delete_location(operator, world.loc_a.id)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(secret)
    with pytest.raises(NotFound):
        await tenancy.get_location(actor, world.loc_a.id)


async def test_a_location_credential_reads_only_its_own_location(
    auth: AuthService, api_keys: ApiKeyService, tenancy: TenancyService, operator: Actor, world: World
) -> None:
    _, secret = await api_keys.create(operator, "k", location_id=world.loc_a.id)
    actor = await auth.authenticate(secret)
    with pytest.raises(NotFound):
        await tenancy.get_location(actor, world.loc_b.id)
    assert (await tenancy.current_location(actor)).id == world.loc_a.id


def test_keys_are_namespaced(world: World) -> None:
    assert location_cache_key(world.loc_a.id) == f"location:{world.loc_a.id}"
    assert custom_fields_cache_key(world.loc_a.id) == f"custom_fields:{world.loc_a.id}"
    assert api_key_cache_key("ab") == "cred:apikey:ab"
