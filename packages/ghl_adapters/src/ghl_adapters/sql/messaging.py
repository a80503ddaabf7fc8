"""SQL repositories of messaging provider configurations (encrypted, resolved per location with the
agency's default as fallback) and of a location's messaging settings."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ghl_core.conversations.models import (
    Channel,
    MessagingSettings,
)
from ghl_core.conversations.ports import (
    ProviderRecord,
    ResolvedProvider,
)
from ghl_core.conversations.providers import ProviderKind
from ghl_core.conversations.quiet_hours import QuietHours

from .conversations import messaging_providers, messaging_settings

_RESOLVE = text(
    "SELECT kind, config_ciphertext, inbound_token, agency_default "
    "FROM ghl_messaging_provider(:location, :channel)"
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
