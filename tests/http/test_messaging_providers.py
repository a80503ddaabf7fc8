"""Who may set a location's messaging providers, and where an SMTP provider may lead: a location user (not
admin) may look but not change them, and an SMTP server must be at an address the webhook guard allows,
checked when saved and again when each email is sent (the name may point elsewhere by then). A send that
cannot reach its server stores one generic error, so the message never tells an open port from a closed
one."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from test_conversations import message, new_contact, send
from test_webhooks import SwitchableResolver

from ghl_adapters.container import Container, close_container
from ghl_adapters.settings import Settings
from http_kit import (
    API,
    Account,
    assert_problem,
    bearer,
    create_api_key,
    create_location,
    create_user,
    location_token,
    log_in,
    pointers,
)
from jobs_kit import run_jobs
from smtp_double import SmtpDouble, free_port
from support import Tenant, make_container, new_tenant, open_api
from twilio_double import ACCOUNT_SID, AUTH_TOKEN

TWILIO = {
    "kind": "twilio",
    "config": {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+14155550100"},
}
FROM_EMAIL = "hello@acme.example"
PUBLIC_ADDRESS = "93.184.216.34"
GENERIC = "smtp connection failed"


def smtp(host: str, port: int = 2525, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "smtp",
        "config": {"host": host, "port": port, "from_email": FROM_EMAIL, "security": "none", **extra},
    }


# ------------------------------------------------------------------------------------ who may set them


async def test_a_location_user_may_see_but_not_change_the_providers(
    api: httpx.AsyncClient, owner: Account
) -> None:
    location = await create_location(api, owner.headers)
    user = await create_user(api, owner.headers, grants=[{"location_id": location["id"], "role": "user"}])
    user_login = bearer((await log_in(api, user["email"]))["access_token"])
    as_user = await location_token(api, user_login, location["id"])
    as_admin = await location_token(api, owner.headers, location["id"])
    path = f"{API}/messaging/providers/sms"

    refused = assert_problem(await api.put(path, json=TWILIO, headers=as_user), 403, "permission_denied")
    assert "providers:write" in refused["detail"]
    assert (await api.get(path, headers=as_user)).json()["kind"] == "outbox"  # nothing was stored

    assert (await api.put(path, json=TWILIO, headers=as_admin)).status_code == 200
    assert_problem(await api.delete(path, headers=as_user), 403, "permission_denied")
    shown = await api.get(path, headers=as_user)
    assert shown.status_code == 200
    assert (shown.json()["kind"], shown.json()["summary"]["auth_token"]) == ("twilio", "…" + AUTH_TOKEN[-4:])
    assert AUTH_TOKEN not in shown.text


async def test_a_key_needs_the_providers_scope_to_change_them(api: httpx.AsyncClient, owner: Account) -> None:
    location = await create_location(api, owner.headers)
    as_admin = await location_token(api, owner.headers, location["id"])
    path = f"{API}/messaging/providers/sms"
    sender = await create_api_key(api, as_admin, scopes=["conversations:read", "conversations:write"])
    assert_problem(await api.put(path, json=TWILIO, headers=bearer(sender["key"])), 403, "permission_denied")

    manager = await create_api_key(api, as_admin, scopes=["conversations:read", "providers:write"])
    assert (await api.put(path, json=TWILIO, headers=bearer(manager["key"]))).status_code == 200
    assert_problem(await api.delete(path, headers=bearer(sender["key"])), 403, "permission_denied")
    removed = await api.delete(path, headers=bearer(manager["key"]))
    assert removed.status_code == 204, removed.text


async def test_a_location_user_cannot_mint_a_key_with_the_providers_scope(
    api: httpx.AsyncClient, owner: Account
) -> None:
    location = await create_location(api, owner.headers)
    user = await create_user(api, owner.headers, grants=[{"location_id": location["id"], "role": "user"}])
    user_login = bearer((await log_in(api, user["email"]))["access_token"])
    me = await api.get(f"{API}/auth/me", headers=await location_token(api, user_login, location["id"]))
    assert "providers:write" not in me.json()["permissions"]


# ------------------------------------------------------------------------------ where SMTP may lead


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.0.0.7", "192.168.1.20", "169.254.169.254", "::1", "0.0.0.0", "127.1"],  # noqa: S104
)
async def test_an_smtp_server_at_a_private_address_is_refused_when_saved(
    api: httpx.AsyncClient, tenant: Tenant, host: str
) -> None:
    path = f"{API}/messaging/providers/email"
    body = assert_problem(
        await api.put(path, json=smtp(host), headers=tenant.headers), 422, "validation_failed"
    )
    assert pointers(body) == ["/config/host"]
    assert "public addresses" in body["errors"][0]["detail"] or "never allowed" in body["errors"][0]["detail"]
    assert (await api.get(path, headers=tenant.headers)).json()["kind"] == "outbox"


@pytest.mark.parametrize(
    "host", ["smtp://mail.example.com", "mail.example.com:25", "mail example.com", "[::1]"]
)
async def test_an_smtp_host_must_be_a_host_name_or_address(
    api: httpx.AsyncClient, tenant: Tenant, host: str
) -> None:
    path = f"{API}/messaging/providers/email"
    body = assert_problem(
        await api.put(path, json=smtp(host), headers=tenant.headers), 422, "validation_failed"
    )
    assert pointers(body) == ["/config/host"]


@dataclass
class Guarded:
    container: Container
    resolver: SwitchableResolver


@asynccontextmanager
async def guarded(settings: Settings, **overrides: Any) -> AsyncIterator[Guarded]:
    built = make_container(settings.model_copy(update=overrides))
    resolver = SwitchableResolver()
    built.webhook_resolver.override(providers.Object(resolver))
    try:
        yield Guarded(built, resolver)
    finally:
        await close_container(built)


@pytest.fixture
def double() -> Iterator[SmtpDouble]:
    with SmtpDouble() as server:
        yield server


async def send_email(api: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    contact = await new_contact(api, tenant)
    return await send(api, tenant, contact["id"], channel="email", subject="Hello", body="Hi there")


async def test_a_name_that_now_points_inside_is_refused_when_sending(
    settings: Settings, double: SmtpDouble
) -> None:
    async with guarded(settings) as strict:
        strict.resolver.pinned["rebind.example.test"] = [PUBLIC_ADDRESS]
        tenant = await new_tenant(strict.container)
        async with open_api(strict.container) as api:
            saved = await api.put(
                f"{API}/messaging/providers/email",
                json=smtp("rebind.example.test", double.port),
                headers=tenant.headers,
            )
            assert saved.status_code == 200, saved.text
            strict.resolver.pinned["rebind.example.test"] = ["127.0.0.1"]  # the name now points inside
            queued = await send_email(api, tenant)
            await run_jobs(strict.container, fast_forward=False)
            sent = await message(api, tenant, queued["id"])
    assert (sent["status"], sent["error_code"]) == ("failed", "address_refused")
    assert "127.0.0.1" not in sent["error_message"]
    assert double.messages == []


async def test_email_goes_to_the_address_the_guard_checked(settings: Settings, double: SmtpDouble) -> None:
    """The name resolves only through the guard's resolver: the send connects to the checked address."""
    async with guarded(settings, smtp_allow_private=True) as lenient:
        lenient.resolver.pinned["smtp.example.test"] = ["127.0.0.1"]
        tenant = await new_tenant(lenient.container)
        async with open_api(lenient.container) as api:
            saved = await api.put(
                f"{API}/messaging/providers/email",
                json=smtp("smtp.example.test", double.port),
                headers=tenant.headers,
            )
            assert saved.status_code == 200, saved.text
            queued = await send_email(api, tenant)
            await run_jobs(lenient.container, fast_forward=False)
            sent = await message(api, tenant, queued["id"])
    assert sent["status"] == "sent", sent
    [mail] = double.messages
    assert mail.message["Subject"] == "Hello"


