"""Repositories of templates and campaigns."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Protocol

from ghl_core.campaigns.models import (
    Campaign,
    EngagementKind,
    MessageTemplate,
    Recipient,
    RecipientStatus,
)
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.shared.pagination import Page, PageRequest


class TemplateRepository(Protocol):
    async def add(self, template: MessageTemplate) -> None: ...

    async def get(self, template_id: uuid.UUID) -> MessageTemplate | None: ...

    async def update(self, template: MessageTemplate) -> None: ...

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[MessageTemplate]: ...


class CampaignRepository(Protocol):
    async def add(self, campaign: Campaign) -> None: ...

    async def get(
        self, campaign_id: uuid.UUID, *, lock: bool = False, share: bool = False
    ) -> Campaign | None:
        """`lock`: held for a change until commit (it does not keep out rows that merely refer to the
        campaign, such as its messages). `share`: held against such a change (a cancel) until commit."""
        ...

    async def gate(self, campaign_id: uuid.UUID, *, exclusive: bool) -> None:
        """Waits for, then holds until commit, the campaign's send gate, before any other lock of the
        campaign's rows. Each batch that writes or claims the campaign's messages holds it shared; a
        change of state (pause, resume, cancel) holds it alone, so it waits for the batches under way,
        and no batch begins until it commits. Waiters are served in order: batches that keep coming
        never starve a cancel."""
        ...

    async def update(self, campaign: Campaign) -> None: ...

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Campaign]:
        """Newest first, without deleted ones."""
        ...

    async def add_recipients(
        self,
        campaign_id: uuid.UUID,
        location_id: uuid.UUID,
        contact_ids: builtins.list[uuid.UUID],
        first_position: int,
    ) -> int:
        """Appends recipients (a contact already in the audience is not added twice); returns how many
        were added."""
        ...

    async def take(
        self, campaign_id: uuid.UUID, limit: int, *, resume: bool = False, after: int = -1
    ) -> builtins.list[Recipient]:
        """The next pending recipients in audience order after position `after`, locked; rows another
        transaction holds are skipped. `resume`: instead those left `sending` (their message exists; a
        run stopped before recording its outcome). `after` keeps a long campaign's scans short: rows
        already handled stay in the index until vacuumed."""
        ...

    async def set_recipients(
        self,
        campaign_id: uuid.UUID,
        updates: builtins.list[tuple[uuid.UUID, RecipientStatus, uuid.UUID | None, str | None]],
    ) -> None:
        """(contact_id, status, message_id, reason) for each."""
        ...

    async def cancel_pending(self, campaign_id: uuid.UUID) -> int: ...

    async def recipient_counts(self, campaign_id: uuid.UUID) -> dict[RecipientStatus, int]: ...

    async def message_counts(self, campaign_id: uuid.UUID) -> dict[MessageStatus, int]: ...

    async def record_engagement(
        self,
        campaign_id: uuid.UUID,
        contact_id: uuid.UUID,
        location_id: uuid.UUID,
        kind: EngagementKind,
        at: datetime,
    ) -> bool:
        """Counted once per recipient and kind (later ones only raise its count); True the first time."""
        ...

    async def engagement_counts(self, campaign_id: uuid.UUID) -> dict[EngagementKind, int]: ...

    async def latest_campaign_message(
        self, conversation_id: uuid.UUID, since: datetime
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(campaign_id, contact_id) of the conversation's newest campaign message sent since then."""
        ...
