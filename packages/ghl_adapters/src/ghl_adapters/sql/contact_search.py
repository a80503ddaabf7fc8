"""The PostgreSQL adapter of `ContactSearch`: the filter tree compiled to SQLAlchemy expressions (every
value a bound parameter), folded-text search (word prefixes on the full-text `search_vector`, and
substrings on the trigram-indexed `search_text` where the server has pg_trgm), keyset pages on indexed
sort expressions and a planner-based total estimate (counted with the page when it is small)."""

from __future__ import annotations

import re
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    MetaData,
    Numeric,
    Select,
    Table,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from ghl_core.contacts.filters import Condition, Group, Kind, Node
from ghl_core.contacts.models import Contact
from ghl_core.contacts.search import CountEstimate, SearchPage, SearchResult, SearchSpec
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, encode_cursor

from . import tables as t
from .contacts import _from_row

# The view `contacts_scoped` (migration 0006) holds the caller's location's rows and the columns a search
# reads. Row-level security lets no operator that is not LEAKPROOF (LIKE, &&, @>) run before its policy,
# so through RLS the trigram, tag and jsonb GIN indexes could never be used; the view's own
# `location_id = ghl_current_location()` keeps the tenant boundary while the planner picks indexes.
# Only ids come from the view: the rows themselves are read from `contacts`, under RLS.
_view_metadata = MetaData()
contacts_scoped = Table(
    "contacts_scoped",
    _view_metadata,
    *(
        Column(name, t.contacts.c[name].type)
        for name in (
            "id",
            "location_id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "company_name",
            "address1",
            "city",
            "state",
            "postal_code",
            "country",
            "website",
            "timezone",
            "date_of_birth",
            "gender",
            "source",
            "assigned_user_id",
            "dnd",
            "dnd_channels",
            "tags",
            "custom_fields",
            "last_activity_at",
            "created_at",
            "updated_at",
            "deleted_at",
            "erased_at",
        )
    ),
    Column("search_text", Text),
    Column("search_vector", TSVECTOR),
)
c = contacts_scoped.c
NO_ACTIVITY = datetime(1, 1, 1, tzinfo=UTC)
TIME_SORTS = ("created_at", "updated_at", "last_activity_at")
EXACT_COUNT_UP_TO = 200
PHONE_SUFFIX_DIGITS = 7


def sort_key(columns: Any, field: str) -> ColumnElement[Any]:
    """The sort expression; each has a matching (location_id, expression, id) index (migration 0006)."""
    if field == "last_activity_at":
        return func.coalesce(columns.last_activity_at, literal(NO_ACTIVITY, DateTime(timezone=True)))
    if field in ("first_name", "last_name"):
        return func.lower(func.coalesce(columns[field], ""))
    if field == "email":
        return func.coalesce(columns.email, "")
    return columns[field]  # type: ignore[no-any-return]


class Explain(Executable, ClauseElement):
    """EXPLAIN of a statement, with its parameters bound like the statement's own. `options` is a
    constant of the caller's code (e.g. "ANALYZE, FORMAT TEXT" in the bench), never request input."""

    inherit_cache = False

    def __init__(self, statement: Any, options: str = "FORMAT JSON") -> None:
        self.statement = statement
        self.explain_options = options


@compiles(Explain)
def _compile_explain(element: Explain, compiler: Any, **kw: Any) -> str:
    return f"EXPLAIN ({element.explain_options}) " + str(compiler.process(element.statement, **kw))


