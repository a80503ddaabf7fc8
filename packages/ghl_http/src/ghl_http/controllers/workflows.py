"""Workflows over HTTP (/api/v1/workflows, /api/v1/workflow-enrollments): authoring, publishing and
versions, enrolling and history, statistics and simulation; and the unauthenticated inbound-webhook
trigger (POST /hooks/workflows/{location_id}/{workflow_id}/{token})."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException
from litestar.params import BodyKwarg, FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from pydantic import BaseModel

from ghl_core.inbound.models import CLIENT_LIMIT, ENDPOINT_LIMIT, BodyTooLarge
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.shared.idempotency import MAX_KEY_LENGTH
from ghl_core.shared.pagination import Page, PageRequest
from ghl_core.tenancy.permissions import Actor
from ghl_core.workflows.models import EnrollmentStatus
from ghl_core.workflows.services import MAX_VERSION, BulkEnrollment, WorkflowService
from ghl_core.workflows.simulation import describe
from ghl_core.workflows.views import enrollment_view, stats_view, step_run_view, version_view, workflow_view
from ghl_http.deps import container_of
from ghl_http.middleware.input_guard import checked_json
from ghl_http.receiving import client_address, headers_of, limit, read_body, receive_problem
from ghl_http.schemas_workflows import EnrollIn, SimulateIn, WorkflowDocument

HOOK_PATH = "/hooks/workflows"
MAX_HOOK_BODY = 65_536  # an inbound-webhook call names a contact and a few fields, nothing bulky

Json = dict[str, Any]


def _described_by(model: type[BaseModel]) -> BodyKwarg:
    """A JSON object body the core checks itself (pointing at each mistake), titled after the model that
    describes it in the OpenAPI document (ghl_http.openapi)."""
    return BodyKwarg(title=model.__name__, media_type=RequestEncodingType.JSON)


Document = Annotated[Json, _described_by(WorkflowDocument)]
Enrollment = Annotated[Json, _described_by(EnrollIn)]
SimulationInput = Annotated[Json, _described_by(SimulateIn)]


def hook_url(base_url: str, location_id: uuid.UUID, workflow_id: uuid.UUID, secret: str) -> str:
    return f"{base_url}{HOOK_PATH}/{location_id}/{workflow_id}/{secret}"


def provide_workflows(state: State) -> WorkflowService:
    return container_of(state).workflows()


def provide_base_url(state: State) -> str:
    return container_of(state).settings().base_url


DEPENDENCIES = {
    "workflows": Provide(provide_workflows, sync_to_thread=False),
    "base_url": Provide(provide_base_url, sync_to_thread=False),
}


# ---------------------------------------------------------------------------------------------- views


def _bulk_view(b: BulkEnrollment) -> Json:
    return {"matched": b.matched, "enrolled": b.enrolled, "skipped": b.skipped}


def _page_view(page: Page[Any], view: Any) -> Json:
    return {"items": [view(item) for item in page.items], "next_cursor": page.next_cursor}


# ---------------------------------------------------------------------------------------------- input


def _instant(value: Any, pointer: str, errors: list[FieldError]) -> Any:
    """An ISO 8601 date-time with an offset, parsed; anything else is an error at `pointer`."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        errors.append(FieldError(pointer, "must be an ISO 8601 date-time with an offset"))
        return value
    return parsed


def _simulation_input(data: Json) -> Json:
    """The body with its date-times parsed, so the service sees datetimes and the caller sees where a bad
    one is."""
    errors: list[FieldError] = []
    parsed = dict(data)
    if "start" in data:
        parsed["start"] = _instant(data["start"], "/start", errors)
    events = data.get("events")
    if isinstance(events, list):
        parsed["events"] = [
            {**item, "at": _instant(item.get("at"), f"/events/{i}/at", errors)}
            if isinstance(item, dict)
            else item
            for i, item in enumerate(events)
        ]
    version = data.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        errors.append(FieldError("/version", "must be a published version number (1 or more)"))
    if errors:
        raise ValidationFailed(errors)
    return parsed


# ---------------------------------------------------------------------------------------------- API


