"""The providers the receiving path knows. A later provider (Twilio, SendGrid, Stripe) adds its verifier
and processors here: one registration each."""

from __future__ import annotations

from ghl_core.inbound.endpoints import EndpointWebhookProcessor
from ghl_core.inbound.models import ENDPOINT_PROVIDER
from ghl_core.inbound.ports import InboundRegistry
from ghl_core.shared.clock import Clock

from .standard_webhooks import StandardWebhooksVerifier


def build_inbound_registry(clock: Clock) -> InboundRegistry:
    registry = InboundRegistry()
    registry.add_verifier(ENDPOINT_PROVIDER, StandardWebhooksVerifier(ENDPOINT_PROVIDER))
    registry.add_processor(ENDPOINT_PROVIDER, EndpointWebhookProcessor(clock))
    return registry
