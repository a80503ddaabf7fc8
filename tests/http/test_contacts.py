"""Contacts through the API: create, read, update, delete/restore, upsert and the duplicate rule."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_core.tenancy.models import AgencyRole
from http_kit import API, Tenant, assert_problem, pointers
from support import new_user


def unique_email() -> str:
    return f"jane.{uuid.uuid4().hex[:10]}@Example.COM"


async def test_create_normalises_and_reads_back(api: httpx.AsyncClient, tenant: Tenant) -> None:
    email = unique_email()
    created = await api.post(
        f"{API}/contacts",
        headers=tenant.headers,
        json={
            "first_name": "  Jane ",
            "last_name": "Doe",
            "email": email,
            "phone": "(312) 555-0142",
            "tags": ["VIP", " vip ", "Lead  Magnet"],
            "dnd_channels": {"sms": True},
            "attribution": {"utm_source": "google"},
            "date_of_birth": "1990-02-01",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == email.lower()
    assert body["phone"] == "+13125550142"  # the location is in the US
    assert body["first_name"] == "Jane"
    assert body["tags"] == ["vip", "lead magnet"]
    assert body["attribution"] == {"first": {"utm_source": "google"}, "last": {"utm_source": "google"}}
    got = await api.get(f"{API}/contacts/{body['id']}", headers=tenant.headers)
    assert got.json() == body
    listed = await api.get(f"{API}/contacts", headers=tenant.headers)
    assert listed.json()["items"][0]["id"] == body["id"]


async def test_bad_fields_are_refused_one_by_one(api: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await api.post(
        f"{API}/contacts",
        headers=tenant.headers,
        json={
            "email": "not-an-email",
            "phone": "12",
            "timezone": "Mars/Base",
            "date_of_birth": "1990-13-01",
            "dnd_channels": {"fax": True},
        },
    )
    body = assert_problem(response, 422, "validation_failed")
    assert sorted(pointers(body)) == ["/date_of_birth", "/dnd_channels/fax", "/email", "/phone", "/timezone"]
    unknown = await api.post(f"{API}/contacts", headers=tenant.headers, json={"emial": "x@y.z"})
    assert_problem(unknown, 422)
    empty = await api.post(f"{API}/contacts", headers=tenant.headers, json={"source": "web"})
    assert_problem(empty, 422)


@pytest.mark.parametrize(
    "website",
    [
        "javascript:alert(document.cookie)",
        "JaVaScRiPt:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "mailto:jane@example.com",
        "ftp://files.example.com",
        "https://exa mple.com",
        "n/a",
    ],
)
async def test_a_website_must_be_an_http_address(
    api: httpx.AsyncClient, tenant: Tenant, website: str
) -> None:
    """Merge fields put the website in an email's href: only http and https are kept."""
    refused = await api.post(f"{API}/contacts", headers=tenant.headers, json={"website": website})
    problem = assert_problem(refused, 422)
    assert pointers(problem) == ["/website"]
    assert "http or https" in problem["errors"][0]["detail"]

    created = await api.post(f"{API}/contacts", headers=tenant.headers, json={"first_name": "Site"})
    contact = created.json()
    changed = await api.patch(
        f"{API}/contacts/{contact['id']}", headers=tenant.headers, json={"website": website}
    )
    assert pointers(assert_problem(changed, 422)) == ["/website"]
    got = await api.get(f"{API}/contacts/{contact['id']}", headers=tenant.headers)
    assert got.json()["website"] is None  # nothing changed


async def test_a_website_without_a_scheme_is_made_https(api: httpx.AsyncClient, tenant: Tenant) -> None:
    for given, kept in [
        ("www.example.com/shop", "https://www.example.com/shop"),
        ("example.com:8080", "https://example.com:8080"),
        ("http://localhost:3000/x", "http://localhost:3000/x"),
        ("HTTPS://Example.com", "HTTPS://Example.com"),
    ]:
        created = await api.post(
            f"{API}/contacts", headers=tenant.headers, json={"first_name": "Site", "website": given}
        )
        assert created.status_code == 201, created.text
        assert created.json()["website"] == kept


async def test_update_delete_restore(api: httpx.AsyncClient, tenant: Tenant, container: Container) -> None:
    contact = (
        await api.post(f"{API}/contacts", headers=tenant.headers, json={"email": unique_email()})
    ).json()
    url = f"{API}/contacts/{contact['id']}"
    patched = await api.patch(
        url, headers=tenant.headers, json={"first_name": "Ann", "tags": ["a", "b"], "dnd": True}
    )
    assert patched.status_code == 200
    assert (patched.json()["first_name"], patched.json()["tags"], patched.json()["dnd"]) == (
        "Ann",
        ["a", "b"],
        True,
    )
    cleared = await api.patch(url, headers=tenant.headers, json={"first_name": None, "tags": ["b"]})
    assert cleared.json()["first_name"] is None
    assert (await api.delete(url, headers=tenant.headers)).status_code == 204
    assert_problem(await api.get(url, headers=tenant.headers), 404)
    restored = await api.post(f"{url}/restore", headers=tenant.headers)
    assert restored.status_code == 200
    assert (await api.get(url, headers=tenant.headers)).status_code == 200
    async with container.engines().owner.connect() as conn:
        events = (
            (
                await conn.execute(
                    text("SELECT type FROM domain_events WHERE entity_id = :i ORDER BY occurred_at"),
                    {"i": contact["id"]},
                )
            )
            .scalars()
            .all()
        )
    assert events == [
        "contact.created",
        "contact.tag_added",
        "contact.dnd_changed",
        "contact.updated",
        "contact.tag_removed",
        "contact.updated",
        "contact.deleted",
        "contact.restored",
    ]


