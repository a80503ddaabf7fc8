"""Validation of task input and of the task list's filter: every bad field reported with its pointer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ghl_core.notes.fields import check_long_text
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.instants import OUTSIDE_CALENDAR, in_utc
from ghl_core.tasks.models import MAX_TASK_BODY, MAX_TASK_TITLE, TaskFilter

TASK_FIELDS = frozenset({"title", "body", "due_at", "assignee_id", "completed"})
_AWARE_EXAMPLE = "e.g. 2026-03-01T09:00:00-05:00 or 2026-03-01T14:00:00Z"


def parse_aware_time(value: object, pointer: str, errors: list[FieldError]) -> datetime | None:
    """An ISO 8601 instant with its offset, in UTC. A naive time is refused: whose 9 o'clock it meant
    cannot be guessed, and a wrong guess moves a due time by hours."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            errors.append(FieldError(pointer, f"must be an ISO 8601 date and time, {_AWARE_EXAMPLE}"))
            return None
    else:
        errors.append(FieldError(pointer, f"must be an ISO 8601 date and time string, {_AWARE_EXAMPLE}"))
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        errors.append(
            FieldError(
                pointer, f"has no time zone offset: give one so the instant is exact, {_AWARE_EXAMPLE}"
            )
        )
        return None
    utc = in_utc(parsed)
    if utc is None:
        errors.append(FieldError(pointer, OUTSIDE_CALENDAR))
    return utc


def _title(value: object, pointer: str, errors: list[FieldError]) -> str | None:
    if not isinstance(value, str):
        errors.append(FieldError(pointer, "must be a string"))
        return None
    cleaned = " ".join(value.split())
    if not cleaned:
        errors.append(FieldError(pointer, "must not be blank"))
    elif len(cleaned) > MAX_TASK_TITLE or not cleaned.isprintable():
        errors.append(FieldError(pointer, f"must be printable and at most {MAX_TASK_TITLE} characters"))
    else:
        return cleaned
    return None


def _uuid(value: object, pointer: str, errors: list[FieldError]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        errors.append(FieldError(pointer, "must be a UUID"))
        return None


def clean_task_fields(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """A partial set of fields; None clears body, due_at and assignee_id."""
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for key, value in data.items():
        pointer = f"/{key}"
        if key not in TASK_FIELDS:
            errors.append(FieldError(pointer, "is not a task field"))
        elif key == "title":
            out[key] = _title(value, pointer, errors)
        elif key == "completed":
            if not isinstance(value, bool):
                errors.append(FieldError(pointer, "must be true or false"))
            out[key] = bool(value)
        elif value is None:
            out[key] = None
        elif key == "body":
            out[key] = check_long_text(value, pointer, errors, MAX_TASK_BODY)
        elif key == "due_at":
            out[key] = parse_aware_time(value, pointer, errors)
        else:
            out[key] = _uuid(value, pointer, errors)
    if creating and "title" not in data:
        errors.append(FieldError("/title", "is required"))
    if errors:
        raise ValidationFailed(errors)
    return out


def parse_task_filter(
    assignee_id: str | None = None,
    completed: str | None = None,
    due_before: str | None = None,
    due_after: str | None = None,
) -> TaskFilter:
    """The query string of the location-wide list, each bad parameter reported with its pointer."""
    errors: list[FieldError] = []
    done: bool | None = None
    if completed is not None:
        if completed.lower() not in ("true", "false"):
            errors.append(FieldError("/completed", "must be true or false"))
        done = completed.lower() == "true"
    assignee = _uuid(assignee_id, "/assignee_id", errors) if assignee_id else None
    before = parse_aware_time(due_before, "/due_before", errors) if due_before else None
    after = parse_aware_time(due_after, "/due_after", errors) if due_after else None
    if before and after and after >= before:
        errors.append(FieldError("/due_before", "must be later than due_after"))
    if errors:
        raise ValidationFailed(errors)
    return TaskFilter(assignee_id=assignee, completed=done, due_before=before, due_after=after)
