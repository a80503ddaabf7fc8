"""One command's access to the installation: settings, the database (joining the embedded server a
running `ghl serve` holds, or DATABASE_URL), and a container built once and closed at the end.

The adapters (SQLAlchemy, the container and everything it wires) are imported when a command opens its
session, not when its module is loaded: `ghl X --help` and completion never need them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from ghl_cli.errors import CliError

if TYPE_CHECKING:
    from ghl_adapters.container import Container
    from ghl_adapters.runtime import Database
    from ghl_adapters.settings import Settings
    from ghl_cli.output import Output

T = TypeVar("T")


@contextmanager
def database(output: Output, settings: Settings, *, prepare: bool = True) -> Iterator[Database]:
    """The database, released on the way out. With `prepare`, embedded mode migrates and an external
    database must already be at head."""
    from ghl_adapters.runtime import open_database, prepare_database
    from ghl_adapters.sql.embedded import EmbeddedPostgresError

    message = "Starting the embedded PostgreSQL…" if settings.embedded else "Connecting to the database…"
    with output.status(message):
        handle = open_database(settings)
    try:
        if prepare:
            with output.status("Checking the database schema…"):
                try:
                    prepare_database(settings, handle)
                except EmbeddedPostgresError:
                    raise
                except RuntimeError as exc:
                    # prepare_database's refusal of an external database that is behind the code.
                    raise CliError("database_behind", str(exc)) from None
        yield handle
    finally:
        handle.release()


def run_with_container(settings: Settings, handle: Database, work: Callable[[Container], Awaitable[T]]) -> T:
    from ghl_adapters.container import build_container, close_container

    async def main() -> T:
        container = build_container(settings, handle.url)
        try:
            return await work(container)
        finally:
            await close_container(container)

    return asyncio.run(main())


def with_services(output: Output, work: Callable[[Container], Awaitable[T]]) -> T:
    """Loads settings, opens the database and runs `work` with a container: what most commands need."""
    from ghl_adapters.settings import load_settings

    settings = load_settings()
    with database(output, settings) as handle:
        return run_with_container(settings, handle, work)
