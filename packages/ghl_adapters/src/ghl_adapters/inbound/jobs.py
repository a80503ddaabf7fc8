"""The `inbound.process` job: runs a stored inbound event's processor (see ghl_core.inbound.services)."""

from __future__ import annotations

import uuid
from typing import Any

from ghl_core.inbound.services import PROCESS_KIND, InboundService
from ghl_core.jobs.ports import JobContext

from ..jobs.kinds import JobKind, RetrySchedule, exponential


def inbound_kind(*, inbound: InboundService) -> JobKind:
    async def process_inbound(ctx: JobContext, args: dict[str, Any]) -> None:
        if ctx.location_id is None:
            raise ValueError("an inbound.process job names its location")
        await inbound.process(
            ctx.location_id, uuid.UUID(str(args["event_id"])), final_attempt=ctx.final_attempt
        )

    # A processor failing is usually our side (a bug, the database away): retry over about three hours.
    return JobKind(PROCESS_KIND, process_inbound, RetrySchedule(exponential(8, first=5.0, factor=4.0)))
