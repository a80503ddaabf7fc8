"""Use cases of outbound webhooks: manage subscriptions, fan committed events out to deliveries, deliver
them signed (with retries and the delivery log), and redeliver by hand."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ghl_core.identity.ports import SecretBox
from ghl_core.jobs.ports import JobContext, JobRequest, RetryLater
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_change
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission
from ghl_core.webhooks.addresses import UnsafeUrl, UrlGuard
from ghl_core.webhooks.event_types import EVENT_TYPES, describe, public_type
from ghl_core.webhooks.models import Attempt, Delivery, DeliveryDetail, DeliveryStatus, Subscription
from ghl_core.webhooks.payloads import new_secret, webhook_body
from ghl_core.webhooks.ports import SendResult, WebhookSender, WebhookSigner, WebhooksUnitOfWork

DELIVER_KIND = "webhooks.deliver"
USER_AGENT = "ghl-webhooks/1"
MAX_DESCRIPTION = 500
MAX_EVENT_TYPES = len(EVENT_TYPES)
DEFAULT_DISABLE_AFTER = 10
_FIELDS = frozenset({"url", "event_types", "active", "description"})


def deliver_job(delivery: Delivery) -> JobRequest:
    # Jobs sharing a lock run one at a time in the order they were enqueued: one entity's events
    # reach one subscription in the order they happened, retries included.
    return JobRequest(
        kind=DELIVER_KIND,
        args={"delivery_id": str(delivery.id)},
        location_id=delivery.location_id,
        lock=f"webhooks:{delivery.subscription_id}:{delivery.entity_id}",
    )


def _outcome(result: SendResult) -> str:
    """delivered, gone (410), retry (network, 429, 5xx) or refused (anything else)."""
    code = result.status_code
    if result.final:
        return "refused"
    if code is None:
        return "retry"
    if 200 <= code < 300:
        return "delivered"
    if code == 410:
        return "gone"
    if code == 429 or code >= 500:
        return "retry"
    return "refused"


class WebhookService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[WebhooksUnitOfWork],
        clock: Clock,
        box: SecretBox,
        guard: UrlGuard,
        signer: WebhookSigner,
        sender: WebhookSender,
        disable_after: int = DEFAULT_DISABLE_AFTER,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._box = box
        self._guard = guard
        self._signer = signer
        self._sender = sender
        self._disable_after = max(1, disable_after)

    # -- subscriptions -------------------------------------------------------------------------------

    @staticmethod
    def event_types() -> list[tuple[str, str]]:
        """Every subscribable event type and what it means."""
        return describe()

    def _seal(self, subscription_id: uuid.UUID, secret: str) -> bytes:
        # Bound to the subscription: a sealed secret copied onto another row does not open.
        return self._box.encrypt(secret.encode(), subscription_id.bytes)

    def _open(self, subscription: Subscription) -> str:
        return self._box.decrypt(subscription.secret_ciphertext, subscription.id.bytes).decode()

    async def _check(self, data: dict[str, Any], creating: bool) -> dict[str, Any]:
        """The clean values of the fields given; every mistake reported at once, with its pointer."""
        errors: list[FieldError] = [FieldError(f"/{k}", "is not a field") for k in data if k not in _FIELDS]
        clean: dict[str, Any] = {}
        for name in ("url", "event_types") if creating else ():
            if data.get(name) is None:
                errors.append(FieldError(f"/{name}", "is required"))
        if data.get("url") is not None:
            url = data["url"]
            if not isinstance(url, str):
                errors.append(FieldError("/url", "must be a string"))
            else:
                try:
                    await self._guard.check(url.strip())
                    clean["url"] = url.strip()
                except UnsafeUrl as exc:
                    errors.append(FieldError("/url", exc.detail))
        if data.get("event_types") is not None:
            types = data["event_types"]
            if not isinstance(types, list) or not types:
                errors.append(FieldError("/event_types", "must be a non-empty list of event types"))
            else:
                for i, name in enumerate(types):
                    if name not in EVENT_TYPES:
                        errors.append(
                            FieldError(
                                f"/event_types/{i}",
                                f"is not an event type (see GET /api/v1/webhooks/event-types): {name!r}",
                            )
                        )
                clean["event_types"] = list(dict.fromkeys(t for t in types if isinstance(t, str)))
        if "active" in data:
            if not isinstance(data["active"], bool):
                errors.append(FieldError("/active", "must be true or false"))
            clean["active"] = data["active"]
        if "description" in data:
            text = data["description"]
            if text is not None and (not isinstance(text, str) or len(text) > MAX_DESCRIPTION):
                errors.append(FieldError("/description", f"must be at most {MAX_DESCRIPTION} characters"))
            clean["description"] = (text.strip() or None) if isinstance(text, str) else None
        if errors:
            raise ValidationFailed(errors)
        return clean

    async def _visible(
        self, uow: WebhooksUnitOfWork, subscription_id: uuid.UUID, lock: bool = False
    ) -> Subscription:
        found = await uow.webhooks.get_subscription(subscription_id, for_update=lock)
        if found is None or not found.live:
            raise NotFound(f"webhook subscription {subscription_id} not found")
        return found

    async def _record(
        self,
        uow: WebhooksUnitOfWork,
        actor: Actor,
        action: str,
        before: Subscription | None,
        after: Subscription,
        event_type: str | None,
    ) -> None:
        location = await uow.locations.get(after.location_id)
        if location is None:
            raise NotFound(f"location {after.location_id} not found")
        await record_change(
            uow,
            self._clock,
            actor,
            action=action,
            entity_type="webhook_subscription",
            entity_id=after.id,
            agency_id=location.agency_id,
            location_id=after.location_id,
            before=before.snapshot() if before else None,
            after=after.snapshot(),
            event_type=event_type,
        )

    async def create(self, actor: Actor, data: dict[str, Any]) -> tuple[Subscription, str]:
        """The new subscription and its signing secret, which is shown this once."""
        location_id = actor.require_location(Permission.WEBHOOKS_WRITE)
        clean = await self._check(data, creating=True)
        secret = new_secret()
        now = self._clock.now()
        subscription_id = new_id()
        subscription = Subscription(
            id=subscription_id,
            location_id=location_id,
            url=clean["url"],
            event_types=clean["event_types"],
            secret_ciphertext=self._seal(subscription_id, secret),
            created_at=now,
            updated_at=now,
            active=clean.get("active", True),
            description=clean.get("description"),
            created_by=actor.id,
            updated_by=actor.id,
        )
        async with self._uow(actor.scope) as uow:
            await uow.webhooks.add_subscription(subscription)
            await self._record(uow, actor, "create", None, subscription, "WebhookSubscriptionCreate")
            await uow.commit()
        return subscription, secret

    async def list(self, actor: Actor, page: PageRequest) -> Page[Subscription]:
        actor.require_location(Permission.WEBHOOKS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.webhooks.list_subscriptions(page)

    async def get(self, actor: Actor, subscription_id: uuid.UUID) -> Subscription:
        actor.require_location(Permission.WEBHOOKS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, subscription_id)

    async def update(self, actor: Actor, subscription_id: uuid.UUID, data: dict[str, Any]) -> Subscription:
        """Changes the URL, event types, description or the active flag. Turning a subscription on
        again clears why the platform turned it off and its failure count."""
        actor.require_location(Permission.WEBHOOKS_WRITE)
        clean = await self._check(data, creating=False)
        async with self._uow(actor.scope) as uow:
            before = await self._visible(uow, subscription_id, lock=True)
            after = replace(
                before,
                event_types=list(before.event_types),
                updated_at=self._clock.now(),
                updated_by=actor.id,
            )
            for name, value in clean.items():
                setattr(after, name, value)
            if clean.get("active") is True and not before.active:
                after.disabled_reason = None
                after.disabled_at = None
                after.consecutive_failures = 0
            await uow.webhooks.update_subscription(after)
            await self._record(uow, actor, "update", before, after, "WebhookSubscriptionUpdate")
            await uow.commit()
        return after

    async def delete(self, actor: Actor, subscription_id: uuid.UUID) -> None:
        """Stops every delivery not yet made; the delivery log is kept."""
        actor.require_location(Permission.WEBHOOKS_WRITE)
        async with self._uow(actor.scope) as uow:
            before = await self._visible(uow, subscription_id, lock=True)
            now = self._clock.now()
            after = replace(before, active=False, deleted_at=now, updated_at=now, updated_by=actor.id)
            await uow.webhooks.update_subscription(after)
            await self._record(uow, actor, "delete", before, after, "WebhookSubscriptionDelete")
            await uow.commit()

    async def rotate_secret(self, actor: Actor, subscription_id: uuid.UUID) -> tuple[Subscription, str]:
        """A new signing secret, shown this once; the old one stops signing at once."""
        actor.require_location(Permission.WEBHOOKS_WRITE)
        secret = new_secret()
        async with self._uow(actor.scope) as uow:
            before = await self._visible(uow, subscription_id, lock=True)
            after = replace(
                before,
                event_types=list(before.event_types),
                secret_ciphertext=self._seal(before.id, secret),
                updated_at=self._clock.now(),
                updated_by=actor.id,
            )
            await uow.webhooks.update_subscription(after)
            await self._record(uow, actor, "rotate_secret", before, after, None)
            await uow.commit()
        return after, secret

    # -- the delivery log and redelivery ---------------------------------------------------------------

    async def deliveries(
        self,
        actor: Actor,
        subscription_id: uuid.UUID,
        page: PageRequest,
        status: DeliveryStatus | None = None,
    ) -> Page[Delivery]:
        actor.require_location(Permission.WEBHOOKS_READ)
        async with self._uow(actor.scope) as uow:
            await self._visible(uow, subscription_id)
            return await uow.webhooks.list_deliveries(subscription_id, page, status)

    async def delivery(
        self, actor: Actor, subscription_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> DeliveryDetail:
        actor.require_location(Permission.WEBHOOKS_READ)
        async with self._uow(actor.scope) as uow:
            await self._visible(uow, subscription_id)
            found = await uow.webhooks.get_delivery(delivery_id)
            if found is None or found.subscription_id != subscription_id:
                raise NotFound(f"delivery {delivery_id} not found")
            return DeliveryDetail(found, await uow.webhooks.attempts(delivery_id))

    @staticmethod
    def _require_sending(subscription: Subscription) -> None:
        if not subscription.active:
            raise Conflict("the subscription is disabled: turn it on (active: true) before redelivering")

    async def _requeue(self, uow: WebhooksUnitOfWork, actor: Actor, delivery: Delivery) -> Delivery:
        again = replace(
            delivery, status=DeliveryStatus.PENDING, delivered_at=None, updated_at=self._clock.now()
        )
        await uow.webhooks.update_delivery(again)
        await uow.jobs.enqueue(deliver_job(again))
        location = await uow.locations.get(again.location_id)
        if location is None:
            raise NotFound(f"location {again.location_id} not found")
        await record_change(
            uow,
            self._clock,
            actor,
            action="redeliver",
            entity_type="webhook_delivery",
            entity_id=again.id,
            agency_id=location.agency_id,
            location_id=again.location_id,
            before=None,
            after={"event_id": str(again.event_id), "subscription_id": str(again.subscription_id)},
        )
        return again

    async def redeliver(self, actor: Actor, subscription_id: uuid.UUID, delivery_id: uuid.UUID) -> Delivery:
        """Sends a past delivery again (same webhook-id), as a new attempt after any still queued."""
        actor.require_location(Permission.WEBHOOKS_WRITE)
        async with self._uow(actor.scope) as uow:
            subscription = await self._visible(uow, subscription_id)
            found = await uow.webhooks.get_delivery(delivery_id, for_update=True)
            if found is None or found.subscription_id != subscription_id:
                raise NotFound(f"delivery {delivery_id} not found")
            self._require_sending(subscription)
            again = await self._requeue(uow, actor, found)
            await uow.commit()
        return again

    async def redeliver_event(
        self, actor: Actor, subscription_id: uuid.UUID, event_id: uuid.UUID
    ) -> Delivery:
        """Sends any past event of the location whose type the subscription takes, even one recorded
        before the subscription existed."""
        location_id = actor.require_location(Permission.WEBHOOKS_WRITE)
        async with self._uow(actor.scope) as uow:
            subscription = await self._visible(uow, subscription_id)
            event = await uow.webhooks.event(event_id)
            if event is None or event.location_id != location_id:
                raise NotFound(f"event {event_id} not found")
            kind = public_type(event.type)
            if kind is None or not subscription.takes(kind):
                raise Conflict(f"the subscription does not take {kind or event.type} events")
            self._require_sending(subscription)
            found = await uow.webhooks.find_delivery(subscription_id, event_id)
            if found is None:
                now = self._clock.now()
                created = await uow.webhooks.add_deliveries([self._delivery(subscription, event, kind, now)])
                found = created[0] if created else await uow.webhooks.find_delivery(subscription_id, event_id)
                if found is None:  # pragma: no cover - only if it was created and removed meanwhile
                    raise Conflict("the delivery changed meanwhile; try again")
            again = await self._requeue(uow, actor, found)
            await uow.commit()
        return again

    # -- fan-out and delivery (run by jobs) -----------------------------------------------------------

    @staticmethod
    def _delivery(subscription: Subscription, event: DomainEvent, kind: str, now: datetime) -> Delivery:
        return Delivery(
            id=new_id(),
            location_id=subscription.location_id,
            subscription_id=subscription.id,
            event_id=event.id,
            event_type=kind,
            entity_id=event.entity_id,
            created_at=now,
            updated_at=now,
        )

    async def fan_out(self, location_id: uuid.UUID, events: Sequence[DomainEvent]) -> int:
        """One delivery (and its job) per matching subscription and event, in the events' order, in one
        transaction. Run again on the same events it creates nothing: deliveries are unique per
        subscription and event, and only new ones get a job."""
        typed = [(e, kind) for e in events if e.location_id == location_id and (kind := public_type(e.type))]
        if not typed:
            return 0
        async with self._uow(TenantScope.location(location_id)) as uow:
            subscriptions = await uow.webhooks.sending_subscriptions()
            now = self._clock.now()
            wanted = [
                self._delivery(s, event, kind, now)
                for event, kind in typed
                for s in subscriptions
                if s.takes(kind)
            ]
            if not wanted:
                return 0
            created = await uow.webhooks.add_deliveries(wanted)
            await uow.jobs.enqueue(*(deliver_job(d) for d in created))
            await uow.commit()
        return len(created)

    def _headers(self, secret: str, event: DomainEvent, body: str) -> dict[str, str]:
        msg_id = str(event.id)  # the same on every attempt and redelivery
        now = self._clock.now()
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(secret, msg_id, now, body),
        }

    async def _send(self, subscription: Subscription, delivery: Delivery, event: DomainEvent) -> SendResult:
        try:
            target = await self._guard.check(subscription.url)  # again: the name may point elsewhere now
        except UnsafeUrl as exc:
            # A refused address is final; a name that does not resolve is a network error, retried.
            return SendResult(duration_ms=0, error=exc.detail, final=not exc.retryable)
        body = webhook_body(event, delivery.event_type)
        headers = self._headers(self._open(subscription), event, body)
        return await self._sender.send(target, headers, body.encode())

    async def deliver(self, location_id: uuid.UUID, delivery_id: uuid.UUID, ctx: JobContext) -> None:
        """One attempt. Raises RetryLater on a transient failure while attempts are left."""
        scope = TenantScope.location(location_id)
        async with self._uow(scope) as uow:
            delivery = await uow.webhooks.get_delivery(delivery_id)
            if delivery is None or delivery.status is not DeliveryStatus.PENDING:
                return  # delivered already (a crashed worker's rerun must not resend) or given up
            subscription = await uow.webhooks.get_subscription(delivery.subscription_id)
            event = await uow.webhooks.event(delivery.event_id)
        if subscription is None or not subscription.sending:
            await self._give_up(scope, delivery_id, "the subscription was disabled or deleted before sending")
            return
        if event is None:
            await self._give_up(scope, delivery_id, "the event is no longer kept")
            return
        started = self._clock.now()
        result = await self._send(subscription, delivery, event)
        outcome = _outcome(result)
        if outcome == "retry":
            if not ctx.final_attempt:
                await self._finish(scope, delivery_id, started, result, "retry")
                raise RetryLater(result.error or f"the receiver answered {result.status_code}")
            outcome = "exhausted"
        await self._finish(scope, delivery_id, started, result, outcome)

    async def _give_up(self, scope: TenantScope, delivery_id: uuid.UUID, reason: str) -> None:
        async with self._uow(scope) as uow:
            delivery = await uow.webhooks.get_delivery(delivery_id, for_update=True)
            if delivery is None or delivery.status is not DeliveryStatus.PENDING:
                return
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = reason
            delivery.updated_at = self._clock.now()
            await uow.webhooks.update_delivery(delivery)
            await uow.commit()

    async def _finish(
        self, scope: TenantScope, delivery_id: uuid.UUID, started: datetime, result: SendResult, outcome: str
    ) -> None:
        """The attempt, the delivery's state and the subscription's failure count, in one transaction."""
        now = self._clock.now()
        async with self._uow(scope) as uow:
            delivery = await uow.webhooks.get_delivery(delivery_id, for_update=True)
            if delivery is None:
                return
            number = delivery.attempts + 1
            status_code = result.status_code
            await uow.webhooks.add_attempt(
                Attempt(
                    id=new_id(),
                    location_id=delivery.location_id,
                    delivery_id=delivery.id,
                    number=number,
                    started_at=started,
                    duration_ms=result.duration_ms,
                    status_code=status_code,
                    error=result.error,
                    response_excerpt=result.response_excerpt,
                )
            )
            delivery.attempts = number
            delivery.last_status_code = status_code
            delivery.last_error = result.error
            delivery.updated_at = now
            if outcome == "delivered":
                delivery.status = DeliveryStatus.DELIVERED
                delivery.delivered_at = now
            elif outcome != "retry":
                delivery.status = DeliveryStatus.FAILED
            await uow.webhooks.update_delivery(delivery)
            if outcome != "retry":
                await self._count(uow, delivery, outcome)
            await uow.commit()

    async def _count(self, uow: WebhooksUnitOfWork, delivery: Delivery, outcome: str) -> None:
        if outcome == "delivered":
            # The common case reads without the row lock, so concurrent deliveries of one subscription do
            # not queue behind each other; only a reset of the failure count takes the lock.
            seen = await uow.webhooks.get_subscription(delivery.subscription_id)
            if seen is None or not seen.consecutive_failures:
                return
        subscription = await uow.webhooks.get_subscription(delivery.subscription_id, for_update=True)
        if subscription is None:
            return
        if outcome == "delivered":
            if subscription.consecutive_failures:
                subscription.consecutive_failures = 0
                await uow.webhooks.update_subscription(subscription)
            return
        before = replace(subscription, event_types=list(subscription.event_types))
        subscription.consecutive_failures += 1
        reason: str | None = None
        if outcome == "gone":
            reason = "the receiver answered 410 Gone"
        elif subscription.consecutive_failures >= self._disable_after:
            reason = f"{subscription.consecutive_failures} deliveries in a row failed"
        if reason is None or not subscription.sending:
            await uow.webhooks.update_subscription(subscription)
            return
        now = self._clock.now()
        subscription.active = False
        subscription.disabled_reason = reason
        subscription.disabled_at = now
        subscription.updated_at = now
        await uow.webhooks.update_subscription(subscription)
        # The location's admins learn of it from the audit trail and from this event.
        await self._record(
            uow,
            Actor.operator_at(subscription.location_id),
            "disable",
            before,
            subscription,
            "WebhookSubscriptionDisabled",
        )
