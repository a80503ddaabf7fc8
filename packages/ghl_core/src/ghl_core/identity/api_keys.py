"""Use cases for a location's API keys: create (shown once), list, revoke.

A location holds at most its plan's number of live keys (`api_keys`, ghl_core.tenancy.plans): every key
of a location also draws on the location's rate-limit bucket, and the cap keeps the keys themselves from
piling up. Creators of keys for one location are serialised while they count, so concurrent creates
cannot pass the cap together."""

from __future__ import annotations

import uuid
from dataclasses import replace

from ghl_core.identity.models import ApiKey
from ghl_core.identity.ports import IdentityUnitOfWork
from ghl_core.identity.secrets import DISPLAY_PREFIX_LENGTH, new_api_key, secret_hash
from ghl_core.shared.cache import ReadCache, api_key_cache_key
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.shared.validation import check_name
from ghl_core.tenancy.permissions import LOCATION_SCOPES, Actor, Permission
from ghl_core.tenancy.plans import PlanCatalog, PlanLimitReached


def parse_scopes(values: list[str] | None, pointer: str = "/scopes") -> frozenset[Permission]:
    """None means every scope a location key may have."""
    if values is None:
        return LOCATION_SCOPES
    errors: list[FieldError] = []
    scopes: set[Permission] = set()
    for i, raw in enumerate(values):
        try:
            scope = Permission(raw)
        except ValueError:
            errors.append(FieldError(f"{pointer}/{i}", f"unknown scope '{raw}'"))
            continue
        if scope not in LOCATION_SCOPES:
            errors.append(
                FieldError(f"{pointer}/{i}", f"'{raw}' is an agency permission, not a location scope")
            )
        scopes.add(scope)
    if not values:
        errors.append(FieldError(pointer, "give at least one scope, or leave scopes out for all of them"))
    if errors:
        raise ValidationFailed(errors)
    return frozenset(scopes)


class ApiKeyService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[IdentityUnitOfWork],
        clock: Clock,
        cache: ReadCache | None = None,
        plans: PlanCatalog | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._cache = cache or ReadCache()
        self._plans = plans or PlanCatalog()

    def _location(self, actor: Actor, location_id: uuid.UUID | None, permission: Permission) -> uuid.UUID:
        if actor.is_operator:
            if location_id is None:
                raise ValidationFailed.one("/location_id", "name the location")
            return location_id
        return actor.require_location(permission)

    async def create(
        self,
        actor: Actor,
        name: str,
        scopes: frozenset[Permission] | None = None,
        location_id: uuid.UUID | None = None,
    ) -> tuple[ApiKey, str]:
        """Returns the key and its secret. The secret is shown this once and never stored."""
        loc = self._location(actor, location_id, Permission.APIKEYS_WRITE)
        errors: list[FieldError] = []
        clean = check_name(name, "/name", errors)
        if errors:
            raise ValidationFailed(errors)
        wanted = LOCATION_SCOPES if scopes is None else scopes
        if not wanted <= LOCATION_SCOPES:
            agency_only = sorted(s.value for s in wanted - LOCATION_SCOPES)
            raise ValidationFailed.one(
                "/scopes", f"agency permissions are not key scopes: {', '.join(agency_only)}"
            )
        if not actor.is_operator and not wanted <= actor.permissions():
            missing = sorted(s.value for s in wanted - actor.permissions())
            raise ValidationFailed.one(
                "/scopes", f"cannot grant scopes this credential lacks: {', '.join(missing)}"
            )
        secret = new_api_key()
        async with self._uow(actor.scope) as uow:
            location = await uow.locations.get(loc)
            if location is None or location.deleted_at is not None:
                raise NotFound(f"location {loc} not found")
            allowed = self._plans.limits(location.tier).api_keys
            if await uow.api_keys.count_live(loc, lock=True) >= allowed:
                raise PlanLimitReached(
                    f"the {location.tier.value} plan allows {allowed} live API keys per location; "
                    "revoke one before creating another",
                    limit="api_keys",
                    tier=location.tier,
                    allowed=allowed,
                )
            key = ApiKey(
                id=new_id(),
                location_id=loc,
                agency_id=location.agency_id,
                name=clean,
                prefix=secret[:DISPLAY_PREFIX_LENGTH],
                key_hash=secret_hash(secret),
                scopes=wanted,
                created_at=self._clock.now(),
                created_by=actor.id,
            )
            await uow.api_keys.add(key)
            await record_change(
                uow,
                self._clock,
                actor,
                action="create",
                entity_type="api_key",
                entity_id=key.id,
                agency_id=key.agency_id,
                location_id=loc,
                before=None,
                after=key.snapshot(),
            )
            await uow.commit()
        return key, secret

    async def list(
        self,
        actor: Actor,
        page: PageRequest,
        location_id: uuid.UUID | None = None,
        include_revoked: bool = False,
    ) -> Page[ApiKey]:
        loc = self._location(actor, location_id, Permission.APIKEYS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.api_keys.list(loc, page, include_revoked=include_revoked)

    async def revoke(self, actor: Actor, key_id: uuid.UUID, location_id: uuid.UUID | None = None) -> ApiKey:
        expected = location_id if actor.is_operator else actor.require_location(Permission.APIKEYS_WRITE)
        async with self._uow(actor.scope) as uow:
            key = await uow.api_keys.get(key_id)
            if key is None or (expected is not None and key.location_id != expected):
                raise NotFound(f"API key {key_id} not found")
            revoked = key
            if key.revoked_at is None:
                revoked = replace(key, revoked_at=self._clock.now())
                await uow.api_keys.update(revoked)
                await record_change(
                    uow,
                    self._clock,
                    actor,
                    action="revoke",
                    entity_type="api_key",
                    entity_id=key.id,
                    agency_id=key.agency_id,
                    location_id=key.location_id,
                    before=key.snapshot(),
                    after=revoked.snapshot(),
                )
                await uow.commit()
        # After the commit (see ghl_core.shared.cache); again on a repeated revoke, so retrying a revoke
        # whose invalidation failed finishes the job.
        await self._cache.invalidate(api_key_cache_key(key.key_hash))
        return revoked
