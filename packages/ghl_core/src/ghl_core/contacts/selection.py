"""Choosing contacts the way the search does: a smart list, a query and filter in the language of
POST /contacts/search, and tags a contact must all have, combined with AND. The export and the CLI's
listing use it; the filter is checked and compiled by the search itself (no second compiler here).

A smart list is a saved search of the smart lists context, which sits above contacts (it runs their
search). A selection reads one through `SavedSearches`, declared here by what it reads; the smart list
repository satisfies it, and the smart list service runs its saved search through `saved_spec` too."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from ghl_core.contacts.filters import Group, parse_filter
from ghl_core.contacts.search import ContactSearchService, SearchResult, SearchSpec, SearchUnitOfWork, Sort
from ghl_core.shared.cache import ReadCache
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission


class SavedSearch(Protocol):
    """A smart list, as a selection reads it."""

    @property
    def query(self) -> str | None: ...

    @property
    def filter(self) -> dict[str, Any] | None: ...

    @property
    def sort(self) -> list[dict[str, Any]]: ...

    @property
    def deleted_at(self) -> datetime | None: ...


class SavedSearches(Protocol):
    async def get(self, smart_list_id: uuid.UUID) -> SavedSearch | None: ...


class SelectionUnitOfWork(SearchUnitOfWork, Protocol):
    """What choosing contacts touches: the search, and the smart lists it may start from."""

    @property
    def smart_lists(self) -> SavedSearches: ...


async def saved_spec(
    search: ContactSearchService, uow: SelectionUnitOfWork, location_id: uuid.UUID, smart_list_id: uuid.UUID
) -> SearchSpec:
    """The saved search, checked as it reads now, inside the caller's unit of work (so another
    location's list is simply not found)."""
    saved = await uow.smart_lists.get(smart_list_id)
    if saved is None or saved.deleted_at is not None:
        raise NotFound(f"smart list {smart_list_id} not found")
    raw = {"query": saved.query, "filter": saved.filter, "sort": saved.sort}
    return await search.spec(uow, location_id, raw)


@dataclass(frozen=True, slots=True)
class ContactSelection:
    query: str | None = None
    filter: Any = None  # raw JSON, checked by the search with pointers under /filter
    tags: tuple[str, ...] = ()  # the contact has every one of them
    smart_list_id: uuid.UUID | None = None

    @property
    def everyone(self) -> bool:
        return (
            self.smart_list_id is None
            and not (self.query or "").strip()
            and self.filter is None
            and not self.tags
        )


def tag_filter(tags: tuple[str, ...]) -> Group | None:
    """The tags a contact must all have, checked as the search checks a filter's (pointers under /tag);
    None for no tags."""
    if not tags:
        return None
    return parse_filter({"field": "tags", "operator": "has_all", "value": list(tags)}, {}, "/tag")


def _and(groups: list[Group]) -> Group | None:
    if not groups:
        return None
    return groups[0] if len(groups) == 1 else Group("and", tuple(groups))


class ContactFinder:
    def __init__(
        self, uow: UnitOfWorkFactory[SelectionUnitOfWork], clock: Clock, cache: ReadCache | None = None
    ) -> None:
        # `clock` stays in the signature its callers (the container, the export) build it with.
        self._uow = uow
        self._search = ContactSearchService(uow, cache)

    async def spec(
        self, uow: SelectionUnitOfWork, location_id: uuid.UUID, selection: ContactSelection
    ) -> SearchSpec:
        """The combined search; sorted as the smart list is, else newest first. Every mistake in the
        query, filter and tags is reported at once; an unknown (or another location's) smart list is
        NotFound."""
        errors: list[FieldError] = []
        base = SearchSpec()
        if selection.smart_list_id is not None:
            base = await saved_spec(self._search, uow, location_id, selection.smart_list_id)
        asked = SearchSpec()
        try:
            asked = await self._search.spec(
                uow, location_id, {"query": selection.query, "filter": selection.filter}
            )
        except ValidationFailed as exc:
            errors += exc.errors
        tagged: Group | None = None
        try:
            tagged = tag_filter(selection.tags)
        except ValidationFailed as exc:
            errors += exc.errors
        if errors:
            raise ValidationFailed(errors)
        groups = [g for g in (base.filter, asked.filter, tagged) if g is not None]
        tokens = tuple(dict.fromkeys((*base.tokens, *asked.tokens)))
        return SearchSpec(tokens=tokens, filter=_and(groups), sort=base.sort)

    async def find(
        self, actor: Actor, selection: ContactSelection, limit: int | None, cursor: str | None
    ) -> SearchResult:
        """One page of the selection, with its estimated total."""
        location_id = actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            spec = await self.spec(uow, location_id, selection)
            return await self._search.run(uow, location_id, spec, limit, cursor)


def oldest_first(spec: SearchSpec) -> SearchSpec:
    """An export's order: creation, oldest first (ties by id), whatever the smart list shows."""
    return replace(spec, sort=Sort("created_at", "asc"))
