"""Reliability of event delivery with real worker processes and a real receiver on 127.0.0.1:

- `kill -9` of a worker in the middle of a burst of 1,000 events: every event reaches the receiver,
  signed, and no event is received again after its delivery was acknowledged;
- a receiver that is down for a while gets everything when it comes back, once each.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook
from worker_kit import start_worker, stop, wait_until, worker_env

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_core.tenancy.permissions import Actor
from jobs_kit import run_jobs
from support import Tenant, make_container, new_tenant

pytestmark = pytest.mark.slow

BURST = 1000
KILL_AFTER = 150  # events received before the first worker is killed
WAIT_S = 240.0
STALLED_AFTER_S = "3"
QUEUES = "events,webhooks"


@dataclass
class Arrival:
    webhook_id: str
    at: float
    verified: bool


@dataclass
class Receiver:
    port: int
    secret: str = ""
    arrivals: list[Arrival] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self) -> set[str]:
        with self.lock:
            return {a.webhook_id for a in self.arrivals}


@contextmanager
def receiving(port: int = 0, state: Receiver | None = None) -> Iterator[Receiver]:
    receiver = state or Receiver(port)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            declared = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(declared)
            if len(body) < declared:
                return  # the sender died mid-request (the killed worker): not a delivery
            headers = dict(self.headers.items())
            try:
                Webhook(receiver.secret).verify(body, headers)
                verified = True
            except Exception:
                verified = False
            with receiver.lock:
                receiver.arrivals.append(Arrival(headers.get("webhook-id", ""), time.time(), verified))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


async def acknowledged(container: Container, subscription_id: uuid.UUID) -> dict[str, datetime]:
    """event id -> when its delivery was recorded as acknowledged."""
    async with container.engines().owner.connect() as conn:
        rows = await conn.execute(
            text("SELECT event_id, status, delivered_at FROM webhook_deliveries WHERE subscription_id = :s"),
            {"s": subscription_id},
        )
        return {str(r.event_id): r.delivered_at for r in rows if r.status == "delivered"}


async def subscribe(container: Container, tenant: Tenant, receiver: Receiver) -> uuid.UUID:
    subscription, secret = await container.webhooks().create(
        Actor.operator_at(tenant.location_id), {"url": receiver.url, "event_types": ["ContactCreate"]}
    )
    receiver.secret = secret
    return subscription.id


async def create_contacts(container: Container, tenant: Tenant, count: int) -> None:
    contacts = container.contacts()
    actor = Actor.operator_at(tenant.location_id)
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with gate:
            await contacts.create(
                actor, {"first_name": f"Burst {i}", "email": f"{uuid.uuid4().hex}@example.com"}
            )

    await asyncio.gather(*(one(i) for i in range(count)))


async def test_kill_9_mid_burst_loses_no_event_and_repeats_none_acknowledged(
    settings: Settings, tmp_path: Path
) -> None:
    container = make_container(settings.model_copy(update={"webhooks_allow_private": True}))
    env = worker_env(settings, tmp_path, stalled_after=STALLED_AFTER_S, GHL_WEBHOOKS_ALLOW_PRIVATE="1")
    log = tmp_path / "workers.log"
    try:
        # The suite's earlier tests leave events of their own locations queued: drained here, so the
        # workers below spend the wait on this burst alone.
        await run_jobs(container, queues=["events", "webhooks"])
        tenant = await new_tenant(container)
        with receiving() as receiver:
            subscription_id = await subscribe(container, tenant, receiver)
            first = start_worker(env, log, queues=QUEUES)
            second: subprocess.Popen[bytes] | None = None
            try:
                burst = asyncio.create_task(create_contacts(container, tenant, BURST))
                await wait_until(
                    lambda: len(receiver.ids()) >= KILL_AFTER,
                    "the first deliveries",
                    within=WAIT_S,
                    poll=0.1,
                )
                first.send_signal(signal.SIGKILL)  # no goodbye: its running jobs stay 'doing'
                first.wait()
                second = start_worker(env, log, queues=QUEUES)
                await burst
                await wait_until(
                    lambda: len(receiver.ids()) >= BURST, f"{BURST} distinct events", within=WAIT_S, poll=0.1
                )
                # Let any straggling repeat arrive before judging.
                await asyncio.sleep(2)
            finally:
                for process in (first, second):
                    if process is not None:
                        stop(process)

        acks = await acknowledged(container, subscription_id)
        async with container.engines().owner.connect() as conn:
            events = {
                str(r.id)
                for r in await conn.execute(
                    text("SELECT id FROM domain_events WHERE location_id = :l AND type = 'contact.created'"),
                    {"l": tenant.location_id},
                )
            }
        assert len(events) == BURST
        # Every event delivered and acknowledged; every request signed.
        assert receiver.ids() == events == set(acks), log.read_text()[-3000:]
        assert all(a.verified for a in receiver.arrivals)
        # A repeat may only be a request that was in flight when the worker died: never one made after
        # the delivery had been acknowledged.
        late = [a for a in receiver.arrivals if a.at > acks[a.webhook_id].timestamp() + 0.05]
        assert late == []
        repeats = len(receiver.arrivals) - len(events)
        assert repeats <= 8, f"{repeats} repeats: more than the killed worker had in flight"
    finally:
        await close_container(container)


async def test_a_receiver_that_was_down_gets_everything_when_it_comes_back(settings: Settings) -> None:
    container = make_container(
        settings.model_copy(update={"webhooks_allow_private": True, "webhook_retry_schedule": "1h,1h,1h"})
    )
    try:
        tenant = await new_tenant(container)
        with socket.socket() as sock:  # a port nobody listens on, for now
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        down = Receiver(port)
        subscription_id = await subscribe(container, tenant, down)
        await create_contacts(container, tenant, 20)
        # Every first attempt meets a closed port and is scheduled again, an hour later.
        await run_jobs(container, queues=["events", "webhooks"], fast_forward=False)
        async with container.engines().owner.connect() as conn:
            states = (
                await conn.execute(
                    text(
                        "SELECT status, attempts, last_error FROM webhook_deliveries "
                        "WHERE subscription_id = :s"
                    ),
                    {"s": subscription_id},
                )
            ).all()
        assert len(states) == 20
        assert {(s.status, s.attempts) for s in states} == {("pending", 1)}
        assert all(s.last_error for s in states)

        with receiving(port, down) as receiver:
            await run_jobs(container, queues=["events", "webhooks"])
        assert len(receiver.arrivals) == 20
        assert len(receiver.ids()) == 20  # once each
        assert all(a.verified for a in receiver.arrivals)
        assert set((await acknowledged(container, subscription_id)).keys()) == receiver.ids()
    finally:
        await close_container(container)
