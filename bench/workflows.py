"""Workflow engine throughput and wait lateness, with one `ghl worker`-style process (queues workflows and
messages, plus the bench's own no-op queue).

1. Steps per second: N contacts (BENCH_ENROLLMENTS, 2,000 by default) enrolled by `WorkflowService.enroll`
   in a workflow of five steps that never wait (add_tag, update_field company_name, send_sms through the
   embedded outbox, whose `messages.send` jobs the same worker runs, add_tag, end); time from the
   enrollment's commit until every enrollment is completed. Check: the step-run ledger holds 5*N rows.
   Baseline in the same run: procrastinate's no-op job rate (as in bench/jobs.py) on the same worker,
   before and after the steps (after a first round and ANALYZE: see `run`). Also printed: the worker's
   CPU time per no-op job and per enrollment.
2. Wait lateness: M contacts (BENCH_WAITING, 10,000 by default; 0 skips it) enrolled in `wait 1 minute`
   then `add_tag`; lateness is the add_tag step run's start minus the enrollment's wake_at. Baseline in
   the same run: M no-op jobs scheduled for one instant, lateness from their `started` event. Also
   printed: the worker's RSS (psutil) and peak, and how many enrollments completed.

    uv run python bench/workflows.py                      # embedded PostgreSQL
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres uv run python bench/workflows.py
    BENCH_ENROLLMENTS=200 BENCH_WAITING=500 uv run python bench/workflows.py   # a quick run
    BENCH_PROFILE=/tmp/worker.prof ...   # the worker runs under cProfile and writes its stats there
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the lock file
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
from ghl_core.workflows.services import MAX_BULK

ENROLLMENTS = int(os.environ.get("BENCH_ENROLLMENTS", "2000"))
WAITING = int(os.environ.get("BENCH_WAITING", "10000"))
WAIT_MINUTES = int(os.environ.get("BENCH_WAIT_MINUTES", "1"))  # whole minutes, 1 at least (a wait's rule)
NOOP_JOBS = int(os.environ.get("BENCH_NOOP_JOBS", "5000"))
CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "16"))
QUEUES = ["workflows", "messages", "bench"]
STEPS = 5
SCHEDULE_LEAD_S = 20.0  # the baseline's no-op jobs are due this long after the bench starts enqueuing them
SECRET = "bench-" + "x" * 40

STEPS_WORKFLOW = {
    "name": "Bench steps",
    "triggers": [{"type": "manual"}],
    "steps": [
        {"id": "tag", "type": "add_tag", "tags": ["bench"]},
        {"id": "field", "type": "update_field", "field": "company_name", "value": "Bench Co"},
        {"id": "sms", "type": "send_sms", "body": "Hi {{ contact.first_name }}, thanks for your interest!"},
        {"id": "tag2", "type": "add_tag", "tags": ["bench-done"]},
        {"id": "stop", "type": "end"},
    ],
}


def wait_workflow(minutes: int) -> dict[str, Any]:
    return {
        "name": "Bench wait",
        "triggers": [{"type": "manual"}],
        "steps": [
            {"id": "w", "type": "wait", "wait": {"minutes": minutes}},
            {"id": "t", "type": "add_tag", "tags": ["woke"]},
        ],
    }


_CONTACTS = text(
    """
INSERT INTO contacts (id, location_id, first_name, email, phone, tags, created_at, updated_at)
SELECT gen_random_uuid(), :location, 'Bench ' || i, :prefix || i || '@example.com',
       '+1415' || lpad((:offset + i)::text, 7, '0'), ARRAY[]::text[], now(), now()
FROM generate_series(1, :n) AS i
RETURNING id
"""
)


def settings_for(url: str) -> Settings:
    return Settings(
        database_url=url,
        secret_key=SECRET,
        worker_concurrency=CONCURRENCY,
        _env_file=None,
    )


async def noop(ctx: JobContext, args: dict[str, Any]) -> None:
    return None


def worker_main(url: str) -> None:
    """The worker process: the platform's job kinds plus the bench's no-op, on the bench's queues."""
    configure_logging("WARNING")
    settings = settings_for(url)

    async def main() -> None:
        container = build_container(settings, url)
        kinds = [*container.job_kinds(), JobKind("bench.noop", noop)]
        try:
            await run_worker(container, kinds=kinds, queues=QUEUES)
        finally:
            await close_container(container)

    profile = os.environ.get("BENCH_PROFILE")
    if not profile:
        asyncio.run(main())
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(main())
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


def load() -> str:
    """The host's 1-minute load average: this machine is shared, so the figures say what they ran beside."""
    return f"(load {os.getloadavg()[0]:.1f})"


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - Linux only


