"""The ASGI entry point for servers (`ghl serve`, or `uvicorn --factory ghl_http.asgi:create_app_from_env`).

Each server process builds its own container from the environment. In embedded mode it attaches to
the PostgreSQL server already running on GHL_DATA_DIR (started by `ghl serve`) rather than starting one."""

from __future__ import annotations

from litestar import Litestar

from ghl_adapters.container import build_container
from ghl_adapters.jobs.worker import run_worker
from ghl_adapters.observability import configure_logging_from
from ghl_adapters.runtime import freeze_heap, open_database
from ghl_adapters.settings import load_settings
from ghl_http.app import create_app


def create_app_from_env() -> Litestar:
    settings = load_settings()
    configure_logging_from(settings)
    database = open_database(settings)
    container = build_container(settings, database.url)
    # One command for a new user: the server process also runs a job worker unless told not to
    # (GHL_SERVE_WORKER=0, when `ghl worker` processes do the work).
    background = (
        [lambda: run_worker(container, install_signal_handlers=False)] if settings.serve_worker else []
    )
    app = create_app(container, on_shutdown=[database.release], background=background)
    freeze_heap()
    return app
