"""Repositories of the tenancy context. Every method runs inside the unit of work's tenant scope.

Tenancy sits below identity (identity's credentials carry tenancy's roles and plan tiers), yet a user's
life touches those credentials: a new user's password is hashed, a removed user's sessions end in the same
transaction, a changed location's cached key credentials are forgotten, and an assignee is checked through
the credential look-ups. So tenancy declares here, by what it calls, the little it needs of them; identity's
repositories (`ghl_core.identity.repositories`) extend these protocols, and the unit of work that holds
them satisfies tenancy's narrow one. The password hasher port lives here for the same reason.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import Recording
from ghl_core.shared.uow import Transaction
from ghl_core.tenancy.models import Agency, AgencyRole, Location, LocationGrant, User


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


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool:
        """False for a wrong password; never raises for a mismatch."""
        ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class UserSessions(Protocol):
    """A user's refresh tokens, as far as tenancy ends them."""

    async def revoke_for_user(self, user_id: uuid.UUID, at: datetime) -> None: ...


class HashedKey(Protocol):
    @property
    def key_hash(self) -> str: ...


class HashedKeyPage(Protocol):
    @property
    def items(self) -> Sequence[HashedKey]: ...

    @property
    def next_cursor(self) -> str | None: ...


class LocationKeys(Protocol):
    """A location's API keys, as far as tenancy forgets their cached credentials."""

    async def list(
        self, location_id: uuid.UUID, page: PageRequest, include_revoked: bool = False
    ) -> HashedKeyPage: ...


class AssigneeCredential(Protocol):
    @property
    def agency_id(self) -> uuid.UUID: ...

    @property
    def role(self) -> AgencyRole: ...

    @property
    def disabled(self) -> bool: ...


class AssigneeLookup(Protocol):
    """The credential look-ups made before a location credential may read its agency's users."""

    async def user_by_id(self, user_id: uuid.UUID) -> AssigneeCredential | None: ...

    async def location_access(
        self, user_id: uuid.UUID, location_id: uuid.UUID
    ) -> tuple[str | None, str] | None:
        """(location role granted or None, plan tier) when the location belongs to the user's agency."""
        ...


class AssigneesUnitOfWork(Transaction, Protocol):
    """What checking an assignee needs (contacts, opportunities, tasks, conversations assign users)."""

    @property
    def credentials(self) -> AssigneeLookup: ...


class TenancyUnitOfWork(Recording, Protocol):
    """What the tenancy context touches in one transaction."""

    @property
    def agencies(self) -> AgencyRepository: ...

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def api_keys(self) -> LocationKeys: ...

    @property
    def refresh_tokens(self) -> UserSessions: ...
