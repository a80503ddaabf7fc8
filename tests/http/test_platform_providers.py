"""Providers by configuration alone: with TWILIO_* and SENDGRID_* in the environment, a location that
sets no provider of its own sends through them (the SDKs pointed at local doubles), the API says where
its configuration comes from (never a secret), and the platform's Twilio auth token verifies the
location's callbacks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr

from ghl_adapters.container import Container, close_container, platform_providers
from ghl_adapters.messaging.configs import SmtpConfig
from ghl_adapters.settings import Settings
from ghl_core.conversations.models import Channel
from http_kit import API, Tenant, open_api
from jobs_kit import run_jobs
from sendgrid_double import DEFAULT_API_KEY, SendGridDouble
from support import make_container
from twilio_double import ACCOUNT_SID, AUTH_TOKEN, TwilioDouble, sign_twilio_request

PUBLIC_URL = "https://platform.example.test"
FROM_NUMBER = "+14155550123"


@pytest.fixture(scope="module")
def doubles() -> Iterator[tuple[TwilioDouble, SendGridDouble]]:
    with TwilioDouble() as twilio, SendGridDouble() as sendgrid:
        yield twilio, sendgrid


@pytest.fixture(scope="module")
async def container(
    settings: Settings, doubles: tuple[TwilioDouble, SendGridDouble]
) -> AsyncIterator[Container]:
    twilio, sendgrid = doubles
    update = {
        "twilio_api_base": twilio.base_url,
        "sendgrid_api_base": sendgrid.base_url,
        "public_url": PUBLIC_URL,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "twilio_from_number": FROM_NUMBER,
        "sendgrid_api_key": SecretStr(DEFAULT_API_KEY),
        "sendgrid_from_email": "news@platform.example",
    }
    built = make_container(settings.model_copy(update=update))
    try:
        yield built
    finally:
        await close_container(built)


@pytest.fixture
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(container) as client:
        yield client


def test_incomplete_settings_configure_nothing_and_smtp_is_the_email_fallback(settings: Settings) -> None:
    assert platform_providers(settings.model_copy(update={"twilio_account_sid": ACCOUNT_SID})) == {}
    found = platform_providers(
        settings.model_copy(update={"smtp_host": "relay.example", "smtp_from_email": "a@relay.example"})
    )
    email = found[Channel.EMAIL]
    assert isinstance(email, SmtpConfig)
    assert email.port == 587


async def test_a_location_without_a_provider_sends_through_the_environments(
    api: httpx.AsyncClient, container: Container, tenant: Tenant, doubles: tuple[TwilioDouble, SendGridDouble]
) -> None:
    twilio, sendgrid = doubles
    phone, email = "+13125550142", f"p-{uuid.uuid4().hex[:8]}@example.com"
    made = await api.post(
        f"{API}/contacts", json={"first_name": "Pat", "phone": phone, "email": email}, headers=tenant.headers
    )
    assert made.status_code == 201, made.text
    contact_id = made.json()["id"]

    shown = await api.get(f"{API}/messaging/providers/sms", headers=tenant.headers)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["kind"] == "twilio"
    assert AUTH_TOKEN not in shown.text
    assert DEFAULT_API_KEY not in shown.text

    for payload in (
        {"channel": "sms", "body": "Hello from the platform"},
        {"channel": "email", "subject": "Hi", "body": "Hello"},
    ):
        sent = await api.post(f"{API}/contacts/{contact_id}/messages", json=payload, headers=tenant.headers)
        assert sent.status_code == 201, sent.text
    await run_jobs(container, queues=["messages"])
    assert [m.body for m in twilio.messages if m.to == phone] == ["Hello from the platform"]
    [mail] = [r for r in sendgrid.mail_sends() if email in str(r.body)]
    assert mail.body["from"]["email"] == "news@platform.example"
    assert mail.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"

    # The location's Twilio callbacks verify with the platform's auth token.
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "SmsStatus": "received",
        "Body": "thanks",
        "From": phone,
        "To": FROM_NUMBER,
        "AccountSid": ACCOUNT_SID,
        "NumMedia": "0",
    }
    path = f"/webhooks/twilio/{tenant.location_id}"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    good = await api.post(
        path,
        content=urlencode(params),
        headers={**form, "X-Twilio-Signature": sign_twilio_request(AUTH_TOKEN, PUBLIC_URL + path, params)},
    )
    assert good.status_code == 200, good.text
    bad = await api.post(
        path,
        content=urlencode(params),
        headers={**form, "X-Twilio-Signature": sign_twilio_request("x" * 32, PUBLIC_URL + path, params)},
    )
    assert bad.status_code == 401
    await run_jobs(container, queues=["inbound"])
    thread = await api.get(
        f"{API}/conversations", params={"channel": "sms", "contact_id": contact_id}, headers=tenant.headers
    )
    assert thread.status_code == 200, thread.text
    conversation = thread.json()["items"][0]
    assert conversation["unread_count"] == 1
