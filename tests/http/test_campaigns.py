"""Templates and campaigns through the API: authoring with a sandboxed template language, sending to an
audience through the outbox, Twilio and SendGrid (their official SDKs pointed at local doubles), the
lifecycle (schedule, pause, resume, cancel), exactly one message per recipient, tenancy, and the
engagement a campaign counts (opens, clicks and replies through the public tracking URLs and Twilio's
signed callbacks)."""

from __future__ import annotations

import asyncio
import html
import re
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from dependency_injector import providers
from sqlalchemy import text

from ghl_adapters.container import Container, close_container
from ghl_adapters.messaging.templates import JinjaTemplateRenderer
from ghl_adapters.settings import Settings
from ghl_core.campaigns.models import CampaignStatus
from ghl_core.campaigns.services import CampaignService
from ghl_core.conversations.sender import MessageSender
from ghl_core.tenancy.models import PlanTier
from http_kit import API, Tenant, assert_problem, new_tenant, open_api, pointers
from jobs_kit import run_jobs
from sendgrid_double import DEFAULT_API_KEY, SendGridDouble
from support import make_container
from twilio_double import ACCOUNT_SID, AUTH_TOKEN, TwilioDouble, sign_twilio_request

PUBLIC_URL = "https://crm.example.test"
FROM_NUMBER = "+14155550100"
FROM_EMAIL = "news@acme.example"
# Small batches, so a campaign of a handful of contacts runs in several (pause is read between them).
BATCH = 2


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
    """The provider SDKs pointed at the doubles, a public URL (tracking links and callbacks use it) and
    the campaign service built with small batches."""
    update = {
        "twilio_api_base": twilio.base_url,
        "sendgrid_api_base": sendgrid.base_url,
        "public_url": PUBLIC_URL,
    }
    built = make_container(settings.model_copy(update=update))
    built.campaigns.override(
        providers.Singleton(
            CampaignService,
            built.uow,
            built.clock,
            built.conversations,
            built.templates,
            built.template_renderer,
            built.contact_finder,
            batch_size=BATCH,
            lanes=1,  # one batch at a time: the pause and cancel tests step between batches
        )
    )
    try:
        yield built
    finally:
        await close_container(built)


# ---------------------------------------------------------------------------------------------- helpers


def new_phone() -> str:
    return f"+1312{secrets.randbelow(8_000_000) + 2_000_000}"


def new_email(tag: str = "ada") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def new_tag() -> str:
    return f"vip-{uuid.uuid4().hex[:8]}"


