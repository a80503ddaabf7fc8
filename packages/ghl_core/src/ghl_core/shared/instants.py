"""Instants given by callers stay well inside the calendar.

Python's datetimes end at year 1 and year 9999; an instant near either end overflows as soon as it is
moved to UTC (`0001-01-01T00:00:00+14:00`), shown in a zone, or has a wait, a horizon or a reminder added
(`9999-12-31T23:00:00Z` plus two days). Each such input once answered 500. Instants a caller gives are
therefore kept within the years FIRST_YEAR..LAST_YEAR (in UTC), which leaves centuries of room for any
arithmetic the product does, and no real date outside it."""

from __future__ import annotations

from datetime import UTC, datetime

FIRST_YEAR = 1000
LAST_YEAR = 9000
OUTSIDE_CALENDAR = f"must fall between the years {FIRST_YEAR} and {LAST_YEAR}"


def in_utc(moment: datetime) -> datetime | None:
    """`moment` (aware) in UTC, or None when that falls outside the years FIRST_YEAR..LAST_YEAR."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return None
    return utc if FIRST_YEAR <= utc.year <= LAST_YEAR else None
