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

import calendar
import json
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast
from zoneinfo import ZoneInfo

from ghl_core.contacts.models import Contact
from ghl_core.contacts.services import ContactService
from ghl_core.conversations.models import Channel, ContactOptedOut, MessageSource, NoAddress
from ghl_core.conversations.ports import InboxFilter
from ghl_core.conversations.services import ConversationService, Draft
from ghl_core.conversations.templates import TemplateError, TemplateRenderer, merge_context, off_loop
from ghl_core.jobs.ports import JobRequest
from ghl_core.legacy_uow import UnitOfWork, UnitOfWorkFactory
from ghl_core.notes.services import NoteService
from ghl_core.pipelines.opportunities import OpportunityService
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import DomainError
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import PageRequest
from ghl_core.shared.scope import TenantScope
from ghl_core.tags.services import TagService
from ghl_core.tasks.services import TaskService
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor
from ghl_core.webhooks.addresses import UnsafeUrl, UrlGuard
from ghl_core.webhooks.ports import WebhookSender
from ghl_core.workflows.conditions import Facts, evaluate, split_bucket
from ghl_core.workflows.definition import (
    AddNote,
    AddTag,
    AddToWorkflow,
    AssignUser,
    CreateOpportunity,
    CreateTask,
    Definition,
    End,
    Goal,
    Goto,
    IfElse,
    InternalNotification,
    MoveStage,
    ReminderTrigger,
    RemoveFromWorkflow,
    RemoveTag,
    SendEmail,
    SendSms,
    SetDnd,
    SetOpportunityStatus,
    Split,
    Step,
    UpdateField,
    Wait,
    Webhook,
    parse_definition,
)
from ghl_core.workflows.models import (
    RUNNING,
    Enrollment,
    EnrollmentStatus,
    StepRun,
    StepRunStatus,
    WorkflowVersion,
)
from ghl_core.workflows.ports import EnrollmentRepository
from ghl_core.workflows.triggers import Occurrence, event_matches, occurrences, trigger_matches
from ghl_core.workflows.waits import wake_time

STEP_KIND = "workflows.run"
CHAIN = 25  # steps one job runs before handing over (keeps a long chain from hogging a worker slot)
_DEFINITIONS = 512  # parsed versions kept in memory (they never change once published)
_ID_NAMESPACE = uuid.UUID("5b0d7c1e-8f4e-4d0a-9a53-1f0f4b0e7a11")
MAX_OUTPUT = 16_384
# Locations carry no currency yet: a workflow's opportunity values are in this one.
CURRENCY = "USD"


@dataclass(frozen=True, slots=True)
class StepServices:
    """The core services that steps act through."""

    contacts: ContactService
    tags: TagService
    notes: NoteService
    tasks: TaskService
    opportunities: OpportunityService


def run_job(enrollment: Enrollment, at: datetime | None = None) -> JobRequest:
    """The job that runs the enrollment at its current tick (now, or at `at`)."""
    return JobRequest(
        kind=STEP_KIND,
        args={"enrollment_id": str(enrollment.id), "tick": enrollment.tick},
        location_id=enrollment.location_id,
        run_at=at,
    )


def _active(enrollment: Enrollment) -> bool:
    return enrollment.status is EnrollmentStatus.ACTIVE


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


def _refusal(exc: DomainError) -> Outcome:
    """A service refused the step (its checks, a contact gone): the step fails, and its enrollment."""
    return Outcome(
        StepRunStatus.FAILED, "failed", str(exc), error=f"{type(exc).__name__}: {exc}", fail_enrollment=True
    )


# Steps acting through a service that can run inside the enrollment's transaction: their change, the
# ledger row and the move commit together (exactly once).
_IN_TRANSACTION = (AddTag, RemoveTag, UpdateField, AssignUser, SetDnd)


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


class _Deferred:
    """The enrollment repository of a job's transaction, holding back the ledger rows and the running
    enrollment's updates: they are written in two statements before the transaction commits (`flush`),
    or before any other use of the repository, so every read still sees them."""

    def __init__(self, inner: EnrollmentRepository, enrollment_id: uuid.UUID) -> None:
        self._inner = inner
        self._id = enrollment_id
        self._runs: list[StepRun] = []
        self._latest: Enrollment | None = None

    async def add_steps(self, runs: Sequence[StepRun]) -> None:
        self._runs.extend(runs)

    async def update(self, enrollment: Enrollment) -> None:
        if enrollment.id != self._id:
            await self.flush()
            await self._inner.update(enrollment)
            return
        self._latest = enrollment

    async def flush(self) -> None:
        runs, self._runs = self._runs, []
        latest, self._latest = self._latest, None
        if runs:
            await self._inner.add_steps(runs)
        if latest is not None:
            await self._inner.update(latest)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        async def flushed(*args: Any, **kwargs: Any) -> Any:
            await self.flush()
            return await method(*args, **kwargs)

        return flushed