async def new_contact(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    payload = {"first_name": "Ada", "phone": new_phone(), "email": new_email(), **fields}
    response = await api.post(f"{API}/contacts", json=payload, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def post(
    api: httpx.AsyncClient, tenant: Tenant, path: str, expect: int, body: Any = None
) -> dict[str, Any]:
    response = await api.post(f"{API}{path}", json=body, headers=tenant.headers)
    assert response.status_code == expect, response.text
    answered: dict[str, Any] = response.json()
    return answered


async def get(api: httpx.AsyncClient, tenant: Tenant, path: str) -> dict[str, Any]:
    response = await api.get(f"{API}{path}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_template(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    payload = {"name": "Welcome", "channel": "sms", "body": "Hi {{ contact.first_name }}", **fields}
    return await post(api, tenant, "/templates", 201, payload)


async def new_campaign(api: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    payload = {"name": "Spring sale", "channel": "sms", "body": "Sale today", **fields}
    return await post(api, tenant, "/campaigns", 201, payload)


async def stats(api: httpx.AsyncClient, tenant: Tenant, campaign_id: str) -> dict[str, Any]:
    return await get(api, tenant, f"/campaigns/{campaign_id}/stats")


async def per_contact(container: Container, campaign_id: str) -> dict[str, int]:
    """How many messages the campaign wrote for each contact, from the messages table itself."""
    async with container.engines().owner.connect() as conn:
        rows = await conn.execute(
            text("SELECT contact_id, count(*) FROM messages WHERE campaign_id = :c GROUP BY contact_id"),
            {"c": campaign_id},
        )
        return {str(contact): int(n) for contact, n in rows.all()}


async def use_twilio(api: httpx.AsyncClient, tenant: Tenant) -> None:
    config = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": FROM_NUMBER}
    response = await api.put(
        f"{API}/messaging/providers/sms", json={"kind": "twilio", "config": config}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text


async def use_sendgrid(api: httpx.AsyncClient, tenant: Tenant) -> None:
    config = {"api_key": DEFAULT_API_KEY, "from_email": FROM_EMAIL, "from_name": "Acme"}
    response = await api.put(
        f"{API}/messaging/providers/email",
        json={"kind": "sendgrid", "config": config},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text


def local(url: str) -> str:
    """A public URL of ours as the test client asks for it (path and query)."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL, url
    return parts.path + (f"?{parts.query}" if parts.query else "")


# ---------------------------------------------------------------------------------------------- templates


async def test_templates_are_created_listed_changed_and_deleted(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    sms = await new_template(api, tenant, name="Reminder", body="See you {{ contact.first_name }}")
    assert sms["channel"] == "sms"
    assert sms["subject"] is None
    email = await new_template(
        api,
        tenant,
        name="Newsletter",
        channel="email",
        subject="News for {{ contact.first_name }}",
        body="Plain news",
        html='<p>News</p><script>alert(1)</script><a href="https://acme.example" onclick="x()">more</a>',
    )
    assert "<script>" not in email["html"]
    assert "onclick" not in email["html"]
    assert "https://acme.example" in email["html"]

    listed = await get(api, tenant, "/templates")
    assert {t["id"] for t in listed["items"]} == {sms["id"], email["id"]}
    assert await get(api, tenant, f"/templates/{sms['id']}") == sms

    changed = await api.patch(
        f"{API}/templates/{sms['id']}", json={"name": "Reminder 2", "body": "Soon!"}, headers=tenant.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Reminder 2"
    assert changed.json()["body"] == "Soon!"
    # The channel's rules hold on a change too: an SMS has no subject.
    refused = await api.patch(f"{API}/templates/{sms['id']}", json={"subject": "x"}, headers=tenant.headers)
    assert pointers(assert_problem(refused, 422)) == ["/subject"]

    deleted = await api.delete(f"{API}/templates/{sms['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert_problem(await api.get(f"{API}/templates/{sms['id']}", headers=tenant.headers), 404)
    assert [t["id"] for t in (await get(api, tenant, "/templates"))["items"]] == [email["id"]]


async def test_template_validation_names_each_field(api: httpx.AsyncClient, tenant: Tenant) -> None:
    blank = await api.post(
        f"{API}/templates", json={"name": " ", "channel": "sms", "body": "x"}, headers=tenant.headers
    )
    assert pointers(assert_problem(blank, 422)) == ["/name"]
    fax = await api.post(
        f"{API}/templates", json={"name": "F", "channel": "fax", "body": "x"}, headers=tenant.headers
    )
    assert pointers(assert_problem(fax, 422)) == ["/channel"]
    no_subject = await api.post(
        f"{API}/templates", json={"name": "E", "channel": "email", "body": "x"}, headers=tenant.headers
    )
    assert pointers(assert_problem(no_subject, 422)) == ["/subject"]
    unknown = await api.post(
        f"{API}/templates",
        json={"name": "E", "channel": "sms", "body": "x", "colour": 1},
        headers=tenant.headers,
    )
    assert "/colour" in pointers(assert_problem(unknown, 422))


async def test_bad_template_syntax_is_refused_with_its_field_and_line(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    source = "Hello\nthere {{ contact.first_name ) }}\nbye"
    response = await api.post(
        f"{API}/templates", json={"name": "Broken", "channel": "sms", "body": source}, headers=tenant.headers
    )
    problem = assert_problem(response, 422, "template_invalid")
    assert pointers(problem) == ["/body"]
    assert problem["line"] == 2
    assert "line 2" in problem["errors"][0]["detail"]
    assert (await get(api, tenant, "/templates"))["items"] == []  # nothing was stored


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ contact.__class__ }}",
        "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    ],
)
async def test_a_sandbox_escape_is_refused_never_run(
    api: httpx.AsyncClient, tenant: Tenant, source: str
) -> None:
    response = await api.post(
        f"{API}/templates", json={"name": "Escape", "channel": "sms", "body": source}, headers=tenant.headers
    )
    if response.status_code == 422:
        assert pointers(assert_problem(response, 422)) == ["/body"]
        return
    # Stored: then it must render harmlessly.
    assert response.status_code == 201, response.text
    contact = await new_contact(api, tenant)
    preview = await post(
        api, tenant, f"/templates/{response.json()['id']}/preview", 200, {"contact_id": contact["id"]}
    )
    assert "class" not in preview["body"]
    assert "object" not in preview["body"]


async def test_preview_fills_merge_fields_and_defaults(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    template = await new_template(
        api,
        tenant,
        channel="email",
        subject="Hi {{ contact.first_name | default('there', true) }}",
        body="Dear {{ contact.first_name | default('friend', true) }} of {{ location.name }}",
        html="<p>Hello {{ contact.first_name }} {{ contact.last_name | upper }}</p>",
    )
    named = await new_contact(api, tenant, first_name="Grace", last_name="<Hopper>")
    nameless = await new_contact(api, tenant, first_name=None, last_name="Lovelace")

    shown = await post(api, tenant, f"/templates/{template['id']}/preview", 200, {"contact_id": named["id"]})
    assert shown["subject"] == "Hi Grace"
    assert shown["body"] == "Dear Grace of Main Street"
    assert shown["html"] == "<p>Hello Grace &lt;HOPPER&gt;</p>"  # merge values are escaped in HTML

    shown = await post(
        api, tenant, f"/templates/{template['id']}/preview", 200, {"contact_id": nameless["id"]}
    )
    assert shown["subject"] == "Hi there"
    assert shown["body"] == "Dear friend of Main Street"

    # Another location's contact, or template, is not found.
    stranger = await new_contact(api, other_tenant)
    assert_problem(
        await api.post(
            f"{API}/templates/{template['id']}/preview",
            json={"contact_id": stranger["id"]},
            headers=tenant.headers,
        ),
        404,
    )
    assert_problem(
        await api.post(
            f"{API}/templates/{template['id']}/preview",
            json={"contact_id": stranger["id"]},
            headers=other_tenant.headers,
        ),
        404,
    )


# ---------------------------------------------------------------------------------------------- campaigns


async def test_a_campaign_to_a_tag_reaches_each_contact_once_and_skips_dnd(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    tag = new_tag()
    reached = [await new_contact(api, tenant, first_name=f"P{i}", tags=[tag]) for i in range(4)]
    # Email do-not-disturb does not stop an SMS.
    reached.append(
        await new_contact(api, tenant, first_name="Mail", tags=[tag], dnd_channels={"email": True})
    )
    sms_dnd = await new_contact(api, tenant, tags=[tag], dnd_channels={"sms": True})
    outsider = await new_contact(api, tenant, tags=["other"])
    template = await new_template(api, tenant, body="Hi {{ contact.first_name }}, 20% off today")

    payload = {"name": "Tagged", "channel": "sms", "template_id": template["id"], "audience": {"tags": [tag]}}
    campaign = await post(api, tenant, "/campaigns", 201, payload)
    assert campaign["status"] == "draft"
    assert campaign["body"] == template["body"]
    assert campaign["audience"] == {"tags": [tag]}

    started = await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202)
    assert started["status"] == "sending"
    # A campaign that is sending cannot be changed, nor sent again.
    refused = await api.patch(f"{API}/campaigns/{campaign['id']}", json={"name": "x"}, headers=tenant.headers)
    assert_problem(refused, 409, "campaign_state")
    assert_problem(
        await api.post(f"{API}/campaigns/{campaign['id']}/send", headers=tenant.headers),
        409,
        "campaign_state",
    )

    await run_jobs(container)

    done = await get(api, tenant, f"/campaigns/{campaign['id']}")
    assert done["status"] == "completed"
    assert done["recipients"] == 6
    counts = await per_contact(container, campaign["id"])
    assert counts == {c["id"]: 1 for c in reached}
    assert sms_dnd["id"] not in counts
    assert outsider["id"] not in counts
    numbers = await stats(api, tenant, campaign["id"])
    assert numbers == {
        "recipients": 6,
        "pending": 0,
        "skipped": 1,
        "sent": 5,
        "delivered": 5,  # the local outbox takes everything at once
        "failed": 0,
        "opened": 0,
        "clicked": 0,
        "replied": 0,
        "unsubscribed": 0,
        "bounced": 0,
    }
    # Each message is the template rendered for its contact, in the contact's conversation.
    conversations = await get(api, tenant, f"/conversations?contact_id={reached[0]['id']}")
    [conversation] = conversations["items"]
    thread = await get(api, tenant, f"/conversations/{conversation['id']}/messages")
    assert [m["body"] for m in thread["items"]] == ["Hi P0, 20% off today"]
    assert thread["items"][0]["marketing"] is True

    # Running the jobs again sends nothing more.
    await run_jobs(container)
    assert await per_contact(container, campaign["id"]) == counts


async def test_campaign_validation_and_editing_a_draft(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    bad = await api.post(
        f"{API}/campaigns",
        json={"name": "x", "channel": "sms", "body": "{{ broken", "audience": {"tags": "vip", "colour": 1}},
        headers=tenant.headers,
    )
    assert "/audience/colour" in pointers(assert_problem(bad, 422))
    broken = await api.post(
        f"{API}/campaigns", json={"name": "x", "channel": "sms", "body": "{{ broken"}, headers=tenant.headers
    )
    assert pointers(assert_problem(broken, 422)) == ["/body"]
    foreign = await new_template(api, other_tenant)
    wrong_template = await api.post(
        f"{API}/campaigns",
        json={"name": "x", "channel": "sms", "template_id": foreign["id"]},
        headers=tenant.headers,
    )
    assert pointers(assert_problem(wrong_template, 422)) == ["/template_id"]

    draft = await new_campaign(api, tenant)
    changed = await api.patch(
        f"{API}/campaigns/{draft['id']}",
        json={"name": "Summer sale", "body": "Summer!", "audience": {"query": "Ada"}},
        headers=tenant.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Summer sale"
    assert changed.json()["body"] == "Summer!"
    assert changed.json()["audience"] == {"query": "Ada"}
    assert [c["id"] for c in (await get(api, tenant, "/campaigns"))["items"]] == [draft["id"]]
    deleted = await api.delete(f"{API}/campaigns/{draft['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert_problem(await api.get(f"{API}/campaigns/{draft['id']}", headers=tenant.headers), 404)


async def test_another_locations_campaign_is_not_found(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    campaign = await new_campaign(api, tenant)
    template = await new_template(api, tenant)
    base = f"{API}/campaigns/{campaign['id']}"
    theirs = other_tenant.headers
    assert_problem(await api.get(base, headers=theirs), 404)
    assert_problem(await api.get(f"{base}/stats", headers=theirs), 404)
    assert_problem(await api.patch(base, json={"name": "mine"}, headers=theirs), 404)
    for action in ("send", "pause", "resume", "cancel"):
        assert_problem(await api.post(f"{base}/{action}", headers=theirs), 404)
    assert_problem(await api.delete(base, headers=theirs), 404)
    assert_problem(await api.get(f"{API}/templates/{template['id']}", headers=theirs), 404)
    assert_problem(await api.delete(f"{API}/templates/{template['id']}", headers=theirs), 404)
    assert (await get(api, other_tenant, "/campaigns"))["items"] == []
    assert (await get(api, tenant, f"/campaigns/{campaign['id']}"))["status"] == "draft"


async def test_a_scheduled_campaign_waits_for_its_time_and_can_be_moved_to_now(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    tag = new_tag()
    contact = await new_contact(api, tenant, tags=[tag])
    campaign = await new_campaign(api, tenant, audience={"tags": [tag]})
    naive = await api.post(
        f"{API}/campaigns/{campaign['id']}/send", json={"at": "2030-01-01T09:00:00"}, headers=tenant.headers
    )
    assert pointers(assert_problem(naive, 422)) == ["/at"]

    at = datetime.now(UTC) + timedelta(hours=1)
    scheduled = await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202, {"at": at.isoformat()})
    assert scheduled["status"] == "scheduled"
    assert datetime.fromisoformat(scheduled["scheduled_at"]) == at

    await run_jobs(container, fast_forward=False)
    assert await per_contact(container, campaign["id"]) == {}
    # Its job brought forward by force still does not send before the time.
    await run_jobs(container, fast_forward=True)
    assert await per_contact(container, campaign["id"]) == {}
    still = await get(api, tenant, f"/campaigns/{campaign['id']}")
    assert still["status"] == "scheduled"
    assert still["recipients"] == 0

    # A scheduled campaign may still be edited, then moved: sent now.
    await api.patch(f"{API}/campaigns/{campaign['id']}", json={"body": "Now!"}, headers=tenant.headers)
    moved = await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202, {})
    assert moved["status"] == "sending"
    await run_jobs(container, fast_forward=False)
    assert await per_contact(container, campaign["id"]) == {contact["id"]: 1}
    assert (await get(api, tenant, f"/campaigns/{campaign['id']}"))["status"] == "completed"


async def test_moving_a_scheduled_campaign_earlier_sends_it_at_the_new_time(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    """The run queued for the first time must not keep the campaign from running at the new one."""
    tag = new_tag()
    contact = await new_contact(api, tenant, tags=[tag])
    campaign = await new_campaign(api, tenant, audience={"tags": [tag]})
    later = datetime.now(UTC) + timedelta(hours=2)
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202, {"at": later.isoformat()})
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202, {})  # now, while the first waits
    await run_jobs(container, fast_forward=False)
    assert await per_contact(container, campaign["id"]) == {contact["id"]: 1}


async def test_pause_stops_further_batches_resume_finishes_and_cancel_drops_the_rest(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, twilio: TwilioDouble
) -> None:
    """Deterministic without timing: Twilio refusing one message of the first batch for now (429) stops
    the run after that batch and its retry waits a few seconds; the campaign is paused meanwhile."""
    await use_twilio(api, tenant)
    tag = new_tag()
    contacts = [await new_contact(api, tenant, tags=[tag]) for _ in range(BATCH * 3)]
    phones = {c["phone"] for c in contacts}
    campaign = await new_campaign(api, tenant, audience={"tags": [tag]}, body="Flash sale")
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202)

    twilio.fail_next(429, 1)
    await run_jobs(container, fast_forward=False)
    assert len([m for m in twilio.messages if m.to in phones]) == BATCH - 1
    paused = await post(api, tenant, f"/campaigns/{campaign['id']}/pause", 200)
    assert paused["status"] == "paused"
    numbers = await stats(api, tenant, campaign["id"])
    assert (numbers["recipients"], numbers["sent"], numbers["pending"]) == (
        BATCH * 3,
        BATCH - 1,
        BATCH * 2 + 1,
    )

    await run_jobs(container, fast_forward=True)  # the retry comes back and finds the campaign paused
    assert len([m for m in twilio.messages if m.to in phones]) == BATCH - 1
    assert (await get(api, tenant, f"/campaigns/{campaign['id']}"))["status"] == "paused"
    assert_problem(
        await api.patch(f"{API}/campaigns/{campaign['id']}", json={"name": "x"}, headers=tenant.headers), 409
    )

    resumed = await post(api, tenant, f"/campaigns/{campaign['id']}/resume", 200)
    assert resumed["status"] == "sending"
    await run_jobs(container)
    sent = [m.to for m in twilio.messages if m.to in phones]
    assert sorted(sent) == sorted(phones)  # everyone, once
    assert await per_contact(container, campaign["id"]) == {c["id"]: 1 for c in contacts}
    numbers = await stats(api, tenant, campaign["id"])
    assert (numbers["sent"], numbers["pending"], numbers["failed"]) == (BATCH * 3, 0, 0)
    assert (await get(api, tenant, f"/campaigns/{campaign['id']}"))["status"] == "completed"
    # A finished campaign cannot be paused, resumed or cancelled.
    for action in ("pause", "resume", "cancel"):
        assert_problem(
            await api.post(f"{API}/campaigns/{campaign['id']}/{action}", headers=tenant.headers),
            409,
            "campaign_state",
        )


async def test_cancel_marks_the_recipients_not_reached_cancelled(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, twilio: TwilioDouble
) -> None:
    await use_twilio(api, tenant)
    tag = new_tag()
    contacts = [await new_contact(api, tenant, tags=[tag]) for _ in range(BATCH * 3)]
    phones = {c["phone"] for c in contacts}
    campaign = await new_campaign(api, tenant, audience={"tags": [tag]})
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202)
    twilio.fail_next(429, 1)
    await run_jobs(container, fast_forward=False)

    cancelled = await post(api, tenant, f"/campaigns/{campaign['id']}/cancel", 200)
    assert cancelled["status"] == "cancelled"
    assert cancelled["completed_at"] is not None
    await run_jobs(container, fast_forward=True)
    assert len([m for m in twilio.messages if m.to in phones]) == BATCH - 1
    numbers = await stats(api, tenant, campaign["id"])
    assert (numbers["sent"], numbers["pending"]) == (BATCH - 1, 0)
    async with container.engines().owner.connect() as conn:
        rows = await conn.execute(
            text("SELECT status, count(*) FROM campaign_recipients WHERE campaign_id = :c GROUP BY status"),
            {"c": campaign["id"]},
        )
        by_status: dict[str, int] = {str(s): int(n) for s, n in rows.all()}
    assert by_status == {"done": BATCH - 1, "cancelled": BATCH * 2 + 1}
    assert_problem(
        await api.post(f"{API}/campaigns/{campaign['id']}/resume", headers=tenant.headers),
        409,
        "campaign_state",
    )
    # A finished campaign may be deleted.
    assert (await api.delete(f"{API}/campaigns/{campaign['id']}", headers=tenant.headers)).status_code == 204


# ---------------------------------------------------------------------------------------------- email


async def test_an_email_campaign_through_sendgrid_is_tracked(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, sendgrid: SendGridDouble
) -> None:
    await use_sendgrid(api, tenant)
    tag = new_tag()
    first = await new_contact(api, tenant, first_name="Grace", tags=[tag])
    second = await new_contact(api, tenant, first_name="Alan", tags=[tag])
    offer = "https://shop.example/offer?id=7&ref=mail"
    campaign = await new_campaign(
        api,
        tenant,
        channel="email",
        audience={"tags": [tag]},
        subject="A gift for {{ contact.first_name }}",
        body="See the offer: " + offer,
        html=f'<p>Hi {{{{ contact.first_name }}}}</p><p><a href="{html.escape(offer)}">Offer</a></p>',
    )
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202)
    await run_jobs(container)

    sent = {s.to_email: s for s in sendgrid.sent if s.to_email in (first["email"], second["email"])}
    assert set(sent) == {first["email"], second["email"]}
    mail = sent[first["email"]]
    assert mail.subject == "A gift for Grace"
    # SendGrid's bulk form: one mail send, a personalization per recipient carrying our message key.
    assert sent[second["email"]].message_id == mail.message_id
    assert mail.unique_args["ghl_key"] != sent[second["email"]].unique_args["ghl_key"]
    assert len(mail.body["personalizations"]) == 2
    headers = mail.headers
    assert headers["List-Unsubscribe"].startswith(f"<{PUBLIC_URL}/unsubscribe/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    content = {c["type"]: c["value"] for c in mail.content}["text/html"]
    assert "<p>Hi Grace</p>" in content
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', content)]
    tracked = [h for h in hrefs if h.startswith(f"{PUBLIC_URL}/t/c/")]
    assert len(tracked) == 1
    assert offer not in hrefs  # the link goes through the redirect
    [pixel] = re.findall(rf'<img src="({re.escape(PUBLIC_URL)}/t/o/[^"]+\.gif)"', content)
    assert (await stats(api, tenant, campaign["id"]))["sent"] == 2

    # The pixel: a GIF, never cached; an open counted once however often it loads.
    for _ in range(3):
        image = await api.get(local(pixel))
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/gif"
        assert image.content.startswith(b"GIF89a")
        assert "no-store" in image.headers["cache-control"]
    assert (await stats(api, tenant, campaign["id"]))["opened"] == 1
    # A forged or unknown pixel answers the same image and counts nothing.
    token = urlsplit(pixel).path.rsplit("/", 1)[1].removesuffix(".gif")
    forged = await api.get(f"/t/o/{token[:-2]}AA.gif")
    assert (forged.status_code, forged.content) == (200, image.content)
    assert (await api.get("/t/o/not-a-token.gif")).content == image.content
    assert (await stats(api, tenant, campaign["id"]))["opened"] == 1

    # The click: counted, then redirected to exactly where the email linked.
    click = await api.get(local(tracked[0]))
    assert click.status_code == 302, click.text
    assert click.headers["location"] == offer
    assert "no-store" in click.headers["cache-control"]
    await api.get(local(tracked[0]))
    numbers = await stats(api, tenant, campaign["id"])
    assert (numbers["clicked"], numbers["opened"]) == (1, 1)

    # Another destination under the same token is no redirect at all.
    click_token = urlsplit(tracked[0]).path.rsplit("/", 1)[1]
    for url in ("https://evil.example/", offer + "&x=1", "javascript:alert(1)"):
        tampered = await api.get(f"/t/c/{click_token}?{urlencode({'u': url})}")
        assert_problem(tampered, 404)
        assert "location" not in tampered.headers
        assert "no-store" in tampered.headers["cache-control"]
    assert_problem(await api.get(f"/t/c/{click_token}"), 404)
    assert (await stats(api, tenant, campaign["id"]))["clicked"] == 1

    # The second contact's engagement is their own.
    other = {c["type"]: c["value"] for c in sent[second["email"]].content}["text/html"]
    [other_pixel] = re.findall(r'<img src="([^"]+\.gif)"', other)
    await api.get(local(other_pixel))
    numbers = await stats(api, tenant, campaign["id"])
    assert (numbers["opened"], numbers["clicked"]) == (2, 1)


# ---------------------------------------------------------------------------------------------- replies


async def test_an_sms_reply_after_a_campaign_counts_as_replied(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, twilio: TwilioDouble
) -> None:
    await use_twilio(api, tenant)
    tag = new_tag()
    contact = await new_contact(api, tenant, tags=[tag])
    silent = await new_contact(api, tenant, tags=[tag])
    campaign = await new_campaign(api, tenant, audience={"tags": [tag]}, body="Open house on Saturday")
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202)
    await run_jobs(container)
    assert {m.to for m in twilio.messages} >= {contact["phone"], silent["phone"]}

    path = f"/webhooks/twilio/{tenant.location_id}"
    form = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "SmsSid": "SM" + secrets.token_hex(16),
        "AccountSid": ACCOUNT_SID,
        "From": contact["phone"],
        "To": FROM_NUMBER,
        "Body": "Count me in",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
    }
    form["SmsSid"] = form["MessageSid"]
    signature = sign_twilio_request(AUTH_TOKEN, PUBLIC_URL + path, form)
    answered = await api.post(
        path,
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert answered.status_code == 200, answered.text
    await run_jobs(container)

    numbers = await stats(api, tenant, campaign["id"])
    assert (numbers["sent"], numbers["replied"]) == (2, 1)


async def test_resuming_a_campaign_paused_before_its_time_puts_it_back_on_schedule(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    tag = new_tag()
    await new_contact(api, tenant, tags=[tag])
    campaign = await new_campaign(api, tenant, audience={"tags": [tag]})
    at = datetime.now(UTC) + timedelta(hours=2)
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202, {"at": at.isoformat()})
    paused = await post(api, tenant, f"/campaigns/{campaign['id']}/pause", 200)
    assert paused["status"] == "paused"
    resumed = await post(api, tenant, f"/campaigns/{campaign['id']}/resume", 200)
    assert resumed["status"] == "scheduled"
    await run_jobs(container, fast_forward=True)
    assert await per_contact(container, campaign["id"]) == {}
    assert (await get(api, tenant, f"/campaigns/{campaign['id']}"))["status"] == "scheduled"


async def test_a_campaign_sms_held_by_quiet_hours_is_not_sent_once_its_campaign_is_cancelled(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    tag = new_tag()
    await new_contact(api, tenant, tags=[tag])
    now_local = datetime.now(ZoneInfo("America/Chicago"))
    start = (now_local - timedelta(hours=1)).strftime("%H:%M")
    end = (now_local + timedelta(hours=2)).strftime("%H:%M")
    quiet = await api.patch(
        f"{API}/messaging/settings",
        json={"quiet_hours": {"start": start, "end": end}},
        headers=tenant.headers,
    )
    assert quiet.status_code == 200, quiet.text
    try:
        campaign = await new_campaign(api, tenant, audience={"tags": [tag]})
        await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202, {})
        await run_jobs(container, queues=["campaigns"], fast_forward=False)
        assert await scalar_row(container, campaign["id"]) == ("scheduled", None)
        # The campaign is cancelled while its message waits out the quiet hours (as a cancel during a
        # long send would find it); when the message's time comes, it is not sent.
        async with container.engines().owner.begin() as conn:
            await conn.execute(
                text("UPDATE campaigns SET status = 'cancelled' WHERE id = :c"), {"c": campaign["id"]}
            )
        await api.patch(f"{API}/messaging/settings", json={"quiet_hours": None}, headers=tenant.headers)
        await run_jobs(container, queues=["messages"], fast_forward=True)
        assert await scalar_row(container, campaign["id"]) == ("failed", "campaign_cancelled")
    finally:
        await api.patch(f"{API}/messaging/settings", json={"quiet_hours": None}, headers=tenant.headers)


async def scalar_row(container: Container, campaign_id: str) -> tuple[str, str | None]:
    async with container.engines().owner.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, error_code FROM messages WHERE campaign_id = :c"), {"c": campaign_id}
            )
        ).one()
    return row.status, row.error_code


# ------------------------------------------------------- what a template may cost, and what it may link to

# Doubles the contact's company name eight times: 18 characters of sample data make 4,608 (saved), 500
# characters make 128,000, over the 100,000 a value may have.
DOUBLED_COMPANY = "{% set a = contact.company_name %}" + "{% set a = a ~ a %}" * 8 + "Hi {{ a[:4] }}"


@pytest.mark.parametrize(
    "source",
    [
        "{% set a = 'x' * 1000000 %}" + "{% set a = a ~ a %}" * 10,  # the 1.7 GB preview
        "{% set big = 'a ' * 50000 %}{% for i in range(1000) %}{% set p = big.split() %}{% endfor %}",
    ],
)
async def test_a_template_that_cannot_render_within_the_limits_is_refused_when_saved(
    api: httpx.AsyncClient, tenant: Tenant, source: str
) -> None:
    created = await api.post(
        f"{API}/templates", json={"name": "Heavy", "channel": "sms", "body": source}, headers=tenant.headers
    )
    problem = assert_problem(created, 422, "template_invalid")
    assert pointers(problem) == ["/body"]
    assert (await get(api, tenant, "/templates"))["items"] == []  # nothing was stored

    kept = await new_template(api, tenant, body="Hi {{ contact.first_name }}")
    changed = await api.patch(f"{API}/templates/{kept['id']}", json={"body": source}, headers=tenant.headers)
    assert pointers(assert_problem(changed, 422, "template_invalid")) == ["/body"]
    assert (await get(api, tenant, f"/templates/{kept['id']}"))["body"] == kept["body"]
    campaign = await api.post(
        f"{API}/campaigns", json={"name": "C", "channel": "sms", "body": source}, headers=tenant.headers
    )
    assert pointers(assert_problem(campaign, 422, "template_invalid")) == ["/body"]


async def test_a_preview_that_breaks_a_limit_for_its_contact_answers_a_problem(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    template = await new_template(api, tenant, body=DOUBLED_COMPANY)
    small = await new_contact(api, tenant, company_name="Acme")
    shown = await post(api, tenant, f"/templates/{template['id']}/preview", 200, {"contact_id": small["id"]})
    assert shown["body"] == "Hi Acme"

    big = await new_contact(api, tenant, company_name="C" * 500)
    response = await api.post(
        f"{API}/templates/{template['id']}/preview", json={"contact_id": big["id"]}, headers=tenant.headers
    )
    problem = assert_problem(response, 422, "template_invalid")
    assert pointers(problem) == ["/body"]
    assert "longer than 100000 characters" in problem["errors"][0]["detail"]


async def test_a_recipient_whose_render_breaks_a_limit_is_skipped_with_the_reason(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    tag = new_tag()
    small = await new_contact(api, tenant, company_name="Acme", tags=[tag])
    big = await new_contact(api, tenant, company_name="C" * 500, tags=[tag])
    campaign = await new_campaign(api, tenant, body=DOUBLED_COMPANY, audience={"tags": [tag]})
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202)
    await run_jobs(container)

    assert (await get(api, tenant, f"/campaigns/{campaign['id']}"))["status"] == "completed"
    assert await per_contact(container, campaign["id"]) == {small["id"]: 1}
    async with container.engines().owner.connect() as conn:
        rows = await conn.execute(
            text("SELECT contact_id, status, reason FROM campaign_recipients WHERE campaign_id = :c"),
            {"c": campaign["id"]},
        )
        recipients = {str(r.contact_id): (r.status, r.reason) for r in rows}
    status, reason = recipients[big["id"]]
    assert status == "skipped"
    assert reason.startswith("template: ")
    assert "longer than 100000 characters" in reason
    assert recipients[small["id"]][0] == "done"


async def test_renders_run_in_worker_threads_never_on_the_event_loop(
    api: httpx.AsyncClient, tenant: Tenant, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving (the test render), previewing and sending all render off the event loop's thread."""
    threads: list[int] = []
    generate = JinjaTemplateRenderer._generate

    def spy(self: JinjaTemplateRenderer, template: Any, context: Any) -> str:
        threads.append(threading.get_ident())
        return generate(self, template, context)

    monkeypatch.setattr(JinjaTemplateRenderer, "_generate", spy)
    loop_thread = threading.get_ident()
    tag = new_tag()
    ada = await new_contact(api, tenant, tags=[tag])
    template = await new_template(api, tenant, body="Hi {{ contact.first_name }}")
    await post(api, tenant, f"/templates/{template['id']}/preview", 200, {"contact_id": ada["id"]})
    campaign = await new_campaign(api, tenant, template_id=template["id"], audience={"tags": [tag]})
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202)
    await run_jobs(container)
    assert await per_contact(container, campaign["id"]) == {ada["id"]: 1}
    assert len(threads) >= 4  # saved, previewed, the campaign's content checked, sent
    assert loop_thread not in threads


async def test_a_javascript_link_from_a_merge_field_never_reaches_the_email(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    """The template is sanitised when saved, and the email again after rendering: a website stored
    before websites were checked cannot put a script link in the message."""
    tag = new_tag()
    ada = await new_contact(api, tenant, first_name="Ada", tags=[tag])
    async with container.engines().owner.begin() as conn:
        await conn.execute(
            text("UPDATE contacts SET website = 'javascript:alert(document.cookie)' WHERE id = :c"),
            {"c": ada["id"]},
        )
    html_source = (
        '<p><a href="{{ contact.website }}">Your site</a> <a href="tel:+14155550100">Call us</a>'
        ' <a href="https://shop.example/{{ contact.first_name }}">Shop</a></p>'
    )
    template = await new_template(
        api, tenant, channel="email", subject="Hi", body="Hello {{ contact.first_name }}", html=html_source
    )
    assert template["html"] == html_source.replace('">', '" rel="noopener noreferrer">')
    shown = await post(api, tenant, f"/templates/{template['id']}/preview", 200, {"contact_id": ada["id"]})
    assert "javascript" not in shown["html"]
    assert 'href="tel:+14155550100"' in shown["html"]

    campaign = await new_campaign(
        api, tenant, channel="email", template_id=template["id"], audience={"tags": [tag]}
    )
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202)
    await run_jobs(container)
    async with container.engines().owner.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT html FROM messages WHERE campaign_id = :c"), {"c": campaign["id"]}
            )
        ).scalar_one()
    assert "javascript" not in stored
    assert '<a rel="noopener noreferrer">Your site</a>' in stored
    assert 'href="https://shop.example/Ada"' in stored


# ------------------------------------------------------------------ a cancel under way, and the plan's limits


class HeldConversations:
    """The platform's conversations service, holding a campaign batch inside its transaction (its
    recipients taken, its messages not yet written) until the test lets it go: the moment a cancel
    arrives in production, made to happen every time."""

    def __init__(self, inner: MessageSender) -> None:
        self._inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def enqueue_many(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        await self.release.wait()
        return await self._inner.enqueue_many(*args, **kwargs)


async def until_a_lock_is_awaited(container: Container, request: asyncio.Task[Any]) -> None:
    """Returns once a session of the test database waits for a lock (or the request is already done)."""
    query = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE NOT l.granted AND a.datname = current_database()"
    )
    for _ in range(3000):
        if request.done():
            return
        async with container.engines().owner.connect() as conn:
            if (await conn.execute(query)).scalar_one():
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the cancel never waited for the batch under way")


async def test_a_cancel_during_a_batch_wins_and_no_message_is_sent_after_it(
    api: httpx.AsyncClient, tenant: Tenant, container: Container
) -> None:
    """The batch holds its recipients when the cancel comes; the cancel waits for the batch's writes
    (before: each waited for the other, and PostgreSQL ended one of them with DeadlockDetected, a 500
    or a failed run that kept sending), then fails what the batch wrote before any of it is sent."""
    tag = new_tag()
    contacts = [await new_contact(api, tenant, tags=[tag]) for _ in range(BATCH * 3)]
    campaign = await new_campaign(api, tenant, audience={"tags": [tag]})
    await post(api, tenant, f"/campaigns/{campaign['id']}/send", 202)
    held = HeldConversations(container.conversations())
    service = CampaignService(
        container.uow(),
        container.clock(),
        cast(MessageSender, held),
        container.templates(),
        container.template_renderer(),
        container.contact_finder(),
        batch_size=BATCH,
        lanes=1,
    )
    runner = asyncio.create_task(service.run(tenant.location_id, uuid.UUID(campaign["id"])))
    await asyncio.wait_for(held.entered.wait(), 60)

    cancel = asyncio.create_task(api.post(f"{API}/campaigns/{campaign['id']}/cancel", headers=tenant.headers))
    await until_a_lock_is_awaited(container, cancel)
    held.release.set()
    response = await cancel
    ran = await runner

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert ran is CampaignStatus.CANCELLED
    await run_jobs(container)  # the queued run finds the campaign cancelled
    async with container.engines().owner.connect() as conn:
        claimed = await conn.execute(
            text("SELECT count(*) FROM messages WHERE campaign_id = :c AND claimed_at IS NOT NULL"),
            {"c": campaign["id"]},
        )
        assert claimed.scalar_one() == 0  # none was handed to a provider
        rows = await conn.execute(
            text("SELECT status, count(*) FROM campaign_recipients WHERE campaign_id = :c GROUP BY status"),
            {"c": campaign["id"]},
        )
        assert dict(rows.all()) == {"cancelled": len(contacts)}
    numbers = await stats(api, tenant, campaign["id"])
    assert (numbers["sent"], numbers["pending"]) == (0, 0)


# The free plan as a test sets it (GHL_PLAN_LIMITS): a day of 4 messages, campaigns of at most 6
# contacts, 2 messages a second, and API limits no test reaches.
DAILY, AUDIENCE, PACE = 4, 6, 2
TEST_FREE_PLAN = {
    "messages_per_day": DAILY,
    "audience": AUDIENCE,
    "sends_per_second": PACE,
    "api_burst": 10_000,
    "api_per_minute": 1_000_000,
    "location_burst": 10_000,
    "location_per_minute": 1_000_000,
}
CHICAGO = ZoneInfo("America/Chicago")  # new tenants' time zone


@pytest.fixture(scope="module")
async def limited(
    settings: Settings, twilio: TwilioDouble, sendgrid: SendGridDouble
) -> AsyncIterator[Container]:
    update = {
        "twilio_api_base": twilio.base_url,
        "sendgrid_api_base": sendgrid.base_url,
        "public_url": PUBLIC_URL,
        "plan_limits": {"free": TEST_FREE_PLAN},
    }
    built = make_container(settings.model_copy(update=update))
    built.campaigns.override(
        providers.Singleton(
            CampaignService,
            built.uow,
            built.clock,
            built.conversations,
            built.templates,
            built.template_renderer,
            built.contact_finder,
            lanes=1,
        )
    )
    try:
        yield built
    finally:
        await close_container(built)


@pytest.fixture
async def free(limited: Container) -> Tenant:
    return await new_tenant(limited, PlanTier.FREE)


@pytest.fixture
async def free_api(limited: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(limited) as client:
        yield client


async def test_past_the_days_messages_a_campaign_waits_for_the_locations_next_midnight(
    free_api: httpx.AsyncClient, free: Tenant, limited: Container
) -> None:
    tag = new_tag()
    contacts = [await new_contact(free_api, free, tags=[tag]) for _ in range(DAILY + 2)]
    campaign = await new_campaign(free_api, free, audience={"tags": [tag]})
    await post(free_api, free, f"/campaigns/{campaign['id']}/send", 202)
    await run_jobs(limited, fast_forward=False)

    assert sum((await per_contact(limited, campaign["id"])).values()) == DAILY
    shown = await get(free_api, free, f"/campaigns/{campaign['id']}")
    assert shown["status"] == "sending"
    assert f"at most {DAILY} messages a day" in shown["note"]
    assert (await stats(free_api, free, campaign["id"]))["pending"] == 2
    midnight = datetime.combine(
        datetime.now(CHICAGO).date() + timedelta(days=1), datetime.min.time(), CHICAGO
    )
    async with limited.engines().owner.connect() as conn:
        wake = await conn.execute(
            text(
                "SELECT scheduled_at FROM procrastinate_jobs WHERE task_name = 'campaigns.run' "
                "AND status = 'todo' AND args->>'campaign_id' = :c"
            ),
            {"c": campaign["id"]},
        )
        assert wake.scalar_one() == midnight
    # The inbox and the API are held to the same day's count, and write nothing.
    refused = await free_api.post(
        f"{API}/contacts/{contacts[0]['id']}/messages",
        json={"channel": "sms", "body": "Hi"},
        headers=free.headers,
    )
    problem = assert_problem(refused, 429, "daily_message_limit")
    assert (problem["limit"], problem["allowed"]) == ("messages_per_day", DAILY)
    assert int(refused.headers["retry-after"]) >= 1
    assert sum((await per_contact(limited, campaign["id"])).values()) == DAILY

    # The next day (its count moved to yesterday, as midnight would): the rest go, each once.
    async with limited.engines().owner.begin() as conn:
        await conn.execute(
            text("UPDATE message_volume SET day = day - 1 WHERE location_id = :l"), {"l": free.location_id}
        )
    await run_jobs(limited, fast_forward=True)
    assert await per_contact(limited, campaign["id"]) == {c["id"]: 1 for c in contacts}
    done = await get(free_api, free, f"/campaigns/{campaign['id']}")
    assert (done["status"], done["note"]) == ("completed", None)


async def test_a_campaign_to_more_contacts_than_the_plan_allows_is_refused(
    free_api: httpx.AsyncClient, free: Tenant, limited: Container
) -> None:
    tag = new_tag()
    for _ in range(AUDIENCE + 1):
        await new_contact(free_api, free, tags=[tag])
    campaign = await new_campaign(free_api, free, audience={"tags": [tag]})

    refused = await free_api.post(f"{API}/campaigns/{campaign['id']}/send", headers=free.headers)

    problem = assert_problem(refused, 409, "plan_limit")
    assert (problem["limit"], problem["tier"], problem["allowed"]) == ("audience", "free", AUDIENCE)
    assert (await get(free_api, free, f"/campaigns/{campaign['id']}"))["status"] == "draft"
    await run_jobs(limited)
    assert await per_contact(limited, campaign["id"]) == {}


async def test_a_scheduled_campaign_whose_audience_outgrew_the_plan_goes_back_to_draft(
    free_api: httpx.AsyncClient, free: Tenant, limited: Container
) -> None:
    tag = new_tag()
    for _ in range(AUDIENCE):
        await new_contact(free_api, free, tags=[tag])
    campaign = await new_campaign(free_api, free, audience={"tags": [tag]})
    later = datetime.now(UTC) + timedelta(hours=2)
    await post(free_api, free, f"/campaigns/{campaign['id']}/send", 202, {"at": later.isoformat()})
    await new_contact(free_api, free, tags=[tag])  # one more before its time comes
    async with limited.engines().owner.begin() as conn:  # and its time comes
        await conn.execute(
            text("UPDATE campaigns SET scheduled_at = now() WHERE id = :c"), {"c": campaign["id"]}
        )

    await run_jobs(limited, fast_forward=True)

    shown = await get(free_api, free, f"/campaigns/{campaign['id']}")
    assert (shown["status"], shown["scheduled_at"], shown["recipients"]) == ("draft", None, 0)
    assert f"more than {AUDIENCE} contacts" in shown["note"]
    assert await per_contact(limited, campaign["id"]) == {}


async def test_the_pace_is_never_faster_than_the_plan(
    free_api: httpx.AsyncClient, free: Tenant, limited: Container, sendgrid: SendGridDouble
) -> None:
    faster = await free_api.patch(
        f"{API}/messaging/settings", json={"email_per_second": PACE + 1}, headers=free.headers
    )
    assert pointers(assert_problem(faster, 422)) == ["/email_per_second"]
    assert (await get(free_api, free, "/messaging/settings"))["email_per_second"] is None
    # A rate saved before (say, under a bigger plan) is held to the plan's when sending.
    async with limited.engines().owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO messaging_settings (location_id, email_per_second) VALUES (:l, 500) "
                "ON CONFLICT (location_id) DO UPDATE SET email_per_second = 500"
            ),
            {"l": free.location_id},
        )
    await use_sendgrid(free_api, free)
    tag = new_tag()
    emails = {(await new_contact(free_api, free, tags=[tag]))["email"] for _ in range(PACE * 2)}
    campaign = await new_campaign(
        free_api, free, channel="email", subject="Sale", body="Sale today", audience={"tags": [tag]}
    )
    await post(free_api, free, f"/campaigns/{campaign['id']}/send", 202)
    await run_jobs(limited, fast_forward=False)

    # One bulk mail send per batch, and a batch holds a second's worth at the plan's pace.
    sends = [
        [p["to"][0]["email"] for p in r.body["personalizations"]]
        for r in sendgrid.mail_sends()
        if any(p["to"][0]["email"] in emails for p in r.body["personalizations"])
    ]
    assert sorted(len(s) for s in sends) == [PACE, PACE]
    assert {e for s in sends for e in s} == emails
