"""Our own short-lived access tokens: HS256 JWTs whose times come from the injected clock."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

import jwt

from ghl_core.identity.models import AccessClaims
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import Unauthenticated
from ghl_core.tenancy.models import AgencyRole, LocationRole, PlanTier

_ALGORITHM = "HS256"
_TYPE = "access"
_LEEWAY = timedelta(seconds=5)
# `ver`: the user's token version, compared with the current one on every request (identity/liveness.py).
_REQUIRED = ("sub", "agc", "role", "ver", "jti", "iat", "nbf", "exp", "iss", "aud", "typ")
_MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash output


class JwtAccessTokenCodec:
    def __init__(
        self,
        secret: str,
        *,
        clock: Clock,
        ttl: timedelta = timedelta(minutes=15),
        issuer: str = "ghl",
        audience: str = "ghl-api",
    ) -> None:
        if len(secret.encode()) < _MIN_SECRET_BYTES:
            raise ValueError(f"the access token secret must be at least {_MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._clock = clock
        self.ttl = ttl
        self._issuer = issuer
        self._audience = audience

    def issue(self, claims: AccessClaims) -> str:
        now = int(self._clock.now().timestamp())
        payload: dict[str, Any] = {
            "sub": str(claims.user_id),
            "agc": str(claims.agency_id),
            "role": claims.agency_role.value,
            "ver": claims.token_version,
            "jti": claims.token_id or secrets.token_urlsafe(16),
            "iat": now,
            "nbf": now,
            "exp": now + int(self.ttl.total_seconds()),
            "iss": self._issuer,
            "aud": self._audience,
            "typ": _TYPE,
        }
        if claims.location_id is not None:
            payload["loc"] = str(claims.location_id)
            if claims.location_role is not None:
                payload["lrole"] = claims.location_role.value
            if claims.tier is not None:
                payload["tier"] = claims.tier.value
        return jwt.encode(payload, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        try:
            # PyJWT reads the system clock, so time is checked below against ours instead.
            payload: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("access token is invalid") from exc
        missing = [name for name in _REQUIRED if name not in payload]
        if missing or payload["typ"] != _TYPE:
            raise Unauthenticated("access token is invalid")
        self._check_times(payload)
        try:
            return _claims_from(payload)
        except (ValueError, TypeError, AttributeError) as exc:
            raise Unauthenticated("access token is invalid") from exc

    def _check_times(self, payload: dict[str, Any]) -> None:
        exp, nbf = payload["exp"], payload["nbf"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, nbf)):
            raise Unauthenticated("access token is invalid")
        now = self._clock.now().timestamp()
        leeway = _LEEWAY.total_seconds()
        if now >= exp + leeway:
            raise Unauthenticated("access token expired")
        if now + leeway < nbf:
            raise Unauthenticated("access token is not valid yet")


def _claims_from(payload: dict[str, Any]) -> AccessClaims:
    location = payload.get("loc")
    location_id = uuid.UUID(location) if location is not None else None
    lrole, tier, version = payload.get("lrole"), payload.get("tier"), payload["ver"]
    if location_id is None and (lrole is not None or tier is not None):
        raise ValueError("location claims without a location")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError("the token version is not a count")
    return AccessClaims(
        user_id=uuid.UUID(payload["sub"]),
        agency_id=uuid.UUID(payload["agc"]),
        agency_role=AgencyRole(payload["role"]),
        location_id=location_id,
        location_role=LocationRole(lrole) if lrole is not None else None,
        tier=PlanTier(tier) if tier is not None else None,
        token_id=str(payload["jti"]),
        token_version=version,
    )


def is_our_token(token: str, issuer: str = "ghl") -> bool:
    """Routes a bearer token cheaply: whether its (unverified) issuer is ours."""
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return isinstance(payload, dict) and payload.get("iss") == issuer
