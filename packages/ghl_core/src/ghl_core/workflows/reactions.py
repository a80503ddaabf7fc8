"""What happens to workflows when something happens to a contact: the `workflows` consumer of domain
events (triggers enroll, event waits resume, goals jump, replies stop, a contact that left stops) and the
periodic reminders (birthday and custom-date triggers). Both act in one transaction per call, through the
engine's moves (`WorkflowEngine`), so an enrollment moved here is run by the engine's step jobs."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from ghl_core.contacts.models import Contact
from ghl_core.shared.clock import Clock
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.workflows.conditions import Facts, evaluate
from ghl_core.workflows.models import Enrollment, EnrollmentStatus, StepRunStatus
from ghl_core.workflows.moves import Moves
from ghl_core.workflows.ports import WorkflowsUnitOfWork
from ghl_core.workflows.steps.base import Outcome
from ghl_core.workflows.steps.flow import Goal, Wait
from ghl_core.workflows.trigger_types import ReminderTrigger
from ghl_core.workflows.triggers import Occurrence, event_matches, occurrences, trigger_matches


class Reactions:
    def __init__(self, *, uow: UnitOfWorkFactory[WorkflowsUnitOfWork], clock: Clock, moves: Moves) -> None:
        self._uow = uow
        self._clock = clock
        self._moves = moves

    async def handle_events(self, location_id: uuid.UUID, events: Sequence[DomainEvent]) -> int:
        """The `workflows` consumer of domain events: triggers enroll, event waits resume, goals jump,
        replies stop, a contact that left stops. Answers how many enrollments it started."""
        found = [(e, occ) for e in events for occ in occurrences(e)]
        if not found:
            return 0
        started = 0
        moves = self._moves
        async with self._uow(TenantScope.location(location_id)) as uow:
            versions = await uow.workflows.published(location_id)
            candidates = [(v, moves.definition(v)) for v in versions]
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
                    enrolled = await moves.enroll(
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
                definition = self._moves.definition(version)
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
                        enrolled = await self._moves.enroll(
                            uow,
                            version,
                            contact_id,
                            trigger=trigger.type,
                            cause=f"reminder:{index}:{contact_id}:{day.isoformat()}",
                        )
                        started += enrolled is not None
            await uow.commit()
        return started

    async def _answer(self, uow: WorkflowsUnitOfWork, enrollment: Enrollment, occ: Occurrence) -> None:
        """What an occurrence does to one running enrollment of its contact."""
        moves = self._moves
        definition = await moves.definition_of(uow, enrollment)
        if definition is None:
            return
        now = self._clock.now()
        if occ.reply and definition.settings.stop_on_reply:
            await moves.finish(uow, enrollment, EnrollmentStatus.STOPPED, "replied")
            return
        if occ.event is None:
            return
        for step in definition.steps:
            if isinstance(step, Goal) and event_matches(step.event, occ):
                await moves.record(
                    uow,
                    enrollment,
                    step,
                    enrollment.tick + 1,
                    Outcome(StepRunStatus.DONE, "goal", f"goal reached: {occ.event}"),
                )
                await moves.move(
                    uow, enrollment, definition.after(step.id, step.then), finished=EnrollmentStatus.GOAL
                )
                return
        waiting = enrollment.waiting_for
        if enrollment.status is EnrollmentStatus.WAITING and waiting and waiting.get("event") == occ.event:
            wait = definition.step(str(waiting["step"]))
            if isinstance(wait, Wait) and event_matches(wait.wait, occ):
                await moves.record(
                    uow,
                    enrollment,
                    wait,
                    enrollment.tick,
                    Outcome(StepRunStatus.DONE, "resumed", f"{occ.event} happened at {now.isoformat()}"),
                )
                await moves.move(uow, enrollment, definition.next_of(wait.id))
