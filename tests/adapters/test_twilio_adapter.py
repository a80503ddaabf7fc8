"""The Twilio adapter through the official SDK against a local double of Twilio's Messages API, and
Twilio's callbacks: parsed, and verified with the SDK's validator against independently signed requests."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from ghl_adapters.messaging.configs import TwilioConfig
from ghl_adapters.messaging.twilio import (
    TwilioSmsGateway,
    TwilioVerifier,
    parse_twilio_callback,
    twiml_empty,
)
from ghl_core.conversations.gateways import MessageStatus, SendFailed, SmsMessage
from ghl_core.conversations.inbound import Attachment, InboundSms, StatusUpdate
from ghl_core.inbound.models import InboundRequest, SignatureInvalid
from twilio_double import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID, TwilioDouble, sign_twilio_request

SENDER = "+15005550006"
CONTACT = "+14155550123"
CONFIG = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=SENDER)
SERVICE_CONFIG = TwilioConfig(
    account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, messaging_service_sid=MESSAGING_SERVICE_SID
)
SMS_SID = re.compile(r"^SM[0-9a-f]{32}$")
CALLBACK_URL = "https://app.example.test/webhooks/twilio/sms?location=loc_1"


@pytest.fixture
def twilio() -> Iterator[TwilioDouble]:
    with TwilioDouble() as double:
        yield double


@pytest.fixture
async def gateway(twilio: TwilioDouble) -> AsyncIterator[TwilioSmsGateway]:
    gateway = TwilioSmsGateway(CONFIG, api_base=twilio.base_url, timeout=5)
    yield gateway
    await gateway.aclose()


def sms(body: str = "Your appointment is tomorrow at 10:00", **kwargs: object) -> SmsMessage:
    fields: dict[str, object] = {"key": "msg-1", "to": CONTACT, "from_number": SENDER, "body": body}
    return SmsMessage(**(fields | kwargs))  # type: ignore[arg-type]


# --- sending


async def test_send_reaches_twilio_with_sender_body_and_callback(
    gateway: TwilioSmsGateway, twilio: TwilioDouble
) -> None:
    message = sms(status_callback="https://app.example.test/webhooks/twilio/status")

    result = await gateway.send_sms(message)

    assert result.provider == "twilio"
    assert result.status is MessageStatus.SENT  # Twilio answered "queued"
    assert result.provider_message_id is not None
    assert SMS_SID.match(result.provider_message_id)
    assert result.sent_at is not None
    assert abs(result.sent_at - datetime.now(UTC)) < timedelta(minutes=1)
    [sent] = twilio.messages
    assert sent.sid == result.provider_message_id
    assert (sent.to, sent.from_, sent.body) == (CONTACT, SENDER, message.body)
    assert sent.messaging_service_sid is None
    assert sent.status_callback == "https://app.example.test/webhooks/twilio/status"
    assert sent.media_urls == []


async def test_send_with_media_sends_every_url_in_order(
    gateway: TwilioSmsGateway, twilio: TwilioDouble
) -> None:
    urls = ("https://cdn.example.test/a.jpg", "https://cdn.example.test/b.png")

    await gateway.send_sms(sms(media_urls=urls))

    [sent] = twilio.messages
    assert sent.media_urls == list(urls)
    assert sent.status_callback is None


async def test_send_through_a_messaging_service(twilio: TwilioDouble) -> None:
    gateway = TwilioSmsGateway(SERVICE_CONFIG, api_base=twilio.base_url)
    try:
        result = await gateway.send_sms(sms(from_number=None))
    finally:
        await gateway.aclose()

    assert result.status is MessageStatus.SENT  # Twilio answered "accepted"
    [sent] = twilio.messages
    assert sent.messaging_service_sid == MESSAGING_SERVICE_SID
    assert sent.from_ is None
    assert "From" not in sent.form


async def test_send_without_any_sender_fails_permanently_and_sends_nothing(twilio: TwilioDouble) -> None:
    gateway = TwilioSmsGateway(TwilioConfig(ACCOUNT_SID, AUTH_TOKEN), api_base=twilio.base_url)
    try:
        with pytest.raises(SendFailed) as failed:
            await gateway.send_sms(sms(from_number=None))
    finally:
        await gateway.aclose()

    assert failed.value.permanent
    assert twilio.requests == []


async def test_invalid_number_fails_permanently(gateway: TwilioSmsGateway, twilio: TwilioDouble) -> None:
    with pytest.raises(SendFailed) as failed:
        await gateway.send_sms(sms(to="4155550123"))

    assert failed.value.permanent
    assert failed.value.code == "21211"
    assert twilio.messages == []


async def test_unsubscribed_recipient_fails_permanently(
    gateway: TwilioSmsGateway, twilio: TwilioDouble
) -> None:
    twilio.unsubscribed.add(CONTACT)

    with pytest.raises(SendFailed) as failed:
        await gateway.send_sms(sms())

    assert failed.value.permanent
    assert failed.value.code == "21610"


async def test_landline_fails_permanently(gateway: TwilioSmsGateway, twilio: TwilioDouble) -> None:
    twilio.landlines.add(CONTACT)

    with pytest.raises(SendFailed) as failed:
        await gateway.send_sms(sms())

    assert (failed.value.permanent, failed.value.code) == (True, "21614")


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_and_throttling_are_retryable(
    gateway: TwilioSmsGateway, twilio: TwilioDouble, status: int
) -> None:
    twilio.fail_next(status)

    with pytest.raises(SendFailed) as failed:
        await gateway.send_sms(sms())

    assert not failed.value.permanent
    assert failed.value.code == str(20000 + status)
    assert twilio.messages == []
    retried = await gateway.send_sms(sms())  # the next attempt goes through
    assert [m.sid for m in twilio.messages] == [retried.provider_message_id]


async def test_wrong_credentials_fail_permanently(twilio: TwilioDouble) -> None:
    gateway = TwilioSmsGateway(TwilioConfig(ACCOUNT_SID, "0" * 32, SENDER), api_base=twilio.base_url)
    try:
        with pytest.raises(SendFailed) as failed:
            await gateway.send_sms(sms())
    finally:
        await gateway.aclose()

    assert failed.value.permanent
    assert failed.value.code == "20003"
    assert twilio.messages == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_connection_refused_is_retryable() -> None:
    gateway = TwilioSmsGateway(CONFIG, api_base=f"http://127.0.0.1:{_closed_port()}")
    try:
        with pytest.raises(SendFailed) as failed:
            await gateway.send_sms(sms())
    finally:
        await gateway.aclose()

    assert not failed.value.permanent
    assert failed.value.code is None


async def test_a_timeout_is_retryable(twilio: TwilioDouble) -> None:
    gateway = TwilioSmsGateway(CONFIG, api_base=twilio.base_url, timeout=0.2)
    twilio.delay_next(1.0)
    try:
        with pytest.raises(SendFailed) as failed:
            await gateway.send_sms(sms())
    finally:
        await gateway.aclose()

    assert not failed.value.permanent


async def test_concurrent_sends_share_the_client(gateway: TwilioSmsGateway, twilio: TwilioDouble) -> None:
    results = await asyncio.gather(*(gateway.send_sms(sms(body=f"hello {n}")) for n in range(50)))

    assert len({r.provider_message_id for r in results}) == 50
    assert sorted(m.body for m in twilio.messages) == sorted(f"hello {n}" for n in range(50))


async def test_every_twilio_host_goes_to_api_base(gateway: TwilioSmsGateway, twilio: TwilioDouble) -> None:
    """Other Twilio domains (messaging.twilio.com here) are redirected too, never reached for real: the
    double does not serve them, so it answers 404."""
    with pytest.raises(Exception, match="404"):
        await gateway._client.messaging.v1.services.list_async(limit=1)

    assert ("GET", "/v1/Services", f"127.0.0.1:{twilio.port}") in twilio.requests


async def test_a_closed_gateway_can_be_closed_again(twilio: TwilioDouble) -> None:
    gateway = TwilioSmsGateway(CONFIG, api_base=twilio.base_url)
    await gateway.send_sms(sms())
    await gateway.aclose()
    await gateway.aclose()


# --- find_sent


async def test_find_sent_finds_the_message(gateway: TwilioSmsGateway, twilio: TwilioDouble) -> None:
    since = datetime.now(UTC)  # with microseconds, while Twilio's dates have whole seconds
    sent = await gateway.send_sms(sms())

    found = await gateway.find_sent(sms(), since)

    assert found is not None
    assert found.provider_message_id == sent.provider_message_id
    assert found.status is MessageStatus.SENT
    assert found.sent_at is not None


async def test_find_sent_is_none_when_nothing_was_sent(gateway: TwilioSmsGateway) -> None:
    assert await gateway.find_sent(sms(), datetime.now(UTC) - timedelta(minutes=5)) is None


async def test_find_sent_ignores_another_body(gateway: TwilioSmsGateway) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    await gateway.send_sms(sms(body="first text"))

    assert await gateway.find_sent(sms(body="second text"), since) is None


async def test_find_sent_ignores_the_same_text_sent_before_since(
    gateway: TwilioSmsGateway, twilio: TwilioDouble
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    twilio.seed(CONTACT, sms().body, from_=SENDER, date_created=now - timedelta(days=3))
    twilio.seed(CONTACT, sms().body, from_=SENDER, date_created=now - timedelta(minutes=10))

    assert await gateway.find_sent(sms(), now - timedelta(minutes=1)) is None


async def test_find_sent_ignores_another_sender(gateway: TwilioSmsGateway, twilio: TwilioDouble) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    twilio.seed(CONTACT, sms().body, from_="+15005550001", date_created=now)

    assert await gateway.find_sent(sms(), now - timedelta(minutes=1)) is None


async def test_find_sent_reads_every_page(gateway: TwilioSmsGateway, twilio: TwilioDouble) -> None:
    """The wanted message is the oldest of 130 to that number: found on the last page, reached through
    the next_page_uri Twilio returns (an api.twilio.com URL, redirected to the double)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    wanted = twilio.seed(CONTACT, sms().body, from_=SENDER, date_created=start, status="delivered")
    for n in range(130):
        twilio.seed(CONTACT, f"other {n}", from_=SENDER, date_created=start + timedelta(seconds=n + 1))

    found = await gateway.find_sent(sms(), start - timedelta(seconds=30))

    assert found is not None
    assert (found.provider_message_id, found.status) == (wanted.sid, MessageStatus.DELIVERED)
    pages = [path for method, path, _ in twilio.requests if method == "GET"]
    assert len(pages) == 2  # 100 a page


