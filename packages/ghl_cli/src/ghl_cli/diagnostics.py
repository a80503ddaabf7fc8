"""What `ghl doctor` checks: settings, the database and its schema, Redis, and each provider this version
has (sign-in, SMS, e-mail, search). Provider checks look only at whether a setting is present; secret
values are never read out. Settings for what does not exist yet are named as unused, never as a
provider."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from ghl_adapters.container import build_container, close_container
from ghl_adapters.runtime import Database, open_database, readiness
from ghl_adapters.settings import Settings, SettingsError, load_settings
from ghl_adapters.sql import migrate
from ghl_cli.errors import error_document


class Level(StrEnum):
    OK = "ok"
    OFF = "off"  # not configured: the embedded default is in use, which is fine
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str

    def view(self) -> dict[str, Any]:
        return asdict(self) | {"level": self.level.value}


def _provider(name: str, present: dict[str, bool], default: str, needed: tuple[str, ...] = ()) -> Check:
    """`present` maps each setting's variable name to whether it is set; `needed` must all be set."""
    required = needed or tuple(present)
    if not any(present.values()):
        return Check(name, Level.OFF, f"not configured: {default}")
    missing = [var for var in required if not present[var]]
    if missing:
        return Check(name, Level.WARN, f"incomplete, missing {', '.join(missing)}; meanwhile: {default}")
    return Check(name, Level.OK, f"configured ({', '.join(var for var, on in present.items() if on)})")


def provider_checks(settings: Settings) -> list[Check]:
    s = settings
    return [
        _provider(
            "clerk",
            {
                "CLERK_PUBLISHABLE_KEY": bool(s.clerk_publishable_key),
                "CLERK_SECRET_KEY": s.clerk_secret_key is not None,
                "CLERK_JWKS_URL": bool(s.clerk_jwks_url),
            },
            "built-in users (argon2 passwords, JWTs)",
            needed=("CLERK_PUBLISHABLE_KEY",) if not s.clerk_jwks_url else ("CLERK_JWKS_URL",),
        ),
        _provider(
            "twilio",
            {
                "TWILIO_ACCOUNT_SID": bool(s.twilio_account_sid),
                "TWILIO_AUTH_TOKEN": s.twilio_auth_token is not None,
                "TWILIO_FROM_NUMBER|TWILIO_MESSAGING_SERVICE_SID": bool(
                    s.twilio_from_number or s.twilio_messaging_service_sid
                ),
            },
            "the local outbox records SMS instead of sending them, for locations and agencies "
            "that set no provider of their own (ghl providers set)",
        ),
        _provider(
            "sendgrid",
            {
                "SENDGRID_API_KEY": s.sendgrid_api_key is not None,
                "SENDGRID_FROM_EMAIL": bool(s.sendgrid_from_email),
            },
            "SMTP when SMTP_HOST is set, else the local outbox records e-mail instead of sending it, "
            "for locations and agencies that set no provider of their own",
        ),
        _provider(
            "smtp",
            {"SMTP_HOST": bool(s.smtp_host), "SMTP_FROM_EMAIL": bool(s.smtp_from_email)},
            "e-mail goes through SendGrid when configured, else the local outbox",
        ),
        Check("search", Level.OK, "PostgreSQL full-text search"),
        *unused_settings_check(settings),
    ]


def unused_settings_check(settings: Settings) -> list[Check]:
    """Settings accepted for what this version does not have yet (payments, AI, Elasticsearch): set,
    they change nothing, which an operator who set one should hear rather than read "configured"."""
    s = settings
    present = {
        "STRIPE_SECRET_KEY": s.stripe_secret_key is not None,
        "STRIPE_WEBHOOK_SECRET": s.stripe_webhook_secret is not None,
        "OPENAI_API_KEY": s.openai_api_key is not None,
        "ANTHROPIC_API_KEY": s.anthropic_api_key is not None,
        "ELASTICSEARCH_URL": bool(s.elasticsearch_url),
    }
    unused = [name for name, on in present.items() if on]
    if not unused:
        return []
    return [
        Check(
            "unused settings",
            Level.WARN,
            f"{', '.join(unused)}: nothing in this version reads them (no payments, AI or Elasticsearch yet)",
        )
    ]


def secret_key_check(settings: Settings) -> Check:
    if settings.secret_key is not None:
        return Check("secret key", Level.OK, "GHL_SECRET_KEY is set")
    kept = settings.data_dir / "secret_key"
    where = f"kept in {kept}" if kept.exists() else f"generated into {kept} at first start"
    if settings.embedded:
        return Check("secret key", Level.OK, f"GHL_SECRET_KEY not set: {where}")
    # With a shared database several machines must sign tokens with the same key.
    return Check(
        "secret key", Level.WARN, f"GHL_SECRET_KEY not set: {where}; set it when running many servers"
    )


def schema_check(handle: Database) -> Check:
    status = migrate.status(handle.url)
    if status.up_to_date:
        return Check("schema", Level.OK, f"at head ({status.head})")
    return Check(
        "schema",
        Level.WARN,
        f"at {status.current or 'none'}, {len(status.pending)} migration(s) pending: run `ghl db upgrade`",
    )


def service_checks(settings: Settings, handle: Database) -> list[Check]:
    """The database as the application role connects to it, and Redis when REDIS_URL is set."""

    async def probe() -> dict[str, Any]:
        container = build_container(settings, handle.url)
        try:
            return await readiness(container)
        finally:
            await close_container(container)

    checks: dict[str, str] = asyncio.run(probe())["checks"]
    found = [
        Check("database", Level.OK, handle.description)
        if checks["database"] == "ok"
        else Check("database", Level.ERROR, f"the application cannot connect: {checks['database']}")
    ]
    if "redis" not in checks:
        found.append(Check("redis", Level.OFF, "not configured: in-process cache and rate limits"))
    elif checks["redis"] == "ok":
        found.append(Check("redis", Level.OK, "answers PING"))
    else:
        found.append(Check("redis", Level.ERROR, f"{checks['redis']} (REDIS_URL)"))
    return found


def diagnose() -> list[Check]:
    try:
        settings = load_settings()
    except SettingsError as exc:
        return [Check("settings", Level.ERROR, str(exc))]
    checks = [Check("settings", Level.OK, "loaded"), secret_key_check(settings)]
    try:
        handle = open_database(settings)
    except Exception as exc:  # a diagnosis reports every failure, whatever its kind
        checks.append(Check("database", Level.ERROR, error_document(exc)["detail"]))
        if settings.redis_url:
            checks.append(Check("redis", Level.WARN, "not checked: the database is unavailable"))
        return checks + provider_checks(settings)
    try:
        try:
            schema = schema_check(handle)
        except Exception as exc:  # as above; the probe below still checks Redis
            schema = Check("schema", Level.ERROR, error_document(exc)["detail"])
        database_check, *others = service_checks(settings, handle)
        checks += [database_check, schema, *others]
    finally:
        handle.release()
    return checks + provider_checks(settings)
