"""Where each row of an import batch lands, decided against the contacts the batch looked up: the
location's duplicate rule and the import's duplicate policy, applied row by row in file order.

A row matches a contact by e-mail or phone (in the location's priority order where duplicates are
allowed). `skip` leaves a matching contact alone; `update` fills it with the row's non-blank values (a
row that changes nothing is counted as skipped); `create` makes another contact where the location allows
duplicates, skips a row a matching contact already holds, and rejects the rest. Where duplicates are not
allowed, a row whose e-mail belongs to one contact and phone to another is rejected ("merge them first").

A row of an identity group (two rows or more that are one person, ghl_core.contacts.import_identities)
goes to its group's contact whichever identifiers it holds itself: the contact that existed before the
import (with the policy above), or the one the group's first row made, into which the later rows merge
whatever the policy (they are the same person). A group that links two existing contacts is refused, row
by row. How rows merge into a contact (the same for an update): a non-blank value replaces the stored
one, tags are added (never removed), custom fields and DND channels are set key by key, the first
attribution touch is kept and the last one follows the row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ghl_core.contacts.import_identities import Identities
from ghl_core.contacts.import_models import DuplicateMode, ImportCounters, RowError
from ghl_core.contacts.models import Contact, DuplicatePolicy, DuplicatePriority
from ghl_core.contacts.services import ContactService
from ghl_core.shared.audit import AuditEntry
from ghl_core.shared.events import DomainEvent
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor


@dataclass
class BatchPlan:
    counters: ImportCounters = field(default_factory=ImportCounters)
    errors: list[RowError] = field(default_factory=list)
    states: dict[uuid.UUID, Contact] = field(default_factory=dict)  # latest state of each touched contact
    before: dict[uuid.UUID, Contact] = field(default_factory=dict)  # stored state of updated contacts
    created: list[uuid.UUID] = field(default_factory=list)
    group_contacts: dict[int, uuid.UUID] = field(default_factory=dict)  # groups whose contact it creates


def _merge_fields(target: Contact, fields: dict[str, Any]) -> dict[str, Any]:
    """An import adds tags, never removes them."""
    if "tags" not in fields:
        return fields
    return {**fields, "tags": [*target.tags, *(t for t in fields["tags"] if t not in target.tags)]}


def _holds(contact: Contact, fields: dict[str, Any]) -> bool:
    """The contact already holds every value of the row."""
    return ContactService._apply(contact, _merge_fields(contact, fields)).snapshot() == contact.snapshot()


def _no_duplicates(contact_id: uuid.UUID) -> str:
    return (
        f"contact {contact_id} has this e-mail address or phone number and the location does not allow "
        "duplicates (use the update or skip duplicate policy)"
    )


@dataclass
class BatchDecisions:
    """The decisions of one batch, into `plan`. `group_contacts` are the contacts groups made in the
    batches before."""

    policy: DuplicatePolicy
    mode: DuplicateMode
    actor_id: uuid.UUID | None
    now: datetime
    identities: Identities | None = None
    group_contacts: dict[int, uuid.UUID] = field(default_factory=dict)
    plan: BatchPlan = field(default_factory=BatchPlan)
    index: dict[str, list[uuid.UUID]] = field(default_factory=dict)  # e-mail or phone key -> contacts

    def known(self, contact: Contact) -> None:
        """A contact the batch looked up."""
        self.plan.states[contact.id] = contact
        self._index(contact)

    def _index(self, contact: Contact) -> None:
        for key in (
            f"e:{contact.email}" if contact.email else "",
            f"p:{contact.phone}" if contact.phone else "",
        ):
            if key and contact.id not in self.index.setdefault(key, []):
                self.index[key].append(contact.id)

    def decide(self, line: int, fields: dict[str, Any], draft: Contact, group: int = -1) -> None:
        plan, policy = self.plan, self.policy
        email, phone = fields.get("email"), fields.get("phone")
        by_email = [plan.states[i] for i in self.index.get(f"e:{email}", [])] if email else []
        by_phone = [plan.states[i] for i in self.index.get(f"p:{phone}", [])] if phone else []
        if group >= 0 and self._in_group(line, fields, group, by_email + by_phone):
            return
        if by_email and by_phone and by_email[0].id != by_phone[0].id and not policy.allow_duplicates:
            plan.errors.append(
                RowError(
                    line,
                    f"the e-mail address belongs to contact {by_email[0].id} and the phone number to "
                    f"contact {by_phone[0].id}: merge them first",
                )
            )
            return
        first, second = (
            (by_email, by_phone) if policy.priority is DuplicatePriority.EMAIL else (by_phone, by_email)
        )
        candidates = first + [c for c in second if c not in first]
        if candidates and self.mode is DuplicateMode.SKIP:
            plan.counters.skipped += 1
            return
        if candidates and self.mode is DuplicateMode.UPDATE:
            self._update(candidates[0], fields)
            return
        if candidates:  # DuplicateMode.CREATE
            if any(_holds(candidate, fields) for candidate in candidates):
                plan.counters.skipped += 1
                return
            if not policy.allow_duplicates:
                plan.errors.append(RowError(line, _no_duplicates(candidates[0].id)))
                return
        plan.states[draft.id] = draft
        plan.created.append(draft.id)
        self._index(draft)
        plan.counters.created += 1
        if group >= 0:
            plan.group_contacts[group] = draft.id

    def _in_group(self, line: int, fields: dict[str, Any], group: int, matched: list[Contact]) -> bool:
        """A row of a group of rows that are one person: its group's contact, whichever identifiers the
        row itself holds. False for the group's first row when it makes the contact (decided as any row)."""
        plan, identities = self.plan, self.identities
        assert identities is not None  # noqa: S101 - a group comes from them
        refused = identities.refused(group)
        if refused is not None:
            plan.errors.append(
                RowError(
                    line,
                    "with the other rows of the file sharing its e-mail address or phone number (one "
                    f"person), this row links contacts {refused[0]} and {refused[1]}, which already exist: "
                    "merge them first, then run the file again",
                )
            )
            return True
        existing = identities.existing(group)
        if existing is None or existing not in plan.states:  # none, or deleted since the file was read
            existing = None
            target_id = plan.group_contacts.get(group) or self.group_contacts.get(group)
        else:
            target_id = existing
        if target_id is None or target_id not in plan.states:
            return False
        target = plan.states[target_id]
        others = [c.id for c in matched if c.id != target_id]
        if others and not self.policy.allow_duplicates:
            plan.errors.append(
                RowError(
                    line,
                    f"its e-mail address or phone number belongs to contact {others[0]} and the file's other "
                    f"rows for this person go to contact {target_id}: merge them first",
                )
            )
            return True
        if existing is not None and self.mode is DuplicateMode.SKIP:
            plan.counters.skipped += 1
        elif existing is not None and self.mode is DuplicateMode.CREATE:
            if _holds(target, fields):
                plan.counters.skipped += 1
            else:
                plan.errors.append(RowError(line, _no_duplicates(target_id)))
        else:  # a contact that existed, to update; or the one an earlier row of the group made
            self._update(target, fields)
        return True

    def _update(self, target: Contact, fields: dict[str, Any]) -> None:
        plan = self.plan
        after = ContactService._apply(target, _merge_fields(target, fields))
        if after.snapshot() == target.snapshot():
            plan.counters.skipped += 1
            return
        after.updated_at, after.updated_by = self.now, self.actor_id
        if target.id not in plan.created:
            plan.before.setdefault(target.id, target)
        plan.states[target.id] = after
        self._index(after)
        plan.counters.updated += 1


