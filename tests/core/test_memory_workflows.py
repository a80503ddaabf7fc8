"""Workflows on `build_memory_container()` (no database): published, a contact enrolled once, its steps
run by the queue (an SMS to the local outbox, a wait, a tag), the statistics, and a simulation."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from ghl_adapters.memory.container import MemoryContainer, build_memory_container
from ghl_core.jobs.ports import JobRequest
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation
from ghl_core.workflows.models import EnrollmentStatus, WorkflowStatus
from ghl_core.workflows.scheduling import STEP_KIND

NURTURE = {
    "name": "Welcome",
    "triggers": [{"type": "contact_created"}],
    "steps": [
        {"id": "hello", "type": "send_sms", "body": "Hi {{contact.first_name}}, welcome!"},
        {"id": "pause", "type": "wait", "wait": {"days": 1}},
        {"id": "tag", "type": "add_tag", "tags": ["welcomed"]},
    ],
}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def app(clock: FixedClock) -> MemoryContainer:
    app = build_memory_container(clock=clock)

    async def run_steps(job: JobRequest) -> None:
        # What the worker's `workflows.run` handler does; an embedder registers it the same way.
        assert job.location_id is not None
        await app.workflow_engine.run(
            job.location_id, uuid.UUID(str(job.args["enrollment_id"])), int(job.args["tick"])
        )

    app.queue.register(STEP_KIND, run_steps)
    return app


async def test_an_enrolled_contact_goes_through_every_step(app: MemoryContainer, clock: FixedClock) -> None:
    operator = Actor.operator()
    agency = await app.tenancy.create_agency(operator, "Memory Agency")
    location = await app.tenancy.create_location(
        operator, NewLocation("Alpha", timezone="America/Chicago", tier=PlanTier.PRO), agency.id
    )
    here = Actor.operator_at(location.id)
    ann = await app.contacts.create(here, {"first_name": "Ann", "phone": "+13125550101"})

    workflow = await app.workflows.create(here, NURTURE)
    simulation = await app.workflows.simulate(here, workflow.id, {"contact_id": str(ann.id)})
    assert [entry.step_id for entry in simulation.timeline][:1] == ["hello"]
    published = await app.workflows.publish(here, workflow.id)
    assert (published.status, published.version) == (WorkflowStatus.PUBLISHED, 1)

    first = await app.workflows.enroll(here, workflow.id, {"contact_ids": [str(ann.id)]})
    again = await app.workflows.enroll(here, workflow.id, {"contact_ids": [str(ann.id)]})
    assert (first.matched, first.enrolled) == (1, 1)
    assert again.enrolled == 0
    await app.queue.run_pending()

    (enrollment,) = (await app.workflows.enrollments(here, workflow.id, PageRequest())).items
    assert (enrollment.status, enrollment.step_id) == (EnrollmentStatus.WAITING, "tag")  # due after the wait
    outbox = await app.inbox.outbox(here, PageRequest())
    assert [m.body for m in outbox.items] == ["Hi Ann, welcome!"]

    clock.advance(timedelta(days=1, minutes=1))
    await app.queue.run_pending()
    finished, history = await app.workflows.enrollment(here, enrollment.id)
    assert finished.status is EnrollmentStatus.COMPLETED
    assert [run.step_id for run in history] == ["hello", "pause", "tag"]
    assert "welcomed" in (await app.contacts.get(here, ann.id)).tags
    stats = await app.workflows.stats(here, workflow.id)
    assert (stats.enrolled, stats.completed) == (1, 1)
