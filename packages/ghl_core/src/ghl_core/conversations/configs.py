"""A location's provider configuration as delivery and callbacks use it: sealed at rest, opened (and kept
opened, most recently used) when a message goes out, else the platform's from the environment, else
none (the local outbox)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ghl_core.conversations.models import Channel
from ghl_core.conversations.ports import ResolvedProvider
from ghl_core.conversations.providers import (
    ProviderKind,
    SendGridConfig,
    SmtpConfig,
    SmtpSecurity,
    TwilioConfig,
)
from ghl_core.identity.ports import SecretBox

ProviderConfig = TwilioConfig | SendGridConfig | SmtpConfig
# Provider configurations kept opened (decrypted) in memory, most recently used.
_OPENED_KEEP = 256


def provider_config(kind: ProviderKind, data: dict[str, Any]) -> ProviderConfig:
    if kind is ProviderKind.TWILIO:
        return TwilioConfig(**data)
    if kind is ProviderKind.SENDGRID:
        return SendGridConfig(**data)
    if kind is ProviderKind.SMTP:
        return SmtpConfig(**{**data, "security": SmtpSecurity(data.get("security", "starttls"))})
    raise ValueError(f"no configuration for provider {kind}")  # pragma: no cover - enum is closed


def seal_config(box: SecretBox, kind: ProviderKind, config: ProviderConfig) -> bytes:
    return box.encrypt(json.dumps(asdict(config)).encode(), kind.value.encode())


def open_config(box: SecretBox, resolved: ResolvedProvider) -> ProviderConfig:
    data = json.loads(box.decrypt(resolved.config_ciphertext, resolved.kind.value.encode()))
    return provider_config(resolved.kind, data)


class ProviderConfigs:
    def __init__(self, *, box: SecretBox, platform: Mapping[Channel, ProviderConfig] | None = None) -> None:
        self._box = box
        # The platform-wide providers from the environment (TWILIO_*, SENDGRID_*, SMTP_*): used by
        # locations whose agency and location configure none.
        self._platform = dict(platform or {})
        self._opened: dict[tuple[ProviderKind, bytes], ProviderConfig] = {}  # most recently used last

    def has_platform(self, channel: Channel) -> bool:
        return channel in self._platform

    def config(self, channel: Channel, resolved: ResolvedProvider | None) -> ProviderConfig | None:
        """The location's own configuration, else its agency's (both in `resolved`), else the
        platform's from the environment, else None: the local outbox."""
        if resolved is not None:
            # Opened once per stored configuration, not per batch or message: the sealed bytes name it
            # (a new nonce with every change), so a changed configuration is a new entry.
            key = (resolved.kind, resolved.config_ciphertext)
            config = self._opened.pop(key, None) or open_config(self._box, resolved)
            self._opened[key] = config
            while len(self._opened) > _OPENED_KEEP:
                del self._opened[next(iter(self._opened))]
            return config
        return self._platform.get(channel)
