"""The workflow and enrollment repositories' contract, over the in-memory and the SQL implementation."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from makers import World, at, new_contact

from ghl_core.shared.pagination import PageRequest, decode_cursor
from ghl_core.workflows.models import (
    Enrollment,
    EnrollmentStatus,
    StepRun,
    StepRunStatus,
    Workflow,
    WorkflowStatus,
    WorkflowVersion,
)

DEFINITION = {"trigger": {"type": "manual"}, "steps": []}


def workflow(location_id: uuid.UUID, minutes: int = 0, **fields: object) -> Workflow:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "location_id": location_id,
        "name": f"workflow {minutes}",
        "status": WorkflowStatus.DRAFT,
        "draft": DEFINITION,
        "created_at": at(minutes),
        "updated_at": at(minutes),
        **fields,
    }
    return Workflow(**values)  # type: ignore[arg-type]


def version(wf: Workflow, number: int) -> WorkflowVersion:
    return WorkflowVersion(
        workflow_id=wf.id,
        location_id=wf.location_id,
        version=number,
        definition={**DEFINITION, "n": number},
        published_at=at(number),
    )


def enrollment(wf: Workflow, contact_id: uuid.UUID, minutes: int = 0, **fields: object) -> Enrollment:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "location_id": wf.location_id,
        "workflow_id": wf.id,
        "version": 1,
        "contact_id": contact_id,
        "status": EnrollmentStatus.ACTIVE,
        "started_at": at(minutes),
        "updated_at": at(minutes),
        "trigger": "manual",
        "step_id": "s1",
        **fields,
    }
    return Enrollment(**values)  # type: ignore[arg-type]


def step(e: Enrollment, step_id: str, tick: int, minutes: int = 0) -> StepRun:
    return StepRun(
        enrollment_id=e.id,
        location_id=e.location_id,
        workflow_id=e.workflow_id,
        step_id=step_id,
        tick=tick,
        type="send_sms",
        status=StepRunStatus.RUNNING,
        started_at=at(minutes),
    )


async def published_workflow(world: World, minutes: int = 0) -> Workflow:
    wf = workflow(world.location_id, minutes=minutes, status=WorkflowStatus.PUBLISHED, version=1)
    async with world.uow(world.scope) as work:
        await work.workflows.add(wf)
        await work.workflows.add_version(version(wf, 1))
        await work.commit()
    return wf


async def test_workflows_versions_and_the_published_ones(world: World) -> None:
    draft = workflow(world.location_id, minutes=0)
    live = workflow(world.location_id, minutes=1)
    gone = workflow(world.location_id, minutes=2)
    async with world.uow(world.scope) as work:
        for wf in (draft, live, gone):
            await work.workflows.add(wf)
        for n in (1, 2):
            await work.workflows.add_version(version(live, n))
        await work.workflows.add_version(version(gone, 1))
        await work.workflows.update(replace(live, status=WorkflowStatus.PUBLISHED, version=2))
        await work.workflows.update(
            replace(gone, status=WorkflowStatus.PUBLISHED, version=1, deleted_at=at(3))
        )
        await work.commit()
    async with world.uow(world.scope) as work:
        page = await work.workflows.list(world.location_id, PageRequest(limit=1))
        assert [w.id for w in page.items] == [live.id]
        assert page.next_cursor is not None
        rest = await work.workflows.list(
            world.location_id, PageRequest(after=decode_cursor(page.next_cursor))
        )
        assert [w.id for w in rest.items] == [draft.id]
        assert [v.version for v in await work.workflows.versions(live.id)] == [2, 1]
        assert (await work.workflows.version(live.id, 1)) == version(live, 1)
        assert await work.workflows.version(live.id, 3) is None
        assert [(v.workflow_id, v.version) for v in await work.workflows.published(world.location_id)] == [
            (live.id, 2)
        ]
        fetched = await work.workflows.get(gone.id, lock=True)
        assert fetched is not None
        assert fetched.deleted_at == at(3)
    async with world.uow(world.other_scope) as work:
        assert await work.workflows.get(live.id) is None
        assert await work.workflows.versions(live.id) == []
        assert await work.workflows.published(world.location_id) == []


async def test_a_cause_enrolls_once_and_exclusive_enrollments_wait_their_turn(world: World) -> None:
    wf = await published_workflow(world)
    contact = await new_contact(world)
    first = enrollment(wf, contact, cause="event-1")
    async with world.uow(world.scope) as work:
        assert await work.enrollments.add(first) is True
        await work.commit()
    async with world.uow(world.scope) as work:
        assert await work.enrollments.add(enrollment(wf, contact, cause="event-1")) is False
        # While the contact runs in the workflow, an exclusive enrollment is refused...
        assert await work.enrollments.add_exclusive(enrollment(wf, contact, cause="event-2")) is False
        # ...a plain one is not.
        plain = enrollment(wf, contact, minutes=1, cause="event-3")
        assert await work.enrollments.add(plain) is True
        await work.commit()
    async with world.uow(world.scope) as work:
        running = await work.enrollments.running_for_contact(world.location_id, contact)
        assert [e.id for e in running] == sorted([first.id, plain.id])
        newest = await work.enrollments.running_in_workflow(wf.id, contact)
        assert newest is not None
        assert newest.id == plain.id
        for e in running:
            await work.enrollments.update(replace(e, status=EnrollmentStatus.COMPLETED, finished_at=at(5)))
        await work.commit()
    async with world.uow(world.scope) as work:
        assert await work.enrollments.running_in_workflow(wf.id, contact) is None
        again = enrollment(wf, contact, minutes=6, cause="event-2")
        assert await work.enrollments.add_exclusive(again) is True
        await work.commit()
    async with world.uow(world.scope) as work:
        assert (await work.enrollments.get(again.id, lock=True)) == again
        assert await work.enrollments.counts(wf.id) == {
            EnrollmentStatus.ACTIVE: 1,
            EnrollmentStatus.WAITING: 0,
            EnrollmentStatus.COMPLETED: 2,
            EnrollmentStatus.GOAL: 0,
            EnrollmentStatus.STOPPED: 0,
            EnrollmentStatus.FAILED: 0,
        }
    async with world.uow(world.other_scope) as work:
        assert await work.enrollments.get(again.id) is None
        assert await work.enrollments.running_in_workflow(wf.id, contact) is None


async def test_stopping_gives_a_new_tick_and_enrollments_page_newest_first(world: World) -> None:
    wf, other_wf = await published_workflow(world), await published_workflow(world, minutes=1)
    contacts = [await new_contact(world) for _ in range(3)]
    enrollments = [enrollment(wf, c, minutes=i, tick=2) for i, c in enumerate(contacts)]
    waiting = enrollment(other_wf, contacts[0], status=EnrollmentStatus.WAITING, wake_at=at(60))
    async with world.uow(world.scope) as work:
        for e in [*enrollments, waiting]:
            assert await work.enrollments.add(e) is True
        await work.enrollments.update(replace(enrollments[2], status=EnrollmentStatus.FAILED, reason="x"))
        with pytest.raises(ValueError, match="stop_all needs"):
            await work.enrollments.stop_all(location_id=world.location_id, reason="r", now=at(9))
        stopped = await work.enrollments.stop_all(
            workflow_id=wf.id, location_id=world.location_id, reason="unpublished", now=at(9)
        )
        assert stopped == 2
        by_contact = await work.enrollments.stop_all(
            contact_id=contacts[0], location_id=world.location_id, reason="deleted", now=at(10)
        )
        assert by_contact == 1  # the other workflow's waiting one
        await work.commit()
    async with world.uow(world.scope) as work:
        got = await work.enrollments.get(enrollments[0].id)
        assert got is not None
        assert (got.status, got.reason, got.tick, got.step_id, got.finished_at) == (
            EnrollmentStatus.STOPPED,
            "unpublished",
            3,
            None,
            at(9),
        )
        other = await work.enrollments.get(waiting.id)
        assert other is not None
        assert (other.status, other.wake_at, other.reason) == (EnrollmentStatus.STOPPED, None, "deleted")
        page = await work.enrollments.list(wf.id, PageRequest(limit=2))
        assert [e.id for e in page.items] == [enrollments[2].id, enrollments[1].id]
        assert page.next_cursor is not None
        rest = await work.enrollments.list(wf.id, PageRequest(after=decode_cursor(page.next_cursor)))
        assert [e.id for e in rest.items] == [enrollments[0].id]
        failed = await work.enrollments.list(wf.id, PageRequest(), status=EnrollmentStatus.FAILED)
        assert [e.id for e in failed.items] == [enrollments[2].id]
        of_contact = await work.enrollments.list(wf.id, PageRequest(), contact_id=contacts[1])
        assert [e.id for e in of_contact.items] == [enrollments[1].id]


async def test_a_step_is_claimed_once_per_tick(world: World) -> None:
    wf = await published_workflow(world)
    e = enrollment(wf, await new_contact(world))
    first = step(e, "s1", 0)
    async with world.uow(world.scope) as work:
        await work.enrollments.add(e)
        assert await work.enrollments.claim_step(first) is None
        await work.commit()
    async with world.uow(world.scope) as work:
        held = await work.enrollments.claim_step(replace(first, started_at=at(1)))
        assert held is not None
        assert (held.status, held.started_at) == (StepRunStatus.RUNNING, at(0))
        done = replace(
            first,
            status=StepRunStatus.DONE,
            outcome="sent",
            detail="SMS sent",
            output={"id": 1},
            finished_at=at(2),
        )
        await work.enrollments.finish_step(done)
        assert await work.enrollments.claim_step(step(e, "s1", 1, minutes=3)) is None
        await work.enrollments.add_steps(
            [
                replace(step(e, "goal", 1, minutes=4), status=StepRunStatus.DONE, outcome="goal"),
                replace(step(e, "s1", 0, minutes=9), status=StepRunStatus.FAILED),  # exists: ignored
            ]
        )
        await work.enrollments.add_steps([])
        await work.commit()
    async with world.uow(world.scope) as work:
        history = await work.enrollments.history(e.id)
        assert [(r.step_id, r.tick, r.status) for r in history] == [
            ("s1", 0, StepRunStatus.DONE),
            ("s1", 1, StepRunStatus.RUNNING),
            ("goal", 1, StepRunStatus.DONE),
        ]
        assert history[0] == done
        assert await work.enrollments.step_counts(wf.id) == {
            "s1": {"done": 1, "running": 1},
            "goal": {"done": 1},
        }
    async with world.uow(world.other_scope) as work:
        assert await work.enrollments.history(e.id) == []
        assert await work.enrollments.step_counts(wf.id) == {}


async def test_a_cause_or_step_another_transaction_committed_meanwhile_is_refused(world: World) -> None:
    wf = await published_workflow(world)
    contact = await new_contact(world)
    first = enrollment(wf, contact, cause="race")
    async with world.uow(world.scope) as late, world.uow(world.scope) as early:
        assert await late.enrollments.get(uuid.uuid4()) is None  # begun, and has read the table
        assert await early.enrollments.add(first) is True
        assert await early.enrollments.claim_step(step(first, "s1", 0)) is None
        await early.commit()
        assert await late.enrollments.add(enrollment(wf, contact, cause="race")) is False
        assert await late.enrollments.add_exclusive(enrollment(wf, contact, cause="other")) is False
        held = await late.enrollments.claim_step(step(first, "s1", 0, minutes=1))
        assert held is not None
        assert held.started_at == at(0)


async def test_erasing_a_contact_scrubs_what_its_enrollments_kept(world: World) -> None:
    wf = await published_workflow(world)
    contact, kept_contact = await new_contact(world), await new_contact(world)
    erased = enrollment(wf, contact, outputs={"s1": {"body": "Ada's secret"}})
    kept = enrollment(wf, kept_contact, outputs={"s1": {"body": "kept"}})
    async with world.uow(world.scope) as work:
        for e in (erased, kept):
            await work.enrollments.add(e)
            await work.enrollments.claim_step(step(e, "s1", 0))
            await work.enrollments.finish_step(
                replace(
                    step(e, "s1", 0),
                    status=StepRunStatus.FAILED,
                    outcome="failed",
                    detail="posted to Ada",
                    output={"status": 500},
                    error="boom",
                    finished_at=at(1),
                )
            )
        await work.enrollments.add_steps([replace(step(erased, "goal", 1), status=StepRunStatus.DONE)])
        await work.contacts.erase_history(contact)
        await work.commit()
    async with world.uow(world.scope) as work:
        scrubbed = await work.enrollments.get(erased.id)
        assert scrubbed is not None
        assert scrubbed.outputs == {}
        runs = await work.enrollments.history(erased.id)
        assert [(r.detail, r.output, r.error, r.outcome) for r in runs] == [
            ("[erased]", None, "[erased]", "failed"),
            ("", None, None, ""),
        ]
        untouched = await work.enrollments.get(kept.id)
        assert untouched is not None
        assert untouched.outputs == {"s1": {"body": "kept"}}
        (kept_run,) = await work.enrollments.history(kept.id)
        assert (kept_run.detail, kept_run.output, kept_run.error) == (
            "posted to Ada",
            {"status": 500},
            "boom",
        )