async def test_find_sent_through_a_messaging_service(twilio: TwilioDouble) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    twilio.seed(CONTACT, sms().body, from_=SENDER, date_created=now)  # the same text, not from the service
    gateway = TwilioSmsGateway(SERVICE_CONFIG, api_base=twilio.base_url)
    try:
        assert await gateway.find_sent(sms(from_number=None), now) is None
        sent = await gateway.send_sms(sms(from_number=None))
        found = await gateway.find_sent(sms(from_number=None), now)
    finally:
        await gateway.aclose()

    assert found is not None
    assert found.provider_message_id == sent.provider_message_id


async def test_find_sent_with_wrong_credentials_fails_permanently(twilio: TwilioDouble) -> None:
    gateway = TwilioSmsGateway(TwilioConfig(ACCOUNT_SID, "0" * 32, SENDER), api_base=twilio.base_url)
    try:
        with pytest.raises(SendFailed) as failed:
            await gateway.find_sent(sms(), datetime.now(UTC))
    finally:
        await gateway.aclose()

    assert failed.value.permanent


# --- callbacks

INBOUND = {
    "ToCountry": "US",
    "SmsMessageSid": "SM" + "a" * 32,
    "NumMedia": "2",
    "SmsSid": "SM" + "a" * 32,
    "SmsStatus": "received",
    "Body": "Yes, see you then!",
    "To": SENDER,
    "NumSegments": "1",
    "MessageSid": "SM" + "a" * 32,
    "AccountSid": ACCOUNT_SID,
    "From": CONTACT,
    "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/SM/Media/ME1",
    "MediaContentType0": "image/jpeg",
    "MediaUrl1": "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/SM/Media/ME2",
    "MediaContentType1": "application/pdf",
    "ApiVersion": "2010-04-01",
}
STATUS = {
    "SmsSid": "SM" + "b" * 32,
    "SmsStatus": "delivered",
    "MessageStatus": "delivered",
    "To": CONTACT,
    "MessageSid": "SM" + "b" * 32,
    "AccountSid": ACCOUNT_SID,
    "From": SENDER,
    "ApiVersion": "2010-04-01",
}


