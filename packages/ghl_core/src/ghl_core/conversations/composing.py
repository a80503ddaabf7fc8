"""A stored message as its provider is handed it: the sender the configuration names, Twilio's status
callback, and for email the Message-ID, the one-click unsubscribe of marketing mail and, in campaign
mail, every link through the click redirect and the open pixel."""

from __future__ import annotations

import html as _html
import re
import uuid
from urllib.parse import quote

from ghl_core.contacts.models import Contact
from ghl_core.conversations.callbacks import twilio_callback_url
from ghl_core.conversations.gateways import EmailMessage, SmsMessage
from ghl_core.conversations.links import LinkSigner
from ghl_core.conversations.models import Channel, Message
from ghl_core.conversations.providers import ProviderConfig, ProviderKind
from ghl_core.tenancy.models import Location

OUTBOX_SENDER_EMAIL = "outbox@localhost"
_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)


def sender_of(outbound: SmsMessage | EmailMessage) -> str | None:
    return outbound.from_number if isinstance(outbound, SmsMessage) else outbound.from_email


class OutboundComposer:
    def __init__(self, *, links: LinkSigner, public_url: str) -> None:
        self._links = links
        self._public_url = public_url.rstrip("/")

    def outbound(
        self, location: Location, contact: Contact, message: Message, config: ProviderConfig | None
    ) -> SmsMessage | EmailMessage:
        address = (contact.phone if message.channel is Channel.SMS else contact.email) or ""
        if message.channel is Channel.SMS:
            twilio = config if config is not None and config.kind is ProviderKind.TWILIO else None
            return SmsMessage(
                key=str(message.id),
                to=address,
                from_number=twilio.sender().number if twilio else None,
                body=message.body,
                status_callback=twilio_callback_url(self._public_url, location.id) if twilio else None,
            )
        from_email, from_name = OUTBOX_SENDER_EMAIL, location.name
        sender = config.sender() if config is not None else None
        if sender is not None and sender.email:
            from_email, from_name = sender.email, sender.name or location.name
        domain = from_email.rpartition("@")[2] or "localhost"
        headers = {"Message-ID": f"<{message.id}@{domain}>"}
        text, html = message.body, message.html
        if html and message.campaign_id is not None:
            html = self._tracked(location.id, message.id, html)
        if message.marketing:
            token = self._links.unsubscribe_token(location.id, contact.id, message.id)
            link = f"{self._public_url}/unsubscribe/{token}"
            headers["List-Unsubscribe"] = f"<{link}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            text = f"{text}\n\n--\nUnsubscribe: {link}"
            if html:
                html = f'{html}\n<p style="font-size:12px;color:#666"><a href="{link}">Unsubscribe</a></p>'
        return EmailMessage(
            key=str(message.id),
            to=address,
            to_name=contact.name or None,
            from_email=from_email,
            from_name=from_name,
            subject=message.subject or "",
            text=text,
            html=html,
            headers=headers,
            tags={"ghl_location": str(location.id), "ghl_message": str(message.id)},
        )

    def _tracked(self, location_id: uuid.UUID, message_id: uuid.UUID, html: str) -> str:
        """Campaign email: every http(s) link through the click redirect, and the open pixel."""
        base = self._public_url

        def swap(match: re.Match[str]) -> str:
            url = _html.unescape(match.group(2))
            token = self._links.click_token(location_id, message_id, url)
            tracked = f"{base}/t/c/{token}?u={quote(url, safe='')}"
            return f"{match.group(1)}{_html.escape(tracked)}{match.group(3)}"

        rewritten = _HREF.sub(swap, html)
        pixel = f"{base}/t/o/{self._links.open_token(location_id, message_id)}.gif"
        return f'{rewritten}\n<img src="{pixel}" width="1" height="1" alt="" style="display:none">'
