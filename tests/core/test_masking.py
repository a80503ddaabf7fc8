from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ghl_core.shared.masking import MASK, mask_email, mask_phone, mask_text, mask_value

e164 = st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)
# Filler that cannot glue itself onto an address or number, as real prose separates them with spaces.
filler = st.text(alphabet="abc XYZ,:;!", max_size=20).map(lambda s: f" {s} ")
# An address made only of mask characters reveals nothing, and "****@x" trivially contains "*@x".
emails = st.emails().filter(lambda e: "*" not in e.rpartition("@")[0])
json_like: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=12) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


def test_mask_email_keeps_first_letter_and_domain() -> None:
    assert mask_email("jane.doe@example.com") == "j***@example.com"


@pytest.mark.parametrize("value", ["", "no-at-sign", "   "])
def test_mask_email_without_an_address_hides_everything(value: str) -> None:
    assert mask_email(value) == MASK


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+14155550123", "+1******0123"),
        ("(415) 555-0123", "******0123"),
        ("+44 20 7946 0958", "+4*******0958"),
        ("5550123", "*****23"),
        ("12345", MASK),
    ],
)
def test_mask_phone_keeps_a_country_hint_and_the_tail(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_mask_text_masks_addresses_and_numbers_in_prose() -> None:
    text = "Mail jane@example.com or call +1 (415) 555-0123 / 415.555.0123 today"

    masked = mask_text(text)

    assert masked == "Mail j***@example.com or call +1******0123 / ******0123 today"


@pytest.mark.parametrize(
    "text",
    [
        "at 2024-01-15T10:00:00.123Z",
        "on 2024-01-15",
        "id 3f2a9c1e12345678ab9c1e1234567890",
        "uuid 3f2a9c1e-1234-4234-8234-12345678abcd",
        "retry 3 of 5 after 250 ms",
    ],
)
def test_mask_text_leaves_timestamps_ids_and_small_numbers(text: str) -> None:
    assert mask_text(text) == text


def test_mask_text_in_a_query_string_masks_the_address_only() -> None:
    assert mask_text("/c?email=jane@example.com&page=2") == "/c?email=j***@example.com&page=2"


def test_mask_value_applies_key_rules_recursively() -> None:
    event = {
        "Password": "hunter2",
        "X-Api-Key": "k",
        "stripe_secret": "s",
        "session_token": "t",
        "key_hash": "h",
        "Authorization": "Bearer abc",
        "contact": {"email": "jane@example.com", "phone": "+14155550123", "name": "Jane"},
        "notes": ("reach me at jane@example.com", 3, None),
        "recipients": [{"billing_email": "bob@example.org"}],
    }

    assert mask_value(event) == {
        "Password": MASK,
        "X-Api-Key": MASK,
        "stripe_secret": MASK,
        "session_token": MASK,
        "key_hash": MASK,
        "Authorization": MASK,
        "contact": {"email": "j***@example.com", "phone": "+1******0123", "name": "Jane"},
        "notes": ("reach me at j***@example.com", 3, None),
        "recipients": [{"billing_email": "b***@example.org"}],
    }


def test_mask_value_masks_secrets_whatever_their_type() -> None:
    assert mask_value({"token": {"nested": 1}, "api_key": 42}) == {"token": MASK, "api_key": MASK}


def test_mask_value_survives_cycles_and_unprintable_objects() -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    cyclic: list[Any] = []
    cyclic.append(cyclic)

    assert mask_value({"x": Hostile()}, stringify_unknown=True) == {"x": "<unprintable Hostile>"}
    assert MASK in str(mask_value(cyclic))


def test_mask_value_stringifies_unknown_objects_only_when_asked() -> None:
    class Contact:
        def __repr__(self) -> str:
            return "Contact(jane@example.com)"

        __str__ = __repr__

    contact = Contact()

    assert mask_value(contact) is contact
    assert mask_value(contact, stringify_unknown=True) == "Contact(j***@example.com)"


@given(email=emails)
def test_masked_email_never_contains_the_original(email: str) -> None:
    assert email not in mask_email(email)


@given(email=emails, before=filler, after=filler)
def test_masked_text_never_contains_an_embedded_email(email: str, before: str, after: str) -> None:
    assert email not in mask_text(before + email + after)


@given(phone=e164, before=filler, after=filler)
def test_masked_text_never_contains_an_embedded_phone(phone: str, before: str, after: str) -> None:
    masked = mask_text(before + phone + after)

    assert phone not in masked
    assert phone[1:] not in masked


@given(phone=st.from_regex(r"\+?[0-9][0-9 ().-]{5,20}[0-9]", fullmatch=True))
def test_masked_phone_never_keeps_seven_digits_in_a_row(phone: str) -> None:
    assume(sum(c.isdigit() for c in phone) >= 7)

    assert not re.search(r"[0-9]{5}", mask_phone(phone))


@given(email=emails, phone=e164, secret=st.text(min_size=1))
def test_mask_value_hides_pii_under_any_key(email: str, phone: str, secret: str) -> None:
    masked = str(mask_value({"email": email, "phone": phone, "refresh_token": secret, "note": [email]}))

    assert email not in masked
    assert phone not in masked
    assert mask_value({"refresh_token": secret}) == {"refresh_token": MASK}


@given(value=json_like)
def test_mask_value_never_raises(value: Any) -> None:
    mask_value(value)
    mask_value(value, stringify_unknown=True)


@given(text=st.text())
def test_mask_text_never_raises_and_is_idempotent(text: str) -> None:
    once = mask_text(text)

    assert mask_text(once) == once
