"""SendGrid's callbacks, verified with the SDK's own helper, and read into the core's events.

- Event Webhook: SendGrid signs each POST (a JSON list of events) with ECDSA P-256 over
  `timestamp + body`; the signature and timestamp come in the `X-Twilio-Email-Event-Webhook-*` headers.
- Inbound Parse: SendGrid signs Parse POSTs the same way (same headers, same algorithm) once a webhook
  security policy with signature verification is attached to the Parse setting, so the location's
  secret here is that policy's public key, not a token in the URL. The body is multipart/form-data."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import Message
from email.parser import BytesParser, Parser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook  # type: ignore[import-untyped]

from ghl_core.conversations.inbound import Attachment, EmailEvent, EmailEventKind, InboundEmail
from ghl_core.inbound.models import MAX_EVENT_ID, InboundEnvelope, InboundRequest, SignatureInvalid
from ghl_core.shared.clock import Clock, SystemClock

from .sendgrid import INBOUND_PROVIDER, KEY_ARG, PROVIDER, base_message_id

EVENTS_TYPE = "email.events"
INBOUND_TYPE = "email.inbound"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
MAX_AGE = timedelta(minutes=10)  # an older signed timestamp is a replay
MAX_SKEW = timedelta(minutes=5)  # a timestamp this far ahead of our clock is not a real one
# Event fields worth keeping beside the normalised ones (bounce type, SMTP status, opener's agent...).
_EXTRA_FIELDS = ("type", "status", "bounce_classification", "attempt", "ip", "useragent", "smtp-id")


class SendGridEventVerifier:
    """`secret`: the location's Event Webhook verification key (base64 DER, as SendGrid shows it)."""

    def __init__(self, *, provider: str = PROVIDER, clock: Clock | None = None) -> None:
        self.provider = provider
        self._clock = clock or SystemClock()

    def verify(self, request: InboundRequest, secret: str | None) -> InboundEnvelope:
        verify_signature(request, secret, self._clock.now())
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, list):
            raise SignatureInvalid("the Event Webhook body is not a JSON list of events")
        # SendGrid posts events in batches and names none of them: a redelivered batch has the same body.
        return InboundEnvelope(
            provider=self.provider,
            provider_event_id=hashlib.sha256(request.body).hexdigest(),
            type=EVENTS_TYPE,
            payload=payload,
        )


class SendGridInboundParseVerifier:
    """`secret`: the public key of the Parse setting's webhook security policy (signature enabled)."""

    def __init__(self, *, provider: str = INBOUND_PROVIDER, clock: Clock | None = None) -> None:
        self.provider = provider
        self._clock = clock or SystemClock()

    def verify(self, request: InboundRequest, secret: str | None) -> InboundEnvelope:
        verify_signature(request, secret, self._clock.now())
        content_type = request.content_type or ""
        if not content_type.lower().startswith("multipart/form-data"):
            raise SignatureInvalid("an Inbound Parse post must be multipart/form-data")
        try:
            payload = read_form(content_type, request.body)
        except ValueError as exc:
            raise SignatureInvalid(f"the Inbound Parse body is not a readable form: {exc}") from None
        message_id = _header_block(payload).get("Message-ID")
        event_id = str(message_id).strip() if message_id else ""
        if not event_id or len(event_id) > MAX_EVENT_ID:
            event_id = hashlib.sha256(request.body).hexdigest()
        return InboundEnvelope(
            provider=self.provider, provider_event_id=event_id, type=INBOUND_TYPE, payload=payload
        )


