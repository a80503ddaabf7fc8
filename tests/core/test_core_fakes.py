"""The fakes keep the promises the services rely on: commit/rollback, uniqueness, rotation."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from fakes import FakeTokenCodec, InMemoryFailureCounter, InMemoryStore
from ghl_core.identity.models import AccessClaims, RefreshToken
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import Conflict, Unauthenticated
from ghl_core.shared.pagination import PageRequest
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.models import Agency, AgencyRole, User

AGENCY = TenantScope.operator()


def _agency(clock: FixedClock) -> Agency:
    return Agency(id=uuid.uuid4(), name="A", created_at=clock.now(), updated_at=clock.now())


def _user(clock: FixedClock, agency_id: uuid.UUID, email: str) -> User:
    now = clock.now()
    return User(uuid.uuid4(), agency_id, email, "U", AgencyRole.USER, now, now)


async def test_changes_are_visible_only_after_commit(store: InMemoryStore, clock: FixedClock) -> None:
    agency = _agency(clock)
    async with store(AGENCY) as uow:
        await uow.agencies.add(agency)
        async with store(AGENCY) as other:
            assert await other.agencies.get(agency.id) is None
        await uow.commit()
    async with store(AGENCY) as uow:
        assert await uow.agencies.get(agency.id) == agency


async def test_exit_without_commit_discards(store: InMemoryStore, clock: FixedClock) -> None:
    async def fail_midway() -> None:
        async with store(AGENCY) as uow:
            await uow.agencies.add(_agency(clock))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await fail_midway()
    async with store(AGENCY) as uow:
        await uow.agencies.add(_agency(clock))
    assert store.data.agencies == {}
    assert store.commits == 0


async def test_reads_are_copies(store: InMemoryStore, clock: FixedClock) -> None:
    agency = _agency(clock)
    async with store(AGENCY) as uow:
        await uow.agencies.add(agency)
        agency.name = "changed after add"
        loaded = await uow.agencies.get(agency.id)
        assert loaded is not None
        assert loaded.name == "A"
        loaded.name = "changed without update"
        await uow.commit()
    assert store.data.agencies[agency.id].name == "A"


async def test_repositories_need_the_context(store: InMemoryStore) -> None:
    with pytest.raises(RuntimeError):
        await store(AGENCY).agencies.get(uuid.uuid4())


async def test_one_live_user_per_email(store: InMemoryStore, clock: FixedClock) -> None:
    agency = _agency(clock)
    first = _user(clock, agency.id, "a@x.test")
    async with store(AGENCY) as uow:
        await uow.users.add(first)
        with pytest.raises(Conflict):
            await uow.users.add(_user(clock, agency.id, "a@x.test"))
        first.deleted_at = clock.now()
        await uow.users.update(first)
        await uow.users.add(_user(clock, agency.id, "a@x.test"))
        second = _user(clock, agency.id, "b@x.test")
        await uow.users.add(second)
        second.email = "a@x.test"
        with pytest.raises(Conflict):
            await uow.users.update(second)


async def test_mark_rotated_once(store: InMemoryStore, clock: FixedClock) -> None:
    token = RefreshToken(
        uuid.uuid4(),
        uuid.uuid4(),
        uuid.uuid4(),
        uuid.uuid4(),
        "h",
        clock.now() + timedelta(days=1),
        clock.now(),
    )
    async with store(AGENCY) as uow:
        await uow.refresh_tokens.add(token)
        assert await uow.refresh_tokens.mark_rotated(token.id, clock.now())
        assert not await uow.refresh_tokens.mark_rotated(token.id, clock.now())
        assert not await uow.refresh_tokens.mark_rotated(uuid.uuid4(), clock.now())


async def test_anonymous_scope_may_not_write(store: InMemoryStore, clock: FixedClock) -> None:
    # Refused at the write itself, as row-level security's WITH CHECK refuses the INSERT.
    async with store(TenantScope.anonymous()) as uow:
        with pytest.raises(PermissionError):
            await uow.agencies.add(_agency(clock))


async def test_fake_pagination_follows_cursors(store: InMemoryStore, clock: FixedClock) -> None:
    async with store(AGENCY) as uow:
        for _ in range(5):
            await uow.agencies.add(_agency(clock))
            clock.advance(timedelta(seconds=1))
        await uow.commit()
    seen: list[uuid.UUID] = []
    async with store(AGENCY) as uow:
        page = await uow.agencies.list(PageRequest(limit=2))
        seen += [a.id for a in page.items]
        while page.next_cursor:
            page = await uow.agencies.list(PageRequest.parse(2, page.next_cursor, None))
            seen += [a.id for a in page.items]
        offset = await uow.agencies.list(PageRequest(limit=10, offset=3))
    assert len(seen) == 5 == len(set(seen))
    assert [a.id for a in offset.items] == seen[3:]


async def test_token_codec_expires(clock: FixedClock) -> None:
    codec = FakeTokenCodec(clock, ttl=timedelta(minutes=5))
    claims = AccessClaims(uuid.uuid4(), uuid.uuid4(), AgencyRole.ADMIN)
    token = codec.issue(claims)
    assert codec.verify(token).user_id == claims.user_id
    clock.advance(timedelta(minutes=5))
    with pytest.raises(Unauthenticated):
        codec.verify(token)
    for bad in ("nope", "fake.!!!", "fake.e30"):
        with pytest.raises(Unauthenticated):
            codec.verify(bad)


async def test_failure_counter_window(clock: FixedClock) -> None:
    counter = InMemoryFailureCounter(clock)
    assert await counter.failures("k") == (0, 0)
    assert await counter.record_failure("k", timedelta(seconds=60)) == 1
    clock.advance(timedelta(seconds=10))
    assert await counter.record_failure("k", timedelta(seconds=60)) == 2
    assert await counter.failures("k") == (2, 50)
    clock.advance(timedelta(seconds=50))
    assert await counter.failures("k") == (0, 0)
    await counter.record_failure("k", timedelta(seconds=60))
    await counter.clear("k")
    assert await counter.failures("k") == (0, 0)
