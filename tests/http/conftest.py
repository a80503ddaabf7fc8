"""Fixtures of the HTTP API tests: a client on the real app (its own client address) and a signed-up owner."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from ghl_adapters.container import Container
from http_kit import Account, open_api, sign_up


@pytest.fixture
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(container) as client:
        yield client


@pytest.fixture
async def owner(api: httpx.AsyncClient) -> Account:
    return await sign_up(api)


@pytest.fixture
async def import_worker(container: Container) -> AsyncIterator[None]:
    """A job worker for contact imports (the `contacts` queue) in the test's own process and event loop,
    as `ghl serve` runs one: an import sent over the API is a job now."""
    from ghl_adapters.imports.jobs import import_kind
    from ghl_adapters.jobs.worker import run_worker

    worker = asyncio.create_task(
        run_worker(
            container,
            queues=["contacts"],
            kinds=[import_kind(runner=container.contact_import_runner())],
            concurrency=4,
            install_signal_handlers=False,
            name="test-imports",
        )
    )
    yield
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker
