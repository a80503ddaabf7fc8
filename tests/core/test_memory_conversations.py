"""The conversations services on `build_memory_container()` (no database): a send delivered to the local
outbox by the inline job queue, the inbox, an inbound SMS threaded in, and the messaging settings."""

from __future__ import annotations

import pytest

from ghl_adapters.memory.container import MemoryContainer, build_memory_container
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.inbound import InboundSms, StatusUpdate
from ghl_core.conversations.models import Channel, Direction
from ghl_core.conversations.ports import InboxFilter
from ghl_core.conversations.providers import ProviderKind
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.pagination import PageRequest
from ghl_core.shared.scope import TenantScope
from ghl_core.tenancy.models import Location, PlanTier
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import NewLocation


@pytest.fixture
def app() -> MemoryContainer:
    return build_memory_container(clock=FixedClock())


async def place(app: MemoryContainer) -> tuple[Location, Actor, Actor]:
    operator = Actor.operator()
    agency = await app.tenancy.create_agency(operator, "Memory Agency")
    location = await app.tenancy.create_location(
        operator, NewLocation("Alpha", timezone="America/Chicago", tier=PlanTier.PRO), agency.id
    )
    other = await app.tenancy.create_location(operator, NewLocation("Beta", tier=PlanTier.PRO), agency.id)
    return location, Actor.operator_at(location.id), Actor.operator_at(other.id)


async def test_a_send_reaches_the_outbox_once_and_shows_in_the_inbox(app: MemoryContainer) -> None:
    _, here, elsewhere = await place(app)
    ann = await app.contacts.create(here, {"first_name": "Ann", "phone": "+13125550101"})

    message, created = await app.message_sending.send(
        here, ann.id, {"channel": "sms", "body": "See you at 3", "cause": "appointment:1"}
    )
    again, created_again = await app.message_sending.send(
        here, ann.id, {"channel": "sms", "body": "See you at 3", "cause": "appointment:1"}
    )
    assert created is True
    assert (created_again, again.id) == (False, message.id)  # the cause sends once

    await app.queue.run_pending()  # inline already: nothing is left
    sent = await app.inbox.get_message(here, message.id)
    assert sent.status is MessageStatus.DELIVERED
    assert sent.provider == "outbox"
    outbox = await app.inbox.outbox(here, PageRequest())
    assert [m.body for m in outbox.items] == ["See you at 3"]

    listed = await app.inbox.list(here, InboxFilter(), PageRequest())
    assert [(c.contact_id, c.channel, c.last_direction) for c in listed.items] == [
        (ann.id, Channel.SMS, Direction.OUTBOUND)
    ]
    thread = await app.inbox.thread(here, listed.items[0].id, PageRequest())
    assert [m.id for m in thread.items] == [message.id]
    assert (await app.inbox.list(elsewhere, InboxFilter(), PageRequest())).items == []
    with pytest.raises(NotFound):
        await app.inbox.get_message(elsewhere, message.id)


async def test_an_inbound_sms_is_threaded_once_and_marked_read(app: MemoryContainer) -> None:
    location, here, _ = await place(app)
    ann = await app.contacts.create(here, {"first_name": "Ann", "phone": "+13125550101"})
    sms = InboundSms(
        provider="twilio",
        provider_message_id="SM1",
        from_number="+13125550101",
        to_number="+13125550199",
        body="Running late",
    )
    for _ in range(2):  # a provider's retry records nothing twice
        async with app.uow(TenantScope.location(location.id)) as uow:
            await app.message_receiving.receive_sms(uow, location, sms)
            await uow.commit()
    listed = await app.inbox.list(here, InboxFilter(unread=True), PageRequest())
    assert [(c.contact_id, c.unread_count) for c in listed.items] == [(ann.id, 1)]
    thread = await app.inbox.thread(here, listed.items[0].id, PageRequest())
    assert [(m.body, m.direction) for m in thread.items] == [("Running late", Direction.INBOUND)]
    read = await app.inbox.mark(here, listed.items[0].id, read=True)
    assert read.unread_count == 0


async def test_messaging_settings_are_the_locations_own(app: MemoryContainer) -> None:
    location, here, elsewhere = await place(app)
    assert (await app.messaging_setup.get_settings(here)).location_id == location.id
    changed = await app.messaging_setup.update_settings(here, {"stop_text": "Bye for now"})
    assert changed.stop_text == "Bye for now"
    assert (await app.messaging_setup.get_settings(here)).stop_text == "Bye for now"
    assert (await app.messaging_setup.get_settings(elsewhere)).stop_text != "Bye for now"


async def test_delivery_reports_move_a_message_forward_only(app: MemoryContainer) -> None:
    location, here, _ = await place(app)
    ann = await app.contacts.create(here, {"first_name": "Ann", "phone": "+13125550101"})
    message, _ = await app.message_sending.send(here, ann.id, {"channel": "sms", "body": "Hello"})
    sent = await app.inbox.get_message(here, message.id)
    assert sent.provider_message_id is not None
    read = StatusUpdate(
        provider="outbox", provider_message_id=sent.provider_message_id, status=MessageStatus.READ
    )
    stale = StatusUpdate(
        provider="outbox", provider_message_id=sent.provider_message_id, status=MessageStatus.SENT
    )
    async with app.uow(TenantScope.location(location.id)) as uow:
        assert await app.message_reports.apply_status(uow, location, read) is True
        assert await app.message_reports.apply_status(uow, location, stale) is False
        await uow.commit()
    assert (await app.inbox.get_message(here, message.id)).status is MessageStatus.READ
    unknown = StatusUpdate(provider="outbox", provider_message_id="nope", status=MessageStatus.DELIVERED)
    async with app.uow(TenantScope.location(location.id)) as uow:
        with pytest.raises(LookupError):
            await app.message_reports.apply_status(uow, location, unknown)


async def test_a_locations_provider_is_stored_sealed_and_resolved(app: MemoryContainer) -> None:
    location, here, elsewhere = await place(app)
    config = {"account_sid": "AC" + "1" * 32, "auth_token": "t" * 32, "from_number": "+14155550100"}
    view = await app.messaging_setup.set_provider(here, Channel.SMS, ProviderKind.TWILIO, config)
    assert view.kind is ProviderKind.TWILIO
    assert "t" * 32 not in str(view.summary)
    assert (await app.messaging_setup.get_provider(here, Channel.SMS)).inbound_token == view.inbound_token
    # Another location of the agency sends with the local outbox, not this location's provider.
    assert (await app.messaging_setup.get_provider(elsewhere, Channel.SMS)).kind is ProviderKind.OUTBOX
    async with app.uow(TenantScope.anonymous()) as uow:  # as a provider's callback finds its key
        resolved = await uow.messaging_providers.resolve(location.id, Channel.SMS)
    assert resolved is not None
    assert (resolved.kind, resolved.agency_default) == (ProviderKind.TWILIO, False)
    assert b"t" * 32 not in resolved.config_ciphertext
    await app.messaging_setup.remove_provider(here, Channel.SMS)
    assert (await app.messaging_setup.get_provider(here, Channel.SMS)).kind is ProviderKind.OUTBOX
