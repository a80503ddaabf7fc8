"""`ghl apikeys`: a location's API keys. A key's secret is shown once, when it is created."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghl_cli.errors import reported
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, CursorOption, JsonOption, LimitOption, LocationOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_cli.views import api_key_view
from ghl_core.identity.models import ApiKey
from ghl_core.shared.pagination import Page
from ghl_core.tenancy.permissions import Actor

if TYPE_CHECKING:
    from ghl_adapters.container import Container

app = typer.Typer(help="Create, list and revoke a location's API keys.")

COLUMNS = ("id", "name", "prefix", "created_at", "last_used_at", "revoked_at")


def split_scopes(values: list[str] | None) -> list[str] | None:
    """`--scopes a,b --scopes c` gives [a, b, c]; no --scopes at all means every scope."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


async def create_key(
    container: Container, location_id: uuid.UUID, name: str, scopes: list[str] | None
) -> tuple[ApiKey, str]:
    from ghl_core.identity.api_keys import parse_scopes

    return await container.api_keys().create(
        Actor.operator(), name, scopes=parse_scopes(scopes), location_id=location_id
    )


async def list_keys(
    container: Container, location_id: uuid.UUID, include_revoked: bool, limit: int, cursor: str | None
) -> Page[ApiKey]:
    return await container.api_keys().list(
        Actor.operator(),
        page_request(limit, cursor),
        location_id=location_id,
        include_revoked=include_revoked,
    )


async def revoke_key(container: Container, key_id: uuid.UUID, location_id: uuid.UUID | None) -> ApiKey:
    return await container.api_keys().revoke(Actor.operator(), key_id, location_id=location_id)


@app.command("create")
def create(
    location: LocationOption,
    name: Annotated[str, typer.Option("--name", help="A label to tell keys apart.")] = "CLI key",
    scopes: Annotated[
        list[str] | None,
        typer.Option(
            "--scopes",
            help=(
                "Comma-separated scopes, e.g. contacts:read,contacts:write (repeatable). "
                "Leave out for every location scope."
            ),
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create an API key for a location and print it. The key is shown this once: store it now."""
    output = Output(json=json_output)
    with reported(output):
        key, secret = with_services(output, lambda c: create_key(c, location, name, split_scopes(scopes)))
    doc: dict[str, Any] = {**api_key_view(key), "key": secret}
    if output.json:
        output.document(doc)
        return
    output.record("API key created", api_key_view(key))
    output.secret("API key (shown once: store it now)", secret)
    output.out.print(f"Use it as: Authorization: Bearer {secret[:8]}…", soft_wrap=True)


@app.command("list")
def list_(
    location: LocationOption,
    include_revoked: Annotated[
        bool, typer.Option("--include-revoked", help="Also show keys that were revoked.")
    ] = False,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a location's API keys (their prefixes, never the keys)."""
    show_page(
        json_output,
        "API keys",
        COLUMNS,
        lambda c: list_keys(c, location, include_revoked, limit, cursor),
        api_key_view,
    )


@app.command("revoke")
def revoke(
    key_id: Annotated[uuid.UUID, typer.Argument(help="The key's id (from `ghl apikeys list`).")],
    location: Annotated[
        uuid.UUID | None,
        typer.Option("--location", help="Only revoke the key if it belongs to this location."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    output = Output(json=json_output)
    with reported(output):
        key = with_services(output, lambda c: revoke_key(c, key_id, location))
    output.record("API key revoked", api_key_view(key))
