"""The tenant scope a unit of work runs in; the database enforces it again with row-level security."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class ScopeKind(StrEnum):
    ANONYMOUS = "anonymous"  # before authentication: sees no tenant row at all
    AGENCY = "agency"  # an agency-level user: its agency's rows
    LOCATION = "location"  # a location credential: that location's rows only
    OPERATOR = "operator"  # the `ghl` command line run by whoever operates the installation


@dataclass(frozen=True, slots=True)
class TenantScope:
    kind: ScopeKind
    agency_id: uuid.UUID | None = None
    location_id: uuid.UUID | None = None

    @classmethod
    def anonymous(cls) -> TenantScope:
        return cls(ScopeKind.ANONYMOUS)

    @classmethod
    def operator(cls) -> TenantScope:
        return cls(ScopeKind.OPERATOR)

    @classmethod
    def agency(cls, agency_id: uuid.UUID) -> TenantScope:
        return cls(ScopeKind.AGENCY, agency_id=agency_id)

    @classmethod
    def location(cls, location_id: uuid.UUID) -> TenantScope:
        return cls(ScopeKind.LOCATION, location_id=location_id)
