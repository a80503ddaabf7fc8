"""Where an inbound message is filed: the sender's date when it is believable, else the time it came."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ghl_core.conversations.receiving import CLAIMED_AGE_MAX, arrival

NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_a_recent_claimed_date_is_kept() -> None:
    assert arrival(NOW - timedelta(minutes=3), NOW) == NOW - timedelta(minutes=3)
    assert arrival(NOW - CLAIMED_AGE_MAX, NOW) == NOW - CLAIMED_AGE_MAX
    assert arrival(NOW, NOW) == NOW


def test_no_future_far_past_or_missing_date_is_believed() -> None:
    assert arrival(None, NOW) == NOW
    assert arrival(NOW + timedelta(seconds=1), NOW) == NOW
    assert arrival(datetime(2099, 1, 1, tzinfo=UTC), NOW) == NOW
    assert arrival(NOW - CLAIMED_AGE_MAX - timedelta(seconds=1), NOW) == NOW
    assert arrival(datetime(1999, 1, 1, tzinfo=UTC), NOW) == NOW
