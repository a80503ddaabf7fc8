"""SendGrid email through the official SDK, and its callbacks verified with the SDK's own helper.

- Sending: the v3 Mail Send API, the body built with the SDK's mail helpers. The SDK is synchronous
  (urllib), so each call runs in a worker thread. `custom_args` carry our message key, so Event Webhook
  events and the Email Activity API name the message they are about.
- Sending many (`send_emails`, campaigns): SendGrid's bulk form, one mail send with up to 1,000
  personalizations. Each recipient's email is rendered on its own (merge fields, tracked links and the
  unsubscribe link differ per recipient), so the shared content is two substitution tags and each
  personalization carries its own text and html as substitutions, with its own subject, headers
  (Message-ID, List-Unsubscribe) and custom_args (our message key). Messages whose substitutions exceed
  SendGrid's 10,000 bytes per personalization, or that differ in sender, go in their own request.
- Event Webhook: SendGrid signs each POST (a JSON list of events) with ECDSA P-256 over
  `timestamp + body`; the signature and timestamp come in the `X-Twilio-Email-Event-Webhook-*` headers.
- Inbound Parse: SendGrid signs Parse POSTs the same way (same headers, same algorithm) once a webhook
  security policy with signature verification is attached to the Parse setting, so the location's
  secret here is that policy's public key, not a token in the URL. The body is multipart/form-data."""

from __future__ import annotations

import asyncio
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
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from python_http_client.exceptions import HTTPError  # type: ignore[import-untyped]
from sendgrid import SendGridAPIClient  # type: ignore[import-untyped]
from sendgrid.helpers.eventwebhook import EventWebhook  # type: ignore[import-untyped]
from sendgrid.helpers.mail import (  # type: ignore[import-untyped]
    ApiKeyIncludedException,
    CustomArg,
    From,
    Header,
    Mail,
    ReplyTo,
    To,
)
from sendgrid.helpers.mail.validators import ValidateApiKey  # type: ignore[import-untyped]

from ghl_core.conversations.gateways import EmailMessage, MessageStatus, SendFailed, SendResult
from ghl_core.conversations.inbound import Attachment, EmailEvent, EmailEventKind, InboundEmail
from ghl_core.conversations.providers import SendGridConfig
from ghl_core.inbound.models import MAX_EVENT_ID, InboundEnvelope, InboundRequest, SignatureInvalid
from ghl_core.shared.clock import Clock, SystemClock

PROVIDER = "sendgrid"
# The Parse webhook gets its own provider name: the receiving path keeps one verifier per provider, and
# Parse posts are signed with another key (the security policy's) than Event Webhook posts.
INBOUND_PROVIDER = "sendgrid_inbound"
DEFAULT_HOST = "https://api.sendgrid.com"
EVENTS_TYPE = "email.events"
INBOUND_TYPE = "email.inbound"
KEY_ARG = "ghl_key"  # the custom arg naming our message
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
MAX_AGE = timedelta(minutes=10)  # an older signed timestamp is a replay
MAX_SKEW = timedelta(minutes=5)  # a timestamp this far ahead of our clock is not a real one
FIND_LIMIT = 10
# The documented limits of one mail send: personalizations per request, and the collective size of one
# personalization's substitutions.
MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
# The shared content of a bulk send: each personalization substitutes its own rendered parts.
TEXT_TAG = "%ghl_text_body%"
HTML_TAG = "%ghl_html_body%"
_API_KEY_CHECK = ValidateApiKey()  # the check the SDK's Mail helper makes on content

# Headers the v3 API refuses in `headers` (it sets them from the body's own fields).
_RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
_ACTIVITY_STATUSES = {
    "delivered": MessageStatus.DELIVERED,
    "not_delivered": MessageStatus.UNDELIVERED,
}
# Event fields worth keeping beside the normalised ones (bounce type, SMTP status, opener's agent...).
_EXTRA_FIELDS = ("type", "status", "bounce_classification", "attempt", "ip", "useragent", "smtp-id")


