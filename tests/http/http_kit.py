"""Helpers for the HTTP API tests: a client on the real app, accounts, tokens and problem checks.

The client is httpx on the app's ASGI interface in the test's own event loop, so requests really run
concurrently under `asyncio.gather`. Each client gets its own address: the public auth endpoints are
rate limited per address, and tests must not share one bucket."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from support import Tenant as Tenant  # re-exported for the HTTP tests
from support import new_tenant as new_tenant
from support import open_api as open_api
from support import unique_ip as unique_ip

API = "/api/v1"
PASSWORD = "correct horse battery staple"


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with this status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    for member in ("type", "title", "status", "detail"):
        assert body.get(member), f"problem lacks {member}: {body}"
    assert body["status"] == status
    if code is not None:
        assert body.get("code") == code, body
    return body


def pointers(body: dict[str, Any]) -> list[str]:
    return sorted(error["pointer"] for error in body.get("errors", []))


@dataclass
class Account:
    """An agency created through sign-up, with its owner's credentials."""

    agency_id: str
    user_id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


async def sign_up(api: httpx.AsyncClient, email: str | None = None) -> Account:
    email = email or unique_email("owner")
    response = await api.post(
        f"{API}/auth/signup",
        json={"agency_name": "Acme Agency", "email": email, "password": PASSWORD, "name": "Olive Owner"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(
        agency_id=body["agency"]["id"],
        user_id=body["user"]["id"],
        email=email,
        password=PASSWORD,
        access_token=body["tokens"]["access_token"],
        refresh_token=body["tokens"]["refresh_token"],
    )


async def log_in(api: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await api.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def create_location(api: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    payload = {"name": f"Location {uuid.uuid4().hex[:6]}", "timezone": "America/New_York", **fields}
    response = await api.post(f"{API}/locations", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_user(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    role: str = "agency_user",
    grants: list[dict[str, str]] | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "email": email or unique_email(role),
        "name": "Uma User",
        "role": role,
        "password": PASSWORD,
        "locations": grants or [],
    }
    response = await api.post(f"{API}/users", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def location_token(api: httpx.AsyncClient, headers: dict[str, str], location_id: str) -> dict[str, str]:
    response = await api.post(
        f"{API}/auth/location-token", json={"location_id": location_id}, headers=headers
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


async def create_api_key(
    api: httpx.AsyncClient, headers: dict[str, str], scopes: list[str] | None = None, name: str = "key"
) -> dict[str, Any]:
    payload: dict[str, Any] = {"name": name}
    if scopes is not None:
        payload["scopes"] = scopes
    response = await api.post(f"{API}/api-keys", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
