"""Checks on data from outside (a request body, a query string, a signed webhook) before anything else
sees it: what would fail later, deep inside, refused at once with a pointer.

- NUL: PostgreSQL text and JSON cannot hold U+0000, so a NUL anywhere (a value or a member name) would
  fail the insert, or a job on every retry. One scan here replaces a check on each field.
- Depth: parsers, validators, `json.dumps` and the database all recurse; a document nested deeper than
  `MAX_DEPTH` is refused before any of them runs (JSON nested 10,000 deep exhausted the decoder).

Both walks are iterative, so the documents they refuse cannot exhaust the stack while being refused."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ghl_core.shared.errors import DomainError, FieldError, ValidationFailed

MAX_DEPTH = 64  # arrays and objects inside each other; real documents (workflows, filters) stay under 10
NUL = "\x00"
NUL_VALUE = "must not contain NUL characters"
NUL_NAME = "names must not contain NUL characters"


class TooDeep(DomainError):
    """A document nested deeper than MAX_DEPTH: answered 400."""

    code = "bad_request"
    title = "Bad request"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _walk(value: Any, pointer: str = "") -> Iterator[tuple[str, str, bool]]:
    """Every string of `value` and every member name, as (pointer, text, is_name), in document order."""
    stack: list[tuple[str, Any, bool]] = [(pointer, value, False)]
    while stack:
        here, item, is_name = stack.pop()
        if isinstance(item, str):
            yield here, item, is_name
        elif isinstance(item, Mapping):
            children: list[tuple[str, Any, bool]] = []
            for key, child in item.items():
                at = f"{here}/{_escape(str(key))}"
                children += [(at, str(key), True), (at, child, False)]
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(reversed([(f"{here}/{i}", child, False) for i, child in enumerate(item)]))


def nul_errors(value: Any, pointer: str = "") -> list[FieldError]:
    """Every NUL in `value`, with where it is (`/` for a bare string)."""
    return [
        FieldError(at or "/", NUL_NAME if is_name else NUL_VALUE)
        for at, text, is_name in _walk(value, pointer)
        if NUL in text
    ]


def refuse_nul(value: Any, pointer: str = "") -> None:
    """Raises ValidationFailed listing every NUL in `value`."""
    errors = nul_errors(value, pointer)
    if errors:
        raise ValidationFailed(errors)


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest more than `limit` deep; level by level, containers only."""
    level = [value] if isinstance(value, Mapping | list | tuple) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for container in level:
            items = container.values() if isinstance(container, Mapping) else container
            below += [item for item in items if isinstance(item, Mapping | list | tuple)]
        level = below
    return False


def check_document(value: Any) -> None:
    """Raises TooDeep when `value` nests deeper than MAX_DEPTH, else ValidationFailed for any NUL."""
    if depth_exceeds(value):
        raise TooDeep(f"the document nests arrays and objects more than {MAX_DEPTH} deep")
    refuse_nul(value)
