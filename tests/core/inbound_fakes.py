"""Fakes for the inbound webhook services: a store whose committed inbound tables the tests can read
(the repositories are the shipped in-memory ones), a verifier with a trivial signature, processors that
record or fail, and a reversible secret box."""

from __future__ import annotations

import builtins
import uuid
from typing import Any

from fakes import InMemoryStore
from ghl_adapters.memory.inbound import ENDPOINTS, EVENTS
from ghl_adapters.memory.store import MemoryStore
from ghl_core.inbound.models import (
    InboundEnvelope,
    InboundEvent,
    InboundRequest,
    SignatureInvalid,
    parse_json,
)
from ghl_core.shared.uow import Transaction
from ghl_core.tenancy.models import Location


class InboundData:
    """The committed inbound tables."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    @property
    def endpoints(self) -> dict[uuid.UUID, Any]:
        return self._store.committed(ENDPOINTS)

    @property
    def events(self) -> dict[uuid.UUID, InboundEvent]:
        return self._store.committed(EVENTS)


class InboundStore(InMemoryStore):
    @property
    def inbound(self) -> InboundData:
        return InboundData(self.store)


class FakeVerifier:
    """Signed means: the `x-signature` header equals the secret. Event id and type come from headers."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.calls = 0

    def verify(self, request: InboundRequest, secret: str | None) -> InboundEnvelope:
        self.calls += 1
        if not secret or request.headers.get("x-signature") != secret:
            raise SignatureInvalid("bad signature")
        return InboundEnvelope(
            provider=self.provider,
            provider_event_id=request.headers.get("x-event-id", ""),
            type=request.headers.get("x-event-type"),
            payload=parse_json(request.body),
        )


class RecordingProcessor:
    """Records each event it processes; fails its first `failures` runs."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.seen: builtins.list[uuid.UUID] = []

    async def process(self, uow: Transaction, event: InboundEvent, location: Location) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("processor down")
        self.seen.append(event.id)


class FakeSecretBox:
    """Reversible, bound to its associated data like the real one; not encryption."""

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        return b"sealed:" + associated_data + b":" + plaintext[::-1]

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytes:
        prefix = b"sealed:" + associated_data + b":"
        if not ciphertext.startswith(prefix):
            raise ValueError("not sealed for this associated data")
        return ciphertext[len(prefix) :][::-1]
