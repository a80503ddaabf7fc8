"""Ports the identity context needs from the outside world."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from ghl_core.identity.models import AccessClaims, ExternalIdentity


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool:
        """False for a wrong password; never raises for a mismatch."""
        ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class AccessTokenCodec(Protocol):
    """Our own short-lived access tokens (JWT)."""

    ttl: timedelta

    def issue(self, claims: AccessClaims) -> str: ...

    def verify(self, token: str) -> AccessClaims:
        """Raises `Unauthenticated` for a bad, expired or foreign token."""
        ...


class ExternalTokenVerifier(Protocol):
    """An external identity provider's tokens (Clerk)."""

    def accepts(self, token: str) -> bool:
        """Whether this token was issued by this provider (checked cheaply, before verifying)."""
        ...

    async def verify(self, token: str) -> ExternalIdentity:
        """Raises `Unauthenticated` when the token does not verify."""
        ...


class SecretBox(Protocol):
    """Authenticated encryption for provider credentials at rest."""

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes: ...

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytes: ...


class FailureCounter(Protocol):
    """Counts failures per key within a window (login throttling)."""

    async def record_failure(self, key: str, window: timedelta) -> int:
        """Adds one failure; returns the failures now in the window."""
        ...

    async def failures(self, key: str) -> tuple[int, int]:
        """(failures in the window, seconds until the window ends)."""
        ...

    async def clear(self, key: str) -> None: ...
