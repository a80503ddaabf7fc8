"""Bodies of the pipelines, opportunities and board endpoints. Inputs are loosely typed on purpose: the
core validates every field and reports each bad one with its pointer. Money is integer minor units."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ghl_core.custom_fields.definitions import KEY_PATTERN
from ghl_core.pipelines.fields import MAX_STAGES
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
from ghl_core.shared.validation import MAX_NAME_LENGTH, MAX_TEXT_LENGTH
from ghl_http.schema_rules import NAME, TEXT, UUID, money, requires, rule
from ghl_http.schemas import Body

_STATUSES = [s.value for s in OpportunityStatus]
_VALUE = 'e.g. {"amount": 150000, "currency": "USD"}: minor units (cents) and an ISO 4217 code; null clears'


_NAME = rule(nullable=False, type="string", pattern=NAME, maxLength=MAX_NAME_LENGTH)
_STAGES = rule(
    nullable=False,
    type="array",
    minItems=1,
    maxItems=MAX_STAGES,
    items={
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": NAME, "maxLength": MAX_NAME_LENGTH}},
        "required": ["name"],
        "additionalProperties": False,
    },
)
# Values keyed by a custom field key of the location: a string, number, boolean, list of strings or null.
_CUSTOM_FIELDS = rule(
    nullable=False,
    propertyNames={"pattern": KEY_PATTERN.pattern},
    additionalProperties={
        "type": ["string", "number", "boolean", "array", "null"],
        "items": {"type": "string"},
    },
)


class StageNameIn(Body):
    model_config = ConfigDict(json_schema_extra=requires("name"))

    name: Annotated[Any, _NAME] = Field(None)


class PipelineIn(Body):
    model_config = ConfigDict(json_schema_extra=requires("name"))

    name: Annotated[Any, _NAME] = Field(None)
    stages: Annotated[list[Any] | None, _STAGES] = Field(
        None, description='In order, e.g. [{"name": "New"}, {"name": "Won"}]'
    )


class PipelinePatch(Body):
    name: Annotated[Any, _NAME] = Field(None)


class StageIn(Body):
    model_config = ConfigDict(json_schema_extra=requires("name"))

    name: Annotated[Any, _NAME] = Field(None)
    position: Annotated[Any, rule(nullable=False, type="integer", minimum=0)] = Field(
        None, description="0 for the first; left out: at the end"
    )


class StageOrderIn(Body):
    model_config = ConfigDict(json_schema_extra=requires("stage_ids"))

    stage_ids: Annotated[
        list[Any] | None,
        rule(nullable=False, type="array", minItems=1, uniqueItems=True, items={"type": "string", **UUID}),
    ] = Field(None, description="Every stage of the pipeline, in the new order")


class OpportunityPatch(Body):
    stage_id: Annotated[str | None, rule(nullable=False, **UUID)] = Field(
        None, description="A stage of the same pipeline (recorded as a move)"
    )
    contact_id: Annotated[str | None, rule(nullable=False, **UUID)] = Field(None)
    name: Annotated[str | None, rule(nullable=False, pattern=NAME, maxLength=MAX_NAME_LENGTH)] = Field(None)
    value: Annotated[dict[str, Any] | None, money()] = Field(None, description=_VALUE)
    status: Annotated[str | None, rule(nullable=False, enum=_STATUSES)] = Field(
        None, description="open, won, lost or abandoned (recorded as a move)"
    )
    lost_reason: Annotated[str | None, rule(pattern=TEXT, maxLength=MAX_TEXT_LENGTH)] = Field(
        None, description="Only with status lost"
    )
    assigned_user_id: Annotated[str | None, rule(**UUID)] = Field(None)
    source: Annotated[str | None, rule(pattern=TEXT, maxLength=MAX_TEXT_LENGTH)] = Field(None)
    custom_fields: Annotated[dict[str, Any] | None, _CUSTOM_FIELDS] = Field(
        None, description="Values keyed by field key; null clears one"
    )


class OpportunityIn(OpportunityPatch):
    model_config = ConfigDict(json_schema_extra=requires("pipeline_id", "contact_id", "name"))

    pipeline_id: Annotated[str | None, rule(nullable=False, **UUID)] = Field(None)


class MoveIn(Body):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    stage_id: Annotated[str | None, rule(nullable=False, **UUID)] = Field(None)
    status: Annotated[str | None, rule(nullable=False, enum=_STATUSES)] = Field(None)
    lost_reason: Annotated[str | None, rule(pattern=TEXT, maxLength=MAX_TEXT_LENGTH)] = Field(None)


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
