"""If/else conditions and split tests for workflows: parsed once when a definition is saved (every mistake
reported with its JSON pointer), then evaluated in pure Python against the facts of one enrollment.

    {"any": [{"field": "contact.tags", "op": "has_any", "value": ["vip"]},
             {"all": [{"field": "contact.custom.budget", "op": "gt", "value": 5000},
                      {"field": "steps.call_crm.status", "op": "eq", "value": 200}]}]}

Fields are dotted paths under one of four roots: `contact` (its snapshot; `contact.custom.KEY` is the custom
field KEY), `opportunity`, `last_message` and `steps.STEP_ID...` (the output of an earlier step; a numeric
segment indexes a list).

Meaning, chosen to match what GoHighLevel users expect:
- Text compares case-insensitively everywhere (eq, neq, in, not_in, contains, starts_with, ends_with and
  the has_* tag operators): people type "John@Example.com" and "VIP" and mean the stored value.
- Numbers compare numerically, and so do strings holding numbers ("5000" eq 5000, "10" gt 9), because
  custom fields and webhook responses often carry numbers as text. Booleans only equal booleans.
- Dates compare as dates (eq, neq, in, not_in, before, after, between): a date-only side ("2026-03-01", a
  date of birth) compares by calendar day in the contact's time zone (UTC when it has none); two date-times
  compare as instants. `before`/`after` take an
  ISO date or date-time, or a relative moment such as {"days_ago": 7} (before it = more than 7 days ago).
- A missing value (absent or null) makes every operator false except `not_exists`, negated ones (neq,
  not_contains, not_in) included, so a branch never fires on data that is not there. `exists` also treats
  blank text and empty lists as missing. The has_* operators see a missing list as empty: `has_none` is
  then true, as a contact without tags has none of them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.workflows.splits import MAX_PATHS as MAX_PATHS
from ghl_core.workflows.splits import MIN_PATHS as MIN_PATHS
from ghl_core.workflows.splits import parse_split as parse_split
from ghl_core.workflows.splits import split_bucket as split_bucket

ROOTS = frozenset({"contact", "opportunity", "last_message", "steps"})
MAX_DEPTH = 3
MAX_CONDITIONS = 50
MAX_VALUES = 100
MAX_TEXT = 500
MAX_FIELD = 200
MAX_RELATIVE = timedelta(days=36_500)

Op = Literal[
    "eq", "neq", "contains", "not_contains", "starts_with", "ends_with", "exists", "not_exists",
    "gt", "gte", "lt", "lte", "between", "in", "not_in", "has_any", "has_all", "has_none", "before", "after",
]  # fmt: skip
OPS: tuple[str, ...] = get_args(Op)
_NO_VALUE = frozenset({"exists", "not_exists"})
_TEXT_OPS = frozenset({"contains", "not_contains", "starts_with", "ends_with"})
_ORDER_OPS = frozenset({"gt", "gte", "lt", "lte"})
_LIST_OPS = frozenset({"in", "not_in"})
_TAG_OPS = frozenset({"has_any", "has_all", "has_none"})
_DATE_OPS = frozenset({"before", "after"})
_RELATIVE_UNITS = {
    "minutes": timedelta(minutes=1),
    "hours": timedelta(hours=1),
    "days": timedelta(days=1),
    "weeks": timedelta(weeks=1),
}
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DATE_LIKE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Facts:
    """What one enrollment knows when a branch is decided; mappings are JSON-like snapshots."""

    contact: Mapping[str, Any]
    opportunity: Mapping[str, Any] | None = None
    last_message: Mapping[str, Any] | None = None
    outputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    now: datetime | None = None


@dataclass(frozen=True, slots=True)
class Relative:
    """A moment relative to `Facts.now` ({"days_ago": 7} is offset -7 days), resolved at evaluation."""

    offset: timedelta


Moment = date | datetime | Relative


@dataclass(frozen=True, slots=True)
class Condition:
    field: str  # as authored, e.g. "contact.custom.budget"
    op: str
    value: Any  # as authored (lists as tuples), kept so a definition exports exactly as written
    path: tuple[str, ...]  # resolved: ("contact", "custom_fields", "budget")
    operand: Any = dataclasses.field(default=None, compare=False, repr=False)  # value prepared for evaluation

    def to_raw(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"field": self.field, "op": self.op}
        if self.op not in _NO_VALUE:
            raw["value"] = _thaw(self.value)
        return raw


@dataclass(frozen=True, slots=True)
class ConditionGroup:
    """Conditions or nested groups joined by AND (`all`) or OR (`any`)."""

    join: Literal["all", "any"]
    items: tuple[Condition | ConditionGroup, ...]

    def to_raw(self) -> dict[str, Any]:
        return {self.join: [item.to_raw() for item in self.items]}

    def step_refs(self) -> frozenset[str]:
        """Ids of the earlier steps whose outputs this group reads (the definition checks they exist)."""
        found: set[str] = set()
        for item in self.items:
            if isinstance(item, ConditionGroup):
                found |= item.step_refs()
            elif item.path[0] == "steps":
                found.add(item.path[1])
        return frozenset(found)


# -- parsing ------------------------------------------------------------------------------------------
def parse_condition_group(raw: Any, pointer: str) -> ConditionGroup:
    """The checked group; raises ValidationFailed listing every bad part. A bare condition is wrapped in
    an `all` group so a one-condition branch needs no ceremony."""
    parser = _Parser()
    node = parser.node(raw, pointer, 1)
    if parser.count > MAX_CONDITIONS:
        parser.fail(pointer, f"at most {MAX_CONDITIONS} conditions in one group, nested ones included")
    if parser.errors or node is None:
        raise ValidationFailed(parser.errors)
    return node if isinstance(node, ConditionGroup) else ConditionGroup("all", (node,))


class _Parser:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.count = 0

    def fail(self, pointer: str, detail: str) -> None:
        self.errors.append(FieldError(pointer, detail))

    def node(self, raw: Any, pointer: str, depth: int) -> Condition | ConditionGroup | None:
        if not isinstance(raw, Mapping):
            self.fail(pointer, 'must be a condition or an {"all": [...]} / {"any": [...]} group')
            return None
        joins = [k for k in ("all", "any") if k in raw]
        if joins:
            return self.group(raw, joins[0], pointer, depth)
        return self.condition(raw, pointer)

    def group(self, raw: Mapping[str, Any], join: str, pointer: str, depth: int) -> ConditionGroup | None:
        extra = sorted(str(k) for k in raw if k != join)
        if extra:
            self.fail(f"{pointer}/{_escape(extra[0])}", "a group holds exactly one of 'all' or 'any'")
            return None
        here = f"{pointer}/{join}"
        items = raw[join]
        if depth > MAX_DEPTH:
            self.fail(here, f"groups nest at most {MAX_DEPTH} levels deep")
            return None
        if not isinstance(items, list) or not items:
            self.fail(here, "must be a non-empty list")
            return None
        if len(items) > MAX_CONDITIONS:
            self.fail(here, f"at most {MAX_CONDITIONS} conditions")
            return None
        parsed = [self.node(item, f"{here}/{i}", depth + 1) for i, item in enumerate(items)]
        kept = tuple(p for p in parsed if p is not None)
        return ConditionGroup("all" if join == "all" else "any", kept)

    def condition(self, raw: Mapping[str, Any], pointer: str) -> Condition | None:
        self.count += 1
        for key in raw:
            if key not in ("field", "op", "value"):
                self.fail(f"{pointer}/{_escape(str(key))}", "is not a condition member (field, op, value)")
        path = self.path(raw.get("field"), f"{pointer}/field")
        op = raw.get("op")
        if not isinstance(op, str) or op not in OPS:
            detail = f"must be one of {', '.join(OPS)}" if op is not None else "is required"
            self.fail(f"{pointer}/op", detail)
            return None
        if op in _NO_VALUE:
            if "value" in raw:
                self.fail(f"{pointer}/value", f"'{op}' takes no value")
                return None
            value: Any = None
        elif "value" not in raw:
            self.fail(f"{pointer}/value", f"is required for '{op}'")
            return None
        else:
            value = raw["value"]
        operand = self.operand(op, value, f"{pointer}/value")
        if path is None or operand is _BAD:
            return None
        return Condition(field=str(raw["field"]), op=op, value=_freeze(value), path=path, operand=operand)

    def path(self, raw: Any, pointer: str) -> tuple[str, ...] | None:
        if not isinstance(raw, str) or not raw:
            self.fail(pointer, "is required")
            return None
        parts = raw.split(".")
        if len(raw) > MAX_FIELD or any(not p.strip() for p in parts):
            self.fail(pointer, f"must be a dotted path of at most {MAX_FIELD} characters, e.g. contact.email")
            return None
        root = parts[0]
        if root not in ROOTS:
            self.fail(pointer, f"unknown field root '{root}'; use one of {', '.join(sorted(ROOTS))}")
            return None
        if len(parts) < 2:
            what = "a step id, e.g. steps.call_crm.status" if root == "steps" else f"a field, e.g. {root}.id"
            self.fail(pointer, f"must name {what}")
            return None
        if root == "contact" and parts[1] in ("custom", "custom_fields"):
            if len(parts) < 3:
                self.fail(pointer, "must name a custom field key, e.g. contact.custom.budget")
                return None
            # Custom values are flat: everything after the prefix is the key.
            return ("contact", "custom_fields", ".".join(parts[2:]))
        return tuple(parts)

    def operand(self, op: str, value: Any, pointer: str) -> Any:
        if op in _NO_VALUE:
            return None
        if op in ("eq", "neq"):
            return self.scalar(value, pointer)
        if op in _TEXT_OPS:
            return self.text(value, pointer)
        if op in _ORDER_OPS:
            number = _number(value)
            if number is None:
                return self.bad(pointer, f"'{op}' compares numbers: give a number")
            return number
        if op in _LIST_OPS or op in _TAG_OPS:
            if not isinstance(value, list) or not value or len(value) > MAX_VALUES:
                return self.bad(pointer, f"must be a list of 1 to {MAX_VALUES} values")
            check = self.text if op in _TAG_OPS else self.scalar
            items = [check(item, f"{pointer}/{i}") for i, item in enumerate(value)]
            if any(i is _BAD for i in items):
                return _BAD
            return tuple(i.casefold() for i in items) if op in _TAG_OPS else tuple(items)
        if op in _DATE_OPS:
            return self.moment(value, pointer)
        return self.between(value, pointer)

    def between(self, value: Any, pointer: str) -> Any:
        if not isinstance(value, list) or len(value) != 2:
            return self.bad(pointer, "must be a list of two values [low, high]")
        numbers = [_number(v) for v in value]
        if numbers[0] is not None and numbers[1] is not None:
            low, high = numbers[0], numbers[1]
        else:
            low, high = (self.moment(v, f"{pointer}/{i}") for i, v in enumerate(value))
            if low is _BAD or high is _BAD:
                return _BAD
        if _ordered_wrongly(low, high):
            return self.bad(pointer, "the first value must not be greater than the second")
        return (low, high)

    def scalar(self, value: Any, pointer: str) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return _number(value) if _number(value) is not None else self.bad(pointer, "must be finite")
        if isinstance(value, str):
            return self.text(value, pointer)
        return self.bad(pointer, "must be text, a number or true/false")

    def text(self, value: Any, pointer: str) -> Any:
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT or "\x00" in value:
            return self.bad(pointer, f"must be a non-empty text of at most {MAX_TEXT} characters")
        return value

    def moment(self, value: Any, pointer: str) -> Any:
        if isinstance(value, Mapping):
            return self.relative(value, pointer)
        parsed = _moment(value) if isinstance(value, str) else None
        if parsed is None:
            return self.bad(
                pointer,
                'must be an ISO date or date-time ("2026-03-01", "2026-03-01T09:00:00Z") '
                'or a relative moment like {"days_ago": 7}',
            )
        return parsed

    def relative(self, value: Mapping[str, Any], pointer: str) -> Any:
        known = [f"{unit}_{way}" for unit in _RELATIVE_UNITS for way in ("ago", "from_now")]
        if len(value) != 1 or next(iter(value)) not in known:
            return self.bad(pointer, f"a relative moment has exactly one of {', '.join(known)}")
        key, amount = next(iter(value.items()))
        unit, _, way = key.partition("_")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            return self.bad(f"{pointer}/{key}", "must be a whole number, 0 or more")
        if amount > MAX_RELATIVE // _RELATIVE_UNITS[unit]:
            return self.bad(f"{pointer}/{key}", f"must be at most {MAX_RELATIVE.days} days' worth")
        offset = amount * _RELATIVE_UNITS[unit]
        return Relative(-offset if way == "ago" else offset)

    def bad(self, pointer: str, detail: str) -> Any:
        self.fail(pointer, detail)
        return _BAD


_BAD: Any = object()


def _ordered_wrongly(low: Any, high: Any) -> bool:
    """True when both bounds are known now and low > high (relative vs absolute is only known later)."""
    if isinstance(low, Decimal) and isinstance(high, Decimal):
        return low > high
    if isinstance(low, Relative) and isinstance(high, Relative):
        return low.offset > high.offset
    if isinstance(low, Relative) or isinstance(high, Relative):
        return False
    if isinstance(low, datetime) != isinstance(high, datetime):
        return False
    return bool(low > high)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class _FrozenMap(tuple[tuple[str, Any], ...]):
    """An authored mapping (a relative moment) kept hashable, told apart from a list when exported."""


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return _FrozenMap((str(k), _freeze(v)) for k, v in value.items())
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, _FrozenMap):
        return {k: _thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


# -- evaluation -----------------------------------------------------------------------------------------
def evaluate(group: ConditionGroup, facts: Facts) -> bool:
    """Whether the group holds for these facts (an empty `all` would be true, but parsing forbids one)."""
    results = (
        evaluate(item, facts) if isinstance(item, ConditionGroup) else _holds(item, facts)
        for item in group.items
    )
    return all(results) if group.join == "all" else any(results)


_MISSING: Any = object()


def _lookup(facts: Facts, path: tuple[str, ...]) -> Any:
    root, rest = path[0], path[1:]
    current: Any = {
        "contact": facts.contact,
        "opportunity": facts.opportunity,
        "last_message": facts.last_message,
        "steps": facts.outputs,
    }[root]
    for segment in rest:
        if isinstance(current, Mapping):
            current = current.get(segment, _MISSING)
        elif isinstance(current, list | tuple) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return _MISSING
    return _MISSING if current is None else current


def _holds(cond: Condition, facts: Facts) -> bool:
    actual = _lookup(facts, cond.path)
    op, want = cond.op, cond.operand
    if op in ("exists", "not_exists"):
        return _present(actual) is (op == "exists")
    if op in _TAG_OPS:
        return _has(op, _items(actual), want)
    if actual is _MISSING:
        return False
    if op == "eq":
        return _equal(actual, want, facts)
    if op == "neq":
        return not _equal(actual, want, facts)
    if op == "in":
        return any(_equal(actual, w, facts) for w in want)
    if op == "not_in":
        return not any(_equal(actual, w, facts) for w in want)
    if op in _TEXT_OPS:
        return _text_op(op, actual, want, facts)
    if op in _ORDER_OPS:
        number = _number(actual)
        return number is not None and _order(op, number, want)
    if op in _DATE_OPS:
        sign = _compare_moments(actual, want, facts)
        return sign is not None and sign == (-1 if op == "before" else 1)
    return _between(actual, want, facts)


def _present(actual: Any) -> bool:
    if actual is _MISSING:
        return False
    if isinstance(actual, str):
        return bool(actual.strip())
    if isinstance(actual, list | tuple | set | frozenset | Mapping):
        return bool(actual)
    return True


def _items(actual: Any) -> set[str]:
    """A tag-like value as a case-folded set: a list of texts, or a single text as a one-item list."""
    if actual is _MISSING:
        return set()
    values = actual if isinstance(actual, list | tuple | set | frozenset) else [actual]
    return {t.casefold() for t in (_text(v) for v in values) if t is not None}


def _has(op: str, present: set[str], wanted: tuple[str, ...]) -> bool:
    if op == "has_any":
        return bool(present.intersection(wanted))
    if op == "has_all":
        return present.issuperset(wanted)
    return present.isdisjoint(wanted)


def _number(value: Any) -> Decimal | None:
    """The value as an exact number: ints, finite floats (by their shortest repr), and numeric text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
            return None
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    return None


