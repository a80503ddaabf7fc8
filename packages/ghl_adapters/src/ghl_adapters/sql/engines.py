"""Two connection pools on one database: the owner's (migrations, operators) and the application
role's (every tenant request), which row-level security confines."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

APP_ROLE = "ghl_app"


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


def create_engines(url: str, pool_size: int = 10, app_database_url: str | None = None) -> Engines:
    owner = create_async_engine(async_url(url), pool_size=2, max_overflow=4, pool_pre_ping=True)
    # Logged in as ghl_app, not switched to it: a connection of this pool can never become the owner.
    app = create_async_engine(
        app_url(url, app_database_url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    return Engines(owner=owner, app=app)
