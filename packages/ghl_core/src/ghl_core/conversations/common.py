"""Small helpers the conversation services share: the job kinds, the platform as an actor, a message's
domain event, and do-not-disturb set on a recipient's or a provider's word. (The live location is
`ghl_core.tenancy.lookup.live_location`, shared with every context.)"""

from __future__ import annotations

import uuid
from dataclasses import replace

from ghl_core.contacts.models import DndChannel
from ghl_core.conversations.models import PREVIEW, Message
from ghl_core.conversations.ports import DndUnitOfWork
from ghl_core.shared.clock import Clock
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.recording import record_change
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, ActorKind

SEND_KIND = "messages.send"
# A send whose last attempt got no answer: the provider is asked later whether it has the message.
RECONCILE_KIND = "messages.reconcile"


def system_actor(location: Location) -> Actor:
    """The platform acting on what a provider reported (a reply, a bounce, a STOP)."""
    return Actor(ActorKind.SYSTEM, None, location.agency_id, location_id=location.id)


def preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW else flat[: PREVIEW - 1] + "…"


def message_event(clock: Clock, location: Location, kind: str, message: Message) -> DomainEvent:
    return DomainEvent(
        type=kind,
        agency_id=location.agency_id,
        location_id=location.id,
        entity_id=message.id,
        payload={"message": message.snapshot()},
        occurred_at=clock.now(),
    )


async def set_dnd(
    uow: DndUnitOfWork,
    clock: Clock,
    location: Location,
    contact_id: uuid.UUID,
    channel: DndChannel,
    on: bool,
) -> bool:
    """Sets one channel's do-not-disturb, audited and announced as `contact.dnd_changed`; False when
    it already was so."""
    before = await uow.contacts.get(contact_id, for_update=True)
    if before is None or before.deleted_at is not None or before.erased_at is not None:
        return False
    if before.dnd_channels.get(channel.value, False) is on:
        return False
    after = replace(before, dnd_channels={**before.dnd_channels, channel.value: on})
    after.updated_at = clock.now()
    await uow.contacts.update(after, await uow.contacts.policy(location.id))
    await record_change(
        uow,
        clock,
        system_actor(location),
        action="update",
        entity_type="contact",
        entity_id=after.id,
        agency_id=location.agency_id,
        location_id=location.id,
        before=before.snapshot(),
        after=after.snapshot(),
        event_type="contact.dnd_changed",
    )
    return True