def _equal(actual: Any, want: Any, facts: Facts) -> bool:
    if isinstance(want, bool) or isinstance(actual, bool):
        return isinstance(want, bool) and isinstance(actual, bool) and actual is want
    wanted_number = _number(want)
    actual_number = _number(actual)
    if wanted_number is not None and actual_number is not None:
        return wanted_number == actual_number
    if isinstance(want, str) and _DATE_LIKE.match(want):
        wanted_moment = _moment(want)
        if wanted_moment is not None and _moment(actual) is not None:
            return _compare_moments(actual, wanted_moment, facts) == 0
    if isinstance(want, str) and isinstance(actual, str):
        return actual.casefold() == want.casefold()
    return False


def _text_op(op: str, actual: Any, want: str, facts: Facts) -> bool:
    needle = want.casefold()
    if op in ("contains", "not_contains") and isinstance(actual, list | tuple | set | frozenset):
        found = any(_equal(item, want, facts) for item in actual)
    else:
        text = _text(actual)
        if text is None:
            return False
        haystack = text.casefold()
        if op == "starts_with":
            return haystack.startswith(needle)
        if op == "ends_with":
            return haystack.endswith(needle)
        found = needle in haystack
    return found if op == "contains" else not found


def _order(op: str, value: Decimal, want: Decimal) -> bool:
    if op == "gt":
        return value > want
    if op == "gte":
        return value >= want
    if op == "lt":
        return value < want
    return value <= want


