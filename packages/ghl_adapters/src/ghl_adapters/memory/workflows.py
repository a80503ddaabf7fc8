"""The in-memory repositories of workflows, their published versions, enrollments and the step ledger.

Decisions:
- The SQL unique indexes are rules here, because the engine relies on what they refuse: one enrollment
  per (workflow, cause), so a redelivered trigger never enrolls twice (`add` answers False); with
  `add_exclusive`, also none while the contact has a running (active or waiting) enrollment in the
  workflow; one ledger row per (enrollment, step, tick), so `claim_step` answers the row already there
  and a step's side effect runs once.
- A memory unit of work takes no lock: the `lock` arguments read as plain reads, and rows come back in the
  order the SQL statements lock them (id order), which is what callers may rely on.
- Erasing a contact's history (`contacts.erase_history`) scrubs its enrollments' outputs and its step runs'
  detail, output and error, as the SQL function does; the rows stay for the statistics.
- `stop_all` gives each stopped enrollment a new tick, as the SQL statement does, so step jobs already
  queued for it do nothing.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime

from ghl_core.shared.pagination import Page, PageRequest
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

from .contacts import CONTACT_ERASERS
from .rows import check_write, clone, keyset_page, unique_rows
from .store import MemoryRepository, Table

StepKey = tuple[uuid.UUID, str, int]

WORKFLOWS: Table[uuid.UUID, Workflow] = Table("workflows")
VERSIONS: Table[tuple[uuid.UUID, int], WorkflowVersion] = Table("workflow_versions")
ENROLLMENTS: Table[uuid.UUID, Enrollment] = Table("workflow_enrollments")
STEP_RUNS: Table[StepKey, StepRun] = Table("workflow_step_runs")


def _erase_contact(repo: MemoryRepository, location_id: uuid.UUID, contact_id: uuid.UUID) -> None:
    """What `ghl_erase_contact_history` does to workflow data (migration 0018): the enrollments and step
    runs stay, anonymous; the outputs steps recorded and each run's detail, output and error go."""
    enrollments = repo.rows(ENROLLMENTS)
    erased = {
        e.id for e in enrollments.values() if e.contact_id == contact_id and e.location_id == location_id
    }
    steps = repo.rows(STEP_RUNS)
    for key, run in list(steps.items()):
        if run.location_id == location_id and run.enrollment_id in erased:
            fresh = clone(run)
            fresh.detail = "" if run.detail == "" else "[erased]"
            fresh.output = None
            fresh.error = None if run.error is None else "[erased]"
            steps[key] = fresh
    for enrollment_id in erased:
        if enrollments[enrollment_id].outputs:
            fresh_enrollment = clone(enrollments[enrollment_id])
            fresh_enrollment.outputs = {}
            enrollments[enrollment_id] = fresh_enrollment


CONTACT_ERASERS.append(_erase_contact)


