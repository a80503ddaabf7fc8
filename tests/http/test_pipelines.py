"""Pipelines, stages, opportunities, moves and the board through the API."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ghl_adapters.container import Container
from ghl_core.identity.api_keys import parse_scopes
from ghl_core.shared.errors import Conflict
from ghl_core.tenancy.permissions import Actor
from http_kit import API, Tenant, assert_problem, pointers
from support import new_user


async def make_contact(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> str:
    body = {"email": f"c.{uuid.uuid4().hex[:10]}@example.com", **fields}
    response = await api.post(f"{API}/contacts", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def make_pipeline(
    api: httpx.AsyncClient, tenant: Tenant, stages: tuple[str, ...] = ("New", "Qualified", "Won")
) -> dict[str, Any]:
    response = await api.post(
        f"{API}/pipelines",
        headers=tenant.headers,
        json={"name": f"Sales {uuid.uuid4().hex[:6]}", "stages": [{"name": s} for s in stages]},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_opportunity(
    api: httpx.AsyncClient, tenant: Tenant, pipeline: dict[str, Any], contact_id: str, **fields: Any
) -> dict[str, Any]:
    payload = {"pipeline_id": pipeline["id"], "contact_id": contact_id, "name": "Deal", **fields}
    response = await api.post(f"{API}/opportunities", headers=tenant.headers, json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def rows(container: Container, sql: str, **params: Any) -> list[Any]:
    async with container.engines().owner.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


def stage_names(pipeline: dict[str, Any]) -> list[str]:
    assert [s["position"] for s in pipeline["stages"]] == list(range(len(pipeline["stages"])))
    return [s["name"] for s in pipeline["stages"]]


# -- pipelines and stages ---------------------------------------------------------------------------


async def test_pipeline_create_read_rename_list(api: httpx.AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(api, tenant)
    assert stage_names(pipeline) == ["New", "Qualified", "Won"]
    url = f"{API}/pipelines/{pipeline['id']}"
    assert (await api.get(url, headers=tenant.headers)).json() == pipeline
    renamed = await api.patch(url, headers=tenant.headers, json={"name": "  Renewals  "})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Renewals"
    listed = (await api.get(f"{API}/pipelines", headers=tenant.headers)).json()
    assert [p["id"] for p in listed["items"]] == [pipeline["id"]]
    clash = await api.post(
        f"{API}/pipelines", headers=tenant.headers, json={"name": "renewals", "stages": [{"name": "A"}]}
    )
    assert_problem(clash, 409, "duplicate_name")


async def test_pipeline_validation_pointers(api: httpx.AsyncClient, tenant: Tenant) -> None:
    bad = await api.post(
        f"{API}/pipelines",
        headers=tenant.headers,
        json={"name": " ", "stages": [{"name": "New"}, {"name": "new "}, {"title": "x"}, "Won"]},
    )
    body = assert_problem(bad, 422, "validation_failed")
    assert pointers(body) == ["/name", "/stages/1/name", "/stages/2", "/stages/3"]
    empty = await api.post(f"{API}/pipelines", headers=tenant.headers, json={"name": "P", "stages": []})
    assert pointers(assert_problem(empty, 422)) == ["/stages"]
    missing = await api.post(f"{API}/pipelines", headers=tenant.headers, json={})
    assert pointers(assert_problem(missing, 422)) == ["/name", "/stages"]
    assert (await api.get(f"{API}/pipelines", headers=tenant.headers)).json()["items"] == []


async def test_add_rename_reorder_delete_stages(api: httpx.AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(api, tenant)
    url = f"{API}/pipelines/{pipeline['id']}"
    at_end = await api.post(f"{url}/stages", headers=tenant.headers, json={"name": "Lost"})
    assert at_end.status_code == 201
    assert stage_names(at_end.json()) == ["New", "Qualified", "Won", "Lost"]
    inserted = (
        await api.post(f"{url}/stages", headers=tenant.headers, json={"name": "Demo", "position": 1})
    ).json()
    assert stage_names(inserted) == ["New", "Demo", "Qualified", "Won", "Lost"]
    ids = {s["name"]: s["id"] for s in inserted["stages"]}
    dup = await api.post(f"{url}/stages", headers=tenant.headers, json={"name": "demo"})
    assert pointers(assert_problem(dup, 422)) == ["/name"]
    bad_position = await api.post(f"{url}/stages", headers=tenant.headers, json={"name": "X", "position": -1})
    assert pointers(assert_problem(bad_position, 422)) == ["/position"]

    renamed = await api.patch(
        f"{url}/stages/{ids['Demo']}", headers=tenant.headers, json={"name": "Proposal"}
    )
    assert stage_names(renamed.json()) == ["New", "Proposal", "Qualified", "Won", "Lost"]

    order = [ids["Lost"], ids["Won"], ids["Qualified"], ids["Demo"], ids["New"]]
    reordered = await api.put(f"{url}/stages/order", headers=tenant.headers, json={"stage_ids": order})
    assert reordered.status_code == 200, reordered.text
    assert stage_names(reordered.json()) == ["Lost", "Won", "Qualified", "Proposal", "New"]
    assert (await api.get(url, headers=tenant.headers)).json()["stages"] == reordered.json()["stages"]

    # The list must be exactly the pipeline's stages: none missing, none foreign, none twice.
    stranger = str(uuid.uuid4())
    wrong = await api.put(
        f"{url}/stages/order", headers=tenant.headers, json={"stage_ids": [*order[:-1], stranger]}
    )
    assert pointers(assert_problem(wrong, 422)) == ["/stage_ids", "/stage_ids/4"]
    twice = await api.put(
        f"{url}/stages/order", headers=tenant.headers, json={"stage_ids": [*order, order[0]]}
    )
    assert pointers(assert_problem(twice, 422)) == ["/stage_ids/5"]
    not_uuid = await api.put(f"{url}/stages/order", headers=tenant.headers, json={"stage_ids": ["x"]})
    assert pointers(assert_problem(not_uuid, 422)) == ["/stage_ids/0"]
    assert stage_names((await api.get(url, headers=tenant.headers)).json()) == [
        "Lost",
        "Won",
        "Qualified",
        "Proposal",
        "New",
    ]

    deleted = await api.delete(f"{url}/stages/{ids['Won']}", headers=tenant.headers)
    assert deleted.status_code == 200, deleted.text
    assert stage_names(deleted.json()) == ["Lost", "Qualified", "Proposal", "New"]
    assert_problem(await api.delete(f"{url}/stages/{ids['Won']}", headers=tenant.headers), 404)


async def test_delete_stage_only_when_empty_or_with_a_target(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    pipeline = await make_pipeline(api, tenant)
    new, qualified, won = (s["id"] for s in pipeline["stages"])
    contact = await make_contact(api, tenant)
    opportunities = [
        await make_opportunity(api, tenant, pipeline, contact, stage_id=qualified) for _ in range(3)
    ]
    url = f"{API}/pipelines/{pipeline['id']}/stages/{qualified}"

    refused = await api.delete(url, headers=tenant.headers)
    assert_problem(refused, 409)
    for target, pointer in ((qualified, "/move_to"), (str(uuid.uuid4()), "/move_to"), ("nope", "/move_to")):
        bad = await api.delete(url, headers=tenant.headers, params={"move_to": target})
        assert pointers(assert_problem(bad, 422)) == [pointer]
    assert stage_names(
        (await api.get(f"{API}/pipelines/{pipeline['id']}", headers=tenant.headers)).json()
    ) == [
        "New",
        "Qualified",
        "Won",
    ]

    moved = await api.delete(url, headers=tenant.headers, params={"move_to": won})
    assert moved.status_code == 200, moved.text
    assert stage_names(moved.json()) == ["New", "Won"]
    for opportunity in opportunities:
        got = (await api.get(f"{API}/opportunities/{opportunity['id']}", headers=tenant.headers)).json()
        assert got["stage_id"] == won
        history = (
            await api.get(f"{API}/opportunities/{opportunity['id']}/moves", headers=tenant.headers)
        ).json()
        assert [(m["from_stage_id"], m["to_stage_id"]) for m in history["items"]] == [
            (None, qualified),
            (qualified, won),
        ]
    events = await rows(
        container,
        "SELECT count(*) FROM domain_events WHERE type = 'opportunity.stage_changed' AND location_id = :l",
        l=tenant.location_id,
    )
    assert events[0][0] == 3

    assert (
        await api.delete(f"{API}/pipelines/{pipeline['id']}/stages/{new}", headers=tenant.headers)
    ).status_code == 200
    last = await api.delete(
        f"{API}/pipelines/{pipeline['id']}/stages/{won}", headers=tenant.headers, params={"move_to": new}
    )
    assert_problem(last, 409)
    only = await api.delete(f"{API}/pipelines/{pipeline['id']}/stages/{won}", headers=tenant.headers)
    assert_problem(only, 409)


async def test_delete_pipeline_only_without_opportunities(api: httpx.AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(api, tenant)
    opportunity = await make_opportunity(api, tenant, pipeline, await make_contact(api, tenant))
    url = f"{API}/pipelines/{pipeline['id']}"
    assert_problem(await api.delete(url, headers=tenant.headers), 409)
    assert (
        await api.delete(f"{API}/opportunities/{opportunity['id']}", headers=tenant.headers)
    ).status_code == 204
    assert (await api.delete(url, headers=tenant.headers)).status_code == 204
    assert_problem(await api.get(url, headers=tenant.headers), 404)
    # The name is free again once the pipeline is gone.
    again = await api.post(
        f"{API}/pipelines", headers=tenant.headers, json={"name": pipeline["name"], "stages": [{"name": "A"}]}
    )
    assert again.status_code == 201


# -- opportunities ----------------------------------------------------------------------------------


async def test_opportunity_lifecycle_events_audit_and_history(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    pipeline = await make_pipeline(api, tenant)
    new, qualified, won = (s["id"] for s in pipeline["stages"])
    contact = await make_contact(api, tenant)
    created = await make_opportunity(
        api,
        tenant,
        pipeline,
        contact,
        value={"amount": 150000, "currency": "usd"},
        source="web",
        custom_fields={"deal_size": "large"},
    )
    assert created["stage_id"] == new  # the first stage unless told
    assert (created["status"], created["value"]) == ("open", {"amount": 150000, "currency": "USD"})
    url = f"{API}/opportunities/{created['id']}"
    assert (await api.get(url, headers=tenant.headers)).json() == created

    for stranger in (uuid.uuid4(), await new_user(container, tenant, granted=False)):
        refused = await api.patch(url, headers=tenant.headers, json={"assigned_user_id": str(stranger)})
        assert pointers(assert_problem(refused, 422)) == ["/assigned_user_id"]
    user = str(await new_user(container, tenant))
    patched = await api.patch(
        url,
        headers=tenant.headers,
        json={"value": {"amount": 200000, "currency": "USD"}, "assigned_user_id": user},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["assigned_user_id"] == user
    moved = await api.post(f"{url}/move", headers=tenant.headers, json={"stage_id": qualified})
    assert moved.json()["stage_id"] == qualified
    lost = await api.post(
        f"{url}/move", headers=tenant.headers, json={"status": "lost", "lost_reason": "Budget"}
    )
    assert (lost.json()["status"], lost.json()["lost_reason"]) == ("lost", "Budget")
    assert lost.json()["last_status_change_at"] >= moved.json()["last_stage_change_at"]
    reopened = await api.post(f"{url}/move", headers=tenant.headers, json={"stage_id": won, "status": "won"})
    assert (reopened.json()["status"], reopened.json()["lost_reason"]) == ("won", None)
    same = await api.post(f"{url}/move", headers=tenant.headers, json={"stage_id": won})
    assert same.json()["updated_at"] == reopened.json()["updated_at"]  # nothing changed, nothing recorded
    renamed = await api.patch(url, headers=tenant.headers, json={"name": "Big deal", "source": None})
    assert (renamed.json()["name"], renamed.json()["source"]) == ("Big deal", None)

    history = (await api.get(f"{url}/moves", headers=tenant.headers)).json()["items"]
    assert [(m["from_stage_id"], m["to_stage_id"], m["from_status"], m["to_status"]) for m in history] == [
        (None, new, None, "open"),
        (new, qualified, "open", "open"),
        (qualified, qualified, "open", "lost"),
        (qualified, won, "lost", "won"),
    ]
    assert [m["until"] for m in history] == [m["moved_at"] for m in history[1:]] + [None]
    assert {m["moved_by_type"] for m in history} == {"api_key"}

    events = await rows(
        container,
        "SELECT type FROM domain_events WHERE entity_id = :i ORDER BY occurred_at, type",
        i=created["id"],
    )
    assert [e[0] for e in events] == [
        "opportunity.created",
        "opportunity.assigned",
        "opportunity.value_changed",
        "opportunity.stage_changed",
        "opportunity.status_changed",
        "opportunity.stage_changed",
        "opportunity.status_changed",
        "opportunity.updated",
    ]
    audit = await rows(
        container, "SELECT action FROM audit_log WHERE entity_id = :i ORDER BY created_at", i=created["id"]
    )
    assert [a[0] for a in audit] == ["create", "update", "move", "move", "move", "update"]

    assert (await api.delete(url, headers=tenant.headers)).status_code == 204
    assert_problem(await api.get(url, headers=tenant.headers), 404)
    assert_problem(await api.post(f"{url}/move", headers=tenant.headers, json={"status": "open"}), 404)
    deleted = await rows(
        container,
        "SELECT type FROM domain_events WHERE entity_id = :i AND type = 'opportunity.deleted'",
        i=created["id"],
    )
    assert len(deleted) == 1


async def test_an_opportunity_created_twice_with_one_id_is_written_once(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, container: Container
) -> None:
    """The workflow engine's retry: the same id again returns the first opportunity, writes nothing."""
    pipeline = await make_pipeline(api, tenant)
    contact = await make_contact(api, tenant)
    actor, opportunities = Actor.operator_at(tenant.location_id), container.opportunities()
    data = {"pipeline_id": pipeline["id"], "contact_id": contact, "name": "From the workflow"}
    opportunity_id = uuid.uuid5(uuid.NAMESPACE_URL, f"enrollment/{uuid.uuid4()}/step/3/visit/1")
    first = await opportunities.create(actor, data, id=opportunity_id)
    assert first.id == opportunity_id
    again = await opportunities.create(actor, {**data, "name": "A retry"}, id=opportunity_id)
    assert again == first

    async def written(entity_id: uuid.UUID) -> tuple[int, list[str], list[str], int]:
        found = await rows(container, "SELECT id FROM opportunities WHERE id = :i", i=entity_id)
        events = await rows(container, "SELECT type FROM domain_events WHERE entity_id = :i", i=entity_id)
        audit = await rows(container, "SELECT action FROM audit_log WHERE entity_id = :i", i=entity_id)
        moves = await rows(
            container, "SELECT id FROM opportunity_moves WHERE opportunity_id = :i", i=entity_id
        )
        return len(found), sorted(e[0] for e in events), sorted(a[0] for a in audit), len(moves)

    assert await written(opportunity_id) == (1, ["opportunity.created"], ["create"], 1)

    raced_id = uuid.uuid4()
    answers = await asyncio.gather(
        *(opportunities.create(actor, {**data, "name": f"race {i}"}, id=raced_id) for i in range(6))
    )
    assert len({(a.id, a.name) for a in answers}) == 1
    assert await written(raced_id) == (1, ["opportunity.created"], ["create"], 1)

    await opportunities.delete(actor, opportunity_id)
    late = await opportunities.create(actor, data, id=opportunity_id)
    assert (late.id, late.deleted_at is not None) == (opportunity_id, True)
    assert await written(opportunity_id) == (
        1,
        ["opportunity.created", "opportunity.deleted"],
        ["create", "delete"],
        1,
    )

    their_pipeline = await make_pipeline(api, other_tenant)
    their_contact = await make_contact(api, other_tenant)
    theirs = {"pipeline_id": their_pipeline["id"], "contact_id": their_contact, "name": "Theirs"}
    with pytest.raises(Conflict):
        await opportunities.create(Actor.operator_at(other_tenant.location_id), theirs, id=raced_id)
    assert await written(raced_id) == (1, ["opportunity.created"], ["create"], 1)


