"""/api/v1/webhooks: the location's outbound webhook subscriptions, their delivery log and redelivery."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.permissions import Actor
from ghl_core.webhooks.models import DeliveryStatus
from ghl_core.webhooks.services import WebhookService
from ghl_http.deps import container_of
from ghl_http.schemas import ListOf, page_of
from ghl_http.schemas_webhooks import (
    DeliveryDetailOut,
    DeliveryOut,
    EventTypeOut,
    EventTypesOut,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
    WebhookSecretOut,
)


def provide_webhooks(state: State) -> WebhookService:
    return container_of(state).webhooks()


class WebhooksController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]
    dependencies = {"webhooks": Provide(provide_webhooks, sync_to_thread=False)}

    @get("/event-types", summary="The event types a subscription may take")
    async def list_event_types(self, actor: NamedDependency[Actor]) -> EventTypesOut:
        return EventTypesOut(
            items=[EventTypeOut(name=n, description=d) for n, d in WebhookService.event_types()]
        )

    @get("/", summary="List webhook subscriptions, newest first")
    async def list_webhooks(
        self,
        actor: NamedDependency[Actor],
        webhooks: NamedDependency[WebhookService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[WebhookOut]:
        return ListOf[WebhookOut].model_validate(page_of(await webhooks.list(actor, page), WebhookOut.of))

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Subscribe a URL to events",
        description="The answer carries the signing secret: it is shown this once.",
    )
    async def create_webhook(
        self,
        data: JSONBody[WebhookIn],
        actor: NamedDependency[Actor],
        webhooks: NamedDependency[WebhookService],
    ) -> WebhookSecretOut:
        subscription, secret = await webhooks.create(actor, data.model_dump(exclude_unset=True))
        return WebhookSecretOut.with_secret(subscription, secret)

    @get("/{webhook_id:uuid}", summary="Get a webhook subscription")
    async def get_webhook(
        self,
        webhook_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        webhooks: NamedDependency[WebhookService],
    ) -> WebhookOut:
        return WebhookOut.of(await webhooks.get(actor, webhook_id))

    @patch("/{webhook_id:uuid}", summary="Change the URL, event types or active flag")
    async def update_webhook(
        self,
        webhook_id: FromPath[uuid.UUID],
        data: JSONBody[WebhookPatch],
        actor: NamedDependency[Actor],
        webhooks: NamedDependency[WebhookService],
    ) -> WebhookOut:
        return WebhookOut.of(await webhooks.update(actor, webhook_id, data.model_dump(exclude_unset=True)))

    @delete("/{webhook_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a webhook subscription")
    async def delete_webhook(
        self,
        webhook_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        webhooks: NamedDependency[WebhookService],
    ) -> None:
        await webhooks.delete(actor, webhook_id)

    @post(
        "/{webhook_id:uuid}/rotate-secret",
        status_code=HTTP_201_CREATED,
        summary="Replace the signing secret (the new one is shown this once)",
    )
    async def rotate_webhook_secret(
        self,
        webhook_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        webhooks: NamedDependency[WebhookService],
    ) -> WebhookSecretOut:
        subscription, secret = await webhooks.rotate_secret(actor, webhook_id)
        return WebhookSecretOut.with_secret(subscription, secret)

    @get("/{webhook_id:uuid}/deliveries", summary="The delivery log, newest first")
    async def list_deliveries(
        self,
        webhook_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        webhooks: NamedDependency[WebhookService],
        page: NamedDependency[PageRequest],
        status: Annotated[
            DeliveryStatus | None, QueryParameter(description="Only deliveries in this state")
        ] = None,
    ) -> ListOf[DeliveryOut]:
        found = await webhooks.deliveries(actor, webhook_id, page, status)
        return ListOf[DeliveryOut].model_validate(page_of(found, DeliveryOut.of))

    @get("/{webhook_id:uuid}/deliveries/{delivery_id:uuid}", summary="A delivery and its attempts")
    async def get_delivery(
        self,
        webhook_id: FromPath[uuid.UUID],
        delivery_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        webhooks: NamedDependency[WebhookService],
    ) -> DeliveryDetailOut:
        return DeliveryDetailOut.detail(await webhooks.delivery(actor, webhook_id, delivery_id))

    @post(
        "/{webhook_id:uuid}/deliveries/{delivery_id:uuid}/redeliver",
        status_code=HTTP_202_ACCEPTED,
        summary="Send a delivery again (same webhook-id)",
    )
    async def redeliver(
        self,
        webhook_id: FromPath[uuid.UUID],
        delivery_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        webhooks: NamedDependency[WebhookService],
    ) -> DeliveryOut:
        return DeliveryOut.of(await webhooks.redeliver(actor, webhook_id, delivery_id))

    @post(
        "/{webhook_id:uuid}/events/{event_id:uuid}/redeliver",
        status_code=HTTP_202_ACCEPTED,
        summary="Send any past event of the location to this subscription",
    )
    async def redeliver_event(
        self,
        webhook_id: FromPath[uuid.UUID],
        event_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        webhooks: NamedDependency[WebhookService],
    ) -> DeliveryOut:
        return DeliveryOut.of(await webhooks.redeliver_event(actor, webhook_id, event_id))
