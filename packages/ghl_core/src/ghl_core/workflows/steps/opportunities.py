"""Steps on the contact's opportunities, through the opportunity service in its own transaction: a
created opportunity gets an id derived from (enrollment, step, tick), so a repeat finds the first one;
moving a stage or setting a status sets a state (doing it twice is doing it once)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ghl_core.pipelines.models import Opportunity, OpportunityStatus
from ghl_core.shared.errors import DomainError
from ghl_core.shared.pagination import PageRequest
from ghl_core.shared.validation import MAX_NAME_LENGTH
from ghl_core.tenancy.permissions import Actor
from ghl_core.workflows.models import StepRunStatus
from ghl_core.workflows.reading import Reader
from ghl_core.workflows.steps.base import Outcome, Placement, StepContext, StepHandler
from ghl_core.workflows.values import Step, ref

STATUSES = tuple(s.value for s in OpportunityStatus)
# Locations carry no currency yet: a workflow's opportunity values are in this one.
CURRENCY = "USD"


@dataclass(frozen=True, kw_only=True)
class CreateOpportunity(Step):
    TYPE = "create_opportunity"
    pipeline_id: uuid.UUID = field(metadata=ref("pipeline"))
    stage_id: uuid.UUID = field(metadata=ref("stage", within="pipeline_id"))
    name: str | None = None  # None: the contact's name
    value: int | None = None  # minor units of the location's currency
    status: str = "open"


@dataclass(frozen=True, kw_only=True)
class MoveStage(Step):
    TYPE = "move_stage"
    pipeline_id: uuid.UUID = field(metadata=ref("pipeline"))
    stage_id: uuid.UUID = field(metadata=ref("stage", within="pipeline_id"))


@dataclass(frozen=True, kw_only=True)
class SetOpportunityStatus(Step):
    TYPE = "set_opportunity_status"
    status: str


class CreateOpportunityHandler(StepHandler[CreateOpportunity]):
    step = CreateOpportunity
    placement = Placement.OUTSIDE

    def read(self, r: Reader) -> dict[str, Any]:
        return {
            "pipeline_id": r.uuid("pipeline_id"),
            "stage_id": r.uuid("stage_id"),
            "name": r.text("name", MAX_NAME_LENGTH, required=False),
            "value": r.integer("value", 0, 2**53 - 1, default=None),
            "status": r.choice("status", STATUSES, default="open"),
        }

    async def run(self, ctx: StepContext, step: CreateOpportunity) -> Outcome:
        contact = ctx.contact
        data: dict[str, Any] = {
            "pipeline_id": str(step.pipeline_id),
            "stage_id": str(step.stage_id),
            "contact_id": str(contact.id),
            "name": step.name or contact.name or "Opportunity",
            "status": step.status,
        }
        if step.value is not None:
            data["value"] = {"amount": step.value, "currency": CURRENCY}
        opp = await ctx.runner.services.opportunities.create(
            Actor.operator_at(ctx.location.id), data, id=ctx.effect_id(step)
        )
        return Outcome(
            StepRunStatus.DONE, "done", f"opportunity {opp.id}", output={"opportunity_id": str(opp.id)}
        )


async def _target(ctx: StepContext, actor: Actor, pipeline: uuid.UUID | None) -> Opportunity | None:
    """The enrollment's opportunity (in the pipeline, if one is named), else the contact's first."""
    opportunities = ctx.runner.services.opportunities
    target = None
    if ctx.enrollment.opportunity_id is not None:
        try:
            found = await opportunities.get(actor, ctx.enrollment.opportunity_id)
            if pipeline is None or found.pipeline_id == pipeline:
                target = found
        except DomainError:
            target = None
    if target is None:
        page = await opportunities.list(
            actor, PageRequest(limit=1), pipeline_id=pipeline, contact_id=ctx.contact.id
        )
        target = page.items[0] if page.items else None
    return target


_NONE = Outcome(StepRunStatus.SKIPPED, "no_opportunity", "the contact has no opportunity to change")


class MoveStageHandler(StepHandler[MoveStage]):
    step = MoveStage
    placement = Placement.OUTSIDE

    def read(self, r: Reader) -> dict[str, Any]:
        return {"pipeline_id": r.uuid("pipeline_id"), "stage_id": r.uuid("stage_id")}

    async def run(self, ctx: StepContext, step: MoveStage) -> Outcome:
        actor = Actor.operator_at(ctx.location.id)
        target = await _target(ctx, actor, step.pipeline_id)
        if target is None:
            return _NONE
        await ctx.runner.services.opportunities.move(actor, target.id, {"stage_id": str(step.stage_id)})
        return Outcome(
            StepRunStatus.DONE,
            "done",
            f"opportunity {target.id} moved",
            output={"opportunity_id": str(target.id)},
        )


class SetOpportunityStatusHandler(StepHandler[SetOpportunityStatus]):
    step = SetOpportunityStatus
    placement = Placement.OUTSIDE

    def read(self, r: Reader) -> dict[str, Any]:
        return {"status": r.choice("status", STATUSES)}

    async def run(self, ctx: StepContext, step: SetOpportunityStatus) -> Outcome:
        actor = Actor.operator_at(ctx.location.id)
        target = await _target(ctx, actor, None)
        if target is None:
            return _NONE
        await ctx.runner.services.opportunities.move(actor, target.id, {"status": step.status})
        return Outcome(
            StepRunStatus.DONE,
            "done",
            f"opportunity {target.id} {step.status}",
            output={"opportunity_id": str(target.id)},
        )
