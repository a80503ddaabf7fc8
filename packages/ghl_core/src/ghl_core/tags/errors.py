"""Errors of the tags context."""

from __future__ import annotations

import uuid

from ghl_core.shared.errors import Conflict


class DuplicateTag(Conflict):
    code = "duplicate_tag"
    title = "Duplicate tag"

    def __init__(self, detail: str, existing_id: uuid.UUID | None) -> None:
        super().__init__(detail)
        self.existing_id = existing_id

    def extensions(self) -> dict[str, object]:
        return {"existing_id": str(self.existing_id) if self.existing_id else None}
