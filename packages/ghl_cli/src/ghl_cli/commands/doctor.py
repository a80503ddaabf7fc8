"""`ghl doctor`: is this installation able to run, and what is it using?"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ghl_cli.errors import EXIT_FAILURE
from ghl_cli.options import JsonOption
from ghl_cli.output import Output

if TYPE_CHECKING:
    from ghl_cli.diagnostics import Check

# By level (ghl_cli.diagnostics.Level's values): that module is imported when the checks run.
_STYLE = {"ok": "green", "off": "dim", "warn": "yellow", "error": "bold red"}


def render(output: Output, checks: list[Check]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="ghl doctor", title_justify="left")
    table.add_column("check", style="bold")
    table.add_column("status")
    table.add_column("detail")
    for check in checks:
        style = _STYLE[check.level.value]
        table.add_row(check.name, f"[{style}]{check.level.value}[/{style}]", escape(check.detail))
    output.out.print(table)


def doctor(json_output: JsonOption = False) -> None:
    """Check the settings, the database, Redis and each provider, and say what is missing.

    Exits with 1 when the settings, the database or Redis fail. Secret values are never printed."""
    from ghl_cli.diagnostics import Level, diagnose

    output = Output(json=json_output)
    with output.status("Checking…"):
        checks = diagnose()
    ok = all(c.level is not Level.ERROR for c in checks)
    if output.json:
        output.document({"ok": ok, "checks": [c.view() for c in checks]})
    else:
        render(output, checks)
    if not ok:
        raise typer.Exit(EXIT_FAILURE)
