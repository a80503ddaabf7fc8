"""Running queued jobs inside a test: a real procrastinate worker on the test database, in the test's own
event loop, until nothing is left to do. Retries scheduled for later can be brought forward."""

from __future__ import annotations

from datetime import datetime

from procrastinate.app import WorkerOptions
from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_adapters.jobs.kinds import JobKind
from ghl_adapters.jobs.worker import worker_app

_DUE_NOW = text(
    "UPDATE procrastinate_jobs SET scheduled_at = now() "
    "WHERE status = 'todo' AND scheduled_at > now() AND (CAST(:queues AS text[]) IS NULL "
    "OR queue_name = ANY(CAST(:queues AS text[]))) "
    "AND (CAST(:due_by AS timestamptz) IS NULL OR scheduled_at <= CAST(:due_by AS timestamptz))"
)
_WAITING = text(
    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND (CAST(:queues AS text[]) IS NULL "
    "OR queue_name = ANY(CAST(:queues AS text[]))) AND (scheduled_at IS NULL OR scheduled_at <= now())"
)


async def waiting_jobs(container: Container, queues: list[str] | None = None) -> int:
    async with container.engines().owner.connect() as conn:
        return int((await conn.execute(_WAITING, {"queues": queues})).scalar_one())


async def run_jobs(
    container: Container,
    *,
    queues: list[str] | None = None,
    extra_kinds: list[JobKind] | None = None,
    fast_forward: bool = True,
    rounds: int = 30,
    due_by: datetime | None = None,
) -> None:
    """Runs the due jobs of ``queues`` (all when None) until none is waiting. With ``fast_forward``, jobs
    scheduled for later (retries with backoff) are made due first, round after round. ``extra_kinds``
    are registered beside the platform's own (test-only kinds). ``due_by`` limits the fast-forward to jobs
    scheduled up to then (a test clock's "now"): later ones stay where they are."""
    app = worker_app(container, [*container.job_kinds(), *(extra_kinds or [])])
    async with app.open_async():
        for _ in range(rounds):
            if fast_forward:
                async with container.engines().owner.begin() as conn:
                    await conn.execute(_DUE_NOW, {"queues": queues, "due_by": due_by})
            if not await waiting_jobs(container, queues):
                return
            options: WorkerOptions = {
                "wait": False,
                "install_signal_handlers": False,
                "listen_notify": False,
                "concurrency": 4,
            }
            if queues:
                options["queues"] = queues
            await app.run_worker_async(**options)
    async with container.engines().owner.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT task_name, status, attempts, args, scheduled_at <= now() AS due "
                    "FROM procrastinate_jobs WHERE status IN ('todo', 'doing') ORDER BY id LIMIT 10"
                )
            )
        ).all()
    raise AssertionError(f"jobs were still waiting after {rounds} rounds: {[tuple(r) for r in rows]}")
