"""Use cases of pipelines: create, read, rename, delete; add, rename, reorder and delete stages; the board.

Stage changes lock the pipeline row (`lock="update"`); opportunity writes hold it shared, so a stage is
never deleted or renumbered under an opportunity being moved into it."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import replace
from typing import Any

from ghl_core.pipelines.fields import MAX_STAGES, clean_name, clean_stage_names, clean_uuid, raise_if
from ghl_core.pipelines.models import (
    Board,
    BoardColumn,
    BoardFilter,
    Opportunity,
    Pipeline,
    Stage,
    StageSummary,
)
from ghl_core.pipelines.ports import PipelinesUnitOfWork
from ghl_core.pipelines.recording import record_opportunity
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_entity_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.permissions import Actor, Permission


async def agency_of(uow: PipelinesUnitOfWork, location_id: uuid.UUID) -> uuid.UUID:
    return (await live_location(uow, location_id)).agency_id


async def pipeline_of(
    uow: PipelinesUnitOfWork, location_id: uuid.UUID, pipeline_id: uuid.UUID, lock: str | None = None
) -> Pipeline:
    pipeline = await uow.pipelines.get(location_id, pipeline_id, lock=lock)
    if pipeline is None:
        raise NotFound(f"pipeline {pipeline_id} not found")
    return pipeline


def stage_of(pipeline: Pipeline, stage_id: uuid.UUID) -> Stage:
    stage = pipeline.stage(stage_id)
    if stage is None:
        raise NotFound(f"stage {stage_id} not found in pipeline {pipeline.id}")
    return stage


class PipelineService:
    def __init__(self, uow: UnitOfWorkFactory[PipelinesUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def _record(
        self,
        uow: PipelinesUnitOfWork,
        actor: Actor,
        action: str,
        before: Pipeline | None,
        after: Pipeline,
        event: str,
    ) -> None:
        await record_entity_change(
            uow,
            self._clock,
            actor,
            action=action,
            entity_type="pipeline",
            agency_id=await agency_of(uow, after.location_id),
            before=before,
            after=after,
            event_type=event,
        )

    # -- pipelines ---------------------------------------------------------------------------------
    async def create(self, actor: Actor, data: dict[str, Any]) -> Pipeline:
        location_id = actor.require_location(Permission.OPPORTUNITIES_WRITE)
        errors: list[FieldError] = []
        for key in sorted(set(data) - {"name", "stages"}):
            errors.append(FieldError(f"/{key}", "is not a pipeline field"))
        name = clean_name(data.get("name"), "/name", errors)
        names = clean_stage_names(data.get("stages"), "/stages", errors)
        raise_if(errors)
        now = self._clock.now()
        pipeline_id = new_id()
        pipeline = Pipeline(
            id=pipeline_id,
            location_id=location_id,
            name=name,
            created_at=now,
            updated_at=now,
            created_by=actor.id,
            updated_by=actor.id,
            stages=[
                Stage(new_id(), pipeline_id, location_id, stage_name, i, now, now)
                for i, stage_name in enumerate(names)
            ],
        )
        async with self._uow(actor.scope) as uow:
            await agency_of(uow, location_id)
            await uow.pipelines.add(pipeline)
            await self._record(uow, actor, "create", None, pipeline, "pipeline.created")
            await uow.commit()
        return pipeline

    async def get(self, actor: Actor, pipeline_id: uuid.UUID) -> Pipeline:
        location_id = actor.require_location(Permission.OPPORTUNITIES_READ)
        async with self._uow(actor.scope) as uow:
            return await pipeline_of(uow, location_id, pipeline_id)

    async def list(self, actor: Actor, page: PageRequest) -> Page[Pipeline]:
        location_id = actor.require_location(Permission.OPPORTUNITIES_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.pipelines.list(location_id, page)

    async def update(self, actor: Actor, pipeline_id: uuid.UUID, data: dict[str, Any]) -> Pipeline:
        location_id = actor.require_location(Permission.OPPORTUNITIES_WRITE)
        errors: list[FieldError] = [
            FieldError(f"/{k}", "is not a field that can be changed") for k in data if k != "name"
        ]
        name = clean_name(data["name"], "/name", errors) if "name" in data else None
        raise_if(errors)
        async with self._uow(actor.scope) as uow:
            before = await pipeline_of(uow, location_id, pipeline_id, lock="update")
            if name is None or name == before.name:
                return before
            after = replace(before, name=name, updated_at=self._clock.now(), updated_by=actor.id)
            await uow.pipelines.update(after)
            await self._record(uow, actor, "update", before, after, "pipeline.updated")
            await uow.commit()
        return after

    async def delete(self, actor: Actor, pipeline_id: uuid.UUID) -> None:
        location_id = actor.require_location(Permission.OPPORTUNITIES_WRITE)
        async with self._uow(actor.scope) as uow:
            before = await pipeline_of(uow, location_id, pipeline_id, lock="update")
            count = await uow.pipelines.count_opportunities(location_id, pipeline_id)
            if count:
                raise Conflict(f"the pipeline has {count} opportunities: delete them first")
            now = self._clock.now()
            after = replace(before, deleted_at=now, updated_at=now, updated_by=actor.id)
            await uow.pipelines.update(after)
            await self._record(uow, actor, "delete", before, after, "pipeline.deleted")
            await uow.commit()

    # -- stages ------------------------------------------------------------------------------------
    async def add_stage(self, actor: Actor, pipeline_id: uuid.UUID, data: dict[str, Any]) -> Pipeline:
        location_id = actor.require_location(Permission.OPPORTUNITIES_WRITE)
        errors = [
            FieldError(f"/{k}", "is not a stage field") for k in sorted(set(data) - {"name", "position"})
        ]
        name = clean_name(data.get("name"), "/name", errors)
        position = data.get("position")
        if position is not None and (
            isinstance(position, bool) or not isinstance(position, int) or position < 0
        ):
            errors.append(FieldError("/position", "must be a whole number from 0 (the first stage)"))
        raise_if(errors)
        async with self._uow(actor.scope) as uow:
            before = await pipeline_of(uow, location_id, pipeline_id, lock="update")
            if len(before.stages) >= MAX_STAGES:
                raise ValidationFailed.one("/", f"a pipeline has at most {MAX_STAGES} stages")
            self._unique_stage_name(before, name, None)
            at = len(before.stages) if position is None else min(position, len(before.stages))
            now = self._clock.now()
            stage = Stage(new_id(), pipeline_id, location_id, name, at, now, now)
            await uow.pipelines.add_stage(stage)
            stages = [replace(s, position=s.position + 1) if s.position >= at else s for s in before.stages]
            after = self._with_stages(before, actor, sorted([*stages, stage], key=lambda s: s.position))
            await uow.pipelines.update(after)
            await self._record(uow, actor, "update", before, after, "pipeline.updated")
            await uow.commit()
        return after

    async def rename_stage(
        self, actor: Actor, pipeline_id: uuid.UUID, stage_id: uuid.UUID, data: dict[str, Any]
    ) -> Pipeline:
        location_id = actor.require_location(Permission.OPPORTUNITIES_WRITE)
        errors = [
            FieldError(f"/{k}", "is not a field that can be changed") for k in sorted(set(data) - {"name"})
        ]
        name = clean_name(data.get("name"), "/name", errors)
        raise_if(errors)
        async with self._uow(actor.scope) as uow:
            before = await pipeline_of(uow, location_id, pipeline_id, lock="update")
            stage = stage_of(before, stage_id)
            if stage.name == name:
                return before
            self._unique_stage_name(before, name, stage_id)
            renamed = replace(stage, name=name, updated_at=self._clock.now())
            await uow.pipelines.rename_stage(renamed)
            after = self._with_stages(
                before, actor, [renamed if s.id == stage_id else s for s in before.stages]
            )
            await uow.pipelines.update(after)
            await self._record(uow, actor, "update", before, after, "pipeline.updated")
            await uow.commit()
        return after

    async def reorder_stages(self, actor: Actor, pipeline_id: uuid.UUID, data: dict[str, Any]) -> Pipeline:
        location_id = actor.require_location(Permission.OPPORTUNITIES_WRITE)
        errors = [
            FieldError(f"/{k}", "is not a field of a reorder") for k in sorted(set(data) - {"stage_ids"})
        ]
        raw = data.get("stage_ids")
        ids: list[uuid.UUID] = []
        if not isinstance(raw, list):
            errors.append(
                FieldError("/stage_ids", "must be the list of the pipeline's stage ids, in the new order")
            )
        else:
            for i, value in enumerate(raw):
                parsed = clean_uuid(value, f"/stage_ids/{i}", errors)
                if parsed is not None and parsed in ids:
                    errors.append(FieldError(f"/stage_ids/{i}", "is listed twice"))
                elif parsed is not None:
                    ids.append(parsed)
        raise_if(errors)
        async with self._uow(actor.scope) as uow:
            before = await pipeline_of(uow, location_id, pipeline_id, lock="update")
            current = {s.id: s for s in before.stages}
            unknown = [
                FieldError(f"/stage_ids/{i}", "is not a stage of this pipeline")
                for i, sid in enumerate(ids)
                if sid not in current
            ]
            missing = [str(s.id) for s in before.stages if s.id not in ids]
            if missing:
                unknown.append(
                    FieldError(
                        "/stage_ids", f"must list every stage of the pipeline; missing {', '.join(missing)}"
                    )
                )
            raise_if(unknown)
            if ids == [s.id for s in before.stages]:
                return before
            await uow.pipelines.reorder_stages(pipeline_id, ids)
            after = self._with_stages(
                before, actor, [replace(current[sid], position=i) for i, sid in enumerate(ids)]
            )
            await uow.pipelines.update(after)
            await self._record(uow, actor, "update", before, after, "pipeline.updated")
            await uow.commit()
        return after

    async def delete_stage(
        self, actor: Actor, pipeline_id: uuid.UUID, stage_id: uuid.UUID, move_to: uuid.UUID | None
    ) -> Pipeline:
        """Only an empty stage, unless `move_to` names another stage of the pipeline: its opportunities
        then move there first, each move recorded like any other."""
        location_id = actor.require_location(Permission.OPPORTUNITIES_WRITE)
        async with self._uow(actor.scope) as uow:
            agency_id = await agency_of(uow, location_id)
            before = await pipeline_of(uow, location_id, pipeline_id, lock="update")
            stage = stage_of(before, stage_id)
            if len(before.stages) == 1:
                raise Conflict("a pipeline keeps at least one stage: delete the pipeline instead")
            if move_to is not None:
                if move_to == stage_id:
                    raise ValidationFailed.one("/move_to", "must be another stage than the one deleted")
                if before.stage(move_to) is None:
                    raise ValidationFailed.one("/move_to", "is not a stage of this pipeline")
                now = self._clock.now()
                for opportunity in await uow.opportunities.in_stage_for_update(location_id, stage_id):
                    moved = replace(
                        opportunity,
                        stage_id=move_to,
                        last_stage_change_at=now,
                        updated_at=now,
                        updated_by=actor.id,
                    )
                    await uow.opportunities.update(moved)
                    await record_opportunity(uow, self._clock, actor, agency_id, "move", opportunity, moved)
            else:
                count = await uow.pipelines.count_opportunities(location_id, pipeline_id, stage_id)
                if count:
                    raise Conflict(
                        f"the stage has {count} opportunities: pass ?move_to=<stage id> to move them first"
                    )
            await uow.pipelines.remove_stage(stage)
            remaining = [
                replace(s, position=s.position - 1) if s.position > stage.position else s
                for s in before.stages
                if s.id != stage_id
            ]
            after = self._with_stages(before, actor, remaining)
            await uow.pipelines.update(after)
            await self._record(uow, actor, "update", before, after, "pipeline.updated")
            await uow.commit()
        return after

    def _with_stages(self, pipeline: Pipeline, actor: Actor, stages: builtins.list[Stage]) -> Pipeline:
        return replace(pipeline, stages=stages, updated_at=self._clock.now(), updated_by=actor.id)

    @staticmethod
    def _unique_stage_name(pipeline: Pipeline, name: str, except_id: uuid.UUID | None) -> None:
        if any(s.name.casefold() == name.casefold() and s.id != except_id for s in pipeline.stages):
            raise ValidationFailed.one("/name", "another stage of this pipeline has this name")

    # -- board -------------------------------------------------------------------------------------
    async def board(
        self, actor: Actor, pipeline_id: uuid.UUID, board_filter: BoardFilter, limit: int
    ) -> Board:
        """Every stage with its count and totals (per currency) and its first page, newest updated first."""
        location_id = actor.require_location(Permission.OPPORTUNITIES_READ)
        async with self._uow(actor.scope) as uow:
            pipeline = await pipeline_of(uow, location_id, pipeline_id)
            summaries = await uow.opportunities.board_summaries(location_id, pipeline_id, board_filter)
            pages = await uow.opportunities.board_pages(
                location_id, [s.id for s in pipeline.stages], board_filter, limit
            )
        columns = [
            BoardColumn(
                stage=s,
                summary=summaries.get(s.id, StageSummary()),
                items=pages[s.id].items if s.id in pages else [],
                next_cursor=pages[s.id].next_cursor if s.id in pages else None,
            )
            for s in pipeline.stages
        ]
        return Board(pipeline=pipeline, columns=columns)

    async def board_stage(
        self,
        actor: Actor,
        pipeline_id: uuid.UUID,
        stage_id: uuid.UUID,
        board_filter: BoardFilter,
        page: PageRequest,
    ) -> Page[Opportunity]:
        location_id = actor.require_location(Permission.OPPORTUNITIES_READ)
        async with self._uow(actor.scope) as uow:
            pipeline = await pipeline_of(uow, location_id, pipeline_id)
            stage_of(pipeline, stage_id)
            return await uow.opportunities.board_page(location_id, stage_id, board_filter, page)
