"""`ghl providers`, `ghl conversations` and `ghl outbox`, run in-process as an operator would; the send jobs
run with a real worker (in a thread with its own event loop: the CLI runs its own loops too)."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from clitools import CLI_SECRET, Env, env_for, invoke, invoke_json, libpq
from ghl_adapters.container import close_container
from ghl_adapters.settings import Settings, load_settings
from ghl_adapters.sql import migrate
from jobs_kit import run_jobs
from support import make_container
from twilio_double import ACCOUNT_SID, AUTH_TOKEN, TwilioDouble

SENDGRID_KEY = "SG.cli-test-key.0123456789abcdef"
SMTP_PASSWORD = "smtp-password-not-to-be-printed"
NEW_SECRET = "the-next-secret-key-for-the-cli-tests-0123456789"
PUBLIC_SMTP = "93.184.216.34"  # an SMTP host must be at a public address; no name resolves in the tests


@pytest.fixture(scope="session")
def conv_env(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Env:
    assert settings.database_url
    return env_for(settings, settings.database_url, tmp_path_factory.mktemp("cli-conversations"))


@pytest.fixture
def own_database(settings: Settings) -> Iterator[str]:
    """A migrated database of its own: key rotation re-seals every configuration in the database."""
    assert settings.database_url
    name = f"ghl_rekey_{uuid.uuid4().hex[:10]}"
    admin = libpq(settings.database_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_location(env: Env) -> tuple[str, str]:
    agency = invoke_json(env, "agencies", "create", f"Agency {uuid.uuid4().hex[:6]}")
    location = invoke_json(env, "locations", "create", "Main Street", "--agency", agency["id"])
    return str(agency["id"]), str(location["id"])


def new_contact(env: Env, location: str) -> dict[str, Any]:
    phone = f"+1312{secrets.randbelow(8_000_000) + 2_000_000}"
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    contact: dict[str, Any] = invoke_json(
        env, "contacts", "create", "--location", location, "--phone", phone, "--email", email
    )
    return contact


def run_send_jobs(settings: Settings, **overrides: Any) -> None:
    """The send jobs, run by a worker wired like the CLI's (same key), in a thread of its own."""

    if "secret_key" in overrides:  # model_copy does not validate: the field holds a SecretStr
        overrides["secret_key"] = SecretStr(overrides["secret_key"])

    async def work() -> None:
        container = make_container(settings.model_copy(update=overrides))
        try:
            await run_jobs(container, queues=["messages"])
        finally:
            await close_container(container)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work()).result()


def test_providers_set_show_and_remove_never_print_a_secret(conv_env: Env) -> None:
    agency, location = new_location(conv_env)
    assert invoke_json(conv_env, "providers", "show", "email", "--location", location)["kind"] == "outbox"

    set_sendgrid = invoke(
        conv_env | {"SG_KEY": SENDGRID_KEY}, "providers", "set", "email", "sendgrid", "--location", location,
        "--api-key-env", "SG_KEY", "--from-email", "Hello@Acme.example", "--json",
    )  # fmt: skip
    assert set_sendgrid.exit_code == 0, set_sendgrid.stderr
    assert SENDGRID_KEY not in set_sendgrid.stdout
    shown = invoke_json(conv_env, "providers", "show", "email", "--location", location)
    assert shown["kind"] == "sendgrid"
    assert shown["summary"]["from_email"] == "hello@acme.example"
    assert shown["summary"]["api_key"] == "…cdef"
    assert shown["callback_urls"]["sendgrid_event_webhook"].endswith(f"/webhooks/sendgrid/{location}/events")
    people = invoke(conv_env, "providers", "show", "email", "--location", location)
    assert people.exit_code == 0
    assert "sendgrid" in people.stdout
    assert SENDGRID_KEY not in people.stdout

    smtp = invoke(
        conv_env | {"SMTP_PASS": SMTP_PASSWORD}, "providers", "set", "email", "smtp", "--location", location,
        "--host", PUBLIC_SMTP, "--port", "587", "--username", "mailer", "--password-env", "SMTP_PASS",
        "--from-email", "hello@acme.example",
    )  # fmt: skip
    assert smtp.exit_code == 0, smtp.stderr
    assert SMTP_PASSWORD not in smtp.stdout
    shown = invoke_json(conv_env, "providers", "show", "email", "--location", location)
    assert shown["kind"] == "smtp"
    assert shown["summary"]["host"] == PUBLIC_SMTP
    assert SMTP_PASSWORD not in str(shown)
    missing = invoke_json(
        conv_env, "providers", "set", "email", "smtp", "--location", location, "--host", "mx",
        "--password-env", "NOT_SET_ANYWHERE", exit_code=1,
    )  # fmt: skip
    assert missing["error"]["code"] == "missing_secret"
    bad = invoke_json(
        conv_env, "providers", "set", "email", "smtp", "--location", location, "--host", "mx", exit_code=1
    )
    assert {e["pointer"] for e in bad["error"]["errors"]} == {"/config/from_email", "/config/port"}

    # An agency default serves the locations without their own.
    default = invoke_json(
        conv_env | {"TW_TOKEN": AUTH_TOKEN}, "providers", "set", "sms", "twilio", "--agency", agency,
        "--account-sid", ACCOUNT_SID, "--auth-token-env", "TW_TOKEN", "--from", "+14155550100",
    )  # fmt: skip
    assert default["agency_default"] is True
    assert AUTH_TOKEN not in str(default)
    inherited = invoke_json(conv_env, "providers", "show", "sms", "--location", location)
    assert (inherited["kind"], inherited["agency_default"]) == ("twilio", True)
    assert inherited["callback_urls"]["twilio_messaging_webhook"].endswith(f"/webhooks/twilio/{location}")

    assert invoke_json(conv_env, "providers", "remove", "email", "--location", location)["removed"] is True
    assert invoke_json(conv_env, "providers", "show", "email", "--location", location)["kind"] == "outbox"
    gone = invoke_json(conv_env, "providers", "remove", "email", "--location", location, exit_code=1)
    assert gone["error"]["code"] == "not_found"
    both = invoke_json(conv_env, "providers", "show", "sms", exit_code=1)
    assert both["error"]["code"] == "bad_usage"


