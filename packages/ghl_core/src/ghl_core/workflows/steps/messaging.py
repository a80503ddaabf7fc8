"""Steps that message someone: an SMS or an e-mail to the contact (queued through the conversations
ledger in the enrollment's transaction, with cause `workflow:{enrollment}:{step}:{tick}`, so a message,
its ledger row and the move commit together, once; held to the workflow's send window), and the internal
notification (recorded only, for now)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ghl_core.conversations.drafts import Draft
from ghl_core.conversations.models import (
    MAX_EMAIL_BODY,
    MAX_SMS_BODY,
    MAX_SUBJECT,
    Channel,
    ContactOptedOut,
    MessageSource,
    NoAddress,
)
from ghl_core.conversations.templates import TemplateError, TemplateRenderer, merge_context, off_loop
from ghl_core.shared.errors import DomainError
from ghl_core.workflows.models import EnrollmentStatus, StepRunStatus
from ghl_core.workflows.reading import Reader
from ghl_core.workflows.scheduling import run_job
from ghl_core.workflows.steps.base import Jump, Outcome, Simulator, StepContext, StepHandler
from ghl_core.workflows.values import TEMPLATE, TEMPLATE_HTML, Step, ref

MAX_NOTIFICATION = 10_000
NOTIFY_CHANNELS = ("email", "sms", "in_app")


@dataclass(frozen=True, kw_only=True)
class SendSms(Step):
    TYPE = "send_sms"
    body: str = field(metadata=TEMPLATE)
    marketing: bool = False


@dataclass(frozen=True, kw_only=True)
class SendEmail(Step):
    TYPE = "send_email"
    subject: str = field(metadata=TEMPLATE)
    body: str | None = field(default=None, metadata=TEMPLATE)  # the text part
    html: str | None = field(default=None, metadata=TEMPLATE_HTML)
    marketing: bool = False


@dataclass(frozen=True, kw_only=True)
class InternalNotification(Step):
    TYPE = "internal_notification"
    channel: str
    body: str = field(metadata=TEMPLATE)
    user_id: uuid.UUID | None = field(default=None, metadata=ref("user"))  # None: the contact's assigned user


def _dnd(contact: dict[str, Any], channel: str) -> bool:
    return bool(contact.get("dnd")) or bool((contact.get("dnd_channels") or {}).get(channel))


class _SendHandler(StepHandler[Any]):
    """A message to the contact: held to the send window, skipped for do-not-disturb or no address."""

    channel: Channel

    def draft(self, step: Any, renderer: TemplateRenderer, context: dict[str, Any]) -> Draft:
        raise NotImplementedError  # pragma: no cover

    def would_send(self, sim: Simulator, step: Any, address: str) -> str:
        raise NotImplementedError  # pragma: no cover

    async def run(self, ctx: StepContext, step: Any) -> Outcome | bool:
        window = ctx.definition.settings.send_window
        zone = ctx.zone(None)
        if window is not None and not window.contains(ctx.now, zone):
            opens = window.first_inside(ctx.now, zone)
            held = Outcome(StepRunStatus.WAITING, "send_window", f"held until {opens.isoformat()}")
            await ctx.record(step, held)
            enrollment = ctx.enrollment
            enrollment.tick += 1
            enrollment.status = EnrollmentStatus.WAITING
            enrollment.wake_at = opens
            enrollment.updated_at = ctx.now
            await ctx.tx.enrollments.update(enrollment)
            await ctx.tx.jobs.enqueue(run_job(enrollment, opens))
            return False
        context = merge_context(ctx.contact, ctx.location)
        renderer = ctx.runner.renderer
        try:
            # A template error fails the step, recorded.
            draft = await off_loop(lambda: self.draft(step, renderer, context), pointer="/body")
            message, created = await ctx.runner.conversations.enqueue(
                ctx.tx,
                ctx.location,
                ctx.contact,
                draft,
                source=MessageSource.WORKFLOW,
                cause=ctx.cause(step),
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

    def simulate(self, sim: Simulator, step: Any) -> Jump | None:
        channel = self.channel.value
        what = "phone" if channel == "sms" else "email"
        address = sim.contact.get(what)
        if not address:
            sim.note(step, "skipped", f"the contact has no {what}")
            return None
        if _dnd(sim.contact, channel):
            sim.note(step, "skipped", f"do-not-disturb is on for {channel}")
            return None
        window = sim.definition.settings.send_window
        if window is not None and not window.contains(sim.now, sim.zone()):
            opens = window.first_inside(sim.now, sim.zone())
            sim.note(step, "waiting", f"held for the send window until {opens.isoformat()}")
            sim.now = opens
        sim.note(step, "would_send", self.would_send(sim, step, address))
        return None


class SendSmsHandler(_SendHandler):
    step = SendSms
    channel = Channel.SMS

    def read(self, r: Reader) -> dict[str, Any]:
        return {"body": r.text("body", MAX_SMS_BODY, multiline=True), "marketing": r.flag("marketing")}

    def draft(self, step: SendSms, renderer: TemplateRenderer, context: dict[str, Any]) -> Draft:
        return Draft(
            channel=Channel.SMS,
            body=renderer.render(step.body, context, pointer="/body"),
            marketing=step.marketing,
        )

    def would_send(self, sim: Simulator, step: SendSms, address: str) -> str:
        return f"SMS to {address}: {sim.render(step.body)}"


class SendEmailHandler(_SendHandler):
    step = SendEmail
    channel = Channel.EMAIL

    def read(self, r: Reader) -> dict[str, Any]:
        out = {
            "subject": r.text("subject", MAX_SUBJECT),
            "body": r.text("body", MAX_EMAIL_BODY, multiline=True, required=False),
            "html": r.text("html", MAX_EMAIL_BODY, multiline=True, required=False),
            "marketing": r.flag("marketing"),
        }
        if r.raw.get("body") in (None, "") and r.raw.get("html") in (None, ""):
            r.fail("body", "an email needs a body, an html body or both")
        return out

    def draft(self, step: SendEmail, renderer: TemplateRenderer, context: dict[str, Any]) -> Draft:
        return Draft(
            channel=Channel.EMAIL,
            body=renderer.render(step.body or "", context, pointer="/body"),
            subject=renderer.render(step.subject, context, pointer="/subject"),
            html=renderer.render_html(step.html, context, pointer="/html") if step.html else None,
            marketing=step.marketing,
        )

    def would_send(self, sim: Simulator, step: SendEmail, address: str) -> str:
        return f"e-mail to {address}: {sim.render(step.subject)}"


class InternalNotificationHandler(StepHandler[InternalNotification]):
    step = InternalNotification

    def read(self, r: Reader) -> dict[str, Any]:
        return {
            "channel": r.choice("channel", NOTIFY_CHANNELS),
            "body": r.text("body", MAX_NOTIFICATION, multiline=True),
            "user_id": r.uuid("user_id", required=False),
        }

    async def run(self, ctx: StepContext, step: InternalNotification) -> Outcome:
        try:
            body = await ctx.render(step.body, "/body")
        except TemplateError as exc:
            return Outcome(StepRunStatus.FAILED, "failed", str(exc), error=str(exc), fail_enrollment=True)
        return Outcome(
            StepRunStatus.SKIPPED,
            "not_delivered",
            "internal notifications are recorded here only: user notifications are not built yet",
            output={"channel": step.channel, "body": body},
        )
