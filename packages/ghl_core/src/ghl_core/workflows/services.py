"""Use cases of workflows: authoring (a draft validated on every save), publishing versions, pausing,
enrolling by hand or in bulk, the inbound-webhook trigger, history, statistics and simulation.

Every save checks the document and its templates; publishing checks them again and that every id the
document names is the location's (workflows/references.py), so a version never fails at run time for
what could be known when it was published."""

from __future__ import annotations

import builtins
import functools
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from ghl_core.contacts.selection import ContactFinder
from ghl_core.conversations.templates import merge_context, off_loop
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.instants import OUTSIDE_CALENDAR, in_utc
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, Permission
from ghl_core.workflows.definition import Definition, parse_definition
from ghl_core.workflows.engine import WorkflowEngine
from ghl_core.workflows.enrolling import MAX_BULK as MAX_BULK
from ghl_core.workflows.enrolling import BulkEnrollment as BulkEnrollment
from ghl_core.workflows.enrolling import WorkflowEnrollments
from ghl_core.workflows.lookups import hash_token, location_of, storable, visible
from ghl_core.workflows.models import (
    Enrollment,
    StepRun,
    Workflow,
    WorkflowStateError,
    WorkflowStats,
    WorkflowStatus,
    WorkflowVersion,
)
from ghl_core.workflows.ports import WorkflowsUnitOfWork
from ghl_core.workflows.references import reference_errors, template_errors
from ghl_core.workflows.simulation import Simulation, read_events, simulate

MAX_VERSION = 2**31 - 1  # versions are stored as integers: a bigger number names no version
_SIMULATE_KEYS = {"contact_id", "start", "events", "version"}


def _check_version(version: int | None) -> None:
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise ValidationFailed.one("/version", f"must be a published version number (1 to {MAX_VERSION})")


def _parsed(document: Mapping[str, Any]) -> Definition:
    """The definition, parsed, once it holds nothing PostgreSQL cannot store."""
    storable(document)
    return parse_definition(document)


