"""An import's result does not depend on the order of its rows: rows linked by a shared e-mail address or
phone number are one person (one contact), whichever comes first and in whichever batch; a group of rows
that links two contacts that already existed is refused, every row of it, with a reason."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_contact_imports import all_contacts, run_import

from ghl_adapters.container import Container
from ghl_core.contacts.csv_rows import CsvSource
from ghl_core.contacts.import_models import DuplicateMode, ImportOptions
from ghl_core.contacts.models import DuplicatePolicy
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.permissions import Actor
from http_kit import API, Tenant, new_tenant

# Imports over the API run as jobs: a worker runs them beside each test.
pytestmark = pytest.mark.usefixtures("import_worker")

HEADER = ("email", "phone", "first_name", "city", "tags")


def csv_text(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def shape(contacts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The contacts' values, in an order of their own (a blank value is "")."""
    return sorted(
        (c["email"] or "", c["phone"] or "", c["first_name"] or "", c["city"] or "", tuple(sorted(c["tags"])))
        for c in contacts
    )


ANN_EMAIL = {"email": "ann@example.com", "phone": "", "first_name": "Ann", "city": "", "tags": "mail"}
ANN_PHONE = {"email": "", "phone": "(312) 555-0144", "first_name": "", "city": "Chicago", "tags": "call"}
ANN_BOTH = {
    "email": "ANN@example.com",
    "phone": "+1 312 555 0144",
    "first_name": "",
    "city": "",
    "tags": "vip",
}


