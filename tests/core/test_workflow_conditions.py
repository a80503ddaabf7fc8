"""Workflow if/else conditions and split tests: every shape check with its pointer, the meaning of each
operator on real snapshots (case, numbers held as text, dates in the contact's zone, missing values), and
(property) split buckets that are stable and match their percentages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghl_core.shared.errors import ValidationFailed
from ghl_core.workflows.conditions import (
    MAX_CONDITIONS,
    OPS,
    Condition,
    Facts,
    evaluate,
    parse_condition_group,
    parse_split,
    split_bucket,
)

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
CONTACT: dict[str, Any] = {
    "id": "c-1",
    "first_name": "Ada",
    "last_name": None,
    "email": "Ada@Example.com",
    "phone": "+15550100",
    "company_name": "",
    "timezone": "America/New_York",
    "date_of_birth": "1990-03-10",
    "created_at": "2026-03-01T12:00:00+00:00",
    "dnd": False,
    "dnd_channels": {"sms": True, "email": False},
    "tags": ["vip", "Lead"],
    "custom_fields": {"budget": "7500", "score": 42, "ratio": 0.1, "plan": "Gold", "interests": ["Golf"]},
}
FACTS = Facts(
    contact=CONTACT,
    opportunity={"status": "won", "stage_id": "s-2", "pipeline_id": "p-1", "value": 250_000},
    last_message={"direction": "inbound", "channel": "sms", "body": "YES please", "at": "2026-03-10T14:00Z"},
    outputs={"call_crm": {"status": 200, "body": {"items": [{"id": "x-9"}], "ok": True}}},
    now=NOW,
)


def check(field: str, op: str, value: Any = None, facts: Facts = FACTS, **raw: Any) -> bool:
    cond: dict[str, Any] = {"field": field, "op": op, **raw}
    if op not in ("exists", "not_exists"):
        cond["value"] = value
    return evaluate(parse_condition_group({"all": [cond]}, "/c"), facts)


def errors(raw: Any, pointer: str = "/steps/3/if") -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_condition_group(raw, pointer)
    return [(e.pointer, e.detail) for e in caught.value.errors]


# -- the brief's examples, each with its true and false case ------------------------------------------
@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("contact.email", "exists", None, True),
        ("contact.company_name", "exists", None, False),  # blank text is not a value
        ("contact.last_name", "exists", None, False),
        ("contact.last_name", "not_exists", None, True),
        ("contact.nickname", "not_exists", None, True),
        ("contact.email", "not_exists", None, False),
        ("contact.tags", "has_any", ["a", "VIP"], True),
        ("contact.tags", "has_any", ["a", "b"], False),
        ("contact.tags", "has_all", ["lead", "vip"], True),
        ("contact.tags", "has_all", ["lead", "cold"], False),
        ("contact.tags", "has_none", ["cold", "spam"], True),
        ("contact.tags", "has_none", ["cold", "LEAD"], False),
        ("contact.custom.budget", "gt", 5000, True),  # stored as text, compared as a number
        ("contact.custom.budget", "gt", 7500, False),
        ("contact.custom_fields.budget", "gte", 7500, True),
        ("contact.custom.score", "lt", "100", True),
        ("contact.custom.score", "lte", 41.5, False),
        ("contact.custom.ratio", "eq", "0.10", True),  # 0.1 by its shortest repr, not binary noise
        ("opportunity.status", "eq", "won", True),
        ("opportunity.status", "eq", "lost", False),
        ("last_message.direction", "eq", "inbound", True),
        ("last_message.direction", "eq", "outbound", False),
        ("steps.call_crm.status", "eq", 200, True),
        ("steps.call_crm.status", "eq", "200", True),
        ("steps.call_crm.status", "eq", 404, False),
        ("steps.call_crm.body.items.0.id", "eq", "X-9", True),
        ("steps.call_crm.body.items.1.id", "exists", None, False),
        ("steps.call_crm.body.ok", "eq", True, True),
        ("steps.other.status", "exists", None, False),
        ("contact.dnd_channels.sms", "eq", True, True),
        ("contact.dnd_channels.email", "eq", True, False),
        ("contact.dnd_channels.email", "eq", False, True),
        ("contact.dnd", "eq", False, True),
    ],
)
def test_examples(field: str, op: str, value: Any, expected: bool) -> None:
    assert check(field, op, value) is expected


# -- operator meaning ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("contact.email", "eq", "ada@example.COM", True),  # emails ignore case
        ("contact.email", "neq", "ada@example.com", False),
        ("contact.email", "neq", "bob@example.com", True),
        ("contact.email", "contains", "EXAMPLE", True),
        ("contact.email", "contains", "gmail", False),
        ("contact.email", "not_contains", "gmail", True),
        ("contact.email", "not_contains", "example", False),
        ("contact.email", "starts_with", "ADA@", True),
        ("contact.email", "starts_with", "bob", False),
        ("contact.email", "ends_with", ".COM", True),
        ("contact.email", "ends_with", ".org", False),
        ("contact.phone", "starts_with", "+1555", True),
        ("contact.custom.score", "contains", "4", True),  # a number read as its digits
        ("contact.custom.score", "ends_with", "2", True),
        ("contact.tags", "contains", "LEAD", True),  # a list contains an item
        ("contact.tags", "contains", "lea", False),
        ("contact.tags", "not_contains", "cold", True),
        ("contact.custom.interests", "has_any", ["golf"], True),
        ("contact.custom.plan", "has_any", ["gold", "silver"], True),  # one value as a one-item list
        ("contact.dnd", "contains", "f", False),  # booleans are not text
        ("contact.dnd", "starts_with", "f", False),
        ("contact.dnd_channels", "contains", "sms", False),  # a mapping is neither text nor list
        ("contact.dnd_channels", "exists", None, True),
        ("contact.dnd_channels", "has_any", ["sms"], False),
        ("contact.custom.score", "exists", None, True),
        ("contact.dnd", "exists", None, True),
        ("opportunity.stage_id", "in", ["s-1", "S-2"], True),
        ("opportunity.stage_id", "in", ["s-1", "s-3"], False),
        ("opportunity.stage_id", "not_in", ["s-1", "s-3"], True),
        ("opportunity.stage_id", "not_in", ["s-2"], False),
        ("opportunity.value", "in", [100, 250000.0], True),
        ("opportunity.value", "between", [100_000, 250_000], True),
        ("opportunity.value", "between", ["100000", "200000"], False),
        ("contact.custom.budget", "between", [7500, 7500], True),
        ("contact.email", "between", [1, 2], False),
        ("contact.email", "gt", 1, False),
        ("contact.dnd", "eq", "false", False),  # booleans only equal booleans
        ("contact.dnd", "in", [False], True),
        ("contact.first_name", "eq", True, False),
        ("contact.first_name", "eq", 1, False),
        ("contact.tags", "eq", "vip", False),
        ("contact.custom.budget", "eq", "7500.00", True),
        ("contact.custom.plan", "eq", "7500", False),
    ],
)
def test_operators(field: str, op: str, value: Any, expected: bool) -> None:
    assert check(field, op, value) is expected


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("eq", "x"),
        ("neq", "x"),
        ("contains", "x"),
        ("not_contains", "x"),
        ("starts_with", "x"),
        ("ends_with", "x"),
        ("gt", 1),
        ("gte", 1),
        ("lt", 1),
        ("lte", 1),
        ("between", [1, 2]),
        ("in", ["x"]),
        ("not_in", ["x"]),
        ("has_any", ["x"]),
        ("has_all", ["x"]),
        ("before", "2026-01-01"),
        ("after", "2026-01-01"),
        ("exists", None),
    ],
)
def test_missing_values_make_every_comparison_false(op: str, value: Any) -> None:
    for field in ("contact.nickname", "contact.last_name", "opportunity.status", "last_message.body"):
        empty = Facts(contact=CONTACT, now=NOW)  # no opportunity, no last message
        assert check(field, op, value, facts=empty) is False
        assert check(field, "not_exists", facts=empty) is True


def test_a_missing_tag_list_has_none_of_anything() -> None:
    bare = Facts(contact={"id": "c-2"}, now=NOW)
    assert check("contact.tags", "has_none", ["vip"], facts=bare) is True
    assert check("contact.tags", "has_any", ["vip"], facts=bare) is False
    assert check("contact.tags", "has_all", ["vip"], facts=bare) is False


def test_paths_stop_at_values_that_cannot_be_walked() -> None:
    assert check("contact.email.domain", "exists") is False
    assert check("contact.tags.first", "exists") is False
    assert check("contact.tags.5", "exists") is False
    assert check("contact.tags.1", "eq", "lead") is True


# -- dates -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("contact.created_at", "before", "2026-03-02", True),
        ("contact.created_at", "after", "2026-03-01", False),  # same calendar day in New York
        ("contact.created_at", "before", "2026-03-01", False),
        ("contact.created_at", "after", "2026-03-01T11:59:59Z", True),
        ("contact.created_at", "before", "2026-03-01T12:00:01+00:00", True),
        ("contact.created_at", "before", "2026-03-01T12:00:00", False),  # naive means UTC: equal
        ("contact.created_at", "before", {"days_ago": 7}, True),  # more than 7 days ago
        ("contact.created_at", "before", {"days_ago": 10}, False),
        ("contact.created_at", "after", {"weeks_ago": 2}, True),
        ("contact.created_at", "after", {"hours_ago": 240}, True),
        ("contact.created_at", "after", {"hours_ago": 200}, False),
        ("contact.created_at", "between", ["2026-03-01", "2026-03-01T12:00:00Z"], True),
        ("contact.created_at", "between", ["2026-03-01", "2026-03-01T11:00:00Z"], False),
        ("contact.created_at", "after", {"minutes_ago": 30}, False),
        ("contact.created_at", "before", {"days_from_now": 0}, True),
        ("contact.date_of_birth", "before", "1990-03-11", True),
        ("contact.date_of_birth", "after", "1990-03-10", False),
        ("contact.date_of_birth", "before", {"days_ago": 365}, True),
        ("contact.date_of_birth", "between", ["1990-01-01", "1990-12-31"], True),
        ("contact.date_of_birth", "between", ["1990-03-11", {"days_ago": 1}], False),
        ("contact.created_at", "between", [{"days_ago": 30}, {"days_ago": 1}], True),
        ("contact.created_at", "between", [{"days_ago": 5}, {"days_ago": 1}], False),
        ("last_message.at", "after", {"hours_ago": 2}, True),
        ("last_message.at", "after", {"minutes_ago": 30}, False),
        ("contact.email", "before", "2026-01-01", False),  # not a date
        ("contact.created_at", "eq", "2026-03-01", True),  # the same day in New York
        ("contact.created_at", "eq", "2026-03-01T07:00:00-05:00", True),  # the same instant
        ("contact.created_at", "neq", "2026-03-02", True),
        ("contact.created_at", "in", ["2026-02-28", "2026-03-01"], True),
        ("contact.date_of_birth", "eq", "1990-03-10", True),
        ("contact.date_of_birth", "not_in", ["1990-03-10"], False),
        ("contact.email", "eq", "2026-03-01", False),
        ("contact.created_at", "eq", "2026-13-01", False),  # not a real date: compared as text
        ("contact.custom.score", "after", "2026-01-01", False),
    ],
)
def test_dates(field: str, op: str, value: Any, expected: bool) -> None:
    assert check(field, op, value) is expected


def test_a_date_only_bound_uses_the_contact_time_zone() -> None:
    """01:00 UTC on 1 March is still 28 February in New York, and already 1 March in UTC."""
    late = {**CONTACT, "created_at": "2026-03-01T01:00:00Z"}
    ny = Facts(contact=late, now=NOW)
    utc = Facts(contact={**late, "timezone": None}, now=NOW)
    bogus = Facts(contact={**late, "timezone": "Mars/Olympus"}, now=NOW)
    hostile = Facts(contact={**late, "timezone": "/etc/passwd"}, now=NOW)
    assert check("contact.created_at", "before", "2026-03-01", facts=ny) is True
    for facts in (utc, bogus, hostile):
        assert check("contact.created_at", "before", "2026-03-01", facts=facts) is False


def test_relative_moments_follow_the_clock_and_need_one() -> None:
    recent = Facts(contact={**CONTACT, "created_at": datetime(2026, 3, 9, tzinfo=UTC)}, now=NOW)
    assert check("contact.created_at", "after", {"days_ago": 2}, facts=recent) is True
    later = Facts(contact=recent.contact, now=(NOW + timedelta(days=5)).replace(tzinfo=None))
    assert check("contact.created_at", "after", {"days_ago": 2}, facts=later) is False
    assert check("contact.created_at", "after", "2026-03-07", facts=later) is True  # needs no clock
    with pytest.raises(ValueError, match=r"Facts\.now"):
        check("contact.created_at", "after", {"days_ago": 2}, facts=Facts(contact=CONTACT))


def test_python_dates_in_the_facts_compare_too() -> None:
    facts = Facts(
        contact={"timezone": "UTC", "born": date(2000, 1, 2), "seen": datetime(2026, 3, 1)}, now=NOW
    )
    assert check("contact.born", "after", "2000-01-01", facts=facts) is True
    assert check("contact.seen", "before", "2026-03-01T00:00:01Z", facts=facts) is True
    assert check("contact.seen", "eq", "2026-03-01", facts=facts) is True
    assert check("contact.seen", "eq", "2026-03-01T00:00:00+00:00", facts=facts) is True
    assert check("contact.seen", "eq", "2026-03-01T01:00:00+01:00", facts=facts) is True
    assert check("contact.seen", "eq", "2026-03-01T00:00:01Z", facts=facts) is False


# -- groups ----------------------------------------------------------------------------------------------
def test_all_any_and_nesting() -> None:
    yes = {"field": "opportunity.status", "op": "eq", "value": "won"}
    no = {"field": "opportunity.status", "op": "eq", "value": "lost"}
    assert evaluate(parse_condition_group({"all": [yes, yes]}, ""), FACTS) is True
    assert evaluate(parse_condition_group({"all": [yes, no]}, ""), FACTS) is False
    assert evaluate(parse_condition_group({"any": [no, yes]}, ""), FACTS) is True
    assert evaluate(parse_condition_group({"any": [no, no]}, ""), FACTS) is False
    nested = {"any": [no, {"all": [yes, {"any": [no, yes]}]}]}
    assert evaluate(parse_condition_group(nested, ""), FACTS) is True
    assert evaluate(parse_condition_group({"any": [no, {"all": [yes, {"any": [no]}]}]}, ""), FACTS) is False


def test_a_bare_condition_is_a_group_of_one() -> None:
    group = parse_condition_group({"field": "contact.email", "op": "exists"}, "/if")
    assert group.join == "all"
    assert len(group.items) == 1
    assert evaluate(group, FACTS) is True


def test_parsed_groups_are_immutable_export_as_written_and_name_their_steps() -> None:
    raw = {
        "any": [
            {"field": "contact.custom.budget", "op": "between", "value": [1, 2]},
            {
                "all": [
                    {"field": "steps.call_crm.status", "op": "in", "value": [200, 201]},
                    {"field": "contact.created_at", "op": "before", "value": {"days_ago": 7}},
                    {"field": "steps.lookup", "op": "exists"},
                ]
            },
        ]
    }
    group = parse_condition_group(raw, "/if")
    assert group.to_raw() == raw
    assert parse_condition_group(group.to_raw(), "/if") == group
    assert hash(group) == hash(parse_condition_group(raw, "/if"))
    assert group.step_refs() == {"call_crm", "lookup"}
    first = group.items[0]
    assert isinstance(first, Condition)
    assert first.path == ("contact", "custom_fields", "budget")
    with pytest.raises(AttributeError):
        first.op = "eq"  # type: ignore[misc]


# -- validation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("all", [("/steps/3/if", 'must be a condition or an {"all": [...]} / {"any": [...]} group')]),
        ({"all": []}, [("/steps/3/if/all", "must be a non-empty list")]),
        ({"any": {"field": "contact.email"}}, [("/steps/3/if/any", "must be a non-empty list")]),
        (
            {"all": [{"field": "contact.email", "op": "exists"}], "any": []},
            [("/steps/3/if/any", "a group holds exactly one of 'all' or 'any'")],
        ),
        (
            {"all": [{"field": "contact.email", "op": "exists"}], "a/b~": 1},
            [("/steps/3/if/a~1b~0", "a group holds exactly one of 'all' or 'any'")],
        ),
        ({"all": [{"op": "exists"}]}, [("/steps/3/if/all/0/field", "is required")]),
        (
            {"all": [{"field": "contact.email"}]},
            [("/steps/3/if/all/0/op", "is required")],
        ),
        (
            {"all": [{"field": "contact.email", "op": "like", "value": "x"}]},
            [("/steps/3/if/all/0/op", "must be one of " + ", ".join(OPS))],
        ),
        (
            {"all": [{"field": "account.email", "op": "exists"}]},
            [
                (
                    "/steps/3/if/all/0/field",
                    "unknown field root 'account'; use one of contact, last_message, opportunity, steps",
                )
            ],
        ),
        (
            {"all": [{"field": "contact", "op": "exists"}]},
            [("/steps/3/if/all/0/field", "must name a field, e.g. contact.id")],
        ),
        (
            {"all": [{"field": "steps", "op": "exists"}]},
            [("/steps/3/if/all/0/field", "must name a step id, e.g. steps.call_crm.status")],
        ),
        (
            {"all": [{"field": "contact.custom", "op": "exists"}]},
            [("/steps/3/if/all/0/field", "must name a custom field key, e.g. contact.custom.budget")],
        ),
        (
            {"all": [{"field": "contact..email", "op": "exists"}]},
            [
                (
                    "/steps/3/if/all/0/field",
                    "must be a dotted path of at most 200 characters, e.g. contact.email",
                )
            ],
        ),
        (
            {"all": [{"field": "contact.email", "op": "eq"}]},
            [("/steps/3/if/all/0/value", "is required for 'eq'")],
        ),
        (
            {"all": [{"field": "contact.email", "op": "exists", "value": True}]},
            [("/steps/3/if/all/0/value", "'exists' takes no value")],
        ),
        (
            {"all": [{"field": "contact.email", "op": "exists", "negate": True}]},
            [("/steps/3/if/all/0/negate", "is not a condition member (field, op, value)")],
        ),
        (
            {"all": [{"field": "contact.email", "op": "eq", "value": None}]},
            [("/steps/3/if/all/0/value", "must be text, a number or true/false")],
        ),
        (
            {"all": [{"field": "contact.email", "op": "eq", "value": float("nan")}]},
            [("/steps/3/if/all/0/value", "must be finite")],
        ),
        (
            {"all": [{"field": "contact.email", "op": "contains", "value": ""}]},
            [("/steps/3/if/all/0/value", "must be a non-empty text of at most 500 characters")],
        ),
        (
            {"all": [{"field": "contact.email", "op": "contains", "value": 5}]},
            [("/steps/3/if/all/0/value", "must be a non-empty text of at most 500 characters")],
        ),
        (
            {"all": [{"field": "contact.custom.budget", "op": "gt", "value": "lots"}]},
            [("/steps/3/if/all/0/value", "'gt' compares numbers: give a number")],
        ),
        (
            {"all": [{"field": "contact.custom.budget", "op": "lte", "value": True}]},
            [("/steps/3/if/all/0/value", "'lte' compares numbers: give a number")],
        ),
        (
            {"all": [{"field": "contact.tags", "op": "has_any", "value": "vip"}]},
            [("/steps/3/if/all/0/value", "must be a list of 1 to 100 values")],
        ),
        (
            {"all": [{"field": "contact.tags", "op": "has_all", "value": []}]},
            [("/steps/3/if/all/0/value", "must be a list of 1 to 100 values")],
        ),
        (
            {"all": [{"field": "contact.tags", "op": "has_none", "value": ["ok", 3]}]},
            [("/steps/3/if/all/0/value/1", "must be a non-empty text of at most 500 characters")],
        ),
        (
            {"all": [{"field": "opportunity.stage_id", "op": "in", "value": ["a", ["b"]]}]},
            [("/steps/3/if/all/0/value/1", "must be text, a number or true/false")],
        ),
        (
            {"all": [{"field": "opportunity.value", "op": "between", "value": [1, 2, 3]}]},
            [("/steps/3/if/all/0/value", "must be a list of two values [low, high]")],
        ),
        (
            {"all": [{"field": "opportunity.value", "op": "between", "value": [9, "2"]}]},
            [("/steps/3/if/all/0/value", "the first value must not be greater than the second")],
        ),
        (
            {
                "all": [
                    {"field": "contact.created_at", "op": "between", "value": ["2026-02-01", "2026-01-01"]}
                ]
            },
            [("/steps/3/if/all/0/value", "the first value must not be greater than the second")],
        ),
        (
            {
                "all": [
                    {
                        "field": "contact.created_at",
                        "op": "between",
                        "value": [{"days_ago": 1}, {"days_ago": 9}],
                    }
                ]
            },
            [("/steps/3/if/all/0/value", "the first value must not be greater than the second")],
        ),
        (
            {"all": [{"field": "contact.created_at", "op": "between", "value": ["2026-01-01", "soon"]}]},
            [
                (
                    "/steps/3/if/all/0/value/1",
                    'must be an ISO date or date-time ("2026-03-01", "2026-03-01T09:00:00Z") '
                    'or a relative moment like {"days_ago": 7}',
                )
            ],
        ),
        (
            {"all": [{"field": "contact.created_at", "op": "before", "value": "2026-02-30"}]},
            [
                (
                    "/steps/3/if/all/0/value",
                    'must be an ISO date or date-time ("2026-03-01", "2026-03-01T09:00:00Z") '
                    'or a relative moment like {"days_ago": 7}',
                )
            ],
        ),
        (
            {"all": [{"field": "contact.created_at", "op": "after", "value": 1700000000}]},
            [
                (
                    "/steps/3/if/all/0/value",
                    'must be an ISO date or date-time ("2026-03-01", "2026-03-01T09:00:00Z") '
                    'or a relative moment like {"days_ago": 7}',
                )
            ],
        ),
        (
            {
                "all": [
                    {"field": "contact.created_at", "op": "after", "value": {"days_ago": 1, "hours_ago": 1}}
                ]
            },
            [
                (
                    "/steps/3/if/all/0/value",
                    "a relative moment has exactly one of minutes_ago, minutes_from_now, hours_ago, "
                    "hours_from_now, days_ago, days_from_now, weeks_ago, weeks_from_now",
                )
            ],
        ),
        (
            {"all": [{"field": "contact.created_at", "op": "after", "value": {"years_ago": 1}}]},
            [
                (
                    "/steps/3/if/all/0/value",
                    "a relative moment has exactly one of minutes_ago, minutes_from_now, hours_ago, "
                    "hours_from_now, days_ago, days_from_now, weeks_ago, weeks_from_now",
                )
            ],
        ),
        (
            {"all": [{"field": "contact.created_at", "op": "after", "value": {"days_ago": -1}}]},
            [("/steps/3/if/all/0/value/days_ago", "must be a whole number, 0 or more")],
        ),
        (
            {"all": [{"field": "contact.created_at", "op": "after", "value": {"days_ago": 1.5}}]},
            [("/steps/3/if/all/0/value/days_ago", "must be a whole number, 0 or more")],
        ),
        (
            {"all": [{"field": "contact.created_at", "op": "after", "value": {"weeks_ago": 5215}}]},
            [("/steps/3/if/all/0/value/weeks_ago", "must be at most 36500 days' worth")],
        ),
    ],
)
def test_shape_errors_point_at_the_bad_part(raw: Any, expected: list[tuple[str, str]]) -> None:
    assert errors(raw) == expected


def test_all_errors_of_a_group_are_reported_at_once() -> None:
    raw = {
        "any": [
            {"field": "nope.x", "op": "eq", "value": 1},
            {"field": "contact.email", "op": "gt", "value": "x"},
            {"all": [{"field": "contact.tags", "op": "has_any"}, 7]},
        ]
    }
    assert [p for p, _ in errors(raw, "/b/0")] == [
        "/b/0/any/0/field",
        "/b/0/any/1/value",
        "/b/0/any/2/all/0/value",
        "/b/0/any/2/all/1",
    ]


def test_limits_on_size_and_depth() -> None:
    cond = {"field": "contact.email", "op": "exists"}
    long_field = "contact." + "x" * 200
    assert errors({"all": [{"field": long_field, "op": "exists"}]})[0][0] == "/steps/3/if/all/0/field"
    assert errors({"all": [{"field": "contact.tags", "op": "in", "value": ["t"] * 101}]}) == [
        ("/steps/3/if/all/0/value", "must be a list of 1 to 100 values")
    ]
    assert errors({"all": [{"field": "contact.email", "op": "eq", "value": "x" * 501}]})[0][0].endswith(
        "/value"
    )
    parse_condition_group({"all": [cond] * MAX_CONDITIONS}, "/if")
    assert errors({"all": [cond] * (MAX_CONDITIONS + 1)}, "/if") == [("/if/all", "at most 50 conditions")]
    split = {"all": [{"all": [cond] * 30}, {"any": [cond] * 21}]}
    assert errors(split, "/if") == [("/if", "at most 50 conditions in one group, nested ones included")]
    three = {"all": [{"any": [{"all": [cond]}]}]}
    parse_condition_group(three, "/if")
    assert errors({"all": [{"any": [{"all": [{"any": [cond]}]}]}]}, "/if") == [
        ("/if/all/0/any/0/all/0/any", "groups nest at most 3 levels deep")
    ]


# -- properties ------------------------------------------------------------------------------------------
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40)


@given(value=text)
def test_text_equality_ignores_case(value: str) -> None:
    facts = Facts(contact={"first_name": value})
    assert check("contact.first_name", "eq", value.upper(), facts=facts) is (
        value.casefold() == value.upper().casefold()
    )
    assert check("contact.first_name", "eq", value, facts=facts) is True
    assert check("contact.first_name", "contains", value.swapcase(), facts=facts) is (
        value.swapcase().casefold() in value.casefold()
    )


@given(left=st.integers(-(10**12), 10**12), right=st.integers(-(10**12), 10**12), as_text=st.booleans())
def test_numbers_compare_numerically_even_as_text(left: int, right: int, as_text: bool) -> None:
    facts = Facts(contact={"custom_fields": {"n": str(left) if as_text else left}})
    expectations = {
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
        "eq": left == right,
        "neq": left != right,
    }
    for op, expected in expectations.items():
        assert check("contact.custom.n", op, right, facts=facts) is expected
    assert check("contact.custom.n", "between", sorted([right, right + 10]), facts=facts) is (
        right <= left <= right + 10
    )


leaf = st.sampled_from(
    [
        ({"field": "opportunity.status", "op": "eq", "value": "WON"}, True),
        ({"field": "contact.tags", "op": "has_any", "value": ["nope"]}, False),
        ({"field": "contact.custom.budget", "op": "gte", "value": 7500}, True),
        ({"field": "contact.missing", "op": "neq", "value": "x"}, False),
    ]
)
trees = st.recursive(
    leaf,
    lambda kids: st.tuples(st.sampled_from(["all", "any"]), st.lists(kids, min_size=1, max_size=4)).map(
        lambda pair: (
            {pair[0]: [raw for raw, _ in pair[1]]},
            (all if pair[0] == "all" else any)(truth for _, truth in pair[1]),
        )
    ),
    max_leaves=12,
)


def _depth(raw: Mapping[str, Any]) -> int:
    items = raw.get("all") or raw.get("any")
    return 1 + max((_depth(i) for i in items), default=0) if items else 0


@given(tree=trees)
def test_groups_evaluate_as_boolean_logic_and_round_trip(tree: tuple[dict[str, Any], bool]) -> None:
    raw, truth = tree
    if _depth(raw) > 3:
        assert any("nest at most" in detail for _, detail in errors(raw, ""))
        return
    group = parse_condition_group(raw, "")
    assert evaluate(group, FACTS) is truth
    assert parse_condition_group(group.to_raw(), "") == group


# -- split tests ------------------------------------------------------------------------------------------
def test_parse_split_accepts_numbers_or_paths() -> None:
    assert parse_split([50, 50], "/s") == [50, 50]
    assert parse_split([{"percent": 10, "name": "A"}, {"percent": 90}], "/s") == [10, 90]
    assert parse_split([1] * 9 + [91], "/s") == [1] * 9 + [91]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([100], [("/steps/2/split", "must be a list of 2 to 10 paths")]),
        ([10] * 11, [("/steps/2/split", "must be a list of 2 to 10 paths")]),
        ({"a": 50, "b": 50}, [("/steps/2/split", "must be a list of 2 to 10 paths")]),
        ([60, 50], [("/steps/2/split", "percentages must add up to 100, not 110")]),
        ([0, 100], [("/steps/2/split/0", "must be a whole percentage from 1 to 100")]),
        (
            [50.0, True, {"percent": "50"}, {"share": 1}],
            [
                ("/steps/2/split/0", "must be a whole percentage from 1 to 100"),
                ("/steps/2/split/1", "must be a whole percentage from 1 to 100"),
                ("/steps/2/split/2/percent", "must be a whole percentage from 1 to 100"),
                ("/steps/2/split/3/percent", "must be a whole percentage from 1 to 100"),
            ],
        ),
    ],
)
def test_parse_split_errors(raw: Any, expected: list[tuple[str, str]]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_split(raw, "/steps/2/split")
    assert [(e.pointer, e.detail) for e in caught.value.errors] == expected


def test_split_buckets_are_fixed_by_sha256() -> None:
    """Golden values: sha256 of the key, first 8 bytes big-endian, mod 10,000 ("a" -> 2250, "c" -> 4930),
    so every process and every release puts a contact on the same path."""
    assert split_bucket("a", [50, 50]) == 0
    assert split_bucket("a", [10, 20, 30, 40]) == 1
    assert split_bucket("a", [22, 1, 77]) == 1  # 2250 lies in the 1% slice 2200..2299
    assert split_bucket("a", [23, 77]) == 0
    assert split_bucket("c", [49, 1, 50]) == 1
    assert split_bucket("c", [50, 50]) == 0
    assert split_bucket("wf-1:split:contact-2", [10, 20, 30, 40]) == 3
    # "k110" -> 2000, exactly on an edge: a share covers [start, end), so it opens the next path.
    assert split_bucket("k110", [20, 80]) == 1
    assert split_bucket("k110", [21, 79]) == 0


@pytest.mark.parametrize("bad", [[50, 49], [101, -1], []])
def test_split_bucket_refuses_shares_that_do_not_cover_everyone(bad: list[int]) -> None:
    with pytest.raises(ValueError, match="add up to 100"):
        split_bucket("k", bad)


@pytest.mark.parametrize("percentages", [[50, 50], [10, 90], [1, 99], [20, 30, 50], [10] * 10, [1, 4, 95]])
def test_split_distribution_matches_percentages(percentages: list[int]) -> None:
    counts = [0] * len(percentages)
    for n in range(10_000):
        counts[split_bucket(f"wf-7:step-3:contact-{n}", percentages)] += 1
    for count, percent in zip(counts, percentages, strict=True):
        assert abs(count / 10_000 * 100 - percent) <= 2


@settings(max_examples=50)
@given(
    key=st.text(max_size=60),
    percentages=st.lists(st.integers(1, 40), min_size=1, max_size=9)
    .map(lambda ps: [*ps, 100 - sum(ps)])
    .filter(lambda ps: ps[-1] >= 1),
)
def test_same_key_same_bucket(key: str, percentages: list[int]) -> None:
    first = split_bucket(key, percentages)
    assert 0 <= first < len(percentages)
    assert all(split_bucket(key, list(percentages)) == first for _ in range(3))
    assert parse_split(percentages, "/s") == percentages


def test_decimal_operands_are_exact() -> None:
    group = parse_condition_group({"field": "opportunity.value", "op": "gt", "value": 0.1}, "")
    cond = group.items[0]
    assert isinstance(cond, Condition)
    assert cond.operand == Decimal("0.1")
    assert evaluate(group, Facts(contact={}, opportunity={"value": Decimal("0.10000001")})) is True
    assert evaluate(group, Facts(contact={}, opportunity={"value": Decimal("NaN")})) is False
    assert evaluate(group, Facts(contact={}, opportunity={"value": float("inf")})) is False
