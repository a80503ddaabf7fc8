"""Domain events: recorded by aggregates and services, written in the same transaction as the change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ghl_core.shared.ids import new_id


@dataclass(frozen=True, slots=True)
class DomainEvent:
    type: str  # e.g. "LocationCreate", named as GoHighLevel integrators know them
    agency_id: uuid.UUID
    location_id: uuid.UUID | None
    entity_id: uuid.UUID
    payload: dict[str, Any]
    occurred_at: datetime
    id: uuid.UUID = field(default_factory=new_id)
