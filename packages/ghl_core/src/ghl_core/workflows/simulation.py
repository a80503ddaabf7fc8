"""Running a workflow definition against a virtual clock: what would happen to one contact, and when,
without sending or changing anything. An agency tests a 30-day sequence in a second.

The simulation follows the engine's rules: steps in order, waits computed in the contact's (or the
location's) time zone, DST included; if/else on the contact as the earlier steps would have left it (tags
added, fields set, do-not-disturb changed); split tests by the same deterministic bucket; sends skipped for
a contact with do-not-disturb and held to the workflow's send window; event waits, goals and "stop on
reply" driven by events the caller says will happen (a reply two days in, a tag at some time).

It knows no step type: each step is played by its type's handler from the same registry the engine runs
(`StepHandler.simulate`, against this run's copy of the contact and its virtual clock), so a step type's
run and its simulation live side by side in one module of workflows/steps/."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ghl_core.shared.errors import FieldError
from ghl_core.shared.instants import OUTSIDE_CALENDAR, in_utc
from ghl_core.workflows.steps import STEPS, StepRegistry
from ghl_core.workflows.steps.base import Jump
from ghl_core.workflows.steps.flow import Goal
from ghl_core.workflows.values import Definition, Step
from ghl_core.workflows.waits import WaitSpec

MAX_STEPS = 1000
HORIZON = timedelta(days=400)
Render = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    """Something the caller says will happen: `contact.replied` (data: channel), `tag.added` (tag),
    `opportunity.stage_reached` (stage_id)."""

    at: datetime
    event: str
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    step_id: str | None
    type: str
    outcome: str  # done, skipped, would_send, waiting, resumed, branch, goal, stopped, ended
    detail: str

    def view(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "step_id": self.step_id,
            "type": self.type,
            "outcome": self.outcome,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Simulation:
    timeline: tuple[TimelineEntry, ...]
    finished: str  # completed, goal, stopped, horizon, step_limit
    contact: Mapping[str, Any]  # the contact as the workflow would leave it


def matches(spec: WaitSpec, event: SimulatedEvent) -> bool:
    """Whether an event is the one a wait (or goal) names, its filters included."""
    if spec.event != event.event:
        return False
    return all(
        str(event.data.get(key, "")).lower() == str(value).lower() for key, value in spec.event_filter.items()
    )


class _Run:
    """One simulated enrollment: the `Simulator` its steps' handlers play against."""

    def __init__(
        self,
        definition: Definition,
        contact: Mapping[str, Any],
        *,
        start: datetime,
        contact_zone: ZoneInfo,
        location_zone: ZoneInfo,
        events: Sequence[SimulatedEvent],
        render: Render | None,
        key: str,
        opportunity: Mapping[str, Any] | None,
        steps: StepRegistry,
    ) -> None:
        self.steps = steps
        self.definition = definition
        self.contact: dict[str, Any] = copy.deepcopy(dict(contact))
        self.contact.setdefault("tags", [])
        self.contact.setdefault("custom_fields", {})
        self.contact.setdefault("dnd_channels", {})
        self.now = start
        self.start = start
        self.zones = {"contact": contact_zone, "location": location_zone}
        self.events = sorted(events, key=lambda e: e.at)
        self.fired: set[int] = set()
        self.render = render or (lambda text: text)
        self.key = key
        self.opportunity = opportunity
        self.timeline: list[TimelineEntry] = []
        self.goals = [s for s in definition.steps if isinstance(s, Goal)]

    def note(self, step: Step | None, outcome: str, detail: str, at: datetime | None = None) -> None:
        self.timeline.append(
            TimelineEntry(
                at or self.now, step.id if step else None, step.type if step else "workflow", outcome, detail
            )
        )

    def zone(self, spec: WaitSpec | None = None) -> ZoneInfo:
        if spec is not None:
            return self.zones[spec.zone]
        return self.zones[self.definition.settings.time_zone]

    def last_message(self) -> Mapping[str, Any] | None:
        replies = [e for e in self.events if e.event == "contact.replied" and e.at <= self.now]
        if not replies:
            return None
        last = replies[-1]
        return {"direction": "inbound", "channel": last.data.get("channel", "sms"), "at": last.at.isoformat()}

    def next_event(self, until: datetime | None) -> tuple[int, SimulatedEvent] | None:
        """The first event not yet acted on, after now and up to `until`."""
        for index, event in enumerate(self.events):
            if index in self.fired or event.at < self.now:
                continue
            if until is not None and event.at > until:
                return None
            return index, event
        return None

    def interruption(self, until: datetime | None) -> tuple[str, SimulatedEvent, Goal | None] | None:
        """A reply that stops the enrollment or a goal's event, between now and `until`."""
        while (found := self.next_event(until)) is not None:
            index, event = found
            self.fired.add(index)
            if event.event == "contact.replied" and self.definition.settings.stop_on_reply:
                return "stop", event, None
            for goal in self.goals:
                if matches(goal.event, event):
                    return "goal", event, goal
            if event.event == "tag.added":
                tag = event.data.get("tag")
                if tag and tag not in self.contact["tags"]:
                    self.contact["tags"].append(tag)
        return None

    def run(self) -> Simulation:
        step_id: str | None = self.definition.steps[0].id if self.definition.steps else None
        horizon = self.start + HORIZON
        for _ in range(MAX_STEPS):
            if step_id is None:
                self.note(None, "ended", "the workflow is complete for this contact")
                return self.done("completed")
            if self.now > horizon:
                return self.done("horizon")
            step = self.definition.step(step_id)
            step_id, stop = self.execute(step)
            if stop is not None:
                return self.done(stop)
        self.note(None, "stopped", f"stopped after {MAX_STEPS} steps")
        return self.done("step_limit")

    def done(self, how: str) -> Simulation:
        return Simulation(tuple(self.timeline), how, self.contact)

    def jump(self, how: tuple[str, SimulatedEvent, Goal | None]) -> tuple[str | None, str | None]:
        kind, event, goal = how
        self.now = max(self.now, event.at)
        if kind == "stop":
            self.note(None, "stopped", "the contact replied and the workflow stops on reply")
            return None, "stopped"
        assert goal is not None  # noqa: S101 - a goal interruption names its goal
        self.note(goal, "goal", f"goal reached: {event.event}")
        target = self.definition.after(goal.id, goal.then)
        if target is None:
            return None, "goal"
        return target, None

    def execute(self, step: Step) -> tuple[str | None, str | None]:
        """Runs one step; answers the next step id (None: finished) and how the run stopped (or None)."""
        interrupted = self.interruption(self.now)
        if interrupted is not None:
            return self.jump(interrupted)
        jumped = self.steps.of(step).simulate(self, step)
        if jumped is not None:
            return jumped
        return self.definition.next_of(step.id), None

    def interrupted(self, until: datetime | None) -> Jump | None:
        found = self.interruption(until)
        return None if found is None else self.jump(found)

    def wait_for(self, spec: WaitSpec, until: datetime | None) -> datetime | None:
        event = self.event_for(spec, until)
        return None if event is None else event.at

    def event_for(self, spec: WaitSpec, until: datetime | None) -> SimulatedEvent | None:
        """The first event answering an event wait before its timeout, goals and stop on reply first."""
        for index, event in enumerate(self.events):
            if index in self.fired or event.at < self.now or (until is not None and event.at > until):
                continue
            if matches(spec, event):
                # Anything earlier that interrupts (a goal, stop on reply) takes precedence.
                interrupted = self.interruption(event.at - timedelta(microseconds=1))
                if interrupted is not None:
                    self.fired.discard(index)
                    return None
                self.fired.add(index)
                return event
        return None


