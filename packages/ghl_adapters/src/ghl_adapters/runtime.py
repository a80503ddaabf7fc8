"""Where the database lives (embedded in the data folder, or at DATABASE_URL), readiness checks,
and the demo tenant created on an embedded installation's first start."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from ghl_adapters.settings import Settings
from ghl_adapters.sql import migrate
from ghl_adapters.sql.embedded import EmbeddedPostgres
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation

if TYPE_CHECKING:
    # Only named here: `ghl db` and the embedded start need no container, and importing it imports
    # every adapter.
    from ghl_adapters.container import Container


@dataclass
class Database:
    url: str
    embedded: EmbeddedPostgres | None = None

    @property
    def description(self) -> str:
        if self.embedded is not None:
            return f"embedded PostgreSQL (data in {self.embedded.pgdata})"
        return "PostgreSQL at DATABASE_URL"

    def release(self) -> None:
        """Lets go of the embedded server; it stops when no other process (ghl serve, a CLI) holds it."""
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def freeze_heap() -> None:
    """Takes what the process holds so far (modules, settings, the container, the app) out of the cyclic
    garbage collector's sight: it lives as long as the process anyway. A bulk loop (an import, a send)
    allocates enough to set off a full collection every few thousand rows, and a full collection walks
    every object the process holds: on a 50,000-row import that was 27 µs a row (a tenth of its CPU) and
    8-19% of its rate. Called by the shells once they are built (server, worker, import), not by tests."""
    gc.collect()
    gc.freeze()


def open_database(settings: Settings) -> Database:
    if settings.database_url:
        return Database(url=settings.database_url)
    data_dir = Path(settings.data_dir).expanduser().resolve()
    server = EmbeddedPostgres.start(data_dir)
    return Database(url=server.url, embedded=server)


def prepare_database(settings: Settings, database: Database) -> migrate.MigrationStatus:
    """Embedded mode migrates at start; an external database is upgraded on purpose (`ghl db upgrade`)."""
    if database.embedded is not None:
        return migrate.upgrade(database.url)
    status = migrate.status(database.url)
    if not status.up_to_date:
        raise RuntimeError(
            f"the database at DATABASE_URL is at revision {status.current or 'none'}, the code needs "
            f"{status.head}: run `ghl db upgrade` first"
        )
    return status


async def readiness(container: Container) -> dict[str, Any]:
    """Checks each dependency the API needs; `ok` is False when any is down."""
    checks: dict[str, str] = {}
    try:
        async with container.engines().app.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # a readiness probe reports every failure, whatever its kind
        checks["database"] = f"error: {type(exc).__name__}"
    redis = container.redis()
    if redis is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # same as above
            checks["redis"] = f"error: {type(exc).__name__}"
    return {"ok": all(v == "ok" for v in checks.values()), "checks": checks}


@dataclass(frozen=True)
class DemoTenant:
    agency_id: str
    location_id: str
    api_key: str


async def bootstrap_demo(container: Container) -> DemoTenant | None:
    """On the first start of an empty installation: a demo agency, a location and an API key for it."""
    operator = Actor.operator()
    tenancy = container.tenancy()
    if (await tenancy.list_agencies(operator, PageRequest(limit=1))).items:
        return None
    agency = await tenancy.create_agency(operator, "Demo Agency")
    location = await tenancy.create_location(
        operator,
        NewLocation(name="Demo Location", timezone="America/New_York", country="US", tier=PlanTier.PRO),
        agency_id=agency.id,
    )
    _, secret = await container.api_keys().create(operator, "Demo key", location_id=location.id)
    return DemoTenant(agency_id=str(agency.id), location_id=str(location.id), api_key=secret)


__all__ = ["Database", "DemoTenant", "bootstrap_demo", "open_database", "prepare_database", "readiness"]
