"""What arrives from a provider, as verified and as stored, and the location endpoints senders post to."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ghl_core.shared.errors import DomainError
from ghl_core.shared.ratelimit import RateLimitPolicy

# Provider name of the location inbound webhook endpoints (Standard Webhooks signatures).
ENDPOINT_PROVIDER = "inbound_webhook"
MAX_EVENT_ID = 500
MAX_ERROR = 2000

# The receiving URL takes no credential: it is limited per client address, then per endpoint.
CLIENT_LIMIT = RateLimitPolicy(per_minute=600, burst=120)
ENDPOINT_LIMIT = RateLimitPolicy(per_minute=1200, burst=300)

# Headers never stored with a raw event: credentials a sender (or a proxy) may have added.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
_SECRET_MARKERS = ("secret", "token", "password", "api-key", "apikey")


class BodyTooLarge(DomainError):
    code = "payload_too_large"
    title = "Payload too large"


class SignatureInvalid(DomainError):
    """The request is not what the provider signed: bad, missing or stale signature, tampered body."""

    code = "signature_invalid"
    title = "Signature invalid"


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """A provider's HTTP callback, untouched. `url` is the public URL it was sent to (some providers sign
    it); header names are lower-cased."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


@dataclass(frozen=True, slots=True)
class InboundEnvelope:
    """What a verifier vouches for: the provider's own id of the event (the redelivery key), its type
    when the provider names one, and the parsed payload (None when the body is not JSON)."""

    provider: str
    provider_event_id: str
    type: str | None
    payload: Any


@dataclass(frozen=True, slots=True)
class InboundTarget:
    """Where a callback goes: the provider whose verifier checks it, the location it belongs to, the
    dedupe scope of its event ids (an endpoint, an account) and the secret it is signed with."""

    provider: str
    scope: str
    location_id: uuid.UUID
    secret: str | None = None
    endpoint_id: uuid.UUID | None = None


class UnusableEvent(Exception):
    """Raised by a processor: the provider signed this event, but it lacks what processing needs (a
    missing or unknown status, say). Retrying cannot help, so the event is set aside as ignored at once,
    the reason in its `last_error`, and its job ends."""


class EventStatus(StrEnum):
    RECEIVED = "received"  # stored, waiting for (or between attempts of) its job
    PROCESSED = "processed"
    IGNORED = "ignored"  # no processor handles its provider and type, or it is unusable (last_error)
    FAILED = "failed"  # its job used up every attempt; last_error says why


DONE = frozenset({EventStatus.PROCESSED, EventStatus.IGNORED})


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A raw event as received: stored before anything is done with it."""

    id: uuid.UUID
    location_id: uuid.UUID
    provider: str
    scope: str
    provider_event_id: str
    type: str | None
    headers: dict[str, str]
    body: bytes
    content_type: str | None
    status: EventStatus
    received_at: datetime
    endpoint_id: uuid.UUID | None = None
    attempts: int = 0
    last_error: str | None = None
    processed_at: datetime | None = None
    body_size: int = -1  # a listed event carries no body nor headers, only their size

    @property
    def size(self) -> int:
        return self.body_size if self.body_size >= 0 else len(self.body)

    def json_body(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        return parse_json(self.body)

    def text_body(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class InboundReceipt:
    """The answer to a callback: the stored event, and whether it had been received before."""

    event_id: uuid.UUID | None
    duplicate: bool


@dataclass(slots=True)
class InboundEndpoint:
    """A location's inbound webhook URL (/webhooks/inbound/{id}); its signing secret is kept encrypted."""

    id: uuid.UUID
    location_id: uuid.UUID
    name: str
    secret_ciphertext: bytes
    secret_hint: str  # the secret's first characters, to tell which one a sender holds
    enabled: bool
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None = None
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "enabled": self.enabled,
            "secret_hint": self.secret_hint,
            "secret_rotated_at": self.secret_rotated_at.isoformat() if self.secret_rotated_at else None,
        }


@dataclass(frozen=True, slots=True)
class EndpointKey:
    """What the unauthenticated receiving path may learn of an endpoint, before its tenant is known."""

    endpoint_id: uuid.UUID
    location_id: uuid.UUID
    secret_ciphertext: bytes
    active: bool  # enabled, and neither it nor its location or agency deleted


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth keeping with a raw event: all but credentials."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in _SECRET_HEADERS or any(marker in key for marker in _SECRET_MARKERS):
            continue
        kept[key] = value
    return kept
