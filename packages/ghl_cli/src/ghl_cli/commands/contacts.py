"""`ghl contacts`: a location's contacts, and CSV import and export, for operators.

An operator acts inside one location here: the commands build a location-bound actor for --location,
so the database's row-level security confines every statement to that location, as for an API key."""

from __future__ import annotations

import csv
import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghl_cli.errors import CliError, reported
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, CursorOption, JsonOption, LimitOption, LocationOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_core.contacts.csv_rows import CsvSource, text_stream
from ghl_core.contacts.import_mapping import parse_mapping_pairs
from ghl_core.contacts.import_models import ContactImport, DuplicateMode, ImportCounters, ImportOptions
from ghl_core.contacts.models import Contact
from ghl_core.shared.csv_cells import neutralize_cell
from ghl_core.tenancy.permissions import Actor

if TYPE_CHECKING:
    from ghl_adapters.container import Container

app = typer.Typer(help="List, read, create, import and export a location's contacts.")

COLUMNS = ("id", "name", "email", "phone", "tags", "created_at")
SmartListOption = Annotated[
    uuid.UUID | None, typer.Option("--smart-list", help="Only the contacts of this smart list (its id).")
]


async def location_actor(container: Container, location_id: uuid.UUID) -> Actor:
    """The operator inside one location; an unknown location is a clear not-found here."""
    location = await container.tenancy().get_location(Actor.operator(), location_id)
    return Actor.operator_at(location.id)


def contact_view(c: Contact) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "name": c.name,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "email": c.email,
        "phone": c.phone,
        "company_name": c.company_name,
        "tags": sorted(c.tags),
        "dnd": c.dnd,
        "created_at": c.created_at.isoformat(),
    }


def import_view(job: ContactImport) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "status": job.status.value,
        "mapping": job.options.mapping,
        "duplicate_policy": job.options.duplicates.value,
        **job.counters.as_dict(),
        "failure": job.failure,
    }


