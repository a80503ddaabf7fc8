"""Bodies of the contact search and smart list endpoints. The filter is loosely typed here on purpose:
the core checks it and reports each mistake with its pointer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ghl_core.contacts.search import MAX_QUERY, SearchResult
from ghl_core.shared.pagination import CURSOR_PATTERN, MAX_CURSOR, MAX_LIMIT
from ghl_core.smart_lists.models import SmartList
from ghl_http.schema_rules import CONTACT_FILTER, NAME, contact_sort, requires, rule
from ghl_http.schemas import Body
from ghl_http.schemas_contacts import ContactOut

FILTER_HELP = (
    'A condition {"field", "operator", "value"} or a group {"and": [...]} / {"or": [...]} '
    "(groups nest 3 deep, 50 conditions at most). See docs/search-and-filters.md."
)
SORT_HELP = (
    'One key: [{"field": "created_at|updated_at|last_activity_at|first_name|last_name|email", '
    '"direction": "asc|desc"}]'
)


_QUERY = rule(maxLength=MAX_QUERY)
_FILTER = rule(**CONTACT_FILTER)


class SearchIn(Body):
    query: Annotated[str | None, _QUERY] = Field(
        None, description="Words matched in names, e-mail, company and phone"
    )
    filter: Annotated[dict[str, Any] | None, _FILTER] = Field(None, description=FILTER_HELP)
    sort: Annotated[list[dict[str, Any]] | None, contact_sort()] = Field(None, description=SORT_HELP)
    limit: Annotated[int | None, rule(minimum=1, maximum=MAX_LIMIT)] = Field(
        None, description="Items per page (1 to 100, default 20)"
    )
    cursor: Annotated[str | None, rule(pattern=CURSOR_PATTERN, maxLength=MAX_CURSOR)] = Field(
        None, description="The next_cursor of the previous page (same sort)"
    )
    total: bool = Field(
        True,
        description="false leaves the total out (total_estimate and total_is_exact are null), saving the "
        "planner round trip; a client paging on through a list it has counted can ask so",
    )


class SearchOut(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page")
    total_estimate: int | None = Field(
        description="How many contacts match: an estimate from the query planner when large, counted when "
        "the planner expects at most 200 (see total_is_exact); null when the request said total: false"
    )
    total_is_exact: bool | None = Field(description="null when the request said total: false")

    @classmethod
    def of(cls, result: SearchResult) -> SearchOut:
        return cls(
            items=[ContactOut.of(c) for c in result.page.items],
            next_cursor=result.page.next_cursor,
            total_estimate=None if result.total is None else result.total.value,
            total_is_exact=None if result.total is None else result.total.exact,
        )


class SmartListPatch(Body):
    name: Annotated[str | None, rule(nullable=False, pattern=NAME)] = Field(None, max_length=200)
    query: Annotated[str | None, _QUERY] = None
    filter: Annotated[dict[str, Any] | None, _FILTER] = Field(None, description=FILTER_HELP)
    sort: Annotated[list[dict[str, Any]] | None, contact_sort()] = Field(None, description=SORT_HELP)


class SmartListIn(SmartListPatch):
    model_config = ConfigDict(json_schema_extra=requires("name"))


class SmartListOut(BaseModel):
    id: uuid.UUID
    name: str
    query: str | None
    filter: dict[str, Any] | None
    sort: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: SmartList) -> SmartListOut:
        return cls(
            id=s.id,
            name=s.name,
            query=s.query,
            filter=s.filter,
            sort=s.sort,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )
