"""Two connection pools on one database: the owner's (migrations, operators) and the application
role's (every tenant request), which row-level security confines."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

APP_ROLE = "ghl_app"

# A connection back from the pool within this many seconds of its last use is trusted without a ping.
PING_AFTER_IDLE_SECONDS = 5.0
_CHECKED_IN = "ghl_checked_in"


def async_url(url: str) -> URL:
    """Accepts the forms people paste (postgres://, postgresql://) and picks the psycopg 3 driver."""
    parsed = make_url(
        url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url
    )
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, not {parsed.get_backend_name()}")
    return parsed.set(drivername="postgresql+psycopg")


@dataclass
class Engines:
    owner: AsyncEngine
    app: AsyncEngine

    async def dispose(self) -> None:
        await self.app.dispose()
        await self.owner.dispose()


def app_url(owner_url: str, explicit: str | None = None) -> URL:
    """The application role's URL: GHL_APP_DATABASE_URL, or DATABASE_URL with the user swapped for
    ghl_app and no password (servers that trust local connections, like the embedded one)."""
    if explicit:
        return async_url(explicit)
    return async_url(owner_url).set(username=APP_ROLE, password=None)


def ping_idle_connections(engine: AsyncEngine, after_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Pessimistic disconnect handling, for connections that sat idle in the pool only.

    `pool_pre_ping` pings on every checkout: a round trip per transaction, although a connection used a
    moment ago is almost surely alive. This pings a connection only when it has been idle at least
    `after_seconds` (0: always), which is when a server restart, a failover or an idle timeout may have
    closed it; a failed ping raises DisconnectionError, which makes the pool replace the connection and
    check out again. A connection that broke within the window fails its first statement instead, and
    SQLAlchemy then invalidates every connection of the pool opened before the failure."""
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None or time.monotonic() - checked_in < after_seconds:
            return  # just opened, or just used
        try:
            dialect.do_ping(dbapi_connection)
            # The ping's SELECT opened a transaction: end it, so the connection leaves the pool idle.
            dbapi_connection.rollback()
        except Exception as error:
            raise DisconnectionError(f"the pooled connection failed its ping: {error}") from error


def create_engines(
    url: str,
    pool_size: int = 10,
    app_database_url: str | None = None,
    ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS,
) -> Engines:
    owner = create_async_engine(async_url(url), pool_size=2, max_overflow=4)
    # Logged in as ghl_app, not switched to it: a connection of this pool can never become the owner.
    app = create_async_engine(app_url(url, app_database_url), pool_size=pool_size, max_overflow=pool_size)
    for engine in (owner, app):
        ping_idle_connections(engine, ping_after_idle_seconds)
    return Engines(owner=owner, app=app)
