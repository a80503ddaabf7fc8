"""Repository of custom field definitions, and the stored values a definition change must rewrite."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any, Protocol

from ghl_core.custom_fields.models import CustomFieldDefinition
from ghl_core.shared.recording import Recording
from ghl_core.shared.uow import Transaction
from ghl_core.tenancy.ports import LocationRepository


class CustomFieldRepository(Protocol):
    async def definitions(self, location_id: uuid.UUID) -> builtins.list[CustomFieldDefinition]:
        """The location's live definitions, oldest first. Holds a share lock on them until the end of the
        transaction, so a contact write and a definition change never interleave."""
        ...

    async def get(
        self, definition_id: uuid.UUID, *, for_update: bool = False
    ) -> CustomFieldDefinition | None:
        """Deleted definitions too; callers decide. `for_update` waits for contact writes in flight."""
        ...

    async def add(self, definition: CustomFieldDefinition) -> None:
        """Raises DuplicateFieldKey when a live definition of the location has the key."""
        ...

    async def update(self, definition: CustomFieldDefinition) -> None: ...

    async def stored_values(self, location_id: uuid.UUID, key: str) -> builtins.list[tuple[uuid.UUID, Any]]:
        """(contact id, value) of every contact of the location holding a value for `key`."""
        ...

    async def remove_key(self, location_id: uuid.UUID, key: str, now: datetime) -> int:
        """Removes `key` from every contact of the location; returns how many contacts changed."""
        ...

    async def remove_options(
        self, location_id: uuid.UUID, key: str, removed: builtins.list[str], *, multiple: bool, now: datetime
    ) -> int:
        """Clears a single option value that was removed, filters removed options out of multiple option
        values (dropping the key when none is left); returns how many contacts changed."""
        ...

    async def set_values(
        self, location_id: uuid.UUID, key: str, values: dict[uuid.UUID, Any], now: datetime
    ) -> int:
        """Writes `values[contact_id]` as the value of `key` on those contacts."""
        ...


class DefinitionsUnitOfWork(Transaction, Protocol):
    """What reading a location's definitions needs: contacts, search, import and export read them too."""

    @property
    def custom_fields(self) -> CustomFieldRepository: ...


class CustomFieldsUnitOfWork(DefinitionsUnitOfWork, Recording, Protocol):
    """What the custom fields context touches in one transaction."""

    @property
    def locations(self) -> LocationRepository: ...
