"""Twilio SMS through the official SDK (async), its callbacks verified with the SDK's RequestValidator.

Twilio's Messages API documents no idempotency token for creating a message (the SDK's `create_async`
takes none; only a few other resources, such as a call's UserDefinedMessage, accept an IdempotencyKey).
So `SmsMessage.key` is not sent: a send whose outcome was lost is reconciled with `find_sent`, which looks
for the message in the account's message log."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import ClientError, ClientSession
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]
from twilio.twiml.messaging_response import MessagingResponse  # type: ignore[import-untyped]

from ghl_core.conversations.gateways import MessageStatus, SendFailed, SendResult, SmsMessage
from ghl_core.conversations.inbound import Attachment, InboundSms, StatusUpdate
from ghl_core.inbound.models import InboundEnvelope, InboundRequest, SignatureInvalid

from .configs import TwilioConfig

PROVIDER = "twilio"
SIGNATURE_HEADER = "x-twilio-signature"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
INBOUND_TYPE = "sms.inbound"
STATUS_TYPE = "sms.status"

# How much of the message log `find_sent` reads: the messages to one number since one day are few.
FIND_LIMIT = 1000
FIND_PAGE_SIZE = 100

# Twilio's message statuses. "Accepted by the provider" is our SENT: queued, accepted (messaging
# services), sending and sent all mean Twilio has it and will deliver or report a failure.
_STATUSES: dict[str, MessageStatus] = {
    "queued": MessageStatus.SENT,
    "accepted": MessageStatus.SENT,
    "sending": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "scheduled": MessageStatus.SCHEDULED,
    "delivered": MessageStatus.DELIVERED,
    "partially_delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
    "undelivered": MessageStatus.UNDELIVERED,
    "receiving": MessageStatus.RECEIVED,
    "received": MessageStatus.RECEIVED,
}


class _TwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's async HTTP client (its documented extension point), adjusted in four ways:

    - requests for any *.twilio.com host go to `api_base` when one is given (a local double);
    - the aiohttp session opens on first use, inside the running loop (aiohttp binds a session to the
      loop that creates it, and gateways are built outside any loop), then serves every request;
    - the client's timeout applies to every request (the SDK's async client passes only a per-call
      timeout, which its resources never set, so a hung connection would otherwise wait forever);
    - Basic credentials go in the Authorization header, as aiohttp now asks (its `auth=` is deprecated);
    - a form body is encoded here (`urlencode`, as aiohttp would) and handed over as bytes: aiohttp turns
      a dict into a `FormData`, which builds a multipart writer per request even for a plain form, a
      measurable share of a campaign's CPU per message."""

    session: ClientSession | None

    def __init__(self, *, api_base: str | None, timeout: float) -> None:
        super().__init__(pool_connections=False, timeout=timeout)
        self._api_base = urlsplit(api_base.rstrip("/")) if api_base else None

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature, which its resources call
        allow_redirects: bool = False,
    ) -> Response:
        if self.session is None:
            self.session = ClientSession()
        if auth is not None:
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {credentials}"}
        body: Any = data
        if isinstance(data, dict):
            body = urlencode(data, doseq=True).encode()
            headers = {**(headers or {}), "Content-Type": FORM_CONTENT_TYPE}
        return await super().request(
            method,
            self._route(url),
            params=params,
            data=body,
            headers=headers,
            auth=None,
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )

    def _route(self, url: str) -> str:
        base = self._api_base
        if base is None:
            return url
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, parts.fragment))

    async def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.close()


