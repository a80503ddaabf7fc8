"""Finding contacts through the API: search, filters, sorts, keyset pages, estimates and smart lists."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text

from ghl_adapters.container import Container
from ghl_adapters.sql import contact_search
from ghl_core.contacts.search import SearchPage, SearchSpec
from http_kit import API, Tenant, assert_problem, new_tenant, pointers

SEARCH = f"{API}/contacts/search"


async def add(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    response = await api.post(f"{API}/contacts", headers=tenant.headers, json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def search(api: httpx.AsyncClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = await api.post(SEARCH, headers=tenant.headers, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ids(result: dict[str, Any]) -> set[str]:
    return {item["id"] for item in result["items"]}


async def define_field(container: Container, tenant: Tenant, key: str, kind: str) -> None:
    async with container.engines().owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO custom_field_definitions (id, location_id, key, label, type) "
                "VALUES (:id, :loc, :key, :key, :type)"
            ),
            {"id": uuid.uuid4(), "loc": tenant.location_id, "key": key, "type": kind},
        )


async def set_fields(container: Container, contact_id: str, **values: Any) -> None:
    async with container.engines().owner.begin() as conn:
        await conn.execute(
            text(
                "UPDATE contacts SET last_activity_at = CAST(:last_activity_at AS timestamptz) WHERE id = :id"
            )
            if "last_activity_at" in values
            else text("UPDATE contacts SET custom_fields = CAST(:cf AS jsonb) WHERE id = :id"),
            {"id": contact_id, **values},
        )


async def test_search_tolerates_case_accents_partial_words_and_phone_formats(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    jose = await add(api, tenant, first_name="José", last_name="Núñez", email="jn@example.com")
    janet = await add(api, tenant, first_name="Janet", last_name="Smith", phone="+13125550142")
    acme = await add(api, tenant, first_name="Bob", company_name="ACME Widgets", email="bob@acmewidgets.com")
    assert ids(await search(api, tenant, query="jose")) == {jose["id"]}
    assert ids(await search(api, tenant, query="NUNEZ")) == {jose["id"]}
    assert ids(await search(api, tenant, query="jan")) == {janet["id"]}
    assert ids(await search(api, tenant, query="(312) 555-0142")) == {janet["id"]}
    assert ids(await search(api, tenant, query="555 0142")) == {janet["id"]}
    assert ids(await search(api, tenant, query="widg")) == {acme["id"]}
    assert ids(await search(api, tenant, query="bob@acme")) == {acme["id"]}
    assert ids(await search(api, tenant, query="janet smith")) == {janet["id"]}
    assert ids(await search(api, tenant, query="janet acme")) == set()
    # LIKE wildcards in a query are literal characters, not patterns.
    assert ids(await search(api, tenant, query="%")) == set()
    assert ids(await search(api, tenant, query="j_n")) == set()


async def test_filters_on_fields_tags_dnd_and_dates(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    a = await add(api, tenant, first_name="Ann", email="ann@example.com", tags=["vip", "lead"], dnd=True)
    b = await add(api, tenant, first_name="Bea", city="Austin", tags=["lead"], dnd_channels={"sms": True})
    c = await add(api, tenant, first_name="Cat", tags=[])
    await set_fields(container, c["id"], last_activity_at="2026-01-05T00:00:00+00:00")

    async def where(condition: dict[str, Any]) -> set[str]:
        return ids(await search(api, tenant, filter=condition))

    assert await where({"field": "tags", "operator": "has_any", "value": ["VIP", "nope"]}) == {a["id"]}
    assert await where({"field": "tags", "operator": "has_all", "value": ["vip", "lead"]}) == {a["id"]}
    assert await where({"field": "tags", "operator": "has_none", "value": ["lead"]}) == {c["id"]}
    assert await where({"field": "tags", "operator": "exists", "value": False}) == {c["id"]}
    assert await where({"field": "first_name", "operator": "eq", "value": "ann"}) == {a["id"]}
    assert await where({"field": "first_name", "operator": "starts_with", "value": "b"}) == {b["id"]}
    assert await where({"field": "first_name", "operator": "contains", "value": "A"}) == {
        a["id"],
        b["id"],
        c["id"],
    }
    assert await where({"field": "city", "operator": "neq", "value": "austin"}) == {a["id"], c["id"]}
    assert await where({"field": "email", "operator": "exists", "value": True}) == {a["id"]}
    assert await where({"field": "first_name", "operator": "in", "value": ["Ann", "Cat"]}) == {
        a["id"],
        c["id"],
    }
    assert await where({"field": "dnd", "operator": "eq", "value": True}) == {a["id"]}
    assert await where({"field": "dnd_channels.sms", "operator": "eq", "value": True}) == {b["id"]}
    activity = {"field": "last_activity_at", "operator": "between", "value": ["yesterday", "2026-02-01"]}
    problem = assert_problem(await api.post(SEARCH, headers=tenant.headers, json={"filter": activity}), 422)
    assert pointers(problem) == ["/filter/value/0"]
    activity["value"] = ["2026-01-01", "2026-02-01T00:00:00Z"]  # a bare date is midnight UTC
    assert await where(activity) == {c["id"]}
    assert await where({"field": "created_at", "operator": "lt", "value": "2000-01-01T00:00:00Z"}) == set()
    nested = {
        "or": [
            {
                "and": [
                    {"field": "tags", "operator": "has_any", "value": ["lead"]},
                    {"field": "dnd", "operator": "eq", "value": False},
                ]
            },
            {"field": "first_name", "operator": "eq", "value": "cat"},
        ]
    }
    assert await where(nested) == {b["id"], c["id"]}


async def test_custom_field_filters_compare_by_type(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    await define_field(container, tenant, "score", "number")
    await define_field(container, tenant, "plan", "single_option")
    await define_field(container, tenant, "interests", "multiple_options")
    low = await add(api, tenant, first_name="Low")
    high = await add(api, tenant, first_name="High")
    odd = await add(api, tenant, first_name="Odd")
    await set_fields(container, low["id"], cf='{"score": 9, "plan": "Gold", "interests": ["ski"]}')
    await set_fields(
        container, high["id"], cf='{"score": 10.5, "plan": "silver", "interests": ["ski", "golf"]}'
    )
    # A value left from an earlier definition type must not break the typed comparison.
    await set_fields(container, odd["id"], cf='{"score": "lots"}')

    async def where(condition: dict[str, Any]) -> set[str]:
        return ids(await search(api, tenant, filter=condition))

    assert await where({"field": "custom_fields.score", "operator": "gt", "value": 9.5}) == {high["id"]}
    assert await where({"field": "custom_fields.score", "operator": "between", "value": [1, 9]}) == {
        low["id"]
    }
    assert await where({"field": "custom_fields.score", "operator": "eq", "value": 9}) == {low["id"]}
    assert await where({"field": "custom_fields.score", "operator": "exists", "value": True}) == {
        low["id"],
        high["id"],
        odd["id"],
    }
    assert await where({"field": "custom_fields.plan", "operator": "eq", "value": "Gold"}) == {low["id"]}
    assert await where({"field": "custom_fields.plan", "operator": "contains", "value": "IL"}) == {high["id"]}
    assert await where(
        {"field": "custom_fields.interests", "operator": "has_all", "value": ["golf", "ski"]}
    ) == {high["id"]}
    assert await where({"field": "custom_fields.interests", "operator": "has_none", "value": ["golf"]}) == {
        low["id"],
        odd["id"],
    }


async def test_bad_filters_are_refused_with_pointers(api: httpx.AsyncClient, tenant: Tenant) -> None:
    body = {
        "query": "x" * 201,
        "filter": {
            "and": [
                {"field": "shoe_size", "operator": "eq", "value": 1},
                {"field": "email", "operator": "gt", "value": "a"},
                {"field": "tags", "operator": "has_any", "value": "vip"},
                {"field": "custom_fields.nope", "operator": "eq", "value": 1},
                {
                    "field": "created_at",
                    "operator": "between",
                    "value": ["2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"],
                },
                {"field": "assigned_user_id", "operator": "eq", "value": "not-a-uuid"},
                {"or": [{"field": "dnd", "operator": "eq", "value": "yes", "extra": 1}]},
            ]
        },
        "sort": [{"field": "phone", "direction": "sideways"}],
    }
    problem = assert_problem(
        await api.post(SEARCH, headers=tenant.headers, json=body), 422, "validation_failed"
    )
    assert pointers(problem) == sorted(
        [
            "/query",
            "/filter/and/0/field",
            "/filter/and/1/operator",
            "/filter/and/2/value",
            "/filter/and/3/field",
            "/filter/and/4/value",
            "/filter/and/5/value",
            "/filter/and/6/or/0/extra",
            "/filter/and/6/or/0/value",
            "/sort/0/field",
            "/sort/0/direction",
        ]
    )
    deep = {"and": [{"or": [{"and": [{"or": [{"field": "dnd", "operator": "eq", "value": True}]}]}]}]}
    problem = assert_problem(await api.post(SEARCH, headers=tenant.headers, json={"filter": deep}), 422)
    assert pointers(problem) == ["/filter/and/0/or/0/and/0/or"]
    many = {"or": [{"field": "dnd", "operator": "eq", "value": True}] * 51}
    problem = assert_problem(await api.post(SEARCH, headers=tenant.headers, json={"filter": many}), 422)
    assert pointers(problem) == ["/filter/or"]
    two_sorts = {"sort": [{"field": "email"}, {"field": "created_at"}]}
    assert pointers(assert_problem(await api.post(SEARCH, headers=tenant.headers, json=two_sorts), 422)) == [
        "/sort/1"
    ]
    limit = assert_problem(await api.post(SEARCH, headers=tenant.headers, json={"limit": 0}), 422)
    assert pointers(limit) == ["/limit"]
    unknown = assert_problem(await api.post(SEARCH, headers=tenant.headers, json={"filters": {}}), 422)
    assert pointers(unknown) == ["/filters"]


async def test_keyset_pages_cover_every_contact_once_in_each_sort(
    api: httpx.AsyncClient, container: Container
) -> None:
    tenant = await new_tenant(container)
    names = ["bob", "Ann", None, "cy", "ann", "Dee", None, "eve"]
    made = [
        await add(api, tenant, first_name=n, last_name="Pager", email=f"p{i}@example.com")
        for i, n in enumerate(names)
    ]
    for field in ("created_at", "updated_at", "last_activity_at", "first_name", "last_name", "email"):
        for direction in ("asc", "desc"):
            seen: list[str] = []
            cursor = None
            while True:
                page = await search(
                    api, tenant, sort=[{"field": field, "direction": direction}], limit=3, cursor=cursor
                )
                seen += [item["id"] for item in page["items"]]
                assert page["total_estimate"] == len(made)
                assert page["total_is_exact"] is True
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert sorted(seen) == sorted(m["id"] for m in made), (field, direction)
    by_name = await search(api, tenant, sort=[{"field": "first_name", "direction": "asc"}], limit=100)
    firsts = [(item["first_name"] or "").lower() for item in by_name["items"]]
    assert firsts == ["", "", "ann", "ann", "bob", "cy", "dee", "eve"]
    # A cursor continues only the sort it came from.
    page = await search(api, tenant, sort=[{"field": "email", "direction": "asc"}], limit=2)
    other = await api.post(SEARCH, headers=tenant.headers, json={"cursor": page["next_cursor"], "limit": 2})
    assert pointers(assert_problem(other, 422)) == ["/cursor"]
    forged = await api.post(SEARCH, headers=tenant.headers, json={"cursor": "bm9wZQ"})
    assert pointers(assert_problem(forged, 422)) == ["/cursor"]


async def test_search_never_shows_another_tenants_or_deleted_contacts(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await add(api, tenant, first_name="Zelda", last_name="Unique")
    theirs = await add(api, other_tenant, first_name="Zelda", last_name="Unique")
    gone = await add(api, tenant, first_name="Zelda", last_name="Unique", email="gone@example.com")
    await api.delete(f"{API}/contacts/{gone['id']}", headers=tenant.headers)
    assert ids(await search(api, tenant, query="zelda unique")) == {mine["id"]}
    assert ids(await search(api, other_tenant, query="zelda unique")) == {theirs["id"]}


async def test_estimate_is_marked_and_counts_small_results(
    api: httpx.AsyncClient, container: Container
) -> None:
    tenant = await new_tenant(container)
    for i in range(3):
        await add(api, tenant, first_name=f"Est{i}", tags=["est"])
    result = await search(
        api, tenant, filter={"field": "tags", "operator": "has_any", "value": ["est"]}, limit=2
    )
    assert (result["total_estimate"], result["total_is_exact"], len(result["items"])) == (3, True, 2)
    assert result["next_cursor"]


async def test_smart_lists_save_run_change_and_delete(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, container: Container
) -> None:
    vip = await add(api, tenant, first_name="Vic", tags=["smart-vip"])
    await add(api, tenant, first_name="Nope", tags=["other"])
    body = {
        "name": "VIPs",
        "filter": {"field": "tags", "operator": "has_any", "value": ["smart-vip"]},
        "sort": [{"field": "first_name", "direction": "asc"}],
    }
    created = await api.post(f"{API}/smart-lists", headers=tenant.headers, json=body)
    assert created.status_code == 201, created.text
    smart = created.json()
    url = f"{API}/smart-lists/{smart['id']}"
    contacts = (await api.get(f"{url}/contacts", headers=tenant.headers)).json()
    assert ids(contacts) == {vip["id"]}
    assert contacts["total_is_exact"] is True
    duplicate = await api.post(f"{API}/smart-lists", headers=tenant.headers, json={**body, "name": "vips"})
    assert_problem(duplicate, 409, "duplicate_smart_list")
    renamed = await api.patch(url, headers=tenant.headers, json={"name": "Top", "query": "nope"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Top"
    assert ids((await api.get(f"{url}/contacts", headers=tenant.headers)).json()) == set()
    listed = (await api.get(f"{API}/smart-lists", headers=tenant.headers)).json()
    assert smart["id"] in [item["id"] for item in listed["items"]]
    bad = await api.patch(
        url, headers=tenant.headers, json={"filter": {"field": "x", "operator": "eq", "value": 1}}
    )
    assert pointers(assert_problem(bad, 422)) == ["/filter/field"]
    assert_problem(await api.post(f"{API}/smart-lists", headers=tenant.headers, json={"filter": None}), 422)
    for method in ("get", "delete"):
        assert_problem(await api.request(method.upper(), url, headers=other_tenant.headers), 404)
    assert_problem(await api.get(f"{url}/contacts", headers=other_tenant.headers), 404)
    assert (await api.delete(url, headers=tenant.headers)).status_code == 204
    assert_problem(await api.get(url, headers=tenant.headers), 404)
    async with container.engines().owner.connect() as conn:
        events = (
            (
                await conn.execute(
                    text("SELECT type FROM domain_events WHERE entity_id = :i ORDER BY occurred_at"),
                    {"i": smart["id"]},
                )
            )
            .scalars()
            .all()
        )
        audits = (
            (
                await conn.execute(
                    text("SELECT action FROM audit_log WHERE entity_id = :i ORDER BY created_at"),
                    {"i": smart["id"]},
                )
            )
            .scalars()
            .all()
        )
    assert list(events) == ["smart_list.created", "smart_list.updated", "smart_list.deleted"]
    assert list(audits) == ["create", "update", "delete"]


async def test_racing_smart_lists_with_one_name_make_one(api: httpx.AsyncClient, tenant: Tenant) -> None:
    body = {"name": f"Race {uuid.uuid4().hex[:6]}"}
    responses = await asyncio.gather(
        *(api.post(f"{API}/smart-lists", headers=tenant.headers, json=body) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]


# --- Full-text search (migration 0009): word prefixes from the tsvector, with or without pg_trgm ---


@pytest.fixture(params=["trigram", "words only"])
def trigram_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with the server's own answer, and again as on a server without pg_trgm."""
    mode: str = request.param
    if mode == "words only":

        async def absent(conn: object) -> bool:
            return False

        monkeypatch.setattr(contact_search, "has_trigram_index", absent)
    return mode


