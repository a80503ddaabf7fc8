"""The unit of work's transaction on the wire: BEGIN and the tenant scope in one round trip, the scope and
the driver's autocommit gone with the transaction, pooled connections pinged only after idling, and a
connection that died in the pool replaced without the caller seeing it."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import pq
from sqlalchemy import text
from sqlalchemy.exc import DataError

from ghl_adapters.jobs.queue import procrastinate_app
from ghl_adapters.sql.engines import Engines, create_engines
from ghl_adapters.sql.uow import SqlUnitOfWork, scope_statement
from ghl_core.shared.scope import ScopeKind, TenantScope
from support import Tenant


@pytest.fixture
async def engines(migrated_url: str) -> AsyncIterator[Engines]:
    # One pooled connection, used one transaction after another: each test sees the same one again.
    built = create_engines(migrated_url, pool_size=1)
    try:
        yield built
    finally:
        await built.dispose()


def _uow(engines: Engines, migrated_url: str, scope: TenantScope) -> SqlUnitOfWork:
    return SqlUnitOfWork(engines, scope, procrastinate_app(migrated_url))


async def _backend_pid(uow: SqlUnitOfWork) -> int:
    return int((await uow.connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _driver(uow: SqlUnitOfWork) -> psycopg.AsyncConnection[Any]:
    driver = (await uow.connection.get_raw_connection()).driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver


async def test_begin_and_the_scope_travel_in_one_round_trip(
    engines: Engines, migrated_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    scope = TenantScope.location(tenant.location_id)
    async with _uow(engines, migrated_url, scope) as uow:
        driver = await _driver(uow)  # the pool's only connection, used again below
        await uow.commit()
    log = tmp_path / "protocol.trace"
    with log.open("w") as sink:
        # libpq's own trace of the messages each way ("F" from us, "B" from the server).
        driver.pgconn.trace(os.dup(sink.fileno()))
        driver.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            async with _uow(engines, migrated_url, scope) as uow:
                location = await uow.locations.get(tenant.location_id)
                await uow.commit()
        finally:
            driver.pgconn.untrace()
    assert location is not None  # row-level security let it through
    assert location.id == tenant.location_id
    lines = log.read_text().splitlines()
    sent = [line for line in lines if line.startswith("F")]
    assert "Query" in sent[0]
    assert scope_statement(scope) in sent[0]
    assert f"set_config('app.location_id', '{tenant.location_id}', true)" in sent[0]
    assert not any("SELECT 1" in line for line in sent), "a connection just used is not pinged"
    assert "COMMIT" in sent[-1]
    directions = [line[0] for line in lines if line[:1] in ("F", "B")]
    round_trips = sum(1 for a, b in itertools.pairwise(directions) if (a, b) == ("F", "B"))
    assert round_trips == 3  # BEGIN + scope, the select, COMMIT


@pytest.mark.parametrize("ending", ["commit", "rollback", "error"])
async def test_the_scope_and_autocommit_end_with_the_unit_of_work(
    engines: Engines, migrated_url: str, tenant: Tenant, ending: str
) -> None:
    scope = TenantScope.location(tenant.location_id)
    failed = False
    try:
        async with _uow(engines, migrated_url, scope) as uow:
            pid = await _backend_pid(uow)
            seen = (await uow.connection.execute(text("SELECT current_setting('app.location_id')"))).scalar()
            assert seen == str(tenant.location_id)
            if ending == "commit":
                await uow.commit()
            elif ending == "error":
                await uow.connection.execute(text("SELECT 1 / 0"))
    except DataError:
        failed = True
    assert failed == (ending == "error")
    # The same pooled connection, checked out plainly: no scope left, and transactional again (a write
    # rolled back is gone), as every other user of the pool expects.
    async with engines.app.connect() as conn:
        assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() == pid
        driver = (await conn.get_raw_connection()).driver_connection
        assert isinstance(driver, psycopg.AsyncConnection)
        assert driver.autocommit is False
        assert driver.pgconn.transaction_status == pq.TransactionStatus.INTRANS
        left = (await conn.execute(text("SELECT current_setting('app.location_id', true)"))).scalar()
        assert left in (None, "")
        assert (await conn.execute(text("SELECT count(*) FROM locations"))).scalar_one() == 0
        await conn.rollback()


async def test_an_agency_scope_sets_an_empty_location(
    engines: Engines, migrated_url: str, tenant: Tenant
) -> None:
    async with _uow(engines, migrated_url, TenantScope.agency(tenant.agency_id)) as uow:
        settings = (
            await uow.connection.execute(
                text("SELECT current_setting('app.agency_id'), current_setting('app.location_id')")
            )
        ).one()
        assert tuple(settings) == (str(tenant.agency_id), "")
        assert await uow.locations.get(tenant.location_id) is not None


async def test_savepoints_work_inside_a_scoped_unit_of_work(
    engines: Engines, migrated_url: str, tenant: Tenant
) -> None:
    async with _uow(engines, migrated_url, TenantScope.location(tenant.location_id)) as uow:
        with pytest.raises(Exception, match="division by zero"):
            async with uow.connection.begin_nested():
                await uow.connection.execute(text("SELECT 1 / 0"))
        # The transaction, and its scope, survived the failed savepoint.
        assert await uow.locations.get(tenant.location_id) is not None


def test_scope_ids_reach_the_statement_only_as_uuids() -> None:
    location = uuid.uuid4()
    statement = scope_statement(TenantScope.location(location))
    assert statement == (
        "BEGIN; SELECT set_config('app.agency_id', '', true), "
        f"set_config('app.location_id', '{location}', true)"
    )
    evil = "x', true); DROP TABLE contacts; --"
    with pytest.raises(TypeError, match=r"uuid\.UUID"):
        scope_statement(TenantScope(ScopeKind.LOCATION, location_id=evil))  # type: ignore[arg-type]

    class Sneaky(uuid.UUID):
        def __str__(self) -> str:
            return "x'; DROP TABLE contacts; --"

    # Rebuilt from its 128-bit value, a UUID subclass cannot choose its own text.
    assert "DROP" not in scope_statement(TenantScope.location(Sneaky(int=location.int)))
    assert str(location) in scope_statement(TenantScope.location(Sneaky(int=location.int)))


async def _terminate(engines: Engines, pid: int) -> None:
    async with engines.owner.connect() as owner:
        assert (await owner.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})).scalar_one()
        for _ in range(200):
            gone = (
                await owner.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid})
            ).scalar_one() == 0
            await owner.rollback()
            if gone:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"backend {pid} still there")


@pytest.mark.parametrize("scope_kind", ["location", "anonymous"])
async def test_a_connection_killed_while_idle_is_replaced_on_the_next_unit_of_work(
    migrated_url: str, tenant: Tenant, scope_kind: str
) -> None:
    # Idle longer than the ping window: the checkout ping finds the dead connection and the pool
    # replaces it, whatever the unit of work then runs first.
    engines = create_engines(migrated_url, pool_size=1, ping_after_idle_seconds=0.05)
    scope = TenantScope.location(tenant.location_id) if scope_kind == "location" else TenantScope.anonymous()
    try:
        async with _uow(engines, migrated_url, scope) as uow:
            pid = await _backend_pid(uow)
        await _terminate(engines, pid)
        await asyncio.sleep(0.1)
        async with _uow(engines, migrated_url, scope) as uow:
            assert await _backend_pid(uow) != pid
            found = await uow.locations.get(tenant.location_id)
            assert (found is not None) == (scope_kind == "location")
            await uow.commit()
    finally:
        await engines.dispose()


async def test_a_connection_killed_within_the_ping_window_is_replaced_for_a_scoped_unit_of_work(
    engines: Engines, migrated_url: str, tenant: Tenant
) -> None:
    # Not pinged (used a moment ago): its scope statement fails on the dead socket, and the unit of
    # work, having run nothing yet, starts over on a fresh connection.
    scope = TenantScope.location(tenant.location_id)
    async with _uow(engines, migrated_url, scope) as uow:
        pid = await _backend_pid(uow)
    await _terminate(engines, pid)
    async with _uow(engines, migrated_url, scope) as uow:
        assert await _backend_pid(uow) != pid
        assert await uow.locations.get(tenant.location_id) is not None
