"""AES-256-GCM for provider credentials at rest."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"  # leads every ciphertext so the format or key scheme can change later
_NONCE_BYTES = 12
_TAG_BYTES = 16
_INFO = b"ghl secret box v1"


class AesGcmSecretBox:
    """Output: version byte, 12-byte random nonce, then ciphertext with its 16-byte tag."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("an AES-256-GCM key is 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_secret(cls, secret: str) -> AesGcmSecretBox:
        if not secret:
            raise ValueError("the secret box needs a non-empty secret")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
        return cls(hkdf.derive(secret.encode()))

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        # The version byte is authenticated too, so it cannot be swapped undetected.
        sealed = self._aead.encrypt(nonce, plaintext, _VERSION + associated_data)
        return _VERSION + nonce + sealed

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytes:
        if len(ciphertext) < 1 + _NONCE_BYTES + _TAG_BYTES or ciphertext[:1] != _VERSION:
            raise ValueError("not a secret box ciphertext")
        nonce = ciphertext[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, ciphertext[1 + _NONCE_BYTES :], _VERSION + associated_data)
        except InvalidTag as exc:
            raise ValueError("the ciphertext was tampered with or the key is wrong") from exc
