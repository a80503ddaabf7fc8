"""Bodies of the pipelines, opportunities and board endpoints. Inputs are loosely typed on purpose: the
core validates every field and reports each bad one with its pointer. Money is integer minor units."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ghl_core.pipelines.models import (
    Board,
    BoardColumn,
    Money,
    Opportunity,
    OpportunityMove,
    OpportunityStatus,
    Pipeline,
    Stage,
)
from ghl_http.schemas import Body

_VALUE = 'e.g. {"amount": 150000, "currency": "USD"}: minor units (cents) and an ISO 4217 code; null clears'


class StageNameIn(Body):
    name: Any = None


class PipelineIn(Body):
    name: Any = None
    stages: list[Any] | None = Field(None, description='In order, e.g. [{"name": "New"}, {"name": "Won"}]')


class PipelinePatch(Body):
    name: Any = None


class StageIn(Body):
    name: Any = None
    position: Any = Field(None, description="0 for the first; left out: at the end")


class StageOrderIn(Body):
    stage_ids: list[Any] | None = Field(None, description="Every stage of the pipeline, in the new order")


class OpportunityPatch(Body):
    stage_id: str | None = Field(None, description="A stage of the same pipeline (recorded as a move)")
    contact_id: str | None = None
    name: str | None = None
    value: dict[str, Any] | None = Field(None, description=_VALUE)
    status: str | None = Field(None, description="open, won, lost or abandoned (recorded as a move)")
    lost_reason: str | None = Field(None, description="Only with status lost")
    assigned_user_id: str | None = None
    source: str | None = None
    custom_fields: dict[str, Any] | None = Field(
        None, description="Values keyed by field key; null clears one"
    )


class OpportunityIn(OpportunityPatch):
    pipeline_id: str | None = None


class MoveIn(Body):
    stage_id: str | None = None
    status: str | None = None
    lost_reason: str | None = None


class StageOut(BaseModel):
    id: uuid.UUID
    name: str
    position: int

    @classmethod
    def of(cls, s: Stage) -> StageOut:
        return cls(id=s.id, name=s.name, position=s.position)


class PipelineOut(BaseModel):
    id: uuid.UUID
    name: str
    stages: list[StageOut]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Pipeline) -> PipelineOut:
        return cls(
            id=p.id,
            name=p.name,
            stages=[StageOut.of(s) for s in p.stages],
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class MoneyOut(BaseModel):
    amount: int = Field(description="Minor units of the currency (cents for USD)")
    currency: str

    @classmethod
    def of(cls, m: Money) -> MoneyOut:
        return cls(amount=m.amount, currency=m.currency)


class OpportunityOut(BaseModel):
    id: uuid.UUID
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    contact_id: uuid.UUID
    name: str
    value: MoneyOut | None
    status: OpportunityStatus
    lost_reason: str | None
    assigned_user_id: uuid.UUID | None
    source: str | None
    custom_fields: dict[str, Any]
    last_status_change_at: datetime
    last_stage_change_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, o: Opportunity) -> OpportunityOut:
        return cls(
            id=o.id,
            pipeline_id=o.pipeline_id,
            stage_id=o.stage_id,
            contact_id=o.contact_id,
            name=o.name,
            value=MoneyOut.of(o.value) if o.value else None,
            status=o.status,
            lost_reason=o.lost_reason,
            assigned_user_id=o.assigned_user_id,
            source=o.source,
            custom_fields=o.custom_fields,
            last_status_change_at=o.last_status_change_at,
            last_stage_change_at=o.last_stage_change_at,
            created_at=o.created_at,
            updated_at=o.updated_at,
        )


class MoveOut(BaseModel):
    id: uuid.UUID
    from_stage_id: uuid.UUID | None = Field(description="null for the first entry: the creation")
    to_stage_id: uuid.UUID
    from_status: OpportunityStatus | None
    to_status: OpportunityStatus
    moved_at: datetime
    until: datetime | None = Field(
        description="When the next move left this stage and status; null: still there"
    )
    moved_by: uuid.UUID | None
    moved_by_type: str = Field(description="user, api_key or operator")


class MovesOut(BaseModel):
    items: list[MoveOut]

    @classmethod
    def of(cls, moves: list[OpportunityMove]) -> MovesOut:
        ends = [m.moved_at for m in moves[1:]] + [None]
        return cls(
            items=[
                MoveOut(
                    id=m.id,
                    from_stage_id=m.from_stage_id,
                    to_stage_id=m.to_stage_id,
                    from_status=m.from_status,
                    to_status=m.to_status,
                    moved_at=m.moved_at,
                    until=end,
                    moved_by=m.moved_by,
                    moved_by_type=m.moved_by_type,
                )
                for m, end in zip(moves, ends, strict=True)
            ]
        )


class BoardStageOut(BaseModel):
    stage: StageOut
    count: int = Field(description="Opportunities of the stage that pass the filters")
    totals: list[MoneyOut] = Field(description="Their total value, one entry per currency")
    items: list[OpportunityOut] = Field(description="The first page, most recently updated first")
    next_cursor: str | None = Field(description="Pass to .../board/stages/{stage_id}?cursor= for more")

    @classmethod
    def of(cls, c: BoardColumn) -> BoardStageOut:
        return cls(
            stage=StageOut.of(c.stage),
            count=c.summary.count,
            totals=[MoneyOut(amount=a, currency=cur) for cur, a in c.summary.totals.items()],
            items=[OpportunityOut.of(o) for o in c.items],
            next_cursor=c.next_cursor,
        )


class BoardOut(BaseModel):
    pipeline: PipelineOut
    stages: list[BoardStageOut]

    @classmethod
    def of(cls, b: Board) -> BoardOut:
        return cls(pipeline=PipelineOut.of(b.pipeline), stages=[BoardStageOut.of(c) for c in b.columns])
