"""What providers post back: Twilio's incoming messages and status callbacks (signed here exactly as Twilio
documents, verified by the SDK's RequestValidator), SendGrid's Event Webhook and Inbound Parse (signed as
SendGrid signs, verified by the SDK's helper), and the one-click unsubscribe link of marketing email."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from test_conversations import (
    FROM_EMAIL,
    FROM_NUMBER,
    PUBLIC_URL,
    message,
    new_contact,
    new_phone,
    scalar,
    send,
    sent_to,
    use_sendgrid,
    use_twilio,
)

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_core.conversations.models import DEFAULT_HELP_TEXT, DEFAULT_START_TEXT, DEFAULT_STOP_TEXT
from http_kit import API, Tenant, assert_problem
from jobs_kit import run_jobs
from sendgrid_double import EventWebhookSigner, SendGridDouble, event, inbound_parse_fields, multipart_form
from support import make_container
from twilio_double import ACCOUNT_SID, AUTH_TOKEN, TwilioDouble, sign_twilio_request

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioDouble]:
    with TwilioDouble() as double:
        yield double


@pytest.fixture(scope="module")
def sendgrid() -> Iterator[SendGridDouble]:
    with SendGridDouble() as double:
        yield double


@pytest.fixture(scope="module")
async def container(
    settings: Settings, twilio: TwilioDouble, sendgrid: SendGridDouble
) -> AsyncIterator[Container]:
    update = {
        "twilio_api_base": twilio.base_url,
        "sendgrid_api_base": sendgrid.base_url,
        "public_url": PUBLIC_URL,
    }
    built = make_container(settings.model_copy(update=update))
    try:
        yield built
    finally:
        await close_container(built)


# ---------------------------------------------------------------------------------------------- Twilio


def incoming(from_: str, body: str, sid: str | None = None) -> dict[str, str]:
    """An incoming-message webhook's parameters, as Twilio posts them."""
    sid = sid or "SM" + secrets.token_hex(16)
    return {
        "ToCountry": "US",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": FROM_NUMBER,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "ApiVersion": "2010-04-01",
    }


def status_report(sid: str, to: str, status: str, error_code: str | None = None) -> dict[str, str]:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": FROM_NUMBER,
        "To": to,
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        params["ErrorCode"] = error_code
    return params


async def post_twilio(
    api: httpx.AsyncClient, location_id: uuid.UUID | str, params: dict[str, str], token: str = AUTH_TOKEN
) -> httpx.Response:
    path = f"/webhooks/twilio/{location_id}"
    signature = sign_twilio_request(token, f"{PUBLIC_URL}{path}", params)
    return await api.post(
        path, content=urlencode(params), headers={"Content-Type": FORM, "X-Twilio-Signature": signature}
    )


