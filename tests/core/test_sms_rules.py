"""The pure SMS rules: segment counting, compliance keywords, quiet hours across time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ghl_core.conversations.keywords import KeywordAction, classify_keyword
from ghl_core.conversations.quiet_hours import QuietHours, resolve_zone
from ghl_core.conversations.sms import GSM_BASIC, GSM_EXTENSION, SmsEncoding, sms_segments

# --- segments -------------------------------------------------------------------------------------------

GSM_BASIC_CHARS = "".join(sorted(GSM_BASIC))
GSM_ALL_CHARS = GSM_BASIC_CHARS + "".join(sorted(GSM_EXTENSION))
ESC = "ESC"


def reference_gsm_segments(body: str) -> int:
    """An independent model: expand to septets (ESC before extension characters), cut every 153 septets,
    and move a cut that would leave ESC at the end of a segment one septet back."""
    septets: list[str] = []
    for ch in body:
        septets.extend([ESC, ch] if ch in GSM_EXTENSION else [ch])
    if len(septets) <= 160:
        return 1 if septets else 0
    count, i = 0, 0
    while i < len(septets):
        end = min(i + 153, len(septets))
        if end < len(septets) and septets[end - 1] == ESC:
            end -= 1
        count, i = count + 1, end
    return count


def reference_ucs2_segments(body: str) -> int:
    """The same for UCS-2: cut every 67 UTF-16 code units, never after a high surrogate."""
    data = body.encode("utf-16-le")
    units = [int.from_bytes(data[k : k + 2], "little") for k in range(0, len(data), 2)]
    if len(units) <= 70:
        return 1 if units else 0
    count, i = 0, 0
    while i < len(units):
        end = min(i + 67, len(units))
        if end < len(units) and 0xD800 <= units[end - 1] <= 0xDBFF:
            end -= 1
        count, i = count + 1, end
    return count


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", SmsEncoding("GSM-7", 0, 0)),
        ("Hello there", SmsEncoding("GSM-7", 1, 11)),
        ("a" * 160, SmsEncoding("GSM-7", 1, 160)),
        ("a" * 161, SmsEncoding("GSM-7", 2, 161)),
        ("a" * 306, SmsEncoding("GSM-7", 2, 306)),
        ("a" * 307, SmsEncoding("GSM-7", 3, 307)),
        ("{" * 80, SmsEncoding("GSM-7", 1, 160)),  # extension characters cost 2 septets
        ("{" * 81, SmsEncoding("GSM-7", 2, 162)),
        ("Price: 5€ [promo] ~ ^ | \\", SmsEncoding("GSM-7", 1, 32)),
        ("ΔΦΓΛΩΠΨΣΘΞ é ü Ñ ¿ à ß", SmsEncoding("GSM-7", 1, 22)),  # Greek capitals are in the basic table
        ("ç", SmsEncoding("UCS-2", 1, 1)),  # only capital Ç is GSM
        ("\x1b", SmsEncoding("UCS-2", 1, 1)),  # ESC is not a character a body can hold
        ("Привет", SmsEncoding("UCS-2", 1, 6)),
        ("Hi 😀", SmsEncoding("UCS-2", 1, 5)),  # an emoji is a surrogate pair
        ("ж" * 70, SmsEncoding("UCS-2", 1, 70)),
        ("ж" * 71, SmsEncoding("UCS-2", 2, 71)),
        ("😀" * 35, SmsEncoding("UCS-2", 1, 70)),
        ("ж" * 134, SmsEncoding("UCS-2", 2, 134)),
        ("ж" * 135, SmsEncoding("UCS-2", 3, 135)),
    ],
)
def test_segments_of_known_bodies(body: str, expected: SmsEncoding) -> None:
    assert sms_segments(body) == expected


def test_an_escape_pair_is_never_split_across_segments() -> None:
    # 152 + 2 + 152 = 306 septets would fit in 2 segments of 153 if the euro sign could be split.
    body = "a" * 152 + "€" + "a" * 152
    assert sms_segments(body) == SmsEncoding("GSM-7", 3, 306)
    assert sms_segments("a" * 151 + "€" + "a" * 153) == SmsEncoding("GSM-7", 2, 306)


def test_a_surrogate_pair_is_never_split_across_segments() -> None:
    body = "ж" * 66 + "😀" + "ж" * 66  # 134 units: 2 segments of 67 only if the emoji were split
    assert sms_segments(body) == SmsEncoding("UCS-2", 3, 134)
    assert sms_segments("ж" * 65 + "😀" + "ж" * 67) == SmsEncoding("UCS-2", 2, 134)


@given(st.text(alphabet=GSM_ALL_CHARS, max_size=800))
def test_gsm_bodies_match_the_septet_model(body: str) -> None:
    result = sms_segments(body)
    assert result.encoding == "GSM-7"
    assert result.units == len(body) + sum(ch in GSM_EXTENSION for ch in body)
    assert result.segments == reference_gsm_segments(body)


@given(st.text(alphabet=GSM_BASIC_CHARS, min_size=161, max_size=800))
def test_basic_only_bodies_split_every_153(body: str) -> None:
    assert sms_segments(body).segments == -(-len(body) // 153)


@given(st.text(max_size=400), st.characters(exclude_characters=GSM_ALL_CHARS, exclude_categories=["Cs"]))
def test_any_non_gsm_character_makes_ucs2_counted_in_utf16_units(text: str, odd: str) -> None:
    body = text + odd
    result = sms_segments(body)
    assert result.encoding == "UCS-2"
    assert result.units == len(body.encode("utf-16-le")) // 2
    assert result.segments == reference_ucs2_segments(body)


@given(st.text(max_size=300), st.characters(exclude_categories=["Cs"]))
def test_appending_never_lowers_the_segment_count(body: str, extra: str) -> None:
    assert sms_segments(body + extra).segments >= sms_segments(body).segments


# --- keywords -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "action"),
    [
        ("STOP", KeywordAction.STOP),
        ("Stop.", KeywordAction.STOP),
        (" stop!! ", KeywordAction.STOP),
        ("STOP 🙏", KeywordAction.STOP),
        ("❤️ stop ❤️", KeywordAction.STOP),  # emoji with a variation selector
        ("\uff33\uff34\uff2f\uff30", KeywordAction.STOP),  # full-width, folded by NFKC
        ("\u200bstop\u200b", KeywordAction.STOP),  # zero-width spaces
        ("StopAll", KeywordAction.STOP),
        ("unsubscribe", KeywordAction.STOP),
        ("Cancel", KeywordAction.STOP),
        ("END", KeywordAction.STOP),
        ("quit!", KeywordAction.STOP),
        ("START", KeywordAction.START),
        ("unstop", KeywordAction.START),
        ("Help?", KeywordAction.HELP),
        ("info", KeywordAction.HELP),
    ],
)
def test_keywords_are_recognised(body: str, action: KeywordAction) -> None:
    assert classify_keyword(body) is action


@pytest.mark.parametrize(
    "body",
    [
        "please don't stop",
        "stop now",
        "stop stop",
        "Yes",  # not a START keyword here
        "stopping",
        "s.t.o.p",
        "unsubscribe me",
        "help me please",
        "",
        "   ",
        "🙏",
        "stop1",
    ],
)
def test_other_messages_are_not_keywords(body: str) -> None:
    assert classify_keyword(body) is None


KEYWORDS = ["stop", "stopall", "unsubscribe", "cancel", "end", "quit", "start", "unstop", "help", "info"]
DECORATION = st.text(alphabet=st.sampled_from(list(" \t\n.,!?;:-*()'\"🙏😀❤️👍\u200b")), max_size=6)


@given(st.sampled_from(KEYWORDS), st.lists(st.booleans(), min_size=11, max_size=11), DECORATION, DECORATION)
def test_decorated_keywords_in_any_case_are_recognised(
    word: str, upper: list[bool], before: str, after: str
) -> None:
    cased = "".join(ch.upper() if up else ch for ch, up in zip(word, upper, strict=False))
    expected = classify_keyword(word)
    assert expected is not None
    assert classify_keyword(before + cased + after) is expected


@given(
    st.sampled_from(KEYWORDS),
    st.text(alphabet=st.characters(categories=["Ll", "Lu", "Nd"]), min_size=1, max_size=8),
    st.booleans(),
)
def test_a_keyword_next_to_another_word_is_not_a_keyword(word: str, other: str, other_first: bool) -> None:
    body = f"{other} {word}" if other_first else f"{word} {other}"
    assert classify_keyword(body) is None


# --- quiet hours ----------------------------------------------------------------------------------------

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")
NIGHT = QuietHours(time(21), time(8))


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0, *, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold)


def test_outside_quiet_hours_sends_now() -> None:
    now = local(NY, 2024, 6, 3, 12, 0)
    assert NIGHT.next_allowed(now, NY) == now
    assert NIGHT.next_allowed(now, NY).tzinfo is UTC


def test_inside_a_window_that_wraps_midnight_waits_for_the_morning() -> None:
    assert NIGHT.next_allowed(local(NY, 2024, 6, 3, 22, 15), NY) == datetime(2024, 6, 4, 12, 0, tzinfo=UTC)
    assert NIGHT.next_allowed(local(NY, 2024, 6, 4, 3, 0), NY) == datetime(2024, 6, 4, 12, 0, tzinfo=UTC)
    # the start is inside, the end is not
    assert NIGHT.next_allowed(local(NY, 2024, 6, 3, 21, 0), NY) == datetime(2024, 6, 4, 12, 0, tzinfo=UTC)
    end = local(NY, 2024, 6, 4, 8, 0)
    assert NIGHT.next_allowed(end, NY) == end


def test_a_window_within_one_day() -> None:
    lunch = QuietHours(time(12), time(13, 30))
    before, during = local(KOLKATA, 2024, 1, 5, 11, 59), local(KOLKATA, 2024, 1, 5, 12, 10)
    assert lunch.next_allowed(during, KOLKATA) == local(KOLKATA, 2024, 1, 5, 13, 30)
    assert lunch.next_allowed(before, KOLKATA) == before


def test_equal_start_and_end_means_no_quiet_hours() -> None:
    none = QuietHours(time(9), time(9))
    now = local(BERLIN, 2024, 3, 31, 9, 0)
    assert not none.enabled
    assert none.next_allowed(now, BERLIN) == now


def test_the_zone_decides_what_local_time_it_is() -> None:
    now = datetime(2024, 6, 4, 3, 0, tzinfo=UTC)  # 23:00 in New York, 05:00 in Berlin, 08:30 in Kolkata
    assert NIGHT.next_allowed(now, NY) == datetime(2024, 6, 4, 12, 0, tzinfo=UTC)
    assert NIGHT.next_allowed(now, BERLIN) == datetime(2024, 6, 4, 6, 0, tzinfo=UTC)
    assert NIGHT.next_allowed(now, KOLKATA) == now


def test_an_end_in_the_spring_forward_gap_releases_at_the_transition() -> None:
    window = QuietHours(time(21), time(2, 30))  # 02:30 does not exist in New York on 2024-03-10
    result = window.next_allowed(local(NY, 2024, 3, 10, 1, 0), NY)
    assert result == datetime(2024, 3, 10, 7, 0, tzinfo=UTC)  # 03:00 EDT, the first valid instant
    assert result.astimezone(NY).time() == time(3, 0)


def test_lord_howe_half_hour_spring_gap() -> None:
    window = QuietHours(time(21), time(2, 15))  # Lord Howe jumps 02:00 -> 02:30 on 2024-10-06
    result = window.next_allowed(local(LORD_HOWE, 2024, 10, 6, 1, 50), LORD_HOWE)
    assert result.astimezone(LORD_HOWE).replace(tzinfo=None) == datetime(2024, 10, 6, 2, 30)
    assert (result - timedelta(microseconds=1)).astimezone(LORD_HOWE).time() < time(2, 0)


def test_autumn_ambiguous_end_uses_the_first_occurrence_after_now() -> None:
    window = QuietHours(time(22), time(1, 30))  # New York repeats 01:00-02:00 on 2024-11-03
    first = window.next_allowed(local(NY, 2024, 11, 2, 23, 0), NY)
    assert first == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)  # 01:30 EDT
    # the repeated hour brings the window back; from inside it, the second 01:30 (EST) is next
    second = window.next_allowed(local(NY, 2024, 11, 3, 1, 10, fold=1), NY)
    assert second == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)


def test_falling_back_out_of_the_window_releases_at_the_transition() -> None:
    window = QuietHours(time(1, 30), time(3))
    # 01:45 EDT; at 02:00 EDT the clock goes back to 01:00 EST, which is before the window
    result = window.next_allowed(local(NY, 2024, 11, 3, 1, 45), NY)
    assert result == datetime(2024, 11, 3, 6, 0, tzinfo=UTC)
    assert result.astimezone(NY).time() == time(1, 0)


def test_a_skipped_calendar_day_is_crossed() -> None:
    apia = ZoneInfo("Pacific/Apia")  # 2011-12-30 never happened in Samoa
    result = NIGHT.next_allowed(local(apia, 2011, 12, 29, 23, 0), apia)
    assert result.astimezone(apia).replace(tzinfo=None) == datetime(2011, 12, 31, 8, 0)


def test_quiet_hours_reject_naive_and_zoned_inputs() -> None:
    with pytest.raises(ValueError, match="aware"):
        NIGHT.next_allowed(datetime(2024, 1, 1, 22), NY)
    with pytest.raises(ValueError, match="naive"):
        QuietHours(time(21, tzinfo=UTC), time(8))


@pytest.mark.parametrize(
    ("contact_tz", "location_tz", "expected"),
    [
        ("Europe/Berlin", "America/New_York", "Europe/Berlin"),
        (None, "America/New_York", "America/New_York"),
        ("", "Asia/Kolkata", "Asia/Kolkata"),
        ("Mars/Olympus", "Asia/Kolkata", "Asia/Kolkata"),
        ("../../etc/passwd", "Asia/Kolkata", "Asia/Kolkata"),
        ("America", "Australia/Lord_Howe", "Australia/Lord_Howe"),  # a directory, not a zone
        (" Europe/Berlin ", "UTC", "Europe/Berlin"),
        ("nope", "also/nope", "UTC"),
        (None, "", "UTC"),
    ],
)
def test_resolve_zone(contact_tz: str | None, location_tz: str, expected: str) -> None:
    assert resolve_zone(contact_tz, location_tz) == ZoneInfo(expected)


ZONES = st.sampled_from([NY, BERLIN, LORD_HOWE, KOLKATA])
# Whole minutes, any time, and times around the small hours when clocks change.
WALL_TIMES = (
    st.times().map(lambda t: t.replace(second=0, microsecond=0))
    | st.times()
    | st.times(min_value=time(0, 30), max_value=time(3, 30)).map(lambda t: t.replace(second=0, microsecond=0))
)
INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2040, 12, 31),
    timezones=st.just(UTC),
)
# Instants near the DST transitions, where the interesting cases are.
# (zone, instant) pairs within half an hour of that zone's DST transitions, where the hard cases are.
NEAR_TRANSITIONS = st.builds(
    lambda pair, minutes: (pair[0], pair[1] + timedelta(minutes=minutes)),
    st.sampled_from(
        [
            (NY, datetime(2024, 3, 10, 7, tzinfo=UTC)),  # spring, 02:00 -> 03:00
            (NY, datetime(2024, 11, 3, 6, tzinfo=UTC)),  # autumn, 02:00 -> 01:00
            (BERLIN, datetime(2024, 3, 31, 1, tzinfo=UTC)),  # spring, 02:00 -> 03:00
            (BERLIN, datetime(2024, 10, 27, 1, tzinfo=UTC)),  # autumn, 03:00 -> 02:00
            (LORD_HOWE, datetime(2024, 4, 6, 15, tzinfo=UTC)),  # autumn, 02:00 -> 01:30
            (LORD_HOWE, datetime(2024, 10, 5, 15, 30, tzinfo=UTC)),  # spring, 02:00 -> 02:30
        ]
    ),
    st.integers(min_value=-30 * 60, max_value=30 * 60),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=WALL_TIMES,
    end=WALL_TIMES,
    case=st.tuples(ZONES, INSTANTS) | NEAR_TRANSITIONS,
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
)
# Falling back out of the window, in each zone that falls back (the clock jumps below the start).
@example(time(1, 30), time(3), (NY, datetime(2024, 11, 3, 5, 45, tzinfo=UTC)), 0.5)
@example(time(2, 30), time(4), (BERLIN, datetime(2024, 10, 27, 0, 45, tzinfo=UTC)), 0.5)
@example(time(1, 45), time(3), (LORD_HOWE, datetime(2024, 4, 6, 14, 50, tzinfo=UTC)), 0.5)
# Spring gaps: an end inside the gap, and a window that covers almost all of the day.
@example(time(21), time(2, 30), (NY, datetime(2024, 3, 10, 6, 0, tzinfo=UTC)), 0.9)
@example(time(2, 1), time(2), (NY, datetime(2024, 3, 10, 3, 59, tzinfo=UTC)), 0.0)
@example(time(21), time(2, 15), (LORD_HOWE, datetime(2024, 10, 5, 15, 20, tzinfo=UTC)), 0.3)
def test_next_allowed_is_the_first_instant_outside_the_window(
    start: time, end: time, case: tuple[ZoneInfo, datetime], fraction: float
) -> None:
    tz, now = case
    window = QuietHours(start, end)
    result = window.next_allowed(now, tz)

    assert result.tzinfo is UTC
    assert result >= now
    assert not window.contains(result.astimezone(tz).time())
    if result == now:
        return
    assert window.enabled
    # minimal: every instant from now up to the result is inside the window. Probe the edges, a random
    # point, and a 5-minute grid (clock changes happen on such boundaries and move by 30 or 60 minutes).
    grid_start = now.replace(second=0, microsecond=0) + timedelta(minutes=5 - now.minute % 5)
    grid = [
        grid_start + timedelta(minutes=5 * k) for k in range((result - grid_start) // timedelta(minutes=5))
    ]
    for probe in (
        now,
        result - timedelta(microseconds=1),
        max(now, result - timedelta(minutes=1)),
        min(now + (result - now) * fraction, result - timedelta(microseconds=1)),
        *[g for g in grid if g < result],
    ):
        assert window.contains(probe.astimezone(tz).time()), probe
    # Within a day, unless the window end fell into a spring-forward gap and the clock landed back inside
    # a window that covers almost the whole day (02:01-02:00): then the next day's end, under 49 hours.
    assert result - now <= timedelta(hours=49)