async def test_another_tenant_gets_404(api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant) -> None:
    contact = (
        await api.post(f"{API}/contacts", headers=tenant.headers, json={"email": unique_email()})
    ).json()
    for call in (
        api.get(f"{API}/contacts/{contact['id']}", headers=other_tenant.headers),
        api.patch(f"{API}/contacts/{contact['id']}", headers=other_tenant.headers, json={"first_name": "X"}),
        api.delete(f"{API}/contacts/{contact['id']}", headers=other_tenant.headers),
    ):
        assert_problem(await call, 404)
    assert all(
        c["id"] != contact["id"]
        for c in (await api.get(f"{API}/contacts", headers=other_tenant.headers)).json()["items"]
    )


async def test_assigned_user_must_reach_the_location(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, container: Container
) -> None:
    granted = await new_user(container, tenant)
    admin = await new_user(container, tenant, AgencyRole.ADMIN, granted=False)
    for bad in (
        uuid.uuid4(),
        await new_user(container, tenant, granted=False),
        await new_user(container, other_tenant),
    ):
        refused = await api.post(
            f"{API}/contacts",
            headers=tenant.headers,
            json={"email": unique_email(), "assigned_user_id": str(bad)},
        )
        assert pointers(assert_problem(refused, 422)) == ["/assigned_user_id"]
    made = await api.post(
        f"{API}/contacts",
        headers=tenant.headers,
        json={"email": unique_email(), "assigned_user_id": str(granted)},
    )
    assert made.status_code == 201, made.text
    url = f"{API}/contacts/{made.json()['id']}"
    outsider = await new_user(container, other_tenant)
    refused = await api.patch(url, headers=tenant.headers, json={"assigned_user_id": str(outsider)})
    assert pointers(assert_problem(refused, 422)) == ["/assigned_user_id"]
    assert (await api.get(url, headers=tenant.headers)).json()["assigned_user_id"] == str(granted)
    moved = await api.patch(url, headers=tenant.headers, json={"assigned_user_id": str(admin)})
    assert moved.json()["assigned_user_id"] == str(admin)
    cleared = await api.patch(url, headers=tenant.headers, json={"assigned_user_id": None})
    assert cleared.json()["assigned_user_id"] is None


async def test_duplicates_refused_and_racing_creates_make_one(api: httpx.AsyncClient, tenant: Tenant) -> None:
    email = unique_email()
    first = await api.post(f"{API}/contacts", headers=tenant.headers, json={"email": email})
    again = await api.post(f"{API}/contacts", headers=tenant.headers, json={"email": email.upper()})
    problem = assert_problem(again, 409, "duplicate_contact")
    assert problem["existing_ids"] == [first.json()["id"]]
    racing = unique_email()
    answers = await asyncio.gather(
        *(api.post(f"{API}/contacts", headers=tenant.headers, json={"email": racing}) for _ in range(8))
    )
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7


async def test_racing_upserts_make_one_contact(api: httpx.AsyncClient, tenant: Tenant) -> None:
    email = unique_email()
    answers = await asyncio.gather(
        *(
            api.post(
                f"{API}/contacts/upsert", headers=tenant.headers, json={"email": email, "first_name": f"N{i}"}
            )
            for i in range(8)
        )
    )
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    assert [a.json()["action"] for a in answers].count("created") == 1
    assert len({a.json()["contact"]["id"] for a in answers}) == 1


