"""Writes the audit row and the domain event of a change, inside the change's own unit of work.

The audit trail and the event outbox are ports every context writes to, so they are declared here, on
the floor; the audit context adds reading the trail. An actor is known here only by what the audit row
keeps of it (its kind and id), so `shared/` needs no tenancy type.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.clock import Clock
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.uow import Transaction


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        entity_type: str | None = None,
        entity_id: uuid.UUID | None = None,
        since: datetime | None = None,
    ) -> Page[AuditEntry]: ...


class EventOutbox(Protocol):
    async def add(self, event: DomainEvent) -> None: ...

    async def add_many(self, events: list[DomainEvent]) -> None:
        """Several events in one statement (bulk work: a campaign batch)."""
        ...


class Recording(Transaction, Protocol):
    """A unit of work that can record a change: its audit row and its domain events."""

    audit: AuditLog
    events: EventOutbox


class _Kind(Protocol):
    @property
    def value(self) -> str: ...


class ActorRef(Protocol):
    """What an audit row keeps of who acted (tenancy's `Actor` is one)."""

    @property
    def kind(self) -> _Kind: ...

    @property
    def id(self) -> uuid.UUID | None: ...


async def record_change(
    uow: Recording,
    clock: Clock,
    actor: ActorRef,
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


class Snapshotted(Protocol):
    """An entity whose change is audited as a whole: its id, its location, and its audit snapshot."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def location_id(self) -> uuid.UUID: ...

    def snapshot(self) -> dict[str, Any]: ...


async def record_entity_change(
    uow: Recording,
    clock: Clock,
    actor: ActorRef,
    *,
    action: str,
    entity_type: str,
    agency_id: uuid.UUID,
    before: Snapshotted | None,
    after: Snapshotted,
    event_type: str | None = None,
) -> None:
    """`record_change` for the common case: the row is `after`'s, in its location, with both snapshots
    (`before` None for a creation). Services that audit something else (a partial view, no location)
    call `record_change` themselves."""
    await record_change(
        uow,
        clock,
        actor,
        action=action,
        entity_type=entity_type,
        entity_id=after.id,
        agency_id=agency_id,
        location_id=after.location_id,
        before=before.snapshot() if before else None,
        after=after.snapshot(),
        event_type=event_type,
    )
