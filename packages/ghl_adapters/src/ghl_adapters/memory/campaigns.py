"""The in-memory repositories of message templates and campaigns (with their audience and engagement).

Decisions:
- A recipient is keyed by (campaign, contact), as the SQL primary key: `add_recipients` skips a contact
  already in the audience and answers how many it added.
- `take` answers the next recipients in audience order after `after`. The SQL adapter skips rows another
  open transaction holds (SKIP LOCKED); a memory unit of work holds no lock, so nothing is skipped: run
  the batches of one campaign one after the other (the inline job queue does).
- `gate` waits for nothing, for the same reason; `get(lock=..., share=...)` reads as a plain `get`.
- `set_recipients` leaves a cancelled recipient cancelled (a batch finishing after the cancel does not
  revive it), and keeps a recipient's message id when the update carries none.
- Engagement is counted once per (campaign, contact, kind): `record_engagement` is True the first time,
  later ones only raise the count.
- Message counts and the latest campaign message read the messages table of `conversations.py`.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from ghl_core.campaigns.models import (
    Campaign,
    EngagementKind,
    MessageTemplate,
    Recipient,
    RecipientStatus,
)
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import Direction
from ghl_core.shared.pagination import Page, PageRequest

from .conversations import MESSAGES
from .rows import check_write, clone, count_by, keyset_page
from .store import MemoryRepository, Table


@dataclass(frozen=True, slots=True)
class RecipientRow:
    recipient: Recipient
    location_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class EngagementRow:
    location_id: uuid.UUID
    first_at: datetime
    count: int


TEMPLATES: Table[uuid.UUID, MessageTemplate] = Table("message_templates")
CAMPAIGNS: Table[uuid.UUID, Campaign] = Table("campaigns")
RECIPIENTS: Table[tuple[uuid.UUID, uuid.UUID], RecipientRow] = Table("campaign_recipients")
ENGAGEMENTS: Table[tuple[uuid.UUID, uuid.UUID, EngagementKind], EngagementRow] = Table("campaign_events")


class MemoryTemplateRepository(MemoryRepository):
    @property
    def _rows(self) -> dict[uuid.UUID, MessageTemplate]:
        return self.rows(TEMPLATES)

    async def add(self, template: MessageTemplate) -> None:
        check_write(self.scope, template.location_id, "message_templates")
        if template.id in self._rows:
            raise KeyError(f"template {template.id} exists")
        self._rows[template.id] = clone(template)

    async def get(self, template_id: uuid.UUID) -> MessageTemplate | None:
        found = self._rows.get(template_id)
        return clone(found) if found is not None and self.sees_location(found.location_id) else None

    async def update(self, template: MessageTemplate) -> None:
        stored = self._rows.get(template.id)
        if stored is None or not self.sees_location(stored.location_id):
            return
        # Every column but the id and the channel is written.
        self._rows[template.id] = replace(clone(template), channel=stored.channel)

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[MessageTemplate]:
        rows = [
            t
            for t in self._rows.values()
            if t.location_id == location_id and t.deleted_at is None and self.sees_location(t.location_id)
        ]
        return keyset_page(rows, page, lambda t: t.created_at, descending=False)


class MemoryCampaignRepository(MemoryRepository):
    @property
    def _rows(self) -> dict[uuid.UUID, Campaign]:
        return self.rows(CAMPAIGNS)

    @property
    def _recipients(self) -> dict[tuple[uuid.UUID, uuid.UUID], RecipientRow]:
        return self.rows(RECIPIENTS)

    def _audience(self, campaign_id: uuid.UUID) -> builtins.list[RecipientRow]:
        return [
            r
            for r in self._recipients.values()
            if r.recipient.campaign_id == campaign_id and self.sees_location(r.location_id)
        ]

    async def add(self, campaign: Campaign) -> None:
        check_write(self.scope, campaign.location_id, "campaigns")
        if campaign.id in self._rows:
            raise KeyError(f"campaign {campaign.id} exists")
        self._rows[campaign.id] = clone(campaign)

    async def get(
        self, campaign_id: uuid.UUID, *, lock: bool = False, share: bool = False
    ) -> Campaign | None:
        found = self._rows.get(campaign_id)
        return clone(found) if found is not None and self.sees_location(found.location_id) else None

    async def gate(self, campaign_id: uuid.UUID, *, exclusive: bool) -> None:
        return None  # no concurrent transaction to wait for (see the module's docstring)

    async def update(self, campaign: Campaign) -> None:
        stored = self._rows.get(campaign.id)
        if stored is None or not self.sees_location(stored.location_id):
            return
        self._rows[campaign.id] = replace(clone(campaign), channel=stored.channel)

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Campaign]:
        rows = [
            c
            for c in self._rows.values()
            if c.location_id == location_id and c.deleted_at is None and self.sees_location(c.location_id)
        ]
        return keyset_page(rows, page, lambda c: c.created_at, descending=True)

    async def add_recipients(
        self,
        campaign_id: uuid.UUID,
        location_id: uuid.UUID,
        contact_ids: builtins.list[uuid.UUID],
        first_position: int,
    ) -> int:
        if not contact_ids:
            return 0
        check_write(self.scope, location_id, "campaign_recipients")
        added = 0
        for n, contact_id in enumerate(contact_ids):
            key = (campaign_id, contact_id)
            if key in self._recipients:
                continue
            recipient = Recipient(
                campaign_id=campaign_id,
                contact_id=contact_id,
                position=first_position + n,
                status=RecipientStatus.PENDING,
            )
            self._recipients[key] = RecipientRow(recipient=recipient, location_id=location_id)
            added += 1
        return added

    async def take(
        self, campaign_id: uuid.UUID, limit: int, *, resume: bool = False, after: int = -1
    ) -> builtins.list[Recipient]:
        wanted = RecipientStatus.SENDING if resume else RecipientStatus.PENDING
        rows = [
            r.recipient
            for r in self._audience(campaign_id)
            if r.recipient.status is wanted and r.recipient.position > after
        ]
        return sorted(rows, key=lambda r: r.position)[:limit]

    async def set_recipients(
        self,
        campaign_id: uuid.UUID,
        updates: builtins.list[tuple[uuid.UUID, RecipientStatus, uuid.UUID | None, str | None]],
    ) -> None:
        for contact_id, status, message_id, reason in updates:
            key = (campaign_id, contact_id)
            row = self._recipients.get(key)
            if row is None or not self.sees_location(row.location_id):
                continue
            if row.recipient.status is RecipientStatus.CANCELLED:
                continue  # a batch finishing after the cancel does not revive it
            recipient = replace(
                row.recipient,
                status=status,
                message_id=message_id if message_id is not None else row.recipient.message_id,
                reason=reason,
            )
            self._recipients[key] = replace(row, recipient=recipient)

    async def cancel_pending(self, campaign_id: uuid.UUID) -> int:
        cancelled = 0
        for row in self._audience(campaign_id):
            if row.recipient.status is RecipientStatus.PENDING:
                key = (campaign_id, row.recipient.contact_id)
                recipient = replace(row.recipient, status=RecipientStatus.CANCELLED)
                self._recipients[key] = replace(row, recipient=recipient)
                cancelled += 1
        return cancelled

    async def recipient_counts(self, campaign_id: uuid.UUID) -> dict[RecipientStatus, int]:
        return count_by(r.recipient.status for r in self._audience(campaign_id))

    async def message_counts(self, campaign_id: uuid.UUID) -> dict[MessageStatus, int]:
        return count_by(
            m.status
            for m in self.rows(MESSAGES).values()
            if m.campaign_id == campaign_id and self.sees_location(m.location_id)
        )

    async def record_engagement(
        self,
        campaign_id: uuid.UUID,
        contact_id: uuid.UUID,
        location_id: uuid.UUID,
        kind: EngagementKind,
        at: datetime,
    ) -> bool:
        check_write(self.scope, location_id, "campaign_events")
        rows = self.rows(ENGAGEMENTS)
        key = (campaign_id, contact_id, kind)
        found = rows.get(key)
        if found is None:
            rows[key] = EngagementRow(location_id=location_id, first_at=at, count=1)
            return True
        rows[key] = replace(found, count=found.count + 1)
        return False

    async def engagement_counts(self, campaign_id: uuid.UUID) -> dict[EngagementKind, int]:
        return count_by(
            kind
            for (campaign, _, kind), row in self.rows(ENGAGEMENTS).items()
            if campaign == campaign_id and self.sees_location(row.location_id)
        )

    async def latest_campaign_message(
        self, conversation_id: uuid.UUID, since: datetime
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        found = [
            m
            for m in self.rows(MESSAGES).values()
            if m.conversation_id == conversation_id
            and m.campaign_id is not None
            and m.direction is Direction.OUTBOUND
            and m.created_at >= since
            and self.sees_location(m.location_id)
        ]
        newest = max(found, key=lambda m: m.created_at, default=None)
        if newest is None or newest.campaign_id is None:
            return None
        return newest.campaign_id, newest.contact_id
