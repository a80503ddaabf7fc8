"""Workflow definitions: the document an agency authors (JSON through the API, YAML through the CLI), checked
in one pass so every mistake is reported at once with a JSON pointer, and turned into immutable values the
engine runs.

Flow: steps run in list order; `next` on a step overrides the default (the following step, or the end after
the last step). Every place that names a step (`next`, a branch's `next`, `else`, a split path's `next`,
`timeout_next`, a goal's `then`) takes a step id or `"end"`; leaving it out means "carry on as usual", which
`Definition.after` resolves. The graph is checked statically: unknown targets, unreachable steps and loops
that contain no wait (a contact would spin forever) are errors.

Waits and condition groups keep the JSON they were authored as (canonical, `*_json` fields), so
`definition_json` gives back the document that parses to an equal definition.

What a step or trigger names outside the document is declared on its fields, not switched on by type:
`TEMPLATE` marks a member rendered as a template (`TEMPLATE_HTML` as e-mail HTML), `ref(kind)` a member
naming something outside the document (a user, a pipeline, a stage, a workflow, a custom field of the
location; a webhook's address). Parsing needs no database or network; publishing checks both
(workflows/references.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from datetime import date, datetime, time
from functools import cached_property
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

from ghl_core.contacts.fields import KNOWN_FIELDS, MAX_TAG, clean_tags, normalize_tag
from ghl_core.contacts.models import TEXT_FIELDS
from ghl_core.conversations.models import MAX_EMAIL_BODY, MAX_SMS_BODY, MAX_SUBJECT
from ghl_core.custom_fields.definitions import KEY_PATTERN
from ghl_core.notes.models import MAX_NOTE_BODY
from ghl_core.pipelines.models import OpportunityStatus
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.validation import MAX_NAME_LENGTH
from ghl_core.tasks.models import MAX_TASK_BODY, MAX_TASK_TITLE
from ghl_core.workflows.conditions import ConditionGroup, parse_condition_group, parse_split
from ghl_core.workflows.waits import ResumeWindow, WaitSpec, parse_wait

END = "end"  # a target meaning "finish the enrollment"; reserved, so no step may be called this
MAX_STEPS = 200
MAX_BRANCHES = 10
MAX_BRANCH_NAME = 100
MAX_NOTIFICATION = 10_000
MAX_URL = 2048
MAX_HEADERS = 50
MAX_HEADER_VALUE = 4096
MAX_WEBHOOK_BODY = 65_536
MAX_REMINDER_DAYS = 365
STEP_ID = re.compile(r"^[a-z0-9_-]{1,64}$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
# The HTTP client owns these: a workflow setting them could smuggle requests or break framing.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "te"})
# Contact fields an update_field step may set; tags, DND and the owner have their own steps.
UPDATABLE_FIELDS = frozenset({*TEXT_FIELDS, "email", "phone", "timezone", "date_of_birth"})
CUSTOM_PREFIX = "custom."
CHANNELS = ("sms", "email")
DND_CHANNELS = ("sms", "email", "call", "whatsapp", "all")
NOTIFY_CHANNELS = ("email", "sms", "in_app")
METHODS = ("POST", "PUT", "PATCH", "GET")
STATUSES = tuple(s.value for s in OpportunityStatus)

Json = Any

# Field metadata: see the module's docstring.
TEMPLATE: Mapping[str, Any] = {"template": "text"}
TEMPLATE_HTML: Mapping[str, Any] = {"template": "html"}


def ref(kind: str, *, within: str | None = None) -> dict[str, Any]:
    """A member naming something of the location; `within`: the member naming what it belongs to (a
    stage within the step's pipeline)."""
    return {"ref": kind, "within": within}


# --- values


@dataclass(frozen=True)
class Settings:
    allow_reentry: bool = False
    stop_on_reply: bool = False
    time_zone: Literal["contact", "location"] = "contact"
    send_window: ResumeWindow | None = None  # sends wait for this window; None sends at any time


@dataclass(frozen=True, kw_only=True)
class Trigger:
    """What enrolls a contact. Types without parameters use this class; the others subclass it."""

    type: str
    filters: ConditionGroup | None = field(default=None, metadata={"source": "filters_json"})
    filters_json: str | None = field(default=None, compare=False, repr=False, metadata={"skip": True})


@dataclass(frozen=True, kw_only=True)
class ContactChangedTrigger(Trigger):
    fields: tuple[str, ...] = ()  # empty: any field


@dataclass(frozen=True, kw_only=True)
class TagTrigger(Trigger):
    tag: str | None = None  # None: any tag


@dataclass(frozen=True, kw_only=True)
class ChannelTrigger(Trigger):
    channel: str | None = None  # None: any channel


@dataclass(frozen=True, kw_only=True)
class OpportunityTrigger(Trigger):
    pipeline_id: uuid.UUID | None = field(default=None, metadata=ref("pipeline"))
    stage_id: uuid.UUID | None = field(default=None, metadata=ref("stage", within="pipeline_id"))
    status: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReminderTrigger(Trigger):
    """Fires once a year (birthday) or once (custom date) at `at` local time, offset by whole days."""

    at: time
    field: str | None = dataclasses.field(default=None, metadata=ref("date_custom_field"))  # `custom.KEY`
    days_before: int = 0
    days_after: int = 0


@dataclass(frozen=True, kw_only=True)
class Step:
    TYPE: ClassVar[str]
    TAKES_NEXT: ClassVar[bool] = True

    id: str
    next: str | None = None  # None: the following step (or the end); END: finish here

    @property
    def type(self) -> str:
        return self.TYPE

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, kw_only=True)
class SendSms(Step):
    TYPE = "send_sms"
    body: str = field(metadata=TEMPLATE)
    marketing: bool = False

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {"body": r.text("body", MAX_SMS_BODY, multiline=True), "marketing": r.flag("marketing")}