class WorkflowsController(Controller):
    path = "/workflows"
    tags = ["workflows"]
    dependencies = DEPENDENCIES

    @get("/", summary="The location's workflows (without their drafts)")
    async def list_workflows(
        self,
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
        page: NamedDependency[PageRequest],
    ) -> Json:
        listed = await workflows.list(actor, page)
        return _page_view(listed, lambda w: workflow_view(w, draft=False))

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Create a workflow (a draft) from its definition document",
        description=(
            "The body is the definition (name, settings, triggers, steps; see docs/workflows.md). 422 lists "
            "every mistake with a pointer into the document, e.g. `/steps/1/wait/minutes`."
        ),
    )
    async def create_workflow(
        self, data: Document, actor: NamedDependency[Actor], workflows: NamedDependency[WorkflowService]
    ) -> Json:
        return workflow_view(await workflows.create(actor, data))

    @get("/{workflow_id:uuid}", summary="Get a workflow, with its draft")
    async def get_workflow(
        self,
        workflow_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> Json:
        return workflow_view(await workflows.get(actor, workflow_id))

    @put(
        "/{workflow_id:uuid}",
        summary="Replace the draft with the body's definition",
        description="Published versions are untouched until the next publish.",
    )
    async def replace_workflow(
        self,
        workflow_id: FromPath[uuid.UUID],
        data: Document,
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> Json:
        return workflow_view(await workflows.update(actor, workflow_id, data))

    @delete(
        "/{workflow_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a workflow (soft); its running enrollments stop",
    )
    async def delete_workflow(
        self,
        workflow_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> None:
        await workflows.delete(actor, workflow_id)

    @post(
        "/{workflow_id:uuid}/publish",
        status_code=HTTP_200_OK,
        summary="Publish the draft as a new version",
        description="New enrollments start on it; running ones finish on the version they started on.",
    )
    async def publish_workflow(
        self,
        workflow_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> Json:
        return workflow_view(await workflows.publish(actor, workflow_id))

    @post(
        "/{workflow_id:uuid}/pause",
        status_code=HTTP_200_OK,
        summary="Pause a published workflow: triggers stop enrolling, running enrollments stop",
        description="Answers the workflow and how many enrollments stopped; 409 unless it is published.",
    )
    async def pause_workflow(
        self,
        workflow_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> Json:
        workflow, stopped = await workflows.pause(actor, workflow_id)
        return {"workflow": workflow_view(workflow), "stopped": stopped}

    @get("/{workflow_id:uuid}/versions", summary="The published versions, newest first")
    async def list_versions(
        self,
        workflow_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> Json:
        versions = await workflows.versions(actor, workflow_id)
        return {"items": [version_view(v) for v in versions], "next_cursor": None}

    @get(
        "/{workflow_id:uuid}/export",
        summary="The definition document: the draft, or a published version's",
        description="What it answers can be sent back as the body of POST or PUT.",
    )
    async def export_workflow(
        self,
        workflow_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
        version: Annotated[
            int | None,
            QueryParameter(ge=1, le=MAX_VERSION, description="A published version; default the draft"),
        ] = None,
    ) -> Json:
        return await workflows.export(actor, workflow_id, version)

    @post(
        "/{workflow_id:uuid}/enrollments",
        status_code=HTTP_202_ACCEPTED,
        summary="Enroll contacts by hand: by id, or an audience (tags, smart list, search)",
        description=(
            "The body names `contact_ids`, or an audience: `tags`, `smart_list_id`, `query`, `filter` (at "
            "most 10,000 contacts). Answers how many matched, were enrolled, and were skipped (already "
            "enrolled). Their steps run in the background. 409 unless the workflow is published."
        ),
    )
    async def enroll(
        self,
        workflow_id: FromPath[uuid.UUID],
        data: Enrollment,
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> Json:
        return _bulk_view(await workflows.enroll(actor, workflow_id, data))

    @get("/{workflow_id:uuid}/enrollments", summary="The workflow's enrollments")
    async def list_enrollments(
        self,
        workflow_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
        page: NamedDependency[PageRequest],
        status: Annotated[
            str | None,
            QueryParameter(
                description="active, waiting, completed, goal, stopped or failed",
                schema_extra={"enum": [s.value for s in EnrollmentStatus]},
            ),
        ] = None,
        contact_id: Annotated[uuid.UUID | None, QueryParameter(description="One contact's")] = None,
    ) -> Json:
        listed = await workflows.enrollments(actor, workflow_id, page, status=status, contact_id=contact_id)
        return _page_view(listed, enrollment_view)

    @delete(
        "/{workflow_id:uuid}/enrollments/{contact_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Remove a contact from the workflow: its running enrollment stops",
        description="Answers how many enrollments stopped (0 when the contact was not in it).",
    )
    async def remove_contact(
        self,
        workflow_id: FromPath[uuid.UUID],
        contact_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> Json:
        return {"stopped": await workflows.remove(actor, workflow_id, contact_id)}

    @get("/{workflow_id:uuid}/stats", summary="Enrollments by status, and step runs by step and status")
    async def workflow_stats(
        self,
        workflow_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> Json:
        return stats_view(await workflows.stats(actor, workflow_id))

    @post(
        "/{workflow_id:uuid}/simulate",
        status_code=HTTP_200_OK,
        summary="What the workflow would do to one contact, on a virtual clock (nothing is sent)",
        description=(
            "Body: `contact_id`, `start` (ISO 8601 with an offset; default now), `events` (at most 100 "
            "`{at, event, data}` the simulation takes as happening: `contact.replied` {channel}, `tag.added` "
            "{tag}, `opportunity.stage_reached` {stage_id}), `version` (default the draft). Answers how it "
            "finished, the timeline, and the contact as the workflow would leave it."
        ),
    )
    async def simulate(
        self,
        workflow_id: FromPath[uuid.UUID],
        data: SimulationInput,
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> Json:
        result = await workflows.simulate(actor, workflow_id, _simulation_input(data))
        return {"finished": result.finished, "timeline": describe(result), "contact": dict(result.contact)}

    @post(
        "/{workflow_id:uuid}/hook-secret",
        status_code=HTTP_200_OK,
        summary="A new secret URL for the inbound_webhook trigger (shown once); the old one stops at once",
    )
    async def rotate_hook(
        self,
        workflow_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
        base_url: NamedDependency[str],
    ) -> Json:
        workflow, secret = await workflows.rotate_hook(actor, workflow_id)
        return {"url": hook_url(base_url, workflow.location_id, workflow.id, secret), "secret": secret}


class WorkflowEnrollmentsController(Controller):
    path = "/workflow-enrollments"
    tags = ["workflows"]
    dependencies = DEPENDENCIES

    @get(
        "/{enrollment_id:uuid}",
        summary="One enrollment with its history: every step it ran, when, and what came of it",
    )
    async def get_enrollment(
        self,
        enrollment_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        workflows: NamedDependency[WorkflowService],
    ) -> Json:
        enrollment, history = await workflows.enrollment(actor, enrollment_id)
        return {
            **enrollment_view(enrollment),
            "outputs": enrollment.outputs,
            "history": [step_run_view(r) for r in history],
        }


# ---------------------------------------------------------------------------------------------- the hook


def _request_id(headers: dict[str, str]) -> str:
    key = headers.get("idempotency-key")
    if key is None:
        return str(uuid.uuid4())
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ClientException(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    return key


def _payload(body: bytes) -> Json:
    if not body.strip():
        return {}
    # As every JSON body: 400 when it is not UTF-8 JSON or nests too deep, 422 for a NUL.
    loaded = checked_json(body)
    if not isinstance(loaded, dict):
        raise ValidationFailed.one("", "the body must be a JSON object")
    return loaded


class WorkflowHookController(Controller):
    """Reached by the caller's own systems with no credential: the secret in the URL is the credential, so
    a wrong one (or a workflow without an inbound_webhook trigger) is simply not found."""

    path = HOOK_PATH
    tags = ["workflows"]
    exception_handlers = {BodyTooLarge: receive_problem}

    @post(
        "/{location_id:uuid}/{workflow_id:uuid}/{token:str}",
        status_code=HTTP_202_ACCEPTED,
        summary="Enroll a contact through the workflow's inbound_webhook trigger (the URL is the secret)",
        description=(
            "A JSON object naming the contact by `contact_id`, `email` or `phone` (an unknown email or "
            "phone becomes a contact, with `first_name`, `last_name`, `company_name` if given). Send "
            "`Idempotency-Key` so a retry enrolls once. 202 with the enrollment's id, or null when the "
            "contact is already enrolled (or the request was a repeat); 404 for a wrong URL; 409 when the "
            "workflow is not published; 413 over 64 KiB."
        ),
        security=[{}],
        request_max_body_size=None,  # read_body() enforces MAX_HOOK_BODY, with its own problem
    )
    async def receive(
        self,
        location_id: FromPath[uuid.UUID],
        workflow_id: FromPath[uuid.UUID],
        token: FromPath[str],
        request: Request[Any, Any, Any],
        state: State,
    ) -> Response[Json]:
        # The receiving recipe (ghl_http.receiving), step by step: this is no signed event.
        container = container_of(state)
        limiter = container.rate_limiter()
        await limit(limiter, f"workflow-hook:ip:{client_address(request)}", CLIENT_LIMIT)
        headers = headers_of(request)
        request_id = _request_id(headers)
        payload = _payload(await read_body(request, headers, MAX_HOOK_BODY))
        # Keyed by the URL's secret too: a stranger who knows only the ids cannot drain the bucket.
        url_key = hashlib.sha256(f"{workflow_id}/{token}".encode()).hexdigest()[:32]
        await limit(limiter, f"workflow-hook:{url_key}", ENDPOINT_LIMIT)
        enrollment = await container.workflows().receive_hook(
            location_id, workflow_id, token, payload, request_id=request_id
        )
        return Response(
            {"enrollment_id": str(enrollment.id) if enrollment else None}, status_code=HTTP_202_ACCEPTED
        )
