"""Use cases of the tenancy context: agencies and locations; users and their location grants are
`users.UserAdmin`'s, which the service builds and hands the user methods to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from ghl_core.shared.cache import ReadCache, api_key_cache_key, location_cache_key
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import MAX_LIMIT, Page, PageRequest, decode_cursor
from ghl_core.shared.recording import record_change
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.shared.validation import check_country, check_name, check_timezone
from ghl_core.tenancy.cached import cached_location
from ghl_core.tenancy.models import Agency, AgencyRole, Location, LocationRole, PlanTier, User
from ghl_core.tenancy.permissions import Actor, ActorKind, Permission
from ghl_core.tenancy.ports import PasswordHasher, TenancyUnitOfWork
from ghl_core.tenancy.users import NewUser, UserAdmin, owning_agency

# Re-exported: where the shells and tests have always found it.
__all__ = ["LocationChanges", "NewLocation", "NewUser", "TenancyService"]


@dataclass(frozen=True, slots=True)
class NewLocation:
    name: str
    timezone: str = "UTC"
    country: str = "US"
    tier: PlanTier = PlanTier.FREE


@dataclass(frozen=True, slots=True)
class LocationChanges:
    name: str | None = None
    timezone: str | None = None
    country: str | None = None
    tier: PlanTier | None = None


def _validate_location(name: str | None, timezone: str | None, country: str | None) -> tuple[str, str, str]:
    errors: list[FieldError] = []
    clean_name = check_name(name, "/name", errors) if name is not None else ""
    tz = check_timezone(timezone, "/timezone", errors) if timezone is not None else ""
    cc = check_country(country, "/country", errors) if country is not None else ""
    if errors:
        raise ValidationFailed(errors)
    return clean_name, tz, cc


class TenancyService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[TenancyUnitOfWork],
        clock: Clock,
        hasher: PasswordHasher,
        cache: ReadCache | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._hasher = hasher
        self._cache = cache or ReadCache()
        self._users = UserAdmin(uow=uow, clock=clock, hasher=hasher, cache=self._cache)

    # -- agencies ----------------------------------------------------------------------------------
    async def create_agency(self, actor: Actor, name: str) -> Agency:
        if not actor.is_operator:
            raise PermissionDenied("only the installation's operator creates agencies outside sign-up")
        errors: list[FieldError] = []
        clean = check_name(name, "/name", errors)
        if errors:
            raise ValidationFailed(errors)
        now = self._clock.now()
        agency = Agency(id=new_id(), name=clean, created_at=now, updated_at=now)
        async with self._uow(actor.scope) as uow:
            await uow.agencies.add(agency)
            await record_change(
                uow,
                self._clock,
                actor,
                action="create",
                entity_type="agency",
                entity_id=agency.id,
                agency_id=agency.id,
                location_id=None,
                before=None,
                after=agency.snapshot(),
                event_type="AgencyCreate",
            )
            await uow.commit()
        return agency

    async def list_agencies(self, actor: Actor, page: PageRequest) -> Page[Agency]:
        if not actor.is_operator:
            raise PermissionDenied("only the installation's operator lists agencies")
        async with self._uow(actor.scope) as uow:
            return await uow.agencies.list(page)

    # -- locations ---------------------------------------------------------------------------------
    async def create_location(
        self, actor: Actor, data: NewLocation, agency_id: uuid.UUID | None = None
    ) -> Location:
        name, tz, country = _validate_location(data.name, data.timezone, data.country)
        now = self._clock.now()
        async with self._uow(actor.scope) as uow:
            owner = await owning_agency(uow, actor, agency_id)
            location = Location(
                id=new_id(),
                agency_id=owner,
                name=name,
                timezone=tz,
                country=country,
                tier=data.tier,
                created_at=now,
                updated_at=now,
                created_by=actor.id,
                updated_by=actor.id,
            )
            await uow.locations.add(location)
            await record_change(
                uow,
                self._clock,
                actor,
                action="create",
                entity_type="location",
                entity_id=location.id,
                agency_id=owner,
                location_id=location.id,
                before=None,
                after=location.snapshot(),
                event_type="LocationCreate",
            )
            await uow.commit()
        return location

    async def _visible_location(
        self, uow: TenancyUnitOfWork, actor: Actor, location_id: uuid.UUID
    ) -> Location:
        location = await uow.locations.get(location_id)
        if location is None or location.deleted_at is not None:
            raise NotFound(f"location {location_id} not found")
        actor.check_same_agency(location.agency_id)
        if actor.location_id is not None and actor.location_id != location_id:
            raise NotFound(f"location {location_id} not found")
        if (
            actor.kind is ActorKind.USER
            and actor.location_id is None
            and actor.agency_role is AgencyRole.USER
        ):
            user = await uow.users.get(actor.id) if actor.id else None
            if user is None or user.grant_for(location_id) is None:
                raise NotFound(f"location {location_id} not found")
        return location

    async def get_location(self, actor: Actor, location_id: uuid.UUID) -> Location:
        actor.require(Permission.LOCATIONS_READ)
        if actor.location_id is not None:
            # A location credential reading its own location needs no other check: served from the cache.
            if actor.location_id != location_id:
                raise NotFound(f"location {location_id} not found")

            async def load() -> Location | None:
                async with self._uow(actor.scope) as uow:
                    return await uow.locations.get(location_id)

            location = await cached_location(self._cache, location_id, load)
            if location is None or location.deleted_at is not None:
                raise NotFound(f"location {location_id} not found")
            actor.check_same_agency(location.agency_id)
            return location
        async with self._uow(actor.scope) as uow:
            return await self._visible_location(uow, actor, location_id)

    async def current_location(self, actor: Actor) -> Location:
        location_id = actor.require_location(Permission.LOCATIONS_READ)
        return await self.get_location(actor, location_id)

    async def list_locations(
        self, actor: Actor, page: PageRequest, agency_id: uuid.UUID | None = None
    ) -> Page[Location]:
        """`agency_id` narrows an operator's list; other callers always see their own agency."""
        actor.require(Permission.LOCATIONS_READ)
        async with self._uow(actor.scope) as uow:
            if actor.location_id is not None:
                location = await self._visible_location(uow, actor, actor.location_id)
                return Page(items=[location], next_cursor=None)
            only: set[uuid.UUID] | None = None
            if actor.kind is ActorKind.USER and actor.agency_role is AgencyRole.USER:
                # Filtered in the query, so a page is full of what the user may see.
                user = await uow.users.get(actor.id) if actor.id else None
                only = {g.location_id for g in user.grants} if user else set()
            return await uow.locations.list(
                agency_id if actor.is_operator else actor.agency_id, page, only=only
            )

    async def update_location(
        self, actor: Actor, location_id: uuid.UUID, changes: LocationChanges
    ) -> Location:
        if not actor.is_operator:
            actor.require_agency(Permission.LOCATIONS_WRITE)
        name, tz, country = _validate_location(changes.name, changes.timezone, changes.country)
        async with self._uow(actor.scope) as uow:
            location = await self._visible_location(uow, actor, location_id)
            before = location.snapshot()
            updated = replace(
                location,
                name=name or location.name,
                timezone=tz or location.timezone,
                country=country or location.country,
                tier=changes.tier or location.tier,
                updated_at=self._clock.now(),
                updated_by=actor.id,
            )
            if updated.snapshot() == before:
                return location
            await uow.locations.update(updated)
            await record_change(
                uow,
                self._clock,
                actor,
                action="update",
                entity_type="location",
                entity_id=location.id,
                agency_id=location.agency_id,
                location_id=location.id,
                before=before,
                after=updated.snapshot(),
                event_type="LocationUpdate",
            )
            await uow.commit()
        await self._forget_location(location)
        return updated

    async def delete_location(self, actor: Actor, location_id: uuid.UUID) -> None:
        if not actor.is_operator:
            actor.require_agency(Permission.LOCATIONS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._visible_location(uow, actor, location_id)
            now = self._clock.now()
            deleted = replace(location, deleted_at=now, updated_at=now, updated_by=actor.id)
            await uow.locations.update(deleted)
            await record_change(
                uow,
                self._clock,
                actor,
                action="delete",
                entity_type="location",
                entity_id=location.id,
                agency_id=location.agency_id,
                location_id=location.id,
                before=location.snapshot(),
                after=deleted.snapshot(),
                event_type="LocationDelete",
            )
            await uow.commit()
        await self._forget_location(location)

    async def _forget_location(self, location: Location) -> None:
        """After a location changed (committed): its cached row, and its keys' cached credentials, which
        carry its plan tier and stop working with it. Keys are read in the location's own scope, the only
        one that sees them."""
        keys = [location_cache_key(location.id)]
        page = PageRequest(limit=MAX_LIMIT)
        async with self._uow(TenantScope.location(location.id)) as uow:
            while True:
                found = await uow.api_keys.list(location.id, page)
                keys += [api_key_cache_key(k.key_hash) for k in found.items]
                if found.next_cursor is None:
                    break
                page = PageRequest(limit=MAX_LIMIT, after=decode_cursor(found.next_cursor))
        await self._cache.invalidate(*keys)

    # -- users (see `users.UserAdmin`) -------------------------------------------------------------
    async def create_user(self, actor: Actor, data: NewUser, agency_id: uuid.UUID | None = None) -> User:
        return await self._users.create_user(actor, data, agency_id)

    async def get_user(self, actor: Actor, user_id: uuid.UUID) -> User:
        return await self._users.get_user(actor, user_id)

    async def list_users(self, actor: Actor, page: PageRequest) -> Page[User]:
        return await self._users.list_users(actor, page)

    async def update_user(
        self, actor: Actor, user_id: uuid.UUID, *, name: str | None = None, role: AgencyRole | None = None
    ) -> User:
        return await self._users.update_user(actor, user_id, name=name, role=role)

    async def delete_user(self, actor: Actor, user_id: uuid.UUID) -> None:
        await self._users.delete_user(actor, user_id)

    async def grant_location(
        self, actor: Actor, user_id: uuid.UUID, location_id: uuid.UUID, role: LocationRole
    ) -> User:
        return await self._users.grant_location(actor, user_id, location_id, role)

    async def revoke_location(self, actor: Actor, user_id: uuid.UUID, location_id: uuid.UUID) -> User:
        return await self._users.revoke_location(actor, user_id, location_id)
