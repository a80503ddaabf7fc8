"""An import sent over the API is a durable job: recorded and enqueued together, its upload kept in the
spool until a worker has run it (a restart's sweep leaves it), never failed for silence while it waits,
and run by the job as the caller who sent it. (The kill -9 test: tests/integration/test_import_resume.py.)"""

from __future__ import annotations

import uuid

import httpx
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from ghl_adapters.container import Container
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
