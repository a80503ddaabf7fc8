"""Provider configurations (stored sealed per agency or location) and the factory building gateways."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ghl_core.conversations.gateways import EmailGateway, SmsGateway


class ProviderKind(StrEnum):
    OUTBOX = "outbox"  # embedded default: recorded as delivered to the local outbox, nothing leaves
    TWILIO = "twilio"
    SENDGRID = "sendgrid"
    SMTP = "smtp"


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS (port 465)
    NONE = "none"  # only for a relay on a trusted network


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    from_number: str | None = None  # E.164
    messaging_service_sid: str | None = None


@dataclass(frozen=True, slots=True)
class SendGridConfig:
    api_key: str
    from_email: str
    from_name: str | None = None
    # The Event Webhook's verification key (base64 DER ECDSA public key, from SendGrid's settings).
    event_webhook_public_key: str | None = None
    # The Inbound Parse setting's security policy key (replies by email are refused without it).
    inbound_parse_public_key: str | None = None


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


class GatewayFactory(Protocol):
    """Builds gateways from a configuration; the adapters hold SDK clients (pooled per configuration)."""

    def sms(self, config: TwilioConfig | None) -> SmsGateway:
        """None: the local outbox."""
        ...

    def email(self, config: SendGridConfig | SmtpConfig | None) -> EmailGateway:
        """None: the local outbox."""
        ...
