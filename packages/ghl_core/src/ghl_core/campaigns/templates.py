"""Message templates: a location's saved SMS and email content, checked (syntax, a test render within the
render limits, sanitised html) when saved, and previewed for one contact."""

from __future__ import annotations

import uuid
from dataclasses import replace
from functools import partial as partial_call
from typing import Any

from ghl_core.campaigns.models import MessageTemplate
from ghl_core.campaigns.ports import TemplatesUnitOfWork
from ghl_core.campaigns.rules import clean_name
from ghl_core.conversations.models import MAX_EMAIL_BODY, MAX_SMS_BODY, MAX_SUBJECT, Channel
from ghl_core.conversations.templates import HtmlSanitizer, TemplateRenderer, merge_context, off_loop
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import FieldError, NotFound, ValidationFailed
from ghl_core.shared.ids import new_id
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.tenancy.permissions import Actor, Permission


class TemplateService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[TemplatesUnitOfWork],
        clock: Clock,
        renderer: TemplateRenderer,
        sanitizer: HtmlSanitizer,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._renderer = renderer
        self._sanitizer = sanitizer

    async def clean_content(
        self, channel: Channel, data: dict[str, Any], *, partial: bool = False
    ) -> dict[str, Any]:
        """Subject, body and html checked for the channel, for template syntax and by a test render
        within the render limits, off the event loop (errors point at the field and line); html
        sanitised."""
        errors: list[FieldError] = []
        out: dict[str, Any] = {}
        for key in ("subject", "body", "html"):
            if key not in data:
                continue
            value = data[key]
            if value is not None and not isinstance(value, str):
                errors.append(FieldError(f"/{key}", "must be a string"))
                continue
            out[key] = value
        if channel is Channel.SMS:
            if out.get("subject") or out.get("html"):
                errors.append(FieldError("/subject" if out.get("subject") else "/html", "an SMS has none"))
            if not partial and not (out.get("body") or "").strip():
                errors.append(FieldError("/body", "is required for an SMS"))
            if len(out.get("body") or "") > MAX_SMS_BODY * 4:
                errors.append(FieldError("/body", "is too long for an SMS template"))
        else:
            subject = out.get("subject")
            if not partial and not (subject or "").strip():
                errors.append(FieldError("/subject", "is required for an email"))
            if subject and (len(subject) > MAX_SUBJECT or "\n" in subject or "\r" in subject):
                errors.append(FieldError("/subject", f"must be one line of at most {MAX_SUBJECT} characters"))
            if not partial and not ((out.get("body") or "").strip() or (out.get("html") or "").strip()):
                errors.append(FieldError("/body", "an email needs a body or html"))
            if len(out.get("body") or "") + len(out.get("html") or "") > MAX_EMAIL_BODY:
                errors.append(FieldError("/body", f"must be at most {MAX_EMAIL_BODY} characters in all"))
        if errors:
            raise ValidationFailed(errors)
        for key in ("subject", "body", "html"):
            if out.get(key):
                source, pointer, html = out[key], f"/{key}", key == "html"
                await off_loop(
                    partial_call(self._renderer.check, source, pointer, html=html), pointer=pointer
                )
        if out.get("html"):
            out["html"] = await off_loop(partial_call(self._sanitizer.clean, out["html"]), pointer="/html")
        return out

    async def create(self, actor: Actor, data: dict[str, Any]) -> MessageTemplate:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        unknown = sorted(set(data) - {"name", "channel", "subject", "body", "html"})
        if unknown:
            raise ValidationFailed([FieldError(f"/{k}", "is not a known field") for k in unknown])
        name = clean_name(data.get("name"))
        try:
            channel = Channel(str(data.get("channel")))
        except ValueError:
            raise ValidationFailed.one("/channel", "must be 'sms' or 'email'") from None
        content = await self.clean_content(channel, data)
        now = self._clock.now()
        template = MessageTemplate(
            id=new_id(),
            location_id=location_id,
            name=name,
            channel=channel,
            created_at=now,
            updated_at=now,
            body=content.get("body") or "",
            subject=content.get("subject"),
            html=content.get("html"),
            created_by=actor.id,
            updated_by=actor.id,
        )
        async with self._uow(actor.scope) as uow:
            await uow.templates.add(template)
            await uow.commit()
        return template

    async def _visible(
        self, uow: TemplatesUnitOfWork, location_id: uuid.UUID, template_id: uuid.UUID
    ) -> MessageTemplate:
        template = await uow.templates.get(template_id)
        if template is None or template.location_id != location_id or template.deleted_at is not None:
            raise NotFound(f"template {template_id} not found")
        return template

    async def get(self, actor: Actor, template_id: uuid.UUID) -> MessageTemplate:
        location_id = actor.require_location(Permission.CAMPAIGNS_READ)
        async with self._uow(actor.scope) as uow:
            return await self._visible(uow, location_id, template_id)

    async def list(self, actor: Actor, page: PageRequest) -> Page[MessageTemplate]:
        location_id = actor.require_location(Permission.CAMPAIGNS_READ)
        async with self._uow(actor.scope) as uow:
            return await uow.templates.list(location_id, page)

    async def update(self, actor: Actor, template_id: uuid.UUID, data: dict[str, Any]) -> MessageTemplate:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        unknown = sorted(set(data) - {"name", "subject", "body", "html"})
        if unknown:
            raise ValidationFailed([FieldError(f"/{k}", "is not a known field") for k in unknown])
        async with self._uow(actor.scope) as uow:
            template = await self._visible(uow, location_id, template_id)
            content = await self.clean_content(template.channel, data, partial=True)
            changed = replace(template, **content)
            if "name" in data:
                changed.name = clean_name(data["name"])
            await self.clean_content(
                changed.channel, {"subject": changed.subject, "body": changed.body, "html": changed.html}
            )
            changed.updated_at, changed.updated_by = self._clock.now(), actor.id
            await uow.templates.update(changed)
            await uow.commit()
        return changed

    async def delete(self, actor: Actor, template_id: uuid.UUID) -> None:
        location_id = actor.require_location(Permission.CAMPAIGNS_WRITE)
        async with self._uow(actor.scope) as uow:
            template = await self._visible(uow, location_id, template_id)
            now = self._clock.now()
            await uow.templates.update(replace(template, deleted_at=now, updated_at=now, updated_by=actor.id))
            await uow.commit()

    async def preview(
        self, actor: Actor, template_id: uuid.UUID, contact_id: uuid.UUID
    ) -> dict[str, str | None]:
        """The template rendered for one contact, as it would be sent."""
        location_id = actor.require_location(Permission.CAMPAIGNS_READ)
        async with self._uow(actor.scope) as uow:
            template = await self._visible(uow, location_id, template_id)
            contact = await uow.contacts.get(contact_id)
            location = await uow.locations.get(location_id)
        if (
            contact is None
            or contact.deleted_at is not None
            or contact.erased_at is not None
            or location is None
        ):
            raise NotFound(f"contact {contact_id} not found")
        context = merge_context(contact, location)
        renderer = self._renderer

        def rendered() -> dict[str, str | None]:
            return {
                "subject": renderer.render(template.subject, context, pointer="/subject")
                if template.subject
                else None,
                "body": renderer.render(template.body, context, pointer="/body"),
                "html": renderer.render_html(template.html, context, pointer="/html")
                if template.html
                else None,
            }

        return await off_loop(rendered)
