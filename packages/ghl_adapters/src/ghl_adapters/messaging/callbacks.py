"""What the providers' callbacks do once verified and stored: the inbound processors of Twilio (replies
and delivery reports), SendGrid's Event Webhook (delivered, bounce, open...) and Inbound Parse (replies
by email). Each parses the stored raw request and hands the result to the conversation services
(receiving, reports) inside the job's unit of work."""

from __future__ import annotations

import json
from typing import Protocol
from urllib.parse import parse_qsl

from ghl_core.conversations.inbound import InboundSms
from ghl_core.conversations.ports import ReceivingUnitOfWork, ReportsUnitOfWork
from ghl_core.conversations.receiving import ReceivingService
from ghl_core.conversations.reports import ReportService
from ghl_core.inbound.models import InboundEvent, UnusableEvent
from ghl_core.tenancy.models import Location

from .sendgrid_webhooks import parse_inbound_parse, parse_sendgrid_events, read_form
from .twilio import parse_twilio_callback


class CallbackUnitOfWork(ReceivingUnitOfWork, ReportsUnitOfWork, Protocol):
    """A Twilio callback is a reply or a delivery report: the job's unit of work serves either."""


class TwilioCallbackProcessor:
    def __init__(self, *, receiving: ReceivingService, reports: ReportService) -> None:
        self._receiving = receiving
        self._reports = reports

    async def process(self, uow: CallbackUnitOfWork, event: InboundEvent, location: Location) -> None:
        params = dict(parse_qsl(event.body.decode("utf-8"), keep_blank_values=True))
        try:
            parsed = parse_twilio_callback(params)
        except ValueError as exc:  # signed, but no status we can use: Twilio's answer will not change
            raise UnusableEvent(str(exc)) from None
        if isinstance(parsed, InboundSms):
            await self._receiving.receive_sms(uow, location, parsed)
        else:
            await self._reports.apply_status(uow, location, parsed)


class SendGridEventsProcessor:
    def __init__(self, *, reports: ReportService) -> None:
        self._reports = reports

    async def process(self, uow: ReportsUnitOfWork, event: InboundEvent, location: Location) -> None:
        payload = json.loads(event.body)
        for email_event in parse_sendgrid_events(payload if isinstance(payload, list) else []):
            try:
                await self._reports.apply_email_event(uow, location, email_event)
            except LookupError:
                # An event about a message this platform did not send (or no longer has): nothing to do.
                continue


class SendGridInboundProcessor:
    def __init__(self, *, receiving: ReceivingService) -> None:
        self._receiving = receiving

    async def process(self, uow: ReceivingUnitOfWork, event: InboundEvent, location: Location) -> None:
        form = read_form(event.content_type or "", event.body)
        await self._receiving.receive_email(uow, location, parse_inbound_parse(form))
