"""What the core checks, said in the request schemas of the OpenAPI document without checking it twice.

Request models take many values loosely on purpose: the core validates them and answers one problem with
a pointer to each bad field, in its own words. `rule(...)` is a field's metadata
(`Annotated[str | None, rule(...)]`): it adds JSON-schema keywords to the field's schema (to the value's
own schema when the field may be null) and, with `nullable=False`, says that null is refused although
the model lets it through to the core. So a request that matches the document is one the server
accepts, and a generated client knows the rules. (Not `json_schema_extra`: Litestar's own schema
generation refuses a callable there; this metadata it ignores, and ghl_http.openapi uses pydantic's.)

The patterns are as strict as the core or a little stricter where a regular expression cannot say the
rule exactly (what `str.isprintable` accepts); never looser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import GetJsonSchemaHandler

from ghl_core.conversations.models import MAX_EMAIL_BODY, MAX_SMS_BODY, MAX_SUBJECT

# Not blank, no control character (C0, DEL, C1): the core's `check_name`.
NAME = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
# A tag: not blank and printable once spaces are collapsed (the core's `clean_tags`); the characters
# `str.isprintable` refuses that a pattern can name (controls, format characters, private use; a lone
# surrogate cannot be in a pattern that Rust's or JavaScript's regular expressions take).
_UNPRINTABLE = (
    r"\x00-\x1f\x7f-\xa0\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u1680\u180e\u2000-\u200f"
    r"\u2028-\u202f\u205f-\u206f\u3000\ue000-\uf8ff\ufeff\ufff9-\ufffb"
)
TAG = rf"^[^{_UNPRINTABLE}]*[^\s{_UNPRINTABLE}][^{_UNPRINTABLE}]*$"
TEXT = rf"^[^{_UNPRINTABLE}]*$"  # short free text (the core's `clean_text`): printable
CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
ISO_DATE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
COUNTRY = r"^[A-Za-z]{2}$"
CURRENCY = r"^[A-Z]{3}$"
NOT_BLANK = r"\S"  # somewhere in the text, a character that is not a space
ONE_LINE = r"^[^\r\n]*\S[^\r\n]*$"
# An address email-validator takes (a plain subset: dot-atoms, a domain with a letter TLD).
EMAIL = (
    r"^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}$"
)
# A web address with an http(s) scheme and a plain host.
WEB_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9]([A-Za-z0-9.-]{0,200}[A-Za-z0-9])?(:[0-9]{1,5})?(/[!-~]*)?$"
# A date of birth: 1900 to a year ago, days every month has.
BIRTH_DATE = r"^(19[0-9]{2}|20[0-1][0-9]|202[0-4])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"
# A component of the document (ghl_http.openapi.SCHEMAS) by name; ghl_http.openapi turns the member into
# a $ref (pydantic would try to resolve a $ref among its own definitions).
COMPONENT = "x-component"
TIME_ZONE: JsonSchema = {COMPONENT: "TimeZone"}

JsonSchema = dict[str, Any]
# `schema_extra` of query parameters the core parses: a UUID; an instant with an offset, well inside the
# years the core takes (1000 to 9000 once in UTC); true or false in any case.
UUID: JsonSchema = {"format": "uuid"}
INSTANT: JsonSchema = {"format": "date-time", "pattern": "^(1[1-9]|[2-7][0-9]|8[0-8])[0-9]{2}-"}
BOOLEAN_TEXT: JsonSchema = {"pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"}


@dataclass(frozen=True)
class Rule:
    """Field metadata (`Annotated[str | None, rule(...)]`) that pydantic applies to the field's schema."""

    nullable: bool
    keywords: JsonSchema

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchema:
        schema: JsonSchema = handler(core_schema)
        branches = schema.get("anyOf")
        target = schema
        if branches is not None:
            values = [b for b in branches if b.get("type") != "null"]
            if not self.nullable:
                del schema["anyOf"]
                if len(values) == 1:
                    schema.update(values[0])
                else:
                    schema["anyOf"] = values
            elif len(values) == 1:
                target = values[0]
        target.update(self.keywords)
        return schema


def rule(*, nullable: bool = True, **keywords: Any) -> Rule:
    """`keywords` go to the value's schema; `nullable=False` says null is refused."""
    return Rule(nullable, keywords)


