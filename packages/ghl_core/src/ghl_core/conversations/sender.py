"""What the contexts above conversations (campaigns, workflows) send through: queueing messages under
the location's allowance, in their own transaction, and delivering a batch at once (a campaign does not
wait for the send jobs). One collaborator for them, two services here: sending and delivery."""

from __future__ import annotations

import uuid

from ghl_core.contacts.models import Contact
from ghl_core.conversations.delivery import DeliveryOutcome, DeliveryService
from ghl_core.conversations.drafts import Draft, Queued
from ghl_core.conversations.models import Message, MessageSource
from ghl_core.conversations.ports import SendingUnitOfWork
from ghl_core.conversations.quota import SendQuota
from ghl_core.conversations.sending import SendingService
from ghl_core.tenancy.models import Location


class MessageSender:
    def __init__(self, *, sending: SendingService, delivery: DeliveryService) -> None:
        self._sending = sending
        self._delivery = delivery

    @property
    def quota(self) -> SendQuota:
        return self._sending.quota

    async def enqueue(
        self,
        uow: SendingUnitOfWork,
        location: Location,
        contact: Contact,
        draft: Draft,
        *,
        source: MessageSource,
        cause: str | None,
        created_by: uuid.UUID | None = None,
        compliance: bool = False,
        defer: bool = True,
    ) -> tuple[Message, bool]:
        """See `SendingService.enqueue`."""
        return await self._sending.enqueue(
            uow,
            location,
            contact,
            draft,
            source=source,
            cause=cause,
            created_by=created_by,
            compliance=compliance,
            defer=defer,
        )

    async def enqueue_many(
        self,
        uow: SendingUnitOfWork,
        location: Location,
        items: list[tuple[Contact, Draft, str | None]],
        *,
        source: MessageSource,
        created_by: uuid.UUID | None = None,
        compliance: bool = False,
        defer: bool = True,
        metered: bool = True,
    ) -> list[Queued]:
        """See `SendingService.enqueue_many`."""
        return await self._sending.enqueue_many(
            uow,
            location,
            items,
            source=source,
            created_by=created_by,
            compliance=compliance,
            defer=defer,
            metered=metered,
        )

    async def deliver_many(
        self,
        location_id: uuid.UUID,
        message_ids: list[uuid.UUID],
        *,
        final_attempt: bool = True,
        contacts: dict[uuid.UUID, Contact] | None = None,
        campaign_id: uuid.UUID | None = None,
    ) -> DeliveryOutcome:
        """See `DeliveryService.deliver_many`."""
        return await self._delivery.deliver_many(
            location_id,
            message_ids,
            final_attempt=final_attempt,
            contacts=contacts,
            campaign_id=campaign_id,
        )
