"""Workflows through the API: authoring with pointers to each mistake, publishing and versions, enrolling by
hand (by id and by tag) with the steps then run by a real worker and read back as history, statistics,
simulation, the public inbound-webhook trigger, tenancy and scopes."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from typing import Any

import httpx
import pytest

from ghl_adapters.container import Container
from ghl_adapters.messaging.templates import JinjaTemplateRenderer
from http_kit import API, Tenant, assert_problem, create_api_key, pointers
from jobs_kit import run_jobs

WELCOME: dict[str, Any] = {
    "name": "Welcome",
    "triggers": [{"type": "manual"}],
    "steps": [
        {"id": "tag_them", "type": "add_tag", "tags": ["welcomed"]},
        {"id": "done", "type": "end"},
    ],
}
# Waits an hour before tagging: an enrollment that stays running while the test looks at it.
SLOW: dict[str, Any] = {
    "name": "Slow",
    "triggers": [{"type": "manual"}],
    "steps": [
        {"id": "pause", "type": "wait", "wait": {"hours": 1}},
        {"id": "tag_them", "type": "add_tag", "tags": ["slow"]},
    ],
}
HOOKED: dict[str, Any] = {
    "name": "From the website",
    "settings": {"allow_reentry": True},
    "triggers": [{"type": "inbound_webhook"}],
    "steps": [{"id": "tag_them", "type": "add_tag", "tags": ["from-web"]}],
}
QUEUES = ["workflows", "events"]


def document(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(base), "name": f"{base['name']} {uuid.uuid4().hex[:6]}", **changes}


async def post(
    api: httpx.AsyncClient, tenant: Tenant, path: str, expect: int, body: Any = None
) -> dict[str, Any]:
    response = await api.post(f"{API}{path}", json=body, headers=tenant.headers)
    assert response.status_code == expect, response.text
    answered: dict[str, Any] = response.json()
    return answered


async def get(api: httpx.AsyncClient, tenant: Tenant, path: str) -> dict[str, Any]:
    response = await api.get(f"{API}{path}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_workflow(
    api: httpx.AsyncClient, tenant: Tenant, base: dict[str, Any] = WELCOME, *, publish: bool = True
) -> dict[str, Any]:
    created = await post(api, tenant, "/workflows", 201, document(base))
    if publish:
        return await post(api, tenant, f"/workflows/{created['id']}/publish", 200)
    return created


async def new_contact(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    payload = {"first_name": "Ada", "email": f"ada-{uuid.uuid4().hex[:10]}@example.com", **fields}
    return await post(api, tenant, "/contacts", 201, payload)


# ---------------------------------------------------------------------------------------------- authoring


async def test_a_workflow_is_created_listed_replaced_and_deleted(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    doc = document(WELCOME)
    created = await post(api, tenant, "/workflows", 201, doc)
    assert created["status"] == "draft"
    assert created["version"] == 0
    assert created["draft"] == doc
    assert created["hook_enabled"] is False
    assert "hook_token_hash" not in created
    assert created["created_at"].endswith("+00:00")

    listed = await get(api, tenant, "/workflows")
    assert [w["id"] for w in listed["items"]] == [created["id"]]
    assert listed["next_cursor"] is None
    assert "draft" not in listed["items"][0]
    assert await get(api, tenant, f"/workflows/{created['id']}") == created

    renamed = {**doc, "name": "Welcome, renamed"}
    replaced = await api.put(f"{API}/workflows/{created['id']}", json=renamed, headers=tenant.headers)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == "Welcome, renamed"
    assert replaced.json()["draft"] == renamed

    deleted = await api.delete(f"{API}/workflows/{created['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert_problem(await api.get(f"{API}/workflows/{created['id']}", headers=tenant.headers), 404)
    assert (await get(api, tenant, "/workflows"))["items"] == []


async def test_a_bad_definition_is_refused_with_a_pointer_to_each_mistake(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    bad = document(WELCOME)
    bad["steps"][1] = {"id": "nap", "type": "wait", "wait": {"minutes": -5}, "colour": "red"}
    refused = assert_problem(await post_raw(api, tenant, "/workflows", bad), 422, "validation_failed")
    assert "/steps/1/wait/minutes" in pointers(refused)
    assert "/steps/1/colour" in pointers(refused)

    nul = document(WELCOME)
    nul["steps"][0]["tags"] = ["a\x00b"]
    assert pointers(assert_problem(await post_raw(api, tenant, "/workflows", nul), 422)) == [
        "/steps/0/tags/0"
    ]
    not_an_object = await api.post(f"{API}/workflows", json=["steps"], headers=tenant.headers)
    assert not_an_object.status_code in (400, 422)
    assert not_an_object.headers["content-type"].startswith("application/problem+json")

    # A bad replacement changes nothing.
    created = await new_workflow(api, tenant, publish=False)
    unchanged = await api.put(
        f"{API}/workflows/{created['id']}", json={**bad, "name": "Other"}, headers=tenant.headers
    )
    assert "/steps/1/wait/minutes" in pointers(assert_problem(unchanged, 422))
    assert (await get(api, tenant, f"/workflows/{created['id']}"))["draft"] == created["draft"]
    assert (await get(api, tenant, "/workflows"))["items"][0]["name"] == created["name"]


async def post_raw(api: httpx.AsyncClient, tenant: Tenant, path: str, body: Any) -> httpx.Response:
    return await api.post(f"{API}{path}", json=body, headers=tenant.headers)


async def test_another_locations_workflow_is_not_found(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, container: Container
) -> None:
    workflow = await new_workflow(api, tenant)
    contact = await new_contact(api, tenant)
    enrolled = await post(
        api, tenant, f"/workflows/{workflow['id']}/enrollments", 202, {"contact_ids": [contact["id"]]}
    )
    assert enrolled["enrolled"] == 1
    [enrollment] = (await get(api, tenant, f"/workflows/{workflow['id']}/enrollments"))["items"]

    base = f"{API}/workflows/{workflow['id']}"
    theirs = other_tenant.headers
    for path in ("", "/versions", "/export", "/enrollments", "/stats"):
        assert_problem(await api.get(f"{base}{path}", headers=theirs), 404)
    assert_problem(await api.get(f"{API}/workflow-enrollments/{enrollment['id']}", headers=theirs), 404)
    assert_problem(await api.put(base, json=document(WELCOME), headers=theirs), 404)
    for action in ("publish", "pause", "hook-secret"):
        assert_problem(await api.post(f"{base}/{action}", headers=theirs), 404)
    assert_problem(
        await api.post(f"{base}/enrollments", json={"contact_ids": [contact["id"]]}, headers=theirs), 404
    )
    assert_problem(
        await api.post(f"{base}/simulate", json={"contact_id": contact["id"]}, headers=theirs), 404
    )
    assert_problem(await api.delete(f"{base}/enrollments/{contact['id']}", headers=theirs), 404)
    assert_problem(await api.delete(base, headers=theirs), 404)
    assert (await get(api, other_tenant, "/workflows"))["items"] == []
    assert (await get(api, tenant, f"/workflows/{workflow['id']}"))["status"] == "published"
    await run_jobs(container, queues=QUEUES)


# ---------------------------------------------------------------------------------------------- versions


async def test_publish_pause_and_versions_round_trip(api: httpx.AsyncClient, tenant: Tenant) -> None:
    draft = await new_workflow(api, tenant, publish=False)
    wid = draft["id"]
    # Only a published workflow can be paused, or take enrollments.
    assert_problem(
        await api.post(f"{API}/workflows/{wid}/pause", headers=tenant.headers), 409, "workflow_state"
    )
    contact = await new_contact(api, tenant)
    early = await post_raw(api, tenant, f"/workflows/{wid}/enrollments", {"contact_ids": [contact["id"]]})
    assert_problem(early, 409, "workflow_state")

    first = await post(api, tenant, f"/workflows/{wid}/publish", 200)
    assert (first["status"], first["version"]) == ("published", 1)
    second_doc = {**draft["draft"], "steps": [{"id": "tag_them", "type": "add_tag", "tags": ["v2"]}]}
    edited = await api.put(f"{API}/workflows/{wid}", json=second_doc, headers=tenant.headers)
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 1  # editing the draft publishes nothing
    assert (await post(api, tenant, f"/workflows/{wid}/publish", 200))["version"] == 2

    versions = await get(api, tenant, f"/workflows/{wid}/versions")
    assert [v["version"] for v in versions["items"]] == [2, 1]
    assert all(v["published_at"] for v in versions["items"])
    assert await get(api, tenant, f"/workflows/{wid}/export?version=1") == draft["draft"]
    assert await get(api, tenant, f"/workflows/{wid}/export?version=2") == second_doc
    assert await get(api, tenant, f"/workflows/{wid}/export") == second_doc
    assert_problem(await api.get(f"{API}/workflows/{wid}/export?version=9", headers=tenant.headers), 404)
    bad_version = await api.get(f"{API}/workflows/{wid}/export?version=0", headers=tenant.headers)
    assert bad_version.status_code in (400, 422)

    # What export answers is a body POST takes: a copy of the workflow.
    exported = await get(api, tenant, f"/workflows/{wid}/export?version=1")
    copied = await post(api, tenant, "/workflows", 201, {**exported, "name": "Copy"})
    assert copied["draft"]["steps"] == draft["draft"]["steps"]

    paused = await post(api, tenant, f"/workflows/{wid}/pause", 200)
    assert paused["stopped"] == 0
    assert (paused["workflow"]["status"], paused["workflow"]["version"]) == ("paused", 2)
    assert_problem(await api.post(f"{API}/workflows/{wid}/pause", headers=tenant.headers), 409)
    late = await post_raw(api, tenant, f"/workflows/{wid}/enrollments", {"contact_ids": [contact["id"]]})
    assert_problem(late, 409, "workflow_state")
    assert (await post(api, tenant, f"/workflows/{wid}/publish", 200))["version"] == 3


# ---------------------------------------------------------------------------------------------- enrolling


async def test_enrolled_contacts_run_the_steps_and_their_history_is_kept(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    tag = f"lead-{uuid.uuid4().hex[:6]}"
    ada = await new_contact(api, tenant, tags=[tag])
    bob = await new_contact(api, tenant, first_name="Bob", tags=[tag])
    cy = await new_contact(api, tenant, first_name="Cy")
    workflow = await new_workflow(api, tenant)
    enrollments = f"/workflows/{workflow['id']}/enrollments"

    by_id = await post(api, tenant, enrollments, 202, {"contact_ids": [ada["id"]]})
    assert by_id == {"matched": 1, "enrolled": 1, "skipped": 0}
    by_tag = await post(api, tenant, enrollments, 202, {"tags": [tag]})
    assert by_tag == {"matched": 2, "enrolled": 1, "skipped": 1}  # Ada is already in it

    listed = await get(api, tenant, enrollments)
    assert {e["contact_id"] for e in listed["items"]} == {ada["id"], bob["id"]}
    assert {e["status"] for e in listed["items"]} == {"active"}
    assert {e["trigger"] for e in listed["items"]} == {"manual"}
    only_ada = await get(api, tenant, f"{enrollments}?contact_id={ada['id']}")
    [ada_enrollment] = only_ada["items"]
    assert ada_enrollment["contact_id"] == ada["id"]
    paged = await get(api, tenant, f"{enrollments}?limit=1")
    assert len(paged["items"]) == 1
    assert paged["next_cursor"]

    await run_jobs(container, queues=QUEUES)

    done = await get(api, tenant, f"/workflow-enrollments/{ada_enrollment['id']}")
    assert done["status"] == "completed"
    assert done["finished_at"]
    assert [(h["step_id"], h["type"], h["status"]) for h in done["history"]] == [
        ("tag_them", "add_tag", "done"),
        ("done", "end", "done"),
    ]
    for run in done["history"]:
        assert set(run) == {
            "step_id",
            "tick",
            "type",
            "status",
            "outcome",
            "detail",
            "output",
            "error",
            "started_at",
            "finished_at",
        }
        assert run["error"] is None
    assert "welcomed" in (await get(api, tenant, f"/contacts/{ada['id']}"))["tags"]
    assert [e["contact_id"] for e in (await get(api, tenant, f"{enrollments}?status=completed"))["items"]]
    assert (await get(api, tenant, f"{enrollments}?status=active"))["items"] == []

    stats = await get(api, tenant, f"/workflows/{workflow['id']}/stats")
    assert {k: stats[k] for k in ("enrolled", "active", "waiting", "completed", "stopped", "failed")} == {
        "enrolled": 2,
        "active": 0,
        "waiting": 0,
        "completed": 2,
        "stopped": 0,
        "failed": 0,
    }
    assert stats["steps"]["tag_them"] == {"done": 2}

    # Mistakes: an unknown contact, both ids and an audience, an unknown status.
    missing = await post_raw(api, tenant, enrollments, {"contact_ids": [cy["id"], str(uuid.uuid4())]})
    assert_problem(missing, 404)
    both = await post_raw(api, tenant, enrollments, {"contact_ids": [cy["id"]], "tags": [tag]})
    assert "/contact_ids" in pointers(assert_problem(both, 422))
    nothing = await post_raw(api, tenant, enrollments, {"contact_ids": ["nope"], "colour": 1})
    assert pointers(assert_problem(nothing, 422)) == ["/colour", "/contact_ids/0"]
    wrong_status = await api.get(f"{API}{enrollments}?status=asleep", headers=tenant.headers)
    assert pointers(assert_problem(wrong_status, 422)) == ["/status"]
    assert_problem(await api.get(f"{API}/workflow-enrollments/{uuid.uuid4()}", headers=tenant.headers), 404)


async def test_removing_a_contact_and_pausing_stop_running_enrollments(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    workflow = await new_workflow(api, tenant, SLOW)
    ada, bob = await new_contact(api, tenant), await new_contact(api, tenant, first_name="Bob")
    base = f"/workflows/{workflow['id']}"
    await post(api, tenant, f"{base}/enrollments", 202, {"contact_ids": [ada["id"], bob["id"]]})
    await run_jobs(container, queues=QUEUES, fast_forward=False)  # each now waits for its hour
    waiting = await get(api, tenant, f"{base}/enrollments?status=waiting")
    assert len(waiting["items"]) == 2

    removed = await api.delete(f"{API}{base}/enrollments/{ada['id']}", headers=tenant.headers)
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"stopped": 1}
    again = await api.delete(f"{API}{base}/enrollments/{ada['id']}", headers=tenant.headers)
    assert again.json() == {"stopped": 0}
    [ada_enrollment] = (await get(api, tenant, f"{base}/enrollments?contact_id={ada['id']}"))["items"]
    assert (ada_enrollment["status"], ada_enrollment["reason"]) == ("stopped", "removed")

    paused = await post(api, tenant, f"{base}/pause", 200)
    assert paused["stopped"] == 1
    stats = await get(api, tenant, f"{base}/stats")
    assert (stats["enrolled"], stats["stopped"], stats["waiting"]) == (2, 2, 0)


# ---------------------------------------------------------------------------------------------- simulation


async def test_simulate_runs_the_draft_for_a_contact_on_a_virtual_clock(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    nurture = {
        "name": "Nurture",
        "settings": {"stop_on_reply": True},
        "triggers": [{"type": "manual"}],
        "steps": [
            {"id": "text_them", "type": "send_sms", "body": "Hi {{ contact.first_name }}"},
            {"id": "wait_day", "type": "wait", "wait": {"days": 1}},
            {"id": "tag_them", "type": "add_tag", "tags": ["nurtured"]},
        ],
    }
    workflow = await post(api, tenant, "/workflows", 201, nurture)
    contact = await new_contact(api, tenant, phone="+13125550123", timezone="America/New_York")
    path = f"/workflows/{workflow['id']}/simulate"
    start = "2026-11-23T10:00:00-05:00"

    result = await post(api, tenant, path, 200, {"contact_id": contact["id"], "start": start})
    assert result["finished"] == "completed"
    sent = [e for e in result["timeline"] if e["outcome"] == "would_send"]
    assert [e["step_id"] for e in sent] == ["text_them"]
    assert sent[0]["detail"].endswith("Hi Ada")
    tagged = next(e for e in result["timeline"] if e["step_id"] == "tag_them")
    assert tagged["at"] == "2026-11-24T15:00:00+00:00"  # a calendar day later, New York time
    assert "nurtured" in result["contact"]["tags"]
    assert "nurtured" not in (await get(api, tenant, f"/contacts/{contact['id']}"))["tags"]

    replied = await post(
        api,
        tenant,
        path,
        200,
        {
            "contact_id": contact["id"],
            "start": start,
            "events": [
                {"at": "2026-11-23T12:00:00-05:00", "event": "contact.replied", "data": {"channel": "sms"}}
            ],
        },
    )
    assert replied["finished"] == "stopped"
    assert "nurtured" not in replied["contact"]["tags"]

    bad = await post_raw(
        api,
        tenant,
        path,
        {
            "contact_id": contact["id"],
            "start": "tomorrow",
            "events": [{"at": "2026-11-23T12:00:00", "event": "contact.replied"}],
            "version": "one",
        },
    )
    assert pointers(assert_problem(bad, 422)) == ["/events/0/at", "/start", "/version"]
    unpublished = await post_raw(api, tenant, path, {"contact_id": contact["id"], "version": 1})
    assert_problem(unpublished, 404)
    stranger = await post_raw(api, tenant, path, {"contact_id": str(uuid.uuid4())})
    assert_problem(stranger, 404)


# ---------------------------------------------------------------------------------------------- the hook


async def test_the_inbound_webhook_trigger_enrolls_once_per_idempotency_key(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    workflow = await new_workflow(api, tenant, HOOKED)
    wid = workflow["id"]
    rotated = await post(api, tenant, f"/workflows/{wid}/hook-secret", 200)
    base_url = container.settings().base_url
    assert rotated["url"] == f"{base_url}/hooks/workflows/{tenant.location_id}/{wid}/{rotated['secret']}"
    assert (await get(api, tenant, f"/workflows/{wid}"))["hook_enabled"] is True
    hook = rotated["url"].removeprefix(base_url)
    email = f"Web-{uuid.uuid4().hex[:8]}@Example.com"

    wrong = await api.post(hook.rsplit("/", 1)[0] + "/not-the-secret", json={"email": email})
    assert_problem(wrong, 404)
    foreign = await api.post(hook.replace(str(tenant.location_id), str(uuid.uuid4())), json={"email": email})
    assert_problem(foreign, 404)

    first = await api.post(
        hook, json={"email": email, "first_name": "Wendy"}, headers={"Idempotency-Key": "k1"}
    )
    assert first.status_code == 202, first.text
    enrollment_id = first.json()["enrollment_id"]
    assert enrollment_id
    repeat = await api.post(
        hook, json={"email": email, "first_name": "Wendy"}, headers={"Idempotency-Key": "k1"}
    )
    assert repeat.status_code == 202, repeat.text
    assert repeat.json() == {"enrollment_id": None}

    enrollment = await get(api, tenant, f"/workflow-enrollments/{enrollment_id}")
    assert enrollment["trigger"] == "inbound_webhook"
    contact = await get(api, tenant, f"/contacts/{enrollment['contact_id']}")
    assert (contact["email"], contact["first_name"]) == (email.lower(), "Wendy")
    listed = await get(api, tenant, f"/workflows/{wid}/enrollments")
    assert [e["id"] for e in listed["items"]] == [enrollment_id]

    # Another key is another call: this workflow allows re-entry, so the same contact enrolls again.
    other = await api.post(hook, json={"email": email}, headers={"Idempotency-Key": "k2"})
    assert other.json()["enrollment_id"] not in (None, enrollment_id)
    await run_jobs(container, queues=QUEUES)
    assert "from-web" in (await get(api, tenant, f"/contacts/{contact['id']}"))["tags"]

    assert_problem(
        await api.post(hook, content=b"{not json", headers={"content-type": "application/json"}), 400
    )
    assert_problem(await api.post(hook, json={"first_name": "Nobody"}), 422)
    too_big = await api.post(hook, json={"email": email, "note": "x" * 70_000})
    assert_problem(too_big, 413, "payload_too_large")

    # A new secret retires the old URL at once.
    await post(api, tenant, f"/workflows/{wid}/hook-secret", 200)
    assert_problem(await api.post(hook, json={"email": email}), 404)


async def test_a_workflow_without_the_hook_trigger_has_no_hook(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    workflow = await new_workflow(api, tenant)
    rotated = await post(api, tenant, f"/workflows/{workflow['id']}/hook-secret", 200)
    hook = f"/hooks/workflows/{tenant.location_id}/{workflow['id']}/{rotated['secret']}"
    assert_problem(await api.post(hook, json={"email": "x@example.com"}), 404)


# ---------------------------------------------------------------------------------------------- scopes


async def test_scopes_workflows_read_and_write(api: httpx.AsyncClient, tenant: Tenant) -> None:
    workflow = await new_workflow(api, tenant)
    reader = await create_api_key(api, tenant.headers, scopes=["workflows:read"])
    headers = {"Authorization": f"Bearer {reader['key']}"}
    assert (await api.get(f"{API}/workflows/{workflow['id']}", headers=headers)).status_code == 200
    assert (await api.get(f"{API}/workflows/{workflow['id']}/stats", headers=headers)).status_code == 200
    assert_problem(await api.post(f"{API}/workflows", json=document(WELCOME), headers=headers), 403)
    assert_problem(await api.post(f"{API}/workflows/{workflow['id']}/pause", headers=headers), 403)
    assert_problem(await api.delete(f"{API}/workflows/{workflow['id']}", headers=headers), 403)

    outsider = await create_api_key(api, tenant.headers, scopes=["contacts:read"])
    other = {"Authorization": f"Bearer {outsider['key']}"}
    assert_problem(await api.get(f"{API}/workflows", headers=other), 403)


# ---------------------------------------------------------------------------------------------- references


async def make_pipeline(api: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    body = {"name": f"Sales {uuid.uuid4().hex[:6]}", "stages": [{"name": "New"}, {"name": "Won"}]}
    return await post(api, tenant, "/pipelines", 201, body)


def referencing(pipeline: dict[str, Any], stage: str, user: str, workflow: str, field: str) -> dict[str, Any]:
    """A document naming one of each thing a workflow can name of its location."""
    return document(
        {
            "name": "Names things",
            "triggers": [
                {"type": "pipeline_stage_changed", "pipeline_id": pipeline["id"], "stage_id": stage}
            ],
            "steps": [
                {
                    "id": "deal",
                    "type": "create_opportunity",
                    "pipeline_id": pipeline["id"],
                    "stage_id": stage,
                },
                {"id": "move", "type": "move_stage", "pipeline_id": pipeline["id"], "stage_id": stage},
                {"id": "owner", "type": "assign_user", "user_id": user},
                {"id": "task", "type": "create_task", "title": "Call", "assignee_id": user},
                {
                    "id": "tell",
                    "type": "internal_notification",
                    "channel": "email",
                    "body": "Hi",
                    "user_id": user,
                },
                {
                    "id": "won",
                    "type": "wait",
                    "wait": {"event": "opportunity.stage_reached", "stage_id": stage},
                },
                {"id": "next", "type": "add_to_workflow", "workflow_id": workflow},
                {"id": "score", "type": "update_field", "field": f"custom.{field}", "value": "10"},
            ],
        }
    )


REFERENCE_POINTERS = [
    "/triggers/0/pipeline_id",
    "/steps/0/pipeline_id",
    "/steps/1/pipeline_id",
    "/steps/2/user_id",
    "/steps/3/assignee_id",
    "/steps/4/user_id",
    "/steps/5/wait/stage_id",
    "/steps/6/workflow_id",
    "/steps/7/field",
]


async def test_publish_refuses_ids_of_another_location_as_it_refuses_unknown_ones(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, container: Container
) -> None:
    """A document naming another location's pipeline, stage, user or workflow (or a custom field the
    location does not define) was published, and every enrollment failed at that step. Now publishing
    answers 422 with a pointer to each member, with the very words an unknown id gets, and publishes
    nothing."""
    from support import new_user

    ours, theirs = await make_pipeline(api, tenant), await make_pipeline(api, other_tenant)
    our_user, their_user = await new_user(container, tenant), await new_user(container, other_tenant)
    ungranted = await new_user(container, tenant, granted=False)  # our agency, not this location
    our_flow, their_flow = await new_workflow(api, tenant), await new_workflow(api, other_tenant)
    await post(api, tenant, "/custom-fields", 201, {"key": "score", "label": "Score", "type": "number"})

    good = referencing(ours, ours["stages"][1]["id"], str(our_user), our_flow["id"], "score")
    created = await post(api, tenant, "/workflows", 201, good)
    assert (await post(api, tenant, f"/workflows/{created['id']}/publish", 200))["version"] == 1

    foreign = referencing(theirs, theirs["stages"][1]["id"], str(their_user), their_flow["id"], "nope")
    unknown = {"id": str(uuid.uuid4()), "stages": [{"id": str(uuid.uuid4())}]}
    missing = referencing(unknown, str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), "nope")
    answers = []
    for bad in (foreign, missing):
        draft = await post(api, tenant, "/workflows", 201, bad)  # a draft may name what is not there yet
        refused = assert_problem(
            await api.post(f"{API}/workflows/{draft['id']}/publish", headers=tenant.headers),
            422,
            "validation_failed",
        )
        assert pointers(refused) == sorted(REFERENCE_POINTERS)
        answers.append([e["detail"].replace(str(bad["steps"][2]["user_id"]), "U") for e in refused["errors"]])
        after = await get(api, tenant, f"/workflows/{draft['id']}")
        assert (after["status"], after["version"]) == ("draft", 0)
        assert (await get(api, tenant, f"/workflows/{draft['id']}/versions"))["items"] == []
    assert answers[0] == answers[1]  # another location's ids read exactly as ids that exist nowhere

    # Our pipeline with a stage of theirs; a user of our agency without this location.
    mixed = referencing(ours, theirs["stages"][0]["id"], str(ungranted), our_flow["id"], "score")
    draft = await post(api, tenant, "/workflows", 201, mixed)
    refused = assert_problem(
        await api.post(f"{API}/workflows/{draft['id']}/publish", headers=tenant.headers), 422
    )
    assert pointers(refused) == sorted(
        [
            "/triggers/0/stage_id",
            "/steps/0/stage_id",
            "/steps/1/stage_id",
            "/steps/2/user_id",
            "/steps/3/assignee_id",
            "/steps/4/user_id",
            "/steps/5/wait/stage_id",
        ]
    )


async def test_templates_that_cannot_compile_are_refused_at_save_and_at_publish(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    """Step templates are compiled by the sandbox that renders them when the draft is saved and when it
    is published: they once failed only at run time, every enrollment at that step."""
    from sqlalchemy import text

    broken = document(
        {
            "name": "Broken templates",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "text", "type": "send_sms", "body": "Hi {{ contact.first_name "},
                {"id": "mail", "type": "send_email", "subject": "Ok", "html": "<p>{% for x in %}</p>"},
                {"id": "task", "type": "create_task", "title": "{{ ''.__class__ }}"},
                {"id": "field", "type": "update_field", "field": "company_name", "value": "{% if %}"},
                {
                    "id": "hook",
                    "type": "webhook",
                    "url": "https://example.com/{{contact.id}}",
                    "headers": {"X-Name": "{{ contact.first_name"},
                    "body": {"data": ["fine", "{{ 1 + }}"], "a/b": "{% endfor %}"},
                },
            ],
        }
    )
    expected = [
        "/steps/0/body",
        "/steps/1/html",
        "/steps/2/title",
        "/steps/3/value",
        "/steps/4/headers/X-Name",
        "/steps/4/body/a~1b",
        "/steps/4/body/data/1",
    ]
    refused = assert_problem(await post_raw(api, tenant, "/workflows", broken), 422)
    assert pointers(refused) == sorted(expected)
    assert all(w["name"] != broken["name"] for w in (await get(api, tenant, "/workflows"))["items"])

    # A draft saved before templates were checked at save is checked again when it is published.
    draft = await new_workflow(api, tenant, publish=False)
    async with container.engines().owner.begin() as conn:
        await conn.execute(
            text("UPDATE workflows SET draft = CAST(:d AS jsonb) WHERE id = :w"),
            {"d": json.dumps(broken), "w": draft["id"]},
        )
    refused = assert_problem(
        await api.post(f"{API}/workflows/{draft['id']}/publish", headers=tenant.headers), 422
    )
    assert pointers(refused) == sorted(expected)
    assert (await get(api, tenant, f"/workflows/{draft['id']}"))["version"] == 0


async def test_step_templates_that_cannot_render_within_the_limits_are_refused_off_the_event_loop(
    api: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving renders each step template once with sample data, in a worker thread: one that breaks the
    render limits (the issue's string doubled into gigabytes) is refused with its pointer."""
    threads: list[int] = []
    generate = JinjaTemplateRenderer._generate

    def spy(self: JinjaTemplateRenderer, template: Any, context: Any) -> str:
        threads.append(threading.get_ident())
        return generate(self, template, context)

    monkeypatch.setattr(JinjaTemplateRenderer, "_generate", spy)
    heavy = document(
        {
            "name": "Heavy templates",
            "triggers": [{"type": "manual"}],
            "steps": [
                {"id": "text", "type": "send_sms", "body": "Hi {{ contact.first_name }}"},
                {
                    "id": "mail",
                    "type": "send_email",
                    "subject": "Ok",
                    "html": "<p>{% set a = 'x' * 1000000 %}" + "{% set a = a ~ a %}" * 10 + "</p>",
                },
            ],
        }
    )
    refused = assert_problem(await post_raw(api, tenant, "/workflows", heavy), 422)
    assert pointers(refused) == ["/steps/1/html"]
    assert "longer than 100000 characters" in refused["errors"][0]["detail"]
    assert len(threads) == 3  # each template rendered once with the sample data
    assert threading.get_ident() not in threads


