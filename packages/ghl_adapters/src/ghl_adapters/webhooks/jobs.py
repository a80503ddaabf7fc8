"""The webhooks side of the job engine: the `webhooks` consumer of committed events (fan-out) and the
`webhooks.deliver` job kind, with its retry schedule from the settings."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from ghl_adapters.jobs.kinds import JobKind, RetrySchedule, parse_duration
from ghl_core.jobs.ports import JobContext
from ghl_core.shared.events import DomainEvent
from ghl_core.webhooks.services import DELIVER_KIND

if TYPE_CHECKING:
    from ghl_adapters.container import Container
    from ghl_adapters.settings import Settings


async def fan_out_events(container: Container, location_id: uuid.UUID, events: list[DomainEvent]) -> None:
    await container.webhooks().fan_out(location_id, events)


async def deliver(container: Container, ctx: JobContext, args: dict[str, Any]) -> None:
    if ctx.location_id is None:
        raise ValueError("a webhooks.deliver job names its location")
    await container.webhooks().deliver(ctx.location_id, uuid.UUID(str(args["delivery_id"])), ctx)


def retry_delays(schedule: str) -> list[float]:
    """'30s,5m,30m' -> [30.0, 300.0, 1800.0]: the wait before each retry."""
    return [parse_duration(part).total_seconds() for part in schedule.split(",") if part.strip()]


def deliver_kind(settings: Settings) -> JobKind:
    return JobKind(DELIVER_KIND, deliver, RetrySchedule(retry_delays(settings.webhook_retry_schedule)))
