"""A local stand-in for SendGrid's v3 API on 127.0.0.1, speaking its documented wire format, plus what
SendGrid itself would send us: Event Webhook posts signed as SendGrid signs them, and Inbound Parse posts.

- `POST /v3/mail/send`: Bearer key checked (401 with SendGrid's error JSON), the body's documented shape
  checked (400 with `{"errors": [{"message", "field", "help"}]}`), 202 with an `X-Message-Id` header.
  The bulk form too: up to 1,000 personalizations, each with its own to, subject, headers,
  substitutions (applied to the content of what that recipient is recorded to get) and custom_args.
- `GET /v3/messages?query=...&limit=N`: the Email Activity API over what was sent here (403 when the
  account is made to lack the add-on).
- `fail_next(n, status)`: the next n API calls answer 500 or 429 (SendGrid's error JSON); `delay`
  holds every answer back (a client timeout).

The signer is written from SendGrid's documentation with `cryptography`, independently of the SDK's
verifier, so the tests check the SDK against the documented algorithm."""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEFAULT_API_KEY = "SG.double-key.0123456789abcdef"
RESERVED_HEADERS = frozenset(
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
_CLAUSE = re.compile(
    r"""^\(?\s*(?:unique_args\['(?P<arg>[^']+)'\]|(?P<field>[a-z_]+))\s*=\s*"(?P<value>[^"]*)"\s*\)?$"""
)
_FIELDS = frozenset({"msg_id", "from_email", "subject", "to_email", "status"})


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any  # the parsed JSON, or the raw text when it is not JSON


@dataclass
class SentMessage:
    """One recipient of one accepted mail send, as the Email Activity API would list it."""

    message_id: str  # the X-Message-Id answered
    to_email: str
    from_email: str
    subject: str
    unique_args: dict[str, str]
    body: dict[str, Any]
    status: str = "delivered"
    # The content this recipient gets: the request's, with its personalization's substitutions made.
    content: list[dict[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # the request's, with its personalization's
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def msg_id(self) -> str:
        """As SendGrid lists it: the X-Message-Id with the id of the filter that processed it."""
        return f"{self.message_id}.filterdrecv-5645d9c87f-7xq2l-1-66A1B2C3-4.0"


class SendGridDouble:
    def __init__(self, api_key: str = DEFAULT_API_KEY, *, activity: bool = True) -> None:
        self.api_key = api_key
        self.activity = activity  # the Email Activity add-on
        self.delay = 0.0  # seconds each answer waits (to make clients time out)
        self.requests: list[RecordedRequest] = []
        self.sent: list[SentMessage] = []
        self._lock = threading.Lock()
        self._failures: list[int] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                double._handle(self, "POST")

            def do_GET(self) -> None:
                double._handle(self, "GET")

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024  # bursts of new connections (urllib opens one per call)

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        serve = functools.partial(self._httpd.serve_forever, poll_interval=0.01)
        self._thread = threading.Thread(target=serve, daemon=True)

    # control

    def start(self) -> SendGridDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> SendGridDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def mail_sends(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == "/v3/mail/send"]

    # serving

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {name.lower(): value for name, value in handler.headers.items()}
        request = RecordedRequest(method, url.path, parse_qs(url.query), headers, body)
        with self._lock:
            self.requests.append(request)
        if self.delay:
            time.sleep(self.delay)
        if headers.get("authorization") != f"Bearer {self.api_key}":
            message = "The provided authorization grant is invalid, expired, or revoked"
            _reply(handler, 401, _errors((message, None)))
            return
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            extra = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0"} if failure == 429 else {}
            message = "too many requests" if failure == 429 else "internal server error"
            _reply(handler, failure, _errors((message, None)), extra)
            return
        if method == "POST" and url.path == "/v3/mail/send":
            self._mail_send(handler, body)
        elif method == "GET" and url.path == "/v3/messages":
            self._messages(handler, request.query)
        else:
            _reply(handler, 404, _errors(("resource not found", None)))

    def _mail_send(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        if not isinstance(body, dict):
            _reply(handler, 400, _errors(("Bad Request", None)))
            return
        problems = validate_mail_send(body)
        if problems:
            _reply(handler, 400, _errors(*problems))
            return
        message_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        sender = body["from"]["email"]
        for personalization in body["personalizations"]:
            args = {**body.get("custom_args", {}), **personalization.get("custom_args", {})}
            subject = personalization.get("subject") or body.get("subject") or ""
            swaps = personalization.get("substitutions") or {}
            content = [
                {**part, "value": _substitute(part["value"], swaps)} for part in body.get("content", [])
            ]
            headers = {**(body.get("headers") or {}), **(personalization.get("headers") or {})}
            for to in personalization["to"]:
                sent = SentMessage(
                    message_id, to["email"], sender, subject, args, body, content=content, headers=headers
                )
                with self._lock:
                    self.sent.append(sent)
        _reply(handler, 202, b"", {"X-Message-Id": message_id})

    def _messages(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        if not self.activity:
            _reply(handler, 403, _errors(("access forbidden", None)))
            return
        try:
            limit = int(query.get("limit", ["10"])[0])
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            _reply(handler, 400, _errors(("limit must be between 1 and 1000", "limit")))
            return
        wanted = parse_activity_query(query.get("query", [""])[0])
        if wanted is None:
            _reply(handler, 400, _errors(("invalid query", "query")))
            return
        with self._lock:
            sent = list(self.sent)
        found = [m for m in sent if _matches(m, wanted)][:limit]
        messages = [
            {
                "from_email": m.from_email,
                "msg_id": m.msg_id,
                "subject": m.subject,
                "to_email": m.to_email,
                "status": m.status,
                "opens_count": 0,
                "clicks_count": 0,
                "last_event_time": m.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for m in found
        ]
        _reply(handler, 200, json.dumps({"messages": messages}).encode())


MAX_PERSONALIZATIONS = 1000  # per request, as documented
MAX_PERSONALIZATION_BYTES = 10_000  # substitutions, and custom_args, of one personalization


def _substitute(value: str, swaps: Mapping[str, str]) -> str:
    for tag, replacement in swaps.items():
        value = value.replace(tag, replacement)
    return value


def _string_object(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _size(value: Mapping[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in value.items())


def _personalization_problems(index: int, item: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The documented rules of one personalization's optional fields."""
    problems: list[tuple[str, str | None]] = []
    where = f"personalizations.{index}"
    subject = item.get("subject")
    if subject is not None and (not isinstance(subject, str) or not subject):
        problems.append(("The subject of a personalization must be a non-empty string.", f"{where}.subject"))
    headers = item.get("headers")
    if headers is not None:
        if not _string_object(headers):
            problems.append(("Headers must be a JSON object of string values.", f"{where}.headers"))
        elif any(name.lower() in RESERVED_HEADERS for name in headers):
            problems.append(("You may not set a reserved header.", f"{where}.headers"))
    for name in ("substitutions", "custom_args"):
        value = item.get(name)
        if value is None:
            continue
        if not _string_object(value):
            problems.append((f"The {name} must be a JSON object of string values.", f"{where}.{name}"))
        elif _size(value) > MAX_PERSONALIZATION_BYTES:
            message = f"The {name} of a personalization may not exceed {MAX_PERSONALIZATION_BYTES} bytes."
            problems.append((message, f"{where}.{name}"))
    return problems


def validate_mail_send(body: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The v3 mail/send rules the docs state, as (message, field) pairs; empty when the body is valid."""
    problems: list[tuple[str, str | None]] = []
    templated = bool(body.get("template_id"))
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        message = "The personalizations field is required and must have at least one personalization."
        problems.append((message, "personalizations"))
        personalizations = []
    if len(personalizations) > MAX_PERSONALIZATIONS:
        message = f"The personalizations field may not have more than {MAX_PERSONALIZATIONS} objects."
        problems.append((message, "personalizations"))
    for index, item in enumerate(personalizations):
        to = item.get("to") if isinstance(item, dict) else None
        if not isinstance(to, list) or not to or not all(_is_email(entry) for entry in to):
            message = (
                "The to array is required for all personalization objects, and must have at least one "
                "email object with a valid email address."
            )
            problems.append((message, f"personalizations.{index}.to"))
        if isinstance(item, dict):
            problems += _personalization_problems(index, item)
    sender = body.get("from")
    if not _is_email(sender):
        message = "The from object must be provided for every email send. It requires the email parameter."
        problems.append((message, "from.email"))
    every_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    )
    subject = body.get("subject")
    if not templated and not every_has_subject and not (isinstance(subject, str) and subject):
        message = (
            "The subject is required. You can get around this requirement if you use a template with a "
            "subject defined or if every personalization has a subject defined."
        )
        problems.append((message, "subject"))
    content = body.get("content")
    if content is None and not templated:
        message = "Unless a valid template_id is provided, the content parameter is required."
        problems.append((message, "content"))
    elif content is not None:
        if not isinstance(content, list) or not content:
            problems.append(
                ("The content parameter must be an array of at least one content object.", "content")
            )
        else:
            for index, item in enumerate(content):
                if not isinstance(item, dict) or not item.get("type"):
                    problems.append(("The content type is required.", f"content.{index}.type"))
                if not isinstance(item, dict) or not isinstance(item.get("value"), str) or not item["value"]:
                    message = "The content value must be a string at least one character in length."
                    problems.append((message, f"content.{index}.value"))
            types = [item.get("type") for item in content if isinstance(item, dict)]
            if "text/plain" in types and types[0] != "text/plain":
                problems.append(("If present, text/plain content must be first.", "content"))
    headers = body.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            problems.append(("Headers must be a JSON object of string values.", "headers"))
        elif any(name.lower() in RESERVED_HEADERS for name in headers):
            problems.append(("You may not set a reserved header.", "headers"))
    custom_args = body.get("custom_args")
    if custom_args is not None and (
        not isinstance(custom_args, dict) or not all(isinstance(v, str) for v in custom_args.values())
    ):
        problems.append(("Custom args must be a JSON object of string values.", "custom_args"))
    reply_to = body.get("reply_to")
    if reply_to is not None and not _is_email(reply_to):
        problems.append(("The reply_to email does not contain a valid address.", "reply_to.email"))
    return problems


def parse_activity_query(query: str) -> dict[str, str] | None:
    """The clauses of an Email Activity query joined by AND (`field="value"`, `unique_args['k']="v"`);
    None when it uses syntax this double does not read (the real API answers such queries 400 too)."""
    wanted: dict[str, str] = {}
    if not query:
        return wanted
    for clause in re.split(r"\s+AND\s+", query.strip()):
        match = _CLAUSE.match(clause.strip())
        if match is None:
            return None
        if match["arg"]:
            wanted[f"unique_args.{match['arg']}"] = match["value"]
        elif match["field"] in _FIELDS:
            wanted[match["field"]] = match["value"]
        else:
            return None
    return wanted


def _matches(message: SentMessage, wanted: Mapping[str, str]) -> bool:
    for name, value in wanted.items():
        if name.startswith("unique_args."):
            actual = message.unique_args.get(name.removeprefix("unique_args."))
        else:
            actual = {
                "msg_id": message.msg_id,
                "from_email": message.from_email,
                "subject": message.subject,
                "to_email": message.to_email,
                "status": message.status,
            }[name]
        if actual != value:
            return False
    return True


def _is_email(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    email = value.get("email")
    return isinstance(email, str) and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) is not None


def _errors(*problems: tuple[str, str | None]) -> bytes:
    return json.dumps({"errors": [{"message": m, "field": f, "help": None} for m, f in problems]}).encode()


def _reply(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> None:
    try:
        handler.send_response(status)
        if body:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        if body:
            handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up waiting


# What SendGrid posts to us


class EventWebhookSigner:
    """SendGrid's Signed Event Webhook (also used by Inbound Parse security policies): an ECDSA P-256
    signature (SHA-256, DER, base64) of the timestamp followed by the exact body bytes."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo."""
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: int | None = None) -> str:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return base64.b64encode(self._key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The two signature headers, lower-cased as `InboundRequest.headers` holds them."""
        stamp = int(time.time()) if timestamp is None else timestamp
        return {
            "x-twilio-email-event-webhook-signature": self.sign(body, stamp),
            "x-twilio-email-event-webhook-timestamp": str(stamp),
        }


def event(
    kind: str,
    *,
    email: str = "ada@example.test",
    message_id: str | None = None,
    key: str | None = None,
    timestamp: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One Event Webhook event as SendGrid posts it (custom args appear as top-level fields)."""
    item: dict[str, Any] = {
        "email": email,
        "timestamp": int(time.time()) if timestamp is None else timestamp,
        "event": kind,
        "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("="),
        "smtp-id": f"<{secrets.token_hex(8)}@example.test>",
    }
    if message_id is not None:
        item["sg_message_id"] = f"{message_id}.filterdrecv-5645d9c87f-7xq2l-1-66A1B2C3-4.0"
    if key is not None:
        item["ghl_key"] = key
    item.update(fields)
    return item


BOUNDARY = "xYzZY"  # the boundary SendGrid's Parse posts use


def inbound_parse_fields(
    *,
    from_: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    date: str = "Mon, 3 Jun 2024 04:43:02 +0000",
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> tuple[dict[str, str], list[tuple[str, str, str, bytes]]]:
    """The fields and files of a default-mode Parse post (not "send raw") for one received email."""
    header_lines = [
        "MIME-Version: 1.0",
        f"From: {from_}",
        f"Date: {date}",
        f"Subject: {subject}",
        f"To: {to}",
        'Content-Type: multipart/alternative; boundary="000000000000abc"',
    ]
    if message_id:
        header_lines.append(f"Message-ID: {message_id}")
    if in_reply_to:
        header_lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        header_lines.append("References: " + "\n ".join(references))  # folded, as mail clients do
    info = {
        f"attachment{index}": {"filename": name, "name": name, "type": content_type}
        for index, (name, content_type, _) in enumerate(attachments, start=1)
    }
    charsets = {"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8", "text": "utf-8"}
    fields = {
        "headers": "\n".join(header_lines) + "\n",
        "dkim": "{@example.test : pass}",
        "content-ids": "{}",
        "to": to,
        "from": from_,
        "text": text,
        "sender_ip": "209.85.128.41",
        "envelope": json.dumps({"to": [to], "from": from_}),
        "attachments": str(len(attachments)),
        "subject": subject,
        "charsets": "",
        "SPF": "pass",
    }
    if html is not None:
        fields["html"] = html
        charsets["html"] = "utf-8"
    if attachments:
        fields["attachment-info"] = json.dumps(info)
    fields["charsets"] = json.dumps(charsets)
    files = [
        (f"attachment{index}", name, content_type, content)
        for index, (name, content_type, content) in enumerate(attachments, start=1)
    ]
    return fields, files


def multipart_form(
    fields: Mapping[str, str],
    files: Sequence[tuple[str, str, str, bytes]] = (),
    *,
    charsets: Mapping[str, str] | None = None,
    boundary: str = BOUNDARY,
) -> tuple[bytes, str]:
    """A multipart/form-data body as SendGrid's Parse posts it, and its Content-Type. A field is encoded
    in the charset `charsets` names for it (UTF-8 otherwise); files are (field, filename, type, bytes)."""
    chunks: list[bytes] = []
    for name, value in fields.items():
        encoding = (charsets or {}).get(name, "utf-8")
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode(encoding)
            + b"\r\n"
        )
    for name, filename, content_type, content in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        chunks.append(head.encode() + content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
