"""The inbound webhook services on fakes: verify first, store once per provider event id, enqueue one
job, process once; location endpoints and their secrets."""

from __future__ import annotations

import json
import uuid

import pytest
from inbound_fakes import FakeSecretBox, FakeVerifier, InboundStore, RecordingProcessor

from ghl_core.inbound.endpoints import (
    RECEIVED_EVENT,
    SECRET_PREFIX,
    EndpointWebhookProcessor,
    InboundEndpointService,
    clean_name,
    new_signing_secret,
)
from ghl_core.inbound.models import (
    ENDPOINT_PROVIDER,
    EventStatus,
    InboundEvent,
    InboundRequest,
    InboundTarget,
    SignatureInvalid,
    safe_headers,
)
from ghl_core.inbound.ports import InboundRegistry
from ghl_core.inbound.services import PROCESS_KIND, InboundService
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import NotFound, PermissionDenied, ValidationFailed
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import LocationRole
from ghl_core.tenancy.permissions import Actor
from world import World, location_actor

PROVIDER = "acme"


@pytest.fixture
def store(clock: FixedClock) -> InboundStore:  # overrides the core conftest's: adds inbound repositories
    return InboundStore(clock)


@pytest.fixture
def verifier() -> FakeVerifier:
    return FakeVerifier(PROVIDER)


@pytest.fixture
def processor() -> RecordingProcessor:
    return RecordingProcessor()


@pytest.fixture
def registry(verifier: FakeVerifier, processor: RecordingProcessor, clock: FixedClock) -> InboundRegistry:
    registry = InboundRegistry()
    registry.add_verifier(PROVIDER, verifier)
    registry.add_processor(PROVIDER, processor, "order.paid")
    registry.add_verifier(ENDPOINT_PROVIDER, FakeVerifier(ENDPOINT_PROVIDER))
    registry.add_processor(ENDPOINT_PROVIDER, EndpointWebhookProcessor(clock))
    return registry


@pytest.fixture
def inbound(store: InboundStore, clock: FixedClock, registry: InboundRegistry) -> InboundService:
    return InboundService(store, clock, registry)


@pytest.fixture
def endpoints(store: InboundStore, clock: FixedClock) -> InboundEndpointService:
    return InboundEndpointService(store, clock, FakeSecretBox())


def _target(world: World, secret: str = "s3cret") -> InboundTarget:  # noqa: S107 - a test value
    return InboundTarget(provider=PROVIDER, scope="acct_1", location_id=world.loc_a.id, secret=secret)


def _request(
    event_id: str = "evt_1",
    signature: str = "s3cret",
    body: bytes = b'{"a": 1}',
    headers: dict[str, str] | None = None,
) -> InboundRequest:
    sent = {
        "x-signature": signature,
        "x-event-id": event_id,
        "x-event-type": "order.paid",
        "authorization": "Basic c2VjcmV0",
        "x-upstream-token": "tok",
        "content-type": "application/json",
        **(headers or {}),
    }
    return InboundRequest(method="POST", url="https://crm.example/hooks", headers=sent, body=body)


def _admin(world: World) -> Actor:
    return location_actor(world.owner, world.loc_a.id, LocationRole.ADMIN)


async def test_a_verified_callback_is_stored_raw_and_queued_once(
    inbound: InboundService, store: InboundStore, world: World
) -> None:
    receipt = await inbound.receive(_target(world), _request())

    assert receipt.duplicate is False
    assert receipt.event_id is not None
    event = store.inbound.events[receipt.event_id]
    assert (event.provider, event.scope, event.provider_event_id) == (PROVIDER, "acct_1", "evt_1")
    assert event.type == "order.paid"
    assert event.status is EventStatus.RECEIVED
    assert event.body == b'{"a": 1}'
    assert event.location_id == world.loc_a.id
    assert "authorization" not in event.headers
    assert "x-upstream-token" not in event.headers
    assert event.headers["x-event-id"] == "evt_1"
    [job] = store.data.jobs
    assert job.kind == PROCESS_KIND
    assert job.args == {"event_id": str(event.id)}
    assert job.location_id == world.loc_a.id