async def test_upsert_refuses_to_drop_data_when_identifiers_disagree(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    by_email = (
        await api.post(f"{API}/contacts", headers=tenant.headers, json={"email": unique_email()})
    ).json()
    by_phone = (
        await api.post(f"{API}/contacts", headers=tenant.headers, json={"phone": "+13125550199"})
    ).json()
    response = await api.post(
        f"{API}/contacts/upsert",
        headers=tenant.headers,
        json={"email": by_email["email"], "phone": "+1 312 555 0199"},
    )
    problem = assert_problem(response, 409, "duplicate_contact")
    assert sorted(problem["existing_ids"]) == sorted([by_email["id"], by_phone["id"]])
    updated = await api.post(
        f"{API}/contacts/upsert", headers=tenant.headers, json={"email": by_email["email"], "city": "Chicago"}
    )
    assert (updated.status_code, updated.json()["action"], updated.json()["contact"]["city"]) == (
        200,
        "updated",
        "Chicago",
    )


async def test_duplicate_setting(api: httpx.AsyncClient, tenant: Tenant) -> None:
    assert (await api.get(f"{API}/contacts/settings", headers=tenant.headers)).json() == {
        "allow_duplicates": False,
        "duplicate_priority": "email",
    }
    allowed = await api.put(
        f"{API}/contacts/settings", headers=tenant.headers, json={"allow_duplicates": True}
    )
    assert allowed.json()["allow_duplicates"] is True
    email = unique_email()
    for _ in range(2):
        assert (
            await api.post(f"{API}/contacts", headers=tenant.headers, json={"email": email})
        ).status_code == 201
    # Forbidding duplicates again while two share an address is refused, and changes nothing.
    refused = await api.put(
        f"{API}/contacts/settings", headers=tenant.headers, json={"allow_duplicates": False}
    )
    assert_problem(refused, 409)
    assert (await api.get(f"{API}/contacts/settings", headers=tenant.headers)).json()[
        "allow_duplicates"
    ] is True


async def test_merge_fills_blanks_and_retires_the_loser(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    survivor = (
        await api.post(
            f"{API}/contacts", headers=tenant.headers, json={"email": unique_email(), "tags": ["a"]}
        )
    ).json()
    loser = (
        await api.post(
            f"{API}/contacts",
            headers=tenant.headers,
            json={"phone": "+13125550111", "first_name": "Lou", "tags": ["b"], "dnd_channels": {"sms": True}},
        )
    ).json()
    merged = await api.post(
        f"{API}/contacts/merge",
        headers=tenant.headers,
        json={"survivor_id": survivor["id"], "loser_id": loser["id"]},
    )
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert (body["id"], body["email"], body["phone"], body["first_name"]) == (
        survivor["id"],
        survivor["email"],
        "+13125550111",
        "Lou",
    )
    assert body["tags"] == ["a", "b"]
    assert body["dnd_channels"] == {"sms": True}
    assert_problem(await api.get(f"{API}/contacts/{loser['id']}", headers=tenant.headers), 404)
    # The loser's phone now finds the survivor.
    upserted = await api.post(
        f"{API}/contacts/upsert", headers=tenant.headers, json={"phone": "+13125550111"}
    )
    assert upserted.json()["contact"]["id"] == survivor["id"]
    assert_problem(await api.post(f"{API}/contacts/{loser['id']}/restore", headers=tenant.headers), 422)
    same = await api.post(
        f"{API}/contacts/merge",
        headers=tenant.headers,
        json={"survivor_id": survivor["id"], "loser_id": survivor["id"]},
    )
    assert pointers(assert_problem(same, 422)) == ["/loser_id"]


async def test_erase_removes_personal_data_everywhere(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    email = unique_email()
    contact = (
        await api.post(f"{API}/contacts", headers=tenant.headers, json={"email": email, "first_name": "Erin"})
    ).json()
    await api.patch(f"{API}/contacts/{contact['id']}", headers=tenant.headers, json={"last_name": "Secret"})
    note = await api.post(
        f"{API}/contacts/{contact['id']}/notes",
        headers=tenant.headers,
        json={"body": "Erin lives at 1 Hidden Rd"},
    )
    assert note.status_code == 201
    erased = await api.post(f"{API}/contacts/{contact['id']}/erase", headers=tenant.headers)
    assert erased.status_code == 204
    assert_problem(await api.get(f"{API}/contacts/{contact['id']}", headers=tenant.headers), 404)
    async with container.engines().owner.connect() as conn:
        row = (
            (await conn.execute(text("SELECT * FROM contacts WHERE id = :i"), {"i": contact["id"]}))
            .mappings()
            .one()
        )
        audit = (
            await conn.execute(
                text("SELECT before, after FROM audit_log WHERE entity_id = :i"), {"i": contact["id"]}
            )
        ).all()
        scrubbed = {"i": contact["id"], "n": note.json()["id"]}
        events = (
            (
                await conn.execute(
                    text("SELECT payload FROM domain_events WHERE entity_id IN (:i, :n)"), scrubbed
                )
            )
            .scalars()
            .all()
        )
        note_audit = (
            await conn.execute(text("SELECT before, after FROM audit_log WHERE entity_id = :n"), scrubbed)
        ).all()
        note_body = (await conn.execute(text("SELECT body FROM notes WHERE id = :n"), scrubbed)).scalar_one()
    assert row["erased_at"] is not None
    assert (row["email"], row["first_name"], row["last_name"]) == (None, None, None)
    leftovers = str([list(a) for a in [*audit, *note_audit]]) + str(events) + note_body
    assert not [pii for pii in (email.lower(), "Erin", "Secret", "Hidden Rd") if pii in leftovers]
    assert len(audit) == 3
    # The address is free for a new contact.
    assert (
        await api.post(f"{API}/contacts", headers=tenant.headers, json={"email": email})
    ).status_code == 201
    assert_problem(await api.post(f"{API}/contacts/{contact['id']}/erase", headers=tenant.headers), 404)
