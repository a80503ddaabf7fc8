"""Repository of a location's tag list, and the array updates that change the tags of many contacts."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ghl_core.contacts.ports import ContactRepository
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import Recording
from ghl_core.tags.models import Tag, TagChange
from ghl_core.tenancy.ports import LocationRepository


class TagRepository(Protocol):
    async def ensure(self, location_id: uuid.UUID, names: builtins.list[str]) -> None:
        """Adds to the location's tag list the names it does not have yet."""
        ...

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[Tag]:
        """By name."""
        ...

    async def get(self, tag_id: uuid.UUID) -> Tag | None: ...

    async def by_name(self, location_id: uuid.UUID, name: str) -> Tag | None: ...

    async def add(self, tag: Tag) -> None:
        """Raises DuplicateTag when the location has the name already."""
        ...

    async def update(self, tag: Tag) -> None:
        """Raises DuplicateTag when the new name is taken."""
        ...

    async def delete(self, tag_id: uuid.UUID) -> None: ...

    async def live_contact_ids(
        self, location_id: uuid.UUID, contact_ids: builtins.list[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Those of `contact_ids` that are live contacts of the location."""
        ...

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
        """In one statement, on the contacts given by id (live ones) or on every contact of the location
        carrying the tag `having`: renames, appends `add` (skipping tags a contact has), drops `remove`.
        Returns the contacts whose tags changed, locked until the end of the transaction."""
        ...


class TagsUnitOfWork(Recording, Protocol):
    """What the tags context touches in one transaction."""

    locations: LocationRepository
    contacts: ContactRepository
    tags: TagRepository
