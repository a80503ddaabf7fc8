"""`ghl serve` end to end: a real process on the embedded PostgreSQL, restarted on the same data."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from clitools import Env, env_for, invoke, invoke_json
from ghl_adapters.settings import Settings

pytestmark = pytest.mark.slow

API_KEY = re.compile(r"API key\s+(ghl_[A-Za-z0-9_-]+)")
READY_ATTEMPTS = 600  # polls 0.25 s apart: a first start runs initdb and the migrations
STOP_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(data_dir: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "GHL_APP_DATABASE_URL"}}
    env |= {"GHL_DATA_DIR": str(data_dir), "GHL_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    env.pop("GHL_SECRET_KEY", None)
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command, arguments built here
            [sys.executable, "-m", "ghl_cli.main", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=data_dir.parent,  # no stray .env file
        )
    try:
        wait_ready(process, port, log)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    for _ in range(READY_ATTEMPTS):
        if process.poll() is not None:
            pytest.fail(f"ghl serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"ghl serve never became ready:\n{log.read_text()}")


def assert_events_consumed_in_process(data_dir: Path, location_id: str) -> None:
    """No `ghl worker` runs: the worker inside `ghl serve` consumes the events of the change."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "GHL_APP_DATABASE_URL"}}
    env |= {"GHL_DATA_DIR": str(data_dir), "GHL_LOG_LEVEL": "WARNING"}
    args = ["jobs", "list", "--kind", "events.consume", "--location", location_id, "--json"]
    statuses: list[str] = []
    for _ in range(120):
        listed = subprocess.run(  # noqa: S603 - our own command, arguments built here
            [sys.executable, "-m", "ghl_cli.main", *args],
            env=env,
            cwd=data_dir.parent,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        statuses = [job["status"] for job in json.loads(listed.stdout)["items"]]
        if statuses and set(statuses) == {"succeeded"}:
            return
        time.sleep(0.5)
    pytest.fail(f"the events were not consumed by the in-process worker: {statuses}")


def test_serve_first_start_prints_a_working_demo_key_and_restarts_on_the_same_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    first_log = tmp_path / "first.log"
    with serving(data_dir, port, first_log) as process:
        printed = first_log.read_text()
        match = API_KEY.search(printed)
        assert match, printed
        key = match.group(1)
        assert "shown only this once" in printed
        assert f"{base}/docs" in printed
        assert "embedded PostgreSQL" in printed

        location = httpx.get(f"{base}/api/v1/location", headers={"Authorization": f"Bearer {key}"})
        assert location.status_code == 200, location.text
        assert location.json()["name"] == "Demo Location"
        assert httpx.get(f"{base}/docs").status_code == 200
        openapi = httpx.get(f"{base}/docs/openapi.json")
        assert openapi.status_code == 200
        assert openapi.json()["openapi"].startswith("3.")
        assert key not in os.environ.values()
        made = httpx.post(
            f"{base}/api/v1/contacts",
            json={"first_name": "Serve"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert made.status_code == 201, made.text
        assert_events_consumed_in_process(data_dir, location.json()["id"])
    assert process.returncode == 0, first_log.read_text()

    second_log = tmp_path / "second.log"
    with serving(data_dir, port, second_log):
        printed = second_log.read_text()
        assert "First start" not in printed
        assert not API_KEY.search(printed)
        assert "ghl apikeys create --location ID" in printed
        # The data survived the restart: the key printed the first time still works.
        again = httpx.get(f"{base}/api/v1/location", headers={"Authorization": f"Bearer {key}"})
        assert again.status_code == 200, again.text
        assert again.json()["id"] == location.json()["id"]


@contextmanager
def serving_on(settings: Settings, tmp_path: Path, port: int, **extra: str) -> Iterator[str]:
    """`ghl serve` on the tests' own (already migrated) database: no demo, no worker to take other
    tests' jobs, and rate limits in its own process (no Redis shared with other tests)."""
    assert settings.database_url
    assert settings.secret_key
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "REDIS_URL", "DATABASE_URL"))}
    env |= {
        "DATABASE_URL": settings.database_url,
        "GHL_SECRET_KEY": settings.secret_key.get_secret_value(),
        "GHL_DATA_DIR": str(tmp_path / "data"),
        "GHL_DEMO": "0",
        "GHL_SERVE_WORKER": "0",
        "GHL_LOG_LEVEL": "WARNING",
        **extra,
    }
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command, arguments built here
            [sys.executable, "-m", "ghl_cli.main", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        wait_ready(process, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def refresh_statuses(base: str, attempts: int = 40) -> list[int]:
    """Refresh attempts with a bad token, sent at once, each claiming to come from another address. The
    endpoint is public, limited per client address (a burst of 10 on the free policy): if the claims are
    ignored, one bucket answers them all and most are refused."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/auth/refresh",
                    json={"refresh_token": "not-a-token"},
                    headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
                )
                for i in range(attempts)
            )
        )
    return [response.status_code for response in responses]


def test_a_forwarded_address_is_believed_only_from_a_trusted_proxy(
    settings: Settings, tmp_path: Path
) -> None:
    with serving_on(settings, tmp_path, free_port()) as base:
        untrusted = asyncio.run(refresh_statuses(base))
    with serving_on(settings, tmp_path, free_port(), GHL_TRUSTED_PROXIES="127.0.0.1") as base:
        trusted = asyncio.run(refresh_statuses(base))

    # No proxy configured: the header is ignored; every attempt is the connection's own address.
    assert set(untrusted) == {401, 429}, untrusted
    # The proxy on 127.0.0.1 is trusted: each forwarded client has a bucket of its own.
    assert set(trusted) == {401}, trusted


def test_a_bad_trusted_proxy_stops_serve_naming_the_variable(tmp_path: Path) -> None:
    env: Env = {"GHL_TRUSTED_PROXIES": "10.0.0.1/8", "GHL_DATA_DIR": str(tmp_path), "DATABASE_URL": None}

    result = invoke(env, "serve")

    assert result.exit_code == 1
    assert "GHL_TRUSTED_PROXIES" in result.stderr
    assert "CIDR" in result.stderr


def test_the_cli_prints_the_callback_urls_the_running_server_answers_at(
    settings: Settings, tmp_path: Path
) -> None:
    """`ghl serve --port N` with no GHL_PUBLIC_URL: `ghl providers show` prints the Twilio callback URL
    at port N, the one the API shows, not GHL_PORT's default."""
    assert settings.database_url
    assert settings.secret_key
    port = free_port()
    env = env_for(settings, settings.database_url, tmp_path / "data") | {
        "GHL_SECRET_KEY": settings.secret_key.get_secret_value(),
        "GHL_PUBLIC_URL": None,
        "GHL_HOST": None,
        "GHL_PORT": None,
        "TW_TOKEN": "0123456789abcdef0123456789abcdef",
    }
    with serving_on(settings, tmp_path, port) as base:
        agency = invoke_json(env, "agencies", "create", "Served Agency")
        location = invoke_json(env, "locations", "create", "Served", "--agency", agency["id"])["id"]
        invoke_json(
            env, "providers", "set", "sms", "twilio", "--location", location,
            "--account-sid", "AC" + "1" * 32, "--auth-token-env", "TW_TOKEN", "--from", "+14155550100",
        )  # fmt: skip
        printed = invoke_json(env, "providers", "show", "sms", "--location", location)
        key = invoke_json(env, "apikeys", "create", "--location", location)["key"]
        shown = httpx.get(
            f"{base}/api/v1/messaging/providers/sms", headers={"Authorization": f"Bearer {key}"}
        ).json()
    expected = f"http://127.0.0.1:{port}/webhooks/twilio/{location}"
    assert printed["callback_urls"]["twilio_messaging_webhook"] == expected
    assert shown["callback_urls"]["twilio_messaging_webhook"] == expected
