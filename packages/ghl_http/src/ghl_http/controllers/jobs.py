"""A location admin's view of its background jobs: those that failed for good, and retrying one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.status_codes import HTTP_202_ACCEPTED
from pydantic import BaseModel, Field

from ghl_core.jobs.models import FailedJob
from ghl_core.jobs.services import JobService
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.permissions import Actor
from ghl_http.deps import provide_cursor_page
from ghl_http.schemas import ListOf, page_of


class FailedJobOut(BaseModel):
    id: int
    kind: str = Field(description="What the job does, e.g. webhooks.deliver")
    queue: str
    attempts: int = Field(description="Runs so far")
    args: dict[str, Any]
    scheduled_at: datetime | None
    error: str | None = Field(description="The last run's error")
    failed_at: datetime | None

    @classmethod
    def of(cls, job: FailedJob) -> FailedJobOut:
        return cls(
            id=job.id,
            kind=job.kind,
            queue=job.queue,
            attempts=job.attempts,
            args=job.args,
            scheduled_at=job.scheduled_at,
            error=job.error,
            failed_at=job.failed_at,
        )


class JobsController(Controller):
    path = "/jobs"
    tags = ["location: jobs"]
    # Failed jobs page by cursor only: an offset is no parameter of theirs.
    dependencies = {"page": Provide(provide_cursor_page, sync_to_thread=False)}

    @get("/failed", summary="The location's jobs that used up their retries, newest first")
    async def failed(
        self,
        actor: NamedDependency[Actor],
        jobs: NamedDependency[JobService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[FailedJobOut]:
        listed = await jobs.failed(actor, page)
        return ListOf[FailedJobOut].model_validate(page_of(listed, FailedJobOut.of))

    @post("/{job_id:int}/retry", status_code=HTTP_202_ACCEPTED, summary="Queue a failed job again, now")
    async def retry(
        self, job_id: FromPath[int], actor: NamedDependency[Actor], jobs: NamedDependency[JobService]
    ) -> None:
        await jobs.retry(actor, job_id)
