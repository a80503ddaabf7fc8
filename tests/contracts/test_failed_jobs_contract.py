"""The failed job repository's contract, over the in-memory and the SQL implementation: a location sees
only its own failed jobs, and retrying one it does not have answers False."""

from __future__ import annotations

import uuid

from makers import World

from ghl_adapters.memory import MemoryUnitOfWorkFactory
from ghl_adapters.memory.jobs import record_failed_job
from ghl_core.jobs.ports import JobRequest
from ghl_core.shared.scope import TenantScope


async def test_a_new_location_has_no_failed_jobs(world: World) -> None:
    async with world.uow(world.scope) as work:
        assert await work.failed_jobs.list(10, None) == []
        assert await work.failed_jobs.list(10, 5) == []
        assert await work.failed_jobs.retry(2**31 - 1) is False


async def test_memory_failed_jobs_are_listed_and_retried_in_their_location() -> None:
    """What the SQL adapter reads from procrastinate's tables, filed here by `record_failed_job`."""
    uows = MemoryUnitOfWorkFactory()
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    jobs = [
        record_failed_job(
            uows.store,
            JobRequest(kind="webhooks.deliver", args={"n": n}, location_id=mine),
            attempts=3,
            error=f"boom {n}",
        )
        for n in range(3)
    ]
    record_failed_job(uows.store, JobRequest(kind="x", location_id=theirs), attempts=1, error=None)
    async with uows(TenantScope.location(mine)) as work:
        listed = await work.failed_jobs.list(2, None)
        assert [j.id for j in listed] == [jobs[2].id, jobs[1].id]
        assert [j.id for j in await work.failed_jobs.list(10, jobs[1].id)] == [jobs[0].id]
        assert await work.failed_jobs.retry(jobs[0].id) is True
        assert await work.failed_jobs.retry(jobs[0].id) is False
        await work.commit()
    assert [(r.kind, r.args) for r in uows.queue.pending()] == [("webhooks.deliver", {"n": 0})]
    async with uows(TenantScope.location(theirs)) as work:
        assert [j.kind for j in await work.failed_jobs.list(10, None)] == ["x"]
        assert await work.failed_jobs.retry(jobs[1].id) is False
