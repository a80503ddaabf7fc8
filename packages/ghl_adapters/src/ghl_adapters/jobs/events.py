"""Events leave the database through jobs. At commit, beside its events, a transaction writes one
`event_outbox` row per event and consumer that reads it (`INTERESTS`) and enqueues an `events.consume` job
per consumer and location.
That job drains the consumer's rows for the location in order, so:

- one job can take many commits' events (a commit that finds a job waiting queues none), so a burst of
  writes costs one run, not one run per write;
- only one runs at a time per consumer and location (the lock), which keeps a location's events in order;
- each consumer has its own rows and jobs: a failing consumer is retried without holding the others back;
- rows are deleted after the consumer handled them; a crash in between hands them over again, and
  consumers are idempotent (the webhook fan-out inserts one delivery per subscription and event)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ghl_adapters.sql import tables as t
from ghl_core.jobs.ports import JobRequest
from ghl_core.shared.events import DomainEvent
from ghl_core.webhooks.event_types import public_type
from ghl_core.workflows.triggers import READERS

# Every consumer of domain events, by name. Later contexts (workflows, search) add theirs here.
CONSUMERS: tuple[str, ...] = ("webhooks", "workflows")
# Which domain events each consumer reads. An event no consumer reads gets no outbox row and queues no
# job (it stays in the event log, `domain_events`): a campaign's `message.outbound` and `message.sent`,
# for one, would otherwise cost two rows each and a consumer run that finds nothing to do. A consumer
# not named here reads every event.
INTERESTS: dict[str, Callable[[str], bool]] = {
    "webhooks": lambda event_type: public_type(event_type) is not None,
    "workflows": lambda event_type: event_type in READERS,
}
CONSUME_KIND = "events.consume"
BATCH = 500

# Writes the outbox rows, holds each (consumer, location) advisory lock in shared mode until commit, and
# answers the pairs that have no consumer job waiting yet (those need one queued). The shared lock closes a
# race: a commit that saw a job waiting and queued none must be visible to that job when it runs, so the job
# first takes the same lock exclusively (a barrier: it waits for every such commit to end). The rows come
# as one JSON document, one entry per (consumer, location) with its events in order (unnested in that
# order, so the rows' ids keep it): a few strings per event to make, where four bound arrays had psycopg
# escape every element in Python.
_OUTBOX_WRITE = text(
    """
    WITH g AS (
      SELECT * FROM json_to_recordset(CAST(:groups AS json)) AS g(c text, a uuid, l uuid, e uuid[])
    ), written AS (
      INSERT INTO event_outbox (consumer, agency_id, location_id, event_id)
      SELECT g.c, g.a, g.l, x.id FROM g, unnest(g.e) AS x(id)
    ), pairs AS (
      SELECT c, l, 'events:' || c || ':' || l AS name FROM g
    ), held AS (
      SELECT c, l, name, pg_advisory_xact_lock_shared(hashtextextended(name, 0)) AS locked FROM pairs
    )
    SELECT c AS consumer, l AS location_id FROM held
    WHERE NOT EXISTS (
      SELECT 1 FROM procrastinate_jobs j WHERE j.queueing_lock = held.name AND j.status = 'todo'
    )
    """
)
_BARRIER = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")
_OUTBOX_TAKE = text(
    "SELECT id, event_id FROM event_outbox WHERE consumer = :consumer AND location_id = :location "
    "ORDER BY id LIMIT :limit"
)
_OUTBOX_DONE = text("DELETE FROM event_outbox WHERE id = ANY(CAST(:ids AS bigint[]))")


def lock_name(consumer: str, location_id: uuid.UUID) -> str:
    return f"events:{consumer}:{location_id}"


def consume_jobs(pairs: Iterable[tuple[str, uuid.UUID]]) -> list[JobRequest]:
    """One consumer job per (consumer, location): one runs at a time (lock), one waits at most (queueing
    lock, which also makes the waiting one cheap to find)."""
    return [
        JobRequest(
            kind=CONSUME_KIND,
            args={"consumer": consumer},
            location_id=location_id,
            lock=lock_name(consumer, location_id),
            queueing_lock=lock_name(consumer, location_id),
        )
        for consumer, location_id in dict.fromkeys(pairs)
    ]


async def write_outbox(
    conn: AsyncConnection, events: Sequence[DomainEvent], consumers: Sequence[str] = CONSUMERS
) -> list[tuple[str, uuid.UUID]]:
    """The outbox rows of the events a transaction recorded, for the consumers that read them (agency-level
    events have no consumer yet); answers the (consumer, location) pairs that need a consumer job queued."""
    readers: dict[str, list[str]] = {}  # event type -> the consumers that read it
    groups: dict[tuple[str, uuid.UUID], tuple[uuid.UUID, list[str]]] = {}
    for e in events:
        if e.location_id is None:
            continue
        if (named := readers.get(e.type)) is None:
            named = readers[e.type] = [c for c in consumers if c not in INTERESTS or INTERESTS[c](e.type)]
        for c in named:
            groups.setdefault((c, e.location_id), (e.agency_id, []))[1].append(str(e.id))
    if not groups:
        return []
    document = [
        {"c": c, "a": str(agency), "l": str(location), "e": ids}
        for (c, location), (agency, ids) in groups.items()
    ]
    result = await conn.execute(_OUTBOX_WRITE, {"groups": json.dumps(document, separators=(",", ":"))})
    return [(r.consumer, r.location_id) for r in result]


async def barrier(engine: AsyncEngine, consumer: str, location_id: uuid.UUID) -> None:
    """Waits for every transaction that wrote rows for this consumer and location and is still open."""
    async with engine.begin() as conn:
        await conn.execute(_BARRIER, {"name": lock_name(consumer, location_id)})


async def take_outbox(
    engine: AsyncEngine, consumer: str, location_id: uuid.UUID, limit: int = BATCH
) -> tuple[list[int], list[uuid.UUID]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(_OUTBOX_TAKE, {"consumer": consumer, "location": location_id, "limit": limit})
        ).all()
    return [r.id for r in rows], [r.event_id for r in rows]


async def finish_outbox(engine: AsyncEngine, ids: Sequence[int]) -> None:
    async with engine.begin() as conn:
        await conn.execute(_OUTBOX_DONE, {"ids": list(ids)})


async def load_events(
    engine: AsyncEngine, location_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[DomainEvent]:
    """The events, in the order of ``ids``; those of another location are never returned."""
    e = t.domain_events.c
    query = select(t.domain_events).where(e.location_id == location_id, e.id.in_(ids))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    position = {event_id: n for n, event_id in enumerate(ids)}
    rows = sorted(rows, key=lambda r: position[r.id])
    return [
        DomainEvent(
            type=r.type,
            agency_id=r.agency_id,
            location_id=r.location_id,
            entity_id=r.entity_id,
            payload=r.payload,
            occurred_at=r.occurred_at,
            id=r.id,
        )
        for r in rows
    ]
