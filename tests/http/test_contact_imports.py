"""Contact import and export through the API: messy CSV, the error report, idempotent re-runs, tenancy."""

from __future__ import annotations

import asyncio
import csv
import io
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_adapters.uploads import UploadSpool
from ghl_core.contacts.csv_rows import CsvRow
from ghl_core.contacts.import_models import ContactImport, ImportOptions, ImportStatus
from ghl_core.tenancy.permissions import Actor
from http_kit import API, Tenant, assert_problem, pointers

# Imports over the API run as jobs: a worker runs them beside each test.
pytestmark = pytest.mark.usefixtures("import_worker")


def csv_headers(tenant: Tenant) -> dict[str, str]:
    return {**tenant.headers, "Content-Type": "text/csv"}


async def run_import(
    api: httpx.AsyncClient, tenant: Tenant, body: str | bytes, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    started = await api.post(
        f"{API}/contacts/imports", headers=csv_headers(tenant), content=body, params=params or {}
    )
    assert started.status_code == 202, started.text
    assert started.headers["location"] == f"{API}/contacts/imports/{started.json()['id']}"
    for _ in range(300):
        polled = await api.get(started.headers["location"], headers=tenant.headers, params={"errors": 100})
        assert polled.status_code == 200, polled.text
        if polled.json()["status"] in ("done", "failed"):
            result: dict[str, Any] = polled.json()
            return result
        await asyncio.sleep(0.1)
    raise AssertionError("the import never finished")


async def all_contacts(api: httpx.AsyncClient, tenant: Tenant) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = (await api.get(f"{API}/contacts", headers=tenant.headers, params=params)).json()
        items += page["items"]
        if not page["next_cursor"]:
            return items
        params["cursor"] = page["next_cursor"]


def tag() -> str:
    return uuid.uuid4().hex[:8]


MESSY = (
    "\ufeffFirst Name;Last Name;Email Address;Mobile Phone Number;Company;Zip;Lifecycle Stage;"
    "Favourite Colour\n"
    'Ann;Lee;ANN@Example.com;(312) 555-0101;"Acme; Inc";60601;lead;blue\n'  # line 2
    "Bob;Bad;not-an-email;(312) 555-0102;;;;\n"  # line 3: bad e-mail
    "\n"  # line 4: blank
    'Cy;"Multi\nLine";cy@example.com;12;;;;\n'  # lines 5-6: quoted newline, bad phone
    "Ann;Lee;ann@example.com;(312) 555-0101;Acme; Inc;60601;lead;blue\n"  # line 7: too many values
    'Ann;Lee;ann@example.com;(312) 555-0101;"Acme; Inc";60601;lead;blue\n'  # line 8: same as line 2
    f"Dee;{'x' * 600};dee@example.com;;;;;\n"  # line 9: huge value
    "Eve;;eve@example.com;;;;customer;\n"  # line 10
)


async def test_messy_csv_imports_good_rows_and_reports_bad_ones(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    result = await run_import(api, tenant, MESSY.encode(), {"tag": ["Imported"]})
    assert result["status"] == "done", result
    assert result["mapping"] == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Email Address": "email",
        "Mobile Phone Number": "phone",
        "Company": "company_name",
        "Zip": "postal_code",
        "Lifecycle Stage": "tags",
    }
    assert result["counters"] == {"processed": 7, "created": 2, "updated": 0, "skipped": 1, "failed": 4}
    errors = {e["line"]: e["reason"] for e in result["errors"]}
    assert sorted(errors) == [3, 5, 7, 9]
    assert errors[3].startswith("Email Address: is not a valid e-mail address")
    assert errors[5].startswith("Mobile Phone Number:")
    assert "header has 8 columns" in errors[7]
    assert errors[9].startswith("Last Name: must be printable and at most 500")
    contacts = {c["email"]: c for c in await all_contacts(api, tenant)}
    assert set(contacts) == {"ann@example.com", "eve@example.com"}
    ann = contacts["ann@example.com"]
    assert (ann["phone"], ann["company_name"], ann["postal_code"]) == ("+13125550101", "Acme; Inc", "60601")
    assert sorted(ann["tags"]) == ["imported", "lead"]
    assert sorted(contacts["eve@example.com"]["tags"]) == ["customer", "imported"]
    report = await api.get(f"{API}/contacts/imports/{result['id']}/errors.csv", headers=tenant.headers)
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(report.text)))
    assert rows[0] == ["line", "reason"]
    assert [int(r[0]) for r in rows[1:]] == [3, 5, 7, 9]
    async with container.engines().owner.connect() as conn:
        audit = await conn.scalar(
            text("SELECT count(*) FROM audit_log WHERE location_id = :l AND entity_type = 'contact'"),
            {"l": tenant.location_id},
        )
        events = await conn.scalar(
            text("SELECT count(*) FROM domain_events WHERE location_id = :l AND type = 'contact.created'"),
            {"l": tenant.location_id},
        )
    assert (audit, events) == (2, 2)


