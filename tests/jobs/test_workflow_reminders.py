"""Birthday and custom-date reminder triggers on the real database: a reminder enrolls once the
location's own clock has passed its time, the contacts whose date falls the given days away (live ones
only), once per day however often it runs; 29 February birthdays come on 28 February in other years; the
birthday lookup uses its index; the periodic `workflows.reminders` job covers every location, one failing
location does not stop the others, and it runs as a job on a real worker."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dependency_injector import providers
from sqlalchemy import text

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_adapters.sql.contact_search import Explain
from ghl_adapters.sql.contacts import SqlContactRepository
from ghl_adapters.workflows.jobs import REMINDERS_KIND, RemindersFailed, reminders_kind
from ghl_core.jobs.ports import JobContext, JobRequest
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.pagination import PageRequest
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import LocationChanges
from ghl_core.workflows.models import EnrollmentStatus, WorkflowStatus
from jobs_kit import run_jobs
from support import Tenant, make_container, new_tenant

TOKYO = ZoneInfo("Asia/Tokyo")  # UTC+9 all year: 09:00 there is midnight UTC, the day before's end
CHICAGO = ZoneInfo("America/Chicago")  # what new_tenant makes

# Re-entry allowed: what keeps a reminder from enrolling twice is then its cause (workflow, trigger,
# contact, day) alone, and the step jobs need not run for a contact to be reminded again next year.
BIRTHDAYS = {
    "name": "Birthday wishes",
    "settings": {"allow_reentry": True},
    "triggers": [{"type": "birthday_reminder", "at": "09:00", "days_before": 2}],
    "steps": [{"id": "tag", "type": "add_tag", "tags": ["birthday-soon"]}],
}
RENEWALS = {
    "name": "Renewal follow-up",
    "settings": {"allow_reentry": True},
    "triggers": [{"type": "custom_date_reminder", "field": "custom.renewal", "at": "08:00", "days_after": 1}],
    "steps": [{"id": "tag", "type": "add_tag", "tags": ["renewed"]}],
}


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
async def container(settings: Settings, clock: FixedClock) -> AsyncIterator[Container]:
    built = make_container(settings)
    built.clock.override(providers.Object(clock))
    try:
        yield built
    finally:
        await close_container(built)


def actor(tenant: Tenant) -> Actor:
    return Actor.operator_at(tenant.location_id)


async def tenant_in(container: Container, zone: ZoneInfo) -> Tenant:
    tenant = await new_tenant(container)
    if zone is not CHICAGO:
        await container.tenancy().update_location(
            Actor.operator(), tenant.location_id, LocationChanges(timezone=zone.key)
        )
    return tenant


@pytest.fixture
async def tokyo(container: Container) -> Tenant:
    return await tenant_in(container, TOKYO)


def set_clock(clock: FixedClock, local: datetime) -> None:
    """Moves the module's clock (forward or back) to a local wall-clock time."""
    clock.advance(local.astimezone(UTC) - clock.now())


async def publish(container: Container, tenant: Tenant, document: dict[str, Any]) -> uuid.UUID:
    service = container.workflows()
    workflow = await service.create(actor(tenant), document)
    published = await service.publish(actor(tenant), workflow.id)
    assert (published.status, published.version) == (WorkflowStatus.PUBLISHED, 1)
    return workflow.id


async def contact(container: Container, tenant: Tenant, **fields: Any) -> uuid.UUID:
    data = {"first_name": "Ada", "phone": f"+1415555{uuid.uuid4().int % 10000:04d}", **fields}
    data.setdefault("email", f"{uuid.uuid4().hex[:10]}@example.com")
    return (await container.contacts().create(actor(tenant), data)).id


async def renewal_field(container: Container, tenant: Tenant) -> None:
    await container.custom_field_service().create(
        actor(tenant), {"key": "renewal", "label": "Renewal", "type": "date"}
    )


async def enrolled(container: Container, tenant: Tenant, workflow_id: uuid.UUID) -> list[uuid.UUID]:
    page = await container.workflows().enrollments(actor(tenant), workflow_id, PageRequest(limit=100))
    return sorted(e.contact_id for e in page.items)


async def remind(container: Container, tenant: Tenant) -> int:
    return await container.workflow_engine().remind(tenant.location_id)


def job_context() -> JobContext:
    return JobContext(job_id=0, kind=REMINDERS_KIND, attempt=1, max_attempts=1)


