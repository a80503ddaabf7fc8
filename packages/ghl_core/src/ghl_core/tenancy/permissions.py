"""Who may do what. Checked in the core, per action, for every caller."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from ghl_core.shared.errors import NotFound, PermissionDenied
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.models import AgencyRole, LocationRole, PlanTier


class Permission(StrEnum):
    """Also the API key scopes. Named like GoHighLevel's, with `:` as the separator."""

    LOCATIONS_READ = "locations:read"
    LOCATIONS_WRITE = "locations:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    APIKEYS_READ = "apikeys:read"
    APIKEYS_WRITE = "apikeys:write"
    AUDIT_READ = "audit:read"
    CONTACTS_READ = "contacts:read"
    CONTACTS_WRITE = "contacts:write"
    OPPORTUNITIES_READ = "opportunities:read"
    OPPORTUNITIES_WRITE = "opportunities:write"
    CONVERSATIONS_READ = "conversations:read"
    CONVERSATIONS_WRITE = "conversations:write"
    # Setting or removing a messaging provider routes all of a location's SMS or email through an
    # account: an admin's decision, apart from sending (conversations:write).
    PROVIDERS_WRITE = "providers:write"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"
    WORKFLOWS_READ = "workflows:read"
    WORKFLOWS_WRITE = "workflows:write"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    JOBS_READ = "jobs:read"
    JOBS_WRITE = "jobs:write"


# Permissions that only make sense at agency level: never granted to a location credential.
AGENCY_ONLY = frozenset({Permission.LOCATIONS_WRITE, Permission.USERS_READ, Permission.USERS_WRITE})
# What a location credential may carry as a scope.
LOCATION_SCOPES = frozenset(Permission) - AGENCY_ONLY
# A location user (not admin) may not manage keys or messaging providers, read the audit trail or see
# background jobs.
_LOCATION_ADMIN_ONLY = frozenset(
    {
        Permission.APIKEYS_READ,
        Permission.APIKEYS_WRITE,
        Permission.PROVIDERS_WRITE,
        Permission.AUDIT_READ,
        Permission.JOBS_READ,
        Permission.JOBS_WRITE,
    }
)
LOCATION_ROLE_PERMISSIONS: dict[LocationRole, frozenset[Permission]] = {
    LocationRole.ADMIN: LOCATION_SCOPES,
    LocationRole.USER: LOCATION_SCOPES - _LOCATION_ADMIN_ONLY - {Permission.WEBHOOKS_WRITE},
}
AGENCY_ROLE_PERMISSIONS: dict[AgencyRole, frozenset[Permission]] = {
    AgencyRole.OWNER: frozenset(Permission),
    AgencyRole.ADMIN: frozenset(Permission),
    AgencyRole.USER: frozenset({Permission.LOCATIONS_READ}),
}


class ActorKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    OPERATOR = "operator"
    SYSTEM = "system"  # the platform acting on what arrived from outside (inbound webhooks); no permission


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller. A location-bound actor carries `location_id`."""

    kind: ActorKind
    id: uuid.UUID | None
    agency_id: uuid.UUID | None
    location_id: uuid.UUID | None = None
    agency_role: AgencyRole | None = None
    location_role: LocationRole | None = None
    scopes: frozenset[Permission] = field(default_factory=frozenset)
    tier: PlanTier = PlanTier.PRO
    credential_id: str = ""

    @classmethod
    def operator(cls) -> Actor:
        return cls(ActorKind.OPERATOR, None, None, scopes=frozenset(Permission), credential_id="operator")

    @classmethod
    def operator_at(cls, location_id: uuid.UUID) -> Actor:
        """The operator acting inside one location (the `ghl` commands that take --location): every
        permission, but the location's scope, so row-level security applies as for an API key."""
        return cls(
            ActorKind.OPERATOR,
            None,
            None,
            location_id=location_id,
            scopes=frozenset(Permission),
            credential_id="operator",
        )

    @property
    def is_operator(self) -> bool:
        return self.kind is ActorKind.OPERATOR

    @property
    def scope(self) -> TenantScope:
        if self.is_operator and self.location_id is None:
            return TenantScope.operator()
        if self.location_id is not None:
            return TenantScope.location(self.location_id)
        assert self.agency_id is not None  # noqa: S101 - an agency actor always has one
        return TenantScope.agency(self.agency_id)

    def permissions(self) -> frozenset[Permission]:
        if self.is_operator:
            return frozenset(Permission)
        if self.kind is ActorKind.API_KEY:
            return self.scopes & LOCATION_SCOPES
        if self.location_id is not None:
            # A location token: the location role, widened for agency owners and admins.
            granted = (
                LOCATION_ROLE_PERMISSIONS.get(self.location_role, frozenset())
                if self.location_role
                else frozenset()
            )
            if self.agency_role in (AgencyRole.OWNER, AgencyRole.ADMIN):
                granted = LOCATION_SCOPES
            return granted & LOCATION_SCOPES
        return AGENCY_ROLE_PERMISSIONS.get(self.agency_role, frozenset()) if self.agency_role else frozenset()

    def require(self, permission: Permission) -> None:
        if permission not in self.permissions():
            raise PermissionDenied(f"this credential lacks the '{permission.value}' permission")

    def require_location(self, permission: Permission) -> uuid.UUID:
        """For location endpoints: the location comes from the credential."""
        if self.location_id is None:
            raise PermissionDenied(
                "this endpoint needs a location credential: an API key or a location token "
                "(POST /api/v1/auth/location-token)"
            )
        self.require(permission)
        return self.location_id

    def require_agency(self, permission: Permission) -> uuid.UUID:
        """For agency endpoints: an agency-level user token (operators pass everywhere)."""
        if self.is_operator:
            raise PermissionDenied("operator actions name their agency explicitly")
        if self.location_id is not None or self.agency_id is None:
            raise PermissionDenied("this endpoint needs an agency-level user token")
        self.require(permission)
        return self.agency_id

    def check_same_agency(self, agency_id: uuid.UUID) -> None:
        if not self.is_operator and agency_id != self.agency_id:
            raise NotFound("no such resource")
