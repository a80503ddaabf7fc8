"""/api/v1/contacts/{id}/notes, /api/v1/contacts/{id}/tasks and the location-wide /api/v1/tasks."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ghl_core.notes.services import NoteService
from ghl_core.shared.pagination import PageRequest
from ghl_core.tasks.fields import parse_task_filter
from ghl_core.tasks.services import TaskService
from ghl_core.tenancy.permissions import Actor
from ghl_http.schema_rules import BOOLEAN_TEXT, INSTANT, UUID
from ghl_http.schemas import ListOf, page_of
from ghl_http.schemas_notes_tasks import NoteIn, NoteOut, NotePatch, TaskIn, TaskOut, TaskPatch


class ContactNotesController(Controller):
    path = "/contacts/{contact_id:uuid}/notes"
    tags = ["notes and tasks"]

    @get("/", summary="List a contact's notes, pinned first, then newest")
    async def list_notes(
        self,
        contact_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        notes: NamedDependency[NoteService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[NoteOut]:
        return ListOf[NoteOut].model_validate(page_of(await notes.list(actor, contact_id, page), NoteOut.of))

    @post("/", status_code=HTTP_201_CREATED, summary="Write a note on a contact")
    async def create_note(
        self,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[NoteIn],
        actor: NamedDependency[Actor],
        notes: NamedDependency[NoteService],
    ) -> NoteOut:
        return NoteOut.of(await notes.create(actor, contact_id, data.model_dump(exclude_unset=True)))

    @get("/{note_id:uuid}", summary="Get a note")
    async def get_note(
        self,
        contact_id: FromPath[uuid.UUID],
        note_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        notes: NamedDependency[NoteService],
    ) -> NoteOut:
        return NoteOut.of(await notes.get(actor, contact_id, note_id))

    @patch("/{note_id:uuid}", summary="Change a note's body or pin it")
    async def update_note(
        self,
        contact_id: FromPath[uuid.UUID],
        note_id: FromPath[uuid.UUID],
        data: JSONBody[NotePatch],
        actor: NamedDependency[Actor],
        notes: NamedDependency[NoteService],
    ) -> NoteOut:
        changes = data.model_dump(exclude_unset=True)
        return NoteOut.of(await notes.update(actor, contact_id, note_id, changes))

    @delete("/{note_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a note (soft)")
    async def delete_note(
        self,
        contact_id: FromPath[uuid.UUID],
        note_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        notes: NamedDependency[NoteService],
    ) -> None:
        await notes.delete(actor, contact_id, note_id)


class ContactTasksController(Controller):
    path = "/contacts/{contact_id:uuid}/tasks"
    tags = ["notes and tasks"]

    @get("/", summary="List a contact's tasks, soonest due first, undated last")
    async def list_contact_tasks(
        self,
        contact_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        tasks: NamedDependency[TaskService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[TaskOut]:
        listed = await tasks.list_for_contact(actor, contact_id, page)
        return ListOf[TaskOut].model_validate(page_of(listed, TaskOut.of))

    @post("/", status_code=HTTP_201_CREATED, summary="Add a task to a contact")
    async def create_task(
        self,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[TaskIn],
        actor: NamedDependency[Actor],
        tasks: NamedDependency[TaskService],
    ) -> TaskOut:
        return TaskOut.of(await tasks.create(actor, contact_id, data.model_dump(exclude_unset=True)))

    @get("/{task_id:uuid}", summary="Get a task")
    async def get_task(
        self,
        contact_id: FromPath[uuid.UUID],
        task_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        tasks: NamedDependency[TaskService],
    ) -> TaskOut:
        return TaskOut.of(await tasks.get(actor, contact_id, task_id))

    @patch("/{task_id:uuid}", summary="Change a task; completed: true completes it")
    async def update_task(
        self,
        contact_id: FromPath[uuid.UUID],
        task_id: FromPath[uuid.UUID],
        data: JSONBody[TaskPatch],
        actor: NamedDependency[Actor],
        tasks: NamedDependency[TaskService],
    ) -> TaskOut:
        changes = data.model_dump(exclude_unset=True)
        return TaskOut.of(await tasks.update(actor, contact_id, task_id, changes))

    @delete("/{task_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a task (soft)")
    async def delete_task(
        self,
        contact_id: FromPath[uuid.UUID],
        task_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        tasks: NamedDependency[TaskService],
    ) -> None:
        await tasks.delete(actor, contact_id, task_id)


class TasksController(Controller):
    path = "/tasks"
    tags = ["notes and tasks"]

    @get("/", summary="The location's tasks, soonest due first, undated last")
    async def list_tasks(
        self,
        actor: NamedDependency[Actor],
        tasks: NamedDependency[TaskService],
        page: NamedDependency[PageRequest],
        assignee_id: Annotated[
            str | None, QueryParameter(description="Only this user's tasks", schema_extra=UUID)
        ] = None,
        completed: Annotated[
            str | None,
            QueryParameter(description="true or false", schema_extra=BOOLEAN_TEXT),
        ] = None,
        due_before: Annotated[
            str | None,
            QueryParameter(
                description="Due strictly before this instant (ISO 8601 with offset)", schema_extra=INSTANT
            ),
        ] = None,
        due_after: Annotated[
            str | None,
            QueryParameter(
                description="Due at or after this instant (ISO 8601 with offset)", schema_extra=INSTANT
            ),
        ] = None,
    ) -> ListOf[TaskOut]:
        found = parse_task_filter(assignee_id, completed, due_before, due_after)
        return ListOf[TaskOut].model_validate(page_of(await tasks.list(actor, found, page), TaskOut.of))
