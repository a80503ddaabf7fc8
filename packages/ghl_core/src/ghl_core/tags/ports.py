"""Repository of a location's tag list."""

from __future__ import annotations

import uuid
from typing import Protocol


class TagRepository(Protocol):
    async def ensure(self, location_id: uuid.UUID, names: list[str]) -> None:
        """Adds to the location's tag list the names it does not have yet."""
        ...
