"""Contact search in memory: the filter evaluated by the core's own `ghl_core.contacts.filters.matches`
(the meaning the SQL compiler is checked against), free text matched as the SQL adapter does with its
trigram index (each token a substring of the folded name, e-mail, company and phone), a phone-like token of
seven or more digits matched against the end of the phone, and keyset pages on the same sort keys. Totals
are always exact: there is no planner to estimate from."""

from __future__ import annotations

import copy
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

from ghl_core.contacts.filters import matches
from ghl_core.contacts.models import Contact
from ghl_core.contacts.search import CountEstimate, SearchPage, SearchResult, SearchSpec
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page, encode_cursor

from .contacts import CONTACTS, live
from .store import MemoryRepository

NO_ACTIVITY = datetime(1, 1, 1, tzinfo=UTC)
TIME_SORTS = ("created_at", "updated_at", "last_activity_at")
PHONE_SUFFIX_DIGITS = 7


def fold(text: str) -> str:
    """Lower-cased, accents dropped (what `ghl_unaccent(lower(...))` does to the stored text)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_text(contact: Contact) -> str:
    phone = contact.phone[1:] if contact.phone else ""
    parts = (contact.first_name, contact.last_name, contact.email, contact.company_name)
    return fold(" ".join([*(p or "" for p in parts), phone]))


def sort_value(contact: Contact, field: str) -> Any:
    if field == "last_activity_at":
        return contact.last_activity_at or NO_ACTIVITY
    if field in ("first_name", "last_name"):
        return (getattr(contact, field) or "").lower()
    if field == "email":
        return contact.email or ""
    return getattr(contact, field)


def _text_matches(contact: Contact, tokens: tuple[str, ...]) -> bool:
    if len(tokens) == 1 and tokens[0].isdigit() and len(tokens[0]) >= PHONE_SUFFIX_DIGITS:
        return bool(contact.phone) and contact.phone is not None and contact.phone[1:].endswith(tokens[0])
    text = search_text(contact)
    return all(fold(token) in text for token in tokens)


class MemoryContactSearch(MemoryRepository):
    def _matching(self, location_id: uuid.UUID, spec: SearchSpec) -> list[Contact]:
        return [
            c
            for c in self.rows(CONTACTS).values()
            if c.location_id == location_id
            and self.sees_location(c.location_id)
            and live(c)
            and _text_matches(c, spec.tokens)
            and (spec.filter is None or matches(spec.filter, c))
        ]

    def _ordered(self, location_id: uuid.UUID, spec: SearchSpec) -> list[Contact]:
        field = spec.sort.field
        return sorted(
            self._matching(location_id, spec),
            key=lambda c: (sort_value(c, field), c.id),
            reverse=spec.sort.direction == "desc",
        )

    async def search(self, location_id: uuid.UUID, spec: SearchSpec, page: SearchPage) -> Page[Contact]:
        return self._page(self._ordered(location_id, spec), spec, page)

    async def search_with_total(
        self, location_id: uuid.UUID, spec: SearchSpec, page: SearchPage
    ) -> SearchResult:
        ordered = self._ordered(location_id, spec)
        return SearchResult(
            page=self._page(ordered, spec, page), total=CountEstimate(value=len(ordered), exact=True)
        )

    async def count_up_to(self, location_id: uuid.UUID, spec: SearchSpec, limit: int) -> int:
        return min(len(self._matching(location_id, spec)), max(0, limit))

    def _page(self, ordered: list[Contact], spec: SearchSpec, page: SearchPage) -> Page[Contact]:
        field, descending = spec.sort.field, spec.sort.direction == "desc"
        if page.after is not None:
            try:
                raw, ident = page.after
                after = (datetime.fromisoformat(raw) if field in TIME_SORTS else raw, uuid.UUID(ident))
            except ValueError:
                raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None
            ordered = [
                c
                for c in ordered
                if (
                    (sort_value(c, field), c.id) < after
                    if descending
                    else (sort_value(c, field), c.id) > after
                )
            ]
        rows = ordered[: page.limit + 1]
        items = [copy.deepcopy(c) for c in rows[: page.limit]]
        cursor = None
        if len(rows) > page.limit:
            last = rows[page.limit - 1]
            value = sort_value(last, field)
            text = value.isoformat() if isinstance(value, datetime) else str(value)
            cursor = encode_cursor((field, spec.sort.direction, text, str(last.id)))
        return Page(items=items, next_cursor=cursor)
