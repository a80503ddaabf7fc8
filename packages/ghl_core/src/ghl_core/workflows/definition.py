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

Step types are registered, not switched on: each step type's handler (workflows/steps/) reads its own
members, and the registry it is in (`STEPS`) is what this parser knows of steps; trigger types are in
workflows/trigger_types.py. The values themselves are in workflows/values.py. Parsing needs no database or
network; publishing checks both (workflows/references.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from datetime import time
from typing import Any

from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.validation import MAX_NAME_LENGTH
from ghl_core.workflows.reading import CUSTOM_PREFIX, END, STEP_ID, Reader, Refs
from ghl_core.workflows.steps import STEPS, StepRegistry
from ghl_core.workflows.steps.contact import (
    DND_CHANNELS,
    UPDATABLE_FIELDS,
    AddNote,
    AddTag,
    AssignUser,
    CreateTask,
    RemoveTag,
    SetDnd,
    UpdateField,
)
from ghl_core.workflows.steps.enrollments import AddToWorkflow, RemoveFromWorkflow
from ghl_core.workflows.steps.flow import Branch, End, Goal, Goto, IfElse, Split, SplitPath, Wait
from ghl_core.workflows.steps.messaging import InternalNotification, SendEmail, SendSms
from ghl_core.workflows.steps.opportunities import CreateOpportunity, MoveStage, SetOpportunityStatus
from ghl_core.workflows.steps.webhook import Webhook
from ghl_core.workflows.trigger_types import (
    CHANNELS,
    TRIGGER_TYPES,
    ChannelTrigger,
    ContactChangedTrigger,
    OpportunityTrigger,
    ReminderTrigger,
    TagTrigger,
)
from ghl_core.workflows.values import TEMPLATE, TEMPLATE_HTML, Definition, Edge, Settings, Step, Trigger, ref
from ghl_core.workflows.waits import ResumeWindow

# What this module gave before step types had their own modules: callers keep importing it from here.
__all__ = [
    "CHANNELS",
    "CUSTOM_PREFIX",
    "DND_CHANNELS",
    "END",
    "MAX_STEPS",
    "MAX_TRIGGERS",
    "STEP_ID",
    "STEP_TYPES",
    "TEMPLATE",
    "TEMPLATE_HTML",
    "TRIGGER_TYPES",
    "UPDATABLE_FIELDS",
    "WEEKDAYS",
    "ZONES",
    "AddNote",
    "AddTag",
    "AddToWorkflow",
    "AssignUser",
    "Branch",
    "ChannelTrigger",
    "ContactChangedTrigger",
    "CreateOpportunity",
    "CreateTask",
    "Definition",
    "End",
    "Goal",
    "Goto",
    "IfElse",
    "InternalNotification",
    "MoveStage",
    "OpportunityTrigger",
    "ReminderTrigger",
    "RemoveFromWorkflow",
    "RemoveTag",
    "SendEmail",
    "SendSms",
    "SetDnd",
    "SetOpportunityStatus",
    "Settings",
    "Split",
    "SplitPath",
    "Step",
    "TagTrigger",
    "Trigger",
    "UpdateField",
    "Wait",
    "Webhook",
    "definition_json",
    "parse_definition",
    "ref",
]

MAX_STEPS = 200
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Step type -> value class, for callers listing the types (the OpenAPI schema).
STEP_TYPES: dict[str, type[Step]] = STEPS.classes()


# --- documents

MAX_TRIGGERS = 20
ZONES = ("contact", "location")


def parse_definition(raw: Mapping[str, Any], steps: StepRegistry = STEPS) -> Definition:
    """Checks a whole workflow document and returns its immutable form. Raises one ValidationFailed naming
    every bad member; the graph (loops, unreachable steps) is checked once the steps themselves are valid,
    as its errors would only echo theirs. `steps`: the step types known (the default registry's)."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed.one("", "a workflow definition must be an object")
    errors: list[FieldError] = []
    refs: Refs = []
    r = Reader(raw, "", errors, refs)
    name = r.text("name", MAX_NAME_LENGTH)
    settings = _read_settings(r)
    triggers = _read_triggers(r)
    read, ids = _read_steps(r, steps)
    r.finish("workflow definition")
    for pointer, target in refs:
        if target not in ids:
            errors.append(FieldError(pointer, f'names no step: there is no step with id "{target}"'))
    if errors:
        raise ValidationFailed(errors)
    defn = Definition(str(name), settings, tuple(triggers), tuple(s for s in read if s is not None))
    errors.extend(_graph_errors(defn))
    if errors:
        raise ValidationFailed(errors)
    return defn


def _read_settings(r: Reader) -> Settings:
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


def _read_window(r: Reader, key: str) -> ResumeWindow | None:
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


def _read_triggers(r: Reader) -> list[Trigger]:
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


def _read_steps(r: Reader, steps: StepRegistry) -> tuple[list[Step | None], dict[str, int]]:
    value = r.get("steps")
    ids: dict[str, int] = {}
    if not isinstance(value, list) or not value or len(value) > MAX_STEPS:
        r.fail("steps", f"must be a list of 1 to {MAX_STEPS} steps")
        return [], ids
    return [_read_step(r, item, i, ids, steps) for i, item in enumerate(value)], ids


def _read_step(r: Reader, raw: Any, i: int, ids: dict[str, int], steps: StepRegistry) -> Step | None:
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
    handler = steps.get(kind) if isinstance(kind, str) else None
    if handler is None:
        sub.fail("type", f"must be one of {', '.join(steps)}")
        return None
    cls = handler.step
    target = sub.target("next")
    if target is not None and not cls.TAKES_NEXT:
        sub.fail("next", f"a {kind} step has no next")
    params = handler.read(sub)
    sub.finish(f"{kind} step")
    return None if sub.failed else cls(id=str(step_id), next=target, **params)


# --- graph


def _flow(defn: Definition, i: int) -> list[Edge]:
    """Where step i can lead in the normal flow, each with the pointer of the member that sends it there."""
    step = defn.steps[i]
    here = f"/steps/{i}"
    fallthrough = f"{here}/next" if step.next is not None else here

    def via(target: str | None, pointer: str) -> Edge:
        return defn.after(step.id, target), pointer if target is not None else fallthrough

    return step.edges(via, here)


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


def _loop_errors(defn: Definition, flow: list[list[Edge]]) -> list[FieldError]:
    """A loop through steps none of which waits would run a contact round it forever, sending each time.
    Strongly connected components of the graph without wait steps are exactly those loops."""
    waits = {i for i, s in enumerate(defn.steps) if s.WAITS}
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
