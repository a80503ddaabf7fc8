"""`ghl webhooks`: a location's outbound webhook subscriptions, their delivery log and redelivery. A
subscription's signing secret is shown once, when it is created or rotated."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghl_cli.errors import reported
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, CursorOption, JsonOption, LimitOption, LocationOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_core.shared.errors import ValidationFailed
from ghl_core.tenancy.permissions import Actor
from ghl_core.webhooks.models import Attempt, Delivery, DeliveryStatus, Subscription

if TYPE_CHECKING:
    from ghl_adapters.container import Container
    from ghl_core.webhooks.services import WebhookService

app = typer.Typer(help="Subscribe URLs to a location's events; see and replay deliveries.")

COLUMNS = ("id", "url", "event_types", "active", "disabled_reason", "consecutive_failures")
DELIVERY_COLUMNS = ("id", "event_type", "status", "attempts", "last_status_code", "event_id", "created_at")
ATTEMPT_COLUMNS = ("number", "started_at", "duration_ms", "status_code", "error", "response_excerpt")
WebhookArgument = Annotated[uuid.UUID, typer.Argument(help="The subscription's id (`ghl webhooks list`).")]
EventTypesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--event-type",
        help="An event type, e.g. ContactCreate (repeatable or comma-separated; `ghl webhooks event-types`).",
    ),
]


def subscription_view(s: Subscription) -> dict[str, Any]:
    return {
        "id": str(s.id),
        "url": s.url,
        "description": s.description,
        "event_types": list(s.event_types),
        "active": s.active,
        "disabled_reason": s.disabled_reason,
        "disabled_at": s.disabled_at.isoformat() if s.disabled_at else None,
        "consecutive_failures": s.consecutive_failures,
        "created_at": s.created_at.isoformat(),
        "updated_at": s.updated_at.isoformat(),
    }


def delivery_view(d: Delivery) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "subscription_id": str(d.subscription_id),
        "event_id": str(d.event_id),
        "event_type": d.event_type,
        "entity_id": str(d.entity_id),
        "status": d.status.value,
        "attempts": d.attempts,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
        "created_at": d.created_at.isoformat(),
    }


def attempt_view(a: Attempt) -> dict[str, Any]:
    return {
        "number": a.number,
        "started_at": a.started_at.isoformat(),
        "duration_ms": a.duration_ms,
        "status_code": a.status_code,
        "error": a.error,
        "response_excerpt": a.response_excerpt,
    }


def split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _service(c: Container) -> WebhookService:
    return c.webhooks()


def _show_secret(output: Output, title: str, subscription: Subscription, secret: str) -> None:
    if output.json:
        output.document({**subscription_view(subscription), "secret": secret})
        return
    output.record(title, subscription_view(subscription))
    output.secret("Signing secret (shown once: store it now)", secret)


@app.command("event-types")
def event_types(json_output: JsonOption = False) -> None:
    """The event types a subscription may take."""
    from ghl_core.webhooks.services import WebhookService

    output = Output(json=json_output)
    rows = [{"name": n, "description": d} for n, d in WebhookService.event_types()]
    output.page("Event types", ("name", "description"), rows, None)


@app.command("list")
def list_(
    location: LocationOption,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a location's webhook subscriptions, newest first."""
    actor = Actor.operator_at(location)
    show_page(
        json_output,
        "Webhooks",
        COLUMNS,
        lambda c: _service(c).list(actor, page_request(limit, cursor)),
        subscription_view,
    )


