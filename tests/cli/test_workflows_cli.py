"""`ghl workflows validate|simulate`: a YAML workflow checked with pointers, simulated for a real contact."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from clitools import Env, env_for, invoke, invoke_json
from ghl_adapters.settings import Settings

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
