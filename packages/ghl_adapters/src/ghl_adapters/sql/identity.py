"""SQL repositories of identity: API keys, refresh tokens, and the credential look-ups that run before a
tenant scope is known (through SECURITY DEFINER functions). Each runs on the unit of work's connection."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.identity.models import ApiKey, ApiKeyCredential, RefreshToken, UserCredential
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.tenancy.models import AgencyRole, PlanTier
from ghl_core.tenancy.permissions import Permission

from . import tables as t
from .repositories import _key, _paginate


class SqlApiKeyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    @staticmethod
    def _from(r: Row[Any]) -> ApiKey:
        return ApiKey(
            id=r.id,
            location_id=r.location_id,
            agency_id=r.agency_id,
            name=r.name,
            prefix=r.prefix,
            key_hash=r.key_hash,
            scopes=frozenset(Permission(s) for s in r.scopes if s in Permission._value2member_map_),
            created_at=r.created_at,
            created_by=r.created_by,
            last_used_at=r.last_used_at,
            revoked_at=r.revoked_at,
        )

    async def add(self, key: ApiKey) -> None:
        await self._c.execute(
            insert(t.api_keys).values(
                id=key.id,
                location_id=key.location_id,
                agency_id=key.agency_id,
                name=key.name,
                prefix=key.prefix,
                key_hash=key.key_hash,
                scopes=sorted(s.value for s in key.scopes),
                created_at=key.created_at,
                updated_at=key.created_at,
                created_by=key.created_by,
                updated_by=key.created_by,
            )
        )

    async def get(self, key_id: uuid.UUID) -> ApiKey | None:
        row = (await self._c.execute(select(t.api_keys).where(t.api_keys.c.id == key_id))).first()
        return self._from(row) if row else None

    async def count_live(self, location_id: uuid.UUID, *, lock: bool = False) -> int:
        if lock:
            # A transaction-scoped advisory lock: a location with no key yet has no row to lock.
            await self._c.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"api_keys:{location_id}"},
            )
        k = t.api_keys.c
        query = select(func.count()).where(k.location_id == location_id, k.revoked_at.is_(None))
        return int((await self._c.execute(query)).scalar_one())

    async def update(self, key: ApiKey) -> None:
        await self._c.execute(
            update(t.api_keys)
            .where(t.api_keys.c.id == key.id)
            .values(name=key.name, revoked_at=key.revoked_at, updated_at=func.now())
        )

    async def list(
        self, location_id: uuid.UUID, page: PageRequest, include_revoked: bool = False
    ) -> Page[ApiKey]:
        q = select(t.api_keys).where(t.api_keys.c.location_id == location_id)
        if not include_revoked:
            q = q.where(t.api_keys.c.revoked_at.is_(None))
        rows = (await self._c.execute(_paginate(q, page, t.api_keys.c.created_at, t.api_keys.c.id))).all()
        return page_from_rows([self._from(r) for r in rows], page.limit, _key())


class SqlRefreshTokenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, token: RefreshToken) -> None:
        await self._c.execute(
            insert(t.refresh_tokens).values(
                id=token.id,
                user_id=token.user_id,
                agency_id=token.agency_id,
                family_id=token.family_id,
                token_hash=token.token_hash,
                expires_at=token.expires_at,
                created_at=token.created_at,
            )
        )

    async def mark_rotated(self, token_id: uuid.UUID, at: datetime) -> bool:
        # One conditional UPDATE: of two concurrent refreshes with the same token, exactly one wins.
        result = await self._c.execute(
            update(t.refresh_tokens)
            .where(
                t.refresh_tokens.c.id == token_id,
                t.refresh_tokens.c.rotated_at.is_(None),
                t.refresh_tokens.c.revoked_at.is_(None),
            )
            .values(rotated_at=at)
        )
        return bool(result.rowcount)

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        await self._c.execute(
            update(t.refresh_tokens)
            .where(t.refresh_tokens.c.family_id == family_id, t.refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    async def revoke_for_user(self, user_id: uuid.UUID, at: datetime) -> None:
        await self._c.execute(
            update(t.refresh_tokens)
            .where(t.refresh_tokens.c.user_id == user_id, t.refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )


class SqlCredentialLookup:
    """Calls the security-definer functions of the first migration."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def api_key(self, key_hash: str) -> ApiKeyCredential | None:
        row = (await self._c.execute(text("SELECT * FROM ghl_auth_api_key(:h)"), {"h": key_hash})).first()
        if row is None:
            return None
        return ApiKeyCredential(
            id=row.id,
            location_id=row.location_id,
            agency_id=row.agency_id,
            scopes=frozenset(Permission(s) for s in row.scopes if s in Permission._value2member_map_),
            tier=PlanTier(row.tier),
            revoked=row.revoked,
        )

    async def _user(
        self, email: str | None = None, user_id: uuid.UUID | None = None, clerk: str | None = None
    ) -> UserCredential | None:
        row = (
            await self._c.execute(
                text("SELECT * FROM ghl_auth_user(CAST(:e AS text), CAST(:i AS uuid), CAST(:c AS text))"),
                {"e": email, "i": user_id, "c": clerk},
            )
        ).first()
        if row is None:
            return None
        return UserCredential(
            id=row.id,
            agency_id=row.agency_id,
            role=AgencyRole(row.role),
            password_hash=row.password_hash,
            disabled=row.disabled,
            token_version=row.token_version,
        )

    async def user_by_email(self, email: str) -> UserCredential | None:
        return await self._user(email=email)

    async def user_by_id(self, user_id: uuid.UUID) -> UserCredential | None:
        return await self._user(user_id=user_id)

    async def user_by_clerk_id(self, clerk_user_id: str) -> UserCredential | None:
        return await self._user(clerk=clerk_user_id)

    async def refresh_token(self, token_hash: str) -> RefreshToken | None:
        row = (
            await self._c.execute(text("SELECT * FROM ghl_auth_refresh_token(:h)"), {"h": token_hash})
        ).first()
        if row is None:
            return None
        return RefreshToken(
            id=row.id,
            user_id=row.user_id,
            agency_id=row.agency_id,
            family_id=row.family_id,
            token_hash=row.token_hash,
            expires_at=row.expires_at,
            created_at=row.created_at,
            rotated_at=row.rotated_at,
            revoked_at=row.revoked_at,
        )

    async def location_access(
        self, user_id: uuid.UUID, location_id: uuid.UUID
    ) -> tuple[str | None, str] | None:
        row = (
            await self._c.execute(
                text("SELECT * FROM ghl_auth_location_access(:u, :l)"), {"u": user_id, "l": location_id}
            )
        ).first()
        return (row.role, row.tier) if row else None