class _NotSmtp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def not_smtp() -> Iterator[int]:
    """A port where something listens that does not speak SMTP."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _NotSmtp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


async def test_an_unreachable_server_stores_one_generic_error_whatever_listens_there(
    settings: Settings, not_smtp: int
) -> None:
    """An open port and a closed one end the same way: the message cannot be used to scan ports."""
    outcomes = []
    async with guarded(settings, smtp_allow_private=True) as lenient:
        for port in (closed_port(), not_smtp):
            tenant = await new_tenant(lenient.container)
            async with open_api(lenient.container) as api:
                saved = await api.put(
                    f"{API}/messaging/providers/email", json=smtp("127.0.0.1", port), headers=tenant.headers
                )
                assert saved.status_code == 200, saved.text
                queued = await send_email(api, tenant)
                await run_jobs(lenient.container, fast_forward=False)
                first = await message(api, tenant, queued["id"])
                await run_jobs(lenient.container)  # every retry, to the last
                last = await message(api, tenant, queued["id"])
            outcomes.append((first["status"], first["error_code"], first["error_message"]))
            outcomes.append((last["status"], last["error_code"], last["error_message"]))
    assert outcomes == [
        ("queued", "network", GENERIC),
        ("failed", "network", GENERIC),
        ("queued", "network", GENERIC),
        ("failed", "network", GENERIC),
    ]
