"""The contact filter language: parsed from JSON into a small tree, checked field by field (each mistake
reported with its JSON pointer), and evaluated in pure Python with the same meaning the SQL adapter gives it.

    {"and": [{"field": "tags", "operator": "has_any", "value": ["vip"]},
             {"or": [{"field": "email", "operator": "exists", "value": true},
                     {"field": "custom_fields.score", "operator": "gt", "value": 10}]}]}

Text comparisons on contact fields ignore case; custom field `eq`/`neq`/`in` compare typed JSON values
exactly (so the database can answer them from its jsonb index).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal

from ghl_core.contacts.fields import normalize_tag
from ghl_core.contacts.models import Contact, DndChannel
from ghl_core.custom_fields.models import FieldType
from ghl_core.shared.errors import FieldError, ValidationFailed

MAX_DEPTH = 3
MAX_CONDITIONS = 50
MAX_VALUES = 100
MAX_TEXT = 500


class Kind(StrEnum):
    TEXT = "text"
    DATETIME = "datetime"
    DATE = "date"
    UUID = "uuid"
    BOOL = "bool"
    CHANNEL = "channel"  # dnd_channels.<channel>
    TAGS = "tags"
    CUSTOM_TEXT = "custom_text"
    CUSTOM_NUMBER = "custom_number"
    CUSTOM_DATE = "custom_date"
    CUSTOM_CHECKBOX = "custom_checkbox"
    CUSTOM_OPTIONS = "custom_options"


TEXT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "address1",
    "city",
    "state",
    "postal_code",
    "country",
    "website",
    "timezone",
    "gender",
    "source",
)
CONTACT_FIELDS: dict[str, Kind] = {
    **dict.fromkeys(TEXT_FIELDS, Kind.TEXT),
    "created_at": Kind.DATETIME,
    "updated_at": Kind.DATETIME,
    "last_activity_at": Kind.DATETIME,
    "date_of_birth": Kind.DATE,
    "assigned_user_id": Kind.UUID,
    "dnd": Kind.BOOL,
    "tags": Kind.TAGS,
}
CUSTOM_KINDS: dict[FieldType, Kind] = {
    FieldType.TEXT: Kind.CUSTOM_TEXT,
    FieldType.LARGE_TEXT: Kind.CUSTOM_TEXT,
    FieldType.PHONE: Kind.CUSTOM_TEXT,
    FieldType.EMAIL: Kind.CUSTOM_TEXT,
    FieldType.SINGLE_OPTION: Kind.CUSTOM_TEXT,
    FieldType.NUMBER: Kind.CUSTOM_NUMBER,
    FieldType.MONEY: Kind.CUSTOM_NUMBER,
    FieldType.DATE: Kind.CUSTOM_DATE,
    FieldType.CHECKBOX: Kind.CUSTOM_CHECKBOX,
    FieldType.MULTIPLE_OPTIONS: Kind.CUSTOM_OPTIONS,
}
_ORDERED = ("eq", "neq", "gt", "lt", "between", "exists")
OPERATORS: dict[Kind, tuple[str, ...]] = {
    Kind.TEXT: ("eq", "neq", "contains", "starts_with", "in", "exists"),
    Kind.DATETIME: _ORDERED,
    Kind.DATE: _ORDERED,
    Kind.UUID: ("eq", "neq", "in", "exists"),
    Kind.BOOL: ("eq",),
    Kind.CHANNEL: ("eq",),
    Kind.TAGS: ("has_any", "has_all", "has_none", "exists"),
    Kind.CUSTOM_TEXT: ("eq", "neq", "contains", "starts_with", "in", "exists"),
    Kind.CUSTOM_NUMBER: ("eq", "neq", "gt", "lt", "between", "in", "exists"),
    Kind.CUSTOM_DATE: _ORDERED,
    Kind.CUSTOM_CHECKBOX: ("eq", "exists"),
    Kind.CUSTOM_OPTIONS: ("has_any", "has_all", "has_none", "exists"),
}
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Condition:
    field: str  # as given: "email", "dnd_channels.sms", "custom_fields.score"
    operator: str
    value: Any  # normalised for the kind: lower-cased text, datetimes, UUIDs, tag names...
    kind: Kind

    @property
    def key(self) -> str:
        """The custom field key or the DND channel (the part after the dot)."""
        return self.field.split(".", 1)[1] if "." in self.field else self.field


@dataclass(frozen=True, slots=True)
class Group:
    join: Literal["and", "or"]
    items: tuple[Condition | Group, ...]


Node = Condition | Group


def custom_keys(raw: object) -> set[str]:
    """The custom field keys a raw filter mentions (so callers load definitions only when needed)."""
    found: set[str] = set()
    if isinstance(raw, Mapping):
        field = raw.get("field")
        if isinstance(field, str) and field.startswith("custom_fields."):
            found.add(field.split(".", 1)[1])
        for key in ("and", "or"):
            items = raw.get(key)
            if isinstance(items, list):
                for item in items[: MAX_CONDITIONS + 1]:
                    found |= custom_keys(item)
    return found


def parse_filter(raw: object, custom_fields: Mapping[str, FieldType], pointer: str = "/filter") -> Group:
    """The checked filter tree; raises ValidationFailed listing every bad part with its pointer."""
    parser = _Parser(custom_fields)
    node = parser.node(raw, pointer, 1)
    if parser.count > MAX_CONDITIONS:
        parser.errors.append(FieldError(pointer, f"at most {MAX_CONDITIONS} conditions"))
    if parser.errors:
        raise ValidationFailed(parser.errors)
    if isinstance(node, Condition):
        return Group("and", (node,))
    return node if node is not None else Group("and", ())


class _Parser:
    def __init__(self, custom_fields: Mapping[str, FieldType]) -> None:
        self.custom = custom_fields
        self.errors: list[FieldError] = []
        self.count = 0

    def fail(self, pointer: str, detail: str) -> None:
        self.errors.append(FieldError(pointer, detail))

    def node(self, raw: object, pointer: str, depth: int) -> Node | None:
        if not isinstance(raw, Mapping):
            self.fail(pointer, 'must be a condition or an {"and": [...]} / {"or": [...]} group')
            return None
        joins = [k for k in ("and", "or") if k in raw]
        if joins:
            return self.group(raw, joins, pointer, depth)
        return self.condition(raw, pointer)

    def group(self, raw: Mapping[str, Any], joins: list[str], pointer: str, depth: int) -> Group | None:
        if len(raw) != 1:
            extra = sorted(k for k in raw if k != joins[0])
            self.fail(f"{pointer}/{extra[0]}", "a group holds exactly one of 'and' or 'or'")
            return None
        join: Literal["and", "or"] = "and" if joins[0] == "and" else "or"
        here = f"{pointer}/{join}"
        items = raw[join]
        if depth > MAX_DEPTH:
            self.fail(here, f"groups nest at most {MAX_DEPTH} deep")
            return None
        if not isinstance(items, list) or not items:
            self.fail(here, "must be a non-empty list")
            return None
        if len(items) > MAX_CONDITIONS:
            self.fail(here, f"at most {MAX_CONDITIONS} conditions")
            return None
        parsed = [self.node(item, f"{here}/{i}", depth + 1) for i, item in enumerate(items)]
        return Group(join, tuple(p for p in parsed if p is not None))

    def condition(self, raw: Mapping[str, Any], pointer: str) -> Condition | None:
        self.count += 1
        for key in raw:
            if key not in ("field", "operator", "value"):
                self.fail(
                    f"{pointer}/{_escape(str(key))}", "is not a condition member (field, operator, value)"
                )
        field, operator = raw.get("field"), raw.get("operator")
        kind = self.kind(field, f"{pointer}/field")
        if not isinstance(operator, str):
            self.fail(f"{pointer}/operator", "is required")
            return None
        if kind is None:
            return None
        allowed = OPERATORS[kind]
        if operator not in allowed:
            self.fail(
                f"{pointer}/operator",
                f"'{operator}' does not apply to {field}; use one of {', '.join(allowed)}",
            )
            return None
        if "value" not in raw and operator != "exists":
            self.fail(f"{pointer}/value", "is required")
            return None
        value = self.value(kind, operator, raw.get("value", True), f"{pointer}/value")
        if value is _BAD:
            return None
        return Condition(field=str(field), operator=operator, value=value, kind=kind)

    def kind(self, field: object, pointer: str) -> Kind | None:
        if not isinstance(field, str):
            self.fail(pointer, "is required")
            return None
        if field in CONTACT_FIELDS:
            return CONTACT_FIELDS[field]
        prefix, _, key = field.partition(".")
        if prefix == "dnd_channels" and key in {c.value for c in DndChannel}:
            return Kind.CHANNEL
        if prefix == "custom_fields" and key:
            if key not in self.custom:
                self.fail(pointer, f"no custom field with key '{key}' is defined")
                return None
            return CUSTOM_KINDS[self.custom[key]]
        self.fail(pointer, f"unknown field '{field}'")
        return None

    def value(self, kind: Kind, operator: str, raw: object, pointer: str) -> Any:
        if operator == "exists":
            return raw if isinstance(raw, bool) else self.bad(pointer, "must be true or false")
        if operator in ("in", "has_any", "has_all", "has_none"):
            if not isinstance(raw, list) or not raw or len(raw) > MAX_VALUES:
                return self.bad(pointer, f"must be a list of 1 to {MAX_VALUES} values")
            items = [self.scalar(kind, item, f"{pointer}/{i}") for i, item in enumerate(raw)]
            return _BAD if any(i is _BAD for i in items) else tuple(dict.fromkeys(items))
        if operator == "between":
            if not isinstance(raw, list) or len(raw) != 2:
                return self.bad(pointer, "must be a list of two values [from, to]")
            low, high = (self.scalar(kind, item, f"{pointer}/{i}") for i, item in enumerate(raw))
            if low is _BAD or high is _BAD:
                return _BAD
            if low > high:
                return self.bad(pointer, "the first value must not be after the second")
            return (low, high)
        return self.scalar(kind, raw, pointer)

    def bad(self, pointer: str, detail: str) -> object:
        self.fail(pointer, detail)
        return _BAD

    def scalar(self, kind: Kind, raw: object, pointer: str) -> Any:
        if kind in (Kind.TEXT, Kind.CUSTOM_TEXT, Kind.TAGS, Kind.CUSTOM_OPTIONS):
            if not isinstance(raw, str) or not raw or len(raw) > MAX_TEXT or "\x00" in raw:
                return self.bad(pointer, f"must be a non-empty string of at most {MAX_TEXT} characters")
            if kind is Kind.TAGS:
                return normalize_tag(raw) or self.bad(pointer, "must be a non-blank tag name")
            return raw.lower() if kind is Kind.TEXT else raw
        if kind in (Kind.BOOL, Kind.CHANNEL, Kind.CUSTOM_CHECKBOX):
            return raw if isinstance(raw, bool) else self.bad(pointer, "must be true or false")
        if kind is Kind.CUSTOM_NUMBER:
            ok = isinstance(raw, int | float) and not isinstance(raw, bool) and raw == raw and abs(raw) < 1e15
            return raw if ok else self.bad(pointer, "must be a number")
        if kind is Kind.UUID:
            try:
                return uuid.UUID(str(raw)) if isinstance(raw, str) else self.bad(pointer, "must be a UUID")
            except ValueError:
                return self.bad(pointer, "must be a UUID")
        if kind in (Kind.DATE, Kind.CUSTOM_DATE):
            try:
                parsed = date.fromisoformat(raw) if isinstance(raw, str) and ISO_DATE.match(raw) else None
            except ValueError:
                parsed = None
            if parsed is None:
                return self.bad(pointer, "must be a date YYYY-MM-DD")
            return parsed if kind is Kind.DATE else parsed.isoformat()
        # Kind.DATETIME
        try:
            moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            moment = None
        if moment is None:
            return self.bad(pointer, "must be an ISO 8601 date-time, e.g. 2026-01-31T09:00:00Z")
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_BAD = object()


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


# -- evaluation in Python (the meaning the SQL adapter must match) -----------------------------------
def matches(node: Node, contact: Contact) -> bool:
    if isinstance(node, Group):
        results = (matches(item, contact) for item in node.items)
        return all(results) if node.join == "and" else any(results)
    return _condition(node, contact)


def _json_equal(stored: object, wanted: object) -> bool:
    """jsonb equality: true is not 1, 1 is 1.0."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored is wanted
    if isinstance(stored, int | float) and isinstance(wanted, int | float):
        return stored == wanted
    return type(stored) is type(wanted) and stored == wanted


