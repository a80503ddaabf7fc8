"""`ghl workflows`: a location's stored workflows (apply a YAML or JSON file, publish, pause, export,
enroll contacts, read enrollments, their history and statistics), and checking and simulating a workflow
for a contact against a virtual clock, without sending or changing anything."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghl_cli.errors import CliError, reported
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, CursorOption, JsonOption, LimitOption, LocationOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_core.conversations.quiet_hours import resolve_zone
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page
from ghl_core.tenancy.permissions import Actor
from ghl_core.workflows.models import (
    Enrollment,
    EnrollmentStatus,
    StepRun,
    Workflow,
    WorkflowStats,
)
from ghl_core.workflows.views import enrollment_view, stats_view, step_run_view, version_view, workflow_view

if TYPE_CHECKING:
    from ghl_adapters.container import Container
    from ghl_core.workflows.definition import Definition
    from ghl_core.workflows.services import BulkEnrollment
    from ghl_core.workflows.simulation import SimulatedEvent, Simulation

app = typer.Typer(
    help="Store, publish and run a location's workflows; check workflow files and simulate them for a "
    "contact (nothing is sent)."
)

FileArgument = Annotated[
    Path, typer.Argument(help="The workflow as YAML (or JSON).", exists=True, dir_okay=False)
]
WorkflowArgument = Annotated[uuid.UUID, typer.Argument(help="The workflow's id (`ghl workflows list`).")]
WORKFLOW_COLUMNS = ("id", "name", "status", "version", "updated_at")
ENROLLMENT_COLUMNS = ("id", "contact_id", "status", "step", "trigger", "started_at", "finished_at")
HISTORY_COLUMNS = ("started_at", "step", "tick", "type", "status", "outcome", "detail", "error")
_OFFSET = re.compile(r"^\+(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class Format(StrEnum):
    YAML = "yaml"
    JSON = "json"


def load_document(path: Path) -> dict[str, Any]:
    """The file's document; a YAML syntax error is reported with its line like any invalid input."""
    import yaml

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


def load_definition(path: Path) -> Definition:
    """A workflow file, parsed and checked; every mistake is a ValidationFailed with its pointer."""
    from ghl_core.workflows.definition import parse_definition

    return parse_definition(load_document(path))


def parse_event(text: str, start: datetime) -> SimulatedEvent:
    """`contact.replied@+2h`, `tag.added:tag=customer@2026-12-01T10:00:00-05:00`."""
    from ghl_core.workflows.simulation import SimulatedEvent

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
    from ghl_core.conversations.templates import merge_context
    from ghl_core.workflows.simulation import simulate

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


def bulk_view(b: BulkEnrollment) -> dict[str, Any]:
    return {"matched": b.matched, "enrolled": b.enrolled, "skipped": b.skipped}


def _outline(view: dict[str, Any]) -> dict[str, Any]:
    """A workflow for a table: its draft as the trigger types and the step ids it holds."""
    row = {k: v for k, v in view.items() if k != "draft"}
    draft = view.get("draft") or {}
    if draft:
        row["triggers"] = [str(t.get("type")) for t in draft.get("triggers") or [] if isinstance(t, dict)]
        row["steps"] = [
            f"{s.get('id')} ({s.get('type')})" for s in draft.get("steps") or [] if isinstance(s, dict)
        ]
    return row


def _record(output: Output, title: str, view: dict[str, Any]) -> None:
    output.record(title, view if output.json else _outline(view))


async def location_actor(container: Container, location_id: uuid.UUID) -> Actor:
    """The operator inside one location; an unknown location is a clear not-found here."""
    location = await container.tenancy().get_location(Actor.operator(), location_id)
    return Actor.operator_at(location.id)


