"""The workflow engine on the real database with real procrastinate workers: triggers enroll from domain
events, steps run as jobs and each leaves one ledger row, waits are scheduled jobs that come due on the
engine's clock, event waits and goals are answered by the events consumer, re-entry rules hold under
concurrency, and a step repeated after a crash does its effect once."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from dependency_injector import providers
from sqlalchemy import text

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_core.contacts.fields import MAX_TAGS
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.permissions import Actor
from ghl_core.workflows.engine import WorkflowEngine
from ghl_core.workflows.models import EnrollmentStatus, StepRunStatus, WorkflowStatus
from ghl_core.workflows.moves import Moves
from jobs_kit import run_jobs
from support import Tenant, make_container, new_tenant, new_user

QUEUES = ["events", "workflows", "messages"]


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
async def container(settings: Settings, clock: FixedClock) -> AsyncIterator[Container]:
    built = make_container(settings.model_copy(update={"webhooks_allow_private": True}))
    built.clock.override(providers.Object(clock))
    try:
        yield built
    finally:
        await close_container(built)


@pytest.fixture
async def tenant(container: Container) -> Tenant:
    return await new_tenant(container)


def actor(tenant: Tenant) -> Actor:
    return Actor.operator_at(tenant.location_id)


async def publish(container: Container, tenant: Tenant, document: dict[str, Any]) -> uuid.UUID:
    service = container.workflows()
    workflow = await service.create(actor(tenant), document)
    published = await service.publish(actor(tenant), workflow.id)
    assert published.status is WorkflowStatus.PUBLISHED
    assert published.version == 1
    return workflow.id


async def contact(container: Container, tenant: Tenant, **fields: Any) -> uuid.UUID:
    data = {"first_name": "Ada", "phone": f"+1415555{uuid.uuid4().int % 10000:04d}", **fields}
    data.setdefault("email", f"{uuid.uuid4().hex[:10]}@example.com")
    return (await container.contacts().create(actor(tenant), data)).id


async def tag(container: Container, tenant: Tenant, contact_id: uuid.UUID, *tags: str) -> None:
    await container.tag_service().tag_contact(actor(tenant), contact_id, add=list(tags))


async def enrollments(container: Container, tenant: Tenant, workflow_id: uuid.UUID) -> list[Any]:
    page = await container.workflows().enrollments(actor(tenant), workflow_id, _page())
    return page.items


def _page() -> Any:
    from ghl_core.shared.pagination import PageRequest

    return PageRequest(limit=100)


async def history(
    container: Container, tenant: Tenant, enrollment_id: uuid.UUID
) -> list[tuple[str, str, str]]:
    _, runs = await container.workflows().enrollment(actor(tenant), enrollment_id)
    return [(r.step_id, r.status.value, r.outcome) for r in runs]


async def settle(container: Container) -> None:
    """Runs what is due now (the engine's clock decides what a wake-up finds due)."""
    await run_jobs(container, queues=QUEUES, fast_forward=False)


async def later(container: Container, clock: FixedClock, delta: timedelta) -> None:
    """Moves the engine's clock on, then runs the jobs due by then (scheduled ones brought forward)."""
    clock.advance(delta)
    await run_jobs(container, queues=QUEUES, fast_forward=True, due_by=clock.now())


async def count(container: Container, sql: str, **params: Any) -> int:
    async with container.engines().owner.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


def crash_once(monkeypatch: pytest.MonkeyPatch, step_id: str, message: str) -> dict[str, int]:
    """The worker loses its database once, when it comes to record `step_id`; answers the counter
    (`left` is 0 once the crash happened)."""
    original = Moves.record
    crashes = {"left": 1}

    async def record(self: Moves, uow: Any, enrollment: Any, step: Any, tick: int, outcome: Any) -> None:
        if step.id == step_id and crashes["left"]:
            crashes["left"] -= 1
            raise ConnectionError(message)
        await original(self, uow, enrollment, step, tick, outcome)

    monkeypatch.setattr(Moves, "record", record)
    return crashes


NURTURE = {
    "name": "Lead nurture",
    "settings": {"allow_reentry": False},
    "triggers": [{"type": "tag_added", "tag": "lead"}],
    "steps": [
        {"id": "text", "type": "send_sms", "body": "Hi {{ contact.first_name }}"},
        {"id": "tag", "type": "add_tag", "tags": ["nurtured"]},
        {"id": "wait5", "type": "wait", "wait": {"minutes": 5}},
        {
            "id": "check",
            "type": "if_else",
            "branches": [
                {
                    "name": "vip",
                    "when": {"field": "contact.tags", "op": "contains", "value": "vip"},
                    "next": "end",
                }
            ],
            "else": "email",
        },
        {
            "id": "email",
            "type": "send_email",
            "subject": "Still there?",
            "body": "Hello {{ contact.first_name }}",
        },
        {"id": "note", "type": "add_note", "body": "Nurtured {{ contact.first_name }}"},
        {"id": "done", "type": "end"},
    ],
}


async def test_a_trigger_enrolls_steps_run_waits_come_due_and_each_step_is_recorded_once(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    workflow_id = await publish(container, tenant, NURTURE)
    ada = await contact(container, tenant)
    await tag(container, tenant, ada, "lead")
    await settle(container)

    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.contact_id == ada
    assert enrollment.trigger == "tag_added"
    assert enrollment.status is EnrollmentStatus.WAITING
    assert enrollment.step_id == "check"
    assert enrollment.wake_at == clock.now() + timedelta(minutes=5)
    assert await history(container, tenant, enrollment.id) == [
        ("text", "done", "queued"),
        ("tag", "done", "done"),
        ("wait5", "done", "waiting"),
    ]
    sms = await count(
        container,
        "SELECT count(*) FROM messages WHERE contact_id = :c AND source = 'workflow' AND channel = 'sms'",
        c=ada,
    )
    assert sms == 1
    assert "nurtured" in (await container.contacts().get(actor(tenant), ada)).tags

    # Four minutes on, the wait is not over: a wake-up job brought forward finds nothing due.
    await later(container, clock, timedelta(minutes=4))
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.status is EnrollmentStatus.WAITING

    await later(container, clock, timedelta(minutes=2))
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.status is EnrollmentStatus.COMPLETED
    assert [step for step, _, _ in await history(container, tenant, enrollment.id)] == [
        "text",
        "tag",
        "wait5",
        "check",
        "email",
        "note",
        "done",
    ]
    assert await count(container, "SELECT count(*) FROM notes WHERE contact_id = :c", c=ada) == 1
    stats = await container.workflows().stats(actor(tenant), workflow_id)
    assert (stats.enrolled, stats.completed, stats.waiting) == (1, 1, 0)
    assert stats.steps["email"] == {"done": 1}

    # Tagged again: re-entry is not allowed, but the first enrollment has finished, so a new one starts.
    await container.tag_service().tag_contact(actor(tenant), ada, remove=["lead"])
    await tag(container, tenant, ada, "lead")
    await settle(container)
    assert len(await enrollments(container, tenant, workflow_id)) == 2


async def test_one_running_enrollment_per_contact_unless_reentry_is_allowed(
    container: Container, tenant: Tenant
) -> None:
    document = {
        "name": "Exclusive",
        "triggers": [{"type": "manual"}],
        "steps": [{"id": "hold", "type": "wait", "wait": {"days": 3}}],
    }
    workflow_id = await publish(container, tenant, document)
    ada = await contact(container, tenant)
    service = container.workflows()
    results = await asyncio.gather(
        *(service.enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]}) for _ in range(6))
    )
    assert sum(r.enrolled for r in results) == 1
    assert sum(r.skipped for r in results) == 5

    reentry = {**document, "name": "Re-entry", "settings": {"allow_reentry": True}}
    again = await publish(container, tenant, reentry)
    for _ in range(2):
        await service.enroll(actor(tenant), again, {"contact_ids": [str(ada)]})
    assert len(await enrollments(container, tenant, again)) == 2


