"""Signed links in outbound email: one-click unsubscribe (RFC 8058), the open-tracking pixel and
click-tracking redirects. A link names the location and the contact or message and carries an HMAC,
so it cannot be forged for another contact or turned into an open redirect, and needs no session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass

from ghl_core.shared.errors import NotFound
from ghl_core.shared.ratelimit import RateLimitPolicy

_MAC_BYTES = 16

# The tracking URLs are fetched by recipients' mail clients and by image proxies that fetch for many
# recipients at once (Gmail's), so a client address gets a generous bucket: it bounds a flood, not a
# reader. One link fetched over and over (each genuine fetch locks and writes its message) is someone
# inflating the statistics, whichever addresses it comes from.
TRACKING_CLIENT_LIMIT = RateLimitPolicy(per_minute=600, burst=120)
TRACKING_LINK_LIMIT = RateLimitPolicy(per_minute=30, burst=10)


@dataclass(frozen=True, slots=True)
class UnsubscribeTarget:
    location_id: uuid.UUID
    contact_id: uuid.UUID
    message_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class TrackedMessage:
    location_id: uuid.UUID
    message_id: uuid.UUID


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(token: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise NotFound("link not found") from None


class LinkSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the link signing key must be at least 16 bytes")
        self._key = key

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, purpose + b"\x00" + data, hashlib.sha256).digest()[:_MAC_BYTES]

    def _read(self, purpose: bytes, token: str, sizes: tuple[int, ...], extra: bytes = b"") -> bytes:
        raw = _unb64(token)
        data, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(data) not in sizes or not hmac.compare_digest(mac, self._mac(purpose, data + extra)):
            raise NotFound("link not found")
        return data

    def unsubscribe_token(
        self, location_id: uuid.UUID, contact_id: uuid.UUID, message_id: uuid.UUID | None = None
    ) -> str:
        data = location_id.bytes + contact_id.bytes + (message_id.bytes if message_id else b"")
        return _b64(data + self._mac(b"unsubscribe", data))

    def read_unsubscribe(self, token: str) -> UnsubscribeTarget:
        """The link's target; a malformed or forged token is simply not found."""
        data = self._read(b"unsubscribe", token, (32, 48))
        message = uuid.UUID(bytes=data[32:]) if len(data) == 48 else None
        return UnsubscribeTarget(uuid.UUID(bytes=data[:16]), uuid.UUID(bytes=data[16:32]), message)

    def callback_token(self, location_id: uuid.UUID) -> str:
        """The secret URL segment of a location's provider callbacks under the platform-wide provider
        configuration (a stored configuration keeps a random token of its own)."""
        return _b64(self._mac(b"callback", location_id.bytes))

    def open_token(self, location_id: uuid.UUID, message_id: uuid.UUID) -> str:
        data = location_id.bytes + message_id.bytes
        return _b64(data + self._mac(b"open", data))

    def read_open(self, token: str) -> TrackedMessage:
        data = self._read(b"open", token, (32,))
        return TrackedMessage(uuid.UUID(bytes=data[:16]), uuid.UUID(bytes=data[16:]))

    def click_token(self, location_id: uuid.UUID, message_id: uuid.UUID, url: str) -> str:
        """Signs the destination too: the redirect goes only where the email's link pointed."""
        data = location_id.bytes + message_id.bytes
        return _b64(data + self._mac(b"click", data + url.encode()))

    def read_click(self, token: str, url: str) -> TrackedMessage:
        data = self._read(b"click", token, (32,), url.encode())
        return TrackedMessage(uuid.UUID(bytes=data[:16]), uuid.UUID(bytes=data[16:]))