def simulate(
    definition: Definition,
    contact: Mapping[str, Any],
    *,
    start: datetime,
    contact_zone: ZoneInfo,
    location_zone: ZoneInfo,
    events: Sequence[SimulatedEvent] = (),
    render: Render | None = None,
    key: str = "simulation",
    opportunity: Mapping[str, Any] | None = None,
    steps: StepRegistry = STEPS,
) -> Simulation:
    """The timeline of one enrollment, from `start` until the workflow ends for the contact (or 400 days,
    or 1,000 steps). `render` turns a message body into the text that would be sent; `key` seeds split
    tests as the enrollment would (workflow and contact); `steps`: the step types known."""
    if start.tzinfo is None:
        raise ValueError("the simulation starts at an aware date-time")
    return _Run(
        definition,
        contact,
        start=start,
        contact_zone=contact_zone,
        location_zone=location_zone,
        events=events,
        render=render,
        key=key,
        opportunity=opportunity,
        steps=steps,
    ).run()


def read_events(raw: Any, errors: list[FieldError]) -> list[SimulatedEvent]:
    """The events a simulation request says will happen, each checked (an error per bad one)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 100:
        errors.append(FieldError("/events", "must be a list of at most 100 {at, event, data}"))
        return []
    out: list[SimulatedEvent] = []
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


def describe(simulation: Simulation) -> list[dict[str, Any]]:
    return [entry.view() for entry in simulation.timeline]