class MemoryWorkflowRepository(MemoryRepository):
    @property
    def _rows(self) -> dict[uuid.UUID, Workflow]:
        return self.rows(WORKFLOWS)

    def _versions(self) -> builtins.list[WorkflowVersion]:
        return [v for v in self.rows(VERSIONS).values() if self.sees_location(v.location_id)]

    async def add(self, workflow: Workflow) -> None:
        check_write(self.scope, workflow.location_id, "workflows")
        if workflow.id in self._rows:
            raise KeyError(f"workflow {workflow.id} exists")
        self._rows[workflow.id] = clone(workflow)

    async def get(self, workflow_id: uuid.UUID, *, lock: bool = False) -> Workflow | None:
        found = self._rows.get(workflow_id)
        return clone(found) if found is not None and self.sees_location(found.location_id) else None

    async def update(self, workflow: Workflow) -> None:
        stored = self._rows.get(workflow.id)
        if stored is None or not self.sees_location(stored.location_id):
            return
        check_write(self.scope, workflow.location_id, "workflows")
        self._rows[workflow.id] = clone(workflow)

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Workflow]:
        rows = [
            w
            for w in self._rows.values()
            if w.location_id == location_id and w.deleted_at is None and self.sees_location(w.location_id)
        ]
        return keyset_page(rows, page, lambda w: w.created_at, descending=True)

    async def add_version(self, version: WorkflowVersion) -> None:
        check_write(self.scope, version.location_id, "workflow_versions")
        key = (version.workflow_id, version.version)
        if key in self.rows(VERSIONS):
            raise KeyError(f"workflow {version.workflow_id} has a version {version.version}")
        self.rows(VERSIONS)[key] = clone(version)

    async def version(self, workflow_id: uuid.UUID, version: int) -> WorkflowVersion | None:
        found = self.rows(VERSIONS).get((workflow_id, version))
        return clone(found) if found is not None and self.sees_location(found.location_id) else None

    async def versions(self, workflow_id: uuid.UUID) -> builtins.list[WorkflowVersion]:
        rows = [v for v in self._versions() if v.workflow_id == workflow_id]
        return [clone(v) for v in sorted(rows, key=lambda v: v.version, reverse=True)]

    async def published(self, location_id: uuid.UUID) -> builtins.list[WorkflowVersion]:
        versions = self.rows(VERSIONS)
        live = sorted(
            (
                w
                for w in self._rows.values()
                if w.location_id == location_id
                and w.status is WorkflowStatus.PUBLISHED
                and w.deleted_at is None
                and self.sees_location(w.location_id)
            ),
            key=lambda w: (w.created_at, w.id),
        )
        found = [versions.get((w.id, w.version)) for w in live]
        return [clone(v) for v in found if v is not None and self.sees_location(v.location_id)]


