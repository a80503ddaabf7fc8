"""Reading a workflow document: a reader per JSON object that checks its members one by one, appends an
error with a JSON pointer for each bad one, and remembers which it looked at so unknown members are
reported too. Step handlers (workflows/steps/) and trigger types read their own members with it; nothing
here needs a database or the network."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, time
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ghl_core.contacts.fields import clean_tags
from ghl_core.custom_fields.definitions import KEY_PATTERN
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.workflows.conditions import parse_condition_group
from ghl_core.workflows.waits import parse_wait

END = "end"  # a target meaning "finish the enrollment"; reserved, so no step may be called this
STEP_ID = re.compile(r"^[a-z0-9_-]{1,64}$")
MAX_URL = 2048
MAX_HEADERS = 50
MAX_HEADER_VALUE = 4096
MAX_WEBHOOK_BODY = 65_536
CUSTOM_PREFIX = "custom."
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
# The HTTP client owns these: a workflow setting them could smuggle requests or break framing.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "te"})

Refs = list[tuple[str, str]]  # (pointer of the member, step id it names)


def _escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _json_default(value: object) -> str:
    """YAML gives dates and times as objects; the JSON form of the document keeps them as ISO text."""
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    raise TypeError(type(value).__name__)


class Reader:
    """Reads the members of one object, appending an error per bad member, and remembers which members
    it looked at so unknown ones are reported too (a misspelt key would otherwise be silently ignored)."""

    def __init__(self, raw: Mapping[Any, Any], pointer: str, errors: list[FieldError], refs: Refs) -> None:
        self.raw = raw
        self.pointer = pointer
        self.errors = errors
        self.refs = refs
        self.seen: set[Any] = set()
        self.start = len(errors)

    @property
    def failed(self) -> bool:
        return len(self.errors) > self.start

    def at(self, key: str) -> str:
        return f"{self.pointer}/{_escape(key)}"

    def fail(self, key: str, detail: str) -> None:
        self.errors.append(FieldError(self.at(key), detail))

    def child(self, raw: Mapping[Any, Any], pointer: str) -> Reader:
        return Reader(raw, pointer, self.errors, self.refs)

    def get(self, key: str) -> Any:
        self.seen.add(key)
        return self.raw.get(key)

    def finish(self, what: str) -> None:
        for key in self.raw:
            if key not in self.seen:
                self.errors.append(
                    FieldError(f"{self.pointer}/{_escape(key)}", f"is not a member of a {what}")
                )

    def text(self, key: str, limit: int, *, required: bool = True, multiline: bool = False) -> str | None:
        value = self.get(key)
        if value is None or (not required and value == ""):
            if required:
                self.fail(key, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, "must be a non-blank string")
            return None
        if not multiline:
            value = value.strip()
            if not value.isprintable():
                self.fail(key, "must be a single line of printable text")
                return None
        if len(value) > limit:
            self.fail(key, f"must be at most {limit} characters")
            return None
        return value

    def flag(self, key: str) -> bool:
        value = self.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
            return False
        return value

    def choice(self, key: str, options: tuple[str, ...], *, default: str | None = None) -> Any:
        value = self.get(key)
        if value is None and default is not None:
            return default
        if value not in options:
            self.fail(key, f"must be one of {', '.join(options)}")
            return None
        return value

    def optional_choice(self, key: str, options: tuple[str, ...]) -> str | None:
        return None if self.get(key) is None else self.choice(key, options)

    def integer(self, key: str, low: int, high: int, *, default: int | None) -> int | None:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.fail(key, f"must be a whole number from {low} to {high}")
            return default
        return value

    def uuid(self, key: str, *, required: bool = True) -> uuid.UUID | None:
        value = self.get(key)
        if value is None:
            if required:
                self.fail(key, "is required")
            return None
        try:
            return uuid.UUID(value)
        except (ValueError, TypeError, AttributeError):
            self.fail(key, "must be an id (a UUID)")
            return None

    def clock(self, key: str) -> time | None:
        value = self.get(key)
        if isinstance(value, str) and (match := _CLOCK.match(value)):
            return time(int(match[1]), int(match[2]))
        hint = " (quote it in YAML: 9:30 unquoted is read as a number)" if isinstance(value, int) else ""
        self.fail(key, f'must be a time of day "HH:MM" (24-hour){hint}')
        return None

    def target(self, key: str, *, allow_end: bool = True) -> str | None:
        value = self.get(key)
        if value is None:
            return None
        if value == END and allow_end:
            return END
        if not isinstance(value, str) or not STEP_ID.match(value):
            self.fail(key, 'must be a step id or "end"' if allow_end else "must be a step id")
            return None
        self.refs.append((self.at(key), value))
        return value

    def tags(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        tags = clean_tags(value, self.at(key), self.errors)
        if isinstance(value, list) and not value:
            self.fail(key, "must name at least one tag")
        return tuple(tags)

    def contact_field(self, key: str, standard: frozenset[str]) -> str | None:
        value = self.get(key)
        if is_contact_field(value, standard):
            return str(value)
        self.fail(key, FIELD_HINT)
        return None

    def url(self, key: str) -> str | None:
        value = self.text(key, MAX_URL)
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
                self.fail(key, "must be an absolute http or https URL")
                return None
        return value

    def headers(self, key: str) -> tuple[tuple[str, str], ...]:
        value = self.get(key)
        if value is None:
            return ()
        if not isinstance(value, Mapping) or len(value) > MAX_HEADERS:
            self.fail(key, f"must be an object of at most {MAX_HEADERS} header names and values")
            return ()
        pairs: list[tuple[str, str]] = []
        for name, text in value.items():
            here = f"{self.at(key)}/{_escape(name)}"
            if not isinstance(name, str) or not _HEADER_NAME.match(name):
                self.errors.append(FieldError(here, "is not a valid header name"))
            elif name.lower() in _RESERVED_HEADERS:
                self.errors.append(FieldError(here, "is set by the HTTP client and cannot be overridden"))
            elif not isinstance(text, str) or len(text) > MAX_HEADER_VALUE or not text.isprintable():
                self.errors.append(FieldError(here, f"must be printable text of at most {MAX_HEADER_VALUE}"))
            else:
                pairs.append((name, text))
        return tuple(pairs)

    def canonical(self, key: str, value: Any, limit: int) -> str | None:
        """The value as canonical JSON text, or an error when it is not plain JSON."""
        try:
            text = json.dumps(
                value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_json_default
            )
        except (TypeError, ValueError):
            self.fail(key, "must be plain JSON (objects, lists, text, numbers, true/false, null)")
            return None
        if len(text) > limit:
            self.fail(key, f"must be at most {limit} characters as JSON")
            return None
        return text

    def nested(self, key: str, value: Any, parse: Callable[[Any, str], _T]) -> _T | None:
        """Runs another module's parser, folding its errors into ours."""
        try:
            return parse(value, self.at(key))
        except ValidationFailed as failure:
            self.errors.extend(failure.errors)
            return None

    def wait(
        self, key: str, *, required: bool = True, kinds: tuple[str, ...] = ("duration", "until", "event")
    ) -> tuple[Any, str | None]:
        value = self.get(key)
        if value is None and not required:
            return None, None
        if not isinstance(value, Mapping):
            self.fail(
                key, "is required: an object such as {days: 1}" if value is None else "must be an object"
            )
            return None, None
        spec = self.nested(key, value, parse_wait)
        if spec is None:
            return None, None
        if spec.kind not in kinds:
            examples = {"duration": "{days: 1}", "event": "{event: tag.added, tag: vip}"}
            self.fail(key, "must be " + " or ".join(f"{k} such as {examples.get(k, k)}" for k in kinds))
            return None, None
        return spec, self.canonical(key, value, MAX_WEBHOOK_BODY)

    def condition(self, key: str, *, required: bool = True) -> tuple[Any, str | None]:
        value = self.get(key)
        if value is None and not required:
            return None, None
        if value is None:
            self.fail(key, "is required: a condition group such as {all: [...]}")
            return None, None
        group = self.nested(key, value, parse_condition_group)
        if group is None:
            return None, None
        return group, self.canonical(key, value, MAX_WEBHOOK_BODY)

    def items(self, key: str, low: int, high: int) -> Iterator[Reader]:
        """A reader per object of a list member of `low` to `high` objects."""
        value = self.get(key)
        if not isinstance(value, list) or not low <= len(value) <= high:
            self.fail(key, f"must be a list of {low} to {high} items")
            return
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                self.errors.append(FieldError(f"{self.at(key)}/{i}", "must be an object"))
                continue
            yield self.child(item, f"{self.at(key)}/{i}")


_T = TypeVar("_T")


def is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return value == value  # NaN never equals itself: it could not round-trip
    return value is None or isinstance(value, str | int | bool)


FIELD_HINT = "must be a contact field (e.g. first_name) or custom.KEY for a custom field"


def is_contact_field(value: object, standard: frozenset[str]) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith(CUSTOM_PREFIX):
        return bool(KEY_PATTERN.match(value.removeprefix(CUSTOM_PREFIX)))
    return value in standard
