"""The `ghl` command: an operator's shell on the same services the HTTP API uses.

Start-up is kept short: the sub-commands are loaded when used (ghl_cli.lazy), help is printed by click's
plain formatter (Typer's rich help imports rich's Markdown and syntax highlighting, most of a second
before the first line), and a command's module imports the adapters only once it runs. The root group
is also where a failure no command reported becomes a short message instead of a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghl_cli.lazy import LazyCommand, LazyGroup

if TYPE_CHECKING:
    from typer._click import Context

COMMANDS = {
    "serve": LazyCommand(
        "ghl_cli.commands.serve:serve", "Start the platform: the HTTP API and its interactive docs."
    ),
    "worker": LazyCommand(
        "ghl_cli.commands.worker:worker", "Run a job worker until stopped (Ctrl-C or SIGTERM)."
    ),
    "doctor": LazyCommand(
        "ghl_cli.commands.doctor:doctor",
        "Check the settings, the database, Redis and each provider, and say what is missing.",
    ),
    "outbox": LazyCommand(
        "ghl_cli.commands.conversations:outbox",
        "What the local outbox took, with the bodies: nothing of it was sent.",
    ),
    "db": LazyCommand("ghl_cli.commands.db:app", "Upgrade the database schema and see where it stands."),
    "agencies": LazyCommand(
        "ghl_cli.commands.agencies:app",
        "Create and list agencies (the top-level accounts that own locations).",
    ),
    "locations": LazyCommand(
        "ghl_cli.commands.locations:app",
        "Create and list locations (the sub-accounts an agency runs for its clients).",
    ),
    "users": LazyCommand(
        "ghl_cli.commands.users:app", "Create and list agency users (built-in sign-in, or Clerk)."
    ),
    "apikeys": LazyCommand("ghl_cli.commands.apikeys:app", "Create, list and revoke a location's API keys."),
    "contacts": LazyCommand(
        "ghl_cli.commands.contacts:app", "List, read, create, import and export a location's contacts."
    ),
    "pipelines": LazyCommand("ghl_cli.commands.pipelines:app", "List and create a location's pipelines."),
    "opportunities": LazyCommand(
        "ghl_cli.commands.opportunities:app",
        "List a location's opportunities and move them through their pipeline.",
    ),
    "inbound": LazyCommand(
        "ghl_cli.commands.inbound:app",
        "Create, list and delete a location's inbound webhook endpoints; see their events.",
    ),
    "webhooks": LazyCommand(
        "ghl_cli.commands.webhooks:app", "Subscribe URLs to a location's events; see and replay deliveries."
    ),
    "jobs": LazyCommand(
        "ghl_cli.commands.jobs:app", "Inspect background jobs; list the failed ones and retry them."
    ),
    "conversations": LazyCommand(
        "ghl_cli.commands.conversations:app",
        "A location's conversations: list them, read one, send an SMS or an email.",
    ),
    "providers": LazyCommand(
        "ghl_cli.commands.conversations:providers_app",
        "Which provider sends SMS and email, per location or as an agency default.",
    ),
    "templates": LazyCommand(
        "ghl_cli.commands.campaigns:templates_app", "A location's SMS and email templates, with merge fields."
    ),
    "campaigns": LazyCommand(
        "ghl_cli.commands.campaigns:app",
        "Send an SMS or email to an audience of contacts; follow its progress and results.",
    ),
    "workflows": LazyCommand(
        "ghl_cli.commands.workflows:app",
        "Store, publish and run a location's workflows; check workflow files and simulate them for a "
        "contact (nothing is sent).",
    ),
}

JSON_FLAG = "--json"


class Ghl(LazyGroup):
    lazy_commands = COMMANDS

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        # Read before any parsing, so even a failure in loading or parsing a command knows the format
        # its error should take.
        ctx.meta["ghl.json"] = JSON_FLAG in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        json_output = bool(ctx.meta.get("ghl.json"))
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as exc:  # click's usage errors: a missing option, a bad value
            if not json_output:
                raise  # click prints the usage line and the message, exit code 2
            from ghl_cli.errors import fail_usage

            fail_usage(exc)
        except Exception as exc:
            from ghl_cli.errors import fail

            fail(exc, json_output=json_output)


def _show_version(value: bool) -> None:
    if value:
        from ghl_core.version import version

        typer.echo(f"ghl {version()}")
        raise typer.Exit


app = typer.Typer(
    name="ghl",
    cls=Ghl,
    help=(
        "Run and administer a self-hosted GHL-style CRM platform. Every command takes --json for "
        "machine-readable output."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


@app.callback()
def ghl(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="Print the version and exit."),
    ] = False,
) -> None:
    # Options of `ghl` itself; the help above is the app's.
    pass


def run() -> None:
    app()


if __name__ == "__main__":
    run()
