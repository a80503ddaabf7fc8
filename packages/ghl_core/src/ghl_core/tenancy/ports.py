"""Repositories of the tenancy context. Every method runs inside the unit of work's tenant scope."""

from __future__ import annotations

import builtins
import uuid
from typing import Protocol

from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.tenancy.models import Agency, Location, LocationGrant, User


class AgencyRepository(Protocol):
    async def add(self, agency: Agency) -> None: ...

    async def get(self, agency_id: uuid.UUID) -> Agency | None: ...

    async def list(self, page: PageRequest) -> Page[Agency]: ...


class LocationRepository(Protocol):
    async def add(self, location: Location) -> None: ...

    async def get(self, location_id: uuid.UUID) -> Location | None:
        """A soft-deleted location is returned too; callers decide."""
        ...

    async def update(self, location: Location) -> None: ...

    async def list(
        self,
        agency_id: uuid.UUID | None,
        page: PageRequest,
        include_deleted: bool = False,
        only: builtins.set[uuid.UUID] | None = None,
    ) -> Page[Location]:
        """`agency_id` None lists every agency's (operators only; row-level security applies anyway).
        `only` restricts the list to these ids (an agency user's granted locations)."""
        ...

    async def count_for_agency(self, agency_id: uuid.UUID) -> int: ...


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Raises `Conflict` when the e-mail address is taken."""
        ...

    async def get(self, user_id: uuid.UUID) -> User | None: ...

    async def update(self, user: User) -> None:
        """Saves the user and replaces its location grants."""
        ...

    async def list(self, agency_id: uuid.UUID | None, page: PageRequest) -> Page[User]: ...

    async def bump_token_version(self, user_id: uuid.UUID) -> None:
        """Adds one to the user's token version in the store itself (not read-modify-write), so two
        concurrent changes each end the tokens issued before them."""
        ...

    async def count_owners(self, agency_id: uuid.UUID) -> int:
        """Live owners of the agency, locked until the transaction ends so two concurrent demotions
        cannot both pass the last-owner check."""
        ...

    async def grants_for_location(
        self, location_id: uuid.UUID
    ) -> builtins.list[tuple[uuid.UUID, LocationGrant]]: ...
