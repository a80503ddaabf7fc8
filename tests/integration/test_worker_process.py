"""`ghl worker` as a real process on the test database: it runs what the API enqueued, and a SIGTERM stops
it cleanly (its running jobs finished, itself unregistered)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_adapters.settings import Settings
from support import Tenant

pytestmark = pytest.mark.slow

WAIT_S = 60.0


@contextmanager
def worker_process(
    settings: Settings, log: Path, *args: str, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    assert settings.database_url
    base = {k: v for k, v in os.environ.items() if not k.startswith("GHL_")}
    extra = {"DATABASE_URL": settings.database_url, "GHL_DATA_DIR": str(log.parent)}
    if settings.secret_key:
        extra["GHL_SECRET_KEY"] = settings.secret_key.get_secret_value()
    if settings.app_database_url:
        extra["GHL_APP_DATABASE_URL"] = settings.app_database_url
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command, arguments built here
            [sys.executable, "-m", "ghl_cli.main", "worker", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=base | extra | {"GHL_LOG_LEVEL": "INFO"} | env,
            cwd=log.parent,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def wait_for(predicate_sql: str, params: dict[str, object], container: Container) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while asyncio.get_running_loop().time() < deadline:
        async with container.engines().owner.connect() as conn:
            if (await conn.execute(text(predicate_sql), params)).scalar_one():
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"still waiting for: {predicate_sql} {params}")


async def test_a_worker_process_runs_jobs_and_stops_cleanly_on_sigterm(
    container: Container, settings: Settings, tenant: Tenant, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    name = f"test-worker-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    with worker_process(settings, log, "--concurrency", "2", "--queues", "events", "--name", name) as process:
        made = await client.post(
            "/api/v1/contacts",
            json={"first_name": "Grace", "email": f"{uuid.uuid4().hex}@example.com"},
            headers=tenant.headers,
        )
        assert made.status_code == 201, made.text
        await wait_for(
            "SELECT count(*) = 0 FROM procrastinate_jobs WHERE task_name = 'events.consume' "
            "AND args ->> 'location_id' = :l AND status <> 'succeeded'",
            {"l": str(tenant.location_id)},
            container,
        )
        await wait_for("SELECT count(*) > 0 FROM procrastinate_workers", {}, container)
        async with container.engines().owner.connect() as conn:
            workers = (
                await conn.execute(text("SELECT array_agg(id) FROM procrastinate_workers"))
            ).scalar_one()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, WAIT_S)
    assert code == 0, log.read_text()
    async with container.engines().owner.connect() as conn:
        query = text("SELECT count(*) FROM procrastinate_workers WHERE id = ANY(:ids)")
        left = (await conn.execute(query, {"ids": workers})).scalar_one()
    assert left == 0, "a stopped worker unregisters itself"
