"""/api/v1/pipelines (with stages and the board) and /api/v1/opportunities (with moves and history).
The location comes from the credential."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ghl_core.contacts.fields import MAX_TAG
from ghl_core.pipelines.fields import board_filter, parse_filters
from ghl_core.pipelines.models import OpportunityStatus
from ghl_core.pipelines.opportunities import OpportunityService
from ghl_core.pipelines.services import PipelineService
from ghl_core.shared.ids import parse_id
from ghl_core.shared.pagination import MAX_LIMIT, PageRequest
from ghl_core.tenancy.permissions import Actor
from ghl_http.schema_rules import TAG, UUID
from ghl_http.schemas import ListOf, page_of
from ghl_http.schemas_pipelines import (
    BoardOut,
    MoveIn,
    MovesOut,
    OpportunityIn,
    OpportunityOut,
    OpportunityPatch,
    PipelineIn,
    PipelineOut,
    PipelinePatch,
    StageIn,
    StageNameIn,
    StageOrderIn,
)

# Parsed by the core (one problem for every bad filter); the schemas say what it takes.
Query = Annotated[str | None, QueryParameter(schema_extra=UUID)]
AssigneeQuery = Annotated[
    str | None, QueryParameter(description="Only this user's opportunities", schema_extra=UUID)
]
StatusQuery = Annotated[
    str | None,
    QueryParameter(
        description="open, won, lost or abandoned",
        schema_extra={"enum": [s.value for s in OpportunityStatus]},
    ),
]
TagQuery = Annotated[
    str | None,
    QueryParameter(
        description="Only opportunities whose contact has this tag",
        schema_extra={"pattern": TAG, "maxLength": MAX_TAG},
    ),
]
BoardLimit = Annotated[
    int | None,
    QueryParameter(ge=1, le=MAX_LIMIT, description="Opportunities per stage (1 to 100, default 20)"),
]


class PipelinesController(Controller):
    path = "/pipelines"
    tags = ["pipelines"]

    @get("/", summary="List pipelines with their stages, oldest first")
    async def list_pipelines(
        self,
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[PipelineOut]:
        return ListOf[PipelineOut].model_validate(page_of(await pipelines.list(actor, page), PipelineOut.of))

    @post("/", status_code=HTTP_201_CREATED, summary="Create a pipeline with its stages")
    async def create_pipeline(
        self,
        data: JSONBody[PipelineIn],
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
    ) -> PipelineOut:
        return PipelineOut.of(await pipelines.create(actor, data.model_dump(exclude_unset=True)))

    @get("/{pipeline_id:uuid}", summary="Get a pipeline with its stages")
    async def get_pipeline(
        self,
        pipeline_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
    ) -> PipelineOut:
        return PipelineOut.of(await pipelines.get(actor, pipeline_id))

    @patch("/{pipeline_id:uuid}", summary="Rename a pipeline")
    async def update_pipeline(
        self,
        pipeline_id: FromPath[uuid.UUID],
        data: JSONBody[PipelinePatch],
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
    ) -> PipelineOut:
        return PipelineOut.of(await pipelines.update(actor, pipeline_id, data.model_dump(exclude_unset=True)))

    @delete(
        "/{pipeline_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a pipeline with no opportunities",
    )
    async def delete_pipeline(
        self,
        pipeline_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
    ) -> None:
        await pipelines.delete(actor, pipeline_id)

    @post(
        "/{pipeline_id:uuid}/stages",
        status_code=HTTP_201_CREATED,
        summary="Add a stage (at a position or last)",
    )
    async def add_stage(
        self,
        pipeline_id: FromPath[uuid.UUID],
        data: JSONBody[StageIn],
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
    ) -> PipelineOut:
        return PipelineOut.of(
            await pipelines.add_stage(actor, pipeline_id, data.model_dump(exclude_unset=True))
        )

    @put("/{pipeline_id:uuid}/stages/order", status_code=HTTP_200_OK, summary="Reorder every stage")
    async def reorder_stages(
        self,
        pipeline_id: FromPath[uuid.UUID],
        data: JSONBody[StageOrderIn],
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
    ) -> PipelineOut:
        return PipelineOut.of(
            await pipelines.reorder_stages(actor, pipeline_id, data.model_dump(exclude_unset=True))
        )

    @patch("/{pipeline_id:uuid}/stages/{stage_id:uuid}", summary="Rename a stage")
    async def rename_stage(
        self,
        pipeline_id: FromPath[uuid.UUID],
        stage_id: FromPath[uuid.UUID],
        data: JSONBody[StageNameIn],
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
    ) -> PipelineOut:
        return PipelineOut.of(
            await pipelines.rename_stage(actor, pipeline_id, stage_id, data.model_dump(exclude_unset=True))
        )

    @delete(
        "/{pipeline_id:uuid}/stages/{stage_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Delete a stage: only when empty, or moving its opportunities to ?move_to=<stage id>",
    )
    async def delete_stage(
        self,
        pipeline_id: FromPath[uuid.UUID],
        stage_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
        move_to: Annotated[
            str | None, QueryParameter(description="The stage its opportunities move to", schema_extra=UUID)
        ] = None,
    ) -> PipelineOut:
        target = parse_id(move_to, "/move_to") if move_to is not None else None
        return PipelineOut.of(await pipelines.delete_stage(actor, pipeline_id, stage_id, target))

    @get("/{pipeline_id:uuid}/board", summary="Per stage: count, total value per currency, first page")
    async def board(
        self,
        pipeline_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
        assigned_user_id: AssigneeQuery = None,
        status: StatusQuery = None,
        contact_tag: TagQuery = None,
        limit: BoardLimit = None,
    ) -> BoardOut:
        per_stage = PageRequest.parse(limit, None, None).limit
        found = await pipelines.board(
            actor, pipeline_id, board_filter(assigned_user_id, status, contact_tag), per_stage
        )
        return BoardOut.of(found)

    @get(
        "/{pipeline_id:uuid}/board/stages/{stage_id:uuid}", summary="A further page of one stage of the board"
    )
    async def board_stage(
        self,
        pipeline_id: FromPath[uuid.UUID],
        stage_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        pipelines: NamedDependency[PipelineService],
        page: NamedDependency[PageRequest],
        assigned_user_id: AssigneeQuery = None,
        status: StatusQuery = None,
        contact_tag: TagQuery = None,
    ) -> ListOf[OpportunityOut]:
        found = await pipelines.board_stage(
            actor, pipeline_id, stage_id, board_filter(assigned_user_id, status, contact_tag), page
        )
        return ListOf[OpportunityOut].model_validate(page_of(found, OpportunityOut.of))


class OpportunitiesController(Controller):
    path = "/opportunities"
    tags = ["opportunities"]

    @get("/", summary="List opportunities, newest first")
    async def list_opportunities(
        self,
        actor: NamedDependency[Actor],
        opportunities: NamedDependency[OpportunityService],
        page: NamedDependency[PageRequest],
        pipeline_id: Query = None,
        stage_id: Query = None,
        status: StatusQuery = None,
        contact_id: Query = None,
        assigned_user_id: AssigneeQuery = None,
    ) -> ListOf[OpportunityOut]:
        filters = parse_filters(
            pipeline_id=pipeline_id,
            stage_id=stage_id,
            status=status,
            contact_id=contact_id,
            assigned_user_id=assigned_user_id,
        )
        found = await opportunities.list(actor, page, **filters)
        return ListOf[OpportunityOut].model_validate(page_of(found, OpportunityOut.of))

    @post("/", status_code=HTTP_201_CREATED, summary="Create an opportunity (first stage unless stage_id)")
    async def create_opportunity(
        self,
        data: JSONBody[OpportunityIn],
        actor: NamedDependency[Actor],
        opportunities: NamedDependency[OpportunityService],
    ) -> OpportunityOut:
        return OpportunityOut.of(await opportunities.create(actor, data.model_dump(exclude_unset=True)))

    @get("/{opportunity_id:uuid}", summary="Get an opportunity")
    async def get_opportunity(
        self,
        opportunity_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        opportunities: NamedDependency[OpportunityService],
    ) -> OpportunityOut:
        return OpportunityOut.of(await opportunities.get(actor, opportunity_id))

    @patch(
        "/{opportunity_id:uuid}",
        summary="Change some fields (a stage or status change is recorded as a move)",
    )
    async def update_opportunity(
        self,
        opportunity_id: FromPath[uuid.UUID],
        data: JSONBody[OpportunityPatch],
        actor: NamedDependency[Actor],
        opportunities: NamedDependency[OpportunityService],
    ) -> OpportunityOut:
        return OpportunityOut.of(
            await opportunities.update(actor, opportunity_id, data.model_dump(exclude_unset=True))
        )

    @delete("/{opportunity_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete an opportunity (soft)")
    async def delete_opportunity(
        self,
        opportunity_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        opportunities: NamedDependency[OpportunityService],
    ) -> None:
        await opportunities.delete(actor, opportunity_id)

    @post(
        "/{opportunity_id:uuid}/move", status_code=HTTP_200_OK, summary="Move to another stage and/or status"
    )
    async def move_opportunity(
        self,
        opportunity_id: FromPath[uuid.UUID],
        data: JSONBody[MoveIn],
        actor: NamedDependency[Actor],
        opportunities: NamedDependency[OpportunityService],
    ) -> OpportunityOut:
        return OpportunityOut.of(
            await opportunities.move(actor, opportunity_id, data.model_dump(exclude_unset=True))
        )

    @get(
        "/{opportunity_id:uuid}/moves", summary="The history: every move (from, to, when, who), oldest first"
    )
    async def opportunity_moves(
        self,
        opportunity_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        opportunities: NamedDependency[OpportunityService],
    ) -> MovesOut:
        return MovesOut.of(await opportunities.moves(actor, opportunity_id))
