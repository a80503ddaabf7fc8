"""Email through any SMTP server (aiosmtplib): one connection per send, STARTTLS or implicit TLS as the
configuration says, AUTH when a username is set.

SMTP replies decide retries: 5xx is the server's final word (a rejected address or sender, bad
credentials), 4xx and lost connections are temporary. An SMTP server keeps no record a client can ask
for, so `find_sent` cannot tell whether a lost send went out."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime

import aiosmtplib
from aiosmtplib import SMTPException, SMTPRecipientsRefused, SMTPResponseException

from ghl_core.conversations.gateways import EmailMessage, MessageStatus, SendFailed, SendResult
from ghl_core.conversations.providers import SmtpConfig, SmtpSecurity

PROVIDER = "smtp"

# Headers the message's own fields set; a caller's copy of them in `headers` is ignored.
_OWN_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "subject", "reply-to", "date", "mime-version", "content-type"}
    | {"content-transfer-encoding", "message-id"}
)


class SmtpEmailGateway:
    provider = PROVIDER

    def __init__(self, config: SmtpConfig, *, tls_context: ssl.SSLContext | None = None) -> None:
        self._config = config
        self._tls_context = tls_context

    async def send_email(self, message: EmailMessage) -> SendResult:
        sent_at = datetime.now(UTC)
        mime, message_id = self.build(message, sent_at)
        config = self._config
        try:
            await aiosmtplib.send(
                mime,
                sender=message.from_email,
                recipients=[message.to],
                hostname=config.host,
                port=config.port,
                username=config.username or None,
                password=(config.password or "") if config.username else None,
                use_tls=config.security is SmtpSecurity.TLS,
                start_tls=config.security is SmtpSecurity.STARTTLS,
                timeout=config.timeout_seconds,
                tls_context=self._tls_context,
            )
        except SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            code = refused.code if refused is not None else 550
            detail = refused.message if refused is not None else str(exc)
            raise _reply_failure(code, f"the SMTP server refused the recipient: {detail}") from None
        except SMTPResponseException as exc:
            raise _reply_failure(exc.code, f"the SMTP server refused the email: {exc.message}") from None
        except OSError as exc:  # refused or lost connections, timeouts (aiosmtplib's errors included)
            raise SendFailed(
                f"the SMTP server could not be reached: {exc}", permanent=False, code="network"
            ) from None
        except SMTPException as exc:  # the server lacks what the configuration needs (STARTTLS, AUTH)
            raise SendFailed(
                f"the SMTP server cannot take this email: {exc}", permanent=True, code="unsupported"
            ) from None
        return SendResult(
            provider=PROVIDER, provider_message_id=message_id, status=MessageStatus.SENT, sent_at=sent_at
        )

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
