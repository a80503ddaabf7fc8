"""The small world the core tests run in: its password, its people and actors for them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ghl_core.tenancy.models import Agency, Location, LocationRole, User
from ghl_core.tenancy.permissions import Actor, ActorKind

PASSWORD = "correct horse battery"


def user_actor(user: User) -> Actor:
    return Actor(ActorKind.USER, user.id, user.agency_id, agency_role=user.role)


def location_actor(user: User, location_id: uuid.UUID, role: LocationRole | None) -> Actor:
    return Actor(
        ActorKind.USER,
        user.id,
        user.agency_id,
        location_id=location_id,
        agency_role=user.role,
        location_role=role,
    )


@dataclass
class World:
    """Two agencies: the first with an owner, an admin, a member granted `loc_a` only, and two
    locations; the second with one location and its own owner."""

    agency: Agency
    loc_a: Location
    loc_b: Location
    owner: User
    admin: User
    member: User
    other_agency: Agency
    other_location: Location
    other_owner: User

    @property
    def owner_actor(self) -> Actor:
        return user_actor(self.owner)

    @property
    def admin_actor(self) -> Actor:
        return user_actor(self.admin)

    @property
    def member_actor(self) -> Actor:
        return user_actor(self.member)

    @property
    def other_actor(self) -> Actor:
        return user_actor(self.other_owner)
