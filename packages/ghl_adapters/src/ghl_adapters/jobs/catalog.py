"""Every job kind the workers run, with its handler and retry schedule. Handlers are thin: they turn the
job's JSON arguments into a call on a core service. Each is bound at wiring time to the services it
needs (`job_kinds` takes them by keyword; the container calls it), never to the container: a job module
imports no container, so the container can import the catalog without an import circle."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ghl_adapters.imports.jobs import import_kind
from ghl_adapters.imports.runner import ContactImportRunner
from ghl_adapters.inbound.jobs import inbound_kind
from ghl_adapters.messaging.campaign_jobs import campaign_run_kind
from ghl_adapters.messaging.jobs import reconcile_kind, send_kind
from ghl_adapters.webhooks.jobs import deliver_kind
from ghl_adapters.workflows.jobs import reminders_kind, workflow_run_kind
from ghl_core.campaigns.services import CampaignService
from ghl_core.conversations.delivery import DeliveryService
from ghl_core.inbound.services import InboundService
from ghl_core.jobs.ports import JobContext
from ghl_core.shared.events import DomainEvent
from ghl_core.webhooks.services import WebhookService
from ghl_core.workflows.engine import WorkflowEngine

from .events import CONSUME_KIND, barrier, finish_outbox, load_events, take_outbox
from .kinds import JobKind, RetrySchedule, exponential

# What a consumer does with a batch of one location's committed events.
EventHandler = Callable[[uuid.UUID, list[DomainEvent]], Awaitable[object]]


def consume_kind(*, owner: AsyncEngine, consumers: Mapping[str, EventHandler]) -> JobKind:
    """``consumers``: consumer name (see events.CONSUMERS) -> what it does with a batch of events."""

    async def consume_events(ctx: JobContext, args: dict[str, Any]) -> None:
        """Drains the consumer's outbox for the location, batch after batch, until it is empty."""
        consumer = str(args["consumer"])
        if ctx.location_id is None:
            raise ValueError("an events.consume job names its location")
        handler = consumers.get(consumer)
        if handler is None:
            raise LookupError(f"no event consumer is called {consumer!r}")
        await barrier(owner, consumer, ctx.location_id)
        while True:
            row_ids, event_ids = await take_outbox(owner, consumer, ctx.location_id)
            if not row_ids:
                return
            events = await load_events(owner, ctx.location_id, event_ids)
            if events:
                await handler(ctx.location_id, events)
            await finish_outbox(owner, row_ids)

    # Fan-out is database work only: retry it often and for about a day before giving up.
    return JobKind(CONSUME_KIND, consume_events, RetrySchedule(exponential(10, first=1.0, factor=3.0)))


def job_kinds(
    *,
    owner: AsyncEngine,
    webhooks: WebhookService,
    webhook_retry_schedule: str,
    workflow_engine: WorkflowEngine,
    inbound: InboundService,
    message_delivery: DeliveryService,
    campaigns: CampaignService,
    contact_import_runner: ContactImportRunner,
) -> list[JobKind]:
    """The platform's job kinds, each bound to its services (a wiring function: the container calls it
    with its providers; the names are the container's provider names)."""
    consumers: dict[str, EventHandler] = {
        "webhooks": webhooks.fan_out,
        "workflows": workflow_engine.handle_events,
    }
    return [
        consume_kind(owner=owner, consumers=consumers),
        inbound_kind(inbound=inbound),
        deliver_kind(webhooks=webhooks, retry_schedule=webhook_retry_schedule),
        send_kind(delivery=message_delivery),
        reconcile_kind(delivery=message_delivery),
        campaign_run_kind(campaigns=campaigns),
        workflow_run_kind(engine=workflow_engine),
        reminders_kind(engine=workflow_engine, owner=owner),
        import_kind(runner=contact_import_runner),
    ]
