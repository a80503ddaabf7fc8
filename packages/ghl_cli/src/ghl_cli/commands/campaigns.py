"""`ghl templates` and `ghl campaigns`: a location's message templates and its SMS and email campaigns,
run by the platform's worker (`ghl worker`, or the one inside `ghl serve`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghl_cli.errors import CliError, reported
from ghl_cli.listing import show_page
from ghl_cli.options import DEFAULT_PAGE, CursorOption, JsonOption, LimitOption, LocationOption, page_request
from ghl_cli.output import Output
from ghl_cli.session import with_services
from ghl_core.campaigns.models import FINISHED, Campaign, CampaignStats, CampaignStatus, MessageTemplate
from ghl_core.shared.pagination import Page
from ghl_core.tenancy.permissions import Actor

if TYPE_CHECKING:
    from ghl_adapters.container import Container

templates_app = typer.Typer(help="A location's SMS and email templates, with merge fields.")
app = typer.Typer(help="Send an SMS or email to an audience of contacts; follow its progress and results.")

TEMPLATE_COLUMNS = ("id", "name", "channel", "subject", "updated_at")
CAMPAIGN_COLUMNS = ("id", "name", "channel", "status", "recipients", "scheduled_at", "created_at")
TemplateArgument = Annotated[uuid.UUID, typer.Argument(help="The template's id (`ghl templates list`).")]
CampaignArgument = Annotated[uuid.UUID, typer.Argument(help="The campaign's id (`ghl campaigns list`).")]
ChannelOption = Annotated[str, typer.Option("--channel", help="sms or email.")]
SubjectOption = Annotated[str | None, typer.Option("--subject", help="Email only: the subject line.")]
BodyOption = Annotated[
    str | None,
    typer.Option(
        "--body", help="The SMS text or the email's text part; merge fields like {{ contact.first_name }}."
    ),
]
HtmlOption = Annotated[
    Path | None,
    typer.Option("--html", help="Email only: a file with the HTML body.", exists=True, dir_okay=False),
]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def template_view(t: MessageTemplate) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "name": t.name,
        "channel": t.channel.value,
        "subject": t.subject,
        "body": t.body,
        "html": t.html,
        "created_at": t.created_at.isoformat(),
        "updated_at": t.updated_at.isoformat(),
    }


def campaign_view(c: Campaign) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "name": c.name,
        "channel": c.channel.value,
        "status": c.status.value,
        "template_id": str(c.template_id) if c.template_id else None,
        "subject": c.subject,
        "body": c.body,
        "html": c.html,
        "audience": c.audience,
        "recipients": c.recipients,
        "scheduled_at": _time(c.scheduled_at),
        "started_at": _time(c.started_at),
        "completed_at": _time(c.completed_at),
        "note": c.note,
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
    }


def stats_view(s: CampaignStats) -> dict[str, Any]:
    return {
        "recipients": s.recipients,
        "pending": s.pending,
        "skipped": s.skipped,
        "sent": s.sent,
        "delivered": s.delivered,
        "failed": s.failed,
        "opened": s.opened,
        "clicked": s.clicked,
        "replied": s.replied,
        "unsubscribed": s.unsubscribed,
        "bounced": s.bounced,
    }


async def location_actor(container: Container, location_id: uuid.UUID) -> Actor:
    """The operator inside one location; an unknown location is a clear not-found here."""
    location = await container.tenancy().get_location(Actor.operator(), location_id)
    return Actor.operator_at(location.id)


def _content(
    channel: str | None, subject: str | None, body: str | None, html_file: Path | None
) -> dict[str, Any]:
    data: dict[str, Any] = {"channel": channel} if channel is not None else {}
    if subject is not None:
        data["subject"] = subject
    if body is not None:
        data["body"] = body
    if html_file is not None:
        data["html"] = html_file.read_text(encoding="utf-8")
    return data


# ---------------------------------------------------------------------------------------------- templates


@templates_app.command("list")
def list_templates(
    location: LocationOption,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """A location's templates, newest first."""

    async def work(c: Container) -> Page[MessageTemplate]:
        return await c.templates().list(await location_actor(c, location), page_request(limit, cursor))

    show_page(json_output, "Templates", TEMPLATE_COLUMNS, work, template_view)


