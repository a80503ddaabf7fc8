"""Identity adapters: password hashing, our access tokens, Clerk tokens and the secret box."""

from __future__ import annotations

from ghl_adapters.identity.clerk import ClerkJwtVerifier, clerk_frontend_api_from_publishable_key
from ghl_adapters.identity.passwords import Argon2PasswordHasher
from ghl_adapters.identity.secretbox import AesGcmSecretBox
from ghl_adapters.identity.tokens import JwtAccessTokenCodec, is_our_token

__all__ = [
    "AesGcmSecretBox",
    "Argon2PasswordHasher",
    "ClerkJwtVerifier",
    "JwtAccessTokenCodec",
    "clerk_frontend_api_from_publishable_key",
    "is_our_token",
]
