"""The providers the receiving path knows: one verifier and its processors each."""

from __future__ import annotations

from ghl_adapters.messaging.callbacks import (
    SendGridEventsProcessor,
    SendGridInboundProcessor,
    TwilioCallbackProcessor,
)
from ghl_adapters.messaging.sendgrid import (
    INBOUND_PROVIDER as SENDGRID_INBOUND,
)
from ghl_adapters.messaging.sendgrid import (
    PROVIDER as SENDGRID,
)
from ghl_adapters.messaging.sendgrid_webhooks import (
    SendGridEventVerifier,
    SendGridInboundParseVerifier,
)
from ghl_adapters.messaging.twilio import TwilioVerifier
from ghl_core.conversations.receiving import ReceivingService
from ghl_core.conversations.reports import ReportService
from ghl_core.inbound.endpoints import EndpointWebhookProcessor
from ghl_core.inbound.models import ENDPOINT_PROVIDER
from ghl_core.inbound.ports import InboundRegistry
from ghl_core.shared.clock import Clock

from .standard_webhooks import StandardWebhooksVerifier

TWILIO = "twilio"


def build_inbound_registry(
    clock: Clock, *, receiving: ReceivingService, reports: ReportService
) -> InboundRegistry:
    registry = InboundRegistry()
    registry.add_verifier(ENDPOINT_PROVIDER, StandardWebhooksVerifier(ENDPOINT_PROVIDER))
    registry.add_processor(ENDPOINT_PROVIDER, EndpointWebhookProcessor(clock))
    registry.add_verifier(TWILIO, TwilioVerifier())
    registry.add_processor(TWILIO, TwilioCallbackProcessor(receiving=receiving, reports=reports))
    registry.add_verifier(SENDGRID, SendGridEventVerifier(clock=clock))
    registry.add_processor(SENDGRID, SendGridEventsProcessor(reports=reports))
    registry.add_verifier(SENDGRID_INBOUND, SendGridInboundParseVerifier(clock=clock))
    registry.add_processor(SENDGRID_INBOUND, SendGridInboundProcessor(receiving=receiving))
    return registry
