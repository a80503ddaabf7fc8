"""The receiving path every provider shares: verify first, store the raw event once, answer, process in a
job. Redelivery of a provider's event id stores nothing more and enqueues nothing more. A verified payload
that no job could store (a NUL) or walk (nested too deep) is refused at once (ghl_core.shared.untrusted):
accepted, it failed its job on every retry."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import replace

from ghl_core.inbound.models import (
    DONE,
    MAX_ERROR,
    MAX_EVENT_ID,
    EventStatus,
    InboundEvent,
    InboundReceipt,
    InboundRequest,
    InboundTarget,
    SignatureInvalid,
    UnusableEvent,
    safe_headers,
)
from ghl_core.inbound.ports import InboundRegistry, InboundUnitOfWork
from ghl_core.jobs.ports import JobRequest
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.untrusted import check_document
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission

PROCESS_KIND = "inbound.process"


class InboundService:
    def __init__(
        self, uow: UnitOfWorkFactory[InboundUnitOfWork], clock: Clock, registry: InboundRegistry
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._registry = registry

    async def receive(self, target: InboundTarget, request: InboundRequest) -> InboundReceipt:
        """Verifies, then stores the raw event and enqueues its processing in one transaction."""
        envelope = self._registry.verifier(target.provider).verify(request, target.secret)
        # What no job could store (a NUL) or walk (nesting too deep) is refused now, not retried for hours.
        check_document(envelope.payload)
        event_id = envelope.provider_event_id
        if not event_id or len(event_id) > MAX_EVENT_ID:
            raise SignatureInvalid(f"the event id must be 1 to {MAX_EVENT_ID} characters")
        event = InboundEvent(
            id=new_id(),
            location_id=target.location_id,
            endpoint_id=target.endpoint_id,
            provider=target.provider,
            scope=target.scope,
            provider_event_id=event_id,
            type=envelope.type,
            headers=safe_headers(request.headers),
            body=request.body,
            content_type=request.content_type,
            status=EventStatus.RECEIVED,
            received_at=self._clock.now(),
        )
        async with self._uow(TenantScope.location(target.location_id)) as uow:
            if not await uow.inbound_events.add(event):
                first = await uow.inbound_events.find(target.provider, target.scope, event_id)
                return InboundReceipt(event_id=first.id if first else None, duplicate=True)
            await uow.jobs.enqueue(
                JobRequest(
                    kind=PROCESS_KIND, args={"event_id": str(event.id)}, location_id=target.location_id
                )
            )
            await uow.commit()
        return InboundReceipt(event_id=event.id, duplicate=False)

    async def process(
        self, location_id: uuid.UUID, event_id: uuid.UUID, *, final_attempt: bool = True
    ) -> EventStatus | None:
        """Runs the event's processor once: an event already processed is left alone. A failure is
        recorded on the event (failed when no attempt is left) and raised again so the job retries."""
        scope = TenantScope.location(location_id)
        try:
            async with self._uow(scope) as uow:
                event = await uow.inbound_events.get(event_id, lock=True)
                if event is None:
                    return None
                if event.status in DONE:
                    return event.status
                processor = self._registry.processor(event.provider, event.type)
                status = EventStatus.IGNORED
                if processor is not None:
                    location = await uow.locations.get(location_id)
                    if location is None:  # pragma: no cover - the event's foreign key keeps it
                        raise NotFound(f"location {location_id} not found")
                    await processor.process(uow, event, location)
                    status = EventStatus.PROCESSED
                await uow.inbound_events.update(
                    replace(
                        event,
                        status=status,
                        attempts=event.attempts + 1,
                        last_error=None,
                        processed_at=self._clock.now(),
                    )
                )
                await uow.commit()
                return status
        except UnusableEvent as exc:
            # Its unit of work is rolled back (nothing the processor wrote stays); no retry can help.
            return await self._set_aside(scope, event_id, exc)
        except Exception as exc:
            # Bookkeeping must not hide the processor's error: the job records that one anyway.
            with contextlib.suppress(Exception):
                await self._record_failure(scope, event_id, exc, final_attempt)
            raise

    async def _set_aside(self, scope: TenantScope, event_id: uuid.UUID, exc: UnusableEvent) -> EventStatus:
        async with self._uow(scope) as uow:
            event = await uow.inbound_events.get(event_id, lock=True)
            if event is None or event.status in DONE:  # pragma: no cover - we held its lock just now
                return event.status if event else EventStatus.IGNORED
            await uow.inbound_events.update(
                replace(
                    event,
                    status=EventStatus.IGNORED,
                    attempts=event.attempts + 1,
                    last_error=f"unusable: {exc}"[:MAX_ERROR],
                    processed_at=self._clock.now(),
                )
            )
            await uow.commit()
        return EventStatus.IGNORED

    async def _record_failure(
        self, scope: TenantScope, event_id: uuid.UUID, exc: Exception, final_attempt: bool
    ) -> None:
        async with self._uow(scope) as uow:
            event = await uow.inbound_events.get(event_id, lock=True)
            if event is None or event.status in DONE:
                return
            await uow.inbound_events.update(
                replace(
                    event,
                    status=EventStatus.FAILED if final_attempt else EventStatus.RECEIVED,
                    attempts=event.attempts + 1,
                    last_error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR],
                )
            )
            await uow.commit()

    async def list_events(
        self,
        actor: Actor,
        page: PageRequest,
        *,
        endpoint_id: uuid.UUID | None = None,
        status: EventStatus | None = None,
    ) -> Page[InboundEvent]:
        location_id = actor.require_location(Permission.WEBHOOKS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.inbound_events.list(location_id, page, endpoint_id=endpoint_id, status=status)

    async def get_event(self, actor: Actor, event_id: uuid.UUID) -> InboundEvent:
        location_id = actor.require_location(Permission.WEBHOOKS_READ)
        async with self._uow(actor.scope) as uow:
            event = await uow.inbound_events.get(event_id)
        if event is None or event.location_id != location_id:
            raise NotFound(f"inbound event {event_id} not found")
        return event
