"""The committed state of the in-memory adapters, and the working copy one unit of work changes.

Decisions:
- State is a set of named tables. A `Table[K, V]` is a `dict[K, V]` of rows by key; a `Log[V]` is an
  append-only `list[V]` (the audit trail, the event outbox). Each repository module declares the tables it
  keeps next to its code, so adding a repository adds no field to a shared class.
- Transactions are copy-on-write per table: the first time a unit of work touches a table it takes a deep
  copy of the committed table, reads and writes that copy, and publishes it on commit. Leaving without a
  commit drops the copies, as a database rolls back. Objects go in and come out as copies, so a service
  that mutates what it read without saving it changes nothing.
- Commit merges rather than overwrites. When another unit of work committed the same table since this one
  copied it, only the rows this one changed (compared with what it copied) are applied to the newer table,
  and a log gets only the entries this one appended: row-level last writer wins, as two PostgreSQL
  transactions under READ COMMITTED updating different rows both succeed.
- Tenant scoping is the repositories' job (`MemoryRepository.sees_location`), mirroring the row-level
  security policies: a location scope sees its own location's rows, the operator sees every row, anonymous
  and agency scopes see no location-owned row.
- Serial numbers (failed job ids, sequence columns) come from one counter on the store.

Imports the core and the standard library only: no database, no Redis.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from ghl_core.shared.clock import Clock, FixedClock
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.shared.scope import ScopeKind, TenantScope

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


class Table(Generic[K, V]):
    """The name of a table of rows by key."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Table({self.name!r})"


class Log(Generic[V]):
    """The name of an append-only list."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Log({self.name!r})"


class MemoryStore:
    """The committed state every unit of work starts from, the clock, and the serial counter.

    `committed(...)` returns the committed table itself: for tests and embedders to look at (a unit of
    work never writes to it in place; it replaces it on commit)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or FixedClock()
        self.tables: dict[str, Any] = {}
        self.commits = 0
        # Objects handed between adapters of this store outside any table (e.g. an import's encoded rows).
        self.scratch: dict[str, Any] = {}
        self._serial = itertools.count(1)

    def committed(self, table: Table[K, V]) -> dict[K, V]:
        found: dict[K, V] = self.tables.setdefault(table.name, {})
        return found

    def committed_log(self, log: Log[V]) -> list[V]:
        found: list[V] = self.tables.setdefault(log.name, [])
        return found

    def next_serial(self) -> int:
        return next(self._serial)


