"""Every job kind the workers run, with its handler and retry schedule. Handlers are thin: they turn the
job's JSON arguments into a call on a core service the container built."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ghl_adapters.imports.jobs import IMPORT_KIND_SPEC
from ghl_adapters.inbound.jobs import INBOUND_KIND
from ghl_adapters.messaging.campaign_jobs import RUN_KIND_SPEC
from ghl_adapters.messaging.jobs import RECONCILE_KIND_SPEC, SEND_KIND_SPEC
from ghl_adapters.webhooks.jobs import deliver_kind, fan_out_events
from ghl_adapters.workflows.jobs import REMINDERS_KIND_SPEC as WORKFLOW_REMINDERS_KIND
from ghl_adapters.workflows.jobs import RUN_KIND_SPEC as WORKFLOW_RUN_KIND
from ghl_adapters.workflows.jobs import consume_events as workflow_events
from ghl_core.jobs.ports import JobContext
from ghl_core.shared.events import DomainEvent

from .events import CONSUME_KIND, barrier, finish_outbox, load_events, take_outbox
from .kinds import JobKind, RetrySchedule, exponential

if TYPE_CHECKING:
    from ghl_adapters.container import Container
    from ghl_adapters.settings import Settings

EventHandler = Callable[["Container", uuid.UUID, list[DomainEvent]], Awaitable[None]]

# consumer name (see events.CONSUMERS) -> what it does with a batch of one location's events
EVENT_HANDLERS: dict[str, EventHandler] = {}
EVENT_HANDLERS["webhooks"] = fan_out_events
EVENT_HANDLERS["workflows"] = workflow_events


async def consume_events(container: Container, ctx: JobContext, args: dict[str, Any]) -> None:
    """Drains the consumer's outbox for the location, batch after batch, until it is empty."""
    consumer = str(args["consumer"])
    if ctx.location_id is None:
        raise ValueError("an events.consume job names its location")
    handler = EVENT_HANDLERS.get(consumer)
    if handler is None:
        raise LookupError(f"no event consumer is called {consumer!r}")
    owner = container.engines().owner
    await barrier(owner, consumer, ctx.location_id)
    while True:
        row_ids, event_ids = await take_outbox(owner, consumer, ctx.location_id)
        if not row_ids:
            return
        events = await load_events(owner, ctx.location_id, event_ids)
        if events:
            await handler(container, ctx.location_id, events)
        await finish_outbox(owner, row_ids)


def job_kinds(settings: Settings) -> list[JobKind]:
    return [
        # Fan-out is database work only: retry it often and for about a day before giving up.
        JobKind(CONSUME_KIND, consume_events, RetrySchedule(exponential(10, first=1.0, factor=3.0))),
        INBOUND_KIND,
        deliver_kind(settings),
        SEND_KIND_SPEC,
        RECONCILE_KIND_SPEC,
        RUN_KIND_SPEC,
        WORKFLOW_RUN_KIND,
        WORKFLOW_REMINDERS_KIND,
        IMPORT_KIND_SPEC,
    ]
