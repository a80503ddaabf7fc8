"""Whether one of our access tokens still stands for the access its user has now.

An access token is a signed JWT, honoured without a database look-up for its whole lifetime; on its own
a removed agency admin's token would keep creating accounts for up to 15 minutes. So each token names
its user's token version (`ver`), and every request compares it with the current one:

- the user's token version is bumped when they are removed, their agency role changes, or a location
  grant is taken away or changed (`TenancyService`); a token naming an older version is refused, and the
  client refreshes (a removed user's refresh tokens are revoked too);
- a location token also needs its location: deleted means refused, and its plan tier is the location's
  current one, not the one the token was issued under, so a downgrade applies at the next request.

Checked on every request rather than only on writes: a removed user's reads are as unwanted as their
writes, and the check is one cache read (two for a location token). The values are cached like API
keys (`cred:user:<id>` and the `location:<id>` row) and invalidated in every process after the change
commits; only a live user is cached, so a removed one costs a look-up per attempt, as an unknown API key
does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ghl_core.identity.models import AccessClaims
from ghl_core.identity.ports import IdentityUnitOfWork
from ghl_core.shared.cache import ReadCache, user_cache_key
from ghl_core.shared.errors import Unauthenticated
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.cached import cached_location
from ghl_core.tenancy.models import Location, PlanTier

REVOKED = "access token was revoked: the user's access changed; refresh it or log in again"


@dataclass(frozen=True, slots=True)
class _LiveUser:
    agency_id: uuid.UUID
    token_version: int


def _user_to_json(user: _LiveUser) -> dict[str, Any]:
    return {"agency_id": str(user.agency_id), "token_version": user.token_version}


def _user_from_json(data: Any) -> _LiveUser:
    version = data["token_version"]
    if not isinstance(version, int):
        raise TypeError("token_version")
    return _LiveUser(uuid.UUID(data["agency_id"]), version)


class TokenLiveness:
    def __init__(self, uow: UnitOfWorkFactory[IdentityUnitOfWork], cache: ReadCache) -> None:
        self._uow = uow
        self._cache = cache

    async def check(self, claims: AccessClaims) -> PlanTier | None:
        """Raises `Unauthenticated` unless the token's user and location are as it says. Answers the
        location's current plan tier for a location token, None for an agency token."""
        user = await self._live_user(claims.user_id)
        if user is None or user.agency_id != claims.agency_id:
            raise Unauthenticated("access token was revoked: the user was removed")
        if user.token_version != claims.token_version:
            raise Unauthenticated(REVOKED)
        if claims.location_id is None:
            return None
        location = await self._location(claims.location_id)
        if location is None or location.deleted_at is not None or location.agency_id != claims.agency_id:
            raise Unauthenticated("access token was revoked: its location was deleted")
        return location.tier

    async def _live_user(self, user_id: uuid.UUID) -> _LiveUser | None:
        async def load() -> _LiveUser | None:
            async with self._uow(TenantScope.anonymous()) as uow:
                cred = await uow.credentials.user_by_id(user_id)
            if cred is None or cred.disabled:
                return None  # not cached: the next attempt looks again
            return _LiveUser(cred.agency_id, cred.token_version)

        return await self._cache.get_or_load(user_cache_key(user_id), load, _user_to_json, _user_from_json)

    async def _location(self, location_id: uuid.UUID) -> Location | None:
        async def load() -> Location | None:
            async with self._uow(TenantScope.location(location_id)) as uow:
                return await uow.locations.get(location_id)

        return await cached_location(self._cache, location_id, load)
