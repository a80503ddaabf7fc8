"""SQL repositories of tenancy (agencies, locations, users and their grants), and the keyset paging the
other SQL repositories share. Identity's are in `identity.py`, the audit trail and the event outbox in
`audit.py`. Each runs on the unit of work's connection, inside its tenant scope."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from ghl_core.shared.errors import Conflict, ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.tenancy.models import Agency, AgencyRole, Location, LocationGrant, LocationRole, PlanTier, User

from . import tables as t


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


__all__ = ["or_"]
