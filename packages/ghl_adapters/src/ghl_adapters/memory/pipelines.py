"""Pipelines (with their ordered stages) and opportunities (with their move history) in memory.

A pipeline row holds its live stages by position; a removed stage leaves the pipeline and is kept apart
(the history names it), as the SQL adapter soft-deletes it. Moves keep the order they were added in (a
serial, as the SQL table's `seq`). Every query is scoped to the given location and to the unit of work's."""

from __future__ import annotations

import builtins
import copy
import uuid
from collections import defaultdict
from datetime import datetime

from ghl_core.pipelines.models import (
    BoardFilter,
    Opportunity,
    OpportunityMove,
    OpportunityStatus,
    Pipeline,
    Stage,
    StageSummary,
)
from ghl_core.pipelines.ports import DuplicateName
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows

from .contacts import CONTACT_REFERENCES, CONTACTS
from .store import MemoryRepository, Table, paginate

PIPELINES: Table[uuid.UUID, Pipeline] = Table("pipelines")
REMOVED_STAGES: Table[uuid.UUID, Stage] = Table("pipeline_stages_removed")
OPPORTUNITIES: Table[uuid.UUID, Opportunity] = Table("opportunities")
MOVES: Table[int, OpportunityMove] = Table("opportunity_moves")

CONTACT_REFERENCES.append(OPPORTUNITIES)


class MemoryPipelineRepository(MemoryRepository):
    def _live(self, location_id: uuid.UUID, pipeline_id: uuid.UUID) -> Pipeline | None:
        found = self.rows(PIPELINES).get(pipeline_id)
        if (
            found is None
            or found.location_id != location_id
            or found.deleted_at is not None
            or not self.sees_location(location_id)
        ):
            return None
        return found

    def _check_name(self, pipeline: Pipeline) -> None:
        if pipeline.deleted_at is None and any(
            p.id != pipeline.id
            and p.location_id == pipeline.location_id
            and p.deleted_at is None
            and p.name.lower() == pipeline.name.lower()
            for p in self.unique_rows(PIPELINES)
        ):
            raise DuplicateName("another pipeline of this location has this name")

    async def add(self, pipeline: Pipeline) -> None:
        self.check_write(self.sees_location(pipeline.location_id), "pipelines")
        self._check_name(pipeline)
        stored = copy.deepcopy(pipeline)
        stored.stages.sort(key=lambda s: s.position)
        self.rows(PIPELINES)[pipeline.id] = stored

    async def get(
        self, location_id: uuid.UUID, pipeline_id: uuid.UUID, *, lock: str | None = None
    ) -> Pipeline | None:
        return copy.deepcopy(self._live(location_id, pipeline_id))

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Pipeline]:
        found = [
            p
            for p in self.rows(PIPELINES).values()
            if p.location_id == location_id and p.deleted_at is None and self.sees_location(location_id)
        ]
        return paginate(found, page)

    async def update(self, pipeline: Pipeline) -> None:
        stored = self.rows(PIPELINES).get(pipeline.id)
        if stored is None or stored.location_id != pipeline.location_id:
            return
        if not self.sees_location(stored.location_id):
            return
        self._check_name(pipeline)
        stored.name, stored.updated_at = pipeline.name, pipeline.updated_at
        stored.updated_by, stored.deleted_at = pipeline.updated_by, pipeline.deleted_at

    def _stages_of(self, pipeline_id: uuid.UUID) -> builtins.list[Stage]:
        stored = self.rows(PIPELINES).get(pipeline_id)
        if stored is None or not self.sees_location(stored.location_id):
            return []
        return stored.stages

    async def add_stage(self, stage: Stage) -> None:
        self.check_write(self.sees_location(stage.location_id), "pipeline_stages")
        stages = self._stages_of(stage.pipeline_id)
        for other in stages:
            if other.position >= stage.position:
                other.position += 1
                other.updated_at = stage.updated_at
        stages.append(copy.deepcopy(stage))
        stages.sort(key=lambda s: s.position)

    async def rename_stage(self, stage: Stage) -> None:
        for other in self._stages_of(stage.pipeline_id):
            if other.id == stage.id and other.location_id == stage.location_id:
                other.name, other.updated_at = stage.name, stage.updated_at

    async def reorder_stages(self, pipeline_id: uuid.UUID, stage_ids: builtins.list[uuid.UUID]) -> None:
        positions = {sid: i for i, sid in enumerate(stage_ids)}
        stages = self._stages_of(pipeline_id)
        now = self.clock.now()
        for stage in stages:
            if stage.id in positions:
                stage.position, stage.updated_at = positions[stage.id], now
        stages.sort(key=lambda s: s.position)

    async def remove_stage(self, stage: Stage) -> None:
        stages = self._stages_of(stage.pipeline_id)
        removed = next((s for s in stages if s.id == stage.id and s.location_id == stage.location_id), None)
        if removed is None:
            return
        stages.remove(removed)
        self.rows(REMOVED_STAGES)[removed.id] = removed
        for other in stages:
            if other.position > removed.position:
                other.position -= 1

    async def count_opportunities(
        self, location_id: uuid.UUID, pipeline_id: uuid.UUID, stage_id: uuid.UUID | None = None
    ) -> int:
        if not self.sees_location(location_id):
            return 0
        return sum(
            1
            for o in self.rows(OPPORTUNITIES).values()
            if o.location_id == location_id
            and o.pipeline_id == pipeline_id
            and o.deleted_at is None
            and (stage_id is None or o.stage_id == stage_id)
        )