@dataclass(frozen=True, kw_only=True)
class SendEmail(Step):
    TYPE = "send_email"
    subject: str = field(metadata=TEMPLATE)
    body: str | None = field(default=None, metadata=TEMPLATE)  # the text part
    html: str | None = field(default=None, metadata=TEMPLATE_HTML)
    marketing: bool = False

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        out = {
            "subject": r.text("subject", MAX_SUBJECT),
            "body": r.text("body", MAX_EMAIL_BODY, multiline=True, required=False),
            "html": r.text("html", MAX_EMAIL_BODY, multiline=True, required=False),
            "marketing": r.flag("marketing"),
        }
        if r.raw.get("body") in (None, "") and r.raw.get("html") in (None, ""):
            r.fail("body", "an email needs a body, an html body or both")
        return out


@dataclass(frozen=True, kw_only=True)
class InternalNotification(Step):
    TYPE = "internal_notification"
    channel: str
    body: str = field(metadata=TEMPLATE)
    user_id: uuid.UUID | None = field(default=None, metadata=ref("user"))  # None: the contact's assigned user

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {
            "channel": r.choice("channel", NOTIFY_CHANNELS),
            "body": r.text("body", MAX_NOTIFICATION, multiline=True),
            "user_id": r.uuid("user_id", required=False),
        }


@dataclass(frozen=True, kw_only=True)
class AddTag(Step):
    TYPE = "add_tag"
    tags: tuple[str, ...]

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {"tags": r.tags("tags")}


@dataclass(frozen=True, kw_only=True)
class RemoveTag(Step):
    TYPE = "remove_tag"
    tags: tuple[str, ...]

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {"tags": r.tags("tags")}


@dataclass(frozen=True, kw_only=True)
class UpdateField(Step):
    """Sets a standard contact field or `custom.KEY`. The value is checked against the field's definition
    when the step runs (definitions belong to the location, and merge fields are rendered first)."""

    TYPE = "update_field"
    field: str = field(metadata=ref("custom_field"))  # a standard field names nothing of the location
    # `field` above shadows dataclasses.field in this class body. Text values are rendered.
    value: str | int | float | bool | tuple[str, ...] | None = dataclasses.field(metadata=TEMPLATE)

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
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
        elif not _is_scalar(value):
            r.fail("value", "must be a number, text, true/false, a list of options or null")
        return {"field": name, "value": value}


@dataclass(frozen=True, kw_only=True)
class AssignUser(Step):
    TYPE = "assign_user"
    user_id: uuid.UUID = field(metadata=ref("user"))

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {"user_id": r.uuid("user_id")}


@dataclass(frozen=True, kw_only=True)
class AddNote(Step):
    TYPE = "add_note"
    body: str = field(metadata=TEMPLATE)

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {"body": r.text("body", MAX_NOTE_BODY, multiline=True)}


@dataclass(frozen=True, kw_only=True)
class CreateTask(Step):
    TYPE = "create_task"
    title: str = field(metadata=TEMPLATE)
    body: str | None = field(default=None, metadata=TEMPLATE)
    due_in: WaitSpec | None = field(default=None, metadata={"source": "due_in_json"})
    due_in_json: str | None = field(default=None, compare=False, repr=False, metadata={"skip": True})
    # None: the contact's assigned user
    assignee_id: uuid.UUID | None = field(default=None, metadata=ref("user"))

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        due, source = r.wait("due_in", required=False, kinds=("duration",))
        return {
            "title": r.text("title", MAX_TASK_TITLE),
            "body": r.text("body", MAX_TASK_BODY, multiline=True, required=False),
            "due_in": due,
            "due_in_json": source,
            "assignee_id": r.uuid("assignee_id", required=False),
        }


@dataclass(frozen=True, kw_only=True)
class CreateOpportunity(Step):
    TYPE = "create_opportunity"
    pipeline_id: uuid.UUID = field(metadata=ref("pipeline"))
    stage_id: uuid.UUID = field(metadata=ref("stage", within="pipeline_id"))
    name: str | None = None  # None: the contact's name
    value: int | None = None  # minor units of the location's currency
    status: str = "open"

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {
            "pipeline_id": r.uuid("pipeline_id"),
            "stage_id": r.uuid("stage_id"),
            "name": r.text("name", MAX_NAME_LENGTH, required=False),
            "value": r.integer("value", 0, 2**53 - 1, default=None),
            "status": r.choice("status", STATUSES, default="open"),
        }


@dataclass(frozen=True, kw_only=True)
class MoveStage(Step):
    TYPE = "move_stage"
    pipeline_id: uuid.UUID = field(metadata=ref("pipeline"))
    stage_id: uuid.UUID = field(metadata=ref("stage", within="pipeline_id"))

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {"pipeline_id": r.uuid("pipeline_id"), "stage_id": r.uuid("stage_id")}


