"""Credentials: API keys, refresh tokens and the claims of an access token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ghl_core.tenancy.models import AgencyRole, LocationRole, PlanTier
from ghl_core.tenancy.permissions import Permission

API_KEY_PREFIX = "ghl_"  # every key starts so; a bearer that doesn't is a JWT


@dataclass(slots=True)
class ApiKey:
    id: uuid.UUID
    location_id: uuid.UUID
    agency_id: uuid.UUID
    name: str
    prefix: str  # the first characters, shown in lists so people can tell keys apart
    key_hash: str
    scopes: frozenset[Permission]
    created_at: datetime
    created_by: uuid.UUID | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "location_id": str(self.location_id),
            "name": self.name,
            "prefix": self.prefix,
            "scopes": sorted(s.value for s in self.scopes),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, slots=True)
class ApiKeyCredential:
    """What authentication needs to know about a key, found by its hash before any tenant is known."""

    id: uuid.UUID
    location_id: uuid.UUID
    agency_id: uuid.UUID
    scopes: frozenset[Permission]
    tier: PlanTier
    revoked: bool


@dataclass(frozen=True, slots=True)
class UserCredential:
    id: uuid.UUID
    agency_id: uuid.UUID
    role: AgencyRole
    password_hash: str | None
    disabled: bool
    token_version: int


@dataclass(slots=True)
class RefreshToken:
    id: uuid.UUID
    user_id: uuid.UUID
    agency_id: uuid.UUID
    family_id: uuid.UUID
    token_hash: str
    expires_at: datetime
    created_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The claims of one of our access tokens. `location_id` set means a location token."""

    user_id: uuid.UUID
    agency_id: uuid.UUID
    agency_role: AgencyRole
    location_id: uuid.UUID | None = None
    location_role: LocationRole | None = None
    # The plan when the token was issued, for the client's information: authentication takes the tier
    # from the location's current row, so a downgrade applies at once.
    tier: PlanTier | None = None
    token_id: str = ""
    # The user's token version when issued: a token naming an older one is refused.
    token_version: int = 0


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    """A user verified by an external identity provider (Clerk): its subject and optional location claim."""

    provider: str
    subject: str
    location_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret
