"""Workflow waits: parsed from the authored JSON/YAML into a `WaitSpec`, and turned into the UTC instant the
enrollment wakes up at. Time rules follow what GoHighLevel users expect across daylight-saving changes:

- minutes and hours are absolute time: "wait 24 hours" is 24 real hours even when the clocks change;
- days are calendar days in the zone: "wait 1 day" from 10:00 wakes at 10:00 local the next day (23 or 25
  real hours around a change). The same holds for the days of an event wait's timeout;
- a local wall time that does not exist (a spring-forward gap) resolves to the first valid instant after
  the gap, the transition itself (02:30 on a 02:00 -> 03:00 day becomes 03:00); one that occurs twice (an
  autumn fold) resolves to its first occurrence. "Until 01:30" asked during the repeated hour, after the
  first 01:30 has passed, takes the second one: it is the next time the contact's clock reads 01:30;
- a resume window applies last: the wake-up moves to the first instant at or after the computed one whose
  local time is inside `[from, to)` on an allowed weekday. A window may wrap midnight (22:00-06:00); it
  then belongs to the weekday it opens on.

An absolute `until` in the past is returned as is: the engine decides what "already passed" means.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from ghl_core.contacts.fields import MAX_TAG, normalize_tag
from ghl_core.conversations.models import Channel
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.instants import in_utc

MAX_WAIT = timedelta(days=365)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_AMOUNT_UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}
_TIME_RE = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
# Event name -> its filter keys, each required or optional.
EVENTS: dict[str, dict[str, bool]] = {
    "contact.replied": {"channel": False},
    "tag.added": {"tag": True},
    "opportunity.stage_reached": {"stage_id": True},
}
_FILTER_KEYS = ("channel", "tag", "stage_id")
_KEYS = (
    *_AMOUNT_UNITS,
    "until",
    "until_time",
    "weekday",
    "window",
    "zone",
    "event",
    "timeout",
    *_FILTER_KEYS,
)
_WINDOW_KEYS = ("days", "from", "to")
_UNTIL_YEARS = (1970, 2100)  # beyond, a typo; and date arithmetic near year 9999 would overflow
_TRANSITION_SCAN = timedelta(hours=6)  # zones change offset far less often than this


@dataclass(frozen=True)
class ResumeWindow:
    """Local weekdays (0=Mon..6=Sun) and wall-clock hours `[start, end)` a wait may end in. `start == end`
    means the whole day (a window given by weekdays only); `start > end` wraps midnight."""

    weekdays: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise ValueError("weekdays must be a non-empty set of 0 (Monday) .. 6 (Sunday)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are wall-clock times: pass naive times, the zone separately")

    def contains(self, instant: datetime, zone: ZoneInfo) -> bool:
        """Whether the aware `instant`, seen on a clock in `zone`, is inside the window."""
        local = instant.astimezone(zone)
        wall = local.time().replace(fold=0)
        day = local.weekday()
        if self.start == self.end:
            return day in self.weekdays
        if self.start < self.end:
            return day in self.weekdays and self.start <= wall < self.end
        return (day in self.weekdays and wall >= self.start) or (
            (day - 1) % 7 in self.weekdays and wall < self.end
        )

    def first_inside(self, at: datetime, zone: ZoneInfo) -> datetime:
        """The first instant >= `at` inside the window, in UTC. It is `at` itself, an opening of the window
        (a local `start`, or the gap's end when `start` is skipped) or an offset change that jumps the
        clock into the window (falling back from 01:45 to 01:00 re-enters a 00:30-01:30 window)."""
        at = at.astimezone(UTC)
        if self.contains(at, zone):
            return at
        first_day = at.astimezone(zone).date() - timedelta(days=1)
        # 16 days cover a week whose only allowed day is skipped by a gap, and the week after.
        opening = min(
            instant
            for offset in range(16)
            if (first_day + timedelta(days=offset)).weekday() in self.weekdays
            for instant in _occurrences(first_day + timedelta(days=offset), self.start, zone)
            if instant >= at and self.contains(instant, zone)
        )
        jumps = [change for change in _offset_changes(at, opening, zone) if self.contains(change, zone)]
        return min([opening, *jumps])


@dataclass(frozen=True)
class WaitSpec:
    """One wait step, validated. `calendar_days` says how many whole days of `duration` (kind=duration)
    or `timeout` (kind=event) are calendar days in the zone; the rest is absolute time."""

    kind: Literal["duration", "until", "event"]
    duration: timedelta | None = None
    until: datetime | None = None
    until_time: time | None = None
    until_weekday: int | None = None
    window: ResumeWindow | None = None
    zone: Literal["contact", "location"] = "contact"
    event: str | None = None
    event_filter: dict[str, str] = field(default_factory=dict)
    timeout: timedelta | None = None
    calendar_days: int = 0

    def __post_init__(self) -> None:
        amount = self.duration if self.kind == "duration" else self.timeout
        if self.kind == "duration" and (self.duration is None or self.duration <= timedelta(0)):
            raise ValueError("a duration wait needs a positive duration")
        if self.kind == "until":
            if (self.until is None) == (self.until_time is None):
                raise ValueError("an until wait needs exactly one of until and until_time")
            if self.until is not None and self.until.utcoffset() is None:
                raise ValueError("until must be an aware datetime")
        if self.until_weekday is not None and (self.until_time is None or self.until_weekday not in range(7)):
            raise ValueError("until_weekday (0..6) goes with until_time")
        if self.kind == "event" and (self.event not in EVENTS or self.window is not None):
            raise ValueError(f"an event wait names one of {sorted(EVENTS)} and has no window")
        if self.calendar_days < 0 or timedelta(days=self.calendar_days) > (amount or timedelta(0)):
            raise ValueError("calendar_days must be between 0 and the whole days of the wait")


def parse_wait(raw: Mapping[str, Any], pointer: str) -> WaitSpec:
    """Validate an authored wait (`{"days": 1, "window": {...}}`, `{"until_time": "09:00"}`,
    `{"event": "tag.added", "tag": "vip", "timeout": {"days": 2}}`, ...); every mistake is reported
    with its JSON pointer under `pointer`, all at once."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed.one(pointer, "must be an object describing the wait")
    errors: list[FieldError] = []
    for key in raw:
        if key not in _KEYS:
            errors.append(
                FieldError(_at(pointer, str(key)), f"unknown key; expected any of {', '.join(_KEYS)}")
            )
    kinds = [
        kind
        for kind, keys in (
            ("duration", _AMOUNT_UNITS),
            ("until", ("until", "until_time")),
            ("event", ("event",)),
        )
        if any(key in raw for key in keys)
    ]
    if len(kinds) != 1:
        errors.append(
            FieldError(
                pointer,
                "give exactly one of: a duration (minutes, hours, days), until or until_time, or event",
            )
        )
        raise ValidationFailed(errors)
    kind = kinds[0]
    zone = raw.get("zone", "contact")
    if zone not in ("contact", "location"):
        errors.append(FieldError(_at(pointer, "zone"), 'must be "contact" or "location"'))
    if "weekday" in raw and "until_time" not in raw:
        errors.append(FieldError(_at(pointer, "weekday"), "only goes with until_time"))
    if kind != "event":
        for key in ("timeout", *_FILTER_KEYS):
            if key in raw:
                errors.append(FieldError(_at(pointer, key), "only goes with event"))
    window = None
    if "window" in raw:
        if kind == "event":
            errors.append(FieldError(_at(pointer, "window"), "an event wait has no window; use timeout"))
        else:
            window = _parse_window(raw["window"], _at(pointer, "window"), errors)

    if kind == "duration":
        amounts = _parse_amounts(raw, pointer, errors)
        _raise(errors)
        duration, days = cast(tuple[timedelta, int], amounts)
        return WaitSpec("duration", duration=duration, calendar_days=days, window=window, zone=zone)
    if kind == "until":
        spec = _parse_until(raw, pointer, errors, window, zone)
        _raise(errors)
        return cast(WaitSpec, spec)
    return _parse_event(raw, pointer, errors, zone)


def wake_time(spec: WaitSpec, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When an enrollment that starts waiting at `now` wakes up, in UTC; `zone` is the contact's or the
    location's (as `spec.zone` says, resolved by the caller). For an event wait it is when the timeout
    branch is taken, None when it waits for the event forever."""
    if now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    if spec.kind == "event":
        if spec.timeout is None:
            return None
        return _add(now, spec.timeout, spec.calendar_days, zone)
    if spec.kind == "duration":
        target = _add(now, cast(timedelta, spec.duration), spec.calendar_days, zone)
    elif spec.until is not None:
        target = spec.until.astimezone(UTC)
    else:
        target = _next_local(now, cast(time, spec.until_time), spec.until_weekday, zone)
    return target if spec.window is None else spec.window.first_inside(target, zone)


# --- time arithmetic -------------------------------------------------------------------------------------


def _add(now: datetime, amount: timedelta, calendar_days: int, zone: ZoneInfo) -> datetime:
    """`calendar_days` to the same local time (gap forward, fold first), then the rest as absolute time."""
    start = now
    if calendar_days:
        local = now.astimezone(zone)
        start = _occurrences(local.date() + timedelta(days=calendar_days), local.time(), zone)[0]
    return start + (amount - timedelta(days=calendar_days))


def _next_local(now: datetime, at: time, weekday: int | None, zone: ZoneInfo) -> datetime:
    """The first instant strictly after `now` at local time `at` (on `weekday` when given)."""
    today = now.astimezone(zone).date()
    return next(
        instant
        for offset in range(8)
        if weekday is None or (today + timedelta(days=offset)).weekday() == weekday
        for instant in _occurrences(today + timedelta(days=offset), at, zone)
        if instant > now
    )


def _occurrences(day: date, at: time, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants whose local wall time in `zone` is `day` `at`, ascending: one, two in a fold, or,
    for a time skipped by a gap, the first valid instant after it (the transition)."""
    wall = datetime.combine(day, at.replace(fold=0, tzinfo=None))
    candidates = sorted({wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)})
    found = [c for c in candidates if c.astimezone(zone).replace(tzinfo=None, fold=0) == wall]
    if found:
        return found
    # A gap: fold=1 maps before the transition, fold=0 after it; the change between is the answer.
    return [_first_offset_change(candidates[0], candidates[-1], zone)]


def _offset_changes(start: datetime, stop: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    """Every instant in (start, stop] where the zone's UTC offset changes."""
    low = start
    while low < stop:
        high = min(low + _TRANSITION_SCAN, stop)
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            yield _first_offset_change(low, high, zone)
        low = high


def _first_offset_change(start: datetime, stop: datetime, zone: ZoneInfo) -> datetime:
    """Bisection to the microsecond for the one offset change in (start, stop]; the caller knows the
    offsets at both ends differ."""
    offset = start.astimezone(zone).utcoffset()
    low, high = 0, (stop - start) // timedelta(microseconds=1)
    while high - low > 1:
        middle = (low + high) // 2
        if (start + timedelta(microseconds=middle)).astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return start + timedelta(microseconds=high)


# --- parsing ---------------------------------------------------------------------------------------------


def _at(pointer: str, key: str) -> str:
    return f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"


def _raise(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors)


def _parse_amounts(
    raw: Mapping[str, Any], pointer: str, errors: list[FieldError]
) -> tuple[timedelta, int] | None:
    """minutes/hours/days: whole numbers >= 0, more than zero in total and at most 365 days."""
    total, days, ok = timedelta(0), 0, True
    for unit, size in _AMOUNT_UNITS.items():
        if unit not in raw:
            continue
        value = raw[unit]
        limit = MAX_WAIT // size
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            errors.append(FieldError(_at(pointer, unit), f"must be a whole number from 0 to {limit}"))
            ok = False
            continue
        total += value * size
        days = value if unit == "days" else days
    if not ok:
        return None
    if total <= timedelta(0):
        errors.append(FieldError(pointer, "must wait longer than zero"))
    elif total > MAX_WAIT:
        errors.append(FieldError(pointer, "must wait at most 365 days"))
    return total, days


def _parse_time(value: Any, pointer: str, errors: list[FieldError]) -> time | None:
    match = _TIME_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        # YAML 1.1 reads an unquoted 09:00 as the number 540: say how to fix it.
        errors.append(FieldError(pointer, 'must be a local time "HH:MM" (quote it in YAML)'))
        return None
    return time(int(match[1]), int(match[2]))


def _parse_weekday(value: Any, pointer: str, errors: list[FieldError]) -> int | None:
    name = value.strip().lower() if isinstance(value, str) else None
    if name in WEEKDAYS:
        return WEEKDAYS.index(name)
    if name in _FULL_WEEKDAYS:
        return _FULL_WEEKDAYS.index(name)
    errors.append(FieldError(pointer, f"must be a weekday: {', '.join(WEEKDAYS)}"))
    return None


def _parse_window(raw: Any, pointer: str, errors: list[FieldError]) -> ResumeWindow | None:
    if not isinstance(raw, Mapping):
        errors.append(FieldError(pointer, 'must be an object with "days", "from" and "to"'))
        return None
    before = len(errors)
    for key in raw:
        if key not in _WINDOW_KEYS:
            errors.append(FieldError(_at(pointer, str(key)), 'unknown key; expected "days", "from", "to"'))
    weekdays: set[int] = set(range(7))
    if "days" in raw:
        days = raw["days"]
        if not isinstance(days, list) or not days:
            errors.append(FieldError(_at(pointer, "days"), "must be a non-empty list of weekdays"))
        else:
            parsed = [_parse_weekday(d, f"{pointer}/days/{i}", errors) for i, d in enumerate(days)]
            weekdays = {d for d in parsed if d is not None}
    if ("from" in raw) != ("to" in raw):
        errors.append(FieldError(pointer, 'give both "from" and "to", or neither for whole days'))
    start = end = time(0)
    if "from" in raw and "to" in raw:
        start = _parse_time(raw["from"], _at(pointer, "from"), errors) or time(0)
        end = _parse_time(raw["to"], _at(pointer, "to"), errors) or time(0)
        if len(errors) == before and start == end:
            errors.append(FieldError(_at(pointer, "to"), 'must differ from "from"'))
    if len(errors) > before:
        return None
    return ResumeWindow(frozenset(weekdays), start, end)


def _parse_until(
    raw: Mapping[str, Any], pointer: str, errors: list[FieldError], window: ResumeWindow | None, zone: Any
) -> WaitSpec | None:
    if "until" in raw and "until_time" in raw:
        errors.append(FieldError(_at(pointer, "until_time"), "give until or until_time, not both"))
        return None
    if "until" in raw:
        until = _parse_instant(raw["until"], _at(pointer, "until"), errors)
        return None if until is None else WaitSpec("until", until=until, window=window, zone=zone)
    at = _parse_time(raw["until_time"], _at(pointer, "until_time"), errors)
    weekday = _parse_weekday(raw["weekday"], _at(pointer, "weekday"), errors) if "weekday" in raw else None
    if at is None or errors:
        return None
    return WaitSpec("until", until_time=at, until_weekday=weekday, window=window, zone=zone)


def _parse_instant(value: Any, pointer: str, errors: list[FieldError]) -> datetime | None:
    """An ISO 8601 date-time with its UTC offset (YAML may hand over a datetime already)."""
    instant = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value.strip())
        except ValueError:
            instant = None
    if instant is None:
        errors.append(FieldError(pointer, "must be an ISO 8601 date-time, e.g. 2026-12-24T09:00:00-05:00"))
        return None
    if instant.utcoffset() is None:
        errors.append(FieldError(pointer, "must include a UTC offset (Z or +HH:MM): which zone is meant?"))
        return None
    utc = in_utc(instant)
    if utc is None or not _UNTIL_YEARS[0] <= utc.year <= _UNTIL_YEARS[1]:
        errors.append(
            FieldError(pointer, f"must be between the years {_UNTIL_YEARS[0]} and {_UNTIL_YEARS[1]}")
        )
        return None
    return utc


def _parse_event(raw: Mapping[str, Any], pointer: str, errors: list[FieldError], zone: Any) -> WaitSpec:
    event = raw["event"]
    if not isinstance(event, str) or event not in EVENTS:
        errors.append(FieldError(_at(pointer, "event"), f"must be one of {', '.join(EVENTS)}"))
        raise ValidationFailed(errors)
    event_filter: dict[str, str] = {}
    for key in _FILTER_KEYS:
        key_pointer = _at(pointer, key)
        if key not in EVENTS[event]:
            if key in raw:
                errors.append(FieldError(key_pointer, f"not used by event {event}"))
        elif key not in raw:
            if EVENTS[event][key]:
                errors.append(FieldError(key_pointer, f"required for event {event}"))
        elif (value := _parse_filter(key, raw[key], key_pointer, errors)) is not None:
            event_filter[key] = value
    timeout, days = None, 0
    if "timeout" in raw:
        timeout_pointer = _at(pointer, "timeout")
        amounts = raw["timeout"]
        if not isinstance(amounts, Mapping) or not amounts or any(k not in _AMOUNT_UNITS for k in amounts):
            errors.append(FieldError(timeout_pointer, 'must be an object of "minutes", "hours" and "days"'))
        elif (parsed := _parse_amounts(amounts, timeout_pointer, errors)) is not None:
            timeout, days = parsed
    _raise(errors)
    return WaitSpec(
        "event", event=event, event_filter=event_filter, timeout=timeout, calendar_days=days, zone=zone
    )


def _parse_filter(key: str, value: Any, pointer: str, errors: list[FieldError]) -> str | None:
    if key == "channel":
        if value not in {c.value for c in Channel}:
            errors.append(FieldError(pointer, f"must be one of {', '.join(c.value for c in Channel)}"))
            return None
        return str(value)
    if key == "tag":
        tag = normalize_tag(value) if isinstance(value, str) else ""
        if not tag or len(tag) > MAX_TAG or not tag.isprintable():
            errors.append(
                FieldError(pointer, f"must be a printable tag name of at most {MAX_TAG} characters")
            )
            return None
        return tag
    stage_id = _uuid(value)
    if stage_id is None:
        errors.append(FieldError(pointer, "must be a stage id (UUID)"))
    return stage_id


def _uuid(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
