"""Use cases of the custom fields context: a location's definitions, and what a change to one does to the
values contacts already hold (always in the same transaction as the change)."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import replace
from typing import Any

from ghl_core.custom_fields.cached import cached_definitions
from ghl_core.custom_fields.definitions import check_options, check_type, clean_new_definition
from ghl_core.custom_fields.errors import StoredValuesBlockChange
from ghl_core.custom_fields.models import CustomFieldDefinition
from ghl_core.custom_fields.ports import CustomFieldsUnitOfWork
from ghl_core.custom_fields.values import normalize_value
from ghl_core.shared.cache import ReadCache, custom_fields_cache_key
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.recording import record_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.shared.validation import check_name
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, Permission

EXAMPLES = 5


class CustomFieldService:
    def __init__(
        self, uow: UnitOfWorkFactory[CustomFieldsUnitOfWork], clock: Clock, cache: ReadCache | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._cache = cache or ReadCache()

    async def _definition(
        self,
        uow: CustomFieldsUnitOfWork,
        location_id: uuid.UUID,
        definition_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> CustomFieldDefinition:
        found = await uow.custom_fields.get(definition_id, for_update=for_update)
        if found is None or found.location_id != location_id or found.deleted_at is not None:
            raise NotFound(f"custom field {definition_id} not found")
        return found

    async def _record(
        self,
        uow: CustomFieldsUnitOfWork,
        actor: Actor,
        location: Location,
        action: str,
        definition: CustomFieldDefinition,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        await record_change(
            uow,
            self._clock,
            actor,
            action=action,
            entity_type="custom_field",
            entity_id=definition.id,
            agency_id=location.agency_id,
            location_id=location.id,
            before=before,
            after=after,
            event_type=f"custom_field.{action}d",
        )

    async def list(self, actor: Actor) -> builtins.list[CustomFieldDefinition]:
        location_id = actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await cached_definitions(self._cache, uow, location_id)

    async def get(self, actor: Actor, definition_id: uuid.UUID) -> CustomFieldDefinition:
        location_id = actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._definition(uow, location_id, definition_id)

    async def create(self, actor: Actor, data: dict[str, Any]) -> CustomFieldDefinition:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        key, label, kind, options = clean_new_definition(data)
        async with self._uow(actor.scope) as uow:
            location = await live_location(uow, location_id)
            now = self._clock.now()
            definition = CustomFieldDefinition(
                id=new_id(),
                location_id=location_id,
                key=key,
                label=label,
                type=kind,
                options=options,
                created_at=now,
                updated_at=now,
                created_by=actor.id,
                updated_by=actor.id,
            )
            await uow.custom_fields.add(definition)
            await self._record(uow, actor, location, "create", definition, None, definition.snapshot())
            await uow.commit()
        await self._cache.invalidate(custom_fields_cache_key(location_id))  # after the commit
        return definition

    async def update(
        self, actor: Actor, definition_id: uuid.UUID, data: dict[str, Any]
    ) -> CustomFieldDefinition:
        """Label changes are free. Removed options leave stored values; a new type is accepted only when
        every stored value is valid for it (the values are then rewritten in the new type's form)."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await live_location(uow, location_id)
            before = await self._definition(uow, location_id, definition_id, for_update=True)
            after = self._changed(before, data)
            if after.snapshot() == before.snapshot():
                return before
            now = self._clock.now()
            after.updated_at, after.updated_by = now, actor.id
            rewritten = 0
            if after.type is not before.type:
                rewritten = await self._convert(uow, location, before, after)
            elif removed := [o for o in before.options if o not in after.options]:
                multiple = after.type.value == "multiple_options"
                rewritten = await uow.custom_fields.remove_options(
                    location_id, before.key, removed, multiple=multiple, now=now
                )
            await uow.custom_fields.update(after)
            await self._record(
                uow,
                actor,
                location,
                "update",
                after,
                before.snapshot(),
                {**after.snapshot(), "contacts_changed": rewritten},
            )
            await uow.commit()
        await self._cache.invalidate(custom_fields_cache_key(location_id))
        return after

    @staticmethod
    def _changed(before: CustomFieldDefinition, data: dict[str, Any]) -> CustomFieldDefinition:
        errors: list[FieldError] = []
        unknown = sorted(set(data) - {"key", "label", "type", "options"})
        errors.extend(FieldError(f"/{name}", "is not a custom field property") for name in unknown)
        if "key" in data and data["key"] != before.key:
            errors.append(
                FieldError("/key", "cannot change: keys are stable identifiers (create a new field instead)")
            )
        label = before.label
        if "label" in data:
            if isinstance(data["label"], str):
                label = check_name(data["label"], "/label", errors)
            else:
                errors.append(FieldError("/label", "must be a string"))
        kind = check_type(data["type"], errors) if "type" in data else before.type
        if "options" in data:
            options = check_options(kind, data["options"], errors)
        elif kind is not None and kind.has_options:
            options = check_options(kind, before.options, errors)
        else:
            options = []
        if errors or kind is None:
            raise ValidationFailed(errors)
        return replace(before, label=label, type=kind, options=options)

    async def _convert(
        self,
        uow: CustomFieldsUnitOfWork,
        location: Location,
        before: CustomFieldDefinition,
        after: CustomFieldDefinition,
    ) -> int:
        stored = await uow.custom_fields.stored_values(location.id, before.key)
        rewrites: dict[uuid.UUID, Any] = {}
        blocking: list[uuid.UUID] = []
        for contact_id, value in stored:
            try:
                converted = normalize_value(after, value, location.country)
            except ValueError:
                blocking.append(contact_id)
                continue
            if converted is None:
                blocking.append(contact_id)
            elif converted != value:
                rewrites[contact_id] = converted
        if blocking:
            raise StoredValuesBlockChange(
                f"{len(blocking)} contact(s) hold a value of '{before.key}' that is not a valid "
                f"{after.type.value}: change or clear those values first",
                len(blocking),
                sorted(blocking)[:EXAMPLES],
            )
        if rewrites:
            await uow.custom_fields.set_values(location.id, before.key, rewrites, self._clock.now())
        return len(rewrites)

    async def delete(self, actor: Actor, definition_id: uuid.UUID) -> int:
        """Soft-deletes the definition and removes its key from every contact; returns how many changed."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await live_location(uow, location_id)
            definition = await self._definition(uow, location_id, definition_id, for_update=True)
            now = self._clock.now()
            deleted = replace(definition, deleted_at=now, updated_at=now, updated_by=actor.id)
            await uow.custom_fields.update(deleted)
            changed = await uow.custom_fields.remove_key(location_id, definition.key, now)
            await self._record(
                uow,
                actor,
                location,
                "delete",
                definition,
                definition.snapshot(),
                {"contacts_changed": changed},
            )
            await uow.commit()
        await self._cache.invalidate(custom_fields_cache_key(location_id))
        return changed
