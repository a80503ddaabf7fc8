"""Reading CSV rows one at a time (constant memory): BOM, `,` `;` or tab sniffed from the header line,
quoted newlines, blank lines skipped, each row tagged with the line it starts on.

The encoding is found from the start of the file: a byte-order mark (UTF-8, UTF-16, UTF-32), else UTF-16
or UTF-32 recognised by their zero bytes (what spreadsheet programs write as "Unicode text", tab-separated,
is UTF-16), else UTF-8 when the start decodes as such, else Windows-1252. A spreadsheet workbook, or a
header holding NUL characters, is refused as a whole (`UnreadableFile`, a 400 over the API); a row
holding a NUL character is rejected alone.

A source can be read more than once (the import resolves identities over the whole file first): each
iteration starts again at the first row, by seeking its text stream back to the start."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ghl_core.shared.errors import DomainError

# A larger value is refused with the row's line number rather than aborting the whole file.
MAX_FIELD = 131_072
# Bytes read from the start of a file to find its encoding.
SAMPLE_BYTES = 65_536
_DELIMITERS = (",", ";", "\t", "|")
# Longest first: the UTF-32 little-endian mark starts with the UTF-16 one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Zip (.xlsx, .ods) and OLE2 (.xls) containers.
_WORKBOOKS = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")


class UnreadableFile(DomainError):
    """The upload is not a CSV text file the import can read."""

    code = "unreadable_file"
    title = "Unreadable file"


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
    with newline=""). Iterating again starts again at the first row: `lines` is then iterated afresh
    (a list) or seeked back to its start (a text stream)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self._iterations = 0
        self._start()

    def _start(self) -> None:
        it = iter(self._lines)
        first = next(it, "")
        first = first.removeprefix("\ufeff")
        skipped = 0
        while not first.strip() and (nxt := next(it, None)) is not None:
            first, skipped = nxt, skipped + 1
        self.delimiter = sniff_delimiter(first)
        csv.field_size_limit(MAX_FIELD)
        self._reader = csv.reader(itertools.chain([first], it), delimiter=self.delimiter)
        header = next(self._reader, [])
        if any("\x00" in h for h in header):
            raise UnreadableFile(
                "the file's header holds NUL characters: it is not CSV text (save it as CSV, UTF-8)"
            )
        self.headers = [h.strip() for h in header]
        self._skipped = skipped  # blank lines before the header, unseen by the reader

    def __iter__(self) -> Iterator[CsvRow]:
        if self._iterations:
            seek = getattr(self._lines, "seek", None)
            if seek is None and iter(self._lines) is self._lines:
                raise TypeError("these lines can be read only once")
            if seek is not None:
                seek(0)
            self._start()
        self._iterations += 1
        return self._rows()

    def _rows(self) -> Iterator[CsvRow]:
        reader = self._reader
        width = len(self.headers)
        last = reader.line_num + self._skipped
        while True:
            start = last + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                last = reader.line_num + self._skipped
                yield CsvRow(start, {}, f"unreadable row: {exc}")
                continue
            last = reader.line_num + self._skipped
            joined = "".join(record)  # one string to look through, in C
            if not joined.strip():
                continue
            if len(record) > width and "".join(record[width:]).strip():
                yield CsvRow(start, {}, f"has {len(record)} values but the header has {width} columns")
                continue
            if "\x00" in joined:
                yield CsvRow(start, {}, "holds a NUL character")
                continue
            yield CsvRow(start, dict(zip(self.headers, record, strict=False)))


def detect_encoding(sample: bytes) -> str:
    """The encoding of a file starting with `sample` (see the module's docstring); raises UnreadableFile
    for a spreadsheet workbook."""
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding
    if sample.startswith(_WORKBOOKS):
        raise UnreadableFile(
            "this is a spreadsheet workbook (.xlsx, .xls or .ods), not CSV: save it as CSV (UTF-8) "
            "or as Unicode text, and import that file"
        )
    if b"\x00" in sample and (wide := _wide_encoding(sample)):
        return wide
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A sample cut in the middle of a character is still UTF-8.
        if exc.start < len(sample) - 3:
            return "cp1252"
    return "utf-8-sig"


def _wide_encoding(sample: bytes) -> str | None:
    """UTF-32 or UTF-16 (either byte order) without a byte-order mark. A CSV file is mostly ASCII
    (delimiters, line ends, digits, e-mail addresses), whose code units have zero high bytes: the byte
    lanes that are mostly zero tell the width and the order. The sample must then decode."""
    for width, encodings in ((4, ("utf-32-le", "utf-32-be")), (2, ("utf-16-le", "utf-16-be"))):
        body = sample[: len(sample) - len(sample) % width]
        units = len(body) // width
        if not units:
            continue
        zeros = [body[lane::width].count(0) for lane in range(width)]
        for encoding in encodings:
            low, high = (0, width - 1) if encoding.endswith("le") else (width - 1, 0)
            others = [z for lane, z in enumerate(zeros) if lane != low]
            if width == 4:
                plausible = zeros[high] == units and min(others) >= 0.9 * units and zeros[low] < 0.1 * units
            else:
                plausible = zeros[high] >= 0.25 * units and zeros[high] > 4 * zeros[low]
            if plausible and _decodes(body, encoding):
                return encoding
    return None


def _decodes(body: bytes, encoding: str) -> bool:
    """`body` decodes to text: no NUL, hardly any control characters (binary data often decodes too)."""
    try:
        # Not final: the sample may end inside a surrogate pair.
        text = codecs.getincrementaldecoder(encoding)().decode(body, final=False)
    except UnicodeDecodeError:
        return False
    readable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
    return "\x00" not in text and readable >= 0.95 * len(text)


def text_stream(raw: BinaryIO) -> io.TextIOWrapper:
    """`raw` (a seekable binary file) as text in its encoding, for CsvSource; raises UnreadableFile."""
    sample = raw.read(SAMPLE_BYTES)
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding=detect_encoding(sample), errors="replace", newline="")