@app.command("list")
def list_(
    location: LocationOption,
    query: Annotated[
        str | None, typer.Option("--query", help="Words matched in names, e-mail, company and phone.")
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Only contacts with this tag (repeatable: all of them).")
    ] = None,
    smart_list: SmartListOption = None,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a location's contacts, newest first; or find them by words, tags or a smart list (in the
    smart list's order), as the API's search does."""
    from ghl_core.contacts.selection import ContactSelection

    selection = ContactSelection(query=query, tags=tuple(tags or ()), smart_list_id=smart_list)

    async def work(c: Container) -> Any:
        actor = await location_actor(c, location)
        if selection.everyone:
            return await c.contacts().list(actor, page_request(limit, cursor))
        return (await c.contact_finder().find(actor, selection, limit, cursor)).page

    show_page(json_output, "Contacts", COLUMNS, work, contact_view)


@app.command("get")
def get(
    contact_id: Annotated[uuid.UUID, typer.Argument(help="The contact's id.")],
    location: LocationOption,
    json_output: JsonOption = False,
) -> None:
    """Show one contact."""
    output = Output(json=json_output)

    async def work(c: Container) -> Contact:
        return await c.contacts().get(await location_actor(c, location), contact_id)

    with reported(output):
        contact = with_services(output, work)
    output.record("Contact", contact_view(contact))


@app.command("create")
def create(
    location: LocationOption,
    email: Annotated[str | None, typer.Option("--email", help="E-mail address.")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="Phone (any format; stored E.164).")] = None,
    first_name: Annotated[str | None, typer.Option("--first-name")] = None,
    last_name: Annotated[str | None, typer.Option("--last-name")] = None,
    tags: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a contact."""
    output = Output(json=json_output)
    given = {"email": email, "phone": phone, "first_name": first_name, "last_name": last_name, "tags": tags}
    data = {k: v for k, v in given.items() if v is not None}

    async def work(c: Container) -> Contact:
        return await c.contacts().create(await location_actor(c, location), data)

    with reported(output):
        contact = with_services(output, work)
    output.record("Contact created", contact_view(contact))


def _open_csv(path: Path) -> Any:
    raw = path.open("rb")
    try:
        return text_stream(raw)
    except BaseException:
        raw.close()
        raise


def _import_progress(output: Output) -> Any:
    """On stderr, for people at a terminal: the share of the file read so far (its size is the total,
    known before the first row, and bytes read advance it, which rows of any length cannot), the rows
    processed, and the time spent and left."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("importing"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        TextColumn("elapsed,"),
        TimeRemainingColumn(),
        TextColumn("left"),
        console=output.err,
        disable=output.json or not sys.stderr.isatty(),
    )


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The CSV file.", exists=True, dir_okay=False, readable=True)],
    location: LocationOption,
    maps: Annotated[
        list[str] | None,
        typer.Option("--map", help='"Header=field" (repeatable); "Header=" ignores a column.'),
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag every imported row (repeatable).")
    ] = None,
    duplicates: Annotated[
        DuplicateMode, typer.Option("--duplicates", help="A row matching a contact: skip, update or create.")
    ] = DuplicateMode.UPDATE,
    errors_file: Annotated[
        Path | None, typer.Option("--errors", help="Write the rejected rows (line, reason) to this CSV.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Import contacts from a CSV file (streamed: any size, constant memory). Re-running the same file
    changes nothing."""
    from ghl_adapters.runtime import freeze_heap

    output = Output(json=json_output)
    total = os.path.getsize(file)

    async def work(c: Container) -> tuple[ContactImport, list[Any]]:
        actor = await location_actor(c, location)
        service = c.contact_imports()
        options = ImportOptions(
            mapping=parse_mapping_pairs(maps or []),
            tags=tuple(tags or ()),
            duplicates=duplicates,
            filename=file.name,
        )
        with _open_csv(file) as handle:
            job = await service.start(actor, CsvSource(handle).headers, options)
        progress = _import_progress(output)
        with progress:
            bar = progress.add_task("import", total=total, rows=0)

            def report(counters: ImportCounters, read: int) -> None:
                progress.update(bar, completed=read, rows=counters.processed)

            freeze_heap()
            # The runner the API's import jobs use, over the operator's file, in this process.
            finished = await c.contact_import_runner().run_file(actor, job.id, file, progress=report)
            progress.update(bar, completed=total, rows=finished.counters.processed)
        rejected = await service.error_report(actor, job.id) if errors_file else []
        return finished, rejected

    with reported(output):
        if total == 0:
            raise CliError("empty_file", f"{file} is empty")
        job, rejected = with_services(output, work)
    if errors_file is not None:
        with errors_file.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason"])
            writer.writerows([e.line, neutralize_cell(e.reason)] for e in rejected)
    output.record("Import finished", import_view(job))


@app.command("export")
def export(
    location: LocationOption,
    out: Annotated[Path | None, typer.Option("--out", help="Write the CSV here (default: stdout).")] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Only contacts with this tag (repeatable: all of them).")
    ] = None,
    smart_list: SmartListOption = None,
    raw_formulas: Annotated[
        bool,
        typer.Option(
            "--raw-formulas",
            help="Write cells that a spreadsheet would run as formulas (=, +, -, @ first) as stored, "
            "without the leading apostrophe that makes them text.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Export a location's contacts as CSV (streamed in batches): all of them, or a smart list's, or
    those with the tags (both: the smart list's contacts with the tags)."""
    from ghl_core.contacts.selection import ContactSelection

    output = Output(json=json_output)
    selection = ContactSelection(tags=tuple(tags or ()), smart_list_id=smart_list)

    async def work(c: Container) -> int:
        actor = await location_actor(c, location)
        chunks = await c.contact_exports().export(actor, selection, neutralize_formulas=not raw_formulas)
        handle = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
        rows = -1
        try:
            async for chunk in chunks:
                rows += chunk.count("\r\n") if "\r\n" in chunk else 0
                handle.write(chunk)
        finally:
            if out:
                handle.close()
        return max(rows, 0)

    with reported(output):
        if out is None and json_output:
            raise CliError("bad_option", "--json needs --out: the CSV itself goes to stdout otherwise")
        count = with_services(output, work)
    if out is not None:
        output.record("Export written", {"file": str(out), "rows": count})
