"""Finding contacts at scale: 1,000,000 contacts in one location and 100,000 in a second. Each case runs
three ways in the same process and the same run:

  API      POST /api/v1/contacts/search through the whole stack (in-process ASGI, API key, RLS, service)
  SQL      the statements the adapter sends (planner estimate + page query, which counts the matches
           when the estimate is small), on the app role in an RLS transaction, with no HTTP and no
           service around them
  minimal  a bare Litestar handler running those same statements (no auth, no validation)

    uv run python bench/contacts_1m.py                 # embedded PostgreSQL
    BENCH_CONTACTS=200000 uv run python bench/contacts_1m.py   # a smaller run
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from dependency_injector import providers
from litestar import Litestar, post
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from common import Timing, bench_database, measure

from ghl_adapters.container import build_container, close_container
from ghl_adapters.observability import configure_logging
from ghl_adapters.ratelimit import InMemoryRateLimiter
from ghl_adapters.settings import Settings
from ghl_adapters.sql.contact_search import (
    EXACT_COUNT_UP_TO,
    Explain,
    SqlContactSearch,
    count_statement,
    page_statement,
)
from ghl_core.contacts.filters import parse_filter
from ghl_core.contacts.models import Contact
from ghl_core.contacts.search import SearchPage, SearchSpec, Sort, search_tokens
from ghl_core.custom_fields.models import FieldType
from ghl_core.shared.pagination import encode_cursor
from ghl_core.tenancy.models import PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation
from ghl_http.app import create_app

BIG = int(os.environ.get("BENCH_CONTACTS", "1000000"))
SMALL = BIG // 10
N = int(os.environ.get("BENCH_N", "300"))
DEEP = min(50_000, BIG // 2)

FIRST_NAMES = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan "
    "Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony Margaret "
    "Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna José Zoë Janet Renée Björn Chloé"
)
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones García Miller Davis Rodríguez Martínez Hernández López González "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Pérez Thompson White Harris Sánchez Clark "
    "Ramírez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
    "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gómez Phillips Evans Turner Díaz Parker Cruz "
    "Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutiérrez Ortiz Morgan Cooper Peterson "
    "Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chávez Wood James Bennett Gray "
    "Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jiménez Powell"
)
COMPANY_NAMES = "Acme Globex Initech Umbrella Hooli Stark Wayne Wonka Tyrell Cyberdyne"
FIRST, LAST, COMPANIES = (names.split() for names in (FIRST_NAMES, LAST_NAMES, COMPANY_NAMES))

LOAD = """
INSERT INTO contacts (id, location_id, first_name, last_name, email, phone, company_name, tags,
                      custom_fields, dnd, created_at, updated_at, last_activity_at)
SELECT gen_random_uuid(), %(location)s,
       (%(first)s::text[])[1 + (i * 7919) %% cardinality(%(first)s::text[])],
       (%(last)s::text[])[1 + (i * 104729) %% cardinality(%(last)s::text[])],
       'user' || i || '.' || %(tag)s || '@example.com',
       '+1312' || lpad(i::text, 7, '0'),
       (%(companies)s::text[])[1 + i %% cardinality(%(companies)s::text[])] || ' ' || (i %% 997),
       CASE WHEN i %% 50 = 7 THEN ARRAY['newsletter', 'vip'] ELSE ARRAY['newsletter'] END,
       jsonb_build_object('plan', CASE WHEN i %% 100 = 3 THEN 'platinum'
                                        ELSE (ARRAY['gold', 'silver', 'bronze'])[1 + i %% 3] END,
                          'score', i %% 1000),
       i %% 40 = 0,
       %(start)s::timestamptz + i * interval '1 second',
       %(start)s::timestamptz + i * interval '1 second',
       CASE WHEN i %% 3 = 0 THEN NULL ELSE %(start)s::timestamptz + (i %% 86400) * interval '1 minute' END
