"""The inbound endpoint and event repositories' contract, over the in-memory and the SQL implementation."""

from __future__ import annotations

import uuid
from dataclasses import replace

from makers import NOW, World, at

from ghl_core.inbound.models import EndpointKey, EventStatus, InboundEndpoint, InboundEvent
from ghl_core.shared.pagination import PageRequest, decode_cursor
from ghl_core.shared.scope import TenantScope


def endpoint(location_id: uuid.UUID, minutes: int = 0, **fields: object) -> InboundEndpoint:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "location_id": location_id,
        "name": f"hook {minutes}",
        "secret_ciphertext": b"sealed",
        "secret_hint": "whsec_ab",
        "enabled": True,
        "created_at": at(minutes),
        "updated_at": at(minutes),
        **fields,
    }
    return InboundEndpoint(**values)  # type: ignore[arg-type]


def event(location_id: uuid.UUID, minutes: int = 0, **fields: object) -> InboundEvent:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "location_id": location_id,
        "provider": "generic",
        "scope": str(location_id),
        "provider_event_id": uuid.uuid4().hex,
        "type": "thing.happened",
        "headers": {"content-type": "application/json"},
        "body": b'{"n": 1}',
        "content_type": "application/json",
        "status": EventStatus.RECEIVED,
        "received_at": at(minutes),
        **fields,
    }
    return InboundEvent(**values)  # type: ignore[arg-type]


async def test_endpoints_are_listed_oldest_first_in_their_location(world: World) -> None:
    mine = [endpoint(world.location_id, minutes=i) for i in range(3)]
    gone = endpoint(world.location_id, minutes=4, deleted_at=NOW)
    theirs = endpoint(world.other_location_id)
    async with world.uow(world.scope) as work:
        for e in [*mine, gone]:
            await work.inbound_endpoints.add(e)
        await work.commit()
    async with world.uow(world.other_scope) as work:
        await work.inbound_endpoints.add(theirs)
        await work.commit()

    async with world.uow(world.scope) as work:
        first = await work.inbound_endpoints.list(world.location_id, PageRequest(limit=2))
        assert [e.id for e in first.items] == [mine[0].id, mine[1].id]
        assert first.next_cursor is not None
        rest = await work.inbound_endpoints.list(
            world.location_id, PageRequest(limit=2, after=decode_cursor(first.next_cursor))
        )
        assert [e.id for e in rest.items] == [mine[2].id]
        assert (await work.inbound_endpoints.get(gone.id)) == gone
        assert await work.inbound_endpoints.get(theirs.id) is None
        assert (await work.inbound_endpoints.list(world.other_location_id, PageRequest())).items == []
        renamed = replace(mine[0], name="renamed", enabled=False, updated_at=at(9))
        await work.inbound_endpoints.update(renamed)
        await work.commit()
    async with world.uow(world.scope) as work:
        assert (await work.inbound_endpoints.get(mine[0].id)) == renamed


async def test_lookup_answers_before_the_tenant_is_known(world: World) -> None:
    live, disabled = endpoint(world.location_id), endpoint(world.location_id, enabled=False)
    gone = endpoint(world.location_id, deleted_at=NOW)
    async with world.uow(world.scope) as work:
        for e in (live, disabled, gone):
            await work.inbound_endpoints.add(e)
        await work.commit()
    async with world.uow(TenantScope.anonymous()) as work:
        assert await work.inbound_endpoints.lookup(live.id) == EndpointKey(
            live.id, world.location_id, b"sealed", True
        )
        found = await work.inbound_endpoints.lookup(disabled.id)
        assert found is not None
        assert found.active is False
        assert await work.inbound_endpoints.lookup(gone.id) is None
        assert await work.inbound_endpoints.lookup(uuid.uuid4()) is None
        assert await work.inbound_endpoints.get(live.id) is None  # the row itself stays hidden


async def test_an_event_is_stored_once_per_provider_id(world: World) -> None:
    first = event(world.location_id)
    again = replace(first, id=uuid.uuid4(), received_at=at(1))
    async with world.uow(world.scope) as work:
        assert await work.inbound_events.add(first) is True
        await work.commit()
    async with world.uow(world.scope) as work:
        assert await work.inbound_events.add(again) is False
        await work.commit()
    async with world.uow(world.scope) as work:
        found = await work.inbound_events.find(first.provider, first.scope, first.provider_event_id)
        assert found == first
        assert await work.inbound_events.get(again.id) is None
        assert await work.inbound_events.find(first.provider, "other", first.provider_event_id) is None
        done = replace(first, status=EventStatus.PROCESSED, attempts=1, processed_at=at(2), last_error=None)
        await work.inbound_events.update(done)
        await work.commit()
    async with world.uow(world.scope) as work:
        assert (await work.inbound_events.get(first.id, lock=True)) == done
    async with world.uow(world.other_scope) as work:
        assert await work.inbound_events.get(first.id) is None
        assert await work.inbound_events.find(first.provider, first.scope, first.provider_event_id) is None


async def test_events_are_listed_newest_first_without_their_body(world: World) -> None:
    hook = endpoint(world.location_id)
    events = [event(world.location_id, minutes=i, endpoint_id=hook.id if i % 2 else None) for i in range(4)]
    failed = replace(events[0], status=EventStatus.FAILED)
    async with world.uow(world.scope) as work:
        await work.inbound_endpoints.add(hook)
        for e in [failed, *events[1:]]:
            await work.inbound_events.add(e)
        await work.commit()
    async with world.uow(world.scope) as work:
        page = await work.inbound_events.list(world.location_id, PageRequest(limit=3))
        assert [e.id for e in page.items] == [events[3].id, events[2].id, events[1].id]
        assert all(e.body == b"" and e.headers == {} and e.body_size == 8 for e in page.items)
        assert page.next_cursor is not None
        rest = await work.inbound_events.list(
            world.location_id, PageRequest(limit=3, after=decode_cursor(page.next_cursor))
        )
        assert [e.id for e in rest.items] == [events[0].id]
        by_hook = await work.inbound_events.list(world.location_id, PageRequest(), endpoint_id=hook.id)
        assert [e.id for e in by_hook.items] == [events[3].id, events[1].id]
        by_status = await work.inbound_events.list(
            world.location_id, PageRequest(), status=EventStatus.FAILED
        )
        assert [e.id for e in by_status.items] == [events[0].id]
    async with world.uow(world.other_scope) as work:
        assert (await work.inbound_events.list(world.location_id, PageRequest())).items == []
