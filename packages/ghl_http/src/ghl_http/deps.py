"""Dependencies handed to handlers: the caller and the services, taken from the container."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import QueryParameter

from ghl_adapters.container import Container
from ghl_adapters.uploads import UploadSpool
from ghl_core.audit.services import AuditService
from ghl_core.contacts.exports import ContactExportService
from ghl_core.contacts.imports import ContactImportService
from ghl_core.contacts.search import ContactSearchService
from ghl_core.contacts.services import ContactService
from ghl_core.custom_fields.services import CustomFieldService
from ghl_core.identity.api_keys import ApiKeyService
from ghl_core.identity.auth import AuthService
from ghl_core.jobs.services import JobService
from ghl_core.notes.services import NoteService
from ghl_core.pipelines.opportunities import OpportunityService
from ghl_core.pipelines.services import PipelineService
from ghl_core.shared.errors import Unauthenticated
from ghl_core.shared.pagination import CURSOR_PATTERN, MAX_CURSOR, MAX_LIMIT, MAX_OFFSET, PageRequest
from ghl_core.smart_lists.services import SmartListService
from ghl_core.tags.services import TagService
from ghl_core.tasks.services import TaskService
from ghl_core.tenancy.permissions import Actor
from ghl_core.tenancy.services import TenancyService


def container_of(state: State) -> Container:
    """The one way the HTTP shell reaches the container: every `provide_*` here and in the controllers
    goes through it (the app puts the container in its state, see app.py)."""
    container: Container = state["container"]
    return container


def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    actor = request.scope.get("state", {}).get("actor")
    if not isinstance(actor, Actor):
        raise Unauthenticated("send 'Authorization: Bearer <API key or access token>'")
    return actor


def provide_tenancy(state: State) -> TenancyService:
    return container_of(state).tenancy()


def provide_api_keys(state: State) -> ApiKeyService:
    return container_of(state).api_keys()


def provide_auth(state: State) -> AuthService:
    return container_of(state).auth()


def provide_audit(state: State) -> AuditService:
    return container_of(state).audit()


def provide_contacts(state: State) -> ContactService:
    return container_of(state).contacts()


def provide_contact_imports(state: State) -> ContactImportService:
    return container_of(state).contact_imports()


def provide_contact_exports(state: State) -> ContactExportService:
    return container_of(state).contact_exports()


def provide_upload_spool(state: State) -> UploadSpool:
    return container_of(state).upload_spool()


def provide_contact_search(state: State) -> ContactSearchService:
    return container_of(state).contact_search()


def provide_smart_lists(state: State) -> SmartListService:
    return container_of(state).smart_lists()


def provide_tag_service(state: State) -> TagService:
    return container_of(state).tag_service()


def provide_custom_field_service(state: State) -> CustomFieldService:
    return container_of(state).custom_field_service()


def provide_notes(state: State) -> NoteService:
    return container_of(state).notes()


def provide_tasks(state: State) -> TaskService:
    return container_of(state).tasks()


def provide_pipelines(state: State) -> PipelineService:
    return container_of(state).pipelines()


def provide_opportunities(state: State) -> OpportunityService:
    return container_of(state).opportunities()


def provide_jobs(state: State) -> JobService:
    return container_of(state).jobs()


def provide_page(
    limit: Annotated[
        int | None,
        QueryParameter(ge=1, le=MAX_LIMIT, description=f"Items per page (1 to {MAX_LIMIT}, default 20)"),
    ] = None,
    cursor: Annotated[
        str | None,
        QueryParameter(
            pattern=CURSOR_PATTERN,
            max_length=MAX_CURSOR,
            description="The next_cursor of the previous page (never with offset)",
        ),
    ] = None,
    offset: Annotated[
        int | None,
        QueryParameter(
            ge=0,
            le=MAX_OFFSET,
            schema_extra={"minimum": 0},  # Litestar leaves a bound of 0 out of the schema
            description=f"Items to skip (0 to {MAX_OFFSET:,}; a fallback, prefer cursor)",
        ),
    ] = None,
) -> PageRequest:
    return PageRequest.parse(limit, cursor, offset)


def provide_cursor_page(
    limit: Annotated[
        int | None,
        QueryParameter(ge=1, le=MAX_LIMIT, description=f"Items per page (1 to {MAX_LIMIT}, default 20)"),
    ] = None,
    cursor: Annotated[
        str | None,
        QueryParameter(
            pattern=CURSOR_PATTERN, max_length=MAX_CURSOR, description="The next_cursor of the previous page"
        ),
    ] = None,
    # Read so the service can refuse it with its reason; no parameter of these lists, so not documented.
    offset: Annotated[int | None, QueryParameter(include_in_schema=False)] = None,
) -> PageRequest:
    """For lists that page by cursor only (no offset in the OpenAPI document)."""
    return PageRequest.parse(limit, cursor, offset)


DEPENDENCIES = {
    "actor": Provide(provide_actor, sync_to_thread=False),
    "tenancy": Provide(provide_tenancy, sync_to_thread=False),
    "api_keys": Provide(provide_api_keys, sync_to_thread=False),
    "auth": Provide(provide_auth, sync_to_thread=False),
    "audit": Provide(provide_audit, sync_to_thread=False),
    "page": Provide(provide_page, sync_to_thread=False),
    "contacts": Provide(provide_contacts, sync_to_thread=False),
    "contact_imports": Provide(provide_contact_imports, sync_to_thread=False),
    "contact_exports": Provide(provide_contact_exports, sync_to_thread=False),
    "upload_spool": Provide(provide_upload_spool, sync_to_thread=False),
    "contact_search": Provide(provide_contact_search, sync_to_thread=False),
    "smart_lists": Provide(provide_smart_lists, sync_to_thread=False),
    "tag_service": Provide(provide_tag_service, sync_to_thread=False),
    "custom_field_service": Provide(provide_custom_field_service, sync_to_thread=False),
    "notes": Provide(provide_notes, sync_to_thread=False),
    "tasks": Provide(provide_tasks, sync_to_thread=False),
    "pipelines": Provide(provide_pipelines, sync_to_thread=False),
    "opportunities": Provide(provide_opportunities, sync_to_thread=False),
    "jobs": Provide(provide_jobs, sync_to_thread=False),
}