@asynccontextmanager
async def unprepared(conn: AsyncConnection) -> AsyncIterator[None]:
    """Runs the statements inside as unnamed statements, each planned for its own values.

    Searches bind their LIKE patterns, tag lists and jsonb documents as parameters. psycopg prepares a
    statement on the server once its text has run `prepare_threshold` times on a connection, and
    PostgreSQL may then reuse a generic plan that cannot see those values, so it would not know the
    trigram index applies or how selective a tag is. An unnamed statement is always planned with its
    values; switching preparation off on the driver connection costs no round trip (a
    `plan_cache_mode` setting did)."""
    raw = (await conn.get_raw_connection()).driver_connection
    if raw is None:  # pragma: no cover - a checked-out connection always has its driver connection
        yield
        return
    threshold = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        yield
    finally:
        raw.prepare_threshold = threshold


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Runs of ASCII punctuation split words, on the stored side (migration 0009) as in a query: an e-mail is
# its words, "jean-luc" is two. All tsquery operators (& | ! ( ) : * < - > ' and backslash) are among them.
PUNCTUATION = re.compile(r"[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]+")
TRIGRAM_INDEX_PRESENT = text("SELECT to_regclass('contacts_search_trgm_idx') IS NOT NULL")
_trigram_index: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


async def has_trigram_index(conn: AsyncConnection) -> bool:
    """Whether migration 0006 could build the trigram index (the server had pg_trgm): asked of the
    database once per engine. Without it a substring LIKE would scan every row of the location, so
    search then matches word prefixes only."""
    engine = conn.sync_engine
    known = _trigram_index.get(engine)
    if known is None:
        known = bool((await conn.execute(TRIGRAM_INDEX_PRESENT)).scalar_one())
        _trigram_index[engine] = known
    return known


def _word_query(word: str, prefix: bool) -> ColumnElement[Any]:
    """A tsquery for one word, folded like the stored text. The folded word is quoted as one tsquery
    operand (quote and backslash escaped), so nothing in it is read as an operator."""
    folded = func.ghl_unaccent(func.lower(literal(word, Text)))
    quoted = func.replace(func.replace(folded, "\\", "\\\\"), "'", "''")
    operand = literal("'", Text) + quoted + literal("':*" if prefix else "'", Text)
    return func.to_tsquery("simple", operand)


def token_tsquery(token: str) -> ColumnElement[Any] | None:
    """One query token as a tsquery: a plain word matches words that start with it ("jan" -> Janet); a
    token with punctuation matches its words in a row, the last as a prefix ("bob@acme" -> bob, then a
    word starting with acme). None when the token has no word at all ("%")."""
    words = [w for w in PUNCTUATION.split(token) if w]
    if not words:
        return None
    query = _word_query(words[-1], prefix=True)
    for word in reversed(words[:-1]):
        query = _word_query(word, prefix=False).op("<->")(query)
    return query


def _text_match(tokens: tuple[str, ...], trigram: bool) -> list[ColumnElement[bool]]:
    """Every token must match, each in any field.

    Without the trigram index: the tokens' tsqueries joined with `&&`, one GIN look-up of `search_vector`.
    With it, a token also matches inside a word ("idgets" -> ACME Widgets) as a substring of the folded
    `search_text`. For a token of letters and digits only that substring match already includes every
    word-prefix match, and the trigram index answers it faster than a GIN prefix match of the tsvector
    (docs/benchmarks.md), so it is used alone; a token with punctuation ("bob@acme", "!jane") matches
    either way, so its results do not depend on the server."""
    if not trigram:
        queries = [query for query in map(token_tsquery, tokens) if query is not None]
        if len(queries) < len(tokens):
            return [false()]  # a token of punctuation only has no word to match
        if not queries:
            return []
        combined = queries[0]
        for query in queries[1:]:
            combined = combined.op("&&")(query)
        return [c.search_vector.bool_op("@@")(combined)]
    conditions: list[ColumnElement[bool]] = []
    for token in tokens:
        # The token is folded the way the column was, by the same immutable function.
        pattern = "%" + _like_escape(token) + "%"
        inside = c.search_text.like(func.ghl_unaccent(func.lower(literal(pattern, Text))), escape="\\")
        words = None if token.isalnum() else token_tsquery(token)
        conditions.append(inside if words is None else or_(c.search_vector.bool_op("@@")(words), inside))
    return conditions


def _contains(column: ColumnElement[Any], needle: str) -> ColumnElement[bool]:
    return column.like("%" + _like_escape(needle) + "%", escape="\\")


