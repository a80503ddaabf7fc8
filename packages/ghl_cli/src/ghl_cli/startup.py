"""What `ghl serve` does before handing over to uvicorn: the demo tenant on a first start, and the
facts an operator needs printed once."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from ghl_adapters.container import Container
from ghl_adapters.runtime import DemoTenant, bootstrap_demo
from ghl_adapters.settings import Settings
from ghl_cli.output import Output

DOCS_PATH = "/docs"
OPENAPI_PATH = "/docs/openapi.json"


@dataclass(frozen=True)
class Startup:
    database: str
    base_url: str
    demo: DemoTenant | None

    @property
    def docs_url(self) -> str:
        return self.base_url + DOCS_PATH

    def view(self) -> dict[str, Any]:
        return {
            "event": "ghl.started",
            "database": self.database,
            "base_url": self.base_url,
            "docs_url": self.docs_url,
            "openapi_url": self.base_url + OPENAPI_PATH,
            "demo": asdict(self.demo) if self.demo else None,
        }


async def first_start(container: Container, settings: Settings) -> DemoTenant | None:
    """The demo tenant, created only when demos are on and the installation is still empty."""
    return await bootstrap_demo(container) if settings.demo else None


def show(output: Output, startup: Startup) -> None:
    if output.json:
        # One line: the server's JSON log lines follow it on stdout.
        output.out.file.write(json.dumps(startup.view()) + "\n")
        output.out.file.flush()
        return
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(no_wrap=True, overflow="fold")
    facts.add_row("Database", startup.database)
    facts.add_row("Base URL", startup.base_url)
    facts.add_row("API docs", startup.docs_url)
    parts: list[Any] = [facts, ""]
    if startup.demo is not None:
        demo = Table.grid(padding=(0, 2))
        demo.add_column(style="bold")
        demo.add_column(no_wrap=True, overflow="fold")
        demo.add_row("Agency", startup.demo.agency_id)
        demo.add_row("Location", startup.demo.location_id)
        demo.add_row("API key", f"[green]{startup.demo.api_key}[/green]")
        parts += [
            "[yellow]First start: a demo agency and location were created. The API key is shown "
            "only this once: store it now.[/yellow]",
            demo,
            "",
            f"Try: curl -H 'Authorization: Bearer <API key>' {startup.base_url}/api/v1/location",
        ]
    else:
        parts.append(
            "Need an API key? [bold]ghl locations list[/bold], then "
            "[bold]ghl apikeys create --location ID[/bold]"
        )
    output.out.print(
        Panel(Group(*parts), title="ghl is starting", title_align="left", border_style="cyan", expand=False)
    )
