"""Conversations through the API: sending through the local outbox, Twilio and SendGrid (their official
SDKs pointed at local doubles that speak each provider's wire format), the rules that protect recipients
(do-not-disturb, schedules, quiet hours, one message per cause), tenancy, the inbox and validation."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from ghl_core.jobs.ports import RetryLater
from http_kit import API, Tenant, assert_problem, pointers
from jobs_kit import run_jobs
from sendgrid_double import DEFAULT_API_KEY, SendGridDouble
from support import make_container, new_user
from twilio_double import ACCOUNT_SID, AUTH_TOKEN, TwilioDouble

PUBLIC_URL = "https://crm.example.test"
FROM_NUMBER = "+14155550100"
FROM_EMAIL = "hello@acme.example"


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
    """The test container, its provider SDKs pointed at the doubles and its public URL set (providers
    sign callbacks over it)."""
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


# ---------------------------------------------------------------------------------------------- helpers


def new_phone() -> str:
    return f"+1312{secrets.randbelow(8_000_000) + 2_000_000}"


def new_email(tag: str = "ada") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


async def new_contact(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    payload = {"first_name": "Ada", "phone": new_phone(), "email": new_email(), **fields}
    response = await api.post(f"{API}/contacts", json=payload, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def send(
    api: httpx.AsyncClient, tenant: Tenant, contact_id: str, expect: int = 201, **fields: Any
) -> dict[str, Any]:
    response = await api.post(f"{API}/contacts/{contact_id}/messages", json=fields, headers=tenant.headers)
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


async def message(api: httpx.AsyncClient, tenant: Tenant, message_id: str) -> dict[str, Any]:
    response = await api.get(f"{API}/messages/{message_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def use_twilio(api: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    config = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": FROM_NUMBER}
    response = await api.put(
        f"{API}/messaging/providers/sms", json={"kind": "twilio", "config": config}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def use_sendgrid(api: httpx.AsyncClient, tenant: Tenant, **extra: str) -> dict[str, Any]:
    config = {"api_key": DEFAULT_API_KEY, "from_email": FROM_EMAIL, "from_name": "Acme", **extra}
    response = await api.put(
        f"{API}/messaging/providers/email",
        json={"kind": "sendgrid", "config": config},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sent_to(twilio: TwilioDouble, phone: str) -> list[Any]:
    return [m for m in twilio.messages if m.to == phone]


async def scalar(container: Container, sql: str, **params: Any) -> Any:
    async with container.engines().owner.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


# ---------------------------------------------------------------------------------------------- sending


async def test_the_outbox_default_takes_sms_and_email_and_says_nothing_was_sent(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, twilio: TwilioDouble
) -> None:
    shown = (await api.get(f"{API}/messaging/providers/sms", headers=tenant.headers)).json()
    assert shown["kind"] == "outbox"
    assert "nothing is sent" in shown["note"]
    assert shown["callback_urls"] == {}

    contact = await new_contact(api, tenant)
    sms = await send(api, tenant, contact["id"], channel="sms", body="Your table is ready")
    assert sms["status"] == "queued"
    assert sms["recipient"] == contact["phone"]
    email = await send(
        api, tenant, contact["id"], channel="email", subject="Welcome", body="Hello Ada", html="<p>Hello</p>"
    )
    await run_jobs(container)

    for sent, body in ((sms, "Your table is ready"), (email, "Hello Ada")):
        after = await message(api, tenant, sent["id"])
        assert after["status"] == "delivered"
        assert after["provider"] == "outbox"
        assert after["body"] == body
    assert sent_to(twilio, contact["phone"]) == []

    outbox = (await api.get(f"{API}/outbox", headers=tenant.headers)).json()
    assert outbox["provider"] == "outbox"
    assert "nothing was sent" in outbox["note"]
    assert {m["id"] for m in outbox["items"]} == {sms["id"], email["id"]}
    assert {m["body"] for m in outbox["items"]} == {"Your table is ready", "Hello Ada"}


async def test_sms_goes_through_twilio(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, twilio: TwilioDouble
) -> None:
    setup = await use_twilio(api, tenant)
    assert setup["kind"] == "twilio"
    assert setup["summary"]["account_sid"] == ACCOUNT_SID
    assert AUTH_TOKEN not in str(setup)
    callback = f"{PUBLIC_URL}/webhooks/twilio/{tenant.location_id}"
    assert setup["callback_urls"] == {"twilio_messaging_webhook": callback}
    assert AUTH_TOKEN not in (await api.get(f"{API}/messaging/providers/sms", headers=tenant.headers)).text

    contact = await new_contact(api, tenant)
    queued = await send(api, tenant, contact["id"], channel="sms", body="See you at 5")
    assert sent_to(twilio, contact["phone"]) == []  # nothing before the job runs
    await run_jobs(container)

    [received] = sent_to(twilio, contact["phone"])
    assert received.body == "See you at 5"
    assert received.from_ == FROM_NUMBER
    assert received.status_callback == callback
    after = await message(api, tenant, queued["id"])
    assert after["status"] == "sent"
    assert after["provider"] == "twilio"
    assert after["provider_message_id"] == received.sid
    assert after["sender"] == FROM_NUMBER

    await run_jobs(container)  # a second run sends nothing more
    assert len(sent_to(twilio, contact["phone"])) == 1


async def test_email_goes_through_sendgrid_with_one_click_unsubscribe_when_marketing(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble
) -> None:
    setup = await use_sendgrid(api, tenant)
    assert DEFAULT_API_KEY not in str(setup)
    assert setup["callback_urls"]["sendgrid_event_webhook"] == (
        f"{PUBLIC_URL}/webhooks/sendgrid/{tenant.location_id}/events"
    )
    assert setup["callback_urls"]["sendgrid_inbound_parse"].startswith(
        f"{PUBLIC_URL}/webhooks/sendgrid/{tenant.location_id}/inbound/"
    )
    contact = await new_contact(api, tenant)
    queued = await send(
        api,
        tenant,
        contact["id"],
        channel="email",
        subject="Spring sale",
        body="Everything half price",
        html="<p>Everything <b>half</b> price</p><script>alert(1)</script>",
        marketing=True,
    )
    assert "<script>" not in (queued["html"] or "")
    await run_jobs(container)

    [sent] = [s for s in sendgrid.sent if s.to_email == contact["email"]]
    assert sent.from_email == FROM_EMAIL
    assert sent.subject == "Spring sale"
    assert sent.unique_args["ghl_key"] == queued["id"]
    headers = sent.body["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith(f"<{PUBLIC_URL}/unsubscribe/")
    contents = {c["type"]: c["value"] for c in sent.body["content"]}
    assert "Everything half price" in contents["text/plain"]
    assert "/unsubscribe/" in contents["text/html"]
    after = await message(api, tenant, queued["id"])
    assert after["status"] == "sent"
    assert after["provider"] == "sendgrid"
    assert after["provider_message_id"] == sent.message_id


async def test_a_contact_with_dnd_is_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    contact = await new_contact(api, tenant, dnd_channels={"sms": True})
    refused = await api.post(
        f"{API}/contacts/{contact['id']}/messages",
        json={"channel": "sms", "body": "Hi"},
        headers=tenant.headers,
    )
    assert_problem(refused, 409, "contact_dnd")
    listed = await api.get(f"{API}/conversations?contact_id={contact['id']}", headers=tenant.headers)
    assert listed.json()["items"] == []
    # The other channel is still open.
    await send(api, tenant, contact["id"], channel="email", subject="Receipt", body="Thanks")


async def test_dnd_set_after_queueing_fails_the_send_and_nothing_reaches_twilio(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, twilio: TwilioDouble
) -> None:
    await use_twilio(api, tenant)
    contact = await new_contact(api, tenant)
    queued = await send(api, tenant, contact["id"], channel="sms", body="Reminder")
    patched = await api.patch(
        f"{API}/contacts/{contact['id']}", json={"dnd_channels": {"sms": True}}, headers=tenant.headers
    )
    assert patched.status_code == 200, patched.text
    await run_jobs(container)

    after = await message(api, tenant, queued["id"])
    assert after["status"] == "failed"
    assert after["error_code"] == "contact_dnd"
    assert sent_to(twilio, contact["phone"]) == []


async def test_a_scheduled_message_waits_for_its_time(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    contact = await new_contact(api, tenant)
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    queued = await send(api, tenant, contact["id"], channel="sms", body="Later", send_at=at.isoformat())
    assert queued["status"] == "scheduled"
    assert datetime.fromisoformat(queued["send_at"]) == at
    await run_jobs(container, fast_forward=False)

    after = await message(api, tenant, queued["id"])
    assert after["status"] == "scheduled"
    assert after["sent_at"] is None
    scheduled_at = await scalar(
        container,
        "SELECT scheduled_at FROM procrastinate_jobs WHERE task_name = 'messages.send' "
        "AND args ->> 'message_id' = :m",
        m=queued["id"],
    )
    assert scheduled_at == at


async def test_quiet_hours_hold_a_marketing_sms_but_not_a_transactional_one(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    zone = ZoneInfo("America/Chicago")  # the location's zone; the contact names none
    local = datetime.now(zone)
    start, end = (
        (local - timedelta(hours=1)).strftime("%H:%M"),
        (local + timedelta(hours=2)).strftime("%H:%M"),
    )
    patched = await api.patch(
        f"{API}/messaging/settings",
        json={"quiet_hours": {"start": start, "end": end}},
        headers=tenant.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["quiet_hours"] == {"start": start, "end": end}

    contact = await new_contact(api, tenant)
    held = await send(api, tenant, contact["id"], channel="sms", body="Sale!", marketing=True)
    assert held["status"] == "scheduled"
    send_at = datetime.fromisoformat(held["send_at"]).astimezone(zone)
    assert send_at.strftime("%H:%M") == end
    assert send_at > local
    now = await send(api, tenant, contact["id"], channel="sms", body="Your code is 1234")
    assert now["status"] == "queued"
    await run_jobs(container, fast_forward=False)
    assert (await message(api, tenant, held["id"]))["status"] == "scheduled"
    assert (await message(api, tenant, now["id"]))["status"] == "delivered"

    # Once quiet hours are lifted, the held message goes at its (brought forward) time.
    lifted = await api.patch(f"{API}/messaging/settings", json={"quiet_hours": None}, headers=tenant.headers)
    assert lifted.json()["quiet_hours"] is None
    await run_jobs(container)
    assert (await message(api, tenant, held["id"]))["status"] == "delivered"


async def test_the_same_cause_returns_the_first_message(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    contact = await new_contact(api, tenant)
    first = await send(api, tenant, contact["id"], channel="sms", body="Once", cause="order-17")
    again = await send(api, tenant, contact["id"], expect=200, channel="sms", body="Once", cause="order-17")
    assert again["id"] == first["id"]
    await run_jobs(container)
    thread = await api.get(f"{API}/conversations/{first['conversation_id']}/messages", headers=tenant.headers)
    assert [m["id"] for m in thread.json()["items"]] == [first["id"]]


async def test_another_locations_ids_are_not_found(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    contact = await new_contact(api, tenant)
    sent = await send(api, tenant, contact["id"], channel="sms", body="Private")
    conversation = sent["conversation_id"]
    for response in (
        await api.get(f"{API}/conversations/{conversation}", headers=other_tenant.headers),
        await api.get(f"{API}/conversations/{conversation}/messages", headers=other_tenant.headers),
        await api.post(f"{API}/conversations/{conversation}/read", headers=other_tenant.headers),
        await api.patch(
            f"{API}/conversations/{conversation}",
            json={"assigned_user_id": None},
            headers=other_tenant.headers,
        ),
        await api.get(f"{API}/messages/{sent['id']}", headers=other_tenant.headers),
        await api.post(
            f"{API}/contacts/{contact['id']}/messages",
            json={"channel": "sms", "body": "Hi"},
            headers=other_tenant.headers,
        ),
    ):
        assert_problem(response, 404)
    assert (await api.get(f"{API}/conversations", headers=other_tenant.headers)).json()["items"] == []


# ---------------------------------------------------------------------------------------------- the inbox


async def test_inbox_order_filters_read_unread_and_assign(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, container: Container
) -> None:
    ann = await new_contact(api, tenant, first_name="Ann")
    bob = await new_contact(api, tenant, first_name="Bob")
    ann_sms = (await send(api, tenant, ann["id"], channel="sms", body="Hi Ann"))["conversation_id"]
    bob_sms = (await send(api, tenant, bob["id"], channel="sms", body="Hi Bob"))["conversation_id"]
    ann_email = (await send(api, tenant, ann["id"], channel="email", subject="Hello", body="Hi"))[
        "conversation_id"
    ]

    async def ids(query: str = "") -> list[str]:
        response = await api.get(f"{API}/conversations{query}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert await ids() == [ann_email, bob_sms, ann_sms]  # newest activity first
    assert await ids("?channel=sms") == [bob_sms, ann_sms]
    assert await ids(f"?contact_id={ann['id']}") == [ann_email, ann_sms]
    assert await ids("?limit=1") == [ann_email]

    unread = await api.post(f"{API}/conversations/{ann_sms}/unread", headers=tenant.headers)
    assert unread.status_code == 200, unread.text
    assert unread.json()["unread_count"] == 1
    assert await ids("?unread=true") == [ann_sms]
    assert await ids("?order=unread_first") == [ann_sms, ann_email, bob_sms]
    read = await api.post(f"{API}/conversations/{ann_sms}/read", headers=tenant.headers)
    assert read.json()["unread_count"] == 0
    assert await ids("?unread=true") == []

    for stranger in (uuid.uuid4(), await new_user(container, other_tenant)):
        refused = await api.patch(
            f"{API}/conversations/{bob_sms}", json={"assigned_user_id": str(stranger)}, headers=tenant.headers
        )
        assert pointers(assert_problem(refused, 422)) == ["/assigned_user_id"]
    user_id = str(await new_user(container, tenant))
    assigned = await api.patch(
        f"{API}/conversations/{bob_sms}", json={"assigned_user_id": user_id}, headers=tenant.headers
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assigned_user_id"] == user_id
    assert await ids(f"?assigned_user_id={user_id}") == [bob_sms]
    shown = (await api.get(f"{API}/conversations/{bob_sms}", headers=tenant.headers)).json()
    assert shown["assigned_user_id"] == user_id
    assert shown["last_message_preview"] == "Hi Bob"
    unassigned = await api.patch(
        f"{API}/conversations/{bob_sms}", json={"assigned_user_id": None}, headers=tenant.headers
    )
    assert unassigned.json()["assigned_user_id"] is None


# ---------------------------------------------------------------------------------------------- bad input


async def test_bad_sends_are_422_with_pointers(api: httpx.AsyncClient, tenant: Tenant) -> None:
    contact = await new_contact(api, tenant)
    url = f"{API}/contacts/{contact['id']}/messages"

    async def refused(payload: dict[str, Any]) -> list[str]:
        return pointers(assert_problem(await api.post(url, json=payload, headers=tenant.headers), 422))

    assert await refused({"channel": "fax", "body": "Hi"}) == ["/channel"]
    assert await refused({"channel": "sms", "body": " ", "subject": "S"}) == ["/body", "/subject"]
    assert await refused({"channel": "sms", "body": "x" * 1601}) == ["/body"]
    assert await refused({"channel": "email", "body": "Hi", "subject": "a\nb"}) == ["/subject"]
    assert await refused({"channel": "email", "subject": "Hi"}) == ["/body"]
    assert await refused({"channel": "sms", "body": "Hi", "send_at": "2030-01-01T09:00:00"}) == ["/send_at"]
    assert await refused({"channel": "sms", "body": "Hi", "cause": ""}) == ["/cause"]
    assert_problem(
        await api.post(url, json={"channel": "sms", "body": "Hi", "to": "x"}, headers=tenant.headers), 422
    )

    no_phone = await new_contact(api, tenant, phone=None)
    missing = await api.post(
        f"{API}/contacts/{no_phone['id']}/messages",
        json={"channel": "sms", "body": "Hi"},
        headers=tenant.headers,
    )
    assert_problem(missing, 422, "no_address")
    assert (await api.get(f"{API}/outbox", headers=tenant.headers)).json()["items"] == []


async def test_bad_provider_and_settings_are_422_with_pointers(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    async def put(channel: str, body: dict[str, Any]) -> list[str]:
        response = await api.put(f"{API}/messaging/providers/{channel}", json=body, headers=tenant.headers)
        return pointers(assert_problem(response, 422))

    assert await put("sms", {"kind": "pigeon", "config": {}}) == ["/kind"]
    assert await put("sms", {"kind": "sendgrid", "config": {}}) == ["/kind"]
    assert await put("sms", {"kind": "twilio", "config": {"account_sid": "AC1"}}) == ["/config/auth_token"]
    assert await put("sms", {"kind": "twilio", "config": {"account_sid": "AC1", "auth_token": "t"}}) == [
        "/config/from_number"
    ]
    assert await put(
        "email", {"kind": "smtp", "config": {"host": "mx", "port": 0, "from_email": "a@b.co"}}
    ) == ["/config/port"]
    assert_problem(await api.get(f"{API}/messaging/providers/fax", headers=tenant.headers), 404)
    # Nothing was stored by the refusals.
    assert (await api.get(f"{API}/messaging/providers/sms", headers=tenant.headers)).json()[
        "kind"
    ] == "outbox"
    assert_problem(await api.delete(f"{API}/messaging/providers/sms", headers=tenant.headers), 404)

    bad = await api.patch(
        f"{API}/messaging/settings",
        json={"quiet_hours": {"start": "25:00", "end": "08:00"}, "sms_per_second": 0},
        headers=tenant.headers,
    )
    assert pointers(assert_problem(bad, 422)) == ["/quiet_hours/start", "/sms_per_second"]
    settings = (await api.get(f"{API}/messaging/settings", headers=tenant.headers)).json()
    assert settings["quiet_hours"] is None
    assert settings["sms_per_second"] is None


async def test_removing_a_provider_falls_back_to_the_outbox(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, twilio: TwilioDouble
) -> None:
    await use_twilio(api, tenant)
    removed = await api.delete(f"{API}/messaging/providers/sms", headers=tenant.headers)
    assert removed.status_code == 204, removed.text
    assert (await api.get(f"{API}/messaging/providers/sms", headers=tenant.headers)).json()[
        "kind"
    ] == "outbox"
    contact = await new_contact(api, tenant)
    queued = await send(api, tenant, contact["id"], channel="sms", body="Via outbox")
    await run_jobs(container)
    assert (await message(api, tenant, queued["id"]))["provider"] == "outbox"
    assert sent_to(twilio, contact["phone"]) == []


async def test_merging_contacts_moves_their_conversations_to_the_survivor(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    survivor = await new_contact(api, tenant, phone=None)
    loser = await new_contact(api, tenant, email=None)
    both = await new_contact(api, tenant)
    first = await send(api, tenant, survivor["id"], channel="email", subject="Hi", body="to the survivor")
    second = await send(api, tenant, loser["id"], channel="sms", body="to the loser")
    await run_jobs(container, queues=["messages"])
    merged = await api.post(
        f"{API}/contacts/merge",
        json={"survivor_id": survivor["id"], "loser_id": loser["id"]},
        headers=tenant.headers,
    )
    assert merged.status_code == 200, merged.text
    listed = await api.get(
        f"{API}/conversations", params={"contact_id": survivor["id"]}, headers=tenant.headers
    )
    assert {c["channel"] for c in listed.json()["items"]} == {"sms", "email"}
    moved = await message(api, tenant, second["id"])
    assert moved["contact_id"] == survivor["id"]
    assert (await message(api, tenant, first["id"]))["contact_id"] == survivor["id"]
    untouched = await api.get(
        f"{API}/conversations", params={"contact_id": both["id"]}, headers=tenant.headers
    )
    assert untouched.json()["items"] == []


async def test_erasing_a_contact_removes_its_messages_content_for_good(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    contact = await new_contact(api, tenant)
    sent = await send(api, tenant, contact["id"], channel="sms", body="Your code is 1234")
    await run_jobs(container, queues=["messages"])
    erased = await api.post(f"{API}/contacts/{contact['id']}/erase", headers=tenant.headers)
    assert erased.status_code == 204, erased.text
    async with container.engines().owner.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT body, recipient, sender, status FROM messages WHERE id = :id"),
                {"id": sent["id"]},
            )
        ).one()
        preview = (
            await conn.execute(
                text("SELECT last_message_preview FROM conversations WHERE contact_id = :c"),
                {"c": contact["id"]},
            )
        ).scalar_one()
    assert (row.body, row.recipient, row.sender) == ("", None, None)
    assert row.status == "delivered"  # the row stays: counts still add up
    assert preview is None


def mail_sends_of(sendgrid: SendGridDouble, message_id: str) -> int:
    """How many mail send requests SendGrid got for one message."""
    return sum(1 for r in sendgrid.mail_sends() if r.body.get("custom_args", {}).get("ghl_key") == message_id)


@asynccontextmanager
async def impatient_container(settings: Settings, sendgrid: SendGridDouble) -> AsyncIterator[Container]:
    """A container whose provider calls give up after 0.3 s."""
    update = {
        "sendgrid_api_base": sendgrid.base_url,
        "public_url": PUBLIC_URL,
        "messaging_timeout_seconds": 0.3,
    }
    built = make_container(settings.model_copy(update=update))
    try:
        yield built
    finally:
        await close_container(built)


@asynccontextmanager
async def slow_sendgrid(sendgrid: SendGridDouble) -> AsyncIterator[None]:
    """SendGrid answers each request after a second; on leaving, it has taken what it was sent."""
    sendgrid.delay = 1.0
    try:
        yield
        await asyncio.sleep(1.2)  # SendGrid takes a request a moment after an impatient client gave up
    finally:
        sendgrid.delay = 0.0


async def test_an_email_whose_send_got_no_answer_is_asked_for_never_sent_twice(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble, settings: Settings
) -> None:
    """SendGrid takes no idempotency key: a send that timed out may have gone out. The message keeps its
    claim, and the retry finds it through the Email Activity API instead of sending it again."""
    await use_sendgrid(api, tenant)
    contact = await new_contact(api, tenant)
    queued = await send(api, tenant, contact["id"], channel="email", subject="Receipt", body="Thanks")
    async with impatient_container(settings, sendgrid) as impatient:
        async with slow_sendgrid(sendgrid):
            with pytest.raises(RetryLater):  # no answer in time: SendGrid takes it a moment later
                await impatient.message_delivery().deliver(
                    uuid.UUID(str(tenant.location_id)), uuid.UUID(queued["id"]), final_attempt=False
                )
        held = await message(api, tenant, queued["id"])
        assert held["status"] == "queued"
        assert held["error_code"] == "network"
        claimed = await scalar(container, "SELECT claimed_at FROM messages WHERE id = :id", id=queued["id"])
        assert claimed is not None
        await run_jobs(impatient)

    after = await message(api, tenant, queued["id"])
    [sent] = [s for s in sendgrid.sent if s.unique_args.get("ghl_key") == queued["id"]]
    assert after["status"] == "delivered"  # as the Email Activity API lists it
    assert after["provider_message_id"] == sent.message_id
    assert mail_sends_of(sendgrid, queued["id"]) == 1


@asynccontextmanager
async def unanswered_last_attempt(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble, settings: Settings
) -> AsyncIterator[tuple[Container, dict[str, Any]]]:
    """An email whose send job runs its last attempt (the retries used up) and gets no answer in time.
    Yields a container with a short provider timeout and the message, as the API showed it when queued."""
    await use_sendgrid(api, tenant)
    contact = await new_contact(api, tenant)
    queued = await send(api, tenant, contact["id"], channel="email", subject="Receipt", body="Thanks")
    async with container.engines().owner.begin() as conn:
        await conn.execute(
            text(
                "UPDATE procrastinate_jobs SET attempts = 10 "  # the send kind's last of 11 runs
                "WHERE task_name = 'messages.send' AND args ->> 'message_id' = :id"
            ),
            {"id": queued["id"]},
        )
    async with impatient_container(settings, sendgrid) as impatient:
        async with slow_sendgrid(sendgrid):
            # Only what is due within the minute: the question to SendGrid, 15 minutes on, stays queued.
            await run_jobs(impatient, queues=["messages"], due_by=datetime.now(UTC) + timedelta(minutes=1))
        yield impatient, queued


async def test_a_last_attempt_that_got_no_answer_is_asked_about_later_not_failed_blind(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble, settings: Settings
) -> None:
    """The last attempt may have gone out: the message is not failed (it would count a delivered email
    as failed) nor sent again; a `messages.reconcile` job asks SendGrid 15 minutes later."""
    async with unanswered_last_attempt(api, tenant, container, sendgrid, settings) as (impatient, queued):
        held = await message(api, tenant, queued["id"])
        assert (held["status"], held["error_code"]) == ("queued", "network")
        async with container.engines().owner.connect() as conn:
            [job] = (
                await conn.execute(
                    text(
                        "SELECT status, scheduled_at - now() AS wait FROM procrastinate_jobs "
                        "WHERE task_name = 'messages.reconcile' AND args ->> 'message_id' = :id"
                    ),
                    {"id": queued["id"]},
                )
            ).all()
        assert job.status == "todo"
        assert timedelta(minutes=14) < job.wait <= timedelta(minutes=15)
        await run_jobs(impatient)  # brought forward: SendGrid's Email Activity API lists it

    after = await message(api, tenant, queued["id"])
    [sent] = [s for s in sendgrid.sent if s.unique_args.get("ghl_key") == queued["id"]]
    assert (after["status"], after["provider_message_id"]) == ("delivered", sent.message_id)
    assert mail_sends_of(sendgrid, queued["id"]) == 1


async def test_a_last_attempt_the_provider_never_got_is_failed_and_not_sent_again(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble, settings: Settings
) -> None:
    async with unanswered_last_attempt(api, tenant, container, sendgrid, settings) as (impatient, queued):
        # SendGrid lost it: its log has no such message.
        sendgrid.sent[:] = [s for s in sendgrid.sent if s.unique_args.get("ghl_key") != queued["id"]]
        await run_jobs(impatient)

    after = await message(api, tenant, queued["id"])
    assert (after["status"], after["error_code"]) == ("failed", "network")
    assert "has no record of the message: not sent" in after["error_message"]
    assert mail_sends_of(sendgrid, queued["id"]) == 1


async def test_a_last_attempt_the_provider_cannot_be_asked_about_ends_as_outcome_unknown(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble, settings: Settings
) -> None:
    async with unanswered_last_attempt(api, tenant, container, sendgrid, settings) as (impatient, queued):
        location, message_id = uuid.UUID(str(tenant.location_id)), uuid.UUID(queued["id"])
        sendgrid.fail_next(1, 500)
        with pytest.raises(RetryLater):  # asked again later
            await impatient.message_delivery().reconcile(location, message_id, final_attempt=False)
        assert (await message(api, tenant, queued["id"]))["status"] == "queued"
        sendgrid.fail_next(1, 500)
        assert await impatient.message_delivery().reconcile(location, message_id) == "failed"

    after = await message(api, tenant, queued["id"])
    assert after["error_code"] == "outcome_unknown"
    assert "could not be asked" in after["error_message"]
    assert mail_sends_of(sendgrid, queued["id"]) == 1
    # Settled: a second run of the job (a worker that died before its commit) leaves it as it is.
    assert await container.message_delivery().reconcile(location, message_id) == "failed"
    assert (await message(api, tenant, queued["id"]))["updated_at"] == after["updated_at"]


async def test_a_changed_provider_configuration_is_used_from_the_next_send(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble
) -> None:
    """Configurations are kept opened between sends; a change (sealed anew) is never served stale."""
    await use_sendgrid(api, tenant)
    contact = await new_contact(api, tenant)
    first = await send(api, tenant, contact["id"], channel="email", subject="One", body="First")
    await run_jobs(container)
    await use_sendgrid(api, tenant, from_email="billing@acme.example")
    second = await send(api, tenant, contact["id"], channel="email", subject="Two", body="Second")
    await run_jobs(container)

    senders = {
        s.unique_args["ghl_key"]: s.from_email for s in sendgrid.sent if s.to_email == contact["email"]
    }
    assert senders == {first["id"]: FROM_EMAIL, second["id"]: "billing@acme.example"}
