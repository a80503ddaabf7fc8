"""The webhook repository's contract, over the in-memory and the SQL implementation."""

from __future__ import annotations

import uuid
from dataclasses import replace

from makers import NOW, World, at

from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import PageRequest, decode_cursor
from ghl_core.webhooks.models import Attempt, Delivery, DeliveryStatus, Subscription


def subscription(location_id: uuid.UUID, minutes: int = 0, **fields: object) -> Subscription:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "location_id": location_id,
        "url": "https://hooks.example.com/in",
        "event_types": ["contact.created"],
        "secret_ciphertext": b"sealed",
        "created_at": at(minutes),
        "updated_at": at(minutes),
        **fields,
    }
    return Subscription(**values)  # type: ignore[arg-type]


def delivery(sub: Subscription, event_id: uuid.UUID, minutes: int = 0) -> Delivery:
    return Delivery(
        id=uuid.uuid4(),
        location_id=sub.location_id,
        subscription_id=sub.id,
        event_id=event_id,
        event_type="contact.created",
        entity_id=uuid.uuid4(),
        created_at=at(minutes),
        updated_at=at(minutes),
    )


async def test_subscriptions_are_listed_newest_first_and_scoped(world: World) -> None:
    mine = [subscription(world.location_id, minutes=i) for i in range(3)]
    deleted = subscription(world.location_id, minutes=5, deleted_at=NOW)
    paused = subscription(world.location_id, minutes=6, active=False)
    theirs = subscription(world.other_location_id)
    async with world.uow(world.scope) as work:
        for sub in [*mine, deleted, paused]:
            await work.webhooks.add_subscription(sub)
        await work.commit()
    async with world.uow(world.other_scope) as work:
        await work.webhooks.add_subscription(theirs)
        await work.commit()

    async with world.uow(world.scope) as work:
        first = await work.webhooks.list_subscriptions(PageRequest(limit=2))
        assert [s.id for s in first.items] == [paused.id, mine[2].id]
        assert first.next_cursor is not None
        rest = await work.webhooks.list_subscriptions(
            PageRequest(limit=2, after=decode_cursor(first.next_cursor))
        )
        assert [s.id for s in rest.items] == [mine[1].id, mine[0].id]
        assert rest.next_cursor is None
        sending = await work.webhooks.sending_subscriptions()
        assert [s.id for s in sending] == [m.id for m in mine]
        assert await work.webhooks.get_subscription(theirs.id) is None
        assert (await work.webhooks.get_subscription(deleted.id)) == deleted

        # An update through this scope of another location's row changes nothing.
        await work.webhooks.update_subscription(replace(theirs, url="https://evil.example.com"))
        changed = replace(mine[0], description="renamed", consecutive_failures=3, updated_at=at(30))
        await work.webhooks.update_subscription(changed)
        await work.commit()

    async with world.uow(world.other_scope) as work:
        assert (await work.webhooks.get_subscription(theirs.id)) == theirs
    async with world.uow(world.scope) as work:
        assert (await work.webhooks.get_subscription(mine[0].id)) == changed


async def test_one_delivery_per_subscription_and_event(world: World) -> None:
    sub = subscription(world.location_id)
    event_id = uuid.uuid4()
    first, again = delivery(sub, event_id), delivery(sub, event_id, minutes=1)
    other = delivery(sub, uuid.uuid4(), minutes=2)
    async with world.uow(world.scope) as work:
        await work.webhooks.add_subscription(sub)
        assert await work.webhooks.add_deliveries([first]) == [first]
        await work.commit()
    async with world.uow(world.scope) as work:
        stored = await work.webhooks.add_deliveries([again, other])
        assert stored == [other]
        assert (await work.webhooks.find_delivery(sub.id, event_id)) == first
        assert await work.webhooks.add_deliveries([]) == []
        await work.commit()

    async with world.uow(world.scope) as work:
        failed = replace(
            first, status=DeliveryStatus.FAILED, attempts=2, last_status_code=500, last_error="x" * 5000
        )
        await work.webhooks.update_delivery(failed)
        await work.commit()
    async with world.uow(world.scope) as work:
        got = await work.webhooks.get_delivery(first.id)
        assert got is not None
        assert (got.status, got.attempts) == (DeliveryStatus.FAILED, 2)
        assert got.last_error == "x" * 2000  # cut to what the table keeps
        page = await work.webhooks.list_deliveries(sub.id, PageRequest(limit=10))
        assert [d.id for d in page.items] == [other.id, first.id]
        only_failed = await work.webhooks.list_deliveries(sub.id, PageRequest(), DeliveryStatus.FAILED)
        assert [d.id for d in only_failed.items] == [first.id]
    async with world.uow(world.other_scope) as work:
        assert await work.webhooks.get_delivery(first.id) is None
        assert await work.webhooks.find_delivery(sub.id, event_id) is None
        assert (await work.webhooks.list_deliveries(sub.id, PageRequest())).items == []


async def test_attempts_come_back_in_order(world: World) -> None:
    sub = subscription(world.location_id)
    d = delivery(sub, uuid.uuid4())
    attempts = [
        Attempt(
            id=uuid.uuid4(),
            location_id=world.location_id,
            delivery_id=d.id,
            number=n,
            started_at=at(n),
            duration_ms=12,
            status_code=500 if n < 3 else 200,
            error="boom" if n == 1 else None,
        )
        for n in (2, 1, 3)
    ]
    async with world.uow(world.scope) as work:
        await work.webhooks.add_subscription(sub)
        await work.webhooks.add_deliveries([d])
        for attempt in attempts:
            await work.webhooks.add_attempt(attempt)
        await work.commit()
    async with world.uow(world.scope) as work:
        got = await work.webhooks.attempts(d.id)
        assert [a.number for a in got] == [1, 2, 3]
        assert got[0] == attempts[1]
    async with world.uow(world.other_scope) as work:
        assert await work.webhooks.attempts(d.id) == []


async def test_events_are_read_in_their_location_only(world: World) -> None:
    event = DomainEvent(
        type="contact.created",
        agency_id=world.agency_id,
        location_id=world.location_id,
        entity_id=uuid.uuid4(),
        payload={"before": None, "after": {"id": "x"}},
        occurred_at=NOW,
    )
    async with world.uow(world.scope) as work:
        await work.events.add(event)
        await work.commit()
    async with world.uow(world.scope) as work:
        got = await work.webhooks.event(event.id)
        assert got is not None
        assert (got.id, got.type, got.entity_id, got.payload) == (
            event.id,
            event.type,
            event.entity_id,
            event.payload,
        )
        assert await work.webhooks.event(uuid.uuid4()) is None
        assert await work.webhooks.get_subscription(uuid.uuid4()) is None
    async with world.uow(world.other_scope) as work:
        assert await work.webhooks.event(event.id) is None