async def wait_until(check: Any, limit_s: float = 3600.0, every_s: float = 0.05) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(every_s)
    raise TimeoutError("the worker did not finish in time")


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    if not ordered:
        return "(none)"

    def at(q: float) -> float:
        return ordered[max(0, int(len(ordered) * q) - 1)]

    return (
        f"p50 {statistics.median(ordered) * 1000:8.0f} ms  p95 {at(0.95) * 1000:8.0f} ms  "
        f"p99 {at(0.99) * 1000:8.0f} ms  max {ordered[-1] * 1000:8.0f} ms"
    )


class Bench:
    def __init__(self, url: str) -> None:
        self.url = url
        self.settings = settings_for(url)
        self.container = build_container(self.settings, url)
        self.owner = self.container.engines().owner

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.owner.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar_one()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.owner.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())

    async def location(self, name: str) -> Actor:
        operator = Actor.operator()
        tenancy = self.container.tenancy()
        agency = await tenancy.create_agency(operator, f"{name} Agency")
        location = await tenancy.create_location(
            operator, NewLocation(name=name, tier=PlanTier.ENTERPRISE), agency_id=agency.id
        )
        return Actor.operator_at(location.id)

    async def contacts(self, actor: Actor, n: int, prefix: str, offset: int) -> list[uuid.UUID]:
        async with self.owner.begin() as conn:
            result = await conn.execute(
                _CONTACTS, {"location": actor.location_id, "n": n, "prefix": prefix, "offset": offset}
            )
            ids = [row[0] for row in result]
            await conn.execute(text("ANALYZE contacts"))
        return ids

    async def publish(self, actor: Actor, document: dict[str, Any]) -> uuid.UUID:
        workflows = self.container.workflows()
        workflow = await workflows.create(actor, document)
        await workflows.publish(actor, workflow.id)
        return workflow.id

    async def enroll(self, actor: Actor, workflow_id: uuid.UUID, ids: list[uuid.UUID]) -> tuple[float, float]:
        """Enrolls in calls of at most MAX_BULK; answers (when the first call returned: its jobs are
        committed, the worker can start), total seconds the calls took)."""
        workflows = self.container.workflows()
        first = 0.0
        started = time.perf_counter()
        for i in range(0, len(ids), MAX_BULK):
            chunk = [str(c) for c in ids[i : i + MAX_BULK]]
            result = await workflows.enroll(actor, workflow_id, {"contact_ids": chunk})
            assert result.enrolled == len(chunk), result
            first = first or time.perf_counter()
        return first, time.perf_counter() - started

    async def completed(self, workflow_id: uuid.UUID) -> int:
        return int(
            await self.scalar(
                "SELECT count(*) FROM workflow_enrollments WHERE workflow_id = :w AND status = 'completed'",
                w=workflow_id,
            )
        )

    async def pending_jobs(self, task: str) -> int:
        return int(
            await self.scalar(
                "SELECT count(*) FROM procrastinate_jobs "
                "WHERE task_name = :t AND status IN ('todo', 'doing')",
                t=task,
            )
        )

    async def analyze(self) -> None:
        async with self.owner.begin() as conn:
            await conn.execute(text("ANALYZE"))

    # ------------------------------------------------------------------ baselines

    async def noop_rate(self) -> tuple[int, float]:
        """procrastinate's no-op job rate: NOOP_JOBS committed at once, drained by the worker."""
        if NOOP_JOBS <= 0:
            return 0, float("nan")
        async with self.container.uow()(TenantScope.operator()) as uow:
            await uow.jobs.enqueue(*(JobRequest("bench.noop", {"n": i}) for i in range(NOOP_JOBS)))
            started = time.perf_counter()
            await uow.commit()

        async def done() -> bool:
            return await self.pending_jobs("bench.noop") == 0

        await wait_until(done)
        return NOOP_JOBS, time.perf_counter() - started

    async def scheduled_noop_lateness(self, n: int) -> tuple[list[float], float]:
        """n no-op jobs scheduled for one instant: each one's `started` event minus that instant."""
        instant = datetime.now(UTC) + timedelta(seconds=SCHEDULE_LEAD_S)
        batch = f"sched-{uuid.uuid4().hex[:8]}"
        async with self.container.uow()(TenantScope.operator()) as uow:
            await uow.jobs.enqueue(
                *(JobRequest("bench.noop", {"batch": batch, "n": i}, run_at=instant) for i in range(n))
            )
            await uow.commit()
        margin = (instant - datetime.now(UTC)).total_seconds()

        async def done() -> bool:
            return await self.pending_jobs("bench.noop") == 0

        await asyncio.sleep(max(0.0, margin))
        await wait_until(done, every_s=0.25)
        rows = await self.rows(
            """
            SELECT extract(epoch FROM e.at - j.scheduled_at)
            FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'started'
            WHERE j.task_name = 'bench.noop' AND j.args->>'batch' = :b
            """,
            b=batch,
        )
        return [float(r[0]) for r in rows], margin

    # ------------------------------------------------------------------ the scenarios

    async def steps(self) -> dict[str, Any]:
        actor = await self.location("Bench steps")
        ids = await self.contacts(actor, ENROLLMENTS, "steps", 0)
        workflow_id = await self.publish(actor, STEPS_WORKFLOW)
        committed, enroll_s = await self.enroll(actor, workflow_id, ids)

        async def finished() -> bool:
            return await self.completed(workflow_id) >= ENROLLMENTS

        await wait_until(finished, every_s=0.2)
        elapsed = time.perf_counter() - committed

        async def sent() -> bool:
            return await self.pending_jobs("messages.send") == 0

        await wait_until(sent, every_s=0.2)
        with_messages = time.perf_counter() - committed
        ledger = int(
            await self.scalar("SELECT count(*) FROM workflow_step_runs WHERE workflow_id = :w", w=workflow_id)
        )
        messages = await self.rows(
            "SELECT status, count(*) FROM messages WHERE location_id = :l AND source = 'workflow' "
            "GROUP BY status ORDER BY status",
            l=actor.location_id,
        )
        return {
            "elapsed": elapsed,
            "with_messages": with_messages,
            "enroll_s": enroll_s,
            "ledger": ledger,
            "messages": ", ".join(f"{s} {n}" for s, n in messages),
        }

    async def waits(self, worker_pid: int) -> dict[str, Any]:
        actor = await self.location("Bench waits")
        ids = await self.contacts(actor, WAITING, "waits", 1_000_000)
        workflow_id = await self.publish(actor, wait_workflow(WAIT_MINUTES))
        committed, enroll_s = await self.enroll(actor, workflow_id, ids)
        wake: dict[uuid.UUID, datetime] = {}

        async def woke() -> bool:
            for enrollment_id, wake_at in await self.rows(
                "SELECT id, wake_at FROM workflow_enrollments "
                "WHERE workflow_id = :w AND status = 'waiting' AND wake_at IS NOT NULL",
                w=workflow_id,
            ):
                wake.setdefault(enrollment_id, wake_at)
            ran = await self.scalar(
                "SELECT count(*) FROM workflow_step_runs WHERE workflow_id = :w AND step_id = 't'",
                w=workflow_id,
            )
            return int(ran) >= WAITING

        # Every add_tag step has run (its ledger row is there), then every enrollment should complete.
        await wait_until(woke, every_s=0.5)
        elapsed = time.perf_counter() - committed

        async def finished() -> bool:
            return await self.completed(workflow_id) >= WAITING

        with contextlib.suppress(TimeoutError):
            await wait_until(finished, limit_s=10.0, every_s=0.5)
        completed = await self.completed(workflow_id)
        # Any enrollment that woke between two polls: its wait step's ledger row says until when.
        from_ledger = 0
        for enrollment_id, detail in await self.rows(
            "SELECT enrollment_id, detail FROM workflow_step_runs WHERE workflow_id = :w AND step_id = 'w'",
            w=workflow_id,
        ):
            if enrollment_id not in wake:
                wake[enrollment_id] = datetime.fromisoformat(detail.removeprefix("until "))
                from_ledger += 1
        tagged = await self.rows(
            "SELECT enrollment_id, started_at FROM workflow_step_runs "
            "WHERE workflow_id = :w AND step_id = 't'",
            w=workflow_id,
        )
        lateness = [(started_at - wake[e]).total_seconds() for e, started_at in tagged]
        waits_spread = (max(wake.values()) - min(wake.values())).total_seconds()
        rss = rss_mib(worker_pid)
        baseline, margin = await self.scheduled_noop_lateness(WAITING)
        return {
            "elapsed": elapsed,
            "completed": completed,
            "enroll_s": enroll_s,
            "lateness": lateness,
            "from_ledger": from_ledger,
            "spread": waits_spread,
            "rss": rss,
            "peak": peak_rss_mib(worker_pid),
            "baseline": baseline,
            "margin": margin,
        }


