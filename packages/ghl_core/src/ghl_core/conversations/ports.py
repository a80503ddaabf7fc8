"""Repositories of the conversations context, and the narrow units of work of its services.

Each service's unit of work lists only the repositories it touches. They are declared as read-only
properties, not plain attributes: a protocol's plain attribute must match its implementation's type
exactly (it could be assigned through the protocol), so a unit of work holding `SqlMessageRepository`,
or one declaring the wider `CampaignRepository`, would not satisfy it; a property only has to be read.

Conversations sits below campaigns, so what it asks of the campaigns' store (the send gate a batch
holds, whether a campaign was cancelled, engagement credited to it) is declared here as
`CampaignLedger`, in conversations' own types; the campaigns repository implements it."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from ghl_core.contacts.ports import ContactRepository
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import (
    Channel,
    Conversation,
    Direction,
    EngagementKind,
    Message,
    MessagingSettings,
)
from ghl_core.conversations.providers import ProviderKind
from ghl_core.jobs.ports import JobQueue
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import Recording
from ghl_core.shared.uow import Transaction
from ghl_core.tenancy.ports import AgencyRepository, AssigneesUnitOfWork, LocationRepository


@dataclass(frozen=True, slots=True)
class ConversationTouch:
    conversation_id: uuid.UUID
    at: datetime
    preview: str
    direction: Direction


class InboxOrder(StrEnum):
    NEWEST = "newest"
    UNREAD_FIRST = "unread_first"


@dataclass(frozen=True, slots=True)
class InboxFilter:
    channel: Channel | None = None
    assigned_user_id: uuid.UUID | None = None
    unread: bool | None = None
    contact_id: uuid.UUID | None = None
    order: InboxOrder = InboxOrder.NEWEST


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    id: uuid.UUID
    agency_id: uuid.UUID
    location_id: uuid.UUID | None
    channel: Channel
    kind: ProviderKind
    config_ciphertext: bytes
    inbound_token: str
    created_at: datetime
    updated_at: datetime
    summary: dict[str, Any] = field(default_factory=dict)
    updated_by: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ResolvedProvider:
    """The configuration a location sends with on one channel (its own or its agency's default)."""

    kind: ProviderKind
    config_ciphertext: bytes
    inbound_token: str
    agency_default: bool


class ConversationRepository(Protocol):
    async def get_or_create(self, conversation: Conversation) -> Conversation:
        """The (location, contact, channel) conversation: the one stored, or this one stored now.
        Concurrent callers get the same row."""
        ...

    async def get(self, conversation_id: uuid.UUID, *, lock: bool = False) -> Conversation | None: ...

    async def get_or_create_many(
        self, location_id: uuid.UUID, channel: Channel, contact_ids: builtins.list[uuid.UUID], at: datetime
    ) -> dict[uuid.UUID, uuid.UUID]:
        """contact id -> the id of its conversation on this channel, created where missing, in one go."""
        ...

    async def touch_many(self, touches: builtins.list[ConversationTouch]) -> None:
        """Outbound messages just written: each conversation's last-message fields, in one statement."""
        ...

    async def update(self, conversation: Conversation) -> None: ...

    async def list(self, location_id: uuid.UUID, flt: InboxFilter, page: PageRequest) -> Page[Conversation]:
        """Newest activity first; with UNREAD_FIRST the unread ones come before the rest."""
        ...

    async def move_contact(self, from_contact: uuid.UUID, to_contact: uuid.UUID) -> int:
        """Merging contacts: the loser's conversations and messages join the survivor's."""
        ...


class MessageRepository(Protocol):
    async def add(self, message: Message) -> bool:
        """Stores it unless a message with its (location, cause) exists: then False, nothing stored."""
        ...

    async def get(self, message_id: uuid.UUID, *, lock: bool = False) -> Message | None: ...

    async def get_many(
        self, message_ids: builtins.list[uuid.UUID], *, lock: bool = False
    ) -> builtins.list[Message]:
        """In id order (so concurrent lockers of overlapping sets take the locks in the same order)."""
        ...

    async def add_many(self, messages: builtins.list[Message]) -> set[uuid.UUID]:
        """As `add` for each, in one statement; the ids stored (a message whose cause exists is not)."""
        ...

    async def by_causes(self, location_id: uuid.UUID, causes: builtins.list[str]) -> dict[str, Message]: ...

    async def claim_many(self, claims: builtins.list[tuple[uuid.UUID, datetime, str | None]]) -> None:
        """(message id, claimed at, sender): the claims of a batch, attempts counted, in one statement."""
        ...

    async def mark_sent_many(self, messages: builtins.list[Message]) -> None:
        """Writes each message's send outcome fields (status, provider ids, sender, times), for those
        still queued or scheduled (a message settled meanwhile is left as it is)."""
        ...

    async def by_cause(self, location_id: uuid.UUID, cause: str) -> Message | None: ...

    async def by_provider_id(
        self, location_id: uuid.UUID, provider_message_id: str, *, recipient: str | None = None
    ) -> Message | None:
        """`recipient`: among messages sharing the provider's id (one bulk email send), this one's."""
        ...

    async def by_rfc_id(self, location_id: uuid.UUID, rfc_ids: builtins.list[str]) -> Message | None:
        """The newest message carrying one of these RFC 5322 Message-IDs (email threading)."""
        ...

    async def update(self, message: Message) -> None: ...

    async def thread(self, conversation_id: uuid.UUID, page: PageRequest) -> Page[Message]:
        """Newest first."""
        ...

    async def outbox(self, location_id: uuid.UUID, page: PageRequest) -> Page[Message]:
        """Messages the local outbox took, newest first."""
        ...

    async def erase_contact(self, contact_id: uuid.UUID) -> int:
        """Right to be forgotten: every message's content and addresses removed for good (the rows stay,
        so counts and campaign statistics keep adding up); the conversations lose their previews."""
        ...

    async def count_by_status(self, location_id: uuid.UUID) -> dict[MessageStatus, int]: ...

    async def reserve_daily(self, location_id: uuid.UUID, day: date, wanted: int, limit: int) -> int:
        """Adds up to `wanted` to the location's count of outbound messages for `day` (its local date),
        without passing `limit`; returns how many it added. Holds the day's count until the transaction
        ends, so concurrent reservers never pass the limit together."""
        ...

    async def release_daily(self, location_id: uuid.UUID, day: date, count: int) -> None:
        """Hands back part of a reservation that was not used."""
        ...

    async def count_daily(self, location_id: uuid.UUID, day: date) -> int:
        """The location's outbound messages counted for `day` so far."""
        ...


class MessagingProviderRepository(Protocol):
    async def get(
        self, agency_id: uuid.UUID, location_id: uuid.UUID | None, channel: Channel
    ) -> ProviderRecord | None: ...

    async def put(self, record: ProviderRecord) -> None:
        """Insert or replace the (agency, location, channel) configuration."""
        ...

    async def delete(self, agency_id: uuid.UUID, location_id: uuid.UUID | None, channel: Channel) -> bool: ...

    async def resolve(self, location_id: uuid.UUID, channel: Channel) -> ResolvedProvider | None:
        """Works in any scope, the anonymous one included (callbacks): one narrow answer."""
        ...

    async def all_ciphertexts(self) -> builtins.list[tuple[uuid.UUID, str, bytes]]:
        """Operator scope only: (id, kind, ciphertext) of every configuration, for key rotation."""
        ...

    async def reseal(self, record_id: uuid.UUID, ciphertext: bytes) -> None: ...


class MessagingSettingsRepository(Protocol):
    async def get(self, location_id: uuid.UUID) -> MessagingSettings: ...

    async def put(self, settings: MessagingSettings, updated_by: uuid.UUID | None) -> None: ...


class _Valued(Protocol):
    @property
    def value(self) -> str: ...


class CampaignState(Protocol):
    """What delivery reads of a campaign: its status (a cancelled campaign's held messages fail)."""

    @property
    def status(self) -> _Valued: ...


class CampaignLedger(Protocol):
    """The part of the campaigns' store conversations uses (see the module docstring)."""

    async def gate(self, campaign_id: uuid.UUID, *, exclusive: bool) -> None:
        """Holds the campaign's send gate until commit (see `CampaignRepository.gate`)."""
        ...

    async def get(self, campaign_id: uuid.UUID, *, share: bool = False) -> CampaignState | None: ...

    async def record_engagement(
        self,
        campaign_id: uuid.UUID,
        contact_id: uuid.UUID,
        location_id: uuid.UUID,
        kind: EngagementKind,
        at: datetime,
    ) -> bool:
        """Counted once per recipient and kind; True the first time."""
        ...

    async def latest_campaign_message(
        self, conversation_id: uuid.UUID, since: datetime
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(campaign_id, contact_id) of the conversation's newest campaign message sent since then."""
        ...


class QuotaUnitOfWork(Transaction, Protocol):
    """The daily allowance: the location (its plan and zone) and the day's count beside the ledger."""

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def messages(self) -> MessageRepository: ...


class DndUnitOfWork(Recording, Protocol):
    """A contact's do-not-disturb changed on what a provider or a recipient reported."""

    @property
    def contacts(self) -> ContactRepository: ...


class SendingUnitOfWork(QuotaUnitOfWork, Recording, Protocol):
    """Writing outbound messages and their send jobs."""

    @property
    def contacts(self) -> ContactRepository: ...

    @property
    def conversations(self) -> ConversationRepository: ...

    @property
    def messaging_settings(self) -> MessagingSettingsRepository: ...

    @property
    def jobs(self) -> JobQueue: ...


class DeliveryUnitOfWork(SendingUnitOfWork, DndUnitOfWork, Protocol):
    """Handing messages to providers and recording what they answered."""

    @property
    def messaging_providers(self) -> MessagingProviderRepository: ...

    @property
    def campaigns(self) -> CampaignLedger: ...


class ReceivingUnitOfWork(SendingUnitOfWork, DndUnitOfWork, Protocol):
    """Replies threaded in (a keyword's answer is sent in the same transaction), credited to campaigns."""

    @property
    def campaigns(self) -> CampaignLedger: ...


class ReportsUnitOfWork(DndUnitOfWork, Protocol):
    """Delivery reports, provider events, tracked opens and clicks, unsubscribes."""

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def messages(self) -> MessageRepository: ...

    @property
    def messaging_providers(self) -> MessagingProviderRepository: ...

    @property
    def campaigns(self) -> CampaignLedger: ...


class InboxUnitOfWork(AssigneesUnitOfWork, Protocol):
    """Reading and triaging conversations (assigning one checks the assignee)."""

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def conversations(self) -> ConversationRepository: ...

    @property
    def messages(self) -> MessageRepository: ...


class SetupUnitOfWork(Recording, Protocol):
    """A location's or an agency's providers and a location's messaging settings."""

    @property
    def agencies(self) -> AgencyRepository: ...

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def messaging_providers(self) -> MessagingProviderRepository: ...

    @property
    def messaging_settings(self) -> MessagingSettingsRepository: ...