async def test_an_event_wait_resumes_on_its_event_and_times_out_to_its_branch(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Hot or cold",
            "triggers": [{"type": "manual"}],
            "steps": [
                {
                    "id": "wait_hot",
                    "type": "wait",
                    "wait": {"event": "tag.added", "tag": "hot", "timeout": {"days": 1}},
                    "timeout_next": "cold",
                },
                {"id": "warm", "type": "add_tag", "tags": ["was-hot"], "next": "end"},
                {"id": "cold", "type": "add_tag", "tags": ["went-cold"]},
            ],
        },
    )
    hot, cold = await contact(container, tenant), await contact(container, tenant)
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(hot), str(cold)]})
    await settle(container)
    assert {e.status for e in await enrollments(container, tenant, workflow_id)} == {EnrollmentStatus.WAITING}

    await tag(container, tenant, hot, "hot")
    await tag(container, tenant, cold, "something-else")
    await settle(container)
    by_contact = {e.contact_id: e for e in await enrollments(container, tenant, workflow_id)}
    assert by_contact[hot].status is EnrollmentStatus.COMPLETED
    assert by_contact[cold].status is EnrollmentStatus.WAITING
    assert "was-hot" in (await container.contacts().get(actor(tenant), hot)).tags

    await later(container, clock, timedelta(days=1, minutes=1))
    by_contact = {e.contact_id: e for e in await enrollments(container, tenant, workflow_id)}
    assert by_contact[cold].status is EnrollmentStatus.COMPLETED
    steps = await history(container, tenant, by_contact[cold].id)
    assert ("wait_hot", "done", "timed_out") in steps
    tags = (await container.contacts().get(actor(tenant), cold)).tags
    assert "went-cold" in tags
    assert "was-hot" not in tags


