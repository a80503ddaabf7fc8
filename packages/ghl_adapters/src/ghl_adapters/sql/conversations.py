"""SQL tables of conversations (provider configurations, messaging settings, conversations and
messages), and the repository of conversations. Messages (the send ledger) live in `messages.py`,
provider configurations and messaging settings in `messaging.py`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    LargeBinary,
    Row,
    Table,
    Text,
    Time,
    and_,
    bindparam,
    case,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.conversations.models import (
    Channel,
    Conversation,
    Direction,
)
from ghl_core.conversations.ports import (
    ConversationTouch,
    InboxFilter,
    InboxOrder,
)
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows

from .tables import _ts, _uuid, metadata

messaging_providers = Table(
    "messaging_providers",
    metadata,
    _uuid("id", True),
    _uuid("agency_id", nullable=False),
    _uuid("location_id"),
    Column("channel", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("config_ciphertext", LargeBinary, nullable=False),
    Column("summary", JSONB, nullable=False),
    Column("inbound_token", Text, nullable=False),
    _ts("created_at", False),
    _ts("updated_at", False),
    _uuid("created_by"),
    _uuid("updated_by"),
)

messaging_settings = Table(
    "messaging_settings",
    metadata,
    _uuid("location_id", True),
    Column("quiet_start", Time),
    Column("quiet_end", Time),
    Column("help_text", Text),
    Column("stop_text", Text),
    Column("start_text", Text),
    Column("sms_per_second", Integer),
    Column("email_per_second", Integer),
    _ts("updated_at", False),
    _uuid("updated_by"),
)

conversations = Table(
    "conversations",
    metadata,
    _uuid("id", True),
    _uuid("location_id", nullable=False),
    _uuid("contact_id", nullable=False),
    Column("channel", Text, nullable=False),
    _uuid("assigned_user_id"),
    Column("unread_count", Integer, nullable=False),
    _ts("last_message_at"),
    Column("last_message_preview", Text),
    Column("last_direction", Text),
    _ts("created_at", False),
    _ts("updated_at", False),
)

messages = Table(
    "messages",
    metadata,
    _uuid("id", True),
    _uuid("location_id", nullable=False),
    _uuid("conversation_id", nullable=False),
    _uuid("contact_id", nullable=False),
    Column("channel", Text, nullable=False),
    Column("direction", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("marketing", Boolean, nullable=False),
    Column("cause", Text),
    Column("subject", Text),
    Column("body", Text, nullable=False),
    Column("html", Text),
    Column("attachments", JSONB, nullable=False),
    Column("sender", Text),
    Column("recipient", Text),
    Column("provider", Text),
    Column("provider_message_id", Text),
    Column("rfc_message_id", Text),
    Column("error_code", Text),
    Column("error_message", Text),
    Column("segments", Integer),
    Column("encoding", Text),
    _ts("send_at"),
    _ts("claimed_at"),
    Column("attempts", Integer, nullable=False),
    _ts("sent_at"),
    _ts("delivered_at"),
    _ts("read_at"),
    _ts("failed_at"),
    _ts("created_at", False),
    _ts("updated_at", False),
    _uuid("created_by"),
    _uuid("campaign_id"),
)

_CONVERSATION_COLUMNS = (
    "location_id",
    "contact_id",
    "assigned_user_id",
    "unread_count",
    "last_message_at",
    "last_message_preview",
    "created_at",
    "updated_at",
)


def _uuids(ids: list[uuid.UUID]) -> Any:
    """One array parameter (`= ANY(...)`): one statement and one plan whatever the number of ids,
    where `IN (...)` makes a new statement (and plan) per length."""
    return bindparam("ids", ids, type_=ARRAY(PG_UUID(as_uuid=True)))


def _conversation(row: Row[Any]) -> Conversation:
    values = {c: getattr(row, c) for c in _CONVERSATION_COLUMNS}
    return Conversation(
        id=row.id,
        channel=Channel(row.channel),
        last_direction=Direction(row.last_direction) if row.last_direction else None,
        **values,
    )


def _conversation_values(c: Conversation) -> dict[str, Any]:
    values = {k: getattr(c, k) for k in _CONVERSATION_COLUMNS}
    values["channel"] = c.channel.value
    values["last_direction"] = c.last_direction.value if c.last_direction else None
    return values


def _after(page: PageRequest, arity: int = 2) -> tuple[Any, ...] | None:
    if page.after is None:
        return None
    try:
        parts = tuple(page.after)
        if len(parts) != arity:
            raise ValueError("wrong arity")
        *head, ident = parts
        return (*head, uuid.UUID(ident))
    except (ValueError, TypeError):
        raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None


class SqlConversationRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def get_or_create(self, conversation: Conversation) -> Conversation:
        # ON CONFLICT DO UPDATE (a no-op) returns the row either way and waits for a concurrent insert.
        query = (
            insert(conversations)
            .values(id=conversation.id, **_conversation_values(conversation))
            .on_conflict_do_update(
                constraint="conversations_one_per_channel",
                set_={"location_id": conversations.c.location_id},
            )
            .returning(conversations)
        )
        row = (await self._c.execute(query)).one()
        return _conversation(row)

    async def get(self, conversation_id: uuid.UUID, *, lock: bool = False) -> Conversation | None:
        query = select(conversations).where(conversations.c.id == conversation_id)
        if lock:
            query = query.with_for_update()
        row = (await self._c.execute(query)).first()
        return _conversation(row) if row else None

    async def get_or_create_many(
        self, location_id: uuid.UUID, channel: Channel, contact_ids: list[uuid.UUID], at: datetime
    ) -> dict[uuid.UUID, uuid.UUID]:
        if not contact_ids:
            return {}
        rows = await self._c.execute(
            text(
                "INSERT INTO conversations (id, location_id, contact_id, channel, unread_count, "
                "created_at, updated_at) "
                "SELECT gen_random_uuid(), :location, c, :channel, 0, :at, :at "
                "FROM unnest(CAST(:contacts AS uuid[])) AS c "
                "ON CONFLICT ON CONSTRAINT conversations_one_per_channel "
                "DO UPDATE SET location_id = EXCLUDED.location_id RETURNING id, contact_id"
            ),
            {
                "location": location_id,
                "channel": channel.value,
                "at": at,
                "contacts": sorted(set(contact_ids)),
            },
        )
        return {r.contact_id: r.id for r in rows}

    async def touch_many(self, touches: list[ConversationTouch]) -> None:
        if not touches:
            return
        last = {t.conversation_id: t for t in sorted(touches, key=lambda t: t.at)}
        ordered = sorted(last.values(), key=lambda t: t.conversation_id)
        await self._c.execute(
            text(
                "UPDATE conversations c SET last_message_at = u.at, last_message_preview = u.preview, "
                "last_direction = u.direction, updated_at = u.at "
                "FROM unnest(CAST(:ids AS uuid[]), CAST(:ats AS timestamptz[]), CAST(:previews AS text[]), "
                "CAST(:directions AS text[])) AS u(id, at, preview, direction) "
                "WHERE c.id = ANY(CAST(:ids AS uuid[])) AND c.id = u.id"
            ),
            {
                "ids": [t.conversation_id for t in ordered],
                "ats": [t.at for t in ordered],
                "previews": [t.preview for t in ordered],
                "directions": [t.direction.value for t in ordered],
            },
        )

    async def update(self, conversation: Conversation) -> None:
        await self._c.execute(
            update(conversations)
            .where(conversations.c.id == conversation.id)
            .values(**_conversation_values(conversation))
        )

    async def list(self, location_id: uuid.UUID, flt: InboxFilter, page: PageRequest) -> Page[Conversation]:
        c = conversations.c
        query = select(conversations).where(c.location_id == location_id, c.last_message_at.is_not(None))
        if flt.channel is not None:
            query = query.where(c.channel == flt.channel.value)
        if flt.assigned_user_id is not None:
            query = query.where(c.assigned_user_id == flt.assigned_user_id)
        if flt.contact_id is not None:
            query = query.where(c.contact_id == flt.contact_id)
        if flt.unread is True:
            query = query.where(c.unread_count > 0)
        elif flt.unread is False:
            query = query.where(c.unread_count == 0)
        if flt.order is InboxOrder.UNREAD_FIRST:
            rank = case((c.unread_count > 0, 0), else_=1)
            after = _after(page, 3)
            if after is not None:
                seen_rank, seen_at = int(after[0]), datetime.fromisoformat(str(after[1]))
                query = query.where(
                    or_(
                        rank > seen_rank,
                        and_(rank == seen_rank, tuple_(c.last_message_at, c.id) < (seen_at, after[2])),
                    )
                )
            query = query.order_by(rank, c.last_message_at.desc(), c.id.desc()).limit(page.limit + 1)
            rows = [_conversation(r) for r in (await self._c.execute(query)).all()]
            return page_from_rows(
                rows,
                page.limit,
                lambda x: ("0" if x.unread_count > 0 else "1", x.last_message_at.isoformat(), str(x.id)),
            )
        after = _after(page)
        if after is not None:
            query = query.where(
                tuple_(c.last_message_at, c.id) < (datetime.fromisoformat(after[0]), after[1])
            )
        query = query.order_by(c.last_message_at.desc(), c.id.desc()).limit(page.limit + 1)
        rows = [_conversation(r) for r in (await self._c.execute(query)).all()]
        return page_from_rows(rows, page.limit, lambda x: (x.last_message_at.isoformat(), str(x.id)))

    async def move_contact(self, from_contact: uuid.UUID, to_contact: uuid.UUID) -> int:
        c = conversations.c
        moved = 0
        for channel in Channel:
            loser = (
                await self._c.execute(
                    select(c.id).where(c.contact_id == from_contact, c.channel == channel.value)
                )
            ).scalar()
            if loser is None:
                continue
            survivor = (
                await self._c.execute(
                    select(c.id).where(c.contact_id == to_contact, c.channel == channel.value)
                )
            ).scalar()
            if survivor is None:
                await self._c.execute(
                    update(conversations).where(c.id == loser).values(contact_id=to_contact)
                )
                await self._c.execute(
                    update(messages).where(messages.c.conversation_id == loser).values(contact_id=to_contact)
                )
            else:
                await self._c.execute(
                    update(messages)
                    .where(messages.c.conversation_id == loser)
                    .values(conversation_id=survivor, contact_id=to_contact)
                )
                await self._c.execute(
                    update(conversations)
                    .where(c.id == survivor)
                    .values(
                        unread_count=c.unread_count
                        + select(conversations.c.unread_count)
                        .where(conversations.c.id == loser)
                        .scalar_subquery()
                    )
                )
                await self._c.execute(
                    update(conversations).where(c.id == loser).values(unread_count=0, last_message_at=None)
                )
            moved += 1
        return moved
