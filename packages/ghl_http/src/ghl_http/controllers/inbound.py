"""Inbound webhooks: the unauthenticated URL senders post to (POST /webhooks/inbound/{id}), and a location's
management of its endpoints and of the events they received (/api/v1/inbound-webhooks)."""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from ghl_adapters.container import Container
from ghl_core.inbound.endpoints import InboundEndpointService
from ghl_core.inbound.models import (
    CLIENT_LIMIT,
    ENDPOINT_LIMIT,
    BodyTooLarge,
    EventStatus,
    InboundRequest,
    SignatureInvalid,
)
from ghl_core.inbound.services import InboundService
from ghl_core.shared.errors import DomainError, NotFound, TooManyRequests
from ghl_core.shared.pagination import PageRequest
from ghl_core.shared.ratelimit import RateLimitPolicy
from ghl_core.tenancy.permissions import Actor
from ghl_http.problems import PROBLEM_JSON, domain_problem, problem_body
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


def _container(state: State) -> Container:
    container: Container = state["container"]
    return container


def provide_inbound(state: State) -> InboundService:
    return _container(state).inbound()


def provide_inbound_endpoints(state: State) -> InboundEndpointService:
    return _container(state).inbound_endpoints()


def provide_base_url(state: State) -> str:
    return _container(state).settings().base_url


DEPENDENCIES = {
    "inbound": Provide(provide_inbound, sync_to_thread=False),
    "inbound_endpoints": Provide(provide_inbound_endpoints, sync_to_thread=False),
    "base_url": Provide(provide_base_url, sync_to_thread=False),
}
_STATUS = {SignatureInvalid: 401, BodyTooLarge: 413}


def receive_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Problem documents for the receiving URL's own errors (a bad signature is no bearer challenge)."""
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for these domain errors only
    status, headers, fields = domain_problem(exc)
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), status)
    body = problem_body(status, exc.detail, instance=request.url.path, **fields)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def _body(request: Request[Any, Any, Any], headers: dict[str, str], limit: int) -> bytes:
    too_large = BodyTooLarge(f"the request body is over {limit} bytes")
    try:
        if int(headers.get("content-length") or 0) > limit:
            raise too_large
    except ValueError:
        pass
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _limit(container: Container, key: str, policy: RateLimitPolicy) -> None:
    decision = await container.rate_limiter().acquire(key, policy)
    if not decision.allowed:
        retry = max(1, math.ceil(decision.retry_after))
        raise TooManyRequests("too many webhook deliveries; retry later", retry)


class InboundReceiveController(Controller):
    path = RECEIVE_PATH
    tags = ["inbound webhooks"]
    exception_handlers = {SignatureInvalid: receive_problem, BodyTooLarge: receive_problem}

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
        request_max_body_size=None,  # _body() enforces GHL_MAX_BODY_BYTES itself, with its own problem
    )
    async def receive(
        self, endpoint_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], state: State
    ) -> Response[ReceiptOut]:
        container = _container(state)
        settings = container.settings()
        client = request.client.host if request.client else "unknown"
        await _limit(container, f"inbound:ip:{client}", CLIENT_LIMIT)
        headers = _headers(request)
        body = await _body(request, headers, settings.max_body_bytes)
        target = await container.inbound_endpoints().target(endpoint_id)
        await _limit(container, f"inbound:endpoint:{endpoint_id}", ENDPOINT_LIMIT)
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = f"{settings.base_url}{request.url.path}" + (f"?{query}" if query else "")
        receipt = await container.inbound().receive(
            target, InboundRequest(method=request.method, url=url, headers=headers, body=body)
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
