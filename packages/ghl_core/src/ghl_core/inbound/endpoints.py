"""Location inbound webhook endpoints: a URL per endpoint that senders post to, signed per the Standard
Webhooks spec with the endpoint's own secret; each event becomes an `InboundWebhookReceived` domain
event that workflows can trigger on."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import replace
from typing import Any

from ghl_core.identity.ports import SecretBox
from ghl_core.inbound.models import ENDPOINT_PROVIDER, InboundEndpoint, InboundEvent, InboundTarget
from ghl_core.inbound.ports import InboundUnitOfWork
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.recording import Recording, record_change, record_entity_change
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.models import Location
from ghl_core.tenancy.permissions import Actor, ActorKind, Permission

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32
HINT_LENGTH = len(SECRET_PREFIX) + 4
MAX_NAME = 200
RECEIVED_EVENT = "InboundWebhookReceived"
ENTITY = "inbound_webhook"


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 256 random bits."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def clean_name(value: object, pointer: str = "/name") -> str:
    name = " ".join(value.split()) if isinstance(value, str) else ""
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValidationFailed.one(pointer, f"must be 1 to {MAX_NAME} printable characters")
    return name


def webhook_actor(event: InboundEvent, agency_id: uuid.UUID) -> Actor:
    """The sender of an inbound webhook, as the audit trail names it: the endpoint it posted to."""
    return Actor(
        ActorKind.SYSTEM,
        event.endpoint_id,
        agency_id,
        location_id=event.location_id,
        credential_id=f"inbound:{event.endpoint_id}",
    )


class EndpointWebhookProcessor:
    """Turns a received event into the `InboundWebhookReceived` domain event, with the JSON body."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def process(self, uow: Recording, event: InboundEvent, location: Location) -> None:
        if event.endpoint_id is None:  # pragma: no cover - endpoint events always name their endpoint
            raise ValueError("an inbound webhook event names its endpoint")
        body = event.json_body()
        after: dict[str, Any] = {
            "endpoint_id": str(event.endpoint_id),
            "inbound_event_id": str(event.id),
            "webhook_id": event.provider_event_id,
            "event_type": event.type,
            "body": body,
            "content_type": event.content_type,
            "received_at": event.received_at.isoformat(),
        }
        if body is None:  # not JSON: workflows still see what arrived
            after["raw_body"] = event.text_body()
        await record_change(
            uow,
            self._clock,
            webhook_actor(event, location.agency_id),
            action="receive",
            entity_type=ENTITY,
            entity_id=event.endpoint_id,
            agency_id=location.agency_id,
            location_id=location.id,
            before=None,
            after=after,
            event_type=RECEIVED_EVENT,
        )


