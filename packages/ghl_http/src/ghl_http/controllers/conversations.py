"""Conversations over HTTP: the inbox (/api/v1/conversations), sending (/api/v1/contacts/{id}/messages),
the local outbox, the messaging setup (/api/v1/messaging), and the unauthenticated URLs providers call:
Twilio's and SendGrid's callbacks (verified with each provider's own signature) and the one-click
unsubscribe link of marketing email."""

from __future__ import annotations

import html
import uuid
from typing import Annotated, Any
from urllib.parse import parse_qs

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ghl_adapters.inbound.wiring import TWILIO
from ghl_adapters.messaging.sendgrid import INBOUND_PROVIDER as SENDGRID_INBOUND
from ghl_adapters.messaging.sendgrid import PROVIDER as SENDGRID
from ghl_adapters.messaging.twilio import twiml_empty
from ghl_core.conversations.callbacks import SENDGRID_CALLBACK_PATH, TWILIO_CALLBACK_PATH
from ghl_core.conversations.inbox import InboxService
from ghl_core.conversations.models import Channel
from ghl_core.conversations.ports import InboxFilter, InboxOrder
from ghl_core.conversations.providers import ProviderKind
from ghl_core.conversations.sending import SendingService
from ghl_core.conversations.setup import MessagingSetupService
from ghl_core.inbound.models import CLIENT_LIMIT
from ghl_core.shared.errors import NotFound, ValidationFailed
from ghl_core.shared.pagination import PageRequest
from ghl_core.tenancy.permissions import Actor
from ghl_http.deps import container_of
from ghl_http.receiving import Receiver, client_address, limit, receive_problems, receive_signed
from ghl_http.schemas import ListOf, page_of
from ghl_http.schemas_conversations import (
    UNSUBSCRIBE_PATH,
    AssignIn,
    ConversationOut,
    MessageOut,
    MessagingSettingsOut,
    MessagingSettingsPatch,
    OutboxOut,
    ProviderIn,
    ProviderOut,
    SendIn,
)
from ghl_http.schemas_inbound import ReceiptOut

TWIML = "text/xml"
ONE_CLICK = "One-Click"


def provide_inbox(state: State) -> InboxService:
    return container_of(state).inbox()


def provide_sending(state: State) -> SendingService:
    return container_of(state).message_sending()


def provide_messaging_setup(state: State) -> MessagingSetupService:
    return container_of(state).messaging_setup()


def provide_base_url(state: State) -> str:
    return container_of(state).settings().base_url


DEPENDENCIES = {
    "inbox": Provide(provide_inbox, sync_to_thread=False),
    "sending": Provide(provide_sending, sync_to_thread=False),
    "messaging_setup": Provide(provide_messaging_setup, sync_to_thread=False),
    "base_url": Provide(provide_base_url, sync_to_thread=False),
}


