"""The webhooks, inbound webhooks and jobs services on the shipped in-memory adapters (no database): a
subscription's event fanned out, delivered and redelivered; an endpoint's post received once and
processed; a failed job listed and put back in the queue."""

from __future__ import annotations

import json
import uuid

import pytest
from inbound_fakes import FakeVerifier
from memory_world import MemoryWorld, memory_world
from webhook_fakes import FakeSecretBox, HmacSigner, ScriptedSender, TableResolver

from ghl_adapters.memory.jobs import record_failed_job
from ghl_core.inbound.endpoints import EndpointWebhookProcessor, InboundEndpointService
from ghl_core.inbound.models import ENDPOINT_PROVIDER, EventStatus, InboundRequest
from ghl_core.inbound.ports import InboundRegistry
from ghl_core.inbound.services import InboundService
from ghl_core.jobs.ports import JobContext, JobRequest, RetryLater
from ghl_core.jobs.services import JobService
from ghl_core.shared.errors import NotFound
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import PageRequest
from ghl_core.shared.scope import TenantScope
from ghl_core.webhooks.addresses import UrlGuard
from ghl_core.webhooks.models import DeliveryStatus
from ghl_core.webhooks.services import DELIVER_KIND, WebhookService


@pytest.fixture
async def world() -> MemoryWorld:
    return await memory_world()


async def test_an_event_is_fanned_out_delivered_and_redelivered(world: MemoryWorld) -> None:
    sender = ScriptedSender(500)
    resolver = TableResolver({"hooks.example.com": ["93.184.216.34"]})
    service = WebhookService(
        world.uows, world.clock, FakeSecretBox(), UrlGuard(resolver), HmacSigner(), sender, disable_after=3
    )
    subscription, _ = await service.create(
        world.actor, {"url": "https://hooks.example.com/in", "event_types": ["ContactCreate"]}
    )
    event = DomainEvent(
        type="contact.created",
        agency_id=world.agency.id,
        location_id=world.location.id,
        entity_id=uuid.uuid4(),
        payload={"before": None, "after": {"id": "c1", "first_name": "Ada"}},
        occurred_at=world.clock.now(),
    )
    async with world.uows(TenantScope.location(world.location.id)) as uow:
        await uow.events.add(event)
        await uow.commit()

    assert await service.fan_out(world.location.id, [event]) == 1
    assert await service.fan_out(world.location.id, [event]) == 0  # a rerun delivers nothing twice
    assert await service.fan_out(world.other_location.id, [event]) == 0
    jobs = [j for j in world.uows.queue.pending() if j.kind == DELIVER_KIND]
    assert len(jobs) == 1
    delivery_id = uuid.UUID(jobs[0].args["delivery_id"])

    def ctx(attempt: int) -> JobContext:
        return JobContext(
            job_id=7, kind=DELIVER_KIND, attempt=attempt, max_attempts=2, location_id=world.location.id
        )

    with pytest.raises(RetryLater):  # the 500
        await service.deliver(world.location.id, delivery_id, ctx(1))
    await service.deliver(world.location.id, delivery_id, ctx(2))
    assert len(sender.sent) == 2
    assert json.loads(sender.sent[1].body)["type"] == "ContactCreate"
    detail = await service.delivery(world.actor, subscription.id, delivery_id)
    assert detail.delivery.status is DeliveryStatus.DELIVERED
    assert [a.status_code for a in detail.attempts] == [500, 200]
    delivered = await service.deliveries(
        world.actor, subscription.id, PageRequest(), DeliveryStatus.DELIVERED
    )
    assert [d.id for d in delivered.items] == [delivery_id]
    again = await service.redeliver(world.actor, subscription.id, delivery_id)
    assert again.status is DeliveryStatus.PENDING
    with pytest.raises(NotFound):
        await service.get(world.other_actor, subscription.id)


async def test_an_endpoint_post_is_stored_once_and_processed(world: MemoryWorld) -> None:
    box = FakeSecretBox()
    endpoints = InboundEndpointService(world.uows, world.clock, box)
    registry = InboundRegistry()
    registry.add_verifier(ENDPOINT_PROVIDER, FakeVerifier(ENDPOINT_PROVIDER))
    registry.add_processor(ENDPOINT_PROVIDER, EndpointWebhookProcessor(world.clock))
    inbound = InboundService(world.uows, world.clock, registry)
    endpoint, secret = await endpoints.create(world.actor, {"name": "Orders"})

    target = await endpoints.target(endpoint.id)
    assert (target.location_id, target.secret) == (world.location.id, secret)
    request = InboundRequest(
        method="POST",
        url=f"https://ghl.example.com/webhooks/inbound/{endpoint.id}",
        headers={
            "x-signature": secret,
            "x-event-id": "evt-1",
            "x-event-type": "order.paid",
            "content-type": "application/json",
        },
        body=b'{"order": 42}',
    )
    first = await inbound.receive(target, request)
    duplicate = await inbound.receive(target, request)
    assert first.duplicate is False
    assert first.event_id is not None
    assert (duplicate.duplicate, duplicate.event_id) == (True, first.event_id)

    assert await inbound.process(world.location.id, first.event_id) is EventStatus.PROCESSED
    assert await inbound.process(world.location.id, first.event_id) is EventStatus.PROCESSED  # once
    stored = await inbound.get_event(world.actor, first.event_id)
    assert (stored.status, stored.attempts, stored.body) == (EventStatus.PROCESSED, 1, b'{"order": 42}')
    listed = await inbound.list_events(world.actor, PageRequest())
    assert [(e.id, e.body_size) for e in listed.items] == [(first.event_id, 13)]
    assert (await inbound.list_events(world.other_actor, PageRequest())).items == []

    await endpoints.update(world.actor, endpoint.id, {"enabled": False})
    with pytest.raises(NotFound):
        await endpoints.target(endpoint.id)


async def test_a_failed_job_is_listed_and_retried_in_its_location(world: MemoryWorld) -> None:
    service = JobService(world.uows)
    failed = record_failed_job(
        world.store,
        JobRequest(kind="webhooks.deliver", args={"delivery_id": "d"}, location_id=world.location.id),
        attempts=5,
        error="the receiver kept answering 500",
    )
    page = await service.failed(world.actor, PageRequest())
    assert [(j.id, j.kind, j.attempts) for j in page.items] == [(failed.id, "webhooks.deliver", 5)]
    assert (await service.failed(world.other_actor, PageRequest())).items == []
    with pytest.raises(NotFound):
        await service.retry(world.other_actor, failed.id)
    await service.retry(world.actor, failed.id)
    assert (await service.failed(world.actor, PageRequest())).items == []
    assert [j.args for j in world.uows.queue.pending() if j.kind == "webhooks.deliver"] == [
        {"delivery_id": "d"}
    ]
