"""How failures reach an operator: a clear message (or `{"error": {...}}` with --json) and exit code 1.
Typer keeps exit code 2 for usage errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import typer
from rich.markup import escape
from sqlalchemy.exc import OperationalError as SqlOperationalError

from ghl_adapters.settings import SettingsError
from ghl_adapters.sql.embedded import EmbeddedPostgresError
from ghl_cli.output import Output
from ghl_core.shared.errors import DomainError, FieldError, ValidationFailed

EXIT_FAILURE = 1


class CliError(Exception):
    """A failure the CLI itself detects (database behind, Redis down, ...)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def with_agency_hint(exc: ValidationFailed) -> ValidationFailed:
    """The service speaks of `agency_id`; an operator needs to hear which option to add."""
    hint = " (pass --agency ID; `ghl agencies list` shows the ids)"
    return ValidationFailed(
        [
            FieldError(e.pointer, e.detail + hint if e.pointer == "/agency_id" else e.detail)
            for e in exc.errors
        ]
    )


def error_document(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ValidationFailed):
        return {
            "code": exc.code,
            "title": exc.title,
            "detail": exc.detail,
            "errors": [{"pointer": e.pointer, "detail": e.detail} for e in exc.errors],
        }
    if isinstance(exc, DomainError):
        return {"code": exc.code, "title": exc.title, "detail": exc.detail}
    if isinstance(exc, SettingsError):
        return {"code": "invalid_settings", "title": "Invalid settings", "detail": str(exc)}
    if isinstance(exc, CliError):
        return {"code": exc.code, "title": exc.code.replace("_", " ").capitalize(), "detail": exc.detail}
    if isinstance(exc, EmbeddedPostgresError):
        return {"code": "database_unavailable", "title": "Embedded PostgreSQL failed", "detail": str(exc)}
    # Connection failures: the driver's first line says what happened, without the SQL around it.
    first_line = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0:1]
    return {
        "code": "database_unavailable",
        "title": "Database unavailable",
        "detail": first_line[0] if first_line else type(exc).__name__,
    }


def report(output: Output, exc: BaseException) -> None:
    doc = error_document(exc)
    if output.json:
        output.document({"error": doc})
        return
    output.err.print(f"[bold red]Error:[/bold red] {escape(doc['title'])}")
    if "errors" in doc:
        for item in doc["errors"]:
            output.err.print(f"  {escape(item['pointer'])}: {escape(item['detail'])}")
    elif doc["detail"] != doc["title"]:
        output.err.print(escape(doc["detail"]))


@contextmanager
def reported(output: Output) -> Iterator[None]:
    """Turns the failures an operator can act on into a message and exit code 1."""
    try:
        yield
    except (
        SettingsError,
        DomainError,
        CliError,
        EmbeddedPostgresError,
        SqlOperationalError,
        psycopg.OperationalError,
    ) as exc:
        report(output, exc)
        raise typer.Exit(EXIT_FAILURE) from None