def _custom_json(key: str) -> ColumnElement[Any]:
    return c.custom_fields.op("->")(literal(key, Text))


def _custom_typed(kind: Kind, key: str) -> ColumnElement[Any]:
    """The value as SQL of the field's type, NULL when the stored JSON has another type."""
    value = _custom_json(key)
    kind_of = func.jsonb_typeof(value)
    if kind is Kind.CUSTOM_NUMBER:
        return case((kind_of == "number", cast(value, Numeric)), else_=None)
    text_value = c.custom_fields.op("->>")(literal(key, Text))
    if kind is Kind.CUSTOM_DATE:
        return case((and_(kind_of == "string", text_value.op("~")(r"^\d{4}-\d{2}-\d{2}$")), text_value))
    return case((kind_of == "string", func.lower(text_value)), else_=None)


def _has(op: str, column: ColumnElement[Any], values: tuple[str, ...]) -> ColumnElement[bool]:
    wanted = cast(literal(list(values), ARRAY(Text)), ARRAY(Text))
    if op == "has_all":
        return column.bool_op("@>")(wanted)
    overlap = column.bool_op("&&")(wanted)
    return overlap if op == "has_any" else not_(overlap)


def _options(op: str, key: str, values: tuple[str, ...]) -> ColumnElement[bool]:
    # Containment on the whole jsonb column uses its jsonb_path_ops GIN index.
    if op == "has_all":
        return c.custom_fields.bool_op("@>")(literal({key: list(values)}, JSONB))
    anyof = or_(*(c.custom_fields.bool_op("@>")(literal({key: [v]}, JSONB)) for v in values))
    return anyof if op == "has_any" else not_(anyof)


def _ordered(op: str, column: ColumnElement[Any], want: Any) -> ColumnElement[bool]:
    if op == "eq":
        return column.op("=", is_comparison=True)(want)
    if op == "neq":
        return column.is_distinct_from(want)
    if op == "in":
        return column.in_(list(want))
    if op == "gt":
        return column.op(">", is_comparison=True)(want)
    if op == "lt":
        return column.op("<", is_comparison=True)(want)
    if op == "between":
        return column.between(want[0], want[1])
    if op == "contains":
        return _contains(column, want)
    return column.like(_like_escape(want) + "%", escape="\\")  # starts_with


def compile_node(node: Node) -> ColumnElement[bool]:
    if isinstance(node, Group):
        parts = [compile_node(item) for item in node.items]
        if not parts:
            return true()
        return and_(*parts) if node.join == "and" else or_(*parts)
    return _condition(node)


def _condition(cond: Condition) -> ColumnElement[bool]:
    op, want, kind = cond.operator, cond.value, cond.kind
    if kind is Kind.TAGS:
        if op == "exists":
            present = func.cardinality(c.tags) > 0
            return present if want else not_(present)
        return _has(op, c.tags, want)
    if kind is Kind.BOOL:
        return c.dnd.is_(true()) if want else c.dnd.is_(false())
    if kind is Kind.CHANNEL:
        on = c.dnd_channels.bool_op("@>")(literal({cond.key: True}, JSONB))
        return on if want else not_(on)
    if kind.name.startswith("CUSTOM"):
        return _custom(cond)
    column = getattr(c, cond.field)
    if op == "exists":
        present = column.is_not(None) if kind is not Kind.TEXT else and_(column.is_not(None), column != "")
        return present if want else not_(present)
    if kind is Kind.TEXT:
        # E-mails are stored lower-cased: compare the column itself so its index applies.
        column = column if cond.field == "email" else func.lower(column)
        if op == "neq":
            return or_(column.is_(None), column != want)
    return _ordered(op, column, want)


