"""Workflow waits: parsing with pointers, and wake-up instants that stay right across daylight-saving
changes. The property tests check results against small oracles written here from the wall clock alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghl_core.shared.errors import ValidationFailed
from ghl_core.workflows.waits import ResumeWindow, WaitSpec, parse_wait, wake_time

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
ZONES = ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata")
P = "/steps/3/wait"
WEEKDAYS_ONLY = {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0
) -> datetime:
    """An aware instant from a local wall time (checked to exist) in `zone`, as UTC."""
    wall = datetime(year, month, day, hour, minute)
    instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
    assert instant.astimezone(zone).replace(tzinfo=None) == wall
    return instant


def wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def wake(raw: dict[str, Any], now: datetime, zone: ZoneInfo = NY) -> datetime | None:
    return wake_time(parse_wait(raw, P), now, zone)


def pointers(raw: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_wait(raw, P)
    return {e.pointer: e.detail for e in caught.value.errors}


# --- parsing ---------------------------------------------------------------------------------------------


def test_parses_durations_keeping_calendar_days_apart() -> None:
    assert parse_wait({"minutes": 5}, P) == WaitSpec("duration", duration=timedelta(minutes=5))
    spec = parse_wait({"days": 1, "hours": 2, "minutes": 30, "zone": "location"}, P)
    assert spec.duration == timedelta(days=1, hours=2, minutes=30)
    assert (spec.calendar_days, spec.zone, spec.window) == (1, "location", None)
    assert parse_wait({"hours": 48}, P).calendar_days == 0
    assert parse_wait({"days": 365}, P).duration == timedelta(days=365)


def test_parses_until_an_instant_and_until_a_local_time() -> None:
    spec = parse_wait({"until": "2026-12-24T09:00:00-05:00"}, P)
    assert (spec.kind, spec.until) == ("until", utc(2026, 12, 24, 14))
    assert spec.until is not None
    assert spec.until.tzinfo is UTC
    assert parse_wait({"until": "2026-12-24T14:00:00Z"}, P).until == utc(2026, 12, 24, 14)
    yaml_datetime = datetime(2026, 12, 24, 9, tzinfo=ZoneInfo("America/Chicago"))
    assert parse_wait({"until": yaml_datetime}, P).until == utc(2026, 12, 24, 15)
    spec = parse_wait({"until_time": "9:05", "weekday": "Monday"}, P)
    assert (spec.until_time, spec.until_weekday, spec.until) == (time(9, 5), 0, None)
    assert parse_wait({"until_time": "23:59", "weekday": "sun"}, P).until_weekday == 6


def test_parses_windows() -> None:
    spec = parse_wait({"days": 1, "window": WEEKDAYS_ONLY}, P)
    assert spec.window == ResumeWindow(frozenset(range(5)), time(9), time(17))
    whole_days = parse_wait({"hours": 1, "window": {"days": ["sat", "sun"]}}, P).window
    assert whole_days == ResumeWindow(frozenset({5, 6}), time(0), time(0))
    overnight = parse_wait({"until_time": "20:00", "window": {"from": "22:00", "to": "06:00"}}, P).window
    assert overnight == ResumeWindow(frozenset(range(7)), time(22), time(6))


def test_parses_event_waits_and_their_filters() -> None:
    spec = parse_wait({"event": "contact.replied", "channel": "sms", "timeout": {"days": 2}}, P)
    assert (spec.kind, spec.event, spec.event_filter) == ("event", "contact.replied", {"channel": "sms"})
    assert (spec.timeout, spec.calendar_days) == (timedelta(days=2), 2)
    assert parse_wait({"event": "contact.replied"}, P).event_filter == {}
    spec = parse_wait({"event": "tag.added", "tag": "  VIP   Lead "}, P)
    assert (spec.event_filter, spec.timeout) == ({"tag": "vip lead"}, None)
    stage = "6F1C2B1E-3D4A-4B5C-9D8E-7F6A5B4C3D2E"
    spec = parse_wait({"event": "opportunity.stage_reached", "stage_id": stage, "timeout": {"hours": 6}}, P)
    assert spec.event_filter == {"stage_id": stage.lower()}
    assert (spec.timeout, spec.calendar_days) == (timedelta(hours=6), 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"minutes": -1}, {f"{P}/minutes": "must be a whole number from 0 to 525600"}),
        ({"hours": 1.5}, {f"{P}/hours": "must be a whole number from 0 to 8760"}),
        ({"days": True}, {f"{P}/days": "must be a whole number from 0 to 365"}),
        ({"days": 366}, {f"{P}/days": "must be a whole number from 0 to 365"}),
        ({"days": 0, "minutes": 0}, {P: "must wait longer than zero"}),
        ({"days": 365, "minutes": 1}, {P: "must wait at most 365 days"}),
        ({"minutes": 5, "colour": "red"}, {f"{P}/colour": "unknown key"}),
        ({"minutes": 5, "a/b~": 1}, {f"{P}/a~1b~0": "unknown key"}),
        ({}, {P: "give exactly one of"}),
        ({"zone": "contact"}, {P: "give exactly one of"}),
        ({"minutes": 5, "until_time": "09:00"}, {P: "give exactly one of"}),
        ({"minutes": 5, "zone": "user"}, {f"{P}/zone": 'must be "contact" or "location"'}),
        ({"minutes": 5, "weekday": "mon"}, {f"{P}/weekday": "only goes with until_time"}),
        ({"until": "2026-12-24T09:00:00-05:00", "weekday": "mon"}, {f"{P}/weekday": "only goes with"}),
        (
            {"minutes": 5, "timeout": {"days": 1}, "tag": "vip"},
            {f"{P}/timeout": "only goes with event", f"{P}/tag": "only goes with event"},
        ),
        ({"until": "2026-12-24T09:00:00"}, {f"{P}/until": "must include a UTC offset"}),
        ({"until": datetime(2026, 12, 24, 9)}, {f"{P}/until": "must include a UTC offset"}),
        ({"until": "9999-12-31T23:59:59Z"}, {f"{P}/until": "must be between the years 1970 and 2100"}),
        ({"until": "1969-12-31T23:59:59Z"}, {f"{P}/until": "must be between the years"}),
        ({"until": "Christmas"}, {f"{P}/until": "must be an ISO 8601 date-time"}),
        ({"until": 1798117200}, {f"{P}/until": "must be an ISO 8601 date-time"}),
        ({"until": "2026-12-24T09:00Z", "until_time": "09:00"}, {f"{P}/until_time": "not both"}),
        ({"until_time": 540}, {f"{P}/until_time": 'must be a local time "HH:MM" (quote it in YAML)'}),
        ({"until_time": "24:00"}, {f"{P}/until_time": "must be a local time"}),
        ({"until_time": "09:60"}, {f"{P}/until_time": "must be a local time"}),
        ({"until_time": "09:00", "weekday": "someday"}, {f"{P}/weekday": "must be a weekday"}),
        ({"until_time": "09:00", "weekday": 1}, {f"{P}/weekday": "must be a weekday"}),
        ({"until_time": "09:00", "zone": "x"}, {f"{P}/zone": "must be"}),
        ({"days": 1, "window": ["mon"]}, {f"{P}/window": 'must be an object with "days"'}),
        ({"days": 1, "window": {"days": []}}, {f"{P}/window/days": "must be a non-empty list"}),
        ({"days": 1, "window": {"days": "mon"}}, {f"{P}/window/days": "must be a non-empty list"}),
        ({"days": 1, "window": {"days": ["mon", "fry"]}}, {f"{P}/window/days/1": "must be a weekday"}),
        ({"days": 1, "window": {"from": "09:00"}}, {f"{P}/window": 'give both "from" and "to"'}),
        (
            {"days": 1, "window": {"from": "09:00", "to": "9:00"}},
            {f"{P}/window/to": 'must differ from "from"'},
        ),
        (
            {"days": 1, "window": {"from": "nine", "to": "5pm", "at": 1}},
            {
                f"{P}/window/from": "must be a local time",
                f"{P}/window/to": "must be a local time",
                f"{P}/window/at": "unknown key",
            },
        ),
        ({"event": "contact.created"}, {f"{P}/event": "must be one of contact.replied"}),
        ({"event": ["tag.added"]}, {f"{P}/event": "must be one of"}),
        ({"event": "contact.replied", "channel": "fax"}, {f"{P}/channel": "must be one of sms, email"}),
        ({"event": "contact.replied", "tag": "vip"}, {f"{P}/tag": "not used by event contact.replied"}),
        ({"event": "tag.added"}, {f"{P}/tag": "required for event tag.added"}),
        ({"event": "tag.added", "tag": "   "}, {f"{P}/tag": "must be a printable tag name"}),
        ({"event": "tag.added", "tag": 7}, {f"{P}/tag": "must be a printable tag name"}),
        ({"event": "tag.added", "tag": "x" * 101}, {f"{P}/tag": "must be a printable tag name"}),
        ({"event": "opportunity.stage_reached"}, {f"{P}/stage_id": "required for event"}),
        ({"event": "opportunity.stage_reached", "stage_id": "won"}, {f"{P}/stage_id": "must be a stage id"}),
        ({"event": "opportunity.stage_reached", "stage_id": 5}, {f"{P}/stage_id": "must be a stage id"}),
        ({"event": "contact.replied", "window": {"days": ["mon"]}}, {f"{P}/window": "use timeout"}),
        ({"event": "contact.replied", "timeout": 2}, {f"{P}/timeout": 'must be an object of "minutes"'}),
        ({"event": "contact.replied", "timeout": {}}, {f"{P}/timeout": "must be an object of"}),
        ({"event": "contact.replied", "timeout": {"weeks": 1}}, {f"{P}/timeout": "must be an object of"}),
        (
            {"event": "contact.replied", "timeout": {"days": -2}},
            {f"{P}/timeout/days": "must be a whole number"},
        ),
        (
            {"event": "contact.replied", "timeout": {"hours": 0}},
            {f"{P}/timeout": "must wait longer than zero"},
        ),
    ],
)
def test_rejects_bad_waits_with_pointers(raw: dict[str, Any], expected: dict[str, str]) -> None:
    found = pointers(raw)
    assert set(found) == set(expected), found
    for pointer, detail in expected.items():
        assert detail in found[pointer]


def test_reports_every_mistake_at_once() -> None:
    found = pointers({"minutes": -5, "zone": "moon", "weekday": "mon", "window": {"days": ["x"]}, "foo": 1})
    assert set(found) == {
        f"{P}/minutes",
        f"{P}/zone",
        f"{P}/weekday",
        f"{P}/window/days/0",
        f"{P}/foo",
    }


def test_rejects_a_wait_that_is_not_an_object() -> None:
    assert pointers(["minutes", 5]) == {P: "must be an object describing the wait"}


def test_specs_built_in_code_are_checked_too() -> None:
    for bad in (
        lambda: WaitSpec("duration"),
        lambda: WaitSpec("duration", duration=timedelta(0)),
        lambda: WaitSpec("until"),
        lambda: WaitSpec("until", until=utc(2026, 1, 1), until_time=time(9)),
        lambda: WaitSpec("until", until=datetime(2026, 1, 1)),
        lambda: WaitSpec("until", until=utc(2026, 1, 1), until_weekday=1),
        lambda: WaitSpec("until", until_time=time(9), until_weekday=7),
        lambda: WaitSpec("event", event="contact.created"),
        lambda: WaitSpec("event", event="tag.added", window=ResumeWindow(frozenset({0}), time(9), time(10))),
        lambda: WaitSpec("duration", duration=timedelta(hours=30), calendar_days=2),
        lambda: WaitSpec("event", event="tag.added", calendar_days=1),
        lambda: WaitSpec("duration", duration=timedelta(days=1), calendar_days=-1),
        lambda: ResumeWindow(frozenset(), time(9), time(10)),
        lambda: ResumeWindow(frozenset({7}), time(9), time(10)),
        lambda: ResumeWindow(frozenset({1}), time(9, tzinfo=UTC), time(10)),
    ):
        with pytest.raises(ValueError):
            bad()


# --- wake-up instants ------------------------------------------------------------------------------------


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        wake({"minutes": 5}, datetime(2026, 3, 7, 10))


def test_result_is_utc_whatever_zone_now_is_given_in() -> None:
    result = wake({"minutes": 5}, datetime(2026, 3, 7, 10, tzinfo=NY))
    assert result == utc(2026, 3, 7, 15, 5)
    assert result is not None
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        # 2026 spring change: New York 8 March 02:00 -> 03:00, Berlin 29 March 02:00 -> 03:00.
        (NY, (2026, 3, 7), (2026, 3, 8)),
        (BERLIN, (2026, 3, 28), (2026, 3, 29)),
        # 2026 autumn change: New York 1 November 02:00 -> 01:00, Berlin 25 October 03:00 -> 02:00.
        (NY, (2026, 10, 31), (2026, 11, 1)),
        (BERLIN, (2026, 10, 24), (2026, 10, 25)),
    ],
)
def test_until_nine_fires_at_nine_on_both_sides_of_each_change(
    zone: ZoneInfo, before: tuple[int, int, int], after: tuple[int, int, int]
) -> None:
    day_after = date(*after) + timedelta(days=1)
    cases = [
        (local(zone, *before, 10), local(zone, *after, 9)),  # across the change
        (local(zone, *after, 0, 30), local(zone, *after, 9)),  # on the day, before the change
        (local(zone, *after, 4), local(zone, *after, 9)),  # on the day, after the change
        (local(zone, *after, 9), local(zone, day_after.year, day_after.month, day_after.day, 9)),  # strictly
    ]
    for now, expected in cases:
        result = wake({"until_time": "09:00"}, now, zone)
        assert result == expected
        assert result is not None
        assert wall(result, zone).time() == time(9)


def test_real_hours_across_the_changes_but_calendar_days_keep_the_wall_time() -> None:
    spring_eve = local(NY, 2026, 3, 7, 10)
    assert wake({"hours": 24}, spring_eve) == spring_eve + timedelta(hours=24)
    assert wake({"days": 1}, spring_eve) == local(NY, 2026, 3, 8, 10)  # 23 real hours
    assert wake({"days": 1, "hours": 2, "minutes": 30}, spring_eve) == local(NY, 2026, 3, 8, 12, 30)
    autumn_eve = local(BERLIN, 2026, 10, 24, 10)
    assert wake({"days": 1}, autumn_eve, BERLIN) == autumn_eve + timedelta(hours=25)
    assert wake({"hours": 24}, autumn_eve, BERLIN) == local(BERLIN, 2026, 10, 25, 9)
    assert wake({"days": 2}, local(BERLIN, 2026, 3, 28, 20), BERLIN) == local(BERLIN, 2026, 3, 30, 20)


def test_a_day_ending_in_a_gap_moves_to_the_gap_end_and_one_in_a_fold_takes_the_first_pass() -> None:
    assert wake({"days": 1}, local(NY, 2026, 3, 7, 2, 30)) == local(NY, 2026, 3, 8, 3)
    assert wake({"days": 1}, local(BERLIN, 2026, 3, 28, 2, 59), BERLIN) == local(BERLIN, 2026, 3, 29, 3)
    assert wake({"days": 1}, local(NY, 2026, 10, 31, 1, 30)) == local(NY, 2026, 11, 1, 1, 30, fold=0)
    first = local(BERLIN, 2026, 10, 25, 2, 15, fold=0)
    assert wake({"days": 1}, local(BERLIN, 2026, 10, 24, 2, 15), BERLIN) == first
    assert first == utc(2026, 10, 25, 0, 15)
    # From the second pass of a fold, a day later is the same wall time on the next day.
    assert wake({"days": 1}, local(NY, 2026, 11, 1, 1, 30, fold=1)) == local(NY, 2026, 11, 2, 1, 30)


def test_until_a_time_in_the_gap_or_the_fold() -> None:
    midnight = local(NY, 2026, 3, 8, 0)
    assert wake({"until_time": "02:30"}, midnight) == local(NY, 2026, 3, 8, 3)
    assert wake({"until_time": "02:30"}, local(NY, 2026, 3, 8, 3)) == local(NY, 2026, 3, 9, 2, 30)
    fall = local(NY, 2026, 11, 1, 0)
    assert wake({"until_time": "01:30"}, fall) == utc(2026, 11, 1, 5, 30)  # the first 01:30 (EDT)
    # Once the first 01:30 has passed, the clock still reads 01:30 again an hour later (EST).
    assert wake({"until_time": "01:30"}, utc(2026, 11, 1, 5, 40)) == utc(2026, 11, 1, 6, 30)
    assert wake({"until_time": "01:30"}, utc(2026, 11, 1, 6, 30)) == local(NY, 2026, 11, 2, 1, 30)


def test_until_a_weekday() -> None:
    friday = local(NY, 2026, 3, 6, 12)
    assert wake({"until_time": "09:00", "weekday": "mon"}, friday) == local(NY, 2026, 3, 9, 9)
    assert wake({"until_time": "13:00", "weekday": "fri"}, friday) == local(NY, 2026, 3, 6, 13)
    assert wake({"until_time": "12:00", "weekday": "fri"}, friday) == local(NY, 2026, 3, 13, 12)


def test_until_an_instant_is_returned_as_given_even_when_past() -> None:
    now = utc(2026, 12, 1)
    assert wake({"until": "2026-12-24T09:00:00-05:00"}, now) == utc(2026, 12, 24, 14)
    assert wake({"until": "2026-11-01T09:00:00Z"}, now) == utc(2026, 11, 1, 9)
    saturday = {"until": "2026-12-26T10:00:00-05:00", "window": WEEKDAYS_ONLY}
    assert wake(saturday, now) == local(NY, 2026, 12, 28, 9)


def test_event_waits_wake_only_on_their_timeout() -> None:
    now = local(NY, 2026, 3, 7, 10)
    assert wake({"event": "tag.added", "tag": "vip"}, now) is None
    assert wake({"event": "contact.replied", "timeout": {"days": 2}}, now) == local(NY, 2026, 3, 9, 10)
    assert wake({"event": "contact.replied", "timeout": {"hours": 48}}, now) == now + timedelta(hours=48)


def test_windows_on_weekdays_and_hours() -> None:
    friday_evening = local(NY, 2026, 3, 6, 16, 30)
    assert wake({"hours": 1, "window": WEEKDAYS_ONLY}, friday_evening) == local(NY, 2026, 3, 9, 9)
    assert wake({"minutes": 29, "window": WEEKDAYS_ONLY}, friday_evening) == local(NY, 2026, 3, 6, 16, 59)
    monday_early = local(BERLIN, 2026, 3, 30, 3)
    assert wake({"minutes": 5, "window": WEEKDAYS_ONLY}, monday_early, BERLIN) == local(
        BERLIN, 2026, 3, 30, 9
    )
    # Days only: the whole of those days.
    sunday = local(NY, 2026, 3, 8, 15)
    assert wake({"minutes": 1, "window": {"days": ["mon"]}}, sunday) == local(NY, 2026, 3, 9, 0)
    assert wake({"minutes": 1, "window": {"days": ["sun"]}}, sunday) == sunday + timedelta(minutes=1)


def test_windows_that_wrap_midnight_belong_to_the_day_they_open() -> None:
    friday_night = {"minutes": 1, "window": {"days": ["fri"], "from": "22:00", "to": "06:00"}}
    saturday_3am = local(NY, 2026, 3, 7, 3)
    assert wake(friday_night, saturday_3am) == saturday_3am + timedelta(minutes=1)
    assert wake(friday_night, local(NY, 2026, 3, 7, 6)) == local(NY, 2026, 3, 13, 22)
    assert wake(friday_night, local(NY, 2026, 3, 6, 21)) == local(NY, 2026, 3, 6, 22)
    assert wake(friday_night, local(NY, 2026, 3, 5, 23)) == local(NY, 2026, 3, 6, 22)  # Thursday night


def test_windows_across_the_changes() -> None:
    # The window opens at 02:30, which 8 March skips: it opens when the gap ends.
    early = {"minutes": 1, "window": {"days": ["sun"], "from": "02:30", "to": "04:00"}}
    assert wake(early, local(NY, 2026, 3, 8, 0)) == local(NY, 2026, 3, 8, 3)
    # A window lying wholly in the gap does not exist that day: the next Sunday.
    lost = {"minutes": 1, "window": {"days": ["sun"], "from": "02:10", "to": "02:50"}}
    assert wake(lost, local(NY, 2026, 3, 8, 0)) == local(NY, 2026, 3, 15, 2, 10)
    # Falling back from 01:59 EDT to 01:00 EST re-enters a 00:30-01:30 window at the change itself.
    repeat = {"minutes": 1, "window": {"from": "00:30", "to": "01:30"}}
    assert wake(repeat, utc(2026, 11, 1, 5, 39)) == utc(2026, 11, 1, 6)
    # Inside the repeated hour, a window opening at 01:40 opens again on the second pass.
    again = {"minutes": 1, "window": {"from": "01:40", "to": "01:50"}}
    assert wake(again, utc(2026, 11, 1, 5, 55)) == utc(2026, 11, 1, 6, 40)
    autumn = {"minutes": 1, "window": {"from": "09:00", "to": "10:00"}}
    assert wake(autumn, local(BERLIN, 2026, 10, 24, 11), BERLIN) == local(BERLIN, 2026, 10, 25, 9)


# --- properties ------------------------------------------------------------------------------------------


def _transitions(zone: ZoneInfo) -> list[datetime]:
    """Offset changes of `zone` in 2019-2031, found day by day and bisected to the second."""
    found = []
    day = utc(2019, 1, 1)
    while day < utc(2032, 1, 1):
        following = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            low, high = day, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high)
        day = following
    return found


TRANSITIONS = {name: _transitions(ZoneInfo(name)) for name in ZONES}


@st.composite
def zone_and_now(draw: Callable[[Any], Any]) -> tuple[ZoneInfo, datetime]:
    """Any instant of 2020-2030, often within three days of one of the zone's offset changes."""
    name = draw(st.sampled_from(ZONES))
    changes = [c for c in TRANSITIONS[name] if utc(2020, 1, 1) <= c <= utc(2030, 12, 31)]
    if changes and draw(st.booleans()):
        base = draw(st.sampled_from(changes))
        now = base + timedelta(seconds=draw(st.integers(-3 * 86400, 3 * 86400)))
    else:
        now = draw(st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC)))
    return ZoneInfo(name), now


