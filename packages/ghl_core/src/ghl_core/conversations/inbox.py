"""The inbox: a location's conversations and their threads, read, marked read or unread, assigned, and
what the local outbox took."""

from __future__ import annotations

import uuid

from ghl_core.conversations.models import Conversation, Message
from ghl_core.conversations.ports import InboxFilter, InboxUnitOfWork
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.assignees import check_assignee
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.permissions import Actor, Permission


class InboxService:
    def __init__(self, *, uow: UnitOfWorkFactory[InboxUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def list(self, actor: Actor, flt: InboxFilter, page: PageRequest) -> Page[Conversation]:
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.conversations.list(location_id, flt, page)

    async def _visible(
        self, uow: InboxUnitOfWork, location_id: uuid.UUID, conversation_id: uuid.UUID, *, lock: bool = False
    ) -> Conversation:
        conversation = await uow.conversations.get(conversation_id, lock=lock)
        if conversation is None or conversation.location_id != location_id:
            raise NotFound(f"conversation {conversation_id} not found")
        return conversation

    async def get(self, actor: Actor, conversation_id: uuid.UUID) -> Conversation:
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, location_id, conversation_id)

    async def thread(self, actor: Actor, conversation_id: uuid.UUID, page: PageRequest) -> Page[Message]:
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            await self._visible(uow, location_id, conversation_id)
            return await uow.messages.thread(conversation_id, page)

    async def mark(self, actor: Actor, conversation_id: uuid.UUID, *, read: bool) -> Conversation:
        location_id = actor.require_location(Permission.CONVERSATIONS_WRITE)
        async with self._uow(actor.scope) as uow:
            conversation = await self._visible(uow, location_id, conversation_id, lock=True)
            wanted = 0 if read else max(conversation.unread_count, 1)
            if conversation.unread_count != wanted:
                conversation.unread_count = wanted
                conversation.updated_at = self._clock.now()
                await uow.conversations.update(conversation)
                await uow.commit()
            return conversation

    async def assign(
        self, actor: Actor, conversation_id: uuid.UUID, user_id: uuid.UUID | None
    ) -> Conversation:
        location_id = actor.require_location(Permission.CONVERSATIONS_WRITE)
        async with self._uow(actor.scope) as uow:
            conversation = await self._visible(uow, location_id, conversation_id, lock=True)
            if conversation.assigned_user_id != user_id:
                if user_id is not None:
                    location = await live_location(uow, location_id)
                    await check_assignee(uow, location.agency_id, location_id, user_id)
                conversation.assigned_user_id = user_id
                conversation.updated_at = self._clock.now()
                await uow.conversations.update(conversation)
                await uow.commit()
            return conversation

    async def get_message(self, actor: Actor, message_id: uuid.UUID) -> Message:
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            message = await uow.messages.get(message_id)
        if message is None or message.location_id != location_id:
            raise NotFound(f"message {message_id} not found")
        return message

    async def outbox(self, actor: Actor, page: PageRequest) -> Page[Message]:
        """What the local outbox adapter took (nothing of it left the platform)."""
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.messages.outbox(location_id, page)
