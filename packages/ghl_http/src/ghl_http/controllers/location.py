"""Location endpoints: the location comes from the credential (an API key or a location token)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ghl_core.audit.services import AuditService
from ghl_core.identity.api_keys import ApiKeyService, parse_scopes
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import TenancyService
from ghl_http.schemas import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyOut,
    AuditEntryOut,
    ListOf,
    LocationOut,
    page_of,
)


class LocationController(Controller):
    path = "/location"
    tags = ["location"]

    @get("/", summary="The caller's location")
    async def current(
        self, actor: NamedDependency[Actor], tenancy: NamedDependency[TenancyService]
    ) -> LocationOut:
        return LocationOut.of(await tenancy.current_location(actor))


class ApiKeysController(Controller):
    path = "/api-keys"
    tags = ["location: API keys"]

    @get("/", summary="List the location's API keys (never their secrets)")
    async def list_keys(
        self,
        actor: NamedDependency[Actor],
        api_keys: NamedDependency[ApiKeyService],
        page: NamedDependency[PageRequest],
        include_revoked: Annotated[bool, QueryParameter()] = False,
    ) -> ListOf[ApiKeyOut]:
        listed = await api_keys.list(actor, page, include_revoked=include_revoked)
        return ListOf[ApiKeyOut].model_validate(page_of(listed, ApiKeyOut.of))

    @post("/", status_code=HTTP_201_CREATED, summary="Create an API key; its secret is shown once")
    async def create_key(
        self,
        data: JSONBody[ApiKeyIn],
        actor: NamedDependency[Actor],
        api_keys: NamedDependency[ApiKeyService],
    ) -> ApiKeyCreatedOut:
        key, secret = await api_keys.create(
            actor, data.name, None if data.scopes is None else parse_scopes(data.scopes)
        )
        return ApiKeyCreatedOut(**ApiKeyOut.of(key).model_dump(), key=secret)

    @delete("/{key_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Revoke an API key")
    async def revoke_key(
        self,
        key_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        api_keys: NamedDependency[ApiKeyService],
    ) -> None:
        await api_keys.revoke(actor, key_id)


class AuditController(Controller):
    path = "/audit-log"
    tags = ["location: audit"]

    @get("/", summary="The location's audit trail, newest first (location admins)")
    async def list_entries(
        self,
        actor: NamedDependency[Actor],
        audit: NamedDependency[AuditService],
        page: NamedDependency[PageRequest],
        entity_type: Annotated[str | None, QueryParameter()] = None,
        entity_id: Annotated[uuid.UUID | None, QueryParameter()] = None,
        since: Annotated[datetime | None, QueryParameter()] = None,
    ) -> ListOf[AuditEntryOut]:
        listed = await audit.list(actor, page, entity_type=entity_type, entity_id=entity_id, since=since)
        return ListOf[AuditEntryOut].model_validate(page_of(listed, AuditEntryOut.of))
