"""A job queue that runs jobs inline or on demand, for embedders and the fast tests.

A unit of work enqueues through `StagedJobQueue`: the jobs are written to its working set, so they reach
the queue only if it commits (a rolled-back change enqueues nothing, as with procrastinate on the same
database). `MemoryJobQueue.run_pending()` then runs the committed jobs whose time has come (by the store's
clock) through the handlers registered by kind, oldest first; a job of a kind nobody registered stays
pending. `queueing_lock` keeps one waiting job per value, as procrastinate's does.

With `inline=True` the queue runs what is due after every commit that enqueued something; a job that
commits while running does not start a nested run (its jobs run in the same loop).

Domain events leave through jobs, as with the SQL adapters: a consumer subscribed with `subscribe(name,
reads)` gets, in the transaction that recorded the events, one `events.consume` job per location naming
the events it reads (`consume_requests`); its handler loads them with `committed_events`. With no
subscriber (the default) events stay in the event log only."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ghl_core.jobs.ports import JobRequest
from ghl_core.shared.events import DomainEvent

from .store import MemoryRepository, MemoryStore, OpenUnitOfWork, Table

JobHandler = Callable[[JobRequest], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class QueuedJob:
    id: int
    request: JobRequest


JOBS: Table[int, QueuedJob] = Table("jobs")
CONSUME_KIND = "events.consume"


class MemoryJobQueue:
    def __init__(self, store: MemoryStore, *, inline: bool = False) -> None:
        self.store = store
        self.inline = inline
        self.done: list[JobRequest] = []
        self.failed: list[tuple[JobRequest, BaseException]] = []
        self._handlers: dict[str, JobHandler] = {}
        self._consumers: dict[str, Callable[[str], bool]] = {}
        self._running = False

    def subscribe(self, consumer: str, reads: Callable[[str], bool]) -> None:
        """`consumer` gets the events whose type `reads` accepts, through `events.consume` jobs."""
        self._consumers[consumer] = reads

    def consume_requests(self, events: Sequence[DomainEvent]) -> list[JobRequest]:
        """One `events.consume` job per consumer and location for events just recorded, in their order.
        Agency-level events (no location) have no consumer, as with the SQL adapters."""
        groups: dict[tuple[str, uuid.UUID], list[str]] = {}
        for event in events:
            if event.location_id is None:
                continue
            for consumer, reads in self._consumers.items():
                if reads(event.type):
                    groups.setdefault((consumer, event.location_id), []).append(str(event.id))
        return [
            JobRequest(CONSUME_KIND, {"consumer": consumer, "events": ids}, location_id=location_id)
            for (consumer, location_id), ids in groups.items()
        ]

    def register(self, kind: str, handler: JobHandler) -> None:
        self._handlers[kind] = handler

    def pending(self) -> list[JobRequest]:
        """The committed jobs not run yet, oldest first."""
        jobs = self.store.committed(JOBS)
        return [jobs[i].request for i in sorted(jobs)]

    async def run_pending(self) -> int:
        """Runs every due job of a registered kind, those they enqueue included; returns how many ran.
        A handler's exception is kept in `failed` (with its job) and the run goes on."""
        if self._running:
            return 0
        self._running = True
        ran = 0
        try:
            while (job := self._next_due()) is not None:
                self._remove(job.id)
                try:
                    await self._handlers[job.request.kind](job.request)
                except Exception as error:  # the queue records failures, it does not stop
                    self.failed.append((job.request, error))
                else:
                    self.done.append(job.request)
                ran += 1
        finally:
            self._running = False
        return ran

    def _next_due(self) -> QueuedJob | None:
        now = self.store.clock.now()
        jobs = self.store.committed(JOBS)
        for job_id in sorted(jobs):
            job = jobs[job_id]
            due = job.request.run_at is None or job.request.run_at <= now
            if due and job.request.kind in self._handlers:
                return job
        return None

    def _remove(self, job_id: int) -> None:
        # Committed tables are replaced, never changed in place (units of work hold them as their base).
        remaining = dict(self.store.committed(JOBS))
        remaining.pop(job_id, None)
        self.store.tables[JOBS.name] = remaining

    async def after_commit(self, enqueued: bool) -> None:
        if self.inline and enqueued:
            await self.run_pending()


class StagedJobQueue(MemoryRepository):
    """The `JobQueue` port of one unit of work."""

    def __init__(self, uow: OpenUnitOfWork, queue: MemoryJobQueue) -> None:
        super().__init__(uow)
        self.queue = queue

    async def enqueue(self, *jobs: JobRequest) -> None:
        rows = self.rows(JOBS)
        waiting = {j.request.queueing_lock for j in rows.values() if j.request.queueing_lock is not None}
        for job in jobs:
            if job.queueing_lock is not None and job.queueing_lock in waiting:
                continue
            if job.queueing_lock is not None:
                waiting.add(job.queueing_lock)
            serial = self._uow.store.next_serial()
            rows[serial] = QueuedJob(serial, copy.deepcopy(job))
