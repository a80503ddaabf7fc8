"""The enrollment repository of a step job's transaction, deferring its writes to two statements."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ghl_core.workflows.models import Enrollment, StepRun
from ghl_core.workflows.ports import EnrollmentRepository


class DeferredEnrollments:
    """The enrollment repository of a job's transaction, holding back the ledger rows and the running
    enrollment's updates: they are written in two statements before the transaction commits (`flush`),
    or before any other use of the repository, so every read still sees them."""

    def __init__(self, inner: EnrollmentRepository, enrollment_id: uuid.UUID) -> None:
        self._inner = inner
        self._id = enrollment_id
        self._runs: list[StepRun] = []
        self._latest: Enrollment | None = None

    async def add_steps(self, runs: Sequence[StepRun]) -> None:
        self._runs.extend(runs)

    async def update(self, enrollment: Enrollment) -> None:
        if enrollment.id != self._id:
            await self.flush()
            await self._inner.update(enrollment)
            return
        self._latest = enrollment

    async def flush(self) -> None:
        runs, self._runs = self._runs, []
        latest, self._latest = self._latest, None
        if runs:
            await self._inner.add_steps(runs)
        if latest is not None:
            await self._inner.update(latest)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        async def flushed(*args: Any, **kwargs: Any) -> Any:
            await self.flush()
            return await method(*args, **kwargs)

        return flushed