@templates_app.command("create")
def create_template(
    location: LocationOption,
    name: Annotated[str, typer.Option("--name", help="What operators see in lists.")],
    channel: ChannelOption,
    subject: SubjectOption = None,
    body: BodyOption = None,
    html_file: HtmlOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a template; bad syntax is refused with the field and line."""
    output = Output(json=json_output)
    data = {"name": name, **_content(channel, subject, body, html_file)}

    async def work(c: Container) -> MessageTemplate:
        return await c.templates().create(await location_actor(c, location), data)

    with reported(output):
        template = with_services(output, work)
    output.record("Template created", template_view(template))


@templates_app.command("show")
def show_template(
    template_id: TemplateArgument, location: LocationOption, json_output: JsonOption = False
) -> None:
    """One template."""
    output = Output(json=json_output)

    async def work(c: Container) -> MessageTemplate:
        return await c.templates().get(await location_actor(c, location), template_id)

    with reported(output):
        template = with_services(output, work)
    output.record("Template", template_view(template))


@templates_app.command("delete")
def delete_template(
    template_id: TemplateArgument, location: LocationOption, json_output: JsonOption = False
) -> None:
    """Delete a template (campaigns made from it keep their copy)."""
    output = Output(json=json_output)

    async def work(c: Container) -> None:
        await c.templates().delete(await location_actor(c, location), template_id)

    with reported(output):
        with_services(output, work)
    output.record("Template deleted", {"id": str(template_id), "deleted": True})


# ---------------------------------------------------------------------------------------------- campaigns


@app.command("list")
def list_campaigns(
    location: LocationOption,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """A location's campaigns, newest first."""

    async def work(c: Container) -> Page[Campaign]:
        return await c.campaigns().list(await location_actor(c, location), page_request(limit, cursor))

    show_page(json_output, "Campaigns", CAMPAIGN_COLUMNS, work, campaign_view)


@app.command("create")
def create_campaign(
    location: LocationOption,
    name: Annotated[str, typer.Option("--name", help="What operators see in lists.")],
    channel: ChannelOption,
    template: Annotated[
        uuid.UUID | None, typer.Option("--template", help="Copy subject and body from this template.")
    ] = None,
    subject: SubjectOption = None,
    body: BodyOption = None,
    html_file: HtmlOption = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Contacts with this tag (repeatable: all of them).")
    ] = None,
    query: Annotated[str | None, typer.Option("--query", help="Contacts matching these words.")] = None,
    smart_list: Annotated[
        uuid.UUID | None, typer.Option("--smart-list", help="The contacts of this smart list.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a draft campaign. With no --tag, --query or --smart-list the audience is every contact."""
    output = Output(json=json_output)
    data: dict[str, Any] = {"name": name, **_content(channel, subject, body, html_file)}
    if template is not None:
        data["template_id"] = str(template)
    audience: dict[str, Any] = {}
    if tags:
        audience["tags"] = tags
    if query:
        audience["query"] = query
    if smart_list is not None:
        audience["smart_list_id"] = str(smart_list)
    data["audience"] = audience

    async def work(c: Container) -> Campaign:
        return await c.campaigns().create(await location_actor(c, location), data)

    with reported(output):
        campaign = with_services(output, work)
    output.record("Campaign created", campaign_view(campaign))


@app.command("show")
def show_campaign(
    campaign_id: CampaignArgument, location: LocationOption, json_output: JsonOption = False
) -> None:
    """One campaign."""
    output = Output(json=json_output)

    async def work(c: Container) -> Campaign:
        return await c.campaigns().get(await location_actor(c, location), campaign_id)

    with reported(output):
        campaign = with_services(output, work)
    output.record("Campaign", campaign_view(campaign))


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            "bad_usage", f"--at {value!r} is not ISO 8601, e.g. 2030-05-01T09:00:00-05:00"
        ) from None


async def _follow(
    container: Container,
    actor: Actor,
    campaign_id: uuid.UUID,
    output: Output,
    give_up_after: float,
    interval: float,
) -> tuple[Campaign, CampaignStats]:
    """Polls the campaign until it completes, is paused or cancelled, or `give_up_after` seconds pass;
    a progress bar of handled recipients for people."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    service = container.campaigns()
    deadline = time.monotonic() + give_up_after
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sent {task.fields[sent]}, skipped {task.fields[skipped]}, failed {task.fields[failed]}"),
        TimeElapsedColumn(),
        console=output.err,
        disable=output.json,
    )
    with progress:
        task = progress.add_task("Sending", total=None, sent=0, skipped=0, failed=0)
        while True:
            campaign = await service.get(actor, campaign_id)
            stats = await service.stats(actor, campaign_id)
            handled = stats.recipients - stats.pending
            progress.update(
                task,
                total=stats.recipients or None,
                completed=handled,
                description=campaign.status.value.capitalize(),
                sent=stats.sent,
                skipped=stats.skipped,
                failed=stats.failed,
            )
            if campaign.status in FINISHED or campaign.status is CampaignStatus.PAUSED:
                return campaign, stats
            if time.monotonic() > deadline:
                raise CliError(
                    "timeout",
                    f"still {campaign.status.value} after {give_up_after:g}s: is a worker running "
                    "(`ghl worker`, or `ghl serve`)? `ghl campaigns stats` shows where it is.",
                )
            await asyncio.sleep(interval)


@app.command("send")
def send_campaign(
    campaign_id: CampaignArgument,
    location: LocationOption,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Schedule for this time (ISO 8601 with an offset) instead of now."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help=(
                "Stay and show progress (sent of recipients) until the campaign completes. The sending is "
                "done by the platform's worker: use this only while `ghl worker` (or `ghl serve`) runs."
            ),
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="With --wait: give up after this many seconds.")
    ] = 3600.0,
    poll: Annotated[
        float, typer.Option("--poll", min=0.1, help="With --wait: seconds between progress checks.")
    ] = 1.0,
    json_output: JsonOption = False,
) -> None:
    """Start sending now, or schedule it with --at. The worker sends at the location's pace."""
    output = Output(json=json_output)

    async def work(c: Container) -> dict[str, Any]:
        actor = await location_actor(c, location)
        campaign = await c.campaigns().send(actor, campaign_id, _parse_at(at))
        if not wait or campaign.status is CampaignStatus.SCHEDULED:
            return campaign_view(campaign)
        campaign, stats = await _follow(c, actor, campaign_id, output, timeout, poll)
        return {**campaign_view(campaign), "stats": stats_view(stats)}

    with reported(output):
        view = with_services(output, work)
    if wait and not output.json and view["status"] == CampaignStatus.SCHEDULED.value:
        output.note("Scheduled: nothing to wait for before then.")
    output.record(f"Campaign {view['status']}", view)


def _move(action: str, campaign_id: uuid.UUID, location: uuid.UUID, json_output: bool) -> None:
    output = Output(json=json_output)

    async def work(c: Container) -> Campaign:
        service = c.campaigns()
        actor = await location_actor(c, location)
        moves = {"pause": service.pause, "resume": service.resume, "cancel": service.cancel}
        return await moves[action](actor, campaign_id)

    with reported(output):
        campaign = with_services(output, work)
    output.record(f"Campaign {campaign.status.value}", campaign_view(campaign))


@app.command("pause")
def pause(campaign_id: CampaignArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """Stop after the batch under way; `resume` goes on from there."""
    _move("pause", campaign_id, location, json_output)


@app.command("resume")
def resume(campaign_id: CampaignArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """Go on sending a paused campaign."""
    _move("resume", campaign_id, location, json_output)


@app.command("cancel")
def cancel(campaign_id: CampaignArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """Stop for good: recipients not yet reached get nothing."""
    _move("cancel", campaign_id, location, json_output)


@app.command("stats")
def stats(campaign_id: CampaignArgument, location: LocationOption, json_output: JsonOption = False) -> None:
    """Recipients, sends, deliveries, opens, clicks, replies, unsubscribes and bounces."""
    output = Output(json=json_output)

    async def work(c: Container) -> CampaignStats:
        return await c.campaigns().stats(await location_actor(c, location), campaign_id)

    with reported(output):
        numbers = with_services(output, work)
    output.record("Campaign statistics", stats_view(numbers))