async def test_rerunning_the_same_file_changes_nothing(api: httpx.AsyncClient, tenant: Tenant) -> None:
    first = await run_import(api, tenant, MESSY.encode(), {"tag": ["Imported"]})
    before = await all_contacts(api, tenant)
    again = await run_import(api, tenant, MESSY.encode(), {"tag": ["Imported"]})
    assert again["counters"] == {"processed": 7, "created": 0, "updated": 0, "skipped": 3, "failed": 4}
    assert [e["line"] for e in again["errors"]] == [e["line"] for e in first["errors"]]
    assert await all_contacts(api, tenant) == before


async def test_existing_contact_is_updated_skipped_or_refused_by_policy(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    made = await api.post(
        f"{API}/contacts", headers=tenant.headers, json={"email": "kim@example.com", "tags": ["old"]}
    )
    assert made.status_code == 201
    body = "email,first_name,tags\nkim@example.com,Kim,new\n"
    skipped = await run_import(api, tenant, body, {"duplicate_policy": "skip"})
    assert skipped["counters"]["skipped"] == 1
    refused = await run_import(api, tenant, body, {"duplicate_policy": "create"})
    assert refused["counters"]["failed"] == 1
    assert "does not allow duplicates" in refused["errors"][0]["reason"]
    updated = await run_import(api, tenant, body, {"duplicate_policy": "update"})
    assert updated["counters"] == {"processed": 1, "created": 0, "updated": 1, "skipped": 0, "failed": 0}
    kim = (await api.get(f"{API}/contacts/{made.json()['id']}", headers=tenant.headers)).json()
    assert (kim["first_name"], sorted(kim["tags"])) == (
        "Kim",
        ["new", "old"],
    )  # tags are added, never removed
    assert len(await all_contacts(api, tenant)) == 1


async def test_bad_options_are_refused_with_pointers(api: httpx.AsyncClient, tenant: Tenant) -> None:
    body = "Email,Notes\na@example.com,x\n"
    bad = await api.post(
        f"{API}/contacts/imports",
        headers=csv_headers(tenant),
        content=body,
        params={"mapping": ["Notes=favourite_food", "Missing=email"], "tag": ["  "]},
    )
    problem = assert_problem(bad, 422, "validation_failed")
    assert pointers(problem) == ["/tags/0"]
    bad_map = await api.post(
        f"{API}/contacts/imports",
        headers=csv_headers(tenant),
        content=body,
        params={"mapping": ["Notes=favourite_food", "Missing=email"]},
    )
    assert pointers(assert_problem(bad_map, 422)) == ["/mapping/Missing", "/mapping/Notes"]
    nothing = await api.post(
        f"{API}/contacts/imports", headers=csv_headers(tenant), content="Colour,Size\nred,L\n"
    )
    assert pointers(assert_problem(nothing, 422)) == ["/mapping"]
    policy = await api.post(
        f"{API}/contacts/imports",
        headers=csv_headers(tenant),
        content=body,
        params={"duplicate_policy": "merge"},
    )
    assert_problem(policy, 422)
    assert await all_contacts(api, tenant) == []


async def test_explicit_mapping_and_multipart_upload(api: httpx.AsyncClient, tenant: Tenant) -> None:
    body = "Who,Mail,Ignored Email\nZed Zulu,zed@example.com,other@example.com\n"
    started = await api.post(
        f"{API}/contacts/imports",
        headers=tenant.headers,
        files={"file": ("people.csv", body.encode(), "text/csv")},
        data={"mapping": ["Who=name", "Mail=email", "Ignored Email="], "duplicate_policy": "skip"},
    )
    assert started.status_code == 202, started.text
    assert started.json()["filename"] == "people.csv"
    assert started.json()["mapping"] == {"Who": "name", "Mail": "email"}
    for _ in range(200):
        job = (await api.get(started.headers["location"], headers=tenant.headers)).json()
        if job["status"] == "done":
            break
        await asyncio.sleep(0.02)
    assert job["counters"]["created"] == 1
    (zed,) = await all_contacts(api, tenant)
    assert (zed["first_name"], zed["last_name"], zed["email"]) == ("Zed", "Zulu", "zed@example.com")


async def test_another_tenants_import_is_not_found(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    result = await run_import(api, tenant, "email\nx@example.com\n")
    for url in (
        f"{API}/contacts/imports/{result['id']}",
        f"{API}/contacts/imports/{result['id']}/errors.csv",
    ):
        assert_problem(await api.get(url, headers=other_tenant.headers), 404, "not_found")
    assert_problem(await api.get(f"{API}/contacts/imports/{uuid.uuid4()}", headers=tenant.headers), 404)


async def test_export_round_trip_into_another_location(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    label = tag()
    for i in range(5):
        response = await api.post(
            f"{API}/contacts",
            headers=tenant.headers,
            json={
                "first_name": f"P{i}",
                "last_name": "Round",
                "email": f"p{i}@example.com",
                "phone": f"(312) 555-01{i:02d}",
                "tags": [label, "trip"] if i % 2 == 0 else ["trip"],
                "dnd_channels": {"sms": i == 1},
                "attribution": {"utm_source": "google"},
                "date_of_birth": "1990-02-01",
                "city": "Chicago",
            },
        )
        assert response.status_code == 201, response.text
    exported = await api.get(f"{API}/contacts/export", headers=tenant.headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(exported.text)))) == 5
    only_tag = await api.get(f"{API}/contacts/export", headers=tenant.headers, params={"tag": label.upper()})
    assert sorted(r["email"] for r in csv.DictReader(io.StringIO(only_tag.text))) == [
        "p0@example.com",
        "p2@example.com",
        "p4@example.com",
    ]
    result = await run_import(api, other_tenant, exported.content)
    assert result["counters"] == {"processed": 5, "created": 5, "updated": 0, "skipped": 0, "failed": 0}
    keep = (
        "first_name",
        "last_name",
        "email",
        "phone",
        "tags",
        "dnd_channels",
        "attribution",
        "date_of_birth",
        "city",
    )

    def shape(contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(
            ({k: sorted(c[k]) if k == "tags" else c[k] for k in keep} for c in contacts),
            key=lambda c: c["email"],
        )

    assert shape(await all_contacts(api, other_tenant)) == shape(await all_contacts(api, tenant))
    assert_problem(await api.get(f"{API}/contacts/export", headers={}), 401)


async def test_concurrent_imports_of_one_file_create_each_contact_once(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = "email,first_name\n" + "".join(f"racer{i}@example.com,R{i}\n" for i in range(60))
    first, second = await asyncio.gather(run_import(api, tenant, body), run_import(api, tenant, body))
    assert first["counters"]["created"] + second["counters"]["created"] == 60
    assert first["counters"]["failed"] == second["counters"]["failed"] == 0
    assert len(await all_contacts(api, tenant)) == 60


async def _records(container: Container, contact_id: str) -> tuple[list[Any], list[Any]]:
    async with container.engines().owner.connect() as conn:
        audit = (
            await conn.execute(
                text(
                    "SELECT action, jsonb_typeof(before), before, after, actor_id FROM audit_log "
                    "WHERE entity_id = :c ORDER BY created_at, action"
                ),
                {"c": contact_id},
            )
        ).all()
        events = (
            await conn.execute(
                text(
                    "SELECT type, payload FROM domain_events WHERE entity_id = :c ORDER BY occurred_at, type"
                ),
                {"c": contact_id},
            )
        ).all()
    return [tuple(r) for r in audit], [tuple(r) for r in events]


async def test_batch_writes_store_what_the_api_stores(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    # The set-based batch writes (bound arrays, JSON carried as one document) against the per-row API.
    made = await api.post(
        f"{API}/contacts",
        headers=tenant.headers,
        json={
            "first_name": "Api",
            "email": "api@example.com",
            "tags": ["zeta", "alpha", "mid"],
            "dnd_channels": {"sms": True},
        },
    )
    assert made.status_code == 201, made.text
    body = 'first_name,email,tags,dnd_sms\nCsv,csv@example.com,"zeta, alpha, mid",yes\n'
    created = await run_import(api, tenant, body)
    assert created["counters"]["created"] == 1, created
    by_email = {c["email"]: c for c in await all_contacts(api, tenant)}
    api_made, imported = by_email["api@example.com"], by_email["csv@example.com"]
    for key in ("tags", "dnd", "dnd_channels", "attribution", "custom_fields", "phone", "date_of_birth"):
        assert imported[key] == api_made[key], key
    assert imported["tags"] == ["zeta", "alpha", "mid"]  # in the file's order
    (api_audit, _), (csv_audit, csv_events) = (
        await _records(container, api_made["id"]),
        await _records(container, imported["id"]),
    )
    assert [a[:2] for a in csv_audit] == [a[:2] for a in api_audit] == [("create", "null")]
    assert csv_audit[0][3]["tags"] == api_audit[0][3]["tags"]
    assert csv_audit[0][4] is not None
    assert [(e[0], e[1]["before"], e[1]["after"]["email"]) for e in csv_events] == [
        ("contact.created", None, "csv@example.com")
    ]
    # An update: one audit row with both states, an event per kind of change.
    body = "email,tags,dnd_sms,city\ncsv@example.com,new,no,Chicago\n"
    updated = await run_import(api, tenant, body)
    assert updated["counters"]["updated"] == 1, updated
    csv_audit, csv_events = await _records(container, imported["id"])
    assert [a[:2] for a in csv_audit] == [("create", "null"), ("update", "object")]
    before, after = csv_audit[1][2], csv_audit[1][3]
    assert (before["city"], after["city"]) == (None, "Chicago")
    assert sorted(after["tags"]) == ["alpha", "mid", "new", "zeta"]
    assert sorted(e[0] for e in csv_events) == [
        "contact.created",
        "contact.dnd_changed",
        "contact.tag_added",
        "contact.updated",
    ]
    changed = {e[0]: e[1] for e in csv_events}
    assert changed["contact.tag_added"]["tags"] == ["new"]
    assert changed["contact.updated"]["fields"] == ["city"]
    stored = (await api.get(f"{API}/contacts/{imported['id']}", headers=tenant.headers)).json()
    assert (stored["city"], stored["dnd_channels"], stored["tags"]) == (
        "Chicago",
        {"sms": False},
        ["zeta", "alpha", "mid", "new"],
    )


async def test_a_row_changing_a_contact_created_earlier_in_its_batch_is_written_as_it_ended_up(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    # New contacts' rows are made ahead of their batch; a later row of the same batch that changes one
    # (update policy) must not leave the rows made for its first state.
    body = (
        "email,first_name,city,tags\n"
        "lin@example.com,Lin,,first\n"
        "other@example.com,Other,,\n"
        "lin@example.com,,Chicago,second\n"
    )
    result = await run_import(api, tenant, body)
    assert result["counters"] == {"processed": 3, "created": 2, "updated": 1, "skipped": 0, "failed": 0}
    lin = {c["email"]: c for c in await all_contacts(api, tenant)}["lin@example.com"]
    assert (lin["first_name"], lin["city"], lin["tags"]) == ("Lin", "Chicago", ["first", "second"])
    audit, events = await _records(container, lin["id"])
    assert [a[0] for a in audit] == ["create"]
    assert (audit[0][3]["city"], audit[0][3]["tags"]) == ("Chicago", ["first", "second"])
    assert [e[0] for e in events] == ["contact.created"]
    assert events[0][1]["after"] == audit[0][3]


async def _manual_analyses(container: Container) -> int:
    async with container.engines().owner.connect() as conn:
        count = await conn.scalar(
            text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'contacts'")
        )
    return int(count or 0)


async def test_a_growing_import_refreshes_the_planner_statistics(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, monkeypatch: Any
) -> None:
    # Without fresh statistics, a location grown by an import looks empty to the planner and the match
    # look-up reads all its contacts (docs/benchmarks.md): the import ANALYZEs as it grows.
    from ghl_core.contacts import imports

    monkeypatch.setattr(imports, "STATISTICS_FIRST", 20)
    before = await _manual_analyses(container)
    small = await run_import(api, tenant, "email\n" + "".join(f"few{i}@example.com\n" for i in range(10)))
    assert small["counters"]["created"] == 10, small
    body = "email\n" + "".join(f"grow{i}@example.com\n" for i in range(50))
    grown = await run_import(api, tenant, body)
    assert grown["counters"]["created"] == 50, grown
    for _ in range(50):  # the server publishes a session's statistics within a second or so
        if await _manual_analyses(container) > before:
            break
        await asyncio.sleep(0.1)
    assert await _manual_analyses(container) == before + 1


class _Rows:
    """A file of distinct e-mail addresses, which the import reads twice (who is who, then its batches);
    with `fail_after`, reading it the `failing_read`th time fails at that row."""

    def __init__(self, prefix: str, n: int, fail_after: int | None = None, failing_read: int = 2) -> None:
        self.prefix, self.n, self.fail_after, self.failing_read = prefix, n, fail_after, failing_read
        self.reads = 0

    def __iter__(self) -> Iterator[CsvRow]:
        self.reads += 1
        for i in range(self.n):
            if i == self.fail_after and self.reads == self.failing_read:
                raise ValueError("the file could not be read past this point")
            yield CsvRow(line=i + 2, values={"email": f"{self.prefix}{i}@example.com"})


def _rows(prefix: str, n: int, fail_after: int | None = None) -> _Rows:
    return _Rows(prefix, n, fail_after)


async def _started(container: Container, tenant: Tenant) -> tuple[Actor, ContactImport]:
    actor = Actor.operator_at(uuid.UUID(str(tenant.location_id)))
    job = await container.contact_imports().start(actor, ["email"], ImportOptions(mapping={"email": "email"}))
    return actor, job


async def test_a_file_that_fails_mid_import_keeps_the_batches_written_and_fails_the_import(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    """The next batch is read while one is written: a read failure lets the batch in flight commit first."""
    actor, job = await _started(container, tenant)
    prefix = f"mid{tag()}"
    with pytest.raises(ValueError, match="could not be read"):
        await container.contact_imports().run(actor, job.id, _rows(prefix, 10, fail_after=7), batch_size=3)
    done = await container.contact_imports().get(actor, job.id)
    assert done.status is ImportStatus.FAILED
    assert done.failure == "the file could not be read past this point"
    assert done.counters.created == done.counters.processed == 6  # two whole batches, none half-written
    found = [c["email"] for c in await all_contacts(api, tenant) if c["email"].startswith(prefix)]
    assert sorted(found) == sorted(f"{prefix}{i}@example.com" for i in range(6))


async def test_a_file_that_fails_before_the_first_batch_imports_nothing(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    """The first read (who is who over the whole file) fails: nothing is written, the import failed."""
    actor, job = await _started(container, tenant)
    prefix = f"early{tag()}"
    with pytest.raises(ValueError, match="could not be read"):
        await container.contact_imports().run(
            actor, job.id, _Rows(prefix, 10, 7, failing_read=1), batch_size=3
        )
    done = await container.contact_imports().get(actor, job.id)
    assert (done.status, done.failure) == (ImportStatus.FAILED, "the file could not be read past this point")
    assert done.counters.processed == 0
    assert not [c for c in await all_contacts(api, tenant) if c["email"].startswith(prefix)]


async def test_a_batch_that_fails_to_write_stops_the_import_after_the_batches_before_it(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, monkeypatch: Any
) -> None:
    from ghl_core.contacts.imports import ContactImportService

    write = ContactImportService._write
    calls = 0

    async def failing_second(self: ContactImportService, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the database went away")
        return await write(self, *args)

    monkeypatch.setattr(ContactImportService, "_write", failing_second)
    actor, job = await _started(container, tenant)
    prefix = f"wr{tag()}"
    with pytest.raises(RuntimeError, match="went away"):
        await container.contact_imports().run(actor, job.id, _rows(prefix, 12), batch_size=3)
    done = await container.contact_imports().get(actor, job.id)
    assert (done.status, done.failure) == (ImportStatus.FAILED, "the database went away")
    assert done.counters.created == done.counters.processed == 3
    found = [c["email"] for c in await all_contacts(api, tenant) if c["email"].startswith(prefix)]
    assert len(found) == 3


async def test_the_error_report_never_carries_a_formula(api: httpx.AsyncClient, tenant: Tenant) -> None:
    # A reason starts with the column's name, which the uploader chose.
    result = await run_import(
        api, tenant, "@evil,first_name\nnot-an-email,Ann\n", {"mapping": ["@evil=email"]}
    )
    assert result["errors"][0]["reason"].startswith("@evil: is not a valid e-mail address")
    report = await api.get(f"{API}/contacts/imports/{result['id']}/errors.csv", headers=tenant.headers)
    rows = list(csv.reader(io.StringIO(report.text)))
    assert rows[1][1].startswith("'@evil: is not a valid e-mail address")


# What spreadsheet programs save as "Unicode text": UTF-16 (with a byte-order mark), tab-separated.
UNICODE_TEXT = (
    "First Name\tLast Name\tEmail\tPhone\n"
    "Zoë\tÅngström\tzoe@example.com\t(312) 555-0177\n"
    "東\t京\ttokyo@example.com\t\n"
)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
async def test_utf16_and_utf32_files_import_with_or_without_a_bom(
    api: httpx.AsyncClient, tenant: Tenant, encoding: str
) -> None:
    result = await run_import(api, tenant, UNICODE_TEXT.encode(encoding))
    assert result["status"] == "done", result
    assert result["mapping"] == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Email": "email",
        "Phone": "phone",
    }
    assert result["counters"]["created"] == 2, result
    people = sorted(
        (c["first_name"], c["last_name"], c["email"], c["phone"]) for c in await all_contacts(api, tenant)
    )
    assert people == [
        ("Zoë", "Ångström", "zoe@example.com", "+13125550177"),
        ("東", "京", "tokyo@example.com", None),
    ]


async def test_a_workbook_or_a_binary_file_is_a_400_problem_and_imports_nothing(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    for body, words in (
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "workbook"),
        (b"\x00\x01\x02\x03" * 100 + b"\nx\n", "NUL"),
    ):
        refused = await api.post(f"{API}/contacts/imports", headers=csv_headers(tenant), content=body)
        assert words in assert_problem(refused, 400, "unreadable_file")["detail"]
    assert await all_contacts(api, tenant) == []


_HOLD_A_SPOOLED_UPLOAD = """
import sys, time
from pathlib import Path
from ghl_adapters.uploads import UploadSpool
spooled = UploadSpool(Path(sys.argv[1])).create()
spooled.write(b"email,first_name\\nsecret@example.com,Secret\\n")
spooled.finish_writing()
print(spooled.path, flush=True)
time.sleep(600)
"""


def _upload_of_a_killed_process(spool: UploadSpool) -> Path:
    """A process spools an upload (as an import's would be) and is killed while it holds it; the live
    uploads of this process stay held throughout."""
    holder = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _HOLD_A_SPOOLED_UPLOAD, str(spool.directory)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        path = Path(holder.stdout.readline().strip())
        assert path.parent == spool.directory
        assert spool.sweep() == 0  # held by a live process
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert path.exists()
    return path


async def test_an_upload_is_spooled_under_the_data_folder_and_a_crashed_ones_is_swept_at_start(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, monkeypatch: Any
) -> None:
    from litestar.testing import AsyncTestClient

    from ghl_core.contacts.imports import ContactImportService
    from ghl_http.app import create_app

    spool = container.upload_spool()
    assert spool.directory.is_relative_to(container.settings().data_dir.resolve())
    seen: list[str] = []
    run = ContactImportService.run

    async def watched(self: ContactImportService, *args: Any, **kwargs: Any) -> Any:
        seen.extend(p.name for p in spool.directory.iterdir())
        return await run(self, *args, **kwargs)

    monkeypatch.setattr(ContactImportService, "run", watched)
    result = await run_import(api, tenant, "email\nspooled@example.com\n")
    assert result["counters"]["created"] == 1
    assert len(seen) == 1
    assert seen[0].startswith("upload-")
    assert list(spool.directory.iterdir()) == []  # removed once the import ended

    live = spool.create()
    live.write(b"email\n")
    crashed = _upload_of_a_killed_process(spool)
    async with AsyncTestClient(app=create_app(container, close_container_on_shutdown=False)):
        pass  # the application's start sweeps the uploads nobody holds
    assert sorted(spool.directory.iterdir()) == [live.path]
    assert crashed.name not in {p.name for p in spool.directory.iterdir()}
    live.release()
    assert list(spool.directory.iterdir()) == []