@dataclass(frozen=True, kw_only=True)
class SetOpportunityStatus(Step):
    TYPE = "set_opportunity_status"
    status: str

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {"status": r.choice("status", STATUSES)}


@dataclass(frozen=True, kw_only=True)
class AddToWorkflow(Step):
    TYPE = "add_to_workflow"
    workflow_id: uuid.UUID = field(metadata=ref("workflow"))

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {"workflow_id": r.uuid("workflow_id")}


@dataclass(frozen=True, kw_only=True)
class RemoveFromWorkflow(Step):
    TYPE = "remove_from_workflow"
    workflow_id: uuid.UUID = field(metadata=ref("workflow"))

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        return {"workflow_id": r.uuid("workflow_id")}


@dataclass(frozen=True, kw_only=True)
class Webhook(Step):
    """An outbound call. The address is checked against private networks when the step runs (it may hold
    merge fields), and at publish when its scheme and host hold none; here only its shape. The body is
    canonical JSON text, so the step stays immutable."""

    TYPE = "webhook"
    url: str = field(metadata={**TEMPLATE, **ref("url")})
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = field(default=(), metadata={"pairs": True, **TEMPLATE})
    body_json: str | None = field(default=None, metadata={"json": True, "key": "body", **TEMPLATE})

    @property
    def body(self) -> Json:
        """A fresh copy of the JSON body (merge fields still unrendered), or None."""
        return None if self.body_json is None else json.loads(self.body_json)

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        method = r.choice("method", METHODS, default="POST")
        body = r.get("body")
        body_json = None
        if body is not None:
            if method == "GET":
                r.fail("body", "a GET request has no body")
            body_json = r.canonical("body", body, MAX_WEBHOOK_BODY)
        return {
            "url": r.url("url"),
            "method": method,
            "headers": r.headers("headers"),
            "body_json": body_json,
        }


@dataclass(frozen=True, kw_only=True)
class SetDnd(Step):
    TYPE = "dnd"
    channel: str
    on: bool

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        key: Any = "on"
        if "on" not in r.raw and True in r.raw:
            key = True  # YAML 1.1 reads an unquoted `on:` key as the boolean true
        r.seen.add(key)
        on = r.raw.get(key)
        if not isinstance(on, bool):
            r.fail("on", "is required: true turns do-not-disturb on, false turns it off")
        return {"channel": r.choice("channel", DND_CHANNELS), "on": on}


@dataclass(frozen=True, kw_only=True)
class Wait(Step):
    TYPE = "wait"
    wait: WaitSpec = field(metadata={"source": "wait_json"})
    wait_json: str = field(compare=False, repr=False, metadata={"skip": True})
    timeout_next: str | None = None  # event waits with a timeout: where to go when it expires

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        spec, source = r.wait("wait")
        timeout_next = r.target("timeout_next")
        if timeout_next is not None and spec is not None and (spec.kind != "event" or spec.timeout is None):
            r.fail("timeout_next", "only an event wait with a timeout has a timeout branch")
        return {"wait": spec, "wait_json": source, "timeout_next": timeout_next}


@dataclass(frozen=True, kw_only=True)
class Branch:
    name: str
    when: ConditionGroup = field(metadata={"source": "when_json"})
    when_json: str = field(compare=False, repr=False, metadata={"skip": True})
    next: str | None = None


@dataclass(frozen=True, kw_only=True)
class IfElse(Step):
    """The first branch whose conditions hold wins; otherwise `else` (None: carry on as usual)."""

    TYPE = "if_else"
    branches: tuple[Branch, ...]
    else_: str | None = field(default=None, metadata={"key": "else"})

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        branches: list[Branch] = []
        names: set[str] = set()
        for sub in r.items("branches", 1, MAX_BRANCHES):
            name = sub.text("name", MAX_BRANCH_NAME)
            if name is not None and name.casefold() in names:
                sub.fail("name", "another branch of this step has the same name")
            names.add((name or "").casefold())
            when, source = sub.condition("when")
            target = sub.target("next")
            sub.finish("branch")
            if not sub.failed:
                branches.append(Branch(name=str(name), when=when, when_json=str(source), next=target))
        return {"branches": tuple(branches), "else_": r.target("else")}


@dataclass(frozen=True, kw_only=True)
class Goal(Step):
    """When `event` happens, an enrollment anywhere in the workflow jumps here and goes on to `then`
    (None: the step after the goal; END: finish). Reached in the normal flow, it simply carries on."""

    TYPE = "goal"
    event: WaitSpec = field(metadata={"source": "event_json"})
    event_json: str = field(compare=False, repr=False, metadata={"skip": True})
    then: str | None = None

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        spec, source = r.wait("event", kinds=("event",))
        if spec is not None and (spec.timeout is not None or spec.window is not None):
            r.fail("event", "a goal event has no timeout and no window")
        return {"event": spec, "event_json": source, "then": r.target("then")}


@dataclass(frozen=True, kw_only=True)
class SplitPath:
    percent: int
    next: str | None = None