class TwilioSmsGateway:
    """`SmsGateway` on Twilio's Messages API; one SDK client (and connection pool) per gateway."""

    provider: str = PROVIDER

    def __init__(self, config: TwilioConfig, *, api_base: str | None = None, timeout: float = 30.0) -> None:
        self._config = config
        self._http = _TwilioHttpClient(api_base=api_base, timeout=timeout)
        # environment={}: edge and region come from our configuration, never from stray TWILIO_* variables.
        self._client = Client(
            config.account_sid,
            config.auth_token,
            account_sid=config.account_sid,
            http_client=self._http,
            environment={},
        )

    async def aclose(self) -> None:
        await self._http.close()

    async def send_sms(self, message: SmsMessage) -> SendResult:
        from_number, service_sid = self._sender(message)
        params: dict[str, Any] = {"to": message.to, "body": message.body}
        if from_number:
            params["from_"] = from_number
        else:
            params["messaging_service_sid"] = service_sid
        if message.media_urls:
            params["media_url"] = list(message.media_urls)
        if message.status_callback:
            params["status_callback"] = message.status_callback
        try:
            created = await self._client.messages.create_async(**params)
        except (TwilioException, ClientError, OSError) as exc:
            raise _send_failed(exc) from exc
        return SendResult(
            provider=PROVIDER,
            provider_message_id=created.sid,
            status=_STATUSES.get(created.status or "", MessageStatus.SENT),
            sent_at=created.date_sent or created.date_created,
        )

    async def find_sent(self, message: SmsMessage, since: datetime) -> SendResult | None:
        """Twilio filters its log by day (`DateSent>=`), and only messages it has handed on carry a
        date_sent, so a message still queued at Twilio is not listed yet. Among the listed ones, the
        earliest created since `since` with the same body (and sender) is this message."""
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
        # Twilio's dates have whole seconds: a message created in the same second as `since` counts.
        since = since.replace(microsecond=0)
        from_number, service_sid = self._sender(message)
        filters: dict[str, Any] = {"to": message.to, "date_sent_after": since.strftime("%Y-%m-%d")}
        if from_number:
            filters["from_"] = from_number
        try:
            records = await self._client.messages.list_async(
                **filters, limit=FIND_LIMIT, page_size=FIND_PAGE_SIZE
            )
        except (TwilioException, ClientError, OSError) as exc:
            raise _send_failed(exc) from exc
        found = [
            record
            for record in records
            if record.body == message.body
            and record.date_created is not None
            and record.date_created >= since
            and (from_number or record.messaging_service_sid == service_sid)
        ]
        if not found:
            return None
        record = min(found, key=lambda r: r.date_created)
        return SendResult(
            provider=PROVIDER,
            provider_message_id=record.sid,
            status=_STATUSES.get(record.status or "", MessageStatus.SENT),
            sent_at=record.date_sent or record.date_created,
        )

    def _sender(self, message: SmsMessage) -> tuple[str | None, str | None]:
        """(From, None) or (None, MessagingServiceSid): a message names its number, else the credentials'
        messaging service (it picks the number), else the credentials' number."""
        if message.from_number:
            return message.from_number, None
        if self._config.messaging_service_sid:
            return None, self._config.messaging_service_sid
        if self._config.from_number:
            return self._config.from_number, None
        raise SendFailed(
            "the Twilio credentials name neither a sender number nor a messaging service", permanent=True
        )


def _send_failed(exc: BaseException) -> SendFailed:
    """Twilio's 4xx answers (bad number, unsubscribed recipient, bad credentials) cannot succeed on a
    retry; 408, 429, 5xx and network failures may."""
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = int(exc.status)
        code = str(exc.code) if exc.code is not None else None
        detail = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
        return SendFailed(
            f"Twilio answered HTTP {status} (error {code}): {detail}",
            permanent=_permanent(status),
            code=code,
        )
    if isinstance(exc, TwilioException):
        # A list page that is not 200 comes as a bare TwilioException holding the response.
        response = exc.args[1] if len(exc.args) > 1 else None
        answered = getattr(response, "status_code", None)
        if isinstance(answered, int):
            return SendFailed(f"Twilio answered HTTP {answered}", permanent=_permanent(answered))
        return SendFailed(f"Twilio client error: {exc}", permanent=False)
    return SendFailed(f"Twilio could not be reached: {type(exc).__name__}: {exc}", permanent=False)


def _permanent(status: int) -> bool:
    return 400 <= status < 500 and status not in (408, 429)