async def test_a_birthday_reminder_enrolls_live_contacts_two_days_ahead_once_after_its_time(
    container: Container, tokyo: Tenant, clock: FixedClock
) -> None:
    workflow_id = await publish(container, tokyo, BIRTHDAYS)
    ada = await contact(container, tokyo, date_of_birth="1990-03-12")
    await contact(container, tokyo, date_of_birth="1985-03-13")  # the day after
    await contact(container, tokyo, date_of_birth="1985-03-10")  # today
    await contact(container, tokyo)  # no birthday known
    gone = await contact(container, tokyo, date_of_birth="1970-03-12")
    await container.contacts().delete(actor(tokyo), gone)
    erased = await contact(container, tokyo, date_of_birth="1971-03-12")
    await container.contacts().erase(actor(tokyo), erased)

    # 08:59 in Tokyo on 10 March (still 9 March in UTC): not yet.
    set_clock(clock, datetime(2027, 3, 10, 8, 59, tzinfo=TOKYO))
    assert await remind(container, tokyo) == 0
    assert await enrolled(container, tokyo, workflow_id) == []

    set_clock(clock, datetime(2027, 3, 10, 9, 0, tzinfo=TOKYO))
    assert await remind(container, tokyo) == 1
    assert await enrolled(container, tokyo, workflow_id) == [ada]

    # The job runs every few minutes: later the same day it enrolls nobody twice.
    set_clock(clock, datetime(2027, 3, 10, 21, 30, tzinfo=TOKYO))
    assert await remind(container, tokyo) == 0
    assert await remind(container, tokyo) == 0
    assert await enrolled(container, tokyo, workflow_id) == [ada]

    # A late-added contact whose birthday falls two days on is caught up on the same day.
    bea = await contact(container, tokyo, date_of_birth="2001-03-12")
    assert await remind(container, tokyo) == 1
    assert await enrolled(container, tokyo, workflow_id) == sorted([ada, bea])


async def test_a_29_february_birthday_comes_on_28_february_in_other_years(
    container: Container, tokyo: Tenant, clock: FixedClock
) -> None:
    workflow_id = await publish(container, tokyo, BIRTHDAYS)
    leap = await contact(container, tokyo, date_of_birth="2000-02-29")
    eve = await contact(container, tokyo, date_of_birth="1999-02-28")
    march = await contact(container, tokyo, date_of_birth="1999-03-01")

    # 2027 has no 29 February: two days before the 28th, both birthdays are reminded of.
    set_clock(clock, datetime(2027, 2, 26, 10, 0, tzinfo=TOKYO))
    assert await remind(container, tokyo) == 2
    assert await enrolled(container, tokyo, workflow_id) == sorted([leap, eve])
    set_clock(clock, datetime(2027, 2, 27, 10, 0, tzinfo=TOKYO))  # for 1 March
    assert await remind(container, tokyo) == 1
    assert set(await enrolled(container, tokyo, workflow_id)) == {leap, eve, march}

    # 2028 has one: each birthday on its own day.
    set_clock(clock, datetime(2028, 2, 26, 10, 0, tzinfo=TOKYO))  # for 28 February
    assert await remind(container, tokyo) == 1
    set_clock(clock, datetime(2028, 2, 27, 10, 0, tzinfo=TOKYO))  # for 29 February
    assert await remind(container, tokyo) == 1
    page = await container.workflows().enrollments(actor(tokyo), workflow_id, PageRequest(limit=100))
    by_contact: dict[uuid.UUID, int] = {}
    for e in page.items:
        by_contact[e.contact_id] = by_contact.get(e.contact_id, 0) + 1
    assert by_contact == {leap: 2, eve: 2, march: 1}


async def test_a_custom_date_reminder_fires_the_day_after_its_date(
    container: Container, tokyo: Tenant, clock: FixedClock
) -> None:
    await renewal_field(container, tokyo)
    workflow_id = await publish(container, tokyo, RENEWALS)
    due = await contact(container, tokyo, custom_fields={"renewal": "2027-03-09"})
    await contact(container, tokyo, custom_fields={"renewal": "2027-03-10"})  # tomorrow's
    await contact(container, tokyo, custom_fields={"renewal": "2026-03-09"})  # a year before: once only
    await contact(container, tokyo)
    gone = await contact(container, tokyo, custom_fields={"renewal": "2027-03-09"})
    await container.contacts().delete(actor(tokyo), gone)

    set_clock(clock, datetime(2027, 3, 10, 7, 59, tzinfo=TOKYO))
    assert await remind(container, tokyo) == 0
    set_clock(clock, datetime(2027, 3, 10, 8, 0, tzinfo=TOKYO))
    assert await remind(container, tokyo) == 1
    assert await remind(container, tokyo) == 0
    assert await enrolled(container, tokyo, workflow_id) == [due]

    # A changed date is a new date: the day after it, the contact is reminded again.
    await container.contacts().update(actor(tokyo), due, {"custom_fields": {"renewal": "2027-04-01"}})
    set_clock(clock, datetime(2027, 4, 2, 8, 30, tzinfo=TOKYO))
    assert await remind(container, tokyo) == 1
    assert await enrolled(container, tokyo, workflow_id) == [due, due]


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in nodes(child))]


