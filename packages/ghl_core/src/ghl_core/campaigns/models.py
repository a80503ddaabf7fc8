"""Message templates, campaigns, their recipients and engagement."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ghl_core.conversations.models import Channel
from ghl_core.conversations.models import EngagementKind as EngagementKind  # recorded by conversations
from ghl_core.shared.errors import Conflict


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


FINISHED = frozenset({CampaignStatus.COMPLETED, CampaignStatus.CANCELLED})
EDITABLE = frozenset({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED})


class RecipientStatus(StrEnum):
    PENDING = "pending"  # frozen into the audience, no message yet
    SENDING = "sending"  # its message exists; delivery may be under way
    DONE = "done"  # its message left the queue (sent, delivered, failed, or scheduled for later)
    SKIPPED = "skipped"  # opted out or no address when its turn came
    CANCELLED = "cancelled"  # the campaign was cancelled first


class CampaignStateError(Conflict):
    code = "campaign_state"
    title = "Not possible in the campaign's current state"


@dataclass(slots=True)
class MessageTemplate:
    id: uuid.UUID
    location_id: uuid.UUID
    name: str
    channel: Channel
    created_at: datetime
    updated_at: datetime
    body: str = ""
    subject: str | None = None
    html: str | None = None
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None


@dataclass(slots=True)
class Campaign:
    id: uuid.UUID
    location_id: uuid.UUID
    name: str
    channel: Channel
    status: CampaignStatus
    created_at: datetime
    updated_at: datetime
    audience: dict[str, Any] = field(default_factory=dict)  # query, filter, tags, smart_list_id
    template_id: uuid.UUID | None = None
    subject: str | None = None
    body: str = ""
    html: str | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    recipients: int = 0
    # Why the campaign waits or went back to draft (a plan limit), for the people running it.
    note: str | None = None
    deleted_at: datetime | None = None
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    campaign_id: uuid.UUID
    contact_id: uuid.UUID
    position: int
    status: RecipientStatus
    message_id: uuid.UUID | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignStats:
    recipients: int
    pending: int
    skipped: int
    sent: int
    delivered: int
    failed: int
    opened: int
    clicked: int
    replied: int
    unsubscribed: int
    bounced: int