async def test_a_goal_jumps_an_enrollment_out_of_its_wait(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Until they buy",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "long", "type": "wait", "wait": {"days": 30}},
                {"id": "nag", "type": "add_tag", "tags": ["nagged"]},
                {
                    "id": "bought",
                    "type": "goal",
                    "event": {"event": "tag.added", "tag": "customer"},
                    "then": "thank",
                },
                {"id": "thank", "type": "add_tag", "tags": ["thanked"]},
            ],
        },
    )
    buyer = await contact(container, tenant)
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(buyer)]})
    await settle(container)
    await tag(container, tenant, buyer, "customer")
    await settle(container)
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.status is EnrollmentStatus.COMPLETED
    tags = (await container.contacts().get(actor(tenant), buyer)).tags
    assert "thanked" in tags
    assert "nagged" not in tags
    assert ("bought", "done", "goal") in await history(container, tenant, enrollment.id)

    # The 30-day wake-up still queued for the old wait finds the enrollment moved on and does nothing.
    await later(container, clock, timedelta(days=31))
    assert "nagged" not in (await container.contacts().get(actor(tenant), buyer)).tags


async def test_pausing_stops_running_enrollments_and_a_deleted_contact_leaves(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Pausable",
            "triggers": [{"type": "tag_added", "tag": "go"}],
            "steps": [
                {"id": "w", "type": "wait", "wait": {"hours": 1}},
                {"id": "t", "type": "add_tag", "tags": ["after"]},
            ],
        },
    )
    a, b = await contact(container, tenant), await contact(container, tenant)
    await tag(container, tenant, a, "go")
    await tag(container, tenant, b, "go")
    await settle(container)
    await container.contacts().delete(actor(tenant), b)
    await settle(container)
    by_contact = {e.contact_id: e for e in await enrollments(container, tenant, workflow_id)}
    assert by_contact[b].status is EnrollmentStatus.STOPPED
    assert by_contact[b].reason == "contact_removed"

    _, stopped = await container.workflows().pause(actor(tenant), workflow_id)
    assert stopped == 1
    await later(container, clock, timedelta(hours=2))
    assert "after" not in (await container.contacts().get(actor(tenant), a)).tags
    # Paused: the trigger no longer enrolls.
    c = await contact(container, tenant)
    await tag(container, tenant, c, "go")
    await settle(container)
    assert len(await enrollments(container, tenant, workflow_id)) == 2


