"""Use cases of smart lists: save, change, delete a saved search, and run it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from ghl_core.contacts.search import ContactSearchService, SearchResult, SearchSpec
from ghl_core.contacts.selection import saved_spec
from ghl_core.shared.cache import ReadCache
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_entity_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.smart_lists.models import SmartList
from ghl_core.smart_lists.ports import SmartListsUnitOfWork
from ghl_core.tenancy.permissions import Actor, Permission

MAX_NAME = 200


class SmartListService:
    def __init__(
        self, uow: UnitOfWorkFactory[SmartListsUnitOfWork], clock: Clock, cache: ReadCache | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._search = ContactSearchService(uow, cache)

    async def _visible(self, uow: SmartListsUnitOfWork, smart_list_id: uuid.UUID) -> SmartList:
        found = await uow.smart_lists.get(smart_list_id)
        if found is None or found.deleted_at is not None:
            raise NotFound(f"smart list {smart_list_id} not found")
        return found

    async def _check(self, uow: SmartListsUnitOfWork, location_id: uuid.UUID, data: dict[str, Any]) -> None:
        errors: list[FieldError] = []
        if "name" in data:
            name = data["name"]
            if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
                errors.append(FieldError("/name", f"must be 1 to {MAX_NAME} characters"))
        try:
            await self._search.spec(uow, location_id, data)
        except ValidationFailed as exc:
            errors += exc.errors
        if errors:
            raise ValidationFailed(errors)

    async def _record(
        self, uow: SmartListsUnitOfWork, actor: Actor, action: str, before: SmartList | None, after: SmartList
    ) -> None:
        location = await uow.locations.get(after.location_id)
        if location is None:
            raise NotFound(f"location {after.location_id} not found")
        await record_entity_change(
            uow,
            self._clock,
            actor,
            action=action,
            entity_type="smart_list",
            agency_id=location.agency_id,
            before=before,
            after=after,
            event_type=f"smart_list.{action}d",
        )

    async def create(self, actor: Actor, data: dict[str, Any]) -> SmartList:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        if "name" not in data:
            raise ValidationFailed.one("/name", "is required")
        async with self._uow(actor.scope) as uow:
            await self._check(uow, location_id, data)
            now = self._clock.now()
            smart_list = SmartList(
                id=new_id(),
                location_id=location_id,
                name=str(data["name"]).strip(),
                query=data.get("query"),
                filter=data.get("filter"),
                sort=list(data.get("sort") or []),
                created_at=now,
                updated_at=now,
                created_by=actor.id,
                updated_by=actor.id,
            )
            await uow.smart_lists.add(smart_list)
            await self._record(uow, actor, "create", None, smart_list)
            await uow.commit()
        return smart_list

    async def get(self, actor: Actor, smart_list_id: uuid.UUID) -> SmartList:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, smart_list_id)

    async def list(self, actor: Actor, page: PageRequest) -> Page[SmartList]:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.smart_lists.list(page)

    async def update(self, actor: Actor, smart_list_id: uuid.UUID, data: dict[str, Any]) -> SmartList:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            before = await self._visible(uow, smart_list_id)
            merged = {"query": before.query, "filter": before.filter, "sort": before.sort, **data}
            await self._check(uow, location_id, merged)
            after = replace(
                before,
                name=str(merged.get("name", before.name)).strip(),
                query=merged["query"],
                filter=merged["filter"],
                sort=list(merged["sort"] or []),
                updated_at=self._clock.now(),
                updated_by=actor.id,
            )
            await uow.smart_lists.update(after)
            await self._record(uow, actor, "update", before, after)
            await uow.commit()
        return after

    async def delete(self, actor: Actor, smart_list_id: uuid.UUID) -> None:
        actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            before = await self._visible(uow, smart_list_id)
            now = self._clock.now()
            after = replace(before, deleted_at=now, updated_at=now, updated_by=actor.id)
            await uow.smart_lists.update(after)
            await self._record(uow, actor, "delete", before, after)
            await uow.commit()

    async def contacts(
        self, actor: Actor, smart_list_id: uuid.UUID, limit: int | None, cursor: str | None
    ) -> SearchResult:
        """Runs the saved search as it reads now (a custom field deleted since is reported as 422)."""
        location_id = actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            spec = await self.saved_spec(uow, location_id, smart_list_id)
            return await self._search.run(uow, location_id, spec, limit, cursor)

    async def saved_spec(
        self, uow: SmartListsUnitOfWork, location_id: uuid.UUID, smart_list_id: uuid.UUID
    ) -> SearchSpec:
        """The saved search, checked as it reads now, inside the caller's unit of work (so another
        location's list is simply not found); a selection reads it the same way."""
        return await saved_spec(self._search, uow, location_id, smart_list_id)
