"""Location admins list their location's failed jobs and put them back in the queue."""

from __future__ import annotations

from ghl_core.jobs.models import FailedJob
from ghl_core.jobs.ports import JobsUnitOfWork
from ghl_core.shared.errors import NotFound, ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission


def _before(page: PageRequest) -> int | None:
    if page.offset is not None:
        raise ValidationFailed.one("/offset", "failed jobs are listed with a cursor, not an offset")
    if page.after is None:
        return None
    try:
        (value,) = page.after
        return int(value)
    except ValueError:
        raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None


class JobService:
    def __init__(self, uow: UnitOfWorkFactory[JobsUnitOfWork]) -> None:
        self._uow = uow

    async def failed(self, actor: Actor, page: PageRequest) -> Page[FailedJob]:
        actor.require_location(Permission.JOBS_READ)
        async with self._uow(actor.scope) as uow:
            rows = await uow.failed_jobs.list(page.limit + 1, _before(page))
        return page_from_rows(rows, page.limit, lambda j: (str(j.id),))

    async def retry(self, actor: Actor, job_id: int) -> None:
        actor.require_location(Permission.JOBS_WRITE)
        async with self._uow(actor.scope) as uow:
            if not await uow.failed_jobs.retry(job_id):
                raise NotFound(f"no failed job {job_id} in this location")
            await uow.commit()
