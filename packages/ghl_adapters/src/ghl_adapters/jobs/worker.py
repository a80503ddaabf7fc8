"""Running jobs: a procrastinate worker with every job kind registered, stalled-job recovery, pruning."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from typing import Any

import structlog
from procrastinate import App
from procrastinate import JobContext as ProcrastinateContext
from procrastinate.exceptions import ConnectorException, UniqueViolation
from procrastinate.jobs import Status
from procrastinate.manager import QUEUEING_LOCK_CONSTRAINT
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ghl_adapters.container import Container
from ghl_adapters.workflows.jobs import REMINDERS_CRON, REMINDERS_KIND
from ghl_core.jobs.errors import error_detail, public_error
from ghl_core.jobs.ports import JobContext

from .kinds import Handler, JobKind, RetrySchedule, ScheduledRetry
from .queue import procrastinate_app

log = structlog.get_logger("ghl.jobs")

PRUNE_KIND = "jobs.prune"

_RECORD_ERROR = text(
    """
    INSERT INTO job_errors (job_id, location_id, kind, attempt, error, detail)
    SELECT :job_id, l.id, :kind, :attempt, :error, :detail
    FROM (SELECT 1) one LEFT JOIN locations l ON l.id = CAST(:location_id AS uuid)
    ON CONFLICT (job_id) DO UPDATE
      SET attempt = EXCLUDED.attempt, error = EXCLUDED.error, detail = EXCLUDED.detail, occurred_at = now()
    """
)


def _location(args: dict[str, Any]) -> uuid.UUID | None:
    value = args.get("location_id")
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def record_job_error(owner: AsyncEngine, ctx: JobContext, exc: BaseException) -> None:
    """Keeps the last error of each job, so a failed one can be read and retried with its cause: what
    its location admin may read, and the detail for operators, also logged with the traceback under the
    same error id (ghl_core/jobs/errors.py)."""
    detail = error_detail(exc)
    emit = log.error if ctx.final_attempt else log.warning  # a retry to come is no error yet
    emit(
        "job_failed",
        error_id=ctx.error_id,
        job_id=ctx.job_id,
        kind=ctx.kind,
        attempt=ctx.attempt,
        max_attempts=ctx.max_attempts,
        location_id=str(ctx.location_id) if ctx.location_id else None,
        detail=detail,
        exc_info=exc,
    )
    try:
        async with owner.begin() as conn:
            await conn.execute(
                _RECORD_ERROR,
                {
                    "job_id": ctx.job_id,
                    "kind": ctx.kind,
                    "attempt": ctx.attempt,
                    "error": public_error(exc, ctx.error_id),
                    "detail": detail,
                    "location_id": str(ctx.location_id) if ctx.location_id else None,
                },
            )
    except Exception:  # the job's own error matters more than the bookkeeping's
        log.exception("job_error_not_recorded", job_id=ctx.job_id)


def _task(owner: AsyncEngine, kind: JobKind) -> Any:
    async def run(context: ProcrastinateContext, **args: Any) -> None:
        job = context.job
        if job.id is None:  # pragma: no cover - a fetched job always has its id
            raise RuntimeError("the job has no id")
        ctx = JobContext(
            job_id=job.id,
            kind=kind.name,
            attempt=job.attempts + 1,
            max_attempts=kind.retry.max_attempts,
            location_id=_location(args),
        )
        try:
            await kind.handler(ctx, args)
        except Exception as exc:
            await record_job_error(owner, ctx, exc)
            raise

    run.__name__ = kind.name.replace(".", "_")
    return run


def pruner(app: App, *, keep_hours: int) -> Handler:
    """The `jobs.prune` handler, bound to the worker's own app: the one app a running worker has open.
    (It once used the container's job app, which only defers on a caller's connection and is never
    opened, so every hourly run failed with AppNotOpen and finished jobs were never deleted.)"""

    async def prune_jobs(ctx: JobContext, args: dict[str, Any]) -> None:
        await app.job_manager.delete_old_jobs(nb_hours=keep_hours)

    return prune_jobs


def worker_app(container: Container, kinds: list[JobKind] | None = None) -> App:
    """A procrastinate app with its own pool and every kind registered as a task: ``kinds``, or the
    platform's own as the container binds them (``container.job_kinds()``)."""
    settings = container.settings()
    app = procrastinate_app(
        container.database_url(), min_size=1, max_size=max(2, settings.worker_concurrency + 2)
    )
    all_kinds = [
        *(kinds if kinds is not None else container.job_kinds()),
        JobKind(PRUNE_KIND, pruner(app, keep_hours=settings.jobs_keep_hours), RetrySchedule([60.0])),
    ]
    owner = container.engines().owner
    for kind in all_kinds:
        app.task(
            name=kind.name,
            queue=kind.queue if kind.queue != "default" else kind.name.split(".", 1)[0],
            pass_context=True,
            retry=ScheduledRetry(kind.retry),
        )(_task(owner, kind))
    app.periodic(cron="17 * * * *", periodic_id="prune")(app.tasks[PRUNE_KIND])
    if REMINDERS_KIND in app.tasks:  # absent when the caller picked its own kinds
        app.periodic(cron=REMINDERS_CRON, periodic_id="workflow_reminders")(app.tasks[REMINDERS_KIND])
    return app


