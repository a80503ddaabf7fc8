"""`ghl locations`: the locations (sub-accounts) agencies own."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from ghl_cli.errors import reported, with_agency_hint
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, AgencyOption, CursorOption, JsonOption, LimitOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_cli.views import location_view
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page
from ghl_core.tenancy.models import Location, PlanTier
from ghl_core.tenancy.permissions import Actor

if TYPE_CHECKING:
    from ghl_adapters.container import Container
    from ghl_core.tenancy.services import NewLocation

app = typer.Typer(help="Create and list locations (the sub-accounts an agency runs for its clients).")

COLUMNS = ("id", "name", "agency_id", "timezone", "country", "tier")


async def create_location(container: Container, data: NewLocation, agency_id: uuid.UUID | None) -> Location:
    try:
        return await container.tenancy().create_location(Actor.operator(), data, agency_id=agency_id)
    except ValidationFailed as exc:
        raise with_agency_hint(exc) from None


async def list_locations(
    container: Container, limit: int, cursor: str | None, agency_id: uuid.UUID | None
) -> Page[Location]:
    return await container.tenancy().list_locations(Actor.operator(), page_request(limit, cursor), agency_id)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The location's display name.")],
    agency: AgencyOption = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA time zone, e.g. America/Chicago.")
    ] = "UTC",
    tier: Annotated[PlanTier, typer.Option("--tier", help="Plan tier: sets the API rate limits.")] = (
        PlanTier.FREE
    ),
    country: Annotated[str, typer.Option("--country", help="ISO 3166-1 alpha-2 country code.")] = "US",
    json_output: JsonOption = False,
) -> None:
    """Create a location in an agency."""
    from ghl_core.tenancy.services import NewLocation

    output = Output(json=json_output)
    data = NewLocation(name=name, timezone=timezone, country=country, tier=tier)
    with reported(output):
        location = with_services(output, lambda c: create_location(c, data, agency))
    output.record("Location created", location_view(location))
    output.note(f"[dim]Next: ghl apikeys create --location {location.id}[/dim]")


@app.command("list")
def list_(
    agency: Annotated[
        uuid.UUID | None, typer.Option("--agency", help="Only this agency's locations.")
    ] = None,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List locations, oldest first."""
    show_page(
        json_output, "Locations", COLUMNS, lambda c: list_locations(c, limit, cursor, agency), location_view
    )