async def test_stop_on_reply_and_dnd_skip(container: Container, tenant: Tenant) -> None:
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Polite",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "sms", "type": "send_sms", "body": "hello"},
                {"id": "w", "type": "wait", "wait": {"days": 2}},
            ],
        },
    )
    quiet = await contact(container, tenant, dnd_channels={"sms": True})
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(quiet)]})
    await settle(container)
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert (await history(container, tenant, enrollment.id))[0] == ("sms", "skipped", "skipped_dnd")


async def test_a_step_repeated_after_its_effect_committed_does_it_once(
    container: Container, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker dies after the note was written and before the ledger row: the job is retried and the
    note, created with an id derived from (enrollment, step, tick), is found rather than written again."""
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Crash",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "note", "type": "add_note", "body": "once"},
                {"id": "t", "type": "add_tag", "tags": ["x"]},
            ],
        },
    )
    ada = await contact(container, tenant)
    crashes = crash_once(monkeypatch, "note", "the worker lost its database right after the note committed")
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    await run_jobs(container, queues=QUEUES)  # the failed attempt is retried (brought forward)
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert crashes["left"] == 0
    assert enrollment.status is EnrollmentStatus.COMPLETED
    assert await count(container, "SELECT count(*) FROM notes WHERE contact_id = :c", c=ada) == 1
    assert (
        await count(
            container, "SELECT count(*) FROM workflow_step_runs WHERE enrollment_id = :e", e=enrollment.id
        )
        == 2
    )
    runs = (await container.workflows().enrollment(actor(tenant), enrollment.id))[1]
    assert {r.status for r in runs} == {StepRunStatus.DONE}


@pytest.mark.parametrize(
    ("zone", "before", "expected"),
    [
        # Spring forward: Saturday 10:00 local, the clocks change in the night, 09:00 is 07:00 UTC.
        ("Europe/Berlin", datetime(2027, 3, 27, 9, 0, tzinfo=UTC), datetime(2027, 3, 28, 7, 0, tzinfo=UTC)),
        (
            "America/New_York",
            datetime(2027, 3, 13, 15, 0, tzinfo=UTC),
            datetime(2027, 3, 14, 13, 0, tzinfo=UTC),
        ),
        # Fall back: 09:00 after the change is an hour later in UTC.
        ("Europe/Berlin", datetime(2027, 10, 30, 8, 0, tzinfo=UTC), datetime(2027, 10, 31, 8, 0, tzinfo=UTC)),
        (
            "America/New_York",
            datetime(2027, 11, 6, 14, 0, tzinfo=UTC),
            datetime(2027, 11, 7, 14, 0, tzinfo=UTC),
        ),
    ],
)
async def test_wait_until_nine_in_the_contacts_zone_across_the_clock_changes(
    container: Container, tenant: Tenant, clock: FixedClock, zone: str, before: datetime, expected: datetime
) -> None:
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": f"Nine {zone} {before.date()}",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "nine", "type": "wait", "wait": {"until_time": "09:00"}},
                {"id": "t", "type": "add_tag", "tags": ["at-nine"]},
            ],
        },
    )
    clock.set(before)
    someone = await contact(container, tenant, timezone=zone)
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(someone)]})
    await settle(container)
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.wake_at == expected
    await later(container, clock, expected - before - timedelta(seconds=1))
    assert "at-nine" not in (await container.contacts().get(actor(tenant), someone)).tags
    await later(container, clock, timedelta(seconds=1))
    assert "at-nine" in (await container.contacts().get(actor(tenant), someone)).tags


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP endpoint answering {"vip": true} and keeping what it received."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            seen.append({"headers": dict(self.headers.items()), "body": json.loads(body)})
            answer = json.dumps({"vip": True}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/crm", seen
    finally:
        server.shutdown()
        server.server_close()


async def test_trigger_filters_and_a_webhook_whose_answer_a_later_branch_reads(
    container: Container, tenant: Tenant, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = receiver
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Ask the CRM",
            "triggers": [
                {
                    "type": "tag_added",
                    "tag": "lead",
                    "filters": {"field": "contact.company_name", "op": "eq", "value": "Acme"},
                }
            ],
            "steps": [
                {
                    "id": "call",
                    "type": "webhook",
                    "method": "PUT",
                    "url": url,
                    "body": {"email": "{{ contact.email }}", "company": "{{ contact.company_name }}"},
                },
                {
                    "id": "vip",
                    "type": "if_else",
                    "branches": [
                        {"name": "yes", "when": {"field": "steps.call.body.vip", "op": "eq", "value": True}}
                    ],
                    "else": "end",
                },
                {"id": "t", "type": "add_tag", "tags": ["vip"]},
            ],
        },
    )
    acme = await contact(container, tenant, company_name="Acme")
    other = await contact(container, tenant, company_name="Globex")
    await tag(container, tenant, acme, "lead")
    await tag(container, tenant, other, "lead")
    await settle(container)

    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.contact_id == acme
    assert enrollment.status is EnrollmentStatus.COMPLETED
    assert "vip" in (await container.contacts().get(actor(tenant), acme)).tags
    (request,) = seen
    assert request["body"] == {
        "email": (await container.contacts().get(actor(tenant), acme)).email,
        "company": "Acme",
    }
    assert request["headers"]["Idempotency-Key"] == f"workflow:{enrollment.id}:call:0"
    steps = await history(container, tenant, enrollment.id)
    assert steps[0] == ("call", "done", "http_200")


async def test_a_reply_stops_a_workflow_that_stops_on_reply(container: Container, tenant: Tenant) -> None:
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Quiet on reply",
            "settings": {"stop_on_reply": True},
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "w", "type": "wait", "wait": {"days": 2}},
                {"id": "t", "type": "add_tag", "tags": ["x"]},
            ],
        },
    )
    ada = await contact(container, tenant)
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    await settle(container)
    location = await container.tenancy().get_location(actor(tenant), tenant.location_id)
    someone = await container.contacts().get(actor(tenant), ada)
    from ghl_core.conversations.inbound import InboundSms

    async with container.uow()(TenantScope.location(tenant.location_id)) as uow:
        await container.message_receiving().receive_sms(
            uow,
            location,
            InboundSms(
                provider="twilio",
                provider_message_id=f"SM{uuid.uuid4().hex}",
                from_number=str(someone.phone),
                to_number="+14155550100",
                body="who is this?",
            ),
        )
        await uow.commit()
    await settle(container)
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert (enrollment.status, enrollment.reason) == (EnrollmentStatus.STOPPED, "replied")


async def test_a_step_that_keeps_raising_fails_its_enrollment_after_the_last_attempt(
    container: Container, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Broken",
            "triggers": [{"type": "manual"}],
            "steps": [{"id": "t", "type": "add_tag", "tags": ["x"]}],
        },
    )
    ada = await contact(container, tenant)

    async def broken(*args: Any, **kwargs: Any) -> int | None:
        raise ConnectionError("the database is gone")

    monkeypatch.setattr(WorkflowEngine, "_one", broken)
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    await run_jobs(container, queues=QUEUES)  # every retry brought forward, until the last one fails
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.status is EnrollmentStatus.FAILED
    attempts = await count(
        container,
        "SELECT max(attempts) FROM procrastinate_jobs WHERE args ->> 'enrollment_id' = :e",
        e=str(enrollment.id),
    )
    assert attempts == 13  # the first attempt and the schedule's 12 retries
    # The location admin reads why as the job's error says it: no exception text, the error id that names
    # the job's last attempt (the operators' log line and `ghl jobs show` have the detail).
    job = await count(
        container,
        "SELECT max(id) FROM procrastinate_jobs WHERE args ->> 'enrollment_id' = :e",
        e=str(enrollment.id),
    )
    assert enrollment.reason == (
        f"t: the job stopped on an internal error (error id {job}-13); your operator has the detail"
    )


async def test_a_wait_followed_by_a_step_acting_through_another_service_completes(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    """The wake-up's move to active is committed before the step's service commits its change; it once
    stayed in memory, and the enrollment was left waiting with its note written (found by the restart
    test in tests/integration/test_workflow_reliability.py)."""
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Wait then note",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "pause", "type": "wait", "wait": {"minutes": 1}},
                {"id": "note", "type": "add_note", "body": "after the wait"},
                {"id": "t", "type": "add_tag", "tags": ["done"]},
            ],
        },
    )
    ada = await contact(container, tenant)
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    await settle(container)
    await later(container, clock, timedelta(minutes=2))
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.status is EnrollmentStatus.COMPLETED
    assert await count(container, "SELECT count(*) FROM notes WHERE contact_id = :c", c=ada) == 1


FIELD_AND_TAGS = {
    "name": "Field and tags",
    "triggers": [{"type": "manual"}],
    "steps": [
        {"id": "t1", "type": "add_tag", "tags": ["first"]},
        {
            "id": "field",
            "type": "update_field",
            "field": "company_name",
            "value": "Acme {{ contact.first_name }}",
        },
        {"id": "t2", "type": "add_tag", "tags": ["second"]},
        {"id": "stop", "type": "end"},
    ],
}


async def contact_row(container: Container, contact_id: uuid.UUID) -> Any:
    async with container.engines().owner.connect() as conn:
        return (
            await conn.execute(
                text("SELECT tags, company_name FROM contacts WHERE id = :c"), {"c": contact_id}
            )
        ).one()


async def test_a_job_runs_its_steps_and_their_service_changes_in_one_transaction(
    container: Container, tenant: Tenant
) -> None:
    """Tags and fields are changed through their services inside the enrollment's transaction: the
    four steps of one job are one commit, with their audit rows and events, and a second run of the
    same job finds its tick past and does nothing."""
    from sqlalchemy import event

    workflow_id = await publish(container, tenant, FIELD_AND_TAGS)
    ada = await contact(container, tenant)
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    commits: list[object] = []
    app = container.engines().app.sync_engine

    def committed(conn: object) -> None:
        commits.append(conn)

    event.listen(app, "commit", committed)
    try:
        ran = await container.workflow_engine().run(tenant.location_id, enrollment.id, enrollment.tick)
    finally:
        event.remove(app, "commit", committed)
    assert ran == 3  # the end step finishes the enrollment rather than hand on
    assert len(commits) == 1
    await settle(container)  # the enrollment's queued job: its tick is past
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.status is EnrollmentStatus.COMPLETED
    assert await history(container, tenant, enrollment.id) == [
        ("t1", "done", "done"),
        ("field", "done", "done"),
        ("t2", "done", "done"),
        ("stop", "done", "end"),
    ]
    row = await contact_row(container, ada)
    assert (sorted(row.tags), row.company_name) == (["first", "second"], "Acme Ada")
    events = "SELECT count(*) FROM domain_events WHERE entity_id = :c AND type = :t"
    assert await count(container, events, c=ada, t="contact.tag_added") == 2
    assert await count(container, events, c=ada, t="contact.updated") == 1
    audit = "SELECT count(*) FROM audit_log WHERE entity_id = :c AND action = 'update'"
    assert await count(container, audit, c=ada) == 3


async def test_steps_in_one_transaction_are_done_once_when_the_worker_dies_before_its_commit(
    container: Container, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker loses its database at the third step: the tag and the field of the first two were
    not committed either, and the retry does all three once (one event each, one audit row each)."""
    workflow_id = await publish(container, tenant, FIELD_AND_TAGS)
    ada = await contact(container, tenant)
    crashes = crash_once(monkeypatch, "t2", "the worker lost its database before the commit")
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    await run_jobs(container, queues=QUEUES)  # the failed attempt is retried (brought forward)
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert crashes["left"] == 0
    assert enrollment.status is EnrollmentStatus.COMPLETED
    assert [r[0] for r in await history(container, tenant, enrollment.id)] == ["t1", "field", "t2", "stop"]
    events = "SELECT count(*) FROM domain_events WHERE entity_id = :c AND type = :t"
    assert await count(container, events, c=ada, t="contact.tag_added") == 2
    assert await count(container, events, c=ada, t="contact.updated") == 1
    audit = "SELECT count(*) FROM audit_log WHERE entity_id = :c AND action = 'update'"
    assert await count(container, audit, c=ada) == 3


async def test_a_step_its_service_refuses_fails_alone_and_the_steps_before_it_stand(
    container: Container, tenant: Tenant
) -> None:
    """The contact carries the most tags it may: adding one more is refused after the tag was written
    in the transaction. That is rolled back (the tag list has no trace of it), the field set by the
    step before it stands, the refusal is recorded and the enrollment fails."""
    workflow_id = await publish(container, tenant, FIELD_AND_TAGS)
    full = [f"t{i}" for i in range(MAX_TAGS - 1)]
    ada = await contact(container, tenant, tags=full)
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    await settle(container)
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.status is EnrollmentStatus.FAILED
    assert (enrollment.reason or "").startswith("t2: ValidationFailed")
    assert await history(container, tenant, enrollment.id) == [
        ("t1", "done", "done"),
        ("field", "done", "done"),
        ("t2", "failed", "failed"),
    ]
    row = await contact_row(container, ada)
    assert (len(row.tags), "second" in row.tags, row.company_name) == (MAX_TAGS, False, "Acme Ada")
    tags = "SELECT count(*) FROM tags WHERE location_id = :l AND name = :n"
    assert await count(container, tags, l=tenant.location_id, n="second") == 0
    assert await count(container, tags, l=tenant.location_id, n="first") == 1
    events = "SELECT count(*) FROM domain_events WHERE entity_id = :c AND type = :t"
    assert await count(container, events, c=ada, t="contact.tag_added") == 1


async def test_a_woken_step_its_service_refuses_fails_the_enrollment_rather_than_leave_it_waiting(
    container: Container, tenant: Tenant, clock: FixedClock
) -> None:
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Wait then refused",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "pause", "type": "wait", "wait": {"minutes": 1}},
                {"id": "t", "type": "add_tag", "tags": ["one-too-many"]},
                {"id": "after", "type": "add_tag", "tags": ["never"]},
            ],
        },
    )
    ada = await contact(container, tenant, tags=[f"t{i}" for i in range(MAX_TAGS)])
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    await settle(container)
    await later(container, clock, timedelta(minutes=2))
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert (enrollment.status, enrollment.step_id) == (EnrollmentStatus.FAILED, None)
    assert [r[:2] for r in await history(container, tenant, enrollment.id)] == [
        ("pause", "done"),
        ("t", "failed"),
    ]
    assert "one-too-many" not in (await contact_row(container, ada)).tags


