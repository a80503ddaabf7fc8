"""The immutable form of a workflow definition: its settings, triggers and steps, and how the flow goes
from one step to the next. Step types (workflows/steps/) and trigger types (workflows/trigger_types.py)
subclass `Step` and `Trigger`; this module knows none of them.

What a step or trigger names outside the document is declared on its fields, not switched on by type:
`TEMPLATE` marks a member rendered as a template (`TEMPLATE_HTML` as e-mail HTML), `ref(kind)` a member
naming something outside the document (a user, a pipeline, a stage, a workflow, a custom field of the
location; a webhook's address), checked at publish (workflows/references.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal

from ghl_core.workflows.conditions import ConditionGroup
from ghl_core.workflows.reading import END
from ghl_core.workflows.waits import ResumeWindow

Json = Any

# Field metadata: see the module's docstring.
TEMPLATE: Mapping[str, Any] = {"template": "text"}
TEMPLATE_HTML: Mapping[str, Any] = {"template": "html"}

# (step id it leads to or None for the end, pointer of the member that says so)
Edge = tuple[str | None, str]
# Resolves a target named on a step (None: carry on as usual) and the pointer saying so, into an edge.
Via = Callable[[str | None, str], Edge]


def ref(kind: str, *, within: str | None = None) -> dict[str, Any]:
    """A member naming something of the location; `within`: the member naming what it belongs to (a
    stage within the step's pipeline)."""
    return {"ref": kind, "within": within}


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

    def accepts(self, data: Mapping[str, Any]) -> bool:
        """Whether the trigger's own parameters accept what happened (`data` of the occurrence of its
        type); its `filters` are checked apart."""
        return True


@dataclass(frozen=True, kw_only=True)
class Step:
    TYPE: ClassVar[str]
    TAKES_NEXT: ClassVar[bool] = True
    WAITS: ClassVar[bool] = False  # a loop through a step that waits does not spin

    id: str
    next: str | None = None  # None: the following step (or the end); END: finish here

    @property
    def type(self) -> str:
        return self.TYPE

    def following(self, after: Callable[[str | None], str | None]) -> str | None:
        """Where the enrollment goes after this step when the step does not choose otherwise (`after`
        resolves a target named on it); None: finished."""
        return after(None)

    def edges(self, via: Via, here: str) -> list[Edge]:
        """Where the step can lead in the normal flow (the graph checks), each with its pointer."""
        return [via(None, here)]


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
        return self.step(step_id).following(lambda target: self.after(step_id, target))
