"""The `campaigns.run` job: works through a campaign's recipients (see CampaignRunner.run)."""

from __future__ import annotations

import uuid
from typing import Any

from ghl_core.campaigns.jobs import RUN_KIND
from ghl_core.campaigns.services import CampaignService
from ghl_core.jobs.ports import JobContext

from ..jobs.kinds import JobKind, RetrySchedule, exponential


def campaign_run_kind(*, campaigns: CampaignService) -> JobKind:
    async def run_campaign(ctx: JobContext, args: dict[str, Any]) -> None:
        if ctx.location_id is None:
            raise ValueError("a campaigns.run job names its location")
        campaign_id = uuid.UUID(str(args["campaign_id"]))
        await campaigns.run(ctx.location_id, campaign_id, wake=bool(args.get("wake")))

    # A provider refusing for now stops the run; it comes back on this schedule, for about a day.
    return JobKind(RUN_KIND, run_campaign, RetrySchedule(exponential(12, first=5.0, factor=2.5)))