@dataclass(frozen=True, kw_only=True)
class Split(Step):
    """A split test: `split_bucket` picks a path per contact, deterministically."""

    TYPE = "split"
    paths: tuple[SplitPath, ...]

    @property
    def percentages(self) -> list[int]:
        return [p.percent for p in self.paths]

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        raw = r.get("paths")
        percentages = r.nested("paths", raw, parse_split)
        paths: list[SplitPath] = []
        if isinstance(raw, list):
            for i, item in enumerate(raw):
                if not isinstance(item, Mapping):
                    r.errors.append(FieldError(f"{r.at('paths')}/{i}", "must be an object {percent, next}"))
                    continue
                sub = r.child(item, f"{r.at('paths')}/{i}")
                sub.seen.add("percent")  # checked by parse_split
                target = sub.target("next")
                sub.finish("split path")
                if percentages is not None and not sub.failed:
                    paths.append(SplitPath(percent=percentages[i], next=target))
        return {"paths": tuple(paths)}


@dataclass(frozen=True, kw_only=True)
class Goto(Step):
    TYPE = "goto"
    TAKES_NEXT = False
    step: str

    @classmethod
    def _read(cls, r: _Reader) -> dict[str, Any]:
        target = r.target("step", allow_end=False)
        if target is None and not r.failed:
            r.fail("step", "is required: the id of the step to go to")
        return {"step": target}


@dataclass(frozen=True, kw_only=True)
class End(Step):
    TYPE = "end"
    TAKES_NEXT = False


STEP_TYPES: dict[str, type[Step]] = {
    cls.TYPE: cls
    for cls in (
        SendSms,
        SendEmail,
        InternalNotification,
        AddTag,
        RemoveTag,
        UpdateField,
        AssignUser,
        AddNote,
        CreateTask,
        CreateOpportunity,
        MoveStage,
        SetOpportunityStatus,
        AddToWorkflow,
        RemoveFromWorkflow,
        Webhook,
        SetDnd,
        Wait,
        IfElse,
        Goal,
        Split,
        Goto,
        End,
    )
}


@dataclass(frozen=True)
class Definition:
    name: str
    settings: Settings
    triggers: tuple[Trigger, ...]
    steps: tuple[Step, ...]

    @cached_property
    def index(self) -> Mapping[str, int]:
        """Step id -> position in `steps`."""
        return {s.id: i for i, s in enumerate(self.steps)}

    def step(self, step_id: str) -> Step:
        """The step with this id; KeyError when there is none."""
        return self.steps[self.index[step_id]]

    def after(self, step_id: str, target: str | None) -> str | None:
        """Resolves a target named on `step_id` (a branch, a path, `else`, `then`, `timeout_next`): None
        carries on as usual (the step's `next`, else the following step), END or the last step's default
        finishes (None)."""
        if target is None:
            position = self.index[step_id]
            target = self.steps[position].next
            if target is None:
                return self.steps[position + 1].id if position + 1 < len(self.steps) else None
        return None if target == END else target

    def next_of(self, step_id: str) -> str | None:
        """The step after `step_id` when the step does not choose otherwise: a goto's target, nothing after
        an end, an if/else's `else` (or the following step); None means the enrollment is finished."""
        step = self.step(step_id)
        if isinstance(step, Goto):
            return step.step
        if isinstance(step, End):
            return None
        if isinstance(step, IfElse):
            return self.after(step_id, step.else_)
        return self.after(step_id, None)


# --- reading


def _escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _json_default(value: object) -> str:
    """YAML gives dates and times as objects; the JSON form of the document keeps them as ISO text."""
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    raise TypeError(type(value).__name__)