def twilio_status(value: str) -> MessageStatus:
    """Our status for one of Twilio's message statuses; ValueError for one Twilio does not document."""
    try:
        return _STATUSES[value.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown Twilio message status {value!r}") from None


def parse_twilio_callback(payload: Mapping[str, str]) -> InboundSms | StatusUpdate:
    """A verified messaging webhook (incoming message) or status callback, normalised."""
    missing = [name for name in ("MessageSid", "From", "To") if not payload.get(name)]
    if missing:
        raise ValueError(f"not a Twilio messaging callback: missing {', '.join(missing)}")
    sid = payload["MessageSid"]
    status = _callback_status(payload)
    if status == "received" and "Body" in payload:
        return InboundSms(
            provider=PROVIDER,
            provider_message_id=sid,
            from_number=payload["From"],
            to_number=payload["To"],
            body=payload["Body"],
            media=_media(payload),
        )
    if not status:
        raise ValueError("a Twilio status callback without MessageStatus or SmsStatus")
    return StatusUpdate(
        provider=PROVIDER,
        provider_message_id=sid,
        status=twilio_status(status),
        error_code=payload.get("ErrorCode") or None,
        error_message=payload.get("ErrorMessage") or None,
    )


def _callback_status(payload: Mapping[str, str]) -> str:
    # Status callbacks carry both; MessageStatus is the current name, SmsStatus the legacy one.
    return (payload.get("MessageStatus") or payload.get("SmsStatus") or "").strip().lower()


def _media(payload: Mapping[str, str]) -> tuple[Attachment, ...]:
    try:
        count = int(payload.get("NumMedia") or "0")
    except ValueError:
        raise ValueError(f"NumMedia is not a number: {payload.get('NumMedia')!r}") from None
    media = []
    for index in range(max(count, 0)):
        url = payload.get(f"MediaUrl{index}")
        if url:
            content_type = payload.get(f"MediaContentType{index}") or None
            media.append(Attachment(filename=None, content_type=content_type, url=url))
    return tuple(media)


class _FormParams(dict[str, str]):
    """A decoded form as the validator reads it: every value of a repeated name (through `getlist`,
    which RequestValidator looks for), while the dict itself holds each name's first value."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)
            self.setdefault(name, value)

    def getlist(self, name: str) -> list[str]:
        return self._values[name]


class TwilioVerifier:
    """`InboundVerifier` for Twilio's messaging webhooks and status callbacks: `secret` is the auth token
    of the location's Twilio account, which signs the URL and the form parameters (X-Twilio-Signature)."""

    provider: str = PROVIDER

    def verify(self, request: InboundRequest, secret: str | None) -> InboundEnvelope:
        if not secret:
            raise SignatureInvalid("no Twilio auth token is configured to check this callback")
        headers = {name.lower(): value for name, value in request.headers.items()}
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != FORM_CONTENT_TYPE:
            raise SignatureInvalid(f"Twilio messaging callbacks are {FORM_CONTENT_TYPE}, not {media_type!r}")
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            raise SignatureInvalid("the X-Twilio-Signature header is missing")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureInvalid("the callback body is not UTF-8") from None
        params = _FormParams(parse_qsl(text, keep_blank_values=True))
        if not RequestValidator(secret).validate(request.url, params, signature):
            raise SignatureInvalid("the X-Twilio-Signature does not match this URL and body")
        sid = params.get("MessageSid")
        if not sid:
            raise SignatureInvalid("a signed Twilio callback that is not about a message (no MessageSid)")
        status = _callback_status(params)
        if status == "received" and "Body" in params:
            event_id, event_type = sid, INBOUND_TYPE
        else:
            event_id, event_type = f"{sid}:{status}", STATUS_TYPE  # each status is reported once
        return InboundEnvelope(
            provider=PROVIDER, provider_event_id=event_id, type=event_type, payload=dict(params)
        )


def twiml_empty() -> str:
    """The answer to an incoming-message webhook when nothing is replied at once: an empty TwiML
    <Response/>, so Twilio neither replies nor logs a 12xxx error."""
    return str(MessagingResponse().to_xml())