def test_parse_inbound_message_with_media() -> None:
    parsed = parse_twilio_callback(INBOUND)

    assert parsed == InboundSms(
        provider="twilio",
        provider_message_id="SM" + "a" * 32,
        from_number=CONTACT,
        to_number=SENDER,
        body="Yes, see you then!",
        media=(
            Attachment(filename=None, content_type="image/jpeg", url=INBOUND["MediaUrl0"]),
            Attachment(filename=None, content_type="application/pdf", url=INBOUND["MediaUrl1"]),
        ),
    )


def test_parse_inbound_message_without_media() -> None:
    payload = {k: v for k, v in INBOUND.items() if not k.startswith("Media")} | {"NumMedia": "0"}

    parsed = parse_twilio_callback(payload)

    assert isinstance(parsed, InboundSms)
    assert parsed.media == ()


def test_parse_delivery_status() -> None:
    assert parse_twilio_callback(STATUS) == StatusUpdate(
        provider="twilio", provider_message_id="SM" + "b" * 32, status=MessageStatus.DELIVERED
    )


def test_parse_undelivered_status_with_error() -> None:
    payload = STATUS | {
        "MessageStatus": "undelivered",
        "SmsStatus": "undelivered",
        "ErrorCode": "30003",
        "ErrorMessage": "Unreachable destination handset",
    }

    parsed = parse_twilio_callback(payload)

    assert isinstance(parsed, StatusUpdate)
    assert parsed.status is MessageStatus.UNDELIVERED
    assert (parsed.error_code, parsed.error_message) == ("30003", "Unreachable destination handset")


