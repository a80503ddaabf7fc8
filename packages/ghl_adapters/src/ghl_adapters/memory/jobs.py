"""The in-memory repository of a location's failed jobs (what `GET /api/v1/jobs/failed` lists).

Decisions:
- A job that failed for good is a row of `FAILED_JOBS`, keyed by its serial id and tagged with its
  location; `record_failed_job` is how the job queue (or a test) puts one there. The SQL adapter reads
  procrastinate's table through functions that answer only for the transaction's location: here the
  rows of other locations are invisible the same way, and the operator sees them all.
- `retry` puts the job back in the queue now (the queue's table of `queue.py`, so it commits or rolls
  back with the unit of work) and removes it from the failed ones; False when the location has no
  such failed job.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass

from ghl_core.jobs.models import FailedJob
from ghl_core.jobs.ports import JobRequest

from .queue import JOBS, QueuedJob
from .store import MemoryRepository, MemoryStore, Table


@dataclass(frozen=True, slots=True)
class FailedJobRow:
    location_id: uuid.UUID | None
    job: FailedJob
    request: JobRequest


FAILED_JOBS: Table[int, FailedJobRow] = Table("failed_jobs")


def record_failed_job(
    store: MemoryStore, request: JobRequest, *, attempts: int, error: str | None
) -> FailedJob:
    """Files a job that failed for good under its location, committed at once (as the worker's own
    transaction marks a procrastinate job failed)."""
    serial = store.next_serial()
    now = store.clock.now()
    job = FailedJob(
        id=serial,
        kind=request.kind,
        queue=request.queue or "default",
        attempts=attempts,
        args=dict(request.args),
        scheduled_at=request.run_at,
        error=error,
        failed_at=now,
    )
    # Committed tables are replaced, never changed in place (open units of work hold them as their base).
    rows = dict(store.committed(FAILED_JOBS))
    rows[serial] = FailedJobRow(location_id=request.location_id, job=job, request=request)
    store.tables[FAILED_JOBS.name] = rows
    return job


class MemoryFailedJobRepository(MemoryRepository):
    def _mine(self) -> builtins.list[FailedJobRow]:
        return [r for r in self.rows(FAILED_JOBS).values() if self.sees_location(r.location_id)]

    async def list(self, limit: int, before: int | None) -> builtins.list[FailedJob]:
        rows = [r.job for r in self._mine() if before is None or r.job.id < before]
        return sorted(rows, key=lambda j: j.id, reverse=True)[:limit]

    async def retry(self, job_id: int) -> bool:
        found = self.rows(FAILED_JOBS).get(job_id)
        if found is None or not self.sees_location(found.location_id):
            return False
        del self.rows(FAILED_JOBS)[job_id]
        serial = self._uow.store.next_serial()
        self.rows(JOBS)[serial] = QueuedJob(
            serial,
            JobRequest(
                kind=found.request.kind,
                args=dict(found.request.args),
                location_id=found.request.location_id,
                lock=found.request.lock,
                queueing_lock=found.request.queueing_lock,
                queue=found.request.queue,
            ),
        )
        return True