FROM generate_series(1::bigint, %(n)s) AS i
"""


def load(owner_url: str, big: uuid.UUID, small: uuid.UUID) -> None:
    """Bulk load with the secondary indexes dropped and rebuilt afterwards (as a real bulk import would)."""
    url = make_url(owner_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'contacts' "
            "AND indexname <> 'contacts_pkey'"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("SET maintenance_work_mem = '512MB'")
        common = {"first": FIRST, "last": LAST, "companies": COMPANIES, "start": "2025-01-01T00:00:00Z"}
        for location, n, tag in ((big, BIG, "a"), (small, SMALL, "b")):
            started = time.perf_counter()
            conn.execute(LOAD, {**common, "location": location, "n": n, "tag": tag})
            print(f"  loaded {n:,} contacts in {time.perf_counter() - started:.1f} s", flush=True)
        for location in (big, small):
            for key, kind in (("plan", "single_option"), ("score", "number")):
                conn.execute(
                    "INSERT INTO custom_field_definitions (id, location_id, key, label, type) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (uuid.uuid4(), location, key, key, kind),
                )
        started = time.perf_counter()
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE contacts")
        print(f"  rebuilt {len(indexes)} indexes + VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")


CASES: dict[str, dict[str, Any]] = {
    "first page (newest 20)": {},
    f"deep page (after {DEEP:,} rows)": {"deep": True},
    "tag filter (2%), newest first": {"filter": {"field": "tags", "operator": "has_any", "value": ["vip"]}},
    "custom field eq (1%), newest first": {
        "filter": {"field": "custom_fields.plan", "operator": "eq", "value": "platinum"}
    },
    "name search 'janet', newest first": {"query": "janet"},
    "accent search 'jose garcia'": {"query": "jose garcia"},
    "phone search '(312) 000-0142'": {"query": "(312) 000-0142"},
    "accent search 'jose garcia', total: false": {"query": "jose garcia", "total": False},
}
CUSTOM = {"plan": FieldType.SINGLE_OPTION, "score": FieldType.NUMBER}


def request_of(body: dict[str, Any], after: tuple[str, str] | None) -> tuple[SearchSpec, SearchPage]:
    spec = SearchSpec(
        tokens=search_tokens(body.get("query")),
        filter=parse_filter(body["filter"], CUSTOM) if body.get("filter") else None,
        sort=Sort(),
    )
    return spec, SearchPage(limit=20, after=after)


async def run(url: str) -> None:
    settings = Settings(database_url=url, secret_key="bench-" + "x" * 40, _env_file=None)  # type: ignore[call-arg]
    configure_logging("WARNING")
    container = build_container(settings, url)
    ticks = itertools.count()
    container.rate_limiter.override(providers.Object(InMemoryRateLimiter(clock=lambda: float(next(ticks)))))
    operator = Actor.operator()
    agency = await container.tenancy().create_agency(operator, "Bench Agency")
    big = await container.tenancy().create_location(
        operator, NewLocation(name="Big", tier=PlanTier.ENTERPRISE), agency_id=agency.id
    )
    small = await container.tenancy().create_location(
        operator, NewLocation(name="Small", tier=PlanTier.ENTERPRISE), agency_id=agency.id
    )
    _, key = await container.api_keys().create(operator, "bench", location_id=big.id)
    headers = {"Authorization": f"Bearer {key}"}
    print(f"loading {BIG:,} + {SMALL:,} contacts ...", flush=True)
    await asyncio.to_thread(load, url, big.id, small.id)
    engines = container.engines()

    async with engines.owner.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT created_at, id FROM contacts WHERE location_id = :l AND deleted_at IS NULL "
                    "ORDER BY created_at DESC, id DESC OFFSET :o LIMIT 1"
                ),
                {"l": big.id, "o": DEEP - 1},
            )
        ).one()
    deep_after = (row.created_at.isoformat(), str(row.id))
    deep_cursor = encode_cursor(("created_at", "desc", row.created_at.isoformat(), str(row.id)))

    async def run_statements(spec: SearchSpec, page: SearchPage, with_total: bool = True) -> list[Any]:
        """The adapter's own statements (the estimate, then the page, counting the matches when the
        estimate is small; the page alone for `total: false`) in an RLS transaction, with nothing of
        the service or HTTP around them."""
        async with engines.app.connect() as conn, conn.begin():
            await conn.execute(text("SELECT set_config('app.location_id', :l, true)"), {"l": str(big.id)})
            search = SqlContactSearch(conn)
            if not with_total:
                return (await search.search(big.id, spec, page)).items
            return (await search.search_with_total(big.id, spec, page)).page.items

    async def show_plan(spec: SearchSpec, page: SearchPage, with_total: bool = True) -> None:
        """EXPLAIN ANALYZE of the page statement the adapter sends (with the count when it asks for one)."""
        async with engines.app.connect() as conn, conn.begin():
            await conn.execute(text("SELECT set_config('app.location_id', :l, true)"), {"l": str(big.id)})
            estimate = (await conn.execute(Explain(count_statement(big.id, spec)))).scalar_one()
            counted = with_total and int(estimate[0]["Plan"]["Plan Rows"]) <= EXACT_COUNT_UP_TO
            statement = page_statement(big.id, spec, page, with_total=counted)
            plan = (await conn.execute(Explain(statement, "ANALYZE, BUFFERS, FORMAT TEXT"))).scalars().all()
        for line in [*plan[:9], *(x for x in plan if x.startswith(("Planning Time", "Execution Time")))]:
            print(f"      {line}")

    prepared = {
        label: request_of(body, deep_after if body.get("deep") else None) for label, body in CASES.items()
    }

    @post("/minimal/{case:int}", status_code=200)
    async def minimal(case: int) -> list[Contact]:
        label, body = list(CASES.items())[case]
        return await run_statements(*prepared[label], body.get("total", True))

    bare = Litestar(route_handlers=[minimal], logging_config=None, debug=False)
    app = create_app(container, close_container_on_shutdown=False)
    results: list[tuple[str, Timing, Timing, Timing, int]] = []
    transport = httpx.ASGITransport(app=app)
    bare_transport = httpx.ASGITransport(app=bare)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client,
        httpx.AsyncClient(transport=bare_transport, base_url="http://bench.local") as bare_client,
    ):
        for index, (label, body) in enumerate(CASES.items()):
            request = {k: v for k, v in body.items() if k != "deep"}
            if body.get("deep"):
                request["cursor"] = deep_cursor
            check = await client.post("/api/v1/contacts/search", headers=headers, json=request)
            if check.status_code != 200:
                raise RuntimeError(check.text)
            found = check.json()

            async def api(request: dict[str, Any] = request) -> None:
                response = await client.post("/api/v1/contacts/search", headers=headers, json=request)
                if response.status_code != 200:
                    raise RuntimeError(response.text)

            async def sql(label: str = label, body: dict[str, Any] = body) -> None:
                await run_statements(*prepared[label], body.get("total", True))

            async def handler(index: int = index) -> None:
                response = await bare_client.post(f"/minimal/{index}")
                if response.status_code != 200:
                    raise RuntimeError(response.text)

            timings = (
                await measure(f"SQL: {label}", N, sql),
                await measure(f"minimal: {label}", N, handler),
                await measure(f"API: {label}", N, api),
            )
            for timing in timings:
                print(timing.line(), flush=True)
            print(
                f"   -> {len(found['items'])} items, total_estimate={found['total_estimate'] or 0:,} "
                f"(exact: {found['total_is_exact']})",
                flush=True,
            )
            results.append((label, *timings, found["total_estimate"] or 0))
            if os.environ.get("BENCH_PLANS", "1") == "1":
                await show_plan(*prepared[label], body.get("total", True))
    await close_container(container)
    print("\n| case | SQL p50 / p95 | minimal handler p50 / p95 | API p50 / p95 | API p95 / minimal p95 |")
    print("|---|---|---|---|---|")
    for label, sql_t, min_t, api_t, _ in results:
        print(
            f"| {label} | {_p(sql_t)} | {_p(min_t)} | **{_p(api_t)}** | "
            f"{_q(api_t, 95) / _q(min_t, 95):.1f}x |"
        )


def _q(timing: Timing, pct: int) -> float:
    ordered = sorted(timing.samples)
    return ordered[max(0, int(len(ordered) * pct / 100) - 1)] * 1000


def _p(timing: Timing) -> str:
    return f"{_q(timing, 50):.2f} / {_q(timing, 95):.2f} ms"


def main() -> None:
    started = time.perf_counter()
    with bench_database() as url:
        asyncio.run(run(url))
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
