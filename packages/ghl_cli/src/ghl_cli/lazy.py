"""Sub-commands loaded only when used.

`ghl --help` and tab completion used to import every command module, and with them the container,
SQLAlchemy, procrastinate and the whole core: seconds before the first line. Here the root group knows
each sub-command by name and one-line summary only; a command's module is imported when that command is
run, asked for its help or completed into. The module then registers with Typer exactly as
`app.add_typer(module.app, name=...)` (or `app.command(name)(function)`) would have.

The summaries written here are what `ghl --help` and completion show; a test checks each against the
first sentence of the loaded command's own help, so the two cannot drift apart.

Typer vendors click as `typer._click`: its completion item and, for type checking, its classes are
named from there."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer._click.shell_completion import CompletionItem
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter


@dataclass(frozen=True)
class LazyCommand:
    """`module:attribute` is a `typer.Typer` (a group of commands) or a function (one command)."""

    target: str
    summary: str

    def load(self, name: str, parent: TyperGroup) -> Command:
        module_name, _, attribute = self.target.partition(":")
        found: Any = getattr(importlib.import_module(module_name), attribute)
        if isinstance(found, typer.Typer):
            return get_group_from_info(
                TyperInfo(found, name=name, cls=QuickGroup),
                pretty_exceptions_short=True,
                suggest_commands=parent.suggest_commands,
                rich_markup_mode=parent.rich_markup_mode,
            )
        return get_command_from_info(
            CommandInfo(name=name, callback=found),
            pretty_exceptions_short=True,
            rich_markup_mode=parent.rich_markup_mode,
        )


class QuickGroup(TyperGroup):
    """A group whose unset flags (its --help, the completion flags) are False rather than None. Typer
    builds a pydantic validator for any value that is not already a bool, and importing pydantic costs
    more than all the rest of `ghl --help` or a completion."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        for param in self.get_params(ctx):
            if getattr(param, "is_flag", False) and param.default is None:
                param.default = False
        return super().parse_args(ctx, args)


class LazyGroup(QuickGroup):
    """A group whose sub-commands are `lazy_commands`, in that order, loaded on first use."""

    lazy_commands: ClassVar[Mapping[str, LazyCommand]] = {}

    def list_commands(self, ctx: Context) -> list[str]:
        return [*self.commands, *(name for name in self.lazy_commands if name not in self.commands)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.commands[cmd_name] = self.lazy_commands[cmd_name].load(cmd_name, self)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as exc:  # click's usage error for an unknown command
            # TyperGroup suggests from the commands loaded so far, which here is none of them.
            matches = get_close_matches(args[0], list(self.lazy_commands)) if args else []
            if matches and "Did you mean" not in exc.message:
                suggestions = ", ".join(repr(m) for m in matches)
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise

    def _summaries(self, incomplete: str = "") -> list[tuple[str, str]]:
        return [
            (name, entry.summary) for name, entry in self.lazy_commands.items() if name.startswith(incomplete)
        ]

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = self._summaries()
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: Context, incomplete: str) -> list[CompletionItem]:
        names = [CompletionItem(name, help=summary) for name, summary in self._summaries(incomplete)]
        # The options of the root group itself, as click completes them (skipping TyperGroup's listing,
        # which would load every command to read its help).
        return names + super(TyperGroup, self).shell_complete(ctx, incomplete)
