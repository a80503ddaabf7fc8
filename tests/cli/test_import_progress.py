"""`ghl contacts import` at a terminal: its progress bar knows the total before the first row (the file's
size, advanced by bytes read) and so shows the share done and the time left. The command runs in its own
process on a real pseudo-terminal, since the bar is drawn only for one."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from clitools import Env, env_for, invoke_json
from ghl_adapters.settings import Settings


@pytest.fixture(scope="session")
def cli_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert settings.database_url
    return env_for(settings, settings.database_url, tmp_path_factory.mktemp("cli-import-progress"))


def on_a_terminal(args: list[str], env: Env, cwd: Path) -> tuple[int, str]:
    full = {k: v for k, v in os.environ.items() if k not in env} | {k: v for k, v in env.items() if v}
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and command
            [sys.executable, "-m", "ghl_cli.main", *args], env=full, cwd=cwd, stdout=follower, stderr=follower
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        return process.wait(timeout=120), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(leader)


def test_the_import_bar_shows_the_share_done_and_the_time_left(cli_env: Env, tmp_path: Path) -> None:
    agency = invoke_json(cli_env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    location = invoke_json(cli_env, "locations", "create", "Main Street", "--agency", agency["id"])
    people = tmp_path / "people.csv"
    people.write_text("email,first_name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(300)))

    code, text = on_a_terminal(
        ["contacts", "import", str(people), "--location", location["id"]], cli_env, tmp_path
    )

    assert code == 0, text
    assert "100%" in text
    assert "300 rows" in text
    assert "left" in text
