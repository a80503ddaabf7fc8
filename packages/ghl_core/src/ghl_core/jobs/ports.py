"""The job engine as the core sees it: enqueue inside the current transaction, nothing more."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ghl_core.jobs.models import FailedJobRepository
from ghl_core.shared.uow import Transaction


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One unit of background work, named by its kind (``"webhooks.deliver"``) and JSON arguments.

    ``lock``: jobs sharing a lock run one at a time, in the order they were enqueued (used to keep
    deliveries of one entity in order). ``queueing_lock``: at most one job with this value waits in
    the queue at a time; a second enqueue of the same value is dropped. ``run_at``: not before then.
    """

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    location_id: uuid.UUID | None = None
    run_at: datetime | None = None
    lock: str | None = None
    queueing_lock: str | None = None
    queue: str | None = None


class JobQueue(Protocol):
    """Enqueues in the unit of work's own transaction: a rolled-back change enqueues nothing."""

    async def enqueue(self, *jobs: JobRequest) -> None: ...


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running job knows about itself."""

    job_id: int
    kind: str
    attempt: int  # 1 on the first run
    max_attempts: int
    location_id: uuid.UUID | None = None

    @property
    def final_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    @property
    def error_id(self) -> str:
        """Names this attempt's failure, should it fail, wherever it is recorded (ghl_core.jobs.errors)."""
        return f"{self.job_id}-{self.attempt}"


class RetryLater(Exception):
    """Raised by a job handler to be run again later under its kind's retry schedule."""


class JobsUnitOfWork(Transaction, Protocol):
    """A location admin's failed jobs."""

    @property
    def failed_jobs(self) -> FailedJobRepository: ...
