"""Where providers post back, in one place for the API, the CLI and the sends that ask Twilio for status
callbacks: the paths under the public base URL (`GHL_PUBLIC_URL`, else where the server listens; the
settings compute it) and the URLs a location pastes into each provider's console."""

from __future__ import annotations

import uuid

from ghl_core.conversations.providers import ProviderKind

TWILIO_CALLBACK_PATH = "/webhooks/twilio"
SENDGRID_CALLBACK_PATH = "/webhooks/sendgrid"


def twilio_callback_url(base_url: str, location_id: uuid.UUID | str) -> str:
    """Twilio's messaging webhook (replies); status callbacks are requested per message at the same URL."""
    return f"{base_url}{TWILIO_CALLBACK_PATH}/{location_id}"


def callback_urls(
    base_url: str, location_id: uuid.UUID | str, kind: ProviderKind, inbound_token: str | None
) -> dict[str, str]:
    """Where the provider is told to post: Twilio's messaging webhook, SendGrid's Event Webhook and
    Inbound Parse URLs. SMTP and the outbox have none."""
    if kind is ProviderKind.TWILIO:
        return {"twilio_messaging_webhook": twilio_callback_url(base_url, location_id)}
    if kind is ProviderKind.SENDGRID:
        urls = {"sendgrid_event_webhook": f"{base_url}{SENDGRID_CALLBACK_PATH}/{location_id}/events"}
        if inbound_token:
            urls["sendgrid_inbound_parse"] = (
                f"{base_url}{SENDGRID_CALLBACK_PATH}/{location_id}/inbound/{inbound_token}"
            )
        return urls
    return {}
