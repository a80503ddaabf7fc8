"""Ports the identity context needs from the outside world. (The password hasher is tenancy's port:
tenancy hashes a new user's password, and sits below identity.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from ghl_core.identity.models import AccessClaims, ExternalIdentity
from ghl_core.identity.repositories import ApiKeyRepository, CredentialLookup, RefreshTokenRepository
from ghl_core.shared.recording import Recording
from ghl_core.tenancy.ports import AgencyRepository, LocationRepository, UserRepository


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


class IdentityUnitOfWork(Recording, Protocol):
    """What the identity context touches in one transaction."""

    @property
    def agencies(self) -> AgencyRepository: ...

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    @property
    def credentials(self) -> CredentialLookup: ...
