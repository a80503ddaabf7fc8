"""Inbound webhooks: the unauthenticated URL senders post to (POST /webhooks/inbound/{id}), and a location's
management of its endpoints and of the events they received (/api/v1/inbound-webhooks)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from ghl_core.inbound.endpoints import InboundEndpointService
from ghl_core.inbound.models import EventStatus
from ghl_core.inbound.services import InboundService
from ghl_core.shared.errors import NotFound
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.permissions import Actor
from ghl_http.deps import container_of
from ghl_http.receiving import Receiver, receive_problems, receive_signed
from ghl_http.schemas import ListOf, page_of
from ghl_http.schemas_inbound import (
    RECEIVE_PATH,
    InboundEndpointIn,
    InboundEndpointOut,
    InboundEndpointPatch,
    InboundEndpointWithSecretOut,
    InboundEventDetailOut,
    InboundEventOut,
    ReceiptOut,
)


def provide_inbound(state: State) -> InboundService:
    return container_of(state).inbound()


def provide_inbound_endpoints(state: State) -> InboundEndpointService:
    return container_of(state).inbound_endpoints()


def provide_base_url(state: State) -> str:
    return container_of(state).settings().base_url


DEPENDENCIES = {
    "inbound": Provide(provide_inbound, sync_to_thread=False),
    "inbound_endpoints": Provide(provide_inbound_endpoints, sync_to_thread=False),
    "base_url": Provide(provide_base_url, sync_to_thread=False),
}


class InboundReceiveController(Controller):
    path = RECEIVE_PATH
    tags = ["inbound webhooks"]
    exception_handlers = receive_problems()

    @post(
        "/{endpoint_id:uuid}",
        summary="Receive a webhook (no bearer token: signed per the Standard Webhooks spec)",
        description=(
            "Send `webhook-id`, `webhook-timestamp` and `webhook-signature` as the Standard Webhooks spec "
            "says, signed with the endpoint's `whsec_` secret. 202: stored and queued for processing; "
            "200 with duplicate=true: this webhook-id was received before, nothing more is done; 401: the "
            "signature does not verify (or the timestamp is more than 5 minutes off); 404: no such "
            "endpoint, or it is disabled; 413: the body is too large."
        ),
        status_code=HTTP_202_ACCEPTED,
        security=[{}],
        request_max_body_size=None,  # the receiver enforces GHL_MAX_BODY_BYTES, with its own problem
    )
    async def receive(
        self, endpoint_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], state: State
    ) -> Response[ReceiptOut]:
        container = container_of(state)
        receipt = await receive_signed(
            Receiver.of(container),
            request,
            target=lambda: container.inbound_endpoints().target(endpoint_id),
            target_key=f"inbound:endpoint:{endpoint_id}",
        )
        return Response(
            ReceiptOut.of(receipt), status_code=HTTP_200_OK if receipt.duplicate else HTTP_202_ACCEPTED
        )


class InboundWebhooksController(Controller):
    path = "/inbound-webhooks"
    tags = ["inbound webhooks"]
    dependencies = DEPENDENCIES

    @post("/", status_code=HTTP_201_CREATED, summary="Create an endpoint; its signing secret is shown once")
    async def create_endpoint(
        self,
        data: JSONBody[InboundEndpointIn],
        actor: NamedDependency[Actor],
        inbound_endpoints: NamedDependency[InboundEndpointService],
        base_url: NamedDependency[str],
    ) -> InboundEndpointWithSecretOut:
        endpoint, secret = await inbound_endpoints.create(actor, data.model_dump())
        return InboundEndpointWithSecretOut.with_secret(endpoint, base_url, secret)

    @get("/", summary="List the location's inbound webhook endpoints")
    async def list_endpoints(
        self,
        actor: NamedDependency[Actor],
        inbound_endpoints: NamedDependency[InboundEndpointService],
        page: NamedDependency[PageRequest],
        base_url: NamedDependency[str],
    ) -> ListOf[InboundEndpointOut]:
        listed = await inbound_endpoints.list(actor, page)
        return ListOf[InboundEndpointOut].model_validate(
            page_of(listed, lambda e: InboundEndpointOut.of(e, base_url))
        )

    @get("/{endpoint_id:uuid}", summary="Get an endpoint (never its secret)")
    async def get_endpoint(
        self,
        endpoint_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        inbound_endpoints: NamedDependency[InboundEndpointService],
        base_url: NamedDependency[str],
    ) -> InboundEndpointOut:
        return InboundEndpointOut.of(await inbound_endpoints.get(actor, endpoint_id), base_url)

    @patch("/{endpoint_id:uuid}", summary="Rename, enable or disable an endpoint")
    async def update_endpoint(
        self,
        endpoint_id: FromPath[uuid.UUID],
        data: JSONBody[InboundEndpointPatch],
        actor: NamedDependency[Actor],
        inbound_endpoints: NamedDependency[InboundEndpointService],
        base_url: NamedDependency[str],
    ) -> InboundEndpointOut:
        changed = await inbound_endpoints.update(actor, endpoint_id, data.model_dump(exclude_unset=True))
        return InboundEndpointOut.of(changed, base_url)

    @delete("/{endpoint_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete an endpoint")
    async def delete_endpoint(
        self,
        endpoint_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        inbound_endpoints: NamedDependency[InboundEndpointService],
    ) -> None:
        await inbound_endpoints.delete(actor, endpoint_id)

    @post(
        "/{endpoint_id:uuid}/rotate-secret",
        status_code=HTTP_200_OK,
        summary="Replace the signing secret (shown once); the old one stops verifying at once",
    )
    async def rotate_secret(
        self,
        endpoint_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        inbound_endpoints: NamedDependency[InboundEndpointService],
        base_url: NamedDependency[str],
    ) -> InboundEndpointWithSecretOut:
        endpoint, secret = await inbound_endpoints.rotate_secret(actor, endpoint_id)
        return InboundEndpointWithSecretOut.with_secret(endpoint, base_url, secret)

    @get("/{endpoint_id:uuid}/events", summary="The events an endpoint received, newest first")
    async def list_events(
        self,
        endpoint_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        inbound: NamedDependency[InboundService],
        inbound_endpoints: NamedDependency[InboundEndpointService],
        page: NamedDependency[PageRequest],
        status: Annotated[
            EventStatus | None, QueryParameter(description="Only events in this status")
        ] = None,
    ) -> ListOf[InboundEventOut]:
        await inbound_endpoints.get(actor, endpoint_id)  # another location's endpoint is not found
        listed = await inbound.list_events(actor, page, endpoint_id=endpoint_id, status=status)
        return ListOf[InboundEventOut].model_validate(page_of(listed, InboundEventOut.of))

    @get("/{endpoint_id:uuid}/events/{event_id:uuid}", summary="One received event, with its raw body")
    async def get_event(
        self,
        endpoint_id: FromPath[uuid.UUID],
        event_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        inbound: NamedDependency[InboundService],
    ) -> InboundEventDetailOut:
        event = await inbound.get_event(actor, event_id)
        if event.endpoint_id != endpoint_id:
            raise NotFound(f"inbound event {event_id} not found")
        return InboundEventDetailOut.detail(event)
