"""What `ghl` imports before it answers: help and completion load no command module, and a command's help
loads none of the adapters. Each case runs in a fresh interpreter and reads its `sys.modules`; the time
it takes is measured by bench/cli_startup.py, not asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from ghl_cli.main import COMMANDS, app

# Run as `ghl ARGS` for each list of arguments in turn, then write the modules loaded to a file.
_PROBE = """
import json, sys
out, runs = sys.argv[1], json.loads(sys.argv[2])
from ghl_cli.main import run
for args in runs:
    sys.argv = ["ghl", *args]
    try:
        run()
    except SystemExit:
        pass
with open(out, "w") as f:
    json.dump(sorted(sys.modules), f)
"""
# pydantic too: Typer validates option values with it, which help and completion never need.
HEAVY = (
    "sqlalchemy",
    "litestar",
    "procrastinate",
    "alembic",
    "pydantic",
    "pydantic_settings",
    "ghl_adapters.container",
)


def loaded_modules(
    tmp_path: Path, *runs: list[str], env: dict[str, str] | None = None
) -> tuple[set[str], str]:
    out = tmp_path / "modules.json"
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", _PROBE, str(out), json.dumps(list(runs))],
        env=os.environ | {"COLUMNS": "200"} | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.exists(), done.stderr
    return set(json.loads(out.read_text())), done.stdout


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)


def test_help_loads_no_command(tmp_path: Path) -> None:
    modules, stdout = loaded_modules(tmp_path, ["--help"])
    assert heavy(modules) == []
    assert [m for m in modules if m.startswith("ghl_cli.commands.")] == []
    for name in COMMANDS:
        assert f"\n  {name} " in stdout


def test_completion_loads_no_command(tmp_path: Path) -> None:
    env = {"_GHL_COMPLETE": "complete_bash", "COMP_WORDS": "ghl co", "COMP_CWORD": "1"}
    modules, stdout = loaded_modules(tmp_path, [], env=env)
    assert stdout.split() == ["contacts", "conversations"]
    assert [m for m in modules if m.startswith("ghl_cli.commands.")] == []
    assert heavy(modules) == []


def test_command_help_loads_none_of_the_adapters(tmp_path: Path) -> None:
    runs = [[name, "--help"] for name in COMMANDS]
    runs += [
        ["contacts", "import", "--help"],
        ["workflows", "simulate", "--help"],
        ["jobs", "list", "--help"],
    ]
    modules, _ = loaded_modules(tmp_path, *runs)
    assert heavy(modules) == []
    assert {f"ghl_cli.commands.{name}" for name in ("contacts", "workflows", "jobs", "serve")} <= modules


@pytest.mark.parametrize("name", list(COMMANDS))
def test_summary_is_the_first_sentence_of_the_commands_help(name: str) -> None:
    """`ghl --help` shows the summaries without loading the commands: they must say what the commands'
    own help says."""
    group = typer.main.get_command(app)
    command = COMMANDS[name].load(name, group)  # type: ignore[arg-type]
    assert COMMANDS[name].summary == command.get_short_help_str(limit=10_000)
