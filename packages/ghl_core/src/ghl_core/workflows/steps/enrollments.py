"""Steps that enroll the contact in another workflow or take it out of one, in the enrollment's
transaction (the other enrollment's cause is this step's, so a repeat never enrolls twice)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ghl_core.workflows.models import StepRunStatus
from ghl_core.workflows.reading import Reader
from ghl_core.workflows.steps.base import Outcome, StepContext, StepHandler
from ghl_core.workflows.values import Step, ref


@dataclass(frozen=True, kw_only=True)
class AddToWorkflow(Step):
    TYPE = "add_to_workflow"
    workflow_id: uuid.UUID = field(metadata=ref("workflow"))


@dataclass(frozen=True, kw_only=True)
class RemoveFromWorkflow(Step):
    TYPE = "remove_from_workflow"
    workflow_id: uuid.UUID = field(metadata=ref("workflow"))


class AddToWorkflowHandler(StepHandler[AddToWorkflow]):
    step = AddToWorkflow

    def read(self, r: Reader) -> dict[str, Any]:
        return {"workflow_id": r.uuid("workflow_id")}

    async def run(self, ctx: StepContext, step: AddToWorkflow) -> Outcome:
        uow, enrollment = ctx.tx, ctx.enrollment
        workflow = await uow.workflows.get(step.workflow_id)
        if workflow is None or workflow.deleted_at is not None or workflow.version == 0:
            return Outcome(
                StepRunStatus.FAILED,
                "failed",
                "the workflow does not exist or was never published",
                error="workflow_not_found",
            )
        version = await uow.workflows.version(workflow.id, workflow.version)
        if version is None or workflow.status.value != "published":
            return Outcome(StepRunStatus.SKIPPED, "not_published", "the workflow is not published")
        added = await ctx.moves.enroll(
            uow,
            version,
            enrollment.contact_id,
            trigger="workflow",
            cause=f"workflow:{enrollment.id}:{step.id}:{enrollment.tick}",
        )
        if added is None:
            return Outcome(
                StepRunStatus.SKIPPED, "already_enrolled", "the contact is already in that workflow"
            )
        return Outcome(
            StepRunStatus.DONE, "enrolled", f"enrollment {added.id}", output={"enrollment_id": str(added.id)}
        )


class RemoveFromWorkflowHandler(StepHandler[RemoveFromWorkflow]):
    step = RemoveFromWorkflow

    def read(self, r: Reader) -> dict[str, Any]:
        return {"workflow_id": r.uuid("workflow_id")}

    async def run(self, ctx: StepContext, step: RemoveFromWorkflow) -> Outcome:
        enrollment = ctx.enrollment
        stopped = await ctx.tx.enrollments.stop_all(
            workflow_id=step.workflow_id,
            contact_id=enrollment.contact_id,
            location_id=enrollment.location_id,
            reason=f"removed by workflow {enrollment.workflow_id}",
            now=ctx.now,
        )
        return Outcome(StepRunStatus.DONE, "removed" if stopped else "not_enrolled")
