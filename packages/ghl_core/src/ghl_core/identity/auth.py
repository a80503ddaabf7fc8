"""Authentication: sign-up, log-in with throttling, rotating refresh tokens, location tokens, and
turning a bearer credential (API key, our JWT, or a Clerk JWT) into an Actor.

Our JWTs are checked against the current state of their user and location on every request
(`identity/liveness.py`): a removed user, a reduced role or grant, a deleted location or a downgraded
plan takes effect at the next request, not when the token expires."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ghl_core.identity.liveness import TokenLiveness
from ghl_core.identity.models import (
    API_KEY_PREFIX,
    AccessClaims,
    ApiKeyCredential,
    RefreshToken,
    TokenPair,
    UserCredential,
)
from ghl_core.identity.ports import (
    AccessTokenCodec,
    ExternalTokenVerifier,
    FailureCounter,
    IdentityUnitOfWork,
)
from ghl_core.identity.secrets import new_refresh_token, secret_hash
from ghl_core.shared.cache import ReadCache, api_key_cache_key
from ghl_core.shared.clock import Clock
from ghl_core.shared.errors import (
    FieldError,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)
from ghl_core.shared.ids import new_id
from ghl_core.shared.recording import record_change
from ghl_core.shared.scope import TenantScope
from ghl_core.shared.uow import UnitOfWorkFactory
from ghl_core.shared.validation import check_email, check_name, check_password, normalize_email
from ghl_core.tenancy.models import Agency, AgencyRole, LocationRole, PlanTier, User
from ghl_core.tenancy.permissions import Actor, ActorKind, Permission
from ghl_core.tenancy.ports import PasswordHasher

LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)
# Agency-level credentials have no location plan; they are limited like the pro tier.
AGENCY_TIER = PlanTier.PRO
# How often a key in use has its `last_used_at` written (the database function applies the same bound).
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class _CachedKey:
    """A live API key as the cache holds it; `checked_at` is when the database last answered for it."""

    credential: ApiKeyCredential
    checked_at: datetime


def _key_to_json(entry: _CachedKey) -> dict[str, Any]:
    c = entry.credential
    return {
        "id": str(c.id),
        "location_id": str(c.location_id),
        "agency_id": str(c.agency_id),
        "scopes": sorted(s.value for s in c.scopes),
        "tier": c.tier.value,
        "checked_at": entry.checked_at.isoformat(),
    }


def _key_from_json(data: Any) -> _CachedKey:
    credential = ApiKeyCredential(
        id=uuid.UUID(data["id"]),
        location_id=uuid.UUID(data["location_id"]),
        agency_id=uuid.UUID(data["agency_id"]),
        scopes=frozenset(Permission(s) for s in data["scopes"]),
        tier=PlanTier(data["tier"]),
        revoked=False,
    )
    return _CachedKey(credential, datetime.fromisoformat(data["checked_at"]))


@dataclass(frozen=True, slots=True)
class SignUpResult:
    agency: Agency
    user: User
    tokens: TokenPair


class AuthService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[IdentityUnitOfWork],
        clock: Clock,
        hasher: PasswordHasher,
        tokens: AccessTokenCodec,
        failures: FailureCounter,
        external: Sequence[ExternalTokenVerifier] = (),
        refresh_ttl: timedelta = REFRESH_TTL,
        cache: ReadCache | None = None,
    ) -> None:
        self._uow = uow
        self._cache = cache or ReadCache()
        self._clock = clock
        self._hasher = hasher
        self._tokens = tokens
        self._failures = failures
        self._external = tuple(external)
        self._refresh_ttl = refresh_ttl
        self._liveness = TokenLiveness(uow, self._cache)
        # Verifying against a real hash when the e-mail is unknown keeps both paths equally slow.
        self._dummy_hash = hasher.hash(uuid.uuid4().hex)

    # -- sign-up and log-in ------------------------------------------------------------------------
    async def sign_up(self, agency_name: str, email: str, password: str, name: str) -> SignUpResult:
        errors: list[FieldError] = []
        agency_clean = check_name(agency_name, "/agency_name", errors)
        email_clean = check_email(email, "/email", errors)
        name_clean = check_name(name, "/name", errors)
        check_password(password, "/password", errors)
        if errors:
            raise ValidationFailed(errors)
        now = self._clock.now()
        agency = Agency(id=new_id(), name=agency_clean, created_at=now, updated_at=now)
        user = User(
            id=new_id(),
            agency_id=agency.id,
            email=email_clean,
            name=name_clean,
            role=AgencyRole.OWNER,
            created_at=now,
            updated_at=now,
            password_hash=self._hasher.hash(password),
        )
        user.created_by = user.id
        actor = Actor(ActorKind.USER, user.id, agency.id, agency_role=AgencyRole.OWNER)
        async with self._uow(TenantScope.agency(agency.id)) as uow:
            await uow.agencies.add(agency)
            await uow.users.add(user)
            for entity_type, entity_id, after, event in (
                ("agency", agency.id, agency.snapshot(), "AgencyCreate"),
                ("user", user.id, user.snapshot(), "UserCreate"),
            ):
                await record_change(
                    uow,
                    self._clock,
                    actor,
                    action="create",
                    entity_type=entity_type,
                    entity_id=entity_id,
                    agency_id=agency.id,
                    location_id=None,
                    before=None,
                    after=after,
                    event_type=event,
                )
            tokens = await self._issue_pair(uow, user, new_id())
            await uow.commit()
        return SignUpResult(agency=agency, user=user, tokens=tokens)

    async def log_in(self, email: str, password: str) -> TokenPair:
        try:
            email_clean = normalize_email(email)
        except ValueError:
            raise Unauthenticated("wrong e-mail address or password") from None
        throttle_key = f"login:{email_clean}"
        count, retry_after = await self._failures.failures(throttle_key)
        if count >= LOGIN_MAX_FAILURES:
            raise TooManyRequests("too many failed log-ins; try again later", retry_after=retry_after)
        async with self._uow(TenantScope.anonymous()) as uow:
            cred = await uow.credentials.user_by_email(email_clean)
        if cred is None or cred.disabled or cred.password_hash is None:
            self._hasher.verify(self._dummy_hash, password)
            await self._failures.record_failure(throttle_key, LOGIN_WINDOW)
            raise Unauthenticated("wrong e-mail address or password")
        if not self._hasher.verify(cred.password_hash, password):
            await self._failures.record_failure(throttle_key, LOGIN_WINDOW)
            raise Unauthenticated("wrong e-mail address or password")
        await self._failures.clear(throttle_key)
        async with self._uow(TenantScope.agency(cred.agency_id)) as uow:
            if self._hasher.needs_rehash(cred.password_hash):
                user = await uow.users.get(cred.id)
                if user is not None:
                    user.password_hash = self._hasher.hash(password)
                    await uow.users.update(user)
            tokens = await self._issue_pair(uow, cred, new_id())
            await uow.commit()
        return tokens

    async def _issue_pair(
        self, uow: IdentityUnitOfWork, user: User | UserCredential, family_id: uuid.UUID
    ) -> TokenPair:
        """Role and token version come from one read of the user, so a token never pairs a new version
        with an old role."""
        now = self._clock.now()
        secret = new_refresh_token()
        await uow.refresh_tokens.add(
            RefreshToken(
                id=new_id(),
                user_id=user.id,
                agency_id=user.agency_id,
                family_id=family_id,
                token_hash=secret_hash(secret),
                expires_at=now + self._refresh_ttl,
                created_at=now,
            )
        )
        access = self._tokens.issue(
            AccessClaims(
                user_id=user.id,
                agency_id=user.agency_id,
                agency_role=user.role,
                token_version=user.token_version,
            )
        )
        return TokenPair(
            access_token=access, refresh_token=secret, expires_in=int(self._tokens.ttl.total_seconds())
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotates the refresh token. Presenting an already-rotated token revokes its whole family:
        someone else holds a copy."""
        token_hash = secret_hash(refresh_token)
        async with self._uow(TenantScope.anonymous()) as uow:
            token = await uow.credentials.refresh_token(token_hash)
            user = await uow.credentials.user_by_id(token.user_id) if token else None
        if token is None or user is None or user.disabled:
            raise Unauthenticated("refresh token is invalid")
        now = self._clock.now()
        async with self._uow(TenantScope.agency(token.agency_id)) as uow:
            if token.revoked_at is not None or token.expires_at <= now:
                raise Unauthenticated("refresh token has expired or was revoked; log in again")
            if not await uow.refresh_tokens.mark_rotated(token.id, now):
                await uow.refresh_tokens.revoke_family(token.family_id, now)
                await uow.commit()
                raise Unauthenticated(
                    "refresh token was already used; every session of this log-in is revoked"
                )
            pair = await self._issue_pair(uow, user, token.family_id)
            await uow.commit()
        return pair

    async def log_out(self, refresh_token: str) -> None:
        async with self._uow(TenantScope.anonymous()) as uow:
            token = await uow.credentials.refresh_token(secret_hash(refresh_token))
        if token is None:
            return
        async with self._uow(TenantScope.agency(token.agency_id)) as uow:
            await uow.refresh_tokens.revoke_family(token.family_id, self._clock.now())
            await uow.commit()

    async def location_token(self, actor: Actor, location_id: uuid.UUID) -> tuple[str, int]:
        """A location-scoped access token for an agency-level user: the location becomes a claim."""
        if actor.kind is not ActorKind.USER or actor.location_id is not None or actor.id is None:
            # The caller is authenticated, just with the wrong kind of credential: 403, not 401.
            raise PermissionDenied("a location token is obtained with an agency-level user token")
        async with self._uow(TenantScope.anonymous()) as uow:
            # The user (role and token version) is read before the grant: a grant taken away between
            # the two reads bumps the version after this read, so the token is born revoked rather than
            # carrying the old grant.
            user = await uow.credentials.user_by_id(actor.id)
            access = await uow.credentials.location_access(actor.id, location_id)
        not_found = NotFound(f"location {location_id} not found")
        if user is None or user.disabled or user.agency_id != actor.agency_id:
            raise not_found
        role = self._location_role(user.role, access)
        if access is None or role is None:
            raise not_found
        claims = AccessClaims(
            user_id=user.id,
            agency_id=user.agency_id,
            agency_role=user.role,
            location_id=location_id,
            location_role=role,
            tier=PlanTier(access[1]),
            token_version=user.token_version,
        )
        return self._tokens.issue(claims), int(self._tokens.ttl.total_seconds())

    @staticmethod
    def _location_role(agency_role: AgencyRole, access: tuple[str | None, str] | None) -> LocationRole | None:
        if access is None:
            return None
        if agency_role in (AgencyRole.OWNER, AgencyRole.ADMIN):
            return LocationRole.ADMIN
        return LocationRole(access[0]) if access[0] else None

    # -- bearer credentials ------------------------------------------------------------------------
    async def authenticate(self, bearer: str) -> Actor:
        if not bearer:
            raise Unauthenticated("send 'Authorization: Bearer <API key or access token>'")
        if bearer.startswith(API_KEY_PREFIX):
            return await self._authenticate_api_key(bearer)
        for verifier in self._external:
            if verifier.accepts(bearer):
                return await self._authenticate_external(verifier, bearer)
        claims = self._tokens.verify(bearer)
        tier = await self._liveness.check(claims)
        return Actor(
            ActorKind.USER,
            claims.user_id,
            claims.agency_id,
            location_id=claims.location_id,
            agency_role=claims.agency_role,
            location_role=claims.location_role,
            tier=tier or AGENCY_TIER,
            credential_id=f"user:{claims.user_id}:{claims.location_id or '-'}",
        )

    async def _authenticate_api_key(self, secret: str) -> Actor:
        """A live key is cached by its hash; revoking it, or changing or deleting its location,
        invalidates the entry everywhere. A cached entry older than API_KEY_TOUCH_INTERVAL is looked up
        again, which keeps `last_used_at` as true as it was without the cache."""
        key_hash = secret_hash(secret)

        async def load() -> _CachedKey | None:
            async with self._uow(TenantScope.anonymous()) as uow:
                found = await uow.credentials.api_key(key_hash)
                await uow.commit()  # the look-up records the key's last use
            # Revoked and unknown keys are not cached: a revocation is rare, a guess is not worth keeping.
            return _CachedKey(found, self._clock.now()) if found is not None and not found.revoked else None

        def fresh(entry: _CachedKey) -> bool:
            return self._clock.now() - entry.checked_at < API_KEY_TOUCH_INTERVAL

        entry = await self._cache.get_or_load(
            api_key_cache_key(key_hash), load, _key_to_json, _key_from_json, fresh=fresh
        )
        if entry is None:
            raise Unauthenticated("API key is invalid or revoked")
        cred = entry.credential
        return Actor(
            ActorKind.API_KEY,
            cred.id,
            cred.agency_id,
            location_id=cred.location_id,
            scopes=cred.scopes,
            tier=cred.tier,
            credential_id=f"apikey:{cred.id}",
        )

    async def _authenticate_external(self, verifier: ExternalTokenVerifier, token: str) -> Actor:
        identity = await verifier.verify(token)
        async with self._uow(TenantScope.anonymous()) as uow:
            cred: UserCredential | None = await uow.credentials.user_by_clerk_id(identity.subject)
            access = (
                await uow.credentials.location_access(cred.id, identity.location_id)
                if cred is not None and identity.location_id is not None
                else None
            )
        if cred is None or cred.disabled:
            raise Unauthenticated(f"no user is linked to this {identity.provider} account")
        if identity.location_id is None:
            return Actor(
                ActorKind.USER,
                cred.id,
                cred.agency_id,
                agency_role=cred.role,
                tier=AGENCY_TIER,
                credential_id=f"{identity.provider}:{identity.subject}",
            )
        role = self._location_role(cred.role, access)
        if access is None or role is None:
            raise Unauthenticated("the token's location is not one this user may use")
        return Actor(
            ActorKind.USER,
            cred.id,
            cred.agency_id,
            location_id=identity.location_id,
            agency_role=cred.role,
            location_role=role,
            tier=PlanTier(access[1]),
            credential_id=f"{identity.provider}:{identity.subject}:{identity.location_id}",
        )


def describe(actor: Actor) -> dict[str, object]:
    """What `GET /auth/me` shows about the caller."""
    return {
        "kind": actor.kind.value,
        "id": str(actor.id) if actor.id else None,
        "agency_id": str(actor.agency_id) if actor.agency_id else None,
        "location_id": str(actor.location_id) if actor.location_id else None,
        "agency_role": actor.agency_role.value if actor.agency_role else None,
        "location_role": actor.location_role.value if actor.location_role else None,
        "tier": actor.tier.value,
        "permissions": sorted(p.value for p in actor.permissions()),
    }


__all__ = ["AuthService", "Permission", "SignUpResult", "describe"]
