"""A job kind: its name, its handler, its queue and its retry schedule (exponential, with jitter).

A handler is bound at wiring time to the services it needs (each job module has a `*_kind(...)` factory
taking them by keyword; jobs/catalog.py lists them, the container builds them): it gets the job's context
and arguments, never the container. This module imports no container, so the container can import it."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from ghl_adapters.durations import parse_duration
from ghl_core.jobs.ports import JobContext

__all__ = ["Handler", "JobKind", "RetrySchedule", "ScheduledRetry", "exponential", "parse_duration"]

Handler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]


def exponential(retries: int, first: float = 2.0, factor: float = 4.0, cap: float = 3600.0) -> list[float]:
    """``retries`` delays in seconds growing by ``factor`` from ``first``, each at most ``cap``."""
    return [min(cap, first * factor**n) for n in range(retries)]


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """The delay before each retry; the job runs at most ``len(delays) + 1`` times.

    Each delay is spread by +/- ``jitter`` (a fraction), so jobs that failed together (a receiver that
    went down) do not all come back in the same second.
    """

    delays: Sequence[float] = field(default_factory=lambda: exponential(5))
    jitter: float = 0.2

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay_after(self, attempt: int, rand: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait after the ``attempt``-th run failed (1-based), or None when none is left."""
        if attempt < 1 or attempt > len(self.delays):
            return None
        base = float(self.delays[attempt - 1])
        return max(0.0, base * (1 + self.jitter * (2 * rand() - 1)))


class ScheduledRetry(BaseRetryStrategy):
    """procrastinate's retry hook: every exception retries until the schedule is used up."""

    def __init__(self, schedule: RetrySchedule) -> None:
        self.schedule = schedule

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        delay = self.schedule.delay_after(job.attempts + 1)
        if delay is None:
            return None
        return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=delay))


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    handler: Handler
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    queue: str = "default"
