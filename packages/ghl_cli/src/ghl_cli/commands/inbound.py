"""`ghl inbound`: a location's inbound webhook endpoints and the events they received. An endpoint's
signing secret is shown once, when it is created (or rotated)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghl_cli.errors import reported
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, CursorOption, JsonOption, LimitOption, LocationOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_core.inbound.models import EventStatus, InboundEndpoint, InboundEvent
from ghl_core.shared.pagination import Page
from ghl_core.tenancy.permissions import Actor

if TYPE_CHECKING:
    from ghl_adapters.container import Container

app = typer.Typer(help="Create, list and delete a location's inbound webhook endpoints; see their events.")

ENDPOINT_COLUMNS = ("id", "name", "enabled", "secret_hint", "url", "created_at")
EVENT_COLUMNS = ("id", "endpoint_id", "provider_event_id", "type", "status", "attempts", "received_at")
RECEIVE_PATH = "/webhooks/inbound"
EndpointArgument = Annotated[uuid.UUID, typer.Argument(help="The endpoint's id (from `ghl inbound list`).")]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def endpoint_view(endpoint: InboundEndpoint, base_url: str) -> dict[str, Any]:
    return {
        "id": str(endpoint.id),
        "location_id": str(endpoint.location_id),
        "name": endpoint.name,
        "enabled": endpoint.enabled,
        "secret_hint": endpoint.secret_hint,
        "url": f"{base_url}{RECEIVE_PATH}/{endpoint.id}",
        "secret_rotated_at": _time(endpoint.secret_rotated_at),
        "created_at": _time(endpoint.created_at),
    }


def event_view(event: InboundEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "endpoint_id": str(event.endpoint_id) if event.endpoint_id else None,
        "provider": event.provider,
        "provider_event_id": event.provider_event_id,
        "type": event.type,
        "status": event.status.value,
        "attempts": event.attempts,
        "last_error": event.last_error,
        "size": event.size,
        "received_at": _time(event.received_at),
        "processed_at": _time(event.processed_at),
    }


async def create_endpoint(
    container: Container, location_id: uuid.UUID, name: str
) -> tuple[dict[str, Any], str]:
    endpoint, secret = await container.inbound_endpoints().create(
        Actor.operator_at(location_id), {"name": name}
    )
    return endpoint_view(endpoint, container.settings().base_url), secret


async def list_endpoints(
    container: Container, location_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    page: Page[InboundEndpoint] = await container.inbound_endpoints().list(
        Actor.operator_at(location_id), page_request(limit, cursor)
    )
    base_url = container.settings().base_url
    return [endpoint_view(e, base_url) for e in page.items], page.next_cursor


async def delete_endpoint(container: Container, location_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    await container.inbound_endpoints().delete(Actor.operator_at(location_id), endpoint_id)


async def list_events(
    container: Container,
    location_id: uuid.UUID,
    endpoint_id: uuid.UUID | None,
    status: EventStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[InboundEvent]:
    actor = Actor.operator_at(location_id)
    if endpoint_id is not None:
        await container.inbound_endpoints().get(actor, endpoint_id)  # another location's: not found
    return await container.inbound().list_events(
        actor, page_request(limit, cursor), endpoint_id=endpoint_id, status=status
    )


@app.command("create")
def create(
    location: LocationOption,
    name: Annotated[str, typer.Option("--name", help="A label to tell endpoints apart.")] = "Inbound webhook",
    json_output: JsonOption = False,
) -> None:
    """Create an endpoint and print its URL and signing secret. The secret is shown this once."""
    output = Output(json=json_output)
    with reported(output):
        view, secret = with_services(output, lambda c: create_endpoint(c, location, name))
    if output.json:
        output.document({**view, "secret": secret})
        return
    output.record("Inbound webhook created", view)
    output.secret("Signing secret (shown once: store it now)", secret)


@app.command("list")
def list_(
    location: LocationOption,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a location's inbound webhook endpoints (never their secrets)."""
    output = Output(json=json_output)
    with reported(output):
        rows, next_cursor = with_services(output, lambda c: list_endpoints(c, location, limit, cursor))
    output.page("Inbound webhooks", ENDPOINT_COLUMNS, rows, next_cursor)


@app.command("delete")
def delete(endpoint_id: EndpointArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """Delete an endpoint: posts to its URL answer 404 from now on."""
    output = Output(json=json_output)
    with reported(output):
        with_services(output, lambda c: delete_endpoint(c, location, endpoint_id))
    output.record("Inbound webhook deleted", {"id": str(endpoint_id), "deleted": True})


@app.command("events")
def events(
    location: LocationOption,
    endpoint: Annotated[
        uuid.UUID | None, typer.Option("--endpoint", help="Only the events of this endpoint.")
    ] = None,
    status: Annotated[
        EventStatus | None, typer.Option("--status", help="Only events in this status.")
    ] = None,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the events a location's endpoints received, newest first, with their processing status."""
    show_page(
        json_output,
        "Inbound events",
        EVENT_COLUMNS,
        lambda c: list_events(c, location, endpoint, status, limit, cursor),
        event_view,
    )
