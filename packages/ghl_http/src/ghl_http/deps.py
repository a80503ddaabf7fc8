"""Dependencies handed to handlers: the caller and the services, taken from the container."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import QueryParameter

from ghl_adapters.container import Container
from ghl_core.audit.services import AuditService
from ghl_core.contacts.services import ContactService
from ghl_core.identity.api_keys import ApiKeyService
from ghl_core.identity.auth import AuthService
from ghl_core.shared.errors import Unauthenticated
from ghl_core.shared.pagination import MAX_LIMIT, PageRequest
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import TenancyService


def _container(state: State) -> Container:
    container: Container = state["container"]
    return container


def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    actor = request.scope.get("state", {}).get("actor")
    if not isinstance(actor, Actor):
        raise Unauthenticated("send 'Authorization: Bearer <API key or access token>'")
    return actor


def provide_tenancy(state: State) -> TenancyService:
    return _container(state).tenancy()


def provide_api_keys(state: State) -> ApiKeyService:
    return _container(state).api_keys()


def provide_auth(state: State) -> AuthService:
    return _container(state).auth()


def provide_audit(state: State) -> AuditService:
    return _container(state).audit()


def provide_contacts(state: State) -> ContactService:
    return _container(state).contacts()


def provide_page(
    limit: Annotated[
        int | None, QueryParameter(description=f"Items per page (1 to {MAX_LIMIT}, default 20)")
    ] = None,
    cursor: Annotated[str | None, QueryParameter(description="The next_cursor of the previous page")] = None,
    offset: Annotated[
        int | None, QueryParameter(description="Items to skip (a fallback; prefer cursor)")
    ] = None,
) -> PageRequest:
    return PageRequest.parse(limit, cursor, offset)


DEPENDENCIES = {
    "actor": Provide(provide_actor, sync_to_thread=False),
    "tenancy": Provide(provide_tenancy, sync_to_thread=False),
    "api_keys": Provide(provide_api_keys, sync_to_thread=False),
    "auth": Provide(provide_auth, sync_to_thread=False),
    "audit": Provide(provide_audit, sync_to_thread=False),
    "page": Provide(provide_page, sync_to_thread=False),
    "contacts": Provide(provide_contacts, sync_to_thread=False),
}