class _Recording:
    """A connection that keeps the statements it is given (to EXPLAIN the repository's own query)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.statements: list[Any] = []

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        self.statements.append(statement)
        return await self._conn.execute(statement, *args, **kwargs)


async def test_the_birthday_lookup_uses_its_index_under_row_level_security(
    container: Container, tokyo: Tenant
) -> None:
    ada = await contact(container, tokyo, date_of_birth="1990-07-04")
    other = await new_tenant(container)
    await contact(container, other, date_of_birth="1990-07-04")  # another tenant's: never seen
    async with container.engines().app.connect() as conn, conn.begin():
        await conn.execute(
            text("SELECT set_config('app.location_id', :l, true)"), {"l": str(tokyo.location_id)}
        )
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        recording = _Recording(conn)
        repository = SqlContactRepository(recording)  # type: ignore[arg-type]
        assert await repository.ids_with_birthday(tokyo.location_id, 7, 4) == [ada]
        assert await repository.ids_with_birthday(other.location_id, 7, 4) == []
        (statement, _) = recording.statements
        plan = (await conn.execute(Explain(statement))).scalar_one()
    # Through row-level security alone the index would serve the location only, month and day filtered
    # row by row (EXTRACT is not LEAKPROOF); the lookup reads through contacts_scoped so they are its keys.
    (scan,) = [node for node in nodes(plan[0]["Plan"]) if node.get("Index Name") == "contacts_birthday_idx"]
    condition = scan["Index Cond"].lower()
    assert "extract(month from" in condition, json.dumps(plan)
    assert "extract(day from" in condition


async def test_the_periodic_job_reminds_every_location_in_its_own_time_zone(
    container: Container, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokyo = await tenant_in(container, TOKYO)
    chicago = await tenant_in(container, CHICAGO)
    quiet = await tenant_in(container, CHICAGO)  # a birthday, but no reminder workflow
    # 09:30 on 11 May in Tokyo is 19:30 on 10 May in Chicago: both past 09:00, on different days.
    instant = datetime(2027, 5, 11, 9, 30, tzinfo=TOKYO)
    assert instant.astimezone(CHICAGO).date() == date(2027, 5, 10)
    in_tokyo = await publish(container, tokyo, BIRTHDAYS)
    in_chicago = await publish(container, chicago, BIRTHDAYS)
    tokyo_ada = await contact(container, tokyo, date_of_birth="1990-05-13")
    await contact(container, tokyo, date_of_birth="1990-05-12")
    chicago_ada = await contact(container, chicago, date_of_birth="1990-05-12")
    chicago_bob = await contact(container, chicago, date_of_birth="1990-05-13")
    await contact(container, quiet, date_of_birth="1990-05-12")

    # One location failing does not keep the others from their reminders; the job then fails.
    real = container.workflow_engine().remind
    asked: list[uuid.UUID] = []

    async def flaky(location_id: uuid.UUID) -> int:
        asked.append(location_id)
        if location_id == tokyo.location_id:
            raise RuntimeError("the database went away")
        return await real(location_id)

    monkeypatch.setattr(container.workflow_engine(), "remind", flaky)
    set_clock(clock, instant)
    with pytest.raises(RemindersFailed, match=str(tokyo.location_id)):
        await reminders_kind(engine=container.workflow_engine(), owner=container.engines().owner).handler(
            job_context(), {}
        )
    assert {tokyo.location_id, chicago.location_id} <= set(asked)
    assert quiet.location_id not in asked
    assert await enrolled(container, tokyo, in_tokyo) == []
    assert await enrolled(container, chicago, in_chicago) == [chicago_ada]
    monkeypatch.undo()

    # The next run catches up on the location that failed, and repeats nothing.
    await reminders_kind(engine=container.workflow_engine(), owner=container.engines().owner).handler(
        job_context(), {}
    )
    assert await enrolled(container, tokyo, in_tokyo) == [tokyo_ada]
    assert await enrolled(container, chicago, in_chicago) == [chicago_ada]

    # The job kind on a real worker: a day later, two days ahead is the 14th in Tokyo, the 13th in Chicago.
    tokyo_bea = await contact(container, tokyo, date_of_birth="1991-05-14")
    set_clock(clock, instant + timedelta(days=1))
    async with container.engines().owner.connect() as conn:
        before = (
            await conn.execute(text("SELECT coalesce(max(id), 0) FROM procrastinate_jobs"))
        ).scalar_one()
    async with container.uow()(TenantScope.location(tokyo.location_id)) as uow:
        await uow.jobs.enqueue(JobRequest(REMINDERS_KIND))
        await uow.commit()
    await run_jobs(container, queues=["workflows"], fast_forward=False)
    assert await enrolled(container, tokyo, in_tokyo) == sorted([tokyo_ada, tokyo_bea])
    assert await enrolled(container, chicago, in_chicago) == sorted([chicago_ada, chicago_bob])
    async with container.engines().owner.connect() as conn:
        statuses = (
            await conn.execute(
                text("SELECT status FROM procrastinate_jobs WHERE task_name = :k AND id > :before"),
                {"k": REMINDERS_KIND, "before": before},
            )
        ).scalars()
        found = list(statuses)
    assert found  # the one enqueued (and any the worker's periodic deferrer added meanwhile)
    assert set(found) == {"succeeded"}
    # ... and each enrollment's steps ran as jobs too.
    page = await container.workflows().enrollments(actor(chicago), in_chicago, PageRequest(limit=10))
    assert {e.status for e in page.items} == {EnrollmentStatus.COMPLETED}
    assert "birthday-soon" in (await container.contacts().get(actor(chicago), chicago_bob)).tags
