"""Domain objects as plain dicts: the JSON documents the CLI prints and the rows of its tables.
Field names match the HTTP API's so scripts can use either."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ghl_core.identity.models import ApiKey
from ghl_core.tenancy.models import Agency, Location, User


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def agency_view(agency: Agency) -> dict[str, Any]:
    return {"id": str(agency.id), "name": agency.name, "created_at": _time(agency.created_at)}


def location_view(location: Location) -> dict[str, Any]:
    return {
        "id": str(location.id),
        "agency_id": str(location.agency_id),
        "name": location.name,
        "timezone": location.timezone,
        "country": location.country,
        "tier": location.tier.value,
        "created_at": _time(location.created_at),
    }


def user_view(user: User) -> dict[str, Any]:
    # Never the password hash.
    return {
        "id": str(user.id),
        "agency_id": str(user.agency_id),
        "email": user.email,
        "name": user.name,
        "role": user.role.value,
        "clerk_user_id": user.clerk_user_id,
        "grants": {str(g.location_id): g.role.value for g in user.grants},
        "created_at": _time(user.created_at),
    }


def api_key_view(key: ApiKey) -> dict[str, Any]:
    # Never the hash; the secret itself is added once, by `apikeys create`.
    return {
        "id": str(key.id),
        "location_id": str(key.location_id),
        "name": key.name,
        "prefix": key.prefix,
        "scopes": sorted(s.value for s in key.scopes),
        "created_at": _time(key.created_at),
        "last_used_at": _time(key.last_used_at),
        "revoked_at": _time(key.revoked_at),
    }
