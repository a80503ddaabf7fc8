"""`ghl pipelines` and `ghl opportunities`, run in-process as an operator would."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from clitools import Env, env_for, invoke, invoke_json
from ghl_adapters.container import build_container, close_container
from ghl_adapters.settings import Settings
from ghl_core.tenancy.permissions import Actor


@pytest.fixture(scope="session")
def pipelines_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert settings.database_url
    return env_for(settings, settings.database_url, tmp_path_factory.mktemp("cli-pipelines"))


def new_location(env: Env) -> str:
    agency = invoke_json(env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    location = invoke_json(env, "locations", "create", "Main Street", "--agency", agency["id"])
    return str(location["id"])


def new_opportunity(settings: Settings, location_id: str, pipeline_id: str) -> dict[str, Any]:
    """Contacts and opportunities are made through the services (the CLI has no create for them)."""

    async def make() -> dict[str, Any]:
        assert settings.database_url
        container = build_container(settings, settings.database_url)
        actor = Actor.operator_at(uuid.UUID(location_id))
        try:
            contact = await container.contacts().create(
                actor, {"email": f"{uuid.uuid4().hex[:8]}@example.com"}
            )
            opportunity = await container.opportunities().create(
                actor,
                {
                    "pipeline_id": pipeline_id,
                    "contact_id": str(contact.id),
                    "name": "Deal",
                    "value": {"amount": 9900, "currency": "EUR"},
                },
            )
            return {"id": str(opportunity.id), "stage_id": str(opportunity.stage_id)}
        finally:
            await close_container(container)

    return asyncio.run(make())


def test_pipelines_create_and_list(pipelines_env: Env) -> None:
    location = new_location(pipelines_env)
    created = invoke_json(
        pipelines_env,
        "pipelines",
        "create",
        "Sales",
        "--location",
        location,
        "--stages",
        "New, Qualified,Won",
    )
    assert [(s["name"], s["position"]) for s in created["stages"]] == [
        ("New", 0),
        ("Qualified", 1),
        ("Won", 2),
    ]
    listed = invoke_json(pipelines_env, "pipelines", "list", "--location", location)
    assert [p["id"] for p in listed["items"]] == [created["id"]]
    assert listed["next_cursor"] is None
    # Another location sees none of them.
    assert (
        invoke_json(pipelines_env, "pipelines", "list", "--location", new_location(pipelines_env))["items"]
        == []
    )
    table = invoke(pipelines_env, "pipelines", "list", "--location", location)
    assert table.exit_code == 0
    assert "Qualified" in table.stdout


def test_pipelines_create_refuses_bad_stages(pipelines_env: Env) -> None:
    location = new_location(pipelines_env)
    refused = invoke_json(
        pipelines_env,
        "pipelines",
        "create",
        "Sales",
        "--location",
        location,
        "--stages",
        "New,,new",
        exit_code=1,
    )
    assert sorted(e["pointer"] for e in refused["error"]["errors"]) == ["/stages/1/name", "/stages/2/name"]
    unknown = invoke_json(
        pipelines_env, "pipelines", "create", "Sales", "--location", str(uuid.uuid4()), exit_code=1
    )
    assert unknown["error"]["code"] == "not_found"


def test_opportunities_list_and_move(pipelines_env: Env, settings: Settings) -> None:
    location = new_location(pipelines_env)
    pipeline = invoke_json(pipelines_env, "pipelines", "create", "Sales", "--location", location)
    new, qualified, _ = (s["id"] for s in pipeline["stages"])
    opportunity = new_opportunity(settings, location, pipeline["id"])
    assert opportunity["stage_id"] == new
    listed = invoke_json(
        pipelines_env,
        "opportunities",
        "list",
        "--location",
        location,
        "--pipeline",
        pipeline["id"],
        "--status",
        "open",
    )
    assert [o["id"] for o in listed["items"]] == [opportunity["id"]]
    assert listed["items"][0]["value"] == {"amount": 9900, "currency": "EUR"}

    moved = invoke_json(
        pipelines_env,
        "opportunities",
        "move",
        opportunity["id"],
        "--location",
        location,
        "--stage",
        qualified,
    )
    assert (moved["stage_id"], moved["status"]) == (qualified, "open")
    lost = invoke_json(
        pipelines_env,
        "opportunities",
        "move",
        opportunity["id"],
        "--location",
        location,
        "--status",
        "lost",
        "--lost-reason",
        "Budget",
    )
    assert (lost["status"], lost["lost_reason"]) == ("lost", "Budget")
    assert (
        invoke_json(pipelines_env, "opportunities", "list", "--location", location, "--status", "open")[
            "items"
        ]
        == []
    )

    bad = invoke_json(
        pipelines_env,
        "opportunities",
        "move",
        opportunity["id"],
        "--location",
        location,
        "--status",
        "closed",
        exit_code=1,
    )
    assert [e["pointer"] for e in bad["error"]["errors"]] == ["/status"]
    elsewhere = invoke_json(
        pipelines_env,
        "opportunities",
        "move",
        opportunity["id"],
        "--location",
        new_location(pipelines_env),
        "--status",
        "won",
        exit_code=1,
    )
    assert elsewhere["error"]["code"] == "not_found"