async def test_a_redelivered_event_id_stores_and_enqueues_nothing_more(
    inbound: InboundService, store: InboundStore, world: World
) -> None:
    first = await inbound.receive(_target(world), _request())
    again = await inbound.receive(_target(world), _request(body=b'{"a": 2}'))

    assert again.duplicate is True
    assert again.event_id == first.event_id
    assert len(store.inbound.events) == 1
    assert len(store.data.jobs) == 1
    # Another dedupe scope (another account, another endpoint) is another event.
    other = InboundTarget(provider=PROVIDER, scope="acct_2", location_id=world.loc_a.id, secret="s3cret")
    assert (await inbound.receive(other, _request())).duplicate is False
    assert len(store.inbound.events) == 2


@pytest.mark.parametrize(
    "request_",
    [
        _request(signature="wrong"),
        _request(signature=""),
        _request(event_id=""),
        _request(event_id="x" * 501),
    ],
)
async def test_nothing_is_stored_when_the_callback_does_not_verify(
    inbound: InboundService, store: InboundStore, world: World, request_: InboundRequest
) -> None:
    commits = store.commits
    with pytest.raises(SignatureInvalid):
        await inbound.receive(_target(world), request_)
    assert store.inbound.events == {}
    assert store.data.jobs == []
    assert store.commits == commits


async def test_an_unknown_provider_is_a_programming_error(inbound: InboundService, world: World) -> None:
    target = InboundTarget(provider="nobody", scope="x", location_id=world.loc_a.id)
    with pytest.raises(LookupError, match="nobody"):
        await inbound.receive(target, _request())


async def test_processing_runs_once_even_when_the_job_runs_twice(
    inbound: InboundService, store: InboundStore, world: World, processor: RecordingProcessor
) -> None:
    receipt = await inbound.receive(_target(world), _request())
    assert receipt.event_id is not None

    assert await inbound.process(world.loc_a.id, receipt.event_id) is EventStatus.PROCESSED
    assert await inbound.process(world.loc_a.id, receipt.event_id) is EventStatus.PROCESSED

    assert processor.seen == [receipt.event_id]
    event = store.inbound.events[receipt.event_id]
    assert event.attempts == 1
    assert event.processed_at == store.clock.now()
    assert event.last_error is None


async def test_a_failing_processor_records_its_error_and_raises_for_a_retry(
    inbound: InboundService, store: InboundStore, world: World, processor: RecordingProcessor
) -> None:
    processor.failures = 2
    receipt = await inbound.receive(_target(world), _request())
    assert receipt.event_id is not None

    with pytest.raises(RuntimeError):
        await inbound.process(world.loc_a.id, receipt.event_id, final_attempt=False)
    event = store.inbound.events[receipt.event_id]
    assert event.status is EventStatus.RECEIVED
    assert event.attempts == 1
    assert event.last_error == "RuntimeError: processor down"

    with pytest.raises(RuntimeError):
        await inbound.process(world.loc_a.id, receipt.event_id, final_attempt=True)
    assert store.inbound.events[receipt.event_id].status is EventStatus.FAILED

    # Retried by hand later, it succeeds and the error is cleared.
    assert await inbound.process(world.loc_a.id, receipt.event_id) is EventStatus.PROCESSED
    event = store.inbound.events[receipt.event_id]
    assert (event.attempts, event.last_error, processor.seen) == (3, None, [event.id])


async def test_an_event_no_processor_handles_is_ignored(
    inbound: InboundService, store: InboundStore, world: World, processor: RecordingProcessor
) -> None:
    receipt = await inbound.receive(_target(world), _request(headers={"x-event-type": "order.refunded"}))
    assert receipt.event_id is not None
    assert await inbound.process(world.loc_a.id, receipt.event_id) is EventStatus.IGNORED
    assert processor.seen == []


async def test_processing_an_event_of_another_location_or_none_finds_nothing(
    inbound: InboundService, world: World
) -> None:
    receipt = await inbound.receive(_target(world), _request())
    assert receipt.event_id is not None
    assert await inbound.process(world.loc_b.id, receipt.event_id) is None
    assert await inbound.process(world.loc_a.id, uuid.uuid4()) is None