def test_provider_secrets_never_come_from_an_option_value(conv_env: Env) -> None:
    """`ps` and shell history keep option values: a secret comes from a variable, stdin or a prompt."""
    _, location = new_location(conv_env)
    twilio = ("providers", "set", "sms", "twilio", "--location", location, "--account-sid", ACCOUNT_SID,
              "--from", "+14155550100")  # fmt: skip
    for exposed in (["--auth-token", AUTH_TOKEN], ["--api-key", SENDGRID_KEY]):
        kind = ["sms", "twilio"] if exposed[0] == "--auth-token" else ["email", "sendgrid"]
        refused = invoke(
            conv_env, "providers", "set", *kind, "--location", location, *exposed,
            "--account-sid", ACCOUNT_SID, "--from-email", "a@acme.example", "--json",
        )  # fmt: skip
        assert refused.exit_code == 1, refused.stdout
        error = json.loads(refused.stdout)["error"]
        assert error["code"] == "unsafe_secret"
        assert exposed[1] not in refused.stdout + refused.stderr
        assert "-env" in error["detail"]
        assert "--secret-stdin" in error["detail"]
    assert invoke_json(conv_env, "providers", "show", "sms", "--location", location)["kind"] == "outbox"

    missing = invoke_json(conv_env, *twilio, "--auth-token-env", "NOT_SET_ANYWHERE", exit_code=1)
    assert missing["error"]["code"] == "missing_secret"

    def stored_token(env: Env, *extra: str, input: str | None = None) -> str:
        result = invoke(env, *twilio, *extra, "--json", input=input)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert "token-from" not in result.stdout
        shown = invoke_json(env, "providers", "show", "sms", "--location", location)
        return str(shown["summary"]["auth_token"])

    from_env = conv_env | {"TW_TOKEN": "token-from-env-1111"}
    assert stored_token(from_env, "--auth-token-env", "TW_TOKEN") == "…1111"
    assert stored_token(conv_env, "--secret-stdin", input="token-from-stdin-2222\n") == "…2222"
    assert stored_token(conv_env, input="token-from-prompt-3333\n") == "…3333"  # a hidden prompt

    sendgrid = invoke_json(
        conv_env, "providers", "set", "email", "sendgrid", "--location", location,
        "--from-email", "a@acme.example", "--secret-stdin", input=SENDGRID_KEY + "\n",
    )  # fmt: skip
    assert sendgrid["summary"]["api_key"] == "…cdef"


def test_providers_show_the_callback_url_of_the_running_server(
    conv_env: Env, settings: Settings, tmp_path: Path
) -> None:
    """`ghl serve --port 9123` records where it listens; other commands print the URLs it answers at,
    unless GHL_PUBLIC_URL says where providers reach it."""
    data_dir = tmp_path / "served"
    env = conv_env | {"GHL_DATA_DIR": str(data_dir), "TW_TOKEN": AUTH_TOKEN, "GHL_PUBLIC_URL": None}
    _, location = new_location(env)
    invoke_json(
        env, "providers", "set", "sms", "twilio", "--location", location, "--account-sid", ACCOUNT_SID,
        "--auth-token-env", "TW_TOKEN", "--from", "+14155550100",
    )  # fmt: skip
    load_settings(port=9123, data_dir=data_dir, _env_file=None).record_serving()  # as `ghl serve` does

    shown = invoke_json(env, "providers", "show", "sms", "--location", location)
    assert shown["callback_urls"]["twilio_messaging_webhook"] == (
        f"http://127.0.0.1:9123/webhooks/twilio/{location}"
    )
    public = invoke_json(env | {"GHL_PUBLIC_URL": "https://crm.example.test/"}, "providers", "show", "sms",
                         "--location", location)  # fmt: skip
    assert public["callback_urls"]["twilio_messaging_webhook"] == (
        f"https://crm.example.test/webhooks/twilio/{location}"
    )