async def test_remove_tag_and_dnd_steps_change_the_contact_and_a_refused_assignment_fails(
    container: Container, tenant: Tenant
) -> None:
    """The other steps run through the services in the enrollment's transaction: each sees the contact
    as the step before it left it (the second dnd step keeps the sms channel the first one set). The
    last one names a user who lost access to the location after the workflow was published (publishing
    refuses a user without access): the service refuses it, the four before it stand."""
    owner = await new_user(container, tenant)
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Contact steps",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "untag", "type": "remove_tag", "tags": ["cold"]},
                {"id": "quiet_sms", "type": "dnd", "channel": "sms", "on": True},
                {"id": "quiet_email", "type": "dnd", "channel": "email", "on": True},
                {"id": "all", "type": "dnd", "channel": "all", "on": False},
                {"id": "owner", "type": "assign_user", "user_id": str(owner)},
            ],
        },
    )
    await container.tenancy().revoke_location(Actor.operator(), owner, tenant.location_id)
    ada = await contact(container, tenant, tags=["cold", "keep"])
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    await settle(container)
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert enrollment.status is EnrollmentStatus.FAILED
    assert f"user {owner} is not a user with access" in (enrollment.reason or "")
    assert [r[1] for r in await history(container, tenant, enrollment.id)] == ["done"] * 4 + ["failed"]
    found = await container.contacts().get(actor(tenant), ada)
    assert found.tags == ["keep"]
    assert found.dnd_channels == {"sms": True, "email": True}
    assert (found.dnd, found.assigned_user_id) == (False, None)
    events = "SELECT count(*) FROM domain_events WHERE entity_id = :c AND type = :t"
    assert await count(container, events, c=ada, t="contact.tag_removed") == 1
    assert await count(container, events, c=ada, t="contact.dnd_changed") == 2  # "all" off: no change
    assert await count(container, events, c=ada, t="contact.updated") == 0


