"""Repositories of templates and campaigns, and the narrow units of work of the campaigns context.

Campaigns sit above conversations: a campaign's batch writes its messages through the conversations
ledger in its own transaction, so `CampaignsUnitOfWork` is a `SendingUnitOfWork` (and a contact
`SelectionUnitOfWork`, for its audience) with the campaigns' own repositories added. Read-only
properties, as in conversations' ports: a unit of work declaring a wider type still satisfies them."""

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
from ghl_core.contacts.ports import ContactRepository
from ghl_core.contacts.selection import SelectionUnitOfWork
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.ports import SendingUnitOfWork
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.uow import Transaction
from ghl_core.tenancy.ports import LocationRepository


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


class TemplatesUnitOfWork(Transaction, Protocol):
    """Saving templates, and previewing one for a contact of the location."""

    @property
    def templates(self) -> TemplateRepository: ...

    @property
    def contacts(self) -> ContactRepository: ...

    @property
    def locations(self) -> LocationRepository: ...


class CampaignsUnitOfWork(SendingUnitOfWork, SelectionUnitOfWork, Protocol):
    """Authoring, the lifecycle and the run of campaigns (see the module docstring)."""

    @property
    def templates(self) -> TemplateRepository: ...

    @property
    def campaigns(self) -> CampaignRepository: ...
