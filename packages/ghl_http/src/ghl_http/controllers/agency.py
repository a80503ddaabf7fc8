"""Agency endpoints (an agency-level user token): locations and users."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.models import LocationGrant
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import LocationChanges, NewLocation, NewUser, TenancyService
from ghl_http.schemas import (
    GrantRoleIn,
    ListOf,
    LocationIn,
    LocationOut,
    LocationPatch,
    UserIn,
    UserOut,
    UserPatch,
    page_of,
)


class LocationsController(Controller):
    path = "/locations"
    tags = ["agency: locations"]

    @get("/", summary="List the agency's locations")
    async def list_locations(
        self,
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[LocationOut]:
        return ListOf[LocationOut].model_validate(
            page_of(await tenancy.list_locations(actor, page), LocationOut.of)
        )

    @post("/", status_code=HTTP_201_CREATED, summary="Create a location (sub-account)")
    async def create_location(
        self,
        data: JSONBody[LocationIn],
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
    ) -> LocationOut:
        location = await tenancy.create_location(
            actor, NewLocation(name=data.name, timezone=data.timezone, country=data.country, tier=data.tier)
        )
        return LocationOut.of(location)

    @get("/{location_id:uuid}", summary="Get a location")
    async def get_location(
        self,
        location_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
    ) -> LocationOut:
        return LocationOut.of(await tenancy.get_location(actor, location_id))

    @patch("/{location_id:uuid}", summary="Change a location")
    async def update_location(
        self,
        location_id: FromPath[uuid.UUID],
        data: JSONBody[LocationPatch],
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
    ) -> LocationOut:
        changes = LocationChanges(
            name=data.name, timezone=data.timezone, country=data.country, tier=data.tier
        )
        return LocationOut.of(await tenancy.update_location(actor, location_id, changes))

    @delete("/{location_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a location (soft)")
    async def delete_location(
        self,
        location_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
    ) -> None:
        await tenancy.delete_location(actor, location_id)


class UsersController(Controller):
    path = "/users"
    tags = ["agency: users"]

    @get("/", summary="List the agency's users")
    async def list_users(
        self,
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[UserOut]:
        return ListOf[UserOut].model_validate(page_of(await tenancy.list_users(actor, page), UserOut.of))

    @post("/", status_code=HTTP_201_CREATED, summary="Add a user to the agency")
    async def create_user(
        self, data: JSONBody[UserIn], actor: NamedDependency[Actor], tenancy: NamedDependency[TenancyService]
    ) -> UserOut:
        grants = tuple(LocationGrant(location_id=g.location_id, role=g.role) for g in data.locations)
        user = await tenancy.create_user(
            actor,
            NewUser(
                email=data.email,
                name=data.name,
                role=data.role,
                password=data.password,
                clerk_user_id=data.clerk_user_id,
                grants=grants,
            ),
        )
        return UserOut.of(user)

    @get("/{user_id:uuid}", summary="Get a user")
    async def get_user(
        self,
        user_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
    ) -> UserOut:
        return UserOut.of(await tenancy.get_user(actor, user_id))

    @patch("/{user_id:uuid}", summary="Change a user's name or agency role")
    async def update_user(
        self,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[UserPatch],
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
    ) -> UserOut:
        return UserOut.of(await tenancy.update_user(actor, user_id, name=data.name, role=data.role))

    @delete("/{user_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Remove a user (soft)")
    async def delete_user(
        self,
        user_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
    ) -> None:
        await tenancy.delete_user(actor, user_id)

    @put("/{user_id:uuid}/locations/{location_id:uuid}", summary="Grant a user a location")
    async def grant(
        self,
        user_id: FromPath[uuid.UUID],
        location_id: FromPath[uuid.UUID],
        data: JSONBody[GrantRoleIn],
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
    ) -> UserOut:
        return UserOut.of(await tenancy.grant_location(actor, user_id, location_id, data.role))

    @delete(
        "/{user_id:uuid}/locations/{location_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Take a location from a user",
    )
    async def revoke(
        self,
        user_id: FromPath[uuid.UUID],
        location_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        tenancy: NamedDependency[TenancyService],
    ) -> None:
        await tenancy.revoke_location(actor, user_id, location_id)


__all__ = ["LocationsController", "UsersController"]
