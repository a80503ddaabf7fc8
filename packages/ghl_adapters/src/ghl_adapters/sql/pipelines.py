"""SQL repositories of the pipelines context: pipelines and their stages, opportunities, their moves and
the board. Every query names the location, so the operator's connection (which row-level security lets
see every tenant) is scoped all the same."""

from __future__ import annotations

import builtins
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Row, case, func, insert, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from ghl_core.pipelines.models import (
    BoardFilter,
    Money,
    Opportunity,
    OpportunityMove,
    OpportunityStatus,
    Pipeline,
    Stage,
    StageSummary,
)
from ghl_core.pipelines.ports import DuplicateName
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows

from . import pipeline_tables as pt
from . import tables as t
from .repositories import _paginate

PIPE, STAGE, OPP, MOVE = pt.pipelines.c, pt.pipeline_stages.c, pt.opportunities.c, pt.opportunity_moves.c


def _stage(row: Row[Any]) -> Stage:
    return Stage(
        id=row.id,
        pipeline_id=row.pipeline_id,
        location_id=row.location_id,
        name=row.name,
        position=row.position,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _pipeline(row: Row[Any], stages: list[Stage]) -> Pipeline:
    return Pipeline(
        id=row.id,
        location_id=row.location_id,
        name=row.name,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        created_by=row.created_by,
        updated_by=row.updated_by,
        stages=stages,
    )


class SqlPipelineRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _write(self, statement: Any) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(statement)
        except IntegrityError as exc:
            if "pipelines_name_key" not in str(exc.orig):
                raise
            raise DuplicateName("another pipeline of this location has this name") from None

    async def _stages(self, pipeline_ids: builtins.list[uuid.UUID]) -> dict[uuid.UUID, builtins.list[Stage]]:
        by_pipeline: dict[uuid.UUID, builtins.list[Stage]] = defaultdict(list)
        if pipeline_ids:
            q = (
                select(pt.pipeline_stages)
                .where(STAGE.pipeline_id.in_(pipeline_ids), STAGE.deleted_at.is_(None))
                .order_by(STAGE.pipeline_id, STAGE.position)
            )
            for row in (await self._c.execute(q)).all():
                by_pipeline[row.pipeline_id].append(_stage(row))
        return by_pipeline

    async def add(self, pipeline: Pipeline) -> None:
        await self._write(
            insert(pt.pipelines).values(
                id=pipeline.id,
                location_id=pipeline.location_id,
                name=pipeline.name,
                created_at=pipeline.created_at,
                updated_at=pipeline.updated_at,
                created_by=pipeline.created_by,
                updated_by=pipeline.updated_by,
            )
        )
        if pipeline.stages:
            await self._c.execute(
                insert(pt.pipeline_stages).values(
                    [
                        {
                            "id": s.id,
                            "location_id": s.location_id,
                            "pipeline_id": s.pipeline_id,
                            "name": s.name,
                            "position": s.position,
                            "created_at": s.created_at,
                            "updated_at": s.updated_at,
                        }
                        for s in pipeline.stages
                    ]
                )
            )

    async def get(
        self, location_id: uuid.UUID, pipeline_id: uuid.UUID, *, lock: str | None = None
    ) -> Pipeline | None:
        q = select(pt.pipelines).where(
            PIPE.id == pipeline_id, PIPE.location_id == location_id, PIPE.deleted_at.is_(None)
        )
        if lock == "share":
            q = q.with_for_update(read=True)
        elif lock == "update":
            q = q.with_for_update()
        row = (await self._c.execute(q)).first()
        if row is None:
            return None
        return _pipeline(row, (await self._stages([row.id])).get(row.id, []))

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Pipeline]:
        q = select(pt.pipelines).where(PIPE.location_id == location_id, PIPE.deleted_at.is_(None))
        rows = (await self._c.execute(_paginate(q, page, PIPE.created_at, PIPE.id))).all()
        stages = await self._stages([r.id for r in rows])
        return page_from_rows(
            [_pipeline(r, stages.get(r.id, [])) for r in rows],
            page.limit,
            lambda p: (p.created_at.isoformat(), str(p.id)),
        )

    async def update(self, pipeline: Pipeline) -> None:
        await self._write(
            update(pt.pipelines)
            .where(PIPE.id == pipeline.id, PIPE.location_id == pipeline.location_id)
            .values(
                name=pipeline.name,
                updated_at=pipeline.updated_at,
                updated_by=pipeline.updated_by,
                deleted_at=pipeline.deleted_at,
            )
        )

    async def add_stage(self, stage: Stage) -> None:
        await self._c.execute(
            update(pt.pipeline_stages)
            .where(
                STAGE.pipeline_id == stage.pipeline_id,
                STAGE.deleted_at.is_(None),
                STAGE.position >= stage.position,
            )
            .values(position=STAGE.position + 1, updated_at=stage.updated_at)
        )
        await self._c.execute(
            insert(pt.pipeline_stages).values(
                id=stage.id,
                location_id=stage.location_id,
                pipeline_id=stage.pipeline_id,
                name=stage.name,
                position=stage.position,
                created_at=stage.created_at,
                updated_at=stage.updated_at,
            )
        )

    async def rename_stage(self, stage: Stage) -> None:
        await self._c.execute(
            update(pt.pipeline_stages)
            .where(STAGE.id == stage.id, STAGE.location_id == stage.location_id)
            .values(name=stage.name, updated_at=stage.updated_at)
        )

    async def reorder_stages(self, pipeline_id: uuid.UUID, stage_ids: builtins.list[uuid.UUID]) -> None:
        # One statement: the unique (pipeline_id, position) is checked once it has renumbered them all.
        positions = {sid: i for i, sid in enumerate(stage_ids)}
        await self._c.execute(
            update(pt.pipeline_stages)
            .where(STAGE.pipeline_id == pipeline_id, STAGE.id.in_(stage_ids))
            .values(position=case(positions, value=STAGE.id), updated_at=func.now())
        )

    async def remove_stage(self, stage: Stage) -> None:
        await self._c.execute(
            update(pt.pipeline_stages)
            .where(STAGE.id == stage.id, STAGE.location_id == stage.location_id)
            .values(position=None, deleted_at=func.now(), updated_at=func.now())
        )
        await self._c.execute(
            update(pt.pipeline_stages)
            .where(
                STAGE.pipeline_id == stage.pipeline_id,
                STAGE.deleted_at.is_(None),
                STAGE.position > stage.position,
            )
            .values(position=STAGE.position - 1)
        )

    async def count_opportunities(
        self, location_id: uuid.UUID, pipeline_id: uuid.UUID, stage_id: uuid.UUID | None = None
    ) -> int:
        q = select(func.count()).where(
            OPP.location_id == location_id, OPP.pipeline_id == pipeline_id, OPP.deleted_at.is_(None)
        )
        if stage_id is not None:
            q = q.where(OPP.stage_id == stage_id)
        return int((await self._c.execute(q)).scalar_one())