class ConversationsController(Controller):
    path = "/conversations"
    tags = ["conversations"]
    dependencies = DEPENDENCIES

    @get("/", summary="The inbox: conversations with the newest activity first")
    async def list_conversations(
        self,
        actor: NamedDependency[Actor],
        inbox: NamedDependency[InboxService],
        page: NamedDependency[PageRequest],
        order: Annotated[
            InboxOrder, QueryParameter(description="newest, or unread_first (unread ones, then the rest)")
        ] = InboxOrder.NEWEST,
        channel: Annotated[Channel | None, QueryParameter(description="sms or email")] = None,
        assigned_user_id: Annotated[
            uuid.UUID | None, QueryParameter(description="Only those assigned to this user")
        ] = None,
        unread: Annotated[bool | None, QueryParameter(description="true: unread only; false: read")] = None,
        contact_id: Annotated[uuid.UUID | None, QueryParameter(description="One contact's")] = None,
    ) -> ListOf[ConversationOut]:
        flt = InboxFilter(
            channel=channel,
            assigned_user_id=assigned_user_id,
            unread=unread,
            contact_id=contact_id,
            order=order,
        )
        listed = await inbox.list(actor, flt, page)
        return ListOf[ConversationOut].model_validate(page_of(listed, ConversationOut.of))

    @get("/{conversation_id:uuid}", summary="Get a conversation")
    async def get_conversation(
        self,
        conversation_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        inbox: NamedDependency[InboxService],
    ) -> ConversationOut:
        return ConversationOut.of(await inbox.get(actor, conversation_id))

    @get("/{conversation_id:uuid}/messages", summary="A conversation's messages, newest first")
    async def thread(
        self,
        conversation_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        inbox: NamedDependency[InboxService],
        page: NamedDependency[PageRequest],
    ) -> ListOf[MessageOut]:
        listed = await inbox.thread(actor, conversation_id, page)
        return ListOf[MessageOut].model_validate(page_of(listed, MessageOut.of))

    @post("/{conversation_id:uuid}/read", status_code=HTTP_200_OK, summary="Mark a conversation read")
    async def mark_read(
        self,
        conversation_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        inbox: NamedDependency[InboxService],
    ) -> ConversationOut:
        return ConversationOut.of(await inbox.mark(actor, conversation_id, read=True))

    @post("/{conversation_id:uuid}/unread", status_code=HTTP_200_OK, summary="Mark a conversation unread")
    async def mark_unread(
        self,
        conversation_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        inbox: NamedDependency[InboxService],
    ) -> ConversationOut:
        return ConversationOut.of(await inbox.mark(actor, conversation_id, read=False))

    @patch("/{conversation_id:uuid}", summary="Assign a conversation to a user (null unassigns)")
    async def assign(
        self,
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[AssignIn],
        actor: NamedDependency[Actor],
        inbox: NamedDependency[InboxService],
    ) -> ConversationOut:
        return ConversationOut.of(await inbox.assign(actor, conversation_id, data.assigned_user_id))


class ContactMessagesController(Controller):
    path = "/contacts/{contact_id:uuid}/messages"
    tags = ["conversations"]
    dependencies = DEPENDENCIES

    @post(
        "/",
        summary="Send an SMS or an email to a contact, now or at send_at",
        description=(
            "201: queued (or scheduled); a send job hands it to the location's provider. 200: a message "
            "with the same `cause` exists, and is returned instead. 409 contact_dnd: the contact has "
            "do-not-disturb on for the channel. 422 no_address: no phone (SMS) or email on the contact. "
            "429 daily_message_limit: the location's plan's messages for today are spent (Retry-After: "
            "until its next midnight)."
        ),
    )
    async def send(
        self,
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[SendIn],
        actor: NamedDependency[Actor],
        sending: NamedDependency[SendingService],
    ) -> Response[MessageOut]:
        message, created = await sending.send(actor, contact_id, data.model_dump(exclude_none=True))
        return Response(MessageOut.of(message), status_code=HTTP_201_CREATED if created else HTTP_200_OK)


class MessagesController(Controller):
    path = "/messages"
    tags = ["conversations"]
    dependencies = DEPENDENCIES

    @get("/{message_id:uuid}", summary="Get a message and its delivery status")
    async def get_message(
        self,
        message_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        inbox: NamedDependency[InboxService],
    ) -> MessageOut:
        return MessageOut.of(await inbox.get_message(actor, message_id))


class OutboxController(Controller):
    path = "/outbox"
    tags = ["conversations"]
    dependencies = DEPENDENCIES

    @get("/", summary="What the local outbox took (nothing of it was sent), newest first")
    async def outbox(
        self,
        actor: NamedDependency[Actor],
        inbox: NamedDependency[InboxService],
        page: NamedDependency[PageRequest],
    ) -> OutboxOut:
        listed = await inbox.outbox(actor, page)
        return OutboxOut(items=[MessageOut.of(m) for m in listed.items], next_cursor=listed.next_cursor)


def _channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise NotFound(f"no channel {value!r}: sms or email") from None