async def test_a_create_task_step_gives_the_task_its_assignee_or_the_contacts_assigned_user(
    container: Container, tenant: Tenant
) -> None:
    """The engine once passed `assigned_user_id`, a field the task service does not know: every task
    step with an assignee (its own, or the contact's assigned user) failed its enrollment."""
    named, owner = await new_user(container, tenant), await new_user(container, tenant)
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Tasks",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "named", "type": "create_task", "title": "Call", "assignee_id": str(named)},
                {"id": "owners", "type": "create_task", "title": "Follow up {{ contact.first_name }}"},
            ],
        },
    )
    ada = await contact(container, tenant, assigned_user_id=str(owner))
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    await settle(container)
    (enrollment,) = await enrollments(container, tenant, workflow_id)
    assert (enrollment.status, enrollment.reason) == (EnrollmentStatus.COMPLETED, None)
    tasks = await container.tasks().list_for_contact(actor(tenant), ada, _page())
    assert sorted((t.title, t.assignee_id) for t in tasks.items) == sorted(
        [("Call", named), ("Follow up Ada", owner)]
    )


# Doubles the contact's company name eight times: fine for the sample data a template is checked with, over
# the 100,000 characters a value may have for a company name of 500.
DOUBLED_COMPANY = "{% set a = contact.company_name %}" + "{% set a = a ~ a %}" * 8 + "Hi {{ a[:4] }}"


