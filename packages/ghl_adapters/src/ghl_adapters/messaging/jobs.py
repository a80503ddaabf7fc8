"""The `messages.send` job: hands one queued message to its provider (see DeliveryService.deliver);
the `messages.reconcile` job: asks the provider about a message whose last attempt got no answer (see
DeliveryService.reconcile)."""

from __future__ import annotations

import uuid
from typing import Any

from ghl_core.conversations.common import RECONCILE_KIND, SEND_KIND
from ghl_core.conversations.delivery import DeliveryService
from ghl_core.jobs.ports import JobContext

from ..jobs.kinds import JobKind, RetrySchedule, exponential


def send_kind(*, delivery: DeliveryService) -> JobKind:
    async def send_message(ctx: JobContext, args: dict[str, Any]) -> None:
        if ctx.location_id is None:
            raise ValueError("a messages.send job names its location")
        await delivery.deliver(
            ctx.location_id, uuid.UUID(str(args["message_id"])), final_attempt=ctx.final_attempt
        )

    # A provider refusing for now (429, 5xx, unreachable): retry for about a day, sooner at first.
    return JobKind(SEND_KIND, send_message, RetrySchedule(exponential(10, first=10.0, factor=3.0)))


def reconcile_kind(*, delivery: DeliveryService) -> JobKind:
    async def reconcile_message(ctx: JobContext, args: dict[str, Any]) -> None:
        if ctx.location_id is None:
            raise ValueError("a messages.reconcile job names its location")
        await delivery.reconcile(
            ctx.location_id, uuid.UUID(str(args["message_id"])), final_attempt=ctx.final_attempt
        )

    # Only a question to the provider, never a send: asked again while it cannot be reached, for about
    # five hours.
    return JobKind(RECONCILE_KIND, reconcile_message, RetrySchedule(exponential(8, first=60.0, factor=3.0)))