def update_records(
    actor: Actor, location: Location, plan: BatchPlan, now: datetime
) -> tuple[list[AuditEntry], list[DomainEvent]]:
    """The audit rows and events of the batch's updates: one audit row a contact, an event a kind of
    change, as ContactService writes them."""
    agency_id, location_id = location.agency_id, location.id
    audit: list[AuditEntry] = []
    events: list[DomainEvent] = []

    def entry(action: str, contact_id: uuid.UUID, before: Any, after: Any) -> AuditEntry:
        return AuditEntry(
            agency_id=agency_id,
            location_id=location_id,
            actor_type=actor.kind.value,
            actor_id=actor.id,
            action=action,
            entity_type="contact",
            entity_id=contact_id,
            before=before,
            after=after,
            created_at=now,
        )

    def event(kind: str, contact_id: uuid.UUID, payload: dict[str, Any]) -> DomainEvent:
        return DomainEvent(kind, agency_id, location_id, contact_id, payload, now)

    for contact_id, stored in plan.before.items():
        old, new = stored.snapshot(), plan.states[contact_id].snapshot()
        audit.append(entry("update", contact_id, old, new))
        added = sorted(set(new["tags"]) - set(old["tags"]))
        if added:
            events.append(event("contact.tag_added", contact_id, {"contact": new, "tags": added}))
        if (old["dnd"], old["dnd_channels"]) != (new["dnd"], new["dnd_channels"]):
            events.append(
                event(
                    "contact.dnd_changed",
                    contact_id,
                    {"contact": new, "dnd": new["dnd"], "dnd_channels": new["dnd_channels"]},
                )
            )
        other = sorted(
            k for k in new if old.get(k) != new.get(k) and k not in ("tags", "dnd", "dnd_channels")
        )
        if other:
            events.append(event("contact.updated", contact_id, {"contact": new, "fields": other}))
    return audit, events
