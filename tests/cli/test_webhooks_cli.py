"""`ghl webhooks`, run in-process as an operator would."""

from __future__ import annotations

import uuid

import pytest

from clitools import Env, env_for, invoke, invoke_json
from ghl_adapters.settings import Settings


@pytest.fixture(scope="session")
def webhooks_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert settings.database_url
    env = env_for(settings, settings.database_url, tmp_path_factory.mktemp("cli-webhooks"))
    return {**env, "GHL_WEBHOOKS_ALLOW_PRIVATE": "1"}


def new_location(env: Env) -> str:
    agency = invoke_json(env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    return str(invoke_json(env, "locations", "create", "Main Street", "--agency", agency["id"])["id"])


def test_webhooks_commands(webhooks_env: Env) -> None:
    env = webhooks_env
    location = new_location(env)
    types = invoke_json(env, "webhooks", "event-types")
    assert "ContactCreate" in [t["name"] for t in types["items"]]
    created = invoke_json(
        env,
        "webhooks",
        "create",
        "--location",
        location,
        "--url",
        "http://127.0.0.1:9/hook",
        "--event-type",
        "ContactCreate,ContactUpdate",
        "--event-type",
        "OpportunityCreate",
    )
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["ContactCreate", "ContactUpdate", "OpportunityCreate"]
    hook = created["id"]
    listed = invoke_json(env, "webhooks", "list", "--location", location)
    assert [h["id"] for h in listed["items"]] == [hook]
    shown = invoke_json(env, "webhooks", "show", hook, "--location", location)
    assert "secret" not in shown
    paused = invoke_json(env, "webhooks", "update", hook, "--location", location, "--inactive")
    assert paused["active"] is False
    assert invoke_json(env, "webhooks", "deliveries", hook, "--location", location)["items"] == []
    refused = invoke_json(
        env, "webhooks", "redeliver", hook, "--location", location, "--event", str(uuid.uuid4()), exit_code=1
    )
    assert refused["error"]["code"] == "not_found"
    rotated = invoke_json(env, "webhooks", "rotate-secret", hook, "--location", location)
    assert rotated["secret"] != created["secret"]
    invoke_json(env, "webhooks", "delete", hook, "--location", location)
    gone = invoke_json(env, "webhooks", "show", hook, "--location", location, exit_code=1)
    assert gone["error"]["code"] == "not_found"


def test_unsafe_urls_are_refused(webhooks_env: Env) -> None:
    env = {**webhooks_env, "GHL_WEBHOOKS_ALLOW_PRIVATE": "0"}
    location = new_location(env)
    result = invoke(
        env,
        "webhooks",
        "create",
        "--location",
        location,
        "--url",
        "https://10.0.0.1/",
        "--event-type",
        "ContactCreate",
    )
    assert result.exit_code == 1
    assert "private address" in result.stderr + result.stdout
