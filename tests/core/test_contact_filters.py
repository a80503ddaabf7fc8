"""The filter language: every check with its pointer, and (property) the SQL the adapter compiles from a
random filter selects exactly the contacts the pure-Python evaluation of the same filter selects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, insert, select, text

from ghl_adapters.sql import tables as t
from ghl_adapters.sql.contact_search import contacts_scoped, where_clause
from ghl_adapters.sql.contacts import _COLUMNS, _from_row
from ghl_core.contacts.filters import MAX_CONDITIONS, matches, parse_filter
from ghl_core.contacts.models import Contact
from ghl_core.contacts.search import SearchSpec, parse_sort, search_tokens
from ghl_core.custom_fields.models import FieldType
from ghl_core.shared.errors import ValidationFailed

CUSTOM = {
    "score": FieldType.NUMBER,
    "plan": FieldType.SINGLE_OPTION,
    "interests": FieldType.MULTIPLE_OPTIONS,
    "since": FieldType.DATE,
    "ok": FieldType.CHECKBOX,
}
BASE = datetime(2026, 1, 1, tzinfo=UTC)
USERS = [uuid.UUID(int=1), uuid.UUID(int=2)]
TAGS = ["vip", "lead", "new", "cold"]
OPTIONS = ["ski", "golf", "chess"]
# ASCII only: PostgreSQL's lower() follows the server's locale for other letters, Python's does not.
words = st.text(alphabet="aAbB%_\\ ", min_size=1, max_size=4)
moments = st.integers(0, 5).map(lambda d: BASE + timedelta(days=d))
halves = st.integers(-4, 20).map(lambda n: n / 2 if n % 2 else n // 2)


def errors_of(raw: Any) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_filter(raw, CUSTOM)
    return sorted(e.pointer for e in caught.value.errors)


def test_each_mistake_is_reported_with_its_pointer() -> None:
    assert errors_of([]) == ["/filter"]
    assert errors_of({"and": []}) == ["/filter/and"]
    assert errors_of({"and": [], "or": []}) == ["/filter/or"]
    assert errors_of({"field": "nope", "operator": "eq", "value": 1}) == ["/filter/field"]
    assert errors_of({"field": "email", "operator": "has_any", "value": ["a"]}) == ["/filter/operator"]
    assert errors_of({"field": "email", "operator": "eq"}) == ["/filter/value"]
    assert errors_of({"field": "email", "operator": "in", "value": []}) == ["/filter/value"]
    assert errors_of({"field": "custom_fields.score", "operator": "gt", "value": "1"}) == ["/filter/value"]
    assert errors_of({"field": "custom_fields.since", "operator": "lt", "value": "2026-13-01"}) == [
        "/filter/value"
    ]
    assert errors_of({"field": "dnd_channels.fax", "operator": "eq", "value": True}) == ["/filter/field"]
    assert errors_of({"field": "tags", "operator": "has_all", "value": ["ok", " "]}) == ["/filter/value/1"]
    assert errors_of({"field": "score", "operator": "between", "value": [2, 1]}) == ["/filter/field"]
    assert errors_of({"field": "custom_fields.score", "operator": "between", "value": [2, 1]}) == [
        "/filter/value"
    ]
    assert errors_of({"field": "email", "operator": "eq", "value": "a", "x/y": 1}) == ["/filter/x~1y"]
    too_many = {"and": [{"field": "dnd", "operator": "eq", "value": True}] * 26}
    assert errors_of({"or": [too_many, too_many]}) == ["/filter"]
    assert len(too_many["and"]) * 2 > MAX_CONDITIONS


def test_search_tokens_and_sort() -> None:
    assert search_tokens("(312) 555-0142") == ("3125550142",)
    assert search_tokens("  Jane   DOE jane ") == ("jane", "doe")
    assert search_tokens("12") == ("12",)
    assert search_tokens("   ") == ()
    assert parse_sort(None).field == "created_at"
    with pytest.raises(ValidationFailed):
        parse_sort([{"field": "email", "direction": "up"}])


# -- property: SQL == Python ------------------------------------------------------------------------
def _condition(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": op, "value": value}


def _pair(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(values, min_size=2, max_size=2).map(sorted)


conditions = st.one_of(
    st.builds(
        _condition,
        st.sampled_from(["first_name", "city", "email"]),
        st.sampled_from(["eq", "neq", "contains", "starts_with"]),
        words,
    ),
    st.builds(
        _condition, st.sampled_from(["first_name", "city"]), st.just("in"), st.lists(words, min_size=1)
    ),
    st.builds(
        _condition,
        st.sampled_from(["first_name", "email", "assigned_user_id"]),
        st.just("exists"),
        st.booleans(),
    ),
    st.builds(
        _condition,
        st.sampled_from(["tags"]),
        st.sampled_from(["has_any", "has_all", "has_none"]),
        st.lists(st.sampled_from(TAGS), min_size=1, max_size=3),
    ),
    st.builds(_condition, st.just("tags"), st.just("exists"), st.booleans()),
    st.builds(_condition, st.just("dnd"), st.just("eq"), st.booleans()),
    st.builds(
        _condition, st.sampled_from(["dnd_channels.sms", "dnd_channels.email"]), st.just("eq"), st.booleans()
    ),
    st.builds(
        _condition,
        st.sampled_from(["created_at", "last_activity_at"]),
        st.sampled_from(["eq", "neq", "gt", "lt"]),
        moments.map(lambda m: m.isoformat()),
    ),
    st.builds(
        _condition,
        st.just("last_activity_at"),
        st.just("between"),
        _pair(moments).map(lambda p: [m.isoformat() for m in p]),
    ),
    st.builds(_condition, st.just("last_activity_at"), st.just("exists"), st.booleans()),
    st.builds(
        _condition,
        st.just("date_of_birth"),
        st.sampled_from(["gt", "lt", "eq"]),
        st.sampled_from(["1990-01-01", "1990-01-02"]),
    ),
    st.builds(
        _condition,
        st.just("assigned_user_id"),
        st.sampled_from(["eq", "neq"]),
        st.sampled_from([str(u) for u in USERS]),
    ),
    st.builds(_condition, st.just("custom_fields.score"), st.sampled_from(["eq", "neq", "gt", "lt"]), halves),
    st.builds(_condition, st.just("custom_fields.score"), st.just("between"), _pair(halves)),
    st.builds(
        _condition, st.just("custom_fields.score"), st.just("in"), st.lists(halves, min_size=1, max_size=3)
    ),
    st.builds(
        _condition,
        st.sampled_from(
            ["custom_fields.score", "custom_fields.plan", "custom_fields.interests", "custom_fields.ok"]
        ),
        st.just("exists"),
        st.booleans(),
    ),
    st.builds(
        _condition,
        st.just("custom_fields.plan"),
        st.sampled_from(["eq", "neq", "contains", "starts_with"]),
        words,
    ),
    st.builds(
        _condition,
        st.just("custom_fields.interests"),
        st.sampled_from(["has_any", "has_all", "has_none"]),
        st.lists(st.sampled_from(OPTIONS), min_size=1, max_size=2),
    ),
    st.builds(
        _condition,
        st.just("custom_fields.since"),
        st.sampled_from(["eq", "gt", "lt"]),
        st.sampled_from(["2026-01-02", "2026-01-03"]),
    ),
    st.builds(_condition, st.just("custom_fields.ok"), st.just("eq"), st.booleans()),
)


def _groups(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda join, items: {join: items},
        st.sampled_from(["and", "or"]),
        st.lists(children, min_size=1, max_size=3),
    )


filters = _groups(st.one_of(conditions, _groups(st.one_of(conditions, _groups(conditions)))))

custom_values = st.fixed_dictionaries(
    {},
    optional={
        "score": st.one_of(halves, st.just("lots"), st.booleans()),
        "plan": st.one_of(words, st.just(3)),
        "interests": st.one_of(st.lists(st.sampled_from(OPTIONS), unique=True, max_size=3), st.just("ski")),
        "since": st.sampled_from(["2026-01-01", "2026-01-02", "2026-01-03", "soon"]),
        "ok": st.one_of(st.booleans(), st.just(1)),
    },
)
contacts = st.fixed_dictionaries(
    {
        "first_name": st.one_of(st.none(), words),
        "city": st.one_of(st.none(), st.just(""), words),
        "email": st.one_of(st.none(), st.sampled_from(["a%b@x.com", "ab_@x.com", "bob@x.com"])),
        "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=3),
        "dnd": st.booleans(),
        "dnd_channels": st.dictionaries(st.sampled_from(["sms", "email"]), st.booleans(), max_size=2),
        "custom_fields": custom_values,
        "created_at": moments,
        "last_activity_at": st.one_of(st.none(), moments),
        "assigned_user_id": st.one_of(st.none(), st.sampled_from(USERS)),
        "date_of_birth": st.one_of(st.none(), st.sampled_from([date(1990, 1, 1), date(1990, 1, 2)])),
    }
)


@pytest.fixture(scope="module")
def engine(migrated_url: str) -> Iterator[Engine]:
    built = create_engine(migrated_url)
    yield built
    built.dispose()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=filters, people=st.lists(contacts, max_size=8))
def test_sql_selects_what_python_selects(
    engine: Engine, raw: dict[str, Any], people: list[dict[str, Any]]
) -> None:
    tree = parse_filter(raw, CUSTOM)
    agency, location = uuid.uuid4(), uuid.uuid4()
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            conn.execute(text("INSERT INTO agencies (id, name) VALUES (:a, 'p')"), {"a": agency})
            conn.execute(
                text(
                    "INSERT INTO locations (id, agency_id, name, timezone, country, tier) "
                    "VALUES (:l, :a, 'p', 'UTC', 'US', 'pro')"
                ),
                {"l": location, "a": agency},
            )
            for person in people:
                contact = Contact(
                    id=uuid.uuid4(), location_id=location, updated_at=person["created_at"], **person
                )
                values = {column: getattr(contact, column) for column in _COLUMNS}
                conn.execute(insert(t.contacts).values(id=contact.id, location_id=location, **values))
            stored = [
                _from_row(r)
                for r in conn.execute(select(t.contacts).where(t.contacts.c.location_id == location))
            ]
            expected = {c.id for c in stored if matches(tree, c)}
            spec = SearchSpec(filter=tree)
            # The search reads the tenant-scoped view, which follows app.location_id like the policies.
            conn.execute(text("SELECT set_config('app.location_id', :l, true)"), {"l": str(location)})
            query = select(contacts_scoped.c.id).where(where_clause(location, spec))
            got = set(conn.execute(query).scalars())
        finally:
            trans.rollback()
    assert got == expected
