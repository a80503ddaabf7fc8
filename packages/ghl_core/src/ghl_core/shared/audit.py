"""The audit trail: one entry per create, update and delete, in the change's own transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ghl_core.shared.ids import new_id


@dataclass(frozen=True, slots=True)
class AuditEntry:
    agency_id: uuid.UUID
    location_id: uuid.UUID | None
    actor_type: str  # user | api_key | operator | system
    actor_id: uuid.UUID | None
    action: str  # create | update | delete | revoke | ...
    entity_type: str
    entity_id: uuid.UUID
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime
    request_id: str | None = None
    id: uuid.UUID = field(default_factory=new_id)
