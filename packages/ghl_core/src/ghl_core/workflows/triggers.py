"""What a domain event means for workflows: the trigger it may fire, the event a wait or goal may be
waiting for, a reply that stops enrollments, a contact that left. The registry maps an event type to a
reader; a new context (appointments, forms, payments) adds its trigger with a reader here and a trigger
type in `trigger_types.TRIGGER_TYPES` (whose class says which occurrences it accepts), a few lines each."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ghl_core.shared.events import DomainEvent
from ghl_core.workflows.values import Trigger
from ghl_core.workflows.waits import WaitSpec


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One thing that happened to one contact."""

    contact_id: uuid.UUID
    trigger: str | None = None  # the trigger type it may fire
    data: Mapping[str, Any] = field(default_factory=dict)  # what trigger parameters are matched against
    event: str | None = None  # the wait/goal event name (waits.EVENTS)
    event_data: Mapping[str, str] = field(default_factory=dict)
    reply: bool = False  # an inbound message: stops enrollments of workflows that stop on reply
    removed: bool = False  # the contact was deleted, erased or merged away: its enrollments stop
    opportunity_id: uuid.UUID | None = None
    opportunity: Mapping[str, Any] | None = None


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _contact(event: DomainEvent) -> uuid.UUID:
    return event.entity_id


def _contact_created(e: DomainEvent) -> list[Occurrence]:
    return [Occurrence(_contact(e), "contact_created")]


def _contact_updated(e: DomainEvent) -> list[Occurrence]:
    return [Occurrence(_contact(e), "contact_changed", {"fields": tuple(e.payload.get("fields") or ())})]


def _tags(trigger: str, event: str | None) -> Callable[[DomainEvent], list[Occurrence]]:
    def read(e: DomainEvent) -> list[Occurrence]:
        return [
            Occurrence(_contact(e), trigger, {"tag": tag}, event, {"tag": tag} if event else {})
            for tag in e.payload.get("tags") or ()
        ]

    return read


def _dnd(e: DomainEvent) -> list[Occurrence]:
    channels = dict(e.payload.get("dnd_channels") or {})
    if e.payload.get("dnd") is not None:
        channels["all"] = bool(e.payload.get("dnd"))
    return [Occurrence(_contact(e), "dnd_changed", {"channels": tuple(channels)})]


def _entity(trigger: str) -> Callable[[DomainEvent], list[Occurrence]]:
    """Notes and tasks: the payload is {before, after}, each a snapshot naming the contact."""

    def read(e: DomainEvent) -> list[Occurrence]:
        after = e.payload.get("after") or {}
        contact_id = _uuid(after.get("contact_id")) if isinstance(after, Mapping) else None
        return [Occurrence(contact_id, trigger)] if contact_id else []

    return read


def _inbound(e: DomainEvent) -> list[Occurrence]:
    message = e.payload.get("message") or {}
    contact_id = _uuid(message.get("contact_id"))
    if contact_id is None or message.get("direction") != "inbound":
        return []
    channel = str(message.get("channel") or "")
    return [
        Occurrence(
            contact_id,
            "customer_replied",
            {"channel": channel},
            "contact.replied",
            {"channel": channel},
            reply=True,
        )
    ]


def _opportunity(trigger: str) -> Callable[[DomainEvent], list[Occurrence]]:
    def read(e: DomainEvent) -> list[Occurrence]:
        opp = e.payload.get("opportunity") or {}
        contact_id = _uuid(opp.get("contact_id"))
        if contact_id is None:
            return []
        stage = str(e.payload.get("to_stage_id") or opp.get("stage_id") or "")
        data = {
            "pipeline_id": str(opp.get("pipeline_id") or ""),
            "stage_id": stage,
            "status": str(e.payload.get("to_status") or opp.get("status") or ""),
        }
        reached = trigger in ("opportunity_created", "pipeline_stage_changed")
        return [
            Occurrence(
                contact_id,
                trigger,
                data,
                "opportunity.stage_reached" if reached else None,
                {"stage_id": stage} if reached else {},
                opportunity_id=e.entity_id,
                opportunity=opp,
            )
        ]

    return read


def _removed(e: DomainEvent) -> list[Occurrence]:
    return [Occurrence(_contact(e), removed=True)]


def _merged(e: DomainEvent) -> list[Occurrence]:
    loser = _uuid(e.payload.get("merged_contact_id"))
    return [Occurrence(loser, removed=True)] if loser else []


READERS: dict[str, Callable[[DomainEvent], list[Occurrence]]] = {
    "contact.created": _contact_created,
    "contact.updated": _contact_updated,
    "contact.tag_added": _tags("tag_added", "tag.added"),
    "contact.tag_removed": _tags("tag_removed", None),
    "contact.dnd_changed": _dnd,
    "note.created": _entity("note_added"),
    "task.created": _entity("task_added"),
    "task.completed": _entity("task_completed"),
    "message.inbound": _inbound,
    "opportunity.created": _opportunity("opportunity_created"),
    "opportunity.stage_changed": _opportunity("pipeline_stage_changed"),
    "opportunity.status_changed": _opportunity("opportunity_status_changed"),
    "contact.deleted": _removed,
    "contact.erased": _removed,
    "contact.merged": _merged,
}


def occurrences(event: DomainEvent) -> list[Occurrence]:
    reader = READERS.get(event.type)
    return reader(event) if reader is not None else []


def trigger_matches(trigger: Trigger, occ: Occurrence) -> bool:
    """Whether the trigger's own parameters accept the occurrence (its `filters` are checked apart)."""
    return trigger.type == occ.trigger and trigger.accepts(occ.data)


def event_matches(spec: WaitSpec, occ: Occurrence) -> bool:
    """Whether an event wait (or goal) is answered by the occurrence, its filters included."""
    if occ.event is None or spec.event != occ.event:
        return False
    return all(
        str(occ.event_data.get(key, "")).casefold() == str(value).casefold()
        for key, value in spec.event_filter.items()
    )
