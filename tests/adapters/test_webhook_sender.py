"""The httpx webhook sender against a real local server: it connects to the checked address, never
follows redirects, caps what it reads back and reports network errors and timeouts as results."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from ghl_adapters.webhooks import DnsResolver, HttpxWebhookSender, StandardWebhooksSigner
from ghl_adapters.webhooks.sender import request_for
from ghl_core.webhooks.addresses import Target
from ghl_core.webhooks.payloads import new_secret

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            self._echo()

        def do_PATCH(self) -> None:
            self._echo()

        def do_GET(self) -> None:
            if self.path == "/big":
                reply = b"z" * (200 * 1024)
            else:
                self._echo()
                return
            self.send_response(200)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def _echo(self) -> None:
            """Answers JSON naming the method and the body it got (and whether a length was sent)."""
            length = self.headers.get("content-length")
            got = self.rfile.read(int(length or "0"))
            reply = json.dumps(
                {"method": self.command, "body": got.decode(), "length": length, "host": self.headers["host"]}
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("location", "http://169.254.169.254/")
                self.send_header("content-length", "0")
                self.end_headers()
                return
            if self.path == "/slow":
                time.sleep(1.5)
            reply = (self.headers["host"] + "|" + "y" * 5000).encode()
            try:
                self.send_response(200)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def target(port: int, path: str, addresses: tuple[str, ...] = ("127.0.0.1",)) -> Target:
    return Target(f"http://hooks.test:{port}{path}", "http", "hooks.test", port, path, addresses)


async def test_it_sends_to_the_checked_address_with_the_name_as_host(server: int) -> None:
    result = await HttpxWebhookSender().send(target(server, "/ok"), {"x": "1"}, b"{}")
    assert result.status_code == 200
    assert result.response_excerpt is not None
    assert result.response_excerpt.startswith(f"hooks.test:{server}|")
    assert len(result.response_excerpt) == 1024


async def test_put_sends_the_body_and_the_response_body_is_kept(server: int) -> None:
    result = await HttpxWebhookSender().send(target(server, "/echo"), {}, b'{"a":1}', method="PUT")
    assert result.status_code == 200
    assert result.response_body is not None
    answer = json.loads(result.response_body)
    assert (answer["method"], answer["body"], answer["host"]) == ("PUT", '{"a":1}', f"hooks.test:{server}")
    assert result.response_excerpt == result.response_body.decode()
    patched = await HttpxWebhookSender().send(target(server, "/echo"), {}, b"[]", method="PATCH")
    assert patched.response_body is not None
    assert json.loads(patched.response_body)["method"] == "PATCH"


async def test_get_sends_no_body(server: int) -> None:
    result = await HttpxWebhookSender().send(target(server, "/echo"), {}, b'{"ignored":true}', method="GET")
    assert result.status_code == 200
    assert result.response_body is not None
    assert json.loads(result.response_body) == {
        "method": "GET",
        "body": "",
        "length": None,
        "host": f"hooks.test:{server}",
    }


async def test_the_response_body_is_capped_and_the_excerpt_stays_short(server: int) -> None:
    result = await HttpxWebhookSender().send(target(server, "/big"), {}, b"", method="GET")
    assert result.status_code == 200
    assert result.response_body == b"z" * (64 * 1024)
    assert result.response_excerpt == "z" * 1024
    small = await HttpxWebhookSender(body_bytes=10).send(target(server, "/big"), {}, b"", method="GET")
    assert (small.response_body, small.response_excerpt) == (b"z" * 10, "z" * 1024)
    posted = await HttpxWebhookSender().send(target(server, "/ok"), {}, b"{}")
    assert posted.response_body is not None
    assert len(posted.response_body) == len(f"hooks.test:{server}|") + 5000  # all of a short body


async def test_an_unknown_method_is_refused_before_sending(server: int) -> None:
    with pytest.raises(ValueError, match="DELETE"):
        await HttpxWebhookSender().send(target(server, "/echo"), {}, b"", method="DELETE")


async def test_redirects_are_not_followed(server: int) -> None:
    result = await HttpxWebhookSender().send(target(server, "/redirect"), {}, b"{}")
    assert result.status_code == 302


async def test_a_timeout_is_a_result(server: int) -> None:
    result = await HttpxWebhookSender(timeout_seconds=0.3).send(target(server, "/slow"), {}, b"{}")
    assert result.status_code is None
    assert "timed out" in str(result.error)


async def test_the_next_address_is_tried_when_one_refuses(server: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    refused = await HttpxWebhookSender().send(target(closed, "/"), {}, b"{}")
    assert refused.status_code is None
    assert "could not connect" in str(refused.error)
    result = await HttpxWebhookSender().send(target(server, "/ok", ("::1", "127.0.0.1")), {}, b"{}")
    assert result.status_code == 200


def test_https_keeps_the_name_for_tls() -> None:
    t = Target("https://hooks.test/a?b=1", "https", "hooks.test", 443, "/a?b=1", ("2001:db8::1",))
    request = request_for(t, "2001:db8::1", {"webhook-id": "m"}, b"{}")
    assert str(request.url) == "https://[2001:db8::1]/a?b=1"
    assert request.headers["host"] == "hooks.test"
    assert request.extensions["sni_hostname"] == "hooks.test"


def test_signatures_verify_with_the_reference_library() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    signature = StandardWebhooksSigner().sign(secret, "msg_1", now, '{"a":1}')
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}


async def test_the_resolver_answers_and_refuses() -> None:
    assert "127.0.0.1" in await DnsResolver().resolve("localhost", 80)
    with pytest.raises(LookupError):
        await DnsResolver().resolve("no-such-host.invalid", 80)
