"""What a step type is: a value class (its members, read from the document) and one handler that owns
its parsing, its run and its simulation. The runner (workflows/engine.py) and the simulator
(workflows/simulation.py) know no step type: they look the handler up in a `StepRegistry` by the step's
`type` and call it.

Where a step runs is declared by its handler:
- `Placement.TRANSACTION`: in the enrollment's transaction (flow, waits, messages, and changes through a
  service that takes the caller's unit of work): its change, the ledger row and the move commit together.
  A `refusable` handler's `DomainError` is a service's refusal: the runner rolls the transaction back and
  fails the step on its own.
- `Placement.OUTSIDE`: after that transaction commits, through a service with its own transaction (or an
  HTTP call); the runner then commits the ledger row and the move. Such a step must be safe to repeat.

`run` answers an `Outcome` (the runner records it, fails the enrollment or moves it to the step's usual
next) or, for a step that moved the enrollment itself (a branch, a wait), whether to go on at once.
`simulate` plays the step against the simulator's copy of the contact and its virtual clock, recording
instead of doing; it answers None to carry on as usual, or (next step id, how the run stopped).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

from ghl_core.contacts.models import Contact
from ghl_core.contacts.services import ContactService
from ghl_core.conversations.sender import MessageSender
from ghl_core.conversations.templates import TemplateRenderer, merge_context, off_loop
from ghl_core.notes.services import NoteService
from ghl_core.pipelines.opportunities import OpportunityService
from ghl_core.shared.clock import Clock
from ghl_core.tags.services import TagService
from ghl_core.tasks.services import TaskService
from ghl_core.tenancy.models import Location
from ghl_core.webhooks.addresses import UrlGuard
from ghl_core.webhooks.ports import WebhookSender
from ghl_core.workflows.models import Enrollment, EnrollmentStatus, StepRunStatus, WorkflowVersion
from ghl_core.workflows.ports import WorkflowsUnitOfWork
from ghl_core.workflows.reading import Reader
from ghl_core.workflows.values import Definition, Step
from ghl_core.workflows.waits import WaitSpec

_ID_NAMESPACE = uuid.UUID("5b0d7c1e-8f4e-4d0a-9a53-1f0f4b0e7a11")

S = TypeVar("S", bound=Step)


def effect_id(enrollment_id: uuid.UUID, step_id: str, tick: int) -> uuid.UUID:
    """The id of what a step creates (a note, a task, an opportunity): the same on every retry."""
    return uuid.uuid5(_ID_NAMESPACE, f"{enrollment_id}:{step_id}:{tick}")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: StepRunStatus
    outcome: str
    detail: str = ""
    output: dict[str, Any] | None = None
    error: str | None = None
    fail_enrollment: bool = False


@dataclass(frozen=True, slots=True)
class StepServices:
    """The core services that steps act through."""

    contacts: ContactService
    tags: TagService
    notes: NoteService
    tasks: TaskService
    opportunities: OpportunityService


class Placement(StrEnum):
    TRANSACTION = "transaction"
    OUTSIDE = "outside"


class Runner(Protocol):
    """What the engine lends a step handler: its collaborators."""

    @property
    def clock(self) -> Clock: ...

    @property
    def renderer(self) -> TemplateRenderer: ...

    @property
    def services(self) -> StepServices: ...

    @property
    def conversations(self) -> MessageSender: ...

    @property
    def guard(self) -> UrlGuard: ...

    @property
    def sender(self) -> WebhookSender: ...


class EnrollmentMoves(Protocol):
    """Enrolling and moving enrollments in the caller's transaction (workflows/moves.py)."""

    async def enroll(
        self,
        uow: WorkflowsUnitOfWork,
        version: WorkflowVersion,
        contact_id: uuid.UUID,
        *,
        trigger: str,
        cause: str | None,
        opportunity_id: uuid.UUID | None = None,
    ) -> Enrollment | None: ...

    async def record(
        self, uow: WorkflowsUnitOfWork, enrollment: Enrollment, step: Step, tick: int, outcome: Outcome
    ) -> None: ...

    async def move(
        self,
        uow: WorkflowsUnitOfWork,
        enrollment: Enrollment,
        target: str | None,
        *,
        finished: EnrollmentStatus = EnrollmentStatus.COMPLETED,
        queue: bool = True,
    ) -> None: ...


