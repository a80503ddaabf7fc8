"""A local stand-in for Twilio's Messages REST API (2010-04-01) on 127.0.0.1, speaking its documented wire
format: form-encoded requests under HTTP Basic auth, the message resource and paging envelope as JSON,
errors as {code, message, more_info, status}. Plus `sign_twilio_request`, Twilio's webhook signature
written from its documentation (not from the SDK), so tests check the SDK's validator against it."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
MESSAGING_SERVICE_SID = "MG" + "89abcdef01234567" * 2

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_ERRORS = "https://www.twilio.com/docs/errors/"


@dataclass
class RecordedMessage:
    """One message resource as the double holds it; `form` is the create request's body, decoded."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    media_urls: list[str]
    status_callback: str | None
    status: str
    date_created: datetime
    date_sent: datetime | None
    form: dict[str, list[str]] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": self.body,
            "date_created": _rfc2822(self.date_created),
            "date_sent": _rfc2822(self.date_sent) if self.date_sent else None,
            "date_updated": _rfc2822(self.date_sent or self.date_created),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": str(max(1, -(-len(self.body) // 160))),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": self.to,
            "uri": f"{uri}.json",
        }


class _Refusal(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class TwilioDouble:
    """Twilio's Messages API on a free local port, in a background thread.

    As on Twilio, a created message is answered `queued` (`accepted` when only a messaging service is
    named) with no date_sent, then moves on: the double records it as `sent` at once, its date_sent its
    creation time, so listings filtered by DateSent find it.

    Switches: `unsubscribed` (answer 21610), `landlines` (21614), `fail_next(status, times)` (answer 429
    or 5xx), `delay_next(seconds, times)` (answer late, for timeouts). `requests` records (method, path,
    Host header) of every request; `messages` the created and seeded messages."""

    page_size = 50

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.unsubscribed: set[str] = set()
        self.landlines: set[str] = set()
        # Seconds between recording a created message and answering (a response lost to a crash).
        self.answer_latency = 0.0
        self._lock = threading.Lock()
        self._messages: list[RecordedMessage] = []
        self._requests: list[tuple[str, str, str]] = []
        self._failures: list[int] = []
        self._delays: list[float] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's pooled client expects
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                double._handle(self, "GET")

            def do_POST(self) -> None:
                double._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024

            def handle_error(self, request: Any, client_address: Any) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up
                    super().handle_error(request, client_address)

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        serve = functools.partial(self._httpd.serve_forever, poll_interval=0.01)
        self._thread = threading.Thread(target=serve, name="twilio-double", daemon=True)

    # --- lifecycle

    def start(self) -> TwilioDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> TwilioDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the tests see and set

    @property
    def messages(self) -> list[RecordedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self._requests)

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._delays.extend([seconds] * times)

    def seed(
        self,
        to: str,
        body: str,
        *,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        date_created: datetime,
        status: str = "delivered",
    ) -> RecordedMessage:
        """A message already in the account's log (sent earlier, by anyone)."""
        message = RecordedMessage(
            sid=_sid("SM"),
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            messaging_service_sid=messaging_service_sid,
            body=body,
            media_urls=[],
            status_callback=None,
            status=status,
            date_created=date_created,
            date_sent=date_created,
        )
        with self._lock:
            self._messages.append(message)
        return message

    # --- the API

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        url = urlsplit(handler.path)
        with self._lock:
            self._requests.append((method, url.path, handler.headers.get("Host", "")))
            failure = self._failures.pop(0) if self._failures else None
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay:
            time.sleep(delay)
        try:
            if failure is not None:
                raise _Refusal(failure, 20000 + failure, "Too Many Requests" if failure == 429 else "Error")
            match = _MESSAGES.match(url.path)
            if match is None:
                raise _Refusal(404, 20404, f"The requested resource {url.path} was not found")
            self._authenticate(handler, match["sid"])
            if method == "POST":
                form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
                status, answer = 201, self._create(match["sid"], form)
                if self.answer_latency:
                    time.sleep(self.answer_latency)
            else:
                query = parse_qs(url.query, keep_blank_values=True)
                status, answer = 200, self._list(url.path, query)
        except _Refusal as refusal:
            status = refusal.status
            answer = {
                "code": refusal.code,
                "message": refusal.message,
                "more_info": f"{_ERRORS}{refusal.code}",
                "status": refusal.status,
            }
        body = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _authenticate(self, handler: BaseHTTPRequestHandler, path_sid: str) -> None:
        scheme, _, encoded = (handler.headers.get("Authorization") or "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        good = (
            scheme.lower() == "basic"
            and hmac.compare_digest(user, self.account_sid)
            and hmac.compare_digest(password, self.auth_token)
            and path_sid == self.account_sid
        )
        if not good:
            raise _Refusal(401, 20003, "Authenticate")

    def _create(self, account_sid: str, form: dict[str, list[str]]) -> dict[str, Any]:
        """The message resource as created; the record then moves on to `sent`."""

        def one(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values else None

        to, from_, service = one("To"), one("From"), one("MessagingServiceSid")
        body, media = one("Body") or "", form.get("MediaUrl", [])
        if not to:
            raise _Refusal(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            raise _Refusal(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not from_ and not service:
            raise _Refusal(400, 21603, "A 'From' phone number is required.")
        if from_ and not _E164.match(from_):
            raise _Refusal(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        if service and not from_ and not re.fullmatch(r"MG[0-9a-f]{32}", service):
            raise _Refusal(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if not body and not media:
            raise _Refusal(400, 21602, "Message body is required.")
        if to in self.unsubscribed:
            raise _Refusal(400, 21610, "Attempt to send to unsubscribed recipient")
        if to in self.landlines:
            raise _Refusal(400, 21614, f"'To' number {to} is not a valid mobile number")
        now = datetime.now(UTC).replace(microsecond=0)
        message = RecordedMessage(
            sid=_sid("SM"),
            account_sid=account_sid,
            to=to,
            from_=from_,
            messaging_service_sid=service,
            body=body,
            media_urls=list(media),
            status_callback=one("StatusCallback"),
            status="accepted" if service and not from_ else "queued",
            date_created=now,
            date_sent=None,
            form=form,
        )
        with self._lock:
            self._messages.append(message)
            answered = message.resource()
            message.status, message.date_sent = "sent", now
        return answered

    def _list(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        size = min(int(one("PageSize") or self.page_size), 1000)
        page = int(one("Page") or 0)
        after, before, on = one("DateSent>"), one("DateSent<"), one("DateSent")
        with self._lock:
            found = [
                m
                for m in self._messages
                if (one("To") is None or m.to == one("To"))
                and (one("From") is None or m.from_ == one("From"))
                and _sent_within(m.date_sent, after, before, on)
            ]
        found.sort(key=lambda m: (m.date_sent or m.date_created, m.date_created), reverse=True)
        start = page * size
        chunk = found[start : start + size]
        filters = [
            (k, v) for k, vs in query.items() if k not in ("Page", "PageSize", "PageToken") for v in vs
        ]

        def page_uri(number: int) -> str:
            return f"{path}?{urlencode([*filters, ('PageSize', size), ('Page', number)])}"

        return {
            "end": start + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "messages": [m.resource() for m in chunk],
            "next_page_uri": page_uri(page + 1) if start + size < len(found) else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }


def _sent_within(sent: datetime | None, after: str | None, before: str | None, on: str | None) -> bool:
    """Twilio's DateSent filters: `DateSent>` is on or after, `DateSent<` on or before, `DateSent` that
    day; each a GMT date (YYYY-MM-DD) or, as the SDK sends them, a datetime (YYYY-MM-DDTHH:MM:SSZ)."""
    if after is None and before is None and on is None:
        return True
    if sent is None:
        return False
    if after is not None and sent < _bound(after, end=False):
        return False
    if before is not None and sent > _bound(before, end=True):
        return False
    return on is None or sent.date() == _bound(on, end=False).date()


def _bound(value: str, *, end: bool) -> datetime:
    if "T" in value:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    day = date.fromisoformat(value)
    return datetime.combine(day, dtime.max if end else dtime.min, tzinfo=UTC)


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC))  # "Thu, 24 Aug 2023 05:01:45 +0000"


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def sign_twilio_request(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]
) -> str:
    """X-Twilio-Signature as Twilio documents it: the full URL, then each POST parameter's name and value
    appended with no delimiter, sorted by name (case-sensitive); HMAC-SHA1 keyed with the auth token,
    base64-encoded."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    data = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
