"""The messaging provider and settings repositories' contract, over the in-memory and the SQL
implementation."""

from __future__ import annotations

import uuid
from datetime import time

import pytest
from makers import NOW, World, at

from ghl_core.conversations.models import Channel, MessagingSettings
from ghl_core.conversations.ports import ProviderRecord, ResolvedProvider
from ghl_core.conversations.providers import ProviderKind
from ghl_core.conversations.quiet_hours import QuietHours
from ghl_core.shared.scope import TenantScope


def record(
    world: World, location_id: uuid.UUID | None, kind: ProviderKind, **fields: object
) -> ProviderRecord:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "agency_id": world.agency_id,
        "location_id": location_id,
        "channel": Channel.SMS,
        "kind": kind,
        "config_ciphertext": f"sealed {kind.value}".encode(),
        "inbound_token": uuid.uuid4().hex,
        "created_at": NOW,
        "updated_at": NOW,
        "summary": {"from": "+15125550100"},
        **fields,
    }
    return ProviderRecord(**values)  # type: ignore[arg-type]


async def test_a_location_sends_with_its_own_provider_else_its_agencys(world: World) -> None:
    agency_scope = TenantScope.agency(world.agency_id)
    default = record(world, None, ProviderKind.SMTP, channel=Channel.EMAIL)
    default_sms = record(world, None, ProviderKind.TWILIO, config_ciphertext=b"sealed default")
    own = record(world, world.location_id, ProviderKind.TWILIO)
    async with world.uow(agency_scope) as work:
        await work.messaging_providers.put(default)
        await work.messaging_providers.put(default_sms)
        await work.commit()
    async with world.uow(world.scope) as work:
        await work.messaging_providers.put(own)
        await work.commit()

    async with world.uow(TenantScope.anonymous()) as work:
        assert await work.messaging_providers.resolve(world.location_id, Channel.SMS) == ResolvedProvider(
            kind=ProviderKind.TWILIO,
            config_ciphertext=b"sealed twilio",
            inbound_token=own.inbound_token,
            agency_default=False,
        )
        email = await work.messaging_providers.resolve(world.location_id, Channel.EMAIL)
        assert email is not None
        assert (email.kind, email.agency_default) == (ProviderKind.SMTP, True)
        assert await work.messaging_providers.resolve(world.other_location_id, Channel.SMS) is None
        assert await work.messaging_providers.resolve(uuid.uuid4(), Channel.SMS) is None
        assert await work.messaging_providers.get(world.agency_id, world.location_id, Channel.SMS) is None

    async with world.uow(world.scope) as work:
        assert (await work.messaging_providers.get(world.agency_id, world.location_id, Channel.SMS)) == own
        # The agency's defaults are not the location's rows.
        assert await work.messaging_providers.get(world.agency_id, None, Channel.SMS) is None
        replaced = record(world, world.location_id, ProviderKind.SENDGRID, updated_at=at(5))
        await work.messaging_providers.put(replaced)
        await work.commit()
    async with world.uow(world.scope) as work:
        stored = await work.messaging_providers.get(world.agency_id, world.location_id, Channel.SMS)
        assert stored is not None
        # The one row is replaced in place: its id, token and creation time stay.
        assert (stored.id, stored.inbound_token, stored.created_at) == (own.id, own.inbound_token, NOW)
        assert (stored.kind, stored.config_ciphertext, stored.updated_at) == (
            ProviderKind.SENDGRID,
            b"sealed sendgrid",
            at(5),
        )
        assert await work.messaging_providers.delete(world.agency_id, world.location_id, Channel.SMS) is True
        assert await work.messaging_providers.delete(world.agency_id, world.location_id, Channel.SMS) is False
        await work.commit()
    async with world.uow(TenantScope.anonymous()) as work:
        fallback = await work.messaging_providers.resolve(world.location_id, Channel.SMS)
        assert fallback is not None
        assert (fallback.config_ciphertext, fallback.agency_default) == (b"sealed default", True)
    async with world.uow(agency_scope) as work:
        assert (await work.messaging_providers.get(world.agency_id, None, Channel.EMAIL)) == default
        found = await work.messaging_providers.all_ciphertexts()
        assert sorted(found) == sorted(
            [(default.id, "smtp", b"sealed smtp"), (default_sms.id, "twilio", b"sealed default")]
        )
        await work.messaging_providers.reseal(default.id, b"resealed")
        await work.commit()
    async with world.uow(agency_scope) as work:
        resealed = await work.messaging_providers.get(world.agency_id, None, Channel.EMAIL)
        assert resealed is not None
        assert resealed.config_ciphertext == b"resealed"


async def test_the_local_outbox_is_no_stored_configuration(world: World) -> None:
    async with world.uow(world.scope) as work:
        with pytest.raises(Exception):  # each store refuses it its own way
            await work.messaging_providers.put(record(world, world.location_id, ProviderKind.OUTBOX))


async def test_settings_default_until_written(world: World) -> None:
    async with world.uow(world.scope) as work:
        assert await work.messaging_settings.get(world.location_id) == MessagingSettings(
            location_id=world.location_id
        )
        written = MessagingSettings(
            location_id=world.location_id,
            quiet_hours=QuietHours(start=time(21, 0), end=time(8, 0)),
            stop_text="bye",
            sms_per_second=5,
        )
        await work.messaging_settings.put(written, None)
        await work.commit()
    async with world.uow(world.scope) as work:
        assert await work.messaging_settings.get(world.location_id) == written
        changed = MessagingSettings(location_id=world.location_id, help_text="help")
        await work.messaging_settings.put(changed, None)
        await work.commit()
    async with world.uow(world.scope) as work:
        assert await work.messaging_settings.get(world.location_id) == changed
    async with world.uow(world.other_scope) as work:
        assert await work.messaging_settings.get(world.location_id) == MessagingSettings(
            location_id=world.location_id
        )