# -- opportunities ---------------------------------------------------------------------------------
_OPPORTUNITY_COLUMNS = (
    "pipeline_id",
    "stage_id",
    "contact_id",
    "name",
    "lost_reason",
    "assigned_user_id",
    "source",
    "custom_fields",
    "last_status_change_at",
    "last_stage_change_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
)


def _opportunity(row: Row[Any]) -> Opportunity:
    value = Money(row.value_amount, row.value_currency) if row.value_amount is not None else None
    return Opportunity(
        id=row.id,
        location_id=row.location_id,
        value=value,
        status=OpportunityStatus(row.status),
        **{c: getattr(row, c) for c in _OPPORTUNITY_COLUMNS},
    )


def _values(o: Opportunity) -> dict[str, Any]:
    return {
        **{c: getattr(o, c) for c in _OPPORTUNITY_COLUMNS},
        "status": o.status.value,
        "value_amount": o.value.amount if o.value else None,
        "value_currency": o.value.currency if o.value else None,
    }


def _move(row: Row[Any]) -> OpportunityMove:
    return OpportunityMove(
        id=row.id,
        opportunity_id=row.opportunity_id,
        location_id=row.location_id,
        from_stage_id=row.from_stage_id,
        from_status=OpportunityStatus(row.from_status) if row.from_status else None,
        to_stage_id=row.to_stage_id,
        to_status=OpportunityStatus(row.to_status),
        moved_at=row.moved_at,
        moved_by=row.moved_by,
        moved_by_type=row.moved_by_type,
    )