def _custom(cond: Condition) -> ColumnElement[bool]:
    op, want, kind, key = cond.operator, cond.value, cond.kind, cond.key
    if op == "exists":
        present = c.custom_fields.bool_op("?")(literal(key, Text))
        return present if want else not_(present)
    if kind is Kind.CUSTOM_OPTIONS:
        return _options(op, key, want)
    if op in ("eq", "neq", "in"):
        # Typed JSON equality by containment, answered from the jsonb_path_ops index.
        candidates = want if op == "in" else (want,)
        hit = or_(*(c.custom_fields.bool_op("@>")(literal({key: v}, JSONB)) for v in candidates))
        return not_(hit) if op == "neq" else hit
    typed = _custom_typed(kind, key)
    if kind is Kind.CUSTOM_TEXT:
        want = want.lower()
    return _ordered(op, typed, want)


def where_clause(location_id: uuid.UUID, spec: SearchSpec, trigram: bool = True) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [
        c.location_id == location_id,
        c.deleted_at.is_(None),
        c.erased_at.is_(None),
    ]
    if len(spec.tokens) == 1 and spec.tokens[0].isdigit() and len(spec.tokens[0]) >= PHONE_SUFFIX_DIGITS:
        # A phone number: match the end of the stored digits, so it is found with or without its country
        # and area code, from a btree on the reversed digits rather than a wide trigram scan.
        reversed_digits = spec.tokens[0][::-1]
        conditions.append(func.reverse(func.substr(c.phone, 2)).like(literal(reversed_digits + "%", Text)))
        return and_(*conditions, *([compile_node(spec.filter)] if spec.filter is not None else []))
    conditions.extend(_text_match(spec.tokens, trigram))
    if spec.filter is not None:
        conditions.append(compile_node(spec.filter))
    return and_(*conditions)


def _cursor_value(field: str, raw: str) -> Any:
    if field in TIME_SORTS:
        return datetime.fromisoformat(raw)
    return raw


def page_statement(
    location_id: uuid.UUID,
    spec: SearchSpec,
    page: SearchPage,
    where: ColumnElement[bool] | None = None,
    *,
    with_total: bool = False,
) -> Select[Any]:
    """Ids in order from the view (where the indexes apply), then those rows from `contacts`.

    `with_total` adds `total`, the number of rows matching the spec (the cursor aside), counted by a
    window over the matches: asked for only when the planner expects few of them, where the plan reads
    every match to sort them anyway, so the count costs next to nothing."""
    sort = spec.sort
    key = sort_key(c, sort.field)
    where = where_clause(location_id, spec) if where is None else where
    after: tuple[Any, uuid.UUID] | None = None
    if page.after is not None:
        try:
            after = (_cursor_value(sort.field, page.after[0]), uuid.UUID(page.after[1]))
        except ValueError:
            raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None
    totals: tuple[ColumnElement[Any], ...] = (func.count().over().label("total"),) if with_total else ()
    extra: tuple[ColumnElement[Any], ...]
    row_id: ColumnElement[Any]
    if with_total and after is not None:
        # The window counts every match, so the cursor may only apply above it.
        matching = select(c.id, key.label("k"), *totals).where(where).subquery("matching")
        key, row_id, extra, where = matching.c.k, matching.c.id, (matching.c.total,), true()
        source: Any = matching
    else:
        row_id, extra, source = c.id, totals, contacts_scoped
    if after is not None:
        keyset = tuple_(key, row_id)
        bound = tuple_(literal(after[0], key.type), literal(after[1]))
        where = and_(where, keyset < bound if sort.direction == "desc" else keyset > bound)
    order = (key.desc(), row_id.desc()) if sort.direction == "desc" else (key.asc(), row_id.asc())
    ids = (
        select(row_id.label("id"), *extra)
        .select_from(source)
        .where(where)
        .order_by(*order)
        .limit(page.limit + 1)
        .subquery("page_ids")
    )
    full = sort_key(t.contacts.c, sort.field)
    ordered = (full.desc(), t.contacts.c.id.desc()) if sort.direction == "desc" else (full, t.contacts.c.id)
    columns = (t.contacts, full.label("sort_key"), *((ids.c.total,) if with_total else ()))
    return select(*columns).join(ids, ids.c.id == t.contacts.c.id).order_by(*ordered)


