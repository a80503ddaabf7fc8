"""The job engine on the real database: enqueued in the caller's transaction, run by a procrastinate
worker, retried on a schedule, kept as failed with its error, retried by hand, scheduled for later."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import structlog
from procrastinate.periodic import PeriodicDeferrer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ghl_adapters.container import Container
from ghl_adapters.jobs.events import INTERESTS, consume_jobs, write_outbox
from ghl_adapters.jobs.kinds import JobKind, RetrySchedule
from ghl_adapters.jobs.worker import PRUNE_KIND, recover_stalled, run_worker, worker_app
from ghl_core.identity.api_keys import parse_scopes
from ghl_core.jobs.ports import JobContext, JobRequest
from ghl_core.shared.errors import NotFound
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.permissions import Actor
from ghl_http.app import create_app
from jobs_kit import run_jobs
from support import Tenant

SEEN: dict[str, list[JobContext]] = {}


async def echo(ctx: JobContext, args: dict[str, Any]) -> None:
    SEEN.setdefault(str(args["tag"]), []).append(ctx)


async def flaky(ctx: JobContext, args: dict[str, Any]) -> None:
    SEEN.setdefault(str(args["tag"]), []).append(ctx)
    if ctx.attempt < int(args["succeed_on"]):
        raise RuntimeError(f"boom on attempt {ctx.attempt}")


def kinds_for(container: Container) -> list[JobKind]:
    """The test-only kinds, bound (as the platform's are) to what they use: here the owner engine."""

    async def leaky(ctx: JobContext, args: dict[str, Any]) -> None:
        """Fails as a driver does: its message holds the statement and what the statement was given."""
        if args.get("domain"):
            raise NotFound(f"contact {args['tag']} not found")
        async with container.engines().owner.connect() as conn:
            await conn.execute(
                text("SELECT secret_column FROM contacts WHERE email = :email"), {"email": "ada@example.com"}
            )

    return [
        JobKind("test.echo", echo),
        JobKind("test.flaky", flaky, RetrySchedule([30.0, 60.0], jitter=0.0)),
        JobKind("test.leaky", leaky, RetrySchedule([])),
    ]


async def jobs_tagged(container: Container, tag: str) -> list[Any]:
    async with container.engines().owner.connect() as conn:
        query = text(
            "SELECT j.*, e.error, e.detail, e.attempt AS error_attempt FROM procrastinate_jobs j "
            "LEFT JOIN job_errors e ON e.job_id = j.id WHERE j.args ->> 'tag' = :tag ORDER BY j.id"
        )
        return list((await conn.execute(query, {"tag": tag})).all())


async def enqueue(container: Container, tenant: Tenant, *jobs: JobRequest, commit: bool = True) -> None:
    async with container.uow()(TenantScope.location(tenant.location_id)) as uow:
        await uow.jobs.enqueue(*jobs)
        if commit:
            await uow.commit()


def tag() -> str:
    return uuid.uuid4().hex


def internal_error(error_id: str) -> str:
    return f"the job stopped on an internal error (error id {error_id}); your operator has the detail"


async def test_a_job_exists_only_if_its_transaction_commits(container: Container, tenant: Tenant) -> None:
    t = tag()
    job = JobRequest("test.echo", {"tag": t}, location_id=tenant.location_id)
    await enqueue(container, tenant, job, commit=False)
    assert await jobs_tagged(container, t) == []

    await enqueue(container, tenant, job)
    (row,) = await jobs_tagged(container, t)
    assert (row.task_name, row.queue_name, row.status) == ("test.echo", "test", "todo")
    assert row.args["location_id"] == str(tenant.location_id)

    await run_jobs(container, queues=["test"], extra_kinds=kinds_for(container))
    (ctx,) = SEEN[t]
    assert (ctx.kind, ctx.attempt, ctx.location_id) == ("test.echo", 1, tenant.location_id)
    (row,) = await jobs_tagged(container, t)
    assert row.status == "succeeded"


async def consume_jobs_of(container: Container, tenant: Tenant) -> list[Any]:
    async with container.engines().owner.connect() as conn:
        query = text(
            "SELECT id, args, lock, queueing_lock, status FROM procrastinate_jobs "
            "WHERE task_name = 'events.consume' AND args ->> 'location_id' = :l ORDER BY id"
        )
        return list((await conn.execute(query, {"l": str(tenant.location_id)})).all())


async def outbox_of(container: Container, tenant: Tenant) -> list[Any]:
    async with container.engines().owner.connect() as conn:
        query = text(
            "SELECT o.consumer, d.type, d.entity_id, d.published_at FROM event_outbox o "
            "JOIN domain_events d ON d.id = o.event_id WHERE o.location_id = :l ORDER BY o.id"
        )
        return list((await conn.execute(query, {"l": tenant.location_id})).all())


async def create_contact(client: httpx.AsyncClient, tenant: Tenant) -> str:
    made = await client.post(
        "/api/v1/contacts",
        json={"first_name": "Ada", "email": f"{tag()}@example.com"},
        headers=tenant.headers,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_a_change_hands_its_events_to_the_job_engine(
    container: Container, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    await run_jobs(container, queues=["events"])  # the tenant's own set-up events
    assert await outbox_of(container, tenant) == []
    contact_id = await create_contact(client, tenant)
    bad = await client.post("/api/v1/contacts", json={"email": "not an email"}, headers=tenant.headers)
    assert bad.status_code == 422

    # The committed change left its event for each consumer and one job per consumer to take it; the
    # refused one left nothing.
    rows = await outbox_of(container, tenant)
    assert [(r.consumer, r.type, str(r.entity_id)) for r in rows] == [
        ("webhooks", "contact.created", contact_id),
        ("workflows", "contact.created", contact_id),
    ]
    assert all(r.published_at is not None for r in rows)
    waiting = [j for j in await consume_jobs_of(container, tenant) if j.status == "todo"]
    assert sorted(j.args["consumer"] for j in waiting) == ["webhooks", "workflows"]
    for job in waiting:
        assert job.args == {"consumer": job.args["consumer"], "location_id": str(tenant.location_id)}
        assert job.lock == job.queueing_lock == f"events:{job.args['consumer']}:{tenant.location_id}"

    # More commits while those jobs wait add events, not jobs: the waiting jobs will take them all.
    second = await create_contact(client, tenant)
    assert len([j for j in await consume_jobs_of(container, tenant) if j.status == "todo"]) == 2
    assert [str(r.entity_id) for r in await outbox_of(container, tenant)] == [
        contact_id,
        contact_id,
        second,
        second,
    ]

    await run_jobs(container, queues=["events"])
    assert await outbox_of(container, tenant) == []
    assert {j.status for j in await consume_jobs_of(container, tenant)} == {"succeeded"}


async def test_a_commit_that_found_a_job_waiting_is_still_consumed_by_it(
    container: Container, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    """The race the barrier closes: a transaction sees a consumer job waiting, queues none, and commits
    only after that job started. The job must wait for it and take its events."""
    await create_contact(client, tenant)  # leaves a consumer job waiting
    assert [j.status for j in await consume_jobs_of(container, tenant)].count("todo") == 2  # a consumer each
    event = DomainEvent(
        "contact.updated", tenant.agency_id, tenant.location_id, uuid.uuid4(), {}, datetime.now(UTC)
    )
    async with container.uow()(TenantScope.location(tenant.location_id)) as uow:
        await uow.events.add(event)
        assert await write_outbox(uow.connection, [event]) == []  # a job is waiting: none queued
        uow.recorded_events.clear()
        running = asyncio.create_task(run_jobs(container, queues=["events"]))
        await asyncio.sleep(1.0)
        assert not running.done(), "the consumer job must wait for this open transaction"
        await uow.connection.commit()
    await running
    assert await outbox_of(container, tenant) == []


async def test_a_commits_events_reach_each_consumer_in_their_order(
    container: Container, tenant: Tenant
) -> None:
    await run_jobs(container, queues=["events"])  # the tenant's own set-up events
    now = datetime.now(UTC)
    kinds = ["contact.created", "message.inbound", "contact.updated", "message.sent", "contact.created"]
    events = [
        DomainEvent(kind, tenant.agency_id, tenant.location_id, uuid.uuid4(), {}, now) for kind in kinds * 3
    ]
    async with container.uow()(TenantScope.location(tenant.location_id)) as uow:
        await uow.events.add_many(events)
        uow.recorded_events.clear()
        needed = await write_outbox(uow.connection, events)
        assert sorted(needed) == [("webhooks", tenant.location_id), ("workflows", tenant.location_id)]
        await uow.jobs.enqueue(*consume_jobs(needed))
        await uow.connection.commit()
    rows = await outbox_of(container, tenant)
    for consumer in ("webhooks", "workflows"):
        expected = [str(e.entity_id) for e in events if INTERESTS[consumer](e.type)]
        assert 0 < len(expected) < len(events)  # each reads some of them, not all
        assert [str(r.entity_id) for r in rows if r.consumer == consumer] == expected
    await run_jobs(container, queues=["events"])
    assert await outbox_of(container, tenant) == []


async def test_an_event_no_consumer_reads_gets_no_outbox_row_and_queues_no_job(
    container: Container, tenant: Tenant
) -> None:
    await run_jobs(container, queues=["events"])  # the tenant's own set-up events
    now = datetime.now(UTC)
    sent = DomainEvent("message.sent", tenant.agency_id, tenant.location_id, uuid.uuid4(), {}, now)
    reply = DomainEvent("message.inbound", tenant.agency_id, tenant.location_id, uuid.uuid4(), {}, now)
    async with container.uow()(TenantScope.location(tenant.location_id)) as uow:
        await uow.events.add(sent)
        uow.recorded_events.clear()
        assert await write_outbox(uow.connection, [sent]) == []
        await uow.connection.commit()
    assert await outbox_of(container, tenant) == []
    assert [j for j in await consume_jobs_of(container, tenant) if j.status == "todo"] == []
    async with container.engines().owner.connect() as conn:
        kept = await conn.scalar(text("SELECT count(*) FROM domain_events WHERE id = :e"), {"e": sent.id})
    assert kept == 1  # still in the event log
    # An event one consumer reads (a reply starts workflows; no webhook type) reaches that one only.
    async with container.uow()(TenantScope.location(tenant.location_id)) as uow:
        await uow.events.add(reply)
        uow.recorded_events.clear()
        assert await write_outbox(uow.connection, [reply]) == [("workflows", tenant.location_id)]
        await uow.connection.commit()
    assert [(r.consumer, r.type) for r in await outbox_of(container, tenant)] == [
        ("workflows", "message.inbound")
    ]
    await run_jobs(container, queues=["events"])


async def test_a_failing_job_is_retried_on_its_schedule_until_it_succeeds(
    container: Container, tenant: Tenant
) -> None:
    t = tag()
    await enqueue(
        container, tenant, JobRequest("test.flaky", {"tag": t, "succeed_on": 3}, tenant.location_id)
    )
    await run_jobs(container, queues=["test"], extra_kinds=kinds_for(container), fast_forward=False)
    (row,) = await jobs_tagged(container, t)
    # The first run failed; the retry waits its 30 s.
    assert row.status == "todo"
    assert row.scheduled_at > datetime.now(UTC) + timedelta(seconds=20)
    assert row.detail == "RuntimeError: boom on attempt 1"
    assert row.error == internal_error(f"{row.id}-1")

    await run_jobs(container, queues=["test"], extra_kinds=kinds_for(container))
    assert [c.attempt for c in SEEN[t]] == [1, 2, 3]
    assert all(c.max_attempts == 3 for c in SEEN[t])
    (row,) = await jobs_tagged(container, t)
    assert row.status == "succeeded"
    assert (row.error_attempt, row.detail) == (2, "RuntimeError: boom on attempt 2")


async def test_an_exhausted_job_is_kept_failed_listed_and_retried_by_its_location_admin(
    container: Container, tenant: Tenant, other_tenant: Tenant, client: httpx.AsyncClient
) -> None:
    t = tag()
    await enqueue(
        container, tenant, JobRequest("test.flaky", {"tag": t, "succeed_on": 99}, tenant.location_id)
    )
    await run_jobs(container, queues=["test"], extra_kinds=kinds_for(container))
    (row,) = await jobs_tagged(container, t)
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.error == internal_error(f"{row.id}-3")

    listed = await client.get("/api/v1/jobs/failed", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    (item,) = [i for i in listed.json()["items"] if i["args"].get("tag") == t]
    assert (item["id"], item["kind"], item["error"]) == (row.id, "test.flaky", row.error)

    # Another location neither sees nor retries it.
    theirs = await client.get("/api/v1/jobs/failed", headers=other_tenant.headers)
    assert all(i["id"] != row.id for i in theirs.json()["items"])
    refused = await client.post(f"/api/v1/jobs/{row.id}/retry", headers=other_tenant.headers)
    assert refused.status_code == 404
    assert refused.headers["content-type"].startswith("application/problem+json")

    retried = await client.post(f"/api/v1/jobs/{row.id}/retry", headers=tenant.headers)
    assert retried.status_code == 202, retried.text
    (row,) = await jobs_tagged(container, t)
    assert row.status == "todo"
    again = await client.post(f"/api/v1/jobs/{row.id}/retry", headers=tenant.headers)
    assert again.status_code == 404  # it is no longer failed

    # One more attempt, which fails again: failed once more, not retried on the schedule.
    await run_jobs(container, queues=["test"], extra_kinds=kinds_for(container))
    (row,) = await jobs_tagged(container, t)
    assert (row.status, len(SEEN[t])) == ("failed", 4)


async def test_failed_jobs_page_with_a_cursor(
    container: Container, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    t = tag()
    for _ in range(3):
        await enqueue(
            container, tenant, JobRequest("test.flaky", {"tag": t, "succeed_on": 99}, tenant.location_id)
        )
    await run_jobs(container, queues=["test"], extra_kinds=kinds_for(container))
    first = (await client.get("/api/v1/jobs/failed?limit=2", headers=tenant.headers)).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    rest = await client.get(
        "/api/v1/jobs/failed", params={"limit": 2, "cursor": first["next_cursor"]}, headers=tenant.headers
    )
    ids = [i["id"] for i in first["items"] + rest.json()["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids) >= 3
    bad = await client.get("/api/v1/jobs/failed?offset=2", headers=tenant.headers)
    assert bad.status_code == 422


async def test_a_key_without_the_jobs_scopes_is_refused(
    container: Container, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    _, secret = await container.api_keys().create(
        Actor.operator(),
        "contacts only",
        scopes=parse_scopes(["contacts:read"]),
        location_id=tenant.location_id,
    )
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/jobs/failed", headers=headers)).status_code == 403
    assert (await client.post("/api/v1/jobs/1/retry", headers=headers)).status_code == 403


async def test_a_scheduled_job_waits_for_its_time(container: Container, tenant: Tenant) -> None:
    t = tag()
    at = datetime.now(UTC) + timedelta(days=3)
    await enqueue(container, tenant, JobRequest("test.echo", {"tag": t}, tenant.location_id, run_at=at))
    await run_jobs(container, queues=["test"], extra_kinds=kinds_for(container), fast_forward=False)
    (row,) = await jobs_tagged(container, t)
    assert row.status == "todo"
    assert abs((row.scheduled_at - at).total_seconds()) < 1
    assert t not in SEEN


async def test_a_queueing_lock_drops_the_duplicate_without_aborting_the_transaction(
    container: Container, tenant: Tenant
) -> None:
    t = tag()
    lock = f"once-{t}"
    job = JobRequest("test.echo", {"tag": t}, tenant.location_id, queueing_lock=lock)
    other = JobRequest("test.echo", {"tag": t, "n": 2}, tenant.location_id)
    await enqueue(container, tenant, job, job, other)
    rows = await jobs_tagged(container, t)
    assert len(rows) == 2  # the duplicate was dropped; the job after it still committed
    await enqueue(container, tenant, job)
    assert len(await jobs_tagged(container, t)) == 2


async def test_a_stalled_job_whose_twin_already_waits_gives_way_to_it(
    container: Container, tenant: Tenant
) -> None:
    """A worker killed while running a job that has a queueing lock, after its twin was queued: the
    stalled job cannot go back to the queue beside its twin, and left 'doing' it would hold the lock so
    the twin never starts (the events consumer of a location would stop for good)."""
    t = tag()
    lock = f"consume-{t}"
    first = JobRequest("test.echo", {"tag": t, "n": 1}, tenant.location_id, lock=lock, queueing_lock=lock)
    alone = JobRequest("test.echo", {"tag": t, "n": 0}, tenant.location_id)
    await enqueue(container, tenant, first, alone)
    async with container.engines().owner.begin() as conn:  # a worker took both, then died
        await conn.execute(
            text(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = NULL WHERE args ->> 'tag' = :t"
            ),
            {"t": t},
        )
    twin = JobRequest("test.echo", {"tag": t, "n": 2}, tenant.location_id, lock=lock, queueing_lock=lock)
    await enqueue(container, tenant, twin)

    app = worker_app(container, kinds_for(container))
    async with app.open_async():
        assert await recover_stalled(app, 60.0) >= 2
    by_n = {row.args["n"]: row.status for row in await jobs_tagged(container, t)}
    assert by_n == {0: "todo", 1: "aborted", 2: "todo"}

    await run_jobs(container, queues=["test"], extra_kinds=kinds_for(container))
    by_n = {row.args["n"]: row.status for row in await jobs_tagged(container, t)}
    assert by_n == {0: "succeeded", 1: "aborted", 2: "succeeded"}


@pytest.mark.parametrize("status", ["nonsense"])
async def test_the_operator_listing_refuses_an_unknown_status(container: Container, status: str) -> None:
    from ghl_core.shared.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        await container.job_admin().list(status=status)


async def job_state(container: Container, job_id: int) -> Any:
    async with container.engines().owner.connect() as conn:
        query = text(
            "SELECT j.status::text AS status, e.error FROM procrastinate_jobs j "
            "LEFT JOIN job_errors e ON e.job_id = j.id WHERE j.id = :id"
        )
        return (await conn.execute(query, {"id": job_id})).first()


async def test_the_hourly_prune_run_by_the_servers_worker_deletes_old_finished_jobs(
    container: Container, tenant: Tenant
) -> None:
    """`ghl serve` runs a worker inside its app (a background task of the app's lifespan) and that
    worker's periodic deferrer queues `jobs.prune`. The job once pruned through the container's job app,
    which no worker opens: it failed with AppNotOpen on every run and the jobs table grew for ever."""
    t = tag()
    await enqueue(container, tenant, JobRequest("test.echo", {"tag": t, "n": 1}, tenant.location_id))
    await enqueue(container, tenant, JobRequest("test.echo", {"tag": t, "n": 2}, tenant.location_id))
    await run_jobs(container, queues=["test"], extra_kinds=kinds_for(container))
    old, recent = await jobs_tagged(container, t)
    keep = container.settings().jobs_keep_hours
    async with container.engines().owner.begin() as conn:  # the first one finished long ago
        await conn.execute(
            text("UPDATE procrastinate_events SET at = now() - make_interval(hours => :h) WHERE job_id = :j"),
            {"h": keep + 1, "j": old.id},
        )

    # Queued exactly as the server's worker queues it at its hour (its periodic deferrer, its app).
    app = worker_app(container)
    async with app.open_async():
        deferrer = PeriodicDeferrer(app.periodic_registry)
        (periodic,) = [p for p in app.periodic_registry.periodic_tasks.values() if p.task.name == PRUNE_KIND]
        await deferrer.defer_jobs([(periodic, int(datetime.now(UTC).timestamp()))])
    async with container.engines().owner.connect() as conn:
        prune_id = (
            await conn.execute(
                text("SELECT max(id) FROM procrastinate_jobs WHERE task_name = :k"), {"k": PRUNE_KIND}
            )
        ).scalar_one()

    server = create_app(
        container,
        close_container_on_shutdown=False,
        background=[lambda: run_worker(container, install_signal_handlers=False, queues=["jobs"])],
    )
    async with server.lifespan():
        for _ in range(600):  # until it ran: succeeded, or failed and waiting for its retry
            state = await job_state(container, prune_id)
            if state.status == "succeeded" or state.error is not None:
                break
            await asyncio.sleep(0.1)
    assert (state.status, state.error) == ("succeeded", None)
    assert [r.id for r in await jobs_tagged(container, t)] == [recent.id]


async def test_a_location_admin_reads_a_generic_error_with_its_id_and_the_detail_stays_with_operators(
    container: Container, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    """A job failed on a driver error: its message holds SQL and the values it was given. The location
    admin once read all of it; now a generic sentence with the error id, while the log line with that id
    and the operators' listing keep the detail. A domain error's own message (written for tenants) is
    shown as the API would show it."""
    t = tag()
    await enqueue(container, tenant, JobRequest("test.leaky", {"tag": t}, tenant.location_id))
    await enqueue(container, tenant, JobRequest("test.leaky", {"tag": t, "domain": 1}, tenant.location_id))
    with structlog.testing.capture_logs() as logs:
        await run_jobs(container, queues=["test"], extra_kinds=kinds_for(container))
    driver, domain = await jobs_tagged(container, t)
    assert driver.status == domain.status == "failed"

    listed = await client.get("/api/v1/jobs/failed", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    shown = {i["id"]: i["error"] for i in listed.json()["items"] if i["args"].get("tag") == t}
    assert shown == {
        driver.id: internal_error(f"{driver.id}-1"),
        domain.id: f"Not found: contact {t} not found (error id {domain.id}-1)",
    }

    (logged,) = [e for e in logs if e["event"] == "job_failed" and e.get("error_id") == f"{driver.id}-1"]
    assert "SELECT secret_column FROM contacts" in logged["detail"]
    assert logged["log_level"] == "error"
    operator = await container.job_admin().get(driver.id)
    assert "SELECT secret_column FROM contacts" in (operator.detail or "")
    assert operator.error == internal_error(f"{driver.id}-1")

    # The application's role cannot read the detail column, whatever its location.
    async with container.engines().app.connect() as conn:
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text("SELECT detail FROM job_errors LIMIT 1"))
