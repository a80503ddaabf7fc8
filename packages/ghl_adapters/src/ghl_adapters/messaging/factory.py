"""Builds gateways from a provider configuration, keeping one per configuration so SDK clients and
their connection pools are reused across sends.

An SMTP gateway connects where a tenant said, so it checks the server's addresses with the address
guard before each connection. The platform's own SMTP configuration (from the environment) is the
operator's and is connected to as written: a relay on localhost is the common case there."""

from __future__ import annotations

import ssl
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ghl_core.conversations.gateways import EmailGateway, SmsGateway
from ghl_core.conversations.providers import ProviderConfig
from ghl_core.shared.clock import Clock
from ghl_core.webhooks.addresses import UrlGuard

from .configs import SendGridConfig, SmtpConfig, TwilioConfig
from .outbox import OutboxGateway
from .sendgrid import SendGridEmailGateway
from .smtp import SmtpEmailGateway
from .twilio import TwilioSmsGateway

_KEEP = 256  # configurations whose gateways are kept (an agency with many locations, each its own)


class SdkGatewayFactory:
    """`twilio_api_base` / `sendgrid_api_base`: where the SDKs send (their official hosts by default;
    a local double in tests). `smtp_tls`: the TLS context SMTP connections verify servers with.
    `smtp_guard`: checks every SMTP server but the platform's own (`platform`, from the environment)."""

    def __init__(
        self,
        clock: Clock,
        *,
        smtp_guard: UrlGuard,
        platform: Mapping[Any, object] | None = None,
        twilio_api_base: str | None = None,
        sendgrid_api_base: str | None = None,
        smtp_tls: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._outbox = OutboxGateway(clock)
        self._twilio_base = twilio_api_base
        self._sendgrid_base = sendgrid_api_base
        self._smtp_tls = smtp_tls
        self._smtp_guard = smtp_guard
        self._trusted = frozenset(c for c in (platform or {}).values() if isinstance(c, SmtpConfig))
        self._timeout = timeout
        self._gateways: OrderedDict[Any, Any] = OrderedDict()

    def _cached(self, config: Any, build: Any) -> Any:
        gateway = self._gateways.get(config)
        if gateway is None:
            gateway = build()
            self._gateways[config] = gateway
            while len(self._gateways) > _KEEP:
                self._gateways.popitem(last=False)  # its client closes when collected
        else:
            self._gateways.move_to_end(config)
        return gateway

    def sms(self, config: ProviderConfig | None) -> SmsGateway:
        if not isinstance(config, TwilioConfig):  # None: the local outbox
            return self._outbox
        gateway: SmsGateway = self._cached(
            config, lambda: TwilioSmsGateway(config, api_base=self._twilio_base, timeout=self._timeout)
        )
        return gateway

    def email(self, config: ProviderConfig | None) -> EmailGateway:
        if not isinstance(config, SendGridConfig | SmtpConfig):  # None: the local outbox
            return self._outbox
        if isinstance(config, SendGridConfig):
            gateway: EmailGateway = self._cached(
                config,
                lambda: SendGridEmailGateway(config, api_base=self._sendgrid_base, timeout=self._timeout),
            )
            return gateway
        guard = None if config in self._trusted else self._smtp_guard
        smtp: EmailGateway = self._cached(
            config, lambda: SmtpEmailGateway(config, guard=guard, tls_context=self._smtp_tls)
        )
        return smtp

    async def aclose(self) -> None:
        for gateway in list(self._gateways.values()):
            close = getattr(gateway, "aclose", None)
            if close is not None:
                await close()
        self._gateways.clear()
