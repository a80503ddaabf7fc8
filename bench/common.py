"""Shared by the bench scripts: a database to measure against and a tiny timing helper.

Uses DATABASE_URL when set (a throwaway database is created on it), else a temporary embedded server."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import make_url

from ghl_adapters.sql import migrate
from ghl_adapters.sql.embedded import EmbeddedPostgres


@contextmanager
def bench_database() -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if not external:
        server = EmbeddedPostgres.start_temporary()
        try:
            migrate.upgrade(server.url)
            yield server.url
        finally:
            server.stop()
        return
    name = f"ghl_bench_{uuid.uuid4().hex[:8]}"
    admin = make_url(external).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = (
        make_url(external)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Timing:
    label: str
    samples: list[float]

    def line(self) -> str:
        ordered = sorted(self.samples)
        p50 = statistics.median(ordered) * 1000
        p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
        rate = len(ordered) / sum(ordered)
        return f"{self.label:<52} n={len(ordered):>5}  p50={p50:7.3f} ms  p95={p95:7.3f} ms  {rate:9.0f}/s"


async def measure(label: str, n: int, call: Callable[[], Awaitable[object]], warmup: int = 20) -> Timing:
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return Timing(label, samples)