def _readable(document: dict[str, Any]) -> dict[str, Any]:
    """The database keeps a draft's keys in its own order; an export puts them back as people write them:
    name, settings, triggers, steps, and each trigger and step by its id and type first."""

    def lead(item: Any, first: tuple[str, ...]) -> Any:
        if not isinstance(item, dict):
            return item
        return {k: item[k] for k in first if k in item} | {k: v for k, v in item.items() if k not in first}

    ordered = lead(document, ("name", "settings", "triggers", "steps"))
    for key in ("triggers", "steps"):
        if isinstance(ordered.get(key), list):
            ordered[key] = [lead(item, ("id", "type")) for item in ordered[key]]
    return dict(ordered)


@app.command("validate")
def validate(file: FileArgument, json_output: JsonOption = False) -> None:
    """Check a workflow file: every mistake is listed with a pointer to the bad step or field."""
    output = Output(json=json_output)
    with reported(output):
        definition = load_definition(file)
    output.record("Workflow is valid", {**summary(definition), "valid": True})


# ---------------------------------------------------------------------------------------------- stored


@app.command("list")
def list_workflows(
    location: LocationOption,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """A location's workflows (without their drafts: `show` or `export` one for that)."""

    async def work(c: Container) -> Page[Workflow]:
        return await c.workflows().list(await location_actor(c, location), page_request(limit, cursor))

    def row(workflow: Workflow) -> dict[str, Any]:
        return {k: v for k, v in workflow_view(workflow).items() if k != "draft"}

    show_page(json_output, "Workflows", WORKFLOW_COLUMNS, work, row)


@app.command("show")
def show(workflow_id: WorkflowArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """One workflow, its published versions, and its draft's triggers and steps (--json: the whole draft)."""
    output = Output(json=json_output)

    async def work(c: Container) -> dict[str, Any]:
        actor = await location_actor(c, location)
        workflow = await c.workflows().get(actor, workflow_id)
        versions = await c.workflows().versions(actor, workflow_id)
        return {**workflow_view(workflow), "versions": [version_view(v) for v in versions]}

    with reported(output):
        view = with_services(output, work)
    if output.json:
        output.document(view)
        return
    output.record("Workflow", {k: v for k, v in _outline(view).items() if k != "versions"})
    if view["versions"]:
        output.table("Published versions", ("version", "name", "published_at"), view["versions"])


@app.command("apply")
def apply(
    file: FileArgument,
    location: LocationOption,
    publish: Annotated[
        bool, typer.Option("--publish", help="Publish it too, as a new version that new enrollments use.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Store a workflow file (YAML or JSON): the location's workflow of the same name gets it as its draft,
    or a new workflow is created. Running enrollments are untouched until the next publish."""
    output = Output(json=json_output)

    async def work(c: Container) -> tuple[Workflow, bool]:
        actor = await location_actor(c, location)
        return await c.workflows().apply(actor, document, publish=publish)

    with reported(output):
        document = load_document(file)
        workflow, created = with_services(output, work)
    verb = "created" if created else "updated"
    if publish:
        title = f"Workflow {verb} and published: version {workflow.version}"
    elif workflow.version:
        title = f"Workflow {verb}: draft saved (version {workflow.version} unchanged until you publish)"
    else:
        title = f"Workflow {verb}: a draft, not published yet"
    _record(output, title, {**workflow_view(workflow), "created": created})


@app.command("export")
def export(
    workflow_id: WorkflowArgument,
    location: LocationOption,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="A published version (default: the draft).")
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="yaml (what `apply` reads back) or json.")
    ] = Format.YAML,
    json_output: JsonOption = False,
) -> None:
    """Print the workflow's definition (the draft, or a published --version): `> file.yaml`, edit, `apply`."""
    output = Output(json=json_output)

    async def work(c: Container) -> dict[str, Any]:
        return await c.workflows().export(await location_actor(c, location), workflow_id, version)

    with reported(output):
        document = _readable(with_services(output, work))
    if output.json or fmt is Format.JSON:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    import yaml

    typer.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)


@app.command("publish")
def publish(workflow_id: WorkflowArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """Publish the draft as a new version: new enrollments start on it, running ones finish on theirs."""
    output = Output(json=json_output)

    async def work(c: Container) -> Workflow:
        return await c.workflows().publish(await location_actor(c, location), workflow_id)

    with reported(output):
        workflow = with_services(output, work)
    _record(output, f"Workflow published: version {workflow.version}", workflow_view(workflow))


@app.command("pause")
def pause(workflow_id: WorkflowArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """Stop a published workflow: its triggers stop enrolling and its running enrollments stop (a step under
    way finishes). `publish` starts it again."""
    output = Output(json=json_output)

    async def work(c: Container) -> tuple[Workflow, int]:
        return await c.workflows().pause(await location_actor(c, location), workflow_id)

    with reported(output):
        workflow, stopped = with_services(output, work)
    if output.json:
        output.document({"workflow": workflow_view(workflow), "stopped": stopped})
        return
    _record(output, f"Workflow paused: {stopped} running enrollment(s) stopped", workflow_view(workflow))


@app.command("enroll")
def enroll(
    workflow_id: WorkflowArgument,
    location: LocationOption,
    contacts: Annotated[
        list[uuid.UUID] | None, typer.Option("--contact", help="A contact's id (repeatable).")
    ] = None,
    tags: Annotated[
        list[str] | None,
        typer.Option("--tag", help="The contacts with this tag (repeatable: those with all of them)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Enroll contacts by hand into the published version: by id, or every contact with the tags (at most
    10,000). Contacts already in it are skipped. Their steps run in the worker (`ghl worker`, `ghl serve`)."""
    output = Output(json=json_output)
    if bool(contacts) == bool(tags):
        with reported(output):
            which = "not both" if contacts else "one of them"
            raise CliError("bad_usage", f"give --contact ID or --tag T (each repeatable): {which}")
    data: dict[str, Any] = {"contact_ids": [str(c) for c in contacts]} if contacts else {"tags": tags}

    async def work(c: Container) -> BulkEnrollment:
        return await c.workflows().enroll(await location_actor(c, location), workflow_id, data)

    with reported(output):
        result = with_services(output, work)
    output.record("Enrolled", bulk_view(result))


@app.command("enrollments")
def enrollments(
    workflow_id: WorkflowArgument,
    location: LocationOption,
    status: Annotated[
        EnrollmentStatus | None, typer.Option("--status", help="Only enrollments in this state.")
    ] = None,
    contact: Annotated[uuid.UUID | None, typer.Option("--contact", help="Only this contact's.")] = None,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """The workflow's enrollments: who is in it, where, and how the finished ones ended."""
    output = Output(json=json_output)

    async def work(c: Container) -> tuple[list[dict[str, Any]], str | None]:
        page = await c.workflows().enrollments(
            await location_actor(c, location),
            workflow_id,
            page_request(limit, cursor),
            status=status.value if status else None,
            contact_id=contact,
        )
        return [enrollment_view(e) for e in page.items], page.next_cursor

    with reported(output):
        rows, next_cursor = with_services(output, work)
    if not output.json:  # a step id is a short word: not worth an id's wide column
        rows = [{**row, "step": row["step_id"]} for row in rows]
    output.page("Enrollments", ENROLLMENT_COLUMNS, rows, next_cursor)


@app.command("history")
def history(
    enrollment_id: Annotated[
        uuid.UUID, typer.Argument(help="The enrollment's id (`ghl workflows enrollments`).")
    ],
    location: LocationOption,
    json_output: JsonOption = False,
) -> None:
    """One enrollment and every step it ran: when, with what outcome, and any error."""
    output = Output(json=json_output)

    async def work(c: Container) -> tuple[Enrollment, list[StepRun]]:
        return await c.workflows().enrollment(await location_actor(c, location), enrollment_id)

    with reported(output):
        enrollment, runs = with_services(output, work)
    view = {**enrollment_view(enrollment), "outputs": enrollment.outputs}
    steps = [step_run_view(r) for r in runs]
    if output.json:
        output.document({**view, "history": steps})
        return
    output.record("Enrollment", {k: v for k, v in view.items() if k != "outputs"})
    if steps:
        output.table("History", HISTORY_COLUMNS, [{**r, "step": r["step_id"]} for r in steps])
    else:
        output.note("[dim]No step has run yet.[/dim]")


@app.command("stats")
def stats(workflow_id: WorkflowArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """Enrollments by state, and each step's runs by outcome."""
    output = Output(json=json_output)

    async def work(c: Container) -> WorkflowStats:
        return await c.workflows().stats(await location_actor(c, location), workflow_id)

    with reported(output):
        view = stats_view(with_services(output, work))
    if output.json:
        output.document(view)
        return
    output.record("Workflow statistics", {k: v for k, v in view.items() if k != "steps"})
    rows = [{"step": step, **counts} for step, counts in view["steps"].items()]
    states = sorted({state for counts in view["steps"].values() for state in counts})
    if rows:
        output.table("Step runs", ("step", *states), [{**dict.fromkeys(states, 0), **r} for r in rows])


# ---------------------------------------------------------------------------------------------- simulation


def _target(text: str) -> Path | uuid.UUID:
    """A path that exists is a file; otherwise a stored workflow's id."""
    path = Path(text)
    if path.exists():
        if path.is_dir():
            raise CliError("bad_usage", f"{text!r} is a directory, not a workflow file")
        return path
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CliError("bad_usage", f"{text!r} is neither a workflow file nor a workflow id") from None


async def run_stored(
    container: Container,
    location_id: uuid.UUID,
    workflow_id: uuid.UUID,
    data: dict[str, Any],
) -> tuple[str, Simulation]:
    actor = await location_actor(container, location_id)
    service = container.workflows()
    workflow = await service.get(actor, workflow_id)
    return workflow.name, await service.simulate(actor, workflow_id, data)


@app.command("simulate")
def simulate_command(
    target: Annotated[
        str,
        typer.Argument(
            help="A workflow file (YAML or JSON), or a stored workflow's id: its draft, or --version.",
            metavar="FILE|ID",
        ),
    ],
    location: LocationOption,
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
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, help="With a workflow id: this published version, not the draft."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Run a workflow for one contact against a virtual clock and print what would happen and when.
    Nothing is sent or changed; waits take no time, so a 30-day sequence runs in a second."""
    output = Output(json=json_output)
    with reported(output):
        source = _target(target)
        began = datetime.now(UTC)
        if start is not None:
            try:
                began = datetime.fromisoformat(start)
            except ValueError:
                raise ValidationFailed.one("/start", f"{start!r} is not an ISO date-time") from None
            if began.tzinfo is None:
                raise ValidationFailed.one("/start", "needs a time zone offset")
        events = [parse_event(text, began) for text in event or []]
        if isinstance(source, Path):
            if version is not None:
                raise CliError("bad_usage", "--version applies to a stored workflow's id, not to a file")
            definition = load_definition(source)
            name = definition.name
            result = with_services(
                output, lambda c: run_simulation(c, definition, location, contact, began, events)
            )
        else:
            data: dict[str, Any] = {
                "contact_id": str(contact),
                "start": began,
                "events": [{"at": e.at, "event": e.event, "data": dict(e.data)} for e in events],
            }
            if version is not None:
                data["version"] = version
            name, result = with_services(output, lambda c: run_stored(c, location, source, data))
    from ghl_core.workflows.simulation import describe

    timeline = describe(result)
    if output.json:
        output.document(
            {
                "workflow": name,
                "finished": result.finished,
                "timeline": timeline,
                "contact": dict(result.contact),
            }
        )
        return
    from rich.table import Table

    table = Table(title=f"{name}: simulated ({result.finished})")
    for column in ("at", "step", "type", "outcome", "detail"):
        table.add_column(column)
    for entry in timeline:
        table.add_row(entry["at"], entry["step_id"] or "", entry["type"], entry["outcome"], entry["detail"])
    output.out.print(table)
