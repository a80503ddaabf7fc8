"""Bodies of the workflow endpoints, for the OpenAPI document.

The handlers take these bodies as plain JSON objects and leave every check to the core
(ghl_core.workflows), which reports each mistake with a pointer into the document. These models only
describe them: a handler's `Body(title=...)` names the model, and ghl_http.openapi puts the model's schema
in the document. The members the core refuses are refused here too (unknown members at the top, the
types of triggers and steps, the bounds of lists); the members of each trigger and step type are in
docs/workflows.md.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from ghl_core.contacts.search import MAX_QUERY
from ghl_core.shared.validation import MAX_NAME_LENGTH
from ghl_core.workflows.definition import (
    MAX_STEPS,
    MAX_TRIGGERS,
    STEP_ID,
    STEP_TYPES,
    TRIGGER_TYPES,
    WEEKDAYS,
    ZONES,
)
from ghl_core.workflows.services import MAX_BULK, MAX_VERSION
from ghl_http.schema_rules import CONTACT_FILTER, INSTANT, NOT_BLANK, TAGS, rule
from ghl_http.schemas import Body

CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class TimeWindow(Body):
    """Week days and local hours; no hours means whole days, and `from` after `to` wraps midnight."""

    days: list[Literal[WEEKDAYS]] | None = Field(None, min_length=1, max_length=7)  # type: ignore[valid-type]
    from_: str | None = Field(None, alias="from", pattern=CLOCK, description="HH:MM")
    to: str | None = Field(None, pattern=CLOCK, description="HH:MM")


class WorkflowSettings(Body):
    allow_reentry: bool = False
    stop_on_reply: bool = False
    time_zone: Literal[ZONES] = Field("contact", description="Whose local time waits use")  # type: ignore[valid-type]
    send_window: TimeWindow | None = Field(None, description="Sends wait for this window")


class WorkflowTrigger(Body):
    """What enrolls a contact: `type`, its own members (docs/workflows.md) and `filters`."""

    model_config = ConfigDict(extra="allow")

    type: Literal[tuple(TRIGGER_TYPES)]  # type: ignore[valid-type]
    filters: dict[str, Any] | None = Field(None, description="A condition group the contact must meet")


class WorkflowStep(Body):
    """One step: `id`, `type`, its own members (docs/workflows.md) and `next` (a step id or `end`)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=STEP_ID.pattern)
    type: Literal[tuple(STEP_TYPES)]  # type: ignore[valid-type]
    next: str | None = Field(None, description="The step after this one (default the following step)")


class WorkflowDocument(Body):
    """A workflow definition: what GET /workflows/{id}/export answers, and POST or PUT take."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    settings: WorkflowSettings | None = None
    triggers: list[WorkflowTrigger] = Field(
        min_length=1,
        max_length=MAX_TRIGGERS,
        description="A workflow enrolled only by hand: [{type: manual}]",
    )
    steps: list[WorkflowStep] = Field(min_length=1, max_length=MAX_STEPS)


_AUDIENCE = ("tags", "smart_list_id", "query", "filter")


class EnrollIn(Body):
    """`contact_ids`, or an audience (`tags`, `smart_list_id`, `query`, `filter`), not both."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "oneOf": [
                        {
                            "required": ["contact_ids"],
                            "not": {"anyOf": [{"required": [k]} for k in _AUDIENCE]},
                        },
                        {
                            "anyOf": [{"required": [k]} for k in _AUDIENCE],
                            "not": {"required": ["contact_ids"]},
                        },
                    ]
                }
            ]
        }
    )

    contact_ids: Annotated[list[uuid.UUID] | None, rule(nullable=False)] = Field(
        None, min_length=1, max_length=MAX_BULK
    )
    tags: Annotated[list[str] | None, rule(nullable=False, minItems=1, **TAGS.keywords)] = None
    smart_list_id: Annotated[uuid.UUID | None, rule(nullable=False)] = None
    query: Annotated[str | None, rule(nullable=False, pattern=NOT_BLANK, maxLength=MAX_QUERY)] = None
    filter: Annotated[dict[str, Any] | None, rule(nullable=False, **CONTACT_FILTER)] = Field(
        None, description="A condition group, as in a contact search"
    )


class SimulatedEventIn(Body):
    at: Annotated[datetime, rule(**INSTANT)] = Field(description="ISO 8601 with an offset")
    event: str = Field(description="contact.replied, tag.added or opportunity.stage_reached")
    data: dict[str, Any] | None = Field(None, description="{channel}, {tag} or {stage_id}")


class SimulateIn(Body):
    contact_id: uuid.UUID
    start: Annotated[datetime | None, rule(**INSTANT)] = Field(
        None, description="ISO 8601 with an offset; default now"
    )
    events: list[SimulatedEventIn] | None = Field(None, max_length=100)
    version: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="A published version; default the draft"
    )
