"""The `campaigns.run` job a campaign's sending runs in (see `runner.CampaignRunner`)."""

from __future__ import annotations

from datetime import datetime

from ghl_core.campaigns.models import Campaign
from ghl_core.jobs.ports import JobRequest

RUN_KIND = "campaigns.run"


def run_job(campaign: Campaign, at: datetime | None = None) -> JobRequest:
    """One run per campaign at a time (lock), and at most one waiting (queueing lock). A scheduled start
    is a lock-free wake-up instead: jobs sharing a lock run in the order queued, so a locked job for
    later would hold back every run queued after it (a campaign moved to now) until its time."""
    if at is not None:
        return JobRequest(
            kind=RUN_KIND,
            args={"campaign_id": str(campaign.id), "wake": True},
            location_id=campaign.location_id,
            run_at=at,
        )
    return JobRequest(
        kind=RUN_KIND,
        args={"campaign_id": str(campaign.id)},
        location_id=campaign.location_id,
        lock=f"campaign:{campaign.id}",
        queueing_lock=f"campaign:{campaign.id}",
    )
