"""The pieces of an import's identity resolution: cheap keys equal to the parsers' normalised forms, the
count of keys seen twice, and the union-find of identity groups with the contacts that already existed."""

from __future__ import annotations

import string
import uuid
from datetime import UTC, datetime, timedelta

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from ghl_core.contacts.import_identities import Identities, KeyCounts, quick_email_key
from ghl_core.contacts.models import Contact, DuplicatePolicy, DuplicatePriority
from ghl_core.shared.phones import normalize_phone, quick_phone_key
from ghl_core.shared.validation import normalize_email

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
EXAMPLES = [
    number
    for region in REGIONS
    for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE)
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
]
FORMATS = [PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL]


def _normalized(value: str, region: str) -> str | None:
    try:
        return normalize_phone(value, region)
    except ValueError:
        return None


@settings(max_examples=400)
@given(
    number=st.sampled_from(EXAMPLES),
    fmt=st.sampled_from(FORMATS),
    region=st.sampled_from(REGIONS),
    spaced=st.booleans(),
)
def test_a_quick_phone_key_is_the_parsers_e164_of_a_valid_number(
    number: phonenumbers.PhoneNumber, fmt: int, region: str, spaced: bool
) -> None:
    written = phonenumbers.format_number(number, fmt)
    if spaced:
        written = f"  {written.replace(' ', '-')} "
    quick = quick_phone_key(written, region)
    exact = _normalized(written, region)
    if quick is not None and exact is not None:
        assert quick == exact


@settings(max_examples=400)
@given(
    region=st.sampled_from(REGIONS),
    shape=st.sampled_from(["+{cc}{d}", "+{cc} {d}", "0{d}", "{d}", "1{d}", "+{cc} 0{d}", "+{cc} (0){d}"]),
    digits=st.text(string.digits, min_size=4, max_size=12),
)
def test_a_quick_phone_key_of_random_digits_never_differs_from_the_parser(
    region: str, shape: str, digits: str
) -> None:
    written = shape.format(cc=phonenumbers.country_code_for_region(region), d=digits)
    quick = quick_phone_key(written, region)
    exact = _normalized(written, region)
    if quick is not None and exact is not None:
        assert quick == exact


def test_quick_phone_keys_of_the_usual_spellings() -> None:
    for written in ("+13125550101", "+1 (312) 555-0101", "(312) 555-0101", "312.555.0101", "1-312-555-0101"):
        assert quick_phone_key(written, "US") == "+13125550101"
    assert quick_phone_key("+44 20 7946 0958", "US") == "+442079460958"
    # The parser's work: extensions, letters, a trunk prefix after the country code, rewriting regions.
    for written, region in (
        ("312-555-0101 ext. 5", "US"),
        ("1-800-FLOWERS", "US"),
        ("+44 (0)20 7946 0958", "GB"),
        ("+44 020 7946 0958", "GB"),
        ("011 15 2345-6789", "AR"),
        ("06 1234 5678", "IT"),
        ("020 7946 0958", "GB"),  # Rwanda's 06000000 keeps its 0: national spellings are the parser's
    ):
        assert quick_phone_key(written, region) is None, written


local_parts = st.text(string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-.", min_size=1, max_size=20)
domains = st.lists(
    st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=10), min_size=1, max_size=3
).map(".".join)
tlds = st.sampled_from(["com", "ORG", "de", "io", "x", "c0m", "local", "test", "xn--p1ai", "museum"])


@settings(max_examples=500)
@given(local=local_parts, domain=domains, tld=tlds, pad=st.sampled_from(["", " ", "\t"]))
def test_a_quick_email_key_is_the_validators_normalised_address(
    local: str, domain: str, tld: str, pad: str
) -> None:
    written = f"{pad}{local}@{domain}.{tld}{pad}"
    quick = quick_email_key(written)
    try:
        exact: str | None = normalize_email(written)
    except ValueError:
        exact = None
    if quick is not None and exact is not None:
        assert quick == exact
    assert quick_email_key("Zoë@example.com") is None  # not ASCII: the validator's work
    assert quick_email_key("Ann.Lee+News@Example.COM") == "ann.lee+news@example.com"


