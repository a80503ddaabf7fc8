"""Finding contacts: free-text search plus a filter, one sort key, keyset pages and an estimated total.

The `ContactSearch` port answers inside a unit of work (so row-level security scopes it); the PostgreSQL
adapter compiles the filter to SQL, an Elasticsearch adapter can come later behind the same port."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ghl_core.contacts.filters import Group, custom_keys, parse_filter
from ghl_core.contacts.models import Contact
from ghl_core.custom_fields.cached import cached_definitions
from ghl_core.custom_fields.ports import DefinitionsUnitOfWork
from ghl_core.shared.cache import ReadCache
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.pagination import MAX_LIMIT, Page, decode_cursor
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission

SORT_FIELDS = ("created_at", "updated_at", "last_activity_at", "first_name", "last_name", "email")
MAX_QUERY = 200
MAX_TOKENS = 8
_PHONE_LIKE = re.compile(r"^[\d\s()+.\-]+$")


@dataclass(frozen=True, slots=True)
class Sort:
    field: str = "created_at"
    direction: Literal["asc", "desc"] = "desc"


@dataclass(frozen=True, slots=True)
class SearchPage:
    """`after` is the (sort value, id) of the last row of the previous page, as the adapter wrote it."""

    limit: int = 20
    after: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class CountEstimate:
    value: int
    exact: bool  # small results are counted (bounded); large ones come from the planner's estimate


@dataclass(frozen=True, slots=True)
class SearchResult:
    page: Page[Contact]
    total: CountEstimate | None  # None when the caller did not ask for it


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """A checked search: what a request or a smart list asks for."""

    tokens: tuple[str, ...] = ()
    filter: Group | None = None
    sort: Sort = Sort()


class ContactSearch(Protocol):
    async def search(self, location_id: uuid.UUID, spec: SearchSpec, page: SearchPage) -> Page[Contact]:
        """Live contacts of the location matching the spec, in sort order. Each page's next_cursor
        encodes (sort field, direction, sort value, id)."""
        ...

    async def search_with_total(
        self, location_id: uuid.UUID, spec: SearchSpec, page: SearchPage
    ) -> SearchResult:
        """That page and how many contacts match the spec: exact when few do, else an estimate."""
        ...

    async def count_up_to(self, location_id: uuid.UUID, spec: SearchSpec, limit: int) -> int:
        """How many contacts match, counted exactly but no further than `limit` (a bound to check)."""
        ...


class SearchUnitOfWork(DefinitionsUnitOfWork, Protocol):
    """What a search touches: the search port, and the definitions a filter on custom fields names.
    (Declared beside the port it names, which its users import from here.)"""

    @property
    def contact_search(self) -> ContactSearch: ...


def search_tokens(query: str | None, pointer: str = "/query") -> tuple[str, ...]:
    """Every token must match. A query that looks like a phone number becomes its digits, so
    "(312) 555-0142" finds +13125550142."""
    if query is None or not query.strip():
        return ()
    if len(query) > MAX_QUERY or "\x00" in query:
        raise ValidationFailed.one(pointer, f"must be at most {MAX_QUERY} characters")
    if _PHONE_LIKE.match(query):
        digits = re.sub(r"\D", "", query)
        if len(digits) >= 3:
            return (digits,)
    tokens = tuple(dict.fromkeys(query.lower().split()))
    if len(tokens) > MAX_TOKENS:
        raise ValidationFailed.one(pointer, f"at most {MAX_TOKENS} words")
    return tokens


def parse_sort(raw: object, pointer: str = "/sort") -> Sort:
    if raw is None or raw == []:
        return Sort()
    if not isinstance(raw, list):
        raise ValidationFailed.one(
            pointer, 'must be a list like [{"field": "created_at", "direction": "desc"}]'
        )
    if len(raw) > 1:
        raise ValidationFailed.one(f"{pointer}/1", "one sort key is supported (ties are broken by id)")
    item = raw[0]
    if not isinstance(item, Mapping):
        raise ValidationFailed.one(f"{pointer}/0", "must be an object with field and direction")
    errors = [
        FieldError(f"{pointer}/0/{k}", "is not a sort member (field, direction)")
        for k in item
        if k not in ("field", "direction")
    ]
    field, direction = item.get("field"), item.get("direction", "desc")
    if field not in SORT_FIELDS:
        errors.append(FieldError(f"{pointer}/0/field", f"must be one of {', '.join(SORT_FIELDS)}"))
    if direction not in ("asc", "desc"):
        errors.append(FieldError(f"{pointer}/0/direction", "must be asc or desc"))
    if errors:
        raise ValidationFailed(errors)
    return Sort(field=str(field), direction="asc" if direction == "asc" else "desc")


def parse_page(limit: int | None, cursor: str | None, sort: Sort) -> SearchPage:
    size = 20 if limit is None else limit
    if not 1 <= size <= MAX_LIMIT:
        raise ValidationFailed.one("/limit", f"must be between 1 and {MAX_LIMIT}")
    if not cursor:
        return SearchPage(limit=size)
    parts = decode_cursor(cursor)
    # A cursor only continues the sort it came from; another sort would skip or repeat rows.
    if len(parts) != 4 or (parts[0], parts[1]) != (sort.field, sort.direction):
        raise ValidationFailed.one("/cursor", "does not belong to this sort; start again without a cursor")
    return SearchPage(limit=size, after=(parts[2], parts[3]))


class ContactSearchService:
    def __init__(self, uow: UnitOfWorkFactory[SearchUnitOfWork], cache: ReadCache | None = None) -> None:
        self._uow = uow
        self._cache = cache or ReadCache()

    async def spec(self, uow: SearchUnitOfWork, location_id: uuid.UUID, raw: Mapping[str, Any]) -> SearchSpec:
        """Checks query, filter and sort together so one response lists every mistake."""
        errors: list[FieldError] = []
        tokens: tuple[str, ...] = ()
        group: Group | None = None
        sort = Sort()
        try:
            tokens = search_tokens(raw.get("query"))
        except ValidationFailed as exc:
            errors += exc.errors
        if raw.get("filter") is not None:
            definitions = {}
            if custom_keys(raw["filter"]):
                found = await cached_definitions(self._cache, uow, location_id)
                definitions = {d.key: d.type for d in found}
            try:
                group = parse_filter(raw["filter"], definitions)
            except ValidationFailed as exc:
                errors += exc.errors
        try:
            sort = parse_sort(raw.get("sort"))
        except ValidationFailed as exc:
            errors += exc.errors
        if errors:
            raise ValidationFailed(errors)
        return SearchSpec(tokens=tokens, filter=group, sort=sort)

    async def run(
        self,
        uow: SearchUnitOfWork,
        location_id: uuid.UUID,
        spec: SearchSpec,
        limit: int | None,
        cursor: str | None,
        *,
        with_total: bool = True,
    ) -> SearchResult:
        """A page, and the total unless `with_total` is false (the estimate is a statement of its own)."""
        page = parse_page(limit, cursor, spec.sort)
        if not with_total:
            return SearchResult(page=await uow.contact_search.search(location_id, spec, page), total=None)
        return await uow.contact_search.search_with_total(location_id, spec, page)

    async def search(self, actor: Actor, raw: Mapping[str, Any]) -> SearchResult:
        """`raw` holds query, filter, sort, limit, cursor and total (default true) as the API receives
        them."""
        location_id = actor.require_location(Permission.CONTACTS_READ)
        with_total = raw.get("total", True)
        if not isinstance(with_total, bool):
            raise ValidationFailed.one("/total", "must be true or false")
        async with self._uow(actor.scope) as uow:
            spec = await self.spec(uow, location_id, raw)
            return await self.run(
                uow, location_id, spec, raw.get("limit"), raw.get("cursor"), with_total=with_total
            )
