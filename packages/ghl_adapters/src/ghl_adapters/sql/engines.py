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


def create_engines(url: str, pool_size: int = 10) -> Engines:
    target = async_url(url)
    owner = create_async_engine(target, pool_size=2, max_overflow=4, pool_pre_ping=True)
    # The role is a startup parameter, so no connection of this pool ever runs as the owner.
    app = create_async_engine(
        target,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"options": f"-c role={APP_ROLE}"},
    )
    return Engines(owner=owner, app=app)
