"""Real `ghl worker` processes for the integration tests: their environment, starting, stopping (or
killing) them, and waiting for what they do."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ghl_adapters.settings import Settings


def worker_env(settings: Settings, data_dir: Path, *, stalled_after: str, **extra: str) -> dict[str, str]:
    """The worker's environment: the test's databases, secret and Redis, no stray GHL_ variable, jobs
    counted as stalled after `stalled_after` seconds, and `extra` variables."""
    assert settings.database_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHL_")}
    env |= {
        "DATABASE_URL": settings.database_url,
        "GHL_DATA_DIR": str(data_dir),
        "GHL_JOBS_STALLED_AFTER_SECONDS": stalled_after,
        "GHL_LOG_LEVEL": "WARNING",
        **extra,
    }
    if settings.secret_key:
        env["GHL_SECRET_KEY"] = settings.secret_key.get_secret_value()
    if settings.app_database_url:
        env["GHL_APP_DATABASE_URL"] = settings.app_database_url
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    return env


def start_worker(
    env: dict[str, str], log: Path, *, queues: str, concurrency: int = 8
) -> subprocess.Popen[bytes]:
    """`ghl worker` on `queues`, its output appended to `log`."""
    command = [sys.executable, "-m", "ghl_cli.main", "worker", "--concurrency", str(concurrency)]
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            [*command, "--queues", queues],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log.parent,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(log: Path) -> str:
    return log.read_text()[-3000:] if log.exists() else ""


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]],
    what: str,
    *,
    within: float,
    poll: float,
    log: Path | None = None,
) -> None:
    """Polls `check` (plain or async) every `poll` seconds; fails after `within` seconds, with the tail
    of `log`."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        done = check()
        if inspect.isawaitable(done):
            done = await done
        if done:
            return
        await asyncio.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{tail(log)}" if log else ""))
