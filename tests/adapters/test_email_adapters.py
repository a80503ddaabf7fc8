"""The email adapters against local stand-ins that speak the providers' wire formats: SendGrid's SDK
against a v3 API double, SendGrid's signed webhooks checked with the SDK's verifier against signatures
made as SendGrid documents them, and aiosmtplib against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ghl_adapters.messaging.configs import SendGridConfig, SmtpConfig, SmtpSecurity
from ghl_adapters.messaging.factory import SdkGatewayFactory
from ghl_adapters.messaging.sendgrid import INBOUND_PROVIDER, SendGridEmailGateway
from ghl_adapters.messaging.sendgrid_webhooks import (
    SendGridEventVerifier,
    SendGridInboundParseVerifier,
    parse_inbound_parse,
    parse_sendgrid_events,
)
from ghl_adapters.messaging.smtp import SmtpEmailGateway
from ghl_core.conversations.gateways import EmailMessage, MessageStatus, SendFailed, SendResult
from ghl_core.conversations.inbound import Attachment, EmailEventKind
from ghl_core.conversations.models import Channel
from ghl_core.inbound.models import InboundRequest, SignatureInvalid
from ghl_core.shared.clock import FixedClock
from ghl_core.webhooks.addresses import UrlGuard
from sendgrid_double import (
    DEFAULT_API_KEY,
    EventWebhookSigner,
    SendGridDouble,
    event,
    inbound_parse_fields,
    multipart_form,
    validate_mail_send,
)
from smtp_double import SmtpDouble, free_port

pytestmark = pytest.mark.slow

FROM = "team@agency.test"
SIGNED_AT = 1_717_000_000
EVENTS_URL = "https://app.example.test/webhooks/sendgrid/loc-1/events"
PARSE_URL = "https://app.example.test/webhooks/sendgrid/loc-1/inbound"
PDF = b"%PDF-1.4\x00\xff\xfe binary"


def email(key: str = "msg-1", **changes: object) -> EmailMessage:
    fields: dict[str, object] = {
        "key": key,
        "to": "ada@example.test",
        "to_name": "Ada Lovelace",
        "from_email": FROM,
        "subject": "Your appointment",
        "text": "See you on Monday.",
        "html": "<p>See you on <b>Monday</b>.</p>",
        "reply_to": "replies@parse.agency.test",
        "headers": {
            "List-Unsubscribe": "<https://app.example.test/u/abc>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "tags": {"location_id": "loc-1", "conversation_id": "conv-9"},
    }
    fields.update(changes)
    return EmailMessage(**fields)  # type: ignore[arg-type]


# SendGrid: sending


@pytest.fixture
def sendgrid() -> Iterator[SendGridDouble]:
    with SendGridDouble() as double:
        yield double


def gateway(
    double: SendGridDouble, api_key: str = DEFAULT_API_KEY, timeout: float = 5.0
) -> SendGridEmailGateway:
    config = SendGridConfig(api_key=api_key, from_email=FROM, from_name="Agency Team")
    return SendGridEmailGateway(config, api_base=double.base_url, timeout=timeout)


async def test_sendgrid_send_posts_the_documented_body(sendgrid: SendGridDouble) -> None:
    result = await gateway(sendgrid).send_email(email(from_name="Grace at Agency"))

    [request] = sendgrid.mail_sends()
    assert request.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    body = request.body
    assert body["from"] == {"email": FROM, "name": "Grace at Agency"}
    assert body["personalizations"] == [{"to": [{"email": "ada@example.test", "name": "Ada Lovelace"}]}]
    assert body["subject"] == "Your appointment"
    assert body["content"] == [
        {"type": "text/plain", "value": "See you on Monday."},
        {"type": "text/html", "value": "<p>See you on <b>Monday</b>.</p>"},
    ]
    assert body["reply_to"] == {"email": "replies@parse.agency.test"}
    assert body["headers"] == {
        "List-Unsubscribe": "<https://app.example.test/u/abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Message-ID": "<msg-1@agency.test>",
    }
    assert body["custom_args"] == {"location_id": "loc-1", "conversation_id": "conv-9", "ghl_key": "msg-1"}
    [sent] = sendgrid.sent
    assert result.provider == "sendgrid"
    assert result.provider_message_id == sent.message_id
    assert result.status is MessageStatus.SENT
    assert result.sent_at is not None


async def test_sendgrid_send_defaults_the_sender_name_and_keeps_reserved_headers_out(
    sendgrid: SendGridDouble,
) -> None:
    message = email(
        html=None,
        to_name=None,
        reply_to=None,
        headers={"To": "someone@else.test", "X-Campaign": "spring", "Message-ID": "<given@agency.test>"},
        tags={},
    )
    await gateway(sendgrid).send_email(message)

    body = sendgrid.mail_sends()[0].body
    assert body["from"] == {"email": FROM, "name": "Agency Team"}
    assert body["personalizations"] == [{"to": [{"email": "ada@example.test"}]}]
    assert body["content"] == [{"type": "text/plain", "value": "See you on Monday."}]
    assert body["headers"] == {"X-Campaign": "spring", "Message-ID": "<given@agency.test>"}
    assert body["custom_args"] == {"ghl_key": "msg-1"}
    assert "reply_to" not in body


async def test_sendgrid_header_injection_is_refused_before_sending(sendgrid: SendGridDouble) -> None:
    with pytest.raises(SendFailed) as failure:
        await gateway(sendgrid).send_email(email(headers={"X-Note": "a\r\nBcc: victim@example.test"}))
    assert failure.value.permanent
    assert sendgrid.requests == []


async def test_sendgrid_bad_key_is_permanent(sendgrid: SendGridDouble) -> None:
    with pytest.raises(SendFailed) as failure:
        await gateway(sendgrid, api_key="SG.wrong.key").send_email(email())
    assert failure.value.permanent
    assert failure.value.code == "401"
    assert "authorization grant is invalid" in failure.value.detail


async def test_sendgrid_refused_body_is_permanent(sendgrid: SendGridDouble) -> None:
    with pytest.raises(SendFailed) as failure:
        await gateway(sendgrid).send_email(email(to="not-an-address"))
    assert failure.value.permanent
    assert failure.value.code == "400"
    assert "to array is required" in failure.value.detail
    assert sendgrid.sent == []


@pytest.mark.parametrize("status", [429, 500])
async def test_sendgrid_throttling_and_outages_are_retryable(sendgrid: SendGridDouble, status: int) -> None:
    sendgrid.fail_next(1, status)
    gw = gateway(sendgrid)
    with pytest.raises(SendFailed) as failure:
        await gw.send_email(email())
    assert not failure.value.permanent
    assert failure.value.code == str(status)

    result = await gw.send_email(email())  # the retry goes through
    assert result.provider_message_id == sendgrid.sent[0].message_id


def test_sendgrid_gateway_needs_its_own_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.from-the-environment.x")
    with pytest.raises(ValueError, match="API key"):
        SendGridEmailGateway(SendGridConfig(api_key="", from_email=FROM))


async def test_sendgrid_unreachable_is_retryable() -> None:
    config = SendGridConfig(api_key=DEFAULT_API_KEY, from_email=FROM)
    gw = SendGridEmailGateway(config, api_base=f"http://127.0.0.1:{free_port()}", timeout=2.0)
    with pytest.raises(SendFailed) as failure:
        await gw.send_email(email())
    assert not failure.value.permanent
    assert failure.value.code == "network"
    assert not failure.value.unknown  # nothing was accepted: sending again is safe


async def test_sendgrid_timeout_is_retryable(sendgrid: SendGridDouble) -> None:
    sendgrid.delay = 1.0
    with pytest.raises(SendFailed) as failure:
        await gateway(sendgrid, timeout=0.2).send_email(email())
    assert not failure.value.permanent
    assert failure.value.code == "network"
    assert failure.value.unknown  # SendGrid may have it: the ledger asks before sending again


async def test_sendgrid_sends_run_concurrently_off_the_event_loop(sendgrid: SendGridDouble) -> None:
    gw = gateway(sendgrid)
    results = await asyncio.gather(*(gw.send_email(email(f"msg-{n}")) for n in range(40)))

    ids = {result.provider_message_id for result in results}
    assert len(ids) == 40
    assert {sent.unique_args["ghl_key"] for sent in sendgrid.sent} == {f"msg-{n}" for n in range(40)}


async def test_sendgrid_find_sent_asks_the_email_activity_api(sendgrid: SendGridDouble) -> None:
    gw = gateway(sendgrid)
    since = datetime.now(UTC) - timedelta(minutes=1)
    sent = await gw.send_email(email("msg-found"))
    await gw.send_email(email("msg-other"))

    found = await gw.find_sent(email("msg-found"), since)

    assert found is not None
    assert found.provider_message_id == sent.provider_message_id
    assert found.status is MessageStatus.DELIVERED
    query = next(r for r in sendgrid.requests if r.path == "/v3/messages").query
    assert query["query"] == ["unique_args['ghl_key']=\"msg-found\""]
    assert await gw.find_sent(email("msg-never-sent"), since) is None


async def test_sendgrid_find_sent_without_the_activity_add_on_cannot_tell(sendgrid: SendGridDouble) -> None:
    sendgrid.activity = False
    with pytest.raises(NotImplementedError):
        await gateway(sendgrid).find_sent(email(), datetime.now(UTC))


# SendGrid: Event Webhook


def events_request(body: bytes, headers: dict[str, str]) -> InboundRequest:
    return InboundRequest("POST", EVENTS_URL, {"content-type": "application/json", **headers}, body)


def verifier_at(seconds_after_signing: int) -> SendGridEventVerifier:
    return SendGridEventVerifier(
        clock=FixedClock(datetime.fromtimestamp(SIGNED_AT + seconds_after_signing, UTC))
    )


def test_event_webhook_signed_by_sendgrid_verifies() -> None:
    signer = EventWebhookSigner()
    events = [event("delivered", message_id="abc", key="msg-1"), event("open", message_id="abc")]
    body = json.dumps(events).encode()

    envelope = verifier_at(5).verify(events_request(body, signer.headers(body, SIGNED_AT)), signer.public_key)

    assert envelope.provider == "sendgrid"
    assert envelope.type == "email.events"
    assert envelope.provider_event_id == hashlib.sha256(body).hexdigest()
    assert envelope.payload == events


def test_event_webhook_with_real_clock_verifies() -> None:
    signer = EventWebhookSigner()
    body = json.dumps([event("processed")]).encode()
    envelope = SendGridEventVerifier().verify(events_request(body, signer.headers(body)), signer.public_key)
    assert envelope.payload[0]["event"] == "processed"


def test_event_webhook_tampered_body_is_refused() -> None:
    signer = EventWebhookSigner()
    body = json.dumps([event("delivered", email="ada@example.test")]).encode()
    headers = signer.headers(body, SIGNED_AT)
    tampered = body.replace(b"ada@example.test", b"eve@example.test")
    with pytest.raises(SignatureInvalid):
        verifier_at(5).verify(events_request(tampered, headers), signer.public_key)


def test_event_webhook_signed_with_another_key_is_refused() -> None:
    signer, other = EventWebhookSigner(), EventWebhookSigner()
    body = json.dumps([event("delivered")]).encode()
    with pytest.raises(SignatureInvalid):
        verifier_at(5).verify(events_request(body, other.headers(body, SIGNED_AT)), signer.public_key)


def test_event_webhook_timestamp_is_part_of_the_signature() -> None:
    signer = EventWebhookSigner()
    body = json.dumps([event("delivered")]).encode()
    headers = signer.headers(body, SIGNED_AT)
    headers["x-twilio-email-event-webhook-timestamp"] = str(SIGNED_AT + 1)
    with pytest.raises(SignatureInvalid):
        verifier_at(5).verify(events_request(body, headers), signer.public_key)


@pytest.mark.parametrize("seconds", [601, 3600, -301])
def test_event_webhook_stale_or_future_timestamp_is_refused(seconds: int) -> None:
    signer = EventWebhookSigner()
    body = json.dumps([event("delivered")]).encode()
    with pytest.raises(SignatureInvalid):
        verifier_at(seconds).verify(events_request(body, signer.headers(body, SIGNED_AT)), signer.public_key)


def test_event_webhook_nine_minutes_old_still_verifies() -> None:
    signer = EventWebhookSigner()
    body = json.dumps([event("delivered")]).encode()
    verifier_at(540).verify(events_request(body, signer.headers(body, SIGNED_AT)), signer.public_key)


@pytest.mark.parametrize(
    "missing", ["x-twilio-email-event-webhook-signature", "x-twilio-email-event-webhook-timestamp"]
)
def test_event_webhook_missing_header_is_refused(missing: str) -> None:
    signer = EventWebhookSigner()
    body = json.dumps([event("delivered")]).encode()
    headers = signer.headers(body, SIGNED_AT)
    del headers[missing]
    with pytest.raises(SignatureInvalid):
        verifier_at(5).verify(events_request(body, headers), signer.public_key)


@pytest.mark.parametrize("key", [None, "", "not-a-key", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"])
def test_event_webhook_without_a_usable_key_is_refused(key: str | None) -> None:
    signer = EventWebhookSigner()
    body = json.dumps([event("delivered")]).encode()
    with pytest.raises(SignatureInvalid):
        verifier_at(5).verify(events_request(body, signer.headers(body, SIGNED_AT)), key)


def test_event_webhook_garbage_signature_is_refused() -> None:
    signer = EventWebhookSigner()
    body = json.dumps([event("delivered")]).encode()
    headers = signer.headers(body, SIGNED_AT)
    headers["x-twilio-email-event-webhook-signature"] = "%%%not base64%%%"
    with pytest.raises(SignatureInvalid):
        verifier_at(5).verify(events_request(body, headers), signer.public_key)


def test_event_webhook_signed_body_that_is_not_a_list_is_refused() -> None:
    signer = EventWebhookSigner()
    body = json.dumps({"event": "delivered"}).encode()
    with pytest.raises(SignatureInvalid):
        verifier_at(5).verify(events_request(body, signer.headers(body, SIGNED_AT)), signer.public_key)


def test_parse_sendgrid_events_normalises_what_we_track() -> None:
    payload = [
        event("processed", message_id="m1", key="k1", timestamp=SIGNED_AT),
        event("delivered", message_id="m1", key="k1", response="250 2.0.0 OK", ip="167.89.1.2"),
        event("deferred", message_id="m1", response="451 try later", attempt="2"),
        event("bounce", message_id="m1", reason="550 5.1.1 unknown user", type="bounce", status="5.1.1"),
        event("dropped", message_id="m1", reason="Bounced Address"),
        event("open", message_id="m1", useragent="Mozilla/5.0"),
        event("click", message_id="m1", url="https://example.test/offer"),
        event("spamreport", message_id="m1"),
        event("unsubscribe", message_id="m1"),
        event("group_unsubscribe", message_id="m1", asm_group_id=1),  # not tracked
        event("not-a-kind"),
        "not an event",
    ]
    events = parse_sendgrid_events(payload)  # type: ignore[arg-type]

    assert [e.kind for e in events] == [
        EmailEventKind.PROCESSED,
        EmailEventKind.DELIVERED,
        EmailEventKind.DEFERRED,
        EmailEventKind.BOUNCE,
        EmailEventKind.DROPPED,
        EmailEventKind.OPEN,
        EmailEventKind.CLICK,
        EmailEventKind.SPAM_REPORT,
        EmailEventKind.UNSUBSCRIBE,
    ]
    first = events[0]
    assert first.provider == "sendgrid"
    assert first.provider_message_id == "m1"  # the ".filterdrecv-..." suffix is gone
    assert first.message_key == "k1"
    assert first.event_id == payload[0]["sg_event_id"]  # type: ignore[index]
    assert first.email == "ada@example.test"
    assert first.at == datetime.fromtimestamp(SIGNED_AT, UTC)
    assert events[1].reason == "250 2.0.0 OK"
    assert events[1].extra["ip"] == "167.89.1.2"
    assert events[2].extra["attempt"] == "2"
    assert events[3].reason == "550 5.1.1 unknown user"
    assert events[3].extra["type"] == "bounce"
    assert events[5].extra["useragent"] == "Mozilla/5.0"
    assert events[6].url == "https://example.test/offer"
    assert events[7].message_key is None


def test_parse_sendgrid_events_reads_legacy_unique_args() -> None:
    [parsed] = parse_sendgrid_events([event("open", unique_args={"ghl_key": "k7"})])
    assert parsed.message_key == "k7"
    assert parsed.provider_message_id is None


# SendGrid: Inbound Parse


def parse_request(body: bytes, content_type: str, headers: dict[str, str]) -> InboundRequest:
    return InboundRequest("POST", PARSE_URL, {"content-type": content_type, **headers}, body)


def reply_post(**changes: object) -> tuple[bytes, str]:
    fields: dict[str, object] = {
        "from_": "Ada Lovelace <ada@example.test>",
        "to": "Agency <replies@parse.agency.test>, cc@parse.agency.test",
        "subject": "Re: Your appointment",
        "text": "Monday works, thanks!",
        "html": "<p>Monday works, thanks!</p>",
        "message_id": "<CAF=reply-1@mail.example.test>",
        "in_reply_to": "<msg-1@agency.test>",
        "references": ("<thread-0@agency.test>", "<msg-1@agency.test>"),
        "attachments": [("notes.pdf", "application/pdf", PDF)],
    }
    fields.update(changes)
    form, files = inbound_parse_fields(**fields)  # type: ignore[arg-type]
    return multipart_form(form, files)


def test_inbound_parse_signed_post_verifies_and_parses() -> None:
    signer = EventWebhookSigner()
    body, content_type = reply_post()  # binary attachment: the body is not UTF-8
    verifier = SendGridInboundParseVerifier()

    envelope = verifier.verify(parse_request(body, content_type, signer.headers(body)), signer.public_key)

    assert envelope.provider == INBOUND_PROVIDER
    assert envelope.type == "email.inbound"
    assert envelope.provider_event_id == "<CAF=reply-1@mail.example.test>"
    json.dumps(envelope.payload)  # stored and handed to a job: must be JSON
    assert envelope.payload["files"] == {
        "attachment1": {"filename": "notes.pdf", "content_type": "application/pdf", "size": len(PDF)}
    }
    inbound = parse_inbound_parse(envelope.payload)
    assert inbound.provider == "sendgrid"
    assert inbound.from_email == "ada@example.test"
    assert inbound.from_name == "Ada Lovelace"
    assert inbound.to_emails == ("replies@parse.agency.test", "cc@parse.agency.test")
    assert inbound.subject == "Re: Your appointment"
    assert inbound.text == "Monday works, thanks!"
    assert inbound.html == "<p>Monday works, thanks!</p>"
    assert inbound.message_id == "<CAF=reply-1@mail.example.test>"
    assert inbound.in_reply_to == "<msg-1@agency.test>"
    assert inbound.references == ("<thread-0@agency.test>", "<msg-1@agency.test>")
    assert inbound.attachments == (
        Attachment(filename="notes.pdf", content_type="application/pdf", size=len(PDF)),
    )
    assert inbound.received_at == datetime(2024, 6, 3, 4, 43, 2, tzinfo=UTC)


def test_inbound_parse_text_only_post_verifies() -> None:
    signer = EventWebhookSigner()
    body, content_type = reply_post(attachments=[], html=None, message_id=None)
    body.decode("utf-8")  # this one goes through the SDK's text helper

    envelope = SendGridInboundParseVerifier().verify(
        parse_request(body, content_type, signer.headers(body)), signer.public_key
    )

    assert envelope.provider_event_id == hashlib.sha256(body).hexdigest()  # no Message-ID to go by
    inbound = parse_inbound_parse(envelope.payload)
    assert inbound.html is None
    assert inbound.attachments == ()
    assert inbound.message_id is None


@pytest.mark.parametrize("case", ["tampered", "other key", "stale", "unsigned"])
def test_inbound_parse_unverified_post_is_refused(case: str) -> None:
    signer = EventWebhookSigner()
    body, content_type = reply_post()
    headers = signer.headers(body, SIGNED_AT)
    clock = FixedClock(datetime.fromtimestamp(SIGNED_AT + 5, UTC))
    key = signer.public_key
    if case == "tampered":
        body = body.replace(b"Monday works", b"Send me $500")
    elif case == "other key":
        key = EventWebhookSigner().public_key
    elif case == "stale":
        clock = FixedClock(datetime.fromtimestamp(SIGNED_AT + 3600, UTC))
    else:
        headers = {}
    with pytest.raises(SignatureInvalid):
        SendGridInboundParseVerifier(clock=clock).verify(parse_request(body, content_type, headers), key)


def test_inbound_parse_signed_body_that_is_not_a_form_is_refused() -> None:
    signer = EventWebhookSigner()
    body = b'{"from": "ada@example.test"}'
    with pytest.raises(SignatureInvalid):
        SendGridInboundParseVerifier().verify(
            parse_request(body, "application/json", signer.headers(body)), signer.public_key
        )


def test_inbound_parse_fields_are_decoded_with_the_charsets_sendgrid_names() -> None:
    signer = EventWebhookSigner()
    form, _ = inbound_parse_fields(
        from_="José <jose@example.test>",
        to="replies@parse.agency.test",
        subject="Café à 9h",
        text="Très bien",
    )
    form["charsets"] = json.dumps({"from": "iso-8859-1", "subject": "iso-8859-1", "text": "iso-8859-1"})
    body, content_type = multipart_form(
        form, charsets={"from": "iso-8859-1", "subject": "iso-8859-1", "text": "iso-8859-1"}
    )

    envelope = SendGridInboundParseVerifier().verify(
        parse_request(body, content_type, signer.headers(body)), signer.public_key
    )

    inbound = parse_inbound_parse(envelope.payload)
    assert inbound.from_name == "José"
    assert inbound.subject == "Café à 9h"
    assert inbound.text == "Très bien"


def test_inbound_parse_raw_mode_reads_the_whole_message() -> None:
    raw = (
        "From: Ada Lovelace <ada@example.test>\r\n"
        "To: replies@parse.agency.test\r\n"
        "Subject: Re: Your appointment\r\n"
        "Message-ID: <raw-1@mail.example.test>\r\n"
        "In-Reply-To: <msg-1@agency.test>\r\n"
        "References: <msg-1@agency.test>\r\n"
        "Date: Mon, 3 Jun 2024 06:43:02 +0200\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMonday works.\r\n"
        "--b1\r\nContent-Type: text/csv\r\n"
        'Content-Disposition: attachment; filename="slots.csv"\r\n\r\na,b\r\n'
        "--b1--\r\n"
    )
    signer = EventWebhookSigner()
    fields = {"to": "replies@parse.agency.test", "from": "ada@example.test", "email": raw, "charsets": "{}"}
    body, content_type = multipart_form(fields)

    envelope = SendGridInboundParseVerifier().verify(
        parse_request(body, content_type, signer.headers(body)), signer.public_key
    )

    assert envelope.provider_event_id == "<raw-1@mail.example.test>"
    inbound = parse_inbound_parse(envelope.payload)
    assert inbound.from_email == "ada@example.test"
    assert inbound.text.strip() == "Monday works."
    assert inbound.in_reply_to == "<msg-1@agency.test>"
    assert inbound.attachments == (Attachment(filename="slots.csv", content_type="text/csv", size=3),)
    assert inbound.received_at == datetime(2024, 6, 3, 4, 43, 2, tzinfo=UTC)


# SMTP


def smtp_config(double: SmtpDouble | None = None, **changes: object) -> SmtpConfig:
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "port": double.port if double else free_port(),
        "from_email": FROM,
        "from_name": "Agency Team",
        "security": SmtpSecurity.NONE,
        "timeout_seconds": 5.0,
    }
    fields.update(changes)
    return SmtpConfig(**fields)  # type: ignore[arg-type]


class PinnedResolver:
    """Names resolved as a test says (the DNS is not ours to set); any other name does not resolve."""

    def __init__(self, pinned: dict[str, list[str]] | None = None) -> None:
        self.pinned = pinned or {}

    async def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.pinned:
            raise LookupError(f"{host} does not resolve")
        return list(self.pinned[host])


LENIENT = UrlGuard(PinnedResolver(), allow_private=True)  # as GHL_SMTP_ALLOW_PRIVATE=1: the double is local


def smtp_gateway(config: SmtpConfig, tls_context: ssl.SSLContext | None = None) -> SmtpEmailGateway:
    return SmtpEmailGateway(config, guard=LENIENT, tls_context=tls_context)


@pytest.fixture
def smtp() -> Iterator[SmtpDouble]:
    with SmtpDouble() as double:
        yield double


async def test_smtp_send_delivers_a_threadable_multipart_message(smtp: SmtpDouble) -> None:
    result = await smtp_gateway(smtp_config(smtp)).send_email(email())

    [mail] = smtp.messages
    message = mail.message
    assert mail.mail_from == FROM
    assert mail.rcpt_tos == ("ada@example.test",)
    assert message["From"] == "Agency Team <team@agency.test>"
    assert message["To"] == "Ada Lovelace <ada@example.test>"
    assert message["Reply-To"] == "replies@parse.agency.test"
    assert message["Subject"] == "Your appointment"
    assert message["Message-ID"] == "<msg-1@agency.test>"
    assert message["Date"] is not None
    assert message["List-Unsubscribe"] == "<https://app.example.test/u/abc>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None
    assert text_part.get_content().strip() == "See you on Monday."
    assert html_part is not None
    assert html_part.get_content().strip() == "<p>See you on <b>Monday</b>.</p>"
    assert result.provider == "smtp"
    assert result.provider_message_id == "<msg-1@agency.test>"
    assert result.status is MessageStatus.SENT


async def test_smtp_reply_keeps_threading_headers_and_a_given_message_id(smtp: SmtpDouble) -> None:
    headers = {
        "In-Reply-To": "<CAF=reply-1@mail.example.test>",
        "References": "<msg-1@agency.test> <CAF=reply-1@mail.example.test>",
        "Message-ID": "<msg-2@agency.test>",
    }
    message = email("msg-2", subject="Re: Your appointment", html=None, from_name="Grace", headers=headers)
    result = await smtp_gateway(smtp_config(smtp)).send_email(message)

    received = smtp.messages[0].message
    assert received["In-Reply-To"] == "<CAF=reply-1@mail.example.test>"
    assert received["References"] == "<msg-1@agency.test> <CAF=reply-1@mail.example.test>"
    assert received.get_all("Message-ID") == ["<msg-2@agency.test>"]
    assert received["From"] == "Grace <team@agency.test>"
    assert received.get_content_type() == "text/plain"
    assert result.provider_message_id == "<msg-2@agency.test>"


async def test_smtp_starttls_with_auth() -> None:
    with SmtpDouble(tls="starttls", auth=("mailer", "s3cret")) as double:
        config = smtp_config(double, security=SmtpSecurity.STARTTLS, username="mailer", password="s3cret")
        await smtp_gateway(config, tls_context=double.client_tls_context()).send_email(email())

        [mail] = double.messages
        assert mail.tls
        assert mail.login == "mailer"


async def test_smtp_bad_credentials_are_permanent() -> None:
    with SmtpDouble(tls="starttls", auth=("mailer", "s3cret")) as double:
        config = smtp_config(double, security=SmtpSecurity.STARTTLS, username="mailer", password="wrong")
        with pytest.raises(SendFailed) as failure:
            await smtp_gateway(config, tls_context=double.client_tls_context()).send_email(email())
        assert failure.value.permanent
        assert failure.value.code == "535"
        assert double.messages == []


async def test_smtp_implicit_tls() -> None:
    with SmtpDouble(tls="implicit") as double:
        config = smtp_config(double, security=SmtpSecurity.TLS)
        await smtp_gateway(config, tls_context=double.client_tls_context()).send_email(email())
        assert double.messages[0].tls


async def test_smtp_starttls_required_but_not_offered_is_permanent(smtp: SmtpDouble) -> None:
    with pytest.raises(SendFailed) as failure:
        await smtp_gateway(smtp_config(smtp, security=SmtpSecurity.STARTTLS)).send_email(email())
    assert failure.value.permanent
    assert smtp.messages == []


async def test_smtp_rejected_recipient_is_permanent(smtp: SmtpDouble) -> None:
    smtp.refuse_next_rcpt(550, "5.1.1 No such user here")
    with pytest.raises(SendFailed) as failure:
        await smtp_gateway(smtp_config(smtp)).send_email(email())
    assert failure.value.permanent
    assert failure.value.code == "550"
    assert "No such user" in failure.value.detail
    assert smtp.messages == []


async def test_smtp_greylisted_recipient_is_retryable(smtp: SmtpDouble) -> None:
    smtp.refuse_next_rcpt(451, "4.7.1 Greylisted, try again later")
    gw = smtp_gateway(smtp_config(smtp))
    with pytest.raises(SendFailed) as failure:
        await gw.send_email(email())
    assert not failure.value.permanent
    assert failure.value.code == "451"

    await gw.send_email(email())  # the retry is accepted
    assert len(smtp.messages) == 1


async def test_smtp_connection_refused_is_retryable() -> None:
    with pytest.raises(SendFailed) as failure:
        await smtp_gateway(smtp_config()).send_email(email())
    assert not failure.value.permanent
    assert failure.value.code == "network"


async def test_smtp_connects_to_the_checked_address_and_verifies_tls_for_the_name() -> None:
    """The name resolves only through the guard; the certificate names only it (no IP address)."""
    with SmtpDouble(tls="starttls", cert_names=("smtp.example.test",)) as double:
        guard = UrlGuard(PinnedResolver({"smtp.example.test": ["127.0.0.1"]}), allow_private=True)
        config = smtp_config(double, host="smtp.example.test", security=SmtpSecurity.STARTTLS)
        await SmtpEmailGateway(config, guard=guard, tls_context=double.client_tls_context()).send_email(
            email()
        )
        [mail] = double.messages
        assert mail.tls


async def test_smtp_implicit_tls_to_the_checked_address_keeps_the_name() -> None:
    with SmtpDouble(tls="implicit", cert_names=("smtp.example.test",)) as double:
        guard = UrlGuard(PinnedResolver({"smtp.example.test": ["127.0.0.1"]}), allow_private=True)
        config = smtp_config(double, host="smtp.example.test", security=SmtpSecurity.TLS)
        await SmtpEmailGateway(config, guard=guard, tls_context=double.client_tls_context()).send_email(
            email()
        )
        assert double.messages[0].tls


@pytest.mark.parametrize("host", ["127.0.0.1", "rebound.example.test"])
async def test_smtp_a_server_the_guard_refuses_is_never_connected_to(smtp: SmtpDouble, host: str) -> None:
    strict = UrlGuard(PinnedResolver({"rebound.example.test": ["127.0.0.1"]}))
    with pytest.raises(SendFailed) as failure:
        await SmtpEmailGateway(smtp_config(smtp, host=host), guard=strict).send_email(email())
    assert failure.value.permanent
    assert failure.value.code == "address_refused"
    assert "127.0.0.1" not in failure.value.detail
    assert smtp.messages == []


async def test_smtp_a_name_that_does_not_resolve_is_retryable_and_generic(smtp: SmtpDouble) -> None:
    with pytest.raises(SendFailed) as failure:
        await smtp_gateway(smtp_config(smtp, host="nowhere.example.test")).send_email(email())
    assert (failure.value.permanent, failure.value.code) == (False, "network")
    assert failure.value.detail == "smtp connection failed"


async def test_smtp_an_open_port_and_a_closed_one_fail_alike() -> None:
    """Something listening that is not SMTP, and nothing listening: one answer, so no port scan."""

    async def not_smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_smtp, "127.0.0.1", 0)
    open_port = server.sockets[0].getsockname()[1]
    answers = []
    async with server:
        for port in (open_port, free_port()):
            with pytest.raises(SendFailed) as failure:
                await smtp_gateway(smtp_config(port=port)).send_email(email())
            answers.append((failure.value.detail, failure.value.code, failure.value.permanent))
    assert answers == [("smtp connection failed", "network", False)] * 2


async def test_smtp_the_platforms_own_server_is_reached_by_name_unchecked(smtp: SmtpDouble) -> None:
    """No guard (the operator's SMTP_HOST): a relay on localhost is the common case."""
    await SmtpEmailGateway(smtp_config(smtp, host="localhost"), guard=None).send_email(email())
    assert len(smtp.messages) == 1


async def test_smtp_header_injection_is_refused(smtp: SmtpDouble) -> None:
    with pytest.raises(SendFailed) as failure:
        await smtp_gateway(smtp_config(smtp)).send_email(
            email(headers={"X-Note": "a\nBcc: eve@example.test"})
        )
    assert failure.value.permanent
    assert smtp.messages == []


async def test_smtp_cannot_find_a_lost_send(smtp: SmtpDouble) -> None:
    with pytest.raises(NotImplementedError):
        await smtp_gateway(smtp_config(smtp)).find_sent(email(), datetime.now(UTC))


# SendGrid: the bulk form (campaigns)


async def test_sendgrid_bulk_sends_one_request_with_a_personalization_per_message(
    sendgrid: SendGridDouble,
) -> None:
    messages = [
        email(f"msg-{n}", to=f"r{n}@example.test", subject=f"Hi {n}", text=f"Text {n}", html=f"<p>{n}</p>")
        for n in range(3)
    ]
    answers = await gateway(sendgrid).send_emails(messages)

    [request] = sendgrid.mail_sends()
    body = request.body
    assert body["from"] == {"email": FROM, "name": "Agency Team"}
    assert body["reply_to"] == {"email": "replies@parse.agency.test"}
    assert len(body["personalizations"]) == 3
    first = body["personalizations"][0]
    assert first["to"] == [{"email": "r0@example.test", "name": "Ada Lovelace"}]
    assert first["subject"] == "Hi 0"
    assert first["custom_args"] == {"location_id": "loc-1", "conversation_id": "conv-9", "ghl_key": "msg-0"}
    assert first["headers"]["Message-ID"] == "<msg-0@agency.test>"
    assert "headers" not in body
    assert "subject" not in body
    by_key = {s.unique_args["ghl_key"]: s for s in sendgrid.sent}
    for n in range(3):
        parts = {c["type"]: c["value"] for c in by_key[f"msg-{n}"].content}
        assert parts == {"text/plain": f"Text {n}", "text/html": f"<p>{n}</p>"}
        assert by_key[f"msg-{n}"].subject == f"Hi {n}"
        assert by_key[f"msg-{n}"].headers["List-Unsubscribe"] == "<https://app.example.test/u/abc>"
    assert all(isinstance(a, SendResult) for a in answers)
    assert {a.provider_message_id for a in answers if isinstance(a, SendResult)} == {
        sendgrid.sent[0].message_id
    }


async def test_sendgrid_bulk_keeps_to_the_documented_limits(sendgrid: SendGridDouble) -> None:
    messages = [email(f"msg-{n}", to=f"r{n}@example.test", html=None) for n in range(1001)]
    messages.append(email("big", text="x" * 10_001))  # past 10,000 bytes of substitutions: alone
    messages.append(email("other-sender", from_email="news@agency.test"))
    answers = await gateway(sendgrid).send_emails(messages)

    sizes = sorted(len(r.body["personalizations"]) for r in sendgrid.mail_sends())
    assert sizes == [1, 1, 1, 1000]
    assert all(isinstance(a, SendResult) for a in answers)
    big = next(r.body for r in sendgrid.mail_sends() if r.body.get("custom_args", {}).get("ghl_key") == "big")
    assert "substitutions" not in big["personalizations"][0]
    assert len(sendgrid.sent) == 1003


async def test_sendgrid_bulk_refused_for_one_address_sends_the_rest_one_by_one(
    sendgrid: SendGridDouble,
) -> None:
    messages = [
        email("ok-1", to="a@example.test"),
        email("bad", to="nobody"),
        email("ok-2", to="b@example.test"),
    ]
    answers = await gateway(sendgrid).send_emails(messages)

    assert isinstance(answers[0], SendResult)
    assert isinstance(answers[2], SendResult)
    assert isinstance(answers[1], SendFailed)
    assert answers[1].permanent
    assert answers[1].code == "400"
    assert sorted(s.unique_args["ghl_key"] for s in sendgrid.sent) == ["ok-1", "ok-2"]


@pytest.mark.parametrize("status", [429, 500])
async def test_sendgrid_bulk_outage_leaves_every_message_retryable(
    sendgrid: SendGridDouble, status: int
) -> None:
    sendgrid.fail_next(1, status)
    messages = [email(f"msg-{n}", to=f"r{n}@example.test") for n in range(3)]
    answers = await gateway(sendgrid).send_emails(messages)

    assert all(isinstance(a, SendFailed) and not a.permanent and a.code == str(status) for a in answers)
    assert sendgrid.sent == []
    retried = await gateway(sendgrid).send_emails(messages)
    assert all(isinstance(a, SendResult) for a in retried)
    assert sorted(s.unique_args["ghl_key"] for s in sendgrid.sent) == ["msg-0", "msg-1", "msg-2"]


async def test_sendgrid_bulk_refuses_a_header_break_or_an_api_key_per_message(
    sendgrid: SendGridDouble,
) -> None:
    messages = [
        email("bad-header", headers={"X-Note": "a\r\nBcc: victim@example.test"}),
        email("key", text="SG.abcdef.ghijkl leaked"),
        email("fine", to="c@example.test"),
    ]
    answers = await gateway(sendgrid).send_emails(messages)

    assert [type(a) for a in answers] == [SendFailed, SendFailed, SendResult]
    assert [s.unique_args["ghl_key"] for s in sendgrid.sent] == ["fine"]


def test_the_double_refuses_more_personalizations_than_documented() -> None:
    one = {"to": [{"email": "a@example.test"}], "subject": "s", "substitutions": {"-x-": "y" * 10_001}}
    body = {
        "from": {"email": FROM},
        "personalizations": [one] * 1001,
        "content": [{"type": "text/plain", "value": "-x-"}],
    }
    fields = {field for _, field in validate_mail_send(body)}
    assert "personalizations" in fields
    assert "personalizations.0.substitutions" in fields


async def test_smtp_the_factory_checks_every_server_but_the_platforms_own(smtp: SmtpDouble) -> None:
    """The platform's SMTP_HOST (a relay on localhost, say) is the operator's; a tenant's configuration
    naming the same place is checked and refused."""
    platform = smtp_config(smtp, host="localhost")
    strict = UrlGuard(PinnedResolver({"localhost": ["127.0.0.1"]}))
    factory = SdkGatewayFactory(
        FixedClock(datetime.now(UTC)), smtp_guard=strict, platform={Channel.EMAIL: platform}
    )

    await factory.email(platform).send_email(email())
    tenants = smtp_config(smtp, host="localhost", from_name="Someone Else")
    with pytest.raises(SendFailed) as failure:
        await factory.email(tenants).send_email(email())
    assert failure.value.code == "address_refused"
    assert len(smtp.messages) == 1
