"""The webhooks side of the job engine: the `webhooks.deliver` job kind, with its retry schedule from the
settings. (The `webhooks` consumer of committed events is WebhookService.fan_out itself, see
jobs/catalog.py.)"""

from __future__ import annotations

import uuid
from typing import Any

from ghl_adapters.durations import parse_duration
from ghl_adapters.jobs.kinds import JobKind, RetrySchedule
from ghl_core.jobs.ports import JobContext
from ghl_core.webhooks.services import DELIVER_KIND, WebhookService


def retry_delays(schedule: str) -> list[float]:
    """'30s,5m,30m' -> [30.0, 300.0, 1800.0]: the wait before each retry."""
    return [parse_duration(part).total_seconds() for part in schedule.split(",") if part.strip()]


def deliver_kind(*, webhooks: WebhookService, retry_schedule: str) -> JobKind:
    """``retry_schedule`` is the operator's GHL_WEBHOOK_RETRY_SCHEDULE ('30s,5m,30m')."""

    async def deliver(ctx: JobContext, args: dict[str, Any]) -> None:
        if ctx.location_id is None:
            raise ValueError("a webhooks.deliver job names its location")
        await webhooks.deliver(ctx.location_id, uuid.UUID(str(args["delivery_id"])), ctx)

    return JobKind(DELIVER_KIND, deliver, RetrySchedule(retry_delays(retry_schedule)))
