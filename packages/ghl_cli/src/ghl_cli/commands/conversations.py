"""`ghl conversations`, `ghl outbox` and `ghl providers`: a location's inbox and sending, what the local
outbox took, and which provider sends each channel (credentials sealed with GHL_SECRET_KEY; `rekey`
re-seals them after the key changes). Credentials are never printed back."""

from __future__ import annotations

import os
import sys
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
from ghl_core.conversations.callbacks import callback_urls
from ghl_core.conversations.models import Channel, Conversation, Message
from ghl_core.conversations.ports import InboxFilter, InboxOrder
from ghl_core.conversations.providers import ProviderKind
from ghl_core.shared.errors import ValidationFailed
from ghl_core.shared.pagination import Page
from ghl_core.tenancy.permissions import Actor, ActorKind, Permission

if TYPE_CHECKING:
    from ghl_adapters.container import Container
    from ghl_core.conversations.setup import ProviderView

app = typer.Typer(help="A location's conversations: list them, read one, send an SMS or an email.")
providers_app = typer.Typer(help="Which provider sends SMS and email, per location or as an agency default.")

CONVERSATION_COLUMNS = (
    "id",
    "contact_id",
    "channel",
    "unread_count",
    "last_message_at",
    "last_message_preview",
)
MESSAGE_COLUMNS = ("id", "direction", "status", "provider", "subject", "body", "created_at")
OUTBOX_COLUMNS = ("id", "location_id", "channel", "recipient", "subject", "body", "sent_at")
OUTBOX_NOTE = "Taken by the local outbox: nothing was sent to anyone."
OptionalLocation = Annotated[uuid.UUID | None, typer.Option("--location", help="The location's id.")]
AgencyDefaultOption = Annotated[
    uuid.UUID | None,
    typer.Option("--agency", help="Set the agency's default (for its locations without their own)."),
]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def conversation_view(c: Conversation) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "contact_id": str(c.contact_id),
        "channel": c.channel.value,
        "assigned_user_id": str(c.assigned_user_id) if c.assigned_user_id else None,
        "unread_count": c.unread_count,
        "last_message_at": _time(c.last_message_at),
        "last_message_preview": c.last_message_preview,
        "last_direction": c.last_direction.value if c.last_direction else None,
    }


def message_view(m: Message) -> dict[str, Any]:
    return {
        "id": str(m.id),
        "location_id": str(m.location_id),
        "conversation_id": str(m.conversation_id),
        "contact_id": str(m.contact_id),
        "channel": m.channel.value,
        "direction": m.direction.value,
        "status": m.status.value,
        "provider": m.provider,
        "provider_message_id": m.provider_message_id,
        "sender": m.sender,
        "recipient": m.recipient,
        "subject": m.subject,
        "body": m.body,
        "html": m.html,
        "marketing": m.marketing,
        "error_code": m.error_code,
        "error_message": m.error_message,
        "send_at": _time(m.send_at),
        "sent_at": _time(m.sent_at),
        "created_at": _time(m.created_at),
    }


def provider_view(view: ProviderView, base_url: str, location_id: uuid.UUID | None) -> dict[str, Any]:
    """`base_url`: the settings' (GHL_PUBLIC_URL, else where `ghl serve` listens), as the API's."""
    where = str(location_id) if location_id else "{location_id}"
    urls = callback_urls(base_url, where, view.kind, view.inbound_token)
    note = "local outbox: nothing is sent" if view.kind is ProviderKind.OUTBOX else None
    return {
        "channel": view.channel.value,
        "kind": view.kind.value,
        "agency_default": view.agency_default,
        "summary": view.summary,
        "callback_urls": urls,
        "note": note,
    }


async def location_actor(container: Container, location_id: uuid.UUID) -> Actor:
    """The operator inside one location; an unknown location is a clear not-found here."""
    location = await container.tenancy().get_location(Actor.operator(), location_id)
    return Actor.operator_at(location.id)


def agency_actor(agency_id: uuid.UUID) -> Actor:
    """The operator acting for one agency (its default providers)."""
    return Actor(ActorKind.OPERATOR, None, agency_id, scopes=frozenset(Permission), credential_id="operator")


async def _owner(container: Container, location: uuid.UUID | None, agency: uuid.UUID | None) -> Actor:
    if (location is None) == (agency is None):
        raise CliError("bad_usage", "name exactly one of --location ID or --agency ID")
    if location is not None:
        return await location_actor(container, location)
    assert agency is not None  # noqa: S101 - checked just above
    return agency_actor(agency)


# ---------------------------------------------------------------------------------- conversations