@pytest.mark.parametrize(
    ("twilio_status", "ours"),
    [
        ("queued", MessageStatus.SENT),
        ("sent", MessageStatus.SENT),
        ("failed", MessageStatus.FAILED),
        ("read", MessageStatus.READ),
    ],
)
def test_parse_status_from_the_legacy_field(twilio_status: str, ours: MessageStatus) -> None:
    payload = {k: v for k, v in STATUS.items() if k != "MessageStatus"} | {"SmsStatus": twilio_status}

    parsed = parse_twilio_callback(payload)

    assert isinstance(parsed, StatusUpdate)
    assert parsed.status is ours


@pytest.mark.parametrize("missing", ["MessageSid", "From", "To"])
def test_parse_refuses_a_payload_without(missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        parse_twilio_callback({k: v for k, v in STATUS.items() if k != missing})


def test_parse_refuses_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="status"):
        parse_twilio_callback(STATUS | {"MessageStatus": "teleported"})


# --- verifying callbacks


def signed(
    params: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    url: str = CALLBACK_URL,
    signed_url: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/x-www-form-urlencoded",
    signature: str | None = None,
) -> InboundRequest:
    """A callback as Twilio posts it: the form-encoded parameters, signed over the URL it was sent to."""
    headers = {
        "content-type": content_type,
        "x-twilio-signature": signature or sign_twilio_request(token, signed_url or url, params),
        "i-twilio-idempotency-token": "b7c5d9b4-0000-4000-8000-000000000000",
    }
    return InboundRequest(method="POST", url=url, headers=headers, body=body or urlencode(params).encode())


