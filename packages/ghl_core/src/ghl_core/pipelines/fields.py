"""Validation of pipeline and opportunity input: one pass, every bad field reported with its pointer."""

from __future__ import annotations

import re
import uuid
from typing import Any

from ghl_core.contacts.fields import normalize_tag
from ghl_core.pipelines.models import BoardFilter, OpportunityStatus
from ghl_core.pipelines.money import clean_money
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.validation import MAX_TEXT_LENGTH, check_name, clean_text

MAX_STAGES = 50
MAX_CUSTOM_FIELDS = 100
MAX_CUSTOM_TEXT = 5000
_CUSTOM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

OPPORTUNITY_FIELDS = frozenset(
    {
        "pipeline_id",
        "stage_id",
        "contact_id",
        "name",
        "value",
        "status",
        "lost_reason",
        "assigned_user_id",
        "source",
        "custom_fields",
    }
)
# What a move may change; a PATCH may change these too, and is then recorded as a move.
MOVE_FIELDS = frozenset({"stage_id", "status", "lost_reason"})


def raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors)


def clean_uuid(
    value: Any, pointer: str, errors: list[FieldError], *, nullable: bool = False
) -> uuid.UUID | None:
    if value is None:
        if not nullable:
            errors.append(FieldError(pointer, "is required"))
        return None
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        errors.append(FieldError(pointer, "must be a UUID"))
        return None


def clean_name(value: Any, pointer: str, errors: list[FieldError]) -> str:
    if not isinstance(value, str):
        errors.append(FieldError(pointer, "must be a string"))
        return ""
    return check_name(value, pointer, errors)


def clean_status(value: Any, pointer: str, errors: list[FieldError]) -> OpportunityStatus | None:
    try:
        return OpportunityStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in OpportunityStatus)
        errors.append(FieldError(pointer, f"must be one of: {allowed}"))
        return None


def _custom_value(value: Any, pointer: str, errors: list[FieldError]) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_CUSTOM_TEXT:
            errors.append(FieldError(pointer, f"must be at most {MAX_CUSTOM_TEXT} characters"))
        return value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        # Whole or not, a float in JSON round-trips; money belongs in `value`, not here.
        return value
    if isinstance(value, list) and all(isinstance(v, str) and len(v) <= MAX_TEXT_LENGTH for v in value):
        return value
    errors.append(FieldError(pointer, "must be a string, number, boolean, list of strings or null"))
    return None


def clean_custom_fields(value: Any, pointer: str, errors: list[FieldError]) -> dict[str, Any]:
    """Opportunity custom fields are free-form values keyed like contact custom fields; null clears one."""
    if not isinstance(value, dict):
        errors.append(FieldError(pointer, "must be an object of values keyed by field key"))
        return {}
    if len(value) > MAX_CUSTOM_FIELDS:
        errors.append(FieldError(pointer, f"at most {MAX_CUSTOM_FIELDS} custom fields"))
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _CUSTOM_KEY.match(key):
            errors.append(
                FieldError(f"{pointer}/{key}", "keys are lower-case letters, digits and _ (max 64)")
            )
            continue
        out[key] = _custom_value(item, f"{pointer}/{key}", errors)
    return out


def clean_opportunity_fields(
    data: dict[str, Any], *, allowed: frozenset[str] = OPPORTUNITY_FIELDS
) -> dict[str, Any]:
    """Validates and normalises the given fields (a partial set); None clears an optional field."""
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for key, value in data.items():
        pointer = f"/{key}"
        if key not in allowed:
            errors.append(FieldError(pointer, "is not a field that can be set here"))
        elif key in ("pipeline_id", "stage_id", "contact_id"):
            out[key] = clean_uuid(value, pointer, errors)
        elif key == "assigned_user_id":
            out[key] = clean_uuid(value, pointer, errors, nullable=True)
        elif key == "name":
            out[key] = clean_name(value, pointer, errors)
        elif key == "value":
            out[key] = clean_money(value, pointer, errors)
        elif key == "status":
            out[key] = clean_status(value, pointer, errors)
        elif key in ("lost_reason", "source"):
            out[key] = clean_text(value, pointer, errors)
        elif key == "custom_fields":
            out[key] = clean_custom_fields(value, pointer, errors)
    raise_if(errors)
    return out


def clean_stage_names(values: Any, pointer: str, errors: list[FieldError]) -> list[str]:
    """A new pipeline's stages: `[{"name": "New"}, ...]`, at least one, names unique ignoring case."""
    if not isinstance(values, list) or not values:
        errors.append(FieldError(pointer, "must be a non-empty list of stages"))
        return []
    if len(values) > MAX_STAGES:
        errors.append(FieldError(pointer, f"at most {MAX_STAGES} stages"))
        return []
    names: list[str] = []
    for i, item in enumerate(values):
        if not isinstance(item, dict) or set(item) != {"name"}:
            errors.append(FieldError(f"{pointer}/{i}", 'must be an object like {"name": "Qualified"}'))
            continue
        name = clean_name(item["name"], f"{pointer}/{i}/name", errors)
        if name and name.casefold() in {n.casefold() for n in names}:
            errors.append(FieldError(f"{pointer}/{i}/name", "another stage of this pipeline has this name"))
        names.append(name)
    return names


def parse_filters(
    *,
    assigned_user_id: str | None = None,
    status: str | None = None,
    contact_tag: str | None = None,
    pipeline_id: str | None = None,
    stage_id: str | None = None,
    contact_id: str | None = None,
) -> dict[str, Any]:
    """Query parameters of the list and board endpoints, each bad one reported with its name."""
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for name, raw in (
        ("assigned_user_id", assigned_user_id),
        ("pipeline_id", pipeline_id),
        ("stage_id", stage_id),
        ("contact_id", contact_id),
    ):
        if raw is not None:
            out[name] = clean_uuid(raw, f"/{name}", errors)
    if status is not None:
        out["status"] = clean_status(status, "/status", errors)
    if contact_tag is not None:
        tag = normalize_tag(contact_tag)
        if not tag:
            errors.append(FieldError("/contact_tag", "must be a non-blank tag name"))
        out["contact_tag"] = tag
    raise_if(errors)
    return out


def board_filter(assigned_user_id: str | None, status: str | None, contact_tag: str | None) -> BoardFilter:
    return BoardFilter(
        **parse_filters(assigned_user_id=assigned_user_id, status=status, contact_tag=contact_tag)
    )
