"""The providers' configuration types (Twilio, SendGrid, SMTP) and the codec that checks a submitted
configuration and reads a stored one back.

The core knows a provider only by its kind and what `ProviderConfig` lets it ask (the sender it names,
the keys its callbacks are signed with, what may be shown, the settings to seal, a server the platform
connects to on a tenant's word). The fields, their rules and the SDKs that read them live here, so a new
provider is a new type and a codec entry, with no change to the core."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from ghl_core.conversations.providers import ProviderConfig, ProviderKind, Sender
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.phones import normalize_phone
from ghl_core.shared.validation import normalize_email

# A host name as DNS writes it (letters, digits, hyphens, dot-separated labels): no scheme, port or path.
_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS (port 465)
    NONE = "none"  # only for a relay on a trusted network


def _mask(value: str) -> str:
    return f"…{value[-4:]}" if len(value) > 4 else "…"


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    from_number: str | None = None  # E.164
    messaging_service_sid: str | None = None

    @property
    def kind(self) -> ProviderKind:
        return ProviderKind.TWILIO

    @property
    def callbacks(self) -> bool:
        return True

    def sender(self) -> Sender:
        return Sender(number=self.from_number)

    def callback_key(self, *, inbound: bool) -> str | None:
        return self.auth_token  # Twilio signs replies and status callbacks alike with it

    def summary(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "from_number": self.from_number,
            "messaging_service_sid": self.messaging_service_sid,
            "auth_token": _mask(self.auth_token),
        }

    def settings(self) -> dict[str, Any]:
        return asdict(self)

    def server(self) -> tuple[str, int] | None:
        return None


@dataclass(frozen=True, slots=True)
class SendGridConfig:
    api_key: str
    from_email: str
    from_name: str | None = None
    # The Event Webhook's verification key (base64 DER ECDSA public key, from SendGrid's settings).
    event_webhook_public_key: str | None = None
    # The Inbound Parse setting's security policy key (replies by email are refused without it).
    inbound_parse_public_key: str | None = None

    @property
    def kind(self) -> ProviderKind:
        return ProviderKind.SENDGRID

    @property
    def callbacks(self) -> bool:
        return True

    def sender(self) -> Sender:
        return Sender(email=self.from_email, name=self.from_name)

    def callback_key(self, *, inbound: bool) -> str | None:
        return self.inbound_parse_public_key if inbound else self.event_webhook_public_key

    def summary(self) -> dict[str, Any]:
        return {
            "from_email": self.from_email,
            "from_name": self.from_name,
            "api_key": _mask(self.api_key),
            "event_webhook_signed": bool(self.event_webhook_public_key),
        }

    def settings(self) -> dict[str, Any]:
        return asdict(self)

    def server(self) -> tuple[str, int] | None:
        return None


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    from_email: str
    from_name: str | None = None
    username: str | None = None
    password: str | None = None
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    timeout_seconds: float = 30.0

    @property
    def kind(self) -> ProviderKind:
        return ProviderKind.SMTP

    @property
    def callbacks(self) -> bool:
        return False  # an SMTP server posts nothing back

    def sender(self) -> Sender:
        return Sender(email=self.from_email, name=self.from_name)

    def callback_key(self, *, inbound: bool) -> str | None:
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "security": self.security.value,
            "username": self.username,
            "from_email": self.from_email,
            "from_name": self.from_name,
        }

    def settings(self) -> dict[str, Any]:
        return asdict(self)

    def server(self) -> tuple[str, int] | None:
        return self.host, self.port


VendorConfig = TwilioConfig | SendGridConfig | SmtpConfig
_CONFIGS: dict[ProviderKind, type[VendorConfig]] = {
    ProviderKind.TWILIO: TwilioConfig,
    ProviderKind.SENDGRID: SendGridConfig,
    ProviderKind.SMTP: SmtpConfig,
}
_REQUIRED = {"account_sid", "auth_token", "api_key", "from_email", "host", "port"}


def load_config(kind: ProviderKind, data: dict[str, Any]) -> VendorConfig:
    """A configuration from its stored settings (as `settings()` wrote them, already checked)."""
    if kind is ProviderKind.TWILIO:
        return TwilioConfig(**data)
    if kind is ProviderKind.SENDGRID:
        return SendGridConfig(**data)
    if kind is ProviderKind.SMTP:
        return SmtpConfig(**{**data, "security": SmtpSecurity(data.get("security", "starttls"))})
    raise ValueError(f"no configuration for provider {kind}")


def _is_host(host: str) -> bool:
    if len(host) > 253:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return _HOST_NAME.fullmatch(host) is not None


def clean_config(kind: ProviderKind, data: dict[str, Any]) -> VendorConfig:
    """Validates a provider configuration as submitted: every problem named with its pointer."""
    cls = _CONFIGS[kind]
    known = {f.name for f in fields(cls)}
    errors = [FieldError(f"/config/{k}", "is not a known field") for k in sorted(set(data) - known)]
    for f in fields(cls):
        value = data.get(f.name)
        if value is None:
            if f.name in _REQUIRED:
                errors.append(FieldError(f"/config/{f.name}", "is required"))
            continue
        if f.name == "port":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
                errors.append(FieldError("/config/port", "must be a port number"))
        elif f.name == "timeout_seconds":
            if not isinstance(value, int | float) or not 1 <= value <= 120:
                errors.append(FieldError("/config/timeout_seconds", "must be 1 to 120"))
        elif not isinstance(value, str) or not value.strip() or len(value) > 2000:
            errors.append(FieldError(f"/config/{f.name}", "must be a non-empty string"))
        elif f.name == "host" and kind is ProviderKind.SMTP and not _is_host(value.strip()):
            errors.append(FieldError("/config/host", "must be a host name or an IP address, nothing more"))
    if errors:
        raise ValidationFailed(errors)
    clean = {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()}
    try:
        if "from_email" in clean:
            clean["from_email"] = normalize_email(clean["from_email"])
        if clean.get("from_number"):
            clean["from_number"] = normalize_phone(clean["from_number"], "US")
        if "security" in clean:
            clean["security"] = SmtpSecurity(clean["security"]).value
    except ValueError as exc:
        raise ValidationFailed.one("/config", str(exc)) from None
    if kind is ProviderKind.TWILIO and not (clean.get("from_number") or clean.get("messaging_service_sid")):
        raise ValidationFailed.one(
            "/config/from_number", "a from_number or a messaging_service_sid is required"
        )
    return load_config(kind, clean)


class VendorConfigCodec:
    """The core's `ProviderCodec` over the types above."""

    def clean(self, kind: ProviderKind, data: dict[str, Any]) -> ProviderConfig:
        return clean_config(kind, data)

    def load(self, kind: ProviderKind, settings: dict[str, Any]) -> ProviderConfig:
        return load_config(kind, settings)
