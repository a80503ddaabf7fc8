"""/api/v1/contacts/imports and /api/v1/contacts/export: CSV in and out.

The upload is spooled to a file under the data folder (ghl_adapters.uploads), its header checked, and the
import recorded with its job in one transaction (a durable import) and answered 202 at once. A worker
(`ghl worker`, or the one inside `ghl serve`) runs the job (ghl_adapters.imports.runner): the file stays in
the spool until the import is done or failed, and an import whose worker or server was killed goes on
after its last committed batch when its job is taken up again, writing no row twice."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from ghl_adapters.imports.runner import open_csv
from ghl_adapters.sql.request_context import current_request_id
from ghl_adapters.uploads import SpooledUpload, UploadSpool
from ghl_core.contacts.csv_rows import CsvSource
from ghl_core.contacts.exports import ContactExportService
from ghl_core.contacts.fields import MAX_TAG
from ghl_core.contacts.import_mapping import parse_mapping_pairs
from ghl_core.contacts.import_models import DuplicateMode, ImportOptions
from ghl_core.contacts.imports import ContactImportService
from ghl_core.contacts.selection import ContactSelection
from ghl_core.shared.csv_cells import neutralize_cell
from ghl_core.shared.errors import ValidationFailed
from ghl_core.tenancy.permissions import Actor, Permission
from ghl_http.gate import API_PREFIX
from ghl_http.schema_rules import TAG
from ghl_http.schemas_contact_imports import ContactImportOut, ExportIn

_CHUNK = 64 * 1024


async def _spool(
    request: Request[Any, Any, Any], spool: UploadSpool
) -> tuple[SpooledUpload, str | None, dict[str, list[str]]]:
    """The uploaded CSV in a spooled file, its file name, and any form fields."""
    spooled = spool.create()
    fields: dict[str, list[str]] = {}
    filename: str | None = None
    try:
        if request.content_type[0] == "multipart/form-data":
            form = await request.form()
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ValidationFailed.one("/file", "send the CSV as the form field 'file'")
            filename = upload.filename
            while chunk := await upload.read(_CHUNK):
                spooled.write(chunk)
            for name in ("mapping", "tag", "duplicate_policy"):
                fields[name] = [v for v in form.getall(name) if isinstance(v, str)] if name in form else []
        else:
            async for chunk in request.stream():
                spooled.write(chunk)
        spooled.finish_writing()
    except BaseException:
        spooled.release()
        raise
    return spooled, filename, fields


class ContactImportsController(Controller):
    path = "/contacts/imports"
    tags = ["contacts: import and export"]

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        summary="Import contacts from CSV (text/csv body or multipart field 'file'); runs in the background",
    )
    async def start_import(
        self,
        request: Request[Any, Any, Any],
        actor: NamedDependency[Actor],
        contact_imports: NamedDependency[ContactImportService],
        upload_spool: NamedDependency[UploadSpool],
        mapping: Annotated[
            list[str] | None,
            QueryParameter(
                description="Header=field (repeatable); Header= ignores a column",
                schema_extra={"items": {"type": "string", "pattern": "^[^=]*[^=\\s][^=]*=[^=]*$"}},
            ),
        ] = None,
        tag: Annotated[
            list[str] | None,
            QueryParameter(
                description="Tag every row (repeatable)",
                schema_extra={"items": {"type": "string", "pattern": TAG, "maxLength": MAX_TAG}},
            ),
        ] = None,
        duplicate_policy: Annotated[
            DuplicateMode | None,
            QueryParameter(description="A row matching a contact: skip, update or create"),
        ] = None,
    ) -> Response[ContactImportOut]:
        # Refuse a caller without the permission before reading a large body.
        actor.require_location(Permission.CONTACTS_WRITE)
        spooled, filename, form = await _spool(request, upload_spool)
        try:
            policy_text = next(iter(form.get("duplicate_policy", [])), None)
            if policy_text is not None and policy_text not in DuplicateMode._value2member_map_:
                raise ValidationFailed.one("/duplicate_policy", "must be skip, update or create")
            options = ImportOptions(
                mapping=parse_mapping_pairs([*(mapping or []), *form.get("mapping", [])]),
                tags=(*(tag or []), *form.get("tag", [])),
                duplicates=DuplicateMode(policy_text)
                if policy_text
                else duplicate_policy or DuplicateMode.UPDATE,
                filename=filename,
            )
            with open_csv(spooled.path) as handle:
                headers = CsvSource(handle).headers
            job = await contact_imports.start(
                actor, headers, options, source=spooled.name, request_id=current_request_id()
            )
        except BaseException:
            spooled.release()
            raise
        spooled.keep()  # the import's now: the worker running it removes it when the import ends
        return Response(
            ContactImportOut.of(job),
            status_code=HTTP_202_ACCEPTED,
            headers={"Location": f"{API_PREFIX}/contacts/imports/{job.id}"},
        )

    @get("/{import_id:uuid}", summary="An import's status, counters and first rejected rows")
    async def get_import(
        self,
        import_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        contact_imports: NamedDependency[ContactImportService],
        errors: Annotated[int, QueryParameter(ge=0, le=100, description="Rejected rows to show")] = 20,
    ) -> ContactImportOut:
        return ContactImportOut.of(await contact_imports.get(actor, import_id, errors))

    @get(
        "/{import_id:uuid}/errors.csv",
        summary="Every rejected row (line, reason) as CSV",
        media_type="text/csv",
    )
    async def import_errors(
        self,
        import_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        contact_imports: NamedDependency[ContactImportService],
    ) -> Response[str]:
        rows = await contact_imports.error_report(actor, import_id)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(["line", "reason"])
        # A reason names the file's column, which the uploader chose: never a formula.
        writer.writerows([e.line, neutralize_cell(e.reason)] for e in rows)
        return Response(
            buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
        )


_NeutralizeFormulas = Annotated[
    bool,
    QueryParameter(
        description="Write cells a spreadsheet would run as a formula (=, +, -, @, tab, CR first) with a "
        "leading apostrophe (default); false writes them as stored"
    ),
]


def _csv_stream(chunks: AsyncIterator[str]) -> Stream:
    return Stream(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="contacts.csv"'},
    )


class ContactExportController(Controller):
    path = "/contacts/export"
    tags = ["contacts: import and export"]

    @get(
        "/",
        summary="Every live contact as CSV, streamed (optionally only a smart list's, or those with a tag)",
        media_type="text/csv",
    )
    async def export_contacts(
        self,
        actor: NamedDependency[Actor],
        contact_exports: NamedDependency[ContactExportService],
        tag: Annotated[
            list[str] | None,
            QueryParameter(
                description="Only contacts with this tag (repeatable: all)",
                schema_extra={"items": {"type": "string", "pattern": TAG, "maxLength": MAX_TAG}},
            ),
        ] = None,
        smart_list_id: Annotated[
            uuid.UUID | None, QueryParameter(description="Only the contacts of this smart list")
        ] = None,
        neutralize_formulas: _NeutralizeFormulas = True,
    ) -> Stream:
        selection = ContactSelection(tags=tuple(tag or ()), smart_list_id=smart_list_id)
        return _csv_stream(
            await contact_exports.export(actor, selection, neutralize_formulas=neutralize_formulas)
        )

    @post(
        "/",
        status_code=HTTP_200_OK,
        summary="The contacts matching a search (query, filter as in POST /contacts/search) as CSV",
        media_type="text/csv",
    )
    async def export_search(
        self,
        data: JSONBody[ExportIn],
        actor: NamedDependency[Actor],
        contact_exports: NamedDependency[ContactExportService],
        neutralize_formulas: _NeutralizeFormulas = True,
    ) -> Stream:
        selection = ContactSelection(
            query=data.query,
            filter=data.filter,
            tags=tuple(data.tags or ()),
            smart_list_id=data.smart_list_id,
        )
        return _csv_stream(
            await contact_exports.export(actor, selection, neutralize_formulas=neutralize_formulas)
        )
