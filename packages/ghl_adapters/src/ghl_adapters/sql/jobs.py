"""A location's failed jobs, through the SECURITY DEFINER functions of migration 0010: the application role
cannot read procrastinate's tables, and the functions only answer for the transaction's location."""

from __future__ import annotations

import builtins

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.jobs.models import FailedJob

_LIST = text("SELECT * FROM ghl_location_failed_jobs(:limit, :before)")
_RETRY = text("SELECT ghl_location_retry_job(:job_id)")


class SqlFailedJobRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def list(self, limit: int, before: int | None) -> builtins.list[FailedJob]:
        rows = (await self._c.execute(_LIST, {"limit": limit, "before": before})).all()
        return [
            FailedJob(
                id=r.id,
                kind=r.kind,
                queue=r.queue,
                attempts=r.attempts,
                args=dict(r.args or {}),
                scheduled_at=r.scheduled_at,
                error=r.error,
                failed_at=r.failed_at,
            )
            for r in rows
        ]

    async def retry(self, job_id: int) -> bool:
        return bool((await self._c.execute(_RETRY, {"job_id": job_id})).scalar_one())
