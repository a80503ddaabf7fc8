"""SQL tables and repositories of conversations: provider configurations, messaging settings,
conversations and messages (the send ledger)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
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
    any_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import (
    Channel,
    Conversation,
    Direction,
    Message,
    MessageSource,
    MessagingSettings,
)
from ghl_core.conversations.ports import (
    ConversationTouch,
    InboxFilter,
    InboxOrder,
    ProviderRecord,
    ResolvedProvider,
)
from ghl_core.conversations.providers import ProviderKind
from ghl_core.conversations.quiet_hours import QuietHours
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows

from .tables import _ts, _uuid, json_rows, metadata, recordset_insert

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
_MESSAGE_PLAIN = (
    "location_id",
    "conversation_id",
    "contact_id",
    "marketing",
    "cause",
    "subject",
    "body",
    "html",
    "attachments",
    "sender",
    "recipient",
    "provider",
    "provider_message_id",
    "rfc_message_id",
    "error_code",
    "error_message",
    "segments",
    "encoding",
    "send_at",
    "claimed_at",
    "attempts",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "created_at",
    "updated_at",
    "created_by",
    "campaign_id",
)
_MESSAGE_TYPES: tuple[tuple[str, str], ...] = (
    ("id", "uuid"),
    ("location_id", "uuid"),
    ("conversation_id", "uuid"),
    ("contact_id", "uuid"),
    ("channel", "text"),
    ("direction", "text"),
    ("status", "text"),
    ("source", "text"),
    ("marketing", "boolean"),
    ("cause", "text"),
    ("subject", "text"),
    ("body", "text"),
    ("html", "text"),
    ("attachments", "jsonb"),
    ("sender", "text"),
    ("recipient", "text"),
    ("provider", "text"),
    ("provider_message_id", "text"),
    ("rfc_message_id", "text"),
    ("error_code", "text"),
    ("error_message", "text"),
    ("segments", "integer"),
    ("encoding", "text"),
    ("send_at", "timestamptz"),
    ("claimed_at", "timestamptz"),
    ("attempts", "integer"),
    ("sent_at", "timestamptz"),
    ("delivered_at", "timestamptz"),
    ("read_at", "timestamptz"),
    ("failed_at", "timestamptz"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("created_by", "uuid"),
    ("campaign_id", "uuid"),
)
# A batch of messages travels as one JSON document (see `recordset_insert`).
_INSERT_MESSAGES = recordset_insert(
    "messages", list(_MESSAGE_TYPES), "ON CONFLICT ON CONSTRAINT messages_cause_once DO NOTHING RETURNING id"
)


_RESOLVE = text(
    "SELECT kind, config_ciphertext, inbound_token, agency_default "
    "FROM ghl_messaging_provider(:location, :channel)"
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


def _message(row: Row[Any]) -> Message:
    values = {c: getattr(row, c) for c in _MESSAGE_PLAIN}
    values["attachments"] = list(values["attachments"] or [])
    return Message(
        id=row.id,
        channel=Channel(row.channel),
        direction=Direction(row.direction),
        status=MessageStatus(row.status),
        source=MessageSource(row.source),
        **values,
    )


def _message_values(m: Message) -> dict[str, Any]:
    values = {k: getattr(m, k) for k in _MESSAGE_PLAIN}
    values.update(
        channel=m.channel.value, direction=m.direction.value, status=m.status.value, source=m.source.value
    )
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


class SqlMessageRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, message: Message) -> bool:
        query = insert(messages).values(id=message.id, **_message_values(message))
        if message.cause is not None:
            query = query.on_conflict_do_nothing(constraint="messages_cause_once")
        result = await self._c.execute(query.returning(messages.c.id))
        return result.first() is not None

    async def get(self, message_id: uuid.UUID, *, lock: bool = False) -> Message | None:
        query = select(messages).where(messages.c.id == message_id)
        if lock:
            query = query.with_for_update()
        row = (await self._c.execute(query)).first()
        return _message(row) if row else None

    async def get_many(self, message_ids: list[uuid.UUID], *, lock: bool = False) -> list[Message]:
        if not message_ids:
            return []
        query = select(messages).where(messages.c.id == any_(_uuids(message_ids))).order_by(messages.c.id)
        if lock:
            query = query.with_for_update()
        return [_message(r) for r in (await self._c.execute(query)).all()]

    async def add_many(self, batch: list[Message]) -> set[uuid.UUID]:
        if not batch:
            return set()
        rows = [{"id": m.id, **_message_values(m)} for m in batch]
        result = await self._c.execute(_INSERT_MESSAGES, {"rows": json_rows(rows)})
        return {row.id for row in result}

    async def by_causes(self, location_id: uuid.UUID, causes: list[str]) -> dict[str, Message]:
        if not causes:
            return {}
        m = messages.c
        query = select(messages).where(
            m.location_id == location_id, m.cause == any_(bindparam("causes", causes, type_=ARRAY(Text)))
        )
        return {row.cause: _message(row) for row in (await self._c.execute(query)).all()}

    async def claim_many(self, claims: list[tuple[uuid.UUID, datetime, str | None]]) -> None:
        if not claims:
            return
        await self._c.execute(
            text(
                "UPDATE messages m SET claimed_at = u.at, sender = u.sender, attempts = m.attempts + 1, "
                "updated_at = u.at FROM json_to_recordset(CAST(:rows AS json)) AS u(id uuid, at timestamptz, "
                "sender text) WHERE m.id = ANY(CAST(:ids AS uuid[])) AND m.id = u.id"
            ),
            {
                "ids": [c[0] for c in claims],
                "rows": json_rows([{"id": c[0], "at": c[1], "sender": c[2]} for c in claims]),
            },
        )

    async def mark_sent_many(self, batch: list[Message]) -> None:
        if not batch:
            return
        await self._c.execute(
            text(
                "UPDATE messages m SET status = u.status, provider = u.provider, "
                "provider_message_id = u.pid, sender = u.sender, sent_at = u.sent_at, "
                "delivered_at = u.delivered_at, rfc_message_id = u.rfc, error_code = NULL, "
                "error_message = NULL, updated_at = u.updated_at "
                "FROM json_to_recordset(CAST(:rows AS json)) AS u(id uuid, status text, provider text, "
                "pid text, sender text, sent_at timestamptz, delivered_at timestamptz, rfc text, "
                "updated_at timestamptz) "
                "WHERE m.id = ANY(CAST(:ids AS uuid[])) AND m.id = u.id "
                # Only from a pending status: a message already settled (by another run) is left as is.
                "AND m.status IN ('queued', 'scheduled')"
            ),
            {
                "ids": [m.id for m in batch],
                "rows": json_rows(
                    [
                        {
                            "id": m.id,
                            "status": m.status.value,
                            "provider": m.provider,
                            "pid": m.provider_message_id,
                            "sender": m.sender,
                            "sent_at": m.sent_at,
                            "delivered_at": m.delivered_at,
                            "rfc": m.rfc_message_id,
                            "updated_at": m.updated_at,
                        }
                        for m in batch
                    ]
                ),
            },
        )

    async def by_cause(self, location_id: uuid.UUID, cause: str) -> Message | None:
        m = messages.c
        row = (
            await self._c.execute(select(messages).where(m.location_id == location_id, m.cause == cause))
        ).first()
        return _message(row) if row else None

    async def by_provider_id(
        self, location_id: uuid.UUID, provider_message_id: str, *, recipient: str | None = None
    ) -> Message | None:
        m = messages.c
        query = select(messages).where(
            m.location_id == location_id, m.provider_message_id == provider_message_id
        )
        if recipient is not None:
            query = query.where(func.lower(m.recipient) == recipient.lower())
        query = query.limit(1)
        row = (await self._c.execute(query)).first()
        return _message(row) if row else None

    async def by_rfc_id(self, location_id: uuid.UUID, rfc_ids: list[str]) -> Message | None:
        if not rfc_ids:
            return None
        m = messages.c
        query = (
            select(messages)
            .where(m.location_id == location_id, m.rfc_message_id.in_(rfc_ids))
            .order_by(m.created_at.desc())
            .limit(1)
        )
        row = (await self._c.execute(query)).first()
        return _message(row) if row else None

    async def update(self, message: Message) -> None:
        await self._c.execute(
            update(messages).where(messages.c.id == message.id).values(**_message_values(message))
        )

    async def thread(self, conversation_id: uuid.UUID, page: PageRequest) -> Page[Message]:
        m = messages.c
        query = select(messages).where(m.conversation_id == conversation_id)
        after = _after(page)
        if after is not None:
            query = query.where(tuple_(m.created_at, m.id) < (datetime.fromisoformat(after[0]), after[1]))
        query = query.order_by(m.created_at.desc(), m.id.desc()).limit(page.limit + 1)
        rows = [_message(r) for r in (await self._c.execute(query)).all()]
        return page_from_rows(rows, page.limit, lambda x: (x.created_at.isoformat(), str(x.id)))

    async def outbox(self, location_id: uuid.UUID, page: PageRequest) -> Page[Message]:
        m = messages.c
        query = select(messages).where(
            m.location_id == location_id, m.provider == "outbox", m.sent_at.is_not(None)
        )
        after = _after(page)
        if after is not None:
            query = query.where(tuple_(m.sent_at, m.id) < (datetime.fromisoformat(after[0]), after[1]))
        query = query.order_by(m.sent_at.desc(), m.id.desc()).limit(page.limit + 1)
        rows = [_message(r) for r in (await self._c.execute(query)).all()]
        return page_from_rows(
            rows, page.limit, lambda x: ((x.sent_at or x.created_at).isoformat(), str(x.id))
        )

    async def erase_contact(self, contact_id: uuid.UUID) -> int:
        m = messages.c
        result = await self._c.execute(
            update(messages)
            .where(m.contact_id == contact_id)
            .values(
                body="",
                subject=None,
                html=None,
                attachments=[],
                sender=None,
                recipient=None,
                error_message=None,
            )
        )
        await self._c.execute(
            update(conversations)
            .where(conversations.c.contact_id == contact_id)
            .values(last_message_preview=None)
        )
        return int(result.rowcount or 0)

    async def count_by_status(self, location_id: uuid.UUID) -> dict[MessageStatus, int]:
        m = messages.c
        query = select(m.status, func.count()).where(m.location_id == location_id).group_by(m.status)
        return {MessageStatus(s): int(n) for s, n in (await self._c.execute(query)).all()}

    async def reserve_daily(self, location_id: uuid.UUID, day: date, wanted: int, limit: int) -> int:
        # The upsert locks the day's row (made if missing) and answers what it holds; the lock keeps
        # every other reserver of this location waiting until this transaction ends.
        held = (await self._c.execute(_VOLUME_HELD, {"location": location_id, "day": day})).scalar_one()
        granted = max(0, min(wanted, limit - int(held)))
        if granted:
            await self._c.execute(_VOLUME_ADD, {"location": location_id, "day": day, "n": granted})
        return granted

    async def count_daily(self, location_id: uuid.UUID, day: date) -> int:
        found = (await self._c.execute(_VOLUME_COUNT, {"location": location_id, "day": day})).scalar()
        return int(found or 0)

    async def release_daily(self, location_id: uuid.UUID, day: date, count: int) -> None:
        if count > 0:
            await self._c.execute(_VOLUME_ADD, {"location": location_id, "day": day, "n": -count})


# The per-day count of a location's outbound messages (migration 0021_plan_limits).
_VOLUME_COUNT = text("SELECT sent FROM message_volume WHERE location_id = :location AND day = :day")
_VOLUME_HELD = text(
    "INSERT INTO message_volume AS v (location_id, day, sent) VALUES (:location, :day, 0) "
    "ON CONFLICT (location_id, day) DO UPDATE SET sent = v.sent RETURNING v.sent"
)
_VOLUME_ADD = text(
    "UPDATE message_volume SET sent = GREATEST(0, sent + :n) WHERE location_id = :location AND day = :day"
)


def _provider(row: Row[Any]) -> ProviderRecord:
    return ProviderRecord(
        id=row.id,
        agency_id=row.agency_id,
        location_id=row.location_id,
        channel=Channel(row.channel),
        kind=ProviderKind(row.kind),
        config_ciphertext=bytes(row.config_ciphertext),
        inbound_token=row.inbound_token,
        created_at=row.created_at,
        updated_at=row.updated_at,
        summary=dict(row.summary),
        updated_by=row.updated_by,
    )


class SqlMessagingProviderRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    @staticmethod
    def _where(agency_id: uuid.UUID, location_id: uuid.UUID | None, channel: Channel) -> Any:
        p = messaging_providers.c
        owner = p.location_id.is_(None) if location_id is None else p.location_id == location_id
        return and_(p.agency_id == agency_id, owner, p.channel == channel.value)

    async def get(
        self, agency_id: uuid.UUID, location_id: uuid.UUID | None, channel: Channel
    ) -> ProviderRecord | None:
        query = select(messaging_providers).where(self._where(agency_id, location_id, channel))
        row = (await self._c.execute(query)).first()
        return _provider(row) if row else None

    async def put(self, record: ProviderRecord) -> None:
        values = {
            "agency_id": record.agency_id,
            "location_id": record.location_id,
            "channel": record.channel.value,
            "kind": record.kind.value,
            "config_ciphertext": record.config_ciphertext,
            "summary": record.summary,
            "inbound_token": record.inbound_token,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "updated_by": record.updated_by,
        }
        query = (
            insert(messaging_providers)
            .values(id=record.id, created_by=record.updated_by, **values)
            .on_conflict_do_update(
                constraint="messaging_providers_one",
                set_={
                    k: values[k] for k in ("kind", "config_ciphertext", "summary", "updated_at", "updated_by")
                },
            )
        )
        await self._c.execute(query)

    async def delete(self, agency_id: uuid.UUID, location_id: uuid.UUID | None, channel: Channel) -> bool:
        result = await self._c.execute(
            delete(messaging_providers)
            .where(self._where(agency_id, location_id, channel))
            .returning(messaging_providers.c.id)
        )
        return result.first() is not None

    async def resolve(self, location_id: uuid.UUID, channel: Channel) -> ResolvedProvider | None:
        row = (await self._c.execute(_RESOLVE, {"location": location_id, "channel": channel.value})).first()
        if row is None:
            return None
        return ResolvedProvider(
            kind=ProviderKind(row.kind),
            config_ciphertext=bytes(row.config_ciphertext),
            inbound_token=row.inbound_token,
            agency_default=bool(row.agency_default),
        )

    async def all_ciphertexts(self) -> list[tuple[uuid.UUID, str, bytes]]:
        p = messaging_providers.c
        rows = (await self._c.execute(select(p.id, p.kind, p.config_ciphertext).with_for_update())).all()
        return [(r.id, r.kind, bytes(r.config_ciphertext)) for r in rows]

    async def reseal(self, record_id: uuid.UUID, ciphertext: bytes) -> None:
        await self._c.execute(
            update(messaging_providers)
            .where(messaging_providers.c.id == record_id)
            .values(config_ciphertext=ciphertext)
        )


class SqlMessagingSettingsRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def get(self, location_id: uuid.UUID) -> MessagingSettings:
        query = select(messaging_settings).where(messaging_settings.c.location_id == location_id)
        row = (await self._c.execute(query)).first()
        if row is None:
            return MessagingSettings(location_id=location_id)
        quiet = (
            QuietHours(start=row.quiet_start, end=row.quiet_end)
            if row.quiet_start is not None and row.quiet_end is not None
            else None
        )
        return MessagingSettings(
            location_id=location_id,
            quiet_hours=quiet,
            help_text=row.help_text,
            stop_text=row.stop_text,
            start_text=row.start_text,
            sms_per_second=row.sms_per_second,
            email_per_second=row.email_per_second,
        )

    async def put(self, settings: MessagingSettings, updated_by: uuid.UUID | None) -> None:
        quiet = settings.quiet_hours
        values = {
            "quiet_start": quiet.start if quiet else None,
            "quiet_end": quiet.end if quiet else None,
            "help_text": settings.help_text,
            "stop_text": settings.stop_text,
            "start_text": settings.start_text,
            "sms_per_second": settings.sms_per_second,
            "email_per_second": settings.email_per_second,
            "updated_at": func.now(),
            "updated_by": updated_by,
        }
        await self._c.execute(
            insert(messaging_settings)
            .values(location_id=settings.location_id, **values)
            .on_conflict_do_update(index_elements=["location_id"], set_=values)
        )
