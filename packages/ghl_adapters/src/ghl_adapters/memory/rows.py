"""What every in-memory repository does the same way: tenant visibility, copies, keyset pages.

Decisions:
- Visibility follows the row-level security policies of the SQL schema (`store.MemoryRepository`): a
  repository filters every read by it, so it never answers another location's row even when the service
  asks by id. A write the policy would refuse raises `PermissionError` (the database raises an error
  too); an update of an invisible row changes nothing, as an UPDATE whose WHERE finds no visible row.
- Rows go in and come out as deep copies: a service that mutates what it read without saving it
  changes nothing, as with a database.
- Keyset pages sort and cut exactly as the SQL statements do (the cursor is the same tuple of strings),
  so a cursor from one adapter means the same to the other; UUIDs compare as PostgreSQL compares them
  (by their bytes, which is `uuid.UUID` order).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.shared.scope import ScopeKind, TenantScope

from .store import MemoryRepository, Table
from .tenancy import AGENCIES, DELETED_AGENCIES, LOCATIONS

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def visible(scope: TenantScope, location_id: uuid.UUID | None) -> bool:
    """The `location_id = ghl_current_location()` policy, with the operator's `USING (true)` (as
    `MemoryRepository.sees_location`)."""
    if scope.kind is ScopeKind.OPERATOR:
        return True
    return scope.kind is ScopeKind.LOCATION and scope.location_id == location_id


def location_facts(repo: MemoryRepository, location_id: uuid.UUID) -> tuple[uuid.UUID, bool] | None:
    """What a SECURITY DEFINER look-up of the SQL schema may learn of a location whatever the scope:
    its agency's id and whether both are live (not deleted); None when there is no such location."""
    location = repo.rows(LOCATIONS).get(location_id)
    if location is None:
        return None
    live = location.deleted_at is None and agency_live(repo, location.agency_id)
    return location.agency_id, live


def agency_live(repo: MemoryRepository, agency_id: uuid.UUID) -> bool:
    return agency_id in repo.rows(AGENCIES) and agency_id not in repo.rows(DELETED_AGENCIES)


def unique_rows(repo: MemoryRepository, table: Table[K, V]) -> Iterator[V]:
    """The rows a unique key is checked against: this transaction's copy, and the rows other units of work
    committed since it was taken. A key another commit took is taken (the SQL unique index makes the
    insert wait for that commit, then refuses it); keys two open units of work take at the same time are
    not seen by each other (no lock is held), and the later commit's row wins."""
    work = repo.rows(table)
    yield from work.values()
    committed = repo._uow.store.committed(table)  # the same package's base class: read, never written
    if committed is not work:
        yield from (row for key, row in committed.items() if key not in work)


def check_write(scope: TenantScope, location_id: uuid.UUID | None, table: str) -> None:
    """The policy's WITH CHECK: a row the scope could not see cannot be written either."""
    if not visible(scope, location_id):
        raise PermissionError(f"new row violates row-level security policy for table {table!r}")


def clone(value: T) -> T:
    return copy.deepcopy(value)


def _after(page: PageRequest, size: int = 2) -> tuple[str, ...] | None:
    if page.after is None:
        return None
    if len(page.after) != size:
        raise ValidationFailed.one("/cursor", "is not a cursor this API issued")
    return page.after


def instant_key(page: PageRequest) -> tuple[datetime, uuid.UUID] | None:
    """The cursor of an (instant, id) keyset, checked as the SQL adapters check it."""
    after = _after(page)
    if after is None:
        return None
    try:
        return datetime.fromisoformat(after[0]), uuid.UUID(after[1])
    except ValueError:
        raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None


def keyset_page(
    rows: Iterable[T],
    page: PageRequest,
    instant: Callable[[T], datetime],
    *,
    descending: bool,
    ident: Callable[[T], uuid.UUID] = lambda row: row.id,  # type: ignore[attr-defined]
) -> Page[T]:
    """`ORDER BY instant, id` (or both DESC) `LIMIT limit + 1`, after the cursor, then the offset."""

    def key(row: T) -> tuple[datetime, uuid.UUID]:
        return instant(row), ident(row)

    ordered = sorted(rows, key=key, reverse=descending)
    after = instant_key(page)
    if after is not None:
        ordered = [r for r in ordered if (key(r) < after if descending else key(r) > after)]
    if page.offset is not None:
        ordered = ordered[page.offset :]
    taken = [clone(r) for r in ordered[: page.limit + 1]]
    return page_from_rows(taken, page.limit, lambda r: (instant(r).isoformat(), str(ident(r))))


def count_by(values: Iterable[Any]) -> dict[Any, int]:
    """`SELECT x, count(*) GROUP BY x`: only the values that occur."""
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
