"""Opaque secrets we hand out once (API keys, refresh tokens) and the hashes we keep of them."""

from __future__ import annotations

import hashlib
import secrets

from ghl_core.identity.models import API_KEY_PREFIX

REFRESH_TOKEN_PREFIX = "ghr_"  # noqa: S105 - a prefix, not a secret
DISPLAY_PREFIX_LENGTH = 12


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    # These secrets carry 256 random bits, so a fast hash is enough: nothing to brute-force,
    # and authentication stays cheap on every request.
    return hashlib.sha256(secret.encode()).hexdigest()
