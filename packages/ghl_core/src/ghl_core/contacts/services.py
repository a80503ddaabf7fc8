"""Use cases of the contacts context: create, read, update, delete and restore, upsert, settings."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from ghl_core.contacts.fields import clean_contact_fields
from ghl_core.contacts.models import PII_FIELDS, Contact, DuplicatePolicy, DuplicatePriority
from ghl_core.contacts.patch import ContactPatch
from ghl_core.contacts.ports import ContactsUnitOfWork, DuplicateContact
from ghl_core.custom_fields.values import validate_values
from ghl_core.shared.cache import ReadCache
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_change, record_entity_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.assignees import check_assignee
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, Permission


class ContactService:
    def __init__(
        self, uow: UnitOfWorkFactory[ContactsUnitOfWork], clock: Clock, cache: ReadCache | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._cache = cache or ReadCache()

    async def _location(self, uow: ContactsUnitOfWork, location_id: uuid.UUID) -> Location:
        return await live_location(uow, location_id, cache=self._cache)

    async def _visible(
        self, uow: ContactsUnitOfWork, contact_id: uuid.UUID, *, deleted: bool = False, lock: bool = False
    ) -> Contact:
        contact = await uow.contacts.get(contact_id, for_update=lock)
        if contact is None or contact.erased_at is not None or (contact.deleted_at is not None) != deleted:
            raise NotFound(f"contact {contact_id} not found")
        return contact

    async def _record(
        self,
        uow: ContactsUnitOfWork,
        actor: Actor,
        location: Location,
        action: str,
        before: Contact | None,
        after: Contact,
        event: str,
    ) -> None:
        await record_entity_change(
            uow,
            self._clock,
            actor,
            action=action,
            entity_type="contact",
            agency_id=location.agency_id,
            before=before,
            after=after,
            event_type=event,
        )

    async def _record_update(
        self, uow: ContactsUnitOfWork, actor: Actor, location: Location, before: Contact, after: Contact
    ) -> None:
        """One audit row for the change; one event per kind of change, named as integrators expect."""
        old, new = before.snapshot(), after.snapshot()
        events: list[tuple[str, dict[str, Any]]] = []
        added = sorted(set(after.tags) - set(before.tags))
        removed = sorted(set(before.tags) - set(after.tags))
        if added:
            events.append(("contact.tag_added", {"tags": added}))
        if removed:
            events.append(("contact.tag_removed", {"tags": removed}))
        if (before.dnd, before.dnd_channels) != (after.dnd, after.dnd_channels):
            events.append(("contact.dnd_changed", {"dnd": after.dnd, "dnd_channels": after.dnd_channels}))
        other = {k for k in new if old.get(k) != new.get(k)} - {"tags", "dnd", "dnd_channels"}
        if other:
            events.append(("contact.updated", {"fields": sorted(other)}))
        await record_change(
            uow,
            self._clock,
            actor,
            action="update",
            entity_type="contact",
            entity_id=after.id,
            agency_id=location.agency_id,
            location_id=after.location_id,
            before=old,
            after=new,
        )
        from ghl_core.shared.events import DomainEvent

        for event_type, extra in events:
            await uow.events.add(
                DomainEvent(
                    type=event_type,
                    agency_id=location.agency_id,
                    location_id=after.location_id,
                    entity_id=after.id,
                    payload={"contact": new, **extra},
                    occurred_at=self._clock.now(),
                )
            )

    @staticmethod
    def _apply(contact: Contact, fields: dict[str, Any]) -> Contact:
        changed = replace(contact, tags=list(contact.tags), custom_fields=dict(contact.custom_fields))
        for key, value in fields.items():
            if key == "custom_fields":
                merged = {**changed.custom_fields, **value}
                changed.custom_fields = {k: v for k, v in merged.items() if v is not None}
            elif key == "attribution":
                # The first touch is kept once known; the last touch follows the latest.
                attribution = dict(changed.attribution)
                if "first" in value and not attribution.get("first"):
                    attribution["first"] = value["first"]
                if "last" in value:
                    attribution["last"] = value["last"]
                    attribution.setdefault("first", value["last"])
                changed.attribution = attribution
            else:
                setattr(changed, key, value)
        return changed

    async def _clean(
        self, uow: ContactsUnitOfWork, location: Location, data: dict[str, Any], before: Contact | None = None
    ) -> dict[str, Any]:
        fields = clean_contact_fields(data, location.country)
        assignee = fields.get("assigned_user_id")
        if assignee is not None and (before is None or assignee != before.assigned_user_id):
            await check_assignee(uow, location.agency_id, location.id, assignee)
        if "custom_fields" in fields:
            # Not from the cache: this read holds the lock that makes a definition change wait for us.
            definitions = await uow.custom_fields.definitions(location.id)
            fields["custom_fields"] = validate_values(
                definitions, fields["custom_fields"], region=location.country
            )
        if fields.get("tags"):
            await uow.tags.ensure(location.id, fields["tags"])
        return fields

    # -- use cases ---------------------------------------------------------------------------------
    async def create(self, actor: Actor, data: dict[str, Any]) -> Contact:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            fields = await self._clean(uow, location, data)
            now = self._clock.now()
            contact = self._apply(
                Contact(
                    id=new_id(),
                    location_id=location_id,
                    created_at=now,
                    updated_at=now,
                    created_by=actor.id,
                    updated_by=actor.id,
                ),
                fields,
            )
            if not (contact.email or contact.phone or contact.first_name or contact.last_name):
                raise ValidationFailed.one("/", "give at least a name, an e-mail address or a phone number")
            await uow.contacts.add(contact, await uow.contacts.policy(location.id))
            await self._record(uow, actor, location, "create", None, contact, "contact.created")
            await uow.commit()
        return contact

    async def get(self, actor: Actor, contact_id: uuid.UUID) -> Contact:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, contact_id)

    async def list(self, actor: Actor, page: PageRequest) -> Page[Contact]:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.contacts.list(page)

    async def update(self, actor: Actor, contact_id: uuid.UUID, data: dict[str, Any]) -> Contact:
        async with self._uow(actor.scope) as uow:
            after = await self.update_in(uow, actor, contact_id, data)
            await uow.commit()
        return after

    async def update_in(
        self,
        uow: ContactsUnitOfWork,
        actor: Actor,
        contact_id: uuid.UUID,
        data: dict[str, Any],
        *,
        location: Location | None = None,
    ) -> Contact:
        """`update` inside the caller's unit of work, which commits it (with the same checks, audit row
        and events): a workflow step and its ledger row commit together. `location`, when given, was
        read in that unit of work."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        if location is None or location.id != location_id or location.deleted_at is not None:
            location = await self._location(uow, location_id)
        before = await self._visible(uow, contact_id, lock=True)
        fields = await self._clean(uow, location, data, before)
        after = self._apply(before, fields)
        if after.snapshot() == before.snapshot():
            return before
        after.updated_at, after.updated_by = self._clock.now(), actor.id
        await uow.contacts.update(after, await uow.contacts.policy(location.id))
        await self._record_update(uow, actor, location, before, after)
        return after

    async def patch_in(
        self,
        uow: ContactsUnitOfWork,
        actor: Actor,
        contact_id: uuid.UUID,
        patch: ContactPatch,
        *,
        location: Location | None = None,
    ) -> Contact:
        """`update_in` with a typed patch: what the core changes in itself (a workflow step)."""
        return await self.update_in(uow, actor, contact_id, patch.fields(), location=location)

    async def delete(self, actor: Actor, contact_id: uuid.UUID) -> None:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            before = await self._visible(uow, contact_id, lock=True)
            after = replace(
                before, deleted_at=self._clock.now(), updated_at=self._clock.now(), updated_by=actor.id
            )
            await uow.contacts.update(after, DuplicatePolicy(allow_duplicates=True))
            await self._record(uow, actor, location, "delete", before, after, "contact.deleted")
            await uow.commit()

    async def restore(self, actor: Actor, contact_id: uuid.UUID) -> Contact:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            before = await self._visible(uow, contact_id, deleted=True, lock=True)
            if before.merged_into is not None:
                raise ValidationFailed.one("/", f"this contact was merged into {before.merged_into}")
            after = replace(before, deleted_at=None, updated_at=self._clock.now(), updated_by=actor.id)
            await uow.contacts.update(after, await uow.contacts.policy(location.id))
            await self._record(uow, actor, location, "restore", before, after, "contact.restored")
            await uow.commit()
        return after

    async def upsert(self, actor: Actor, data: dict[str, Any]) -> tuple[Contact, bool]:
        """Creates or updates by the location's duplicate rule; True when it created. When the e-mail
        matches one contact and the phone another, nothing is written: 409 names both (never drops data)."""
        for attempt in range(2):
            try:
                return await self._upsert_once(actor, data)
            except DuplicateContact:
                # A concurrent request created the person between our look-up and our insert: look again.
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _upsert_once(self, actor: Actor, data: dict[str, Any]) -> tuple[Contact, bool]:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            policy = await uow.contacts.policy(location.id)
            fields = clean_contact_fields(data, location.country)
            email, phone = fields.get("email"), fields.get("phone")
            if not email and not phone:
                raise ValidationFailed.one("/email", "an upsert needs an e-mail address or a phone number")
            matches = await uow.contacts.find_matches(email, phone)
            by_email = next((c for c in matches if email and c.email == email), None)
            by_phone = next((c for c in matches if phone and c.phone == phone), None)
            if by_email and by_phone and by_email.id != by_phone.id and not policy.allow_duplicates:
                raise DuplicateContact(
                    f"the e-mail address belongs to contact {by_email.id} and the phone number to contact "
                    f"{by_phone.id}: merge them first, or send one identifier",
                    [by_email.id, by_phone.id],
                )
            first, second = (
                (by_email, by_phone) if policy.priority is DuplicatePriority.EMAIL else (by_phone, by_email)
            )
            target = first or second
        if target is None:
            return await self.create(actor, data), True
        return await self.update(actor, target.id, data), False

    async def merge(self, actor: Actor, survivor_id: uuid.UUID, loser_id: uuid.UUID) -> Contact:
        """The loser's data fills the survivor's blanks; tags, custom fields and do-not-disturb flags are
        combined (a DND set on either stays set); notes, tasks and opportunities move to the survivor; the
        loser is soft-deleted and points at the survivor."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        if survivor_id == loser_id:
            raise ValidationFailed.one("/loser_id", "must differ from survivor_id")
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            # Locked in id order, so two merges of the same pair cannot deadlock.
            for contact_id in sorted((survivor_id, loser_id)):
                await self._visible(uow, contact_id, lock=True)
            survivor = await self._visible(uow, survivor_id)
            loser = await self._visible(uow, loser_id)
            now = self._clock.now()
            merged = merge_contacts(survivor, loser)
            merged.updated_at, merged.updated_by = now, actor.id
            gone = replace(
                loser, deleted_at=now, merged_into=survivor.id, updated_at=now, updated_by=actor.id
            )
            policy = await uow.contacts.policy(location.id)
            # The loser lets go of its e-mail and phone first, so the survivor may take them.
            await uow.contacts.update(gone, policy)
            await uow.contacts.update(merged, policy)
            await uow.contacts.move_references(loser.id, survivor.id)
            await uow.conversations.move_contact(loser.id, survivor.id)
            for before, after, action in ((loser, gone, "merge_away"), (survivor, merged, "merge")):
                await record_change(
                    uow,
                    self._clock,
                    actor,
                    action=action,
                    entity_type="contact",
                    entity_id=after.id,
                    agency_id=location.agency_id,
                    location_id=location.id,
                    before=before.snapshot(),
                    after=after.snapshot(),
                )
            from ghl_core.shared.events import DomainEvent

            await uow.events.add(
                DomainEvent(
                    type="contact.merged",
                    agency_id=location.agency_id,
                    location_id=location.id,
                    entity_id=survivor.id,
                    payload={"contact": merged.snapshot(), "merged_contact_id": str(loser.id)},
                    occurred_at=now,
                )
            )
            await uow.commit()
        return merged

    async def erase(self, actor: Actor, contact_id: uuid.UUID) -> None:
        """Right to be forgotten: the personal data goes for good (also from the audit trail and event
        payloads); the row stays, anonymous, so counts and reports keep adding up."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            contact = await uow.contacts.get(contact_id, for_update=True)
            if contact is None or contact.erased_at is not None:
                raise NotFound(f"contact {contact_id} not found")
            now = self._clock.now()
            erased = Contact(
                id=contact.id,
                location_id=contact.location_id,
                created_at=contact.created_at,
                updated_at=now,
                deleted_at=contact.deleted_at or now,
                erased_at=now,
                merged_into=contact.merged_into,
                created_by=contact.created_by,
                updated_by=actor.id,
            )
            await uow.contacts.update(erased, DuplicatePolicy(allow_duplicates=True))
            await uow.contacts.erase_history(contact.id)
            await uow.messages.erase_contact(contact.id)
            await record_change(
                uow,
                self._clock,
                actor,
                action="erase",
                entity_type="contact",
                entity_id=contact.id,
                agency_id=location.agency_id,
                location_id=location.id,
                before=None,
                after={"erased": True},
                event_type="contact.erased",
            )
            await uow.commit()

    async def update_settings(self, actor: Actor, policy: DuplicatePolicy) -> DuplicatePolicy:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            before = await uow.contacts.policy(location_id)
            await uow.contacts.set_policy(location_id, policy)
            await record_change(
                uow,
                self._clock,
                actor,
                action="update",
                entity_type="contact_settings",
                entity_id=location_id,
                agency_id=location.agency_id,
                location_id=location_id,
                before={
                    "allow_duplicates": before.allow_duplicates,
                    "duplicate_priority": before.priority.value,
                },
                after={
                    "allow_duplicates": policy.allow_duplicates,
                    "duplicate_priority": policy.priority.value,
                },
            )
            await uow.commit()
        return policy

    async def settings(self, actor: Actor) -> DuplicatePolicy:
        location_id = actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.contacts.policy(location_id)


def merge_contacts(survivor: Contact, loser: Contact) -> Contact:
    """The survivor, with its blanks filled from the loser."""
    merged = replace(survivor, tags=list(survivor.tags), custom_fields=dict(survivor.custom_fields))
    for name in (*PII_FIELDS, "timezone", "source", "assigned_user_id", "last_activity_at"):
        if getattr(merged, name) is None and getattr(loser, name) is not None:
            setattr(merged, name, getattr(loser, name))
    if loser.last_activity_at and survivor.last_activity_at:
        merged.last_activity_at = max(loser.last_activity_at, survivor.last_activity_at)
    merged.tags = survivor.tags + [t for t in loser.tags if t not in survivor.tags]
    merged.custom_fields = {**loser.custom_fields, **survivor.custom_fields}
    merged.dnd = survivor.dnd or loser.dnd
    channels = set(survivor.dnd_channels) | set(loser.dnd_channels)
    merged.dnd_channels = {
        c: survivor.dnd_channels.get(c, False) or loser.dnd_channels.get(c, False) for c in channels
    }
    first = survivor.attribution.get("first") or loser.attribution.get("first")
    merged.attribution = {**loser.attribution, **survivor.attribution}
    if first:
        merged.attribution["first"] = first
    return merged
