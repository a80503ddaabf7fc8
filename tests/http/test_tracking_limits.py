"""The unauthenticated tracking URLs of campaign e-mail (`/t/o/...`, `/t/c/...`): limited per client
address and per link, with 429 + Retry-After. Each fetch of a genuine link writes to the database, so a
flood from one address, or one link fetched over and over from many, is refused before it costs one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from ghl_adapters.container import Container
from ghl_core.conversations.links import TRACKING_CLIENT_LIMIT, TRACKING_LINK_LIMIT
from http_kit import assert_problem, open_api, unique_ip


async def fetch_at_once(api: httpx.AsyncClient, paths: list[str], batch: int = 40) -> list[httpx.Response]:
    """Concurrently, a batch at a time (more at once than the Redis client's pool of 100 connections
    would fail for want of a connection, whatever the limits say)."""
    answers: list[httpx.Response] = []
    for start in range(0, len(paths), batch):
        answers += await asyncio.gather(*(api.get(path) for path in paths[start : start + batch]))
    return answers


async def test_tracking_is_limited_per_client_address(container: Container) -> None:
    # Different links (guesses), so only the address's bucket is shared. Sent at once and well over
    # the burst: the bucket refills far slower than they arrive.
    guesses = [f"/t/o/guess-{i}.gif" for i in range(TRACKING_CLIENT_LIMIT.burst)]
    guesses += [f"/t/c/guess-{i}?u=https%3A%2F%2Fexample.com%2F" for i in range(TRACKING_CLIENT_LIMIT.burst)]
    async with open_api(container) as api:
        answers = await fetch_at_once(api, guesses)
        statuses = [r.status_code for r in answers]

        assert set(statuses) <= {200, 404, 429}
        assert statuses[:10] == [200] * 10  # the first fetches are answered as ever: a GIF for a guess
        refused = next(r for r in answers if r.status_code == 429)
        body = assert_problem(refused, 429, "too_many_requests")
        assert "address" in body["detail"]
        assert int(refused.headers["retry-after"]) >= 1
    async with open_api(container) as elsewhere:
        assert (await elsewhere.get("/t/o/guess-0.gif")).status_code == 200


@asynccontextmanager
async def clients(container: Container, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` clients on one app, each from its own address."""
    from ghl_http.app import create_app

    app = create_app(container, close_container_on_shutdown=False)
    made = [
        httpx.AsyncClient(
            # Litestar's ASGI types are TypedDicts, httpx's plain mappings: see support.open_api.
            transport=httpx.ASGITransport(app=app, client=(unique_ip(), 50000)),  # type: ignore[arg-type]
            base_url="http://testserver.local",
        )
        for _ in range(count)
    ]
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


async def test_one_link_fetched_from_many_addresses_is_limited(container: Container) -> None:
    link = f"/t/o/one-link-{unique_ip()}.gif"
    async with clients(container, TRACKING_LINK_LIMIT.burst * 2) as many:
        answers = list(await asyncio.gather(*(client.get(link) for client in many)))
        other_link = await many[0].get(f"/t/o/another-{unique_ip()}.gif")

    statuses = [r.status_code for r in answers]
    assert statuses.count(429) >= TRACKING_LINK_LIMIT.burst // 2, statuses
    body = assert_problem(next(r for r in answers if r.status_code == 429), 429)
    assert "link" in body["detail"]
    assert other_link.status_code == 200