def _board_key(o: Opportunity) -> tuple[str, str]:
    return (o.updated_at.isoformat(), str(o.id))


class MemoryOpportunityRepository(MemoryRepository):
    def _live(self, location_id: uuid.UUID) -> builtins.list[Opportunity]:
        if not self.sees_location(location_id):
            return []
        return [
            o
            for o in self.rows(OPPORTUNITIES).values()
            if o.location_id == location_id and o.deleted_at is None
        ]

    def _on_board(self, location_id: uuid.UUID, board_filter: BoardFilter) -> builtins.list[Opportunity]:
        contacts = self.rows(CONTACTS)
        tag = board_filter.contact_tag
        return [
            o
            for o in self._live(location_id)
            if (board_filter.status is None or o.status is board_filter.status)
            and (board_filter.assigned_user_id is None or o.assigned_user_id == board_filter.assigned_user_id)
            and (tag is None or (o.contact_id in contacts and tag in contacts[o.contact_id].tags))
        ]

    async def add(self, opportunity: Opportunity) -> bool:
        self.check_write(self.sees_location(opportunity.location_id), "opportunities")
        rows = self.rows(OPPORTUNITIES)
        if opportunity.id in rows:
            return False
        rows[opportunity.id] = copy.deepcopy(opportunity)
        return True

    async def get(
        self,
        location_id: uuid.UUID,
        opportunity_id: uuid.UUID,
        *,
        for_update: bool = False,
        include_deleted: bool = False,
    ) -> Opportunity | None:
        found = self.rows(OPPORTUNITIES).get(opportunity_id)
        if found is None or found.location_id != location_id or not self.sees_location(location_id):
            return None
        if found.deleted_at is not None and not include_deleted:
            return None
        return copy.deepcopy(found)

    async def update(self, opportunity: Opportunity) -> None:
        rows = self.rows(OPPORTUNITIES)
        stored = rows.get(opportunity.id)
        same_location = stored is not None and stored.location_id == opportunity.location_id
        if same_location and self.sees_location(opportunity.location_id):
            rows[opportunity.id] = copy.deepcopy(opportunity)

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
        found = [
            o
            for o in self._live(location_id)
            if (pipeline_id is None or o.pipeline_id == pipeline_id)
            and (stage_id is None or o.stage_id == stage_id)
            and (status is None or o.status is status)
            and (contact_id is None or o.contact_id == contact_id)
            and (assigned_user_id is None or o.assigned_user_id == assigned_user_id)
        ]
        return paginate(found, page, descending=True)

    async def in_stage_for_update(
        self, location_id: uuid.UUID, stage_id: uuid.UUID
    ) -> builtins.list[Opportunity]:
        found = sorted((o for o in self._live(location_id) if o.stage_id == stage_id), key=lambda o: o.id)
        return [copy.deepcopy(o) for o in found]

    async def add_move(self, move: OpportunityMove) -> None:
        self.check_write(self.sees_location(move.location_id), "opportunity_moves")
        self.rows(MOVES)[self._uow.store.next_serial()] = move

    async def moves(
        self, location_id: uuid.UUID, opportunity_id: uuid.UUID
    ) -> builtins.list[OpportunityMove]:
        if not self.sees_location(location_id):
            return []
        rows = self.rows(MOVES)
        return [
            rows[seq]
            for seq in sorted(rows)
            if rows[seq].opportunity_id == opportunity_id and rows[seq].location_id == location_id
        ]

    async def board_summaries(
        self, location_id: uuid.UUID, pipeline_id: uuid.UUID, board_filter: BoardFilter
    ) -> dict[uuid.UUID, StageSummary]:
        counts: dict[uuid.UUID, int] = defaultdict(int)
        totals: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
        for o in self._on_board(location_id, board_filter):
            if o.pipeline_id != pipeline_id:
                continue
            counts[o.stage_id] += 1
            if o.value is not None:
                by_currency = totals[o.stage_id]
                by_currency[o.value.currency] = by_currency.get(o.value.currency, 0) + o.value.amount
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
        wanted = set(stage_ids)
        by_stage: dict[uuid.UUID, builtins.list[Opportunity]] = defaultdict(list)
        for o in self._on_board(location_id, board_filter):
            if o.stage_id in wanted:
                by_stage[o.stage_id].append(o)
        return {
            sid: page_from_rows(
                [copy.deepcopy(o) for o in sorted(items, key=lambda o: (o.updated_at, o.id), reverse=True)][
                    : limit + 1
                ],
                limit,
                _board_key,
            )
            for sid, items in by_stage.items()
        }

    async def board_page(
        self, location_id: uuid.UUID, stage_id: uuid.UUID, board_filter: BoardFilter, page: PageRequest
    ) -> Page[Opportunity]:
        found = sorted(
            (o for o in self._on_board(location_id, board_filter) if o.stage_id == stage_id),
            key=lambda o: (o.updated_at, o.id),
            reverse=True,
        )
        if page.after is not None:
            try:
                updated, ident = page.after
                after = (datetime.fromisoformat(updated), uuid.UUID(ident))
            except ValueError:
                raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None
            found = [o for o in found if (o.updated_at, o.id) < after]
        if page.offset is not None:
            found = found[page.offset :]
        return page_from_rows([copy.deepcopy(o) for o in found[: page.limit + 1]], page.limit, _board_key)
