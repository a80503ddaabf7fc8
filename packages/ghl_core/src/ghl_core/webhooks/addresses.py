"""Server-side request forgery protection: a webhook URL must lead to a public address, checked when the
subscription is saved and again before every attempt (the name may resolve elsewhere by then: DNS
rebinding). The sender then connects to the address that was checked, not to the name."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata services: refused even when private addresses are allowed.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses `host` resolves to; raises `LookupError` when it resolves to none."""
        ...


class UnsafeUrl(Exception):
    """The URL is malformed or leads to an address webhooks may not reach."""

    def __init__(self, detail: str, retryable: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable  # a name that does not resolve now may resolve later


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the addresses it may be reached at."""

    url: str
    scheme: str
    host: str  # as written (a name or an address literal, without brackets)
    port: int
    path: str  # path and query, at least "/"
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _unwrap(ip: IPAddress) -> IPAddress:
    """An IPv6 address carrying an IPv4 one (mapped, NAT64) is judged by the IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def refusal(address: str, allow_private: bool = False) -> str | None:
    """Why a webhook may not be sent to this address, or None when it may."""
    ip = _unwrap(ipaddress.ip_address(address))
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if allow_private:
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_url(url: str, allow_private: bool = False) -> Target:
    """Checks the URL's form (not its addresses): https, or http too when private addresses are allowed."""
    if not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"must be a URL of at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() for c in url):
        raise UnsafeUrl("must not contain spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("is not a valid URL") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme.lower() not in schemes:
        raise UnsafeUrl("must be an https:// URL" if not allow_private else "must be an http(s):// URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrl("must name a host")
    if parts.fragment:
        raise UnsafeUrl("must not have a #fragment")
    scheme = parts.scheme.lower()
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        path=path,
        addresses=(),
    )


class UrlGuard:
    """Resolves a URL's host and refuses it unless every address is one webhooks may reach. The same
    guard checks the SMTP servers tenants configure (`check_host`): one rule for every address a tenant
    can make the platform connect to."""

    def __init__(self, resolver: Resolver, allow_private: bool = False) -> None:
        self._resolver = resolver
        self.allow_private = allow_private

    async def check(self, url: str) -> Target:
        target = parse_url(url, self.allow_private)
        return Target(
            url=target.url,
            scheme=target.scheme,
            host=target.host,
            port=target.port,
            path=target.path,
            addresses=await self.check_host(target.host, target.port),
        )

    async def check_host(self, host: str, port: int, *, what: str = "webhooks are") -> tuple[str, ...]:
        """The addresses `host` may be reached at, each checked; `UnsafeUrl` when it resolves to none
        (retryable) or to any address that is refused. `what` names the refused thing in the message."""
        literal = _literal(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await self._resolver.resolve(host, port)
            except LookupError:
                raise UnsafeUrl(f"the host {host} does not resolve", retryable=True) from None
            if not addresses:
                raise UnsafeUrl(f"the host {host} does not resolve", retryable=True)
        for address in addresses:
            reason = refusal(address, self.allow_private)
            if reason is not None:
                shown = host if literal is not None else f"{host} ({address})"
                rule = "never allowed" if self.allow_private else "only sent to public addresses"
                raise UnsafeUrl(f"refused: {shown} is {reason}; {what} {rule}")
        return tuple(dict.fromkeys(addresses))
