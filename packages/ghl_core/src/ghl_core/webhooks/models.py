"""Subscriptions, deliveries (one per subscription and event) and their attempts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its first attempt or a retry
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # retries used up, a refusal (4xx, 410) or the subscription was off


@dataclass(slots=True)
class Subscription:
    id: uuid.UUID
    location_id: uuid.UUID
    url: str
    event_types: list[str]
    secret_ciphertext: bytes  # the signing secret, sealed by the SecretBox; shown in clear once
    created_at: datetime
    updated_at: datetime
    active: bool = True
    description: str | None = None
    disabled_reason: str | None = None  # set when the platform turned it off (410, repeated failures)
    disabled_at: datetime | None = None
    consecutive_failures: int = 0  # failed deliveries in a row; a delivery resets it
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None

    @property
    def live(self) -> bool:
        return self.deleted_at is None

    @property
    def sending(self) -> bool:
        return self.live and self.active

    def takes(self, event_type: str) -> bool:
        return event_type in self.event_types

    def snapshot(self) -> dict[str, Any]:
        """For the audit trail: never the secret."""
        return {
            "id": str(self.id),
            "url": self.url,
            "description": self.description,
            "event_types": list(self.event_types),
            "active": self.active,
            "disabled_reason": self.disabled_reason,
            "consecutive_failures": self.consecutive_failures,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }


@dataclass(slots=True)
class Delivery:
    """One event for one subscription. Its id is not the webhook-id: that is the event's id, the same on
    every attempt and every redelivery, so receivers can drop duplicates."""

    id: uuid.UUID
    location_id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str  # the public type, as sent
    entity_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    id: uuid.UUID
    location_id: uuid.UUID
    delivery_id: uuid.UUID
    number: int  # 1-based, across retries and redeliveries
    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None  # a network error or a refusal before sending
    response_excerpt: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryDetail:
    delivery: Delivery
    attempts: list[Attempt] = field(default_factory=list)