async def test_publish_refuses_a_fixed_webhook_address_its_step_could_never_reach(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A webhook step's address was checked only when the step ran: one the platform never calls (plain
    http, loopback, a cloud metadata address) published fine and failed every run. Its scheme and host
    are checked at publish now, with the guard the step runs with; an address built from merge fields
    is still checked when the step runs."""

    def call(url: str) -> dict[str, Any]:
        return {"id": f"call{uuid.uuid4().hex[:6]}", "type": "webhook", "url": url}

    doc = document(
        {
            "name": "Calls",
            "triggers": [{"type": "manual"}],
            "steps": [
                call("http://93.184.215.14/hook"),
                call("https://127.0.0.1:8080/hook"),
                call("https://169.254.169.254/latest/meta-data"),
                call("https://93.184.215.14/hook/{{contact.id}}"),
                call("https://{{contact.website}}/hook"),
            ],
        }
    )
    draft = await post(api, tenant, "/workflows", 201, doc)
    refused = assert_problem(
        await api.post(f"{API}/workflows/{draft['id']}/publish", headers=tenant.headers), 422
    )
    assert pointers(refused) == ["/steps/0/url", "/steps/1/url", "/steps/2/url"]
    details = {e["pointer"]: e["detail"] for e in refused["errors"]}
    assert "https://" in details["/steps/0/url"]
    assert "loopback" in details["/steps/1/url"]
    assert "metadata" in details["/steps/2/url"]

    doc["steps"] = doc["steps"][3:]
    fixed = await api.put(f"{API}/workflows/{draft['id']}", json=doc, headers=tenant.headers)
    assert fixed.status_code == 200, fixed.text
    assert (await post(api, tenant, f"/workflows/{draft['id']}/publish", 200))["version"] == 1
