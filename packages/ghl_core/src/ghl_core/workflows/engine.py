"""Running published workflows: enrolling contacts when triggers fire, running steps as jobs, waiting in
PostgreSQL, branching, reaching goals, stopping cleanly.

How a step happens once:
- An enrollment is one row; every step job takes it FOR UPDATE first, so one enrollment's steps run one
  at a time and in order (enrollments run in parallel). `tick` counts the enrollment's moves and keys the
  ledger (`workflow_step_runs`, one row per (enrollment, step, tick)).
- A step's ledger row, its move to the next step and whatever it writes in our database through the unit
  of work (a message through the conversations ledger, with cause `workflow:{enrollment}:{step}:{tick}`)
  commit together: a worker that dies before the commit leaves nothing, the retry does it all again.
- Tags, fields, do-not-disturb and assignment go through their services inside the enrollment's
  transaction (the same checks, audit rows and events): the change, the ledger row and the move commit
  together. A service that refuses (its checks) fails the step and the enrollment; what it had written
  is rolled back.
- The other steps acting through another service commit that change first, then the ledger row. Each is
  safe to repeat after a crash in between: stage and status set a state (doing it twice is doing it
  once); notes, tasks and opportunities are created with an id derived from (enrollment, step, tick), so
  a repeat finds the first one. An outbound webhook is the one effect we cannot take back: it is sent at
  least once, always with the same `Idempotency-Key`, so the receiver can tell a repeat.
- Waits are jobs scheduled in PostgreSQL for the wake-up time (procrastinate `scheduled_at`); event waits
  and goals are answered by the workflows' event consumer, which moves the enrollment and queues its job.
  A job that finds its enrollment somewhere else (moved by a goal, stopped) does nothing.
- One job runs the enrollment's steps that are due now, up to `CHAIN` of them, in one transaction until a
  step must run outside it (the webhook, notes, tasks, opportunities); it reads the location once and
  the contact once per transaction, and writes the ledger rows and the enrollment once before each
  commit. A step whose service refuses rolls back that transaction: its steps run again, one per
  transaction, so the ones before it stand. A wait, a send window or the limit hands over to a
  scheduled job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from ghl_core.contacts.models import Contact
from ghl_core.contacts.services import ContactService
from ghl_core.conversations.sender import MessageSender
from ghl_core.conversations.templates import TemplateRenderer
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import DomainError
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.models import Location
from ghl_core.webhooks.addresses import UrlGuard
from ghl_core.webhooks.ports import WebhookSender
from ghl_core.workflows.deferred import DeferredEnrollments
from ghl_core.workflows.definition import Definition
from ghl_core.workflows.models import (
    RUNNING,
    Enrollment,
    EnrollmentStatus,
    StepRunStatus,
    WorkflowVersion,
)
from ghl_core.workflows.moves import Moves
from ghl_core.workflows.ports import EnrollmentRepository, WorkflowsUnitOfWork
from ghl_core.workflows.reactions import Reactions
from ghl_core.workflows.scheduling import STEP_KIND, run_job
from ghl_core.workflows.steps import STEPS, StepRegistry
from ghl_core.workflows.steps.base import (
    Outcome,
    Placement,
    StepContext,
    StepServices,
    effect_id,
)
from ghl_core.workflows.steps.flow import Wait
from ghl_core.workflows.values import Step

__all__ = ["CHAIN", "STEP_KIND", "StepServices", "WorkflowEngine", "effect_id", "run_job"]

CHAIN = 25  # steps one job runs before handing over (keeps a long chain from hogging a worker slot)


def _active(enrollment: Enrollment) -> bool:
    return enrollment.status is EnrollmentStatus.ACTIVE


def _refusal(exc: DomainError) -> Outcome:
    """A service refused the step (its checks, a contact gone): the step fails, and its enrollment."""
    return Outcome(
        StepRunStatus.FAILED, "failed", str(exc), error=f"{type(exc).__name__}: {exc}", fail_enrollment=True
    )


@dataclass(slots=True)
class _Carry:
    """What one job keeps from step to step: the location (for the job); the contact and the locked
    enrollment for one transaction (the steps in it are the only ones changing them that it sees)."""

    location: Location | None = None
    contact: Contact | None = None
    enrollment: Enrollment | None = None  # locked in this transaction


@dataclass(frozen=True, slots=True)
class _Outside:
    """A step to run outside the enrollment's transaction (an HTTP call, a service with its own)."""

    location: Location
    definition: Definition
    enrollment: Enrollment
    contact: Contact
    step: Step
    tick: int


