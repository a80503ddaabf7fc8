"""The audit rows, domain events and move history of opportunity changes, written in the change's own
unit of work. One event per kind of change, named as integrators expect."""

from __future__ import annotations

import uuid
from typing import Any

from ghl_core.pipelines.models import Opportunity, OpportunityMove
from ghl_core.pipelines.ports import PipelinesUnitOfWork
from ghl_core.shared.clock import Clock
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.ids import new_id
from ghl_core.shared.recording import record_entity_change
from ghl_core.tenancy.permissions import Actor

# Fields whose change has an event of its own; any other change is `opportunity.updated`.
_OWN_EVENTS = {"stage_id", "status", "lost_reason", "value", "assigned_user_id"}


def move_of(actor: Actor, before: Opportunity | None, after: Opportunity) -> OpportunityMove:
    return OpportunityMove(
        id=new_id(),
        opportunity_id=after.id,
        location_id=after.location_id,
        from_stage_id=before.stage_id if before else None,
        from_status=before.status if before else None,
        to_stage_id=after.stage_id,
        to_status=after.status,
        moved_at=after.updated_at,
        moved_by=actor.id,
        moved_by_type=actor.kind.value,
    )


def change_events(before: Opportunity, after: Opportunity) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    if before.stage_id != after.stage_id:
        events.append(
            (
                "opportunity.stage_changed",
                {"from_stage_id": str(before.stage_id), "to_stage_id": str(after.stage_id)},
            )
        )
    if before.status != after.status:
        events.append(
            (
                "opportunity.status_changed",
                {"from_status": before.status.value, "to_status": after.status.value},
            )
        )
    if before.value != after.value:
        events.append(
            (
                "opportunity.value_changed",
                {
                    "from_value": before.value.snapshot() if before.value else None,
                    "to_value": after.value.snapshot() if after.value else None,
                },
            )
        )
    if before.assigned_user_id != after.assigned_user_id:
        events.append(
            (
                "opportunity.assigned",
                {
                    "from_user_id": str(before.assigned_user_id) if before.assigned_user_id else None,
                    "to_user_id": str(after.assigned_user_id) if after.assigned_user_id else None,
                },
            )
        )
    old, new = before.snapshot(), after.snapshot()
    other = sorted(k for k in new if old.get(k) != new.get(k) and k not in _OWN_EVENTS)
    if other:
        events.append(("opportunity.updated", {"fields": other}))
    return events


async def record_opportunity(
    uow: PipelinesUnitOfWork,
    clock: Clock,
    actor: Actor,
    agency_id: uuid.UUID,
    action: str,
    before: Opportunity | None,
    after: Opportunity,
) -> None:
    """The audit row, then the events; a move row when the stage or status changed (or on creation)."""
    await record_entity_change(
        uow,
        clock,
        actor,
        action=action,
        entity_type="opportunity",
        agency_id=agency_id,
        before=before,
        after=after,
    )
    if before is None:
        events: list[tuple[str, dict[str, Any]]] = [("opportunity.created", {})]
    elif action == "delete":
        events = [("opportunity.deleted", {})]
    else:
        events = change_events(before, after)
    if before is None or (before.stage_id, before.status) != (after.stage_id, after.status):
        await uow.opportunities.add_move(move_of(actor, before, after))
    snapshot = after.snapshot()
    for event_type, extra in events:
        await uow.events.add(
            DomainEvent(
                type=event_type,
                agency_id=agency_id,
                location_id=after.location_id,
                entity_id=after.id,
                payload={"opportunity": snapshot, **extra},
                # The events of one change share its instant.
                occurred_at=after.updated_at,
            )
        )
