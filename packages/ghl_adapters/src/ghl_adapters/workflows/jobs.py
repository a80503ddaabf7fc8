"""The `workflows.run` job (an enrollment's due steps, see WorkflowEngine) and the periodic
`workflows.reminders` job (birthday and custom-date triggers, see WorkflowEngine.remind). (The `workflows`
consumer of domain events, for triggers, event waits, goals and stop on reply, is
WorkflowEngine.handle_events itself, see jobs/catalog.py.)"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ghl_core.jobs.errors import public_error
from ghl_core.jobs.ports import JobContext
from ghl_core.workflows.engine import STEP_KIND, WorkflowEngine
from ghl_core.workflows.models import WorkflowStatus

from ..jobs.kinds import JobKind, RetrySchedule, exponential
from ..sql.tables import locations
from ..sql.workflows import workflow_versions, workflows

log = structlog.get_logger("ghl.workflows")


def workflow_run_kind(*, engine: WorkflowEngine) -> JobKind:
    async def run_enrollment(ctx: JobContext, args: dict[str, Any]) -> None:
        if ctx.location_id is None:
            raise ValueError("a workflows.run job names its location")
        enrollment_id, tick = uuid.UUID(str(args["enrollment_id"])), int(args["tick"])
        try:
            await engine.run(ctx.location_id, enrollment_id, tick, retry=ctx.attempt > 1)
        except Exception as exc:
            if (
                ctx.final_attempt
            ):  # nothing will run it again: say so on the enrollment (the admin may read it)
                await engine.give_up(ctx.location_id, enrollment_id, tick, public_error(exc, ctx.error_id))
            raise

    # A step that raised (the database went away, a provider refused for now) is retried for about a day;
    # its ledger keeps a retry from doing twice what the first attempt committed.
    return JobKind(STEP_KIND, run_enrollment, RetrySchedule(exponential(12, first=2.0, factor=2.5)))


REMINDERS_KIND = "workflows.reminders"
REMINDERS_CRON = "*/5 * * * *"
REMINDER_TRIGGERS = ("birthday_reminder", "custom_date_reminder")


def reminder_locations_query() -> Select[uuid.UUID]:
    """The live locations whose published, not deleted workflows have a reminder trigger in their current
    version (any other location has nothing to remind of)."""
    w, v, loc = workflows.c, workflow_versions.c, locations.c
    triggers = v.definition["triggers"]
    return (
        select(w.location_id)
        .join(workflow_versions, and_(v.workflow_id == w.id, v.version == w.version))
        .join(locations, loc.id == w.location_id)
        .where(
            w.status == WorkflowStatus.PUBLISHED.value,
            w.deleted_at.is_(None),
            loc.deleted_at.is_(None),
            or_(*(triggers.contains([{"type": t}]) for t in REMINDER_TRIGGERS)),
        )
        .distinct()
        .order_by(w.location_id)
    )


class RemindersFailed(RuntimeError):
    """Some locations' reminders failed (the others ran); the job fails so an operator sees it."""


async def send_reminders(engine: WorkflowEngine, owner: AsyncEngine) -> None:
    """Each location with a reminder trigger, in turn; ``owner`` is the owner connection's engine, which
    reads across every location (row-level security lets it)."""
    async with owner.connect() as conn:
        location_ids = list((await conn.execute(reminder_locations_query())).scalars())
    failed: list[tuple[uuid.UUID, Exception]] = []
    for location_id in location_ids:
        try:
            started = await engine.remind(location_id)
        except Exception as exc:  # one location's trouble must not hold back the others' reminders
            log.exception("workflow_reminders_failed", location_id=str(location_id))
            failed.append((location_id, exc))
            continue
        if started:
            log.info("workflow_reminders_enrolled", location_id=str(location_id), enrolled=started)
    if failed:
        ids = ", ".join(str(location_id) for location_id, _ in failed)
        raise RemindersFailed(
            f"reminders failed for {len(failed)} of {len(location_ids)} locations: {ids}"
        ) from failed[0][1]


def reminders_kind(*, engine: WorkflowEngine, owner: AsyncEngine) -> JobKind:
    async def remind(ctx: JobContext, args: dict[str, Any]) -> None:
        await send_reminders(engine, owner)

    # No retry: the next run, minutes later, is the retry (a reminder due today is still due then, and each
    # (workflow, trigger, contact, day) enrolls once however often it runs).
    return JobKind(REMINDERS_KIND, remind, RetrySchedule([]))