class _Refused(Exception):
    """A service refused a step running in the enrollment's transaction: the caller rolls back."""

    def __init__(
        self, definition: Definition, step: Step, tick: int, outcome: Outcome, *, woken: bool
    ) -> None:
        super().__init__(outcome.detail)
        self.definition, self.step, self.tick, self.outcome, self.woken = (
            definition,
            step,
            tick,
            outcome,
            woken,
        )


class WorkflowEngine:
    """The runner: claims an enrollment's step, runs it in or outside the enrollment's transaction as its
    handler says (the registry knows the step types; this class knows none), records it and moves on."""

    def __init__(
        self,
        uow: UnitOfWorkFactory[WorkflowsUnitOfWork],
        clock: Clock,
        conversations: MessageSender,
        renderer: TemplateRenderer,
        services: StepServices,
        guard: UrlGuard,
        sender: WebhookSender,
        *,
        steps: StepRegistry = STEPS,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._conversations = conversations
        self._renderer = renderer
        self._services = services
        self._guard = guard
        self._sender = sender
        self._steps = steps
        self._moves = Moves(clock=clock, steps=steps)
        self._reactions = Reactions(uow=uow, clock=clock, moves=self._moves)

    # What step handlers use (steps.base.Runner).

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def renderer(self) -> TemplateRenderer:
        return self._renderer

    @property
    def services(self) -> StepServices:
        return self._services

    @property
    def conversations(self) -> MessageSender:
        return self._conversations

    @property
    def guard(self) -> UrlGuard:
        """What webhook steps' addresses are checked with (when they run; at publish too)."""
        return self._guard

    @property
    def sender(self) -> WebhookSender:
        return self._sender

    @property
    def contacts(self) -> ContactService:
        return self._services.contacts

    @property
    def steps(self) -> StepRegistry:
        return self._steps

    @property
    def moves(self) -> Moves:
        return self._moves

    def definition(self, version: WorkflowVersion) -> Definition:
        return self._moves.definition(version)

    async def enroll(
        self,
        uow: WorkflowsUnitOfWork,
        version: WorkflowVersion,
        contact_id: uuid.UUID,
        *,
        trigger: str,
        cause: str | None,
        opportunity_id: uuid.UUID | None = None,
    ) -> Enrollment | None:
        """Enrolls the contact in the caller's transaction and queues its first step (Moves.enroll)."""
        return await self._moves.enroll(
            uow, version, contact_id, trigger=trigger, cause=cause, opportunity_id=opportunity_id
        )

    # ------------------------------------------------------------------ events, reminders

    async def handle_events(self, location_id: uuid.UUID, events: Sequence[DomainEvent]) -> int:
        """The `workflows` consumer of domain events (workflows/reactions.py)."""
        return await self._reactions.handle_events(location_id, events)

    async def remind(self, location_id: uuid.UUID) -> int:
        """Birthday and custom-date reminders (workflows/reactions.py)."""
        return await self._reactions.remind(location_id)

    # ------------------------------------------------------------------ the step job

    async def run(
        self, location_id: uuid.UUID, enrollment_id: uuid.UUID, tick: int, *, retry: bool = False
    ) -> int:
        """The `workflows.run` job for the enrollment at `tick`: runs its due steps, up to CHAIN of them;
        answers how many it ran. A job whose tick is past does nothing (the enrollment moved on and its
        mover queued the job for the new tick), so at most one job runs a given step of an enrollment.
        `retry`: a later attempt of a job that may have died mid-chain, after moving the enrollment on
        itself: it picks the enrollment up where it is if it is due now.

        The steps run in one transaction until one must run outside it (a webhook, a note, a task, an
        opportunity) or refuses (a service's check failed): that one's partial change is rolled back
        with the steps before it in the same transaction, and they run again one per transaction."""
        ran, current, together = 0, tick, True
        location: Location | None = None
        while ran < CHAIN:
            start, ran_before = current, ran
            carry = _Carry(location)
            outside: _Outside | None = None
            try:
                async with self._uow(TenantScope.location(location_id)) as uow:
                    deferred = DeferredEnrollments(uow.enrollments, enrollment_id)
                    uow.enrollments = cast(EnrollmentRepository, deferred)
                    while ran < CHAIN:
                        adopt = retry and ran == 0
                        result = await self._one(uow, carry, location_id, enrollment_id, current, adopt=adopt)
                        if isinstance(result, _Outside):
                            outside = result
                            break
                        if result is None:
                            await deferred.flush()
                            await uow.commit()
                            return ran
                        current = result
                        ran += 1
                        if not together:
                            break
                    await deferred.flush()
                    await uow.commit()
            except _Refused as refused:
                if together:  # rolled back with the steps before it: again, one step per transaction
                    together = False
                    ran, current = ran_before, start
                    continue
                # Alone in its transaction: nothing of it was committed; the failure is recorded.
                r = refused
                await self._conclude(
                    location_id, enrollment_id, r.definition, r.step, r.tick, r.outcome, woken=r.woken
                )
                return ran
            location = carry.location
            if outside is not None:
                # That service commits its change, then the ledger row and the move commit.
                o = outside
                outcome = await self._act(o)
                following = await self._conclude(
                    location_id, enrollment_id, o.definition, o.step, o.tick, outcome, woken=False
                )
                if following is None:
                    return ran
                current = following
                ran += 1
        # The chain's limit: hand over to a fresh job (the enrollment is still due).
        async with self._uow(TenantScope.location(location_id)) as uow:
            enrollment = await uow.enrollments.get(enrollment_id, lock=True)
            if (
                enrollment is not None
                and enrollment.status is EnrollmentStatus.ACTIVE
                and enrollment.tick == current
            ):
                await uow.jobs.enqueue(run_job(enrollment))
                await uow.commit()
        return ran

    async def give_up(self, location_id: uuid.UUID, enrollment_id: uuid.UUID, tick: int, error: str) -> None:
        """The job of the enrollment at `tick` failed its last attempt: the enrollment fails with the
        error rather than stay active with nothing left to run it."""
        async with self._uow(TenantScope.location(location_id)) as uow:
            enrollment = await uow.enrollments.get(enrollment_id, lock=True)
            if enrollment is None or enrollment.status not in RUNNING or enrollment.tick < tick:
                return
            await self._moves.finish(
                uow, enrollment, EnrollmentStatus.FAILED, f"{enrollment.step_id}: {error}"[:500]
            )
            await uow.commit()

    async def _one(
        self,
        uow: WorkflowsUnitOfWork,
        carry: _Carry,
        location_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        tick: int,
        *,
        adopt: bool,
    ) -> int | _Outside | None:
        """Runs the step due at `tick` in the caller's transaction, if it is due now; answers the tick to
        go on with at once, None (finished, waiting, moved by someone else: the caller commits and stops)
        or the step to run outside the transaction (after the caller commits). Raises _Refused when a
        service refused the step (the caller rolls back)."""
        enrollment = carry.enrollment or await uow.enrollments.get(enrollment_id, lock=True)
        carry.enrollment = enrollment
        if enrollment is None or enrollment.status not in RUNNING or enrollment.step_id is None:
            return None
        if enrollment.tick != tick and not (adopt and enrollment.status is EnrollmentStatus.ACTIVE):
            return None
        definition = await self._moves.definition_of(uow, enrollment)
        if definition is None:
            await self._moves.finish(uow, enrollment, EnrollmentStatus.FAILED, "version_missing")
            return None
        now = self._clock.now()
        woken = False
        if enrollment.status is EnrollmentStatus.WAITING:
            if enrollment.wake_at is not None and enrollment.wake_at > now:
                # Woken early (the database's clock runs ahead of ours): come back at the time.
                await uow.jobs.enqueue(run_job(enrollment, enrollment.wake_at))
                return None
            if enrollment.waiting_for is not None:
                if enrollment.wake_at is None:
                    return None  # an event wait without a timeout: only its event moves it
                wait = definition.step(str(enrollment.waiting_for["step"]))
                await self._moves.record(
                    uow,
                    enrollment,
                    wait,
                    enrollment.tick,
                    Outcome(StepRunStatus.DONE, "timed_out", "the event did not happen in time"),
                )
                target = definition.after(wait.id, wait.timeout_next if isinstance(wait, Wait) else None)
                await self._moves.move(uow, enrollment, target, queue=False)
                return enrollment.tick if _active(enrollment) else None
            enrollment.status = EnrollmentStatus.ACTIVE
            enrollment.wake_at = None
            woken = True
        # The location is read once per job; the contact once per transaction, then kept as the steps
        # in this transaction change it.
        location = carry.location or await uow.locations.get(location_id)
        contact = carry.contact or await uow.contacts.get(enrollment.contact_id)
        carry.location, carry.contact = location, contact
        if (
            location is None
            or contact is None
            or contact.deleted_at is not None
            or contact.erased_at is not None
        ):
            await self._moves.finish(uow, enrollment, EnrollmentStatus.STOPPED, "contact_removed")
            return None
        step = definition.step(enrollment.step_id)
        tick = enrollment.tick
        handler = self._steps.of(step)
        if handler.placement is Placement.OUTSIDE:
            if woken:  # the step acts outside this transaction: the wake-up commits before it does
                enrollment.updated_at = now
                await uow.enrollments.update(enrollment)
            return _Outside(location, definition, enrollment, contact, step, tick)
        ctx = StepContext(self, self._moves, uow, location, definition, enrollment, contact, tick, now)
        try:
            result = await handler.run(ctx, step)
        except DomainError as exc:
            if not handler.refusable:
                raise
            raise _Refused(definition, step, tick, _refusal(exc), woken=woken) from exc
        carry.contact = ctx.contact
        if isinstance(result, bool):  # the handler moved the enrollment itself
            return enrollment.tick if result else None
        await self._moves.record(uow, enrollment, step, tick, result)
        if result.fail_enrollment:
            await self._moves.finish(
                uow, enrollment, EnrollmentStatus.FAILED, f"{step.id}: {result.error or result.outcome}"
            )
            return None
        if result.output is not None:
            enrollment.outputs = {**enrollment.outputs, step.id: result.output}
        await self._moves.move(uow, enrollment, definition.next_of(step.id), queue=False)
        return enrollment.tick if _active(enrollment) else None

    async def _act(self, o: _Outside) -> Outcome:
        """A step placed outside the enrollment's transaction; a service's refusal fails it."""
        now = self._clock.now()
        ctx = StepContext(
            self, self._moves, None, o.location, o.definition, o.enrollment, o.contact, o.tick, now
        )
        try:
            result = await self._steps.of(o.step).run(ctx, o.step)
        except DomainError as exc:
            return _refusal(exc)
        if isinstance(result, bool):  # pragma: no cover - only steps in the transaction move themselves
            raise TypeError(f"{o.step.type} runs outside the transaction and cannot move the enrollment")
        return result

    async def _conclude(
        self,
        location_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        definition: Definition,
        step: Step,
        tick: int,
        outcome: Outcome,
        *,
        woken: bool,
    ) -> int | None:
        """The ledger row and the move of a step done outside the enrollment's transaction (or refused:
        `woken`, the enrollment may still be waiting, as its wake-up was rolled back)."""
        async with self._uow(TenantScope.location(location_id)) as uow:
            current = await uow.enrollments.get(enrollment_id, lock=True)
            if current is None:
                return None
            await self._moves.record(uow, current, step, tick, outcome)
            running = current.status is EnrollmentStatus.ACTIVE or (
                woken and current.status is EnrollmentStatus.WAITING
            )
            if current.tick != tick or not running:
                await uow.commit()  # moved meanwhile (a goal, a stop): the effect stands, the move is theirs
                return None
            if outcome.output is not None:
                current.outputs = {**current.outputs, step.id: outcome.output}
            if outcome.fail_enrollment:
                await self._moves.finish(
                    uow, current, EnrollmentStatus.FAILED, f"{step.id}: {outcome.error or outcome.outcome}"
                )
            else:
                await self._moves.move(uow, current, definition.next_of(step.id), queue=False)
            await uow.commit()
            return current.tick if _active(current) else None
