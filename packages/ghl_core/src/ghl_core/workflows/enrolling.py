"""Enrolling contacts by hand, in bulk and through the inbound-webhook trigger, stopping them, and the
history and statistics of a workflow's enrollments. The engine enrolls (and runs) them; this service
checks what the caller asks for."""

from __future__ import annotations

import builtins
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ghl_core.contacts.search import SearchPage
from ghl_core.contacts.selection import ContactFinder, ContactSelection
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest, decode_cursor
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission
from ghl_core.workflows.engine import WorkflowEngine
from ghl_core.workflows.lookups import hash_token, published, storable, visible
from ghl_core.workflows.models import Enrollment, EnrollmentStatus, StepRun, WorkflowStats
from ghl_core.workflows.ports import WorkflowsUnitOfWork

MAX_BULK = 10_000  # contacts one bulk enrollment takes (a bigger audience: several requests, or a tag)
_BULK_PAGE = 500
_ENROLL_KEYS = {"contact_ids", "tags", "smart_list_id", "query", "filter"}


@dataclass(frozen=True, slots=True)
class BulkEnrollment:
    matched: int
    enrolled: int
    skipped: int  # already enrolled (re-entry not allowed), or a repeat of the same request


class WorkflowEnrollments:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[WorkflowsUnitOfWork],
        clock: Clock,
        engine: WorkflowEngine,
        finder: ContactFinder,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._engine = engine
        self._finder = finder

    async def enroll(self, actor: Actor, workflow_id: uuid.UUID, data: Mapping[str, Any]) -> BulkEnrollment:
        """Manual and bulk enrollment: `contact_ids`, or an audience (`tags`, `smart_list_id`, `query`,
        `filter`) of at most MAX_BULK contacts, into the published version."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        storable(data)
        errors = [FieldError(f"/{k}", "is not a known field") for k in sorted(set(data) - _ENROLL_KEYS)]
        ids: builtins.list[uuid.UUID] = []
        raw_ids = data.get("contact_ids")
        if raw_ids is not None:
            if not isinstance(raw_ids, list) or not 1 <= len(raw_ids) <= MAX_BULK:
                errors.append(FieldError("/contact_ids", f"must be a list of 1 to {MAX_BULK} contact ids"))
            else:
                for i, raw in enumerate(raw_ids):
                    try:
                        ids.append(uuid.UUID(str(raw)))
                    except ValueError:
                        errors.append(FieldError(f"/contact_ids/{i}", "must be a UUID"))
        audience = {
            k: data[k] for k in ("tags", "smart_list_id", "query", "filter") if data.get(k) is not None
        }
        if raw_ids is None and not audience:
            errors.append(
                FieldError("", "name contact_ids, or an audience: tags, smart_list_id, query, filter")
            )
        if raw_ids is not None and audience:
            errors.append(FieldError("/contact_ids", "give contact_ids or an audience, not both"))
        if errors:
            raise ValidationFailed(errors)
        if audience:
            ids = await self._audience(actor, location_id, audience)
        request = new_id()
        enrolled = 0
        async with self._uow(actor.scope) as uow:
            workflow = await visible(uow, workflow_id)
            version = await published(uow, workflow)
            live = await uow.tags.live_contact_ids(location_id, list(dict.fromkeys(ids)))
            if raw_ids is not None and len(live) < len(set(ids)):
                missing = [str(i) for i in dict.fromkeys(ids) if i not in live]
                raise NotFound(f"contact {missing[0]} not found")
            for contact_id in dict.fromkeys(ids):
                added = await self._engine.enroll(
                    uow, version, contact_id, trigger="manual", cause=f"manual:{request}:{contact_id}"
                )
                enrolled += added is not None
            await uow.commit()
        matched = len(set(ids))
        return BulkEnrollment(matched=matched, enrolled=enrolled, skipped=matched - enrolled)

    async def _audience(
        self, actor: Actor, location_id: uuid.UUID, audience: dict[str, Any]
    ) -> builtins.list[uuid.UUID]:
        tags = audience.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise ValidationFailed.one("/tags", "must be a list of tag names")
        smart = audience.get("smart_list_id")
        try:
            smart_id = uuid.UUID(str(smart)) if smart else None
        except ValueError:
            raise ValidationFailed.one("/smart_list_id", "must be a UUID") from None
        selection = ContactSelection(
            query=audience.get("query"),
            filter=audience.get("filter"),
            tags=tuple(tags or ()),
            smart_list_id=smart_id,
        )
        ids: builtins.list[uuid.UUID] = []
        async with self._uow(actor.scope) as uow:
            spec = await self._finder.spec(uow, location_id, selection)
            page = SearchPage(limit=_BULK_PAGE)
            while True:
                found = await uow.contact_search.search(location_id, spec, page)
                ids += [c.id for c in found.items if c.deleted_at is None and c.erased_at is None]
                if len(ids) > MAX_BULK:
                    raise ValidationFailed.one(
                        "", f"the audience has more than {MAX_BULK} contacts: narrow it, or use a trigger"
                    )
                if found.next_cursor is None:
                    break
                parts = decode_cursor(found.next_cursor)
                page = SearchPage(limit=_BULK_PAGE, after=(parts[2], parts[3]))
        return ids

    async def remove(self, actor: Actor, workflow_id: uuid.UUID, contact_id: uuid.UUID) -> int:
        """Stops the contact's running enrollment(s) in the workflow."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        async with self._uow(actor.scope) as uow:
            await visible(uow, workflow_id)
            stopped = await uow.enrollments.stop_all(
                workflow_id=workflow_id,
                contact_id=contact_id,
                location_id=location_id,
                reason="removed",
                now=self._clock.now(),
            )
            await uow.commit()
        return stopped

    async def receive_hook(
        self,
        location_id: uuid.UUID,
        workflow_id: uuid.UUID,
        token: str,
        payload: Mapping[str, Any],
        *,
        request_id: str,
    ) -> Enrollment | None:
        """A call to the workflow's inbound-webhook URL: the payload names the contact by `contact_id`,
        `email` or `phone` (an unknown email/phone becomes a contact). NotFound for a wrong secret or a
        workflow without an inbound_webhook trigger, so a URL cannot be probed. `request_id` (the
        caller's idempotency key, or the request) makes a repeat enroll once."""
        actor = Actor.operator_at(location_id)
        async with self._uow(actor.scope) as uow:
            workflow = await uow.workflows.get(workflow_id)
            if (
                workflow is None
                or workflow.location_id != location_id
                or workflow.deleted_at is not None
                or workflow.hook_token_hash is None
                or not hmac.compare_digest(workflow.hook_token_hash, hash_token(token))
            ):
                raise NotFound("no such webhook")
            version = await published(uow, workflow)
            definition = self._engine.definition(version)
            if not any(t.type == "inbound_webhook" for t in definition.triggers):
                raise NotFound("no such webhook")
        storable(payload)
        contact_id = await self._hook_contact(actor, payload)
        async with self._uow(actor.scope) as uow:
            enrollment = await self._engine.enroll(
                uow, version, contact_id, trigger="inbound_webhook", cause=f"hook:{request_id}"
            )
            await uow.commit()
        return enrollment

    async def _hook_contact(self, actor: Actor, payload: Mapping[str, Any]) -> uuid.UUID:
        raw = payload.get("contact_id")
        if raw is not None:
            try:
                contact_id = uuid.UUID(str(raw))
            except ValueError:
                raise ValidationFailed.one("/contact_id", "must be a UUID") from None
            async with self._uow(actor.scope) as uow:
                contact = await uow.contacts.get(contact_id)
                if contact is None or contact.deleted_at is not None:
                    raise NotFound(f"contact {contact_id} not found")
            return contact_id
        fields = {
            k: payload[k]
            for k in ("email", "phone", "first_name", "last_name", "company_name")
            if isinstance(payload.get(k), str) and payload[k]
        }
        if "email" not in fields and "phone" not in fields:
            raise ValidationFailed.one("", "name the contact: contact_id, email or phone")
        contact, _ = await self._engine.contacts.upsert(actor, fields)
        return contact.id

    # ------------------------------------------------------------------ history, statistics

    async def enrollments(
        self,
        actor: Actor,
        workflow_id: uuid.UUID,
        page: PageRequest,
        *,
        status: str | None = None,
        contact_id: uuid.UUID | None = None,
    ) -> Page[Enrollment]:
        actor.require_location(Permission.WORKFLOWS_READ)
        try:
            wanted = EnrollmentStatus(status) if status is not None else None
        except ValueError:
            raise ValidationFailed.one(
                "/status", f"must be one of {', '.join(s.value for s in EnrollmentStatus)}"
            ) from None
        async with self._uow(actor.scope) as uow:
            await visible(uow, workflow_id)
            return await uow.enrollments.list(workflow_id, page, status=wanted, contact_id=contact_id)

    async def enrollment(
        self, actor: Actor, enrollment_id: uuid.UUID
    ) -> tuple[Enrollment, builtins.list[StepRun]]:
        """One enrollment with every step it ran (time, outcome, error, output)."""
        actor.require_location(Permission.WORKFLOWS_READ)
        async with self._uow(actor.scope) as uow:
            enrollment = await uow.enrollments.get(enrollment_id)
            if enrollment is None:
                raise NotFound(f"enrollment {enrollment_id} not found")
            return enrollment, await uow.enrollments.history(enrollment_id)

    async def stats(self, actor: Actor, workflow_id: uuid.UUID) -> WorkflowStats:
        actor.require_location(Permission.WORKFLOWS_READ)
        async with self._uow(actor.scope) as uow:
            await visible(uow, workflow_id)
            counts = await uow.enrollments.counts(workflow_id)
            steps = await uow.enrollments.step_counts(workflow_id)
        return WorkflowStats(
            enrolled=sum(counts.values()),
            active=counts.get(EnrollmentStatus.ACTIVE, 0),
            waiting=counts.get(EnrollmentStatus.WAITING, 0),
            completed=counts.get(EnrollmentStatus.COMPLETED, 0),
            goal=counts.get(EnrollmentStatus.GOAL, 0),
            stopped=counts.get(EnrollmentStatus.STOPPED, 0),
            failed=counts.get(EnrollmentStatus.FAILED, 0),
            steps=steps,
        )
