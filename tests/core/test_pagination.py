"""Page requests, opaque cursors and pages cut from limit + 1 rows."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    PageRequest,
    decode_cursor,
    encode_cursor,
    page_from_rows,
)


def pointers(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.pointer for e in exc.value.errors]


def test_defaults() -> None:
    page = PageRequest.parse(None, None, None)
    assert page == PageRequest(limit=DEFAULT_LIMIT, after=None, offset=None)
    assert DEFAULT_LIMIT == 20
    assert MAX_LIMIT == 100


@pytest.mark.parametrize("limit", [1, 50, 100])
def test_limits_in_range(limit: int) -> None:
    assert PageRequest.parse(limit, None, None).limit == limit


@pytest.mark.parametrize("limit", [0, -1, 101, 10_000])
def test_limits_out_of_range(limit: int) -> None:
    with pytest.raises(ValidationFailed) as exc:
        PageRequest.parse(limit, None, None)
    assert pointers(exc) == ["/limit"]


def test_offset() -> None:
    assert PageRequest.parse(10, None, 0).offset == 0
    assert PageRequest.parse(10, None, 30).offset == 30
    with pytest.raises(ValidationFailed) as exc:
        PageRequest.parse(10, None, -1)
    assert pointers(exc) == ["/offset"]


def test_cursor_and_offset_together_are_refused() -> None:
    cursor = encode_cursor(("a", "b"))
    with pytest.raises(ValidationFailed) as exc:
        PageRequest.parse(10, cursor, 0)
    assert pointers(exc) == ["/cursor"]


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as exc:
        PageRequest.parse(0, encode_cursor(("x",)), -5)
    assert pointers(exc) == ["/limit", "/offset", "/cursor"]
    assert "/limit: must be between 1 and 100" in str(exc.value)


def test_cursor_is_decoded() -> None:
    page = PageRequest.parse(5, encode_cursor(("2026-01-01T00:00:00+00:00", "abc")), None)
    assert page.after == ("2026-01-01T00:00:00+00:00", "abc")
    assert PageRequest.parse(5, "", None).after is None


keys = st.lists(st.one_of(st.text(), st.integers(), st.uuids(), st.datetimes()), max_size=5).map(tuple)


@given(keys)
def test_cursor_round_trip(key: tuple[object, ...]) -> None:
    cursor = encode_cursor(key)
    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor) == tuple(str(k) for k in key)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "a",  # impossible length
        _b64(b"not json"),
        _b64(b"\xff\xfe\xfd"),
        _b64(json.dumps({"a": 1}).encode()),
        _b64(json.dumps([1, 2]).encode()),
        _b64(json.dumps("text").encode()),
        _b64(json.dumps(["ok", None]).encode()),
        _b64(b"[" * 100_000),  # nesting deep enough to exhaust the JSON parser's recursion
    ],
)
def test_garbage_cursors_are_rejected(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        decode_cursor(cursor)
    assert pointers(exc) == ["/cursor"]


@given(st.text(max_size=64))
def test_any_text_decodes_or_is_rejected_cleanly(cursor: str) -> None:
    value: tuple[str, ...] = ()
    errors: list[str] = []
    try:
        value = decode_cursor(cursor)
    except ValidationFailed as exc:
        errors = [e.pointer for e in exc.errors]
    assert errors in ([], ["/cursor"])
    assert all(isinstance(v, str) for v in value)


@dataclass
class Row:
    n: int


def test_page_from_rows_with_more() -> None:
    rows = [Row(i) for i in range(4)]
    page = page_from_rows(rows, 3, lambda r: (r.n, "x"))
    assert page.items == rows[:3]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == ("2", "x")


@pytest.mark.parametrize("count", [0, 2, 3])
def test_page_from_rows_last_page(count: int) -> None:
    rows = [Row(i) for i in range(count)]
    page = page_from_rows(rows, 3, lambda r: (r.n,))
    assert page.items == rows
    assert page.next_cursor is None