def assert_twiml(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.strip() == '<?xml version="1.0" encoding="UTF-8"?><Response />'


async def stored_events(container: Container, location_id: uuid.UUID, provider: str) -> int:
    return int(
        await scalar(
            container,
            "SELECT count(*) FROM inbound_events WHERE location_id = :l AND provider = :p",
            l=location_id,
            p=provider,
        )
    )


async def thread(api: httpx.AsyncClient, tenant: Tenant, conversation_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"{API}/conversations/{conversation_id}/messages", headers=tenant.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def contact(api: httpx.AsyncClient, tenant: Tenant, contact_id: str) -> dict[str, Any]:
    response = await api.get(f"{API}/contacts/{contact_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_incoming_sms_threads_into_the_conversation_once(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    await use_twilio(api, tenant)
    ada = await new_contact(api, tenant)
    sent = await send(api, tenant, ada["id"], channel="sms", body="Table for two?")
    await run_jobs(container)

    params = incoming(ada["phone"], "Yes, at 7")
    assert_twiml(await post_twilio(api, tenant.location_id, params))
    assert_twiml(await post_twilio(api, tenant.location_id, params))  # Twilio's redelivery
    assert await stored_events(container, tenant.location_id, "twilio") == 1
    await run_jobs(container)

    messages = await thread(api, tenant, sent["conversation_id"])
    assert [(m["direction"], m["body"]) for m in messages] == [
        ("inbound", "Yes, at 7"),
        ("outbound", "Table for two?"),
    ]
    assert messages[0]["status"] == "received"
    assert messages[0]["provider_message_id"] == params["MessageSid"]
    conversation = (
        await api.get(f"{API}/conversations/{sent['conversation_id']}", headers=tenant.headers)
    ).json()
    assert conversation["unread_count"] == 1
    assert conversation["last_direction"] == "inbound"


async def test_an_unknown_number_becomes_a_contact(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    await use_twilio(api, tenant)
    stranger = new_phone()
    assert_twiml(await post_twilio(api, tenant.location_id, incoming(stranger, "Who is this?")))
    await run_jobs(container)

    [conversation] = (await api.get(f"{API}/conversations", headers=tenant.headers)).json()["items"]
    created = await contact(api, tenant, conversation["contact_id"])
    assert created["phone"] == stranger
    assert [m["body"] for m in await thread(api, tenant, conversation["id"])] == ["Who is this?"]


async def test_a_bad_signature_is_401_and_nothing_is_stored(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, other_tenant: Tenant
) -> None:
    await use_twilio(api, tenant)
    params = incoming(new_phone(), "Hello")
    forged = await post_twilio(api, tenant.location_id, params, token="0" * 32)
    assert_problem(forged, 401, "signature_invalid")
    # Signed for another URL (another location's), replayed here.
    path = f"/webhooks/twilio/{other_tenant.location_id}"
    signature = sign_twilio_request(AUTH_TOKEN, f"{PUBLIC_URL}{path}", params)
    moved = await api.post(
        f"/webhooks/twilio/{tenant.location_id}",
        content=urlencode(params),
        headers={"Content-Type": FORM, "X-Twilio-Signature": signature},
    )
    assert_problem(moved, 401, "signature_invalid")
    unsigned = await api.post(
        f"/webhooks/twilio/{tenant.location_id}", content=urlencode(params), headers={"Content-Type": FORM}
    )
    assert_problem(unsigned, 401)
    assert await stored_events(container, tenant.location_id, "twilio") == 0

    # No Twilio configured for the location, or no such location: not found.
    assert_problem(await post_twilio(api, other_tenant.location_id, params), 404)
    assert_problem(await post_twilio(api, uuid.uuid4(), params), 404)


async def test_a_huge_callback_is_413(api: httpx.AsyncClient, tenant: Tenant, container: Container) -> None:
    await use_twilio(api, tenant)
    limit = container.settings().max_body_bytes
    response = await api.post(
        f"/webhooks/twilio/{tenant.location_id}",
        content=b"Body=" + b"x" * limit,
        headers={"Content-Type": FORM, "X-Twilio-Signature": "x"},
    )
    assert_problem(response, 413)
    assert await stored_events(container, tenant.location_id, "twilio") == 0


async def test_stop_start_and_help_are_honoured_and_answered_once(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, twilio: TwilioDouble
) -> None:
    await use_twilio(api, tenant)
    ada = await new_contact(api, tenant)

    assert_twiml(await post_twilio(api, tenant.location_id, incoming(ada["phone"], "STOP")))
    await run_jobs(container)
    assert (await contact(api, tenant, ada["id"]))["dnd_channels"].get("sms") is True
    assert [m.body for m in sent_to(twilio, ada["phone"])] == [DEFAULT_STOP_TEXT]

    assert_twiml(await post_twilio(api, tenant.location_id, incoming(ada["phone"], "stop")))
    await run_jobs(container)
    assert [m.body for m in sent_to(twilio, ada["phone"])] == [DEFAULT_STOP_TEXT]  # not confirmed twice
    refused = await api.post(
        f"{API}/contacts/{ada['id']}/messages",
        json={"channel": "sms", "body": "Sale!"},
        headers=tenant.headers,
    )
    assert_problem(refused, 409, "contact_dnd")

    assert_twiml(await post_twilio(api, tenant.location_id, incoming(ada["phone"], "START")))
    await run_jobs(container)
    assert (await contact(api, tenant, ada["id"]))["dnd_channels"].get("sms") is False
    assert_twiml(await post_twilio(api, tenant.location_id, incoming(ada["phone"], "HELP")))
    await run_jobs(container)
    assert [m.body for m in sent_to(twilio, ada["phone"])] == [
        DEFAULT_STOP_TEXT,
        DEFAULT_START_TEXT,
        DEFAULT_HELP_TEXT,
    ]
    await send(api, tenant, ada["id"], channel="sms", body="Welcome back")


async def test_status_callbacks_move_the_message_forward(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, twilio: TwilioDouble
) -> None:
    await use_twilio(api, tenant)
    ada = await new_contact(api, tenant)
    good = await send(api, tenant, ada["id"], channel="sms", body="One")
    bad = await send(api, tenant, ada["id"], channel="sms", body="Two")
    await run_jobs(container)
    sids = {m.body: m.sid for m in sent_to(twilio, ada["phone"])}

    assert_twiml(
        await post_twilio(api, tenant.location_id, status_report(sids["One"], ada["phone"], "delivered"))
    )
    failed = status_report(sids["Two"], ada["phone"], "failed", error_code="30008")
    assert_twiml(await post_twilio(api, tenant.location_id, failed))
    # A late "sent" after "delivered" does not move it back.
    assert_twiml(await post_twilio(api, tenant.location_id, status_report(sids["One"], ada["phone"], "sent")))
    await run_jobs(container)

    delivered = await message(api, tenant, good["id"])
    assert delivered["status"] == "delivered"
    assert delivered["delivered_at"] is not None
    undelivered = await message(api, tenant, bad["id"])
    assert undelivered["status"] == "failed"
    assert undelivered["error_code"] == "30008"


async def twilio_event(container: Container, location_id: uuid.UUID) -> dict[str, Any]:
    async with container.engines().owner.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT status, attempts, last_error, processed_at FROM inbound_events "
                    "WHERE location_id = :l AND provider = 'twilio'"
                ),
                {"l": location_id},
            )
        ).one()
    return dict(row._mapping)


async def inbound_jobs_waiting(container: Container, location_id: uuid.UUID) -> int:
    async with container.engines().owner.connect() as conn:
        return int(
            (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'inbound.process' "
                        "AND status = 'todo' AND args->>'event_id' IN "
                        "(SELECT id::text FROM inbound_events WHERE location_id = :l)"
                    ),
                    {"l": location_id},
                )
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("status", "reason"),
    [(None, "without MessageStatus or SmsStatus"), ("teleported", "unknown Twilio message status")],
)
async def test_a_signed_status_callback_it_cannot_use_is_answered_and_set_aside_at_once(
    api: httpx.AsyncClient,
    tenant: Tenant,
    container: Container,
    twilio: TwilioDouble,
    status: str | None,
    reason: str,
) -> None:
    """Twilio signed it, so it is stored and answered 200 (Twilio stops); it is recorded as unusable on
    its first run rather than failing and being retried for hours."""
    await use_twilio(api, tenant)
    ada = await new_contact(api, tenant)
    sent = await send(api, tenant, ada["id"], channel="sms", body="One")
    await run_jobs(container)
    [twilio_message] = sent_to(twilio, ada["phone"])
    params = status_report(twilio_message.sid, ada["phone"], status or "")
    if status is None:
        del params["MessageStatus"], params["SmsStatus"]

    assert_twiml(await post_twilio(api, tenant.location_id, params))
    await run_jobs(container, fast_forward=False)

    event = await twilio_event(container, tenant.location_id)
    assert (event["status"], event["attempts"]) == ("ignored", 1)
    assert event["last_error"].startswith("unusable: ")
    assert reason in event["last_error"]
    assert event["processed_at"] is not None
    assert await inbound_jobs_waiting(container, tenant.location_id) == 0
    assert (await message(api, tenant, sent["id"]))["status"] == "sent"  # unchanged
    assert_twiml(await post_twilio(api, tenant.location_id, params))  # a redelivery: the same answer


