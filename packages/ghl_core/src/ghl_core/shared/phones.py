"""Phone numbers in E.164, parsed with the location's country as the default region."""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import PhoneMetadata

# Digits with the separators people write, optionally after a leading "+".
_PLAIN = re.compile(r"\+?[0-9 ().\-/]+")
_NOT_DIGIT = re.compile(r"\D")
_LITERAL_PREFIXES = re.compile(r"\d+(?:\|\d+)*")


def normalize_phone(value: str, default_region: str) -> str:
    """E.164 form of `value`; raises ValueError with a readable reason."""
    text = value.strip()
    if not text:
        raise ValueError("is empty")
    try:
        parsed = phonenumbers.parse(text, default_region.upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"is not a phone number ({exc.args[0] if exc.args else 'unparseable'})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"'{value}' is not a valid phone number for region {default_region.upper()}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@functools.cache
def _trunk_prefixes(region: str) -> tuple[str, ...] | None:
    """The national (trunk) prefixes of a region when they are plain digit strings that are simply
    dropped (`0`, or `1` in North America); None when the region rewrites numbers as it parses them
    (Argentina, Brazil, Japan, ...), which only the full parser gets right."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.national_prefix_transform_rule:
        return None
    parsing = metadata.national_prefix_for_parsing or metadata.national_prefix or ""
    if parsing and not _LITERAL_PREFIXES.fullmatch(parsing):
        return None
    return tuple(p for p in parsing.split("|") if p)


@functools.cache
def _country(digits3: str) -> tuple[str, tuple[str, ...] | None] | None:
    """The country calling code at the start of these digits (codes are prefix-free), with its main
    region's trunk prefixes."""
    for size in (1, 2, 3):
        code = int(digits3[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return digits3[:size], _trunk_prefixes(phonenumbers.region_code_for_country_code(code))
    return None


def quick_phone_key(value: str, default_region: str) -> str | None:
    """The E.164 form `normalize_phone` gives `value` when it is valid, worked out without the parser for
    the common ways of writing a number (`+13125550101`, `+44 20 7946 0958`, and `(312) 555-0101` in
    North America); None for anything else, which needs `normalize_phone`. Whether the number is valid
    is not checked. (Several times cheaper than parsing: the import computes it for every row of a file
    before it imports any.)"""
    text = value.strip()
    if not _PLAIN.fullmatch(text) or "(0)" in text:
        return None
    digits = _NOT_DIGIT.sub("", text)
    if text[0] == "+":
        country = _country(digits[:3]) if len(digits) > 3 else None
        if country is None or country[1] is None:
            return None
        code, prefixes = country
        national = digits[len(code) :]
        if not national or national[0] == "0" or any(national.startswith(p) for p in prefixes or ()):
            return None
        return "+" + digits
    region = default_region.upper()
    prefixes = _trunk_prefixes(region)
    metadata = PhoneMetadata.metadata_for_region(region)
    if prefixes is None or metadata is None:
        return None
    # North America: ten digits, or eleven after the trunk 1. (Elsewhere a national number's leading 0
    # is dropped only when what remains is a number of the region, which only the parser knows.)
    if metadata.country_code != 1:
        return None
    if len(digits) == 10 and digits[0] not in "01":
        return "+1" + digits
    if len(digits) == 11 and digits[0] == "1" and digits[1] not in "01":
        return "+" + digits
    return None
