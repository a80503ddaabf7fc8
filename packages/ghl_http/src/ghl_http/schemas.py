"""Request and response bodies of the HTTP API (snake_case, documented in the OpenAPI schema)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ghl_core.identity.models import ApiKey, TokenPair
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.pagination import Page
from ghl_core.shared.validation import MIN_PASSWORD_LENGTH
from ghl_core.tenancy.models import Agency, AgencyRole, Location, LocationRole, PlanTier, User
from ghl_core.tenancy.permissions import LOCATION_SCOPES
from ghl_http.schema_rules import COUNTRY, EMAIL, NAME, TIME_ZONE, rule

T = TypeVar("T")


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000)
    # No NUL check here: the input guard (ghl_http.middleware.input_guard) refuses a NUL anywhere in a
    # body, nested values and names included, before any model sees it.


class ListOf(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


def page_of(page: Page[Any], convert: Any) -> dict[str, Any]:
    return {"items": [convert(item) for item in page.items], "next_cursor": page.next_cursor}


# -- auth ------------------------------------------------------------------------------------------
class SignUpIn(Body):
    agency_name: Annotated[str, rule(pattern=NAME)] = Field(min_length=1, max_length=200)
    email: Annotated[str, rule(pattern=EMAIL, format="email")] = Field(max_length=320)
    password: Annotated[str, rule(minLength=MIN_PASSWORD_LENGTH)] = Field(max_length=256)
    name: Annotated[str, rule(pattern=NAME)] = Field(min_length=1, max_length=200)


class LoginIn(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class RefreshIn(Body):
    refresh_token: str = Field(max_length=200)


class LocationTokenIn(Body):
    location_id: uuid.UUID


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> TokensOut:
        return cls(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
        )


class AccessTokenOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int
    location_id: uuid.UUID


class AgencyOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime

    @classmethod
    def of(cls, agency: Agency) -> AgencyOut:
        return cls(id=agency.id, name=agency.name, created_at=agency.created_at)


# -- locations -------------------------------------------------------------------------------------
class LocationIn(Body):
    name: Annotated[str, rule(pattern=NAME)] = Field(min_length=1, max_length=200)
    timezone: Annotated[str, rule(**TIME_ZONE)] = Field(
        "UTC", description="IANA time zone, e.g. America/New_York"
    )
    country: Annotated[str, rule(pattern=COUNTRY)] = Field("US", description="ISO 3166-1 alpha-2 code")
    tier: PlanTier = PlanTier.FREE


class LocationPatch(Body):
    name: Annotated[str | None, rule(nullable=False, pattern=NAME)] = Field(
        None, min_length=1, max_length=200
    )
    timezone: Annotated[str | None, rule(nullable=False, **TIME_ZONE)] = None
    country: Annotated[str | None, rule(nullable=False, pattern=COUNTRY)] = None
    tier: Annotated[PlanTier | None, rule(nullable=False)] = None


class LocationOut(BaseModel):
    id: uuid.UUID
    agency_id: uuid.UUID
    name: str
    timezone: str
    country: str
    tier: PlanTier
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, loc: Location) -> LocationOut:
        return cls(
            id=loc.id,
            agency_id=loc.agency_id,
            name=loc.name,
            timezone=loc.timezone,
            country=loc.country,
            tier=loc.tier,
            created_at=loc.created_at,
            updated_at=loc.updated_at,
        )


# -- users -----------------------------------------------------------------------------------------
class GrantIn(Body):
    location_id: uuid.UUID
    role: LocationRole = LocationRole.USER


class GrantRoleIn(Body):
    role: LocationRole = LocationRole.USER


class UserIn(Body):
    email: Annotated[str, rule(pattern=EMAIL, format="email")] = Field(max_length=320)
    name: Annotated[str, rule(pattern=NAME)] = Field(min_length=1, max_length=200)
    role: AgencyRole = AgencyRole.USER
    password: Annotated[str | None, rule(minLength=MIN_PASSWORD_LENGTH)] = Field(
        None, max_length=256, description="Leave out for users who sign in with Clerk"
    )
    clerk_user_id: str | None = Field(None, max_length=200)
    locations: list[GrantIn] = Field(default_factory=list, max_length=1000)


class UserPatch(Body):
    name: Annotated[str | None, rule(nullable=False, pattern=NAME)] = Field(
        None, min_length=1, max_length=200
    )
    role: Annotated[AgencyRole | None, rule(nullable=False)] = None


class GrantOut(BaseModel):
    location_id: uuid.UUID
    role: LocationRole


class UserOut(BaseModel):
    id: uuid.UUID
    agency_id: uuid.UUID
    email: str
    name: str
    role: AgencyRole
    locations: list[GrantOut]
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            agency_id=user.agency_id,
            email=user.email,
            name=user.name,
            role=user.role,
            locations=[GrantOut(location_id=g.location_id, role=g.role) for g in user.grants],
            created_at=user.created_at,
        )


class SignUpOut(BaseModel):
    agency: AgencyOut
    user: UserOut
    tokens: TokensOut


# -- API keys and audit ----------------------------------------------------------------------------
class ApiKeyIn(Body):
    name: Annotated[str, rule(pattern=NAME)] = Field(min_length=1, max_length=200)
    scopes: Annotated[
        list[str] | None,
        rule(minItems=1, items={"type": "string", "enum": sorted(s.value for s in LOCATION_SCOPES)}),
    ] = Field(None, max_length=100, description="Leave out for every location scope")


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    location_id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            location_id=key.location_id,
            name=key.name,
            prefix=key.prefix,
            scopes=sorted(s.value for s in key.scopes),
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The secret. Shown this once: store it now")


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    actor_type: str
    actor_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: uuid.UUID
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, e: AuditEntry) -> AuditEntryOut:
        return cls(
            id=e.id,
            actor_type=e.actor_type,
            actor_id=e.actor_id,
            action=e.action,
            entity_type=e.entity_type,
            entity_id=e.entity_id,
            before=e.before,
            after=e.after,
            request_id=e.request_id,
            created_at=e.created_at,
        )


class MeOut(BaseModel):
    kind: str
    id: uuid.UUID | None
    agency_id: uuid.UUID | None
    location_id: uuid.UUID | None
    agency_role: str | None
    location_role: str | None
    tier: str
    permissions: list[str]
