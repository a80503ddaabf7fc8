"""Fixtures of the HTTP API tests: a client on the real app (its own client address) and a signed-up owner."""

from __future__ import annotations

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
