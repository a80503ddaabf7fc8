"""Settings from the environment and a `.env` file. Third-party names are the ones each ecosystem
expects (DATABASE_URL, TWILIO_AUTH_TOKEN, ...); our own carry the GHL_ prefix."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ghl_adapters.durations import parse_duration

MIN_SECRET_KEY_LENGTH = 32
SERVED_URL_FILE = "served_url"  # in the data folder: where `ghl serve` last listened


class SettingsError(Exception):
    """Start-up cannot go on: the message names each missing or invalid setting."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )
    _served_url: str | None = PrivateAttr(None)  # read from the data folder (see base_url)

    # Infrastructure, under the names the ecosystem uses.
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))
    app_database_url: str | None = Field(None, validation_alias=_env("GHL_APP_DATABASE_URL"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    elasticsearch_url: str | None = Field(None, validation_alias=_env("ELASTICSEARCH_URL"))

    # Providers.
    clerk_secret_key: SecretStr | None = Field(None, validation_alias=_env("CLERK_SECRET_KEY"))
    clerk_publishable_key: str | None = Field(None, validation_alias=_env("CLERK_PUBLISHABLE_KEY"))
    clerk_jwks_url: str | None = Field(None, validation_alias=_env("CLERK_JWKS_URL"))
    clerk_authorized_parties: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("CLERK_AUTHORIZED_PARTIES")
    )
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_env("ANTHROPIC_API_KEY"))
    twilio_account_sid: str | None = Field(None, validation_alias=_env("TWILIO_ACCOUNT_SID"))
    twilio_auth_token: SecretStr | None = Field(None, validation_alias=_env("TWILIO_AUTH_TOKEN"))
    twilio_from_number: str | None = Field(None, validation_alias=_env("TWILIO_FROM_NUMBER"))
    twilio_messaging_service_sid: str | None = Field(
        None, validation_alias=_env("TWILIO_MESSAGING_SERVICE_SID")
    )
    sendgrid_api_key: SecretStr | None = Field(None, validation_alias=_env("SENDGRID_API_KEY"))
    sendgrid_from_email: str | None = Field(None, validation_alias=_env("SENDGRID_FROM_EMAIL"))
    sendgrid_from_name: str | None = Field(None, validation_alias=_env("SENDGRID_FROM_NAME"))
    sendgrid_webhook_public_key: str | None = Field(
        None, validation_alias=_env("SENDGRID_WEBHOOK_PUBLIC_KEY")
    )
    sendgrid_parse_public_key: str | None = Field(None, validation_alias=_env("SENDGRID_PARSE_PUBLIC_KEY"))
    smtp_host: str | None = Field(None, validation_alias=_env("SMTP_HOST"))
    smtp_port: int = Field(587, ge=1, le=65535, validation_alias=_env("SMTP_PORT"))
    smtp_username: str | None = Field(None, validation_alias=_env("SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(None, validation_alias=_env("SMTP_PASSWORD"))
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", validation_alias=_env("SMTP_SECURITY")
    )
    smtp_from_email: str | None = Field(None, validation_alias=_env("SMTP_FROM_EMAIL"))
    smtp_from_name: str | None = Field(None, validation_alias=_env("SMTP_FROM_NAME"))
    stripe_secret_key: SecretStr | None = Field(None, validation_alias=_env("STRIPE_SECRET_KEY"))
    stripe_webhook_secret: SecretStr | None = Field(None, validation_alias=_env("STRIPE_WEBHOOK_SECRET"))

    # Our own.
    data_dir: Path = Field(Path(".ghl"), validation_alias=_env("GHL_DATA_DIR"))
    secret_key: SecretStr | None = Field(None, validation_alias=_env("GHL_SECRET_KEY"))
    host: str = Field("127.0.0.1", validation_alias=_env("GHL_HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("GHL_PORT"))
    public_url: str | None = Field(None, validation_alias=_env("GHL_PUBLIC_URL"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("GHL_LOG_LEVEL")
    )
    # console (lines for people), json (for log collectors) or auto: console on a terminal, else JSON.
    log_format: Literal["auto", "console", "json"] = Field("auto", validation_alias=_env("GHL_LOG_FORMAT"))
    # The older switch, still honoured while GHL_LOG_FORMAT is auto: true is json, false console.
    log_json: bool | None = Field(None, validation_alias=_env("GHL_LOG_JSON"))
    access_token_minutes: int = Field(15, ge=1, le=1440, validation_alias=_env("GHL_ACCESS_TOKEN_MINUTES"))
    max_body_bytes: int = Field(1_048_576, ge=1024, validation_alias=_env("GHL_MAX_BODY_BYTES"))
    db_pool_size: int = Field(10, ge=1, le=200, validation_alias=_env("GHL_DB_POOL_SIZE"))
    demo: bool = Field(True, validation_alias=_env("GHL_DEMO"))
    # Reverse proxies whose X-Forwarded-For/-Proto `ghl serve` believes: addresses or CIDR networks,
    # comma-separated, or * for any. Empty (the default) believes none: per-IP limits count the
    # connection's own address, which a client cannot choose with a header.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("GHL_TRUSTED_PROXIES")
    )
    # Prometheus metrics at /metrics: route templates, statuses and durations, never ids or tenant data.
    # Open by default (Prometheus scrapes without credentials, and the server listens on loopback unless
    # told otherwise); with a token, a scrape must send `Authorization: Bearer <token>`.
    metrics_enabled: bool = Field(True, validation_alias=_env("GHL_METRICS_ENABLED"))
    metrics_token: SecretStr | None = Field(None, validation_alias=_env("GHL_METRICS_TOKEN"))
    # Hot reads (API key look-ups, locations, custom field definitions) are cached this long; 0 turns
    # the cache off. Writes invalidate at once in every process, so this bounds only out-of-band edits.
    cache_ttl_seconds: float = Field(
        60.0, ge=0.0, le=86_400.0, validation_alias=_env("GHL_CACHE_TTL_SECONDS")
    )
    cache_max_entries: int = Field(10_000, ge=1, validation_alias=_env("GHL_CACHE_MAX_ENTRIES"))

    # Background jobs.
    worker_concurrency: int = Field(8, ge=1, le=256, validation_alias=_env("GHL_WORKER_CONCURRENCY"))
    # `ghl serve` runs a worker in its own process unless told not to (then run `ghl worker`).
    serve_worker: bool = Field(True, validation_alias=_env("GHL_SERVE_WORKER"))
    # A worker silent for this long is presumed dead; its running jobs go back to the queue.
    jobs_stalled_after_seconds: float = Field(
        30.0, ge=1.0, le=3600.0, validation_alias=_env("GHL_JOBS_STALLED_AFTER_SECONDS")
    )
    # An idle worker looks for due jobs this often (new jobs wake it at once through LISTEN/NOTIFY; this
    # bounds the wait for jobs that become due later: retries, schedules, the next job of a lock).
    jobs_poll_seconds: float = Field(0.5, ge=0.05, le=60.0, validation_alias=_env("GHL_JOBS_POLL_SECONDS"))
    # How long a stopping worker waits for its running jobs before handing them back.
    jobs_shutdown_seconds: float = Field(
        25.0, ge=0.0, le=3600.0, validation_alias=_env("GHL_JOBS_SHUTDOWN_SECONDS")
    )
    # Rows a contact import writes in one transaction (the unit a resumed import starts again after).
    import_batch_size: int = Field(500, ge=1, le=10_000, validation_alias=_env("GHL_IMPORT_BATCH_SIZE"))
    # Finished jobs are pruned after this many hours; failed ones are kept until retried or removed.
    jobs_keep_hours: int = Field(72, ge=1, validation_alias=_env("GHL_JOBS_KEEP_HOURS"))

    # Outbound webhooks. Private, loopback and link-local receivers are refused unless allowed here
    # (a test set-up, or receivers on the operator's own network).
    webhooks_allow_private: bool = Field(False, validation_alias=_env("GHL_WEBHOOKS_ALLOW_PRIVATE"))
    # The wait before each retry of a failed delivery (network error, 429, 5xx): one retry per entry.
    webhook_retry_schedule: str = Field("30s,5m,30m", validation_alias=_env("GHL_WEBHOOK_RETRY_SCHEDULE"))
    webhook_timeout_seconds: float = Field(
        30.0, gt=0.0, le=300.0, validation_alias=_env("GHL_WEBHOOK_TIMEOUT_SECONDS")
    )
    # A subscription whose deliveries failed this many times in a row is turned off.
    webhook_disable_after: int = Field(10, ge=1, validation_alias=_env("GHL_WEBHOOK_DISABLE_AFTER"))

    # Messaging providers: where their SDKs send. Unset means the providers' official hosts; a test or
    # an air-gapped set-up points them at a local double or a proxy.
    twilio_api_base: str | None = Field(None, validation_alias=_env("GHL_TWILIO_API_BASE"))
    sendgrid_api_base: str | None = Field(None, validation_alias=_env("GHL_SENDGRID_API_BASE"))
    # SMTP servers set by tenants (and operators, per agency or location) pass the webhooks' address
    # guard: private, loopback and link-local hosts are refused unless allowed here (a relay on the
    # operator's own network, tests). The platform's own SMTP_HOST is the operator's and is not checked.
    smtp_allow_private: bool = Field(False, validation_alias=_env("GHL_SMTP_ALLOW_PRIVATE"))
    messaging_timeout_seconds: float = Field(
        30.0, gt=0.0, le=300.0, validation_alias=_env("GHL_MESSAGING_TIMEOUT_SECONDS")
    )

    # What each plan tier allows (API rate limits, live API keys, campaign audience, messages a day, the
    # fastest pace): JSON overriding the defaults of any tier, e.g. {"free": {"messages_per_day": 500}}.
    plan_limits: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("GHL_PLAN_LIMITS")
    )

    @field_validator("plan_limits", mode="before")
    @classmethod
    def _plan_limits(cls, value: object) -> object:
        import json

        from ghl_core.tenancy.plans import PlanCatalog

        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError:
                raise ValueError('must be JSON, e.g. {"free": {"messages_per_day": 500}}') from None
        if isinstance(value, dict):
            PlanCatalog.from_overrides(value)  # names every unknown tier, limit or bad value
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _retry_schedule(cls, value: str) -> str:
        parts = [part for part in value.split(",") if part.strip()]
        for part in parts:
            parse_duration(part)
        if len(parts) > 100:
            raise ValueError("at most 100 retries")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url", "app_database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must be a PostgreSQL URL (postgresql://user:password@host:5432/database)")
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a Redis URL (redis://host:6379/0)")
        return value or None

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_KEY_LENGTH} characters (try: openssl rand -hex 32)"
            )
        return value

    @field_validator("clerk_authorized_parties", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        entries = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value
        if not isinstance(entries, list) or entries == ["*"]:
            return entries
        for entry in entries:
            try:
                # Strict, as uvicorn reads it: a network with host bits set would silently match nothing.
                ipaddress.ip_network(str(entry))
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or a CIDR network (or * alone, for any)"
                ) from None
        return entries

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None  # empty: no token

    @field_validator("clerk_publishable_key")
    @classmethod
    def _publishable(cls, value: str | None) -> str | None:
        if value:
            from ghl_adapters.identity import clerk_frontend_api_from_publishable_key

            clerk_frontend_api_from_publishable_key(value)
        return value or None

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def clerk_enabled(self) -> bool:
        return bool(self.clerk_publishable_key or self.clerk_jwks_url)

    @property
    def chosen_log_format(self) -> Literal["auto", "console", "json"]:
        if self.log_format == "auto" and self.log_json is not None:
            return "json" if self.log_json else "console"
        return self.log_format

    @property
    def base_url(self) -> str:
        """The public base URL, the one place the API and the CLI take it from (provider callback URLs,
        links in messages, hook URLs): GHL_PUBLIC_URL; else where `ghl serve` listens, which it records
        in the data folder so every `ghl` command on the machine prints the URLs the running server
        answers at; else GHL_HOST:GHL_PORT."""
        return (self.public_url or self._served_url or self.listen_url).rstrip("/")

    @property
    def listen_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def model_post_init(self, context: Any, /) -> None:
        try:
            recorded = (self.data_dir / SERVED_URL_FILE).read_text(encoding="utf-8").strip()
        except (OSError, ValueError):
            recorded = ""
        self._served_url = recorded if recorded.startswith(("http://", "https://")) else None

    def record_serving(self) -> None:
        """`ghl serve`, before it listens: its address, for its own URLs and the other commands'."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / SERVED_URL_FILE).write_text(self.listen_url + "\n", encoding="utf-8")
        self._served_url = self.listen_url

    def resolved_secret_key(self) -> str:
        """GHL_SECRET_KEY, or a key generated once and kept in the data folder (single-machine set-ups)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


def load_settings(**overrides: object) -> Settings:
    """Reads the settings; on failure raises SettingsError naming every bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        fields = Settings.model_fields
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "settings"
            field = fields.get(name)
            alias = field.validation_alias if field else None
            env_name = alias.choices[0] if isinstance(alias, AliasChoices) else name.upper()
            lines.append(f"  {env_name}: {error['msg']}")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None
