"""Use cases of workflows: authoring (a draft validated on every save), publishing versions, pausing,
enrolling by hand or in bulk, the inbound-webhook trigger, history, statistics and simulation.

Every save checks the document and its templates; publishing checks them again and that every id the
document names is the location's (workflows/references.py), so a version never fails at run time for
what could be known when it was published."""

from __future__ import annotations

import builtins
import functools
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from ghl_core.contacts.search import SearchPage
from ghl_core.contacts.selection import ContactFinder, ContactSelection
from ghl_core.conversations.templates import merge_context, off_loop
from ghl_core.legacy_uow import UnitOfWork, UnitOfWorkFactory
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.instants import OUTSIDE_CALENDAR, in_utc
from ghl_core.shared.pagination import Page, PageRequest, decode_cursor
from ghl_core.shared.recording import record_change
from ghl_core.shared.untrusted import nul_errors
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, Permission
from ghl_core.workflows.definition import Definition, parse_definition
from ghl_core.workflows.engine import WorkflowEngine
from ghl_core.workflows.models import (
    Enrollment,
    EnrollmentStatus,
    StepRun,
    Workflow,
    WorkflowStateError,
    WorkflowStats,
    WorkflowStatus,
    WorkflowVersion,
)
from ghl_core.workflows.references import reference_errors, template_errors
from ghl_core.workflows.simulation import SimulatedEvent, Simulation, simulate

MAX_VERSION = 2**31 - 1  # versions are stored as integers: a bigger number names no version
MAX_BULK = 10_000  # contacts one bulk enrollment takes (a bigger audience: several requests, or a tag)
_BULK_PAGE = 500
_ENROLL_KEYS = {"contact_ids", "tags", "smart_list_id", "query", "filter"}
_SIMULATE_KEYS = {"contact_id", "start", "events", "version"}


@dataclass(frozen=True, slots=True)
class BulkEnrollment:
    matched: int
    enrolled: int
    skipped: int  # already enrolled (re-entry not allowed), or a repeat of the same request


def _check_version(version: int | None) -> None:
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise ValidationFailed.one("/version", f"must be a published version number (1 to {MAX_VERSION})")


def _storable(value: Mapping[str, Any]) -> None:
    errors = nul_errors(value)
    if errors:
        raise ValidationFailed(errors)


