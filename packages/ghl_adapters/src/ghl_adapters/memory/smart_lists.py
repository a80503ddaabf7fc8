"""Smart lists in memory: one live list per name (any case) in a location, as the unique index says."""

from __future__ import annotations

import copy
import uuid

from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.smart_lists.models import SmartList
from ghl_core.smart_lists.ports import DuplicateSmartList

from .store import MemoryRepository, Table, paginate

SMART_LISTS: Table[uuid.UUID, SmartList] = Table("smart_lists")


class MemorySmartListRepository(MemoryRepository):
    def _write(self, smart_list: SmartList) -> None:
        if smart_list.deleted_at is None and any(
            other.id != smart_list.id
            and other.location_id == smart_list.location_id
            and other.deleted_at is None
            and other.name.lower() == smart_list.name.lower()
            for other in self.unique_rows(SMART_LISTS)
        ):
            raise DuplicateSmartList(f"a smart list named '{smart_list.name}' already exists")
        self.rows(SMART_LISTS)[smart_list.id] = copy.deepcopy(smart_list)

    async def add(self, smart_list: SmartList) -> None:
        self.check_write(self.sees_location(smart_list.location_id), "smart_lists")
        self._write(smart_list)

    async def update(self, smart_list: SmartList) -> None:
        stored = self.rows(SMART_LISTS).get(smart_list.id)
        if stored is not None and self.sees_location(stored.location_id):
            self._write(smart_list)

    async def get(self, smart_list_id: uuid.UUID) -> SmartList | None:
        found = self.rows(SMART_LISTS).get(smart_list_id)
        if found is None or not self.sees_location(found.location_id):
            return None
        return copy.deepcopy(found)

    async def list(self, page: PageRequest) -> Page[SmartList]:
        found = [
            s
            for s in self.rows(SMART_LISTS).values()
            if s.deleted_at is None and self.sees_location(s.location_id)
        ]
        return paginate(found, page, descending=True)
