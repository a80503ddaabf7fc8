"""Idempotency keys on POST: the same key within 24 hours returns the stored response."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

from ghl_core.shared.scope import TenantScope

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyState(StrEnum):
    STARTED = "started"  # first time: the caller goes on and must complete or abandon it
    REPLAY = "replay"  # done before with the same body: send back the stored response
    MISMATCH = "mismatch"  # the key was used with a different request
    IN_PROGRESS = "in_progress"  # a concurrent request holds the key


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class IdempotencyOutcome:
    state: IdempotencyState
    response: StoredResponse | None = None


class IdempotencyStore(Protocol):
    async def begin(
        self, scope: TenantScope, principal: str, key: str, fingerprint: str
    ) -> IdempotencyOutcome: ...

    async def complete(
        self, scope: TenantScope, principal: str, key: str, response: StoredResponse
    ) -> None: ...

    async def abandon(self, scope: TenantScope, principal: str, key: str) -> None:
        """Forget a started key (the request failed on our side), so a retry runs again."""
        ...