class MemoryEnrollmentRepository(MemoryRepository):
    @property
    def _rows(self) -> dict[uuid.UUID, Enrollment]:
        return self.rows(ENROLLMENTS)

    def _mine(self) -> builtins.list[Enrollment]:
        return [e for e in self._rows.values() if self.sees_location(e.location_id)]

    def _refused(self, enrollment: Enrollment) -> bool:
        """The primary key and the (workflow, cause) unique index, over every location's rows."""
        if enrollment.id in self._rows:
            return True
        return enrollment.cause is not None and any(
            e.workflow_id == enrollment.workflow_id and e.cause == enrollment.cause
            for e in unique_rows(self, ENROLLMENTS)
        )

    async def add(self, enrollment: Enrollment) -> bool:
        check_write(self.scope, enrollment.location_id, "workflow_enrollments")
        if self._refused(enrollment):
            return False
        self._rows[enrollment.id] = clone(enrollment)
        return True

    async def add_exclusive(self, enrollment: Enrollment) -> bool:
        check_write(self.scope, enrollment.location_id, "workflow_enrollments")
        running = any(
            e.workflow_id == enrollment.workflow_id
            and e.contact_id == enrollment.contact_id
            and e.status in RUNNING
            for e in unique_rows(self, ENROLLMENTS)
        )
        if running or self._refused(enrollment):
            return False
        self._rows[enrollment.id] = clone(enrollment)
        return True

    async def get(self, enrollment_id: uuid.UUID, *, lock: bool = False) -> Enrollment | None:
        found = self._rows.get(enrollment_id)
        return clone(found) if found is not None and self.sees_location(found.location_id) else None

    async def update(self, enrollment: Enrollment) -> None:
        stored = self._rows.get(enrollment.id)
        if stored is None or not self.sees_location(stored.location_id):
            return
        check_write(self.scope, enrollment.location_id, "workflow_enrollments")
        self._rows[enrollment.id] = clone(enrollment)

    async def running_for_contact(
        self, location_id: uuid.UUID, contact_id: uuid.UUID
    ) -> builtins.list[Enrollment]:
        rows = [
            e
            for e in self._mine()
            if e.location_id == location_id and e.contact_id == contact_id and e.status in RUNNING
        ]
        return [clone(e) for e in sorted(rows, key=lambda e: e.id)]

    async def running_in_workflow(self, workflow_id: uuid.UUID, contact_id: uuid.UUID) -> Enrollment | None:
        rows = [
            e
            for e in self._mine()
            if e.workflow_id == workflow_id and e.contact_id == contact_id and e.status in RUNNING
        ]
        return clone(max(rows, key=lambda e: (e.started_at, e.id))) if rows else None

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
        stopped = 0
        for e in self._mine():
            if e.location_id != location_id or e.status not in RUNNING:
                continue
            if (workflow_id is not None and e.workflow_id != workflow_id) or (
                contact_id is not None and e.contact_id != contact_id
            ):
                continue
            fresh = clone(e)
            fresh.status = EnrollmentStatus.STOPPED
            fresh.reason = reason
            fresh.step_id = None
            fresh.wake_at = None
            fresh.waiting_for = None
            fresh.tick = e.tick + 1
            fresh.finished_at = now
            fresh.updated_at = now
            self._rows[e.id] = fresh
            stopped += 1
        return stopped

    async def list(
        self,
        workflow_id: uuid.UUID,
        page: PageRequest,
        *,
        status: EnrollmentStatus | None = None,
        contact_id: uuid.UUID | None = None,
    ) -> Page[Enrollment]:
        rows = [
            e
            for e in self._mine()
            if e.workflow_id == workflow_id
            and (status is None or e.status is status)
            and (contact_id is None or e.contact_id == contact_id)
        ]
        return keyset_page(rows, page, lambda e: e.started_at, descending=True)

    async def counts(self, workflow_id: uuid.UUID) -> dict[EnrollmentStatus, int]:
        counts = dict.fromkeys(EnrollmentStatus, 0)
        for e in self._mine():
            if e.workflow_id == workflow_id:
                counts[e.status] += 1
        return counts

    @property
    def _steps(self) -> dict[StepKey, StepRun]:
        return self.rows(STEP_RUNS)

    async def claim_step(self, run: StepRun) -> StepRun | None:
        check_write(self.scope, run.location_id, "workflow_step_runs")
        key = (run.enrollment_id, run.step_id, run.tick)
        found = self._steps.get(key) or self._uow.store.committed(STEP_RUNS).get(key)
        if found is not None:  # claimed by this transaction, or by one that committed since it began
            return clone(found)
        claimed = clone(run)
        claimed.status = StepRunStatus.RUNNING
        self._steps[key] = claimed
        return None

    async def finish_step(self, run: StepRun) -> None:
        key = (run.enrollment_id, run.step_id, run.tick)
        found = self._steps.get(key)
        if found is None or not self.sees_location(found.location_id):
            return
        fresh = clone(found)
        fresh.status = run.status
        fresh.outcome = run.outcome
        fresh.detail = run.detail
        fresh.output = clone(run.output)
        fresh.error = run.error
        fresh.finished_at = run.finished_at
        self._steps[key] = fresh

    async def add_steps(self, runs: Sequence[StepRun]) -> None:
        for run in runs:
            check_write(self.scope, run.location_id, "workflow_step_runs")
            self._steps.setdefault((run.enrollment_id, run.step_id, run.tick), clone(run))

    async def history(self, enrollment_id: uuid.UUID) -> builtins.list[StepRun]:
        rows = [
            r
            for r in self._steps.values()
            if r.enrollment_id == enrollment_id and self.sees_location(r.location_id)
        ]
        return [clone(r) for r in sorted(rows, key=lambda r: (r.tick, r.started_at, r.step_id))]

    async def step_counts(self, workflow_id: uuid.UUID) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for r in self._steps.values():
            if r.workflow_id == workflow_id and self.sees_location(r.location_id):
                per_step = counts.setdefault(r.step_id, {})
                per_step[r.status.value] = per_step.get(r.status.value, 0) + 1
        return counts
