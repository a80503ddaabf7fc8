"""`ghl jobs`: what the job engine holds, what failed and why, and retrying it by hand.

Operators see a failed job's `detail` (the exception's own text, SQL included) beside its `error` (what
the job's location admin reads: a generic sentence or a domain message, with the error id that also
names the log line). Tables show the detail; --json gives both."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghl_adapters.jobs.statuses import STATUSES
from ghl_cli.errors import reported
from ghl_cli.options import JsonOption, LimitOption
from ghl_cli.output import Output
from ghl_cli.session import with_services

if TYPE_CHECKING:
    from ghl_adapters.container import Container
    from ghl_adapters.jobs.admin import JobRow

app = typer.Typer(help="Inspect background jobs; list the failed ones and retry them.")

COLUMNS = ("id", "kind", "queue", "status", "attempts", "scheduled_at", "detail")
_SHORT = 300  # characters of an error a listing shows (`ghl jobs show` shows it whole)
KindOption = Annotated[
    str | None, typer.Option("--kind", help="Only jobs of this kind, e.g. webhooks.deliver.")
]
QueueOption = Annotated[str | None, typer.Option("--queue", help="Only jobs of this queue.")]
LocationOption = Annotated[
    uuid.UUID | None, typer.Option("--location", help="Only jobs that belong to this location.")
]
BeforeOption = Annotated[
    int | None, typer.Option("--before", help="Only jobs with a smaller id (to page back).")
]


def job_view(job: JobRow) -> dict[str, Any]:
    view = asdict(job)
    for key in ("error", "detail"):
        if view[key] and len(view[key]) > _SHORT:
            view[key] = view[key][:_SHORT] + "…"
    return view


def _show_list(output: Output, title: str, jobs: list[JobRow]) -> None:
    rows = [job_view(j) for j in jobs]
    next_before = str(jobs[-1].id) if jobs else None
    if output.json:
        output.document({"items": rows, "next_before": next_before})
        return
    output.page(title, COLUMNS, rows, None)
    if next_before and rows:
        output.note(f"[dim]Older: add --before {next_before}[/dim]")


@app.command("list")
def list_jobs(
    status: Annotated[
        str | None, typer.Option("--status", help=f"Only jobs in this state: {', '.join(STATUSES)}.")
    ] = None,
    kind: KindOption = None,
    queue: QueueOption = None,
    location: LocationOption = None,
    before: BeforeOption = None,
    limit: LimitOption = 50,
    json_output: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    output = Output(json=json_output)
    with reported(output):
        jobs = with_services(
            output,
            lambda c: c.job_admin().list(
                status=status,
                kind=kind,
                queue=queue,
                location=str(location) if location else None,
                before=before,
                limit=limit,
            ),
        )
    _show_list(output, "Jobs", jobs)


@app.command("failed")
def failed(
    kind: KindOption = None,
    queue: QueueOption = None,
    location: LocationOption = None,
    before: BeforeOption = None,
    limit: LimitOption = 50,
    json_output: JsonOption = False,
) -> None:
    """List the jobs that used up their retries, with their last error's detail."""
    output = Output(json=json_output)
    with reported(output):
        jobs = with_services(
            output,
            lambda c: c.job_admin().list(
                status="failed",
                kind=kind,
                queue=queue,
                location=str(location) if location else None,
                before=before,
                limit=limit,
            ),
        )
    _show_list(output, "Failed jobs", jobs)


@app.command("show")
def show(
    job_id: Annotated[int, typer.Argument(help="The job's id.")],
    json_output: JsonOption = False,
) -> None:
    """Show one job with its arguments and last error."""
    output = Output(json=json_output)
    with reported(output):
        job = with_services(output, lambda c: c.job_admin().get(job_id))
    output.record(f"Job {job_id}", asdict(job))


@app.command("retry")
def retry(
    job_id: Annotated[int, typer.Argument(help="The failed job's id.")],
    json_output: JsonOption = False,
) -> None:
    """Put a failed job back in the queue for one more attempt, now."""
    output = Output(json=json_output)
    with reported(output):
        job = with_services(output, lambda c: c.job_admin().retry(job_id))
    output.record(f"Job {job_id} queued again", job_view(job))


@app.command("stats")
def stats(json_output: JsonOption = False) -> None:
    """Count jobs by queue and state."""
    output = Output(json=json_output)
    with reported(output):
        counts = with_services(output, lambda c: c.job_admin().stats())
    if output.json:
        output.document({"items": counts})
        return
    output.table("Jobs by queue and state", ("queue", "status", "count"), counts)


async def _recover(container: Container) -> int:
    from ghl_adapters.jobs.worker import recover_stalled

    app_ = container.job_app()
    async with app_.open_async():
        return await recover_stalled(app_, container.settings().jobs_stalled_after_seconds)


@app.command("recover")
def recover(json_output: JsonOption = False) -> None:
    """Hand back now the running jobs of workers that stopped sending heartbeats (workers do it on
    their own every GHL_JOBS_STALLED_AFTER_SECONDS / 2)."""
    output = Output(json=json_output)
    with reported(output):
        count = with_services(output, _recover)
    if output.json:
        output.document({"recovered": count})
    else:
        output.note(f"{count} stalled job(s) put back in the queue.")
