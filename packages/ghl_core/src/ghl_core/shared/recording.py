"""Writes the audit row and the domain event of a change, inside the change's own unit of work."""

from __future__ import annotations

import uuid
from typing import Any

from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.clock import Clock
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.uow import UnitOfWork
from ghl_core.tenancy.permissions import Actor


async def record_change(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    *,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID,
    agency_id: uuid.UUID,
    location_id: uuid.UUID | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    event_type: str | None = None,
) -> None:
    now = clock.now()
    await uow.audit.record(
        AuditEntry(
            agency_id=agency_id,
            location_id=location_id,
            actor_type=actor.kind.value,
            actor_id=actor.id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=before,
            after=after,
            created_at=now,
        )
    )
    if event_type:
        await uow.events.add(
            DomainEvent(
                type=event_type,
                agency_id=agency_id,
                location_id=location_id,
                entity_id=entity_id,
                payload={"before": before, "after": after},
                occurred_at=now,
            )
        )
