"""Rows the contract tests of webhooks, inbound, conversations, campaigns and workflows start from, made
through the repositories (so the SQL foreign keys find what they refer to)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from contract_world import NOW, World

from ghl_core.contacts.models import Contact, DuplicatePolicy
from ghl_core.conversations.gateways import MessageStatus
from ghl_core.conversations.models import Channel, Conversation, Direction, Message, MessageSource
from ghl_core.shared.scope import TenantScope

__all__ = ["NOW", "World", "at", "message", "new_contact", "new_conversation"]


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


async def new_contact(world: World, location_id: uuid.UUID | None = None) -> uuid.UUID:
    location = location_id or world.location_id
    contact = Contact(
        id=uuid.uuid4(),
        location_id=location,
        created_at=NOW,
        updated_at=NOW,
        first_name="Ada",
        email=f"{uuid.uuid4().hex[:10]}@example.com",
    )
    async with world.uow(TenantScope.location(location)) as work:
        await work.contacts.add(contact, DuplicatePolicy(allow_duplicates=True))
        await work.commit()
    return contact.id


async def new_conversation(
    world: World, contact_id: uuid.UUID, location_id: uuid.UUID | None = None, channel: Channel = Channel.SMS
) -> Conversation:
    location = location_id or world.location_id
    conversation = Conversation(
        id=uuid.uuid4(),
        location_id=location,
        contact_id=contact_id,
        channel=channel,
        created_at=NOW,
        updated_at=NOW,
    )
    async with world.uow(TenantScope.location(location)) as work:
        stored: Conversation = await work.conversations.get_or_create(conversation)
        await work.commit()
    return stored


def message(
    conversation: Conversation,
    *,
    minutes: int = 0,
    cause: str | None = None,
    status: MessageStatus = MessageStatus.QUEUED,
    direction: Direction = Direction.OUTBOUND,
    **fields: Any,
) -> Message:
    return Message(
        id=uuid.uuid4(),
        location_id=conversation.location_id,
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        channel=conversation.channel,
        direction=direction,
        status=status,
        source=MessageSource.API,
        created_at=at(minutes),
        updated_at=at(minutes),
        body=f"hello {minutes}",
        recipient="+15125550100",
        cause=cause,
        **fields,
    )
