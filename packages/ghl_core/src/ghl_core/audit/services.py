"""Reading the audit trail: location admins see their location's history."""

from __future__ import annotations

import uuid
from datetime import datetime

from ghl_core.audit.ports import AuditUnitOfWork
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission


class AuditService:
    def __init__(self, uow: UnitOfWorkFactory[AuditUnitOfWork]) -> None:
        self._uow = uow

    async def list(
        self,
        actor: Actor,
        page: PageRequest,
        *,
        entity_type: str | None = None,
        entity_id: uuid.UUID | None = None,
        since: datetime | None = None,
    ) -> Page[AuditEntry]:
        location_id = actor.require_location(Permission.AUDIT_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.audit.list(
                location_id, page, entity_type=entity_type, entity_id=entity_id, since=since
            )