class WorkingSet:
    """One unit of work's copies of the tables it touched, and what it copied them from."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._base: dict[str, Any] = {}  # the committed object each copy was taken from
        self._work: dict[str, Any] = {}

    def table(self, table: Table[K, V]) -> dict[K, V]:
        found: dict[K, V] = self._touch(table.name, dict)
        return found

    def log(self, log: Log[V]) -> list[V]:
        found: list[V] = self._touch(log.name, list)
        return found

    def _touch(self, name: str, empty: Callable[[], Any]) -> Any:
        if name not in self._work:
            base = self._store.tables.get(name)
            if base is None:
                base = self._store.tables[name] = empty()
            self._base[name] = base
            self._work[name] = copy.deepcopy(base)
        return self._work[name]

    def added(self, table: Table[K, V]) -> list[V]:
        """The rows this unit of work added to a table it touched, in the order added."""
        if table.name not in self._work:
            return []
        base = self._base[table.name]
        return [row for key, row in self._work[table.name].items() if key not in base]

    def touched(self) -> list[str]:
        return list(self._work)

    def changed(self, name: str) -> bool:
        if name not in self._work:
            return False
        return bool(self._work[name] != self._base[name])

    def publish(self) -> None:
        """Makes the copies the committed state, merging with what others committed meanwhile."""
        tables = self._store.tables
        for name, work in self._work.items():
            base, current = self._base[name], tables[name]
            if current is base:
                tables[name] = work
            elif isinstance(work, list):
                tables[name] = [*current, *work[len(base) :]]
            else:
                merged = dict(current)
                for key in base.keys() - work.keys():
                    merged.pop(key, None)
                for key, row in work.items():
                    if key not in base or base[key] != row:
                        merged[key] = row
                tables[name] = merged
            # Later units of work copy the new table; this one must not write to it any more.
            self._base[name] = tables[name]
            self._work[name] = copy.deepcopy(tables[name])


class OpenUnitOfWork(Protocol):
    """What a repository needs of its unit of work (`MemoryUnitOfWork` is one)."""

    scope: TenantScope
    store: MemoryStore

    def working(self) -> WorkingSet:
        """Raises RuntimeError outside `async with`."""
        ...


class MemoryRepository:
    """Base of the repositories: reaches the unit of work's working set and its tenant scope."""

    def __init__(self, uow: OpenUnitOfWork) -> None:
        self._uow = uow

    @property
    def scope(self) -> TenantScope:
        return self._uow.scope

    @property
    def clock(self) -> Clock:
        return self._uow.store.clock

    def rows(self, table: Table[K, V]) -> dict[K, V]:
        return self._uow.working().table(table)

    def log(self, log: Log[V]) -> list[V]:
        return self._uow.working().log(log)

    def unique_rows(self, table: Table[K, V]) -> Iterator[V]:
        """The rows a unique key is checked against: this transaction's copy, and the rows other units of
        work committed since it was taken. A key another commit took is taken (the SQL unique index makes
        the insert wait for that commit, then refuses it); keys two open units of work take at the same
        time are not seen by each other (no lock is held), and the later commit's row wins."""
        work = self.rows(table)
        yield from work.values()
        committed = self._uow.store.committed(table)  # read, never written
        if committed is not work:
            yield from (row for key, row in committed.items() if key not in work)

    def sees_location(self, location_id: object) -> bool:
        """Row-level security for a row owned by a location."""
        scope = self._uow.scope
        if scope.kind is ScopeKind.OPERATOR:
            return True
        return scope.kind is ScopeKind.LOCATION and location_id == scope.location_id

    def sees_agency(self, agency_id: object) -> bool:
        """Row-level security for a row owned by an agency (users, refresh tokens)."""
        scope = self._uow.scope
        if scope.kind is ScopeKind.OPERATOR:
            return True
        return scope.agency_id is not None and agency_id == scope.agency_id

    def sees_either(self, agency_id: object, location_id: object) -> bool:
        """Row-level security for the audit trail and the event log: the location's rows, or the agency's."""
        return self.sees_agency(agency_id) or (location_id is not None and self.sees_location(location_id))

    def check_write(self, allowed: bool, table: str) -> None:
        """An insert the policies refuse fails, as the database's WITH CHECK does."""
        if not allowed:
            raise PermissionError(f"row-level security refuses this row of {table} in scope {self.scope}")


# -- paging --------------------------------------------------------------------------------------------


def created_key(row: Any) -> tuple[datetime, Any]:
    return (row.created_at, row.id)


def _cursor(row: Any) -> tuple[str, str]:
    return (row.created_at.isoformat(), str(row.id))


def paginate(items: Iterable[T], page: PageRequest, *, descending: bool = False) -> Page[T]:
    """Keyset pages by (created_at, id), the order the SQL adapters page most lists in; copies out."""
    rows = sorted(items, key=created_key, reverse=descending)
    if page.after is not None:
        try:
            created, ident = page.after
            after = (datetime.fromisoformat(created), uuid.UUID(ident))
        except ValueError:
            raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None
        rows = [r for r in rows if (created_key(r) < after if descending else created_key(r) > after)]
    if page.offset is not None:
        rows = rows[page.offset :]
    return page_from_rows([copy.deepcopy(r) for r in rows[: page.limit + 1]], page.limit, _cursor)


def copied(row: T | None) -> T | None:
    return copy.deepcopy(row)
