"""Steps that steer the flow: waits (a time, a duration, an event), if/else branches, split tests, goals,
goto and end. They run in the enrollment's transaction and move the enrollment themselves; a wait hands
over to a job scheduled for its wake-up time (or to the event consumer, for an event wait)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ghl_core.contacts.models import Contact
from ghl_core.conversations.ports import InboxFilter
from ghl_core.shared.errors import FieldError
from ghl_core.shared.pagination import PageRequest
from ghl_core.workflows.conditions import ConditionGroup, Facts, evaluate
from ghl_core.workflows.models import Enrollment, EnrollmentStatus, StepRunStatus
from ghl_core.workflows.ports import WorkflowsUnitOfWork
from ghl_core.workflows.reading import Reader
from ghl_core.workflows.scheduling import run_job
from ghl_core.workflows.splits import parse_split, split_bucket
from ghl_core.workflows.steps.base import (
    Jump,
    Outcome,
    Simulator,
    StepContext,
    StepHandler,
)
from ghl_core.workflows.values import Edge, Step, Via
from ghl_core.workflows.waits import WaitSpec, wake_time

MAX_BRANCHES = 10
MAX_BRANCH_NAME = 100


@dataclass(frozen=True, kw_only=True)
class Wait(Step):
    TYPE = "wait"
    WAITS = True
    wait: WaitSpec = field(metadata={"source": "wait_json"})
    wait_json: str = field(compare=False, repr=False, metadata={"skip": True})
    timeout_next: str | None = None  # event waits with a timeout: where to go when it expires

    def edges(self, via: Via, here: str) -> list[Edge]:
        if self.wait.kind == "event" and self.wait.timeout is not None:
            return [via(None, here), via(self.timeout_next, f"{here}/timeout_next")]
        return [via(None, here)]


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

    def following(self, after: Callable[[str | None], str | None]) -> str | None:
        return after(self.else_)

    def edges(self, via: Via, here: str) -> list[Edge]:
        edges = [via(b.next, f"{here}/branches/{k}/next") for k, b in enumerate(self.branches)]
        return [*edges, via(self.else_, f"{here}/else")]


@dataclass(frozen=True, kw_only=True)
class Goal(Step):
    """When `event` happens, an enrollment anywhere in the workflow jumps here and goes on to `then`
    (None: the step after the goal; END: finish). Reached in the normal flow, it simply carries on."""

    TYPE = "goal"
    event: WaitSpec = field(metadata={"source": "event_json"})
    event_json: str = field(compare=False, repr=False, metadata={"skip": True})
    then: str | None = None


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

    def edges(self, via: Via, here: str) -> list[Edge]:
        return [via(p.next, f"{here}/paths/{k}/next") for k, p in enumerate(self.paths)]


@dataclass(frozen=True, kw_only=True)
class Goto(Step):
    TYPE = "goto"
    TAKES_NEXT = False
    step: str

    def following(self, after: Callable[[str | None], str | None]) -> str | None:
        return self.step

    def edges(self, via: Via, here: str) -> list[Edge]:
        return [(self.step, f"{here}/step")]


@dataclass(frozen=True, kw_only=True)
class End(Step):
    TYPE = "end"
    TAKES_NEXT = False

    def following(self, after: Callable[[str | None], str | None]) -> str | None:
        return None

    def edges(self, via: Via, here: str) -> list[Edge]:
        return []


async def if_else_facts(
    uow: WorkflowsUnitOfWork, enrollment: Enrollment, contact: Contact, now: datetime
) -> Facts:
    """What an if/else's conditions are evaluated on."""
    opportunity = None
    if enrollment.opportunity_id is not None:
        found = await uow.opportunities.get(enrollment.location_id, enrollment.opportunity_id)
        opportunity = found.snapshot() if found is not None else None
    last = None
    page = await uow.conversations.list(
        enrollment.location_id, InboxFilter(contact_id=contact.id), PageRequest(limit=5)
    )
    dated = [c for c in page.items if c.last_message_at is not None]
    if dated:
        newest = max(dated, key=lambda c: c.last_message_at or now)
        last = {
            "channel": newest.channel.value,
            "direction": newest.last_direction.value if newest.last_direction else None,
            "at": newest.last_message_at.isoformat() if newest.last_message_at else None,
            "body": newest.last_message_preview,
        }
    return Facts(
        contact=contact.snapshot(),
        opportunity=opportunity,
        last_message=last,
        outputs=enrollment.outputs,
        now=now,
    )