async def recover_stalled(app: App, stalled_after: float) -> int:
    """Puts back the running jobs of workers that stopped sending heartbeats (killed, frozen)."""
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after)
    recovered = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
            recovered += 1
        except UniqueViolation as exc:
            if exc.constraint_name != QUEUEING_LOCK_CONSTRAINT:
                raise
            # A twin with the same queueing lock already waits, and jobs sharing a queueing lock do the
            # same work (a consumer's next batch, a campaign's next run). Putting this one back would
            # break "one waiting per queueing lock"; leaving it 'doing' would hold its lock forever and
            # keep the twin from ever starting. It ends as aborted and the twin does the work.
            with contextlib.suppress(ConnectorException):
                await app.job_manager.finish_job_by_id_async(
                    int(job.id or 0), Status.ABORTED, delete_job=False
                )
                recovered += 1
        except ConnectorException:  # another worker recovered it first
            continue
    if recovered:
        log.warning("stalled_jobs_recovered", count=recovered)
    await app.job_manager.prune_stalled_workers(seconds_since_heartbeat=stalled_after)
    return recovered


async def _recovery_loop(app: App, stalled_after: float) -> None:
    while True:
        await asyncio.sleep(stalled_after / 2)
        try:
            await recover_stalled(app, stalled_after)
        except Exception:  # keep the loop alive through a database restart
            log.exception("stalled_job_recovery_failed")


async def run_worker(
    container: Container,
    *,
    concurrency: int | None = None,
    queues: list[str] | None = None,
    install_signal_handlers: bool = True,
    name: str | None = None,
    kinds: list[JobKind] | None = None,
) -> None:
    """Runs until cancelled or signalled (SIGINT/SIGTERM): then finishes its jobs, or hands them back
    after GHL_JOBS_SHUTDOWN_SECONDS."""
    settings = container.settings()
    stalled_after = settings.jobs_stalled_after_seconds
    app = worker_app(container, kinds)
    options: dict[str, Any] = {"queues": queues} if queues else {}
    async with app.open_async():
        recovery = asyncio.create_task(_recovery_loop(app, stalled_after))
        try:
            await app.run_worker_async(
                concurrency=concurrency or settings.worker_concurrency,
                **options,
                name=name or f"ghl-{socket.gethostname()}",
                install_signal_handlers=install_signal_handlers,
                update_heartbeat_interval=max(0.5, stalled_after / 3),
                stalled_worker_timeout=stalled_after,
                shutdown_graceful_timeout=settings.jobs_shutdown_seconds,
                fetch_job_polling_interval=settings.jobs_poll_seconds,
            )
        finally:
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery
