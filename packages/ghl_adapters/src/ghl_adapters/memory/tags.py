"""A location's tag list in memory, and the array updates that change the tags of many contacts."""

from __future__ import annotations

import builtins
import copy
import uuid
from collections.abc import Sequence
from datetime import datetime

from ghl_core.contacts.models import Contact
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest, page_from_rows
from ghl_core.tags.errors import DuplicateTag
from ghl_core.tags.models import Tag, TagChange

from .contacts import CONTACTS, live
from .store import MemoryRepository, Table

TAGS: Table[uuid.UUID, Tag] = Table("tags")


def retagged(
    tags: list[str], add: Sequence[str], remove: Sequence[str], rename: tuple[str, str] | None
) -> list[str]:
    """What the SQL statement computes: rename, append `add`, drop `remove`, keep each tag's first place."""
    renamed = [rename[1] if rename and t == rename[0] else t for t in tags]
    return [t for t in dict.fromkeys([*renamed, *add]) if t not in set(remove)]


class MemoryTagRepository(MemoryRepository):
    def _mine(self, location_id: uuid.UUID) -> builtins.list[Tag]:
        return [
            t
            for t in self.rows(TAGS).values()
            if t.location_id == location_id and self.sees_location(t.location_id)
        ]

    async def ensure(self, location_id: uuid.UUID, names: builtins.list[str]) -> None:
        self.check_write(self.sees_location(location_id), "tags")
        have = {t.name for t in self._mine(location_id)}
        now = self.clock.now()
        rows = self.rows(TAGS)
        for name in sorted(set(names) - have):
            tag = Tag(new_id(), location_id, name, now, now)
            rows[tag.id] = tag

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Tag]:
        found = sorted(self._mine(location_id), key=lambda t: (t.name, t.id))
        if page.after is not None:
            try:
                name, ident = page.after
                after = (name, uuid.UUID(ident))
            except ValueError:
                raise ValidationFailed.one("/cursor", "is not a cursor this API issued") from None
            found = [t for t in found if (t.name, t.id) > after]
        if page.offset is not None:
            found = found[page.offset :]
        rows = [copy.deepcopy(t) for t in found[: page.limit + 1]]
        return page_from_rows(rows, page.limit, lambda tag: (tag.name, str(tag.id)))

    async def get(self, tag_id: uuid.UUID) -> Tag | None:
        found = self.rows(TAGS).get(tag_id)
        if found is None or not self.sees_location(found.location_id):
            return None
        return copy.deepcopy(found)

    async def by_name(self, location_id: uuid.UUID, name: str) -> Tag | None:
        found = next((t for t in self._mine(location_id) if t.name == name), None)
        return copy.deepcopy(found)

    def _check_unique(self, tag: Tag) -> None:
        existing = next(
            (
                t
                for t in self.unique_rows(TAGS)
                if t.location_id == tag.location_id and t.name == tag.name and t.id != tag.id
            ),
            None,
        )
        if existing is not None:
            raise DuplicateTag(f"the tag '{tag.name}' already exists", existing.id)

    async def add(self, tag: Tag) -> None:
        self.check_write(self.sees_location(tag.location_id), "tags")
        self._check_unique(tag)
        self.rows(TAGS)[tag.id] = copy.deepcopy(tag)

    async def update(self, tag: Tag) -> None:
        stored = self.rows(TAGS).get(tag.id)
        if stored is None or not self.sees_location(stored.location_id):
            return
        self._check_unique(tag)
        stored.name, stored.updated_at, stored.updated_by = tag.name, tag.updated_at, tag.updated_by

    async def delete(self, tag_id: uuid.UUID) -> None:
        rows = self.rows(TAGS)
        stored = rows.get(tag_id)
        if stored is not None and self.sees_location(stored.location_id):
            del rows[tag_id]

    async def live_contact_ids(
        self, location_id: uuid.UUID, contact_ids: builtins.list[uuid.UUID]
    ) -> set[uuid.UUID]:
        contacts = self.rows(CONTACTS)
        return {
            i
            for i in contact_ids
            if i in contacts
            and contacts[i].location_id == location_id
            and self.sees_location(location_id)
            and live(contacts[i])
        }

    async def retag(
        self,
        location_id: uuid.UUID,
        *,
        contact_ids: builtins.list[uuid.UUID] | None = None,
        having: str | None = None,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        rename: tuple[str, str] | None = None,
        now: datetime,
        actor_id: uuid.UUID | None,
    ) -> builtins.list[TagChange]:
        if (contact_ids is None) == (having is None):
            raise ValueError("give either contact_ids or having")
        if not self.sees_location(location_id):
            return []
        contacts = self.rows(CONTACTS)
        targets: list[Contact]
        if contact_ids is not None:
            wanted = set(contact_ids)
            targets = [
                c for c in contacts.values() if c.id in wanted and c.location_id == location_id and live(c)
            ]
        else:
            targets = [c for c in contacts.values() if c.location_id == location_id and having in c.tags]
        changes = []
        for contact in targets:
            after = retagged(contact.tags, add, remove, rename)
            if after == contact.tags:
                continue
            before = list(contact.tags)
            contact.tags, contact.updated_at, contact.updated_by = after, now, actor_id
            changes.append(TagChange(copy.deepcopy(contact), before))
        return changes