class WaitHandler(StepHandler[Wait]):
    step = Wait

    def read(self, r: Reader) -> dict[str, Any]:
        spec, source = r.wait("wait")
        timeout_next = r.target("timeout_next")
        if timeout_next is not None and spec is not None and (spec.kind != "event" or spec.timeout is None):
            r.fail("timeout_next", "only an event wait with a timeout has a timeout branch")
        return {"wait": spec, "wait_json": source, "timeout_next": timeout_next}

    async def run(self, ctx: StepContext, step: Wait) -> bool:
        spec, now, enrollment, uow = step.wait, ctx.now, ctx.enrollment, ctx.tx
        wake = wake_time(spec, now, ctx.zone(spec.zone))
        if spec.kind == "event":
            enrollment.tick += 1
            enrollment.status = EnrollmentStatus.WAITING
            enrollment.waiting_for = {"event": spec.event, "step": step.id}
            enrollment.wake_at = wake
            enrollment.updated_at = now
            await uow.enrollments.update(enrollment)
            detail = f"waiting for {spec.event}" + (f" until {wake.isoformat()}" if wake else "")
            await ctx.record(step, Outcome(StepRunStatus.WAITING, "waiting", detail))
            if wake is not None:
                await uow.jobs.enqueue(run_job(enrollment, wake))
            return False
        if wake is None or wake <= now:
            await ctx.record(step, Outcome(StepRunStatus.DONE, "waited", "already due"))
            return await ctx.move(ctx.definition.next_of(step.id))
        await ctx.record(step, Outcome(StepRunStatus.DONE, "waiting", f"until {wake.isoformat()}"))
        await ctx.move(ctx.definition.next_of(step.id))
        if enrollment.status is EnrollmentStatus.ACTIVE:
            enrollment.status = EnrollmentStatus.WAITING
            enrollment.wake_at = wake
            await uow.enrollments.update(enrollment)
            await uow.jobs.enqueue(run_job(enrollment, wake))
        return False

    def simulate(self, sim: Simulator, step: Wait) -> Jump | None:
        spec = step.wait
        wake = wake_time(spec, sim.now, sim.zone(spec))
        if spec.kind == "event":
            happened = sim.wait_for(spec, wake)
            if happened is not None:
                sim.note(step, "waiting", f"waiting for {spec.event}", at=sim.now)
                sim.now = max(sim.now, happened)
                sim.note(step, "resumed", f"{spec.event} happened")
                return sim.definition.next_of(step.id), None
            if wake is None:
                sim.note(
                    step, "waiting", f"waiting for {spec.event}, which does not happen in this simulation"
                )
                return None, "horizon"
            jumped = sim.interrupted(wake)
            if jumped is not None:
                return jumped
            sim.note(step, "waiting", f"waiting for {spec.event} until {wake.isoformat()}")
            sim.now = wake
            sim.note(step, "resumed", "timed out")
            return sim.definition.after(step.id, step.timeout_next), None
        assert wake is not None  # noqa: S101 - only event waits may have no wake time
        jumped = sim.interrupted(wake)
        if jumped is not None:
            return jumped
        sim.note(step, "waiting", f"until {wake.isoformat()}")
        sim.now = max(sim.now, wake)
        sim.note(step, "resumed", "wait over")
        return sim.definition.next_of(step.id), None


