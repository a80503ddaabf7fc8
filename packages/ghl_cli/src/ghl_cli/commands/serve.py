"""`ghl serve`: the HTTP API, run by uvicorn."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any

import typer

from ghl_cli.errors import reported
from ghl_cli.options import JsonOption
from ghl_cli.output import Output
from ghl_cli.session import database, run_with_container

# An import string, not the app: the shells never import each other, and uvicorn needs one to run
# several worker processes.
APP = "ghl_http.asgi:create_app_from_env"


def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to listen on [default: GHL_HOST or 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port to listen on [default: GHL_PORT or 8000]."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Number of worker processes.")] = 1,
    json_output: JsonOption = False,
) -> None:
    """Start the platform: the HTTP API and its interactive docs.

    Without DATABASE_URL an embedded PostgreSQL keeps its data in GHL_DATA_DIR (default ./.ghl) and is
    migrated at start; the first start creates a demo agency, location and API key. An external
    database must be upgraded first (`ghl db upgrade`)."""
    import uvicorn

    from ghl_adapters.observability import configure_logging_from
    from ghl_adapters.settings import load_settings
    from ghl_cli.startup import Startup, first_start, show

    output = Output(json=json_output)
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    with reported(output):
        settings = load_settings(**overrides)
        settings.record_serving()  # so other `ghl` commands print the URLs this server answers at
    # Decided once, here, so uvicorn's worker processes log the same way (`auto` looks at stdout); --json
    # asks for machine-readable output, the log lines included.
    json_logs = configure_logging_from(settings, force_json=json_output)
    os.environ["GHL_LOG_FORMAT"] = "json" if json_logs else "console"
    with reported(output), database(output, settings) as handle:
        demo = run_with_container(settings, handle, lambda c: first_start(c, settings))
        show(output, Startup(database=handle.description, base_url=settings.base_url, demo=demo))
        # Worker processes read their settings from the environment; these two are not secret and
        # keep their base URL the same as the one printed above.
        os.environ["GHL_HOST"] = settings.host
        os.environ["GHL_PORT"] = str(settings.port)
        # The embedded server stays held by this process while uvicorn runs, and is let go after.
        with stopped_by_signals():
            uvicorn.run(
                APP,
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=workers,
                log_config=None,
                **proxy_options(settings.trusted_proxies),
            )


def proxy_options(trusted_proxies: list[str]) -> dict[str, Any]:
    """uvicorn's own default believes X-Forwarded-For from 127.0.0.1 (or FORWARDED_ALLOW_IPS): with no
    proxy in front any local client, and behind a proxy that passes the header on, any client at all,
    would choose the address the per-IP limits count. Only GHL_TRUSTED_PROXIES is believed; without it
    forwarding headers are ignored."""
    if not trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted_proxies)}


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again. Left to the
    default handler SIGTERM would end the process on the spot and the embedded database would never be
    let go, so both become an exception that unwinds through our clean-up instead."""
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        yield
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
