"""`ghl templates` and `ghl campaigns`, run in-process as an operator would, with the platform's jobs run
by a real worker on the same database between commands."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from clitools import Env, env_for, invoke, invoke_json, libpq
from ghl_adapters.container import close_container
from ghl_adapters.settings import Settings
from ghl_adapters.sql import migrate
from jobs_kit import run_jobs
from support import make_container


@pytest.fixture(scope="module")
def campaigns_settings(settings: Settings) -> Iterator[Settings]:
    """A migrated database of this module's own. The worker these tests run works every due job of the
    campaign and message queues; in the session's database, jobs other tests left there (sends retried
    against doubles that have stopped) took minutes to work through."""
    assert settings.database_url
    name = f"ghl_cli_campaigns_{uuid.uuid4().hex[:10]}"
    admin = libpq(settings.database_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    app_url = settings.app_database_url
    try:
        migrate.upgrade(url)
        yield settings.model_copy(
            update={
                "database_url": url,
                "app_database_url": (
                    make_url(app_url).set(database=name).render_as_string(hide_password=False)
                    if app_url
                    else None
                ),
            }
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def campaigns_env(campaigns_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert campaigns_settings.database_url
    return env_for(
        campaigns_settings, campaigns_settings.database_url, tmp_path_factory.mktemp("cli-campaigns")
    )


def new_location(env: Env) -> str:
    agency = invoke_json(env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    location = invoke_json(env, "locations", "create", "Main Street", "--agency", agency["id"])
    return str(location["id"])


def work_the_queue(settings: Settings) -> None:
    """What `ghl worker` does for a campaign's queues, until nothing is left: in its own event loop, as the
    CLI uses its own."""

    async def main() -> None:
        container = make_container(settings)
        try:
            await run_jobs(container, queues=["campaigns", "messages"])
        finally:
            await close_container(container)

    asyncio.run(main())


def test_templates_are_created_listed_shown_and_deleted(campaigns_env: Env) -> None:
    location = new_location(campaigns_env)
    created = invoke_json(
        campaigns_env,
        "templates",
        "create",
        "--location",
        location,
        "--name",
        "Welcome",
        "--channel",
        "sms",
        "--body",
        "Hi {{ contact.first_name | default('there', true) }}",
    )
    assert created["channel"] == "sms"
    listed = invoke_json(campaigns_env, "templates", "list", "--location", location)
    assert [t["id"] for t in listed["items"]] == [created["id"]]
    shown = invoke_json(campaigns_env, "templates", "show", created["id"], "--location", location)
    assert shown["body"] == created["body"]

    # Bad syntax is refused with the field and line; another location sees nothing.
    refused = invoke_json(
        campaigns_env,
        "templates",
        "create",
        "--location",
        location,
        "--name",
        "Broken",
        "--channel",
        "sms",
        "--body",
        "Hi\n{{ contact.first_name ) }}",
        exit_code=1,
    )
    assert refused["error"]["errors"][0]["pointer"] == "/body"
    assert "line 2" in refused["error"]["errors"][0]["detail"]
    other = new_location(campaigns_env)
    assert invoke_json(campaigns_env, "templates", "list", "--location", other)["items"] == []
    missing = invoke_json(campaigns_env, "templates", "show", created["id"], "--location", other, exit_code=1)
    assert missing["error"]["code"] == "not_found"

    assert invoke_json(campaigns_env, "templates", "delete", created["id"], "--location", location)["deleted"]
    assert invoke_json(campaigns_env, "templates", "list", "--location", location)["items"] == []
    people = invoke(campaigns_env, "templates", "list", "--location", location)
    assert people.exit_code == 0
    assert "No templates" in people.stdout


def test_a_campaign_is_created_sent_and_counted(campaigns_env: Env, campaigns_settings: Settings) -> None:
    location = new_location(campaigns_env)
    tag = f"vip-{uuid.uuid4().hex[:6]}"
    for i in range(3):
        invoke_json(
            campaigns_env,
            "contacts",
            "create",
            "--location",
            location,
            "--first-name",
            f"P{i}",
            "--phone",
            f"+1312{2_000_000 + secrets.randbelow(7_000_000)}",
            "--tag",
            tag,
        )
    invoke_json(
        campaigns_env,
        "contacts",
        "create",
        "--location",
        location,
        "--first-name",
        "Out",
        "--phone",
        f"+1312{2_000_000 + secrets.randbelow(7_000_000)}",
    )
    template = invoke_json(
        campaigns_env,
        "templates",
        "create",
        "--location",
        location,
        "--name",
        "Sale",
        "--channel",
        "sms",
        "--body",
        "Hi {{ contact.first_name }}, sale today",
    )
    campaign = invoke_json(
        campaigns_env,
        "campaigns",
        "create",
        "--location",
        location,
        "--name",
        "Spring",
        "--channel",
        "sms",
        "--template",
        template["id"],
        "--tag",
        tag,
    )
    assert campaign["status"] == "draft"
    assert campaign["audience"] == {"tags": [tag]}
    listed = invoke_json(campaigns_env, "campaigns", "list", "--location", location)
    assert [c["id"] for c in listed["items"]] == [campaign["id"]]

    # With no worker running, --wait gives up and says why.
    waited = invoke_json(
        campaigns_env,
        "campaigns",
        "send",
        campaign["id"],
        "--location",
        location,
        "--wait",
        "--timeout",
        "1",
        "--poll",
        "0.2",
        exit_code=1,
    )
    assert waited["error"]["code"] == "timeout"
    assert "worker" in waited["error"]["detail"]
    shown = invoke_json(campaigns_env, "campaigns", "show", campaign["id"], "--location", location)
    assert shown["status"] == "sending"

    work_the_queue(campaigns_settings)

    stats = invoke_json(campaigns_env, "campaigns", "stats", campaign["id"], "--location", location)
    assert (stats["recipients"], stats["sent"], stats["pending"], stats["skipped"]) == (3, 3, 0, 0)
    done = invoke_json(campaigns_env, "campaigns", "show", campaign["id"], "--location", location)
    assert done["status"] == "completed"
    again = invoke_json(
        campaigns_env, "campaigns", "send", campaign["id"], "--location", location, exit_code=1
    )
    assert again["error"]["code"] == "campaign_state"
    people = invoke(campaigns_env, "campaigns", "stats", campaign["id"], "--location", location)
    assert "Campaign statistics" in people.stdout


def test_a_scheduled_campaign_can_be_cancelled(campaigns_env: Env) -> None:
    location = new_location(campaigns_env)
    campaign = invoke_json(
        campaigns_env,
        "campaigns",
        "create",
        "--location",
        location,
        "--name",
        "Later",
        "--channel",
        "sms",
        "--body",
        "Coming soon",
    )
    bad = invoke_json(
        campaigns_env,
        "campaigns",
        "send",
        campaign["id"],
        "--location",
        location,
        "--at",
        "soon",
        exit_code=1,
    )
    assert bad["error"]["code"] == "bad_usage"
    scheduled = invoke_json(
        campaigns_env,
        "campaigns",
        "send",
        campaign["id"],
        "--location",
        location,
        "--at",
        "2099-01-01T09:00:00+00:00",
        "--wait",
    )
    assert scheduled["status"] == "scheduled"
    assert scheduled["scheduled_at"].startswith("2099-01-01T09:00:00")
    paused = invoke_json(campaigns_env, "campaigns", "pause", campaign["id"], "--location", location)
    assert paused["status"] == "paused"
    cancelled = invoke_json(campaigns_env, "campaigns", "cancel", campaign["id"], "--location", location)
    assert cancelled["status"] == "cancelled"
    refused = invoke_json(
        campaigns_env, "campaigns", "resume", campaign["id"], "--location", location, exit_code=1
    )
    assert refused["error"]["code"] == "campaign_state"