def test_the_zones_do_change_offsets() -> None:
    assert len(TRANSITIONS["Australia/Lord_Howe"]) == 26  # two a year, half an hour each
    assert len(TRANSITIONS["America/New_York"]) == 26
    assert TRANSITIONS["Asia/Kolkata"] == []


hh_mm = st.builds(time, st.integers(0, 23), st.integers(0, 59))
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(zone_and_now())
def test_until_nine_lands_at_nine_local_strictly_later_within_a_day_and_an_hour(case: Any) -> None:
    zone, now = case
    result = wake({"until_time": "09:00"}, now, zone)
    assert result is not None
    assert result.utcoffset() == timedelta(0)
    assert wall(result, zone).time() == time(9)
    assert now < result <= now + timedelta(hours=25)
    assert result - timedelta(days=1) <= now or wall(result - timedelta(days=1), zone).time() != time(9)


def _valid_instants(day: date, at: time, zone: ZoneInfo) -> set[datetime]:
    naive = datetime.combine(day, at)
    instants = {naive.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1)}
    return {i for i in instants if wall(i, zone) == naive}


@PROPERTY
@given(zone_and_now(), hh_mm, st.one_of(st.none(), st.integers(0, 6)))
def test_until_time_is_the_next_occurrence_or_the_end_of_its_gap(
    case: Any, at: time, weekday: int | None
) -> None:
    zone, now = case
    raw: dict[str, Any] = {"until_time": at.strftime("%H:%M")}
    if weekday is not None:
        raw["weekday"] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday]
    result = wake(raw, now, zone)
    assert result is not None
    assert now < result <= now + timedelta(days=8)
    landed = wall(result, zone)
    target = datetime.combine(landed.date(), at)
    if landed != target:  # skipped by a gap: the first instant after it, the change itself
        assert result in TRANSITIONS[zone.key]
        assert wall(result - timedelta(microseconds=1), zone) < target < landed
    if weekday is not None:
        assert landed.weekday() == weekday
    # No earlier occurrence of that local time (on that weekday) lies between now and the result.
    first_day = wall(now, zone).date()
    for offset in range((landed.date() - first_day).days + 1):
        day = first_day + timedelta(days=offset)
        if weekday is None or day.weekday() == weekday:
            assert not any(now < i < result for i in _valid_instants(day, at, zone))


