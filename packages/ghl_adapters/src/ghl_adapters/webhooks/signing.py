"""Signatures as the Standard Webhooks specification defines them, by its reference library."""

from __future__ import annotations

from datetime import datetime

from standardwebhooks import Webhook


class StandardWebhooksSigner:
    def sign(self, secret: str, msg_id: str, timestamp: datetime, body: str) -> str:
        return Webhook(secret).sign(msg_id, timestamp, body)