@given(keys=st.lists(st.text(max_size=12), max_size=3000))
def test_key_counts_tell_keys_seen_twice(keys: list[str]) -> None:
    counts = KeyCounts()
    for key in keys:
        counts.add(key)
    repeated = {key for key in keys if keys.count(key) > 1}
    assert all(counts.twice(key) for key in repeated)
    # Distinct keys pass for repeats only when their 32-bit fingerprints meet (the exact second read
    # sorts them out): here about one chance in a thousand.
    assert sum(1 for key in set(keys) - repeated if counts.twice(key)) <= 2
    assert len(repeated) <= counts.repeated <= len(repeated) + 2


def contact(email: str | None = None, phone: str | None = None, age: int = 0) -> Contact:
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=age)
    return Contact(
        id=uuid.uuid4(),
        location_id=uuid.uuid4(),
        created_at=created,
        updated_at=created,
        email=email,
        phone=phone,
    )


def test_rows_linked_through_other_rows_are_one_group_whatever_their_order() -> None:
    rows = [("a@x.com", None), (None, "+13125550101"), ("a@x.com", "+13125550101"), ("b@x.com", None)]
    for ordered in (rows, rows[::-1]):
        identities = Identities(DuplicatePolicy())
        for email, phone in ordered:
            identities.add_row(email, phone)
        identities.finish()
        group = identities.group("a@x.com", None)
        assert group >= 0
        assert identities.group(None, "+13125550101") == group
        assert identities.group("b@x.com", None) == -1  # a single row is no group
        assert identities.groups == 1
        assert [identities.written(group) for _ in range(3)] == [False, False, True]


def test_a_group_goes_to_the_contact_that_exists_or_is_refused_when_it_links_two() -> None:
    holder = contact(phone="+13125550101")
    identities = Identities(DuplicatePolicy())
    for row in (("a@x.com", None), (None, "+13125550101"), ("a@x.com", "+13125550101")):
        identities.add_row(*row)
    identities.match([holder])
    identities.finish()
    group = identities.group("a@x.com", None)
    assert (identities.existing(group), identities.refused(group)) == (holder.id, None)

    other = contact(email="a@x.com", age=1)
    identities = Identities(DuplicatePolicy())
    for row in (("a@x.com", None), ("a@x.com", "+13125550101")):
        identities.add_row(*row)
    identities.match([other])
    identities.match([holder])
    identities.finish()
    refused = identities.refused(identities.group("a@x.com", None))
    assert refused is not None
    assert set(refused) == {holder.id, other.id}


def test_where_duplicates_are_allowed_the_priority_then_the_oldest_wins() -> None:
    old_phone, new_phone = contact(phone="+13125550101", age=0), contact(phone="+13125550101", age=5)
    by_email = contact(email="a@x.com", age=9)
    for priority, expected in ((DuplicatePriority.EMAIL, by_email), (DuplicatePriority.PHONE, old_phone)):
        identities = Identities(DuplicatePolicy(allow_duplicates=True, priority=priority))
        for row in (("a@x.com", None), ("a@x.com", "+13125550101")):
            identities.add_row(*row)
        identities.match([new_phone, by_email, old_phone])
        identities.finish()
        group = identities.group("a@x.com", None)
        assert (identities.existing(group), identities.refused(group)) == (expected.id, None)


def test_the_table_grows_past_its_first_size() -> None:
    identities = Identities(DuplicatePolicy())
    for i in range(3000):
        identities.add_row(f"p{i}@x.com", f"+1312555{i:04d}")
        identities.add_row(f"p{i}@x.com", None)
    identities.finish()
    assert identities.groups == 3000
    assert identities.group(None, "+13125552999") == identities.group("p2999@x.com", None) >= 0
