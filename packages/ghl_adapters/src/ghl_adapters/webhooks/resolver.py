"""Name resolution for the address guard: the system resolver, off the event loop."""

from __future__ import annotations

import asyncio
import socket


class DnsResolver:
    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise LookupError(f"{host} does not resolve: {exc}") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))
