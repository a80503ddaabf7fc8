"""Retry schedules: exponential delays, spread by jitter, used up after the last one; durations parsed."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghl_adapters.jobs.events import consume_jobs
from ghl_adapters.jobs.kinds import RetrySchedule, exponential, parse_duration
from ghl_adapters.jobs.queue import job_arguments, libpq_url, queue_of
from ghl_core.jobs.ports import JobContext, JobRequest


def test_exponential_grows_and_is_capped() -> None:
    assert exponential(4, first=2, factor=4) == [2, 8, 32, 128]
    assert exponential(3, first=100, factor=10, cap=500) == [100, 500, 500]
    assert exponential(0) == []


def test_a_schedule_runs_once_more_than_it_has_delays() -> None:
    schedule = RetrySchedule([5.0, 60.0], jitter=0.0)
    assert schedule.max_attempts == 3
    assert schedule.delay_after(1) == 5.0
    assert schedule.delay_after(2) == 60.0
    assert schedule.delay_after(3) is None
    assert schedule.delay_after(0) is None


@given(st.floats(min_value=0, max_value=1, exclude_max=True), st.floats(min_value=0.5, max_value=1e6))
def test_jitter_stays_within_its_fraction(rand: float, delay: float) -> None:
    schedule = RetrySchedule([delay], jitter=0.2)
    spread = schedule.delay_after(1, rand=lambda: rand)
    assert spread is not None
    assert delay * 0.8 - 1e-6 <= spread <= delay * 1.2 + 1e-6


def test_jitter_spreads_jobs_that_failed_together() -> None:
    schedule = RetrySchedule([100.0], jitter=0.2)
    assert schedule.delay_after(1, rand=lambda: 0.0) == pytest.approx(80.0)
    assert schedule.delay_after(1, rand=lambda: 0.5) == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30), ("5m", 300), ("2h", 7200), ("1.5d", 129600), ("45", 45), (" 10M ", 600)],
)
def test_durations_parse(text: str, expected: float) -> None:
    assert parse_duration(text) == timedelta(seconds=expected)


@pytest.mark.parametrize("text", ["", "soon", "5x", "-3s", "m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(text)


def test_a_kind_runs_on_the_queue_of_its_first_part() -> None:
    assert queue_of("webhooks.deliver") == "webhooks"
    assert queue_of("solo") == "solo"


def test_job_arguments_carry_the_location() -> None:
    loc = uuid.uuid4()
    assert job_arguments(JobRequest("a.b", {"x": 1}, location_id=loc)) == {"x": 1, "location_id": str(loc)}
    assert job_arguments(JobRequest("a.b", {"x": 1})) == {"x": 1}


def test_libpq_url_drops_the_driver() -> None:
    assert libpq_url("postgresql+psycopg://u:p@h:5/db") == "postgresql://u:p@h:5/db"


def test_consume_jobs_are_one_per_consumer_and_location() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    jobs = consume_jobs([("webhooks", a), ("search", b), ("webhooks", a)])
    assert [(j.args["consumer"], j.location_id) for j in jobs] == [("webhooks", a), ("search", b)]
    # One runs at a time (lock); the queueing lock marks the one waiting, so a commit finds it cheaply.
    assert jobs[1].lock == jobs[1].queueing_lock == f"events:search:{b}"
    assert consume_jobs([]) == []


def test_job_context_knows_its_last_attempt() -> None:
    assert JobContext(1, "k", attempt=3, max_attempts=3).final_attempt
    assert not JobContext(1, "k", attempt=2, max_attempts=3).final_attempt
