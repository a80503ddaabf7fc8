"""Jobs as a location admin sees them: the ones that failed for good, with their last error."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class FailedJob:
    id: int
    kind: str
    queue: str
    attempts: int
    args: dict[str, Any]
    scheduled_at: datetime | None
    error: str | None
    failed_at: datetime | None


class FailedJobRepository(Protocol):
    """Scoped to the unit of work's location by the database itself."""

    async def list(self, limit: int, before: int | None) -> builtins.list[FailedJob]: ...

    async def retry(self, job_id: int) -> bool:
        """Puts a failed job back in the queue now; False when the location has no such failed job."""
        ...
