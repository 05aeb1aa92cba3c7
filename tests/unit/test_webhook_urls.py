"""Webhook URLs: which are accepted, which addresses are refused, what is dialled."""

from __future__ import annotations

import ipaddress

import pytest

from app.webhooks.send import sign
from app.webhooks.urls import WebhookURLError, check_url, refused, resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pw@example.com/",
        "http://user@example.com/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https://example.com/" + "a" * 10_000,
        "http://exa mple.com/",
        "http:///path",
        "http://example.com:0/",
        "http://example.com:99999/",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(WebhookURLError):
        check_url(url)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.1.1",
        "100.64.0.1",
        "224.0.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::",
    ],
)
def test_private_addresses_are_refused_unless_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert refused(ip, allow_private=False)
    assert refused(ip, allow_private=True) is None


def test_the_metadata_address_is_refused_even_when_private_ones_are_allowed() -> None:
    for address in ("169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254"):
        assert refused(ipaddress.ip_address(address), allow_private=True)


def test_public_addresses_pass() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert refused(ipaddress.ip_address(address), allow_private=False) is None


async def test_the_checked_address_is_what_is_dialled() -> None:
    target = await resolve("https://localhost:8443/hook?x=1", allow_private=True)
    assert target.address == ipaddress.ip_address("127.0.0.1") or target.address.version == 6
    assert target.dial_url.startswith(("https://127.0.0.1:8443/hook?x=1", "https://[::1]:8443/"))
    assert target.host_header == "localhost:8443"
    with pytest.raises(WebhookURLError, match="loopback"):
        await resolve("http://localhost/", allow_private=False)


def test_the_signature_covers_the_timestamp_and_the_body() -> None:
    # sha256=HMAC-SHA256(secret, timestamp + "." + body), as the README states.
    import hashlib
    import hmac

    expected = hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("s3cret", "1700000000", b"{}") == f"sha256={expected}"
    assert sign("s3cret", "1700000001", b"{}") != sign("s3cret", "1700000000", b"{}")