def _parsed(document: Mapping[str, Any]) -> Definition:
    """The definition, parsed, once it holds nothing PostgreSQL cannot store."""
    _storable(document)
    return parse_definition(document)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WorkflowService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, engine: WorkflowEngine, finder: ContactFinder
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._engine = engine
        self._finder = finder

    # ------------------------------------------------------------------ authoring

    async def create(self, actor: Actor, document: Mapping[str, Any]) -> Workflow:
        """A new draft from a definition document (validated: every mistake with its pointer)."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        definition = await self._checked(document)
        now = self._clock.now()
        workflow = Workflow(
            id=new_id(),
            location_id=location_id,
            name=definition.name,
            status=WorkflowStatus.DRAFT,
            draft=dict(document),
            created_at=now,
            updated_at=now,
            created_by=actor.id,
            updated_by=actor.id,
        )
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            await uow.workflows.add(workflow)
            await self._audit(uow, actor, location, workflow, "create")
            await uow.commit()
        return workflow

    async def update(self, actor: Actor, workflow_id: uuid.UUID, document: Mapping[str, Any]) -> Workflow:
        """Replaces the draft. Published versions are untouched until the next publish."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        definition = await self._checked(document)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            workflow = await self._visible(uow, workflow_id, lock=True)
            workflow.draft = dict(document)
            workflow.name = definition.name
            workflow.updated_at = self._clock.now()
            workflow.updated_by = actor.id
            await uow.workflows.update(workflow)
            await self._audit(uow, actor, location, workflow, "update")
            await uow.commit()
        return workflow

    async def apply(
        self, actor: Actor, document: Mapping[str, Any], *, publish: bool = False
    ) -> tuple[Workflow, bool]:
        """`ghl workflows apply`: updates the location's workflow of the same name (or creates it);
        answers (workflow, created). With `publish`, publishes it in the same call; a document that
        could not be published is refused before anything is saved."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        definition = await self._checked(document)
        existing: Workflow | None = None
        async with self._uow(actor.scope) as uow:
            if publish:
                await self._publishable(uow, await self._location(uow, location_id), definition)
            page = await uow.workflows.list(location_id, PageRequest(limit=200))
            while True:
                existing = next((w for w in page.items if w.name == definition.name), None)
                if existing is not None or page.next_cursor is None:
                    break
                page = await uow.workflows.list(location_id, PageRequest.parse(200, page.next_cursor, None))
        if existing is None:
            workflow, created = await self.create(actor, document), True
        else:
            workflow, created = await self.update(actor, existing.id, document), False
        if publish:
            workflow = await self.publish(actor, workflow.id)
        return workflow, created

    async def get(self, actor: Actor, workflow_id: uuid.UUID) -> Workflow:
        actor.require_location(Permission.WORKFLOWS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, workflow_id)

    async def list(self, actor: Actor, page: PageRequest) -> Page[Workflow]:
        location_id = actor.require_location(Permission.WORKFLOWS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.workflows.list(location_id, page)

    async def delete(self, actor: Actor, workflow_id: uuid.UUID) -> None:
        """Soft delete; its running enrollments stop."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            workflow = await self._visible(uow, workflow_id, lock=True)
            now = self._clock.now()
            workflow.deleted_at = now
            workflow.updated_at = now
            workflow.updated_by = actor.id
            await uow.workflows.update(workflow)
            await uow.enrollments.stop_all(
                workflow_id=workflow.id, location_id=location_id, reason="workflow_deleted", now=now
            )
            await self._audit(uow, actor, location, workflow, "delete")
            await uow.commit()

    # ------------------------------------------------------------------ versions

    async def publish(self, actor: Actor, workflow_id: uuid.UUID) -> Workflow:
        """Makes the draft a new version; new enrollments start on it, running ones finish on theirs."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            workflow = await self._visible(uow, workflow_id, lock=True)
            # A draft saved before a rule tightened is checked again, templates included.
            definition = await self._checked(workflow.draft)
            await self._publishable(uow, location, definition)
            now = self._clock.now()
            workflow.version += 1
            workflow.status = WorkflowStatus.PUBLISHED
            workflow.updated_at = now
            workflow.updated_by = actor.id
            await uow.workflows.add_version(
                WorkflowVersion(
                    workflow_id=workflow.id,
                    location_id=location_id,
                    version=workflow.version,
                    definition=dict(workflow.draft),
                    published_at=now,
                    published_by=actor.id,
                )
            )
            await uow.workflows.update(workflow)
            await self._audit(uow, actor, location, workflow, "publish")
            await uow.commit()
        return workflow

    async def pause(self, actor: Actor, workflow_id: uuid.UUID) -> tuple[Workflow, int]:
        """Unpublishes: triggers stop enrolling and running enrollments stop (cleanly: a step under way
        finishes, nothing after it runs). Answers the workflow and how many enrollments stopped."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            workflow = await self._visible(uow, workflow_id, lock=True)
            if workflow.status is not WorkflowStatus.PUBLISHED:
                raise WorkflowStateError(f"workflow {workflow_id} is {workflow.status.value}, not published")
            now = self._clock.now()
            workflow.status = WorkflowStatus.PAUSED
            workflow.updated_at = now
            workflow.updated_by = actor.id
            await uow.workflows.update(workflow)
            stopped = await uow.enrollments.stop_all(
                workflow_id=workflow.id, location_id=location_id, reason="workflow_paused", now=now
            )
            await self._audit(uow, actor, location, workflow, "pause")
            await uow.commit()
        return workflow, stopped

    async def versions(self, actor: Actor, workflow_id: uuid.UUID) -> builtins.list[WorkflowVersion]:
        actor.require_location(Permission.WORKFLOWS_READ)
        async with self._uow(actor.scope) as uow:
            await self._visible(uow, workflow_id)
            return await uow.workflows.versions(workflow_id)

    async def export(
        self, actor: Actor, workflow_id: uuid.UUID, version: int | None = None
    ) -> dict[str, Any]:
        """The draft as authored, or a published version's definition."""
        actor.require_location(Permission.WORKFLOWS_READ)
        _check_version(version)
        async with self._uow(actor.scope) as uow:
            workflow = await self._visible(uow, workflow_id)
            if version is None:
                return dict(workflow.draft)
            found = await uow.workflows.version(workflow_id, version)
            if found is None:
                raise NotFound(f"workflow {workflow_id} has no version {version}")
            return dict(found.definition)

    # ------------------------------------------------------------------ enrolling

    async def enroll(self, actor: Actor, workflow_id: uuid.UUID, data: Mapping[str, Any]) -> BulkEnrollment:
        """Manual and bulk enrollment: `contact_ids`, or an audience (`tags`, `smart_list_id`, `query`,
        `filter`) of at most MAX_BULK contacts, into the published version."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        _storable(data)
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
            workflow = await self._visible(uow, workflow_id)
            version = await self._published(uow, workflow)
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
            await self._visible(uow, workflow_id)
            stopped = await uow.enrollments.stop_all(
                workflow_id=workflow_id,
                contact_id=contact_id,
                location_id=location_id,
                reason="removed",
                now=self._clock.now(),
            )
            await uow.commit()
        return stopped

    # ------------------------------------------------------------------ the inbound-webhook trigger

    async def rotate_hook(self, actor: Actor, workflow_id: uuid.UUID) -> tuple[Workflow, str]:
        """A new secret for the workflow's inbound-webhook URL; shown once, stored hashed."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        token = secrets.token_urlsafe(32)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            workflow = await self._visible(uow, workflow_id, lock=True)
            workflow.hook_token_hash = _hash(token)
            workflow.updated_at = self._clock.now()
            workflow.updated_by = actor.id
            await uow.workflows.update(workflow)
            await self._audit(uow, actor, location, workflow, "rotate_hook")
            await uow.commit()
        return workflow, token

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
                or not hmac.compare_digest(workflow.hook_token_hash, _hash(token))
            ):
                raise NotFound("no such webhook")
            version = await self._published(uow, workflow)
            definition = self._engine.definition(version)
            if not any(t.type == "inbound_webhook" for t in definition.triggers):
                raise NotFound("no such webhook")
        _storable(payload)
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
            await self._visible(uow, workflow_id)
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
            await self._visible(uow, workflow_id)
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

    # ------------------------------------------------------------------ simulation

    async def simulate(self, actor: Actor, workflow_id: uuid.UUID, data: Mapping[str, Any]) -> Simulation:
        """The workflow (its draft, or `version`) for one contact on a virtual clock: nothing is sent or
        changed. `start` (default now), `events`: [{at, event, data}] that will happen."""
        location_id = actor.require_location(Permission.WORKFLOWS_READ)
        errors = [FieldError(f"/{k}", "is not a known field") for k in sorted(set(data) - _SIMULATE_KEYS)]
        try:
            contact_id = uuid.UUID(str(data.get("contact_id")))
        except ValueError:
            errors.append(FieldError("/contact_id", "is required: the id of a contact"))
            contact_id = uuid.UUID(int=0)
        start = data.get("start") or self._clock.now()
        if not isinstance(start, datetime) or start.tzinfo is None:
            errors.append(FieldError("/start", "must be a date-time with an offset"))
        elif in_utc(start) is None:
            errors.append(FieldError("/start", OUTSIDE_CALENDAR))
        events = self._events(data.get("events"), errors)
        if errors:
            raise ValidationFailed(errors)
        version = data.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise ValidationFailed.one("/version", "must be a published version number (1 or more)")
        _check_version(version)
        document = await self.export(actor, workflow_id, version)
        definition = parse_definition(document)
        async with self._uow(actor.scope) as uow:
            location = await self._location(uow, location_id)
            contact = await uow.contacts.get(contact_id)
            if contact is None or contact.deleted_at is not None:
                raise NotFound(f"contact {contact_id} not found")
        zone = ZoneInfo(location.timezone)
        try:
            contact_zone = ZoneInfo(contact.timezone) if contact.timezone else zone
        except (KeyError, ValueError):
            contact_zone = zone
        context = merge_context(contact, location)
        # Each distinct text renders once (the context does not change): a step visited many times costs
        # one render. The whole simulation runs in a worker thread, renders included.
        render = functools.lru_cache(maxsize=256)(partial(self._engine.renderer.render, context=context))
        return await off_loop(
            partial(
                simulate,
                definition,
                contact.snapshot(),
                start=start,
                contact_zone=contact_zone,
                location_zone=zone,
                events=events,
                render=render,
                key=f"{workflow_id}:{contact_id}",
            )
        )

    @staticmethod
    def _events(raw: Any, errors: builtins.list[FieldError]) -> builtins.list[SimulatedEvent]:
        if raw is None:
            return []
        if not isinstance(raw, list) or len(raw) > 100:
            errors.append(FieldError("/events", "must be a list of at most 100 {at, event, data}"))
            return []
        out: builtins.list[SimulatedEvent] = []
        for i, item in enumerate(raw):
            at = item.get("at") if isinstance(item, dict) else None
            name = item.get("event") if isinstance(item, dict) else None
            data = (item.get("data") if isinstance(item, dict) else None) or {}
            if not isinstance(at, datetime) or at.tzinfo is None:
                errors.append(FieldError(f"/events/{i}/at", "must be a date-time with an offset"))
            elif in_utc(at) is None:
                errors.append(FieldError(f"/events/{i}/at", OUTSIDE_CALENDAR))
            elif not isinstance(name, str) or not isinstance(data, dict):
                errors.append(FieldError(f"/events/{i}", "needs an event name and an object of data"))
            else:
                out.append(SimulatedEvent(at=at, event=name, data={str(k): str(v) for k, v in data.items()}))
        return out

    # ------------------------------------------------------------------ helpers

    @staticmethod
    async def _location(uow: UnitOfWork, location_id: uuid.UUID) -> Location:
        location = await uow.locations.get(location_id)
        if location is None or location.deleted_at is not None:
            raise NotFound(f"location {location_id} not found")
        return location

    @staticmethod
    async def _visible(uow: UnitOfWork, workflow_id: uuid.UUID, *, lock: bool = False) -> Workflow:
        workflow = await uow.workflows.get(workflow_id, lock=lock)
        if workflow is None or workflow.deleted_at is not None:
            raise NotFound(f"workflow {workflow_id} not found")
        return workflow

    @staticmethod
    async def _published(uow: UnitOfWork, workflow: Workflow) -> WorkflowVersion:
        if workflow.status is not WorkflowStatus.PUBLISHED:
            raise WorkflowStateError(f"workflow {workflow.id} is {workflow.status.value}: publish it first")
        version = await uow.workflows.version(workflow.id, workflow.version)
        if version is None:  # pragma: no cover - publishing writes the version with the status
            raise WorkflowStateError(f"workflow {workflow.id} has no published version")
        return version

    async def _checked(self, document: Mapping[str, Any]) -> Definition:
        """The definition, parsed, once its templates compile and render sample data within the render
        limits (every mistake with its pointer). The check renders: it runs off the event loop."""
        definition = _parsed(document)
        errors = await off_loop(partial(template_errors, self._engine.renderer, definition), pointer="/steps")
        if errors:
            raise ValidationFailed(errors)
        return definition

    async def _publishable(self, uow: UnitOfWork, location: Location, definition: Definition) -> None:
        """Every id and key the definition names is the location's (another location's reads as unknown),
        every fixed webhook address one the guard lets through."""
        errors = await reference_errors(uow, location, definition, self._engine.guard)
        if errors:
            raise ValidationFailed(errors)

    async def _audit(
        self, uow: UnitOfWork, actor: Actor, location: Location, workflow: Workflow, action: str
    ) -> None:
        await record_change(
            uow,
            self._clock,
            actor,
            action=action,
            entity_type="workflow",
            entity_id=workflow.id,
            agency_id=location.agency_id,
            location_id=location.id,
            before=None,
            after={"name": workflow.name, "status": workflow.status.value, "version": workflow.version},
            event_type={"publish": "workflow.published", "pause": "workflow.paused"}.get(action),
        )