def _custom_value(kind: Kind, stored: object) -> Any:
    """The stored value when it has the field's type (values of a changed definition may not)."""
    if kind is Kind.CUSTOM_TEXT:
        return stored if isinstance(stored, str) else None
    if kind is Kind.CUSTOM_NUMBER:
        return stored if isinstance(stored, int | float) and not isinstance(stored, bool) else None
    if kind is Kind.CUSTOM_DATE:
        return stored if isinstance(stored, str) and ISO_DATE.match(stored) else None
    return stored


def _condition(cond: Condition, contact: Contact) -> bool:
    op, want, kind = cond.operator, cond.value, cond.kind
    if kind is Kind.TAGS:
        tags = set(contact.tags)
        if op == "exists":
            return bool(tags) is want
        return _has(op, tags, want)
    if kind is Kind.BOOL:
        return contact.dnd is want
    if kind is Kind.CHANNEL:
        return (contact.dnd_channels.get(cond.key) is True) is want
    if kind.name.startswith("CUSTOM"):
        present = cond.key in contact.custom_fields
        stored = contact.custom_fields.get(cond.key)
        if op == "exists":
            return present is want
        if kind is Kind.CUSTOM_OPTIONS:
            items = {i for i in stored if isinstance(i, str)} if isinstance(stored, list) else set()
            return _has(op, items, want)
        if op in ("eq", "neq", "in"):
            candidates = want if op == "in" else (want,)
            hit = present and any(_json_equal(stored, c) for c in candidates)
            return hit if op != "neq" else not hit
        return _ordered_or_text(op, _custom_value(kind, stored), want, case_sensitive=False)
    value = getattr(contact, cond.field)
    if op == "exists":
        return (value is not None and value != "") is want
    if kind is Kind.TEXT:
        value = value.lower() if value is not None else None
    return _ordered_or_text(op, value, want, case_sensitive=kind is not Kind.TEXT)


def _has(op: str, present: set[str], wanted: tuple[str, ...]) -> bool:
    if op == "has_any":
        return bool(present & set(wanted))
    if op == "has_all":
        return set(wanted) <= present
    return not present & set(wanted)


def _ordered_or_text(op: str, value: Any, want: Any, *, case_sensitive: bool) -> bool:
    if op == "neq":
        return value is None or value != want
    if value is None:
        return False
    if op == "eq":
        return bool(value == want)
    if op == "in":
        return value in want
    if op == "gt":
        return bool(value > want)
    if op == "lt":
        return bool(value < want)
    if op == "between":
        return bool(want[0] <= value <= want[1])
    text, needle = (value.lower(), want.lower()) if not case_sensitive else (value, want)
    if op == "contains":
        return needle in text
    return bool(text.startswith(needle))
