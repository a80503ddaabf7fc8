"""`ghl opportunities`: list a location's opportunities and move them between stages and statuses."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghl_cli.errors import reported
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, CursorOption, JsonOption, LimitOption, LocationOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_core.pipelines.models import Opportunity
from ghl_core.shared.pagination import Page
from ghl_core.tenancy.permissions import Actor

if TYPE_CHECKING:
    from ghl_adapters.container import Container

app = typer.Typer(help="List a location's opportunities and move them through their pipeline.")

COLUMNS = ("id", "name", "status", "stage_id", "value", "contact_id", "updated_at")
StatusChoice = Annotated[
    str | None, typer.Option("--status", help="open, won, lost or abandoned.", show_default=False)
]


def opportunity_view(o: Opportunity) -> dict[str, Any]:
    return {
        "id": str(o.id),
        "pipeline_id": str(o.pipeline_id),
        "stage_id": str(o.stage_id),
        "contact_id": str(o.contact_id),
        "name": o.name,
        "value": o.value.snapshot() if o.value else None,
        "status": o.status.value,
        "lost_reason": o.lost_reason,
        "assigned_user_id": str(o.assigned_user_id) if o.assigned_user_id else None,
        "source": o.source,
        "custom_fields": o.custom_fields,
        "last_status_change_at": o.last_status_change_at.isoformat(),
        "last_stage_change_at": o.last_stage_change_at.isoformat(),
        "created_at": o.created_at.isoformat(),
        "updated_at": o.updated_at.isoformat(),
    }


def _row(o: Opportunity) -> dict[str, Any]:
    # Minor units shown as such: the CLI never turns money into floats.
    value = f"{o.value.amount} {o.value.currency} (minor units)" if o.value else None
    return {**opportunity_view(o), "value": value}


async def list_opportunities(
    container: Container,
    location_id: uuid.UUID,
    pipeline: uuid.UUID | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Opportunity]:
    from ghl_core.pipelines.fields import parse_filters

    filters = parse_filters(pipeline_id=str(pipeline) if pipeline else None, status=status)
    return await container.opportunities().list(
        Actor.operator_at(location_id), page_request(limit, cursor), **filters
    )


async def move_opportunity(
    container: Container, location_id: uuid.UUID, opportunity_id: uuid.UUID, data: dict[str, Any]
) -> Opportunity:
    return await container.opportunities().move(Actor.operator_at(location_id), opportunity_id, data)


@app.command("list")
def list_(
    location: LocationOption,
    pipeline: Annotated[uuid.UUID | None, typer.Option("--pipeline", help="Only this pipeline's.")] = None,
    status: StatusChoice = None,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a location's opportunities, newest first."""
    show_page(
        json_output,
        "Opportunities",
        COLUMNS,
        lambda c: list_opportunities(c, location, pipeline, status, limit, cursor),
        _row,
        json_view=opportunity_view,
    )


@app.command("move")
def move(
    opportunity_id: Annotated[uuid.UUID, typer.Argument(help="The opportunity's id.")],
    location: LocationOption,
    stage: Annotated[uuid.UUID | None, typer.Option("--stage", help="A stage of its pipeline.")] = None,
    status: StatusChoice = None,
    lost_reason: Annotated[str | None, typer.Option("--lost-reason", help="Only with --status lost.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Move an opportunity to another stage and/or status; the move is recorded in its history."""
    output = Output(json=json_output)
    data: dict[str, Any] = {}
    if stage is not None:
        data["stage_id"] = str(stage)
    if status is not None:
        data["status"] = status
    if lost_reason is not None:
        data["lost_reason"] = lost_reason
    with reported(output):
        opportunity = with_services(output, lambda c: move_opportunity(c, location, opportunity_id, data))
    output.record("Opportunity moved", opportunity_view(opportunity) if output.json else _row(opportunity))
