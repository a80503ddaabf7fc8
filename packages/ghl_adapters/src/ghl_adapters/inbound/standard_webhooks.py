"""Standard Webhooks (standardwebhooks.com) signatures, checked with the spec's reference library: an
HMAC-SHA256 of `webhook-id.webhook-timestamp.body` under the endpoint's `whsec_` secret, with timestamps
more than five minutes off refused (replays of an old delivery fail)."""

from __future__ import annotations

import binascii

from standardwebhooks import Webhook, WebhookVerificationError

from ghl_core.inbound.models import InboundEnvelope, InboundRequest, SignatureInvalid, parse_json

EVENT_TYPE_HEADER = "webhook-event-type"  # not in the spec: a sender may name its event's type here


class StandardWebhooksVerifier:
    def __init__(self, provider: str) -> None:
        self.provider = provider

    def verify(self, request: InboundRequest, secret: str | None) -> InboundEnvelope:
        if not secret:
            raise SignatureInvalid("this endpoint has no signing secret")
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            Webhook(secret).verify(request.body, headers, json_parse=False)
        except WebhookVerificationError as exc:
            raise SignatureInvalid(f"the webhook signature does not verify: {exc}") from None
        except (ValueError, binascii.Error):  # a malformed signature header or a body that is not UTF-8
            raise SignatureInvalid("the webhook signature headers or body are malformed") from None
        payload = parse_json(request.body)
        return InboundEnvelope(
            provider=self.provider,
            provider_event_id=headers["webhook-id"],
            type=_event_type(headers, payload),
            payload=payload,
        )


def _event_type(headers: dict[str, str], payload: object) -> str | None:
    named = headers.get(EVENT_TYPE_HEADER)
    if named:
        return named[:200]
    if isinstance(payload, dict):
        value = payload.get("type")
        if isinstance(value, str) and value:
            return value[:200]
    return None