@dataclass(slots=True)
class StepContext:
    """One step of one enrollment being run. `uow` is the enrollment's transaction (None for a step
    placed outside it); a handler that changes the contact sets `contact` to what it is now."""

    runner: Runner
    moves: EnrollmentMoves
    uow: WorkflowsUnitOfWork | None
    location: Location
    definition: Definition
    enrollment: Enrollment
    contact: Contact
    tick: int
    now: datetime

    @property
    def tx(self) -> WorkflowsUnitOfWork:
        if self.uow is None:  # pragma: no cover - a handler placed outside asked for the transaction
            raise RuntimeError("this step runs outside the enrollment's transaction")
        return self.uow

    def cause(self, step: Step) -> str:
        """What the step's effects are keyed by (a message's cause, a webhook's Idempotency-Key)."""
        return f"workflow:{self.enrollment.id}:{step.id}:{self.tick}"

    def effect_id(self, step: Step) -> uuid.UUID:
        return effect_id(self.enrollment.id, step.id, self.tick)

    def zone(self, which: str | None) -> ZoneInfo:
        which = which or self.definition.settings.time_zone
        if which == "contact" and self.contact.timezone:
            try:
                return ZoneInfo(self.contact.timezone)
            except (KeyError, ValueError):
                pass
        return ZoneInfo(self.location.timezone)

    async def render(self, source: str, pointer: str = "") -> str:
        """One text template for the contact, in a worker thread (renders stay off the event loop)."""
        context = merge_context(self.contact, self.location)
        renderer = self.runner.renderer
        return await off_loop(partial(renderer.render, source, context, pointer=pointer), pointer=pointer)

    async def record(self, step: Step, outcome: Outcome) -> None:
        await self.moves.record(self.tx, self.enrollment, step, self.tick, outcome)

    async def move(self, target: str | None) -> bool:
        """Moves the enrollment to `target` (None: completed) in this transaction, the caller going on
        with it; answers whether it is still active (to run at once)."""
        await self.moves.move(self.tx, self.enrollment, target, queue=False)
        return self.enrollment.status is EnrollmentStatus.ACTIVE


Jump = tuple[str | None, str | None]  # (next step id or None, how the simulation stopped or None)


class Simulator(Protocol):
    """What a handler's simulation sees: a copy of the contact it may change, a virtual clock, and the
    timeline it writes to."""

    definition: Definition
    contact: dict[str, Any]
    now: datetime
    key: str
    opportunity: Mapping[str, Any] | None

    def note(self, step: Step | None, outcome: str, detail: str, at: datetime | None = None) -> None: ...

    def zone(self, spec: WaitSpec | None = None) -> ZoneInfo: ...

    def render(self, text: str) -> str: ...

    def last_message(self) -> Mapping[str, Any] | None: ...

    def interrupted(self, until: datetime | None) -> Jump | None:
        """A goal or a stop on reply happening up to `until`: where it takes the run (the clock moved
        to it), else None."""
        ...

    def wait_for(self, spec: WaitSpec, until: datetime | None) -> datetime | None:
        """When the event an event wait names happens before `until` (and before anything interrupting
        it), else None."""
        ...


class StepHandler(Generic[S]):
    """One step type. Subclasses set `step` (the value class, whose TYPE keys the registry) and override
    what differs from the defaults."""

    step: ClassVar[type[Step]]
    placement: ClassVar[Placement] = Placement.TRANSACTION
    refusable: ClassVar[bool] = False

    @property
    def type(self) -> str:
        return self.step.TYPE

    def read(self, r: Reader) -> dict[str, Any]:
        """The step's own members (`id`, `type` and `next` are read by the caller)."""
        return {}

    async def run(self, ctx: StepContext, step: S) -> Outcome | bool:
        raise NotImplementedError(f"{self.type} does not run")  # pragma: no cover

    def simulate(self, sim: Simulator, step: S) -> Jump | None:
        sim.note(step, "would_do", f"would run {step.type}")
        return None


class StepRegistry:
    """Step handlers by type, in the order they were registered (the order error messages list them)."""

    def __init__(self, handlers: Iterable[StepHandler[Any]] = ()) -> None:
        self._handlers: dict[str, StepHandler[Any]] = {}
        for handler in handlers:
            self.register(handler)

    def register(self, handler: StepHandler[Any]) -> None:
        if handler.type in self._handlers:
            raise ValueError(f"a step type {handler.type!r} is registered already")
        self._handlers[handler.type] = handler

    def get(self, step_type: str) -> StepHandler[Any] | None:
        return self._handlers.get(step_type)

    def of(self, step: Step) -> StepHandler[Any]:
        return self._handlers[step.type]

    def __contains__(self, step_type: object) -> bool:
        return step_type in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def classes(self) -> dict[str, type[Step]]:
        return {name: h.step for name, h in self._handlers.items()}
