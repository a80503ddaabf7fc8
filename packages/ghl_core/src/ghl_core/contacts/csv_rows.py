"""Reading CSV rows one at a time (constant memory): BOM, `,` `;` or tab sniffed from the header line,
quoted newlines, blank lines skipped, each row tagged with the line it starts on."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# A larger value is refused with the row's line number rather than aborting the whole file.
MAX_FIELD = 131_072
_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    values: dict[str, str]
    problem: str | None = None  # set when the row could not be parsed at all


def sniff_delimiter(header_line: str) -> str:
    """The delimiter is the one the header uses most (exports put no quoted delimiters in headers)."""
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvSource:
    """`headers`, then iterate for CsvRow. `lines` must keep line endings inside quotes (open the file
    with newline="")."""

    def __init__(self, lines: Iterable[str]) -> None:
        it = iter(lines)
        first = next(it, "")
        first = first.removeprefix("\ufeff")
        skipped = 0
        while not first.strip() and (nxt := next(it, None)) is not None:
            first, skipped = nxt, skipped + 1
        self.delimiter = sniff_delimiter(first)
        csv.field_size_limit(MAX_FIELD)
        self._reader = csv.reader(itertools.chain([first], it), delimiter=self.delimiter)
        header = next(self._reader, [])
        self.headers = [h.strip() for h in header]
        self._skipped = skipped  # blank lines before the header, unseen by the reader

    def __iter__(self) -> Iterator[CsvRow]:
        width = len(self.headers)
        last = self._reader.line_num + self._skipped
        while True:
            start = last + 1
            try:
                record = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                last = self._reader.line_num + self._skipped
                yield CsvRow(start, {}, f"unreadable row: {exc}")
                continue
            last = self._reader.line_num + self._skipped
            if not any(v.strip() for v in record):
                continue
            if len(record) > width and any(v.strip() for v in record[width:]):
                yield CsvRow(start, {}, f"has {len(record)} values but the header has {width} columns")
                continue
            yield CsvRow(start, dict(zip(self.headers, record, strict=False)))


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without a BOM) when the start of the file decodes as such; else Windows-1252,
    what spreadsheet programs write when they are not writing UTF-8."""
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A sample cut in the middle of a character is still UTF-8.
        if exc.start < len(sample) - 3:
            return "cp1252"
    return "utf-8-sig"
