"""`ghl db`: the database schema (Alembic migrations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from ghl_cli.errors import reported
from ghl_cli.options import JsonOption
from ghl_cli.output import Output
from ghl_cli.session import database

if TYPE_CHECKING:
    from ghl_adapters.sql.migrate import MigrationStatus

app = typer.Typer(help="Upgrade the database schema and see where it stands.")


def status_view(status: MigrationStatus, description: str) -> dict[str, Any]:
    return {
        "database": description,
        "current": status.current,
        "head": status.head,
        "pending": status.pending,
        "up_to_date": status.up_to_date,
    }


def show_status(output: Output, title: str, view: dict[str, Any]) -> None:
    if output.json:
        output.document(view)
        return
    output.record(title, view)
    if view["up_to_date"]:
        output.out.print("[green]The schema is up to date.[/green]")
    else:
        output.out.print(
            f"[yellow]{len(view['pending'])} migration(s) pending: run `ghl db upgrade`.[/yellow]"
        )


@app.command("upgrade")
def upgrade(json_output: JsonOption = False) -> None:
    """Apply every pending migration (embedded mode also does this at start)."""
    from ghl_adapters.settings import load_settings
    from ghl_adapters.sql import migrate

    output = Output(json=json_output)
    with reported(output):
        settings = load_settings()
        with database(output, settings, prepare=False) as handle:
            before = migrate.status(handle.url)
            with output.status(f"Applying {len(before.pending)} migration(s)…"):
                after = migrate.upgrade(handle.url)
            view = status_view(after, handle.description) | {"applied": before.pending}
    show_status(output, "Database upgraded", view)


@app.command("status")
def status(json_output: JsonOption = False) -> None:
    """Show the current revision, the head revision and the pending migrations."""
    from ghl_adapters.settings import load_settings
    from ghl_adapters.sql import migrate

    output = Output(json=json_output)
    with reported(output):
        settings = load_settings()
        with database(output, settings, prepare=False) as handle:
            view = status_view(migrate.status(handle.url), handle.description)
    show_status(output, "Database schema", view)
