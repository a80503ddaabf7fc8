"""Agencies, locations and users in memory, scoped as the tenancy tables' row-level security policies are:
an agency scope sees its agency, its locations and its users; a location scope sees its own location row;
the operator sees everything."""

from __future__ import annotations

import builtins
import copy
import uuid
from datetime import datetime

from ghl_core.shared.errors import Conflict
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.scope import ScopeKind
from ghl_core.tenancy.models import Agency, AgencyRole, Location, LocationGrant, User

from .store import MemoryRepository, Table, paginate

AGENCIES: Table[uuid.UUID, Agency] = Table("agencies")
# Agencies an operator soft-deleted (the core's Agency has no deleted_at): their users are disabled, their
# keys revoked, and they leave the agency list.
DELETED_AGENCIES: Table[uuid.UUID, datetime] = Table("deleted_agencies")
LOCATIONS: Table[uuid.UUID, Location] = Table("locations")
USERS: Table[uuid.UUID, User] = Table("users")


class MemoryAgencyRepository(MemoryRepository):
    async def add(self, agency: Agency) -> None:
        self.check_write(self.sees_agency(agency.id), "agencies")
        rows = self.rows(AGENCIES)
        if agency.id in rows:
            raise Conflict(f"agency {agency.id} exists")
        rows[agency.id] = copy.deepcopy(agency)

    async def get(self, agency_id: uuid.UUID) -> Agency | None:
        found = self.rows(AGENCIES).get(agency_id)
        if found is None or not self.sees_agency(found.id):
            return None
        return copy.deepcopy(found)

    async def list(self, page: PageRequest) -> Page[Agency]:
        deleted = self.rows(DELETED_AGENCIES)
        live = [a for a in self.rows(AGENCIES).values() if a.id not in deleted and self.sees_agency(a.id)]
        return paginate(live, page)


class MemoryLocationRepository(MemoryRepository):
    def _sees(self, location: Location) -> bool:
        scope = self.scope
        if scope.kind is ScopeKind.LOCATION:
            return location.id == scope.location_id
        return self.sees_agency(location.agency_id)

    async def add(self, location: Location) -> None:
        self.check_write(self.sees_agency(location.agency_id), "locations")
        rows = self.rows(LOCATIONS)
        if location.id in rows:
            raise Conflict(f"location {location.id} exists")
        rows[location.id] = copy.deepcopy(location)

    async def get(self, location_id: uuid.UUID) -> Location | None:
        found = self.rows(LOCATIONS).get(location_id)
        if found is None or not self._sees(found):
            return None
        return copy.deepcopy(found)

    async def update(self, location: Location) -> None:
        rows = self.rows(LOCATIONS)
        stored = rows.get(location.id)
        if stored is not None and self.sees_agency(stored.agency_id):
            rows[location.id] = copy.deepcopy(location)

    async def list(
        self,
        agency_id: uuid.UUID | None,
        page: PageRequest,
        include_deleted: bool = False,
        only: builtins.set[uuid.UUID] | None = None,
    ) -> Page[Location]:
        found = [
            loc
            for loc in self.rows(LOCATIONS).values()
            if (agency_id is None or loc.agency_id == agency_id)
            and (include_deleted or loc.deleted_at is None)
            and (only is None or loc.id in only)
            and self._sees(loc)
        ]
        return paginate(found, page)

    async def count_for_agency(self, agency_id: uuid.UUID) -> int:
        return sum(
            1
            for loc in self.rows(LOCATIONS).values()
            if loc.agency_id == agency_id and loc.deleted_at is None and self._sees(loc)
        )


class MemoryUserRepository(MemoryRepository):
    def _check_unique(self, user: User) -> None:
        """The partial unique indexes: one live user per e-mail address and per external identity."""
        if user.deleted_at is not None:
            return
        for other in self.unique_rows(USERS):
            if other.id == user.id or other.deleted_at is not None:
                continue
            if other.email == user.email:
                raise Conflict(f"a user with the e-mail address {user.email} already exists")
            if user.clerk_user_id is not None and other.clerk_user_id == user.clerk_user_id:
                raise Conflict("that e-mail address or identity belongs to another user")

    async def add(self, user: User) -> None:
        self.check_write(self.sees_agency(user.agency_id), "users")
        rows = self.rows(USERS)
        if user.id in rows:
            raise Conflict(f"user {user.id} exists")
        self._check_unique(user)
        rows[user.id] = copy.deepcopy(user)

    def _visible(self, user_id: uuid.UUID) -> User | None:
        found = self.rows(USERS).get(user_id)
        return found if found is not None and self.sees_agency(found.agency_id) else None

    async def get(self, user_id: uuid.UUID) -> User | None:
        return copy.deepcopy(self._visible(user_id))

    async def update(self, user: User) -> None:
        if self._visible(user.id) is None:
            return
        self._check_unique(user)
        self.rows(USERS)[user.id] = copy.deepcopy(user)

    async def list(self, agency_id: uuid.UUID | None, page: PageRequest) -> Page[User]:
        found = [
            u
            for u in self.rows(USERS).values()
            if u.deleted_at is None
            and (agency_id is None or u.agency_id == agency_id)
            and self.sees_agency(u.agency_id)
        ]
        return paginate(found, page)

    async def bump_token_version(self, user_id: uuid.UUID) -> None:
        user = self._visible(user_id)
        if user is not None:
            user.token_version += 1

    async def count_owners(self, agency_id: uuid.UUID) -> int:
        return sum(
            1
            for u in self.rows(USERS).values()
            if u.agency_id == agency_id
            and u.role is AgencyRole.OWNER
            and u.deleted_at is None
            and self.sees_agency(u.agency_id)
        )

    async def grants_for_location(
        self, location_id: uuid.UUID
    ) -> builtins.list[tuple[uuid.UUID, LocationGrant]]:
        return [
            (u.id, g)
            for u in self.rows(USERS).values()
            if self.sees_agency(u.agency_id)
            for g in u.grants
            if g.location_id == location_id
        ]
