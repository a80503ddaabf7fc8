"""SendGrid email through the official SDK. Its callbacks (the Event Webhook and Inbound Parse, verified
with the SDK's own helper) are read in `sendgrid_webhooks.py`.

- Sending: the v3 Mail Send API, the body built with the SDK's mail helpers. The SDK is synchronous
  (urllib), so each call runs in a worker thread. `custom_args` carry our message key, so Event Webhook
  events and the Email Activity API name the message they are about.
- Sending many (`send_emails`, campaigns): SendGrid's bulk form, one mail send with up to 1,000
  personalizations. Each recipient's email is rendered on its own (merge fields, tracked links and the
  unsubscribe link differ per recipient), so the shared content is two substitution tags and each
  personalization carries its own text and html as substitutions, with its own subject, headers
  (Message-ID, List-Unsubscribe) and custom_args (our message key). Messages whose substitutions exceed
  SendGrid's 10,000 bytes per personalization, or that differ in sender, go in their own request."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from python_http_client.exceptions import HTTPError  # type: ignore[import-untyped]
from sendgrid import SendGridAPIClient  # type: ignore[import-untyped]
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

from .configs import SendGridConfig

PROVIDER = "sendgrid"
# The Parse webhook gets its own provider name: the receiving path keeps one verifier per provider, and
# Parse posts are signed with another key (the security policy's) than Event Webhook posts.
INBOUND_PROVIDER = "sendgrid_inbound"
DEFAULT_HOST = "https://api.sendgrid.com"
KEY_ARG = "ghl_key"  # the custom arg naming our message
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
        # per-recipient suffix, which `base_message_id` drops), and our key in custom_args tells them apart.
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
                    provider_message_id=base_message_id(str(item["msg_id"])),
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


def base_message_id(sg_message_id: str) -> str:
    """SendGrid's message id as `X-Message-Id` gave it: events and the activity feed append the id of the
    filter that processed it (".filterdrecv-...", ".recvd-...")."""
    return sg_message_id.split(".", 1)[0]


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