def money(*, nullable: bool = True) -> Rule:
    """`{"amount": minor units, "currency": ISO 4217}` (ghl_core.pipelines.money)."""
    from ghl_core.pipelines.money import ISO_4217, MAX_AMOUNT

    return rule(
        nullable=nullable,
        type="object",
        properties={
            "amount": {"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT},
            "currency": {"type": "string", "enum": sorted(ISO_4217)},
        },
        required=["amount", "currency"],
        additionalProperties=False,
    )


def contact_filter_schemas() -> dict[str, JsonSchema]:
    """The contact filter language (ghl_core.contacts.filters): a condition {field, operator, value}, or
    {"and": [...]} / {"or": [...]} of conditions. Each field takes its kind's operators; a custom field
    is `custom_fields.KEY` (one of the location's); what a value must be depends on the operator. (The
    server also takes groups within groups, three deep; the schema names one level, which generated
    clients can model.)"""
    from ghl_core.contacts.filters import CONTACT_FIELDS, MAX_CONDITIONS, OPERATORS, Kind
    from ghl_core.contacts.models import DndChannel
    from ghl_core.custom_fields.definitions import KEY_PATTERN

    by_kind: dict[Kind, list[str]] = {}
    for name, kind in CONTACT_FIELDS.items():
        by_kind.setdefault(kind, []).append(name)
    by_kind[Kind.CHANNEL] = [f"dnd_channels.{c.value}" for c in DndChannel]
    custom = sorted({op for kind in Kind if kind.value.startswith("custom_") for op in OPERATORS[kind]})

    def condition(fields: JsonSchema, operators: list[str]) -> JsonSchema:
        return {
            "type": "object",
            "properties": {"field": fields, "operator": {"type": "string", "enum": operators}, "value": {}},
            "required": ["field", "operator"],
            "additionalProperties": False,
        }

    custom_field = {"type": "string", "pattern": rf"^custom_fields\.{KEY_PATTERN.pattern[1:]}"}
    conditions = [
        *(
            condition({"type": "string", "enum": names}, list(OPERATORS[kind]))
            for kind, names in by_kind.items()
        ),
        condition(custom_field, custom),
    ]

    def group(join: str) -> JsonSchema:
        items = {"$ref": "#/components/schemas/ContactCondition"}
        return {
            "type": "object",
            "properties": {
                join: {"type": "array", "minItems": 1, "maxItems": MAX_CONDITIONS, "items": items}
            },
            "required": [join],
            "additionalProperties": False,
        }

    return {
        "ContactCondition": {"title": "ContactCondition", "anyOf": conditions},
        "ContactFilter": {
            "title": "ContactFilter",
            "description": contact_filter_schemas.__doc__,
            "anyOf": [{"$ref": "#/components/schemas/ContactCondition"}, group("and"), group("or")],
        },
    }


CONTACT_FILTER: JsonSchema = {COMPONENT: "ContactFilter"}

# Content by channel (messages, templates, campaigns): an SMS is a body and nothing else; an email
# a one-line subject and a body, an html part or both.
_CONTENT_TEXT: JsonSchema = {"type": "string", "pattern": NOT_BLANK}
BY_CHANNEL: JsonSchema = {
    "if": {"properties": {"channel": {"const": "sms"}}},
    "then": {
        "required": ["body"],
        "properties": {
            "body": {**_CONTENT_TEXT, "maxLength": MAX_SMS_BODY},
            "subject": {"type": "null"},
            "html": {"type": "null"},
        },
    },
    "else": {
        "required": ["subject"],
        "properties": {
            "subject": {"type": "string", "pattern": ONE_LINE, "maxLength": MAX_SUBJECT},
            "body": {"type": ["string", "null"], "maxLength": MAX_EMAIL_BODY // 2},
            "html": {"type": ["string", "null"], "maxLength": MAX_EMAIL_BODY // 2},
        },
        "anyOf": [
            {"required": ["body"], "properties": {"body": _CONTENT_TEXT}},
            {"required": ["html"], "properties": {"html": _CONTENT_TEXT}},
        ],
    },
}
TAGS = rule(items={"type": "string", "pattern": TAG, "maxLength": 100})  # tags of an audience


def contact_sort() -> Rule:
    """One sort key (ties are broken by id): [{"field": ..., "direction": "asc" or "desc"}]."""
    from ghl_core.contacts.search import SORT_FIELDS

    key = {
        "type": "object",
        "properties": {"field": {"enum": list(SORT_FIELDS)}, "direction": {"enum": ["asc", "desc"]}},
        "required": ["field"],
        "additionalProperties": False,
    }
    return rule(maxItems=1, items=key)


def requires(*names: str) -> Callable[[JsonSchema], None]:
    """A model's `json_schema_extra`: members the core requires although the model lets them be left out
    (one model serves an endpoint that needs them and one that does not)."""

    def apply(schema: JsonSchema) -> None:
        schema["required"] = sorted({*schema.get("required", []), *names})

    return apply