@app.command("create")
def create(
    location: LocationOption,
    url: Annotated[str, typer.Option("--url", help="Where to POST events (https).")],
    types: EventTypesOption = None,
    description: Annotated[str | None, typer.Option("--description", help="A note.")] = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it paused.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Subscribe a URL to events. Prints the signing secret this once."""
    output = Output(json=json_output)
    actor = Actor.operator_at(location)
    data: dict[str, Any] = {"url": url, "event_types": split(types), "active": not inactive}
    if description is not None:
        data["description"] = description
    with reported(output):
        subscription, secret = with_services(output, lambda c: _service(c).create(actor, data))
    _show_secret(output, "Webhook created", subscription, secret)


@app.command("show")
def show(webhook_id: WebhookArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """One subscription (never its secret)."""
    output = Output(json=json_output)
    actor = Actor.operator_at(location)
    with reported(output):
        subscription = with_services(output, lambda c: _service(c).get(actor, webhook_id))
    output.record("Webhook", subscription_view(subscription))


@app.command("update")
def update(
    webhook_id: WebhookArgument,
    location: LocationOption,
    url: Annotated[str | None, typer.Option("--url", help="A new URL.")] = None,
    types: EventTypesOption = None,
    description: Annotated[str | None, typer.Option("--description", help="A new note.")] = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--inactive", help="Turn on (clears a disable) or pause.", show_default=False),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Change a subscription's URL, event types, note or active flag."""
    output = Output(json=json_output)
    actor = Actor.operator_at(location)
    data: dict[str, Any] = {
        k: v
        for k, v in {
            "url": url,
            "event_types": split(types),
            "description": description,
            "active": active,
        }.items()
        if v is not None
    }
    with reported(output):
        subscription = with_services(output, lambda c: _service(c).update(actor, webhook_id, data))
    output.record("Webhook updated", subscription_view(subscription))


@app.command("delete")
def delete(webhook_id: WebhookArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """Delete a subscription: nothing more is sent to it; its delivery log is kept."""
    output = Output(json=json_output)
    actor = Actor.operator_at(location)
    with reported(output):
        with_services(output, lambda c: _service(c).delete(actor, webhook_id))
    output.record("Webhook deleted", {"id": str(webhook_id), "deleted": True})


@app.command("rotate-secret")
def rotate_secret(
    webhook_id: WebhookArgument, location: LocationOption, json_output: JsonOption = False
) -> None:
    """Replace the signing secret; prints the new one this once."""
    output = Output(json=json_output)
    actor = Actor.operator_at(location)
    with reported(output):
        subscription, secret = with_services(output, lambda c: _service(c).rotate_secret(actor, webhook_id))
    _show_secret(output, "Secret rotated", subscription, secret)


@app.command("deliveries")
def deliveries(
    webhook_id: WebhookArgument,
    location: LocationOption,
    delivery: Annotated[
        uuid.UUID | None, typer.Option("--delivery", help="Show this delivery with its attempts.")
    ] = None,
    status: Annotated[
        DeliveryStatus | None, typer.Option("--status", help="Only deliveries in this state.")
    ] = None,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """The delivery log of a subscription, newest first; or one delivery and its attempts."""
    output = Output(json=json_output)
    actor = Actor.operator_at(location)
    if delivery is not None:
        delivery_id = delivery
        with reported(output):
            found = with_services(output, lambda c: _service(c).delivery(actor, webhook_id, delivery_id))
        attempts = [attempt_view(a) for a in found.attempts]
        if output.json:
            output.document({**delivery_view(found.delivery), "attempt_log": attempts})
            return
        output.record("Delivery", delivery_view(found.delivery))
        output.table("Attempts", ATTEMPT_COLUMNS, attempts)
        return
    with reported(output):
        page = with_services(
            output, lambda c: _service(c).deliveries(actor, webhook_id, page_request(limit, cursor), status)
        )
    output.page("Deliveries", DELIVERY_COLUMNS, [delivery_view(d) for d in page.items], page.next_cursor)


@app.command("redeliver")
def redeliver(
    webhook_id: WebhookArgument,
    location: LocationOption,
    delivery: Annotated[uuid.UUID | None, typer.Option("--delivery", help="A past delivery's id.")] = None,
    event: Annotated[
        uuid.UUID | None, typer.Option("--event", help="Any past event of the location, by id.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Send a past delivery (or any past event) again, with the same webhook-id. A worker sends it."""
    output = Output(json=json_output)
    actor = Actor.operator_at(location)
    with reported(output):
        if (delivery is None) == (event is None):
            raise ValidationFailed.one("/delivery", "give either --delivery or --event")
        if delivery is not None:
            delivery_id = delivery
            queued = with_services(output, lambda c: _service(c).redeliver(actor, webhook_id, delivery_id))
        else:
            event_id = event
            assert event_id is not None  # noqa: S101 - checked above
            queued = with_services(output, lambda c: _service(c).redeliver_event(actor, webhook_id, event_id))
    output.record("Redelivery queued", delivery_view(queued))
