"""`ghl workflows`: check a workflow written as YAML (or JSON) and simulate it for a contact against a virtual
clock, without sending or changing anything."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from ghl_adapters.container import Container
from ghl_cli.errors import reported
from ghl_cli.options import JsonOption
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_core.conversations.quiet_hours import resolve_zone
from ghl_core.conversations.templates import merge_context
from ghl_core.shared.errors import ValidationFailed
from ghl_core.tenancy.permissions import Actor
from ghl_core.workflows.definition import Definition, parse_definition
from ghl_core.workflows.simulation import SimulatedEvent, Simulation, describe, simulate

app = typer.Typer(help="Check workflow files and simulate them for a contact (nothing is sent).")

FileArgument = Annotated[
    Path, typer.Argument(help="The workflow as YAML (or JSON).", exists=True, dir_okay=False)
]
_OFFSET = re.compile(r"^\+(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def load_document(path: Path) -> dict[str, Any]:
    """The file's document; a YAML syntax error is reported with its line like any invalid input."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValidationFailed.one("", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise ValidationFailed.one("", "the file is not UTF-8 text") from None
    if not isinstance(loaded, dict):
        raise ValidationFailed.one("", "the document must be a mapping with name, triggers and steps")
    return loaded


def parse_event(text: str, start: datetime) -> SimulatedEvent:
    """`contact.replied@+2h`, `tag.added:tag=customer@2026-12-01T10:00:00-05:00`."""
    head, sep, when = text.rpartition("@")
    if not sep or not head:
        raise ValidationFailed.one(
            "/event", f"{text!r}: write NAME[:key=value,...]@WHEN (WHEN: +30m, +2h, +3d or ISO)"
        )
    name, _, filters = head.partition(":")
    data: dict[str, str] = {}
    for pair in filter(None, filters.split(",")):
        key, eq, value = pair.partition("=")
        if not eq:
            raise ValidationFailed.one("/event", f"{pair!r}: filters are key=value")
        data[key.strip()] = value.strip()
    offset = _OFFSET.match(when)
    if offset:
        at = start + timedelta(**{_UNITS[offset.group(2)]: int(offset.group(1))})
    else:
        try:
            at = datetime.fromisoformat(when)
        except ValueError:
            raise ValidationFailed.one(
                "/event", f"{when!r} is neither +N[m|h|d] nor an ISO date-time"
            ) from None
        if at.tzinfo is None:
            raise ValidationFailed.one("/event", f"{when!r} needs a time zone offset")
    return SimulatedEvent(at=at, event=name.strip(), data=data)


def summary(definition: Definition) -> dict[str, Any]:
    return {
        "name": definition.name,
        "triggers": [t.type for t in definition.triggers],
        "steps": [{"id": s.id, "type": s.type} for s in definition.steps],
    }


async def run_simulation(
    container: Container,
    definition: Definition,
    location_id: uuid.UUID,
    contact_id: uuid.UUID,
    start: datetime,
    events: list[SimulatedEvent],
) -> Simulation:
    actor = Actor.operator_at(location_id)
    contact = await container.contacts().get(actor, contact_id)
    location = await container.tenancy().get_location(actor, location_id)
    renderer = container.template_renderer()
    context = merge_context(contact, location)
    snapshot = contact.snapshot()
    snapshot["custom_fields"] = dict(contact.custom_fields)
    return simulate(
        definition,
        snapshot,
        start=start,
        contact_zone=resolve_zone(contact.timezone, location.timezone),
        location_zone=resolve_zone(None, location.timezone),
        events=events,
        render=lambda text: renderer.render(text, context),
        key=f"simulation:{contact.id}",
    )


@app.command("validate")
def validate(file: FileArgument, json_output: JsonOption = False) -> None:
    """Check a workflow file: every mistake is listed with a pointer to the bad step or field."""
    output = Output(json=json_output)
    with reported(output):
        definition = parse_definition(load_document(file))
    output.record("Workflow is valid", {**summary(definition), "valid": True})


@app.command("simulate")
def simulate_command(
    file: FileArgument,
    location: Annotated[uuid.UUID, typer.Option("--location", help="The location's id.")],
    contact: Annotated[uuid.UUID, typer.Option("--contact", help="The contact to simulate for.")],
    start: Annotated[
        str | None, typer.Option("--start", help="When the enrollment starts (ISO with offset); default now.")
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            help="Something that happens meanwhile, repeatable: contact.replied@+2h, "
            "contact.replied:channel=email@+1d, tag.added:tag=customer@+3d, "
            "opportunity.stage_reached:stage_id=ID@2026-12-01T09:00:00-05:00.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Run the workflow for one contact against a virtual clock and print what would happen and when.
    Nothing is sent or changed; waits take no time, so a 30-day sequence runs in a second."""
    output = Output(json=json_output)
    with reported(output):
        definition = parse_definition(load_document(file))
        began = datetime.now(UTC)
        if start is not None:
            try:
                began = datetime.fromisoformat(start)
            except ValueError:
                raise ValidationFailed.one("/start", f"{start!r} is not an ISO date-time") from None
            if began.tzinfo is None:
                raise ValidationFailed.one("/start", "needs a time zone offset")
        events = [parse_event(text, began) for text in event or []]
        result = with_services(
            output, lambda c: run_simulation(c, definition, location, contact, began, events)
        )
    timeline = describe(result)
    if output.json:
        output.document({"workflow": definition.name, "finished": result.finished, "timeline": timeline})
        return
    table = Table(title=f"{definition.name}: simulated ({result.finished})")
    for column in ("at", "step", "type", "outcome", "detail"):
        table.add_column(column)
    for entry in timeline:
        table.add_row(entry["at"], entry["step_id"] or "", entry["type"], entry["outcome"], entry["detail"])
    output.out.print(table)
