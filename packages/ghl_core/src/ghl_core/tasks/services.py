"""Use cases of the tasks context: the tasks of a contact, and the location-wide task list."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from ghl_core.notes.records import agency_of, existing, live_contact, raced
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_entity_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tasks.fields import clean_task_fields
from ghl_core.tasks.models import Task, TaskFilter
from ghl_core.tasks.ports import TasksUnitOfWork
from ghl_core.tenancy.assignees import check_assignee
from ghl_core.tenancy.permissions import Actor, Permission

# Fields whose change is an update; completing is its own event, and completed_at follows completed.
_COMPLETION = frozenset({"completed", "completed_at"})


async def _existing(uow: TasksUnitOfWork, location_id: uuid.UUID, task_id: uuid.UUID) -> Task | None:
    return await existing(uow.tasks, location_id, task_id, "task")


async def _raced(uow: TasksUnitOfWork, location_id: uuid.UUID, task_id: uuid.UUID) -> Task:
    return await raced(uow.tasks, location_id, task_id, "task")


class TaskService:
    def __init__(self, uow: UnitOfWorkFactory[TasksUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    @staticmethod
    async def _visible(
        uow: TasksUnitOfWork, contact_id: uuid.UUID, task_id: uuid.UUID, *, lock: bool = False
    ) -> Task:
        await live_contact(uow, contact_id)
        task = await uow.tasks.get(task_id, lock=lock)
        if task is None or task.contact_id != contact_id or task.deleted_at is not None:
            raise NotFound(f"task {task_id} not found")
        return task

    def _apply(self, task: Task, fields: dict[str, Any]) -> Task:
        changed = replace(task, **fields)
        if changed.completed and not task.completed:
            changed.completed_at = self._clock.now()
        elif not changed.completed:
            changed.completed_at = None
        return changed

    async def _event(
        self, uow: TasksUnitOfWork, agency_id: uuid.UUID, event_type: str, before: Task | None, after: Task
    ) -> None:
        await uow.events.add(
            DomainEvent(
                type=event_type,
                agency_id=agency_id,
                location_id=after.location_id,
                entity_id=after.id,
                payload={"before": before.snapshot() if before else None, "after": after.snapshot()},
                occurred_at=self._clock.now(),
            )
        )

    async def _audit(
        self,
        uow: TasksUnitOfWork,
        actor: Actor,
        agency_id: uuid.UUID,
        action: str,
        before: Task | None,
        after: Task,
    ) -> None:
        await record_entity_change(
            uow,
            self._clock,
            actor,
            action=action,
            entity_type="task",
            agency_id=agency_id,
            before=before,
            after=after,
        )

    async def create(
        self, actor: Actor, contact_id: uuid.UUID, data: dict[str, Any], *, id: uuid.UUID | None = None
    ) -> Task:
        """With `id` (a workflow step's deterministic id) the create is idempotent: when the location
        already has a task with that id, deleted or not, that task is returned and nothing is written."""
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        fields = clean_task_fields(data, creating=True)
        async with self._uow(actor.scope) as uow:
            # First: a retry finds its task even if the contact or the assignee has gone since.
            if id is not None and (existing := await _existing(uow, location_id, id)) is not None:
                return existing
            agency_id = await agency_of(uow, location_id)
            await live_contact(uow, contact_id)
            if fields.get("assignee_id"):
                await check_assignee(uow, agency_id, location_id, fields["assignee_id"], "/assignee_id")
            now = self._clock.now()
            task = self._apply(
                Task(
                    id=id if id is not None else new_id(),
                    location_id=location_id,
                    contact_id=contact_id,
                    title=fields["title"],
                    created_at=now,
                    updated_at=now,
                    created_by=actor.id,
                    updated_by=actor.id,
                ),
                fields,
            )
            if not await uow.tasks.add(task):
                # A racing create with the same id committed first: its task is the answer.
                return await _raced(uow, location_id, task.id)
            await self._audit(uow, actor, agency_id, "create", None, task)
            await self._event(uow, agency_id, "task.created", None, task)
            if task.completed:
                await self._event(uow, agency_id, "task.completed", None, task)
            await uow.commit()
        return task

    async def get(self, actor: Actor, contact_id: uuid.UUID, task_id: uuid.UUID) -> Task:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, contact_id, task_id)

    async def list_for_contact(self, actor: Actor, contact_id: uuid.UUID, page: PageRequest) -> Page[Task]:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            await live_contact(uow, contact_id)
            return await uow.tasks.list_for_contact(contact_id, page)

    async def list(self, actor: Actor, filter: TaskFilter, page: PageRequest) -> Page[Task]:
        actor.require_location(Permission.CONTACTS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.tasks.list(filter, page)

    async def update(
        self, actor: Actor, contact_id: uuid.UUID, task_id: uuid.UUID, data: dict[str, Any]
    ) -> Task:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        fields = clean_task_fields(data, creating=False)
        async with self._uow(actor.scope) as uow:
            agency_id = await agency_of(uow, location_id)
            before = await self._visible(uow, contact_id, task_id, lock=True)
            assignee = fields.get("assignee_id")
            if assignee is not None and assignee != before.assignee_id:
                await check_assignee(uow, agency_id, location_id, assignee, "/assignee_id")
            after = self._apply(before, fields)
            old, new = before.snapshot(), after.snapshot()
            if old == new:
                return before
            after.updated_at, after.updated_by = self._clock.now(), actor.id
            await uow.tasks.update(after)
            await self._audit(uow, actor, agency_id, "update", before, after)
            # One event per kind of change: completing alone is task.completed; reopening or changing
            # anything else is task.updated.
            if after.completed and not before.completed:
                await self._event(uow, agency_id, "task.completed", before, after)
            if (before.completed and not after.completed) or any(
                old[k] != new[k] for k in old if k not in _COMPLETION
            ):
                await self._event(uow, agency_id, "task.updated", before, after)
            await uow.commit()
        return after

    async def delete(self, actor: Actor, contact_id: uuid.UUID, task_id: uuid.UUID) -> None:
        location_id = actor.require_location(Permission.CONTACTS_WRITE)
        async with self._uow(actor.scope) as uow:
            agency_id = await agency_of(uow, location_id)
            before = await self._visible(uow, contact_id, task_id, lock=True)
            now = self._clock.now()
            after = replace(before, deleted_at=now, updated_at=now, updated_by=actor.id)
            await uow.tasks.update(after)
            await self._audit(uow, actor, agency_id, "delete", before, after)
            await self._event(uow, agency_id, "task.deleted", before, after)
            await uow.commit()