async def test_opportunity_validation_pointers(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    pipeline = await make_pipeline(api, tenant)
    other_pipeline = await make_pipeline(api, tenant, ("A", "B"))
    contact = await make_contact(api, tenant)
    missing = await api.post(f"{API}/opportunities", headers=tenant.headers, json={})
    assert pointers(assert_problem(missing, 422)) == ["/contact_id", "/name", "/pipeline_id"]
    bad = await api.post(
        f"{API}/opportunities",
        headers=tenant.headers,
        json={
            "pipeline_id": pipeline["id"],
            "contact_id": "nope",
            "name": "Deal",
            "value": {"amount": 10.5, "currency": "USS"},
            "status": "pending",
            "custom_fields": {"Bad Key": 1},
        },
    )
    assert pointers(assert_problem(bad, 422)) == [
        "/contact_id",
        "/custom_fields/Bad Key",
        "/status",
        "/value/amount",
        "/value/currency",
    ]
    for value, pointer in (({"amount": -1, "currency": "USD"}, "/value/amount"), ("100", "/value")):
        wrong = await api.post(
            f"{API}/opportunities",
            headers=tenant.headers,
            json={"pipeline_id": pipeline["id"], "contact_id": contact, "name": "D", "value": value},
        )
        assert pointer in pointers(assert_problem(wrong, 422))
    reason = await api.post(
        f"{API}/opportunities",
        headers=tenant.headers,
        json={"pipeline_id": pipeline["id"], "contact_id": contact, "name": "D", "lost_reason": "why"},
    )
    assert pointers(assert_problem(reason, 422)) == ["/lost_reason"]
    foreign_contact = await make_contact(api, other_tenant)
    deleted_contact = await make_contact(api, tenant)
    assert (await api.delete(f"{API}/contacts/{deleted_contact}", headers=tenant.headers)).status_code == 204
    for contact_id in (foreign_contact, deleted_contact, str(uuid.uuid4())):
        refused = await api.post(
            f"{API}/opportunities",
            headers=tenant.headers,
            json={"pipeline_id": pipeline["id"], "contact_id": contact_id, "name": "D"},
        )
        assert pointers(assert_problem(refused, 422)) == ["/contact_id"]
    wrong_stage = await api.post(
        f"{API}/opportunities",
        headers=tenant.headers,
        json={
            "pipeline_id": pipeline["id"],
            "stage_id": other_pipeline["stages"][0]["id"],
            "contact_id": contact,
            "name": "D",
        },
    )
    assert pointers(assert_problem(wrong_stage, 422)) == ["/stage_id"]

    opportunity = await make_opportunity(api, tenant, pipeline, contact)
    url = f"{API}/opportunities/{opportunity['id']}"
    for payload, expected in (
        ({"stage_id": other_pipeline["stages"][1]["id"]}, ["/stage_id"]),
        ({"lost_reason": "Budget"}, ["/lost_reason"]),
        ({"status": "won", "lost_reason": "Budget"}, ["/lost_reason"]),
        ({}, ["/"]),
        ({"name": "x"}, ["/name"]),
    ):
        answer = await api.post(f"{url}/move", headers=tenant.headers, json=payload)
        assert pointers(assert_problem(answer, 422)) == expected, payload
    other_pipeline_patch = await api.patch(
        url, headers=tenant.headers, json={"pipeline_id": other_pipeline["id"]}
    )
    assert pointers(assert_problem(other_pipeline_patch, 422)) == ["/pipeline_id"]
    nulls = await api.patch(
        url, headers=tenant.headers, json={"name": None, "stage_id": None, "status": None}
    )
    assert pointers(assert_problem(nulls, 422)) == ["/name", "/stage_id", "/status"]
    assert (await api.get(url, headers=tenant.headers)).json() == opportunity
    history = (await api.get(f"{url}/moves", headers=tenant.headers)).json()["items"]
    assert len(history) == 1


async def test_list_filters(api: httpx.AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(api, tenant)
    other = await make_pipeline(api, tenant)
    contact = await make_contact(api, tenant)
    a = await make_opportunity(api, tenant, pipeline, contact, status="won")
    b = await make_opportunity(api, tenant, pipeline, contact)
    c = await make_opportunity(api, tenant, other, contact)
    listed = (await api.get(f"{API}/opportunities", headers=tenant.headers)).json()["items"]
    assert [o["id"] for o in listed] == [c["id"], b["id"], a["id"]]
    by_pipeline = await api.get(
        f"{API}/opportunities",
        headers=tenant.headers,
        params={"pipeline_id": pipeline["id"], "status": "open"},
    )
    assert [o["id"] for o in by_pipeline.json()["items"]] == [b["id"]]
    bad = await api.get(
        f"{API}/opportunities", headers=tenant.headers, params={"status": "x", "pipeline_id": "y"}
    )
    assert pointers(assert_problem(bad, 422)) == ["/pipeline_id", "/status"]


async def test_another_tenants_ids_answer_404(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    pipeline = await make_pipeline(api, tenant)
    stage = pipeline["stages"][0]["id"]
    opportunity = await make_opportunity(api, tenant, pipeline, await make_contact(api, tenant))
    p, o, h = (
        f"{API}/pipelines/{pipeline['id']}",
        f"{API}/opportunities/{opportunity['id']}",
        other_tenant.headers,
    )
    for call in (
        api.get(p, headers=h),
        api.patch(p, headers=h, json={"name": "Mine"}),
        api.delete(p, headers=h),
        api.post(f"{p}/stages", headers=h, json={"name": "X"}),
        api.patch(f"{p}/stages/{stage}", headers=h, json={"name": "X"}),
        api.put(f"{p}/stages/order", headers=h, json={"stage_ids": [stage]}),
        api.delete(f"{p}/stages/{stage}", headers=h),
        api.get(f"{p}/board", headers=h),
        api.get(f"{p}/board/stages/{stage}", headers=h),
        api.get(o, headers=h),
        api.patch(o, headers=h, json={"name": "Mine"}),
        api.delete(o, headers=h),
        api.post(f"{o}/move", headers=h, json={"status": "won"}),
        api.get(f"{o}/moves", headers=h),
    ):
        assert_problem(await call, 404)
    assert (await api.get(f"{API}/pipelines", headers=h)).json()["items"] == []
    assert (await api.get(f"{API}/opportunities", headers=h)).json()["items"] == []
    theirs = await api.post(
        f"{API}/opportunities",
        headers=h,
        json={
            "pipeline_id": pipeline["id"],
            "contact_id": await make_contact(api, other_tenant),
            "name": "D",
        },
    )
    assert pointers(assert_problem(theirs, 422)) == ["/pipeline_id"]
    assert (await api.get(o, headers=tenant.headers)).json() == opportunity


async def test_read_only_key_cannot_write(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    _, secret = await container.api_keys().create(
        Actor.operator(), "ro", scopes=parse_scopes(["opportunities:read"]), location_id=tenant.location_id
    )
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await api.get(f"{API}/pipelines", headers=headers)).status_code == 200
    denied = await api.post(
        f"{API}/pipelines", headers=headers, json={"name": "P", "stages": [{"name": "A"}]}
    )
    assert_problem(denied, 403)


# -- the board --------------------------------------------------------------------------------------


async def test_board_counts_totals_filters_and_pages(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    pipeline = await make_pipeline(api, tenant)
    new, qualified, won = (s["id"] for s in pipeline["stages"])
    vip = await make_contact(api, tenant, tags=["VIP"])
    plain = await make_contact(api, tenant)
    alice, bob = str(await new_user(container, tenant)), str(await new_user(container, tenant))
    specs = [
        (new, vip, alice, "open", {"amount": 1000, "currency": "USD"}),
        (new, plain, bob, "open", {"amount": 2500, "currency": "USD"}),
        (new, plain, alice, "open", {"amount": 700, "currency": "EUR"}),
        (new, vip, bob, "lost", None),
        (new, plain, None, "open", {"amount": 1, "currency": "USD"}),
        (qualified, vip, alice, "won", {"amount": 99, "currency": "JPY"}),
    ]
    made = []
    for stage, contact, user, status, value in specs:
        made.append(
            await make_opportunity(
                api,
                tenant,
                pipeline,
                contact,
                stage_id=stage,
                assigned_user_id=user,
                status=status,
                value=value,
            )
        )
    # Touch the first so it is the most recently updated of its stage.
    await api.patch(f"{API}/opportunities/{made[0]['id']}", headers=tenant.headers, json={"name": "Touched"})
    url = f"{API}/pipelines/{pipeline['id']}/board"

    def summary(board: dict[str, Any]) -> list[tuple[int, list[tuple[str, int]]]]:
        return [(s["count"], [(t["currency"], t["amount"]) for t in s["totals"]]) for s in board["stages"]]

    board = (await api.get(url, headers=tenant.headers, params={"limit": 2})).json()
    assert [s["stage"]["id"] for s in board["stages"]] == [new, qualified, won]
    assert summary(board) == [(5, [("EUR", 700), ("USD", 3501)]), (1, [("JPY", 99)]), (0, [])]
    column = board["stages"][0]
    assert [o["id"] for o in column["items"]] == [made[0]["id"], made[4]["id"]]
    assert board["stages"][2]["items"] == []
    assert board["stages"][2]["next_cursor"] is None

    seen = [o["id"] for o in column["items"]]
    cursor = column["next_cursor"]
    while cursor:
        page = (
            await api.get(
                f"{url}/stages/{new}", headers=tenant.headers, params={"cursor": cursor, "limit": 2}
            )
        ).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [made[i]["id"] for i in (0, 4, 3, 2, 1)]

    by_alice = (await api.get(url, headers=tenant.headers, params={"assigned_user_id": alice})).json()
    assert summary(by_alice) == [(2, [("EUR", 700), ("USD", 1000)]), (1, [("JPY", 99)]), (0, [])]
    open_vip = (
        await api.get(url, headers=tenant.headers, params={"status": "open", "contact_tag": " vip"})
    ).json()
    assert summary(open_vip) == [(1, [("USD", 1000)]), (0, []), (0, [])]
    assert [o["id"] for o in open_vip["stages"][0]["items"]] == [made[0]["id"]]
    lost_page = await api.get(f"{url}/stages/{new}", headers=tenant.headers, params={"status": "lost"})
    assert [o["id"] for o in lost_page.json()["items"]] == [made[3]["id"]]

    bad = await api.get(
        url, headers=tenant.headers, params={"status": "closed", "assigned_user_id": "x", "limit": 0}
    )
    assert {"/assigned_user_id", "/status"} <= set(pointers(assert_problem(bad, 422))) or pointers(
        assert_problem(bad, 422)
    ) == ["/limit"]
    bad_filters = await api.get(
        url, headers=tenant.headers, params={"status": "closed", "assigned_user_id": "x"}
    )
    assert pointers(assert_problem(bad_filters, 422)) == ["/assigned_user_id", "/status"]
    bad_cursor = await api.get(f"{url}/stages/{new}", headers=tenant.headers, params={"cursor": "garbage"})
    assert pointers(assert_problem(bad_cursor, 422)) == ["/cursor"]
    foreign_stage = await api.get(f"{url}/stages/{uuid.uuid4()}", headers=tenant.headers)
    assert_problem(foreign_stage, 404)


# -- concurrency ------------------------------------------------------------------------------------


async def test_concurrent_moves_leave_one_consistent_history(api: httpx.AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(api, tenant, ("A", "B", "C", "D"))
    stages = [s["id"] for s in pipeline["stages"]]
    opportunity = await make_opportunity(api, tenant, pipeline, await make_contact(api, tenant))
    url = f"{API}/opportunities/{opportunity['id']}"
    rng = random.Random(7)
    bodies = [
        {"stage_id": stages[i % 4], "status": rng.choice(["open", "won", "abandoned", "open"])}
        for i in range(1, 13)
    ]
    answers = await asyncio.gather(*(api.post(f"{url}/move", headers=tenant.headers, json=b) for b in bodies))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    history = (await api.get(f"{url}/moves", headers=tenant.headers)).json()["items"]
    # A chain: each move starts where the previous one ended, and the last ends where the opportunity is.
    for previous, move in itertools.pairwise(history):
        assert (move["from_stage_id"], move["from_status"]) == (
            previous["to_stage_id"],
            previous["to_status"],
        )
        assert (move["from_stage_id"], move["from_status"]) != (move["to_stage_id"], move["to_status"])
        assert move["moved_at"] >= previous["moved_at"]
    final = (await api.get(url, headers=tenant.headers)).json()
    assert (history[-1]["to_stage_id"], history[-1]["to_status"]) == (final["stage_id"], final["status"])
    assert 2 <= len(history) <= 13


async def test_stage_deletion_racing_moves_strands_nothing(api: httpx.AsyncClient, tenant: Tenant) -> None:
    pipeline = await make_pipeline(api, tenant, ("A", "B", "C"))
    a, b, c = (s["id"] for s in pipeline["stages"])
    contact = await make_contact(api, tenant)
    opportunities = [await make_opportunity(api, tenant, pipeline, contact) for _ in range(6)]
    moves = [
        api.post(f"{API}/opportunities/{o['id']}/move", headers=tenant.headers, json={"stage_id": b})
        for o in opportunities
    ]
    deletion = api.delete(
        f"{API}/pipelines/{pipeline['id']}/stages/{b}", headers=tenant.headers, params={"move_to": c}
    )
    answers = await asyncio.gather(deletion, *moves)
    assert answers[0].status_code == 200, answers[0].text
    # A move that came after the deletion finds no stage B: refused, never left in a deleted stage.
    assert all(r.status_code in (200, 422) for r in answers[1:])
    board = (await api.get(f"{API}/pipelines/{pipeline['id']}/board", headers=tenant.headers)).json()
    assert [s["stage"]["id"] for s in board["stages"]] == [a, c]
    assert sum(s["count"] for s in board["stages"]) == 6
