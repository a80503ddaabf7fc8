"""How failures reach an operator: a clear message (or `{"error": {...}}` with --json) and exit code 1.
Typer keeps exit code 2 for usage errors.

Every failure ends here, never as a traceback: commands wrap their work in `reported`, and the root
group hands anything that still escapes to `fail` (see ghl_cli.main). A failure the code does not expect
is a bug: one line naming it and a reference, exit code 70 (EX_SOFTWARE), and the traceback saved to a
private file under the temporary folder with that reference in its name. GHL_DEBUG=1 lets it through to
the terminal instead.

The driver and adapter exception types are imported when a failure is examined, not with this module:
every command imports it, and its start-up must not pay for SQLAlchemy."""

from __future__ import annotations

import os
import tempfile
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from ghl_core.shared.errors import DomainError, FieldError, ValidationFailed

if TYPE_CHECKING:
    from ghl_cli.output import Output

EXIT_FAILURE = 1
EXIT_INTERNAL = 70
DEBUG_VARIABLE = "GHL_DEBUG"


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


def _operational() -> tuple[type[BaseException], ...]:
    """Failures of the installation an operator can act on (settings, the database), besides ours."""
    import psycopg
    from sqlalchemy.exc import OperationalError as SqlOperationalError

    from ghl_adapters.settings import SettingsError
    from ghl_adapters.sql.embedded import EmbeddedPostgresError

    return (SettingsError, EmbeddedPostgresError, SqlOperationalError, psycopg.OperationalError)


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
    if isinstance(exc, CliError):
        return {"code": exc.code, "title": exc.code.replace("_", " ").capitalize(), "detail": exc.detail}
    from ghl_adapters.settings import SettingsError
    from ghl_adapters.sql.embedded import EmbeddedPostgresError

    if isinstance(exc, SettingsError):
        return {"code": "invalid_settings", "title": "Invalid settings", "detail": str(exc)}
    if isinstance(exc, EmbeddedPostgresError):
        return {"code": "database_unavailable", "title": "Embedded PostgreSQL failed", "detail": str(exc)}
    # Connection failures: the driver's first line says what happened, without the SQL around it.
    first_line = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0:1]
    return {
        "code": "database_unavailable",
        "title": "Database unavailable",
        "detail": first_line[0] if first_line else type(exc).__name__,
    }


def report(output: Output, exc: BaseException, doc: dict[str, Any] | None = None) -> None:
    from rich.markup import escape

    doc = doc if doc is not None else error_document(exc)
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
    except (DomainError, CliError) as exc:
        report(output, exc)
        raise typer.Exit(EXIT_FAILURE) from None
    except Exception as exc:
        if not isinstance(exc, _operational()):
            raise
        report(output, exc)
        raise typer.Exit(EXIT_FAILURE) from None


def is_known(exc: BaseException) -> bool:
    """A failure with a message fit for the operator as it is."""
    if isinstance(exc, DomainError | CliError | OSError | UnicodeError):
        return True
    try:
        return isinstance(exc, _operational())
    except ImportError:  # a broken installation: the failure is examined as an unexpected one
        return False


def known_document(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, UnicodeError):
        return {"code": "invalid_encoding", "title": "Cannot decode the input", "detail": str(exc)}
    if isinstance(exc, OSError):
        # "[Errno 2] No such file or directory: 'x.csv'" without the errno: the words say it.
        where = f": {exc.filename}" if exc.filename else ""
        detail = f"{exc.strerror}{where}" if exc.strerror else str(exc) or type(exc).__name__
        return {"code": "os_error", "title": "Operating system error", "detail": detail}
    return error_document(exc)


def _save_traceback(reference: str, exc: BaseException) -> Path | None:
    """The traceback in a file only this user can read (it may quote data); None if it cannot be written.
    The folder is refused unless it is ours, and the file is new (O_EXCL), so nobody can read it through a
    folder or a link they made in the shared temporary folder."""
    folder = Path(tempfile.gettempdir()) / "ghl-errors"
    path = folder / f"{reference}.txt"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
        if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o077):
            return None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path


def unexpected_document(exc: BaseException) -> dict[str, Any]:
    reference = uuid.uuid4().hex[:12]
    saved = _save_traceback(reference, exc)
    where = f"the traceback is in {saved}" if saved else "the traceback could not be saved"
    return {
        "code": "internal_error",
        "title": "Unexpected error",
        "detail": f"{type(exc).__name__} stopped the command (reference {reference}); {where}; "
        f"{DEBUG_VARIABLE}=1 prints it here",
        "reference": reference,
        "traceback_file": str(saved) if saved else None,
    }


def fail_usage(exc: typer.TyperException) -> NoReturn:
    """A usage error (click's) as the JSON error --json promises, with click's exit code (2)."""
    from ghl_cli.output import Output

    doc = {"code": "usage_error", "title": "Invalid usage", "detail": exc.format_message()}
    Output(json=True).document({"error": doc})
    raise typer.Exit(getattr(exc, "exit_code", 2)) from None


def fail(exc: Exception, *, json_output: bool) -> NoReturn:
    """The last word on a failure no command turned into a message; re-raised under GHL_DEBUG=1."""
    from ghl_cli.output import Output

    if os.environ.get(DEBUG_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}:
        raise exc
    output = Output(json=json_output)
    if is_known(exc):
        report(output, exc, known_document(exc))
        raise typer.Exit(EXIT_FAILURE) from None
    doc = unexpected_document(exc)
    if output.json:
        output.document({"error": doc})
    else:
        output.err.print(f"Error: {doc['detail']}.", markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_INTERNAL) from None
