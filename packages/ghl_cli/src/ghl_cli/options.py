"""Options shared by many commands.

--location, which most commands need, defaults to GHL_LOCATION_ID, so an operator working in one location
sets it once. Commands where the location only narrows what is shown (`ghl jobs list`, `ghl outbox`) or
competes with --agency (`ghl providers`) keep their own option without it: a variable left in the
shell must not silently filter or redirect them."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from ghl_core.shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest, decode_cursor

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables and colours.")
]
LimitOption = Annotated[
    int, typer.Option("--limit", min=1, max=MAX_LIMIT, help=f"How many to show (1-{MAX_LIMIT}).")
]
CursorOption = Annotated[
    str | None,
    typer.Option("--cursor", help="Continue a list from the cursor the previous page printed."),
]
LOCATION_VARIABLE = "GHL_LOCATION_ID"
LocationOption = Annotated[
    uuid.UUID,
    typer.Option("--location", envvar=LOCATION_VARIABLE, show_envvar=True, help="The location's id."),
]
AgencyOption = Annotated[
    uuid.UUID | None,
    typer.Option("--agency", help="The agency's id. May be left out when there is exactly one agency."),
]

DEFAULT_PAGE = DEFAULT_LIMIT


def page_request(limit: int, cursor: str | None) -> PageRequest:
    return PageRequest(limit=limit, after=decode_cursor(cursor) if cursor else None)
