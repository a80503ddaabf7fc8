"""Shared fixtures: a fresh database for the run (embedded, or on GHL_TEST_DATABASE_URL), migrated once,
a container wired to it, tenants to test with, and an HTTP client on the real ASGI app."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_adapters.sql import migrate
from ghl_adapters.sql.embedded import EmbeddedPostgres
from support import TEST_SECRET, Tenant, make_container, new_tenant, open_api


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    external = os.environ.get("GHL_TEST_DATABASE_URL")
    if not external:
        server = EmbeddedPostgres.start_temporary()
        try:
            yield server.url
        finally:
            server.stop()
        return
    name = f"ghl_test_{uuid.uuid4().hex[:12]}"
    admin = _libpq(external)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(external)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_url(database_url: str) -> str:
    migrate.upgrade(database_url)
    return database_url


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    url = os.environ.get("REDIS_URL")
    if os.environ.get("GHL_REQUIRE_REDIS") == "1" and not url:
        pytest.fail("GHL_REQUIRE_REDIS=1 but REDIS_URL is not set")
    return url


@pytest.fixture(scope="session")
def settings(migrated_url: str, redis_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=migrated_url,
        redis_url=redis_url,
        secret_key=TEST_SECRET,
        data_dir=tmp_path_factory.mktemp("ghl-data"),
        _env_file=None,
    )


@pytest.fixture(scope="session")
async def container(settings: Settings) -> AsyncIterator[Container]:
    built = make_container(settings)
    try:
        yield built
    finally:
        await close_container(built)


@pytest.fixture
async def tenant(container: Container) -> Tenant:
    return await new_tenant(container)


@pytest.fixture
async def other_tenant(container: Container) -> Tenant:
    return await new_tenant(container)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(container) as api:
        yield api