def inside(instant: datetime, zone: ZoneInfo, days: frozenset[int], start: time, end: time) -> bool:
    here = wall(instant, zone)
    clock, weekday = here.time(), here.weekday()
    if start == end:
        return weekday in days
    if start < end:
        return weekday in days and start <= clock < end
    return (weekday in days and clock >= start) or ((weekday - 1) % 7 in days and clock < end)


windows = st.tuples(
    st.frozensets(st.integers(0, 6), min_size=1),
    st.one_of(st.none(), st.tuples(hh_mm, hh_mm).filter(lambda pair: pair[0] != pair[1])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone_and_now(), windows, st.integers(1, 3000))
def test_window_result_is_inside_and_the_first_such_instant(case: Any, window: Any, minutes: int) -> None:
    zone, now = case
    days, hours = window
    start, end = hours or (time(0), time(0))
    raw: dict[str, Any] = {
        "minutes": minutes,
        "window": {"days": [("mon", "tue", "wed", "thu", "fri", "sat", "sun")[d] for d in days]},
    }
    if hours:
        raw["window"] |= {"from": start.strftime("%H:%M"), "to": end.strftime("%H:%M")}
    t = now + timedelta(minutes=minutes)
    result = wake(raw, now, zone)
    assert result is not None
    assert t <= result <= t + timedelta(days=15)
    assert inside(result, zone, days, start, end)
    earlier = result - timedelta(minutes=1)
    assert earlier < t or not inside(earlier, zone, days, start, end)
    # Window edges and offsets are whole minutes, so an inside stretch before the result would contain
    # one of these samples.
    probe = t
    while probe < result:
        assert not inside(probe, zone, days, start, end)
        probe += timedelta(minutes=1)
