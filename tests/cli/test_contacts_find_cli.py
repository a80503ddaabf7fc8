"""`ghl contacts list` finding by words, tags and a smart list, and `ghl contacts export` of a smart
list or tags: the same services as the API's search and export."""

from __future__ import annotations

import asyncio
import csv
import uuid
from pathlib import Path

import pytest

from clitools import Env, env_for, invoke, invoke_json
from ghl_adapters.container import close_container
from ghl_adapters.settings import Settings
from ghl_core.tenancy.permissions import Actor
from support import make_container


@pytest.fixture(scope="session")
def cli_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert settings.database_url
    return env_for(settings, settings.database_url, tmp_path_factory.mktemp("cli-contacts-find"))


def save_smart_list(settings: Settings, location: str, body: dict[str, object]) -> str:
    """No CLI command saves a smart list yet: save it with the service, as the API would."""

    async def save() -> str:
        container = make_container(settings)
        try:
            made = await container.smart_lists().create(Actor.operator_at(uuid.UUID(location)), body)
            return str(made.id)
        finally:
            await close_container(container)

    return asyncio.run(save())


def test_list_finds_by_query_tags_and_smart_list(cli_env: Env, settings: Settings) -> None:
    agency = invoke_json(cli_env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    location = invoke_json(cli_env, "locations", "create", "Main Street", "--agency", agency["id"])["id"]

    def create(email: str, first: str, *tags: str) -> str:
        args = [f"--tag={t}" for t in tags]
        made = invoke_json(
            cli_env,
            "contacts",
            "create",
            "--location",
            location,
            "--email",
            email,
            "--first-name",
            first,
            *args,
        )
        return str(made["id"])

    zed = create("zed@example.com", "Zed", "vip", "gold")
    amy = create("amy@example.com", "Amy", "vip")
    cal = create("cal@findme.io", "Cal", "gold")

    def listed(*args: str) -> list[str]:
        page = invoke_json(cli_env, "contacts", "list", "--location", location, *args)
        return [c["id"] for c in page["items"]]

    assert listed() == [cal, amy, zed]  # newest first
    assert listed("--query", "findme") == [cal]
    assert listed("--tag", "VIP") == [amy, zed]
    assert listed("--tag", "vip", "--tag", "gold") == [zed]  # every tag
    assert listed("--query", "zed", "--tag", "gold") == [zed]
    first_page = invoke_json(
        cli_env, "contacts", "list", "--location", location, "--tag", "vip", "--limit", "1"
    )
    assert [c["id"] for c in first_page["items"]] == [amy]
    assert listed("--tag", "vip", "--limit", "1", "--cursor", first_page["next_cursor"]) == [zed]

    smart = save_smart_list(
        settings,
        location,
        {
            "name": "gold",
            "filter": {"field": "tags", "operator": "has_any", "value": ["gold"]},
            "sort": [{"field": "first_name", "direction": "asc"}],
        },
    )
    assert listed("--smart-list", smart) == [cal, zed]  # the smart list's order
    assert listed("--smart-list", smart, "--tag", "vip") == [zed]

    # Another location does not see the smart list; a bad filter word is refused.
    other = invoke_json(cli_env, "locations", "create", "Elsewhere", "--agency", agency["id"])["id"]
    missing = invoke(cli_env, "contacts", "list", "--location", other, "--smart-list", smart, "--json")
    assert missing.exit_code != 0
    assert "not found" in missing.stdout + missing.stderr
    too_long = invoke(cli_env, "contacts", "list", "--location", location, "--query", "x" * 300, "--json")
    assert too_long.exit_code != 0
    assert "/query" in too_long.stdout + too_long.stderr


def test_export_a_smart_list_or_tags(cli_env: Env, settings: Settings, tmp_path: Path) -> None:
    agency = invoke_json(cli_env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    location = invoke_json(cli_env, "locations", "create", "Main Street", "--agency", agency["id"])["id"]
    for email, tags in (
        ("a@example.com", ["vip", "gold"]),
        ("b@example.com", ["vip"]),
        ("c@example.com", ["gold"]),
        ("d@example.com", []),
    ):
        args = [f"--tag={t}" for t in tags]
        invoke_json(cli_env, "contacts", "create", "--location", location, "--email", email, *args)
    smart = save_smart_list(
        settings,
        location,
        {"name": "vips", "filter": {"field": "tags", "operator": "has_all", "value": ["vip"]}},
    )

    def exported(*args: str) -> list[str]:
        out = tmp_path / f"{uuid.uuid4().hex}.csv"
        summary = invoke_json(cli_env, "contacts", "export", "--location", location, "--out", str(out), *args)
        found = [r["email"] for r in csv.DictReader(out.open(encoding="utf-8"))]
        assert summary["rows"] == len(found)
        return found

    assert exported() == ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]
    assert exported("--smart-list", smart) == ["a@example.com", "b@example.com"]
    assert exported("--tag", "gold") == ["a@example.com", "c@example.com"]
    assert exported("--tag", "gold", "--tag", "vip") == ["a@example.com"]
    assert exported("--smart-list", smart, "--tag", "GOLD") == ["a@example.com"]
    other = invoke_json(cli_env, "locations", "create", "Elsewhere", "--agency", agency["id"])["id"]
    refused = invoke(
        cli_env,
        "contacts",
        "export",
        "--location",
        other,
        "--smart-list",
        smart,
        "--out",
        str(tmp_path / "x.csv"),
    )
    assert refused.exit_code != 0
    assert "not found" in refused.stdout + refused.stderr