def count_statement(
    location_id: uuid.UUID, spec: SearchSpec, where: ColumnElement[bool] | None = None
) -> Select[Any]:
    where = where_clause(location_id, spec) if where is None else where
    return select(literal(1)).select_from(contacts_scoped).where(where)


class SqlContactSearch:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn
        self._compiled: dict[tuple[uuid.UUID, SearchSpec], ColumnElement[bool]] = {}

    async def _where(self, location_id: uuid.UUID, spec: SearchSpec) -> ColumnElement[bool]:
        """The page and the estimate of one request share one compiled filter."""
        key = (location_id, spec)
        if key not in self._compiled:
            trigram = bool(spec.tokens) and await has_trigram_index(self._c)
            self._compiled[key] = where_clause(location_id, spec, trigram)
        return self._compiled[key]

    async def search(self, location_id: uuid.UUID, spec: SearchSpec, page: SearchPage) -> Page[Contact]:
        query = page_statement(location_id, spec, page, await self._where(location_id, spec))
        async with unprepared(self._c):
            rows = (await self._c.execute(query)).all()
        return _page_of(rows, spec, page)

    async def search_with_total(
        self, location_id: uuid.UUID, spec: SearchSpec, page: SearchPage
    ) -> SearchResult:
        """The planner's estimate first (`EXPLAIN`, no scan). When it is small the page statement also
        counts the matches; when it is large and this first page holds every match, they are its rows;
        otherwise the total is the estimate."""
        where = await self._where(location_id, spec)
        async with unprepared(self._c):
            estimate = await self._planner_rows(location_id, spec, where)
            counted = estimate <= EXACT_COUNT_UP_TO
            query = page_statement(location_id, spec, page, where, with_total=counted)
            rows = (await self._c.execute(query)).all()
            found = _page_of(rows, spec, page)
            if counted and rows:
                total = CountEstimate(value=int(rows[0].total), exact=True)
            elif page.after is None and len(rows) <= page.limit:
                total = CountEstimate(value=len(rows), exact=True)
            elif counted:  # a cursor past the last match: count apart, bounded
                total = await self._bounded_count(location_id, spec, where, estimate)
            else:
                total = CountEstimate(value=estimate, exact=False)
        return SearchResult(page=found, total=total)

    async def count_up_to(self, location_id: uuid.UUID, spec: SearchSpec, limit: int) -> int:
        matching = count_statement(location_id, spec, await self._where(location_id, spec))
        bounded = select(func.count()).select_from(matching.limit(max(0, limit)).subquery())
        async with unprepared(self._c):
            return int((await self._c.execute(bounded)).scalar_one())

    async def _planner_rows(
        self, location_id: uuid.UUID, spec: SearchSpec, where: ColumnElement[bool]
    ) -> int:
        plan = (await self._c.execute(Explain(count_statement(location_id, spec, where)))).scalar_one()
        return int(plan[0]["Plan"]["Plan Rows"])

    async def _bounded_count(
        self, location_id: uuid.UUID, spec: SearchSpec, where: ColumnElement[bool], estimate: int
    ) -> CountEstimate:
        matching = count_statement(location_id, spec, where)
        bounded = select(func.count()).select_from(matching.limit(EXACT_COUNT_UP_TO + 1).subquery())
        counted = int((await self._c.execute(bounded)).scalar_one())
        if counted > EXACT_COUNT_UP_TO:
            return CountEstimate(value=max(estimate, counted), exact=False)
        return CountEstimate(value=counted, exact=True)


def _page_of(rows: Any, spec: SearchSpec, page: SearchPage) -> Page[Contact]:
    items = [_from_row(r) for r in rows[: page.limit]]
    cursor = None
    if len(rows) > page.limit:
        last = rows[page.limit - 1]
        value = last.sort_key.isoformat() if isinstance(last.sort_key, datetime) else str(last.sort_key)
        cursor = encode_cursor((spec.sort.field, spec.sort.direction, value, str(last.id)))
    return Page(items=items, next_cursor=cursor)
