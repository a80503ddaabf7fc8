"""Providers as the core knows them: by kind, and by a configuration it only asks a few questions of.

The configuration types themselves (Twilio's, SendGrid's, SMTP's fields and rules) live with the
adapters that speak to those providers; a `ProviderCodec` (adapter-side) checks a submitted
configuration, every problem at its `/config/...` pointer, and reads a stored one back. The core seals
what `settings()` gives, shows what `summary()` gives, and sends as `sender()` names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from ghl_core.conversations.gateways import EmailGateway, SmsGateway


class ProviderKind(StrEnum):
    OUTBOX = "outbox"  # embedded default: recorded as delivered to the local outbox, nothing leaves
    TWILIO = "twilio"
    SENDGRID = "sendgrid"
    SMTP = "smtp"


@dataclass(frozen=True, slots=True)
class Sender:
    """Who messages sent with a configuration come from: a number (SMS; None when the credentials name
    a messaging service), or an address and a display name (email)."""

    number: str | None = None
    email: str | None = None
    name: str | None = None


class ProviderConfig(Protocol):
    """One provider's configuration, opaque but for these questions. Hashable: gateways are kept per
    configuration."""

    @property
    def kind(self) -> ProviderKind: ...

    @property
    def callbacks(self) -> bool:
        """Whether the provider posts back (replies, delivery reports) to the platform."""
        ...

    def sender(self) -> Sender: ...

    def callback_key(self, *, inbound: bool) -> str | None:
        """The key the provider's callbacks are verified with: of replies (`inbound`), else of events."""
        ...

    def summary(self) -> dict[str, Any]:
        """What the API may show of it: never a credential in full."""
        ...

    def settings(self) -> dict[str, Any]:
        """Its settings as JSON values, to be sealed; `ProviderCodec.load` reads them back."""
        ...

    def server(self) -> tuple[str, int] | None:
        """A server the platform connects to on the tenant's word (host, port): checked by the address
        guard when the configuration is saved."""
        ...


class ProviderCodec(Protocol):
    """Adapter-side: the configuration types of the providers the platform speaks to."""

    def clean(self, kind: ProviderKind, data: dict[str, Any]) -> ProviderConfig:
        """A configuration as submitted, checked and normalised; raises ValidationFailed naming each
        problem at its `/config/...` pointer."""
        ...

    def load(self, kind: ProviderKind, settings: dict[str, Any]) -> ProviderConfig:
        """A stored configuration, from the settings `ProviderConfig.settings` gave."""
        ...


class GatewayFactory(Protocol):
    """Builds gateways from a configuration; the adapters hold SDK clients (pooled per configuration)."""

    def sms(self, config: ProviderConfig | None) -> SmsGateway:
        """None: the local outbox."""
        ...

    def email(self, config: ProviderConfig | None) -> EmailGateway:
        """None: the local outbox."""
        ...
