"""Quiet hours: the local-time window in which marketing SMS must not go out (TCPA-style rules).

The window is `[start, end)` in the recipient's wall-clock time and may wrap midnight (21:00-08:00).
`start == end` means no quiet hours. A message held by the window is released at the first instant the
window ends, computed in the recipient's zone so it is right across daylight-saving changes:

- an end that falls in a spring-forward gap (02:30 on a day that jumps 02:00 -> 03:00) is released at the
  first valid local instant after it, the transition itself (03:00);
- a fall-back that jumps the clock out of the window (01:45 -> 01:00 for a 01:30-03:00 window) releases
  at the transition;
- an end that occurs twice in an autumn fall-back is released at its first occurrence after `now`. The
  repeated hour can bring a wrapping window back for a while afterwards; a message already released
  then is not held again, which is the documented, accepted behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MAX_STEPS = 8  # each step reaches the next window end; real zones settle within two


@dataclass(frozen=True)
class QuietHours:
    """Naive wall-clock times; the zone comes with each question because it is the recipient's."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are wall-clock times: pass naive times, the zone separately")

    @property
    def enabled(self) -> bool:
        return self.start != self.end

    def contains(self, wall: time) -> bool:
        """Whether the local wall-clock time `wall` is inside the window."""
        if not self.enabled:
            return False
        wall = wall.replace(tzinfo=None, fold=0)
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end

    def next_allowed(self, now: datetime, tz: ZoneInfo) -> datetime:
        """`now` (in UTC) when it is outside the window in `tz`, else the first instant the window ends."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        current = now.astimezone(UTC)
        for _ in range(_MAX_STEPS):
            local = current.astimezone(tz)
            if not self.contains(local.time()):
                return current
            end_day = local.date()
            if self.start > self.end and local.time().replace(fold=0) >= self.start:
                end_day += timedelta(days=1)
            window_end = _first_instant_at_or_after(end_day, self.end, tz, after=current)
            # An offset change on the way can also end the window: falling back from 01:45 to 01:00 leaves
            # a 01:30-03:00 window at once. Either way the loop re-checks the instant reached.
            change = _first_offset_change(current, window_end, tz)
            current = change if change is not None else window_end
        raise RuntimeError("quiet hours did not end within the expected number of steps")


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def _first_instant_at_or_after(day: date, at: time, tz: ZoneInfo, *, after: datetime) -> datetime:
    """The earliest UTC instant later than `after` whose local wall time in `tz` is `day` `at`, or, when
    that wall time does not exist (a gap), the first instant whose wall time is past it."""
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if _wall(first, tz) == wall:  # the wall time exists, once or (in a fold) twice
        for candidate in sorted({first, second}):
            if candidate > after and _wall(candidate, tz) == wall:
                return candidate
        raise RuntimeError("the window end lies before the instant it should follow")
    # A gap: fold=1 maps to an instant before the transition, fold=0 to one after it, and the first
    # valid local instant past `wall` is the transition itself.
    transition = _first_offset_change(min(first, second), max(first, second), tz)
    if transition is None:
        raise RuntimeError("a nonexistent local time without an offset change")
    return transition


def _first_offset_change(start: datetime, stop: datetime, tz: ZoneInfo) -> datetime | None:
    """The first instant in (start, stop] whose UTC offset in `tz` differs from start's, when stop's does
    (bisection to the microsecond; zones change offset at most once within the day or two searched)."""
    offset = start.astimezone(tz).utcoffset()
    if stop.astimezone(tz).utcoffset() == offset:
        return None
    low, high = 0, (stop - start) // timedelta(microseconds=1)
    while high - low > 1:
        mid = (low + high) // 2
        if (start + timedelta(microseconds=mid)).astimezone(tz).utcoffset() == offset:
            low = mid
        else:
            high = mid
    return start + timedelta(microseconds=high)


def resolve_zone(contact_tz: str | None, location_tz: str) -> ZoneInfo:
    """The zone quiet hours apply in: the contact's when it names a real IANA zone, else the location's,
    else UTC (a bad stored value must not stop sending altogether)."""
    for key in (contact_tz, location_tz):
        if not key or not key.strip():
            continue
        try:
            return ZoneInfo(key.strip())
        except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
            continue
    return ZoneInfo("UTC")
