"""A location's provider configuration as setup, delivery and callbacks use it: checked by the adapters'
codec, sealed at rest, opened (and kept opened, most recently used) when a message goes out, else the
platform's from the environment, else none (the local outbox)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ghl_core.conversations.models import Channel
from ghl_core.conversations.ports import ResolvedProvider
from ghl_core.conversations.providers import ProviderCodec, ProviderConfig, ProviderKind
from ghl_core.identity.ports import SecretBox

# Provider configurations kept opened (decrypted) in memory, most recently used.
_OPENED_KEEP = 256


class ProviderConfigs:
    def __init__(
        self,
        *,
        box: SecretBox,
        codec: ProviderCodec,
        platform: Mapping[Channel, ProviderConfig] | None = None,
    ) -> None:
        self._box = box
        self._codec = codec
        # The platform-wide providers from the environment (TWILIO_*, SENDGRID_*, SMTP_*): used by
        # locations whose agency and location configure none.
        self._platform = dict(platform or {})
        self._opened: dict[tuple[ProviderKind, bytes], ProviderConfig] = {}  # most recently used last

    def has_platform(self, channel: Channel) -> bool:
        return channel in self._platform

    def platform(self, channel: Channel) -> ProviderConfig | None:
        return self._platform.get(channel)

    def clean(self, kind: ProviderKind, data: dict[str, Any]) -> ProviderConfig:
        """See `ProviderCodec.clean`."""
        return self._codec.clean(kind, data)

    def seal(self, config: ProviderConfig) -> bytes:
        return self._box.encrypt(json.dumps(config.settings()).encode(), config.kind.value.encode())

    def open(self, resolved: ResolvedProvider) -> ProviderConfig:
        data = json.loads(self._box.decrypt(resolved.config_ciphertext, resolved.kind.value.encode()))
        return self._codec.load(resolved.kind, data)

    def config(self, channel: Channel, resolved: ResolvedProvider | None) -> ProviderConfig | None:
        """The location's own configuration, else its agency's (both in `resolved`), else the
        platform's from the environment, else None: the local outbox."""
        if resolved is not None:
            # Opened once per stored configuration, not per batch or message: the sealed bytes name it
            # (a new nonce with every change), so a changed configuration is a new entry.
            key = (resolved.kind, resolved.config_ciphertext)
            config = self._opened.pop(key, None) or self.open(resolved)
            self._opened[key] = config
            while len(self._opened) > _OPENED_KEEP:
                del self._opened[next(iter(self._opened))]
            return config
        return self._platform.get(channel)
