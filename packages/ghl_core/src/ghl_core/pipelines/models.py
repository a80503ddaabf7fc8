"""The pipeline aggregate (a pipeline and its ordered stages) and the opportunity aggregate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class OpportunityStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in the currency's minor units (cents for USD, yen for JPY): never a float."""

    amount: int
    currency: str  # ISO 4217, upper case

    def snapshot(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}


@dataclass(slots=True)
class Stage:
    id: uuid.UUID
    pipeline_id: uuid.UUID
    location_id: uuid.UUID
    name: str
    position: int
    created_at: datetime
    updated_at: datetime

    def snapshot(self) -> dict[str, Any]:
        return {"id": str(self.id), "name": self.name, "position": self.position}


@dataclass(slots=True)
class Pipeline:
    id: uuid.UUID
    location_id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime
    stages: list[Stage] = field(default_factory=list)  # by position
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    def stage(self, stage_id: uuid.UUID) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "stages": [s.snapshot() for s in self.stages],
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }


@dataclass(slots=True)
class Opportunity:
    id: uuid.UUID
    location_id: uuid.UUID
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    contact_id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime
    last_status_change_at: datetime
    last_stage_change_at: datetime
    value: Money | None = None
    status: OpportunityStatus = OpportunityStatus.OPEN
    lost_reason: str | None = None
    assigned_user_id: uuid.UUID | None = None
    source: str | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "pipeline_id": str(self.pipeline_id),
            "stage_id": str(self.stage_id),
            "contact_id": str(self.contact_id),
            "name": self.name,
            "value": self.value.snapshot() if self.value else None,
            "status": self.status.value,
            "lost_reason": self.lost_reason,
            "assigned_user_id": str(self.assigned_user_id) if self.assigned_user_id else None,
            "source": self.source,
            "custom_fields": self.custom_fields,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }


@dataclass(frozen=True, slots=True)
class OpportunityMove:
    """One step of an opportunity's history. The first has no `from_*`: it is the creation, so the time
    spent in every stage, the first included, can be reported."""

    id: uuid.UUID
    opportunity_id: uuid.UUID
    location_id: uuid.UUID
    to_stage_id: uuid.UUID
    to_status: OpportunityStatus
    moved_at: datetime
    from_stage_id: uuid.UUID | None = None
    from_status: OpportunityStatus | None = None
    moved_by: uuid.UUID | None = None
    moved_by_type: str = "user"


@dataclass(frozen=True, slots=True)
class BoardFilter:
    assigned_user_id: uuid.UUID | None = None
    status: OpportunityStatus | None = None
    contact_tag: str | None = None


@dataclass(frozen=True, slots=True)
class StageSummary:
    """Count and totals of the opportunities of one stage that pass the board's filter."""

    count: int = 0
    totals: dict[str, int] = field(default_factory=dict)  # currency -> amount in minor units


@dataclass(frozen=True, slots=True)
class BoardColumn:
    stage: Stage
    summary: StageSummary
    items: list[Opportunity]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Board:
    pipeline: Pipeline
    columns: list[BoardColumn]
