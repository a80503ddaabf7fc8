"""The Litestar application: `create_app(container)` plus small configure steps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from litestar import Litestar, Response, Router, get
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag

from ghl_adapters.container import Container, close_container
from ghl_adapters.runtime import readiness
from ghl_core.version import version
from ghl_http.controllers.agency import LocationsController, UsersController
from ghl_http.controllers.auth import AuthController
from ghl_http.controllers.campaigns import CampaignsController, TemplatesController, TrackingController
from ghl_http.controllers.contact_imports import ContactExportController, ContactImportsController
from ghl_http.controllers.contact_search import ContactSearchController
from ghl_http.controllers.contacts import ContactsController
from ghl_http.controllers.conversations import (
    ContactMessagesController,
    ConversationsController,
    MessagesController,
    MessagingController,
    OutboxController,
    ProviderCallbacksController,
    UnsubscribeController,
)
from ghl_http.controllers.custom_fields import CustomFieldsController
from ghl_http.controllers.inbound import InboundReceiveController, InboundWebhooksController
from ghl_http.controllers.jobs import JobsController
from ghl_http.controllers.location import ApiKeysController, AuditController, LocationController
from ghl_http.controllers.notes_tasks import ContactNotesController, ContactTasksController, TasksController
from ghl_http.controllers.pipelines import OpportunitiesController, PipelinesController
from ghl_http.controllers.smart_lists import SmartListsController
from ghl_http.controllers.tags import ContactTagsController, TagsController
from ghl_http.controllers.webhooks import WebhooksController
from ghl_http.controllers.workflows import (
    WorkflowEnrollmentsController,
    WorkflowHookController,
    WorkflowsController,
)
from ghl_http.deps import DEPENDENCIES
from ghl_http.gate import API_PREFIX, ApiGate
from ghl_http.middleware.input_guard import InputGuard
from ghl_http.middleware.request_context import install_request_context, metrics_route
from ghl_http.openapi import ApiDocsConfig
from ghl_http.problems import EXCEPTION_HANDLERS

VERSION = version()  # the installed packages' (ghl_core.version), as `ghl --version` says
DOCS_PATH = "/docs"


@get("/health/live", include_in_schema=True, tags=["health"], summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", tags=["health"], summary="The database (and Redis, when configured) answer")
async def ready(state: State) -> Response[dict[str, Any]]:
    report = await readiness(state["container"])
    return Response(
        {"status": "ok" if report["ok"] else "unavailable", "version": VERSION, "checks": report["checks"]},
        status_code=200 if report["ok"] else 503,
    )


def _openapi() -> OpenAPIConfig:
    return ApiDocsConfig(
        title="GHL-style CRM platform API",
        version=VERSION,
        description=(
            "Agencies, locations (sub-accounts), users and their credentials. Send "
            "`Authorization: Bearer <API key or access token>`. Errors are RFC 9457 problem documents."
        ),
        path=DOCS_PATH,
        render_plugins=[ScalarRenderPlugin(path="/"), SwaggerRenderPlugin(path="/swagger")],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http", scheme="bearer", description="An API key (ghl_...) or a JWT"
                )
            }
        ),
        security=[{"bearer": []}],
        tags=[
            Tag(name="auth"),
            Tag(name="agency: locations"),
            Tag(name="agency: users"),
            Tag(name="location"),
            Tag(name="contacts: import and export"),
            Tag(name="tags"),
            Tag(name="custom fields"),
            Tag(name="notes and tasks"),
            Tag(name="smart lists"),
            Tag(name="pipelines"),
            Tag(name="opportunities"),
            Tag(name="inbound webhooks"),
            Tag(name="webhooks"),
            Tag(name="location: jobs"),
            Tag(name="conversations"),
            Tag(name="conversations: setup"),
            Tag(name="conversations: provider callbacks"),
            Tag(name="conversations: unsubscribe"),
            Tag(name="campaigns: templates"),
            Tag(name="campaigns"),
            Tag(name="campaigns: tracking"),
            Tag(name="workflows"),
        ],
    )


def create_app(
    container: Container,
    *,
    on_shutdown: list[Callable[[], Any]] | None = None,
    close_container_on_shutdown: bool = True,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> Litestar:
    """``background``: coroutines run for the app's lifetime (the in-process job worker of `ghl serve`),
    cancelled at shutdown, which lets them finish their work gracefully."""
    settings = container.settings()
    metrics = container.metrics()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncGenerator[None, None]:
        # Uploads a crashed process was spooling stay on disk until removed here (not those of the
        # durable imports still to run: their workers read them).
        await container.contact_import_runner().sweep()
        tasks = [asyncio.create_task(run()) for run in background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if close_container_on_shutdown:
                await close_container(container)
            for hook in on_shutdown or []:
                hook()

    auth = container.auth()
    api = Router(
        path=API_PREFIX,
        route_handlers=[
            AuthController,
            LocationsController,
            UsersController,
            LocationController,
            ApiKeysController,
            AuditController,
            ContactsController,
            ContactSearchController,
            SmartListsController,
            ContactImportsController,
            ContactExportController,
            TagsController,
            ContactTagsController,
            CustomFieldsController,
            ContactNotesController,
            ContactTasksController,
            TasksController,
            PipelinesController,
            OpportunitiesController,
            InboundWebhooksController,
            WebhooksController,
            JobsController,
            ConversationsController,
            ContactMessagesController,
            MessagesController,
            OutboxController,
            MessagingController,
            TemplatesController,
            CampaignsController,
            WorkflowsController,
            WorkflowEnrollmentsController,
        ],
    )
    gate = DefineMiddleware(
        cast(Any, ApiGate),
        authenticate=auth.authenticate,
        rate_limiter=container.rate_limiter(),
        idempotency=container.idempotency(),
        max_body_bytes=settings.max_body_bytes,
        plans=container.plans(),
    )
    # /metrics unless GHL_METRICS_ENABLED is off; behind GHL_METRICS_TOKEN when one is set.
    scrape_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    scrape = [metrics_route(metrics, token=scrape_token)] if settings.metrics_enabled else []
    app = Litestar(
        route_handlers=[
            api,
            InboundReceiveController,
            ProviderCallbacksController,
            UnsubscribeController,
            TrackingController,
            WorkflowHookController,
            live,
            ready,
            *scrape,
        ],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        # The gate first (who, how often), then the input guard (bad bytes) before any handler.
        middleware=[gate, DefineMiddleware(cast(Any, InputGuard), max_body_bytes=settings.max_body_bytes)],
        openapi_config=_openapi(),
        state=State({"container": container}),
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,
        debug=False,
    )
    return install_request_context(app, metrics=metrics if settings.metrics_enabled else None)
