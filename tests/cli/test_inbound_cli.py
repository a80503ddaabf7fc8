"""`ghl inbound`, run in-process as an operator would."""

from __future__ import annotations

import uuid

import pytest

from clitools import Env, env_for, invoke, invoke_json
from ghl_adapters.settings import Settings


@pytest.fixture(scope="session")
def inbound_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert settings.database_url
    return env_for(settings, settings.database_url, tmp_path_factory.mktemp("cli-inbound"))


def new_location(env: Env) -> str:
    agency = invoke_json(env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    location = invoke_json(env, "locations", "create", "Main Street", "--agency", agency["id"])
    return str(location["id"])


def test_an_operator_creates_lists_and_deletes_endpoints(inbound_env: Env) -> None:
    location = new_location(inbound_env)
    created = invoke_json(inbound_env, "inbound", "create", "--location", location, "--name", "Zap")
    assert created["secret"].startswith("whsec_")
    assert created["url"].endswith(f"/webhooks/inbound/{created['id']}")

    listed = invoke_json(inbound_env, "inbound", "list", "--location", location)
    assert [e["id"] for e in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]
    assert invoke_json(inbound_env, "inbound", "events", "--location", location) == {
        "items": [],
        "next_cursor": None,
    }

    # Another location does not see it, nor may it delete it.
    other = new_location(inbound_env)
    assert invoke_json(inbound_env, "inbound", "list", "--location", other)["items"] == []
    refused = invoke_json(inbound_env, "inbound", "delete", created["id"], "--location", other, exit_code=1)
    assert refused["error"]["code"] == "not_found"
    invoke_json(
        inbound_env, "inbound", "events", "--location", other, "--endpoint", created["id"], exit_code=1
    )

    assert invoke_json(inbound_env, "inbound", "delete", created["id"], "--location", location)["deleted"]
    assert invoke_json(inbound_env, "inbound", "list", "--location", location)["items"] == []


def test_the_secret_is_printed_for_people_too(inbound_env: Env) -> None:
    location = new_location(inbound_env)
    result = invoke(inbound_env, "inbound", "create", "--location", location)
    assert result.exit_code == 0, result.stderr
    assert "whsec_" in result.stdout
    assert "shown once" in result.stdout
    listed = invoke(inbound_env, "inbound", "list", "--location", location)
    assert "Inbound webhook" in listed.stdout
    assert "whsec_" in listed.stdout  # the hint, never the whole secret
