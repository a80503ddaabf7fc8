"""The smart list repository."""

from __future__ import annotations

import uuid
from typing import Protocol

from ghl_core.shared.errors import Conflict
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.smart_lists.models import SmartList


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