class IfElseHandler(StepHandler[IfElse]):
    step = IfElse

    def read(self, r: Reader) -> dict[str, Any]:
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

    async def run(self, ctx: StepContext, step: IfElse) -> bool:
        facts = await if_else_facts(ctx.tx, ctx.enrollment, ctx.contact, ctx.now)
        for branch in step.branches:
            if evaluate(branch.when, facts):
                await ctx.record(step, Outcome(StepRunStatus.DONE, "branch", branch.name))
                return await ctx.move(ctx.definition.after(step.id, branch.next))
        await ctx.record(step, Outcome(StepRunStatus.DONE, "branch", "else"))
        return await ctx.move(ctx.definition.after(step.id, step.else_))

    def simulate(self, sim: Simulator, step: IfElse) -> Jump | None:
        facts = Facts(
            contact=sim.contact,
            opportunity=sim.opportunity,
            last_message=sim.last_message(),
            outputs={},
            now=sim.now,
        )
        for branch in step.branches:
            if evaluate(branch.when, facts):
                sim.note(step, "branch", f"branch '{branch.name}'")
                return sim.definition.after(step.id, branch.next), None
        sim.note(step, "branch", "none of the branches: else")
        return sim.definition.after(step.id, step.else_), None


class GoalHandler(StepHandler[Goal]):
    """Reached in the normal flow a goal carries on; its jump is the event consumer's (engine._answer)
    and the simulator's, as it can happen wherever the enrollment is."""

    step = Goal

    def read(self, r: Reader) -> dict[str, Any]:
        spec, source = r.wait("event", kinds=("event",))
        if spec is not None and (spec.timeout is not None or spec.window is not None):
            r.fail("event", "a goal event has no timeout and no window")
        return {"event": spec, "event_json": source, "then": r.target("then")}

    async def run(self, ctx: StepContext, step: Goal) -> Outcome:
        return Outcome(StepRunStatus.DONE, "passed", "goal step reached in the normal flow")

    def simulate(self, sim: Simulator, step: Goal) -> Jump | None:
        sim.note(step, "done", "goal step passed in the normal flow")
        return None


class SplitHandler(StepHandler[Split]):
    step = Split

    def read(self, r: Reader) -> dict[str, Any]:
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

    async def run(self, ctx: StepContext, step: Split) -> bool:
        enrollment = ctx.enrollment
        bucket = split_bucket(f"{enrollment.workflow_id}:{enrollment.contact_id}:{step.id}", step.percentages)
        path = step.paths[bucket]
        detail = f"path {bucket + 1} ({path.percent}%)"
        await ctx.record(step, Outcome(StepRunStatus.DONE, "branch", detail))
        return await ctx.move(ctx.definition.after(step.id, path.next))

    def simulate(self, sim: Simulator, step: Split) -> Jump | None:
        bucket = split_bucket(f"{sim.key}:{step.id}", step.percentages)
        path = step.paths[bucket]
        sim.note(step, "branch", f"split path {bucket + 1} ({path.percent}%)")
        return sim.definition.after(step.id, path.next), None


class GotoHandler(StepHandler[Goto]):
    step = Goto

    def read(self, r: Reader) -> dict[str, Any]:
        target = r.target("step", allow_end=False)
        if target is None and not r.failed:
            r.fail("step", "is required: the id of the step to go to")
        if target == r.raw.get("id"):
            r.fail("step", "a goto cannot go to itself")
        return {"step": target}

    async def run(self, ctx: StepContext, step: Goto) -> bool:
        await ctx.record(step, Outcome(StepRunStatus.DONE, "goto", step.step))
        return await ctx.move(step.step)

    def simulate(self, sim: Simulator, step: Goto) -> Jump | None:
        sim.note(step, "done", f"go to {step.step}")
        return None


class EndHandler(StepHandler[End]):
    step = End

    async def run(self, ctx: StepContext, step: End) -> bool:
        await ctx.record(step, Outcome(StepRunStatus.DONE, "end"))
        return await ctx.move(None)  # completed

    def simulate(self, sim: Simulator, step: End) -> Jump | None:
        sim.note(step, "ended", "end")
        return None, "completed"
