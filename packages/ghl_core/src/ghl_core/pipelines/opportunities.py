"""Use cases of opportunities: create, read, list, change, move between stages and statuses, delete, and
the move history (from, to, when, who) that time-in-stage reports are built from.

Writes hold the pipeline row shared and then lock the opportunity's row: racing moves of one opportunity
run one after the other, so each move starts where the previous one ended."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import replace
from typing import Any

from ghl_core.pipelines.fields import MOVE_FIELDS, OPPORTUNITY_FIELDS, clean_opportunity_fields, raise_if
from ghl_core.pipelines.models import Opportunity, OpportunityMove, OpportunityStatus, Pipeline
from ghl_core.pipelines.ports import PipelinesUnitOfWork
from ghl_core.pipelines.recording import record_opportunity
from ghl_core.pipelines.services import agency_of, pipeline_of
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.assignees import may_be_assigned, not_assignable
from ghl_core.tenancy.permissions import Actor, Permission

_REQUIRED = ("pipeline_id", "contact_id", "name")


async def _check_contact(
    uow: PipelinesUnitOfWork, location_id: uuid.UUID, contact_id: uuid.UUID, errors: list[FieldError]
) -> None:
    contact = await uow.contacts.get(contact_id)
    if (
        contact is None
        or contact.location_id != location_id
        or contact.deleted_at is not None
        or contact.erased_at is not None
    ):
        errors.append(FieldError("/contact_id", "is not a contact of this location"))


def _check_lost_reason(opportunity: Opportunity, fields: dict[str, Any], errors: list[FieldError]) -> None:
    if fields.get("lost_reason") is not None and opportunity.status is not OpportunityStatus.LOST:
        errors.append(FieldError("/lost_reason", "may only be given with status lost"))


async def _existing(
    uow: PipelinesUnitOfWork, location_id: uuid.UUID, opportunity_id: uuid.UUID
) -> Opportunity | None:
    return await uow.opportunities.get(location_id, opportunity_id, include_deleted=True)


class OpportunityService:
    def __init__(self, uow: UnitOfWorkFactory[PipelinesUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(self, actor: Actor, data: dict[str, Any], *, id: uuid.UUID | None = None) -> Opportunity:
        """With `id` (a workflow step's deterministic id) the create is idempotent: when the location
        already has an opportunity with that id, deleted or not, it is returned and nothing is written."""
        location_id = actor.require_location(Permission.OPPORTUNITIES_WRITE)
        errors = [FieldError(f"/{k}", "is required") for k in _REQUIRED if data.get(k) is None]
        fields: dict[str, Any] = {}
        try:
            fields = clean_opportunity_fields(data)
        except ValidationFailed as exc:
            reported = {e.pointer for e in errors}
            errors += [e for e in exc.errors if e.pointer not in reported]
        raise_if(errors)
        status = fields.get("status") or OpportunityStatus.OPEN
        if fields.get("lost_reason") is not None and status is not OpportunityStatus.LOST:
            errors.append(FieldError("/lost_reason", "may only be given with status lost"))
        async with self._uow(actor.scope) as uow:
            # First: a retry finds its opportunity even if its pipeline or contact has gone since.
            if id is not None and (existing := await _existing(uow, location_id, id)) is not None:
                return existing
            agency_id = await agency_of(uow, location_id)
            pipeline = await uow.pipelines.get(location_id, fields["pipeline_id"], lock="share")
            stage_id = fields.get("stage_id")
            if pipeline is None:
                errors.append(FieldError("/pipeline_id", "is not a pipeline of this location"))
            elif stage_id is None:
                stage_id = pipeline.stages[0].id
            elif pipeline.stage(stage_id) is None:
                errors.append(FieldError("/stage_id", "is not a stage of this pipeline"))
            await _check_contact(uow, location_id, fields["contact_id"], errors)
            assignee = fields.get("assigned_user_id")
            if assignee is not None and not await may_be_assigned(uow, agency_id, location_id, assignee):
                errors.append(not_assignable(assignee, "/assigned_user_id"))
            raise_if(errors)
            assert stage_id is not None  # noqa: S101 - the pipeline was found, so a stage was chosen
            now = self._clock.now()
            opportunity = Opportunity(
                id=id if id is not None else new_id(),
                location_id=location_id,
                pipeline_id=fields["pipeline_id"],
                stage_id=stage_id,
                contact_id=fields["contact_id"],
                name=fields["name"],
                value=fields.get("value"),
                status=status,
                lost_reason=fields.get("lost_reason"),
                assigned_user_id=fields.get("assigned_user_id"),
                source=fields.get("source"),
                custom_fields={k: v for k, v in fields.get("custom_fields", {}).items() if v is not None},
                created_at=now,
                updated_at=now,
                last_status_change_at=now,
                last_stage_change_at=now,
                created_by=actor.id,
                updated_by=actor.id,
            )
            if not await uow.opportunities.add(opportunity):
                # A racing create with the same id committed first: its opportunity is the answer.
                existing = await _existing(uow, location_id, opportunity.id)
                if existing is None:  # another location's, which this one cannot see
                    raise Conflict(f"opportunity {opportunity.id} already exists")
                return existing
            await record_opportunity(uow, self._clock, actor, agency_id, "create", None, opportunity)
            await uow.commit()
        return opportunity

    async def get(self, actor: Actor, opportunity_id: uuid.UUID) -> Opportunity:
        location_id = actor.require_location(Permission.OPPORTUNITIES_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, location_id, opportunity_id)

    async def list(
        self,
        actor: Actor,
        page: PageRequest,
        *,
        pipeline_id: uuid.UUID | None = None,
        stage_id: uuid.UUID | None = None,
        status: OpportunityStatus | None = None,
        contact_id: uuid.UUID | None = None,
        assigned_user_id: uuid.UUID | None = None,
    ) -> Page[Opportunity]:
        location_id = actor.require_location(Permission.OPPORTUNITIES_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.opportunities.list(
                location_id,
                page,
                pipeline_id=pipeline_id,
                stage_id=stage_id,
                status=status,
                contact_id=contact_id,
                assigned_user_id=assigned_user_id,
            )

    async def moves(self, actor: Actor, opportunity_id: uuid.UUID) -> builtins.list[OpportunityMove]:
        location_id = actor.require_location(Permission.OPPORTUNITIES_READ)
        async with self._uow(actor.scope) as uow:
            await self._visible(uow, location_id, opportunity_id)
            return await uow.opportunities.moves(location_id, opportunity_id)

    async def update(self, actor: Actor, opportunity_id: uuid.UUID, data: dict[str, Any]) -> Opportunity:
        """Any field but the pipeline; a change of stage or status is recorded as a move."""
        fields = clean_opportunity_fields(data, allowed=OPPORTUNITY_FIELDS - {"pipeline_id"})
        return await self._change(actor, opportunity_id, fields, "update")

    async def move(self, actor: Actor, opportunity_id: uuid.UUID, data: dict[str, Any]) -> Opportunity:
        fields = clean_opportunity_fields(data, allowed=MOVE_FIELDS)
        if not fields:
            raise ValidationFailed.one("/", "give a stage_id, a status or a lost_reason")
        return await self._change(actor, opportunity_id, fields, "move")

    async def delete(self, actor: Actor, opportunity_id: uuid.UUID) -> None:
        location_id = actor.require_location(Permission.OPPORTUNITIES_WRITE)
        async with self._uow(actor.scope) as uow:
            agency_id = await agency_of(uow, location_id)
            before, _ = await self._locked(uow, location_id, opportunity_id)
            now = self._clock.now()
            after = replace(before, deleted_at=now, updated_at=now, updated_by=actor.id)
            await uow.opportunities.update(after)
            await record_opportunity(uow, self._clock, actor, agency_id, "delete", before, after)
            await uow.commit()

    # -- internals ---------------------------------------------------------------------------------
    async def _visible(
        self, uow: PipelinesUnitOfWork, location_id: uuid.UUID, opportunity_id: uuid.UUID
    ) -> Opportunity:
        opportunity = await uow.opportunities.get(location_id, opportunity_id)
        if opportunity is None:
            raise NotFound(f"opportunity {opportunity_id} not found")
        return opportunity

    async def _locked(
        self, uow: PipelinesUnitOfWork, location_id: uuid.UUID, opportunity_id: uuid.UUID
    ) -> tuple[Opportunity, Pipeline]:
        # An opportunity never changes pipeline, so the pipeline read unlocked is the one to lock; the
        # pipeline first, then the opportunity, the order a stage deletion takes them in too.
        pipeline_id = (await self._visible(uow, location_id, opportunity_id)).pipeline_id
        pipeline = await pipeline_of(uow, location_id, pipeline_id, lock="share")
        opportunity = await uow.opportunities.get(location_id, opportunity_id, for_update=True)
        if opportunity is None:
            raise NotFound(f"opportunity {opportunity_id} not found")
        return opportunity, pipeline

    async def _change(
        self, actor: Actor, opportunity_id: uuid.UUID, fields: dict[str, Any], action: str
    ) -> Opportunity:
        location_id = actor.require_location(Permission.OPPORTUNITIES_WRITE)
        errors: list[FieldError] = []
        async with self._uow(actor.scope) as uow:
            agency_id = await agency_of(uow, location_id)
            before, pipeline = await self._locked(uow, location_id, opportunity_id)
            if "stage_id" in fields and pipeline.stage(fields["stage_id"]) is None:
                errors.append(FieldError("/stage_id", "is not a stage of this opportunity's pipeline"))
            if "contact_id" in fields and fields["contact_id"] != before.contact_id:
                await _check_contact(uow, location_id, fields["contact_id"], errors)
            assignee = fields.get("assigned_user_id")
            if (
                assignee is not None
                and assignee != before.assigned_user_id
                and not await may_be_assigned(uow, agency_id, location_id, assignee)
            ):
                errors.append(not_assignable(assignee, "/assigned_user_id"))
            after = replace(before, custom_fields=dict(before.custom_fields))
            for key, value in fields.items():
                if key == "custom_fields":
                    merged = {**after.custom_fields, **value}
                    after.custom_fields = {k: v for k, v in merged.items() if v is not None}
                else:
                    setattr(after, key, value)
            if after.status is not OpportunityStatus.LOST:
                _check_lost_reason(after, fields, errors)
                # A reason for losing no longer applies once the opportunity is not lost.
                after.lost_reason = None
            raise_if(errors)
            if after.snapshot() == before.snapshot():
                return before
            now = self._clock.now()
            after.updated_at, after.updated_by = now, actor.id
            if after.stage_id != before.stage_id:
                after.last_stage_change_at = now
            if after.status != before.status:
                after.last_status_change_at = now
            await uow.opportunities.update(after)
            await record_opportunity(uow, self._clock, actor, agency_id, action, before, after)
            await uow.commit()
        return after
