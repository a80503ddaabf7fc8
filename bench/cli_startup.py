"""How long `ghl` takes before it does anything: `ghl --help`, tab completion, and a command's start-up
(its `--help`: the command's module loaded and its options parsed, which every run of it pays before
its own work), each beside `python -c pass` in the same run. The last row is what every command paid
before sub-commands were loaded lazily: every command module and the container imported.

    uv run python bench/cli_startup.py          # RUNS=15 by default
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = int(os.environ.get("RUNS", "15"))
_SCRIPT = Path(sys.executable).parent / "ghl"
GHL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ghl_cli.main"]
COMPLETE = {"_GHL_COMPLETE": "complete_bash", "COMP_CWORD": "1"}
_EVERYTHING = (
    "import typer, ghl_adapters.container\n"
    "import ghl_cli.commands.agencies, ghl_cli.commands.apikeys, ghl_cli.commands.campaigns\n"
    "import ghl_cli.commands.contacts, ghl_cli.commands.conversations, ghl_cli.commands.db\n"
    "import ghl_cli.commands.doctor, ghl_cli.commands.inbound, ghl_cli.commands.jobs\n"
    "import ghl_cli.commands.locations, ghl_cli.commands.opportunities, ghl_cli.commands.pipelines\n"
    "import ghl_cli.commands.serve, ghl_cli.commands.users, ghl_cli.commands.webhooks\n"
    "import ghl_cli.commands.worker, ghl_cli.commands.workflows, ghl_cli.diagnostics, ghl_cli.startup\n"
)

CASES: list[tuple[str, list[str], dict[str, str]]] = [
    ("baseline: python -c pass", [sys.executable, "-c", "pass"], {}),
    ("floor: python -c 'import typer'", [sys.executable, "-c", "import typer"], {}),
    ("ghl --help", [*GHL, "--help"], {}),
    ("ghl --version", [*GHL, "--version"], {}),
    ("completion: ghl co<TAB>", GHL, COMPLETE | {"COMP_WORDS": "ghl co"}),
    ("completion: ghl contacts <TAB>", GHL, COMPLETE | {"COMP_WORDS": "ghl contacts ", "COMP_CWORD": "2"}),
    ("start-up: ghl db status --help", [*GHL, "db", "status", "--help"], {}),
    ("start-up: ghl contacts import --help", [*GHL, "contacts", "import", "--help"], {}),
    ("start-up: ghl conversations send --help", [*GHL, "conversations", "send", "--help"], {}),
    ("start-up: ghl workflows simulate --help", [*GHL, "workflows", "simulate", "--help"], {}),
    ("before: every command module + container", [sys.executable, "-c", _EVERYTHING], {}),
]


def once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(  # noqa: S603 - our own interpreter and command
        argv, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    print(f"ghl start-up, {RUNS} runs each (load average {os.getloadavg()[0]:.1f}); seconds")
    print(f"{'':44} {'wall p50':>9} {'wall min':>9} {'cpu p50':>9}")
    for name, argv, env in CASES:
        once(argv, env)  # warm the file cache
        walls, cpus = zip(*(once(argv, env) for _ in range(RUNS)), strict=True)
        print(f"{name:44} {statistics.median(walls):9.3f} {min(walls):9.3f} {statistics.median(cpus):9.3f}")


if __name__ == "__main__":
    main()
