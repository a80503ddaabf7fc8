"""Every `list` command's last three steps, written once: open the session, fetch one page, print it.

A command says what to fetch (given the container) and how an item becomes a row; errors are reported
as every command reports them, and the page prints as `Output.page` prints it (JSON shaped like the HTTP
API's, or a table). A command whose JSON document differs from its table row (more fields than columns)
passes `json_view`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ghl_cli.errors import reported
from ghl_cli.output import Output
from ghl_cli.session import with_services

if TYPE_CHECKING:
    from ghl_adapters.container import Container
    from ghl_core.shared.pagination import Page

T = TypeVar("T")


def show_page(
    json_output: bool,
    title: str,
    columns: Sequence[str],
    fetch: Callable[[Container], Awaitable[Page[T]]],
    view: Callable[[T], Mapping[str, Any]],
    *,
    json_view: Callable[[T], Mapping[str, Any]] | None = None,
) -> None:
    output = Output(json=json_output)
    with reported(output):
        page = with_services(output, fetch)
    shown = json_view if output.json and json_view is not None else view
    output.page(title, columns, [shown(item) for item in page.items], page.next_cursor)
