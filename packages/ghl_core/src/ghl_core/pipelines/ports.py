"""Repositories of the pipelines context. Every query is scoped to the given location, whatever the
connection's row-level security would also allow (the operator's connection bypasses it)."""

from __future__ import annotations

import builtins
import uuid
from typing import Protocol

from ghl_core.contacts.ports import ContactRepository
from ghl_core.pipelines.models import (
    BoardFilter,
    Opportunity,
    OpportunityMove,
    OpportunityStatus,
    Pipeline,
    Stage,
    StageSummary,
)
from ghl_core.shared.errors import Conflict
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import Recording
from ghl_core.tenancy.ports import AssigneesUnitOfWork, LocationRepository


class DuplicateName(Conflict):
    code = "duplicate_name"
    title = "Name already used"


class PipelineRepository(Protocol):
    async def add(self, pipeline: Pipeline) -> None:
        """With its stages. Raises DuplicateName when a live pipeline of the location has the name."""
        ...

    async def get(
        self, location_id: uuid.UUID, pipeline_id: uuid.UUID, *, lock: str | None = None
    ) -> Pipeline | None:
        """A live pipeline with its live stages by position. `lock` is "share" (its stages must not
        change under a write to its opportunities) or "update" (its stages are about to change)."""
        ...

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Pipeline]:
        """Oldest first, the order agencies set their pipelines up in."""
        ...

    async def update(self, pipeline: Pipeline) -> None:
        """Name and stamps (and deleted_at). Raises DuplicateName as add does."""
        ...

    async def add_stage(self, stage: Stage) -> None:
        """Inserts at stage.position, shifting the stages at and after it down by one."""
        ...

    async def rename_stage(self, stage: Stage) -> None: ...

    async def reorder_stages(self, pipeline_id: uuid.UUID, stage_ids: builtins.list[uuid.UUID]) -> None:
        """Positions 0..n-1 in the given order (the ids are exactly the pipeline's live stages)."""
        ...

    async def remove_stage(self, stage: Stage) -> None:
        """Soft-deletes the stage (kept for the history that names it) and closes the gap."""
        ...

    async def count_opportunities(
        self, location_id: uuid.UUID, pipeline_id: uuid.UUID, stage_id: uuid.UUID | None = None
    ) -> int:
        """Live opportunities of the pipeline (of one stage when given)."""
        ...


class OpportunityRepository(Protocol):
    async def add(self, opportunity: Opportunity) -> bool:
        """Stores it unless an opportunity with its id exists (in any location): then False, nothing
        stored."""
        ...

    async def get(
        self,
        location_id: uuid.UUID,
        opportunity_id: uuid.UUID,
        *,
        for_update: bool = False,
        include_deleted: bool = False,
    ) -> Opportunity | None:
        """Live only, unless `include_deleted`. With `for_update`, a row lock held to the end of the
        transaction, so racing moves of one opportunity run one after the other and its history stays a
        chain."""
        ...

    async def update(self, opportunity: Opportunity) -> None: ...

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
        """Newest first."""
        ...

    async def in_stage_for_update(
        self, location_id: uuid.UUID, stage_id: uuid.UUID
    ) -> builtins.list[Opportunity]:
        """The stage's live opportunities, locked (a stage being deleted moves them)."""
        ...

    async def add_move(self, move: OpportunityMove) -> None: ...

    async def moves(
        self, location_id: uuid.UUID, opportunity_id: uuid.UUID
    ) -> builtins.list[OpportunityMove]:
        """In the order they happened."""
        ...

    async def board_summaries(
        self, location_id: uuid.UUID, pipeline_id: uuid.UUID, board_filter: BoardFilter
    ) -> dict[uuid.UUID, StageSummary]:
        """Count and totals per stage (stages with none are left out), in one grouped query."""
        ...

    async def board_pages(
        self,
        location_id: uuid.UUID,
        stage_ids: builtins.list[uuid.UUID],
        board_filter: BoardFilter,
        limit: int,
    ) -> dict[uuid.UUID, Page[Opportunity]]:
        """The first page of every stage, most recently updated first, in one query."""
        ...

    async def board_page(
        self, location_id: uuid.UUID, stage_id: uuid.UUID, board_filter: BoardFilter, page: PageRequest
    ) -> Page[Opportunity]:
        """A further page of one stage."""
        ...


class PipelinesUnitOfWork(AssigneesUnitOfWork, Recording, Protocol):
    """What the pipelines context touches in one transaction."""

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def contacts(self) -> ContactRepository: ...

    @property
    def pipelines(self) -> PipelineRepository: ...

    @property
    def opportunities(self) -> OpportunityRepository: ...
