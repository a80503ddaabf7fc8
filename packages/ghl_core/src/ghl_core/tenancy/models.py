"""Agencies own locations (sub-accounts); users belong to an agency and are granted locations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class PlanTier(StrEnum):
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class AgencyRole(StrEnum):
    OWNER = "agency_owner"
    ADMIN = "agency_admin"
    USER = "agency_user"


class LocationRole(StrEnum):
    ADMIN = "admin"
    USER = "user"


@dataclass(slots=True)
class Agency:
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    def snapshot(self) -> dict[str, Any]:
        return {"id": str(self.id), "name": self.name}


@dataclass(slots=True)
class Location:
    id: uuid.UUID
    agency_id: uuid.UUID
    name: str
    timezone: str
    country: str
    tier: PlanTier
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "agency_id": str(self.agency_id),
            "name": self.name,
            "timezone": self.timezone,
            "country": self.country,
            "tier": self.tier.value,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }


@dataclass(frozen=True, slots=True)
class LocationGrant:
    location_id: uuid.UUID
    role: LocationRole


@dataclass(slots=True)
class User:
    id: uuid.UUID
    agency_id: uuid.UUID
    email: str
    name: str
    role: AgencyRole
    created_at: datetime
    updated_at: datetime
    password_hash: str | None = None
    clerk_user_id: str | None = None
    deleted_at: datetime | None = None
    grants: list[LocationGrant] = field(default_factory=list)
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None
    # Named by every access token issued to the user; bumped (by the repository, atomically) when their
    # access shrinks or changes, which ends those tokens. Not part of the audit snapshot.
    token_version: int = 0

    def access(self) -> tuple[AgencyRole, frozenset[tuple[uuid.UUID, LocationRole]]]:
        """What a token issued to this user may carry: their role and location grants."""
        return self.role, frozenset((g.location_id, g.role) for g in self.grants)

    def grant_for(self, location_id: uuid.UUID) -> LocationGrant | None:
        return next((g for g in self.grants if g.location_id == location_id), None)

    def snapshot(self) -> dict[str, Any]:
        # Password hashes never enter the audit trail.
        return {
            "id": str(self.id),
            "agency_id": str(self.agency_id),
            "email": self.email,
            "name": self.name,
            "role": self.role.value,
            "clerk_user_id": self.clerk_user_id,
            "grants": {str(g.location_id): g.role.value for g in self.grants},
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }
