"""`ghl worker`: runs background jobs (event delivery, webhooks, imports...) from the shared database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ghl_cli.errors import reported
from ghl_cli.options import JsonOption
from ghl_cli.output import Output
from ghl_cli.session import database, run_with_container

if TYPE_CHECKING:
    from ghl_adapters.container import Container


def split_queues(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()] or None


async def _run(c: Container, concurrency: int | None, queues: list[str] | None, name: str | None) -> None:
    from ghl_adapters.jobs.worker import run_worker
    from ghl_adapters.runtime import freeze_heap

    freeze_heap()
    await run_worker(c, concurrency=concurrency, queues=queues, name=name)


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, max=256, help="Jobs run at once [default: GHL_WORKER_CONCURRENCY or 8]."
        ),
    ] = None,
    queues: Annotated[
        list[str] | None,
        typer.Option(
            "--queues",
            help="Comma-separated queues to take jobs from, e.g. webhooks,events (repeatable) "
            "[default: all].",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name for this worker in the logs.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Run a job worker until stopped (Ctrl-C or SIGTERM).

    Any number of workers, on any number of machines, share the queue through the database. A stopped
    worker finishes its running jobs (for up to GHL_JOBS_SHUTDOWN_SECONDS) or hands them back; the jobs of
    a worker that was killed are taken up again once it has been silent for
    GHL_JOBS_STALLED_AFTER_SECONDS. `ghl serve` also runs one in its own process unless
    GHL_SERVE_WORKER=0."""
    from ghl_adapters.observability import configure_logging_from
    from ghl_adapters.settings import load_settings

    output = Output(json=json_output)
    chosen = split_queues(queues)
    with reported(output):
        settings = load_settings()
    configure_logging_from(settings, force_json=json_output)
    with reported(output), database(output, settings) as handle:
        if output.json:
            output.document({"status": "starting", "queues": chosen, "database": handle.description})
        else:
            output.note(
                f"Worker starting on {', '.join(chosen) if chosen else 'every queue'} "
                f"({handle.description}). Ctrl-C stops it."
            )
        run_with_container(
            settings,
            handle,
            lambda c: _run(c, concurrency=concurrency, queues=chosen, name=name),
        )
