"""API keys, refresh tokens and the look-ups made before the tenant is known, in memory.

Keys are a location's rows, refresh tokens an agency's (as their row-level security policies say). The
credential look-ups stand for the database's security-definer functions: they answer in any scope, the
anonymous one included, and record a key's last use at most once a minute."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from ghl_core.identity.models import ApiKey, ApiKeyCredential, RefreshToken, UserCredential
from ghl_core.shared.errors import Conflict
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.tenancy.models import User

from .store import MemoryRepository, Table, paginate
from .tenancy import DELETED_AGENCIES, LOCATIONS, USERS

API_KEYS: Table[uuid.UUID, ApiKey] = Table("api_keys")
REFRESH_TOKENS: Table[uuid.UUID, RefreshToken] = Table("refresh_tokens")

API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


class MemoryApiKeyRepository(MemoryRepository):
    def _visible(self, key_id: uuid.UUID) -> ApiKey | None:
        found = self.rows(API_KEYS).get(key_id)
        return found if found is not None and self.sees_location(found.location_id) else None

    async def add(self, key: ApiKey) -> None:
        self.check_write(self.sees_location(key.location_id), "api_keys")
        rows = self.rows(API_KEYS)
        if key.id in rows:
            raise Conflict(f"API key {key.id} exists")
        rows[key.id] = copy.deepcopy(key)

    async def get(self, key_id: uuid.UUID) -> ApiKey | None:
        return copy.deepcopy(self._visible(key_id))

    async def update(self, key: ApiKey) -> None:
        stored = self._visible(key.id)
        if stored is not None:
            # As the SQL adapter: only the name and the revocation are writable.
            stored.name = key.name
            stored.revoked_at = key.revoked_at

    async def count_live(self, location_id: uuid.UUID, *, lock: bool = False) -> int:
        # One event loop and no await between the count and the add: nothing to lock.
        return sum(
            k.location_id == location_id and k.revoked_at is None and self.sees_location(k.location_id)
            for k in self.rows(API_KEYS).values()
        )

    async def list(
        self, location_id: uuid.UUID, page: PageRequest, include_revoked: bool = False
    ) -> Page[ApiKey]:
        found = [
            k
            for k in self.rows(API_KEYS).values()
            if k.location_id == location_id
            and (include_revoked or k.revoked_at is None)
            and self.sees_location(k.location_id)
        ]
        return paginate(found, page)


class MemoryRefreshTokenRepository(MemoryRepository):
    def _mine(self) -> list[RefreshToken]:
        return [t for t in self.rows(REFRESH_TOKENS).values() if self.sees_agency(t.agency_id)]

    async def add(self, token: RefreshToken) -> None:
        self.check_write(self.sees_agency(token.agency_id), "refresh_tokens")
        self.rows(REFRESH_TOKENS)[token.id] = copy.deepcopy(token)

    async def mark_rotated(self, token_id: uuid.UUID, at: datetime) -> bool:
        token = self.rows(REFRESH_TOKENS).get(token_id)
        if token is None or not self.sees_agency(token.agency_id):
            return False
        if token.rotated_at is not None or token.revoked_at is not None:
            return False
        token.rotated_at = at
        return True

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        for token in self._mine():
            if token.family_id == family_id and token.revoked_at is None:
                token.revoked_at = at

    async def revoke_for_user(self, user_id: uuid.UUID, at: datetime) -> None:
        for token in self._mine():
            if token.user_id == user_id and token.revoked_at is None:
                token.revoked_at = at


class MemoryCredentialLookup(MemoryRepository):
    """The security-definer functions of the SQL adapter, answered from the same tables."""

    async def api_key(self, key_hash: str) -> ApiKeyCredential | None:
        key = next((k for k in self.rows(API_KEYS).values() if k.key_hash == key_hash), None)
        if key is None:
            return None
        location = self.rows(LOCATIONS).get(key.location_id)
        if location is None:
            return None
        now = self.clock.now()
        if key.revoked_at is None and (
            key.last_used_at is None or key.last_used_at < now - API_KEY_TOUCH_INTERVAL
        ):
            key.last_used_at = now
        return ApiKeyCredential(
            id=key.id,
            location_id=key.location_id,
            agency_id=key.agency_id,
            scopes=frozenset(key.scopes),
            tier=location.tier,
            revoked=(
                key.revoked_at is not None
                or location.deleted_at is not None
                or key.agency_id in self.rows(DELETED_AGENCIES)
            ),
        )

    def _user(self, match: Callable[[User], bool]) -> UserCredential | None:
        user = next((u for u in self.rows(USERS).values() if u.deleted_at is None and match(u)), None)
        if user is None:
            return None
        return UserCredential(
            id=user.id,
            agency_id=user.agency_id,
            role=user.role,
            password_hash=user.password_hash,
            disabled=user.agency_id in self.rows(DELETED_AGENCIES),
            token_version=user.token_version,
        )

    async def user_by_email(self, email: str) -> UserCredential | None:
        return self._user(lambda u: u.email == email)

    async def user_by_id(self, user_id: uuid.UUID) -> UserCredential | None:
        return self._user(lambda u: u.id == user_id)

    async def user_by_clerk_id(self, clerk_user_id: str) -> UserCredential | None:
        return self._user(lambda u: u.clerk_user_id == clerk_user_id)

    async def refresh_token(self, token_hash: str) -> RefreshToken | None:
        token = next((t for t in self.rows(REFRESH_TOKENS).values() if t.token_hash == token_hash), None)
        return copy.deepcopy(token)

    async def location_access(
        self, user_id: uuid.UUID, location_id: uuid.UUID
    ) -> tuple[str | None, str] | None:
        user = self.rows(USERS).get(user_id)
        location = self.rows(LOCATIONS).get(location_id)
        if user is None or user.deleted_at is not None:
            return None
        if location is None or location.deleted_at is not None or location.agency_id != user.agency_id:
            return None
        grant = user.grant_for(location_id)
        return (grant.role.value if grant else None, location.tier.value)
