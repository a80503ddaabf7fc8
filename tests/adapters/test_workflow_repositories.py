"""The SQL workflow and enrollment repositories on the real database: round trips, the uniqueness rules
that keep a trigger from enrolling twice, the execution ledger and row-level security."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_adapters.sql.uow import SqlUnitOfWork
from ghl_core.shared.pagination import PageRequest, decode_cursor
from ghl_core.shared.scope import TenantScope
from ghl_core.workflows.models import (
    Enrollment,
    EnrollmentStatus,
    StepRun,
    StepRunStatus,
    Workflow,
    WorkflowStatus,
    WorkflowVersion,
)
from support import Tenant, open_api

TABLES = ["workflow_enrollments", "workflow_step_runs", "workflow_versions", "workflows"]
T0 = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)


def uow(container: Container, tenant: Tenant) -> SqlUnitOfWork:
    return container.uow()(TenantScope.location(tenant.location_id))


async def new_contacts(container: Container, tenant: Tenant, n: int = 1) -> list[uuid.UUID]:
    ids = []
    async with open_api(container) as api:
        for i in range(n):
            made = await api.post("/api/v1/contacts", headers=tenant.headers, json={"first_name": f"C{i}"})
            assert made.status_code == 201, made.text
            ids.append(uuid.UUID(made.json()["id"]))
    return ids


def a_workflow(tenant: Tenant, *, at: datetime = T0, name: str = "Welcome") -> Workflow:
    return Workflow(
        id=uuid.uuid4(),
        location_id=tenant.location_id,
        name=name,
        status=WorkflowStatus.DRAFT,
        draft={"name": name, "triggers": [{"type": "contact.created"}], "steps": []},
        created_at=at,
        updated_at=at,
        created_by=uuid.uuid4(),
    )


def an_enrollment(
    workflow: Workflow, contact_id: uuid.UUID, *, at: datetime = T0, cause: str | None = None
) -> Enrollment:
    return Enrollment(
        id=uuid.uuid4(),
        location_id=workflow.location_id,
        workflow_id=workflow.id,
        version=1,
        contact_id=contact_id,
        status=EnrollmentStatus.ACTIVE,
        started_at=at,
        updated_at=at,
        trigger="contact.created",
        step_id="s1",
        cause=cause,
    )


def a_run(enrollment: Enrollment, step_id: str, tick: int, *, at: datetime = T0) -> StepRun:
    return StepRun(
        enrollment_id=enrollment.id,
        location_id=enrollment.location_id,
        workflow_id=enrollment.workflow_id,
        step_id=step_id,
        tick=tick,
        type="send_sms",
        status=StepRunStatus.RUNNING,
        started_at=at,
    )


async def published_workflow(container: Container, tenant: Tenant) -> Workflow:
    workflow = replace(a_workflow(tenant), status=WorkflowStatus.PUBLISHED, version=1)
    async with uow(container, tenant) as work:
        await work.workflows.add(workflow)
        await work.workflows.add_version(
            WorkflowVersion(workflow.id, tenant.location_id, 1, workflow.draft, T0)
        )
        await work.commit()
    return workflow


# -- workflows ----------------------------------------------------------------------------------------


async def test_workflow_round_trip_update_and_list(container: Container, tenant: Tenant) -> None:
    made = [a_workflow(tenant, at=T0 + timedelta(minutes=i), name=f"W{i}") for i in range(3)]
    async with uow(container, tenant) as work:
        for w in made:
            await work.workflows.add(w)
        await work.commit()

    async with uow(container, tenant) as work:
        got = await work.workflows.get(made[0].id)
        assert got == made[0]
        assert got is not None
        assert got.created_at.tzinfo is UTC
        changed = replace(
            made[0],
            name="Renamed",
            status=WorkflowStatus.PAUSED,
            draft={"steps": [{"id": "s1", "type": "wait"}]},
            version=3,
            hook_token_hash="ab" * 32,
            updated_at=T0 + timedelta(hours=1),
            updated_by=uuid.uuid4(),
        )
        await work.workflows.update(changed)
        assert await work.workflows.get(made[0].id, lock=True) == changed
        await work.workflows.update(replace(made[1], deleted_at=T0 + timedelta(days=1)))
        await work.commit()

    async with uow(container, tenant) as work:
        first = await work.workflows.list(tenant.location_id, PageRequest(limit=1))
        assert [w.id for w in first.items] == [made[2].id]
        assert first.next_cursor is not None
        rest = await work.workflows.list(
            tenant.location_id, PageRequest(limit=1, after=decode_cursor(first.next_cursor))
        )
        # The deleted one is skipped; the last page has no cursor.
        assert [w.id for w in rest.items] == [made[0].id]
        assert rest.next_cursor is None
        deleted = await work.workflows.get(made[1].id)
        assert deleted is not None
        assert deleted.deleted_at == T0 + timedelta(days=1)
        assert await work.workflows.get(uuid.uuid4()) is None


async def test_versions_and_published(container: Container, tenant: Tenant) -> None:
    live = replace(a_workflow(tenant, name="Live"), status=WorkflowStatus.PUBLISHED, version=2)
    draft = a_workflow(tenant, name="Draft")
    paused = replace(a_workflow(tenant, name="Paused"), status=WorkflowStatus.PAUSED, version=1)
    gone = replace(a_workflow(tenant, name="Gone"), status=WorkflowStatus.PUBLISHED, version=1)
    async with uow(container, tenant) as work:
        for w in (live, draft, paused, gone):
            await work.workflows.add(w)
        v1 = WorkflowVersion(live.id, tenant.location_id, 1, {"v": 1}, T0, published_by=live.created_by)
        v2 = WorkflowVersion(live.id, tenant.location_id, 2, {"v": 2, "steps": [{"id": "a"}]}, T0)
        for v in (v1, v2):
            await work.workflows.add_version(v)
        for w in (paused, gone):
            await work.workflows.add_version(WorkflowVersion(w.id, tenant.location_id, 1, {}, T0))
        await work.workflows.update(replace(gone, deleted_at=T0))
        await work.commit()

    async with uow(container, tenant) as work:
        assert await work.workflows.version(live.id, 1) == v1
        assert await work.workflows.version(live.id, 3) is None
        assert await work.workflows.versions(live.id) == [v2, v1]
        assert await work.workflows.versions(draft.id) == []
        # Only the current version of the published, not deleted workflow.
        assert await work.workflows.published(tenant.location_id) == [v2]


# -- enrollments ----------------------------------------------------------------------------------------


async def test_enrollment_round_trip_and_update(container: Container, tenant: Tenant) -> None:
    workflow = await published_workflow(container, tenant)
    (contact,) = await new_contacts(container, tenant)
    enrollment = replace(
        an_enrollment(workflow, contact, cause="event-1"), opportunity_id=uuid.uuid4(), outputs={}
    )
    async with uow(container, tenant) as work:
        assert await work.enrollments.add(enrollment) is True
        await work.commit()

    async with uow(container, tenant) as work:
        assert await work.enrollments.get(enrollment.id) == enrollment
        waiting = replace(
            enrollment,
            status=EnrollmentStatus.WAITING,
            step_id="s2",
            tick=4,
            wake_at=T0 + timedelta(days=2),
            waiting_for={"event": "contact.replied", "filter": None, "step": "s2", "timeout_next": "s3"},
            outputs={"hook": {"status": 200, "body": {"ok": True}}},
            updated_at=T0 + timedelta(minutes=5),
        )
        await work.enrollments.update(waiting)
        got = await work.enrollments.get(enrollment.id, lock=True)
        assert got == waiting
        assert got is not None
        assert got.wake_at is not None
        assert got.wake_at.tzinfo is UTC
        done = replace(
            waiting,
            status=EnrollmentStatus.FAILED,
            step_id=None,
            wake_at=None,
            waiting_for=None,
            finished_at=T0 + timedelta(days=3),
            reason="the webhook answered 500",
        )
        await work.enrollments.update(done)
        assert await work.enrollments.get(enrollment.id) == done
        assert await work.enrollments.get(uuid.uuid4()) is None
        # A JSON null is never written for "no event wait": the column is SQL NULL.
        raw = await work.connection.execute(
            text("SELECT waiting_for IS NULL FROM workflow_enrollments WHERE id = :i"), {"i": enrollment.id}
        )
        assert raw.scalar_one() is True


async def test_the_same_cause_never_enrolls_twice(container: Container, tenant: Tenant) -> None:
    workflow = await published_workflow(container, tenant)
    (contact,) = await new_contacts(container, tenant)
    async with uow(container, tenant) as work:
        assert await work.enrollments.add(an_enrollment(workflow, contact, cause="evt-1")) is True
        again = an_enrollment(workflow, contact, cause="evt-1")
        assert await work.enrollments.add(again) is False
        assert await work.enrollments.add_exclusive(an_enrollment(workflow, contact, cause="evt-1")) is False
        # Refused without an error: the transaction goes on and commits.
        assert await work.enrollments.get(again.id) is None
        # No cause: nothing to deduplicate on, and `add` allows several running ones.
        assert await work.enrollments.add(an_enrollment(workflow, contact)) is True
        assert await work.enrollments.add(an_enrollment(workflow, contact)) is True
        await work.commit()
    async with uow(container, tenant) as work:
        counts = await work.enrollments.counts(workflow.id)
    assert counts[EnrollmentStatus.ACTIVE] == 3


async def test_add_exclusive_allows_one_running_enrollment_per_contact(
    container: Container, tenant: Tenant
) -> None:
    workflow = await published_workflow(container, tenant)
    alice, bob = await new_contacts(container, tenant, 2)
    first = an_enrollment(workflow, alice, cause="a1")
    async with uow(container, tenant) as work:
        assert await work.enrollments.add_exclusive(first) is True
        assert await work.enrollments.add_exclusive(an_enrollment(workflow, alice, cause="a2")) is False
        # Another contact is not held back.
        assert await work.enrollments.add_exclusive(an_enrollment(workflow, bob, cause="b1")) is True
        await work.commit()

    async with uow(container, tenant) as work:
        stored = await work.enrollments.get(first.id)
        assert stored == first
        await work.enrollments.update(replace(first, status=EnrollmentStatus.WAITING))
        assert await work.enrollments.add_exclusive(an_enrollment(workflow, alice, cause="a3")) is False
        await work.enrollments.update(
            replace(first, status=EnrollmentStatus.COMPLETED, step_id=None, finished_at=T0)
        )
        again = an_enrollment(workflow, alice, cause="a4")
        assert await work.enrollments.add_exclusive(again) is True
        assert await work.enrollments.get(again.id) == again
        await work.commit()


async def test_add_exclusive_also_waits_for_a_running_non_exclusive_enrollment(
    container: Container, tenant: Tenant
) -> None:
    workflow = await published_workflow(container, tenant)
    (contact,) = await new_contacts(container, tenant)
    plain = an_enrollment(workflow, contact)
    async with uow(container, tenant) as work:
        assert await work.enrollments.add(plain) is True
        assert await work.enrollments.add_exclusive(an_enrollment(workflow, contact)) is False
        await work.enrollments.update(replace(plain, status=EnrollmentStatus.STOPPED, finished_at=T0))
        assert await work.enrollments.add_exclusive(an_enrollment(workflow, contact)) is True
        await work.commit()


async def _lock_waiters(container: Container) -> int:
    async with container.engines().owner.connect() as conn:
        query = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int((await conn.execute(query)).scalar_one())


async def test_concurrent_exclusive_enrollments_make_exactly_one(
    container: Container, tenant: Tenant
) -> None:
    workflow = await published_workflow(container, tenant)
    (contact,) = await new_contacts(container, tenant)

    first_inserted = asyncio.Event()
    release = asyncio.Event()

    async def first() -> bool:
        async with uow(container, tenant) as work:
            made = await work.enrollments.add_exclusive(an_enrollment(workflow, contact, cause="x1"))
            first_inserted.set()
            await release.wait()
            await work.commit()
            return made

    async def second() -> bool:
        await first_inserted.wait()
        async with uow(container, tenant) as work:
            # Blocks on the first transaction's index entry until it commits, then is refused.
            made = await work.enrollments.add_exclusive(an_enrollment(workflow, contact, cause="x2"))
            await work.commit()
            return made

    one = asyncio.create_task(first())
    two = asyncio.create_task(second())
    await first_inserted.wait()
    for _ in range(200):
        if await _lock_waiters(container) >= 1:
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the second enrollment never waited on the first")
    release.set()
    assert sorted(await asyncio.gather(one, two)) == [False, True]

    # Both started at once, in a fresh pair of transactions: still exactly one.
    (other,) = await new_contacts(container, tenant)

    async def attempt(cause: str) -> bool:
        async with uow(container, tenant) as work:
            made = await work.enrollments.add_exclusive(an_enrollment(workflow, other, cause=cause))
            await asyncio.sleep(0.05)
            await work.commit()
            return made

    results = await asyncio.gather(attempt("y1"), attempt("y2"))
    assert sorted(results) == [False, True]
    async with uow(container, tenant) as work:
        page = await work.enrollments.list(workflow.id, PageRequest(limit=10), contact_id=other)
    assert len(page.items) == 1


async def test_running_for_contact_and_in_workflow(container: Container, tenant: Tenant) -> None:
    one = await published_workflow(container, tenant)
    two = await published_workflow(container, tenant)
    contact, someone = await new_contacts(container, tenant, 2)
    enrollments = [an_enrollment(w, contact) for w in (one, two, one)]
    finished = replace(an_enrollment(two, contact), status=EnrollmentStatus.COMPLETED, step_id=None)
    async with uow(container, tenant) as work:
        for e in (*enrollments, finished, an_enrollment(one, someone)):
            assert await work.enrollments.add(e)
        await work.enrollments.update(replace(enrollments[2], status=EnrollmentStatus.WAITING))
        await work.commit()

    async with uow(container, tenant) as work:
        running = await work.enrollments.running_for_contact(tenant.location_id, contact)
        assert [e.id for e in running] == sorted(e.id for e in enrollments)
        assert await work.enrollments.running_for_contact(tenant.location_id, uuid.uuid4()) == []
        found = await work.enrollments.running_in_workflow(two.id, contact)
        assert found == enrollments[1]
        assert await work.enrollments.running_in_workflow(two.id, someone) is None
        # Locked FOR UPDATE: another transaction cannot take the same rows without waiting.
        async with uow(container, tenant) as other:
            await other.connection.execute(text("SET LOCAL lock_timeout = '50ms'"))
            with pytest.raises(Exception, match="lock"):
                await other.enrollments.running_for_contact(tenant.location_id, contact)


async def test_stop_all_by_workflow_contact_or_both(container: Container, tenant: Tenant) -> None:
    one = await published_workflow(container, tenant)
    two = await published_workflow(container, tenant)
    alice, bob = await new_contacts(container, tenant, 2)
    a1, a2, b1, b2 = (an_enrollment(w, c) for w, c in ((one, alice), (two, alice), (one, bob), (two, bob)))
    done = replace(an_enrollment(one, alice), status=EnrollmentStatus.COMPLETED, step_id=None)
    async with uow(container, tenant) as work:
        for e in (a1, a2, b1, b2, done):
            assert await work.enrollments.add(e)
        await work.enrollments.update(
            replace(b2, status=EnrollmentStatus.WAITING, tick=2, wake_at=T0, waiting_for={"event": "x"})
        )
        await work.commit()

    now = T0 + timedelta(hours=2)
    async with uow(container, tenant) as work:
        stop = work.enrollments.stop_all
        both = await stop(
            workflow_id=one.id, contact_id=bob, location_id=tenant.location_id, reason="removed", now=now
        )
        assert both == 1
        assert await stop(contact_id=alice, location_id=tenant.location_id, reason="deleted", now=now) == 2
        assert await stop(workflow_id=two.id, location_id=tenant.location_id, reason="paused", now=now) == 1
        assert await stop(workflow_id=two.id, location_id=tenant.location_id, reason="again", now=now) == 0
        await work.commit()

    async with uow(container, tenant) as work:
        b2_after = await work.enrollments.get(b2.id)
        assert b2_after is not None
        assert (b2_after.status, b2_after.reason, b2_after.finished_at, b2_after.updated_at) == (
            EnrollmentStatus.STOPPED,
            "paused",
            now,
            now,
        )
        # The tick moves on, so step jobs already queued for it do nothing.
        assert (b2_after.tick, b2_after.step_id, b2_after.wake_at, b2_after.waiting_for) == (
            3,
            None,
            None,
            None,
        )
        reasons = {e.id: e.reason for e in [await work.enrollments.get(x.id) for x in (a1, a2, b1)] if e}
        assert reasons == {a1.id: "deleted", a2.id: "deleted", b1.id: "removed"}
        assert await work.enrollments.get(done.id) == done
        assert await work.enrollments.counts(one.id) == {
            **dict.fromkeys(EnrollmentStatus, 0),
            EnrollmentStatus.STOPPED: 2,
            EnrollmentStatus.COMPLETED: 1,
        }


async def test_enrollment_list_filters_and_pages(container: Container, tenant: Tenant) -> None:
    workflow = await published_workflow(container, tenant)
    alice, bob = await new_contacts(container, tenant, 2)
    made = [an_enrollment(workflow, alice if i % 2 else bob, at=T0 + timedelta(minutes=i)) for i in range(5)]
    async with uow(container, tenant) as work:
        for e in made:
            assert await work.enrollments.add(e)
        await work.enrollments.update(replace(made[3], status=EnrollmentStatus.GOAL, finished_at=T0))
        await work.commit()

    async with uow(container, tenant) as work:
        seen: list[uuid.UUID] = []
        page = await work.enrollments.list(workflow.id, PageRequest(limit=2))
        seen += [e.id for e in page.items]
        while page.next_cursor:
            page = await work.enrollments.list(
                workflow.id, PageRequest(limit=2, after=decode_cursor(page.next_cursor))
            )
            seen += [e.id for e in page.items]
        assert seen == [e.id for e in reversed(made)]
        by_alice = await work.enrollments.list(workflow.id, PageRequest(), contact_id=alice)
        assert [e.id for e in by_alice.items] == [made[3].id, made[1].id]
        goals = await work.enrollments.list(workflow.id, PageRequest(), status=EnrollmentStatus.GOAL)
        assert [e.id for e in goals.items] == [made[3].id]
        active_alice = await work.enrollments.list(
            workflow.id, PageRequest(), status=EnrollmentStatus.ACTIVE, contact_id=alice
        )
        assert [e.id for e in active_alice.items] == [made[1].id]


# -- the execution ledger --------------------------------------------------------------------------------


async def test_claim_finish_history_and_step_counts(container: Container, tenant: Tenant) -> None:
    workflow = await published_workflow(container, tenant)
    (contact,) = await new_contacts(container, tenant)
    enrollment = an_enrollment(workflow, contact)
    async with uow(container, tenant) as work:
        assert await work.enrollments.add(enrollment)
        await work.commit()

    claim = a_run(enrollment, "s1", 0)
    async with uow(container, tenant) as work:
        assert await work.enrollments.claim_step(claim) is None
        await work.commit()

    async with uow(container, tenant) as work:
        # Claimed again (a redelivered job): the existing row, and nothing written.
        existing = await work.enrollments.claim_step(replace(claim, started_at=T0 + timedelta(minutes=1)))
        assert existing == claim
        finished = replace(
            claim,
            status=StepRunStatus.DONE,
            outcome="sent",
            detail="SMS sent to +1 312 555 0100",
            output={"message_id": str(uuid.uuid4())},
            finished_at=T0 + timedelta(seconds=2),
        )
        await work.enrollments.finish_step(finished)
        assert await work.enrollments.claim_step(claim) == finished
        later = a_run(enrollment, "s2", 1, at=T0 + timedelta(minutes=3))
        assert await work.enrollments.claim_step(later) is None
        failed = replace(later, status=StepRunStatus.FAILED, error="boom", finished_at=later.started_at)
        await work.enrollments.finish_step(failed)
        # add_steps ignores rows that exist already (the s1 ledger row stays as it was).
        goal = replace(
            a_run(enrollment, "g1", 2, at=T0 + timedelta(minutes=4)),
            type="goal",
            status=StepRunStatus.DONE,
            outcome="goal",
            finished_at=T0 + timedelta(minutes=4),
        )
        same_tick = replace(goal, step_id="a0", started_at=T0 + timedelta(minutes=5))
        await work.enrollments.add_steps([replace(claim, status=StepRunStatus.SKIPPED), goal, same_tick])
        await work.enrollments.add_steps([])
        await work.commit()

    async with uow(container, tenant) as work:
        history = await work.enrollments.history(enrollment.id)
        assert history == [finished, failed, goal, same_tick]
        assert history[0].started_at.tzinfo is UTC
        assert await work.enrollments.history(uuid.uuid4()) == []
        assert await work.enrollments.step_counts(workflow.id) == {
            "s1": {"done": 1},
            "s2": {"failed": 1},
            "g1": {"done": 1},
            "a0": {"done": 1},
        }


async def test_concurrent_claims_of_one_step_give_one_owner(container: Container, tenant: Tenant) -> None:
    workflow = await published_workflow(container, tenant)
    (contact,) = await new_contacts(container, tenant)
    enrollment = an_enrollment(workflow, contact)
    async with uow(container, tenant) as work:
        assert await work.enrollments.add(enrollment)
        await work.commit()

    async def claim() -> StepRun | None:
        async with uow(container, tenant) as work:
            answer = await work.enrollments.claim_step(a_run(enrollment, "s1", 0))
            await asyncio.sleep(0.05)
            await work.commit()
            return answer

    answers = await asyncio.gather(claim(), claim())
    assert sorted(a is None for a in answers) == [False, True]


# -- row-level security ----------------------------------------------------------------------------------


async def test_another_location_sees_none_of_it(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    workflow = await published_workflow(container, tenant)
    (contact,) = await new_contacts(container, tenant)
    enrollment = an_enrollment(workflow, contact, cause="c")
    async with uow(container, tenant) as work:
        assert await work.enrollments.add(enrollment)
        assert await work.enrollments.claim_step(a_run(enrollment, "s1", 0)) is None
        await work.commit()

    async with uow(container, other_tenant) as work:
        # A buggy caller passing the other tenant's ids straight through gets nothing.
        assert await work.workflows.get(workflow.id) is None
        assert (await work.workflows.list(tenant.location_id, PageRequest())).items == []
        assert await work.workflows.versions(workflow.id) == []
        assert await work.workflows.version(workflow.id, 1) is None
        assert await work.workflows.published(tenant.location_id) == []
        assert await work.enrollments.get(enrollment.id) is None
        assert await work.enrollments.running_for_contact(tenant.location_id, contact) == []
        assert await work.enrollments.running_in_workflow(workflow.id, contact) is None
        assert (await work.enrollments.list(workflow.id, PageRequest())).items == []
        assert set((await work.enrollments.counts(workflow.id)).values()) == {0}
        assert await work.enrollments.history(enrollment.id) == []
        assert await work.enrollments.step_counts(workflow.id) == {}
        assert (
            await work.enrollments.stop_all(
                workflow_id=workflow.id, location_id=tenant.location_id, reason="x", now=T0
            )
            == 0
        )
        for table in TABLES:
            seen = await work.connection.execute(text(f"SELECT count(*) FROM {table}"))
            assert seen.scalar_one() == 0, table

    async with container.engines().owner.connect() as conn:
        flags = (
            await conn.execute(
                text(
                    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                    "WHERE relname = ANY(:t) ORDER BY relname"
                ),
                {"t": TABLES},
            )
        ).all()
    assert [tuple(f) for f in flags] == [(t, True, True) for t in sorted(TABLES)]
    # Without a location in scope the application role sees no row at all.
    async with container.engines().app.connect() as conn:
        for table in TABLES:
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0