async def test_a_step_whose_render_breaks_a_limit_fails_once_with_the_reason(
    container: Container, tenant: Tenant
) -> None:
    """A render over the limits is a recorded failure of the step and its enrollment, not a crash of the
    job (no retries) and not a message."""
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Heavy",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "sms", "type": "send_sms", "body": DOUBLED_COMPANY},
                {"id": "note", "type": "add_note", "body": DOUBLED_COMPANY},
            ],
        },
    )
    small = await contact(container, tenant, company_name="Acme")
    big = await contact(container, tenant, company_name="C" * 500)
    ids = [str(small), str(big)]
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": ids})
    await settle(container)

    by_contact = {e.contact_id: e for e in await enrollments(container, tenant, workflow_id)}
    assert by_contact[small].status is EnrollmentStatus.COMPLETED
    failed = by_contact[big]
    assert failed.status is EnrollmentStatus.FAILED
    assert failed.reason is not None
    assert "longer than 100000 characters" in failed.reason
    assert await history(container, tenant, failed.id) == [("sms", "failed", "failed")]
    sent = "SELECT count(*) FROM messages WHERE contact_id = :c AND source = 'workflow'"
    assert (await count(container, sent, c=small), await count(container, sent, c=big)) == (1, 0)
    attempts = "SELECT max(attempts) FROM procrastinate_jobs WHERE args ->> 'enrollment_id' = :e"
    assert await count(container, attempts, e=str(failed.id)) == 1