async def test_events_are_listed_and_read_by_their_location_only(
    inbound: InboundService, world: World
) -> None:
    receipt = await inbound.receive(_target(world), _request())
    assert receipt.event_id is not None
    admin = _admin(world)
    listed = await inbound.list_events(admin, PageRequest())
    assert [e.id for e in listed.items] == [receipt.event_id]
    assert (await inbound.list_events(admin, PageRequest(), status=EventStatus.PROCESSED)).items == []
    assert (await inbound.get_event(admin, receipt.event_id)).body == b'{"a": 1}'

    stranger = location_actor(world.owner, world.loc_b.id, LocationRole.ADMIN)
    with pytest.raises(NotFound):
        await inbound.get_event(stranger, receipt.event_id)
    assert (await inbound.list_events(stranger, PageRequest())).items == []


# -- location endpoints -----------------------------------------------------------------------------


async def test_an_endpoint_keeps_its_secret_sealed_and_shows_it_once(
    endpoints: InboundEndpointService, store: InboundStore, world: World
) -> None:
    endpoint, secret = await endpoints.create(_admin(world), {"name": "  Zapier   leads "})

    assert endpoint.name == "Zapier leads"
    assert endpoint.enabled
    assert secret.startswith(SECRET_PREFIX)
    assert endpoint.secret_hint == secret[:10]
    assert secret.encode() not in store.inbound.endpoints[endpoint.id].secret_ciphertext
    [entry] = store.data.audit
    assert entry.action == "create"
    assert entry.entity_id == endpoint.id
    assert secret not in json.dumps(entry.after)

    target = await endpoints.target(endpoint.id)
    assert target == InboundTarget(
        provider=ENDPOINT_PROVIDER,
        scope=str(endpoint.id),
        location_id=world.loc_a.id,
        secret=secret,
        endpoint_id=endpoint.id,
    )


async def test_rotating_replaces_the_secret(endpoints: InboundEndpointService, world: World) -> None:
    endpoint, old = await endpoints.create(_admin(world), {"name": "Hook"})
    rotated, new = await endpoints.rotate_secret(_admin(world), endpoint.id)
    assert new != old
    assert rotated.secret_rotated_at is not None
    assert (await endpoints.target(endpoint.id)).secret == new


async def test_a_disabled_deleted_or_unknown_endpoint_is_not_found(
    endpoints: InboundEndpointService, world: World
) -> None:
    admin = _admin(world)
    endpoint, _ = await endpoints.create(admin, {"name": "Hook"})
    await endpoints.update(admin, endpoint.id, {"enabled": False})
    with pytest.raises(NotFound):
        await endpoints.target(endpoint.id)
    assert (
        await endpoints.update(admin, endpoint.id, {"enabled": True, "name": "Renamed"})
    ).name == "Renamed"
    assert (await endpoints.target(endpoint.id)).endpoint_id == endpoint.id

    await endpoints.delete(admin, endpoint.id)
    for missing in (endpoint.id, uuid.uuid4()):
        with pytest.raises(NotFound):
            await endpoints.target(missing)
    with pytest.raises(NotFound):
        await endpoints.get(admin, endpoint.id)
    assert (await endpoints.list(admin, PageRequest())).items == []


async def test_endpoints_belong_to_their_location_and_need_the_webhooks_permissions(
    endpoints: InboundEndpointService, world: World
) -> None:
    endpoint, _ = await endpoints.create(_admin(world), {"name": "Hook"})
    stranger = location_actor(world.owner, world.loc_b.id, LocationRole.ADMIN)
    for call in (
        endpoints.get(stranger, endpoint.id),
        endpoints.delete(stranger, endpoint.id),
        endpoints.rotate_secret(stranger, endpoint.id),
    ):
        with pytest.raises(NotFound):
            await call
    member = location_actor(world.member, world.loc_a.id, LocationRole.USER)
    with pytest.raises(PermissionDenied):
        await endpoints.create(member, {"name": "Nope"})
    assert [e.id for e in (await endpoints.list(member, PageRequest())).items] == [endpoint.id]
    assert (await endpoints.update(_admin(world), endpoint.id, {})).id == endpoint.id


@pytest.mark.parametrize(
    "data", [{}, {"name": ""}, {"name": "x" * 201}, {"name": 7}, {"name": "ok", "enabled": "yes"}]
)
async def test_bad_endpoint_input_is_refused(
    endpoints: InboundEndpointService, world: World, data: dict[str, object]
) -> None:
    with pytest.raises(ValidationFailed):
        await endpoints.create(_admin(world), data)


