"""Carrier compliance keywords: an inbound SMS that *is* STOP, START or HELP changes what we may send.

Carriers (CTIA guidance, Twilio's default opt-out handling) act on a message that consists of the keyword
alone. We match the same way, forgiving what phones and people add around it: case, surrounding
punctuation, symbols and emoji ("Stop.", " stop!! ", "STOP 🙏") and full-width or other compatibility letters
(folded by NFKC). A keyword inside a sentence ("please don't stop") is not a keyword; neither is
one with other words next to it ("stop now"), so a conversation is never opted out by accident.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum


class KeywordAction(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


KEYWORDS: dict[str, KeywordAction] = {
    "stop": KeywordAction.STOP,
    "stopall": KeywordAction.STOP,
    "unsubscribe": KeywordAction.STOP,
    "cancel": KeywordAction.STOP,
    "end": KeywordAction.STOP,
    "quit": KeywordAction.STOP,
    "start": KeywordAction.START,
    "unstop": KeywordAction.START,
    "help": KeywordAction.HELP,
    "info": KeywordAction.HELP,
}


def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


def _strip_decoration(text: str) -> str:
    """Drop everything that is not a letter or digit from both ends (spaces, punctuation, emoji, their
    variation selectors and skin-tone modifiers, zero-width characters)."""
    start, end = 0, len(text)
    while start < end and not _is_word_char(text[start]):
        start += 1
    while end > start and not _is_word_char(text[end - 1]):
        end -= 1
    return text[start:end]


def classify_keyword(body: str) -> KeywordAction | None:
    """The compliance action `body` asks for, or None when it is an ordinary message."""
    word = _strip_decoration(unicodedata.normalize("NFKC", body).casefold())
    return KEYWORDS.get(word)