async def run(url: str) -> None:
    configure_logging("WARNING")
    bench = Bench(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHL_")}
    worker = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter and script, started once
        [sys.executable, __file__, "--worker", url], env=env
    )
    where = "embedded" if "host=" in url else "DATABASE_URL"
    try:
        await asyncio.sleep(2)  # the worker registers and starts listening
        # A fresh database has no planner statistics for procrastinate_jobs yet, and procrastinate's
        # fetch_job runs at about half speed without them (autovacuum analyzes it within minutes in
        # a database that lives). A first no-op round gives it rows, ANALYZE gives the planner its
        # statistics; then the baseline runs before and after the steps (the shared machine's load moves).
        cold_jobs, cold_s = await bench.noop_rate()
        print(f"no-op, no statistics yet: {cold_jobs} jobs in {cold_s:.2f} s {load()}", flush=True)
        await bench.analyze()
        cpu = cpu_s(worker.pid)
        noop_jobs, noop_s = await bench.noop_rate()
        noop_cpu, cpu = cpu_s(worker.pid) - cpu, cpu_s(worker.pid)
        print(f"baseline no-op: {noop_jobs} jobs in {noop_s:.2f} s {load()}", flush=True)
        steps_load = load()
        steps = await bench.steps()
        steps_load += f" -> {load()}"
        steps_cpu = cpu_s(worker.pid) - cpu
        _, noop_after_s = await bench.noop_rate()
        noop_rate = 2 * noop_jobs / (noop_s + noop_after_s) if noop_jobs else float("nan")
        rate = STEPS * ENROLLMENTS / steps["elapsed"]
        lines = [
            f"Workflows, one worker process, concurrency {CONCURRENCY}, queues {','.join(QUEUES)}"
            f" ({where} PostgreSQL):",
            f"  baseline: procrastinate no-op task        {noop_jobs:>6} jobs, before: {noop_s:7.2f} s"
            f"  {noop_jobs / noop_s:6.0f} jobs/s; after: {noop_after_s:7.2f} s"
            f"  {noop_jobs / noop_after_s:6.0f} jobs/s; both: {noop_rate:6.0f} jobs/s",
            f"            (before ANALYZE, no planner statistics: {cold_jobs / cold_s:.0f} jobs/s)",
            f"  ours: 5 non-waiting steps per enrollment  {ENROLLMENTS:>6} enrollments in "
            f"{steps['elapsed']:7.2f} s  {rate:8.0f} steps/s  ({ENROLLMENTS / steps['elapsed']:.1f}"
            f" enrollments/s) {steps_load}",
            f"        ratio steps/s / no-op jobs/s: {rate / noop_rate:.2f} (target >= 0.5)",
            f"        ledger rows {steps['ledger']} (expected {STEPS * ENROLLMENTS}:"
            f" {'ok' if steps['ledger'] == STEPS * ENROLLMENTS else 'MISMATCH'});"
            f" messages: {steps['messages']}",
            f"        enrolling took {steps['enroll_s']:.2f} s (before the clock starts);"
            f" every messages.send done at {steps['with_messages']:.2f} s"
            f" ({STEPS * ENROLLMENTS / steps['with_messages']:.0f} steps/s counting them)",
            f"        worker CPU: {1000 * noop_cpu / max(noop_jobs, 1):.2f} ms per no-op job;"
            f" {1000 * steps_cpu / ENROLLMENTS:.1f} ms per enrollment (5 steps and its messages.send),"
            f" {steps_cpu / steps['with_messages']:.0%} of one core",
            f"        worker RSS after the steps: {rss_mib(worker.pid):.0f} MiB",
        ]
        print("\n".join(lines), flush=True)
        if WAITING > 0:
            waits_load = load()
            waits = await bench.waits(worker.pid)
            waits_load += f" -> {load()}"
            more = [
                f"  wait lateness, {WAITING} enrollments waiting {WAIT_MINUTES} min then add_tag"
                f" (enrolled in {waits['enroll_s']:.1f} s, every add_tag ran {waits['elapsed']:.1f} s after"
                f" the commit; wake-ups spread over {waits['spread']:.1f} s) {waits_load}:",
                f"    ours: add_tag start - wake_at         {percentiles(waits['lateness'])}"
                f"  (n={len(waits['lateness'])}, {waits['from_ledger']} wake_at read from the ledger)",
                f"    baseline: no-op jobs due at 1 instant {percentiles(waits['baseline'])}"
                f"  (n={len(waits['baseline'])}, committed {waits['margin']:.1f} s before due)",
                f"    worker RSS at the end {waits['rss']:.0f} MiB, peak {waits['peak']:.0f} MiB",
                f"    enrollments completed: {waits['completed']} of {WAITING}"
                + (
                    ""
                    if waits["completed"] == WAITING
                    else " -- the others ran their add_tag step but did not complete"
                ),
            ]
            print("\n".join(more), flush=True)
    finally:
        worker.terminate()
        worker.wait(60)
        await close_container(bench.container)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2])
        return
    with bench_database() as url:
        asyncio.run(run(url))


if __name__ == "__main__":
    main()