@app.command("list")
def list_(
    location: LocationOption,
    channel: Annotated[Channel | None, typer.Option("--channel", help="sms or email.")] = None,
    unread: Annotated[
        bool, typer.Option("--unread", help="Only conversations with unread messages.")
    ] = False,
    order: Annotated[InboxOrder, typer.Option("--order", help="newest or unread_first.")] = InboxOrder.NEWEST,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a location's conversations, newest activity first."""
    flt = InboxFilter(channel=channel, unread=True if unread else None, order=order)

    async def work(c: Container) -> Page[Conversation]:
        return await c.inbox().list(await location_actor(c, location), flt, page_request(limit, cursor))

    show_page(json_output, "Conversations", CONVERSATION_COLUMNS, work, conversation_view)


@app.command("show")
def show(
    conversation_id: Annotated[uuid.UUID, typer.Argument(help="The conversation's id.")],
    location: LocationOption,
    limit: LimitOption = DEFAULT_PAGE,
    json_output: JsonOption = False,
) -> None:
    """Show a conversation and its latest messages (newest first)."""
    output = Output(json=json_output)

    async def work(c: Container) -> dict[str, Any]:
        actor = await location_actor(c, location)
        conversation = await c.inbox().get(actor, conversation_id)
        thread = await c.inbox().thread(actor, conversation_id, page_request(limit, None))
        return {**conversation_view(conversation), "messages": [message_view(m) for m in thread.items]}

    with reported(output):
        doc = with_services(output, work)
    if output.json:
        output.document(doc)
        return
    messages = doc.pop("messages")
    output.record("Conversation", doc)
    output.table("Messages", MESSAGE_COLUMNS, messages)


@app.command("send")
def send(
    location: LocationOption,
    contact: Annotated[uuid.UUID, typer.Option("--contact", help="The contact's id.")],
    sms: Annotated[str | None, typer.Option("--sms", help="Send this text as an SMS.")] = None,
    email: Annotated[
        bool, typer.Option("--email", help="Send an email (with --subject and --body).")
    ] = False,
    subject: Annotated[str | None, typer.Option("--subject", help="The email's subject.")] = None,
    body: Annotated[str | None, typer.Option("--body", help="The email's text.")] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="A file with the email's HTML.", exists=True, dir_okay=False)
    ] = None,
    at: Annotated[
        datetime | None, typer.Option("--at", help="Send at this time (ISO 8601 with offset).")
    ] = None,
    marketing: Annotated[
        bool,
        typer.Option("--marketing", help="Marketing: waits out quiet hours (SMS), unsubscribe link (email)."),
    ] = False,
    cause: Annotated[
        str | None, typer.Option("--cause", help="A key: repeating it sends nothing more.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Queue an SMS or an email to a contact; a job hands it to the location's provider."""
    output = Output(json=json_output)
    data: dict[str, Any]
    with reported(output):
        if (sms is None) == (not email):
            raise CliError("bad_usage", 'pass either --sms "text" or --email --subject S --body B')
        if sms is not None:
            data = {"channel": "sms", "body": sms}
        else:
            data = {"channel": "email", "subject": subject, "body": body or ""}
            if html_file is not None:
                data["html"] = html_file.read_text(encoding="utf-8")
        if at is not None:
            data["send_at"] = at
        if marketing:
            data["marketing"] = True
        if cause:
            data["cause"] = cause

        async def work(c: Container) -> tuple[Message, bool]:
            return await c.message_sending().send(await location_actor(c, location), contact, data)

        message, created = with_services(output, work)
    output.record(
        "Message queued" if created else "Message already sent for this cause", message_view(message)
    )


def outbox(
    location: OptionalLocation = None,
    limit: LimitOption = DEFAULT_PAGE,
    cursor: CursorOption = None,
    json_output: JsonOption = False,
) -> None:
    """What the local outbox took, with the bodies: nothing of it was sent. Every location's, or one's."""
    output = Output(json=json_output)

    async def work(c: Container) -> tuple[list[dict[str, Any]], str | None]:
        if location is not None:
            page = await c.inbox().outbox(await location_actor(c, location), page_request(limit, cursor))
            return [message_view(m) for m in page.items], page.next_cursor
        rows: list[dict[str, Any]] = []
        after: str | None = None
        while True:  # every location's newest, merged: an operator's overview on one machine
            locations = await c.tenancy().list_locations(Actor.operator(), page_request(100, after))
            for loc in locations.items:
                taken = await c.inbox().outbox(Actor.operator_at(loc.id), page_request(limit, None))
                rows += [message_view(m) for m in taken.items]
            if locations.next_cursor is None:
                break
            after = locations.next_cursor
        rows.sort(key=lambda r: r["sent_at"] or "", reverse=True)
        return rows[:limit], None

    with reported(output):
        rows, next_cursor = with_services(output, work)
    if output.json:
        output.document(
            {"provider": "outbox", "note": OUTBOX_NOTE, "items": rows, "next_cursor": next_cursor}
        )
        return
    output.note(f"[dim]{OUTBOX_NOTE}[/dim]")
    output.page("Outbox", OUTBOX_COLUMNS, rows, next_cursor)


# ---------------------------------------------------------------------------------- providers


def _config(kind: ProviderKind, options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None and k in _FIELDS[kind]}


_FIELDS = {
    ProviderKind.TWILIO: {"account_sid", "auth_token", "from_number", "messaging_service_sid"},
    ProviderKind.SENDGRID: {
        "api_key",
        "from_email",
        "from_name",
        "event_webhook_public_key",
        "inbound_parse_public_key",
    },
    ProviderKind.SMTP: {"host", "port", "from_email", "from_name", "username", "password", "security"},
}


_SECRET_LABELS = {
    ProviderKind.TWILIO: "Twilio auth token",
    ProviderKind.SENDGRID: "SendGrid API key",
    ProviderKind.SMTP: "SMTP password",
}


def read_secret(kind: ProviderKind, env_name: str | None, *, from_stdin: bool, needed: bool) -> str | None:
    """A provider's secret, from the environment variable named, stdin's first line (`printf '%s\\n'
    "$TOKEN" | ghl providers set ... --secret-stdin`, or a file), or a hidden prompt when it is needed."""
    if env_name is not None:
        value = os.environ.get(env_name)
        if not value:
            raise CliError("missing_secret", f"the environment variable {env_name} is not set")
        return value
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise CliError("missing_secret", "--secret-stdin: the first line of stdin is empty")
        return value
    if not needed:
        return None
    secret: str = typer.prompt(_SECRET_LABELS.get(kind, "Secret"), hide_input=True, err=True)
    return secret


@providers_app.command("set")
def set_provider(
    channel: Annotated[Channel, typer.Argument(help="sms or email.")],
    kind: Annotated[ProviderKind, typer.Argument(help="twilio (sms); sendgrid or smtp (email).")],
    location: OptionalLocation = None,
    agency: AgencyDefaultOption = None,
    account_sid: Annotated[str | None, typer.Option("--account-sid", help="Twilio account SID.")] = None,
    auth_token_env: Annotated[
        str | None,
        typer.Option("--auth-token-env", help="The environment variable holding the Twilio auth token."),
    ] = None,
    from_number: Annotated[str | None, typer.Option("--from", help="Twilio sender number (E.164).")] = None,
    messaging_service_sid: Annotated[
        str | None,
        typer.Option("--messaging-service-sid", help="Twilio messaging service (instead of --from)."),
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option("--api-key-env", help="The environment variable holding the SendGrid API key."),
    ] = None,
    from_email: Annotated[str | None, typer.Option("--from-email", help="The sender address.")] = None,
    from_name: Annotated[str | None, typer.Option("--from-name", help="The sender name.")] = None,
    event_key: Annotated[
        str | None, typer.Option("--event-webhook-key", help="SendGrid Event Webhook verification key.")
    ] = None,
    parse_key: Annotated[
        str | None, typer.Option("--inbound-parse-key", help="SendGrid Inbound Parse security policy key.")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="SMTP server.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="SMTP port.")] = None,
    username: Annotated[str | None, typer.Option("--username", help="SMTP user name.")] = None,
    password_env: Annotated[
        str | None, typer.Option("--password-env", help="The environment variable holding the SMTP password.")
    ] = None,
    security: Annotated[
        str | None, typer.Option("--security", help="starttls (default), tls or none.")
    ] = None,
    secret_stdin: Annotated[
        bool,
        typer.Option(
            "--secret-stdin",
            help="Read the secret (auth token, API key or SMTP password) from the first line of stdin.",
        ),
    ] = False,
    auth_token: Annotated[str | None, typer.Option("--auth-token", hidden=True)] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", hidden=True)] = None,
    json_output: JsonOption = False,
) -> None:
    """Set the provider of a channel for a location (--location) or as an agency default (--agency).

    The secret (Twilio auth token, SendGrid API key, SMTP password) is read from the variable named by
    --auth-token-env, --api-key-env or --password-env, from stdin with --secret-stdin, or else asked
    for (hidden); never from an option value, which the process list and shell history would keep."""
    output = Output(json=json_output)
    with reported(output):
        if auth_token is not None or api_key is not None:
            option = "--auth-token" if auth_token is not None else "--api-key"
            raise CliError(
                "unsafe_secret",
                f"{option} would leave the secret in the process list and shell history: name the "
                f"environment variable holding it ({option}-env VAR), pipe it with --secret-stdin, or "
                "leave it out to be asked for it",
            )
        env_name = {ProviderKind.TWILIO: auth_token_env, ProviderKind.SENDGRID: api_key_env}.get(
            kind, password_env
        )
        secret = read_secret(
            kind, env_name, from_stdin=secret_stdin, needed=kind is not ProviderKind.SMTP or bool(username)
        )
        config = _config(
            kind,
            {
                "account_sid": account_sid,
                "auth_token": secret if kind is ProviderKind.TWILIO else None,
                "from_number": from_number,
                "messaging_service_sid": messaging_service_sid,
                "api_key": secret if kind is ProviderKind.SENDGRID else None,
                "from_email": from_email,
                "from_name": from_name,
                "event_webhook_public_key": event_key,
                "inbound_parse_public_key": parse_key,
                "host": host,
                "port": port,
                "username": username,
                "password": secret if kind is ProviderKind.SMTP else None,
                "security": security,
            },
        )

        async def work(c: Container) -> dict[str, Any]:
            actor = await _owner(c, location, agency)
            view = await c.messaging_setup().set_provider(
                actor, channel, kind, config, agency_default=agency is not None
            )
            return provider_view(view, c.settings().base_url, location)

        try:
            doc = with_services(output, work)
        except ValidationFailed as exc:
            raise _with_option_names(exc) from None
    output.record(f"{channel.value} provider set", doc)


def _with_option_names(exc: ValidationFailed) -> ValidationFailed:
    """The service names config fields; an operator needs the option that sets each."""
    options = {
        "from_number": "--from",
        "event_webhook_public_key": "--event-webhook-key",
        "inbound_parse_public_key": "--inbound-parse-key",
        "auth_token": "--auth-token-env",
        "api_key": "--api-key-env",
        "password": "--password-env",
    }
    errors = []
    for error in exc.errors:
        name = error.pointer.rsplit("/", 1)[-1]
        option = options.get(name, "--" + name.replace("_", "-"))
        detail = f"{error.detail} ({option})" if error.pointer.startswith("/config/") else error.detail
        errors.append(type(error)(error.pointer, detail))
    return ValidationFailed(errors)


@providers_app.command("show")
def show_provider(
    channel: Annotated[Channel, typer.Argument(help="sms or email.")],
    location: OptionalLocation = None,
    agency: AgencyDefaultOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show which provider sends a channel (credentials masked) and the URLs to give the provider."""
    output = Output(json=json_output)

    async def work(c: Container) -> dict[str, Any]:
        actor = await _owner(c, location, agency)
        view = await c.messaging_setup().get_provider(actor, channel, agency_default=agency is not None)
        return provider_view(view, c.settings().base_url, location)

    with reported(output):
        doc = with_services(output, work)
    output.record(f"{channel.value} provider", doc)


@providers_app.command("remove")
def remove_provider(
    channel: Annotated[Channel, typer.Argument(help="sms or email.")],
    location: OptionalLocation = None,
    agency: AgencyDefaultOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove a channel's provider: the agency default, else the local outbox, takes over."""
    output = Output(json=json_output)

    async def work(c: Container) -> None:
        actor = await _owner(c, location, agency)
        await c.messaging_setup().remove_provider(actor, channel, agency_default=agency is not None)

    with reported(output):
        with_services(output, work)
    output.record(f"{channel.value} provider removed", {"channel": channel.value, "removed": True})


@providers_app.command("rekey")
def rekey(
    old_key_env: Annotated[
        str,
        typer.Option("--old-key-env", help="The environment variable holding the previous GHL_SECRET_KEY."),
    ],
    json_output: JsonOption = False,
) -> None:
    """Re-seal every provider configuration from the old GHL_SECRET_KEY to the current one (all or none)."""
    output = Output(json=json_output)
    with reported(output):
        old_secret = os.environ.get(old_key_env)
        if not old_secret:
            raise CliError("missing_secret", f"the environment variable {old_key_env} is not set")

        async def work(c: Container) -> int:
            from ghl_adapters.identity.secretbox import AesGcmSecretBox

            try:
                return await c.messaging_setup().rotate_key(
                    AesGcmSecretBox.from_secret(old_secret), c.secret_box()
                )
            except ValueError:
                raise CliError(
                    "wrong_key",
                    f"a configuration does not open with the key in {old_key_env}: nothing changed",
                ) from None

        count = with_services(output, work)
    output.record("Provider configurations re-sealed", {"resealed": count})
