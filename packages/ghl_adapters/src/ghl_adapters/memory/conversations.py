"""The in-memory repositories of conversations and their messages (the send ledger).

Decisions:
- The SQL constraints are kept as rules here, because services rely on what they refuse: one
  conversation per (location, contact, channel), `get_or_create` answering the stored one; one message
  per (location, cause), a second `add` or `add_many` of a cause storing nothing (the idempotency key of
  every send); `mark_sent_many` writing only messages still queued or scheduled.
- The daily count of outbound messages (`reserve_daily`) never passes its limit. A memory unit of work
  takes no lock, so two open at once could both reserve from the same committed count; the count is a
  row like any other and the later commit's row wins (see `store.py`). Embedders that need the limit under
  concurrency run on PostgreSQL.
- Messaging providers and settings are in `messaging.py`; they are re-exported here, where the unit of
  work looks for every conversations repository.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import replace
from datetime import date, datetime

from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import Channel, Conversation, Message
from ghl_core.conversations.ports import ConversationTouch, InboxFilter, InboxOrder
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows

from .messaging import (
    MESSAGING_PROVIDERS,
    MESSAGING_SETTINGS,
    MemoryMessagingProviderRepository,
    MemoryMessagingSettingsRepository,
)
from .rows import check_write, clone, count_by, keyset_page, unique_rows
from .store import MemoryRepository, Table

CONVERSATIONS: Table[uuid.UUID, Conversation] = Table("conversations")
MESSAGES: Table[uuid.UUID, Message] = Table("messages")
MESSAGE_VOLUME: Table[tuple[uuid.UUID, date], int] = Table("message_volume")

_PENDING = (MessageStatus.QUEUED, MessageStatus.SCHEDULED)

__all__ = [
    "CONVERSATIONS",
    "MESSAGES",
    "MESSAGE_VOLUME",
    "MESSAGING_PROVIDERS",
    "MESSAGING_SETTINGS",
    "MemoryConversationRepository",
    "MemoryMessageRepository",
    "MemoryMessagingProviderRepository",
    "MemoryMessagingSettingsRepository",
]


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed.one("/cursor", "is not a cursor this API issued")


class MemoryConversationRepository(MemoryRepository):
    @property
    def _rows(self) -> dict[uuid.UUID, Conversation]:
        return self.rows(CONVERSATIONS)

    def _mine(self) -> builtins.list[Conversation]:
        return [c for c in self._rows.values() if self.sees_location(c.location_id)]

    def _find(self, location_id: uuid.UUID, contact_id: uuid.UUID, channel: Channel) -> Conversation | None:
        # The unique constraint holds across the table, whoever can see the row.
        for c in unique_rows(self, CONVERSATIONS):
            if (c.location_id, c.contact_id, c.channel) == (location_id, contact_id, channel):
                # One another unit of work committed since this one began: from now on this one sees
                # it, as the SQL upsert returns (and later statements update) the committed row.
                return self._rows.setdefault(c.id, clone(c))
        return None

    async def get_or_create(self, conversation: Conversation) -> Conversation:
        check_write(self.scope, conversation.location_id, "conversations")
        found = self._find(conversation.location_id, conversation.contact_id, conversation.channel)
        if found is None:
            found = self._rows[conversation.id] = clone(conversation)
        return clone(found)

    async def get(self, conversation_id: uuid.UUID, *, lock: bool = False) -> Conversation | None:
        found = self._rows.get(conversation_id)
        return clone(found) if found is not None and self.sees_location(found.location_id) else None

    async def get_or_create_many(
        self, location_id: uuid.UUID, channel: Channel, contact_ids: builtins.list[uuid.UUID], at: datetime
    ) -> dict[uuid.UUID, uuid.UUID]:
        if not contact_ids:
            return {}
        check_write(self.scope, location_id, "conversations")
        answer: dict[uuid.UUID, uuid.UUID] = {}
        for contact_id in sorted(set(contact_ids)):
            found = self._find(location_id, contact_id, channel)
            if found is None:
                found = Conversation(
                    id=uuid.uuid4(),
                    location_id=location_id,
                    contact_id=contact_id,
                    channel=channel,
                    created_at=at,
                    updated_at=at,
                )
                self._rows[found.id] = found
            answer[contact_id] = found.id
        return answer

    async def touch_many(self, touches: builtins.list[ConversationTouch]) -> None:
        last = {t.conversation_id: t for t in sorted(touches, key=lambda t: t.at)}
        for conversation_id, touch in last.items():
            found = self._rows.get(conversation_id)
            if found is None or not self.sees_location(found.location_id):
                continue
            self._rows[conversation_id] = replace(
                found,
                last_message_at=touch.at,
                last_message_preview=touch.preview,
                last_direction=touch.direction,
                updated_at=touch.at,
            )

    async def update(self, conversation: Conversation) -> None:
        stored = self._rows.get(conversation.id)
        if stored is None or not self.sees_location(stored.location_id):
            return
        check_write(self.scope, conversation.location_id, "conversations")
        self._rows[conversation.id] = clone(conversation)

    async def list(self, location_id: uuid.UUID, flt: InboxFilter, page: PageRequest) -> Page[Conversation]:
        rows = [
            c
            for c in self._mine()
            if c.location_id == location_id
            and c.last_message_at is not None
            and (flt.channel is None or c.channel is flt.channel)
            and (flt.assigned_user_id is None or c.assigned_user_id == flt.assigned_user_id)
            and (flt.contact_id is None or c.contact_id == flt.contact_id)
            and (flt.unread is None or (c.unread_count > 0) is flt.unread)
        ]
        if flt.order is InboxOrder.UNREAD_FIRST:
            return _unread_first(rows, page)
        return keyset_page(rows, page, _last_at, descending=True)

    async def move_contact(self, from_contact: uuid.UUID, to_contact: uuid.UUID) -> int:
        moved = 0
        messages = self.rows(MESSAGES)
        for channel in Channel:
            loser = self._of_contact(from_contact, channel)
            if loser is None:
                continue
            survivor = self._of_contact(to_contact, channel)
            if survivor is None:
                self._rows[loser.id] = replace(loser, contact_id=to_contact)
                for m in _in_conversation(messages, loser.id):
                    messages[m.id] = replace(m, contact_id=to_contact)
            else:
                for m in _in_conversation(messages, loser.id):
                    messages[m.id] = replace(m, conversation_id=survivor.id, contact_id=to_contact)
                unread = survivor.unread_count + loser.unread_count
                self._rows[survivor.id] = replace(survivor, unread_count=unread)
                self._rows[loser.id] = replace(loser, unread_count=0, last_message_at=None)
            moved += 1
        return moved

    def _of_contact(self, contact_id: uuid.UUID, channel: Channel) -> Conversation | None:
        return next((c for c in self._mine() if c.contact_id == contact_id and c.channel is channel), None)


def _last_at(conversation: Conversation) -> datetime:
    # Listed conversations have a message; the fallback only satisfies the type.
    return conversation.last_message_at or conversation.created_at


def _unread_first(rows: builtins.list[Conversation], page: PageRequest) -> Page[Conversation]:
    """Unread ones first, then by newest activity: the cursor is (rank, instant, id)."""

    def key(c: Conversation) -> tuple[int, datetime, uuid.UUID]:
        return (0 if c.unread_count > 0 else 1, _last_at(c), c.id)

    # Rank ascending, then instant and id descending.
    ordered = sorted(rows, key=lambda c: (key(c)[0], _Desc(key(c)[1:])))
    if page.after is not None:
        if len(page.after) != 3:
            raise _bad_cursor()
        try:
            seen = (int(page.after[0]), datetime.fromisoformat(page.after[1]), uuid.UUID(page.after[2]))
        except ValueError:
            raise _bad_cursor() from None
        ordered = [
            c for c in ordered if key(c)[0] > seen[0] or (key(c)[0] == seen[0] and key(c)[1:] < seen[1:])
        ]
    taken = [clone(c) for c in ordered[: page.limit + 1]]
    return page_from_rows(
        taken, page.limit, lambda c: ("0" if c.unread_count > 0 else "1", _last_at(c).isoformat(), str(c.id))
    )


class _Desc:
    """Sorts its value in reverse inside an ascending sort key."""

    __slots__ = ("value",)

    def __init__(self, value: tuple[datetime, uuid.UUID]) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _in_conversation(
    messages: dict[uuid.UUID, Message], conversation_id: uuid.UUID
) -> builtins.list[Message]:
    return [m for m in messages.values() if m.conversation_id == conversation_id]


class MemoryMessageRepository(MemoryRepository):
    @property
    def _rows(self) -> dict[uuid.UUID, Message]:
        return self.rows(MESSAGES)

    def _visible(self, message: Message | None) -> Message | None:
        return message if message is not None and self.sees_location(message.location_id) else None

    def _cause_taken(self, message: Message) -> bool:
        if message.cause is None:
            return False
        key = (message.location_id, message.cause)
        return any((m.location_id, m.cause) == key for m in unique_rows(self, MESSAGES))

    def _store(self, message: Message) -> bool:
        check_write(self.scope, message.location_id, "messages")
        if self._cause_taken(message):
            return False
        if message.id in self._rows:
            raise KeyError(f"message {message.id} exists")
        self._rows[message.id] = clone(message)
        return True

    async def add(self, message: Message) -> bool:
        return self._store(message)

    async def get(self, message_id: uuid.UUID, *, lock: bool = False) -> Message | None:
        return clone(self._visible(self._rows.get(message_id)))

    async def get_many(
        self, message_ids: builtins.list[uuid.UUID], *, lock: bool = False
    ) -> builtins.list[Message]:
        found = [self._visible(self._rows.get(i)) for i in sorted(set(message_ids))]
        return [clone(m) for m in found if m is not None]

    async def add_many(self, messages: builtins.list[Message]) -> set[uuid.UUID]:
        return {m.id for m in messages if self._store(m)}

    async def by_causes(self, location_id: uuid.UUID, causes: builtins.list[str]) -> dict[str, Message]:
        wanted = set(causes)
        return {
            m.cause: clone(m)
            for m in self._rows.values()
            if m.cause in wanted and m.location_id == location_id and self._visible(m)
        }

    async def claim_many(self, claims: builtins.list[tuple[uuid.UUID, datetime, str | None]]) -> None:
        done: set[uuid.UUID] = set()
        for message_id, at, sender in claims:
            found = self._visible(self._rows.get(message_id))
            if found is None or message_id in done:
                continue
            done.add(message_id)
            self._rows[message_id] = replace(
                found, claimed_at=at, sender=sender, attempts=found.attempts + 1, updated_at=at
            )

    async def mark_sent_many(self, messages: builtins.list[Message]) -> None:
        for message in messages:
            found = self._visible(self._rows.get(message.id))
            if found is None or found.status not in _PENDING:
                continue  # settled meanwhile (by another run): left as it is
            self._rows[message.id] = replace(
                found,
                status=message.status,
                provider=message.provider,
                provider_message_id=message.provider_message_id,
                sender=message.sender,
                sent_at=message.sent_at,
                delivered_at=message.delivered_at,
                rfc_message_id=message.rfc_message_id,
                error_code=None,
                error_message=None,
                updated_at=message.updated_at,
            )

    async def by_cause(self, location_id: uuid.UUID, cause: str) -> Message | None:
        for m in self._rows.values():
            if m.location_id == location_id and m.cause == cause:
                return clone(self._visible(m))
        return None

    async def by_provider_id(
        self, location_id: uuid.UUID, provider_message_id: str, *, recipient: str | None = None
    ) -> Message | None:
        for m in sorted(self._rows.values(), key=lambda m: (m.created_at, m.id)):
            if m.location_id != location_id or m.provider_message_id != provider_message_id:
                continue
            if recipient is not None and (m.recipient is None or m.recipient.lower() != recipient.lower()):
                continue
            if self._visible(m):
                return clone(m)
        return None

    async def by_rfc_id(self, location_id: uuid.UUID, rfc_ids: builtins.list[str]) -> Message | None:
        wanted = set(rfc_ids)
        found = [
            m
            for m in self._rows.values()
            if m.location_id == location_id and m.rfc_message_id in wanted and self._visible(m)
        ]
        return clone(max(found, key=lambda m: m.created_at)) if found else None

    async def update(self, message: Message) -> None:
        if self._visible(self._rows.get(message.id)) is None:
            return
        check_write(self.scope, message.location_id, "messages")
        self._rows[message.id] = clone(message)

    async def thread(self, conversation_id: uuid.UUID, page: PageRequest) -> Page[Message]:
        rows = [m for m in self._rows.values() if m.conversation_id == conversation_id and self._visible(m)]
        return keyset_page(rows, page, lambda m: m.created_at, descending=True)

    async def outbox(self, location_id: uuid.UUID, page: PageRequest) -> Page[Message]:
        rows = [
            m
            for m in self._rows.values()
            if m.location_id == location_id
            and m.provider == "outbox"
            and m.sent_at is not None
            and self._visible(m)
        ]
        return keyset_page(rows, page, lambda m: m.sent_at or m.created_at, descending=True)

    async def erase_contact(self, contact_id: uuid.UUID) -> int:
        erased = 0
        for m in list(self._rows.values()):
            if m.contact_id != contact_id or not self._visible(m):
                continue
            self._rows[m.id] = replace(
                m,
                body="",
                subject=None,
                html=None,
                attachments=[],
                sender=None,
                recipient=None,
                error_message=None,
            )
            erased += 1
        conversations = self.rows(CONVERSATIONS)
        for c in list(conversations.values()):
            if c.contact_id == contact_id and self.sees_location(c.location_id):
                conversations[c.id] = replace(c, last_message_preview=None)
        return erased

    async def count_by_status(self, location_id: uuid.UUID) -> dict[MessageStatus, int]:
        return count_by(
            m.status for m in self._rows.values() if m.location_id == location_id and self._visible(m)
        )

    def _volume(self, location_id: uuid.UUID, day: date) -> int | None:
        return self.rows(MESSAGE_VOLUME).get((location_id, day)) if self.sees_location(location_id) else None

    async def reserve_daily(self, location_id: uuid.UUID, day: date, wanted: int, limit: int) -> int:
        check_write(self.scope, location_id, "message_volume")
        held = self._volume(location_id, day) or 0
        granted = max(0, min(wanted, limit - held))
        self.rows(MESSAGE_VOLUME)[(location_id, day)] = held + granted
        return granted

    async def release_daily(self, location_id: uuid.UUID, day: date, count: int) -> None:
        held = self._volume(location_id, day)
        if count > 0 and held is not None:
            self.rows(MESSAGE_VOLUME)[(location_id, day)] = max(0, held - count)

    async def count_daily(self, location_id: uuid.UUID, day: date) -> int:
        return self._volume(location_id, day) or 0
