"""Fakes of the webhooks ports (the repository is the shipped in-memory one): a resolver answering from a
table, a sender that records requests and answers from a script, and a
secret box that only pretends to encrypt. Imports only the core and the standard library."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ghl_core.webhooks.addresses import Target
from ghl_core.webhooks.ports import SendResult


class TableResolver:
    """Names resolve to what the table says; a name not in it does not resolve."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table if table is not None else {}
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise LookupError(host)
        return list(self.table[host])


@dataclass
class Sent:
    target: Target
    headers: dict[str, str]
    body: bytes
    method: str = "POST"


class ScriptedSender:
    """Answers each send with the next scripted result (a status code, or an error text for a network
    error); once the script is used up, 200."""

    def __init__(self, *script: int | str) -> None:
        self.script = list(script)
        self.sent: list[Sent] = []

    async def send(
        self, target: Target, headers: Mapping[str, str], body: bytes, *, method: str = "POST"
    ) -> SendResult:
        self.sent.append(Sent(target, dict(headers), body, method))
        answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, str):
            return SendResult(duration_ms=5, error=answer)
        return SendResult(duration_ms=5, status_code=answer, response_excerpt=f"answer {answer}")


class FakeSecretBox:
    """Not encryption: a reversible wrap that still refuses the wrong associated data."""

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        tag = hashlib.sha256(associated_data + plaintext).digest()[:8]
        return tag + base64.b64encode(plaintext)

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytes:
        plaintext = base64.b64decode(ciphertext[8:])
        if not hmac.compare_digest(ciphertext[:8], hashlib.sha256(associated_data + plaintext).digest()[:8]):
            raise ValueError("wrong associated data")
        return plaintext


class HmacSigner:
    """The Standard Webhooks signature, computed here so the core tests need no third-party library."""

    def sign(self, secret: str, msg_id: str, timestamp: datetime, body: str) -> str:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{msg_id}.{int(timestamp.timestamp())}.{body}".encode()
        return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
