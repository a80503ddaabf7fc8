"""Who may be assigned a contact, a conversation, an opportunity or a task of a location."""

from __future__ import annotations

import uuid

from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.tenancy.models import AgencyRole
from ghl_core.tenancy.ports import AssigneesUnitOfWork


async def may_be_assigned(
    uow: AssigneesUnitOfWork, agency_id: uuid.UUID, location_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    """A live user of the location's agency who may use the location: agency owners and admins reach
    every location, agency users only those granted. Asked through the narrow security-definer look-ups,
    because a location credential cannot read the agency's users."""
    user = await uow.credentials.user_by_id(user_id)
    if user is None or user.disabled or user.agency_id != agency_id:
        return False
    if user.role in (AgencyRole.OWNER, AgencyRole.ADMIN):
        return True
    access = await uow.credentials.location_access(user_id, location_id)
    return access is not None and access[0] is not None


def not_assignable(user_id: uuid.UUID, pointer: str) -> FieldError:
    return FieldError(pointer, f"user {user_id} is not a user with access to this location")


async def check_assignee(
    uow: AssigneesUnitOfWork,
    agency_id: uuid.UUID,
    location_id: uuid.UUID,
    user_id: uuid.UUID,
    pointer: str = "/assigned_user_id",
) -> None:
    """Refuses, at `pointer`, anyone `may_be_assigned` does not allow: an unknown id, a disabled user,
    another agency's user, a user without access to the location."""
    if not await may_be_assigned(uow, agency_id, location_id, user_id):
        raise ValidationFailed([not_assignable(user_id, pointer)])
