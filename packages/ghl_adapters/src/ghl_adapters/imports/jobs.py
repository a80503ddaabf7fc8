"""The `contacts.import` job: runs or resumes a durable contact import (ContactImportRunner.run_stored) as
the caller who uploaded it, under the upload request's id."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from ghl_core.contacts.import_jobs import IMPORT_KIND, actor_of
from ghl_core.jobs.ports import JobContext

from ..jobs.kinds import JobKind, RetrySchedule, exponential
from .runner import ContactImportRunner


def import_kind(*, runner: ContactImportRunner) -> JobKind:
    async def run_import(ctx: JobContext, args: dict[str, Any]) -> None:
        actor = actor_of(dict(args["actor"]))
        import_id = uuid.UUID(str(args["import_id"]))
        context = {"request_id": str(args["request_id"])} if args.get("request_id") else {}
        with structlog.contextvars.bound_contextvars(**context):
            await runner.run_stored(actor, import_id)

    # A failure the import could not record (the database gone) comes back, resuming, for about an hour.
    return JobKind(IMPORT_KIND, run_import, RetrySchedule(exponential(8, first=5.0, factor=2.0)))
