"""Repository of custom field definitions."""

from __future__ import annotations

import builtins
import uuid
from typing import Protocol

from ghl_core.custom_fields.models import CustomFieldDefinition


class CustomFieldRepository(Protocol):
    async def definitions(self, location_id: uuid.UUID) -> builtins.list[CustomFieldDefinition]:
        """The location's live definitions."""
        ...
