"""The SQL repository of messages: the send ledger (one row per message, a cause written once), its
claims and outcomes, and the per-day count of a location's outbound messages."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Row,
    Text,
    any_,
    bindparam,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import (
    Channel,
    Direction,
    Message,
    MessageSource,
)
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows

from .conversations import _after, _uuids, conversations, messages
from .tables import json_rows, recordset_insert

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
