"""`ghl pipelines`: a location's pipelines and their stages."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghl_cli.errors import reported
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, CursorOption, JsonOption, LimitOption, LocationOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_core.pipelines.models import Pipeline
from ghl_core.shared.pagination import Page
from ghl_core.tenancy.permissions import Actor

if TYPE_CHECKING:
    from ghl_adapters.container import Container

app = typer.Typer(help="List and create a location's pipelines.")

COLUMNS = ("id", "name", "stages", "created_at")


def pipeline_view(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "id": str(pipeline.id),
        "name": pipeline.name,
        "stages": [{"id": str(s.id), "name": s.name, "position": s.position} for s in pipeline.stages],
        "created_at": pipeline.created_at.isoformat(),
        "updated_at": pipeline.updated_at.isoformat(),
    }


def _row(pipeline: Pipeline) -> dict[str, Any]:
    return {**pipeline_view(pipeline), "stages": [s.name for s in pipeline.stages]}


async def list_pipelines(
    container: Container, location_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[Pipeline]:
    return await container.pipelines().list(Actor.operator_at(location_id), page_request(limit, cursor))


async def create_pipeline(
    container: Container, location_id: uuid.UUID, name: str, stages: list[str]
) -> Pipeline:
    data = {"name": name, "stages": [{"name": s} for s in stages]}
    return await container.pipelines().create(Actor.operator_at(location_id), data)


@app.command("list")
def list_(
    location: LocationOption,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a location's pipelines with their stages, in the order they were set up."""
    show_page(
        json_output,
        "Pipelines",
        COLUMNS,
        lambda c: list_pipelines(c, location, limit, cursor),
        _row,
        json_view=pipeline_view,
    )


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The pipeline's name.")],
    location: LocationOption,
    stages: Annotated[
        str, typer.Option("--stages", help='Its stages in order, comma-separated, e.g. "New,Qualified,Won".')
    ] = "New,Qualified,Won",
    json_output: JsonOption = False,
) -> None:
    """Create a pipeline with its stages."""
    output = Output(json=json_output)
    names = [part.strip() for part in stages.split(",")]
    with reported(output):
        pipeline = with_services(output, lambda c: create_pipeline(c, location, name, names))
    if output.json:
        output.document(pipeline_view(pipeline))
        return
    output.record("Pipeline created", _row(pipeline))
    output.table("Stages", ("position", "id", "name"), pipeline_view(pipeline)["stages"])
