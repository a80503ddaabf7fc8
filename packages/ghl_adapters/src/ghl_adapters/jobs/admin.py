"""Operators' view of the job table: counts, listings with the last error (its detail too, which location
admins never see), one job, retry by hand."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ghl_core.shared.errors import NotFound, ValidationFailed

from .statuses import STATUSES


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    kind: str
    queue: str
    status: str
    attempts: int
    lock: str | None
    args: dict[str, Any]
    scheduled_at: datetime | None
    error: str | None  # what the job's location admin reads, with the error id
    detail: str | None  # the exception's own text, for operators only
    error_at: datetime | None


_SELECT = """
SELECT j.id, j.task_name AS kind, j.queue_name AS queue, j.status::text AS status, j.attempts, j.lock,
       j.args, j.scheduled_at, e.error, e.detail, e.occurred_at AS error_at
FROM procrastinate_jobs j LEFT JOIN job_errors e ON e.job_id = j.id
"""
_LIST = text(
    _SELECT
    + """
WHERE (CAST(:status AS text) IS NULL OR j.status::text = :status)
  AND (CAST(:kind AS text) IS NULL OR j.task_name = :kind)
  AND (CAST(:queue AS text) IS NULL OR j.queue_name = :queue)
  AND (CAST(:location AS text) IS NULL OR j.args ->> 'location_id' = :location)
  AND (CAST(:before AS bigint) IS NULL OR j.id < :before)
ORDER BY j.id DESC
LIMIT :limit
"""
)
_ONE = text(_SELECT + " WHERE j.id = :id")
_STATS = text(
    "SELECT queue_name AS queue, status::text AS status, count(*) AS n FROM procrastinate_jobs "
    "GROUP BY 1, 2 ORDER BY 1, 2"
)
_RETRY = text("SELECT procrastinate_retry_job_v2(:id, now(), NULL, NULL, NULL)")


def _row(r: Any) -> JobRow:
    return JobRow(
        id=r.id,
        kind=r.kind,
        queue=r.queue,
        status=r.status,
        attempts=r.attempts,
        lock=r.lock,
        args=dict(r.args or {}),
        scheduled_at=r.scheduled_at,
        error=r.error,
        detail=r.detail,
        error_at=r.error_at,
    )


class JobAdmin:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        queue: str | None = None,
        location: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> builtins.list[JobRow]:
        if status is not None and status not in STATUSES:
            raise ValidationFailed.one("/status", f"must be one of {', '.join(STATUSES)}")
        params = {
            "status": status,
            "kind": kind,
            "queue": queue,
            "location": location,
            "before": before,
            "limit": limit,
        }
        async with self._engine.connect() as conn:
            return [_row(r) for r in (await conn.execute(_LIST, params)).all()]

    async def get(self, job_id: int) -> JobRow:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_ONE, {"id": job_id})).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return _row(row)

    async def stats(self) -> builtins.list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            return [{"queue": r.queue, "status": r.status, "count": r.n} for r in await conn.execute(_STATS)]

    async def retry(self, job_id: int) -> JobRow:
        """A failed job goes back in the queue, due now, for one more attempt."""
        job = await self.get(job_id)
        if job.status != "failed":
            raise ValidationFailed.one(
                "/job_id", f"job {job_id} is {job.status}; only failed jobs are retried"
            )
        async with self._engine.begin() as conn:
            await conn.execute(_RETRY, {"id": job_id})
        return await self.get(job_id)