class InboundEndpointService:
    def __init__(
        self, uow: UnitOfWorkFactory[InboundUnitOfWork], clock: Clock, secret_box: SecretBox
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._box = secret_box

    def _seal(self, endpoint_id: uuid.UUID, secret: str) -> bytes:
        # The endpoint's id is the associated data: a ciphertext moved to another endpoint will not open.
        return self._box.encrypt(secret.encode(), endpoint_id.bytes)

    @staticmethod
    async def _live(
        uow: InboundUnitOfWork, location_id: uuid.UUID, endpoint_id: uuid.UUID
    ) -> InboundEndpoint:
        endpoint = await uow.inbound_endpoints.get(endpoint_id)
        if endpoint is None or endpoint.location_id != location_id or endpoint.deleted_at is not None:
            raise NotFound(f"inbound webhook {endpoint_id} not found")
        return endpoint

    async def _record(
        self,
        uow: InboundUnitOfWork,
        actor: Actor,
        action: str,
        before: InboundEndpoint | None,
        after: InboundEndpoint,
    ) -> None:
        location = await live_location(uow, after.location_id)
        await record_entity_change(
            uow,
            self._clock,
            actor,
            action=action,
            entity_type=ENTITY,
            agency_id=location.agency_id,
            before=before,
            after=after,
        )

    async def create(self, actor: Actor, data: dict[str, Any]) -> tuple[InboundEndpoint, str]:
        """The endpoint and its signing secret, which is shown this once."""
        location_id = actor.require_location(Permission.WEBHOOKS_WRITE)
        name = clean_name(data.get("name"))
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValidationFailed.one("/enabled", "must be true or false")
        secret = new_signing_secret()
        now = self._clock.now()
        endpoint_id = new_id()
        endpoint = InboundEndpoint(
            id=endpoint_id,
            location_id=location_id,
            name=name,
            secret_ciphertext=self._seal(endpoint_id, secret),
            secret_hint=secret[:HINT_LENGTH],
            enabled=enabled,
            created_at=now,
            updated_at=now,
            created_by=actor.id,
            updated_by=actor.id,
        )
        async with self._uow(actor.scope) as uow:
            await uow.inbound_endpoints.add(endpoint)
            await self._record(uow, actor, "create", None, endpoint)
            await uow.commit()
        return endpoint, secret

    async def list(self, actor: Actor, page: PageRequest) -> Page[InboundEndpoint]:
        location_id = actor.require_location(Permission.WEBHOOKS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.inbound_endpoints.list(location_id, page)

    async def get(self, actor: Actor, endpoint_id: uuid.UUID) -> InboundEndpoint:
        location_id = actor.require_location(Permission.WEBHOOKS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._live(uow, location_id, endpoint_id)

    async def update(self, actor: Actor, endpoint_id: uuid.UUID, data: dict[str, Any]) -> InboundEndpoint:
        """Renames, or enables and disables (a disabled endpoint answers 404 and stores nothing)."""
        location_id = actor.require_location(Permission.WEBHOOKS_WRITE)
        changes: dict[str, Any] = {}
        if "name" in data:
            changes["name"] = clean_name(data["name"])
        if "enabled" in data:
            if not isinstance(data["enabled"], bool):
                raise ValidationFailed.one("/enabled", "must be true or false")
            changes["enabled"] = data["enabled"]
        async with self._uow(actor.scope) as uow:
            before = await self._live(uow, location_id, endpoint_id)
            if not changes:
                return before
            after = replace(before, **changes, updated_at=self._clock.now(), updated_by=actor.id)
            await uow.inbound_endpoints.update(after)
            await self._record(uow, actor, "update", before, after)
            await uow.commit()
        return after

    async def rotate_secret(self, actor: Actor, endpoint_id: uuid.UUID) -> tuple[InboundEndpoint, str]:
        """A new signing secret, shown this once; the old one stops verifying at once."""
        location_id = actor.require_location(Permission.WEBHOOKS_WRITE)
        secret = new_signing_secret()
        async with self._uow(actor.scope) as uow:
            before = await self._live(uow, location_id, endpoint_id)
            now = self._clock.now()
            after = replace(
                before,
                secret_ciphertext=self._seal(endpoint_id, secret),
                secret_hint=secret[:HINT_LENGTH],
                secret_rotated_at=now,
                updated_at=now,
                updated_by=actor.id,
            )
            await uow.inbound_endpoints.update(after)
            await self._record(uow, actor, "rotate_secret", before, after)
            await uow.commit()
        return after, secret

    async def delete(self, actor: Actor, endpoint_id: uuid.UUID) -> None:
        """Soft delete: its URL answers 404 from now on; the events it received stay in the database."""
        location_id = actor.require_location(Permission.WEBHOOKS_WRITE)
        async with self._uow(actor.scope) as uow:
            before = await self._live(uow, location_id, endpoint_id)
            now = self._clock.now()
            after = replace(before, deleted_at=now, updated_at=now, updated_by=actor.id)
            await uow.inbound_endpoints.update(after)
            await self._record(uow, actor, "delete", before, after)
            await uow.commit()

    async def target(self, endpoint_id: uuid.UUID) -> InboundTarget:
        """Where a post to the endpoint's URL goes, asked before anyone is authenticated. An unknown,
        disabled or deleted endpoint is not found."""
        async with self._uow(TenantScope.anonymous()) as uow:
            key = await uow.inbound_endpoints.lookup(endpoint_id)
        if key is None or not key.active:
            raise NotFound(f"no inbound webhook {endpoint_id}")
        secret = self._box.decrypt(key.secret_ciphertext, endpoint_id.bytes).decode()
        return InboundTarget(
            provider=ENDPOINT_PROVIDER,
            scope=str(endpoint_id),
            location_id=key.location_id,
            secret=secret,
            endpoint_id=endpoint_id,
        )
