"""The smart list repository, and the unit of work of the smart lists context. (The repository is what
a contact selection reads as `ghl_core.contacts.selection.SavedSearches`.)"""

from __future__ import annotations

import uuid
from typing import Protocol

from ghl_core.contacts.selection import SelectionUnitOfWork
from ghl_core.shared.errors import Conflict
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import Recording
from ghl_core.smart_lists.models import SmartList
from ghl_core.tenancy.ports import LocationRepository


class DuplicateSmartList(Conflict):
    code = "duplicate_smart_list"
    title = "Duplicate smart list"


class SmartListRepository(Protocol):
    async def add(self, smart_list: SmartList) -> None:
        """Raises DuplicateSmartList when a live list of the location has the same name (any case)."""
        ...

    async def update(self, smart_list: SmartList) -> None:
        """Same rule as add."""
        ...

    async def get(self, smart_list_id: uuid.UUID) -> SmartList | None: ...

    async def list(self, page: PageRequest) -> Page[SmartList]:
        """Live lists of the scope's location, newest first."""
        ...


class SmartListsUnitOfWork(SelectionUnitOfWork, Recording, Protocol):
    """What the smart lists context touches in one transaction: its lists, and the search they run."""

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def smart_lists(self) -> SmartListRepository: ...
