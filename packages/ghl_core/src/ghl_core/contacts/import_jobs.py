"""A durable contact import as a job: its kind, and the JSON its job carries.

An import uploaded over the API is recorded and enqueued in one transaction (ContactImportService.start
with a `source`), so a job exists exactly when the import does. The job runs the import as the caller who
uploaded it: the actor is carried whole (its kind, ids, roles and scopes), so the permission checks, the
audit rows' actor and row-level security are what they would have been in the request. The request's id
goes along too, so the rows the job writes point back at the upload, as the API's own writes do."""

from __future__ import annotations

import uuid
from typing import Any

from ghl_core.jobs.ports import JobRequest
from ghl_core.tenancy.models import AgencyRole, LocationRole, PlanTier
from ghl_core.tenancy.permissions import Actor, ActorKind, Permission

IMPORT_KIND = "contacts.import"


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))


def actor_args(actor: Actor) -> dict[str, Any]:
    return {
        "kind": actor.kind.value,
        "id": _text(actor.id),
        "agency_id": _text(actor.agency_id),
        "location_id": _text(actor.location_id),
        "agency_role": _text(actor.agency_role.value if actor.agency_role else None),
        "location_role": _text(actor.location_role.value if actor.location_role else None),
        "scopes": sorted(p.value for p in actor.scopes),
        "tier": actor.tier.value,
        "credential_id": actor.credential_id,
    }


def actor_of(args: dict[str, Any]) -> Actor:
    return Actor(
        ActorKind(args["kind"]),
        _uuid(args.get("id")),
        _uuid(args.get("agency_id")),
        location_id=_uuid(args.get("location_id")),
        agency_role=AgencyRole(args["agency_role"]) if args.get("agency_role") else None,
        location_role=LocationRole(args["location_role"]) if args.get("location_role") else None,
        scopes=frozenset(Permission(p) for p in args.get("scopes", ())),
        tier=PlanTier(args["tier"]) if args.get("tier") else PlanTier.PRO,
        credential_id=str(args.get("credential_id") or ""),
    )


def import_job(actor: Actor, import_id: uuid.UUID, request_id: str | None = None) -> JobRequest:
    """The job that runs a recorded import. Jobs of one import share a lock: one runs at a time."""
    args: dict[str, Any] = {"import_id": str(import_id), "actor": actor_args(actor)}
    if request_id:
        args["request_id"] = request_id
    return JobRequest(IMPORT_KIND, args, actor.location_id, lock=f"contact_import:{import_id}")
