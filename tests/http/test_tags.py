"""Tags through the API: the location's tag list (create, rename with merge, delete) and tags on contacts,
one at a time and in bulk, with their events, audit rows and tenant isolation."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_core.shared.scope import TenantScope
from http_kit import API, Tenant, assert_problem, pointers


async def new_contact(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"email": f"t.{uuid.uuid4().hex[:10]}@example.com", **fields}
    response = await api.post(f"{API}/contacts", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def tags_of(api: httpx.AsyncClient, tenant: Tenant, contact_id: str) -> list[str]:
    tags: list[str] = (await api.get(f"{API}/contacts/{contact_id}", headers=tenant.headers)).json()["tags"]
    return tags


async def tag_names(api: httpx.AsyncClient, tenant: Tenant) -> list[str]:
    names: list[str] = []
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"{API}/tags", headers=tenant.headers, params=params)).json()
        names += [t["name"] for t in page["items"]]
        if not (cursor := page["next_cursor"]):
            return names


async def events_for(container: Container, entity_id: str) -> list[tuple[str, Any]]:
    async with container.engines().owner.connect() as conn:
        rows = await conn.execute(
            text("SELECT type, payload FROM domain_events WHERE entity_id = :i ORDER BY occurred_at, type"),
            {"i": entity_id},
        )
        return [(r.type, r.payload) for r in rows]


async def audit_count(container: Container, entity_id: str) -> int:
    async with container.engines().owner.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM audit_log WHERE entity_id = :i"), {"i": entity_id}
                )
            ).scalar_one()
        )


async def test_tag_list_create_and_normalise(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    created = await api.post(f"{API}/tags", headers=tenant.headers, json={"name": "  Hot   LEAD "})
    assert created.status_code == 201, created.text
    tag = created.json()
    assert tag["name"] == "hot lead"
    again = await api.post(f"{API}/tags", headers=tenant.headers, json={"name": "hot lead"})
    assert assert_problem(again, 409, "duplicate_tag")["existing_id"] == tag["id"]
    for bad in ("   ", "x" * 101):
        assert pointers(
            assert_problem(await api.post(f"{API}/tags", headers=tenant.headers, json={"name": bad}), 422)
        ) == ["/name"]
    # Tags given to a contact join the list too.
    await new_contact(api, tenant, tags=["From Contact"])
    assert {"hot lead", "from contact"} <= set(await tag_names(api, tenant))
    assert (await api.get(f"{API}/tags/{tag['id']}", headers=tenant.headers)).json()["name"] == "hot lead"
    assert [e[0] for e in await events_for(container, tag["id"])] == ["tag.created"]


async def test_add_and_remove_on_one_contact(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    contact = await new_contact(api, tenant, tags=["a"])
    url = f"{API}/contacts/{contact['id']}/tags"
    added = await api.post(url, headers=tenant.headers, json={"tags": ["B", "a", " c "]})
    assert added.status_code == 200, added.text
    assert added.json() == {"contact_id": contact["id"], "tags": ["a", "b", "c"]}
    removed = await api.request("DELETE", url, headers=tenant.headers, json={"tags": ["A", "zzz"]})
    assert removed.status_code == 200, removed.text
    assert removed.json()["tags"] == ["b", "c"]
    # Nothing to change: no event, no audit row.
    before = await audit_count(container, contact["id"])
    assert (await api.post(url, headers=tenant.headers, json={"tags": ["b"]})).json()["tags"] == ["b", "c"]
    assert await audit_count(container, contact["id"]) == before == 3
    events = await events_for(container, contact["id"])
    assert [(t, p.get("tags")) for t, p in events] == [
        ("contact.created", None),
        ("contact.tag_added", ["b", "c"]),
        ("contact.tag_removed", ["a"]),
    ]
    assert events[1][1]["contact"]["tags"] == ["a", "b", "c"]
    assert {"b", "c"} <= set(await tag_names(api, tenant))
    bad = await api.post(url, headers=tenant.headers, json={"tags": ["ok", " ", "x" * 101]})
    assert pointers(assert_problem(bad, 422)) == ["/tags/1", "/tags/2"]
    wrong_type = await api.post(url, headers=tenant.headers, json={"tags": ["ok", 5]})
    assert pointers(assert_problem(wrong_type, 422)) == ["/tags/1"]
    assert pointers(assert_problem(await api.post(url, headers=tenant.headers, json={"tags": []}), 422)) == [
        "/tags"
    ]


async def test_rename_renames_on_contacts_and_merges(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    one = await new_contact(api, tenant, tags=["old", "keep"])
    two = await new_contact(api, tenant, tags=["old", "new"])
    untouched = await new_contact(api, tenant, tags=["keep"])
    tags = {
        t["name"]: t["id"]
        for t in (await api.get(f"{API}/tags?limit=100", headers=tenant.headers)).json()["items"]
    }
    renamed = await api.patch(f"{API}/tags/{tags['old']}", headers=tenant.headers, json={"name": "Newer"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {**renamed.json(), "id": tags["old"], "name": "newer"}
    assert await tags_of(api, tenant, one["id"]) == ["newer", "keep"]  # the position is kept
    # Renaming onto an existing name merges: the contact carrying both keeps one.
    merged = await api.patch(f"{API}/tags/{tags['old']}", headers=tenant.headers, json={"name": "NEW"})
    assert merged.json()["id"] == tags["new"]
    assert await tags_of(api, tenant, one["id"]) == ["new", "keep"]
    assert await tags_of(api, tenant, two["id"]) == ["new"]
    assert await tags_of(api, tenant, untouched["id"]) == ["keep"]
    assert_problem(await api.get(f"{API}/tags/{tags['old']}", headers=tenant.headers), 404)
    names = await tag_names(api, tenant)
    assert "new" in names
    assert "old" not in names
    assert "newer" not in names
    events = [t for t, _ in await events_for(container, two["id"])]
    assert events.count("contact.tag_removed") == 2
    assert events.count("contact.tag_added") == 1
    assert [t for t, _ in await events_for(container, tags["old"])] == ["tag.updated", "tag.updated"]


async def test_delete_removes_from_every_contact(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    one = await new_contact(api, tenant, tags=["doomed", "x"])
    gone = await new_contact(api, tenant, tags=["doomed"])
    assert (await api.delete(f"{API}/contacts/{gone['id']}", headers=tenant.headers)).status_code == 204
    tag_id = next(
        t["id"]
        for t in (await api.get(f"{API}/tags?limit=100", headers=tenant.headers)).json()["items"]
        if t["name"] == "doomed"
    )
    assert (await api.delete(f"{API}/tags/{tag_id}", headers=tenant.headers)).status_code == 204
    assert await tags_of(api, tenant, one["id"]) == ["x"]
    assert "doomed" not in await tag_names(api, tenant)
    assert [t for t, _ in await events_for(container, one["id"])][-1] == "contact.tag_removed"
    # A deleted contact loses the tag too (a restore must not bring it back), silently.
    async with container.engines().owner.connect() as conn:
        left = (
            await conn.execute(text("SELECT tags FROM contacts WHERE id = :i"), {"i": gone["id"]})
        ).scalar_one()
    assert left == []
    assert "contact.tag_removed" not in [t for t, _ in await events_for(container, gone["id"])]
    assert_problem(await api.delete(f"{API}/tags/{tag_id}", headers=tenant.headers), 404)


async def test_bulk_tags_500_contacts(api: httpx.AsyncClient, tenant: Tenant, container: Container) -> None:
    async with container.engines().owner.begin() as conn:
        ids = [
            str(i)
            for i in (
                await conn.execute(
                    text(
                        "INSERT INTO contacts (id, location_id, first_name, tags) "
                        "SELECT gen_random_uuid(), :l, 'Bulk ' || g, CASE WHEN g % 2 = 0 THEN ARRAY['even'] "
                        "ELSE ARRAY['odd'] END FROM generate_series(1, 500) g RETURNING id"
                    ),
                    {"l": tenant.location_id},
                )
            ).scalars()
        ]
    response = await api.post(
        f"{API}/contacts/tags/bulk",
        headers=tenant.headers,
        json={"contact_ids": ids + ids[:3], "add": ["Campaign X", "even"], "remove": ["odd"]},
    )
    assert response.status_code == 200, response.text
    # 250 odd contacts gain two tags and lose one; 250 even ones gain one.
    assert response.json() == {"contacts": 500, "changed": 500, "tags_added": 750, "tags_removed": 250}
    async with container.engines().owner.connect() as conn:
        rows = (
            (await conn.execute(text("SELECT DISTINCT tags FROM contacts WHERE id = ANY(:i)"), {"i": ids}))
            .scalars()
            .all()
        )
        audits = (
            await conn.execute(text("SELECT count(*) FROM audit_log WHERE entity_id = ANY(:i)"), {"i": ids})
        ).scalar_one()
        events: dict[str, int] = dict(
            (
                await conn.execute(
                    text("SELECT type, count(*) FROM domain_events WHERE entity_id = ANY(:i) GROUP BY type"),
                    {"i": ids},
                )
            ).all()
        )
    assert sorted(sorted(r) for r in rows) == [["campaign x", "even"], ["campaign x", "even"]]
    assert audits == 500
    assert events == {"contact.tag_added": 500, "contact.tag_removed": 250}
    again = await api.post(
        f"{API}/contacts/tags/bulk", headers=tenant.headers, json={"contact_ids": ids, "add": ["even"]}
    )
    assert again.json() == {"contacts": 500, "changed": 0, "tags_added": 0, "tags_removed": 0}


async def test_bulk_is_all_or_nothing(api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant) -> None:
    mine = await new_contact(api, tenant)
    theirs = await new_contact(api, other_tenant)
    response = await api.post(
        f"{API}/contacts/tags/bulk",
        headers=tenant.headers,
        json={"contact_ids": [mine["id"], theirs["id"], str(uuid.uuid4())], "add": ["never"]},
    )
    assert pointers(assert_problem(response, 422)) == ["/contact_ids/1", "/contact_ids/2"]
    assert await tags_of(api, tenant, mine["id"]) == []
    assert await tags_of(api, other_tenant, theirs["id"]) == []
    assert "never" not in await tag_names(api, tenant)
    bad = await api.post(
        f"{API}/contacts/tags/bulk",
        headers=tenant.headers,
        json={"contact_ids": ["nope"], "add": ["a", ""], "remove": ["A"]},
    )
    assert pointers(assert_problem(bad, 422)) == ["/add/1", "/contact_ids/0", "/remove/0"]
    too_many = await api.post(
        f"{API}/contacts/tags/bulk",
        headers=tenant.headers,
        json={"contact_ids": [str(uuid.uuid4()) for _ in range(1001)], "add": ["a"]},
    )
    assert pointers(assert_problem(too_many, 422)) == ["/contact_ids"]
    nothing = await api.post(
        f"{API}/contacts/tags/bulk", headers=tenant.headers, json={"contact_ids": [mine["id"]]}
    )
    assert pointers(assert_problem(nothing, 422)) == ["/add"]


async def test_racing_bulk_adds_keep_every_tag(api: httpx.AsyncClient, tenant: Tenant) -> None:
    contact = await new_contact(api, tenant)
    answers = await asyncio.gather(
        *(
            api.post(
                f"{API}/contacts/tags/bulk",
                headers=tenant.headers,
                json={"contact_ids": [contact["id"]], "add": [f"r{i}"]},
            )
            for i in range(8)
        )
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sorted(await tags_of(api, tenant, contact["id"])) == [f"r{i}" for i in range(8)]


async def test_another_tenant_gets_404(api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant) -> None:
    tag = (
        await api.post(f"{API}/tags", headers=tenant.headers, json={"name": f"mine {uuid.uuid4().hex[:6]}"})
    ).json()
    contact = await new_contact(api, tenant)
    for call in (
        api.get(f"{API}/tags/{tag['id']}", headers=other_tenant.headers),
        api.patch(f"{API}/tags/{tag['id']}", headers=other_tenant.headers, json={"name": "stolen"}),
        api.delete(f"{API}/tags/{tag['id']}", headers=other_tenant.headers),
        api.post(f"{API}/contacts/{contact['id']}/tags", headers=other_tenant.headers, json={"tags": ["x"]}),
        api.request(
            "DELETE",
            f"{API}/contacts/{contact['id']}/tags",
            headers=other_tenant.headers,
            json={"tags": ["x"]},
        ),
    ):
        assert_problem(await call, 404)
    assert tag["name"] not in await tag_names(api, other_tenant)
    assert (await api.get(f"{API}/tags/{tag['id']}", headers=tenant.headers)).json()["name"] == tag["name"]


async def test_rls_hides_another_locations_tags(
    container: Container, tenant: Tenant, other_tenant: Tenant, api: httpx.AsyncClient
) -> None:
    await new_contact(api, other_tenant, tags=["secret"])
    async with container.uow()(TenantScope.location(tenant.location_id)) as uow:
        conn = uow.connection
        assert (
            await conn.execute(
                text("SELECT count(*) FROM tags WHERE location_id = :l"), {"l": other_tenant.location_id}
            )
        ).scalar_one() == 0
        assert await uow.tags.by_name(other_tenant.location_id, "secret") is None
        renamed = await conn.execute(
            text("UPDATE tags SET name = 'x' WHERE location_id = :l"), {"l": other_tenant.location_id}
        )
        assert renamed.rowcount == 0


async def test_scopes(api: httpx.AsyncClient, container: Container, tenant: Tenant) -> None:
    from ghl_core.tenancy.permissions import Actor, Permission

    _, secret = await container.api_keys().create(
        Actor.operator(),
        "read only",
        location_id=tenant.location_id,
        scopes=frozenset({Permission.CONTACTS_READ}),
    )
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await api.get(f"{API}/tags", headers=headers)).status_code == 200
    assert_problem(await api.post(f"{API}/tags", headers=headers, json={"name": "nope"}), 403)
