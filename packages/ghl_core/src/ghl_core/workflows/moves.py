"""How an enrollment moves: the parsed definitions of published versions (kept in memory, they never
change), enrolling a contact, moving an enrollment to a step or finishing it, and writing its ledger
rows. The runner (workflows/engine.py), the event consumer (workflows/reactions.py) and step handlers
move enrollments only through these, in the caller's transaction."""

from __future__ import annotations

import uuid
from collections import OrderedDict

from ghl_core.shared.clock import Clock
from ghl_core.shared.ids import new_id
from ghl_core.workflows.definition import Definition, parse_definition
from ghl_core.workflows.models import Enrollment, EnrollmentStatus, StepRun, WorkflowVersion
from ghl_core.workflows.ports import WorkflowsUnitOfWork
from ghl_core.workflows.scheduling import run_job
from ghl_core.workflows.steps.base import Outcome, StepRegistry
from ghl_core.workflows.values import Step

_DEFINITIONS = 512  # parsed versions kept in memory (they never change once published)


class Moves:
    def __init__(self, *, clock: Clock, steps: StepRegistry) -> None:
        self._clock = clock
        self._steps = steps
        self._definitions: OrderedDict[tuple[uuid.UUID, int], Definition] = OrderedDict()

    # ------------------------------------------------------------------ definitions

    def definition(self, version: WorkflowVersion) -> Definition:
        key = (version.workflow_id, version.version)
        found = self._definitions.get(key)
        if found is None:
            found = parse_definition(version.definition, self._steps)
            self._definitions[key] = found
            if len(self._definitions) > _DEFINITIONS:
                self._definitions.popitem(last=False)
        else:
            self._definitions.move_to_end(key)
        return found

    async def definition_of(self, uow: WorkflowsUnitOfWork, enrollment: Enrollment) -> Definition | None:
        key = (enrollment.workflow_id, enrollment.version)
        if key in self._definitions:
            self._definitions.move_to_end(key)
            return self._definitions[key]
        version = await uow.workflows.version(enrollment.workflow_id, enrollment.version)
        return self.definition(version) if version is not None else None

    async def enroll(
        self,
        uow: WorkflowsUnitOfWork,
        version: WorkflowVersion,
        contact_id: uuid.UUID,
        *,
        trigger: str,
        cause: str | None,
        opportunity_id: uuid.UUID | None = None,
    ) -> Enrollment | None:
        """Enrolls the contact in the caller's transaction and queues its first step; None when the
        workflow's rules refuse it (already enrolled and re-entry not allowed, or the same cause)."""
        definition = self.definition(version)
        now = self._clock.now()
        first = definition.steps[0].id if definition.steps else None
        enrollment = Enrollment(
            id=new_id(),
            location_id=version.location_id,
            workflow_id=version.workflow_id,
            version=version.version,
            contact_id=contact_id,
            status=EnrollmentStatus.ACTIVE if first else EnrollmentStatus.COMPLETED,
            started_at=now,
            updated_at=now,
            trigger=trigger,
            step_id=first,
            cause=cause,
            opportunity_id=opportunity_id,
            finished_at=None if first else now,
        )
        if definition.settings.allow_reentry:
            added = await uow.enrollments.add(enrollment)
        else:
            added = await uow.enrollments.add_exclusive(enrollment)
        if not added:
            return None
        if first:
            await uow.jobs.enqueue(run_job(enrollment))
        return enrollment

    # ------------------------------------------------------------------ moving an enrollment

    async def move(
        self,
        uow: WorkflowsUnitOfWork,
        enrollment: Enrollment,
        target: str | None,
        *,
        finished: EnrollmentStatus = EnrollmentStatus.COMPLETED,
        queue: bool = True,
    ) -> None:
        """To `target` (None: finished), one tick on; queues the job that runs it unless the caller goes on
        running the enrollment itself."""
        enrollment.tick += 1
        enrollment.wake_at = None
        enrollment.waiting_for = None
        if target is None:
            await self.finish(uow, enrollment, finished, None, tick=False)
            return
        enrollment.step_id = target
        enrollment.status = EnrollmentStatus.ACTIVE
        enrollment.updated_at = self._clock.now()
        await uow.enrollments.update(enrollment)
        if queue:
            await uow.jobs.enqueue(run_job(enrollment))

    async def finish(
        self,
        uow: WorkflowsUnitOfWork,
        enrollment: Enrollment,
        status: EnrollmentStatus,
        reason: str | None,
        *,
        tick: bool = True,
    ) -> None:
        now = self._clock.now()
        if tick:
            enrollment.tick += 1
        enrollment.status = status
        enrollment.step_id = None
        enrollment.wake_at = None
        enrollment.waiting_for = None
        enrollment.finished_at = now
        enrollment.updated_at = now
        enrollment.reason = reason
        await uow.enrollments.update(enrollment)

    async def record(
        self, uow: WorkflowsUnitOfWork, enrollment: Enrollment, step: Step, tick: int, outcome: Outcome
    ) -> None:
        now = self._clock.now()
        await uow.enrollments.add_steps(
            [
                StepRun(
                    enrollment_id=enrollment.id,
                    location_id=enrollment.location_id,
                    workflow_id=enrollment.workflow_id,
                    step_id=step.id,
                    tick=tick,
                    type=step.type,
                    status=outcome.status,
                    started_at=now,
                    outcome=outcome.outcome,
                    detail=outcome.detail,
                    output=outcome.output,
                    error=outcome.error,
                    finished_at=now,
                )
            ]
        )
