"""Shared validators, identifiers and the domain errors."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghl_core.shared.clock import SystemClock
from ghl_core.shared.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)
from ghl_core.shared.ids import new_id, parse_id
from ghl_core.shared.validation import (
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_country,
    check_email,
    check_name,
    check_password,
    check_timezone,
    normalize_email,
)


def test_name_is_trimmed_and_whitespace_collapsed() -> None:
    errors: list[FieldError] = []
    assert check_name("  Jane \t\n Doe  ", "/name", errors) == "Jane Doe"
    assert errors == []


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_blank_name(value: str) -> None:
    errors: list[FieldError] = []
    check_name(value, "/name", errors)
    assert errors == [FieldError("/name", "must not be blank")]


def test_name_length_limit() -> None:
    errors: list[FieldError] = []
    assert check_name("x" * MAX_NAME_LENGTH, "/n", errors) == "x" * MAX_NAME_LENGTH
    assert errors == []
    check_name("x" * (MAX_NAME_LENGTH + 1), "/n", errors)
    assert [e.pointer for e in errors] == ["/n"]
    assert "at most 200" in errors[0].detail


@given(st.text(max_size=300))
def test_check_name_property(value: str) -> None:
    errors: list[FieldError] = []
    cleaned = check_name(value, "/name", errors)
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    control = any(unicodedata.category(ch) == "Cc" for ch in cleaned)
    assert bool(errors) == (not cleaned or control or len(cleaned) > MAX_NAME_LENGTH)
    assert len(errors) <= 1


@pytest.mark.parametrize("value", ["a\x00b", "bell\x07", "esc\x1b[31m"])
def test_name_with_control_characters(value: str) -> None:
    errors: list[FieldError] = []
    check_name(value, "/name", errors)
    assert errors == [FieldError("/name", "must not contain control characters")]


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Jane@Example.COM", "jane@example.com"),
        ("  JOHN.DOE@example.org ", "john.doe@example.org"),
        ("a+tag@Sub.Example.co.uk", "a+tag@sub.example.co.uk"),
    ],
)
def test_emails_are_lower_cased(raw: str, normal: str) -> None:
    assert normalize_email(raw) == normal
    errors: list[FieldError] = []
    assert check_email(raw, "/email", errors) == normal
    assert errors == []


@pytest.mark.parametrize("raw", ["", "plain", "a@", "@b.com", "a b@c.com", "a@b", "a@@b.com"])
def test_bad_emails(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_email(raw)
    errors: list[FieldError] = []
    assert check_email(raw, "/email", errors) == raw
    assert len(errors) == 1
    assert errors[0].pointer == "/email"
    assert errors[0].detail.startswith("is not a valid e-mail address")


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Europe/Paris", "Asia/Kolkata"])
def test_known_time_zones(zone: str) -> None:
    errors: list[FieldError] = []
    assert check_timezone(zone, "/timezone", errors) == zone
    assert errors == []


@pytest.mark.parametrize("zone", ["", "Mars/Olympus", "EST5EDT ", "america/new_york", "+01:00"])
def test_unknown_time_zones(zone: str) -> None:
    errors: list[FieldError] = []
    check_timezone(zone, "/timezone", errors)
    assert [e.pointer for e in errors] == ["/timezone"]


@pytest.mark.parametrize(("raw", "code"), [("US", "US"), ("us", "US"), (" gb ", "GB")])
def test_countries(raw: str, code: str) -> None:
    errors: list[FieldError] = []
    assert check_country(raw, "/country", errors) == code
    assert errors == []


@pytest.mark.parametrize("raw", ["", "U", "USA", "1A", "ÄB", "u-"])
def test_bad_countries(raw: str) -> None:
    errors: list[FieldError] = []
    check_country(raw, "/country", errors)
    assert [e.pointer for e in errors] == ["/country"]


@pytest.mark.parametrize(
    ("length", "ok"),
    [
        (0, False),
        (MIN_PASSWORD_LENGTH - 1, False),
        (MIN_PASSWORD_LENGTH, True),
        (MAX_PASSWORD_LENGTH, True),
        (MAX_PASSWORD_LENGTH + 1, False),
    ],
)
def test_password_length(length: int, ok: bool) -> None:
    errors: list[FieldError] = []
    assert check_password("p" * length, "/password", errors) == "p" * length
    assert (errors == []) is ok


def test_ids() -> None:
    a, b = new_id(), new_id()
    assert a != b
    assert a.version == 4
    assert parse_id(str(a)) == a
    assert parse_id(a.hex) == a
    with pytest.raises(ValidationFailed) as exc:
        parse_id("nope", "/user_id")
    assert exc.value.errors == [FieldError("/user_id", "must be a UUID")]


def test_error_codes_and_titles() -> None:
    assert [c.code for c in (NotFound, Conflict, Unauthenticated, PermissionDenied, TooManyRequests)] == [
        "not_found",
        "conflict",
        "unauthenticated",
        "permission_denied",
        "too_many_requests",
    ]
    assert issubclass(NotFound, DomainError)
    plain = NotFound()
    assert plain.detail == "Not found"
    assert str(plain) == "Not found"
    told = Conflict("taken")
    assert told.detail == "taken"
    assert str(told) == "taken"


def test_validation_failed() -> None:
    exc = ValidationFailed([FieldError("/a", "bad"), FieldError("/b", "worse")])
    assert exc.code == "validation_failed"
    assert exc.detail == "/a: bad; /b: worse"
    one = ValidationFailed.one("/x", "nope")
    assert one.errors == [FieldError("/x", "nope")]
    assert ValidationFailed([], "custom").detail == "custom"


@pytest.mark.parametrize(("given_", "expected"), [(0, 1), (-3, 1), (1, 1), (42, 42), (2.9, 2)])
def test_too_many_requests_retry_after_is_at_least_one(given_: float, expected: int) -> None:
    exc = TooManyRequests("slow down", retry_after=given_)  # type: ignore[arg-type]
    assert exc.retry_after == expected
    assert TooManyRequests().retry_after == 1


def test_uuid_parse_of_uuid_object() -> None:
    value = uuid.uuid4()
    assert parse_id(value) == value  # type: ignore[arg-type]


def test_system_clock_is_timezone_aware() -> None:
    assert SystemClock().now().utcoffset() == timedelta(0)
