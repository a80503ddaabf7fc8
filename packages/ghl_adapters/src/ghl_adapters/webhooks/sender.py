"""Sends a signed webhook (POST, or PUT, PATCH, GET for workflow steps) with httpx, to the address the
guard checked: the URL is rewritten to that address, the name travels in the Host header and (https) as
the TLS server name, so the certificate is still verified for the name. Redirects are never followed; the
body read back is capped."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from typing import Any

import certifi
import httpx

from ghl_core.webhooks.addresses import Target
from ghl_core.webhooks.ports import SEND_METHODS, SendResult

EXCERPT_BYTES = 1024
BODY_BYTES = 64 * 1024


def address_url(target: Target, address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{target.scheme}://{host}:{target.port}{target.path}"


def request_for(
    target: Target, address: str, headers: Mapping[str, str], body: bytes, method: str = "POST"
) -> httpx.Request:
    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    return httpx.Request(
        method,
        address_url(target, address),
        headers={**headers, "host": target.host_header},
        content=None if method == "GET" else body,
        extensions=extensions,
    )


class HttpxWebhookSender:
    def __init__(
        self, timeout_seconds: float = 30.0, excerpt_bytes: int = EXCERPT_BYTES, body_bytes: int = BODY_BYTES
    ) -> None:
        self._timeout = timeout_seconds
        self._excerpt = excerpt_bytes
        self._body = body_bytes
        # Built once: loading the CA bundle costs ~40 ms, which a client per send would pay every time.
        # The context holds no per-connection state, so sharing it shares no session between targets.
        self._tls = ssl.create_default_context(cafile=certifi.where())

    async def send(
        self, target: Target, headers: Mapping[str, str], body: bytes, *, method: str = "POST"
    ) -> SendResult:
        if method not in SEND_METHODS:
            raise ValueError(f"cannot send a webhook with method {method!r}")
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        # A client per send: connections are never pooled across targets that share an address but not
        # a name (the pool keys on the address; the TLS server name would leak across them).
        async with httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, trust_env=False, verify=self._tls
        ) as client:
            error = "no address to send to"
            for address in target.addresses:
                try:
                    async with asyncio.timeout(self._timeout):
                        request = request_for(target, address, headers, body, method)
                        return await self._exchange(client, request, elapsed)
                except httpx.ConnectError as exc:
                    error = f"could not connect to {address}: {exc or type(exc).__name__}"
                    continue  # the next address of the name, if any
                except (httpx.HTTPError, TimeoutError) as exc:
                    reason = "timed out" if isinstance(exc, TimeoutError | httpx.TimeoutException) else exc
                    return SendResult(duration_ms=elapsed(), error=f"{type(exc).__name__}: {reason}")
            return SendResult(duration_ms=elapsed(), error=error)

    async def _exchange(self, client: httpx.AsyncClient, request: httpx.Request, elapsed: Any) -> SendResult:
        response = await client.send(request, stream=True)
        wanted = max(self._excerpt, self._body)
        try:
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) >= wanted:
                    break
        finally:
            await response.aclose()
        return SendResult(
            duration_ms=elapsed(),
            status_code=response.status_code,
            response_excerpt=bytes(received[: self._excerpt]).decode("utf-8", errors="replace") or None,
            response_body=bytes(received[: self._body]),
        )
