"""A contact import sent over the API survives the worker running it being killed (`kill -9`) mid-file:
the job is taken up again by a new `ghl worker` process, which goes on after the last committed batch.
Every row is written exactly once: each person is one contact, created once (one audit row, one event),
the counters and the error report hold each row once, and the rows of one person on both sides of the
kill merge into the contact made before it (with the `skip` duplicate policy, which an existing contact
would have skipped)."""

from __future__ import annotations

import csv
import io
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from worker_kit import start_worker, stop, tail, wait_until, worker_env

from ghl_adapters.container import close_container
from ghl_adapters.settings import Settings
from ghl_core.contacts.import_models import ContactImport, ImportStatus
from ghl_core.tenancy.permissions import Actor
from support import make_container, new_tenant, open_api

pytestmark = pytest.mark.slow

PEOPLE = 2000
BAD_EVERY = 150  # a row with a bad e-mail address after every 150 people
REPEATS = 100  # the first people again at the end of the file, with a city: the same persons
BATCH = "100"
KILL_AT = 300  # rows processed when the worker is killed (of 2,113)
WAIT_S = 120.0


def _file() -> tuple[str, list[int]]:
    """The CSV text and the lines of its bad rows."""
    lines = ["email,first_name,city"]
    bad: list[int] = []
    for i in range(PEOPLE):
        lines.append(f"p{i}@example.com,P{i},")
        if i % BAD_EVERY == BAD_EVERY - 1:
            lines.append(f"not-an-email-{i},Bad{i},")
            bad.append(len(lines))
    lines += [f"p{i}@example.com,,Chicago" for i in range(REPEATS)]
    return "\n".join(lines) + "\n", bad


async def test_an_api_import_killed_mid_file_finishes_after_restart_with_every_row_once(
    settings: Settings, tmp_path: Path
) -> None:
    container = make_container(settings)
    log = tmp_path / "workers.log"
    body, bad = _file()
    try:
        tenant = await new_tenant(container)
        actor = Actor.operator_at(tenant.location_id)
        async with open_api(container) as api:
            started = await api.post(
                "/api/v1/contacts/imports",
                headers={**tenant.headers, "Content-Type": "text/csv"},
                content=body.encode(),
                params={"duplicate_policy": "skip"},
            )
            assert started.status_code == 202, started.text
            import_id = uuid.UUID(started.json()["id"])
            assert started.json()["status"] == "queued"

            async def state() -> ContactImport:
                return await container.contact_imports().get(actor, import_id, 0)

            env = worker_env(settings, settings.data_dir, stalled_after="2", GHL_IMPORT_BATCH_SIZE=BATCH)
            worker = start_worker(env, log, queues="contacts", concurrency=2)
            try:

                async def far_enough() -> bool:
                    return (await state()).counters.processed >= KILL_AT

                await wait_until(far_enough, f"{KILL_AT} rows", within=WAIT_S, poll=0.02, log=log)
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                killed = await state()
                total = PEOPLE + len(bad) + REPEATS
                assert killed.status is ImportStatus.RUNNING
                assert 0 < killed.counters.processed < total, "the kill did not land mid-file"
                assert killed.open_groups  # the repeated people's contacts, made before the kill

                worker = start_worker(env, log, queues="contacts", concurrency=2)

                async def ended() -> bool:
                    return (await state()).status in (ImportStatus.DONE, ImportStatus.FAILED)

                await wait_until(ended, "the import to end", within=WAIT_S, poll=0.1, log=log)
            finally:
                stop(worker)

            done = await state()
            assert done.status is ImportStatus.DONE, (done.failure, tail(log))
            assert done.counters.as_dict() == {
                "processed": total,
                "created": PEOPLE,
                "updated": REPEATS,  # merged into the contacts made before the kill, not skipped
                "skipped": 0,
                "failed": len(bad),
            }
            report = await api.get(f"/api/v1/contacts/imports/{import_id}/errors.csv", headers=tenant.headers)
            rows = list(csv.DictReader(io.StringIO(report.text)))
            assert [int(r["line"]) for r in rows] == bad
            assert all("email" in r["reason"] for r in rows)

        async with container.engines().owner.connect() as conn:
            params: dict[str, Any] = {"l": tenant.location_id}
            contacts = (
                await conn.execute(
                    text("SELECT email, city FROM contacts WHERE location_id = :l AND deleted_at IS NULL"),
                    params,
                )
            ).all()
            created_audit = await conn.scalar(
                text(
                    "SELECT count(*) FROM audit_log WHERE location_id = :l AND entity_type = 'contact' "
                    "AND action = 'create'"
                ),
                params,
            )
            created_events = await conn.scalar(
                text(
                    "SELECT count(*) FROM domain_events WHERE location_id = :l AND type = 'contact.created'"
                ),
                params,
            )
            updated_audit = await conn.scalar(
                text(
                    "SELECT count(*) FROM audit_log WHERE location_id = :l AND entity_type = 'contact' "
                    "AND action = 'update'"
                ),
                params,
            )
        emails = [c.email for c in contacts]
        assert len(emails) == len(set(emails)) == PEOPLE
        assert set(emails) == {f"p{i}@example.com" for i in range(PEOPLE)}
        assert {c.email for c in contacts if c.city == "Chicago"} == {
            f"p{i}@example.com" for i in range(REPEATS)
        }
        assert created_audit == created_events == PEOPLE
        assert updated_audit == REPEATS
        # The stored upload went with the import's end.
        assert done.source is not None
        assert not (container.upload_spool().directory / done.source).exists()
    finally:
        await close_container(container)
