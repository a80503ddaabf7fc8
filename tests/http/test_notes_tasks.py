"""Notes and tasks on contacts through the API, and the location-wide task list."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_core.shared.errors import Conflict
from ghl_core.tenancy.models import AgencyRole
from ghl_core.tenancy.permissions import Actor, Permission
from http_kit import API, Tenant, assert_problem, pointers
from support import new_user


async def new_contact(api: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    response = await api.post(
        f"{API}/contacts", headers=tenant.headers, json={"email": f"c.{uuid.uuid4().hex[:10]}@example.com"}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def rows(container: Container, sql: str, **params: Any) -> list[Any]:
    async with container.engines().owner.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def event_types(container: Container, entity_id: str) -> list[str]:
    found = await rows(
        container,
        "SELECT type FROM domain_events WHERE entity_id = :i ORDER BY occurred_at, type",
        i=entity_id,
    )
    return [r.type for r in found]


async def audit_actions(container: Container, entity_id: Any) -> list[str]:
    found = await rows(
        container, "SELECT action FROM audit_log WHERE entity_id = :i ORDER BY created_at", i=str(entity_id)
    )
    return [r.action for r in found]


# -- notes -----------------------------------------------------------------------------------------
async def test_note_lifecycle_author_events_audit_and_activity(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    contact = await new_contact(api, tenant)
    assert contact["last_activity_at"] is None
    notes = f"{API}/contacts/{contact['id']}/notes"
    created = await api.post(notes, headers=tenant.headers, json={"body": "Called.\n  Wants a quote."})
    assert created.status_code == 201, created.text
    note = created.json()
    assert note["body"] == "Called.\n  Wants a quote."  # free text keeps its lines and spacing
    assert (note["pinned"], note["author_type"]) == (False, "api_key")
    key_id = (await rows(container, "SELECT id FROM api_keys WHERE location_id = :l", l=tenant.location_id))[
        0
    ].id
    assert note["author_id"] == str(key_id)
    touched = (await api.get(f"{API}/contacts/{contact['id']}", headers=tenant.headers)).json()
    assert touched["last_activity_at"] == note["created_at"]

    url = f"{notes}/{note['id']}"
    assert (await api.get(url, headers=tenant.headers)).json() == note
    patched = await api.patch(url, headers=tenant.headers, json={"body": "Sent the quote.", "pinned": True})
    assert (patched.status_code, patched.json()["body"], patched.json()["pinned"]) == (
        200,
        "Sent the quote.",
        True,
    )
    assert (await api.delete(url, headers=tenant.headers)).status_code == 204
    assert_problem(await api.get(url, headers=tenant.headers), 404)
    assert (await api.get(notes, headers=tenant.headers)).json()["items"] == []
    assert_problem(await api.patch(url, headers=tenant.headers, json={"pinned": False}), 404)

    assert await event_types(container, note["id"]) == ["note.created", "note.updated", "note.deleted"]
    audit = await rows(
        container,
        "SELECT action, actor_type FROM audit_log WHERE entity_id = :i ORDER BY created_at",
        i=note["id"],
    )
    assert [(a.action, a.actor_type) for a in audit] == [
        ("create", "api_key"),
        ("update", "api_key"),
        ("delete", "api_key"),
    ]


async def test_a_note_created_twice_with_one_id_is_written_once(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, container: Container
) -> None:
    """The workflow engine's retry: the same id again returns the first note and writes nothing."""
    contact = uuid.UUID((await new_contact(api, tenant))["id"])
    actor, notes = Actor.operator_at(tenant.location_id), container.notes()
    note_id = uuid.uuid5(uuid.NAMESPACE_URL, f"enrollment/{uuid.uuid4()}/step/1/visit/1")
    first = await notes.create(actor, contact, {"body": "From the workflow"}, id=note_id)
    assert first.id == note_id
    again = await notes.create(actor, contact, {"body": "A retry's text"}, id=note_id)
    assert again == first
    assert len(await rows(container, "SELECT id FROM notes WHERE id = :i", i=note_id)) == 1
    assert await event_types(container, str(note_id)) == ["note.created"]
    assert await audit_actions(container, note_id) == ["create"]

    # Racing retries: one writes, the others answer with its note.
    raced_id = uuid.uuid4()
    answers = await asyncio.gather(
        *(notes.create(actor, contact, {"body": f"race {i}"}, id=raced_id) for i in range(6))
    )
    assert len({(a.id, a.body) for a in answers}) == 1
    assert await event_types(container, str(raced_id)) == ["note.created"]

    # Deleted, or on a contact deleted since: still the note that was written, and nothing new.
    await notes.delete(actor, contact, note_id)
    assert (await api.delete(f"{API}/contacts/{contact}", headers=tenant.headers)).status_code == 204
    late = await notes.create(actor, contact, {"body": "late"}, id=note_id)
    assert (late.id, late.body, late.deleted_at is not None) == (note_id, "From the workflow", True)
    assert await event_types(container, str(note_id)) == ["note.created", "note.deleted"]

    # Another location cannot see the note, and cannot take its id either.
    theirs = uuid.UUID((await new_contact(api, other_tenant))["id"])
    with pytest.raises(Conflict):
        await notes.create(Actor.operator_at(other_tenant.location_id), theirs, {"body": "x"}, id=raced_id)
    assert await event_types(container, str(raced_id)) == ["note.created"]
    without = await notes.create(Actor.operator_at(other_tenant.location_id), theirs, {"body": "fresh"})
    assert without.id not in (note_id, raced_id)


