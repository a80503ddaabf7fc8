"""Use cases of outbound webhooks: manage subscriptions, read their delivery log and redeliver by hand.
Fanning committed events out and delivering them (jobs) is `delivery.WebhookDelivery`'s, which the
service builds from the same collaborators and hands `fan_out` and `deliver` to."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ghl_core.identity.ports import SecretBox
from ghl_core.jobs.ports import JobContext
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from ghl_core.shared.events import DomainEvent
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import record_change
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission
from ghl_core.webhooks.addresses import UnsafeUrl, UrlGuard
from ghl_core.webhooks.delivery import (
    DEFAULT_DISABLE_AFTER,
    DELIVER_KIND,
    WebhookDelivery,
    deliver_job,
    new_delivery,
    record_subscription_change,
)
from ghl_core.webhooks.event_types import EVENT_TYPES, describe, public_type
from ghl_core.webhooks.models import Delivery, DeliveryDetail, DeliveryStatus, Subscription
from ghl_core.webhooks.payloads import new_secret
from ghl_core.webhooks.ports import WebhookSender, WebhookSigner, WebhooksUnitOfWork

MAX_DESCRIPTION = 500
MAX_EVENT_TYPES = len(EVENT_TYPES)
# Re-exported: the job kinds and tests find the job kind here.
__all__ = ["DEFAULT_DISABLE_AFTER", "DELIVER_KIND", "MAX_DESCRIPTION", "WebhookService"]
_FIELDS = frozenset({"url", "event_types", "active", "description"})


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
        self._deliveries = WebhookDelivery(
            uow=uow,
            clock=clock,
            box=box,
            guard=guard,
            signer=signer,
            sender=sender,
            disable_after=disable_after,
        )

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
        await record_subscription_change(uow, self._clock, actor, action, before, after, event_type)

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
                created = await uow.webhooks.add_deliveries([new_delivery(subscription, event, kind, now)])
                found = created[0] if created else await uow.webhooks.find_delivery(subscription_id, event_id)
                if found is None:  # pragma: no cover - only if it was created and removed meanwhile
                    raise Conflict("the delivery changed meanwhile; try again")
            again = await self._requeue(uow, actor, found)
            await uow.commit()
        return again

    # -- fan-out and delivery (run by jobs: see `delivery.WebhookDelivery`) ---------------------------

    async def fan_out(self, location_id: uuid.UUID, events: Sequence[DomainEvent]) -> int:
        """See `WebhookDelivery.fan_out`."""
        return await self._deliveries.fan_out(location_id, events)

    async def deliver(self, location_id: uuid.UUID, delivery_id: uuid.UUID, ctx: JobContext) -> None:
        """See `WebhookDelivery.deliver`."""
        await self._deliveries.deliver(location_id, delivery_id, ctx)
