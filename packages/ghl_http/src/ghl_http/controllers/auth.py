"""/api/v1/auth: sign-up, log-in, token refresh and location tokens."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ghl_core.identity.auth import AuthService, describe
from ghl_core.tenancy.permissions import Actor
from ghl_http.schemas import (
    AccessTokenOut,
    AgencyOut,
    LocationTokenIn,
    LoginIn,
    MeOut,
    RefreshIn,
    SignUpIn,
    SignUpOut,
    TokensOut,
    UserOut,
)


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/signup", status_code=HTTP_201_CREATED, summary="Create an agency and its owner")
    async def sign_up(self, data: JSONBody[SignUpIn], auth: NamedDependency[AuthService]) -> SignUpOut:
        result = await auth.sign_up(data.agency_name, data.email, data.password, data.name)
        return SignUpOut(
            agency=AgencyOut.of(result.agency),
            user=UserOut.of(result.user),
            tokens=TokensOut.of(result.tokens),
        )

    @post("/login", status_code=HTTP_200_OK, summary="Log in with e-mail and password")
    async def log_in(self, data: JSONBody[LoginIn], auth: NamedDependency[AuthService]) -> TokensOut:
        return TokensOut.of(await auth.log_in(data.email, data.password))

    @post("/refresh", status_code=HTTP_200_OK, summary="Swap a refresh token for new tokens (rotation)")
    async def refresh(self, data: JSONBody[RefreshIn], auth: NamedDependency[AuthService]) -> TokensOut:
        return TokensOut.of(await auth.refresh(data.refresh_token))

    @post("/logout", status_code=HTTP_204_NO_CONTENT, summary="Revoke a refresh token and its rotations")
    async def log_out(self, data: JSONBody[RefreshIn], auth: NamedDependency[AuthService]) -> None:
        await auth.log_out(data.refresh_token)

    @post("/location-token", status_code=HTTP_200_OK, summary="A location-scoped token from an agency token")
    async def location_token(
        self,
        data: JSONBody[LocationTokenIn],
        auth: NamedDependency[AuthService],
        actor: NamedDependency[Actor],
    ) -> AccessTokenOut:
        token, expires_in = await auth.location_token(actor, data.location_id)
        return AccessTokenOut(access_token=token, expires_in=expires_in, location_id=data.location_id)

    @get("/me", summary="Who the credential belongs to and what it may do")
    async def me(self, actor: NamedDependency[Actor]) -> MeOut:
        return MeOut.model_validate(describe(actor))
