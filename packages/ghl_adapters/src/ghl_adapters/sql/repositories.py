"""SQL repositories. Each runs on the unit of work's connection, inside its tenant scope."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from ghl_core.identity.models import ApiKey, ApiKeyCredential, RefreshToken, UserCredential
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.errors import Conflict, ValidationFailed
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.tenancy.models import Agency, AgencyRole, Location, LocationGrant, LocationRole, PlanTier, User
from ghl_core.tenancy.permissions import Permission

from . import tables as t
from .tables import json_rows, recordset_insert


def _paginate(
    query: Select[Any], page: PageRequest, created: Any, ident: Any, descending: bool = False
) -> Select[Any]:
    if page.after is not None:
        try:
            created_at, ident_value = page.after
            key = (datetime.fromisoformat(created_at), uuid.UUID(ident_value))
        except ValueError:
            raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None
        cmp = tuple_(created, ident) < key if descending else tuple_(created, ident) > key
        query = query.where(cmp)
    order = (created.desc(), ident.desc()) if descending else (created, ident)
    query = query.order_by(*order).limit(page.limit + 1)
    if page.offset is not None:
        query = query.offset(page.offset)
    return query


def _key(created_attr: str = "created_at") -> Any:
    return lambda item: (getattr(item, created_attr).isoformat(), str(item.id))


class SqlAgencyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, agency: Agency) -> None:
        await self._c.execute(
            insert(t.agencies).values(
                id=agency.id,
                name=agency.name,
                created_at=agency.created_at,
                updated_at=agency.updated_at,
                created_by=agency.created_by,
                updated_by=agency.updated_by,
            )
        )

    @staticmethod
    def _from(row: Row[Any]) -> Agency:
        return Agency(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            updated_at=row.updated_at,
            created_by=row.created_by,
            updated_by=row.updated_by,
        )

    async def get(self, agency_id: uuid.UUID) -> Agency | None:
        row = (await self._c.execute(select(t.agencies).where(t.agencies.c.id == agency_id))).first()
        return self._from(row) if row else None

    async def list(self, page: PageRequest) -> Page[Agency]:
        q = _paginate(
            select(t.agencies).where(t.agencies.c.deleted_at.is_(None)),
            page,
            t.agencies.c.created_at,
            t.agencies.c.id,
        )
        rows = [self._from(r) for r in (await self._c.execute(q)).all()]
        return page_from_rows(rows, page.limit, _key())


class SqlLocationRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    @staticmethod
    def _values(loc: Location) -> dict[str, Any]:
        return {
            "agency_id": loc.agency_id,
            "name": loc.name,
            "timezone": loc.timezone,
            "country": loc.country,
            "tier": loc.tier.value,
            "created_at": loc.created_at,
            "updated_at": loc.updated_at,
            "deleted_at": loc.deleted_at,
            "created_by": loc.created_by,
            "updated_by": loc.updated_by,
        }

    @staticmethod
    def _from(row: Row[Any]) -> Location:
        return Location(
            id=row.id,
            agency_id=row.agency_id,
            name=row.name,
            timezone=row.timezone,
            country=row.country,
            tier=PlanTier(row.tier),
            created_at=row.created_at,
            updated_at=row.updated_at,
            deleted_at=row.deleted_at,
            created_by=row.created_by,
            updated_by=row.updated_by,
        )

    async def add(self, location: Location) -> None:
        await self._c.execute(insert(t.locations).values(id=location.id, **self._values(location)))

    async def get(self, location_id: uuid.UUID) -> Location | None:
        row = (await self._c.execute(select(t.locations).where(t.locations.c.id == location_id))).first()
        return self._from(row) if row else None

    async def update(self, location: Location) -> None:
        await self._c.execute(
            update(t.locations).where(t.locations.c.id == location.id).values(**self._values(location))
        )

    async def list(
        self,
        agency_id: uuid.UUID | None,
        page: PageRequest,
        include_deleted: bool = False,
        only: builtins.set[uuid.UUID] | None = None,
    ) -> Page[Location]:
        q = select(t.locations)
        if agency_id is not None:
            q = q.where(t.locations.c.agency_id == agency_id)
        if only is not None:
            q = q.where(t.locations.c.id.in_(only))
        if not include_deleted:
            q = q.where(t.locations.c.deleted_at.is_(None))
        q = _paginate(q, page, t.locations.c.created_at, t.locations.c.id)
        rows = [self._from(r) for r in (await self._c.execute(q)).all()]
        return page_from_rows(rows, page.limit, _key())

    async def count_for_agency(self, agency_id: uuid.UUID) -> int:
        q = (
            select(func.count())
            .select_from(t.locations)
            .where(t.locations.c.agency_id == agency_id, t.locations.c.deleted_at.is_(None))
        )
        return int((await self._c.execute(q)).scalar_one())


class SqlUserRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    @staticmethod
    def _values(user: User) -> dict[str, Any]:
        return {
            "agency_id": user.agency_id,
            "email": user.email,
            "name": user.name,
            "role": user.role.value,
            "password_hash": user.password_hash,
            "clerk_user_id": user.clerk_user_id,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
            "deleted_at": user.deleted_at,
            "created_by": user.created_by,
            "updated_by": user.updated_by,
        }

    async def _write_grants(self, user: User) -> None:
        await self._c.execute(
            delete(t.user_location_grants).where(t.user_location_grants.c.user_id == user.id)
        )
        if user.grants:
            await self._c.execute(
                insert(t.user_location_grants),
                [
                    {
                        "user_id": user.id,
                        "location_id": g.location_id,
                        "agency_id": user.agency_id,
                        "role": g.role.value,
                    }
                    for g in user.grants
                ],
            )

    async def add(self, user: User) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(insert(t.users).values(id=user.id, **self._values(user)))
        except IntegrityError as exc:
            raise Conflict(f"a user with the e-mail address {user.email} already exists") from exc
        await self._write_grants(user)

    async def update(self, user: User) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(
                    update(t.users).where(t.users.c.id == user.id).values(**self._values(user))
                )
        except IntegrityError as exc:
            raise Conflict("that e-mail address or identity belongs to another user") from exc
        await self._write_grants(user)

    async def _hydrate(self, rows: Sequence[Row[Any]]) -> builtins.list[User]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        grants: dict[uuid.UUID, builtins.list[LocationGrant]] = {i: [] for i in ids}
        q = select(t.user_location_grants).where(t.user_location_grants.c.user_id.in_(ids))
        for g in (await self._c.execute(q.order_by(t.user_location_grants.c.created_at))).all():
            grants[g.user_id].append(LocationGrant(location_id=g.location_id, role=LocationRole(g.role)))
        return [
            User(
                id=r.id,
                agency_id=r.agency_id,
                email=r.email,
                name=r.name,
                role=AgencyRole(r.role),
                created_at=r.created_at,
                updated_at=r.updated_at,
                password_hash=r.password_hash,
                clerk_user_id=r.clerk_user_id,
                deleted_at=r.deleted_at,
                grants=grants[r.id],
                created_by=r.created_by,
                updated_by=r.updated_by,
                token_version=r.token_version,
            )
            for r in rows
        ]

    async def bump_token_version(self, user_id: uuid.UUID) -> None:
        await self._c.execute(
            update(t.users).where(t.users.c.id == user_id).values(token_version=t.users.c.token_version + 1)
        )

    async def get(self, user_id: uuid.UUID) -> User | None:
        rows = (await self._c.execute(select(t.users).where(t.users.c.id == user_id))).all()
        users = await self._hydrate(rows)
        return users[0] if users else None

    async def list(self, agency_id: uuid.UUID | None, page: PageRequest) -> Page[User]:
        q = select(t.users).where(t.users.c.deleted_at.is_(None))
        if agency_id is not None:
            q = q.where(t.users.c.agency_id == agency_id)
        rows = (await self._c.execute(_paginate(q, page, t.users.c.created_at, t.users.c.id))).all()
        return page_from_rows(await self._hydrate(rows), page.limit, _key())

    async def count_owners(self, agency_id: uuid.UUID) -> int:
        owners = (
            select(t.users.c.id)
            .where(
                t.users.c.agency_id == agency_id,
                t.users.c.role == AgencyRole.OWNER.value,
                t.users.c.deleted_at.is_(None),
            )
            .with_for_update()
        )
        return len((await self._c.execute(owners)).all())

    async def grants_for_location(
        self, location_id: uuid.UUID
    ) -> builtins.list[tuple[uuid.UUID, LocationGrant]]:
        q = select(t.user_location_grants).where(t.user_location_grants.c.location_id == location_id)
        return [
            (g.user_id, LocationGrant(location_id=g.location_id, role=LocationRole(g.role)))
            for g in (await self._c.execute(q)).all()
        ]


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


class SqlAuditLog:
    def __init__(self, conn: AsyncConnection, request_id: str | None = None) -> None:
        self._c = conn
        self._request_id = request_id

    async def record(self, entry: AuditEntry) -> None:
        await self._c.execute(
            insert(t.audit_log).values(
                id=entry.id,
                agency_id=entry.agency_id,
                location_id=entry.location_id,
                actor_type=entry.actor_type,
                actor_id=entry.actor_id,
                action=entry.action,
                entity_type=entry.entity_type,
                entity_id=entry.entity_id,
                before=entry.before,
                after=entry.after,
                request_id=entry.request_id or self._request_id,
                created_at=entry.created_at,
            )
        )

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        entity_type: str | None = None,
        entity_id: uuid.UUID | None = None,
        since: datetime | None = None,
    ) -> Page[AuditEntry]:
        a = t.audit_log.c
        conditions = [a.location_id == location_id]
        if entity_type:
            conditions.append(a.entity_type == entity_type)
        if entity_id:
            conditions.append(a.entity_id == entity_id)
        if since:
            conditions.append(a.created_at >= since)
        q = _paginate(select(t.audit_log).where(and_(*conditions)), page, a.created_at, a.id, descending=True)
        rows = (await self._c.execute(q)).all()
        entries = [
            AuditEntry(
                id=r.id,
                agency_id=r.agency_id,
                location_id=r.location_id,
                actor_type=r.actor_type,
                actor_id=r.actor_id,
                action=r.action,
                entity_type=r.entity_type,
                entity_id=r.entity_id,
                before=r.before,
                after=r.after,
                created_at=r.created_at,
                request_id=r.request_id,
            )
            for r in rows
        ]
        return page_from_rows(entries, page.limit, _key())


class SqlEventOutbox:
    """Writes events and remembers them: the unit of work hands them to the job engine at commit."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn
        self.recorded: list[DomainEvent] = []

    def track(self, events: Iterable[DomainEvent]) -> None:
        """Events another repository wrote in bulk, to be dispatched like the ones added here."""
        self.recorded.extend(events)

    async def add(self, event: DomainEvent) -> None:
        self.recorded.append(event)
        await self._c.execute(
            insert(t.domain_events).values(
                id=event.id,
                agency_id=event.agency_id,
                location_id=event.location_id,
                type=event.type,
                entity_id=event.entity_id,
                payload=event.payload,
                occurred_at=event.occurred_at,
                # Handed to the job engine in this same transaction (see SqlUnitOfWork.commit).
                published_at=func.now(),
            )
        )

    async def add_many(self, events: list[DomainEvent]) -> None:
        if not events:
            return
        self.recorded.extend(events)
        rows = [
            {
                "id": e.id,
                "agency_id": e.agency_id,
                "location_id": e.location_id,
                "type": e.type,
                "entity_id": e.entity_id,
                "payload": e.payload,
                "occurred_at": e.occurred_at,
                # Handed to the job engine in this same transaction (see SqlUnitOfWork.commit).
                "published_at": e.occurred_at,
            }
            for e in events
        ]
        await self._c.execute(_INSERT_EVENTS, {"rows": json_rows(rows)})


_INSERT_EVENTS = recordset_insert(
    "domain_events",
    [
        ("id", "uuid"),
        ("agency_id", "uuid"),
        ("location_id", "uuid"),
        ("type", "text"),
        ("entity_id", "uuid"),
        ("payload", "jsonb"),
        ("occurred_at", "timestamptz"),
        ("published_at", "timestamptz"),
    ],
)


__all__ = ["or_"]
