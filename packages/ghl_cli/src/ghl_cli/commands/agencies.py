"""`ghl agencies`: the agencies of this installation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ghl_cli.errors import reported
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, CursorOption, JsonOption, LimitOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_cli.views import agency_view
from ghl_core.shared.pagination import Page
from ghl_core.tenancy.models import Agency
from ghl_core.tenancy.permissions import Actor

if TYPE_CHECKING:
    from ghl_adapters.container import Container

app = typer.Typer(help="Create and list agencies (the top-level accounts that own locations).")

COLUMNS = ("id", "name", "created_at")


async def create_agency(container: Container, name: str) -> Agency:
    return await container.tenancy().create_agency(Actor.operator(), name)


async def list_agencies(container: Container, limit: int, cursor: str | None) -> Page[Agency]:
    return await container.tenancy().list_agencies(Actor.operator(), page_request(limit, cursor))


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The agency's display name.")],
    json_output: JsonOption = False,
) -> None:
    """Create an agency."""
    output = Output(json=json_output)
    with reported(output):
        agency = with_services(output, lambda c: create_agency(c, name))
    output.record("Agency created", agency_view(agency))


@app.command("list")
def list_(
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List agencies, oldest first."""
    show_page(json_output, "Agencies", COLUMNS, lambda c: list_agencies(c, limit, cursor), agency_view)
