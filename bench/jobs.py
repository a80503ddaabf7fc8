"""Job engine throughput and event-delivery latency, with one `ghl worker`-style process.

Baseline: procrastinate running a no-op task (enqueue N, time until all succeeded). Ours: N contacts
created through the core service, each commit dispatching its `contact.created` event through
`events.consume` -> webhook fan-out -> `webhooks.deliver` -> a signed POST to a local receiver. Figures:
jobs/s for the no-op, events/s delivered, and latency from commit to receipt (p50/p95).

    uv run python bench/jobs.py                      # embedded PostgreSQL
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres uv run python bench/jobs.py
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_database

from ghl_adapters.container import build_container, close_container
from ghl_adapters.jobs.kinds import JobKind
from ghl_adapters.jobs.worker import run_worker
from ghl_adapters.observability import configure_logging
from ghl_adapters.settings import Settings
from ghl_core.jobs.ports import JobContext, JobRequest
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation

NOOP_JOBS = int(os.environ.get("BENCH_NOOP_JOBS", "5000"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000"))
CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "16"))
PACED_EVENTS = int(os.environ.get("BENCH_PACED_EVENTS", "100"))
PACE_S = 0.1
SECRET = "bench-" + "x" * 40


def settings_for(url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url=url,
        secret_key=SECRET,
        webhooks_allow_private=True,
        worker_concurrency=CONCURRENCY,
        _env_file=None,
    )


async def noop(ctx: JobContext, args: dict[str, Any]) -> None:
    return None


def worker_main(url: str) -> None:
    """The worker process: the platform's job kinds plus the bench's no-op."""
    configure_logging("WARNING")
    settings = settings_for(url)

    async def main() -> None:
        container = build_container(settings, url)
        kinds = [*container.job_kinds(), JobKind("bench.noop", noop)]
        try:
            await run_worker(container, kinds=kinds)
        finally:
            await close_container(container)

    asyncio.run(main())


class Receiver:
    """A webhook receiver on 127.0.0.1 in its own thread and event loop: notes when each event arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.count = 0
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        arrived = time.time()
        payload = json.loads(body)
        self.arrivals.setdefault(str(payload["data"]["id"]), arrived)
        self.count += 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def start(self) -> None:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


async def wait_until(check: Any, limit_s: float = 600.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("the worker did not finish in time")


async def run(url: str) -> None:
    configure_logging("WARNING")
    settings = settings_for(url)
    container = build_container(settings, url)
    operator = Actor.operator()
    agency = await container.tenancy().create_agency(operator, "Bench Agency")
    location = await container.tenancy().create_location(
        operator, NewLocation(name="Bench", tier=PlanTier.ENTERPRISE), agency_id=agency.id
    )
    actor = Actor.operator_at(location.id)
    receiver = Receiver()
    receiver.start()
    await container.webhooks().create(
        actor, {"url": f"http://127.0.0.1:{receiver.port}/hook", "event_types": ["ContactCreate"]}
    )
    owner = container.engines().owner

    async def count(where: str) -> int:
        async with owner.connect() as conn:
            return int(
                (
                    await conn.execute(text(f"SELECT count(*) FROM procrastinate_jobs WHERE {where}"))
                ).scalar_one()
            )

    env = {k: v for k, v in os.environ.items() if not k.startswith("GHL_")}
    worker = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter and script, started once
        [sys.executable, __file__, "--worker", url], env=env
    )
    try:
        await asyncio.sleep(2)  # the worker registers and starts listening
        # Baseline: no-op jobs, all committed at once, drained by the one worker process.
        async with container.uow()(TenantScope.operator()) as uow:
            await uow.jobs.enqueue(*(JobRequest("bench.noop", {"n": i}) for i in range(NOOP_JOBS)))
            started = time.perf_counter()
            await uow.commit()
        await wait_until(lambda: _all_done(count, "task_name = 'bench.noop'"))
        noop_seconds = time.perf_counter() - started

        # Ours: each commit's event goes through events.consume, fan-out, webhooks.deliver and a POST.
        commits: dict[str, float] = {}
        contacts = container.contacts()
        gate = asyncio.Semaphore(8)

        async def create(i: int) -> None:
            async with gate:
                made = await contacts.create(
                    actor, {"first_name": f"Bench {i}", "email": f"b{i}-{uuid.uuid4().hex[:6]}@example.com"}
                )
                commits[str(made.id)] = time.time()

        started = time.perf_counter()
        await asyncio.gather(*(create(i) for i in range(EVENTS)))
        created_seconds = time.perf_counter() - started

        async def delivered() -> bool:
            return len(receiver.arrivals) >= EVENTS

        await wait_until(delivered)
        dispatch_seconds = time.perf_counter() - started
        latencies = sorted(receiver.arrivals[c] - at for c, at in commits.items())
        p50 = statistics.median(latencies) * 1000
        p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
        # Latency below capacity: one commit every PACE_S, so no backlog builds up.
        paced: dict[str, float] = {}
        for i in range(PACED_EVENTS):
            made = await contacts.create(actor, {"first_name": f"Paced {i}", "email": f"p{i}@paced.example"})
            paced[str(made.id)] = time.time()
            await asyncio.sleep(PACE_S)

        async def paced_delivered() -> bool:
            return all(c in receiver.arrivals for c in paced)

        await wait_until(paced_delivered)
        paced_latencies = sorted(receiver.arrivals[c] - at for c, at in paced.items())
        q50 = statistics.median(paced_latencies) * 1000
        q95 = paced_latencies[int(len(paced_latencies) * 0.95) - 1] * 1000

        where = "embedded" if "host=" in url else "DATABASE_URL"
        dupes = receiver.count - len(receiver.arrivals)
        lines = [
            f"Job engine, one worker process, concurrency {CONCURRENCY} ({where} PostgreSQL):",
            f"  baseline: procrastinate no-op task    {NOOP_JOBS:>6} jobs   in {noop_seconds:6.2f} s"
            f"  {NOOP_JOBS / noop_seconds:8.0f} jobs/s",
            f"  ours: event -> signed POST received   {EVENTS:>6} events in {dispatch_seconds:6.2f} s"
            f"  {EVENTS / dispatch_seconds:8.0f} events/s ({2 * EVENTS / dispatch_seconds:.0f} jobs/s)",
            f"        {EVENTS} contacts committed in {created_seconds:.2f} s"
            f" ({EVENTS / created_seconds:.0f}/s, 8 at a time)",
            f"        burst: commit -> receipt (queueing incl.)  p50 {p50:8.1f} ms  p95 {p95:8.1f} ms"
            f"  max {latencies[-1] * 1000:8.1f} ms",
            f"        paced at {1 / PACE_S:.0f} commits/s ({PACED_EVENTS} events): commit -> receipt"
            f"  p50 {q50:8.1f} ms  p95 {q95:8.1f} ms",
            f"        receiver saw {receiver.count} POSTs for {len(receiver.arrivals)} events"
            f" (repeats: {dupes})",
        ]
        print("\n".join(lines))
    finally:
        worker.terminate()
        worker.wait(30)
        receiver.stop()
        await close_container(container)


async def _all_done(count: Any, where: str) -> bool:
    return await count(f"{where} AND status NOT IN ('succeeded')") == 0


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2])
        return
    with bench_database() as url:
        asyncio.run(run(url))


if __name__ == "__main__":
    main()