# ---------------------------------------------------------------------------------------------- SendGrid


async def post_events(
    api: httpx.AsyncClient, tenant: Tenant, signer: EventWebhookSigner, events: list[dict[str, Any]]
) -> httpx.Response:
    body = json.dumps(events).encode()
    return await api.post(
        f"/webhooks/sendgrid/{tenant.location_id}/events",
        content=body,
        headers={**signer.headers(body), "Content-Type": "application/json"},
    )


async def test_sendgrid_events_deliver_open_and_bounce(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble
) -> None:
    signer = EventWebhookSigner()
    await use_sendgrid(api, tenant, event_webhook_public_key=signer.public_key)
    ada = await new_contact(api, tenant)
    bea = await new_contact(api, tenant)
    to_ada = await send(api, tenant, ada["id"], channel="email", subject="Hi", body="Hello Ada")
    to_bea = await send(api, tenant, bea["id"], channel="email", subject="Hi", body="Hello Bea")
    await run_jobs(container)
    ids = {s.to_email: s.message_id for s in sendgrid.sent}

    delivered = [event("delivered", email=ada["email"], message_id=ids[ada["email"]], key=to_ada["id"])]
    assert (await post_events(api, tenant, signer, delivered)).status_code == 200
    await run_jobs(container)
    assert (await message(api, tenant, to_ada["id"]))["status"] == "delivered"
    opened = [event("open", email=ada["email"], message_id=ids[ada["email"]], key=to_ada["id"])]
    assert (await post_events(api, tenant, signer, opened)).status_code == 200
    bounced = [
        event(
            "bounce",
            email=bea["email"],
            message_id=ids[bea["email"]],
            key=to_bea["id"],
            reason="550 5.1.1 The email account does not exist",
            type="bounce",
        )
    ]
    assert (await post_events(api, tenant, signer, bounced)).status_code == 200
    await run_jobs(container)

    read = await message(api, tenant, to_ada["id"])
    assert read["status"] == "read"
    assert read["read_at"] is not None
    bounce = await message(api, tenant, to_bea["id"])
    assert bounce["status"] == "undelivered"
    assert bounce["error_code"] == "bounce"
    assert (await contact(api, tenant, bea["id"]))["dnd_channels"].get("email") is True
    refused = await api.post(
        f"{API}/contacts/{bea['id']}/messages",
        json={"channel": "email", "subject": "Again", "body": "?"},
        headers=tenant.headers,
    )
    assert_problem(refused, 409, "contact_dnd")

    # Signed with another key: refused, nothing stored.
    before = await stored_events(container, tenant.location_id, "sendgrid")
    forged = await post_events(api, tenant, EventWebhookSigner(), delivered)
    assert_problem(forged, 401, "signature_invalid")
    assert await stored_events(container, tenant.location_id, "sendgrid") == before