async def test_bad_update_input_is_refused(endpoints: InboundEndpointService, world: World) -> None:
    endpoint, _ = await endpoints.create(_admin(world), {"name": "Hook"})
    with pytest.raises(ValidationFailed):
        await endpoints.update(_admin(world), endpoint.id, {"enabled": 1})


async def test_an_endpoint_webhook_becomes_one_inbound_webhook_received_event(
    endpoints: InboundEndpointService, inbound: InboundService, store: InboundStore, world: World
) -> None:
    endpoint, secret = await endpoints.create(_admin(world), {"name": "Hook"})
    store.data.audit.clear()
    target = await endpoints.target(endpoint.id)
    receipt = await inbound.receive(target, _request(signature=secret, body=b'{"lead": "Ann"}'))
    assert receipt.event_id is not None

    for _ in range(2):
        assert await inbound.process(world.loc_a.id, receipt.event_id) is EventStatus.PROCESSED

    [event] = [e for e in store.data.events if e.type == RECEIVED_EVENT]
    after = event.payload["after"]
    assert event.location_id == world.loc_a.id
    assert event.entity_id == endpoint.id
    assert after["endpoint_id"] == str(endpoint.id)
    assert after["body"] == {"lead": "Ann"}
    assert after["event_type"] == "order.paid"
    assert after["inbound_event_id"] == str(receipt.event_id)
    assert "raw_body" not in after
    [entry] = store.data.audit
    assert (entry.actor_type, entry.actor_id, entry.action) == ("system", endpoint.id, "receive")


async def test_a_body_that_is_not_json_reaches_the_event_raw(
    endpoints: InboundEndpointService, inbound: InboundService, store: InboundStore, world: World
) -> None:
    endpoint, secret = await endpoints.create(_admin(world), {"name": "Hook"})
    target = await endpoints.target(endpoint.id)
    receipt = await inbound.receive(
        target, _request(signature=secret, body=b"name=Ann&x=\xff", headers={"content-type": "text/plain"})
    )
    assert receipt.event_id is not None
    await inbound.process(world.loc_a.id, receipt.event_id)
    [event] = [e for e in store.data.events if e.type == RECEIVED_EVENT]
    assert event.payload["after"]["body"] is None
    assert event.payload["after"]["raw_body"] == "name=Ann&x=\ufffd"


def test_signing_secrets_are_standard_webhooks_secrets() -> None:
    import base64

    secret = new_signing_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert new_signing_secret() != secret


def test_credentials_are_left_out_of_stored_headers() -> None:
    kept = safe_headers(
        {
            "Authorization": "x",
            "Cookie": "c",
            "X-Api-Key": "k",
            "X-Client-Secret": "s",
            "Webhook-Signature": "v1,abc",
            "Content-Type": "application/json",
        }
    )
    assert kept == {"webhook-signature": "v1,abc", "content-type": "application/json"}


def test_names_are_cleaned() -> None:
    assert clean_name(" a \t b ") == "a b"
    with pytest.raises(ValidationFailed):
        clean_name("bad\x00name")


def test_the_registry_falls_back_to_the_providers_catch_all_processor() -> None:
    registry = InboundRegistry()
    specific, catch_all = RecordingProcessor(), RecordingProcessor()
    registry.add_processor("p", specific, "a")
    registry.add_processor("p", catch_all)
    registry.add_verifier("p", FakeVerifier("p"))
    assert registry.processor("p", "a") is specific
    assert registry.processor("p", "b") is catch_all
    assert registry.processor("p", None) is catch_all
    assert registry.processor("q", "a") is None
    assert registry.providers == ["p"]


def test_an_event_reads_its_body() -> None:
    event = InboundEvent(
        id=uuid.uuid4(),
        location_id=uuid.uuid4(),
        provider="p",
        scope="s",
        provider_event_id="e",
        type=None,
        headers={},
        body=b"[1, 2]",
        content_type=None,
        status=EventStatus.RECEIVED,
        received_at=FixedClock().now(),
    )
    assert event.json_body() == [1, 2]
    assert event.size == 6
    assert event.text_body() == "[1, 2]"
