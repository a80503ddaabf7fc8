"""Invalidation buses: how one process tells every other to drop cached keys, at once.

Redis pub/sub when REDIS_URL is set; otherwise PostgreSQL LISTEN/NOTIFY on the database every process
already shares (so the `ghl` command line revoking a key reaches the server's in-process cache). Each
process listens on one dedicated connection in a background task, started on the first cache read and
stopped by `close()`. While that connection is down the bus reports `connected = False`, and the caches
relying on it serve nothing from memory; on reconnecting they start empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import psycopg
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

REDIS_CHANNEL = "ghl:cache:invalidate"
PG_CHANNEL = "ghl_cache"
# NOTIFY payloads must stay under 8000 bytes; keys are joined by newlines up to this size.
PG_PAYLOAD_LIMIT = 7000
RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
CLOSE_SECONDS = 2.0

OnKeys = Callable[[Iterable[str]], None]
OnReset = Callable[[], None]


class InvalidationBus(Protocol):
    @property
    def connected(self) -> bool: ...

    def listen(self, on_keys: OnKeys, on_reset: OnReset) -> None:
        """Starts listening in the background if not yet started (idempotent; needs a running loop)."""
        ...

    async def publish(self, keys: Sequence[str]) -> None: ...

    async def close(self) -> None: ...


def _chunks(keys: Sequence[str], limit: int) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    size = 0
    for key in keys:
        if current and size + len(key) + 1 > limit:
            out.append("\n".join(current))
            current, size = [], 0
        current.append(key)
        size += len(key.encode()) + 1
    if current:
        out.append("\n".join(current))
    return out


class _ListeningBus:
    """The background task shared by both buses: connect, subscribe, deliver, and on any failure mark
    the bus down, reset the caches and try again with a growing pause."""

    def __init__(self) -> None:
        self._connected = False
        self._task: asyncio.Task[None] | None = None
        self._on_keys: OnKeys | None = None
        self._on_reset: OnReset | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    def listen(self, on_keys: OnKeys, on_reset: OnReset) -> None:
        if self._task is not None and not self._task.done():
            return
        self._on_keys, self._on_reset = on_keys, on_reset
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{type(self).__name__}")

    def _up(self) -> None:
        if self._on_reset is not None:
            self._on_reset()  # whatever was missed while down is gone with it
        self._connected = True

    def _deliver(self, payload: str) -> None:
        if self._on_keys is not None:
            self._on_keys([k for k in payload.split("\n") if k])

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of the connection: report it, go down, retry
                log.warning("cache invalidation bus lost: %s: %s", type(exc).__name__, exc)
            finally:
                self._connected = False
                if self._on_reset is not None:
                    self._on_reset()
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1

    async def _session(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        task, self._task = self._task, None
        self._connected = False
        if task is not None and not task.done():
            task.cancel()
            # Bounded: a client library's clean-up can hang on a half-closed socket (redis-py #3941), and
            # a process must always be able to shut down.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, CLOSE_SECONDS)


class _ReconnectWatcher:
    """redis-py reconnects and resubscribes by itself after a dropped connection: what was published in
    between is lost, so on every connection after the first the caches start again empty."""

    def __init__(self, resubscribe: Callable[[Any], Awaitable[None]], reset: Callable[[], None]) -> None:
        self._resubscribe = resubscribe
        self._reset = reset
        self.connects = 0

    async def on_connect(self, connection: Any) -> None:
        self.connects += 1
        if self.connects > 1:
            self._reset()
        await self._resubscribe(connection)


class RedisInvalidationBus(_ListeningBus):
    def __init__(self, redis: Redis, channel: str = REDIS_CHANNEL) -> None:
        super().__init__()
        self._redis = redis
        self._channel = channel

    async def publish(self, keys: Sequence[str]) -> None:
        if keys:
            await self._redis.publish(self._channel, "\n".join(keys))

    async def _session(self) -> None:
        pubsub = self._redis.pubsub()
        watcher = _ReconnectWatcher(pubsub.on_connect, self._up)
        # redis-py keeps connect callbacks as weak methods: this must be a bound method of a live object.
        pubsub.on_connect = watcher.on_connect  # type: ignore[method-assign]
        try:
            await pubsub.subscribe(self._channel)
            # The subscription is confirmed before the bus counts as up.
            while (await pubsub.get_message(timeout=1.0)) is None:
                pass
            self._up()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                if message is None:
                    await pubsub.ping()  # a silent, dead connection fails here
                    continue
                data = message.get("data")
                if isinstance(data, bytes):
                    self._deliver(data.decode())
        finally:
            # redis-py's aclose can wait forever for the socket to close (redis/redis-py#3941): drop the
            # connection without waiting first, then let aclose tidy up, within a bound.
            connection = pubsub.connection
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.disconnect(nowait=True)
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(pubsub.aclose(), CLOSE_SECONDS)  # type: ignore[no-untyped-call]


class PostgresInvalidationBus(_ListeningBus):
    """LISTEN on a dedicated psycopg connection; NOTIFY through the given engine's pool."""

    def __init__(self, listen_url: str, engine: AsyncEngine, channel: str = PG_CHANNEL) -> None:
        super().__init__()
        self._url = listen_url
        self._engine = engine
        self._channel = channel

    async def publish(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        async with self._engine.connect() as conn:
            for payload in _chunks(keys, PG_PAYLOAD_LIMIT):
                await conn.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {
                        "channel": self._channel,
                        "payload": payload,
                    },
                )
            await conn.commit()  # NOTIFY is delivered when its transaction commits

    async def _session(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=5, keepalives=1, keepalives_idle=10
        )
        try:
            await conn.execute(f'LISTEN "{self._channel}"')
            self._up()
            while True:
                async for notice in conn.notifies(timeout=5.0):
                    self._deliver(notice.payload)
                await conn.execute("SELECT 1")  # a silent, dead connection fails here
        finally:
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(conn.close(), CLOSE_SECONDS)
