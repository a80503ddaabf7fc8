"""Clerk session tokens: RS256 JWTs checked against the instance's JWKS (Clerk's manual verification)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import jwt

from ghl_core.identity.models import ExternalIdentity
from ghl_core.shared.errors import Unauthenticated

_ALGORITHM = "RS256"
_PK_PREFIXES = ("pk_test_", "pk_live_")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")
_INVALID = "clerk session token is invalid"


def clerk_frontend_api_from_publishable_key(pk: str) -> str:
    """The Frontend API host a publishable key encodes (`pk_test_`/`pk_live_` + base64 of `host$`)."""
    prefix = next((p for p in _PK_PREFIXES if pk.startswith(p)), None)
    if prefix is None:
        raise ValueError("a Clerk publishable key starts with pk_test_ or pk_live_")
    encoded = pk[len(prefix) :]
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("the Clerk publishable key is not valid base64") from exc
    host = decoded.removesuffix("$")
    if host == decoded or not _HOST.match(host):
        raise ValueError("the Clerk publishable key does not encode a Frontend API host")
    return host


class ClerkJwtVerifier:
    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        *,
        authorized_parties: Sequence[str] = (),
        leeway_seconds: int = 5,
        location_claim: str = "location_id",
        http_client: httpx.AsyncClient | None = None,
        jwks_max_age_seconds: float = 3600.0,
        jwks_refetch_cooldown_seconds: float = 30.0,
    ) -> None:
        self._jwks_url = jwks_url
        self._issuer = issuer
        self._authorized_parties = frozenset(authorized_parties)
        self._leeway = leeway_seconds
        self._location_claim = location_claim
        self._http = http_client
        self._max_age = jwks_max_age_seconds
        # Bounds how often tokens with made-up kids can make us call Clerk.
        self._cooldown = jwks_refetch_cooldown_seconds
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    @classmethod
    def from_publishable_key(
        cls,
        pk: str,
        *,
        jwks_url: str | None = None,
        authorized_parties: Sequence[str] = (),
        **options: Any,
    ) -> ClerkJwtVerifier:
        origin = f"https://{clerk_frontend_api_from_publishable_key(pk)}"
        return cls(
            jwks_url or f"{origin}/.well-known/jwks.json",
            origin,
            authorized_parties=authorized_parties,
            **options,
        )

    def accepts(self, token: str) -> bool:
        try:
            payload = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return isinstance(payload, dict) and payload.get("iss") == self._issuer

    async def verify(self, token: str) -> ExternalIdentity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(_INVALID) from exc
        kid = header.get("kid")
        if header.get("alg") != _ALGORITHM or not isinstance(kid, str):
            raise Unauthenticated(_INVALID)
        key = await self._key_for(kid)
        payload = self._decode(token, key)
        azp = payload.get("azp")
        # Clerk's documented rule: a present azp must be one of the permitted origins.
        if self._authorized_parties and azp is not None and azp not in self._authorized_parties:
            raise Unauthenticated("clerk session token was issued for another origin")
        subject = payload["sub"]
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated(_INVALID)
        return ExternalIdentity(provider="clerk", subject=subject, location_id=self._location(payload))

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[_ALGORITHM],
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("clerk session token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthenticated("clerk session token is not valid yet") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(_INVALID) from exc
        return payload

    def _location(self, payload: dict[str, Any]) -> uuid.UUID | None:
        value = payload.get(self._location_claim)
        if value is None:
            return None
        try:
            if not isinstance(value, str):
                raise ValueError("not a string")
            return uuid.UUID(value)
        except ValueError as exc:
            raise Unauthenticated(f"clerk session token has an invalid {self._location_claim}") from exc

    async def _key_for(self, kid: str) -> jwt.PyJWK:
        seen = self._fetched_at
        if self._keys is None or time.monotonic() - seen >= self._max_age:
            await self._refresh(seen)
        elif kid not in self._keys and time.monotonic() - seen >= self._cooldown:
            # A kid we have not seen usually means Clerk rotated its keys.
            await self._refresh(seen)
        key = (self._keys or {}).get(kid)
        if key is None:
            raise Unauthenticated("clerk session token is signed by an unknown key")
        return key

    async def _refresh(self, seen: float) -> None:
        async with self._lock:
            if self._fetched_at != seen:
                return  # another request refreshed while this one waited
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                if self._keys is None:
                    raise Unauthenticated("clerk signing keys are unavailable") from exc
                # Keep the keys we have rather than reject every user during a Clerk outage.
                self._fetched_at = time.monotonic()
                return
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        if self._http is not None:
            response = await self._http.get(self._jwks_url)
        else:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.get(self._jwks_url)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("the JWKS document is not an object")
        jwks = jwt.PyJWKSet.from_dict(document)
        return {k.key_id: k for k in jwks.keys if k.key_id is not None}
