"""Where a command's results go: one JSON document on stdout with --json, rich tables otherwise.
Progress and errors for people go to stderr, so stdout stays parseable.

rich is imported when something is printed, not with this module, so a command's start-up does not pay
for it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

# Ids are copied and pasted: wrapping them across lines would break that.
_ID_WIDTH = 36


@dataclass
class Output:
    json: bool = False

    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console(highlight=False)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, highlight=False)

    def document(self, doc: object) -> None:
        typer.echo(json.dumps(doc, indent=2, default=str))

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        with self.err.status(message):
            yield

    def secret(self, title: str, secret: str) -> None:
        """A secret shown once, boxed, alone on its line and never wrapped, so it can be copied whole."""
        from rich.panel import Panel

        self.out.print(Panel(secret, title=title, border_style="green", expand=False), soft_wrap=True)

    def note(self, message: str) -> None:
        """A remark for people; silent with --json so stdout holds only the document."""
        if not self.json:
            self.out.print(message)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for name in columns:
            is_id = name == "id" or name.endswith("_id")
            table.add_column(name, no_wrap=is_id, min_width=_ID_WIDTH if is_id else None)
        for row in rows:
            table.add_row(*(_cell(row.get(name)) for name in columns))
        self.out.print(table)

    def page(
        self, title: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]], next_cursor: str | None
    ) -> None:
        """A list, shaped like the HTTP API's: `{"items": [...], "next_cursor": ...}`."""
        if self.json:
            self.document({"items": list(rows), "next_cursor": next_cursor})
            return
        if not rows:
            self.out.print(f"[dim]No {title.lower()}.[/dim]")
            return
        self.table(title, columns, rows)
        if next_cursor:
            self.out.print(f"[dim]More: add --cursor {next_cursor}[/dim]")

    def record(self, title: str, row: Mapping[str, Any]) -> None:
        """One created or changed thing: the JSON of it, or a two-column table."""
        if self.json:
            self.document(row)
            return
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", no_wrap=True)
        for name, value in row.items():
            table.add_row(name, _cell(value))
        self.out.print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    return str(value)
