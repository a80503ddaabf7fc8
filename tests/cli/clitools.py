"""Helpers for running the `ghl` Typer app in-process against the test database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from ghl_adapters.settings import Settings
from ghl_cli.main import app

Env = dict[str, str | None]
CLI_SECRET = "cli-test-secret-key-long-enough-for-hs256-0123456789"

# Set in a developer's shell they would change what doctor reports; the tests say what they want.
_PROVIDER_VARS = (
    "CLERK_SECRET_KEY",
    "CLERK_PUBLISHABLE_KEY",
    "CLERK_JWKS_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "SENDGRID_API_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "ELASTICSEARCH_URL",
)


def env_for(settings: Settings, database_url: str, data_dir: Path) -> Env:
    database = make_url(database_url).database
    app_url = getattr(settings, "app_database_url", None)
    env: Env = dict.fromkeys(_PROVIDER_VARS)
    env |= {
        "DATABASE_URL": database_url,
        "GHL_SECRET_KEY": CLI_SECRET,
        "GHL_DATA_DIR": str(data_dir),
        "REDIS_URL": settings.redis_url,
        "GHL_APP_DATABASE_URL": (
            make_url(app_url).set(database=database).render_as_string(hide_password=False)
            if app_url
            else None
        ),
        # Wide enough that rich never wraps an id in a table cell.
        "COLUMNS": "240",
    }
    return env


def libpq(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def invoke(env: Env, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=input, catch_exceptions=False)


def invoke_json(env: Env, *args: str, input: str | None = None, exit_code: int = 0) -> Any:
    result = invoke(env, *args, "--json", input=input)
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def list_all(env: Env, *args: str) -> list[dict[str, Any]]:
    """Every item of a list command, following its cursors."""
    items: list[dict[str, Any]] = []
    cursor: list[str] = []
    while True:
        page = invoke_json(env, *args, "--limit", "100", *cursor)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        cursor = ["--cursor", page["next_cursor"]]