class _Reader:
    """Reads the members of one object, appending an error per bad member, and remembers which members
    it looked at so unknown ones are reported too (a misspelt key would otherwise be silently ignored)."""

    def __init__(self, raw: Mapping[Any, Any], pointer: str, errors: list[FieldError], refs: _Refs) -> None:
        self.raw = raw
        self.pointer = pointer
        self.errors = errors
        self.refs = refs
        self.seen: set[Any] = set()
        self.start = len(errors)

    @property
    def failed(self) -> bool:
        return len(self.errors) > self.start

    def at(self, key: str) -> str:
        return f"{self.pointer}/{_escape(key)}"

    def fail(self, key: str, detail: str) -> None:
        self.errors.append(FieldError(self.at(key), detail))

    def child(self, raw: Mapping[Any, Any], pointer: str) -> _Reader:
        return _Reader(raw, pointer, self.errors, self.refs)

    def get(self, key: str) -> Any:
        self.seen.add(key)
        return self.raw.get(key)

    def finish(self, what: str) -> None:
        for key in self.raw:
            if key not in self.seen:
                self.errors.append(
                    FieldError(f"{self.pointer}/{_escape(key)}", f"is not a member of a {what}")
                )

    def text(self, key: str, limit: int, *, required: bool = True, multiline: bool = False) -> str | None:
        value = self.get(key)
        if value is None or (not required and value == ""):
            if required:
                self.fail(key, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, "must be a non-blank string")
            return None
        if not multiline:
            value = value.strip()
            if not value.isprintable():
                self.fail(key, "must be a single line of printable text")
                return None
        if len(value) > limit:
            self.fail(key, f"must be at most {limit} characters")
            return None
        return value

    def flag(self, key: str) -> bool:
        value = self.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
            return False
        return value

    def choice(self, key: str, options: tuple[str, ...], *, default: str | None = None) -> Any:
        value = self.get(key)
        if value is None and default is not None:
            return default
        if value not in options:
            self.fail(key, f"must be one of {', '.join(options)}")
            return None
        return value

    def optional_choice(self, key: str, options: tuple[str, ...]) -> str | None:
        return None if self.get(key) is None else self.choice(key, options)

    def integer(self, key: str, low: int, high: int, *, default: int | None) -> int | None:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.fail(key, f"must be a whole number from {low} to {high}")
            return default
        return value

    def uuid(self, key: str, *, required: bool = True) -> uuid.UUID | None:
        value = self.get(key)
        if value is None:
            if required:
                self.fail(key, "is required")
            return None
        try:
            return uuid.UUID(value)
        except (ValueError, TypeError, AttributeError):
            self.fail(key, "must be an id (a UUID)")
            return None

    def clock(self, key: str) -> time | None:
        value = self.get(key)
        if isinstance(value, str) and (match := _CLOCK.match(value)):
            return time(int(match[1]), int(match[2]))
        hint = " (quote it in YAML: 9:30 unquoted is read as a number)" if isinstance(value, int) else ""
        self.fail(key, f'must be a time of day "HH:MM" (24-hour){hint}')
        return None

    def target(self, key: str, *, allow_end: bool = True) -> str | None:
        value = self.get(key)
        if value is None:
            return None
        if value == END and allow_end:
            return END
        if not isinstance(value, str) or not STEP_ID.match(value):
            self.fail(key, 'must be a step id or "end"' if allow_end else "must be a step id")
            return None
        self.refs.append((self.at(key), value))
        return value

    def tags(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        tags = clean_tags(value, self.at(key), self.errors)
        if isinstance(value, list) and not value:
            self.fail(key, "must name at least one tag")
        return tuple(tags)

    def contact_field(self, key: str, standard: frozenset[str]) -> str | None:
        value = self.get(key)
        if _is_contact_field(value, standard):
            return str(value)
        self.fail(key, _FIELD_HINT)
        return None

    def url(self, key: str) -> str | None:
        value = self.text(key, MAX_URL)
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
                self.fail(key, "must be an absolute http or https URL")
                return None
        return value

    def headers(self, key: str) -> tuple[tuple[str, str], ...]:
        value = self.get(key)
        if value is None:
            return ()
        if not isinstance(value, Mapping) or len(value) > MAX_HEADERS:
            self.fail(key, f"must be an object of at most {MAX_HEADERS} header names and values")
            return ()
        pairs: list[tuple[str, str]] = []
        for name, text in value.items():
            here = f"{self.at(key)}/{_escape(name)}"
            if not isinstance(name, str) or not _HEADER_NAME.match(name):
                self.errors.append(FieldError(here, "is not a valid header name"))
            elif name.lower() in _RESERVED_HEADERS:
                self.errors.append(FieldError(here, "is set by the HTTP client and cannot be overridden"))
            elif not isinstance(text, str) or len(text) > MAX_HEADER_VALUE or not text.isprintable():
                self.errors.append(FieldError(here, f"must be printable text of at most {MAX_HEADER_VALUE}"))
            else:
                pairs.append((name, text))
        return tuple(pairs)

    def canonical(self, key: str, value: Any, limit: int) -> str | None:
        """The value as canonical JSON text, or an error when it is not plain JSON."""
        try:
            text = json.dumps(
                value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_json_default
            )
        except (TypeError, ValueError):
            self.fail(key, "must be plain JSON (objects, lists, text, numbers, true/false, null)")
            return None
        if len(text) > limit:
            self.fail(key, f"must be at most {limit} characters as JSON")
            return None
        return text

    def nested(self, key: str, value: Any, parse: Callable[[Any, str], _T]) -> _T | None:
        """Runs another module's parser, folding its errors into ours."""
        try:
            return parse(value, self.at(key))
        except ValidationFailed as failure:
            self.errors.extend(failure.errors)
            return None

    def wait(
        self, key: str, *, required: bool = True, kinds: tuple[str, ...] = ("duration", "until", "event")
    ) -> tuple[Any, str | None]:
        value = self.get(key)
        if value is None and not required:
            return None, None
        if not isinstance(value, Mapping):
            self.fail(
                key, "is required: an object such as {days: 1}" if value is None else "must be an object"
            )
            return None, None
        spec = self.nested(key, value, parse_wait)
        if spec is None:
            return None, None
        if spec.kind not in kinds:
            examples = {"duration": "{days: 1}", "event": "{event: tag.added, tag: vip}"}
            self.fail(key, "must be " + " or ".join(f"{k} such as {examples.get(k, k)}" for k in kinds))
            return None, None
        return spec, self.canonical(key, value, MAX_WEBHOOK_BODY)

    def condition(self, key: str, *, required: bool = True) -> tuple[Any, str | None]:
        value = self.get(key)
        if value is None and not required:
            return None, None
        if value is None:
            self.fail(key, "is required: a condition group such as {all: [...]}")
            return None, None
        group = self.nested(key, value, parse_condition_group)
        if group is None:
            return None, None
        return group, self.canonical(key, value, MAX_WEBHOOK_BODY)

    def items(self, key: str, low: int, high: int) -> Iterator[_Reader]:
        """A reader per object of a list member of `low` to `high` objects."""
        value = self.get(key)
        if not isinstance(value, list) or not low <= len(value) <= high:
            self.fail(key, f"must be a list of {low} to {high} items")
            return
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                self.errors.append(FieldError(f"{self.at(key)}/{i}", "must be an object"))
                continue
            yield self.child(item, f"{self.at(key)}/{i}")


_T = TypeVar("_T")


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return value == value  # NaN never equals itself: it could not round-trip
    return value is None or isinstance(value, str | int | bool)


_FIELD_HINT = "must be a contact field (e.g. first_name) or custom.KEY for a custom field"


def _is_contact_field(value: object, standard: frozenset[str]) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith(CUSTOM_PREFIX):
        return bool(KEY_PATTERN.match(value.removeprefix(CUSTOM_PREFIX)))
    return value in standard


_Refs = list[tuple[str, str]]  # (pointer of the member, step id it names)


# --- triggers


def _read_tag(r: _Reader) -> dict[str, Any]:
    value = r.get("tag")
    if value is None:
        return {}
    tag = normalize_tag(value) if isinstance(value, str) else ""
    if not tag or len(tag) > MAX_TAG or not tag.isprintable():
        r.fail("tag", f"must be a tag name of at most {MAX_TAG} characters")
        return {}
    return {"tag": tag}


def _read_channel(options: tuple[str, ...]) -> Callable[[_Reader], dict[str, Any]]:
    return lambda r: {"channel": r.optional_choice("channel", options)}


def _read_contact_changed(r: _Reader) -> dict[str, Any]:
    names = r.get("fields")
    if names is None:
        return {}
    if not isinstance(names, list) or not names:
        r.fail("fields", "must be a non-empty list of contact fields")
        return {}
    out: list[str] = []
    for i, name in enumerate(names):
        if not _is_contact_field(name, KNOWN_FIELDS):
            r.errors.append(FieldError(f"{r.at('fields')}/{i}", _FIELD_HINT))
        elif name not in out:
            out.append(name)
    return {"fields": tuple(out)}


def _read_opportunity(r: _Reader, *, status: bool = False, stage: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"pipeline_id": r.uuid("pipeline_id", required=False)}
    if stage:
        out["stage_id"] = r.uuid("stage_id", required=False)
        if out["stage_id"] is not None and out["pipeline_id"] is None and not r.failed:
            r.fail("pipeline_id", "is required with stage_id")
    if status:
        out["status"] = r.optional_choice("status", STATUSES)
    return out


def _read_reminder(r: _Reader, *, custom: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "at": r.clock("at"),
        "days_before": r.integer("days_before", 0, MAX_REMINDER_DAYS, default=0),
        "days_after": r.integer("days_after", 0, MAX_REMINDER_DAYS, default=0),
    }
    if out["days_before"] and out["days_after"]:
        r.fail("days_after", "give days_before or days_after, not both")
    if custom:
        value = r.get("field")
        if not _is_contact_field(value, frozenset()):
            r.fail("field", "must name a date custom field as custom.KEY")
        out["field"] = value
    return out


# Each trigger type: its class and the reader of its own members (`type` and `filters` are common). A new
# context (appointments, forms, payments) adds its triggers here, a line or two each.
TRIGGER_TYPES: dict[str, tuple[type[Trigger], Callable[[_Reader], dict[str, Any]]]] = {
    "contact_created": (Trigger, lambda r: {}),
    "contact_changed": (ContactChangedTrigger, _read_contact_changed),
    "tag_added": (TagTrigger, _read_tag),
    "tag_removed": (TagTrigger, _read_tag),
    "dnd_changed": (ChannelTrigger, _read_channel(DND_CHANNELS)),
    "note_added": (Trigger, lambda r: {}),
    "task_added": (Trigger, lambda r: {}),
    "task_completed": (Trigger, lambda r: {}),
    "customer_replied": (ChannelTrigger, _read_channel(CHANNELS)),
    "opportunity_created": (OpportunityTrigger, lambda r: _read_opportunity(r, status=False, stage=True)),
    "pipeline_stage_changed": (OpportunityTrigger, lambda r: _read_opportunity(r, status=False, stage=True)),
    "opportunity_status_changed": (
        OpportunityTrigger,
        lambda r: _read_opportunity(r, status=True, stage=False),
    ),
    "birthday_reminder": (ReminderTrigger, lambda r: _read_reminder(r, custom=False)),
    "custom_date_reminder": (ReminderTrigger, lambda r: _read_reminder(r, custom=True)),
    "inbound_webhook": (Trigger, lambda r: {}),
    "manual": (Trigger, lambda r: {}),
}


# --- documents

MAX_TRIGGERS = 20
ZONES = ("contact", "location")


def parse_definition(raw: Mapping[str, Any]) -> Definition:
    """Checks a whole workflow document and returns its immutable form. Raises one ValidationFailed naming
    every bad member; the graph (loops, unreachable steps) is checked once the steps themselves are valid,
    as its errors would only echo theirs."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed.one("", "a workflow definition must be an object")
    errors: list[FieldError] = []
    refs: _Refs = []
    r = _Reader(raw, "", errors, refs)
    name = r.text("name", MAX_NAME_LENGTH)
    settings = _read_settings(r)
    triggers = _read_triggers(r)
    steps, ids = _read_steps(r)
    r.finish("workflow definition")
    for pointer, target in refs:
        if target not in ids:
            errors.append(FieldError(pointer, f'names no step: there is no step with id "{target}"'))
    if errors:
        raise ValidationFailed(errors)
    defn = Definition(str(name), settings, tuple(triggers), tuple(s for s in steps if s is not None))
    errors.extend(_graph_errors(defn))
    if errors:
        raise ValidationFailed(errors)
    return defn


def _read_settings(r: _Reader) -> Settings:
    value = r.get("settings")
    if value is None:
        return Settings()
    if not isinstance(value, Mapping):
        r.fail("settings", "must be an object")
        return Settings()
    sub = r.child(value, "/settings")
    settings = Settings(
        allow_reentry=sub.flag("allow_reentry"),
        stop_on_reply=sub.flag("stop_on_reply"),
        time_zone=sub.choice("time_zone", ZONES, default="contact"),
        send_window=_read_window(sub, "send_window"),
    )
    sub.finish("settings object")
    return settings


def _read_window(r: _Reader, key: str) -> ResumeWindow | None:
    """Same rules as a wait's window: days default to every day, no hours means whole days, and `from`
    after `to` wraps midnight."""
    value = r.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        r.fail(key, "must be an object {days, from, to}")
        return None
    sub = r.child(value, r.at(key))
    days = sub.get("days")
    weekdays = set(range(7))
    if days is not None:
        if not isinstance(days, list) or not days:
            sub.fail("days", f"must be a non-empty list of week days ({', '.join(WEEKDAYS)})")
        else:
            weekdays = {WEEKDAYS.index(d) for d in days if d in WEEKDAYS}
            for i, day in enumerate(days):
                if day not in WEEKDAYS:
                    sub.errors.append(
                        FieldError(f"{sub.at('days')}/{i}", f"must be one of {', '.join(WEEKDAYS)}")
                    )
    start = end = time(0)
    if sub.get("from") is not None or sub.get("to") is not None:
        start, end = sub.clock("from") or time(0), sub.clock("to") or time(0)
        if start == end and not sub.failed:
            sub.fail("to", "must differ from from (leave both out for whole days)")
    sub.finish("time window")
    return None if sub.failed else ResumeWindow(weekdays=frozenset(weekdays), start=start, end=end)


def _read_triggers(r: _Reader) -> list[Trigger]:
    value = r.get("triggers")
    if not isinstance(value, list) or not value or len(value) > MAX_TRIGGERS:
        r.fail(
            "triggers",
            f"must be a list of 1 to {MAX_TRIGGERS} triggers (a workflow enrolled only by hand has "
            "[{type: manual}])",
        )
        return []
    out: list[Trigger] = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            r.errors.append(FieldError(f"/triggers/{i}", "must be an object with a type"))
            continue
        sub = r.child(item, f"/triggers/{i}")
        kind = sub.get("type")
        entry = TRIGGER_TYPES.get(kind) if isinstance(kind, str) else None
        if entry is None:
            sub.fail("type", f"must be one of {', '.join(TRIGGER_TYPES)}")
            continue
        cls, read = entry
        params = read(sub)
        filters, source = sub.condition("filters", required=False)
        sub.finish(f"{kind} trigger")
        if not sub.failed:
            out.append(cls(type=str(kind), filters=filters, filters_json=source, **params))
    return out


def _read_steps(r: _Reader) -> tuple[list[Step | None], dict[str, int]]:
    value = r.get("steps")
    ids: dict[str, int] = {}
    if not isinstance(value, list) or not value or len(value) > MAX_STEPS:
        r.fail("steps", f"must be a list of 1 to {MAX_STEPS} steps")
        return [], ids
    return [_read_step(r, item, i, ids) for i, item in enumerate(value)], ids


def _read_step(r: _Reader, raw: Any, i: int, ids: dict[str, int]) -> Step | None:
    if not isinstance(raw, Mapping):
        r.errors.append(FieldError(f"/steps/{i}", "must be an object with an id and a type"))
        return None
    sub = r.child(raw, f"/steps/{i}")
    step_id = sub.get("id")
    if not isinstance(step_id, str) or not STEP_ID.match(step_id):
        sub.fail("id", "must be 1 to 64 characters of a-z, 0-9, _ and -")
    elif step_id == END:
        sub.fail("id", '"end" is reserved: it names the end of the workflow')
    elif step_id in ids:
        sub.fail("id", f"is already the id of step {ids[step_id]}")
    else:
        ids[step_id] = i
    kind = sub.get("type")
    cls = STEP_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        sub.fail("type", f"must be one of {', '.join(STEP_TYPES)}")
        return None
    target = sub.target("next")
    if target is not None and not cls.TAKES_NEXT:
        sub.fail("next", f"a {kind} step has no next")
    params = cls._read(sub)
    if cls is Goto and params["step"] == step_id:
        sub.fail("step", "a goto cannot go to itself")
    sub.finish(f"{kind} step")
    return None if sub.failed else cls(id=str(step_id), next=target, **params)


# --- graph

_Edge = tuple[
    str | None, str
]  # (step id it leads to or None for the end, pointer of the member that says so)


def _flow(defn: Definition, i: int) -> list[_Edge]:
    """Where step i can lead in the normal flow, each with the pointer of the member that sends it there."""
    step = defn.steps[i]
    here = f"/steps/{i}"
    fallthrough = f"{here}/next" if step.next is not None else here

    def via(target: str | None, pointer: str) -> _Edge:
        return defn.after(step.id, target), pointer if target is not None else fallthrough

    match step:
        case Goto():
            return [(step.step, f"{here}/step")]
        case End():
            return []
        case IfElse():
            edges = [via(b.next, f"{here}/branches/{k}/next") for k, b in enumerate(step.branches)]
            return [*edges, via(step.else_, f"{here}/else")]
        case Split():
            return [via(p.next, f"{here}/paths/{k}/next") for k, p in enumerate(step.paths)]
        case Wait() if step.wait.kind == "event" and step.wait.timeout is not None:
            return [via(None, here), via(step.timeout_next, f"{here}/timeout_next")]
        case _:
            return [via(None, here)]


def _graph_errors(defn: Definition) -> list[FieldError]:
    flow = [_flow(defn, i) for i in range(len(defn.steps))]
    goals = {i: s for i, s in enumerate(defn.steps) if isinstance(s, Goal)}
    # A goal is entered whenever its event happens, from wherever the contact is.
    jumps = {i: defn.after(s.id, s.then) for i, s in goals.items()}
    errors: list[FieldError] = []
    reached: set[int] = set()
    pending = [0, *goals]
    while pending:
        i = pending.pop()
        if i in reached:
            continue
        reached.add(i)
        targets = [t for t, _ in flow[i]] + ([jumps[i]] if i in jumps else [])
        pending.extend(defn.index[t] for t in targets if t is not None)
    for i, step in enumerate(defn.steps):
        if i not in reached:
            errors.append(
                FieldError(
                    f"/steps/{i}", f'"{step.id}" is never reached: no step, branch or goto leads to it'
                )
            )
    errors.extend(_loop_errors(defn, flow))
    return errors


def _loop_errors(defn: Definition, flow: list[list[_Edge]]) -> list[FieldError]:
    """A loop through steps none of which waits would run a contact round it forever, sending each time.
    Strongly connected components of the graph without wait steps are exactly those loops."""
    waits = {i for i, s in enumerate(defn.steps) if isinstance(s, Wait)}
    graph: dict[int, list[tuple[int, str]]] = {
        i: [(defn.index[t], p) for t, p in flow[i] if t is not None and defn.index[t] not in waits]
        for i in range(len(defn.steps))
        if i not in waits
    }
    errors: list[FieldError] = []
    for component in _components(graph):
        members = set(component)
        inner = [(i, j, p) for i in sorted(members) for j, p in graph[i] if j in members]
        if len(members) == 1 and not inner:
            continue
        # Point at the member that closes the loop: a goto if there is one, else a link going backwards.
        gotos = [e for e in inner if isinstance(defn.steps[e[0]], Goto)]
        closing = gotos or [e for e in inner if e[1] <= e[0]]
        names = ", ".join(defn.steps[i].id for i in sorted(members))
        errors.append(
            FieldError(
                closing[0][2],
                f"makes a loop with no wait step in it ({names}): a contact would go round it forever",
            )
        )
    return errors


def _components(graph: dict[int, list[tuple[int, str]]]) -> list[list[int]]:
    """Tarjan's strongly connected components (at most MAX_STEPS nodes, so recursion is shallow)."""
    order: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    found: list[list[int]] = []

    def visit(v: int) -> None:
        order[v] = low[v] = len(order)
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph[v]:
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component: list[int] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            found.append(component)

    for v in sorted(graph):
        if v not in order:
            visit(v)
    return found


# --- writing


def definition_json(defn: Definition) -> dict[str, Any]:
    """The document form of a definition (JSON-ready; what `ghl workflows export` writes):
    `parse_definition(definition_json(d)) == d`."""
    settings: dict[str, Any] = {
        "allow_reentry": defn.settings.allow_reentry,
        "stop_on_reply": defn.settings.stop_on_reply,
        "time_zone": defn.settings.time_zone,
    }
    window = defn.settings.send_window
    if window is not None:
        settings["send_window"] = {"days": [WEEKDAYS[d] for d in sorted(window.weekdays)]}
        if window.start != window.end:
            settings["send_window"] |= {"from": _plain(window.start), "to": _plain(window.end)}
    return {
        "name": defn.name,
        "settings": settings,
        "triggers": [_dump(t) for t in defn.triggers],
        "steps": [{"id": s.id, "type": s.TYPE, **_dump(s)} for s in defn.steps],
    }


def _dump(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        meta = f.metadata
        value = getattr(obj, f.name)
        if meta.get("skip") or f.name == "id" or (f.default is not MISSING and value == f.default):
            continue
        key = meta.get("key", f.name)
        if "source" in meta:
            out[key] = json.loads(getattr(obj, meta["source"]))
        elif meta.get("json"):
            out[key] = json.loads(value)
        elif meta.get("pairs"):
            out[key] = dict(value)
        else:
            out[key] = _plain(value)
    for key in ("filters", "next"):  # read best at the end of an item
        if key in out:
            out[key] = out.pop(key)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return _dump(value)
    return value
