"""Identity adapters against the real libraries, and Clerk against a local JWKS endpoint."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from clerk_double import ISSUER, ORIGIN, JwksServer, publishable_key, rsa_key
from clerk_double import clerk_token as make_clerk_token
from ghl_adapters.identity import (
    AesGcmSecretBox,
    Argon2PasswordHasher,
    ClerkJwtVerifier,
    JwtAccessTokenCodec,
    clerk_frontend_api_from_publishable_key,
    is_our_token,
)
from ghl_core.identity.models import AccessClaims
from ghl_core.identity.ports import AccessTokenCodec, ExternalTokenVerifier, SecretBox
from ghl_core.shared.clock import FixedClock
from ghl_core.shared.errors import Unauthenticated
from ghl_core.tenancy.models import AgencyRole, LocationRole, PlanTier
from ghl_core.tenancy.ports import PasswordHasher

SECRET = "a-test-secret-that-is-long-enough-for-hs256"

# --- passwords -------------------------------------------------------------------------------------


def cheap_hasher(time_cost: int = 1) -> PasswordHasher:
    return Argon2PasswordHasher(time_cost=time_cost, memory_cost=1024, parallelism=1)


def test_hash_verifies_the_right_password_only() -> None:
    hasher = cheap_hasher()
    hashed = hasher.hash("correct horse")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert hasher.verify(hashed, "correct horse")
    assert not hasher.verify(hashed, "correct horsf")
    assert hasher.hash("correct horse") != hashed  # salted


@pytest.mark.parametrize("bad_hash", ["", "not-a-hash", "$argon2id$v=19$m=1024,t=1,p=1$garbage", "$2b$12$x"])
def test_verify_is_false_for_a_malformed_hash(bad_hash: str) -> None:
    assert cheap_hasher().verify(bad_hash, "anything") is False


def test_needs_rehash_when_parameters_change() -> None:
    hashed = cheap_hasher().hash("pw")
    assert not cheap_hasher().needs_rehash(hashed)
    assert cheap_hasher(time_cost=2).needs_rehash(hashed)
    assert Argon2PasswordHasher().needs_rehash(hashed)  # library defaults are stronger
    assert cheap_hasher().needs_rehash("garbage")


# --- our access tokens -----------------------------------------------------------------------------


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def codec(clock: FixedClock) -> AccessTokenCodec:
    return JwtAccessTokenCodec(SECRET, clock=clock)


AGENCY = AccessClaims(user_id=uuid.uuid4(), agency_id=uuid.uuid4(), agency_role=AgencyRole.ADMIN)
LOCATION = AccessClaims(
    user_id=uuid.uuid4(),
    agency_id=uuid.uuid4(),
    agency_role=AgencyRole.USER,
    location_id=uuid.uuid4(),
    location_role=LocationRole.ADMIN,
    tier=PlanTier.PRO,
    token_version=3,
)


def raw_claims(codec: AccessTokenCodec, claims: AccessClaims) -> dict[str, Any]:
    token = codec.issue(claims)
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


def forge(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def test_agency_token_round_trip(codec: AccessTokenCodec, clock: FixedClock) -> None:
    token = codec.issue(AGENCY)
    back = codec.verify(token)
    assert back.token_id
    assert back == AccessClaims(
        user_id=AGENCY.user_id,
        agency_id=AGENCY.agency_id,
        agency_role=AgencyRole.ADMIN,
        token_id=back.token_id,
    )
    payload = raw_claims(codec, AGENCY)
    now = int(clock.now().timestamp())
    assert payload["iat"] == payload["nbf"] == now
    assert payload["exp"] == now + 15 * 60
    assert (payload["iss"], payload["aud"], payload["typ"]) == ("ghl", "ghl-api", "access")
    assert not {"loc", "lrole", "tier"} & payload.keys()
    assert codec.verify(codec.issue(AGENCY)).token_id != back.token_id


def test_location_token_round_trip(codec: AccessTokenCodec) -> None:
    back = codec.verify(codec.issue(LOCATION))
    assert back == dataclasses.replace(LOCATION, token_id=back.token_id)
    payload = raw_claims(codec, LOCATION)
    assert payload["loc"] == str(LOCATION.location_id)
    assert (payload["lrole"], payload["tier"], payload["role"]) == ("admin", "pro", "agency_user")
    assert payload["ver"] == 3


def test_token_expires_by_the_injected_clock(codec: AccessTokenCodec, clock: FixedClock) -> None:
    token = codec.issue(AGENCY)
    clock.advance(codec.ttl - timedelta(seconds=1))
    codec.verify(token)
    clock.advance(timedelta(seconds=30))
    with pytest.raises(Unauthenticated, match="access token expired"):
        codec.verify(token)


def test_token_from_the_future_is_rejected(clock: FixedClock) -> None:
    later = FixedClock(clock.now() + timedelta(minutes=5))
    token = JwtAccessTokenCodec(SECRET, clock=later).issue(AGENCY)
    with pytest.raises(Unauthenticated):
        JwtAccessTokenCodec(SECRET, clock=clock).verify(token)


def test_tampered_token_is_rejected(codec: AccessTokenCodec) -> None:
    header, _, signature = codec.issue(AGENCY).split(".")
    payload = raw_claims(codec, AGENCY) | {"role": AgencyRole.OWNER.value}
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="access token is invalid"):
        codec.verify(f"{header}.{body}.{signature}")


@pytest.mark.parametrize(
    ("secret", "issuer", "audience"),
    [
        ("another-secret-that-is-also-long-enough!!", "ghl", "ghl-api"),
        (SECRET, "ghl", "someone-else"),
        (SECRET, "not-ghl", "ghl-api"),
    ],
)
def test_token_from_another_codec_is_rejected(
    codec: AccessTokenCodec, clock: FixedClock, secret: str, issuer: str, audience: str
) -> None:
    foreign = JwtAccessTokenCodec(secret, clock=clock, issuer=issuer, audience=audience)
    with pytest.raises(Unauthenticated, match="access token is invalid"):
        codec.verify(foreign.issue(AGENCY))


@pytest.mark.parametrize(
    "claim", ["sub", "agc", "role", "ver", "jti", "exp", "nbf", "iat", "typ", "aud", "iss"]
)
def test_missing_claim_is_rejected(codec: AccessTokenCodec, claim: str) -> None:
    payload = raw_claims(codec, AGENCY)
    del payload[claim]
    with pytest.raises(Unauthenticated):
        codec.verify(forge(payload))


@pytest.mark.parametrize(
    "change",
    [
        {"typ": "refresh"},
        {"sub": "not-a-uuid"},
        {"role": "emperor"},
        {"lrole": "admin"},  # location claims without a location
        {"loc": str(uuid.uuid4()), "tier": "platinum"},
        {"exp": "tomorrow"},
        {"ver": "1"},
        {"ver": True},
        {"ver": -1},
    ],
)
def test_wrong_claim_values_are_rejected(codec: AccessTokenCodec, change: dict[str, Any]) -> None:
    with pytest.raises(Unauthenticated):
        codec.verify(forge(raw_claims(codec, AGENCY) | change))


def test_unsigned_token_is_rejected(codec: AccessTokenCodec) -> None:
    with pytest.raises(Unauthenticated):
        codec.verify(jwt.encode(raw_claims(codec, AGENCY), "", algorithm="none"))
    with pytest.raises(Unauthenticated):
        codec.verify("not.a.jwt")


def test_short_secret_is_refused(clock: FixedClock) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        JwtAccessTokenCodec("short", clock=clock)


def test_is_our_token_reads_the_issuer(codec: AccessTokenCodec) -> None:
    token = codec.issue(AGENCY)
    assert is_our_token(token)
    assert not is_our_token(token, issuer="https://clerk.example.com")
    assert not is_our_token(forge({"iss": "https://clerk.example.com"}))
    assert not is_our_token("ghl_0123456789")


# --- secret box ------------------------------------------------------------------------------------


def test_secret_box_round_trip() -> None:
    box: SecretBox = AesGcmSecretBox.from_secret("master secret")
    sealed = box.encrypt(b"sk_live_123", b"location:1")
    assert sealed[0] == 1
    assert len(sealed) == 1 + 12 + len(b"sk_live_123") + 16
    assert b"sk_live_123" not in sealed
    assert box.encrypt(b"sk_live_123", b"location:1") != sealed  # fresh nonce
    assert box.decrypt(sealed, b"location:1") == b"sk_live_123"
    assert AesGcmSecretBox.from_secret("master secret").decrypt(sealed, b"location:1") == b"sk_live_123"
    assert box.decrypt(box.encrypt(b"")) == b""


@pytest.mark.parametrize("index", [0, 1, 12, 13, -1])
def test_secret_box_detects_tampering(index: int) -> None:
    box = AesGcmSecretBox.from_secret("master secret")
    sealed = bytearray(box.encrypt(b"payload"))
    sealed[index] ^= 0x01
    with pytest.raises(ValueError):
        box.decrypt(bytes(sealed))


def test_secret_box_rejects_wrong_key_context_or_length() -> None:
    box = AesGcmSecretBox.from_secret("master secret")
    sealed = box.encrypt(b"payload", b"location:1")
    with pytest.raises(ValueError):
        AesGcmSecretBox.from_secret("other secret").decrypt(sealed, b"location:1")
    with pytest.raises(ValueError):
        box.decrypt(sealed, b"location:2")
    with pytest.raises(ValueError):
        box.decrypt(sealed)
    with pytest.raises(ValueError):
        box.decrypt(sealed[:20], b"location:1")
    with pytest.raises(ValueError):
        AesGcmSecretBox.from_secret("")


# --- Clerk -----------------------------------------------------------------------------------------

KEY_A, KEY_B, ROGUE = rsa_key(), rsa_key(), rsa_key()


def clerk_token(key: rsa.RSAPrivateKey = KEY_A, kid: str = "kid-a", **claims: Any) -> str:
    return make_clerk_token(key, kid, **claims)


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.serve(("kid-a", KEY_A))
        yield server


def verifier_for(jwks: JwksServer, **options: Any) -> ClerkJwtVerifier:
    return ClerkJwtVerifier(jwks.url, ISSUER, authorized_parties=[ORIGIN], **options)


async def test_clerk_valid_token(jwks: JwksServer) -> None:
    verifier: ExternalTokenVerifier = verifier_for(jwks)
    token = clerk_token()
    assert verifier.accepts(token)
    identity = await verifier.verify(token)
    assert (identity.provider, identity.subject, identity.location_id) == ("clerk", "user_2abc", None)


async def test_clerk_location_claim(jwks: JwksServer) -> None:
    location = uuid.uuid4()
    verifier = verifier_for(jwks)
    identity = await verifier.verify(clerk_token(location_id=str(location)))
    assert identity.location_id == location
    custom = verifier_for(jwks, location_claim="ghl_loc")
    assert (await custom.verify(clerk_token(ghl_loc=str(location)))).location_id == location


@pytest.mark.parametrize("bad", ["not-a-uuid", 42, ""])
async def test_clerk_location_claim_must_be_a_uuid(jwks: JwksServer, bad: object) -> None:
    with pytest.raises(Unauthenticated, match="location_id"):
        await verifier_for(jwks).verify(clerk_token(location_id=bad))


async def test_clerk_expired_token(jwks: JwksServer) -> None:
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier_for(jwks).verify(clerk_token(lifetime=-3600))


async def test_clerk_wrong_issuer(jwks: JwksServer) -> None:
    token = clerk_token(iss="https://evil.example.test")
    verifier = verifier_for(jwks)
    assert not verifier.accepts(token)
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)


async def test_clerk_authorized_party(jwks: JwksServer) -> None:
    verifier = verifier_for(jwks)
    with pytest.raises(Unauthenticated, match="another origin"):
        await verifier.verify(clerk_token(azp="https://evil.example.test"))
    # Clerk's rule checks azp only when the token carries one.
    assert (await verifier.verify(clerk_token(azp=None))).subject == "user_2abc"
    anyone = ClerkJwtVerifier(jwks.url, ISSUER)
    assert (await anyone.verify(clerk_token(azp="https://other.test"))).subject == "user_2abc"


@pytest.mark.parametrize("missing", ["sub", "exp", "iat"])
async def test_clerk_required_claims(jwks: JwksServer, missing: str) -> None:
    absent: dict[str, Any] = {missing: None}
    token = clerk_token(**absent)
    with pytest.raises(Unauthenticated):
        await verifier_for(jwks).verify(token)


async def test_clerk_signature_by_a_key_not_in_the_jwks(jwks: JwksServer) -> None:
    verifier = verifier_for(jwks, jwks_refetch_cooldown_seconds=0)
    with pytest.raises(Unauthenticated, match="invalid"):
        await verifier.verify(clerk_token(ROGUE, "kid-a"))
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(clerk_token(ROGUE, "kid-rogue"))


async def test_clerk_rejects_other_algorithms(jwks: JwksServer) -> None:
    hs = jwt.encode({"iss": ISSUER, "sub": "x"}, "secret-" * 6, "HS256", {"kid": "kid-a"})
    with pytest.raises(Unauthenticated):
        await verifier_for(jwks).verify(hs)
    with pytest.raises(Unauthenticated):
        await verifier_for(jwks).verify("garbage")


async def test_clerk_key_rotation_refetches_the_jwks(jwks: JwksServer) -> None:
    verifier = verifier_for(jwks, jwks_refetch_cooldown_seconds=0)
    await verifier.verify(clerk_token())
    await verifier.verify(clerk_token())
    assert jwks.hits == 1  # cached
    jwks.serve(("kid-b", KEY_B))
    assert (await verifier.verify(clerk_token(KEY_B, "kid-b"))).subject == "user_2abc"
    assert jwks.hits == 2
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(clerk_token())  # the retired key is no longer trusted


async def test_clerk_unknown_kids_refetch_at_most_once_per_cooldown(jwks: JwksServer) -> None:
    verifier = verifier_for(jwks, jwks_refetch_cooldown_seconds=3600)
    await verifier.verify(clerk_token())
    for n in range(3):
        with pytest.raises(Unauthenticated, match="unknown key"):
            await verifier.verify(clerk_token(ROGUE, f"kid-{n}"))
    assert jwks.hits == 1


async def test_clerk_concurrent_first_requests_fetch_once(jwks: JwksServer) -> None:
    verifier = verifier_for(jwks)
    identities = await asyncio.gather(*(verifier.verify(clerk_token()) for _ in range(5)))
    assert {i.subject for i in identities} == {"user_2abc"}
    assert jwks.hits == 1


async def test_clerk_unreachable_jwks() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    verifier = ClerkJwtVerifier(f"http://127.0.0.1:{port}/jwks.json", ISSUER)
    with pytest.raises(Unauthenticated, match="unavailable"):
        await verifier.verify(clerk_token())


@pytest.mark.parametrize("pad", [True, False])
def test_publishable_key_decoding(pad: bool) -> None:
    assert (
        clerk_frontend_api_from_publishable_key(publishable_key("clerk.example.com$")) == "clerk.example.com"
    )
    host = "fond-zebra-12.clerk.accounts.dev"
    assert clerk_frontend_api_from_publishable_key(publishable_key(f"{host}$", "pk_live_", pad)) == host


@pytest.mark.parametrize(
    "pk",
    [
        "sk_test_" + base64.b64encode(b"clerk.example.com$").decode(),
        publishable_key("clerk.example.com"),  # no trailing $
        publishable_key("$"),
        publishable_key("evil.test/path?$"),
        "pk_test_!!!not-base64",
        "pk_test_",
    ],
)
def test_malformed_publishable_key(pk: str) -> None:
    with pytest.raises(ValueError):
        clerk_frontend_api_from_publishable_key(pk)


async def test_verifier_from_publishable_key(jwks: JwksServer) -> None:
    pk = publishable_key("clerk.example.test$")
    verifier = ClerkJwtVerifier.from_publishable_key(pk, jwks_url=jwks.url, authorized_parties=[ORIGIN])
    token = clerk_token()
    assert verifier.accepts(token)
    assert (await verifier.verify(token)).subject == "user_2abc"
    with pytest.raises(Unauthenticated, match="another origin"):
        await verifier.verify(clerk_token(azp="https://evil.example.test"))
