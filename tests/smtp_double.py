"""A local SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives, parsed.

Optionally it offers STARTTLS (or implicit TLS) with a self-signed certificate made here, requires AUTH
(PLAIN/LOGIN, only over TLS, as aiosmtpd insists), and refuses the next recipients with a chosen reply
(550: permanent, 451: temporary)."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    tls: bool  # the session was encrypted when the message came
    login: str | None  # the AUTH user, when the client logged in


class SmtpDouble:
    def __init__(
        self,
        *,
        tls: Literal["starttls", "implicit"] | None = None,
        auth: tuple[str, str] | None = None,
        cert_names: tuple[str, ...] | None = None,
    ) -> None:
        """`cert_names`: the only names the certificate is valid for (default: localhost and 127.0.0.1)."""
        self.messages: list[ReceivedMail] = []
        self._cert_names = cert_names
        self._refusals: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._auth = auth
        self._certs = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.cert_pem = b""
        kwargs: dict[str, Any] = {}
        if tls is not None:
            self.cert_pem, server_context = self._server_context()
            if tls == "starttls":
                kwargs.update(tls_context=server_context, require_starttls=True)
            else:
                kwargs.update(ssl_context=server_context)
        if auth is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=True)
        self._controller = Controller(_Handler(self), hostname=HOST, port=self.port, **kwargs)

    @property
    def host(self) -> str:
        return HOST

    def client_tls_context(self) -> ssl.SSLContext:
        """A client context trusting this server's self-signed certificate (and nothing else)."""
        return ssl.create_default_context(cadata=self.cert_pem.decode())

    def refuse_next_rcpt(self, code: int = 550, message: str = "5.1.1 No such user here") -> None:
        with self._lock:
            self._refusals.append((code, message))

    def start(self) -> SmtpDouble:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
        self._certs.cleanup()

    def __enter__(self) -> SmtpDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_refusal(self) -> tuple[int, str] | None:
        with self._lock:
            return self._refusals.pop(0) if self._refusals else None

    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.messages.append(mail)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword) or self._auth is None:
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        # Not "handled": aiosmtpd then answers the failure itself (535), as a real server does.
        return AuthResult(success=(login, password) == self._auth, handled=False, auth_data=login)

    def _server_context(self) -> tuple[bytes, ssl.SSLContext]:
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = (
            [x509.DNSName(n) for n in self._cert_names]
            if self._cert_names
            else [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
        )
        common = self._cert_names[0] if self._cert_names else "localhost"
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        folder = Path(self._certs.name)
        (folder / "cert.pem").write_bytes(cert_pem)
        (folder / "key.pem").write_bytes(key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        return cert_pem, context


class _Handler:
    def __init__(self, double: SmtpDouble) -> None:
        self._double = double

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self._double._next_refusal()
        if refusal is not None:
            code, message = refusal
            return f"{code} {message}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        login = session.auth_data if isinstance(session.auth_data, str) else None
        self._double._record(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,
                raw=raw,
                tls=server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
                login=login,
            )
        )
        return "250 Message accepted for delivery"


def _encrypted(server: SMTP) -> bool:
    """Over STARTTLS or implicit TLS alike (aiosmtpd's `session.ssl` only tells of STARTTLS)."""
    return server.transport is not None and server.transport.get_extra_info("ssl_object") is not None


def free_port() -> int:
    """A port nothing listens on right now (for a server to take, or for a refused connection)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
