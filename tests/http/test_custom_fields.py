"""Custom fields through the API: definitions, values of every type, and what changing or deleting a
definition does to the values contacts already hold."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_core.shared.scope import TenantScope
from http_kit import API, Tenant, assert_problem, pointers

URL = f"{API}/custom-fields"


async def define(api: httpx.AsyncClient, tenant: Tenant, key: str, kind: str, **extra: Any) -> dict[str, Any]:
    body = {"key": key, "label": key.replace("_", " ").title(), "type": kind, **extra}
    response = await api.post(URL, headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def contact_with(api: httpx.AsyncClient, tenant: Tenant, values: dict[str, Any]) -> dict[str, Any]:
    body = {"email": f"cf.{uuid.uuid4().hex[:10]}@example.com", "custom_fields": values}
    response = await api.post(f"{API}/contacts", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def values_of(api: httpx.AsyncClient, tenant: Tenant, contact_id: str) -> dict[str, Any]:
    got: dict[str, Any] = (await api.get(f"{API}/contacts/{contact_id}", headers=tenant.headers)).json()
    return dict(got["custom_fields"])


@pytest.fixture
async def all_types(api: httpx.AsyncClient, tenant: Tenant) -> None:
    for key, kind in [
        ("t_text", "text"),
        ("t_large", "large_text"),
        ("t_number", "number"),
        ("t_money", "money"),
        ("t_phone", "phone"),
        ("t_email", "email"),
        ("t_date", "date"),
        ("t_check", "checkbox"),
    ]:
        await define(api, tenant, key, kind)
    await define(api, tenant, "t_single", "single_option", options=["Red", "Green"])
    await define(api, tenant, "t_multi", "multiple_options", options=["a", "b", "c"])


async def test_valid_values_of_every_type_are_normalised(
    api: httpx.AsyncClient, tenant: Tenant, all_types: None
) -> None:
    contact = await contact_with(
        api,
        tenant,
        {
            "t_text": "  hello ",
            "t_large": "line one\nline two",
            "t_number": "42.50",
            "t_money": {"amount": 1999, "currency": "usd"},
            "t_phone": "(312) 555-0142",
            "t_email": "Someone@Example.COM",
            "t_date": "2024-02-29",
            "t_check": True,
            "t_single": "Green",
            "t_multi": ["c", "a", "c"],
        },
    )
    assert contact["custom_fields"] == {
        "t_text": "hello",
        "t_large": "line one\nline two",
        "t_number": 42.5,
        "t_money": {"amount": 1999, "currency": "USD"},
        "t_phone": "+13125550142",
        "t_email": "someone@example.com",
        "t_date": "2024-02-29",
        "t_check": True,
        "t_single": "Green",
        "t_multi": ["c", "a"],
    }
    cleared = await api.patch(
        f"{API}/contacts/{contact['id']}",
        headers=tenant.headers,
        json={"custom_fields": {"t_text": None, "t_multi": []}},
    )
    assert "t_text" not in cleared.json()["custom_fields"]
    assert "t_multi" not in cleared.json()["custom_fields"]


async def test_invalid_values_of_every_type_are_refused_with_pointers(
    api: httpx.AsyncClient, tenant: Tenant, all_types: None
) -> None:
    bad = {
        "t_text": "x" * 501,
        "t_large": "y" * 10_001,
        "t_number": "NaN",
        "t_money": {"amount": 19.99, "currency": "USD"},
        "t_phone": "12",
        "t_email": "not-an-email",
        "t_date": "2024-02-30",
        "t_check": "maybe",
        "t_single": "Blue",
        "t_multi": ["a", "z"],
        "nope": 1,
    }
    response = await api.post(
        f"{API}/contacts",
        headers=tenant.headers,
        json={"email": "bad.values@example.com", "custom_fields": bad},
    )
    body = assert_problem(response, 422, "validation_failed")
    assert pointers(body) == sorted(f"/custom_fields/{k}" for k in bad)
    more = {
        "t_text": 5,
        "t_number": True,
        "t_money": {"amount": 100, "currency": "XYZ"},
        "t_date": "20240101",
        "t_multi": "a",
        "t_single": ["Red"],
    }
    body = assert_problem(
        await api.post(
            f"{API}/contacts", headers=tenant.headers, json={"email": "b2@example.com", "custom_fields": more}
        ),
        422,
    )
    assert pointers(body) == sorted(f"/custom_fields/{k}" for k in more)
    listed = (await api.get(f"{API}/contacts?limit=100", headers=tenant.headers)).json()["items"]
    assert not [c for c in listed if c["email"] in ("bad.values@example.com", "b2@example.com")]


async def test_definitions_crud_and_validation(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    created = await define(api, tenant, "budget", "money")
    assert (created["key"], created["type"], created["options"]) == ("budget", "money", [])
    assert_problem(
        await api.post(URL, headers=tenant.headers, json={"key": "budget", "label": "Again", "type": "text"}),
        409,
        "duplicate_custom_field_key",
    )
    bad = await api.post(URL, headers=tenant.headers, json={"key": "9Bad-Key", "label": " ", "type": "blob"})
    assert pointers(assert_problem(bad, 422)) == ["/key", "/label", "/type"]
    no_options = await api.post(
        URL, headers=tenant.headers, json={"key": "pick", "label": "Pick", "type": "single_option"}
    )
    assert pointers(assert_problem(no_options, 422)) == ["/options"]
    dup = await api.post(
        URL,
        headers=tenant.headers,
        json={"key": "pick", "label": "Pick", "type": "multiple_options", "options": ["A", "a", ""]},
    )
    assert pointers(assert_problem(dup, 422)) == ["/options/1", "/options/2"]
    stray = await api.post(
        URL, headers=tenant.headers, json={"key": "n", "label": "N", "type": "number", "options": ["x"]}
    )
    assert pointers(assert_problem(stray, 422)) == ["/options"]
    one = f"{URL}/{created['id']}"
    assert (await api.get(one, headers=tenant.headers)).json() == created
    relabelled = await api.patch(one, headers=tenant.headers, json={"label": "Yearly budget"})
    assert relabelled.json()["label"] == "Yearly budget"
    rekey = await api.patch(one, headers=tenant.headers, json={"key": "money"})
    assert pointers(assert_problem(rekey, 422)) == ["/key"]
    assert [d["key"] for d in (await api.get(URL, headers=tenant.headers)).json()] == ["budget"]
    assert (await api.delete(one, headers=tenant.headers)).status_code == 204
    assert_problem(await api.get(one, headers=tenant.headers), 404)
    assert (await api.get(URL, headers=tenant.headers)).json() == []
    # The key is free again once its definition is deleted.
    await define(api, tenant, "budget", "number")
    async with container.engines().owner.connect() as conn:
        events = (
            (
                await conn.execute(
                    text("SELECT type FROM domain_events WHERE entity_id = :i ORDER BY occurred_at"),
                    {"i": created["id"]},
                )
            )
            .scalars()
            .all()
        )
        audits = (
            await conn.execute(
                text("SELECT count(*) FROM audit_log WHERE entity_id = :i"), {"i": created["id"]}
            )
        ).scalar_one()
    assert events == ["custom_field.created", "custom_field.updated", "custom_field.deleted"]
    assert audits == 3


async def test_racing_creates_of_one_key_make_one(api: httpx.AsyncClient, tenant: Tenant) -> None:
    answers = await asyncio.gather(
        *(
            api.post(URL, headers=tenant.headers, json={"key": "race", "label": f"R{i}", "type": "text"})
            for i in range(6)
        )
    )
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5


async def test_deleting_a_definition_removes_the_key_from_contacts(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    field = await define(api, tenant, "shoe_size", "number")
    await define(api, tenant, "other", "text")
    contacts = [await contact_with(api, tenant, {"shoe_size": i, "other": "keep"}) for i in range(3)]
    assert (await api.delete(f"{URL}/{field['id']}", headers=tenant.headers)).status_code == 204
    for contact in contacts:
        assert await values_of(api, tenant, contact["id"]) == {"other": "keep"}
    refused = await api.post(
        f"{API}/contacts",
        headers=tenant.headers,
        json={"email": "late@example.com", "custom_fields": {"shoe_size": 9}},
    )
    assert pointers(assert_problem(refused, 422)) == ["/custom_fields/shoe_size"]


async def test_removing_options_rewrites_stored_values(api: httpx.AsyncClient, tenant: Tenant) -> None:
    single = await define(api, tenant, "colour", "single_option", options=["Red", "Green", "Blue"])
    multi = await define(api, tenant, "topics", "multiple_options", options=["a", "b", "c"])
    red = await contact_with(api, tenant, {"colour": "Red", "topics": ["c", "a", "b"]})
    green = await contact_with(api, tenant, {"colour": "Green", "topics": ["a"]})
    changed = await api.patch(
        f"{URL}/{single['id']}", headers=tenant.headers, json={"options": ["Green", "Blue", "Violet"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["options"] == ["Green", "Blue", "Violet"]
    await api.patch(f"{URL}/{multi['id']}", headers=tenant.headers, json={"options": ["b", "c"]})
    assert await values_of(api, tenant, red["id"]) == {"topics": ["c", "b"]}
    assert await values_of(api, tenant, green["id"]) == {"colour": "Green"}
    empty = await api.patch(f"{URL}/{multi['id']}", headers=tenant.headers, json={"options": []})
    assert pointers(assert_problem(empty, 422)) == ["/options"]


async def test_type_change_only_when_every_value_fits(api: httpx.AsyncClient, tenant: Tenant) -> None:
    field = await define(api, tenant, "score", "text")
    fits = await contact_with(api, tenant, {"score": "42"})
    blocker = await contact_with(api, tenant, {"score": "lots"})
    one = f"{URL}/{field['id']}"
    refused = await api.patch(one, headers=tenant.headers, json={"type": "number"})
    problem = assert_problem(refused, 409, "custom_field_values_block_change")
    assert problem["blocking_contacts"] == 1
    assert problem["example_contact_ids"] == [blocker["id"]]
    assert (await api.get(one, headers=tenant.headers)).json()["type"] == "text"
    await api.patch(
        f"{API}/contacts/{blocker['id']}", headers=tenant.headers, json={"custom_fields": {"score": "7"}}
    )
    changed = await api.patch(one, headers=tenant.headers, json={"type": "number", "label": "Score"})
    assert changed.status_code == 200, changed.text
    assert await values_of(api, tenant, fits["id"]) == {"score": 42}
    assert await values_of(api, tenant, blocker["id"]) == {"score": 7}
    # To an option type: the options must be given, and the values must be among them.
    to_options = await api.patch(one, headers=tenant.headers, json={"type": "single_option"})
    assert pointers(assert_problem(to_options, 422)) == ["/options"]


async def test_another_tenant_gets_404_and_rls_hides_definitions(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, container: Container
) -> None:
    field = await define(api, tenant, "private", "text")
    one = f"{URL}/{field['id']}"
    for call in (
        api.get(one, headers=other_tenant.headers),
        api.patch(one, headers=other_tenant.headers, json={"label": "Stolen"}),
        api.delete(one, headers=other_tenant.headers),
    ):
        assert_problem(await call, 404)
    assert (await api.get(URL, headers=other_tenant.headers)).json() == []
    refused = await api.post(
        f"{API}/contacts",
        headers=other_tenant.headers,
        json={"email": "x@example.com", "custom_fields": {"private": "x"}},
    )
    assert pointers(assert_problem(refused, 422)) == ["/custom_fields/private"]
    async with container.uow()(TenantScope.location(other_tenant.location_id)) as uow:
        assert await uow.custom_fields.definitions(tenant.location_id) == []
        assert await uow.custom_fields.get(uuid.UUID(field["id"])) is None
        hidden = await uow.connection.execute(
            text("SELECT count(*) FROM custom_field_definitions WHERE id = :i"), {"i": field["id"]}
        )
        assert hidden.scalar_one() == 0
