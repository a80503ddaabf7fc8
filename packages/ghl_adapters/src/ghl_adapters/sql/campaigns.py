"""SQL tables and repositories of templates and campaigns."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, Row, Table, Text, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.campaigns.models import (
    Campaign,
    CampaignStatus,
    EngagementKind,
    MessageTemplate,
    Recipient,
    RecipientStatus,
)
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import Channel
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows

from .conversations import messages
from .tables import _stamps, _ts, _uuid, json_rows, metadata

message_templates = Table(
    "message_templates",
    metadata,
    _uuid("id", True),
    _uuid("location_id", nullable=False),
    Column("name", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("subject", Text),
    Column("body", Text, nullable=False),
    Column("html", Text),
    *_stamps(),
)

campaigns = Table(
    "campaigns",
    metadata,
    _uuid("id", True),
    _uuid("location_id", nullable=False),
    Column("name", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("status", Text, nullable=False),
    _uuid("template_id"),
    Column("subject", Text),
    Column("body", Text, nullable=False),
    Column("html", Text),
    Column("audience", JSONB, nullable=False),
    _ts("scheduled_at"),
    _ts("started_at"),
    _ts("completed_at"),
    Column("recipients", Integer, nullable=False),
    Column("note", Text),
    *_stamps(),
)

campaign_recipients = Table(
    "campaign_recipients",
    metadata,
    _uuid("campaign_id", True),
    _uuid("contact_id", True),
    _uuid("location_id", nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", Text, nullable=False),
    _uuid("message_id"),
    Column("reason", Text),
)

campaign_events = Table(
    "campaign_events",
    metadata,
    _uuid("campaign_id", True),
    _uuid("contact_id", True),
    _uuid("location_id", nullable=False),
    Column("kind", Text, primary_key=True),
    _ts("first_at", False),
    Column("count", Integer, nullable=False),
)

_TEMPLATE_COLUMNS = (
    "location_id",
    "name",
    "subject",
    "body",
    "html",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
)
_CAMPAIGN_COLUMNS = (
    "location_id",
    "name",
    "template_id",
    "subject",
    "body",
    "html",
    "audience",
    "scheduled_at",
    "started_at",
    "completed_at",
    "recipients",
    "note",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
)


def _after(page: PageRequest) -> tuple[datetime, uuid.UUID] | None:
    if page.after is None:
        return None
    try:
        created, ident = page.after
        return datetime.fromisoformat(created), uuid.UUID(ident)
    except ValueError:
        raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None


def _template(row: Row[Any]) -> MessageTemplate:
    return MessageTemplate(
        id=row.id, channel=Channel(row.channel), **{c: getattr(row, c) for c in _TEMPLATE_COLUMNS}
    )


def _campaign(row: Row[Any]) -> Campaign:
    values = {c: getattr(row, c) for c in _CAMPAIGN_COLUMNS}
    values["audience"] = dict(values["audience"] or {})
    return Campaign(id=row.id, channel=Channel(row.channel), status=CampaignStatus(row.status), **values)


class SqlTemplateRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, template: MessageTemplate) -> None:
        values = {c: getattr(template, c) for c in _TEMPLATE_COLUMNS}
        await self._c.execute(
            insert(message_templates).values(id=template.id, channel=template.channel.value, **values)
        )

    async def get(self, template_id: uuid.UUID) -> MessageTemplate | None:
        row = (
            await self._c.execute(select(message_templates).where(message_templates.c.id == template_id))
        ).first()
        return _template(row) if row else None

    async def update(self, template: MessageTemplate) -> None:
        values = {c: getattr(template, c) for c in _TEMPLATE_COLUMNS}
        await self._c.execute(
            update(message_templates).where(message_templates.c.id == template.id).values(**values)
        )

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[MessageTemplate]:
        t = message_templates.c
        query = select(message_templates).where(t.location_id == location_id, t.deleted_at.is_(None))
        after = _after(page)
        if after is not None:
            query = query.where(tuple_(t.created_at, t.id) > after)
        query = query.order_by(t.created_at, t.id).limit(page.limit + 1)
        rows = [_template(r) for r in (await self._c.execute(query)).all()]
        return page_from_rows(rows, page.limit, lambda x: (x.created_at.isoformat(), str(x.id)))


class SqlCampaignRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, campaign: Campaign) -> None:
        values = {c: getattr(campaign, c) for c in _CAMPAIGN_COLUMNS}
        await self._c.execute(
            insert(campaigns).values(
                id=campaign.id, channel=campaign.channel.value, status=campaign.status.value, **values
            )
        )

    async def get(
        self, campaign_id: uuid.UUID, *, lock: bool = False, share: bool = False
    ) -> Campaign | None:
        query = select(campaigns).where(campaigns.c.id == campaign_id)
        if lock:
            # FOR NO KEY UPDATE, the lock an UPDATE of the row takes anyway: unlike FOR UPDATE it lets
            # the batch writing messages (whose foreign key takes FOR KEY SHARE) finish.
            query = query.with_for_update(key_share=True)
        elif share:
            query = query.with_for_update(read=True)
        row = (await self._c.execute(query)).first()
        return _campaign(row) if row else None

    async def gate(self, campaign_id: uuid.UUID, *, exclusive: bool) -> None:
        # An advisory lock: a heavyweight lock, whose queue is first come first served (a row lock held
        # shared lets new sharers in ahead of a waiting writer, which could wait for as long as batches
        # overlap). Released at commit or rollback.
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await self._c.execute(
            text(f"SELECT {function}(hashtextextended(:key, 0))"),
            {"key": f"campaign:{campaign_id}"},
        )

    async def update(self, campaign: Campaign) -> None:
        values = {c: getattr(campaign, c) for c in _CAMPAIGN_COLUMNS}
        await self._c.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign.id)
            .values(status=campaign.status.value, **values)
        )

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Campaign]:
        c = campaigns.c
        query = select(campaigns).where(c.location_id == location_id, c.deleted_at.is_(None))
        after = _after(page)
        if after is not None:
            query = query.where(tuple_(c.created_at, c.id) < after)
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(page.limit + 1)
        rows = [_campaign(r) for r in (await self._c.execute(query)).all()]
        return page_from_rows(rows, page.limit, lambda x: (x.created_at.isoformat(), str(x.id)))

    async def add_recipients(
        self,
        campaign_id: uuid.UUID,
        location_id: uuid.UUID,
        contact_ids: builtins.list[uuid.UUID],
        first_position: int,
    ) -> int:
        if not contact_ids:
            return 0
        # One statement for the whole chunk: unnest keeps it a single round trip.
        result = await self._c.execute(
            text(
                "INSERT INTO campaign_recipients (campaign_id, contact_id, location_id, position, status) "
                "SELECT :campaign, c.id, :location, :first + c.n - 1, 'pending' "
                "FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS c(id, n) "
                "ON CONFLICT DO NOTHING"
            ),
            {"campaign": campaign_id, "location": location_id, "first": first_position, "ids": contact_ids},
        )
        return int(result.rowcount or 0)

    async def take(
        self, campaign_id: uuid.UUID, limit: int, *, resume: bool = False, after: int = -1
    ) -> builtins.list[Recipient]:
        r = campaign_recipients.c
        query = (
            select(campaign_recipients)
            .where(
                r.campaign_id == campaign_id,
                r.status == ("sending" if resume else "pending"),
                r.position > after,
            )
            .order_by(r.position)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [
            Recipient(
                campaign_id=row.campaign_id,
                contact_id=row.contact_id,
                position=row.position,
                status=RecipientStatus(row.status),
                message_id=row.message_id,
                reason=row.reason,
            )
            for row in (await self._c.execute(query)).all()
        ]

    async def set_recipients(
        self,
        campaign_id: uuid.UUID,
        updates: builtins.list[tuple[uuid.UUID, RecipientStatus, uuid.UUID | None, str | None]],
    ) -> None:
        if not updates:
            return
        await self._c.execute(
            text(
                "UPDATE campaign_recipients r SET status = u.status, "
                "message_id = COALESCE(u.message_id, r.message_id), reason = u.reason "
                "FROM json_to_recordset(CAST(:rows AS json)) "
                "AS u(contact_id uuid, status text, message_id uuid, reason text) "
                # ANY(...) lets the planner use the primary key; a join alone scans the whole audience.
                "WHERE r.campaign_id = :campaign AND r.contact_id = ANY(CAST(:contacts AS uuid[])) "
                # A cancelled recipient stays so: a batch finishing after the cancel does not revive it.
                "AND r.contact_id = u.contact_id AND r.status <> 'cancelled'"
            ),
            {
                "campaign": campaign_id,
                "contacts": [u[0] for u in updates],
                "rows": json_rows(
                    [
                        {"contact_id": c, "status": s.value, "message_id": m, "reason": r}
                        for c, s, m, r in updates
                    ]
                ),
            },
        )

    async def cancel_pending(self, campaign_id: uuid.UUID) -> int:
        r = campaign_recipients.c
        result = await self._c.execute(
            update(campaign_recipients)
            .where(r.campaign_id == campaign_id, r.status == "pending")
            .values(status="cancelled")
        )
        return int(result.rowcount or 0)

    async def recipient_counts(self, campaign_id: uuid.UUID) -> dict[RecipientStatus, int]:
        r = campaign_recipients.c
        rows = await self._c.execute(
            select(r.status, func.count()).where(r.campaign_id == campaign_id).group_by(r.status)
        )
        return {RecipientStatus(s): int(n) for s, n in rows.all()}

    async def message_counts(self, campaign_id: uuid.UUID) -> dict[MessageStatus, int]:
        m = messages.c
        rows = await self._c.execute(
            select(m.status, func.count()).where(m.campaign_id == campaign_id).group_by(m.status)
        )
        return {MessageStatus(s): int(n) for s, n in rows.all()}

    async def record_engagement(
        self,
        campaign_id: uuid.UUID,
        contact_id: uuid.UUID,
        location_id: uuid.UUID,
        kind: EngagementKind,
        at: datetime,
    ) -> bool:
        e = campaign_events
        query = (
            insert(e)
            .values(
                campaign_id=campaign_id,
                contact_id=contact_id,
                location_id=location_id,
                kind=kind.value,
                first_at=at,
                count=1,
            )
            .on_conflict_do_update(
                index_elements=["campaign_id", "contact_id", "kind"], set_={"count": e.c.count + 1}
            )
            .returning(text("(xmax = 0) AS inserted"))
        )
        row = (await self._c.execute(query)).first()
        return bool(row and row.inserted)

    async def engagement_counts(self, campaign_id: uuid.UUID) -> dict[EngagementKind, int]:
        e = campaign_events.c
        rows = await self._c.execute(
            select(e.kind, func.count()).where(e.campaign_id == campaign_id).group_by(e.kind)
        )
        return {EngagementKind(k): int(n) for k, n in rows.all()}

    async def latest_campaign_message(
        self, conversation_id: uuid.UUID, since: datetime
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        m = messages.c
        query = (
            select(m.campaign_id, m.contact_id)
            .where(
                m.conversation_id == conversation_id,
                m.campaign_id.is_not(None),
                m.direction == "outbound",
                m.created_at >= since,
            )
            .order_by(m.created_at.desc())
            .limit(1)
        )
        row = (await self._c.execute(query)).first()
        return (row.campaign_id, row.contact_id) if row else None
