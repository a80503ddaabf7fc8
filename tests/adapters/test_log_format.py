"""Which log lines a process writes: console lines for a person at a terminal, JSON for everything else,
or what GHL_LOG_FORMAT says. The terminal is a real pseudo-terminal; the process is a fresh interpreter
that configures logging from its settings as `ghl serve`, `ghl worker` and the ASGI app do."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from ghl_adapters.observability import wants_json
from ghl_adapters.settings import SettingsError, load_settings

# A migration's log line, as alembic writes it on a first start.
_PROBE = """
import logging
from ghl_adapters.observability import configure_logging_from
from ghl_adapters.settings import load_settings
configure_logging_from(load_settings())
logging.getLogger("alembic.runtime.migration").info("Running upgrade 0001 -> 0002, contacts")
"""


def log_output(tmp_path: Path, *, terminal: bool, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GHL_LOG")}
    clean |= {"GHL_DATA_DIR": str(tmp_path)} | (env or {})
    if not terminal:
        return subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", _PROBE],
            env=clean,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(  # noqa: S603 - as above
            [sys.executable, "-c", _PROBE], env=clean, cwd=tmp_path, stdout=follower, stderr=follower
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


def test_a_terminal_gets_console_lines(tmp_path: Path) -> None:
    text = log_output(tmp_path, terminal=True)
    assert "Running upgrade 0001 -> 0002, contacts" in text
    assert not text.lstrip().startswith("{")


def test_a_pipe_gets_json_lines(tmp_path: Path) -> None:
    [line] = log_output(tmp_path, terminal=False).splitlines()
    event = json.loads(line)
    assert event["event"] == "Running upgrade 0001 -> 0002, contacts"
    assert event["logger"] == "alembic.runtime.migration"


@pytest.mark.parametrize(
    ("env", "terminal", "json_lines"),
    [
        ({"GHL_LOG_FORMAT": "json"}, True, True),
        ({"GHL_LOG_FORMAT": "console"}, False, False),
        ({"GHL_LOG_JSON": "false"}, False, False),  # the older switch still works
        ({"GHL_LOG_JSON": "true"}, True, True),
        ({"GHL_LOG_FORMAT": "console", "GHL_LOG_JSON": "true"}, True, False),  # the newer one wins
    ],
)
def test_the_setting_overrides_the_guess(
    tmp_path: Path, env: dict[str, str], terminal: bool, json_lines: bool
) -> None:
    text = log_output(tmp_path, terminal=terminal, env=env).strip()
    assert text.startswith("{") is json_lines


def test_wants_json_looks_at_the_stream(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    with open(follower, "w") as terminal, (tmp_path / "log").open("w") as file:
        assert wants_json("auto", terminal) is False
        assert wants_json("auto", file) is True
        assert wants_json("json", terminal) is True
        assert wants_json("console", file) is False
    os.close(leader)


def test_an_unknown_log_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHL_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError, match="GHL_LOG_FORMAT"):
        load_settings()
    monkeypatch.setenv("GHL_LOG_FORMAT", "console")
    assert load_settings().chosen_log_format == "console"
