"""`ghl workflows`: a YAML workflow checked with pointers and simulated for a real contact (from its file or
stored), applied, published, exported back, enrolled into and run by a real worker, its history read."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from clitools import Env, env_for, invoke, invoke_json
from ghl_adapters.container import close_container
from ghl_adapters.settings import Settings
from jobs_kit import run_jobs
from support import make_container

NURTURE = """
name: Lead nurture
settings: {stop_on_reply: false, time_zone: contact}
triggers:
  - {type: contact_created}
steps:
  - {id: text_them, type: send_sms, body: "Hi {{ contact.first_name | default('there', true) }}"}
  - {id: wait_5, type: wait, wait: {minutes: 5}}
  - {id: wait_day, type: wait, wait: {until_time: "09:00"}}
  - id: check
    type: if_else
    branches:
      - {name: replied, when: {field: last_message.direction, op: eq, value: inbound}, next: end}
    else: email_them
  - {id: email_them, type: send_email, subject: "Still interested, {{ contact.first_name }}?", body: Hello}
  - {id: tag, type: add_tag, tags: [nurtured]}
"""


@pytest.fixture(scope="session")
def workflows_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert settings.database_url
    return env_for(settings, settings.database_url, tmp_path_factory.mktemp("cli-workflows"))


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"wf-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(text)
    return str(path)


def test_validate_accepts_a_good_file_and_points_at_each_mistake(workflows_env: Env, tmp_path: Path) -> None:
    good = invoke_json(workflows_env, "workflows", "validate", write(tmp_path, NURTURE))
    assert good["valid"] is True
    assert [s["id"] for s in good["steps"]][:2] == ["text_them", "wait_5"]

    bad = NURTURE.replace("minutes: 5", "minutes: -5").replace("else: email_them", "else: nowhere")
    refused = invoke_json(workflows_env, "workflows", "validate", write(tmp_path, bad), exit_code=1)
    pointers = {e["pointer"] for e in refused["error"]["errors"]}
    assert "/steps/1/wait/minutes" in pointers
    assert "/steps/3/else" in pointers

    broken = invoke_json(
        workflows_env, "workflows", "validate", write(tmp_path, "name: [unclosed"), exit_code=1
    )
    assert "YAML" in broken["error"]["detail"]


def test_simulate_prints_the_timeline_for_a_contact(workflows_env: Env, tmp_path: Path) -> None:
    agency = invoke_json(workflows_env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    location = invoke_json(
        workflows_env,
        "locations",
        "create",
        "Main",
        "--agency",
        agency["id"],
        "--timezone",
        "America/New_York",
    )
    contact = invoke_json(
        workflows_env,
        "contacts",
        "create",
        "--location",
        location["id"],
        "--first-name",
        "Ada",
        "--phone",
        "+13125550177",
        "--email",
        "ada-sim@example.com",
    )
    path = write(tmp_path, NURTURE)
    args = ["workflows", "simulate", path, "--location", location["id"], "--contact", contact["id"]]
    start = ["--start", "2026-11-23T10:00:00-05:00"]
    result = invoke_json(workflows_env, *args, *start)
    assert result["finished"] == "completed"
    sends = [e for e in result["timeline"] if e["outcome"] == "would_send"]
    assert [e["step_id"] for e in sends] == ["text_them", "email_them"]
    assert sends[0]["detail"].endswith("Hi Ada")
    assert sends[1]["at"] == "2026-11-24T14:00:00+00:00"  # 09:00 the next morning, New York

    replied = invoke_json(workflows_env, *args, *start, "--event", "contact.replied:channel=sms@+2h")
    assert [e["step_id"] for e in replied["timeline"] if e["outcome"] == "would_send"] == ["text_them"]

    table = invoke(workflows_env, *args, *start)
    assert table.exit_code == 0, table.stderr
    assert "would_send" in table.stdout

    wrong = invoke_json(workflows_env, *args, "--event", "contact.replied", exit_code=1)
    assert wrong["error"]["code"] == "validation_failed"
    other = invoke_json(
        workflows_env,
        "workflows",
        "simulate",
        path,
        "--location",
        location["id"],
        "--contact",
        str(uuid.uuid4()),
        exit_code=1,
    )
    assert other["error"]["code"] == "not_found"


# ---------------------------------------------------------------------------------------------- stored

WELCOME = """
name: Welcome
triggers:
  - {type: manual}
