"""Which webhook URLs are accepted, and which addresses they may reach.

A URL is checked when a bot is given it (scheme, no credentials, length) and
its host again at every delivery: resolved, and refused when any address is
not a public one (loopback, private, link-local, multicast, unspecified...),
unless ``TALKROOM_WEBHOOK_ALLOW_PRIVATE`` is set. The delivery then connects to
the address that was checked, so a second DNS answer cannot swap it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.models import MAX_WEBHOOK_URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud metadata services: refused even when private addresses are allowed.
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class WebhookURLError(ValueError):
    """A webhook URL talkroom will not use; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where one delivery goes: the URL as given, and the checked address to dial."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    @property
    def dial_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        path = parts.path or "/"
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.scheme}://{host}:{self.port}{path}{query}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def check_url(url: str) -> str:
    """The URL if talkroom may be given it, else WebhookURLError."""
    if len(url) > MAX_WEBHOOK_URL:
        raise WebhookURLError(f"Webhook URLs can be at most {MAX_WEBHOOK_URL} characters.")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise WebhookURLError("A webhook URL cannot contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookURLError("That is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookURLError("Webhook URLs must start with http:// or https://.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise WebhookURLError("A webhook URL cannot hold credentials (user:password@).")
    if not parts.hostname:
        raise WebhookURLError("A webhook URL needs a host.")
    if port == 0:
        raise WebhookURLError("A webhook URL cannot use port 0.")
    return url


def refused(address: IPAddress, allow_private: bool) -> str | None:
    """Why a delivery may not reach this address, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return f"{address} is a cloud metadata address"
    if allow_private:
        return None
    if address.is_unspecified:
        return f"{address} is unspecified"
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_private or not address.is_global:
        return f"{address} is a private address"
    return None


async def resolve(url: str, *, allow_private: bool) -> Target:
    """The checked address to deliver ``url`` to; WebhookURLError if there is none.

    Every address the name resolves to must pass, so a name that answers with a
    public and a private address cannot be used to reach the private one.
    """
    check_url(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise WebhookURLError(f"{host} does not resolve: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise WebhookURLError(f"{host} does not resolve.")
    for address in addresses:
        if reason := refused(address, allow_private):
            raise WebhookURLError(f"Refused: {host} resolves to {reason}.")
    return Target(url, parts.scheme, host, port, addresses[0])