class WorkflowEngine:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        conversations: ConversationService,
        renderer: TemplateRenderer,
        services: StepServices,
        guard: UrlGuard,
        sender: WebhookSender,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._conversations = conversations
        self._renderer = renderer
        self._services = services
        self._guard = guard
        self._sender = sender
        self._definitions: OrderedDict[tuple[uuid.UUID, int], Definition] = OrderedDict()

    @property
    def renderer(self) -> TemplateRenderer:
        return self._renderer

    @property
    def guard(self) -> UrlGuard:
        """What webhook steps' addresses are checked with (when they run; at publish too)."""
        return self._guard

    @property
    def contacts(self) -> ContactService:
        return self._services.contacts

    # ------------------------------------------------------------------ definitions

    def definition(self, version: WorkflowVersion) -> Definition:
        key = (version.workflow_id, version.version)
        found = self._definitions.get(key)
        if found is None:
            found = parse_definition(version.definition)
            self._definitions[key] = found
            if len(self._definitions) > _DEFINITIONS:
                self._definitions.popitem(last=False)
        else:
            self._definitions.move_to_end(key)
        return found

    async def _definition_of(self, uow: UnitOfWork, enrollment: Enrollment) -> Definition | None:
        key = (enrollment.workflow_id, enrollment.version)
        if key in self._definitions:
            self._definitions.move_to_end(key)
            return self._definitions[key]
        version = await uow.workflows.version(enrollment.workflow_id, enrollment.version)
        return self.definition(version) if version is not None else None

    # ------------------------------------------------------------------ enrolling

    async def enroll(
        self,
        uow: UnitOfWork,
        version: WorkflowVersion,
        contact_id: uuid.UUID,
        *,
        trigger: str,
        cause: str | None,
        opportunity_id: uuid.UUID | None = None,
    ) -> Enrollment | None:
        """Enrolls the contact in the caller's transaction and queues its first step; None when the
        workflow's rules refuse it (already enrolled and re-entry not allowed, or the same cause)."""
        definition = self.definition(version)
        now = self._clock.now()
        first = definition.steps[0].id if definition.steps else None
        enrollment = Enrollment(
            id=new_id(),
            location_id=version.location_id,
            workflow_id=version.workflow_id,
            version=version.version,
            contact_id=contact_id,
            status=EnrollmentStatus.ACTIVE if first else EnrollmentStatus.COMPLETED,
            started_at=now,
            updated_at=now,
            trigger=trigger,
            step_id=first,
            cause=cause,
            opportunity_id=opportunity_id,
            finished_at=None if first else now,
        )
        if definition.settings.allow_reentry:
            added = await uow.enrollments.add(enrollment)
        else:
            added = await uow.enrollments.add_exclusive(enrollment)
        if not added:
            return None
        if first:
            await uow.jobs.enqueue(run_job(enrollment))
        return enrollment

    # ------------------------------------------------------------------ the event consumer

    async def handle_events(self, location_id: uuid.UUID, events: Sequence[DomainEvent]) -> int:
        """The `workflows` consumer of domain events: triggers enroll, event waits resume, goals jump,
        replies stop, a contact that left stops. Answers how many enrollments it started."""
        found = [(e, occ) for e in events for occ in occurrences(e)]
        if not found:
            return 0
        started = 0
        async with self._uow(TenantScope.location(location_id)) as uow:
            versions = await uow.workflows.published(location_id)
            candidates = [(v, self.definition(v)) for v in versions]
            contacts: dict[uuid.UUID, Contact | None] = {}
            for event, occ in found:
                if occ.removed:
                    await uow.enrollments.stop_all(
                        contact_id=occ.contact_id,
                        location_id=location_id,
                        reason="contact_removed",
                        now=self._clock.now(),
                    )
                    continue
                if occ.event is not None or occ.reply:
                    for enrollment in await uow.enrollments.running_for_contact(location_id, occ.contact_id):
                        await self._answer(uow, enrollment, occ)
                if occ.trigger is None:
                    continue
                for version, definition in candidates:
                    hit = next((t for t in definition.triggers if trigger_matches(t, occ)), None)
                    if hit is None:
                        continue
                    if hit.filters is not None:
                        if occ.contact_id not in contacts:
                            contacts[occ.contact_id] = await uow.contacts.get(occ.contact_id)
                        contact = contacts[occ.contact_id]
                        if contact is None or not evaluate(
                            hit.filters,
                            Facts(
                                contact=contact.snapshot(), opportunity=occ.opportunity, now=self._clock.now()
                            ),
                        ):
                            continue
                    enrolled = await self.enroll(
                        uow,
                        version,
                        occ.contact_id,
                        trigger=hit.type,
                        cause=f"event:{event.id}",
                        opportunity_id=occ.opportunity_id,
                    )
                    started += enrolled is not None
            await uow.commit()
        return started

    async def remind(self, location_id: uuid.UUID) -> int:
        """Birthday and custom-date reminders of the location's published workflows: a periodic job calls
        this every few minutes. A reminder "n days before at 09:00" enrolls, once the location's clock has
        passed 09:00, the contacts whose date falls n days from today (a birthday every year; 29 February
        on 28 February in other years). Each (workflow, trigger, contact, date) enrolls once, however often
        this runs, so a run missed for a while catches up on the same day."""
        now = self._clock.now()
        started = 0
        async with self._uow(TenantScope.location(location_id)) as uow:
            location = await uow.locations.get(location_id)
            if location is None or location.deleted_at is not None:
                return 0
            local = now.astimezone(ZoneInfo(location.timezone))
            for version in await uow.workflows.published(location_id):
                definition = self.definition(version)
                for index, trigger in enumerate(definition.triggers):
                    if not isinstance(trigger, ReminderTrigger) or local.time() < trigger.at:
                        continue
                    day = local.date() + timedelta(days=trigger.days_before - trigger.days_after)
                    if trigger.type == "birthday_reminder":
                        ids = await uow.contacts.ids_with_birthday(location_id, day.month, day.day)
                        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
                            ids += await uow.contacts.ids_with_birthday(location_id, 2, 29)
                    else:
                        key = str(trigger.field).removeprefix("custom.")
                        ids = await uow.contacts.ids_with_custom_date(location_id, key, day)
                    for contact_id in ids:
                        if trigger.filters is not None:
                            contact = await uow.contacts.get(contact_id)
                            if contact is None or not evaluate(
                                trigger.filters, Facts(contact=contact.snapshot(), now=now)
                            ):
                                continue
                        enrolled = await self.enroll(
                            uow,
                            version,
                            contact_id,
                            trigger=trigger.type,
                            cause=f"reminder:{index}:{contact_id}:{day.isoformat()}",
                        )
                        started += enrolled is not None
            await uow.commit()
        return started

    async def _answer(self, uow: UnitOfWork, enrollment: Enrollment, occ: Occurrence) -> None:
        """What an occurrence does to one running enrollment of its contact."""
        definition = await self._definition_of(uow, enrollment)
        if definition is None:
            return
        now = self._clock.now()
        if occ.reply and definition.settings.stop_on_reply:
            await self._finish(uow, enrollment, EnrollmentStatus.STOPPED, "replied")
            return
        if occ.event is None:
            return
        for step in definition.steps:
            if isinstance(step, Goal) and event_matches(step.event, occ):
                await self._record(
                    uow,
                    enrollment,
                    step,
                    enrollment.tick + 1,
                    Outcome(StepRunStatus.DONE, "goal", f"goal reached: {occ.event}"),
                )
                await self._move(
                    uow, enrollment, definition.after(step.id, step.then), finished=EnrollmentStatus.GOAL
                )
                return
        waiting = enrollment.waiting_for
        if enrollment.status is EnrollmentStatus.WAITING and waiting and waiting.get("event") == occ.event:
            wait = definition.step(str(waiting["step"]))
            if isinstance(wait, Wait) and event_matches(wait.wait, occ):
                await self._record(
                    uow,
                    enrollment,
                    wait,
                    enrollment.tick,
                    Outcome(StepRunStatus.DONE, "resumed", f"{occ.event} happened at {now.isoformat()}"),
                )
                await self._move(uow, enrollment, definition.next_of(wait.id))

    # ------------------------------------------------------------------ moving an enrollment

    async def _move(
        self,
        uow: UnitOfWork,
        enrollment: Enrollment,
        target: str | None,
        *,
        finished: EnrollmentStatus = EnrollmentStatus.COMPLETED,
        queue: bool = True,
    ) -> None:
        """To `target` (None: finished), one tick on; queues the job that runs it unless the caller goes on
        running the enrollment itself."""
        enrollment.tick += 1
        enrollment.wake_at = None
        enrollment.waiting_for = None
        if target is None:
            await self._finish(uow, enrollment, finished, None, tick=False)
            return
        enrollment.step_id = target
        enrollment.status = EnrollmentStatus.ACTIVE
        enrollment.updated_at = self._clock.now()
        await uow.enrollments.update(enrollment)
        if queue:
            await uow.jobs.enqueue(run_job(enrollment))

    async def _finish(
        self,
        uow: UnitOfWork,
        enrollment: Enrollment,
        status: EnrollmentStatus,
        reason: str | None,
        *,
        tick: bool = True,
    ) -> None:
        now = self._clock.now()
        if tick:
            enrollment.tick += 1
        enrollment.status = status
        enrollment.step_id = None
        enrollment.wake_at = None
        enrollment.waiting_for = None
        enrollment.finished_at = now
        enrollment.updated_at = now
        enrollment.reason = reason
        await uow.enrollments.update(enrollment)

    async def _record(
        self, uow: UnitOfWork, enrollment: Enrollment, step: Step, tick: int, outcome: Outcome
    ) -> None:
        now = self._clock.now()
        await uow.enrollments.add_steps(
            [
                StepRun(
                    enrollment_id=enrollment.id,
                    location_id=enrollment.location_id,
                    workflow_id=enrollment.workflow_id,
                    step_id=step.id,
                    tick=tick,
                    type=step.type,
                    status=outcome.status,
                    started_at=now,
                    outcome=outcome.outcome,
                    detail=outcome.detail,
                    output=outcome.output,
                    error=outcome.error,
                    finished_at=now,
                )
            ]
        )

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
                    deferred = _Deferred(uow.enrollments, enrollment_id)
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
                outcome = await self._act(o.location, o.definition, o.enrollment, o.contact, o.step, o.tick)
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
            await self._finish(
                uow, enrollment, EnrollmentStatus.FAILED, f"{enrollment.step_id}: {error}"[:500]
            )
            await uow.commit()

    async def _one(
        self,
        uow: UnitOfWork,
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
        definition = await self._definition_of(uow, enrollment)
        if definition is None:
            await self._finish(uow, enrollment, EnrollmentStatus.FAILED, "version_missing")
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
                await self._record(
                    uow,
                    enrollment,
                    wait,
                    enrollment.tick,
                    Outcome(StepRunStatus.DONE, "timed_out", "the event did not happen in time"),
                )
                target = definition.after(wait.id, wait.timeout_next if isinstance(wait, Wait) else None)
                await self._move(uow, enrollment, target, queue=False)
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
            await self._finish(uow, enrollment, EnrollmentStatus.STOPPED, "contact_removed")
            return None
        step = definition.step(enrollment.step_id)
        tick = enrollment.tick
        inline = await self._inline(uow, location, definition, enrollment, contact, step, now)
        if inline is not None:
            return enrollment.tick if inline else None
        if isinstance(step, _IN_TRANSACTION):
            try:
                outcome, carry.contact = await self._act_in(uow, location, contact, step)
            except DomainError as exc:
                raise _Refused(definition, step, tick, _refusal(exc), woken=woken) from exc
            await self._record(uow, enrollment, step, tick, outcome)
            await self._move(uow, enrollment, definition.next_of(step.id), queue=False)
            return enrollment.tick if _active(enrollment) else None
        if woken:  # the step acts outside this transaction: the wake-up commits before it does
            enrollment.updated_at = now
            await uow.enrollments.update(enrollment)
        return _Outside(location, definition, enrollment, contact, step, tick)

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
            await self._record(uow, current, step, tick, outcome)
            running = current.status is EnrollmentStatus.ACTIVE or (
                woken and current.status is EnrollmentStatus.WAITING
            )
            if current.tick != tick or not running:
                await uow.commit()  # moved meanwhile (a goal, a stop): the effect stands, the move is theirs
                return None
            if outcome.output is not None:
                current.outputs = {**current.outputs, step.id: outcome.output}
            if outcome.fail_enrollment:
                await self._finish(
                    uow, current, EnrollmentStatus.FAILED, f"{step.id}: {outcome.error or outcome.outcome}"
                )
            else:
                await self._move(uow, current, definition.next_of(step.id), queue=False)
            await uow.commit()
            return current.tick if _active(current) else None

    async def _inline(
        self,
        uow: UnitOfWork,
        location: Location,
        definition: Definition,
        enrollment: Enrollment,
        contact: Contact,
        step: Step,
        now: datetime,
    ) -> bool | None:
        """Steps the engine does itself in the enrollment's transaction (flow, waits, messages). Answers
        whether to go on at once, or None for a step that acts through another service."""
        tick = enrollment.tick
        if isinstance(step, Wait):
            spec = step.wait
            zone = self._zone(definition, location, contact, spec.zone)
            wake = wake_time(spec, now, zone)
            if spec.kind == "event":
                enrollment.tick += 1
                enrollment.status = EnrollmentStatus.WAITING
                enrollment.waiting_for = {"event": spec.event, "step": step.id}
                enrollment.wake_at = wake
                enrollment.updated_at = now
                await uow.enrollments.update(enrollment)
                detail = f"waiting for {spec.event}" + (f" until {wake.isoformat()}" if wake else "")
                await self._record(
                    uow, enrollment, step, tick, Outcome(StepRunStatus.WAITING, "waiting", detail)
                )
                if wake is not None:
                    await uow.jobs.enqueue(run_job(enrollment, wake))
                return False
            if wake is None or wake <= now:
                await self._record(
                    uow, enrollment, step, tick, Outcome(StepRunStatus.DONE, "waited", "already due")
                )
                await self._move(uow, enrollment, definition.next_of(step.id), queue=False)
                return _active(enrollment)
            await self._record(
                uow,
                enrollment,
                step,
                tick,
                Outcome(StepRunStatus.DONE, "waiting", f"until {wake.isoformat()}"),
            )
            await self._move(uow, enrollment, definition.next_of(step.id), queue=False)
            if enrollment.status is EnrollmentStatus.ACTIVE:
                enrollment.status = EnrollmentStatus.WAITING
                enrollment.wake_at = wake
                await uow.enrollments.update(enrollment)
                await uow.jobs.enqueue(run_job(enrollment, wake))
            return False
        if isinstance(step, SendSms | SendEmail):
            window = definition.settings.send_window
            zone = self._zone(definition, location, contact, None)
            if window is not None and not window.contains(now, zone):
                opens = window.first_inside(now, zone)
                await self._record(
                    uow,
                    enrollment,
                    step,
                    tick,
                    Outcome(StepRunStatus.WAITING, "send_window", f"held until {opens.isoformat()}"),
                )
                enrollment.tick += 1
                enrollment.status = EnrollmentStatus.WAITING
                enrollment.wake_at = opens
                enrollment.updated_at = now
                await uow.enrollments.update(enrollment)
                await uow.jobs.enqueue(run_job(enrollment, opens))
                return False
            outcome = await self._send(uow, location, enrollment, contact, step, tick)
        elif isinstance(step, IfElse):
            facts = await self._facts(uow, enrollment, contact, now)
            for branch in step.branches:
                if evaluate(branch.when, facts):
                    await self._record(
                        uow, enrollment, step, tick, Outcome(StepRunStatus.DONE, "branch", branch.name)
                    )
                    await self._move(uow, enrollment, definition.after(step.id, branch.next), queue=False)
                    return _active(enrollment)
            await self._record(uow, enrollment, step, tick, Outcome(StepRunStatus.DONE, "branch", "else"))
            await self._move(uow, enrollment, definition.after(step.id, step.else_), queue=False)
            return _active(enrollment)
        elif isinstance(step, Split):
            bucket = split_bucket(
                f"{enrollment.workflow_id}:{enrollment.contact_id}:{step.id}", step.percentages
            )
            path = step.paths[bucket]
            await self._record(
                uow,
                enrollment,
                step,
                tick,
                Outcome(StepRunStatus.DONE, "branch", f"path {bucket + 1} ({path.percent}%)"),
            )
            await self._move(uow, enrollment, definition.after(step.id, path.next), queue=False)
            return _active(enrollment)
        elif isinstance(step, Goto):
            await self._record(uow, enrollment, step, tick, Outcome(StepRunStatus.DONE, "goto", step.step))
            await self._move(uow, enrollment, step.step, queue=False)
            return _active(enrollment)
        elif isinstance(step, End):
            await self._record(uow, enrollment, step, tick, Outcome(StepRunStatus.DONE, "end"))
            await self._finish(uow, enrollment, EnrollmentStatus.COMPLETED, None)
            return False
        elif isinstance(step, Goal):
            outcome = Outcome(StepRunStatus.DONE, "passed", "goal step reached in the normal flow")
        elif isinstance(step, AddToWorkflow):
            outcome = await self._add_to(uow, enrollment, step)
        elif isinstance(step, RemoveFromWorkflow):
            stopped = await uow.enrollments.stop_all(
                workflow_id=step.workflow_id,
                contact_id=enrollment.contact_id,
                location_id=enrollment.location_id,
                reason=f"removed by workflow {enrollment.workflow_id}",
                now=now,
            )
            outcome = Outcome(StepRunStatus.DONE, "removed" if stopped else "not_enrolled")
        elif isinstance(step, InternalNotification):
            try:
                body = await self._render(step.body, contact, location, "/body")
            except TemplateError as exc:
                outcome = Outcome(
                    StepRunStatus.FAILED, "failed", str(exc), error=str(exc), fail_enrollment=True
                )
            else:
                outcome = Outcome(
                    StepRunStatus.SKIPPED,
                    "not_delivered",
                    "internal notifications are recorded here only: user notifications are not built yet",
                    output={"channel": step.channel, "body": body},
                )
        else:
            return None
        await self._record(uow, enrollment, step, tick, outcome)
        if outcome.fail_enrollment:
            await self._finish(
                uow, enrollment, EnrollmentStatus.FAILED, f"{step.id}: {outcome.error or outcome.outcome}"
            )
            return False
        if outcome.output is not None:
            enrollment.outputs = {**enrollment.outputs, step.id: outcome.output}
        await self._move(uow, enrollment, definition.next_of(step.id), queue=False)
        return _active(enrollment)

    @staticmethod
    def _zone(definition: Definition, location: Location, contact: Contact, which: str | None) -> ZoneInfo:
        which = which or definition.settings.time_zone
        if which == "contact" and contact.timezone:
            try:
                return ZoneInfo(contact.timezone)
            except (KeyError, ValueError):
                pass
        return ZoneInfo(location.timezone)

    async def _render(self, source: str, contact: Contact, location: Location, pointer: str = "") -> str:
        """One text template for the contact, in a worker thread (renders stay off the event loop)."""
        context = merge_context(contact, location)
        return await off_loop(
            partial(self._renderer.render, source, context, pointer=pointer), pointer=pointer
        )

    async def _facts(self, uow: UnitOfWork, enrollment: Enrollment, contact: Contact, now: datetime) -> Facts:
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

    async def _send(
        self,
        uow: UnitOfWork,
        location: Location,
        enrollment: Enrollment,
        contact: Contact,
        step: SendSms | SendEmail,
        tick: int,
    ) -> Outcome:
        context = merge_context(contact, location)
        renderer = self._renderer

        def drafted() -> Draft:
            if isinstance(step, SendSms):
                return Draft(
                    channel=Channel.SMS,
                    body=renderer.render(step.body, context, pointer="/body"),
                    marketing=step.marketing,
                )
            return Draft(
                channel=Channel.EMAIL,
                body=renderer.render(step.body or "", context, pointer="/body"),
                subject=renderer.render(step.subject, context, pointer="/subject"),
                html=renderer.render_html(step.html, context, pointer="/html") if step.html else None,
                marketing=step.marketing,
            )

        try:
            draft = await off_loop(drafted, pointer="/body")  # a template error fails the step, recorded
            message, created = await self._conversations.enqueue(
                uow,
                location,
                contact,
                draft,
                source=MessageSource.WORKFLOW,
                cause=f"workflow:{enrollment.id}:{step.id}:{tick}",
            )
        except ContactOptedOut:
            return Outcome(
                StepRunStatus.SKIPPED,
                "skipped_dnd",
                f"do-not-disturb is on for {step.type.removeprefix('send_')}",
            )
        except NoAddress:
            return Outcome(
                StepRunStatus.SKIPPED, "skipped_no_address", "the contact has no address for this channel"
            )
        except DomainError as exc:
            return Outcome(StepRunStatus.FAILED, "failed", str(exc), error=str(exc), fail_enrollment=True)
        return Outcome(
            StepRunStatus.DONE,
            "queued" if created else "already_queued",
            f"message {message.id}",
            output={"message_id": str(message.id)},
        )

    async def _add_to(self, uow: UnitOfWork, enrollment: Enrollment, step: AddToWorkflow) -> Outcome:
        workflow = await uow.workflows.get(step.workflow_id)
        if workflow is None or workflow.deleted_at is not None or workflow.version == 0:
            return Outcome(
                StepRunStatus.FAILED,
                "failed",
                "the workflow does not exist or was never published",
                error="workflow_not_found",
            )
        version = await uow.workflows.version(workflow.id, workflow.version)
        if version is None or workflow.status.value != "published":
            return Outcome(StepRunStatus.SKIPPED, "not_published", "the workflow is not published")
        added = await self.enroll(
            uow,
            version,
            enrollment.contact_id,
            trigger="workflow",
            cause=f"workflow:{enrollment.id}:{step.id}:{enrollment.tick}",
        )
        if added is None:
            return Outcome(
                StepRunStatus.SKIPPED, "already_enrolled", "the contact is already in that workflow"
            )
        return Outcome(
            StepRunStatus.DONE, "enrolled", f"enrollment {added.id}", output={"enrollment_id": str(added.id)}
        )

    # ------------------------------------------------------------------ steps acting through services

    async def _act_in(
        self, uow: UnitOfWork, location: Location, contact: Contact, step: Step
    ) -> tuple[Outcome, Contact]:
        """A step of _IN_TRANSACTION through its service, in the enrollment's transaction: answers the
        outcome and the contact as it is now. Raises DomainError when the service refuses."""
        actor = Actor.operator_at(location.id)
        s = self._services
        if isinstance(step, AddTag | RemoveTag):
            adding = isinstance(step, AddTag)
            changed = await s.tags.tag_contact_in(
                uow,
                actor,
                contact.id,
                add=list(step.tags) if adding else None,
                remove=None if adding else list(step.tags),
                location=location,
                contact=contact,
            )
            verb = "added" if adding else "removed"
            return Outcome(StepRunStatus.DONE, "done", f"tags {verb}: {', '.join(step.tags)}"), changed
        if isinstance(step, UpdateField):
            value: Any = list(step.value) if isinstance(step.value, tuple) else step.value
            if isinstance(value, str):
                value = await self._render(value, contact, location, "/value")
            if step.field.startswith("custom."):
                data: dict[str, Any] = {"custom_fields": {step.field.removeprefix("custom."): value}}
            else:
                data = {step.field: value}
            changed = await s.contacts.update_in(uow, actor, contact.id, data, location=location)
            return Outcome(StepRunStatus.DONE, "done", f"{step.field} set"), changed
        if isinstance(step, AssignUser):
            changed = await s.contacts.update_in(
                uow, actor, contact.id, {"assigned_user_id": str(step.user_id)}, location=location
            )
            return Outcome(StepRunStatus.DONE, "done", f"assigned to {step.user_id}"), changed
        if isinstance(step, SetDnd):
            if step.channel == "all":
                dnd: dict[str, Any] = {"dnd": step.on}
            else:
                dnd = {"dnd_channels": {**contact.dnd_channels, step.channel: step.on}}
            changed = await s.contacts.update_in(uow, actor, contact.id, dnd, location=location)
            state = "on" if step.on else "off"
            return Outcome(StepRunStatus.DONE, "done", f"do-not-disturb {state} for {step.channel}"), changed
        raise TypeError(f"{step.type} does not run in the enrollment's transaction")  # pragma: no cover

    async def _act(
        self,
        location: Location,
        definition: Definition,
        enrollment: Enrollment,
        contact: Contact,
        step: Step,
        tick: int,
    ) -> Outcome:
        actor = Actor.operator_at(location.id)
        s = self._services
        try:
            if isinstance(step, AddNote):
                note = await s.notes.create(
                    actor,
                    contact.id,
                    {"body": await self._render(step.body, contact, location, "/body")},
                    id=effect_id(enrollment.id, step.id, tick),
                )
                return Outcome(
                    StepRunStatus.DONE, "done", f"note {note.id}", output={"note_id": str(note.id)}
                )
            if isinstance(step, CreateTask):
                title = await self._render(step.title, contact, location, "/title")
                task_data: dict[str, Any] = {"title": title}
                if step.body:
                    task_data["body"] = await self._render(step.body, contact, location, "/body")
                if step.due_in is not None:
                    due = wake_time(
                        step.due_in, self._clock.now(), self._zone(definition, location, contact, None)
                    )
                    task_data["due_at"] = due
                assignee = step.assignee_id or contact.assigned_user_id
                if assignee is not None:
                    task_data["assignee_id"] = str(assignee)  # the task service's name, not the contact's
                task = await s.tasks.create(
                    actor, contact.id, task_data, id=effect_id(enrollment.id, step.id, tick)
                )
                return Outcome(
                    StepRunStatus.DONE, "done", f"task {task.id}", output={"task_id": str(task.id)}
                )
            if isinstance(step, CreateOpportunity):
                opp_data: dict[str, Any] = {
                    "pipeline_id": str(step.pipeline_id),
                    "stage_id": str(step.stage_id),
                    "contact_id": str(contact.id),
                    "name": step.name or contact.name or "Opportunity",
                    "status": step.status,
                }
                if step.value is not None:
                    opp_data["value"] = {"amount": step.value, "currency": CURRENCY}
                opp = await s.opportunities.create(
                    actor, opp_data, id=effect_id(enrollment.id, step.id, tick)
                )
                return Outcome(
                    StepRunStatus.DONE,
                    "done",
                    f"opportunity {opp.id}",
                    output={"opportunity_id": str(opp.id)},
                )
            if isinstance(step, MoveStage | SetOpportunityStatus):
                return await self._opportunity_step(actor, enrollment, contact, step)
            if isinstance(step, Webhook):
                return await self._webhook(location, enrollment, contact, step, tick)
        except DomainError as exc:
            return Outcome(
                StepRunStatus.FAILED,
                "failed",
                str(exc),
                error=f"{type(exc).__name__}: {exc}",
                fail_enrollment=True,
            )
        return Outcome(
            StepRunStatus.FAILED,
            "failed",
            f"no runner for {step.type}",
            error="unsupported",
            fail_enrollment=True,
        )

    async def _opportunity_step(
        self, actor: Actor, enrollment: Enrollment, contact: Contact, step: MoveStage | SetOpportunityStatus
    ) -> Outcome:
        s = self._services
        pipeline = step.pipeline_id if isinstance(step, MoveStage) else None
        target = None
        if enrollment.opportunity_id is not None:
            try:
                found = await s.opportunities.get(actor, enrollment.opportunity_id)
                if pipeline is None or found.pipeline_id == pipeline:
                    target = found
            except DomainError:
                target = None
        if target is None:
            page = await s.opportunities.list(
                actor, PageRequest(limit=1), pipeline_id=pipeline, contact_id=contact.id
            )
            target = page.items[0] if page.items else None
        if target is None:
            return Outcome(
                StepRunStatus.SKIPPED, "no_opportunity", "the contact has no opportunity to change"
            )
        if isinstance(step, MoveStage):
            await s.opportunities.move(actor, target.id, {"stage_id": str(step.stage_id)})
            return Outcome(
                StepRunStatus.DONE,
                "done",
                f"opportunity {target.id} moved",
                output={"opportunity_id": str(target.id)},
            )
        await s.opportunities.move(actor, target.id, {"status": step.status})
        return Outcome(
            StepRunStatus.DONE,
            "done",
            f"opportunity {target.id} {step.status}",
            output={"opportunity_id": str(target.id)},
        )

    async def _webhook(
        self, location: Location, enrollment: Enrollment, contact: Contact, step: Webhook, tick: int
    ) -> Outcome:
        context = merge_context(contact, location)
        renderer = self._renderer

        def rendered(value: Any) -> Any:
            if isinstance(value, str):
                return renderer.render(value, context, pointer="/body")
            if isinstance(value, list):
                return [rendered(v) for v in value]
            if isinstance(value, dict):
                return {k: rendered(v) for k, v in value.items()}
            return value

        def request() -> tuple[str, dict[str, str], Any]:
            return (
                renderer.render(step.url, context, pointer="/url"),
                {name: renderer.render(value, context, pointer="/headers") for name, value in step.headers},
                None if step.method == "GET" else rendered(step.body),
            )

        url, headers, payload = await off_loop(request, pointer="/url")  # one worker thread for them all
        try:
            target = await self._guard.check(url)
        except UnsafeUrl as exc:
            return Outcome(
                StepRunStatus.FAILED,
                "refused",
                str(exc),
                output={"status": None, "error": str(exc)},
                error=str(exc),
            )
        key = f"workflow:{enrollment.id}:{step.id}:{tick}"
        headers |= {"Content-Type": "application/json", "Idempotency-Key": key, "User-Agent": "ghl-workflows"}
        body = b"" if step.method == "GET" else json.dumps(payload, separators=(",", ":")).encode()
        result = await self._sender.send(target, headers, body, method=step.method)
        output: dict[str, Any] = {"status": result.status_code, "error": result.error}
        raw = getattr(result, "response_body", None)
        if raw:
            try:
                output["body"] = json.loads(raw[:MAX_OUTPUT])
            except ValueError:
                output["body"] = raw[:MAX_OUTPUT].decode("utf-8", "replace")
        ok = result.status_code is not None and 200 <= result.status_code < 300
        return Outcome(
            StepRunStatus.DONE if ok else StepRunStatus.FAILED,
            f"http_{result.status_code}" if result.status_code is not None else "network_error",
            f"{step.method} {target.host} answered {result.status_code}"
            if result.status_code
            else str(result.error),
            output=output,
            error=None if ok else (result.error or f"status {result.status_code}"),
        )