def _moment(value: Any) -> date | datetime | None:
    """An ISO date (a calendar day) or date-time (an instant; naive means UTC) from text or objects."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _ISO_DATE.match(text):
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _zone(facts: Facts) -> ZoneInfo:
    name = facts.contact.get("timezone")
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def _resolve(moment: Moment, facts: Facts) -> date | datetime:
    if not isinstance(moment, Relative):
        return moment
    if facts.now is None:
        raise ValueError("Facts.now is required to evaluate a relative date condition")
    now = facts.now if facts.now.tzinfo else facts.now.replace(tzinfo=UTC)
    return now + moment.offset


def _compare_moments(actual: Any, want: Moment, facts: Facts) -> int | None:
    """-1, 0 or 1 as `actual` is before, on or after `want`; None when `actual` is not a date."""
    left = _moment(actual)
    if left is None:
        return None
    right = _resolve(want, facts)
    if isinstance(left, datetime) and isinstance(right, datetime):
        a: date | datetime = left
        b: date | datetime = right
    else:
        zone = _zone(facts)
        a = left.astimezone(zone).date() if isinstance(left, datetime) else left
        b = right.astimezone(zone).date() if isinstance(right, datetime) else right
    return (a > b) - (a < b)


def _between(actual: Any, want: tuple[Any, Any], facts: Facts) -> bool:
    low, high = want
    if isinstance(low, Decimal):
        number = _number(actual)
        return number is not None and low <= number <= high
    above = _compare_moments(actual, low, facts)
    below = _compare_moments(actual, high, facts)
    return above is not None and below is not None and above >= 0 and below <= 0