AgencyDefault = Annotated[
    bool,
    QueryParameter(
        description="With an agency-level token: the agency's default for locations without their own"
    ),
]


class MessagingController(Controller):
    path = "/messaging"
    tags = ["conversations: setup"]
    dependencies = DEPENDENCIES

    @get("/providers/{channel:str}", summary="Which provider sends this channel, and its callback URLs")
    async def get_provider(
        self,
        channel: FromPath[str],
        actor: NamedDependency[Actor],
        messaging_setup: NamedDependency[MessagingSetupService],
        base_url: NamedDependency[str],
        agency_default: AgencyDefault = False,
    ) -> ProviderOut:
        view = await messaging_setup.get_provider(actor, _channel(channel), agency_default=agency_default)
        return ProviderOut.of(view, base_url, None if agency_default else actor.location_id)

    @put(
        "/providers/{channel:str}",
        summary="Set the provider of a channel; its credentials are sealed and never shown again",
    )
    async def set_provider(
        self,
        channel: FromPath[str],
        data: JSONBody[ProviderIn],
        actor: NamedDependency[Actor],
        messaging_setup: NamedDependency[MessagingSetupService],
        base_url: NamedDependency[str],
        agency_default: AgencyDefault = False,
    ) -> ProviderOut:
        try:
            kind = ProviderKind(data.kind)
        except ValueError:
            raise ValidationFailed.one("/kind", "must be twilio, sendgrid or smtp") from None
        view = await messaging_setup.set_provider(
            actor, _channel(channel), kind, data.config, agency_default=agency_default
        )
        return ProviderOut.of(view, base_url, None if agency_default else actor.location_id)

    @delete(
        "/providers/{channel:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove the channel's provider: the agency default, or else the local outbox, takes over",
    )
    async def remove_provider(
        self,
        channel: FromPath[str],
        actor: NamedDependency[Actor],
        messaging_setup: NamedDependency[MessagingSetupService],
        agency_default: AgencyDefault = False,
    ) -> None:
        await messaging_setup.remove_provider(actor, _channel(channel), agency_default=agency_default)

    @get("/settings", summary="Quiet hours, keyword replies and throughput of the location")
    async def get_settings(
        self, actor: NamedDependency[Actor], messaging_setup: NamedDependency[MessagingSetupService]
    ) -> MessagingSettingsOut:
        return MessagingSettingsOut.of(await messaging_setup.get_settings(actor))

    @patch("/settings", summary="Change quiet hours, keyword replies or throughput")
    async def update_settings(
        self,
        data: JSONBody[MessagingSettingsPatch],
        actor: NamedDependency[Actor],
        messaging_setup: NamedDependency[MessagingSetupService],
    ) -> MessagingSettingsOut:
        changed = await messaging_setup.update_settings(actor, data.model_dump(exclude_unset=True))
        return MessagingSettingsOut.of(changed)


async def _receive(
    request: Request[Any, Any, Any],
    state: State,
    location_id: uuid.UUID,
    channel: Channel,
    provider: str,
    token: str | None = None,
) -> ReceiptOut:
    """The receiving recipe (ghl_http.receiving) with the location's provider as the target."""
    container = container_of(state)
    receipt = await receive_signed(
        Receiver.of(container),
        request,
        target=lambda: container.message_reports().callback_target(location_id, channel, provider, token),
        target_key=f"inbound:{provider}:{location_id}",
    )
    return ReceiptOut.of(receipt)


