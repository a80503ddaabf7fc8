"""How many SMS segments a body costs, the way carriers and Twilio count them.

A body that fits the GSM 03.38 alphabet (basic table plus the extension table, whose characters cost an
escape septet each) goes out as GSM-7: 160 septets in one segment, 153 per segment once it is split (the
user-data header takes 7). Anything else goes out as UCS-2, counted in UTF-16 code units: 70 in one
segment, 67 per segment when split. Emoji and other astral characters are surrogate pairs (2 units).

Segment boundaries never split a GSM escape pair or a UTF-16 surrogate pair: a pair that does not fit in
what is left of a segment starts the next one, as handsets and Twilio's segment calculator do. That is why
`segments` can exceed `ceil(units / 153)`.

An empty body is 0 units in 0 segments: there is no text to send (a media-only MMS carries no SMS
segment), and a caller that bills or limits by segments then counts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# GSM 03.38 basic character set (3GPP TS 23.038, 6.2.1), minus ESC (0x1B), which only introduces the
# extension table and is not a character a body can contain.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC + a septet, so it costs 2. Form feed (page break) is in it too.
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM_SINGLE_SEGMENT = 160
GSM_MULTI_SEGMENT = 153
UCS2_SINGLE_SEGMENT = 70
UCS2_MULTI_SEGMENT = 67


@dataclass(frozen=True)
class SmsEncoding:
    """`units` are septets for GSM-7 and UTF-16 code units for UCS-2."""

    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    units: int


def is_gsm7(body: str) -> bool:
    """Whether every character of `body` is in the GSM 03.38 basic or extension table."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in body)


def _gsm_cost(ch: str) -> int:
    return 2 if ch in GSM_EXTENSION else 1


def _ucs2_cost(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _pack(costs: list[int], per_segment: int) -> int:
    """Segments needed when each item (a character's units) must stay whole inside one segment."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_segment:
            segments += 1
            used = 0
        used += cost
    return segments


def sms_segments(body: str) -> SmsEncoding:
    """The encoding, segment count and unit count of `body` (see the module docstring for the rules)."""
    if not body:
        return SmsEncoding("GSM-7", 0, 0)
    if is_gsm7(body):
        costs = [_gsm_cost(ch) for ch in body]
        units = sum(costs)
        if units <= GSM_SINGLE_SEGMENT:
            return SmsEncoding("GSM-7", 1, units)
        return SmsEncoding("GSM-7", _pack(costs, GSM_MULTI_SEGMENT), units)
    costs = [_ucs2_cost(ch) for ch in body]
    units = sum(costs)
    if units <= UCS2_SINGLE_SEGMENT:
        return SmsEncoding("UCS-2", 1, units)
    return SmsEncoding("UCS-2", _pack(costs, UCS2_MULTI_SEGMENT), units)
