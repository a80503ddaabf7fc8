"""Repositories of the identity context. Each extends what tenancy declares it needs of it
(`ghl_core.tenancy.ports`), so tenancy never imports identity."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from ghl_core.identity.models import ApiKey, ApiKeyCredential, RefreshToken, UserCredential
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.tenancy.ports import AssigneeLookup, LocationKeys, UserSessions


class ApiKeyRepository(LocationKeys, Protocol):
    async def add(self, key: ApiKey) -> None: ...

    async def get(self, key_id: uuid.UUID) -> ApiKey | None: ...

    async def update(self, key: ApiKey) -> None: ...

    async def list(
        self, location_id: uuid.UUID, page: PageRequest, include_revoked: bool = False
    ) -> Page[ApiKey]: ...

    async def count_live(self, location_id: uuid.UUID, *, lock: bool = False) -> int:
        """The location's unrevoked keys. `lock`: first waits for, then holds until commit, the
        location's key-creation lock, so creators counting at the same time see each other's keys."""
        ...


class RefreshTokenRepository(UserSessions, Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def mark_rotated(self, token_id: uuid.UUID, at: datetime) -> bool:
        """True if this call rotated it; False if it was already rotated or revoked (a replay)."""
        ...

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None: ...

    async def revoke_for_user(self, user_id: uuid.UUID, at: datetime) -> None: ...


class CredentialLookup(AssigneeLookup, Protocol):
    """Look-ups made before the tenant is known. The database answers them through narrow
    security-definer functions, so the anonymous scope still cannot read any table."""

    async def api_key(self, key_hash: str) -> ApiKeyCredential | None: ...

    async def user_by_email(self, email: str) -> UserCredential | None: ...

    async def user_by_id(self, user_id: uuid.UUID) -> UserCredential | None: ...

    async def user_by_clerk_id(self, clerk_user_id: str) -> UserCredential | None: ...

    async def refresh_token(self, token_hash: str) -> RefreshToken | None: ...

    async def location_access(
        self, user_id: uuid.UUID, location_id: uuid.UUID
    ) -> tuple[str | None, str] | None:
        """(location role granted or None, plan tier) when the location belongs to the user's agency."""
        ...
