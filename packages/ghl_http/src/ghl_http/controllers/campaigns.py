"""Templates and campaigns over HTTP (/api/v1/templates, /api/v1/campaigns), and the unauthenticated
tracking URLs a campaign email carries: the open pixel and the click redirect."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import uuid
from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT, HTTP_302_FOUND

from ghl_core.campaigns.services import CampaignService, TemplateService
from ghl_core.conversations.links import TRACKING_CLIENT_LIMIT, TRACKING_LINK_LIMIT
from ghl_core.shared.errors import NotFound
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.permissions import Actor
from ghl_http.deps import container_of
from ghl_http.problems import PROBLEM_JSON, domain_problem, problem_body
from ghl_http.receiving import client_address, limit
from ghl_http.schemas import ListOf, page_of
from ghl_http.schemas_campaigns import (
    TRACKING_PATH,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    CampaignStatsOut,
    PreviewIn,
    PreviewOut,
    SendIn,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
)

# A 1x1 transparent GIF: what mail clients expect an image URL to answer.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
# Tracking answers differ per recipient and each fetch is an event: no cache may keep or share them.
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def provide_templates(state: State) -> TemplateService:
    return container_of(state).templates()


def provide_campaigns(state: State) -> CampaignService:
    return container_of(state).campaigns()


DEPENDENCIES = {
    "templates": Provide(provide_templates, sync_to_thread=False),
    "campaigns": Provide(provide_campaigns, sync_to_thread=False),
}


class TemplatesController(Controller):
    path = "/templates"
    tags = ["campaigns: templates"]
    dependencies = DEPENDENCIES

    @get("/", summary="The location's message templates, newest first")
    async def list_templates(
        self,
        actor: NamedDependency[Actor],
        templates: NamedDependency[TemplateService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[TemplateOut]:
        listed = await templates.list(actor, page)
        return ListOf[TemplateOut].model_validate(page_of(listed, TemplateOut.of))

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Create a template",
        description="422 names each bad field; a template that does not compile names its line.",
    )
    async def create_template(
        self,
        data: JSONBody[TemplateIn],
        actor: NamedDependency[Actor],
        templates: NamedDependency[TemplateService],
    ) -> TemplateOut:
        return TemplateOut.of(await templates.create(actor, data.model_dump(exclude_unset=True)))

    @get("/{template_id:uuid}", summary="Get a template")
    async def get_template(
        self,
        template_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        templates: NamedDependency[TemplateService],
    ) -> TemplateOut:
        return TemplateOut.of(await templates.get(actor, template_id))

    @patch("/{template_id:uuid}", summary="Change a template's name or content (not its channel)")
    async def update_template(
        self,
        template_id: FromPath[uuid.UUID],
        data: JSONBody[TemplatePatch],
        actor: NamedDependency[Actor],
        templates: NamedDependency[TemplateService],
    ) -> TemplateOut:
        changes = data.model_dump(exclude_unset=True)
        return TemplateOut.of(await templates.update(actor, template_id, changes))

    @delete("/{template_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a template (soft)")
    async def delete_template(
        self,
        template_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        templates: NamedDependency[TemplateService],
    ) -> None:
        await templates.delete(actor, template_id)

    @post(
        "/{template_id:uuid}/preview",
        status_code=200,
        summary="The template rendered for one contact, as it would be sent",
    )
    async def preview_template(
        self,
        template_id: FromPath[uuid.UUID],
        data: JSONBody[PreviewIn],
        actor: NamedDependency[Actor],
        templates: NamedDependency[TemplateService],
    ) -> PreviewOut:
        rendered = await templates.preview(actor, template_id, data.contact_id)
        return PreviewOut(subject=rendered["subject"], body=rendered["body"] or "", html=rendered["html"])


class CampaignsController(Controller):
    path = "/campaigns"
    tags = ["campaigns"]
    dependencies = DEPENDENCIES

    @get("/", summary="The location's campaigns, newest first")
    async def list_campaigns(
        self,
        actor: NamedDependency[Actor],
        campaigns: NamedDependency[CampaignService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[CampaignOut]:
        listed = await campaigns.list(actor, page)
        return ListOf[CampaignOut].model_validate(page_of(listed, CampaignOut.of))

    @post("/", status_code=HTTP_201_CREATED, summary="Create a campaign (a draft)")
    async def create_campaign(
        self,
        data: JSONBody[CampaignIn],
        actor: NamedDependency[Actor],
        campaigns: NamedDependency[CampaignService],
    ) -> CampaignOut:
        return CampaignOut.of(await campaigns.create(actor, data.model_dump(exclude_unset=True)))

    @get("/{campaign_id:uuid}", summary="Get a campaign")
    async def get_campaign(
        self,
        campaign_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        campaigns: NamedDependency[CampaignService],
    ) -> CampaignOut:
        return CampaignOut.of(await campaigns.get(actor, campaign_id))

    @patch(
        "/{campaign_id:uuid}",
        summary="Change a draft or scheduled campaign",
        description="409 once it is sending, paused or finished.",
    )
    async def update_campaign(
        self,
        campaign_id: FromPath[uuid.UUID],
        data: JSONBody[CampaignPatch],
        actor: NamedDependency[Actor],
        campaigns: NamedDependency[CampaignService],
    ) -> CampaignOut:
        changes = data.model_dump(exclude_unset=True)
        return CampaignOut.of(await campaigns.update(actor, campaign_id, changes))

    @delete(
        "/{campaign_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a draft or finished campaign (soft); cancel a running one first",
    )
    async def delete_campaign(
        self,
        campaign_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        campaigns: NamedDependency[CampaignService],
    ) -> None:
        await campaigns.delete(actor, campaign_id)

    @post(
        "/{campaign_id:uuid}/send",
        status_code=HTTP_202_ACCEPTED,
        summary="Send now, or schedule with `at`",
        description=(
            "The audience is frozen when sending starts; the worker then sends at the location's pace "
            "(messaging settings sms_per_second / email_per_second, never above the plan's). Sending a "
            "scheduled campaign again moves it. 409 plan_limit: the audience holds more contacts than the "
            "location's plan sends one campaign to. Past the plan's messages a day, the rest wait for the "
            "location's next midnight (see the campaign's note)."
        ),
    )
    async def send_campaign(
        self,
        campaign_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        campaigns: NamedDependency[CampaignService],
        data: JSONBody[SendIn | None] = None,
    ) -> CampaignOut:
        at = data.at if data is not None else None
        return CampaignOut.of(await campaigns.send(actor, campaign_id, at))

    @post("/{campaign_id:uuid}/pause", status_code=200, summary="Pause: no further batch is sent")
    async def pause_campaign(
        self,
        campaign_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        campaigns: NamedDependency[CampaignService],
    ) -> CampaignOut:
        return CampaignOut.of(await campaigns.pause(actor, campaign_id))

    @post("/{campaign_id:uuid}/resume", status_code=200, summary="Resume a paused campaign")
    async def resume_campaign(
        self,
        campaign_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        campaigns: NamedDependency[CampaignService],
    ) -> CampaignOut:
        return CampaignOut.of(await campaigns.resume(actor, campaign_id))

    @post(
        "/{campaign_id:uuid}/cancel",
        status_code=200,
        summary="Cancel: recipients not yet reached are marked cancelled",
        description=(
            "Always wins over a campaign being sent: it waits for the batch under way to finish writing, "
            "and once it answers no message of the campaign is handed to a provider (those handed over "
            "before finish). 409 campaign_state: the campaign already finished."
        ),
    )
    async def cancel_campaign(
        self,
        campaign_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        campaigns: NamedDependency[CampaignService],
    ) -> CampaignOut:
        return CampaignOut.of(await campaigns.cancel(actor, campaign_id))

    @get("/{campaign_id:uuid}/stats", summary="Recipients, sends, deliveries and engagement")
    async def campaign_stats(
        self,
        campaign_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        campaigns: NamedDependency[CampaignService],
    ) -> CampaignStatsOut:
        return CampaignStatsOut.of(await campaigns.stats(actor, campaign_id))


def _not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    status, _, fields = domain_problem(exc)
    body = problem_body(status, exc.detail, instance=request.url.path, **fields)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=NO_STORE)


async def _limit_tracking(state: State, request: Request[Any, Any, Any], token: str) -> None:
    """Per client address, then per link (the token, hashed: a guess may be long). Checked before the
    token, so guessing costs the same as fetching."""
    limiter = container_of(state).rate_limiter()
    link = hashlib.sha256(token.encode()).hexdigest()[:32]
    for key, policy, source in (
        (f"tracking:ip:{client_address(request)}", TRACKING_CLIENT_LIMIT, "from this address"),
        (f"tracking:link:{link}", TRACKING_LINK_LIMIT, "for this link"),
    ):
        await limit(limiter, key, policy, f"too many tracking requests {source}; retry later")


class TrackingController(Controller):
    """Reached from recipients' mail clients, with no credential: each link carries its own signature,
    so a forged or altered one is simply not found. Limited per client address and per link."""

    path = TRACKING_PATH
    tags = ["campaigns: tracking"]

    @get(
        "/o/{name:str}",
        summary="The open pixel (`{token}.gif`): always a 1x1 transparent GIF",
        description="Only a genuine token counts an open; any other answers the same image.",
        security=[{}],
        media_type="image/gif",
    )
    async def open_pixel(
        self, name: FromPath[str], request: Request[Any, Any, Any], state: State
    ) -> Response[bytes]:
        await _limit_tracking(state, request, name)
        token = name.removesuffix(".gif")
        if token != name:
            with contextlib.suppress(NotFound):  # never tell a guesser whether a token was genuine
                await container_of(state).message_reports().track_open(token)
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)

    @get(
        "/c/{token:str}",
        summary="A tracked link: counts the click, then redirects (302) to the URL the token signs",
        description="404 when the token does not sign `u` exactly: this is no open redirect.",
        security=[{}],
    )
    async def click(
        self,
        token: FromPath[str],
        request: Request[Any, Any, Any],
        state: State,
        u: Annotated[str, QueryParameter(description="The destination, as the email linked it")] = "",
    ) -> Response[Any]:
        await _limit_tracking(state, request, token)
        try:
            if _scheme(u) not in ("http", "https"):
                raise NotFound("link not found")
            url = await container_of(state).message_reports().track_click(token, u)
        except NotFound as exc:
            return _not_found(request, exc)
        return Redirect(url, status_code=HTTP_302_FOUND, headers=NO_STORE)


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""
