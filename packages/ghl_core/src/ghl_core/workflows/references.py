"""What a workflow definition names outside itself, checked against its location: the ids and keys when
it is published, the templates whenever it is saved or published.

Parsing (definition.py) checks a document's shape with no database; a document that parses could still
name another location's pipeline, a stage of some other pipeline, a user without access, or carry a
template that does not compile, and every enrollment would then fail at that step. So:

- At publish every member marked `ref(kind)` must name something live of the location: a pipeline; a
  stage of the step's (or trigger's) pipeline, or for a wait or goal on `opportunity.stage_reached`, of
  any of the location's pipelines; a user who may be assigned the location's records
  (tenancy/assignees.py); a workflow of the location; a defined custom field (`custom.KEY`), a date field
  for a custom-date reminder. Otherwise 422, a pointer to each member, and nothing is published.
- A webhook step's address whose scheme and host hold no merge field is checked at publish with the
  guard that checks it when the step runs (https only unless private addresses are allowed; no private,
  loopback or metadata address): one that would always be refused is refused now. A host that does not
  resolve is let through (it may by the time the step runs, which checks again and records the answer).
- Another location's id answers exactly as an unknown id: the look-ups are scoped to the location and the
  messages do not say which it was, so publishing reveals nothing about other tenants.
- Every member marked `TEMPLATE` compiles in the sandbox that renders it (the TemplateRenderer port),
  checked at every save as the rest of the document is, and again at publish (a draft saved before a
  rule tightened). A webhook's URL, header values and the text in its JSON body are templates too.
- Only publishing checks ids: a draft may be written before its pipeline exists. Something removed after
  publishing still fails the step that names it when it runs (the services' own checks stay).
- Kinds are registered in `_CHECKS`: a new thing a step can name adds an entry and marks its field.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from ghl_core.conversations.templates import TemplateError, TemplateRenderer
from ghl_core.custom_fields.models import CustomFieldDefinition, FieldType
from ghl_core.pipelines.models import Pipeline
from ghl_core.shared.errors import FieldError
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.assignees import may_be_assigned, not_assignable
from ghl_core.tenancy.models import Location
from ghl_core.webhooks.addresses import UnsafeUrl, UrlGuard
from ghl_core.workflows.definition import CUSTOM_PREFIX, Definition
from ghl_core.workflows.ports import WorkflowsUnitOfWork
from ghl_core.workflows.waits import WaitSpec

_PIPELINE_PAGE = 100
_UNDEFINED = "no custom field with key '{key}' is defined"


@dataclass(frozen=True, slots=True)
class Reference:
    pointer: str
    kind: str
    value: Any
    within: Any = None  # what it belongs to, when the member says (a stage's pipeline id)


@dataclass(frozen=True, slots=True)
class TemplateSource:
    pointer: str
    source: str
    html: bool = False


def _escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _members(defn: Definition) -> Iterator[tuple[str, Any]]:
    """Each trigger and step with its pointer (a parsed definition keeps the document's positions)."""
    for i, trigger in enumerate(defn.triggers):
        yield f"/triggers/{i}", trigger
    for i, step in enumerate(defn.steps):
        yield f"/steps/{i}", step


def references(defn: Definition) -> list[Reference]:
    """Everything the definition names outside itself, each with the pointer of its member."""
    out: list[Reference] = []
    for pointer, item in _members(defn):
        for f in fields(item):
            value = getattr(item, f.name)
            here = f"{pointer}/{f.metadata.get('key', f.name)}"
            kind = f.metadata.get("ref")
            if kind is not None and value is not None:
                within = f.metadata.get("within")
                out.append(Reference(here, kind, value, getattr(item, within) if within else None))
            elif isinstance(value, WaitSpec) and "stage_id" in value.event_filter:
                out.append(Reference(f"{here}/stage_id", "stage", uuid.UUID(value.event_filter["stage_id"])))
    return out


def templates(defn: Definition) -> list[TemplateSource]:
    """Every text the engine renders as a template, with the pointer of its member."""
    out: list[TemplateSource] = []
    for pointer, item in _members(defn):
        for f in fields(item):
            how = f.metadata.get("template")
            value = getattr(item, f.name)
            if how is None or value is None:
                continue
            here = f"{pointer}/{f.metadata.get('key', f.name)}"
            if f.metadata.get("pairs"):
                out += [TemplateSource(f"{here}/{_escape(k)}", v) for k, v in value]
            elif f.metadata.get("json"):
                out += [TemplateSource(p, v) for p, v in _texts(json.loads(value), here)]
            elif isinstance(value, str):
                out.append(TemplateSource(here, value, html=how == "html"))
    return out


def _texts(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield pointer, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(item, f"{pointer}/{_escape(key)}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _texts(item, f"{pointer}/{i}")


def template_errors(renderer: TemplateRenderer, defn: Definition) -> list[FieldError]:
    """Each template member that does not compile or cannot render sample data within the renderer's
    limits (or breaks its rules), with its pointer. It renders: async callers run it off the loop."""
    errors: list[FieldError] = []
    for template in templates(defn):
        try:
            renderer.check(template.source, template.pointer, html=template.html)
        except TemplateError as exc:
            errors.extend(exc.errors)
    return errors


# ---------------------------------------------------------------------------------------------- ids


@dataclass
class _Location:
    """The location's things, each looked up once per check."""

    uow: WorkflowsUnitOfWork
    location: Location
    guard: UrlGuard
    _pipelines: dict[uuid.UUID, Pipeline | None] = field(default_factory=dict)
    _stages: set[uuid.UUID] | None = None
    _users: dict[uuid.UUID, bool] = field(default_factory=dict)
    _fields: dict[str, CustomFieldDefinition] | None = None

    async def pipeline(self, pipeline_id: uuid.UUID) -> Pipeline | None:
        if pipeline_id not in self._pipelines:
            self._pipelines[pipeline_id] = await self.uow.pipelines.get(self.location.id, pipeline_id)
        return self._pipelines[pipeline_id]

    async def stages(self) -> set[uuid.UUID]:
        """The live stages of all the location's live pipelines."""
        if self._stages is None:
            self._stages = set()
            page = await self.uow.pipelines.list(self.location.id, PageRequest(limit=_PIPELINE_PAGE))
            while True:
                self._stages |= {s.id for p in page.items for s in p.stages}
                if page.next_cursor is None:
                    break
                page = await self.uow.pipelines.list(
                    self.location.id, PageRequest.parse(_PIPELINE_PAGE, page.next_cursor, None)
                )
        return self._stages

    async def assignable(self, user_id: uuid.UUID) -> bool:
        if user_id not in self._users:
            self._users[user_id] = await may_be_assigned(
                self.uow, self.location.agency_id, self.location.id, user_id
            )
        return self._users[user_id]

    async def custom_field(self, key: str) -> CustomFieldDefinition | None:
        if self._fields is None:
            self._fields = {d.key: d for d in await self.uow.custom_fields.definitions(self.location.id)}
        return self._fields.get(key)


# Each answers what is wrong with the reference, or None.
_Check = Callable[[_Location, Reference], Awaitable[str | None]]


async def _pipeline(here: _Location, ref: Reference) -> str | None:
    return None if await here.pipeline(ref.value) is not None else "names no pipeline of this location"


async def _stage(here: _Location, ref: Reference) -> str | None:
    if ref.within is None:
        found = ref.value in await here.stages()
        return None if found else "names no stage of this location's pipelines"
    pipeline = await here.pipeline(ref.within)
    if pipeline is None:
        return None  # the pipeline's own error says it; a second one here would only echo it
    return None if pipeline.stage(ref.value) is not None else "names no stage of that pipeline"


async def _user(here: _Location, ref: Reference) -> str | None:
    return None if await here.assignable(ref.value) else not_assignable(ref.value, ref.pointer).detail


async def _workflow(here: _Location, ref: Reference) -> str | None:
    found = await here.uow.workflows.get(ref.value)
    if found is None or found.deleted_at is not None or found.location_id != here.location.id:
        return "names no workflow of this location"
    return None


async def _custom_field(here: _Location, ref: Reference) -> str | None:
    name = str(ref.value)
    if not name.startswith(CUSTOM_PREFIX):
        return None  # a standard field: nothing of the location
    key = name.removeprefix(CUSTOM_PREFIX)
    return None if await here.custom_field(key) is not None else _UNDEFINED.format(key=key)


async def _date_custom_field(here: _Location, ref: Reference) -> str | None:
    key = str(ref.value).removeprefix(CUSTOM_PREFIX)
    found = await here.custom_field(key)
    if found is None:
        return _UNDEFINED.format(key=key)
    return None if found.type is FieldType.DATE else f"custom field '{key}' is not a date field"


_TEMPLATE_MARKS = ("{{", "{%", "{#")


async def _url(here: _Location, ref: Reference) -> str | None:
    url = str(ref.value)
    parts = urlsplit(url)
    if any(mark in f"{parts.scheme}://{parts.netloc}" for mark in _TEMPLATE_MARKS):
        return None  # where it goes depends on the contact: checked when the step runs
    try:
        await here.guard.check(url)
    except UnsafeUrl as exc:
        return None if exc.retryable else exc.detail
    return None


_CHECKS: dict[str, _Check] = {
    "pipeline": _pipeline,
    "stage": _stage,
    "user": _user,
    "workflow": _workflow,
    "custom_field": _custom_field,
    "date_custom_field": _date_custom_field,
    "url": _url,
}


async def reference_errors(
    uow: WorkflowsUnitOfWork, location: Location, defn: Definition, guard: UrlGuard
) -> list[FieldError]:
    """Each member naming something the location does not have (or another location's), or an address
    webhooks may not reach, in document order, inside the caller's unit of work (its scope is the
    location)."""
    here = _Location(uow, location, guard)
    errors: list[FieldError] = []
    for ref in references(defn):
        detail = await _CHECKS[ref.kind](here, ref)
        if detail is not None:
            errors.append(FieldError(ref.pointer, detail))
    return errors
