"""Errors of the custom fields context."""

from __future__ import annotations

import uuid

from ghl_core.shared.errors import Conflict


class DuplicateFieldKey(Conflict):
    """A live definition of the location already uses this key (a unique index enforces it)."""

    code = "duplicate_custom_field_key"
    title = "Duplicate custom field key"


class StoredValuesBlockChange(Conflict):
    """Some contacts hold values the changed definition would not accept."""

    code = "custom_field_values_block_change"
    title = "Stored values block this change"

    def __init__(self, detail: str, blocking: int, examples: list[uuid.UUID]) -> None:
        super().__init__(detail)
        self.blocking = blocking
        self.examples = examples

    def extensions(self) -> dict[str, object]:
        return {"blocking_contacts": self.blocking, "example_contact_ids": [str(i) for i in self.examples]}