def test_send_then_the_outbox_shows_what_it_took(conv_env: Env, settings: Settings, tmp_path: Path) -> None:
    _, location = new_location(conv_env)
    contact = new_contact(conv_env, location)
    sms = invoke_json(conv_env, "conversations", "send", "--location", location, "--contact", contact["id"],
                      "--sms", "Your order shipped")  # fmt: skip
    assert sms["status"] == "queued"
    html = tmp_path / "mail.html"
    html.write_text("<p>Thanks for <b>your</b> order</p>", encoding="utf-8")
    email = invoke_json(
        conv_env, "conversations", "send", "--location", location, "--contact", contact["id"], "--email",
        "--subject", "Receipt", "--body", "Thanks for your order", "--html", str(html),
    )  # fmt: skip
    assert email["subject"] == "Receipt"
    usage = invoke_json(conv_env, "conversations", "send", "--location", location, "--contact", contact["id"],
                        exit_code=1)  # fmt: skip
    assert usage["error"]["code"] == "bad_usage"

    run_send_jobs(settings, secret_key=CLI_SECRET)
    outbox = invoke_json(conv_env, "outbox", "--location", location)
    assert outbox["provider"] == "outbox"
    assert "nothing was sent" in outbox["note"]
    assert {(m["channel"], m["body"]) for m in outbox["items"]} == {
        ("sms", "Your order shipped"),
        ("email", "Thanks for your order"),
    }
    assert all(m["status"] == "delivered" for m in outbox["items"])
    everywhere = invoke_json(conv_env, "outbox")
    assert {sms["id"], email["id"]} <= {m["id"] for m in everywhere["items"]}
    table = invoke(conv_env, "outbox", "--location", location)
    assert "Your order shipped" in table.stdout
    assert "nothing was sent" in table.stdout

    listed = invoke_json(conv_env, "conversations", "list", "--location", location)
    assert {c["channel"] for c in listed["items"]} == {"sms", "email"}
    sms_conversation = next(c for c in listed["items"] if c["channel"] == "sms")
    shown = invoke_json(conv_env, "conversations", "show", sms_conversation["id"], "--location", location)
    assert [m["body"] for m in shown["messages"]] == ["Your order shipped"]


def test_rekey_reseals_and_messages_still_send(own_database: str, settings: Settings, tmp_path: Path) -> None:
    env = env_for(settings, own_database, tmp_path / "data")
    _, location = new_location(env)
    contact = new_contact(env, location)
    invoke_json(
        env, "providers", "set", "sms", "twilio", "--location", location,
        "--account-sid", ACCOUNT_SID, "--secret-stdin", "--from", "+14155550100", input=AUTH_TOKEN + "\n",
    )  # fmt: skip

    rotated = env | {"GHL_SECRET_KEY": NEW_SECRET, "OLD_GHL_KEY": CLI_SECRET, "WRONG_KEY": "x" * 40}
    wrong = invoke_json(rotated, "providers", "rekey", "--old-key-env", "WRONG_KEY", exit_code=1)
    assert wrong["error"]["code"] == "wrong_key"
    unset = invoke_json(rotated, "providers", "rekey", "--old-key-env", "NOT_SET_ANYWHERE", exit_code=1)
    assert unset["error"]["code"] == "missing_secret"
    assert invoke_json(rotated, "providers", "rekey", "--old-key-env", "OLD_GHL_KEY") == {"resealed": 1}

    sent = invoke_json(rotated, "conversations", "send", "--location", location, "--contact", contact["id"],
                       "--sms", "Sent after the key changed")  # fmt: skip
    with TwilioDouble() as twilio:
        app_url = settings.app_database_url
        run_send_jobs(
            settings,
            database_url=own_database,
            app_database_url=make_url(app_url)
            .set(database=make_url(own_database).database)
            .render_as_string(hide_password=False)
            if app_url
            else None,
            secret_key=NEW_SECRET,
            twilio_api_base=twilio.base_url,
        )
        [received] = [m for m in twilio.messages if m.to == contact["phone"]]
    assert received.body == "Sent after the key changed"
    shown = invoke_json(rotated, "conversations", "show", sent["conversation_id"], "--location", location)
    assert [(m["status"], m["provider"]) for m in shown["messages"]] == [("sent", "twilio")]
