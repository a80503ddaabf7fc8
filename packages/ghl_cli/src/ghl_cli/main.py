"""The `ghl` command: an operator's shell on the same services the HTTP API uses."""

from __future__ import annotations

import typer

from ghl_cli.commands import (
    agencies,
    apikeys,
    db,
    doctor,
    jobs,
    locations,
    opportunities,
    pipelines,
    serve,
    users,
    worker,
)
from ghl_cli.commands import campaigns as campaigns_commands
from ghl_cli.commands import contacts as contacts_commands
from ghl_cli.commands import conversations as conversations_commands
from ghl_cli.commands import inbound as inbound_commands
from ghl_cli.commands import webhooks as webhooks_commands
from ghl_cli.commands import workflows as workflows_commands

app = typer.Typer(
    name="ghl",
    help=(
        "Run and administer a self-hosted GHL-style CRM platform. Every command takes --json for "
        "machine-readable output."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("doctor")(doctor.doctor)
app.add_typer(db.app, name="db")
app.add_typer(agencies.app, name="agencies")
app.add_typer(locations.app, name="locations")
app.add_typer(users.app, name="users")
app.add_typer(apikeys.app, name="apikeys")
app.add_typer(contacts_commands.app, name="contacts")
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(opportunities.app, name="opportunities")
app.add_typer(inbound_commands.app, name="inbound")
app.add_typer(webhooks_commands.app, name="webhooks")
app.add_typer(jobs.app, name="jobs")
app.add_typer(conversations_commands.app, name="conversations")
app.command("outbox")(conversations_commands.outbox)
app.add_typer(conversations_commands.providers_app, name="providers")
app.add_typer(campaigns_commands.templates_app, name="templates")
app.add_typer(campaigns_commands.app, name="campaigns")
app.add_typer(workflows_commands.app, name="workflows")


def run() -> None:
    app()


if __name__ == "__main__":
    run()
