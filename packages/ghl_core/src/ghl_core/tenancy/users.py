"""Users of an agency: created, changed and removed by the agency's managers (an owner alone manages
owners, an agency keeps one), and their location grants. A change to what a user's tokens may carry
bumps their token version (identity/liveness.py)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from ghl_core.shared.cache import ReadCache, user_cache_key
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.shared.validation import check_email, check_name, check_password
from ghl_core.tenancy.models import AgencyRole, LocationGrant, LocationRole, User
from ghl_core.tenancy.permissions import Actor, Permission
from ghl_core.tenancy.ports import PasswordHasher, TenancyUnitOfWork


@dataclass(frozen=True, slots=True)
class NewUser:
    email: str
    name: str
    role: AgencyRole = AgencyRole.USER
    password: str | None = None
    clerk_user_id: str | None = None
    grants: tuple[LocationGrant, ...] = ()


async def owning_agency(uow: TenancyUnitOfWork, actor: Actor, agency_id: uuid.UUID | None) -> uuid.UUID:
    """The agency a new location or user belongs to: the actor's own, or for the operator the one named
    (or the only one there is)."""
    if not actor.is_operator:
        return actor.require_agency(Permission.LOCATIONS_WRITE)
    if agency_id is not None:
        if await uow.agencies.get(agency_id) is None:
            raise NotFound(f"agency {agency_id} does not exist")
        return agency_id
    agencies = await uow.agencies.list(PageRequest(limit=2))
    if len(agencies.items) != 1:
        raise ValidationFailed.one(
            "/agency_id",
            "name the agency: there is not exactly one" if agencies.items else "create an agency first",
        )
    return agencies.items[0].id


class UserAdmin:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[TenancyUnitOfWork],
        clock: Clock,
        hasher: PasswordHasher,
        cache: ReadCache,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._hasher = hasher
        self._cache = cache

    def _check_can_manage(self, actor: Actor, role: AgencyRole) -> None:
        if actor.is_operator:
            return
        actor.require_agency(Permission.USERS_WRITE)
        if role is AgencyRole.OWNER and actor.agency_role is not AgencyRole.OWNER:
            raise PermissionDenied("only an agency owner may create or change another owner")

    async def create_user(self, actor: Actor, data: NewUser, agency_id: uuid.UUID | None = None) -> User:
        self._check_can_manage(actor, data.role)
        errors: list[FieldError] = []
        email = check_email(data.email, "/email", errors)
        name = check_name(data.name, "/name", errors)
        if data.password is not None:
            check_password(data.password, "/password", errors)
        if errors:
            raise ValidationFailed(errors)
        now = self._clock.now()
        async with self._uow(actor.scope) as uow:
            owner = await owning_agency(uow, actor, agency_id) if actor.is_operator else actor.agency_id
            assert owner is not None  # noqa: S101 - require_agency guarantees it
            bad_grants: list[FieldError] = []
            for i, grant in enumerate(data.grants):
                location = await uow.locations.get(grant.location_id)
                if location is None or location.agency_id != owner or location.deleted_at is not None:
                    # The pointer names the HTTP body's field (`locations`), the one the caller sent.
                    bad_grants.append(
                        FieldError(
                            f"/locations/{i}/location_id",
                            f"location {grant.location_id} is not in this agency",
                        )
                    )
            if bad_grants:
                raise ValidationFailed(bad_grants)
            user = User(
                id=new_id(),
                agency_id=owner,
                email=email,
                name=name,
                role=data.role,
                created_at=now,
                updated_at=now,
                password_hash=self._hasher.hash(data.password) if data.password else None,
                clerk_user_id=data.clerk_user_id,
                grants=list(data.grants),
                created_by=actor.id,
                updated_by=actor.id,
            )
            await uow.users.add(user)
            await record_change(
                uow,
                self._clock,
                actor,
                action="create",
                entity_type="user",
                entity_id=user.id,
                agency_id=owner,
                location_id=None,
                before=None,
                after=user.snapshot(),
                event_type="UserCreate",
            )
            await uow.commit()
        return user

    async def _visible_user(self, uow: TenancyUnitOfWork, actor: Actor, user_id: uuid.UUID) -> User:
        user = await uow.users.get(user_id)
        if user is None or user.deleted_at is not None:
            raise NotFound(f"user {user_id} not found")
        actor.check_same_agency(user.agency_id)
        return user

    async def get_user(self, actor: Actor, user_id: uuid.UUID) -> User:
        if not actor.is_operator:
            actor.require_agency(Permission.USERS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible_user(uow, actor, user_id)

    async def list_users(self, actor: Actor, page: PageRequest) -> Page[User]:
        if not actor.is_operator:
            actor.require_agency(Permission.USERS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.users.list(None if actor.is_operator else actor.agency_id, page)

    async def _save_user(
        self,
        actor: Actor,
        user_id: uuid.UUID,
        change: str,
        mutate: Callable[[TenancyUnitOfWork, User], Awaitable[User]],
    ) -> User:
        """A removal, or a change to what the user's tokens may carry (role, a grant taken away or
        changed), bumps their token version: every access token issued before stops at its next request
        (identity/liveness.py). A new grant or a new name leaves their tokens alone."""
        async with self._uow(actor.scope) as uow:
            user = await self._visible_user(uow, actor, user_id)
            before = user.snapshot()
            updated = await mutate(uow, user)
            if updated.snapshot() == before:
                return user
            updated.updated_at = self._clock.now()
            updated.updated_by = actor.id
            await uow.users.update(updated)
            role, grants = user.access()
            new_role, new_grants = updated.access()
            revoke = change == "delete" or new_role != role or not grants <= new_grants
            if revoke:
                await uow.users.bump_token_version(user.id)
            await record_change(
                uow,
                self._clock,
                actor,
                action=change,
                entity_type="user",
                entity_id=user.id,
                agency_id=user.agency_id,
                location_id=None,
                before=before,
                after=updated.snapshot(),
                event_type="UserUpdate" if change != "delete" else "UserDelete",
            )
            if change == "delete":
                await uow.refresh_tokens.revoke_for_user(user.id, self._clock.now())
            await uow.commit()
        if revoke:
            await self._cache.invalidate(user_cache_key(user.id))
        return updated

    async def update_user(
        self, actor: Actor, user_id: uuid.UUID, *, name: str | None = None, role: AgencyRole | None = None
    ) -> User:
        if role is not None:
            self._check_can_manage(actor, role)
        else:
            self._check_can_manage(actor, AgencyRole.USER)
        errors: list[FieldError] = []
        clean = check_name(name, "/name", errors) if name is not None else None
        if errors:
            raise ValidationFailed(errors)

        async def mutate(uow: TenancyUnitOfWork, user: User) -> User:
            if user.role is AgencyRole.OWNER and role not in (None, AgencyRole.OWNER):
                self._check_can_manage(actor, AgencyRole.OWNER)
                await self._keep_an_owner(uow, user)
            return replace(user, name=clean or user.name, role=role or user.role, grants=list(user.grants))

        return await self._save_user(actor, user_id, "update", mutate)

    @staticmethod
    async def _keep_an_owner(uow: TenancyUnitOfWork, owner: User) -> None:
        if await uow.users.count_owners(owner.agency_id) <= 1:
            raise Conflict("an agency keeps at least one owner: make another user owner first")

    async def delete_user(self, actor: Actor, user_id: uuid.UUID) -> None:
        self._check_can_manage(actor, AgencyRole.USER)
        if actor.id == user_id:
            raise Conflict("you cannot delete yourself")

        async def mutate(uow: TenancyUnitOfWork, user: User) -> User:
            if user.role is AgencyRole.OWNER:
                self._check_can_manage(actor, AgencyRole.OWNER)
                await self._keep_an_owner(uow, user)
            return replace(user, deleted_at=self._clock.now(), grants=list(user.grants))

        await self._save_user(actor, user_id, "delete", mutate)

    async def grant_location(
        self, actor: Actor, user_id: uuid.UUID, location_id: uuid.UUID, role: LocationRole
    ) -> User:
        self._check_can_manage(actor, AgencyRole.USER)

        async def mutate(uow: TenancyUnitOfWork, user: User) -> User:
            location = await uow.locations.get(location_id)
            if location is None or location.agency_id != user.agency_id or location.deleted_at is not None:
                raise NotFound(f"location {location_id} not found")
            grants = [g for g in user.grants if g.location_id != location_id]
            grants.append(LocationGrant(location_id=location_id, role=role))
            return replace(user, grants=grants)

        return await self._save_user(actor, user_id, "update", mutate)

    async def revoke_location(self, actor: Actor, user_id: uuid.UUID, location_id: uuid.UUID) -> User:
        self._check_can_manage(actor, AgencyRole.USER)

        async def mutate(_uow: TenancyUnitOfWork, user: User) -> User:
            if user.grant_for(location_id) is None:
                raise NotFound(f"user {user_id} has no grant on location {location_id}")
            return replace(user, grants=[g for g in user.grants if g.location_id != location_id])

        return await self._save_user(actor, user_id, "update", mutate)