class SendGridEmailGateway:
    """One SDK client per gateway; it holds no connection, each call opens its own."""

    provider = PROVIDER

    def __init__(self, config: SendGridConfig, *, api_base: str | None = None, timeout: float = 30.0) -> None:
        if not config.api_key:  # the SDK would fall back to the process's SENDGRID_API_KEY
            raise ValueError("a SendGrid configuration needs an API key")
        self._config = config
        self._timeout = timeout
        self._sg = SendGridAPIClient(config.api_key, host=(api_base or DEFAULT_HOST).rstrip("/"))
        # The SDK adds this header to its shared header dict on the first POST; doing it now keeps that
        # write from racing with another thread building a request from the same dict.
        self._sg.client.request_headers.setdefault("Content-Type", "application/json")

    async def send_email(self, message: EmailMessage) -> SendResult:
        body = self._body(message)
        try:
            response = await asyncio.to_thread(self._post, body)
        except HTTPError as exc:
            raise _http_failure(exc, "SendGrid refused the email") from None
        except (OSError, HTTPException) as exc:  # URLError, refused connection, timeout, cut response
            raise _unreachable(exc) from None
        message_id = response.headers.get("X-Message-Id")
        return SendResult(
            provider=PROVIDER,
            provider_message_id=str(message_id) if message_id else None,
            status=MessageStatus.SENT,
            sent_at=datetime.now(UTC),
        )

    @property
    def max_batch(self) -> int:
        return MAX_PERSONALIZATIONS

    async def send_emails(self, messages: list[EmailMessage]) -> list[SendResult | SendFailed]:
        """Many emails in as few mail sends as the bulk form allows; one answer per message, in order.
        A request SendGrid answers 400 (one bad address refuses the whole request, and nothing of it
        is sent) is sent again one message per request, so only the bad ones fail."""
        answers: list[SendResult | SendFailed | None] = [None] * len(messages)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, message in enumerate(messages):
            try:
                personalization = self._personalization(message)
            except SendFailed as exc:
                answers[index] = exc
                continue
            if personalization is None:  # too big to substitute: on its own, in the single form
                groups.setdefault(("single", index), []).append(index)
                continue
            groups.setdefault(self._group(message), []).append(index)
        for key, indexes in groups.items():
            for start in range(0, len(indexes), MAX_PERSONALIZATIONS):
                chunk = indexes[start : start + MAX_PERSONALIZATIONS]
                if key[0] == "single" or len(chunk) == 1:  # one message: the plain form
                    answers[chunk[0]] = await self._send_one(messages[chunk[0]])
                    continue
                for index, answer in zip(
                    chunk, await self._send_bulk([messages[i] for i in chunk]), strict=True
                ):
                    answers[index] = answer
        return [a if a is not None else SendFailed("not sent", permanent=False) for a in answers]

    async def _send_one(self, message: EmailMessage) -> SendResult | SendFailed:
        try:
            return await self.send_email(message)
        except SendFailed as exc:
            return exc

    async def _send_bulk(self, messages: list[EmailMessage]) -> list[SendResult | SendFailed]:
        first = messages[0]
        from_name = first.from_name
        if from_name is None and first.from_email == self._config.from_email:
            from_name = self._config.from_name
        sender: dict[str, str] = {"email": first.from_email}
        if from_name:
            sender["name"] = from_name
        content = [{"type": "text/plain", "value": TEXT_TAG}]
        if first.html:
            content.append({"type": "text/html", "value": HTML_TAG})
        body: dict[str, Any] = {
            "from": sender,
            "personalizations": [self._personalization(m) for m in messages],
            "content": content,
        }
        if first.reply_to:
            body["reply_to"] = {"email": first.reply_to}
        try:
            response = await asyncio.to_thread(self._post, body)
        except HTTPError as exc:
            if int(exc.status_code) == 400 and len(messages) > 1:
                return [await self._send_one(m) for m in messages]
            failure = _http_failure(exc, "SendGrid refused the emails")
            return [failure] * len(messages)
        except (OSError, HTTPException) as exc:
            failure = _unreachable(exc)
            return [failure] * len(messages)
        message_id = response.headers.get("X-Message-Id")
        sent_at = datetime.now(UTC)
        # SendGrid answers one X-Message-Id per request: every recipient's events carry it (with a
        # per-recipient suffix, which `_message_id` drops), and our key in custom_args tells them apart.
        return [
            SendResult(
                provider=PROVIDER,
                provider_message_id=str(message_id) if message_id else None,
                status=MessageStatus.SENT,
                sent_at=sent_at,
            )
            for _ in messages
        ]

    @staticmethod
    def _group(message: EmailMessage) -> tuple[Any, ...]:
        """What a bulk request shares: the sender, the reply-to address and the content parts."""
        return ("bulk", message.from_email, message.from_name, message.reply_to, bool(message.html))

    def _personalization(self, message: EmailMessage) -> dict[str, Any] | None:
        """One recipient of a bulk send; None when its substitutions would pass SendGrid's limit.
        Raises `SendFailed` for what the single form refuses too (a header break, an API key)."""
        text = message.text or " "  # SendGrid refuses an empty content value
        substitutions = {TEXT_TAG: text}
        if message.html:
            substitutions[HTML_TAG] = message.html
        if sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items()) > MAX_SUBSTITUTION_BYTES:
            return None
        try:
            _API_KEY_CHECK.validate_message_text(text)
            _API_KEY_CHECK.validate_message_text(message.html)
        except ApiKeyIncludedException:
            raise SendFailed("the email body contains a SendGrid API key", permanent=True) from None
        to: dict[str, str] = {"email": message.to}
        if message.to_name:
            to["name"] = message.to_name
        headers = dict(message.headers)
        if not any(name.lower() == "message-id" for name in headers):
            headers["Message-ID"] = thread_message_id(message.key, message.from_email)
        headers = {name: value for name, value in headers.items() if name.lower() not in _RESERVED_HEADERS}
        for name, value in headers.items():
            _check_header(name, value)
        return {
            "to": [to],
            "subject": message.subject,
            "headers": headers,
            "substitutions": substitutions,
            "custom_args": {**message.tags, KEY_ARG: message.key},
        }

    async def find_sent(self, message: EmailMessage, since: datetime) -> SendResult | None:
        """Asks the Email Activity API (a paid add-on) for the message carrying our key. `since` is not
        needed: the key names one message. Without the add-on SendGrid answers 403/404: we cannot tell."""
        if '"' in message.key or "\\" in message.key:
            raise NotImplementedError("this message key cannot be put in an Email Activity query")
        query = f"unique_args['{KEY_ARG}']=\"{message.key}\""
        try:
            response = await asyncio.to_thread(self._activity, query)
        except HTTPError as exc:
            if exc.status_code in (403, 404):
                raise NotImplementedError("the SendGrid account has no Email Activity API access") from None
            raise _http_failure(exc, "SendGrid's Email Activity API refused the query") from None
        except (OSError, HTTPException) as exc:
            raise _unreachable(exc) from None
        try:
            found = json.loads(response.body or b"{}").get("messages") or []
        except (ValueError, AttributeError):
            raise SendFailed("SendGrid's Email Activity answer is not JSON", permanent=False) from None
        for item in found:
            if isinstance(item, dict) and item.get("msg_id"):
                return SendResult(
                    provider=PROVIDER,
                    provider_message_id=_message_id(str(item["msg_id"])),
                    status=_ACTIVITY_STATUSES.get(str(item.get("status")), MessageStatus.SENT),
                )
        return None

    def _post(self, body: dict[str, Any]) -> Any:
        return self._sg.client.mail.send.post(request_body=body, timeout=self._timeout)

    def _activity(self, query: str) -> Any:
        params = {"query": query, "limit": FIND_LIMIT}
        return self._sg.client.messages.get(query_params=params, timeout=self._timeout)

    def _body(self, message: EmailMessage) -> dict[str, Any]:
        from_name = message.from_name
        if from_name is None and message.from_email == self._config.from_email:
            from_name = self._config.from_name
        try:
            mail = Mail(
                from_email=From(message.from_email, from_name),
                to_emails=To(message.to, message.to_name),
                subject=message.subject,
                plain_text_content=message.text or None,  # SendGrid refuses an empty content value
                html_content=message.html or None,
            )
        except ApiKeyIncludedException:
            raise SendFailed("the email body contains a SendGrid API key", permanent=True) from None
        if message.reply_to:
            mail.reply_to = ReplyTo(message.reply_to)
        headers = dict(message.headers)
        if not any(name.lower() == "message-id" for name in headers):
            # Our own Message-ID, so a reply's In-Reply-To names the message it answers.
            headers["Message-ID"] = thread_message_id(message.key, message.from_email)
        for name, value in headers.items():
            if name.lower() in _RESERVED_HEADERS:
                continue
            _check_header(name, value)
            mail.add_header(Header(name, value))
        for name, value in {**message.tags, KEY_ARG: message.key}.items():
            mail.add_custom_arg(CustomArg(name, value))
        body: dict[str, Any] = mail.get()
        return body


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
                provider_message_id=_message_id(str(sg_message_id)) if sg_message_id else None,
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


