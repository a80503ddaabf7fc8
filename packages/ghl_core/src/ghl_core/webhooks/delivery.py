"""Outbound webhooks on their way: committed events fanned out to one delivery per matching subscription,
each delivered signed (Standard Webhooks) by a `webhooks.deliver` job, its attempts logged, retried on a
transient failure, and a subscription that keeps failing (or answers 410 Gone) disabled."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from ghl_core.identity.ports import SecretBox
from ghl_core.jobs.ports import JobContext, JobRequest, RetryLater
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.ids import new_id
from ghl_core.shared.recording import record_entity_change
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor
from ghl_core.webhooks.addresses import UnsafeUrl, UrlGuard
from ghl_core.webhooks.event_types import public_type
from ghl_core.webhooks.models import Attempt, Delivery, DeliveryStatus, Subscription
from ghl_core.webhooks.payloads import webhook_body
from ghl_core.webhooks.ports import SendResult, WebhookSender, WebhookSigner, WebhooksUnitOfWork

DELIVER_KIND = "webhooks.deliver"
USER_AGENT = "ghl-webhooks/1"
DEFAULT_DISABLE_AFTER = 10


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


async def record_subscription_change(
    uow: WebhooksUnitOfWork,
    clock: Clock,
    actor: Actor,
    action: str,
    before: Subscription | None,
    after: Subscription,
    event_type: str | None,
) -> None:
    """A subscription's change, audited (and published when `event_type` is given): made by its
    managers, or by the delivery disabling a subscription that keeps failing."""
    location = await uow.locations.get(after.location_id)
    if location is None:
        raise NotFound(f"location {after.location_id} not found")
    await record_entity_change(
        uow,
        clock,
        actor,
        action=action,
        entity_type="webhook_subscription",
        agency_id=location.agency_id,
        before=before,
        after=after,
        event_type=event_type,
    )


def new_delivery(subscription: Subscription, event: DomainEvent, kind: str, now: datetime) -> Delivery:
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


class WebhookDelivery:
    def __init__(
        self,
        *,
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

    def _open(self, subscription: Subscription) -> str:
        return self._box.decrypt(subscription.secret_ciphertext, subscription.id.bytes).decode()

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
                new_delivery(s, event, kind, now)
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
        await record_subscription_change(
            uow,
            self._clock,
            Actor.operator_at(subscription.location_id),
            "disable",
            before,
            subscription,
            "WebhookSubscriptionDisabled",
        )