async def test_rows_of_one_person_make_one_contact_whatever_their_order(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    # The order: e-mail only, phone only, then both (which used to be refused).
    first = await run_import(api, tenant, csv_text([ANN_EMAIL, ANN_PHONE, ANN_BOTH]))
    second = await run_import(api, other_tenant, csv_text([ANN_BOTH, ANN_PHONE, ANN_EMAIL]))
    for result in (first, second):
        assert result["status"] == "done", result
        assert (result["counters"]["created"], result["counters"]["failed"]) == (1, 0), result
    ann = ("ann@example.com", "+13125550144", "Ann", "Chicago", ("call", "mail", "vip"))
    assert shape(await all_contacts(api, tenant)) == shape(await all_contacts(api, other_tenant)) == [ann]


async def test_a_person_spread_over_batches_lands_on_the_contact_a_later_row_names(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    """Batches of one row: the e-mail-only row is written before the row that shows it belongs to the
    existing contact holding the phone number; it updates that contact instead of making another."""
    made = await api.post(
        f"{API}/contacts", headers=tenant.headers, json={"phone": "(312) 555-0144", "last_name": "Lee"}
    )
    assert made.status_code == 201, made.text
    actor = Actor.operator_at(tenant.location_id)
    source = CsvSource(io.StringIO(csv_text([ANN_EMAIL, ANN_PHONE, ANN_BOTH]), newline=""))
    service = container.contact_imports()
    job = await service.start(actor, source.headers, ImportOptions())
    done = await service.run(actor, job.id, source, batch_size=1)
    assert done.counters.as_dict() == {"processed": 3, "created": 0, "updated": 3, "skipped": 0, "failed": 0}
    (ann,) = await all_contacts(api, tenant)
    assert ann["id"] == made.json()["id"]
    assert (ann["email"], ann["first_name"], ann["last_name"], ann["city"]) == (
        "ann@example.com",
        "Ann",
        "Lee",
        "Chicago",
    )


async def test_rows_that_link_two_existing_contacts_are_all_refused_with_a_reason(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    by_email = await api.post(f"{API}/contacts", headers=tenant.headers, json={"email": "ann@example.com"})
    by_phone = await api.post(f"{API}/contacts", headers=tenant.headers, json={"phone": "+13125550144"})
    before = shape(await all_contacts(api, tenant))
    other = {"email": "bob@example.com", "phone": "", "first_name": "Bob", "city": "", "tags": ""}
    for rows in ([ANN_EMAIL, ANN_PHONE, other, ANN_BOTH], [ANN_BOTH, other, ANN_PHONE, ANN_EMAIL]):
        result = await run_import(api, tenant, csv_text(rows))
        assert result["counters"]["failed"] == 3, result
        refused = {e["line"] for e in result["errors"]}
        assert refused == {2 + i for i, row in enumerate(rows) if row is not other}
        for error in result["errors"]:
            assert by_email.json()["id"] in error["reason"]
            assert by_phone.json()["id"] in error["reason"]
            assert "merge them first" in error["reason"]
    bob = ("bob@example.com", "", "Bob", "", ())
    assert shape(await all_contacts(api, tenant)) == sorted([*before, bob])


# -- the property: any order of the same rows makes the same contacts and refuses the same rows --------

PEOPLE = 2
PHONES = [f"+1312555{100 + i:04d}" for i in range(PEOPLE)]
SPELLED = [lambda p: p, lambda p: f"({p[2:5]}) {p[5:8]}-{p[8:]}", lambda p: f"+1 {p[2:5]} {p[5:8]} {p[8:]}"]
FIRST = ["Ann", "Bob", "Cy", "Dee"]
CITY = ["Chicago", "Boston", "Austin", "Denver"]


@st.composite
def row_of(draw: st.DrawFn, person: int) -> dict[str, str]:
    """A row holding some of one person's identifiers (spelled as people do) and values."""
    which = draw(st.sampled_from(["email", "phone", "both"]))
    return {
        "email": (f"P{person}@Example.com" if draw(st.booleans()) else f"p{person}@example.com")
        if which != "phone"
        else "",
        "phone": draw(st.sampled_from(SPELLED))(PHONES[person]) if which != "email" else "",
        "first_name": FIRST[person] if draw(st.booleans()) else "",
        "city": CITY[person] if draw(st.booleans()) else "",
        "tags": ",".join(draw(st.lists(st.sampled_from([f"t{person}", "shared"]), unique=True))),
    }


rows_strategy = st.lists(st.integers(0, PEOPLE - 1).flatmap(row_of), min_size=2, max_size=8)
# Contacts that exist before the import: a person's e-mail and/or phone on one contact, or split over two
# (which the person's rows, once they hold both, link: the refusal case).
_EXISTING = {None: [], "email": ["email"], "phone": ["phone"], "both": ["both"], "split": ["email", "phone"]}
existing_strategy = st.lists(st.sampled_from(list(_EXISTING)), min_size=PEOPLE, max_size=PEOPLE).map(
    lambda kinds: [(person, which) for person, kind in enumerate(kinds) for which in _EXISTING[kind]]
)


async def import_in_order(
    container: Container,
    rows: list[dict[str, str]],
    existing: list[tuple[int, str]],
    mode: DuplicateMode,
    allow_duplicates: bool,
) -> tuple[list[tuple[Any, ...]], list[str]]:
    tenant = await new_tenant(container)
    actor = Actor.operator_at(tenant.location_id)
    if allow_duplicates:
        await container.contacts().update_settings(actor, DuplicatePolicy(allow_duplicates=True))
    for person, which in existing:
        fields = {"last_name": "Existing"}
        if which in ("email", "both"):
            fields["email"] = f"p{person}@example.com"
        if which in ("phone", "both"):
            fields["phone"] = PHONES[person]
        await container.contacts().create(actor, fields)
    text = csv_text(rows)
    source = CsvSource(io.StringIO(text, newline=""))
    service = container.contact_imports()
    job = await service.start(actor, source.headers, ImportOptions(duplicates=mode))
    done = await service.run(actor, job.id, source, batch_size=2)
    assert done.counters.processed == len(rows)
    lines = text.splitlines()
    refused = sorted(lines[e.line - 1] for e in await service.error_report(actor, job.id))
    contacts = []
    cursor = None
    while True:
        page = await container.contacts().list(actor, PageRequest.parse(100, cursor, None))
        contacts += page.items
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    made = sorted(
        (*(v or "" for v in (c.email, c.phone, c.first_name, c.last_name, c.city)), tuple(sorted(c.tags)))
        for c in contacts
    )
    return made, refused


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=rows_strategy,
    order=st.randoms(use_true_random=False),
    existing=existing_strategy,
    mode=st.sampled_from(list(DuplicateMode)),
    allow_duplicates=st.booleans(),
)
async def test_any_order_of_the_rows_makes_the_same_contacts(
    container: Container,
    rows: list[dict[str, str]],
    order: Any,
    existing: list[tuple[int, str]],
    mode: DuplicateMode,
    allow_duplicates: bool,
) -> None:
    if allow_duplicates and mode is DuplicateMode.CREATE:
        mode = DuplicateMode.UPDATE  # a contact per row, asked for: no identity to resolve
    shuffled = list(rows)
    order.shuffle(shuffled)
    first = await import_in_order(container, rows, existing, mode, allow_duplicates)
    second = await import_in_order(container, shuffled, existing, mode, allow_duplicates)
    assert first == second, (rows, shuffled, existing, mode, allow_duplicates)