async def people(api: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    made = {
        "jane_doe": await add(
            api, tenant, first_name="Jane", last_name="Doe", email="jane.doe@example.com", company_name="Acme"
        ),
        "john_doe": await add(api, tenant, first_name="John", last_name="Doe", company_name="Globex"),
        "jane_roe": await add(api, tenant, first_name="Jane", last_name="Roe", company_name="ACME Widgets"),
        "renee": await add(api, tenant, first_name="Renée", last_name="Müller"),
        "andre": await add(api, tenant, first_name="Andre", last_name="Lopez"),
        "mary": await add(api, tenant, first_name="M", email="mary-ann.o_neil+crm@mail.example.org"),
    }
    return {name: contact["id"] for name, contact in made.items()}


async def test_several_words_match_in_any_order_and_any_field(
    api: httpx.AsyncClient, tenant: Tenant, trigram_mode: str
) -> None:
    p = await people(api, tenant)

    async def found(query: str) -> set[str]:
        return ids(await search(api, tenant, query=query))

    assert await found("jane doe") == {p["jane_doe"]}
    assert await found("doe jane") == {p["jane_doe"]}
    assert await found("DOE   Jane") == {p["jane_doe"]}
    assert await found("acme jane") == {p["jane_doe"], p["jane_roe"]}
    assert await found("jane acme widgets") == {p["jane_roe"]}
    assert await found("doe") == {p["jane_doe"], p["john_doe"]}
    assert await found("jane globex") == set()
    # Every word may be the start of a word.
    assert await found("ja do") == {p["jane_doe"]}
    assert await found("j") == {p["jane_doe"], p["john_doe"], p["jane_roe"]}
    assert await found("glob") == {p["john_doe"]}
    assert await found("janex") == set()


async def test_accents_are_ignored_on_both_sides(
    api: httpx.AsyncClient, tenant: Tenant, trigram_mode: str
) -> None:
    p = await people(api, tenant)

    async def found(query: str) -> set[str]:
        return ids(await search(api, tenant, query=query))

    assert await found("renee") == {p["renee"]}
    assert await found("MULLER ren") == {p["renee"]}
    assert await found("René") == {p["renee"]}
    assert await found("andré lópez") == {p["andre"]}


async def test_email_is_found_by_its_parts_and_whole(
    api: httpx.AsyncClient, tenant: Tenant, trigram_mode: str
) -> None:
    p = await people(api, tenant)

    async def found(query: str) -> set[str]:
        return ids(await search(api, tenant, query=query))

    for query in (
        "mary",
        "ann mary",
        "neil",
        "o_neil",
        "crm",
        "mary-ann.o",
        "mail.example",
        "jane.doe@example.com",
        "mary-ann.o_neil+crm@mail.example.org",
    ):
        expected = {p["jane_doe"]} if query.startswith("jane") else {p["mary"]}
        assert await found(query) == expected, query
    assert await found("example") == {p["jane_doe"], p["mary"]}
    # Words joined by punctuation must follow each other: "o" and "neil" do, "neil" and "mary" do not.
    assert await found("neil.mary") == set()


async def test_tsquery_operators_in_a_query_are_plain_characters(
    api: httpx.AsyncClient, tenant: Tenant, trigram_mode: str
) -> None:
    p = await people(api, tenant)

    async def found(query: str) -> set[str]:
        return ids(await search(api, tenant, query=query))

    for query in ("a & b | !c :*", "'", "''", "\\", "(", ")", "<->", "!", ":*", "a:*b", "x' | 'y", "\\'"):
        assert await found(query) == set(), query
    # Operator characters around a word are dropped; the word still matches as a prefix.
    for query in ("!jane", "jane:*", "(jane)", "jane|", "'jane'", "jane\\"):
        assert await found(query) == {p["jane_doe"], p["jane_roe"]}, query
    assert await found("!jane & doe") == set()  # "&" alone is a token of no word


async def test_without_pg_trgm_word_searches_find_the_same_contacts(
    api: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await people(api, tenant)
    queries = ("jane doe", "doe jane", "acme jane", "ren", "müller", "mary-ann.o", "example", "glob", "zzz")
    with_server = [ids(await search(api, tenant, query=q)) for q in queries]

    async def absent(conn: object) -> bool:
        return False

    monkeypatch.setattr(contact_search, "has_trigram_index", absent)
    without = [ids(await search(api, tenant, query=q)) for q in queries]
    assert without == with_server
    assert with_server[0] == {p["jane_doe"]}
    # Only the trigram index finds text inside a word.
    assert ids(await search(api, tenant, query="idgets")) == set()
    assert ids(await search(api, tenant, query="ohn")) == set()


async def test_inside_word_matches_follow_the_trigram_index(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    p = await people(api, tenant)
    async with container.engines().owner.connect() as conn:
        available = (
            await conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'"))
        ).scalar_one() == 1
        assert await contact_search.has_trigram_index(conn) is available
    inside = ids(await search(api, tenant, query="idgets"))
    assert inside == ({p["jane_roe"]} if available else set())


async def test_a_word_reaches_to_tsquery_quoted_as_one_operand(container: Container) -> None:
    """Queries are split on punctuation before this point; the quoting still holds on its own."""
    async with container.engines().owner.connect() as conn:
        for word in ("a & b | !c :*", "it's", "back\\slash", "'", "x') | ('y", "Ünïcode"):
            query = contact_search._word_query(word, prefix=True)
            await conn.execute(select(query))
        document = func.to_tsvector("simple", "a b c")
        for word, hit in (("c | z", False), ("!b", True), ("a & !b", True)):
            matched = select(document.bool_op("@@")(contact_search._word_query(word, prefix=True)))
            assert (await conn.execute(matched)).scalar_one() is hit, word


async def test_totals_whether_the_planner_expects_few_matches_or_many(
    api: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await new_tenant(container)
    made = [await add(api, tenant, first_name=f"Tot{i}", tags=["tot"]) for i in range(5)]
    tagged = {"field": "tags", "operator": "has_any", "value": ["tot"]}

    # Few expected: the page statement counts every match, on each page of a cursor walk too.
    monkeypatch.setattr(contact_search, "EXACT_COUNT_UP_TO", 10**9)
    cursor, seen = None, 0
    while True:
        page = await search(api, tenant, filter=tagged, limit=2, cursor=cursor)
        assert (page["total_estimate"], page["total_is_exact"]) == (5, True)
        seen += len(page["items"])
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == 5
    # A cursor past the last match (the rows after it deleted since): counted apart.
    first = await search(api, tenant, filter=tagged, limit=4)
    await api.delete(f"{API}/contacts/{made[0]['id']}", headers=tenant.headers)
    past = await search(api, tenant, filter=tagged, limit=4, cursor=first["next_cursor"])
    assert (past["items"], past["total_estimate"], past["total_is_exact"]) == ([], 4, True)

    # Many expected: a first page that holds every match is its own exact total; otherwise the
    # planner's figure, marked as an estimate.
    monkeypatch.setattr(contact_search, "EXACT_COUNT_UP_TO", -1)
    whole = await search(api, tenant, filter=tagged, limit=10)
    assert (len(whole["items"]), whole["total_estimate"], whole["total_is_exact"]) == (4, 4, True)
    part = await search(api, tenant, filter=tagged, limit=2)
    assert part["total_is_exact"] is False
    assert part["total_estimate"] >= 0


async def test_search_statements_are_never_prepared_on_the_server(
    container: Container, tenant: Tenant
) -> None:
    """A prepared statement may get a generic plan, blind to the LIKE pattern or tag bound in it."""
    spec = SearchSpec(tokens=("zed",), filter=None)
    async with container.engines().app.connect() as conn, conn.begin():
        await conn.execute(
            text("SELECT set_config('app.location_id', :l, true)"), {"l": str(tenant.location_id)}
        )
        search_port = contact_search.SqlContactSearch(conn)
        for _ in range(8):  # past psycopg's prepare_threshold (5)
            await search_port.search_with_total(tenant.location_id, spec, SearchPage(limit=2))
            await search_port.search(tenant.location_id, spec, SearchPage(limit=2))
        prepared = text("SELECT statement FROM pg_prepared_statements")
        assert (await conn.execute(prepared)).scalars().all() == []
        # Only the search's own statements: the connection prepares others as before.
        for _ in range(8):
            await conn.execute(text("SELECT 1 AS one"))
        assert "SELECT 1 AS one" in (await conn.execute(prepared)).scalars().all()


async def test_a_search_may_leave_the_total_out(
    api: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await new_tenant(container)
    made = [await add(api, tenant, first_name=f"Untotalled{i}") for i in range(3)]
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = container.engines().app.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        counted = await search(api, tenant, query="untotalled", limit=2)
        explained = [s for s in statements if s.startswith("EXPLAIN")]
        statements.clear()
        bare = await search(api, tenant, query="untotalled", limit=2, total=False)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert (counted["total_estimate"], counted["total_is_exact"]) == (3, True)
    assert (bare["total_estimate"], bare["total_is_exact"]) == (None, None)
    assert ids(bare) == ids(counted)
    assert len(ids(bare)) == 2
    assert bare["next_cursor"] == counted["next_cursor"]
    assert len(explained) == 1
    assert [s for s in statements if "contacts_scoped" in s] == [statements[-1]]
    assert not statements[-1].startswith("EXPLAIN")
    rest = await search(api, tenant, query="untotalled", cursor=bare["next_cursor"], total=False)
    assert ids(rest) | ids(bare) == {m["id"] for m in made}
    wrong = await api.post(SEARCH, headers=tenant.headers, json={"total": "maybe"})
    assert pointers(assert_problem(wrong, 422)) == ["/total"]
