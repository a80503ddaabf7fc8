"""An import sent over the API is a durable job: recorded and enqueued together, its upload kept in the
spool until a worker has run it (a restart's sweep leaves it), never failed for silence while it waits,
and run by the job as the caller who sent it. (The kill -9 test: tests/integration/test_import_resume.py.)"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_adapters.imports.runner import ContactImportRunner
from ghl_core.contacts import import_resume, imports
from ghl_core.contacts.import_models import ContactImport, ImportStatus
from ghl_core.contacts.imports import ContactImportService
from ghl_core.tenancy.permissions import Actor
from ghl_http.app import create_app
from http_kit import API, Tenant
from jobs_kit import run_jobs


async def test_a_queued_imports_upload_outlives_a_restart_and_its_job_runs_it(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    body = "email,first_name\njob1@example.com,One\njob2@example.com,Two\n"
    started = await api.post(
        f"{API}/contacts/imports", headers={**tenant.headers, "Content-Type": "text/csv"}, content=body
    )
    assert started.status_code == 202, started.text
    import_id = uuid.UUID(started.json()["id"])
    async with container.engines().owner.begin() as conn:
        queued = await conn.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'contacts.import' "
                "AND status = 'todo' AND args->>'import_id' = :i"
            ),
            {"i": str(import_id)},
        )
        assert queued == 1  # enqueued with the import
        source = await conn.scalar(text("SELECT source FROM contact_imports WHERE id = :i"), {"i": import_id})
        # As if the process that recorded it had stopped long ago: a durable import is its job's.
        await conn.execute(
            text(
                "UPDATE contact_imports SET runner = 'gone', heartbeat_at = now() - interval '1 hour' "
                "WHERE id = :i"
            ),
            {"i": import_id},
        )
    stored = container.upload_spool().directory / source
    assert stored.read_text() == body
    async with AsyncTestClient(app=create_app(container, close_container_on_shutdown=False)):
        pass  # the application's start sweeps the spool
    assert stored.exists()
    polled = await api.get(f"{API}/contacts/imports/{import_id}", headers=tenant.headers)
    assert polled.json()["status"] == "queued"

    await run_jobs(container, queues=["contacts"])

    done = (await api.get(f"{API}/contacts/imports/{import_id}", headers=tenant.headers)).json()
    assert (done["status"], done["counters"]["created"]) == ("done", 2)
    assert not stored.exists()
    async with container.engines().owner.connect() as conn:
        actors = (
            await conn.execute(
                text(
                    "SELECT DISTINCT actor_type FROM audit_log WHERE location_id = :l "
                    "AND entity_type = 'contact'"
                ),
                {"l": tenant.location_id},
            )
        ).scalars()
        assert list(actors) == ["api_key"]  # the job wrote as the caller who sent the file


async def _queued(api: httpx.AsyncClient, tenant: Tenant, body: str) -> uuid.UUID:
    started = await api.post(
        f"{API}/contacts/imports", headers={**tenant.headers, "Content-Type": "text/csv"}, content=body
    )
    assert started.status_code == 202, started.text
    return uuid.UUID(started.json()["id"])


def _runner(container: Container) -> ContactImportRunner:
    """The container's runner, with batches of five rows."""

    async def pending() -> set[str]:
        return set()

    return ContactImportRunner(
        imports=container.contact_imports(), spool=container.upload_spool(), pending=pending, batch_size=5
    )


async def test_a_run_cut_short_between_batches_resumes_after_the_last_committed_one(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, monkeypatch: Any
) -> None:
    body = "email,first_name\n" + "".join(f"cut{i}@example.com,C{i}\n" for i in range(40))
    import_id = await _queued(api, tenant, body)
    actor = Actor.operator_at(tenant.location_id)
    write = ContactImportService._write
    calls = 0

    async def dying_third(self: ContactImportService, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:  # the process goes away mid-file (no exception handler runs after a kill)
            raise asyncio.CancelledError
        return await write(self, *args)

    monkeypatch.setattr(ContactImportService, "_write", dying_third)
    with pytest.raises(asyncio.CancelledError):
        await _runner(container).run_stored(actor, import_id)
    cut = await container.contact_imports().get(actor, import_id)
    assert (cut.status, cut.counters.processed, cut.counters.created) == (ImportStatus.RUNNING, 10, 10)
    assert cut.source is not None
    assert (container.upload_spool().directory / cut.source).exists()  # kept for the resumed run

    monkeypatch.setattr(ContactImportService, "_write", write)
    done = await _runner(container).run_stored(actor, import_id)
    assert done is not None
    assert done.status is ImportStatus.DONE
    assert (done.counters.processed, done.counters.created, done.counters.failed) == (40, 40, 0)
    emails = [c["email"] for c in await _contacts(api, tenant)]
    assert sorted(emails) == sorted(f"cut{i}@example.com" for i in range(40))
    assert not (container.upload_spool().directory / cut.source).exists()


async def test_a_run_that_another_run_took_further_stops_and_leaves_the_import_alone(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, monkeypatch: Any
) -> None:
    body = "email,first_name\n" + "".join(f"two{i}@example.com,T{i}\n" for i in range(20))
    import_id = await _queued(api, tenant, body)
    actor = Actor.operator_at(tenant.location_id)
    check = import_resume.check_progress
    calls = 0

    async def overtaken_after_first(repo: Any, job: ContactImport, location_id: uuid.UUID) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # another run of the same import committed a batch since this run's first
            async with container.engines().owner.begin() as conn:
                await conn.execute(
                    text("UPDATE contact_imports SET processed = processed + 5 WHERE id = :i"),
                    {"i": import_id},
                )
        await check(repo, job, location_id)

    monkeypatch.setattr(imports, "check_progress", overtaken_after_first)
    assert await _runner(container).run_stored(actor, import_id) is None
    left = await container.contact_imports().get(actor, import_id)
    # This run's second batch saw it and rolled back: the import is as the other run left it.
    assert (left.status, left.counters.processed, left.counters.created) == (ImportStatus.RUNNING, 10, 5)
    assert len(await _contacts(api, tenant)) == 5
    # Ended, the import's next job run lets its file go (the spool is shared with other tests).
    await container.contact_imports().fail(actor, import_id, "ended by the test")
    await _runner(container).run_stored(actor, import_id)
    assert left.source is not None
    assert not (container.upload_spool().directory / left.source).exists()


async def _contacts(api: httpx.AsyncClient, tenant: Tenant) -> list[dict[str, Any]]:
    page = await api.get(f"{API}/contacts", headers=tenant.headers, params={"limit": 100})
    items: list[dict[str, Any]] = page.json()["items"]
    return items
