"""The job that runs an enrollment's due steps: its kind and how it is queued for a tick."""

from __future__ import annotations

from datetime import datetime

from ghl_core.jobs.ports import JobRequest
from ghl_core.workflows.models import Enrollment

STEP_KIND = "workflows.run"


def run_job(enrollment: Enrollment, at: datetime | None = None) -> JobRequest:
    """The job that runs the enrollment at its current tick (now, or at `at`)."""
    return JobRequest(
        kind=STEP_KIND,
        args={"enrollment_id": str(enrollment.id), "tick": enrollment.tick},
        location_id=enrollment.location_id,
        run_at=at,
    )
