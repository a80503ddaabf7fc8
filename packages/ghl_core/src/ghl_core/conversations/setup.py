"""A location's (or agency's) messaging setup: which provider sends SMS and email, with its credentials
sealed at rest and never shown again, and the location's messaging settings (quiet hours, keyword
replies, throughput).

Setting or removing a provider takes `providers:write` (location admins), not `conversations:write`:
it routes all of a location's messages through an account. An SMTP server is a place the platform
connects to on a tenant's word, so its host goes through the webhooks' address guard when saved (and
the SMTP gateway checks it again before each connection)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, fields
from datetime import time
from typing import Any

from ghl_core.conversations.configs import ProviderConfigs
from ghl_core.conversations.links import LinkSigner
from ghl_core.conversations.models import Channel, MessagingSettings
from ghl_core.conversations.ports import ProviderRecord, SetupUnitOfWork
from ghl_core.conversations.providers import ProviderConfig, ProviderKind
from ghl_core.conversations.quiet_hours import QuietHours
from ghl_core.identity.ports import SecretBox
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.recording import record_change
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.lookup import live_location
from ghl_core.tenancy.permissions import Actor, Permission
from ghl_core.tenancy.plans import PlanCatalog
from ghl_core.webhooks.addresses import UnsafeUrl, UrlGuard

_KINDS = {
    Channel.SMS: {ProviderKind.TWILIO},
    Channel.EMAIL: {ProviderKind.SENDGRID, ProviderKind.SMTP},
}
_MAX_TEXT = 320


@dataclass(frozen=True, slots=True)
class ProviderView:
    """What the API shows of a configuration: never a credential."""

    channel: Channel
    kind: ProviderKind
    agency_default: bool
    summary: dict[str, Any]
    inbound_token: str | None = None
    platform: bool = False  # the platform-wide configuration from the environment


async def check_server(guard: UrlGuard, config: ProviderConfig) -> None:
    """Refuses a server (an SMTP host) the address guard would not let the platform reach."""
    server = config.server()
    if server is None:
        return
    try:
        await guard.check_host(server[0], server[1], what="email is")
    except UnsafeUrl as exc:
        raise ValidationFailed.one("/config/host", exc.detail) from None


class MessagingSetupService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[SetupUnitOfWork],
        clock: Clock,
        configs: ProviderConfigs,
        guard: UrlGuard,
        links: LinkSigner | None = None,
        plans: PlanCatalog | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        # Checks and seals what is submitted (the adapters' codec), and knows the platform's own.
        self._configs = configs
        self._plans = plans or PlanCatalog()
        self._guard = guard
        self._links = links

    @staticmethod
    def _owner(actor: Actor, agency_default: bool) -> tuple[TenantScope, uuid.UUID | None]:
        if agency_default:
            if actor.agency_id is None or actor.location_id is not None:
                raise NotFound("agency defaults are set with agency credentials")
            if not actor.is_operator:  # the operator (`ghl providers --agency`) names the agency itself
                actor.require_agency(Permission.LOCATIONS_WRITE)
            return TenantScope.agency(actor.agency_id), None
        location_id = actor.require_location(Permission.PROVIDERS_WRITE)
        return actor.scope, location_id

    async def _agency_of(
        self, uow: SetupUnitOfWork, actor: Actor, location_id: uuid.UUID | None
    ) -> uuid.UUID:
        if location_id is None:
            assert actor.agency_id is not None  # noqa: S101 - checked by _owner
            if actor.is_operator and await uow.agencies.get(actor.agency_id) is None:
                raise NotFound(f"agency {actor.agency_id} does not exist")
            return actor.agency_id
        return (await live_location(uow, location_id)).agency_id

    async def set_provider(
        self,
        actor: Actor,
        channel: Channel,
        kind: ProviderKind,
        config: dict[str, Any],
        *,
        agency_default: bool = False,
    ) -> ProviderView:
        if kind not in _KINDS[channel]:
            allowed = ", ".join(sorted(k.value for k in _KINDS[channel]))
            raise ValidationFailed.one("/kind", f"{channel.value} is sent with {allowed}")
        clean = self._configs.clean(kind, config)
        scope, location_id = self._owner(actor, agency_default)
        await check_server(self._guard, clean)
        async with self._uow(scope) as uow:
            agency_id = await self._agency_of(uow, actor, location_id)
            existing = await uow.messaging_providers.get(agency_id, location_id, channel)
            now = self._clock.now()
            record = ProviderRecord(
                id=existing.id if existing else new_id(),
                agency_id=agency_id,
                location_id=location_id,
                channel=channel,
                kind=kind,
                config_ciphertext=self._configs.seal(clean),
                inbound_token=existing.inbound_token if existing else secrets.token_urlsafe(24),
                created_at=existing.created_at if existing else now,
                updated_at=now,
                summary=clean.summary(),
                updated_by=actor.id,
            )
            await uow.messaging_providers.put(record)
            await record_change(
                uow,
                self._clock,
                actor,
                action="update" if existing else "create",
                entity_type="messaging_provider",
                entity_id=record.id,
                agency_id=agency_id,
                location_id=location_id,
                before={"kind": existing.kind.value, **existing.summary} if existing else None,
                after={"kind": kind.value, **record.summary},
            )
            await uow.commit()
        return ProviderView(channel, kind, agency_default, record.summary, record.inbound_token)

    async def get_provider(
        self, actor: Actor, channel: Channel, *, agency_default: bool = False
    ) -> ProviderView:
        scope, location_id = self._owner_read(actor, agency_default)
        async with self._uow(scope) as uow:
            agency_id = await self._agency_of(uow, actor, location_id)
            record = await uow.messaging_providers.get(agency_id, location_id, channel)
            if record is None and location_id is not None:
                resolved = await uow.messaging_providers.resolve(location_id, channel)
                if resolved is not None and resolved.agency_default:
                    return ProviderView(channel, resolved.kind, True, {}, resolved.inbound_token)
        if record is None:
            platform = self._configs.platform(channel)
            if platform is not None and location_id is not None:
                summary = {**platform.summary(), "note": "the platform's configuration (environment)"}
                token = self._links.callback_token(location_id) if self._links else None
                return ProviderView(channel, platform.kind, False, summary, token, platform=True)
            return ProviderView(
                channel, ProviderKind.OUTBOX, False, {"note": "local outbox: nothing is sent"}
            )
        return ProviderView(channel, record.kind, location_id is None, record.summary, record.inbound_token)

    @staticmethod
    def _owner_read(actor: Actor, agency_default: bool) -> tuple[TenantScope, uuid.UUID | None]:
        if agency_default:
            if actor.agency_id is None or actor.location_id is not None:
                raise NotFound("agency defaults are read with agency credentials")
            if not actor.is_operator:
                actor.require_agency(Permission.LOCATIONS_READ)
            return TenantScope.agency(actor.agency_id), None
        return actor.scope, actor.require_location(Permission.CONVERSATIONS_READ)

    async def remove_provider(self, actor: Actor, channel: Channel, *, agency_default: bool = False) -> None:
        scope, location_id = self._owner(actor, agency_default)
        async with self._uow(scope) as uow:
            agency_id = await self._agency_of(uow, actor, location_id)
            existing = await uow.messaging_providers.get(agency_id, location_id, channel)
            if existing is None or not await uow.messaging_providers.delete(agency_id, location_id, channel):
                raise NotFound(f"no {channel.value} provider is configured here")
            await record_change(
                uow,
                self._clock,
                actor,
                action="delete",
                entity_type="messaging_provider",
                entity_id=existing.id,
                agency_id=agency_id,
                location_id=location_id,
                before={"kind": existing.kind.value, **existing.summary},
                after=None,
            )
            await uow.commit()

    async def rotate_key(self, old: SecretBox, new: SecretBox) -> int:
        """Operator: re-seals every stored configuration from the old key to the new one, in one
        transaction (all or none). Returns how many were re-sealed."""
        async with self._uow(TenantScope.operator()) as uow:
            rows = await uow.messaging_providers.all_ciphertexts()
            for record_id, kind, ciphertext in rows:
                plain = old.decrypt(ciphertext, kind.encode())
                await uow.messaging_providers.reseal(record_id, new.encrypt(plain, kind.encode()))
            await uow.commit()
        return len(rows)

    # ------------------------------------------------------------ settings

    async def get_settings(self, actor: Actor) -> MessagingSettings:
        location_id = actor.require_location(Permission.CONVERSATIONS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.messaging_settings.get(location_id)

    async def update_settings(self, actor: Actor, data: dict[str, Any]) -> MessagingSettings:
        location_id = actor.require_location(Permission.CONVERSATIONS_WRITE)
        allowed = {
            "quiet_hours",
            "help_text",
            "stop_text",
            "start_text",
            "sms_per_second",
            "email_per_second",
        }
        errors = [FieldError(f"/{k}", "is not a known field") for k in sorted(set(data) - allowed)]
        changes: dict[str, Any] = {}
        for key in ("help_text", "stop_text", "start_text"):
            if key in data:
                value = data[key]
                if value is not None and (
                    not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT
                ):
                    errors.append(FieldError(f"/{key}", f"must be 1 to {_MAX_TEXT} characters or null"))
                changes[key] = value.strip() if isinstance(value, str) else None
        for key in ("sms_per_second", "email_per_second"):
            if key in data:
                value = data[key]
                if value is not None and (
                    not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10000
                ):
                    errors.append(FieldError(f"/{key}", "must be 1 to 10000 or null"))
                changes[key] = value
        if "quiet_hours" in data:
            changes["quiet_hours"] = _quiet_hours(data["quiet_hours"], errors)
        if errors:
            raise ValidationFailed(errors)
        async with self._uow(actor.scope) as uow:
            location = await uow.locations.get(location_id)
            if location is None:  # pragma: no cover - the credential's location
                raise NotFound(f"location {location_id} not found")
            most = self._plans.limits(location.tier).sends_per_second
            faster = [k for k in ("sms_per_second", "email_per_second") if (changes.get(k) or 0) > most]
            if faster:  # the run never goes faster than the plan anyway; saying so beats a silent cap
                raise ValidationFailed(
                    [
                        FieldError(f"/{k}", f"the {location.tier.value} plan sends at most {most} a second")
                        for k in faster
                    ]
                )
            current = await uow.messaging_settings.get(location_id)
            updated = MessagingSettings(**{**_as_dict(current), **changes})
            await uow.messaging_settings.put(updated, actor.id)
            await uow.commit()
        return updated


def _as_dict(settings: MessagingSettings) -> dict[str, Any]:
    return {f.name: getattr(settings, f.name) for f in fields(settings)}


def _quiet_hours(value: Any, errors: list[FieldError]) -> QuietHours | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        errors.append(FieldError("/quiet_hours", "must be {start: 'HH:MM', end: 'HH:MM'} or null"))
        return None
    parsed: list[time] = []
    for key in ("start", "end"):
        try:
            parsed.append(time.fromisoformat(str(value[key])))
        except ValueError:
            errors.append(FieldError(f"/quiet_hours/{key}", "must be a time, HH:MM"))
    if len(parsed) != 2:
        return None
    if parsed[0] == parsed[1]:
        errors.append(FieldError("/quiet_hours", "start and end must differ (null means none)"))
        return None
    return QuietHours(start=parsed[0], end=parsed[1])
