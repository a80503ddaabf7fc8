"""Bodies of the inbound webhook endpoints (/api/v1/inbound-webhooks) and of the receiving URL."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from ghl_core.inbound.models import EventStatus, InboundEndpoint, InboundEvent, InboundReceipt
from ghl_http.schema_rules import TAG, rule
from ghl_http.schemas import Body

RECEIVE_PATH = "/webhooks/inbound"


def receive_url(base_url: str, endpoint_id: uuid.UUID) -> str:
    return f"{base_url}{RECEIVE_PATH}/{endpoint_id}"


_NAME = rule(nullable=False, pattern=TAG)  # 1 to 200 printable characters


class InboundEndpointIn(Body):
    name: Annotated[str, _NAME] = Field(max_length=200, description="A label to tell endpoints apart")
    enabled: bool = Field(True, description="A disabled endpoint answers 404 and stores nothing")


class InboundEndpointPatch(Body):
    name: Annotated[str | None, _NAME] = Field(None, max_length=200)
    enabled: Annotated[bool | None, rule(nullable=False)] = Field(None)


class InboundEndpointOut(BaseModel):
    id: uuid.UUID
    name: str
    url: str = Field(description="Where senders POST, signed per the Standard Webhooks spec")
    enabled: bool
    secret_hint: str = Field(description="The signing secret's first characters")
    secret_rotated_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: InboundEndpoint, base_url: str) -> InboundEndpointOut:
        return cls(
            id=endpoint.id,
            name=endpoint.name,
            url=receive_url(base_url, endpoint.id),
            enabled=endpoint.enabled,
            secret_hint=endpoint.secret_hint,
            secret_rotated_at=endpoint.secret_rotated_at,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


class InboundEndpointWithSecretOut(InboundEndpointOut):
    secret: str = Field(description="The Standard Webhooks signing secret (whsec_...), shown this once")

    @classmethod
    def with_secret(
        cls, endpoint: InboundEndpoint, base_url: str, secret: str
    ) -> InboundEndpointWithSecretOut:
        return cls(**InboundEndpointOut.of(endpoint, base_url).model_dump(), secret=secret)


class InboundEventOut(BaseModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID | None
    provider: str
    provider_event_id: str = Field(description="The sender's id of the event (webhook-id)")
    type: str | None
    status: EventStatus = Field(description="received, processed, ignored or failed")
    attempts: int = Field(description="Processing runs so far")
    last_error: str | None
    content_type: str | None
    size: int = Field(description="The body's size in bytes")
    received_at: datetime
    processed_at: datetime | None

    @classmethod
    def of(cls, event: InboundEvent) -> InboundEventOut:
        return cls(
            id=event.id,
            endpoint_id=event.endpoint_id,
            provider=event.provider,
            provider_event_id=event.provider_event_id,
            type=event.type,
            status=event.status,
            attempts=event.attempts,
            last_error=event.last_error,
            content_type=event.content_type,
            size=event.size,
            received_at=event.received_at,
            processed_at=event.processed_at,
        )


class InboundEventDetailOut(InboundEventOut):
    headers: dict[str, str] = Field(description="The request's headers, credentials left out")
    body: str = Field(description="The raw body as text (invalid UTF-8 replaced)")
    json_body: Any = Field(None, description="The body parsed as JSON; null when it is not JSON")

    @classmethod
    def detail(cls, event: InboundEvent) -> InboundEventDetailOut:
        return cls(
            **InboundEventOut.of(event).model_dump(),
            headers=event.headers,
            body=event.text_body(),
            json_body=event.json_body(),
        )


class ReceiptOut(BaseModel):
    id: uuid.UUID | None = Field(description="The stored event's id")
    duplicate: bool = Field(description="True when this event id had been received before: nothing new")

    @classmethod
    def of(cls, receipt: InboundReceipt) -> ReceiptOut:
        return cls(id=receipt.event_id, duplicate=receipt.duplicate)
