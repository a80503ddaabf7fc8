"""Email through any SMTP server (aiosmtplib): one connection per send, STARTTLS or implicit TLS as the
configuration says, AUTH when a username is set.

A tenant names the server, so before each connection its host goes through the address guard (the
webhooks' own: the name may resolve somewhere else than when it was saved) and the connection is made
to the address that was checked; the name still travels as the TLS server name, so the certificate is
verified for it. The platform's own configuration comes with no guard and is connected to as written.

SMTP replies decide retries: 5xx is the server's final word (a rejected address or sender, bad
credentials), 4xx and lost connections are temporary. Everything before the server's greeting (no
route, a refused or silent port, something that does not speak SMTP) and every lost connection is
stored as one generic error, "smtp connection failed", with the detail in the log only: a message's
error must not tell an open port from a closed one. An SMTP server keeps no record a client can ask
for, so `find_sent` cannot tell whether a lost send went out."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime

import aiosmtplib
import structlog
from aiosmtplib import SMTPException, SMTPRecipientsRefused, SMTPResponseException

from ghl_core.conversations.gateways import EmailMessage, MessageStatus, SendFailed, SendResult
from ghl_core.webhooks.addresses import UnsafeUrl, UrlGuard

from .configs import SmtpConfig, SmtpSecurity

PROVIDER = "smtp"
CONNECTION_FAILED = "smtp connection failed"

log = structlog.get_logger("ghl.messaging")

# Headers the message's own fields set; a caller's copy of them in `headers` is ignored.
_OWN_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "subject", "reply-to", "date", "mime-version", "content-type"}
    | {"content-transfer-encoding", "message-id"}
)


class SmtpEmailGateway:
    """`guard`: checks the server's addresses before each connection; None for the platform's own
    server (the operator's, from the environment), connected to by name."""

    provider = PROVIDER

    def __init__(
        self, config: SmtpConfig, *, guard: UrlGuard | None, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self._config = config
        self._guard = guard
        self._tls_context = tls_context

    async def send_email(self, message: EmailMessage) -> SendResult:
        sent_at = datetime.now(UTC)
        mime, message_id = self.build(message, sent_at)
        sock = await self._socket()
        client = self._client(sock)
        try:
            await self._greeted(client)
            await self._deliver(client, mime, message)
        finally:
            # The connection's transport owns the socket from `connect` on and closes it (closing it
            # here too would free its number while the event loop still counts it as the transport's).
            client.close()
        return SendResult(
            provider=PROVIDER, provider_message_id=message_id, status=MessageStatus.SENT, sent_at=sent_at
        )

    def _client(self, sock: socket.socket | None) -> aiosmtplib.SMTP:
        config = self._config
        return aiosmtplib.SMTP(
            hostname=config.host,  # with a socket, only the TLS server name
            port=None if sock is not None else config.port,
            sock=sock,
            use_tls=config.security is SmtpSecurity.TLS,
            start_tls=False,  # below, once greeted, so a missing STARTTLS is told apart
            timeout=config.timeout_seconds,
            tls_context=self._tls_context,
        )

    async def _socket(self) -> socket.socket | None:
        """A connection to the first checked address that answers (None without a guard: the client
        then connects by name)."""
        if self._guard is None:
            return None
        config = self._config
        try:
            addresses = await self._guard.check_host(config.host, config.port, what="email is")
        except UnsafeUrl as exc:
            log.warning("smtp_host_refused", host=config.host, port=config.port, reason=exc.detail)
            if exc.retryable:  # the name does not resolve now; it may later
                raise self._connection_failed(exc) from None
            raise SendFailed(
                "the SMTP server's address is not allowed: email is only sent to public addresses",
                permanent=True,
                code="address_refused",
            ) from None
        loop = asyncio.get_running_loop()
        error: BaseException | None = None
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                async with asyncio.timeout(config.timeout_seconds):
                    await loop.sock_connect(sock, (address, config.port))
            except (OSError, TimeoutError) as exc:
                sock.close()
                error = exc
                continue  # the next address of the name, if any
            return sock
        raise self._connection_failed(error, addresses)

    async def _greeted(self, client: aiosmtplib.SMTP) -> None:
        """Connects (by name without a guard), TLS first for implicit TLS, and reads the greeting."""
        try:
            await client.connect()
        except (OSError, SMTPException) as exc:  # aiosmtplib's timeouts and disconnects included
            raise self._connection_failed(exc) from None

    async def _deliver(self, client: aiosmtplib.SMTP, mime: MimeMessage, message: EmailMessage) -> None:
        config = self._config
        try:
            if config.security is SmtpSecurity.STARTTLS:
                await client.starttls()
            if config.username:
                await client.login(config.username, config.password or "")
            await client.send_message(mime, sender=message.from_email, recipients=[message.to])
        except SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            code = refused.code if refused is not None else 550
            detail = refused.message if refused is not None else str(exc)
            raise _reply_failure(code, f"the SMTP server refused the recipient: {detail}") from None
        except SMTPResponseException as exc:
            raise _reply_failure(exc.code, f"the SMTP server refused the email: {exc.message}") from None
        except OSError as exc:  # lost connections, timeouts, a certificate that does not verify
            raise self._connection_failed(exc) from None
        except SMTPException as exc:  # the server lacks what the configuration needs (STARTTLS, AUTH)
            raise SendFailed(
                f"the SMTP server cannot take this email: {exc}", permanent=True, code="unsupported"
            ) from None
        with contextlib.suppress(OSError, SMTPException):
            await client.quit()  # the server took the message; a goodbye that goes astray changes nothing

    def _connection_failed(self, exc: BaseException | None, addresses: tuple[str, ...] = ()) -> SendFailed:
        log.warning(
            "smtp_connection_failed",
            host=self._config.host,
            port=self._config.port,
            addresses=list(addresses) or None,
            error=f"{type(exc).__name__}: {exc}" if exc is not None else None,
        )
        return SendFailed(CONNECTION_FAILED, permanent=False, code="network")

    async def find_sent(self, message: EmailMessage, since: datetime) -> SendResult | None:
        raise NotImplementedError("an SMTP server cannot be asked whether it took a message")

    def build(self, message: EmailMessage, sent_at: datetime) -> tuple[MimeMessage, str]:
        """The MIME message (text, and html as its alternative) and its Message-ID."""
        mime = MimeMessage(policy=policy.SMTP)
        from_name = message.from_name
        if from_name is None and message.from_email == self._config.from_email:
            from_name = self._config.from_name
        message_id = next(
            (value for name, value in message.headers.items() if name.lower() == "message-id"), None
        ) or _thread_message_id(message.key, message.from_email)
        try:
            mime["From"] = Address(display_name=from_name or "", addr_spec=message.from_email)
            mime["To"] = Address(display_name=message.to_name or "", addr_spec=message.to)
            if message.reply_to:
                mime["Reply-To"] = Address(addr_spec=message.reply_to)
        except (HeaderParseError, ValueError, IndexError) as exc:
            raise SendFailed(
                f"an email address is not valid: {exc}", permanent=True, code="address"
            ) from None
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(sent_at)
        _check_header("Message-ID", message_id)
        mime["Message-ID"] = message_id
        for name, value in message.headers.items():
            if name.lower() in _OWN_HEADERS:
                continue
            _check_header(name, value)
            mime[name] = value
        mime.set_content(message.text)
        if message.html:
            mime.add_alternative(message.html, subtype="html")
        return mime, message_id


def _thread_message_id(key: str, from_email: str) -> str:
    """`<key@sender-domain>`: unique (our key is), and recognisable when a reply quotes it."""
    domain = from_email.rpartition("@")[2] or "localhost"
    return f"<{key}@{domain}>"


def _check_header(name: str, value: str) -> None:
    if not name or ":" in name or any(char in name + value for char in "\r\n"):
        raise SendFailed(f"the email header {name!r} is not a valid header", permanent=True, code="header")


def _reply_failure(code: int, detail: str) -> SendFailed:
    return SendFailed(detail, permanent=code >= 500, code=str(code))