def _message_id(sg_message_id: str) -> str:
    """SendGrid's message id as `X-Message-Id` gave it: events and the activity feed append the id of the
    filter that processed it (".filterdrecv-...", ".recvd-...")."""
    return sg_message_id.split(".", 1)[0]


def _unix_time(value: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def thread_message_id(key: str, from_email: str) -> str:
    """`<key@sender-domain>`: unique (our key is), and recognisable when a reply quotes it."""
    domain = from_email.rpartition("@")[2] or "localhost"
    return f"<{key}@{domain}>"


def _check_header(name: str, value: str) -> None:
    if any(char in name + value for char in "\r\n") or not name or ":" in name:
        raise SendFailed(f"the email header {name!r} is not a valid header", permanent=True, code="header")


def _unreachable(exc: Exception) -> SendFailed:
    """urllib wraps what fails while connecting and writing the request in `URLError`: nothing was
    accepted. A failure after that (no answer in time, a cut response) leaves it unknown whether SendGrid
    took the request, and SendGrid takes no idempotency key: sending again could send twice."""
    return SendFailed(
        f"SendGrid could not be reached: {exc}",
        permanent=False,
        code="network",
        unknown=not isinstance(exc, URLError),
    )


def _http_failure(exc: HTTPError, what: str) -> SendFailed:
    status = int(exc.status_code)
    detail = _error_messages(exc.body) or str(exc.reason)
    permanent = 400 <= status < 500 and status != 429
    return SendFailed(f"{what} (HTTP {status}): {detail}", permanent=permanent, code=str(status))


def _error_messages(body: object) -> str:
    if not isinstance(body, bytes | str):
        return ""
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(errors, list):
        return ""
    return "; ".join(str(error.get("message")) for error in errors if isinstance(error, dict))