async def test_notes_list_pinned_first_then_newest_with_pages(api: httpx.AsyncClient, tenant: Tenant) -> None:
    contact = await new_contact(api, tenant)
    notes = f"{API}/contacts/{contact['id']}/notes"
    ids = []
    for i in range(5):
        response = await api.post(
            notes, headers=tenant.headers, json={"body": f"n{i}", "pinned": i in (1, 3)}
        )
        ids.append(response.json()["id"])
    expected = [ids[3], ids[1], ids[4], ids[2], ids[0]]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(notes, headers=tenant.headers, params=params)).json()
        seen += [n["id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected
    assert_problem(await api.get(notes, headers=tenant.headers, params={"cursor": "garbage"}), 422)


async def test_bad_note_input_is_refused_with_pointers(api: httpx.AsyncClient, tenant: Tenant) -> None:
    contact = await new_contact(api, tenant)
    notes = f"{API}/contacts/{contact['id']}/notes"
    missing = assert_problem(await api.post(notes, headers=tenant.headers, json={"pinned": True}), 422)
    assert pointers(missing) == ["/body"]
    blank = assert_problem(await api.post(notes, headers=tenant.headers, json={"body": "  \n "}), 422)
    assert pointers(blank) == ["/body"]
    too_long = assert_problem(await api.post(notes, headers=tenant.headers, json={"body": "x" * 50_001}), 422)
    assert pointers(too_long) == ["/body"]
    assert "50,000" in too_long["errors"][0]["detail"]
    assert (await api.post(notes, headers=tenant.headers, json={"body": "x" * 50_000})).status_code == 201
    unknown = await api.post(notes, headers=tenant.headers, json={"body": "hi", "colour": "red"})
    assert pointers(assert_problem(unknown, 422)) == ["/colour"]
    null_body = await api.post(notes, headers=tenant.headers, json={"body": None})
    assert pointers(assert_problem(null_body, 422)) == ["/body"]
    listed = (await api.get(notes, headers=tenant.headers)).json()["items"]
    assert len(listed) == 1  # nothing else was written


async def test_other_tenant_and_deleted_contact_get_404(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    contact = await new_contact(api, tenant)
    notes = f"{API}/contacts/{contact['id']}/notes"
    tasks = f"{API}/contacts/{contact['id']}/tasks"
    note = (await api.post(notes, headers=tenant.headers, json={"body": "mine"})).json()
    task = (await api.post(tasks, headers=tenant.headers, json={"title": "mine"})).json()
    for call in (
        api.get(notes, headers=other_tenant.headers),
        api.post(notes, headers=other_tenant.headers, json={"body": "theirs"}),
        api.get(f"{notes}/{note['id']}", headers=other_tenant.headers),
        api.patch(f"{notes}/{note['id']}", headers=other_tenant.headers, json={"pinned": True}),
        api.delete(f"{notes}/{note['id']}", headers=other_tenant.headers),
        api.get(tasks, headers=other_tenant.headers),
        api.post(tasks, headers=other_tenant.headers, json={"title": "theirs"}),
        api.get(f"{tasks}/{task['id']}", headers=other_tenant.headers),
        api.patch(f"{tasks}/{task['id']}", headers=other_tenant.headers, json={"completed": True}),
        api.delete(f"{tasks}/{task['id']}", headers=other_tenant.headers),
    ):
        assert_problem(await call, 404)
    theirs = (await api.get(f"{API}/tasks", headers=other_tenant.headers)).json()["items"]
    assert all(t["id"] != task["id"] for t in theirs)
    # A note or task asked for under the wrong contact is not found either.
    elsewhere = await new_contact(api, tenant)
    assert_problem(
        await api.get(f"{API}/contacts/{elsewhere['id']}/notes/{note['id']}", headers=tenant.headers), 404
    )
    assert_problem(
        await api.get(f"{API}/contacts/{elsewhere['id']}/tasks/{task['id']}", headers=tenant.headers), 404
    )

    assert (await api.delete(f"{API}/contacts/{contact['id']}", headers=tenant.headers)).status_code == 204
    for call in (
        api.get(notes, headers=tenant.headers),
        api.get(tasks, headers=tenant.headers),
        api.post(notes, headers=tenant.headers, json={"body": "late"}),
        api.get(f"{tasks}/{task['id']}", headers=tenant.headers),
    ):
        assert_problem(await call, 404)
    listed = (await api.get(f"{API}/tasks", headers=tenant.headers)).json()["items"]
    assert all(t["id"] != task["id"] for t in listed)
    await api.post(f"{API}/contacts/{contact['id']}/restore", headers=tenant.headers)
    listed = (await api.get(f"{API}/tasks", headers=tenant.headers)).json()["items"]
    assert any(t["id"] == task["id"] for t in listed)


async def test_scopes_are_enforced(api: httpx.AsyncClient, tenant: Tenant, container: Container) -> None:
    contact = await new_contact(api, tenant)
    _, secret = await container.api_keys().create(
        Actor.operator(),
        "read only",
        location_id=tenant.location_id,
        scopes=frozenset({Permission.CONTACTS_READ}),
    )
    reader = {"Authorization": f"Bearer {secret}"}
    notes = f"{API}/contacts/{contact['id']}/notes"
    assert (await api.get(notes, headers=reader)).status_code == 200
    assert (await api.get(f"{API}/tasks", headers=reader)).status_code == 200
    assert_problem(await api.post(notes, headers=reader, json={"body": "no"}), 403)
    assert_problem(
        await api.post(f"{API}/contacts/{contact['id']}/tasks", headers=reader, json={"title": "no"}), 403
    )


# -- tasks -----------------------------------------------------------------------------------------
async def test_task_lifecycle_completion_event_once(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    contact = await new_contact(api, tenant)
    tasks = f"{API}/contacts/{contact['id']}/tasks"
    created = await api.post(
        tasks,
        headers=tenant.headers,
        json={"title": "  Call   back ", "body": "About the quote", "due_at": "2026-03-01T09:00:00-05:00"},
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert (task["title"], task["due_at"], task["completed"], task["completed_at"]) == (
        "Call back",
        "2026-03-01T14:00:00Z",
        False,
        None,
    )
    url = f"{tasks}/{task['id']}"
    done = (await api.patch(url, headers=tenant.headers, json={"completed": True})).json()
    assert done["completed"] is True
    assert done["completed_at"] is not None
    again = (await api.patch(url, headers=tenant.headers, json={"completed": True})).json()
    assert again["completed_at"] == done["completed_at"]  # completing twice changes nothing
    renamed = (await api.patch(url, headers=tenant.headers, json={"title": "Call back today"})).json()
    assert renamed["completed"] is True
    reopened = (await api.patch(url, headers=tenant.headers, json={"completed": False})).json()
    assert (reopened["completed"], reopened["completed_at"]) == (False, None)
    cleared = (await api.patch(url, headers=tenant.headers, json={"due_at": None, "body": None})).json()
    assert (cleared["due_at"], cleared["body"]) == (None, None)
    assert (await api.delete(url, headers=tenant.headers)).status_code == 204
    assert_problem(await api.get(url, headers=tenant.headers), 404)
    assert await event_types(container, task["id"]) == [
        "task.created",
        "task.completed",
        "task.updated",
        "task.updated",
        "task.updated",
        "task.deleted",
    ]
    audit = await rows(
        container, "SELECT action FROM audit_log WHERE entity_id = :i ORDER BY created_at", i=task["id"]
    )
    assert [a.action for a in audit] == ["create", "update", "update", "update", "update", "delete"]


async def test_a_task_created_twice_with_one_id_is_written_once(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, container: Container
) -> None:
    contact = uuid.UUID((await new_contact(api, tenant))["id"])
    actor, tasks = Actor.operator_at(tenant.location_id), container.tasks()
    task_id = uuid.uuid5(uuid.NAMESPACE_URL, f"enrollment/{uuid.uuid4()}/step/2/visit/1")
    first = await tasks.create(actor, contact, {"title": "Call back", "completed": True}, id=task_id)
    again = await tasks.create(actor, contact, {"title": "Call back again"}, id=task_id)
    assert (again, again.id) == (first, task_id)
    assert len(await rows(container, "SELECT id FROM tasks WHERE id = :i", i=task_id)) == 1
    assert sorted(await event_types(container, str(task_id))) == ["task.completed", "task.created"]
    assert await audit_actions(container, task_id) == ["create"]

    raced_id = uuid.uuid4()
    answers = await asyncio.gather(
        *(tasks.create(actor, contact, {"title": f"race {i}"}, id=raced_id) for i in range(6))
    )
    assert len({(a.id, a.title) for a in answers}) == 1
    assert await event_types(container, str(raced_id)) == ["task.created"]

    await tasks.delete(actor, contact, task_id)
    late = await tasks.create(actor, contact, {"title": "late"}, id=task_id)
    assert (late.title, late.deleted_at is not None) == ("Call back", True)
    assert await audit_actions(container, task_id) == ["create", "delete"]

    theirs = uuid.UUID((await new_contact(api, other_tenant))["id"])
    with pytest.raises(Conflict):
        await tasks.create(Actor.operator_at(other_tenant.location_id), theirs, {"title": "x"}, id=raced_id)
    assert await event_types(container, str(raced_id)) == ["task.created"]


async def test_racing_completions_emit_one_event(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    contact = await new_contact(api, tenant)
    tasks = f"{API}/contacts/{contact['id']}/tasks"
    task = (await api.post(tasks, headers=tenant.headers, json={"title": "Race"})).json()
    answers = await asyncio.gather(
        *(
            api.patch(f"{tasks}/{task['id']}", headers=tenant.headers, json={"completed": True})
            for _ in range(8)
        )
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["completed_at"] for a in answers}) == 1
    assert (await event_types(container, task["id"])).count("task.completed") == 1


async def test_bad_task_input_is_refused_with_pointers(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    contact = await new_contact(api, tenant)
    tasks = f"{API}/contacts/{contact['id']}/tasks"
    everything_wrong = await api.post(
        tasks,
        headers=tenant.headers,
        json={"title": "x" * 501, "due_at": "next tuesday", "assignee_id": "nobody", "body": " "},
    )
    assert pointers(assert_problem(everything_wrong, 422)) == ["/assignee_id", "/body", "/due_at", "/title"]
    missing = assert_problem(await api.post(tasks, headers=tenant.headers, json={"body": "no title"}), 422)
    assert pointers(missing) == ["/title"]
    naive = assert_problem(
        await api.post(tasks, headers=tenant.headers, json={"title": "t", "due_at": "2026-03-01T09:00:00"}),
        422,
    )
    assert pointers(naive) == ["/due_at"]
    assert "time zone" in naive["errors"][0]["detail"]
    null_title = await api.post(tasks, headers=tenant.headers, json={"title": None})
    assert pointers(assert_problem(null_title, 422)) == ["/title"]
    task = (await api.post(tasks, headers=tenant.headers, json={"title": "ok"})).json()
    bad_patch = await api.patch(
        f"{tasks}/{task['id']}", headers=tenant.headers, json={"title": "", "due_at": "2026-03-01"}
    )
    assert pointers(assert_problem(bad_patch, 422)) == ["/due_at", "/title"]
    unchanged = (await api.get(f"{tasks}/{task['id']}", headers=tenant.headers)).json()
    assert (unchanged["title"], unchanged["due_at"]) == ("ok", None)
    assert await event_types(container, task["id"]) == ["task.created"]


async def test_assignee_must_reach_the_location(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, container: Container
) -> None:
    contact = await new_contact(api, tenant)
    tasks = f"{API}/contacts/{contact['id']}/tasks"
    granted = await new_user(container, tenant)
    admin = await new_user(container, tenant, AgencyRole.ADMIN, granted=False)
    ungranted = await new_user(container, tenant, granted=False)
    outsider = await new_user(container, other_tenant)
    for ok in (granted, admin):
        response = await api.post(tasks, headers=tenant.headers, json={"title": "t", "assignee_id": str(ok)})
        assert response.status_code == 201, response.text
        assert response.json()["assignee_id"] == str(ok)
    for bad in (ungranted, outsider, uuid.uuid4()):
        response = await api.post(tasks, headers=tenant.headers, json={"title": "t", "assignee_id": str(bad)})
        assert pointers(assert_problem(response, 422)) == ["/assignee_id"]
    task = (await api.post(tasks, headers=tenant.headers, json={"title": "t"})).json()
    refused = await api.patch(
        f"{tasks}/{task['id']}", headers=tenant.headers, json={"assignee_id": str(outsider)}
    )
    assert pointers(assert_problem(refused, 422)) == ["/assignee_id"]
    unassigned = await api.patch(f"{tasks}/{task['id']}", headers=tenant.headers, json={"assignee_id": None})
    assert unassigned.json()["assignee_id"] is None


async def test_location_task_list_filters_and_pages(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    first, second = await new_contact(api, tenant), await new_contact(api, tenant)
    ann = await new_user(container, tenant)
    made: dict[str, str] = {}
    specs = [
        ("a", first, "2026-03-03T10:00:00Z", ann, False),
        ("b", second, "2026-03-01T10:00:00+02:00", None, False),
        ("c", first, None, ann, False),
        ("d", second, "2026-03-02T10:00:00Z", ann, True),
        ("e", first, "2026-03-01T10:00:00Z", None, True),
        ("f", second, None, None, False),
        ("g", first, "2026-03-02T10:00:00Z", None, False),
    ]
    for title, contact, due, assignee, completed in specs:
        body: dict[str, Any] = {"title": title, "due_at": due, "completed": completed}
        if assignee:
            body["assignee_id"] = str(assignee)
        response = await api.post(f"{API}/contacts/{contact['id']}/tasks", headers=tenant.headers, json=body)
        assert response.status_code == 201, response.text
        made[title] = response.json()["id"]

    async def titles(**params: Any) -> list[str]:
        got: list[str] = []
        cursor = None
        while True:
            query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
            response = await api.get(f"{API}/tasks", headers=tenant.headers, params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            got += [t["title"] for t in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                return got

    # b is due 08:00 UTC on 1 March, e at 10:00; d and g share a due time and order by id.
    dg = "".join(sorted("dg", key=lambda t: made[t]))
    assert "".join(await titles()) == "be" + dg + "a" + "".join(sorted("cf", key=lambda t: made[t]))
    assert await titles(assignee_id=str(ann)) == sorted(["a", "c", "d"], key=lambda t: (t == "c", t != "d"))
    assert await titles(completed="true") == ["e", "d"]
    assert "".join(await titles(completed="false")) == "bga" + "".join(sorted("cf", key=lambda t: made[t]))
    assert "".join(await titles(due_after="2026-03-02T10:00:00Z")) == dg + "a"
    assert await titles(due_before="2026-03-01T10:00:00Z") == ["b"]
    assert (
        "".join(await titles(due_after="2026-03-01T09:00:00Z", due_before="2026-03-03T00:00:00Z")) == "e" + dg
    )
    assert await titles(assignee_id=str(ann), completed="false", due_before="2026-03-04T00:00:00Z") == ["a"]
    contact_tasks = await api.get(f"{API}/contacts/{first['id']}/tasks", headers=tenant.headers)
    assert [t["title"] for t in contact_tasks.json()["items"]] == ["e", "g", "a", "c"]

    bad = await api.get(
        f"{API}/tasks",
        headers=tenant.headers,
        params={
            "completed": "maybe",
            "assignee_id": "x",
            "due_before": "2026-03-01T00:00:00",
            "due_after": "soon",
        },
    )
    assert pointers(assert_problem(bad, 422)) == ["/assignee_id", "/completed", "/due_after", "/due_before"]
    crossed = await api.get(
        f"{API}/tasks",
        headers=tenant.headers,
        params={"due_after": "2026-03-02T00:00:00Z", "due_before": "2026-03-01T00:00:00Z"},
    )
    assert pointers(assert_problem(crossed, 422)) == ["/due_before"]
    assert_problem(await api.get(f"{API}/tasks", headers=tenant.headers, params={"cursor": "bm9wZQ"}), 422)
