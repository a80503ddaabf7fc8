"""The in-memory store's transaction rules and its job queue (ghl_adapters.memory.store, queue.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from ghl_adapters.memory import MemoryJobQueue, MemoryStore, MemoryUnitOfWorkFactory
from ghl_adapters.memory.recording import committed_audit
from ghl_core.contacts.models import Contact, DuplicatePolicy
from ghl_core.contacts.ports import DuplicateContact
from ghl_core.jobs.ports import JobRequest
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.pagination import PageRequest
from ghl_core.shared.scope import TenantScope

LOCATION = uuid.uuid4()
SCOPE = TenantScope.location(LOCATION)


def _factory(*, inline: bool = False) -> tuple[MemoryUnitOfWorkFactory, FixedClock]:
    clock = FixedClock()
    store = MemoryStore(clock)
    return MemoryUnitOfWorkFactory(store, MemoryJobQueue(store, inline=inline)), clock


def _contact(clock: FixedClock, name: str) -> Contact:
    now = clock.now()
    return Contact(id=uuid.uuid4(), location_id=LOCATION, created_at=now, updated_at=now, first_name=name)


def _entry(clock: FixedClock, entity_id: uuid.UUID) -> AuditEntry:
    return AuditEntry(
        uuid.uuid4(), LOCATION, "operator", None, "update", "contact", entity_id, None, {}, clock.now()
    )


async def test_two_units_of_work_changing_different_rows_both_keep_their_change() -> None:
    uows, clock = _factory()
    ann, bob = _contact(clock, "Ann"), _contact(clock, "Bob")
    async with uows(SCOPE) as uow:
        await uow.contacts.add(ann, DuplicatePolicy())
        await uow.contacts.add(bob, DuplicatePolicy())
        await uow.commit()
    async with uows(SCOPE) as first, uows(SCOPE) as second:
        one, two = await first.contacts.get(ann.id), await second.contacts.get(bob.id)
        assert one is not None
        assert two is not None
        one.first_name, two.first_name = "Anna", "Robert"
        await first.contacts.update(one, DuplicatePolicy())
        await first.audit.record(_entry(clock, ann.id))
        await second.contacts.update(two, DuplicatePolicy())
        await second.audit.record(_entry(clock, bob.id))
        await first.commit()
        await second.commit()
    async with uows(SCOPE) as uow:
        found = await uow.contacts.get_many([ann.id, bob.id])
    assert {c.first_name for c in found.values()} == {"Anna", "Robert"}
    assert len(committed_audit(uows.store)) == 2


async def test_jobs_reach_the_queue_only_on_commit_and_run_on_demand() -> None:
    uows, clock = _factory()
    ran: list[str] = []

    async def handler(job: JobRequest) -> None:
        ran.append(str(job.args["n"]))

    uows.queue.register("count", handler)
    async with uows(SCOPE) as uow:
        await uow.jobs.enqueue(JobRequest("count", {"n": 0}))  # rolled back: never queued
    async with uows(SCOPE) as uow:
        later = clock.now() + timedelta(minutes=5)
        await uow.jobs.enqueue(
            JobRequest("count", {"n": 1}),
            JobRequest("count", {"n": 2}, run_at=later),
            JobRequest("other", {"n": 3}),
            JobRequest("count", {"n": 4}, queueing_lock="one"),
            JobRequest("count", {"n": 5}, queueing_lock="one"),  # one waits per lock: dropped
        )
        await uow.commit()
    assert [j.args["n"] for j in uows.queue.pending()] == [1, 2, 3, 4]
    assert await uows.queue.run_pending() == 2
    assert ran == ["1", "4"]
    clock.advance(timedelta(minutes=5))
    assert await uows.queue.run_pending() == 1
    assert [j.kind for j in uows.queue.pending()] == ["other"]  # nobody handles it: it waits


async def test_an_inline_queue_runs_after_commit_and_keeps_failures() -> None:
    uows, _ = _factory(inline=True)

    async def boom(job: JobRequest) -> None:
        raise RuntimeError("down")

    uows.queue.register("boom", boom)
    async with uows(SCOPE) as uow:
        await uow.jobs.enqueue(JobRequest("boom"))
        await uow.commit()
    assert uows.queue.pending() == []
    assert [(job.kind, str(error)) for job, error in uows.queue.failed] == [("boom", "down")]


async def test_a_key_committed_meanwhile_is_taken() -> None:
    uows, clock = _factory()
    first, second = _contact(clock, "Ann"), _contact(clock, "Anne")
    first.email = second.email = "ann@example.com"
    async with uows(SCOPE) as early, uows(SCOPE) as late:
        await late.contacts.list(PageRequest())  # late has its copy of the contacts already
        await early.contacts.add(first, DuplicatePolicy())
        await early.commit()
        with pytest.raises(DuplicateContact) as refused:
            await late.contacts.add(second, DuplicatePolicy())
    assert "e-mail" in str(refused.value)
