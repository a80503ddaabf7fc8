"""Steps changing the contact: tags, fields, owner, do-not-disturb (through the contacts and tags services
in the enrollment's transaction: their checks, audit rows and events commit with the ledger row; a
field change is a typed `ContactPatch`), and
notes and tasks (through their services, each in its own transaction, created with an id derived from
(enrollment, step, tick) so a repeat after a crash finds the first one)."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

from ghl_core.contacts.models import TEXT_FIELDS
from ghl_core.contacts.patch import ContactPatch
from ghl_core.notes.models import MAX_NOTE_BODY
from ghl_core.tasks.models import MAX_TASK_BODY, MAX_TASK_TITLE
from ghl_core.tenancy.permissions import Actor
from ghl_core.workflows.models import StepRunStatus
from ghl_core.workflows.reading import CUSTOM_PREFIX, Reader, is_scalar
from ghl_core.workflows.steps.base import (
    Jump,
    Outcome,
    Placement,
    Simulator,
    StepContext,
    StepHandler,
)
from ghl_core.workflows.values import TEMPLATE, Step, ref
from ghl_core.workflows.waits import WaitSpec, wake_time

DND_CHANNELS = ("sms", "email", "call", "whatsapp", "all")
# Contact fields an update_field step may set; tags, DND and the owner have their own steps.
UPDATABLE_FIELDS = frozenset({*TEXT_FIELDS, "email", "phone", "timezone", "date_of_birth"})


@dataclass(frozen=True, kw_only=True)
class AddTag(Step):
    TYPE = "add_tag"
    tags: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RemoveTag(Step):
    TYPE = "remove_tag"
    tags: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class UpdateField(Step):
    """Sets a standard contact field or `custom.KEY`. The value is checked against the field's definition
    when the step runs (definitions belong to the location, and merge fields are rendered first)."""

    TYPE = "update_field"
    field: str = field(metadata=ref("custom_field"))  # a standard field names nothing of the location
    # `field` above shadows dataclasses.field in this class body. Text values are rendered.
    value: str | int | float | bool | tuple[str, ...] | None = dataclasses.field(metadata=TEMPLATE)


@dataclass(frozen=True, kw_only=True)
class AssignUser(Step):
    TYPE = "assign_user"
    user_id: uuid.UUID = field(metadata=ref("user"))


@dataclass(frozen=True, kw_only=True)
class SetDnd(Step):
    TYPE = "dnd"
    channel: str
    on: bool


@dataclass(frozen=True, kw_only=True)
class AddNote(Step):
    TYPE = "add_note"
    body: str = field(metadata=TEMPLATE)


@dataclass(frozen=True, kw_only=True)
class CreateTask(Step):
    TYPE = "create_task"
    title: str = field(metadata=TEMPLATE)
    body: str | None = field(default=None, metadata=TEMPLATE)
    due_in: WaitSpec | None = field(default=None, metadata={"source": "due_in_json"})
    due_in_json: str | None = field(default=None, compare=False, repr=False, metadata={"skip": True})
    # None: the contact's assigned user
    assignee_id: uuid.UUID | None = field(default=None, metadata=ref("user"))


class _TagHandler(StepHandler[AddTag | RemoveTag]):
    refusable = True
    adding: bool

    def read(self, r: Reader) -> dict[str, Any]:
        return {"tags": r.tags("tags")}

    async def run(self, ctx: StepContext, step: AddTag | RemoveTag) -> Outcome:
        ctx.contact = await ctx.runner.services.tags.tag_contact_in(
            ctx.tx,
            Actor.operator_at(ctx.location.id),
            ctx.contact.id,
            add=list(step.tags) if self.adding else None,
            remove=None if self.adding else list(step.tags),
            location=ctx.location,
            contact=ctx.contact,
        )
        verb = "added" if self.adding else "removed"
        return Outcome(StepRunStatus.DONE, "done", f"tags {verb}: {', '.join(step.tags)}")


class AddTagHandler(_TagHandler):
    step = AddTag
    adding = True

    def simulate(self, sim: Simulator, step: AddTag | RemoveTag) -> Jump | None:
        added = [t for t in step.tags if t not in sim.contact["tags"]]
        sim.contact["tags"].extend(added)
        sim.note(step, "done", f"tags added: {', '.join(step.tags)}")
        return None


class RemoveTagHandler(_TagHandler):
    step = RemoveTag
    adding = False

    def simulate(self, sim: Simulator, step: AddTag | RemoveTag) -> Jump | None:
        sim.contact["tags"] = [t for t in sim.contact["tags"] if t not in step.tags]
        sim.note(step, "done", f"tags removed: {', '.join(step.tags)}")
        return None


class UpdateFieldHandler(StepHandler[UpdateField]):
    step = UpdateField
    refusable = True

    def read(self, r: Reader) -> dict[str, Any]:
        name = r.contact_field("field", UPDATABLE_FIELDS)
        value = r.get("value")
        if "value" not in r.raw:
            r.fail("value", "is required (null clears the field)")
        elif name is not None and not name.startswith(CUSTOM_PREFIX):
            if value is not None and not isinstance(value, str):
                r.fail("value", "must be a string or null for a standard field")
        elif isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                r.fail("value", "a list value must hold strings (options of a multiple-choice field)")
            value = tuple(value)
        elif not is_scalar(value):
            r.fail("value", "must be a number, text, true/false, a list of options or null")
        return {"field": name, "value": value}

    async def run(self, ctx: StepContext, step: UpdateField) -> Outcome:
        value: Any = list(step.value) if isinstance(step.value, tuple) else step.value
        if isinstance(value, str):
            value = await ctx.render(value, "/value")
        ctx.contact = await ctx.runner.services.contacts.patch_in(
            ctx.tx,
            Actor.operator_at(ctx.location.id),
            ctx.contact.id,
            ContactPatch.setting(step.field, value),
            location=ctx.location,
        )
        return Outcome(StepRunStatus.DONE, "done", f"{step.field} set")

    def simulate(self, sim: Simulator, step: UpdateField) -> Jump | None:
        value = list(step.value) if isinstance(step.value, tuple) else step.value
        if step.field.startswith(CUSTOM_PREFIX):
            sim.contact["custom_fields"][step.field.removeprefix(CUSTOM_PREFIX)] = value
        else:
            sim.contact[step.field] = value
        sim.note(step, "done", f"{step.field} set to {value!r}")
        return None


class AssignUserHandler(StepHandler[AssignUser]):
    step = AssignUser
    refusable = True

    def read(self, r: Reader) -> dict[str, Any]:
        return {"user_id": r.uuid("user_id")}

    async def run(self, ctx: StepContext, step: AssignUser) -> Outcome:
        ctx.contact = await ctx.runner.services.contacts.patch_in(
            ctx.tx,
            Actor.operator_at(ctx.location.id),
            ctx.contact.id,
            ContactPatch(assigned_user_id=step.user_id),
            location=ctx.location,
        )
        return Outcome(StepRunStatus.DONE, "done", f"assigned to {step.user_id}")


class SetDndHandler(StepHandler[SetDnd]):
    step = SetDnd
    refusable = True

    def read(self, r: Reader) -> dict[str, Any]:
        key: Any = "on"
        if "on" not in r.raw and True in r.raw:
            key = True  # YAML 1.1 reads an unquoted `on:` key as the boolean true
        r.seen.add(key)
        on = r.raw.get(key)
        if not isinstance(on, bool):
            r.fail("on", "is required: true turns do-not-disturb on, false turns it off")
        return {"channel": r.choice("channel", DND_CHANNELS), "on": on}

    async def run(self, ctx: StepContext, step: SetDnd) -> Outcome:
        if step.channel == "all":
            patch = ContactPatch(dnd=step.on)
        else:
            patch = ContactPatch(dnd_channels={**ctx.contact.dnd_channels, step.channel: step.on})
        ctx.contact = await ctx.runner.services.contacts.patch_in(
            ctx.tx, Actor.operator_at(ctx.location.id), ctx.contact.id, patch, location=ctx.location
        )
        state = "on" if step.on else "off"
        return Outcome(StepRunStatus.DONE, "done", f"do-not-disturb {state} for {step.channel}")

    def simulate(self, sim: Simulator, step: SetDnd) -> Jump | None:
        channels = ("sms", "email", "call", "whatsapp") if step.channel == "all" else (step.channel,)
        for channel in channels:
            sim.contact["dnd_channels"][channel] = step.on
        sim.note(step, "done", f"do-not-disturb {'on' if step.on else 'off'} for {step.channel}")
        return None


class AddNoteHandler(StepHandler[AddNote]):
    step = AddNote
    placement = Placement.OUTSIDE

    def read(self, r: Reader) -> dict[str, Any]:
        return {"body": r.text("body", MAX_NOTE_BODY, multiline=True)}

    async def run(self, ctx: StepContext, step: AddNote) -> Outcome:
        note = await ctx.runner.services.notes.create(
            Actor.operator_at(ctx.location.id),
            ctx.contact.id,
            {"body": await ctx.render(step.body, "/body")},
            id=ctx.effect_id(step),
        )
        return Outcome(StepRunStatus.DONE, "done", f"note {note.id}", output={"note_id": str(note.id)})


class CreateTaskHandler(StepHandler[CreateTask]):
    step = CreateTask
    placement = Placement.OUTSIDE

    def read(self, r: Reader) -> dict[str, Any]:
        due, source = r.wait("due_in", required=False, kinds=("duration",))
        return {
            "title": r.text("title", MAX_TASK_TITLE),
            "body": r.text("body", MAX_TASK_BODY, multiline=True, required=False),
            "due_in": due,
            "due_in_json": source,
            "assignee_id": r.uuid("assignee_id", required=False),
        }

    async def run(self, ctx: StepContext, step: CreateTask) -> Outcome:
        task_data: dict[str, Any] = {"title": await ctx.render(step.title, "/title")}
        if step.body:
            task_data["body"] = await ctx.render(step.body, "/body")
        if step.due_in is not None:
            task_data["due_at"] = wake_time(step.due_in, ctx.runner.clock.now(), ctx.zone(None))
        assignee = step.assignee_id or ctx.contact.assigned_user_id
        if assignee is not None:
            task_data["assignee_id"] = str(assignee)  # the task service's name, not the contact's
        task = await ctx.runner.services.tasks.create(
            Actor.operator_at(ctx.location.id), ctx.contact.id, task_data, id=ctx.effect_id(step)
        )
        return Outcome(StepRunStatus.DONE, "done", f"task {task.id}", output={"task_id": str(task.id)})