steps:
  - {id: tag_them, type: add_tag, tags: [welcomed]}
  - {id: morning, type: wait, wait: {until_time: "10:30"}}
  - {id: done, type: end}
"""
QUICK = """
name: Quick
triggers:
  - {type: manual}
steps:
  - {id: tag_them, type: add_tag, tags: [quick]}
  - {id: done, type: end}
"""


def new_location(env: Env) -> str:
    agency = invoke_json(env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    location = invoke_json(
        env, "locations", "create", "Main", "--agency", agency["id"], "--timezone", "America/New_York"
    )
    return str(location["id"])


def new_contact(env: Env, location: str, *extra: str) -> str:
    email = f"wf-{uuid.uuid4().hex[:8]}@example.com"
    made = invoke_json(env, "contacts", "create", "--location", location, "--email", email, *extra)
    return str(made["id"])


def work_the_queue(settings: Settings) -> None:
    """What `ghl worker` does, until nothing is left: in its own event loop, as the CLI uses its own."""

    async def main() -> None:
        container = make_container(settings)
        try:
            await run_jobs(container, queues=["workflows", "events"])
        finally:
            await close_container(container)

    asyncio.run(main())


def test_apply_publish_and_export_round_trip(workflows_env: Env, tmp_path: Path) -> None:
    location = new_location(workflows_env)
    loc = ["--location", location]
    path = write(tmp_path, WELCOME)
    created = invoke_json(workflows_env, "workflows", "apply", path, *loc)
    assert (created["created"], created["status"], created["version"]) == (True, "draft", 0)
    assert "hook_token_hash" not in created
    wid = created["id"]
    again = invoke_json(workflows_env, "workflows", "apply", path, *loc, "--publish")
    assert (again["id"], again["created"], again["status"], again["version"]) == (wid, False, "published", 1)

    listed = invoke_json(workflows_env, "workflows", "list", *loc)
    assert [w["id"] for w in listed["items"]] == [wid]
    assert "draft" not in listed["items"][0]
    shown = invoke_json(workflows_env, "workflows", "show", wid, *loc)
    assert shown["draft"]["steps"][1]["wait"] == {"until_time": "10:30"}
    assert [v["version"] for v in shown["versions"]] == [1]

    # The YAML export reads as it was written and applies back to the same workflow, unchanged ("10:30"
    # stays a string: YAML 1.1 would read it unquoted as a number).
    exported = invoke(workflows_env, "workflows", "export", wid, *loc)
    assert exported.exit_code == 0, exported.stderr
    assert "until_time: '10:30'" in exported.stdout
    assert exported.stdout.startswith("name: Welcome\ntriggers:\n- type: manual\nsteps:\n- id: tag_them\n")
    back = tmp_path / "exported.yaml"
    back.write_text(exported.stdout)
    reapplied = invoke_json(workflows_env, "workflows", "apply", str(back), *loc)
    assert (reapplied["id"], reapplied["created"]) == (wid, False)
    assert invoke_json(workflows_env, "workflows", "export", wid, *loc) == shown["draft"]
    as_json = invoke(workflows_env, "workflows", "export", wid, *loc, "--format", "json", "--version", "1")
    assert json.loads(as_json.stdout) == shown["draft"]
    missing = invoke_json(workflows_env, "workflows", "export", wid, *loc, "--version", "9", exit_code=1)
    assert missing["error"]["code"] == "not_found"

    # Tables for people; a bad file changes nothing; another location sees nothing.
    for command in (["list", *loc], ["show", wid, *loc], ["apply", path, *loc]):
        result = invoke(workflows_env, "workflows", *command)
        assert result.exit_code == 0, result.stderr
    assert "Welcome" in invoke(workflows_env, "workflows", "list", *loc).stdout
    bad = write(tmp_path, WELCOME.replace('"10:30"', '"25:00"'))
    refused = invoke_json(workflows_env, "workflows", "apply", bad, *loc, exit_code=1)
    assert [e["pointer"] for e in refused["error"]["errors"]] == ["/steps/1/wait/until_time"]
    nul = write(tmp_path, WELCOME.replace("[welcomed]", '["wel\\0comed"]'))
    refused = invoke_json(workflows_env, "workflows", "apply", nul, *loc, exit_code=1)
    assert [e["pointer"] for e in refused["error"]["errors"]] == ["/steps/0/tags/0"]
    other = new_location(workflows_env)
    assert invoke_json(workflows_env, "workflows", "list", "--location", other)["items"] == []
    hidden = invoke_json(workflows_env, "workflows", "show", wid, "--location", other, exit_code=1)
    assert hidden["error"]["code"] == "not_found"


def test_enroll_run_and_read_the_history(workflows_env: Env, tmp_path: Path, settings: Settings) -> None:
    location = new_location(workflows_env)
    loc = ["--location", location]
    tag = f"lead-{uuid.uuid4().hex[:6]}"
    ada = new_contact(workflows_env, location, "--tag", tag)
    bob = new_contact(workflows_env, location, "--tag", tag)
    wid = invoke_json(workflows_env, "workflows", "apply", write(tmp_path, QUICK), *loc)["id"]

    early = invoke_json(workflows_env, "workflows", "enroll", wid, *loc, "--contact", ada, exit_code=1)
    assert early["error"]["code"] == "workflow_state"
    assert invoke_json(workflows_env, "workflows", "publish", wid, *loc)["version"] == 1
    by_id = invoke_json(workflows_env, "workflows", "enroll", wid, *loc, "--contact", ada)
    assert by_id == {"matched": 1, "enrolled": 1, "skipped": 0}
    by_tag = invoke_json(workflows_env, "workflows", "enroll", wid, *loc, "--tag", tag)
    assert by_tag == {"matched": 2, "enrolled": 1, "skipped": 1}
    neither = invoke_json(workflows_env, "workflows", "enroll", wid, *loc, exit_code=1)
    assert neither["error"]["code"] == "bad_usage"

    work_the_queue(settings)

    listed = invoke_json(workflows_env, "workflows", "enrollments", wid, *loc, "--status", "completed")
    assert {e["contact_id"] for e in listed["items"]} == {ada, bob}
    [ada_enrollment] = invoke_json(workflows_env, "workflows", "enrollments", wid, *loc, "--contact", ada)[
        "items"
    ]
    shown = invoke_json(workflows_env, "workflows", "history", ada_enrollment["id"], *loc)
    assert shown["status"] == "completed"
    assert [(h["step_id"], h["status"]) for h in shown["history"]] == [("tag_them", "done"), ("done", "done")]
    numbers = invoke_json(workflows_env, "workflows", "stats", wid, *loc)
    assert (numbers["enrolled"], numbers["completed"]) == (2, 2)
    assert numbers["steps"]["tag_them"] == {"done": 2}
    for command in (
        ["enrollments", wid, *loc],
        ["history", ada_enrollment["id"], *loc],
        ["stats", wid, *loc],
    ):
        result = invoke(workflows_env, "workflows", *command)
        assert result.exit_code == 0, result.stderr
        assert "tag_them" in result.stdout or "completed" in result.stdout

    paused = invoke_json(workflows_env, "workflows", "pause", wid, *loc)
    assert (paused["workflow"]["status"], paused["stopped"]) == ("paused", 0)
    twice = invoke_json(workflows_env, "workflows", "pause", wid, *loc, exit_code=1)
    assert twice["error"]["code"] == "workflow_state"


def test_simulate_a_stored_workflow_by_its_id(workflows_env: Env, tmp_path: Path) -> None:
    location = new_location(workflows_env)
    loc = ["--location", location]
    contact = invoke_json(
        workflows_env,
        "contacts",
        "create",
        *loc,
        "--first-name",
        "Ada",
        "--phone",
        "+13125550178",
        "--email",
        f"ada-{uuid.uuid4().hex[:6]}@example.com",
    )["id"]
    path = write(tmp_path, NURTURE)
    wid = invoke_json(workflows_env, "workflows", "apply", path, *loc)["id"]
    start = ["--start", "2026-11-23T10:00:00-05:00", "--contact", contact]

    stored = invoke_json(workflows_env, "workflows", "simulate", wid, *loc, *start)
    from_file = invoke_json(workflows_env, "workflows", "simulate", path, *loc, *start)
    assert stored["workflow"] == from_file["workflow"] == "Lead nurture"
    assert stored["finished"] == "completed"
    assert [e["step_id"] for e in stored["timeline"] if e["outcome"] == "would_send"] == [
        "text_them",
        "email_them",
    ]
    assert [e["at"] for e in stored["timeline"]] == [e["at"] for e in from_file["timeline"]]
    assert "nurtured" in stored["contact"]["tags"]
    replied = invoke_json(
        workflows_env,
        "workflows",
        "simulate",
        wid,
        *loc,
        *start,
        "--event",
        "contact.replied:channel=sms@+2h",
    )
    assert [e["step_id"] for e in replied["timeline"] if e["outcome"] == "would_send"] == ["text_them"]
    table = invoke(workflows_env, "workflows", "simulate", wid, *loc, *start)
    assert table.exit_code == 0, table.stderr
    assert "would_send" in table.stdout

    unpublished = invoke_json(
        workflows_env, "workflows", "simulate", wid, *loc, *start, "--version", "1", exit_code=1
    )
    assert unpublished["error"]["code"] == "not_found"
    file_version = invoke_json(
        workflows_env, "workflows", "simulate", path, *loc, *start, "--version", "1", exit_code=1
    )
    assert file_version["error"]["code"] == "bad_usage"
    nowhere = invoke_json(workflows_env, "workflows", "simulate", "no-such.yaml", *loc, *start, exit_code=1)
    assert nowhere["error"]["code"] == "bad_usage"
    stranger = invoke_json(
        workflows_env, "workflows", "simulate", str(uuid.uuid4()), *loc, *start, exit_code=1
    )
    assert stranger["error"]["code"] == "not_found"


def test_help_names_every_command(workflows_env: Env) -> None:
    result = invoke(workflows_env, "workflows", "--help")
    assert result.exit_code == 0
    for command in (
        "list", "show", "apply", "export", "publish", "pause", "enroll", "enrollments", "history", "stats",
        "validate", "simulate",
    ):  # fmt: skip
        assert command in result.stdout


def test_apply_publish_refuses_what_the_location_does_not_have_and_saves_nothing(
    workflows_env: Env, tmp_path: Path
) -> None:
    """`apply --publish` checks what publishing checks before it saves the draft: a pipeline or a user
    the location does not have (another location's reads the same) is refused with its pointer, and
    neither a new workflow nor the draft of an existing one is written."""
    location = new_location(workflows_env)
    loc = ["--location", location]
    stray = f"""
name: Deals
triggers:
  - {{type: manual}}
steps:
  - {{id: deal, type: create_opportunity, pipeline_id: {uuid.uuid4()}, stage_id: {uuid.uuid4()}}}
  - {{id: owner, type: assign_user, user_id: {uuid.uuid4()}}}
"""
    refused = invoke_json(
        workflows_env, "workflows", "apply", write(tmp_path, stray), *loc, "--publish", exit_code=1
    )
    assert refused["error"]["code"] == "validation_failed"
    assert sorted(e["pointer"] for e in refused["error"]["errors"]) == [
        "/steps/0/pipeline_id",
        "/steps/1/user_id",
    ]
    assert invoke_json(workflows_env, "workflows", "list", *loc)["items"] == []

    path = write(tmp_path, QUICK.replace("name: Quick", "name: Deals"))
    wid = invoke_json(workflows_env, "workflows", "apply", path, *loc)["id"]
    invoke_json(workflows_env, "workflows", "apply", write(tmp_path, stray), *loc, "--publish", exit_code=1)
    shown = invoke_json(workflows_env, "workflows", "show", wid, *loc)
    assert (shown["status"], shown["draft"]["steps"][0]["type"]) == ("draft", "add_tag")
