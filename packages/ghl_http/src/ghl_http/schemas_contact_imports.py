"""Bodies of the contact import and export endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from ghl_core.contacts.import_models import ContactImport
from ghl_core.contacts.search import MAX_QUERY
from ghl_http.schema_rules import CONTACT_FILTER, TAGS, rule
from ghl_http.schemas import Body
from ghl_http.schemas_contact_search import FILTER_HELP


class RowErrorOut(BaseModel):
    line: int = Field(description="The line of the file the row starts on (the header is line 1)")
    reason: str


class ImportCountersOut(BaseModel):
    processed: int
    created: int
    updated: int
    skipped: int
    failed: int


class ContactImportOut(BaseModel):
    id: uuid.UUID
    status: Literal["queued", "running", "done", "failed"]
    filename: str | None
    mapping: dict[str, str] = Field(description="Header -> contact field, as applied (automatic + given)")
    tags: list[str]
    duplicate_policy: Literal["skip", "update", "create"]
    counters: ImportCountersOut
    errors: list[RowErrorOut] = Field(description="The first rejected rows; all of them in errors.csv")
    failure: str | None = Field(description="Why the import stopped, when it did")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: ContactImport) -> ContactImportOut:
        return cls(
            id=job.id,
            status=job.status.value,
            filename=job.options.filename,
            mapping=job.options.mapping,
            tags=list(job.options.tags),
            duplicate_policy=job.options.duplicates.value,
            counters=ImportCountersOut(**job.counters.as_dict()),
            errors=[RowErrorOut(line=e.line, reason=e.reason) for e in job.errors],
            failure=job.failure,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class ExportIn(Body):
    """What to export: combined with AND; an empty body exports every contact."""

    query: Annotated[str | None, rule(maxLength=MAX_QUERY)] = Field(
        None, description="Words matched in names, e-mail, company and phone"
    )
    filter: Annotated[dict[str, Any] | None, rule(**CONTACT_FILTER)] = Field(None, description=FILTER_HELP)
    tags: Annotated[list[str] | None, TAGS] = Field(None, description="Tags a contact must all have")
    smart_list_id: uuid.UUID | None = Field(None, description="Only the contacts of this smart list")
