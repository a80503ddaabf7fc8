"""What one RLS-scoped unit of work costs before and around its real statement: round trips to the server
and µs, beside bare psycopg transactions running the same SQL in the same run.

Each row runs one transaction that reads one location row. Round trips are counted from libpq's protocol
trace; statements are SQLAlchemy's cursor executions; CPU is this process's (client side only), per
transaction. The "before" row replays the unit of work as it was before December 2026 in the same run.

    uv run python bench/transactions.py            # embedded PostgreSQL
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres uv run python bench/transactions.py
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).parent))
from common import Timing, bench_database, measure

from ghl_adapters.container import build_container, close_container
from ghl_adapters.observability import configure_logging
from ghl_adapters.settings import Settings
from ghl_adapters.sql.engines import app_url
from ghl_adapters.sql.repositories import SqlLocationRepository
from ghl_adapters.sql.uow import scope_statement
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation

N = int(os.environ.get("BENCH_N", "3000"))
ROUNDS = 5


class RoundTrips:
    """Counts round trips with libpq's own protocol trace: one per switch from messages the client sent
    to messages the server sent back."""

    def __init__(self) -> None:
        self.pooled: set[psycopg.AsyncConnection[Any]] = set()

    def watch(self, engine: AsyncEngine) -> None:
        @event.listens_for(engine.sync_engine, "checkin")
        def _seen(dbapi_connection: Any, record: Any) -> None:
            if dbapi_connection is not None:
                self.pooled.add(dbapi_connection.driver_connection)

    async def count(self, bare: psycopg.AsyncConnection[Any], call: Callable[[], Awaitable[object]]) -> int:
        await call()  # warm: the pool holds its connections, the statement caches are full
        with tempfile.TemporaryFile("w+") as log:
            conns = [bare, *self.pooled]
            for conn in conns:
                conn.pgconn.trace(os.dup(log.fileno()))
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            await call()
            for conn in conns:
                conn.pgconn.untrace()  # flushes
            log.seek(0)
            directions = [line[0] for line in log if line[:1] in ("F", "B")]
        return sum(1 for a, b in itertools.pairwise(directions) if a == "F" and b == "B")


async def per_call(
    trips: RoundTrips,
    bare: psycopg.AsyncConnection[Any],
    statements: list[str],
    call: Callable[[], Awaitable[object]],
) -> str:
    before = len(statements)
    rt = await trips.count(bare, call)
    return f"{rt} round trips, {(len(statements) - before) // 2} SQLAlchemy statements"


async def run(url: str) -> None:
    settings = Settings(database_url=url, secret_key="bench-" + "x" * 40, _env_file=None)  # type: ignore[call-arg]
    configure_logging("WARNING")
    container = build_container(settings, url)
    operator = Actor.operator()
    agency = await container.tenancy().create_agency(operator, "Bench Agency")
    location = await container.tenancy().create_location(
        operator, NewLocation(name="Bench", tier=PlanTier.ENTERPRISE), agency_id=agency.id
    )
    engines = container.engines()
    uow_factory = container.uow()
    statements: list[str] = []

    def _trace(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engines.app.sync_engine, "before_cursor_execute", _trace)

    trips = RoundTrips()
    trips.watch(engines.app)

    scope = TenantScope.location(location.id)
    libpq = app_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    bare = await psycopg.AsyncConnection.connect(libpq)
    select = "SELECT * FROM locations WHERE id = %s"
    scope_sql = "SELECT set_config('app.agency_id', %s, true), set_config('app.location_id', %s, true)"

    async def psycopg_plain() -> None:
        # BEGIN (sent by psycopg), SELECT, COMMIT: the floor of any transaction over this driver.
        await bare.execute("SELECT 1")
        await bare.commit()

    async def psycopg_scoped() -> None:
        # The same SQL as the unit of work, straight on one psycopg connection (no pool, no ORM).
        await bare.execute(scope_sql, ("", str(location.id)))
        row = await (await bare.execute(select, (location.id,))).fetchone()
        assert row is not None
        await bare.commit()

    async def psycopg_scoped_autocommit() -> None:
        # The least a scoped transaction can cost: BEGIN and the scope in one simple-query message.
        await bare.set_autocommit(True)
        await bare.execute(scope_statement(scope), prepare=False)
        row = await (await bare.execute(select, (location.id,))).fetchone()
        assert row is not None
        await bare.commit()
        await bare.set_autocommit(False)

    async def uow_read() -> None:
        async with uow_factory(scope) as uow:
            assert await uow.locations.get(location.id) is not None
            await uow.commit()

    # The unit of work as it was before (2026-12): pre-ping on every checkout, psycopg's own BEGIN, the
    # scope bound as parameters in a statement of its own.
    before_engine = create_async_engine(app_url(url), pool_size=10, max_overflow=10, pool_pre_ping=True)
    trips.watch(before_engine)
    event.listen(before_engine.sync_engine, "before_cursor_execute", _trace)
    set_scope = text(
        "SELECT set_config('app.agency_id', :agency, true), set_config('app.location_id', :location, true)"
    )

    async def uow_read_before() -> None:
        async with before_engine.connect() as conn:
            await conn.begin()
            await conn.execute(set_scope, {"agency": "", "location": str(location.id)})
            assert await SqlLocationRepository(conn).get(location.id) is not None
            await conn.commit()

    async def sqlalchemy_scoped() -> None:
        async with engines.app.connect() as conn, conn.begin():
            await conn.execute(
                text("SELECT set_config('app.agency_id', :a, true), set_config('app.location_id', :l, true)"),
                {"a": "", "l": str(location.id)},
            )
            await conn.execute(text("SELECT * FROM locations WHERE id = :l"), {"l": location.id})

    rows: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("psycopg: BEGIN + SELECT 1 + COMMIT", psycopg_plain),
        ("psycopg: scope + select (BEGIN sent by psycopg)", psycopg_scoped),
        ("psycopg: BEGIN;scope in one message + select", psycopg_scoped_autocommit),
        ("SQLAlchemy pool: scope + select", sqlalchemy_scoped),
        ("before: pre-ping, BEGIN, bound scope, get, COMMIT", uow_read_before),
        ("unit of work: location scope, locations.get", uow_read),
    ]
    where = "embedded" if "host=" in url else "DATABASE_URL"
    print(f"One scoped read transaction ({where} PostgreSQL), n={N}; load average: {os.getloadavg()}")
    counts = {label: await per_call(trips, bare, statements, call) for label, call in rows}
    # Rows take turns, ROUNDS times, so a change in the shared host's load falls on all of them alike.
    samples: dict[str, list[float]] = {label: [] for label, _ in rows}
    cpu: dict[str, float] = dict.fromkeys(samples, 0.0)
    for _ in range(ROUNDS):
        for label, call in rows:
            started = time.process_time()
            samples[label] += (await measure(label, N // ROUNDS, call, warmup=0)).samples
            cpu[label] += time.process_time() - started
    for label, _ in rows:
        line = Timing(label, samples[label]).line()
        print(f"{line}  {cpu[label] / len(samples[label]) * 1e6:5.0f} µs CPU  {counts[label]}")
    await bare.close()
    await before_engine.dispose()
    await close_container(container)


def main() -> None:
    with bench_database() as url:
        asyncio.run(run(url))


if __name__ == "__main__":
    main()
