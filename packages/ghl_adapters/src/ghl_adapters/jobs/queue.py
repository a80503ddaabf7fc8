"""Enqueueing inside the caller's transaction: procrastinate defers on the unit of work's own connection,
so a job exists exactly when the change that caused it committed."""

from __future__ import annotations

from typing import Any

import psycopg
from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.jobs.ports import JobRequest


def queue_of(kind: str) -> str:
    """A kind's queue is its first dotted part: "webhooks.deliver" runs on the "webhooks" queue."""
    return kind.split(".", 1)[0]


def libpq_url(url: str) -> str:
    """procrastinate's connector takes a libpq URL: the SQLAlchemy one without its driver name."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class _App(App):
    """procrastinate registers its built-in tasks in every App by renaming the tasks of one module-level
    blueprint, so each App a process makes renames them again (`builtin:`, `builtin:builtin:`, ...) and
    logs the registration again: three times under `ghl serve`. None of them is ours to run (`jobs.prune`
    removes finished jobs), so our apps leave the blueprint alone."""

    def _register_builtin_tasks(self) -> None:
        return


def procrastinate_app(database_url: str, **connector_options: Any) -> App:
    """An app whose connector opens a pool only when asked to (workers, operators): deferring from a
    request never touches it, it goes through the request's own connection."""
    return _App(connector=PsycopgConnector(conninfo=libpq_url(database_url), **connector_options))


def job_arguments(job: JobRequest) -> dict[str, Any]:
    args = dict(job.args)
    if job.location_id is not None:
        args["location_id"] = str(job.location_id)
    return args


class ProcrastinateJobQueue:
    def __init__(self, conn: AsyncConnection, app: App) -> None:
        self._c = conn
        self._app = app

    async def _driver(self) -> psycopg.AsyncConnection[Any]:
        raw = await self._c.get_raw_connection()
        driver = raw.driver_connection
        if not isinstance(driver, psycopg.AsyncConnection):  # pragma: no cover - psycopg is the driver
            raise TypeError("the job queue needs a psycopg connection")
        return driver

    async def enqueue(self, *jobs: JobRequest) -> None:
        if not jobs:
            return
        driver = await self._driver()
        for job in jobs:
            deferrer = self._app.configure_task(
                job.kind,
                lock=job.lock,
                queueing_lock=job.queueing_lock,
                schedule_at=job.run_at,
                queue=job.queue or queue_of(job.kind),
                connection=driver,
            )
            if job.queueing_lock is None:
                await deferrer.defer_async(**job_arguments(job))
                continue
            # A queueing lock already taken is a unique violation: keep it from aborting the caller's
            # transaction with a savepoint, and drop the duplicate as the lock intends.
            try:
                async with self._c.begin_nested():
                    await deferrer.defer_async(**job_arguments(job))
            except AlreadyEnqueued:
                continue
