"""Outbound webhooks end to end: subscriptions through the API, events fanned out and delivered by the
job engine to a real HTTP receiver on 127.0.0.1 that verifies each signature with the Standard Webhooks
library; retries, disabling, the delivery log, redelivery, SSRF refusals and tenant isolation."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_adapters.webhooks import DnsResolver
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.permissions import Actor
from http_kit import API, Tenant, assert_problem, new_tenant, open_api, pointers
from jobs_kit import run_jobs
from support import make_container

pytestmark = pytest.mark.slow
QUEUES = ["events", "webhooks"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server: records every request and answers from a script (then 200)."""

    url: str
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def reset(self, *script: int) -> None:
        self.script[:] = list(script)
        self.received.clear()

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """Every body, checked against its signature (raises if one does not verify)."""
        return [Webhook(secret).verify(r.body, r.headers) for r in self.received]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            status = state.script.pop(0) if state.script else 200
            reply = json.dumps({"ok": status < 300, "pad": "x" * 3000}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class SwitchableResolver:
    """The system resolver, except for the names a test pins to addresses of its choosing."""

    def __init__(self) -> None:
        self.pinned: dict[str, list[str]] = {}
        self._system = DnsResolver()

    async def resolve(self, host: str, port: int) -> list[str]:
        if host in self.pinned:
            return list(self.pinned[host])
        return await self._system.resolve(host, port)


@dataclass
class Hooks:
    container: Container
    resolver: SwitchableResolver


async def _hooks(settings: Settings, **overrides: Any) -> Hooks:
    from dependency_injector import providers

    built = make_container(settings.model_copy(update=overrides))
    resolver = SwitchableResolver()
    built.webhook_resolver.override(providers.Object(resolver))
    return Hooks(built, resolver)


@pytest.fixture(scope="module")
async def lenient(settings: Settings) -> AsyncIterator[Hooks]:
    """Private receivers allowed (as GHL_WEBHOOKS_ALLOW_PRIVATE=1), quick retries, disabled after 3."""
    hooks = await _hooks(
        settings, webhooks_allow_private=True, webhook_retry_schedule="1s,1s", webhook_disable_after=3
    )
    try:
        yield hooks
    finally:
        await close_container(hooks.container)


@pytest.fixture(scope="module")
async def strict(settings: Settings) -> AsyncIterator[Hooks]:
    """The default: only public addresses."""
    hooks = await _hooks(settings, webhook_retry_schedule="1s")
    try:
        yield hooks
    finally:
        await close_container(hooks.container)


@pytest.fixture
async def hook_api(lenient: Hooks) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(lenient.container) as client:
        yield client


async def subscribe(api: httpx.AsyncClient, tenant: Tenant, url: str, *types: str) -> tuple[str, str]:
    response = await api.post(
        f"{API}/webhooks", headers=tenant.headers, json={"url": url, "event_types": list(types)}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["secret"]


async def new_contact(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> str:
    response = await api.post(
        f"{API}/contacts",
        headers=tenant.headers,
        json={"email": f"{uuid.uuid4().hex[:10]}@example.com", **fields},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def deliveries(
    api: httpx.AsyncClient, tenant: Tenant, hook_id: str, **params: str
) -> list[dict[str, Any]]:
    response = await api.get(f"{API}/webhooks/{hook_id}/deliveries", headers=tenant.headers, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_contact_and_opportunity_events_arrive_signed_and_in_order(
    lenient: Hooks, hook_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    tenant = await new_tenant(lenient.container)
    hook_id, secret = await subscribe(
        hook_api,
        tenant,
        receiver.url,
        "ContactCreate",
        "ContactUpdate",
        "ContactTagUpdate",
        "OpportunityCreate",
        "OpportunityStatusUpdate",
    )
    receiver.reset()
    contact_id = await new_contact(hook_api, tenant, first_name="Ada")
    for name in ("Bea", "Cy"):
        changed = await hook_api.patch(
            f"{API}/contacts/{contact_id}", headers=tenant.headers, json={"first_name": name}
        )
        assert changed.status_code == 200, changed.text
    actor = Actor.operator_at(tenant.location_id)
    pipeline = await lenient.container.pipelines().create(
        actor, {"name": "Sales", "stages": [{"name": "New"}, {"name": "Won"}]}
    )
    opportunity = await lenient.container.opportunities().create(
        actor, {"pipeline_id": str(pipeline.id), "contact_id": contact_id, "name": "Deal"}
    )
    await lenient.container.opportunities().move(actor, opportunity.id, {"status": "won"})
    await run_jobs(lenient.container, queues=QUEUES)

    bodies = receiver.verified(secret)  # every signature verifies
    contact_bodies = [b for b in bodies if b["data"]["id"] == contact_id]
    assert [(b["type"], b["data"]["firstName"]) for b in contact_bodies] == [
        ("ContactCreate", "Ada"),
        ("ContactUpdate", "Bea"),
        ("ContactUpdate", "Cy"),
    ]
    assert [b["type"] for b in bodies if b["data"]["id"] == str(opportunity.id)] == [
        "OpportunityCreate",
        "OpportunityStatusUpdate",
    ]
    assert all(b["data"]["locationId"] == str(tenant.location_id) for b in bodies)
    assert len({r.headers["webhook-id"] for r in receiver.received}) == len(receiver.received) == 5

    log = await deliveries(hook_api, tenant, hook_id)
    assert len(log) == 5
    assert {d["status"] for d in log} == {"delivered"}
    detail = await hook_api.get(f"{API}/webhooks/{hook_id}/deliveries/{log[0]['id']}", headers=tenant.headers)
    (attempt,) = detail.json()["attempt_log"]
    assert attempt["status_code"] == 200
    assert len(attempt["response_excerpt"]) == 1024  # the first kilobyte, no more


async def test_failures_are_retried_until_delivered_once_with_one_webhook_id(
    lenient: Hooks, hook_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    tenant = await new_tenant(lenient.container)
    hook_id, secret = await subscribe(hook_api, tenant, receiver.url, "ContactCreate")
    receiver.reset(503, 429)
    contact_id = await new_contact(hook_api, tenant)
    await run_jobs(lenient.container, queues=QUEUES)

    assert [b["data"]["id"] for b in receiver.verified(secret)] == [contact_id] * 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    (delivery,) = await deliveries(hook_api, tenant, hook_id)
    assert (delivery["status"], delivery["attempts"], delivery["event_id"]) == (
        "delivered",
        3,
        receiver.received[0].headers["webhook-id"],
    )
    detail = await hook_api.get(
        f"{API}/webhooks/{hook_id}/deliveries/{delivery['id']}", headers=tenant.headers
    )
    assert [a["status_code"] for a in detail.json()["attempt_log"]] == [503, 429, 200]


async def test_410_disables_the_subscription(
    lenient: Hooks, hook_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    tenant = await new_tenant(lenient.container)
    hook_id, _ = await subscribe(hook_api, tenant, receiver.url, "ContactCreate")
    receiver.reset(410)
    await new_contact(hook_api, tenant)
    await run_jobs(lenient.container, queues=QUEUES)
    assert len(receiver.received) == 1  # not retried
    shown = (await hook_api.get(f"{API}/webhooks/{hook_id}", headers=tenant.headers)).json()
    assert shown["active"] is False
    assert "410" in shown["disabled_reason"]
    await new_contact(hook_api, tenant)
    await run_jobs(lenient.container, queues=QUEUES)
    assert len(receiver.received) == 1  # nothing more is sent


async def test_repeated_failures_disable_with_an_event_and_an_audit_row(
    lenient: Hooks, hook_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    tenant = await new_tenant(lenient.container)
    hook_id, _ = await subscribe(hook_api, tenant, receiver.url, "ContactCreate")
    receiver.reset(*[500] * 9)  # three deliveries, three attempts each
    for _ in range(3):
        await new_contact(hook_api, tenant)
    await run_jobs(lenient.container, queues=QUEUES)
    assert len(receiver.received) == 9
    failed = await deliveries(hook_api, tenant, hook_id, status="failed")
    assert len(failed) == 3
    shown = (await hook_api.get(f"{API}/webhooks/{hook_id}", headers=tenant.headers)).json()
    assert (shown["active"], shown["disabled_reason"]) == (False, "3 deliveries in a row failed")
    async with lenient.container.engines().owner.connect() as conn:
        audit = (
            await conn.execute(
                text("SELECT count(*) FROM audit_log WHERE entity_id = :id AND action = 'disable'"),
                {"id": hook_id},
            )
        ).scalar_one()
        events = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM domain_events"
                    " WHERE entity_id = :id AND type = 'WebhookSubscriptionDisabled'"
                ),
                {"id": hook_id},
            )
        ).scalar_one()
    assert (audit, events) == (1, 1)
    # Turned on again, and a redelivery by hand goes through with the same webhook-id.
    receiver.reset()
    on = await hook_api.patch(f"{API}/webhooks/{hook_id}", headers=tenant.headers, json={"active": True})
    assert (on.json()["active"], on.json()["consecutive_failures"]) == (True, 0)
    again = await hook_api.post(
        f"{API}/webhooks/{hook_id}/deliveries/{failed[0]['id']}/redeliver", headers=tenant.headers
    )
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "pending"
    await run_jobs(lenient.container, queues=QUEUES)
    (received,) = receiver.received
    assert received.headers["webhook-id"] == failed[0]["event_id"]
    detail = await hook_api.get(
        f"{API}/webhooks/{hook_id}/deliveries/{failed[0]['id']}", headers=tenant.headers
    )
    assert detail.json()["status"] == "delivered"
    assert [a["number"] for a in detail.json()["attempt_log"]] == [1, 2, 3, 4]


async def test_a_past_event_is_redelivered_to_a_later_subscription(
    lenient: Hooks, hook_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    tenant = await new_tenant(lenient.container)
    contact_id = await new_contact(hook_api, tenant)
    async with lenient.container.engines().owner.connect() as conn:
        event_id = (
            await conn.execute(
                text("SELECT id FROM domain_events WHERE entity_id = :id AND type = 'contact.created'"),
                {"id": contact_id},
            )
        ).scalar_one()
    hook_id, secret = await subscribe(hook_api, tenant, receiver.url, "ContactCreate")
    receiver.reset()
    queued = await hook_api.post(
        f"{API}/webhooks/{hook_id}/events/{event_id}/redeliver", headers=tenant.headers
    )
    assert queued.status_code == 202, queued.text
    await run_jobs(lenient.container, queues=QUEUES)
    (body,) = receiver.verified(secret)
    assert (body["type"], body["data"]["id"]) == ("ContactCreate", contact_id)
    assert receiver.received[0].headers["webhook-id"] == str(event_id)
    unknown = await hook_api.post(
        f"{API}/webhooks/{hook_id}/events/{uuid.uuid4()}/redeliver", headers=tenant.headers
    )
    assert_problem(unknown, 404)


async def test_other_tenants_see_nothing(
    lenient: Hooks, hook_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    tenant = await new_tenant(lenient.container)
    other = await new_tenant(lenient.container)
    hook_id, _ = await subscribe(hook_api, tenant, receiver.url, "ContactCreate")
    await new_contact(hook_api, tenant)
    await run_jobs(lenient.container, queues=QUEUES)
    (delivery,) = await deliveries(hook_api, tenant, hook_id)
    for path in (
        f"/webhooks/{hook_id}",
        f"/webhooks/{hook_id}/deliveries",
        f"/webhooks/{hook_id}/deliveries/{delivery['id']}",
    ):
        assert_problem(await hook_api.get(f"{API}{path}", headers=other.headers), 404)
    assert_problem(
        await hook_api.post(
            f"{API}/webhooks/{hook_id}/deliveries/{delivery['id']}/redeliver", headers=other.headers
        ),
        404,
    )
    assert_problem(await hook_api.delete(f"{API}/webhooks/{hook_id}", headers=other.headers), 404)
    listed = await hook_api.get(f"{API}/webhooks", headers=other.headers)
    assert listed.json()["items"] == []
    # Underneath, row-level security: the other location's scope reads no row of these tables.
    async with lenient.container.uow()(TenantScope.location(other.location_id)) as uow:
        assert await uow.webhooks.get_subscription(uuid.UUID(hook_id)) is None
        assert await uow.webhooks.get_delivery(uuid.UUID(delivery["id"])) is None
        assert await uow.webhooks.attempts(uuid.UUID(delivery["id"])) == []


async def test_crud_rotate_and_event_types(
    lenient: Hooks, hook_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    tenant = await new_tenant(lenient.container)
    types = await hook_api.get(f"{API}/webhooks/event-types", headers=tenant.headers)
    names = [t["name"] for t in types.json()["items"]]
    assert {"ContactCreate", "OpportunityStatusUpdate"} <= set(names)
    hook_id, secret = await subscribe(hook_api, tenant, receiver.url, "ContactCreate")
    shown = (await hook_api.get(f"{API}/webhooks/{hook_id}", headers=tenant.headers)).json()
    assert "secret" not in shown
    changed = await hook_api.patch(
        f"{API}/webhooks/{hook_id}",
        headers=tenant.headers,
        json={"event_types": ["ContactDelete"], "description": "CRM"},
    )
    assert (changed.json()["event_types"], changed.json()["description"]) == (["ContactDelete"], "CRM")
    rotated = await hook_api.post(f"{API}/webhooks/{hook_id}/rotate-secret", headers=tenant.headers)
    assert rotated.status_code == 201
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != secret
    bad = await hook_api.patch(
        f"{API}/webhooks/{hook_id}", headers=tenant.headers, json={"event_types": ["Nope"]}
    )
    assert pointers(assert_problem(bad, 422)) == ["/event_types/0"]
    assert (await hook_api.delete(f"{API}/webhooks/{hook_id}", headers=tenant.headers)).status_code == 204
    assert_problem(await hook_api.get(f"{API}/webhooks/{hook_id}", headers=tenant.headers), 404)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://loopback.example.test/hook",
    ],
)
async def test_private_addresses_are_refused_at_subscription_time(strict: Hooks, url: str) -> None:
    strict.resolver.pinned["loopback.example.test"] = ["127.0.0.1"]
    tenant = await new_tenant(strict.container)
    async with open_api(strict.container) as api:
        response = await api.post(
            f"{API}/webhooks", headers=tenant.headers, json={"url": url, "event_types": ["ContactCreate"]}
        )
    body = assert_problem(response, 422, "validation_failed")
    assert pointers(body) == ["/url"]


async def test_dns_rebinding_is_refused_at_delivery_time(strict: Hooks, receiver: Receiver) -> None:
    strict.resolver.pinned["rebind.example.test"] = ["93.184.216.34"]
    tenant = await new_tenant(strict.container)
    async with open_api(strict.container) as api:
        hook_id, _ = await subscribe(api, tenant, "https://rebind.example.test/hook", "ContactCreate")
        strict.resolver.pinned["rebind.example.test"] = ["127.0.0.1"]  # the name now points inside
        receiver.reset()
        await new_contact(api, tenant)
        await run_jobs(strict.container, queues=QUEUES)
        (delivery,) = await deliveries(api, tenant, hook_id)
    assert delivery["status"] == "failed"
    assert "loopback" in delivery["last_error"]
    assert receiver.received == []