def test_the_documented_signature_example() -> None:
    """The worked example of Twilio's webhook-security documentation (auth token 12345)."""
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"

    assert sign_twilio_request("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_verify_inbound_message() -> None:
    envelope = TwilioVerifier().verify(signed(INBOUND), AUTH_TOKEN)

    assert envelope.provider == "twilio"
    assert envelope.type == "sms.inbound"
    assert envelope.provider_event_id == INBOUND["MessageSid"]
    assert envelope.payload == INBOUND
    assert isinstance(parse_twilio_callback(envelope.payload), InboundSms)


def test_verify_status_callback_keys_each_status() -> None:
    verifier = TwilioVerifier()

    delivered = verifier.verify(signed(STATUS), AUTH_TOKEN)
    sent = verifier.verify(signed(STATUS | {"MessageStatus": "sent", "SmsStatus": "sent"}), AUTH_TOKEN)

    assert delivered.type == sent.type == "sms.status"
    assert delivered.provider_event_id == f"{STATUS['MessageSid']}:delivered"
    assert sent.provider_event_id == f"{STATUS['MessageSid']}:sent"


def test_verify_keeps_empty_values_and_encoded_characters() -> None:
    params = INBOUND | {"Body": "Café & crème = 100% 😀", "FromCity": "", "NumMedia": "0"}
    params = {k: v for k, v in params.items() if not k.startswith("Media")}

    envelope = TwilioVerifier().verify(signed(params), AUTH_TOKEN)

    assert envelope.payload["Body"] == "Café & crème = 100% 😀"
    assert envelope.payload["FromCity"] == ""


def test_verify_accepts_a_url_signed_with_its_default_port() -> None:
    """Twilio signs some URLs with the port written out; the SDK's validator accepts both forms."""
    request = signed(STATUS, signed_url=CALLBACK_URL.replace("example.test/", "example.test:443/", 1))

    assert TwilioVerifier().verify(request, AUTH_TOKEN).provider_event_id.endswith(":delivered")


def test_verify_refuses_a_tampered_body() -> None:
    request = signed(INBOUND)
    tampered = urlencode(INBOUND | {"Body": "STOP"}).encode()

    with pytest.raises(SignatureInvalid):
        TwilioVerifier().verify(
            InboundRequest(request.method, request.url, request.headers, tampered), AUTH_TOKEN
        )


def test_verify_refuses_another_token() -> None:
    with pytest.raises(SignatureInvalid):
        TwilioVerifier().verify(signed(INBOUND, token="e" * 32), AUTH_TOKEN)


def test_verify_refuses_another_url() -> None:
    request = signed(INBOUND, signed_url=CALLBACK_URL.replace("loc_1", "loc_2"))

    with pytest.raises(SignatureInvalid):
        TwilioVerifier().verify(request, AUTH_TOKEN)


def test_verify_refuses_a_missing_signature() -> None:
    request = signed(INBOUND)
    headers = {k: v for k, v in request.headers.items() if k != "x-twilio-signature"}

    with pytest.raises(SignatureInvalid, match="missing"):
        TwilioVerifier().verify(
            InboundRequest(request.method, request.url, headers, request.body), AUTH_TOKEN
        )


def test_verify_refuses_a_json_body_even_when_the_url_is_signed() -> None:
    """Twilio's JSON-body signatures (bodySHA256) are not for messaging callbacks; a JSON body whose
    signature covers the bare URL (what a form without parameters would sign) must not get through."""
    request = signed(
        {}, body=b'{"MessageSid": "SM1", "From": "+1", "To": "+2"}', content_type="application/json"
    )

    with pytest.raises(SignatureInvalid, match="application/json"):
        TwilioVerifier().verify(request, AUTH_TOKEN)


def test_verify_refuses_without_a_token() -> None:
    with pytest.raises(SignatureInvalid):
        TwilioVerifier().verify(signed(INBOUND), None)


def test_verify_refuses_a_signed_request_about_no_message() -> None:
    with pytest.raises(SignatureInvalid, match="MessageSid"):
        TwilioVerifier().verify(signed({"CallSid": "CA1", "From": CONTACT}), AUTH_TOKEN)


def test_twiml_empty_is_an_empty_response_document() -> None:
    assert twiml_empty() == '<?xml version="1.0" encoding="UTF-8"?><Response />'