class ProviderCallbacksController(Controller):
    path = "/webhooks"
    tags = ["conversations: provider callbacks"]
    exception_handlers = receive_problems()

    @post(
        f"{TWILIO_CALLBACK_PATH.removeprefix('/webhooks')}/{{location_id:uuid}}",
        summary="Twilio: incoming messages and status callbacks (signed with X-Twilio-Signature)",
        description=(
            "Answers an empty TwiML <Response/> (a redelivery answers the same and stores nothing). 401: "
            "the signature does not match the public URL and form; 404: no Twilio account is configured "
            "for this location; 413: the body is too large."
        ),
        status_code=HTTP_200_OK,
        security=[{}],
        request_max_body_size=None,  # the receiver enforces GHL_MAX_BODY_BYTES, with its own problem
    )
    async def twilio(
        self, location_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], state: State
    ) -> Response[str]:
        await _receive(request, state, location_id, Channel.SMS, TWILIO)
        return Response(twiml_empty(), status_code=HTTP_200_OK, media_type=TWIML)

    @post(
        f"{SENDGRID_CALLBACK_PATH.removeprefix('/webhooks')}/{{location_id:uuid}}/events",
        summary="SendGrid Event Webhook (signed: ECDSA with the account's verification key)",
        status_code=HTTP_200_OK,
        security=[{}],
        request_max_body_size=None,
    )
    async def sendgrid_events(
        self, location_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], state: State
    ) -> ReceiptOut:
        return await _receive(request, state, location_id, Channel.EMAIL, SENDGRID)

    @post(
        f"{SENDGRID_CALLBACK_PATH.removeprefix('/webhooks')}/{{location_id:uuid}}/inbound/{{token:str}}",
        summary="SendGrid Inbound Parse: replies by email (signed by the Parse security policy)",
        status_code=HTTP_200_OK,
        security=[{}],
        request_max_body_size=None,
    )
    async def sendgrid_inbound(
        self,
        location_id: FromPath[uuid.UUID],
        token: FromPath[str],
        request: Request[Any, Any, Any],
        state: State,
    ) -> ReceiptOut:
        return await _receive(request, state, location_id, Channel.EMAIL, SENDGRID_INBOUND, token)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">
<h1 style="font-size:1.4rem">{title}</h1>{content}</body></html>
"""


def _page(title: str, content: str, status: int = HTTP_200_OK) -> Response[str]:
    return Response(
        _PAGE.format(title=html.escape(title), content=content),
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


class UnsubscribeController(Controller):
    """The link in a marketing email's List-Unsubscribe header and footer. A GET only shows a button
    (mail scanners follow links; a click must not unsubscribe anybody); the POST unsubscribes, as
    RFC 8058 one-click asks: a mail client posts `List-Unsubscribe=One-Click` to the same URL."""

    path = UNSUBSCRIBE_PATH
    tags = ["conversations: unsubscribe"]

    @get("/{token:str}", summary="The unsubscribe page: a button that confirms", security=[{}])
    async def confirm_page(
        self, token: FromPath[str], request: Request[Any, Any, Any], state: State
    ) -> Response[str]:
        container = container_of(state)
        await limit(container.rate_limiter(), f"unsubscribe:ip:{client_address(request)}", CLIENT_LIMIT)
        container.link_signer().read_unsubscribe(token)  # a forged link is not found
        form = (
            "<p>Stop receiving marketing email from us at this address?</p>"
            f'<form method="post" action="{html.escape(UNSUBSCRIBE_PATH + "/" + token)}">'
            f'<input type="hidden" name="List-Unsubscribe" value="{ONE_CLICK}">'
            '<button type="submit">Unsubscribe</button></form>'
        )
        return _page("Unsubscribe", form)

    @post(
        "/{token:str}",
        summary="One-click unsubscribe (RFC 8058): the contact's email do-not-disturb is set",
        status_code=HTTP_200_OK,
        security=[{}],
    )
    async def unsubscribe(
        self, token: FromPath[str], request: Request[Any, Any, Any], state: State
    ) -> Response[str]:
        container = container_of(state)
        await limit(container.rate_limiter(), f"unsubscribe:ip:{client_address(request)}", CLIENT_LIMIT)
        form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        if ONE_CLICK not in form.get("List-Unsubscribe", []):
            raise ValidationFailed.one("/List-Unsubscribe", f"must be {ONE_CLICK} (RFC 8058)")
        await container.message_reports().unsubscribe(token)
        return _page("Unsubscribed", "<p>You will receive no more marketing email from us.</p>")