async def test_a_javascript_link_from_a_merge_field_never_reaches_a_workflow_email(
    container: Container, tenant: Tenant
) -> None:
    workflow_id = await publish(
        container,
        tenant,
        {
            "name": "Mail",
            "triggers": [{"type": "manual"}],
            "steps": [
                {
                    "id": "mail",
                    "type": "send_email",
                    "subject": "Hi",
                    "body": "Hello",
                    "html": '<p><a href="{{ contact.website }}">Your site</a>'
                    ' <a href="https://shop.example/{{ contact.first_name }}">Shop</a></p>',
                }
            ],
        },
    )
    ada = await contact(container, tenant)
    async with container.engines().owner.begin() as conn:  # stored before websites were checked
        await conn.execute(
            text("UPDATE contacts SET website = 'javascript:alert(document.cookie)' WHERE id = :c"),
            {"c": ada},
        )
    await container.workflows().enroll(actor(tenant), workflow_id, {"contact_ids": [str(ada)]})
    await settle(container)
    async with container.engines().owner.connect() as conn:
        html = (
            await conn.execute(
                text("SELECT html FROM messages WHERE contact_id = :c AND source = 'workflow'"), {"c": ada}
            )
        ).scalar_one()
    assert "javascript" not in html
    assert '<a href="https://shop.example/Ada" rel="noopener noreferrer">Shop</a>' in html