class WorkflowService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[WorkflowsUnitOfWork],
        clock: Clock,
        engine: WorkflowEngine,
        finder: ContactFinder,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._engine = engine
        self._finder = finder
        self._enrolling = WorkflowEnrollments(uow=uow, clock=clock, engine=engine, finder=finder)

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
            location = await location_of(uow, location_id)
            await uow.workflows.add(workflow)
            await self._audit(uow, actor, location, workflow, "create")
            await uow.commit()
        return workflow

    async def update(self, actor: Actor, workflow_id: uuid.UUID, document: Mapping[str, Any]) -> Workflow:
        """Replaces the draft. Published versions are untouched until the next publish."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        definition = await self._checked(document)
        async with self._uow(actor.scope) as uow:
            location = await location_of(uow, location_id)
            workflow = await visible(uow, workflow_id, lock=True)
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
                await self._publishable(uow, await location_of(uow, location_id), definition)
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
            return await visible(uow, workflow_id)

    async def list(self, actor: Actor, page: PageRequest) -> Page[Workflow]:
        location_id = actor.require_location(Permission.WORKFLOWS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.workflows.list(location_id, page)

    async def delete(self, actor: Actor, workflow_id: uuid.UUID) -> None:
        """Soft delete; its running enrollments stop."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        async with self._uow(actor.scope) as uow:
            location = await location_of(uow, location_id)
            workflow = await visible(uow, workflow_id, lock=True)
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
            location = await location_of(uow, location_id)
            workflow = await visible(uow, workflow_id, lock=True)
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
            location = await location_of(uow, location_id)
            workflow = await visible(uow, workflow_id, lock=True)
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
            await visible(uow, workflow_id)
            return await uow.workflows.versions(workflow_id)

    async def export(
        self, actor: Actor, workflow_id: uuid.UUID, version: int | None = None
    ) -> dict[str, Any]:
        """The draft as authored, or a published version's definition."""
        actor.require_location(Permission.WORKFLOWS_READ)
        _check_version(version)
        async with self._uow(actor.scope) as uow:
            workflow = await visible(uow, workflow_id)
            if version is None:
                return dict(workflow.draft)
            found = await uow.workflows.version(workflow_id, version)
            if found is None:
                raise NotFound(f"workflow {workflow_id} has no version {version}")
            return dict(found.definition)

    # ------------------------------------------------------------------ enrolling (workflows/enrolling.py)

    async def enroll(self, actor: Actor, workflow_id: uuid.UUID, data: Mapping[str, Any]) -> BulkEnrollment:
        """Manual and bulk enrollment (WorkflowEnrollments.enroll)."""
        return await self._enrolling.enroll(actor, workflow_id, data)

    async def remove(self, actor: Actor, workflow_id: uuid.UUID, contact_id: uuid.UUID) -> int:
        """Stops the contact's running enrollment(s) in the workflow."""
        return await self._enrolling.remove(actor, workflow_id, contact_id)

    async def receive_hook(
        self,
        location_id: uuid.UUID,
        workflow_id: uuid.UUID,
        token: str,
        payload: Mapping[str, Any],
        *,
        request_id: str,
    ) -> Enrollment | None:
        """A call to the workflow's inbound-webhook URL (WorkflowEnrollments.receive_hook)."""
        return await self._enrolling.receive_hook(
            location_id, workflow_id, token, payload, request_id=request_id
        )

    async def enrollments(
        self,
        actor: Actor,
        workflow_id: uuid.UUID,
        page: PageRequest,
        *,
        status: str | None = None,
        contact_id: uuid.UUID | None = None,
    ) -> Page[Enrollment]:
        return await self._enrolling.enrollments(
            actor, workflow_id, page, status=status, contact_id=contact_id
        )

    async def enrollment(
        self, actor: Actor, enrollment_id: uuid.UUID
    ) -> tuple[Enrollment, builtins.list[StepRun]]:
        """One enrollment with every step it ran (time, outcome, error, output)."""
        return await self._enrolling.enrollment(actor, enrollment_id)

    async def stats(self, actor: Actor, workflow_id: uuid.UUID) -> WorkflowStats:
        return await self._enrolling.stats(actor, workflow_id)

    # ------------------------------------------------------------------ the inbound-webhook trigger

    async def rotate_hook(self, actor: Actor, workflow_id: uuid.UUID) -> tuple[Workflow, str]:
        """A new secret for the workflow's inbound-webhook URL; shown once, stored hashed."""
        location_id = actor.require_location(Permission.WORKFLOWS_WRITE)
        token = secrets.token_urlsafe(32)
        async with self._uow(actor.scope) as uow:
            location = await location_of(uow, location_id)
            workflow = await visible(uow, workflow_id, lock=True)
            workflow.hook_token_hash = hash_token(token)
            workflow.updated_at = self._clock.now()
            workflow.updated_by = actor.id
            await uow.workflows.update(workflow)
            await self._audit(uow, actor, location, workflow, "rotate_hook")
            await uow.commit()
        return workflow, token

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
        events = read_events(data.get("events"), errors)
        if errors:
            raise ValidationFailed(errors)
        version = data.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise ValidationFailed.one("/version", "must be a published version number (1 or more)")
        _check_version(version)
        document = await self.export(actor, workflow_id, version)
        definition = parse_definition(document, self._engine.steps)
        async with self._uow(actor.scope) as uow:
            location = await location_of(uow, location_id)
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
                steps=self._engine.steps,
            )
        )

    # ------------------------------------------------------------------ helpers

    async def _checked(self, document: Mapping[str, Any]) -> Definition:
        """The definition, parsed, once its templates compile and render sample data within the render
        limits (every mistake with its pointer). The check renders: it runs off the event loop."""
        definition = _parsed(document)
        errors = await off_loop(partial(template_errors, self._engine.renderer, definition), pointer="/steps")
        if errors:
            raise ValidationFailed(errors)
        return definition

    async def _publishable(
        self, uow: WorkflowsUnitOfWork, location: Location, definition: Definition
    ) -> None:
        """Every id and key the definition names is the location's (another location's reads as unknown),
        every fixed webhook address one the guard lets through."""
        errors = await reference_errors(uow, location, definition, self._engine.guard)
        if errors:
            raise ValidationFailed(errors)

    async def _audit(
        self, uow: WorkflowsUnitOfWork, actor: Actor, location: Location, workflow: Workflow, action: str
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
