"""Use cases of the tags context: the location's tag list, and tags added to or removed from contacts."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ghl_core.contacts.fields import MAX_TAG, MAX_TAGS, clean_tags, normalize_tag
from ghl_core.contacts.models import Contact
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_change, record_entity_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tags.models import BulkTagResult, Tag, TagChange
from ghl_core.tags.ports import TagsUnitOfWork
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, Permission

MAX_BULK_CONTACTS = 1000


def clean_tag_name(value: object, pointer: str = "/name") -> str:
    name = normalize_tag(value) if isinstance(value, str) else ""
    if not name:
        raise ValidationFailed.one(pointer, "must be a non-blank tag name")
    if len(name) > MAX_TAG or not name.isprintable():
        raise ValidationFailed.one(pointer, f"must be printable and at most {MAX_TAG} characters")
    return name


def _tag_list(values: object, pointer: str, errors: list[FieldError]) -> list[str]:
    tags = clean_tags(values, pointer, errors)
    if isinstance(values, list) and not values:
        errors.append(FieldError(pointer, "name at least one tag"))
    return tags


class TagService:
    def __init__(self, uow: UnitOfWorkFactory[TagsUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def _location(self, uow: TagsUnitOfWork, location_id: uuid.UUID) -> Location:
        return await live_location(uow, location_id)

    async def _tag(self, uow: TagsUnitOfWork, location_id: uuid.UUID, tag_id: uuid.UUID) -> Tag:
        tag = await uow.tags.get(tag_id)
        if tag is None or tag.location_id != location_id:
            raise NotFound(f"tag {tag_id} not found")
        return tag

    async def _record_contacts(
        self, uow: TagsUnitOfWork, actor: Actor, location: Location, changes: Sequence[TagChange]
    ) -> None:
        """Per contact: one audit row, and one event per direction, as a contact update writes them."""
        for change in changes:
            after = change.contact
            before = replace(after, tags=list(change.before))
            if after.deleted_at is not None:
                continue  # a deleted contact's tags follow a rename or delete silently
            new = after.snapshot()
            await record_change(
                uow,
                self._clock,
                actor,
                action="update",
                entity_type="contact",
                entity_id=after.id,
                agency_id=location.agency_id,
                location_id=location.id,
                before=before.snapshot(),
                after=new,
            )
            for event_type, tags in (
                ("contact.tag_added", change.added),
                ("contact.tag_removed", change.removed),
            ):
                if tags:
                    await uow.events.add(
                        DomainEvent(
                            type=event_type,
                            agency_id=location.agency_id,
                            location_id=location.id,
                            entity_id=after.id,
                            payload={"contact": new, "tags": sorted(tags)},
                            occurred_at=self._clock.now(),
                        )
                    )

    async def _retag(
        self,
        uow: TagsUnitOfWork,
        actor: Actor,
        location: Location,
        contact_ids: builtins.list[uuid.UUID],
        add: builtins.list[str],
        remove: builtins.list[str],
        pointer: str,
    ) -> builtins.list[TagChange]:
        """Adds and removes tags on live contacts of the location (tags to add created first), refuses a
        contact past the tag limit at `pointer`, records the changes; the caller commits."""
        await uow.tags.ensure(location.id, add)
        changes = await uow.tags.retag(
            location.id,
            contact_ids=contact_ids,
            add=add,
            remove=remove,
            now=self._clock.now(),
            actor_id=actor.id,
        )
        self._check_capacity(changes, pointer)
        await self._record_contacts(uow, actor, location, changes)
        return changes

    @staticmethod
    def _check_capacity(changes: Sequence[TagChange], pointer: str) -> None:
        full = [c.contact.id for c in changes if len(c.contact.tags) > MAX_TAGS]
        if full:
            raise ValidationFailed.one(
                pointer,
                f"contact {full[0]} would carry more than {MAX_TAGS} tags ({len(full)} contacts would)",
            )

    # -- the tag list ------------------------------------------------------------------------------
    async def list(self, actor: Actor, page: PageRequest) -> Page[Tag]:
        location_id = actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.tags.list(location_id, page)

    async def get(self, actor: Actor, tag_id: uuid.UUID) -> Tag:
        location_id = actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._tag(uow, location_id, tag_id)

    async def create(self, actor: Actor, name: object) -> Tag:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        clean = clean_tag_name(name)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            now = self._clock.now()
            tag = Tag(new_id(), location_id, clean, now, now, actor.id, actor.id)
            await uow.tags.add(tag)
            await record_entity_change(
                uow,
                self._clock,
                actor,
                action="create",
                entity_type="tag",
                agency_id=location.agency_id,
                before=None,
                after=tag,
                event_type="tag.created",
            )
            await uow.commit()
        return tag

    async def rename(self, actor: Actor, tag_id: uuid.UUID, name: object) -> Tag:
        """Renames the tag on every contact too; when the new name is already a tag, the two merge."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        clean = clean_tag_name(name)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            tag = await self._tag(uow, location_id, tag_id)
            if tag.name == clean:
                return tag
            now = self._clock.now()
            survivor = await uow.tags.by_name(location_id, clean)
            if survivor is not None:
                await uow.tags.delete(tag.id)
                renamed = survivor
            else:
                renamed = replace(tag, name=clean, updated_at=now, updated_by=actor.id)
                await uow.tags.update(renamed)
            changes = await uow.tags.retag(
                location_id, having=tag.name, rename=(tag.name, clean), now=now, actor_id=actor.id
            )
            await record_change(
                uow,
                self._clock,
                actor,
                action="merge" if survivor else "update",
                entity_type="tag",
                entity_id=tag.id,
                agency_id=location.agency_id,
                location_id=location_id,
                before=tag.snapshot(),
                after={**renamed.snapshot(), "contacts_changed": len(changes)},
                event_type="tag.updated",
            )
            await self._record_contacts(uow, actor, location, changes)
            await uow.commit()
        return renamed

    async def delete(self, actor: Actor, tag_id: uuid.UUID) -> int:
        """Removes the tag from the list and from every contact; returns how many contacts carried it."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            tag = await self._tag(uow, location_id, tag_id)
            await uow.tags.delete(tag.id)
            changes = await uow.tags.retag(
                location_id, having=tag.name, remove=[tag.name], now=self._clock.now(), actor_id=actor.id
            )
            await record_change(
                uow,
                self._clock,
                actor,
                action="delete",
                entity_type="tag",
                entity_id=tag.id,
                agency_id=location.agency_id,
                location_id=location_id,
                before=tag.snapshot(),
                after={"contacts_changed": len(changes)},
                event_type="tag.deleted",
            )
            await self._record_contacts(uow, actor, location, changes)
            await uow.commit()
        return len(changes)

    # -- tags on contacts --------------------------------------------------------------------------
    async def tag_contact(
        self, actor: Actor, contact_id: uuid.UUID, add: object = None, remove: object = None
    ) -> builtins.list[str]:
        """Adds or removes tags on one contact; returns its tags."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        errors: builtins.list[FieldError] = []
        to_add = _tag_list(add, "/tags", errors) if add is not None else []
        to_remove = _tag_list(remove, "/tags", errors) if remove is not None else []
        if errors:
            raise ValidationFailed(errors)
        async with self._uow(actor.scope) as uow:
            contact = await self._tag_one(uow, actor, location_id, contact_id, to_add, to_remove, None, None)
            await uow.commit()
        return contact.tags

    async def tag_contact_in(
        self,
        uow: TagsUnitOfWork,
        actor: Actor,
        contact_id: uuid.UUID,
        add: object = None,
        remove: object = None,
        *,
        location: Location | None = None,
        contact: Contact | None = None,
    ) -> Contact:
        """`tag_contact` inside the caller's unit of work, which commits it (with the same checks, audit
        row and events): a workflow step and its ledger row commit together. `location` and `contact`,
        when given, were read in that unit of work. Returns the contact as it is now."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        errors: builtins.list[FieldError] = []
        to_add = _tag_list(add, "/tags", errors) if add is not None else []
        to_remove = _tag_list(remove, "/tags", errors) if remove is not None else []
        if errors:
            raise ValidationFailed(errors)
        return await self._tag_one(uow, actor, location_id, contact_id, to_add, to_remove, location, contact)

    async def _tag_one(
        self,
        uow: TagsUnitOfWork,
        actor: Actor,
        location_id: uuid.UUID,
        contact_id: uuid.UUID,
        to_add: builtins.list[str],
        to_remove: builtins.list[str],
        location: Location | None,
        contact: Contact | None,
    ) -> Contact:
        if location is None or location.id != location_id or location.deleted_at is not None:
            location = await self._location(uow, location_id)
        if contact is None or contact.id != contact_id:
            contact = await uow.contacts.get(contact_id)
        if (
            contact is None
            or contact.location_id != location_id
            or contact.deleted_at is not None
            or contact.erased_at is not None
        ):
            raise NotFound(f"contact {contact_id} not found")
        changes = await self._retag(uow, actor, location, [contact_id], to_add, to_remove, "/tags")
        return changes[0].contact if changes else contact

    async def bulk(self, actor: Actor, data: dict[str, Any]) -> BulkTagResult:
        """All or nothing: an unknown contact id refuses the whole request."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        errors: builtins.list[FieldError] = []
        ids = self._bulk_ids(data.get("contact_ids"), errors)
        add = clean_tags(data["add"], "/add", errors) if data.get("add") is not None else []
        remove = clean_tags(data["remove"], "/remove", errors) if data.get("remove") is not None else []
        for i, name in enumerate(remove):
            if name in add:
                errors.append(FieldError(f"/remove/{i}", "is also in add"))
        if not add and not remove and not errors:
            errors.append(FieldError("/add", "give tags to add or to remove"))
        if errors:
            raise ValidationFailed(errors)
        unique = list(dict.fromkeys(ids))
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            found = await uow.tags.live_contact_ids(location_id, unique)
            missing = [
                FieldError(f"/contact_ids/{i}", "no such contact")
                for i, c in enumerate(ids)
                if c not in found
            ]
            if missing:
                raise ValidationFailed(missing)
            changes = await self._retag(uow, actor, location, unique, add, remove, "/add")
            await uow.commit()
        return BulkTagResult(
            contacts=len(unique),
            changed=len(changes),
            tags_added=sum(len(c.added) for c in changes),
            tags_removed=sum(len(c.removed) for c in changes),
        )

    @staticmethod
    def _bulk_ids(value: object, errors: builtins.list[FieldError]) -> builtins.list[uuid.UUID]:
        if not isinstance(value, list) or not value:
            errors.append(FieldError("/contact_ids", "must be a non-empty list of contact ids"))
            return []
        if len(value) > MAX_BULK_CONTACTS:
            errors.append(FieldError("/contact_ids", f"at most {MAX_BULK_CONTACTS} contacts per request"))
            return []
        ids: builtins.list[uuid.UUID] = []
        for i, raw in enumerate(value):
            try:
                ids.append(uuid.UUID(str(raw)))
            except ValueError:
                errors.append(FieldError(f"/contact_ids/{i}", "must be a UUID"))
        return ids
