"""SQL tables and repositories of workflows, their versions, enrollments and the execution ledger."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    Row,
    Table,
    Text,
    bindparam,
    cast,
    exists,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.workflows.models import (
    RUNNING,
    Enrollment,
    EnrollmentStatus,
    StepRun,
    StepRunStatus,
    Workflow,
    WorkflowStatus,
    WorkflowVersion,
)

from .tables import _stamps, _ts, _uuid, metadata

workflows = Table(
    "workflows",
    metadata,
    _uuid("id", True),
    _uuid("location_id", nullable=False),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("draft", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("hook_token_hash", Text),
    *_stamps(),
)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    _uuid("workflow_id", True),
    Column("version", Integer, primary_key=True),
    _uuid("location_id", nullable=False),
    Column("definition", JSONB, nullable=False),
    _ts("published_at", False),
    _uuid("published_by"),
)

workflow_enrollments = Table(
    "workflow_enrollments",
    metadata,
    _uuid("id", True),
    _uuid("location_id", nullable=False),
    _uuid("workflow_id", nullable=False),
    Column("version", Integer, nullable=False),
    _uuid("contact_id", nullable=False),
    Column("status", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("step_id", Text),
    Column("tick", Integer, nullable=False),
    _ts("wake_at"),
    # none_as_null: None is SQL NULL ("not waiting for an event"), not the JSON value null.
    Column("waiting_for", JSONB(none_as_null=True)),
    Column("cause", Text),
    _uuid("opportunity_id"),
    Column("outputs", JSONB, nullable=False),
    Column("exclusive", Boolean, nullable=False),
    _ts("started_at", False),
    _ts("updated_at", False),
    _ts("finished_at"),
    Column("reason", Text),
)

workflow_step_runs = Table(
    "workflow_step_runs",
    metadata,
    _uuid("enrollment_id", True),
    Column("step_id", Text, primary_key=True),
    Column("tick", Integer, primary_key=True),
    _uuid("location_id", nullable=False),
    _uuid("workflow_id", nullable=False),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("output", JSONB(none_as_null=True)),
    Column("error", Text),
    _ts("started_at", False),
    _ts("finished_at"),
)

_WORKFLOW_COLUMNS = (
    "location_id",
    "name",
    "draft",
    "version",
    "hook_token_hash",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
)
_ENROLLMENT_COLUMNS = (
    "location_id",
    "workflow_id",
    "version",
    "contact_id",
    "started_at",
    "updated_at",
    "trigger",
    "step_id",
    "tick",
    "wake_at",
    "waiting_for",
    "cause",
    "opportunity_id",
    "outputs",
    "finished_at",
    "reason",
)
_STEP_RESULT_COLUMNS = ("outcome", "detail", "output", "error", "finished_at")

# The statements a step job runs for every step, built once: SQLAlchemy finds their compiled form in its
# cache without building and coercing a new construct for each call.
_GET_ENROLLMENT = select(workflow_enrollments).where(workflow_enrollments.c.id == bindparam("enrollment_id"))
_LOCK_ENROLLMENT = _GET_ENROLLMENT.with_for_update()
_UPDATE_ENROLLMENT = update(workflow_enrollments).where(
    workflow_enrollments.c.id == bindparam("enrollment_id")
)
_ADD_STEPS = insert(workflow_step_runs).on_conflict_do_nothing()
_RUNNING = sorted(s.value for s in RUNNING)


def _utc(value: datetime) -> datetime:
    # The session's time zone decides the offset psycopg answers with; the domain always sees UTC.
    return value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _after(page: PageRequest) -> tuple[datetime, uuid.UUID] | None:
    if page.after is None:
        return None
    try:
        at, ident = page.after
        return datetime.fromisoformat(at), uuid.UUID(ident)
    except ValueError:
        raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None


def _workflow(row: Row[Any]) -> Workflow:
    values = {c: getattr(row, c) for c in _WORKFLOW_COLUMNS}
    for c in ("created_at", "updated_at", "deleted_at"):
        values[c] = _utc_or_none(values[c])
    values["draft"] = dict(values["draft"] or {})
    return Workflow(id=row.id, status=WorkflowStatus(row.status), **values)


def _version(row: Row[Any]) -> WorkflowVersion:
    return WorkflowVersion(
        workflow_id=row.workflow_id,
        location_id=row.location_id,
        version=row.version,
        definition=dict(row.definition or {}),
        published_at=_utc(row.published_at),
        published_by=row.published_by,
    )


def _enrollment(row: Row[Any]) -> Enrollment:
    values = {c: getattr(row, c) for c in _ENROLLMENT_COLUMNS}
    for c in ("started_at", "updated_at", "wake_at", "finished_at"):
        values[c] = _utc_or_none(values[c])
    values["outputs"] = dict(values["outputs"] or {})
    if values["waiting_for"] is not None:
        values["waiting_for"] = dict(values["waiting_for"])
    return Enrollment(id=row.id, status=EnrollmentStatus(row.status), **values)


def _step_run(row: Row[Any]) -> StepRun:
    return StepRun(
        enrollment_id=row.enrollment_id,
        location_id=row.location_id,
        workflow_id=row.workflow_id,
        step_id=row.step_id,
        tick=row.tick,
        type=row.type,
        status=StepRunStatus(row.status),
        started_at=_utc(row.started_at),
        outcome=row.outcome,
        detail=row.detail,
        output=dict(row.output) if row.output is not None else None,
        error=row.error,
        finished_at=_utc_or_none(row.finished_at),
    )


def _enrollment_values(enrollment: Enrollment) -> dict[str, Any]:
    values = {c: getattr(enrollment, c) for c in _ENROLLMENT_COLUMNS}
    values["status"] = enrollment.status.value
    return values


def _step_values(run: StepRun) -> dict[str, Any]:
    return {
        "enrollment_id": run.enrollment_id,
        "step_id": run.step_id,
        "tick": run.tick,
        "location_id": run.location_id,
        "workflow_id": run.workflow_id,
        "type": run.type,
        "status": run.status.value,
        "started_at": run.started_at,
        **{c: getattr(run, c) for c in _STEP_RESULT_COLUMNS},
    }


class SqlWorkflowRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, workflow: Workflow) -> None:
        values = {c: getattr(workflow, c) for c in _WORKFLOW_COLUMNS}
        await self._c.execute(
            insert(workflows).values(id=workflow.id, status=workflow.status.value, **values)
        )

    async def get(self, workflow_id: uuid.UUID, *, lock: bool = False) -> Workflow | None:
        query = select(workflows).where(workflows.c.id == workflow_id)
        if lock:
            query = query.with_for_update()
        row = (await self._c.execute(query)).first()
        return _workflow(row) if row else None

    async def update(self, workflow: Workflow) -> None:
        values = {c: getattr(workflow, c) for c in _WORKFLOW_COLUMNS}
        await self._c.execute(
            update(workflows)
            .where(workflows.c.id == workflow.id)
            .values(status=workflow.status.value, **values)
        )

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Workflow]:
        w = workflows.c
        query = select(workflows).where(w.location_id == location_id, w.deleted_at.is_(None))
        after = _after(page)
        if after is not None:
            query = query.where(tuple_(w.created_at, w.id) < after)
        query = query.order_by(w.created_at.desc(), w.id.desc()).limit(page.limit + 1)
        rows = [_workflow(r) for r in (await self._c.execute(query)).all()]
        return page_from_rows(rows, page.limit, lambda x: (x.created_at.isoformat(), str(x.id)))

    async def add_version(self, version: WorkflowVersion) -> None:
        await self._c.execute(
            insert(workflow_versions).values(
                workflow_id=version.workflow_id,
                version=version.version,
                location_id=version.location_id,
                definition=version.definition,
                published_at=version.published_at,
                published_by=version.published_by,
            )
        )

    async def version(self, workflow_id: uuid.UUID, version: int) -> WorkflowVersion | None:
        v = workflow_versions.c
        row = (
            await self._c.execute(
                select(workflow_versions).where(v.workflow_id == workflow_id, v.version == version)
            )
        ).first()
        return _version(row) if row else None

    async def versions(self, workflow_id: uuid.UUID) -> builtins.list[WorkflowVersion]:
        v = workflow_versions.c
        query = select(workflow_versions).where(v.workflow_id == workflow_id).order_by(v.version.desc())
        return [_version(r) for r in (await self._c.execute(query)).all()]

    async def published(self, location_id: uuid.UUID) -> builtins.list[WorkflowVersion]:
        w, v = workflows.c, workflow_versions.c
        query = (
            select(workflow_versions)
            .join(workflows, (w.id == v.workflow_id) & (w.version == v.version))
            .where(
                w.location_id == location_id,
                w.status == WorkflowStatus.PUBLISHED.value,
                w.deleted_at.is_(None),
            )
            .order_by(w.created_at, w.id)
        )
        return [_version(r) for r in (await self._c.execute(query)).all()]


class SqlEnrollmentRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, enrollment: Enrollment) -> bool:
        e = workflow_enrollments
        query = (
            insert(e)
            .values(id=enrollment.id, exclusive=False, **_enrollment_values(enrollment))
            .on_conflict_do_nothing()
            .returning(e.c.id)
        )
        return (await self._c.execute(query)).first() is not None

    async def add_exclusive(self, enrollment: Enrollment) -> bool:
        e = workflow_enrollments
        values = {"id": enrollment.id, "exclusive": True, **_enrollment_values(enrollment)}
        # The partial unique index settles races between exclusive enrollments; NOT EXISTS also refuses
        # while a running enrollment made by `add` (not covered by that index) is there.
        running = (
            exists()
            .where(
                e.c.workflow_id == enrollment.workflow_id,
                e.c.contact_id == enrollment.contact_id,
                e.c.status.in_(_RUNNING),
            )
            .correlate(None)
        )
        # Typed casts: a bare parameter in a SELECT list would be taken as text.
        source = select(*(cast(literal(v, e.c[k].type), e.c[k].type).label(k) for k, v in values.items()))
        query = (
            insert(e)
            .from_select(list(values), source.where(~running))
            .on_conflict_do_nothing()
            .returning(e.c.id)
        )
        return (await self._c.execute(query)).first() is not None

    async def get(self, enrollment_id: uuid.UUID, *, lock: bool = False) -> Enrollment | None:
        query = _LOCK_ENROLLMENT if lock else _GET_ENROLLMENT
        row = (await self._c.execute(query, {"enrollment_id": enrollment_id})).first()
        return _enrollment(row) if row else None

    async def update(self, enrollment: Enrollment) -> None:
        await self._c.execute(
            _UPDATE_ENROLLMENT, {"enrollment_id": enrollment.id, **_enrollment_values(enrollment)}
        )

    async def running_for_contact(
        self, location_id: uuid.UUID, contact_id: uuid.UUID
    ) -> builtins.list[Enrollment]:
        e = workflow_enrollments.c
        query = (
            select(workflow_enrollments)
            .where(e.location_id == location_id, e.contact_id == contact_id, e.status.in_(_RUNNING))
            .order_by(e.id)
            .with_for_update()
        )
        return [_enrollment(r) for r in (await self._c.execute(query)).all()]

    async def running_in_workflow(self, workflow_id: uuid.UUID, contact_id: uuid.UUID) -> Enrollment | None:
        e = workflow_enrollments.c
        query = (
            select(workflow_enrollments)
            .where(e.workflow_id == workflow_id, e.contact_id == contact_id, e.status.in_(_RUNNING))
            .order_by(e.started_at.desc(), e.id.desc())
            .limit(1)
            .with_for_update()
        )
        row = (await self._c.execute(query)).first()
        return _enrollment(row) if row else None

    async def stop_all(
        self,
        *,
        workflow_id: uuid.UUID | None = None,
        contact_id: uuid.UUID | None = None,
        location_id: uuid.UUID,
        reason: str,
        now: datetime,
    ) -> int:
        if workflow_id is None and contact_id is None:
            raise ValueError("stop_all needs a workflow, a contact or both")
        e = workflow_enrollments.c
        query = update(workflow_enrollments).where(e.location_id == location_id, e.status.in_(_RUNNING))
        if workflow_id is not None:
            query = query.where(e.workflow_id == workflow_id)
        if contact_id is not None:
            query = query.where(e.contact_id == contact_id)
        # A new tick makes every step job already queued for these enrollments a no-op.
        result = await self._c.execute(
            query.values(
                status=EnrollmentStatus.STOPPED.value,
                reason=reason,
                step_id=None,
                wake_at=None,
                waiting_for=None,
                tick=e.tick + 1,
                finished_at=now,
                updated_at=now,
            )
        )
        return int(result.rowcount or 0)

    async def list(
        self,
        workflow_id: uuid.UUID,
        page: PageRequest,
        *,
        status: EnrollmentStatus | None = None,
        contact_id: uuid.UUID | None = None,
    ) -> Page[Enrollment]:
        e = workflow_enrollments.c
        query = select(workflow_enrollments).where(e.workflow_id == workflow_id)
        if status is not None:
            query = query.where(e.status == status.value)
        if contact_id is not None:
            query = query.where(e.contact_id == contact_id)
        after = _after(page)
        if after is not None:
            query = query.where(tuple_(e.started_at, e.id) < after)
        query = query.order_by(e.started_at.desc(), e.id.desc()).limit(page.limit + 1)
        rows = [_enrollment(r) for r in (await self._c.execute(query)).all()]
        return page_from_rows(rows, page.limit, lambda x: (x.started_at.isoformat(), str(x.id)))

    async def counts(self, workflow_id: uuid.UUID) -> dict[EnrollmentStatus, int]:
        e = workflow_enrollments.c
        rows = await self._c.execute(
            select(e.status, func.count()).where(e.workflow_id == workflow_id).group_by(e.status)
        )
        found = {EnrollmentStatus(s): int(n) for s, n in rows.all()}
        # Every status is answered, zero when none, so callers can index without a default.
        return {s: found.get(s, 0) for s in EnrollmentStatus}

    async def claim_step(self, run: StepRun) -> StepRun | None:
        s = workflow_step_runs
        values = _step_values(run)
        values["status"] = StepRunStatus.RUNNING.value
        inserted = (
            await self._c.execute(
                insert(s).values(**values).on_conflict_do_nothing().returning(s.c.enrollment_id)
            )
        ).first()
        if inserted is not None:
            return None
        # Read committed: this statement sees the row whose conflict stopped the insert.
        row = (
            await self._c.execute(
                select(s).where(
                    s.c.enrollment_id == run.enrollment_id, s.c.step_id == run.step_id, s.c.tick == run.tick
                )
            )
        ).one()
        return _step_run(row)

    async def finish_step(self, run: StepRun) -> None:
        s = workflow_step_runs.c
        await self._c.execute(
            update(workflow_step_runs)
            .where(s.enrollment_id == run.enrollment_id, s.step_id == run.step_id, s.tick == run.tick)
            .values(status=run.status.value, **{c: getattr(run, c) for c in _STEP_RESULT_COLUMNS})
        )

    async def add_steps(self, runs: Sequence[StepRun]) -> None:
        if not runs:
            return
        if len(runs) == 1:
            await self._c.execute(_ADD_STEPS, _step_values(runs[0]))
        else:  # one pipelined batch
            await self._c.execute(_ADD_STEPS, [_step_values(r) for r in runs])

    async def history(self, enrollment_id: uuid.UUID) -> builtins.list[StepRun]:
        s = workflow_step_runs.c
        query = (
            select(workflow_step_runs)
            .where(s.enrollment_id == enrollment_id)
            .order_by(s.tick, s.started_at, s.step_id)
        )
        return [_step_run(r) for r in (await self._c.execute(query)).all()]

    async def step_counts(self, workflow_id: uuid.UUID) -> dict[str, dict[str, int]]:
        s = workflow_step_runs.c
        rows = await self._c.execute(
            select(s.step_id, s.status, func.count())
            .where(s.workflow_id == workflow_id)
            .group_by(s.step_id, s.status)
        )
        counts: dict[str, dict[str, int]] = {}
        for step_id, status, n in rows.all():
            counts.setdefault(step_id, {})[status] = int(n)
        return counts
