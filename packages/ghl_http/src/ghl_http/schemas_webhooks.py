"""Bodies of the outbound webhook endpoints. Loosely typed where the core checks and points at each
mistake itself (the URL's address, unknown event types)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from ghl_core.webhooks.addresses import MAX_URL_LENGTH
from ghl_core.webhooks.event_types import EVENT_TYPES
from ghl_core.webhooks.models import Attempt, Delivery, DeliveryDetail, DeliveryStatus, Subscription
from ghl_core.webhooks.services import MAX_DESCRIPTION
from ghl_http.schema_rules import rule
from ghl_http.schemas import Body

URL_HELP = "Where to POST events: https (http only where the operator allows private receivers)"
TYPES_HELP = "Event types to receive, e.g. ContactCreate (see GET /api/v1/webhooks/event-types)"


# The address is checked when saved (scheme, and where its host resolves): the schema says its shape.
_URL = rule(nullable=False, format="uri", pattern="^[Hh][Tt][Tt][Pp][Ss]?://", maxLength=MAX_URL_LENGTH)
_TYPES = rule(nullable=False, minItems=1, items={"type": "string", "enum": sorted(EVENT_TYPES)})
_DESCRIPTION = rule(maxLength=MAX_DESCRIPTION)


class WebhookIn(Body):
    url: Annotated[str, _URL] = Field(description=URL_HELP)
    event_types: Annotated[list[str], _TYPES] = Field(description=TYPES_HELP)
    active: bool = True
    description: Annotated[str | None, _DESCRIPTION] = Field(
        None, description="A note to tell subscriptions apart"
    )


class WebhookPatch(Body):
    url: Annotated[str | None, _URL] = Field(None, description=URL_HELP)
    event_types: Annotated[list[str] | None, _TYPES] = Field(None, description=TYPES_HELP)
    active: Annotated[bool | None, rule(nullable=False)] = Field(
        None, description="false pauses deliveries; true turns a disabled subscription on again"
    )
    description: Annotated[str | None, _DESCRIPTION] = Field(None)


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    active: bool
    disabled_reason: str | None = Field(description="Why the platform turned it off (410, repeated failures)")
    disabled_at: datetime | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Subscription) -> WebhookOut:
        return cls(
            id=s.id,
            url=s.url,
            description=s.description,
            event_types=list(s.event_types),
            active=s.active,
            disabled_reason=s.disabled_reason,
            disabled_at=s.disabled_at,
            consecutive_failures=s.consecutive_failures,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


class WebhookSecretOut(WebhookOut):
    secret: str = Field(
        description="The signing secret (whsec_...), shown this once: verify each delivery with it"
    )

    @classmethod
    def with_secret(cls, s: Subscription, secret: str) -> WebhookSecretOut:
        return cls(**WebhookOut.of(s).model_dump(), secret=secret)


class EventTypeOut(BaseModel):
    name: str
    description: str


class EventTypesOut(BaseModel):
    items: list[EventTypeOut]


class AttemptOut(BaseModel):
    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None = Field(description="The first kilobyte of the receiver's answer")

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls(
            number=a.number,
            started_at=a.started_at,
            duration_ms=a.duration_ms,
            status_code=a.status_code,
            error=a.error,
            response_excerpt=a.response_excerpt,
        )


class DeliveryOut(BaseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID = Field(description="Also the webhook-id header: the same on every attempt")
    event_type: str
    entity_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            subscription_id=d.subscription_id,
            event_id=d.event_id,
            event_type=d.event_type,
            entity_id=d.entity_id,
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


class DeliveryDetailOut(DeliveryOut):
    attempt_log: list[AttemptOut]

    @classmethod
    def detail(cls, found: DeliveryDetail) -> DeliveryDetailOut:
        return cls(
            **DeliveryOut.of(found.delivery).model_dump(),
            attempt_log=[AttemptOut.of(a) for a in found.attempts],
        )
