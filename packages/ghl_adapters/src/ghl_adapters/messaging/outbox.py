"""The embedded default gateway: a message is recorded as delivered to the local outbox, and nothing
leaves the platform. `ghl outbox` and `GET /api/v1/outbox` show what it took. It is named as what it is
in `ghl doctor` and in the API, so nobody mistakes it for a real send."""

from __future__ import annotations

from datetime import datetime

from ghl_core.conversations.gateways import EmailMessage, MessageStatus, SendResult, SmsMessage
from ghl_core.shared.clock import Clock

OUTBOX = "outbox"


class OutboxGateway:
    provider = OUTBOX

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def _taken(self, key: str) -> SendResult:
        return SendResult(
            provider=OUTBOX,
            provider_message_id=f"outbox-{key}",
            status=MessageStatus.DELIVERED,
            sent_at=self._clock.now(),
        )

    async def send_sms(self, message: SmsMessage) -> SendResult:
        return self._taken(message.key)

    async def send_email(self, message: EmailMessage) -> SendResult:
        return self._taken(message.key)

    async def find_sent(self, message: SmsMessage | EmailMessage, since: datetime) -> SendResult | None:
        # Nothing left the platform, so a lost outcome is simply "not sent": taking it again is safe.
        return None
