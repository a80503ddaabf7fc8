"""The webhooks service on in-memory fakes: subscriptions, fan-out, delivery, retries, disabling and
redelivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import pytest
from webhook_fakes import FakeSecretBox, HmacSigner, ScriptedSender, TableResolver

from fakes import InMemoryStore
from ghl_core.jobs.ports import JobContext, RetryLater
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import LocationRole
from ghl_core.tenancy.permissions import Actor
from ghl_core.webhooks.addresses import UrlGuard
from ghl_core.webhooks.models import DeliveryStatus
from ghl_core.webhooks.services import DELIVER_KIND, WebhookService
from world import World, location_actor

URL = "https://hooks.example.com/in?x=1"
PUBLIC = "93.184.216.34"


@pytest.fixture
def resolver() -> TableResolver:
    return TableResolver({"hooks.example.com": [PUBLIC], "inside.example.com": ["127.0.0.1"]})


@pytest.fixture
def sender() -> ScriptedSender:
    return ScriptedSender()


@pytest.fixture
def service(
    store: InMemoryStore, clock: FixedClock, resolver: TableResolver, sender: ScriptedSender
) -> WebhookService:
    return WebhookService(
        store, clock, FakeSecretBox(), UrlGuard(resolver), HmacSigner(), sender, disable_after=3
    )


@pytest.fixture
def admin(world: World) -> Actor:
    return location_actor(world.member, world.loc_a.id, LocationRole.ADMIN)


def ctx(location_id: uuid.UUID, attempt: int = 1, max_attempts: int = 4) -> JobContext:
    return JobContext(
        job_id=1, kind=DELIVER_KIND, attempt=attempt, max_attempts=max_attempts, location_id=location_id
    )


def contact_event(
    store: InMemoryStore, world: World, kind: str = "contact.created", **extra: Any
) -> DomainEvent:
    entity = extra.pop("entity_id", uuid.uuid4())
    payload = extra.pop(
        "payload",
        {
            "before": None,
            "after": {"id": str(entity), "first_name": "Ada", "custom_fields": {"fav_color": "red"}},
        },
    )
    event = DomainEvent(
        type=kind,
        agency_id=world.agency.id,
        location_id=world.loc_a.id,
        entity_id=entity,
        payload=payload,
        occurred_at=store.clock.now(),
    )
    store.data.events.append(event)
    return event


async def subscribed(service: WebhookService, admin: Actor, *types: str) -> tuple[Any, str]:
    return await service.create(admin, {"url": URL, "event_types": list(types or ["ContactCreate"])})


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body.decode()}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"


async def test_create_shows_the_secret_once_and_keeps_it_sealed(
    service: WebhookService, admin: Actor, store: InMemoryStore
) -> None:
    subscription, secret = await subscribed(service, admin, "ContactCreate", "OpportunityCreate")
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret.encode() not in subscription.secret_ciphertext
    assert subscription.active
    assert subscription.event_types == ["ContactCreate", "OpportunityCreate"]
    assert [e.type for e in store.data.events] == ["WebhookSubscriptionCreate"]
    audit = store.data.audit[-1]
    assert (audit.action, audit.entity_type) == ("create", "webhook_subscription")
    assert "secret" not in json.dumps(audit.after)
    listed = await service.list(admin, PageRequest())
    assert [s.id for s in listed.items] == [subscription.id]


async def test_bad_input_is_reported_with_pointers(service: WebhookService, admin: Actor) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await service.create(
            admin, {"url": "http://hooks.example.com/", "event_types": ["ContactCreate", "Nope"]}
        )
    pointers = {e.pointer: e.detail for e in caught.value.errors}
    assert set(pointers) == {"/url", "/event_types/1"}
    assert "https" in pointers["/url"]
    with pytest.raises(ValidationFailed) as caught:
        await service.create(admin, {"colour": "red"})
    assert {e.pointer for e in caught.value.errors} == {"/colour", "/url", "/event_types"}
    with pytest.raises(ValidationFailed):
        await service.create(admin, {"url": URL, "event_types": []})


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://inside.example.com/hook", "loopback"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://100.64.1.1/hook", "not a public"),
        ("https://user:pw@hooks.example.com/", "user name"),
        ("https://nowhere.example.com/", "does not resolve"),
        ("ftp://hooks.example.com/", "https"),
    ],
)
async def test_unsafe_urls_are_refused_at_subscription_time(
    service: WebhookService, admin: Actor, url: str, reason: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await service.create(admin, {"url": url, "event_types": ["ContactCreate"]})
    (error,) = caught.value.errors
    assert error.pointer == "/url"
    assert reason in error.detail


async def test_private_receivers_when_the_operator_allows_them(
    store: InMemoryStore, clock: FixedClock, resolver: TableResolver, admin: Actor
) -> None:
    service = WebhookService(
        store, clock, FakeSecretBox(), UrlGuard(resolver, allow_private=True), HmacSigner(), ScriptedSender()
    )
    subscription, _ = await service.create(
        admin, {"url": "http://127.0.0.1:9000/hook", "event_types": ["ContactCreate"]}
    )
    assert subscription.url == "http://127.0.0.1:9000/hook"
    with pytest.raises(ValidationFailed, match="metadata"):
        await service.create(admin, {"url": "http://169.254.169.254/", "event_types": ["ContactCreate"]})


async def test_only_location_admins_manage_and_other_locations_see_nothing(
    service: WebhookService, admin: Actor, world: World
) -> None:
    subscription, _ = await subscribed(service, admin)
    member = location_actor(world.member, world.loc_a.id, LocationRole.USER)
    with pytest.raises(PermissionDenied):
        await service.create(member, {"url": URL, "event_types": ["ContactCreate"]})
    assert (await service.get(member, subscription.id)).id == subscription.id  # reading is allowed
    elsewhere = location_actor(world.owner, world.loc_b.id, None)
    with pytest.raises(NotFound):
        await service.get(elsewhere, subscription.id)
    with pytest.raises(NotFound):
        await service.update(elsewhere, subscription.id, {"active": False})
    assert (await service.list(elsewhere, PageRequest())).items == []


async def test_update_rotate_and_delete(service: WebhookService, admin: Actor, store: InMemoryStore) -> None:
    subscription, first = await subscribed(service, admin)
    changed = await service.update(
        admin, subscription.id, {"event_types": ["ContactUpdate"], "active": False}
    )
    assert (changed.event_types, changed.active) == (["ContactUpdate"], False)
    with pytest.raises(ValidationFailed):
        await service.update(admin, subscription.id, {"url": "https://10.0.0.1/"})
    rotated, second = await service.rotate_secret(admin, subscription.id)
    assert second != first
    assert second.startswith("whsec_")
    assert rotated.secret_ciphertext != subscription.secret_ciphertext
    await service.delete(admin, subscription.id)
    with pytest.raises(NotFound):
        await service.get(admin, subscription.id)
    assert [a.action for a in store.data.audit[-4:]] == ["create", "update", "rotate_secret", "delete"]


async def test_fan_out_creates_one_delivery_and_job_per_match_once(
    service: WebhookService, admin: Actor, store: InMemoryStore, world: World
) -> None:
    contacts, _ = await subscribed(service, admin, "ContactCreate", "ContactTagUpdate")
    await subscribed(service, admin, "OpportunityCreate")
    paused, _ = await subscribed(service, admin, "ContactCreate")
    await service.update(admin, paused.id, {"active": False})
    entity = uuid.uuid4()
    events = [
        contact_event(store, world, entity_id=entity),
        contact_event(store, world, "contact.tag_added", entity_id=entity),
        contact_event(store, world, "contact.updated", entity_id=entity),  # not subscribed
        contact_event(store, world, "WebhookSubscriptionCreate"),  # not subscribable
    ]
    store.data.jobs.clear()
    assert await service.fan_out(world.loc_a.id, events) == 2
    jobs = store.data.jobs
    assert [j.kind for j in jobs] == [DELIVER_KIND, DELIVER_KIND]
    assert {j.lock for j in jobs} == {f"webhooks:{contacts.id}:{entity}"}
    deliveries = list(store.data.webhooks.deliveries.values())
    assert [d.event_type for d in deliveries] == ["ContactCreate", "ContactTagUpdate"]
    assert [j.args["delivery_id"] for j in jobs] == [str(d.id) for d in deliveries]
    # A rerun (a crashed consumer) creates nothing and enqueues nothing.
    assert await service.fan_out(world.loc_a.id, events) == 0
    assert len(store.data.jobs) == 2
    assert await service.fan_out(world.loc_b.id, events) == 0


async def fanned(service: WebhookService, store: InMemoryStore, world: World, **kw: Any) -> Any:
    event = contact_event(store, world, **kw)
    await service.fan_out(world.loc_a.id, [event])
    (delivery,) = [d for d in store.data.webhooks.deliveries.values() if d.event_id == event.id]
    return event, delivery


async def test_a_delivery_is_signed_and_sent_once(
    service: WebhookService, admin: Actor, store: InMemoryStore, world: World, sender: ScriptedSender
) -> None:
    _, secret = await subscribed(service, admin)
    event, delivery = await fanned(service, store, world)
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id))
    (sent,) = sender.sent
    assert sent.headers["webhook-id"] == str(event.id)
    verify(secret, sent.headers, sent.body)
    body = json.loads(sent.body)
    assert body["type"] == "ContactCreate"
    assert body["timestamp"].endswith("Z")
    assert body["data"]["firstName"] == "Ada"
    assert body["data"]["customFields"] == {"fav_color": "red"}  # keys named by the location stay
    assert body["data"]["locationId"] == str(world.loc_a.id)
    assert sent.target.addresses == (PUBLIC,)
    done = store.data.webhooks.deliveries[delivery.id]
    assert (done.status, done.attempts, done.last_status_code) == (DeliveryStatus.DELIVERED, 1, 200)
    # A worker that crashed after sending runs the job again: nothing is sent twice.
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id, attempt=2))
    assert len(sender.sent) == 1


async def test_transient_failures_are_retried_with_the_same_webhook_id(
    service: WebhookService, admin: Actor, store: InMemoryStore, world: World, sender: ScriptedSender
) -> None:
    await subscribed(service, admin)
    _, delivery = await fanned(service, store, world)
    sender.script = ["ConnectError: refused", 503, 429]
    for attempt in (1, 2, 3):
        with pytest.raises(RetryLater):
            await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id, attempt))
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id, 4))
    assert len({s.headers["webhook-id"] for s in sender.sent}) == 1
    detail = await service.delivery(admin, delivery.subscription_id, delivery.id)
    assert detail.delivery.status is DeliveryStatus.DELIVERED
    assert [(a.number, a.status_code, a.error) for a in detail.attempts] == [
        (1, None, "ConnectError: refused"),
        (2, 503, None),
        (3, 429, None),
        (4, 200, None),
    ]


async def test_the_last_failed_attempt_fails_the_delivery(
    service: WebhookService, admin: Actor, store: InMemoryStore, world: World, sender: ScriptedSender
) -> None:
    subscription, _ = await subscribed(service, admin)
    _, delivery = await fanned(service, store, world)
    sender.script = [500]
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id, attempt=4))
    failed = store.data.webhooks.deliveries[delivery.id]
    assert (failed.status, failed.last_status_code) == (DeliveryStatus.FAILED, 500)
    assert store.data.webhooks.subscriptions[subscription.id].consecutive_failures == 1
    page = await service.deliveries(admin, subscription.id, PageRequest(), DeliveryStatus.FAILED)
    assert [d.id for d in page.items] == [delivery.id]
    assert (
        await service.deliveries(admin, subscription.id, PageRequest(), DeliveryStatus.DELIVERED)
    ).items == []


async def test_a_client_error_is_not_retried(
    service: WebhookService, admin: Actor, store: InMemoryStore, world: World, sender: ScriptedSender
) -> None:
    await subscribed(service, admin)
    _, delivery = await fanned(service, store, world)
    sender.script = [400]
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id, attempt=1))
    assert store.data.webhooks.deliveries[delivery.id].status is DeliveryStatus.FAILED


async def test_410_disables_the_subscription_and_tells_the_admin(
    service: WebhookService, admin: Actor, store: InMemoryStore, world: World, sender: ScriptedSender
) -> None:
    subscription, _ = await subscribed(service, admin)
    _, first = await fanned(service, store, world)
    _, second = await fanned(service, store, world)
    sender.script = [410]
    await service.deliver(world.loc_a.id, first.id, ctx(world.loc_a.id))
    off = await service.get(admin, subscription.id)
    assert not off.active
    assert "410" in str(off.disabled_reason)
    assert store.data.events[-1].type == "WebhookSubscriptionDisabled"
    assert store.data.audit[-1].action == "disable"
    # What was still queued is not sent.
    await service.deliver(world.loc_a.id, second.id, ctx(world.loc_a.id))
    assert len(sender.sent) == 1
    assert store.data.webhooks.deliveries[second.id].status is DeliveryStatus.FAILED
    with pytest.raises(Conflict):
        await service.redeliver(admin, subscription.id, first.id)
    # Turned on again by hand: the reason and the count are cleared.
    on = await service.update(admin, subscription.id, {"active": True})
    assert (on.active, on.disabled_reason, on.consecutive_failures) == (True, None, 0)


async def test_repeated_failures_disable_the_subscription(
    service: WebhookService, admin: Actor, store: InMemoryStore, world: World, sender: ScriptedSender
) -> None:
    subscription, _ = await subscribed(service, admin)
    sender.script = [500, 502]
    for _ in range(2):
        _, delivery = await fanned(service, store, world)
        await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id, attempt=4))
    assert (await service.get(admin, subscription.id)).active
    # A success in between resets the count.
    _, delivery = await fanned(service, store, world)
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id, attempt=1))
    assert (await service.get(admin, subscription.id)).consecutive_failures == 0
    sender.script = [500, 500, 500]
    for _ in range(3):
        _, delivery = await fanned(service, store, world)
        await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id, attempt=4))
    off = await service.get(admin, subscription.id)
    assert not off.active
    assert off.disabled_reason == "3 deliveries in a row failed"
    assert [e.type for e in store.data.events].count("WebhookSubscriptionDisabled") == 1


async def test_dns_rebinding_is_refused_at_delivery_time(
    service: WebhookService,
    admin: Actor,
    store: InMemoryStore,
    world: World,
    sender: ScriptedSender,
    resolver: TableResolver,
) -> None:
    await subscribed(service, admin)
    _, delivery = await fanned(service, store, world)
    resolver.table["hooks.example.com"] = ["169.254.169.254"]
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id, attempt=1))
    assert sender.sent == []
    refused = store.data.webhooks.deliveries[delivery.id]
    assert refused.status is DeliveryStatus.FAILED
    assert "metadata" in str(refused.last_error)
    # A name that stops resolving is a network error: retried.
    _, other = await fanned(service, store, world)
    del resolver.table["hooks.example.com"]
    with pytest.raises(RetryLater):
        await service.deliver(world.loc_a.id, other.id, ctx(world.loc_a.id, attempt=1))


async def test_redelivery_by_hand_sends_again_with_the_same_webhook_id(
    service: WebhookService, admin: Actor, store: InMemoryStore, world: World, sender: ScriptedSender
) -> None:
    subscription, _ = await subscribed(service, admin)
    _, delivery = await fanned(service, store, world)
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id))
    store.data.jobs.clear()
    again = await service.redeliver(admin, subscription.id, delivery.id)
    assert again.status is DeliveryStatus.PENDING
    (job,) = store.data.jobs
    assert job.args == {"delivery_id": str(delivery.id)}
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id))
    assert [s.headers["webhook-id"] for s in sender.sent] == [str(delivery.event_id)] * 2
    detail = await service.delivery(admin, subscription.id, delivery.id)
    assert [a.number for a in detail.attempts] == [1, 2]
    assert store.data.audit[-1].action == "redeliver"
    with pytest.raises(NotFound):
        await service.redeliver(admin, subscription.id, uuid.uuid4())


async def test_any_past_event_can_be_redelivered(
    service: WebhookService, admin: Actor, store: InMemoryStore, world: World, sender: ScriptedSender
) -> None:
    old = contact_event(
        store, world, "contact.deleted", payload={"before": {"first_name": "Bo"}, "after": None}
    )
    subscription, _ = await subscribed(service, admin, "ContactDelete")
    delivery = await service.redeliver_event(admin, subscription.id, old.id)
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id))
    body = json.loads(sender.sent[0].body)
    assert (body["type"], body["data"]["firstName"]) == ("ContactDelete", "Bo")
    # Once more: the same delivery, a second attempt.
    again = await service.redeliver_event(admin, subscription.id, old.id)
    assert again.id == delivery.id
    unsubscribed = contact_event(store, world, "opportunity.created")
    with pytest.raises(Conflict):
        await service.redeliver_event(admin, subscription.id, unsubscribed.id)
    with pytest.raises(NotFound):
        await service.redeliver_event(admin, subscription.id, uuid.uuid4())


async def test_a_deleted_subscription_stops_queued_deliveries(
    service: WebhookService, admin: Actor, store: InMemoryStore, world: World, sender: ScriptedSender
) -> None:
    subscription, _ = await subscribed(service, admin)
    _, delivery = await fanned(service, store, world)
    await service.delete(admin, subscription.id)
    await service.deliver(world.loc_a.id, delivery.id, ctx(world.loc_a.id))
    assert sender.sent == []
    assert store.data.webhooks.deliveries[delivery.id].status is DeliveryStatus.FAILED


def test_event_types_are_listed() -> None:
    names = [name for name, _ in WebhookService.event_types()]
    assert {"ContactCreate", "ContactTagUpdate", "OpportunityStatusUpdate"} <= set(names)