async def test_an_inbound_parse_reply_threads_into_the_email_conversation(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    parse_signer = EventWebhookSigner()
    setup = await use_sendgrid(api, tenant, inbound_parse_public_key=parse_signer.public_key)
    url = setup["callback_urls"]["sendgrid_inbound_parse"]
    ada = await new_contact(api, tenant)
    sent = await send(api, tenant, ada["id"], channel="email", subject="Spring sale", body="Half price")
    await run_jobs(container)
    rfc_id = f"<{sent['id']}@{FROM_EMAIL.rpartition('@')[2]}>"

    fields, files = inbound_parse_fields(
        from_=f"Ada <{ada['email']}>",
        to=FROM_EMAIL,
        subject="Re: Spring sale",
        text="Count me in",
        message_id=f"<reply-{uuid.uuid4().hex}@example.com>",
        in_reply_to=rfc_id,
        references=[rfc_id],
        date=format_datetime(datetime.now(UTC)),
    )
    body, content_type = multipart_form(fields, files)
    path = urlsplit(url).path
    headers = {**parse_signer.headers(body), "Content-Type": content_type}
    assert (await api.post(path, content=body, headers=headers)).status_code == 200
    assert (await api.post(path, content=body, headers=headers)).status_code == 200  # redelivered
    wrong_token = path.rsplit("/", 1)[0] + "/not-the-token"
    assert_problem(await api.post(wrong_token, content=body, headers=headers), 404)
    await run_jobs(container)

    # Listed by when each was written; the reply's own Date header has whole seconds only.
    messages = await thread(api, tenant, sent["conversation_id"])
    assert sorted((m["direction"], m["subject"], m["body"]) for m in messages) == [
        ("inbound", "Re: Spring sale", "Count me in"),
        ("outbound", "Spring sale", "Half price"),
    ]


async def test_an_inbound_reply_with_a_wild_date_is_filed_when_it_came(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    parse_signer = EventWebhookSigner()
    setup = await use_sendgrid(api, tenant, inbound_parse_public_key=parse_signer.public_key)
    path = urlsplit(setup["callback_urls"]["sendgrid_inbound_parse"]).path
    ada = await new_contact(api, tenant)
    sent = await send(api, tenant, ada["id"], channel="email", subject="Spring sale", body="Half price")
    await run_jobs(container)
    for text, date in (
        ("from the future", datetime(2099, 1, 1, tzinfo=UTC)),
        ("from 1999", datetime(1999, 1, 1, tzinfo=UTC)),
    ):
        fields, files = inbound_parse_fields(
            from_=f"Ada <{ada['email']}>",
            to=FROM_EMAIL,
            subject="Re: Spring sale",
            text=text,
            message_id=f"<reply-{uuid.uuid4().hex}@example.com>",
            date=format_datetime(date),
        )
        body, content_type = multipart_form(fields, files)
        headers = {**parse_signer.headers(body), "Content-Type": content_type}
        assert (await api.post(path, content=body, headers=headers)).status_code == 200
    await run_jobs(container)
    now = datetime.now(UTC)
    replies = [m for m in await thread(api, tenant, sent["conversation_id"]) if m["direction"] == "inbound"]
    assert sorted(m["body"] for m in replies) == ["from 1999", "from the future"]
    for reply in replies:
        assert abs(datetime.fromisoformat(reply["created_at"]) - now).total_seconds() < 120, reply


async def test_one_click_unsubscribe_sets_email_dnd(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble
) -> None:
    await use_sendgrid(api, tenant)
    ada = await new_contact(api, tenant)
    await send(api, tenant, ada["id"], channel="email", subject="News", body="Our news", marketing=True)
    await run_jobs(container)
    [sent] = [s for s in sendgrid.sent if s.to_email == ada["email"]]
    link = sent.body["headers"]["List-Unsubscribe"].strip("<>")
    path = urlsplit(link).path

    page = await api.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert (await contact(api, tenant, ada["id"]))["dnd_channels"].get(
        "email"
    ) is not True  # a GET changes nothing

    assert_problem(await api.post(path, content=b"", headers={"Content-Type": FORM}), 422)
    done = await api.post(path, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": FORM})
    assert done.status_code == 200, done.text
    assert "Unsubscribed" in done.text
    assert (await contact(api, tenant, ada["id"]))["dnd_channels"].get("email") is True
    again = await api.post(path, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": FORM})
    assert again.status_code == 200

    forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    assert_problem(await api.get(forged), 404)
    assert_problem(
        await api.post(forged, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": FORM}), 404
    )


async def test_sendgrid_events_of_one_bulk_send_reach_each_recipients_message(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble
) -> None:
    """One mail send with a personalization each: both messages get the send's X-Message-Id, and events
    find their own message by the key in custom_args (by the shared id alone, only the recipient's)."""
    signer = EventWebhookSigner()
    await use_sendgrid(api, tenant, event_webhook_public_key=signer.public_key)
    ada = await new_contact(api, tenant)
    bea = await new_contact(api, tenant)
    to_ada = await send(api, tenant, ada["id"], channel="email", subject="Hi", body="Hello Ada")
    to_bea = await send(api, tenant, bea["id"], channel="email", subject="Hi", body="Hello Bea")
    ids = [uuid.UUID(to_ada["id"]), uuid.UUID(to_bea["id"])]
    await container.message_delivery().deliver_many(uuid.UUID(str(tenant.location_id)), ids)
    await run_jobs(container)
    [request] = [r for r in sendgrid.mail_sends() if len(r.body["personalizations"]) == 2]
    keys = [p["custom_args"]["ghl_key"] for p in request.body["personalizations"]]
    assert sorted(keys) == sorted(str(i) for i in ids)
    shared = (await message(api, tenant, to_ada["id"]))["provider_message_id"]
    assert (await message(api, tenant, to_bea["id"]))["provider_message_id"] == shared

    delivered = [event("delivered", email=bea["email"], message_id=shared, key=to_bea["id"])]
    assert (await post_events(api, tenant, signer, delivered)).status_code == 200
    opened = [event("open", email=ada["email"], message_id=shared)]  # no key: matched by recipient
    assert (await post_events(api, tenant, signer, opened)).status_code == 200
    stray = [event("bounce", email="someone-else@example.test", message_id=shared)]
    assert (await post_events(api, tenant, signer, stray)).status_code == 200
    await run_jobs(container)

    assert (await message(api, tenant, to_bea["id"]))["status"] == "delivered"
    assert (await message(api, tenant, to_ada["id"]))["status"] == "read"
    assert (await contact(api, tenant, ada["id"]))["dnd_channels"].get("email") is not True
    assert (await contact(api, tenant, bea["id"]))["dnd_channels"].get("email") is not True