def verify_signature(request: InboundRequest, public_key: str | None, now: datetime) -> None:
    """SendGrid's signed-webhook check (Event Webhook and Inbound Parse): a fresh timestamp, and an ECDSA
    signature of `timestamp + body` under the account's key. Raises `SignatureInvalid`."""
    if not public_key:
        raise SignatureInvalid("no SendGrid verification key is configured")
    signature = request.headers.get(SIGNATURE_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise SignatureInvalid("the SendGrid signature headers are missing")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureInvalid("the SendGrid signature timestamp is not a Unix time")
    signed_at = datetime.fromtimestamp(int(timestamp), UTC)
    if now - signed_at > MAX_AGE:
        raise SignatureInvalid("the SendGrid signature is too old")
    if signed_at - now > MAX_SKEW:
        raise SignatureInvalid("the SendGrid signature timestamp is in the future")
    helper = EventWebhook()
    try:
        key = helper.convert_public_key_to_ecdsa(public_key)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SignatureInvalid("the SendGrid verification key is not a public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureInvalid("the SendGrid verification key is not an ECDSA key")
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    try:
        if text is not None:
            valid = bool(helper.verify_signature(text, signature, timestamp, key))
        else:
            # The SDK's helper takes the body as text; a Parse post with binary attachments is not
            # UTF-8, so its bytes are checked with the same algorithm on the key the SDK loaded.
            valid = _verify_bytes(key, request.body, signature, timestamp)
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise SignatureInvalid("the SendGrid signature does not verify")


def _verify_bytes(key: ec.EllipticCurvePublicKey, body: bytes, signature: str, timestamp: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def parse_sendgrid_events(payload: list[dict[str, Any]]) -> list[EmailEvent]:
    """The events SendGrid posted, normalised; kinds we do not track (group unsubscribes...) are skipped."""
    events: list[EmailEvent] = []
    for item in payload:
        if not isinstance(item, dict):
            continue
        try:
            kind = EmailEventKind(str(item.get("event")))
        except ValueError:
            continue
        event_id = item.get("sg_event_id")
        if not event_id:
            event_id = hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
        sg_message_id = item.get("sg_message_id")
        unique_args = item.get("unique_args")
        key = item.get(KEY_ARG) or (unique_args.get(KEY_ARG) if isinstance(unique_args, dict) else None)
        reason = item.get("reason") or item.get("response")
        url = item.get("url")
        events.append(
            EmailEvent(
                provider=PROVIDER,
                kind=kind,
                event_id=str(event_id),
                email=str(item.get("email") or ""),
                provider_message_id=base_message_id(str(sg_message_id)) if sg_message_id else None,
                message_key=str(key) if key else None,
                at=_unix_time(item.get("timestamp")),
                reason=str(reason) if reason else None,
                url=str(url) if url else None,
                extra={name: str(item[name]) for name in _EXTRA_FIELDS if item.get(name) not in (None, "")},
            )
        )
    return events


def read_form(content_type: str, body: bytes) -> dict[str, Any]:
    """A multipart/form-data body as a JSON-able dict: each text field by its name, decoded with the
    charset SendGrid names for it in `charsets`, and `files` (name -> filename, content type, size)
    for the attachment parts, whose content is not kept."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    form = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not form.is_multipart():
        raise ValueError("no multipart body")
    raw: dict[str, bytes] = {}
    files: dict[str, dict[str, Any]] = {}
    parts = form.get_payload()
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = {"filename": filename, "content_type": part.get_content_type(), "size": len(data)}
        else:
            raw[name] = data
    charsets = _json_object(raw.get("charsets", b"").decode("utf-8", "replace"))
    fields: dict[str, Any] = {name: _decode(data, charsets.get(name)) for name, data in raw.items()}
    if files:
        fields["files"] = files
    return fields


def parse_inbound_parse(payload: Mapping[str, Any]) -> InboundEmail:
    """An Inbound Parse post (as `read_form` gives it) as an inbound email. Handles both Parse modes: the
    default one (text, html, headers fields) and "send raw" (the whole MIME message in `email`)."""
    raw_email = payload.get("email")
    if isinstance(raw_email, str) and raw_email and "text" not in payload and "html" not in payload:
        return _from_raw(raw_email)
    headers = _header_block(payload)
    from_name, from_email = parseaddr(str(payload.get("from") or headers.get("From") or ""))
    to_field = str(payload.get("to") or headers.get("To") or "")
    html = payload.get("html")
    return InboundEmail(
        provider=PROVIDER,
        from_email=from_email,
        from_name=from_name or None,
        to_emails=tuple(address for _, address in getaddresses([to_field]) if address),
        subject=str(payload.get("subject") or ""),
        text=str(payload.get("text") or ""),
        html=str(html) if html else None,
        message_id=_header(headers, "Message-ID"),
        in_reply_to=_header(headers, "In-Reply-To"),
        references=tuple(str(headers.get("References") or "").split()),
        attachments=_attachments(payload),
        received_at=_date(headers),
    )


def _from_raw(raw_email: str) -> InboundEmail:
    message = Parser(policy=policy.default).parsestr(raw_email)
    from_name, from_email = parseaddr(str(message.get("From") or ""))
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    attachments = tuple(
        Attachment(filename=part.get_filename(), content_type=part.get_content_type(), size=_size(part))
        for part in message.iter_attachments()
    )
    return InboundEmail(
        provider=PROVIDER,
        from_email=from_email,
        from_name=from_name or None,
        to_emails=tuple(address for _, address in getaddresses([str(message.get("To") or "")]) if address),
        subject=str(message.get("Subject") or ""),
        text=str(text_part.get_content()) if text_part is not None else "",
        html=str(html_part.get_content()) if html_part is not None else None,
        message_id=_header(message, "Message-ID"),
        in_reply_to=_header(message, "In-Reply-To"),
        references=tuple(str(message.get("References") or "").split()),
        attachments=attachments,
        received_at=_date(message),
    )


def _attachments(payload: Mapping[str, Any]) -> tuple[Attachment, ...]:
    info = payload.get("attachment-info")
    described = _json_object(info) if isinstance(info, str) else {}
    files = payload.get("files")
    files = files if isinstance(files, dict) else {}
    found: list[Attachment] = []
    for name in sorted(set(described) | set(files), key=_attachment_order):
        meta = described.get(name)
        meta = meta if isinstance(meta, dict) else {}
        part = files.get(name)
        part = part if isinstance(part, dict) else {}
        filename = meta.get("filename") or meta.get("name") or part.get("filename")
        content_type = meta.get("type") or part.get("content_type")
        size = part.get("size")
        found.append(
            Attachment(
                filename=str(filename) if filename else None,
                content_type=str(content_type) if content_type else None,
                size=size if isinstance(size, int) else None,
            )
        )
    return tuple(found)


def _attachment_order(name: str) -> tuple[int, str]:
    digits = name.removeprefix("attachment")
    return (int(digits), name) if digits.isdigit() else (1 << 30, name)


def _header_block(payload: Mapping[str, Any]) -> Message:
    """The raw header block of the received email, from `headers` (or the raw `email` in raw mode)."""
    block = payload.get("headers")
    if not isinstance(block, str) or not block:
        raw_email = payload.get("email")
        block = raw_email if isinstance(raw_email, str) else ""
    return Parser(policy=policy.compat32).parsestr(block, headersonly=True)


def _header(headers: Message, name: str) -> str | None:
    value = headers.get(name)
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _date(headers: Message) -> datetime | None:
    value = headers.get("Date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _size(part: Message) -> int | None:
    data = part.get_payload(decode=True)
    return len(data) if isinstance(data, bytes) else None


def _decode(data: bytes, charset: object) -> str:
    if isinstance(charset, str) and charset:
        try:
            return data.decode(charset, "replace")
        except LookupError:
            pass
    return data.decode("utf-8", "replace")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _unix_time(value: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