def _board_conditions(location_id: uuid.UUID, board_filter: BoardFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [OPP.location_id == location_id, OPP.deleted_at.is_(None)]
    if board_filter.status is not None:
        conditions.append(OPP.status == board_filter.status.value)
    if board_filter.assigned_user_id is not None:
        conditions.append(OPP.assigned_user_id == board_filter.assigned_user_id)
    if board_filter.contact_tag is not None:
        c = t.contacts.c
        conditions.append(
            select(c.id).where(c.id == OPP.contact_id, c.tags.contains([board_filter.contact_tag])).exists()
        )
    return conditions


def _board_key(o: Opportunity) -> tuple[str, str]:
    return (o.updated_at.isoformat(), str(o.id))


class SqlOpportunityRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, opportunity: Opportunity) -> bool:
        query = (
            pg_insert(pt.opportunities)
            .values(id=opportunity.id, location_id=opportunity.location_id, **_values(opportunity))
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(OPP.id)
        )
        return (await self._c.execute(query)).first() is not None

    async def get(
        self,
        location_id: uuid.UUID,
        opportunity_id: uuid.UUID,
        *,
        for_update: bool = False,
        include_deleted: bool = False,
    ) -> Opportunity | None:
        q = select(pt.opportunities).where(OPP.id == opportunity_id, OPP.location_id == location_id)
        if not include_deleted:
            q = q.where(OPP.deleted_at.is_(None))
        if for_update:
            q = q.with_for_update()
        row = (await self._c.execute(q)).first()
        return _opportunity(row) if row else None

    async def update(self, opportunity: Opportunity) -> None:
        await self._c.execute(
            update(pt.opportunities)
            .where(OPP.id == opportunity.id, OPP.location_id == opportunity.location_id)
            .values(**_values(opportunity))
        )

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        *,
        pipeline_id: uuid.UUID | None = None,
        stage_id: uuid.UUID | None = None,
        status: OpportunityStatus | None = None,
        contact_id: uuid.UUID | None = None,
        assigned_user_id: uuid.UUID | None = None,
    ) -> Page[Opportunity]:
        q = select(pt.opportunities).where(OPP.location_id == location_id, OPP.deleted_at.is_(None))
        for column, value in (
            (OPP.pipeline_id, pipeline_id),
            (OPP.stage_id, stage_id),
            (OPP.status, status.value if status else None),
            (OPP.contact_id, contact_id),
            (OPP.assigned_user_id, assigned_user_id),
        ):
            if value is not None:
                q = q.where(column == value)
        rows = (await self._c.execute(_paginate(q, page, OPP.created_at, OPP.id, descending=True))).all()
        return page_from_rows(
            [_opportunity(r) for r in rows], page.limit, lambda o: (o.created_at.isoformat(), str(o.id))
        )

    async def in_stage_for_update(
        self, location_id: uuid.UUID, stage_id: uuid.UUID
    ) -> builtins.list[Opportunity]:
        q = (
            select(pt.opportunities)
            .where(OPP.location_id == location_id, OPP.stage_id == stage_id, OPP.deleted_at.is_(None))
            .order_by(OPP.id)
            .with_for_update()
        )
        return [_opportunity(r) for r in (await self._c.execute(q)).all()]

    async def add_move(self, move: OpportunityMove) -> None:
        await self._c.execute(
            insert(pt.opportunity_moves).values(
                id=move.id,
                location_id=move.location_id,
                opportunity_id=move.opportunity_id,
                from_stage_id=move.from_stage_id,
                to_stage_id=move.to_stage_id,
                from_status=move.from_status.value if move.from_status else None,
                to_status=move.to_status.value,
                moved_at=move.moved_at,
                moved_by=move.moved_by,
                moved_by_type=move.moved_by_type,
            )
        )

    async def moves(
        self, location_id: uuid.UUID, opportunity_id: uuid.UUID
    ) -> builtins.list[OpportunityMove]:
        q = (
            select(pt.opportunity_moves)
            .where(MOVE.opportunity_id == opportunity_id, MOVE.location_id == location_id)
            .order_by(MOVE.seq)
        )
        return [_move(r) for r in (await self._c.execute(q)).all()]

    async def board_summaries(
        self, location_id: uuid.UUID, pipeline_id: uuid.UUID, board_filter: BoardFilter
    ) -> dict[uuid.UUID, StageSummary]:
        q = (
            select(OPP.stage_id, OPP.value_currency, func.count(), func.sum(OPP.value_amount))
            .where(OPP.pipeline_id == pipeline_id, *_board_conditions(location_id, board_filter))
            .group_by(OPP.stage_id, OPP.value_currency)
        )
        counts: dict[uuid.UUID, int] = defaultdict(int)
        totals: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
        for stage_id, currency, count, total in (await self._c.execute(q)).all():
            counts[stage_id] += int(count)
            if currency is not None:
                # sum() of bigint is numeric in PostgreSQL: exact, and an int here.
                totals[stage_id][currency] = int(total)
        return {
            sid: StageSummary(count=n, totals=dict(sorted(totals[sid].items()))) for sid, n in counts.items()
        }

    async def board_pages(
        self,
        location_id: uuid.UUID,
        stage_ids: builtins.list[uuid.UUID],
        board_filter: BoardFilter,
        limit: int,
    ) -> dict[uuid.UUID, Page[Opportunity]]:
        if not stage_ids:
            return {}
        # A lateral join: one query, and for each stage an index scan that stops after limit + 1 rows.
        column = (
            select(pt.opportunities)
            .where(OPP.stage_id == STAGE.id, *_board_conditions(location_id, board_filter))
            .order_by(OPP.updated_at.desc(), OPP.id.desc())
            .limit(limit + 1)
            .lateral("col")
        )
        q = (
            select(column)
            .select_from(pt.pipeline_stages)
            .join(column, true())
            .where(STAGE.id.in_(stage_ids), STAGE.location_id == location_id)
        )
        rows: dict[uuid.UUID, builtins.list[Opportunity]] = defaultdict(list)
        for row in (await self._c.execute(q)).all():
            rows[row.stage_id].append(_opportunity(row))
        return {
            sid: page_from_rows(
                sorted(items, key=lambda o: (o.updated_at, o.id), reverse=True), limit, _board_key
            )
            for sid, items in rows.items()
        }

    async def board_page(
        self, location_id: uuid.UUID, stage_id: uuid.UUID, board_filter: BoardFilter, page: PageRequest
    ) -> Page[Opportunity]:
        q = select(pt.opportunities).where(
            OPP.stage_id == stage_id, *_board_conditions(location_id, board_filter)
        )
        rows = (await self._c.execute(_paginate(q, page, OPP.updated_at, OPP.id, descending=True))).all()
        return page_from_rows([_opportunity(r) for r in rows], page.limit, _board_key)
