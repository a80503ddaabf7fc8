"""The in-memory repositories of messaging provider configurations and of a location's messaging settings.

Decisions:
- One configuration per (agency, location or none, channel), as the SQL `UNIQUE NULLS NOT DISTINCT`:
  `put` replaces the kind, ciphertext, summary and update fields of the one stored and keeps its id,
  inbound token and creation time.
- Visibility is the providers table's own policy: a location's rows to its location scope, the agency's
  defaults (no location) to a scope carrying that agency, every row to the operator.
- `resolve` answers in any scope, the anonymous one included (provider callbacks), like the SQL
  SECURITY DEFINER function: the location's own configuration, else its agency's default, and nothing
  for a deleted location or agency.
- Settings a location never wrote read as the defaults.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from ghl_core.conversations.models import Channel, MessagingSettings
from ghl_core.conversations.ports import ProviderRecord, ResolvedProvider
from ghl_core.conversations.providers import ProviderKind
from ghl_core.shared.scope import ScopeKind

from .rows import check_write, clone, location_facts
from .store import MemoryRepository, Table

ProviderKey = tuple[uuid.UUID, uuid.UUID | None, Channel]


@dataclass(frozen=True, slots=True)
class SettingsRow:
    settings: MessagingSettings
    updated_at: datetime
    updated_by: uuid.UUID | None


MESSAGING_PROVIDERS: Table[ProviderKey, ProviderRecord] = Table("messaging_providers")
MESSAGING_SETTINGS: Table[uuid.UUID, SettingsRow] = Table("messaging_settings")


class MemoryMessagingProviderRepository(MemoryRepository):
    @property
    def _rows(self) -> dict[ProviderKey, ProviderRecord]:
        return self.rows(MESSAGING_PROVIDERS)

    def _sees(self, record: ProviderRecord) -> bool:
        scope = self.scope
        if scope.kind is ScopeKind.OPERATOR:
            return True
        if record.location_id is not None:
            return record.location_id == scope.location_id
        return scope.agency_id is not None and record.agency_id == scope.agency_id

    async def get(
        self, agency_id: uuid.UUID, location_id: uuid.UUID | None, channel: Channel
    ) -> ProviderRecord | None:
        found = self._rows.get((agency_id, location_id, channel))
        return clone(found) if found is not None and self._sees(found) else None

    async def put(self, record: ProviderRecord) -> None:
        if not self._sees(record):
            raise PermissionError(
                "new row violates row-level security policy for table 'messaging_providers'"
            )
        if record.kind is ProviderKind.OUTBOX:
            # The table's CHECK: the local outbox is what no configuration means, never a stored one.
            raise ValueError("a messaging provider's kind must be twilio, sendgrid or smtp")
        key = (record.agency_id, record.location_id, record.channel)
        stored = self._rows.get(key)
        if stored is None:
            self._rows[key] = clone(record)
            return
        self._rows[key] = replace(
            stored,
            kind=record.kind,
            config_ciphertext=record.config_ciphertext,
            summary=clone(record.summary),
            updated_at=record.updated_at,
            updated_by=record.updated_by,
        )

    async def delete(self, agency_id: uuid.UUID, location_id: uuid.UUID | None, channel: Channel) -> bool:
        key = (agency_id, location_id, channel)
        found = self._rows.get(key)
        if found is None or not self._sees(found):
            return False
        del self._rows[key]
        return True

    async def resolve(self, location_id: uuid.UUID, channel: Channel) -> ResolvedProvider | None:
        facts = location_facts(self, location_id)
        if facts is None or not facts[1]:
            return None
        agency_id = facts[0]
        for owner in (location_id, None):
            found = self._rows.get((agency_id, owner, channel))
            if found is not None:
                return ResolvedProvider(
                    kind=found.kind,
                    config_ciphertext=found.config_ciphertext,
                    inbound_token=found.inbound_token,
                    agency_default=owner is None,
                )
        return None

    async def all_ciphertexts(self) -> builtins.list[tuple[uuid.UUID, str, bytes]]:
        rows = sorted((r for r in self._rows.values() if self._sees(r)), key=lambda r: r.id)
        return [(r.id, r.kind.value, r.config_ciphertext) for r in rows]

    async def reseal(self, record_id: uuid.UUID, ciphertext: bytes) -> None:
        for key, record in list(self._rows.items()):
            if record.id == record_id and self._sees(record):
                self._rows[key] = replace(record, config_ciphertext=ciphertext)


class MemoryMessagingSettingsRepository(MemoryRepository):
    async def get(self, location_id: uuid.UUID) -> MessagingSettings:
        found = self.rows(MESSAGING_SETTINGS).get(location_id)
        if found is None or not self.sees_location(location_id):
            return MessagingSettings(location_id=location_id)
        return clone(found.settings)

    async def put(self, settings: MessagingSettings, updated_by: uuid.UUID | None) -> None:
        check_write(self.scope, settings.location_id, "messaging_settings")
        self.rows(MESSAGING_SETTINGS)[settings.location_id] = SettingsRow(
            settings=clone(settings), updated_at=self.clock.now(), updated_by=updated_by
        )
