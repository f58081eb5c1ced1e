"""netguard.py (the SSRF policy) and client.GuardedResolver (where it is applied to names).

The resolver's upstream is a canned table: no real DNS may be asked here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from aiohttp.abc import ResolveResult

from monitor.client import GuardedResolver, parse_connect_to
from monitor.netguard import NetworkPolicy, PrivateAddressError, parse_ip, special_use

if TYPE_CHECKING:
    from conftest import CannedDNS

Canned = Callable[[dict[str, list[str]]], "CannedDNS"]


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("8.8.8.8", True),
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("172.31.255.255", False),
        ("172.32.0.1", True),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # CGNAT
        ("100.127.255.254", False),
        ("0.0.0.0", False),
        ("0.1.2.3", False),
        ("224.0.0.1", False),  # multicast
        ("239.255.255.250", False),
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("198.18.0.1", False),  # benchmarking
        ("::1", False),
        ("::", False),
        ("fd00::1", False),
        ("fc00::1", False),
        ("fe80::1", False),
        ("fe80::1%eth0", False),
        ("ff02::1", False),
        ("ff0e::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("::127.0.0.1", False),  # deprecated IPv4-compatible
        ("not an ip", False),  # fails closed
    ],
)
def test_default_policy_allows_public_addresses_only(ip: str, public: bool) -> None:
    assert NetworkPolicy(False).address_allowed(ip, "some.host") is public


@pytest.mark.parametrize(
    ("allow", "ip", "host", "expected"),
    [
        (True, "127.0.0.1", "x", True),
        (True, "169.254.169.254", "x", True),
        (("127.0.0.0/8",), "127.0.0.1", "x", True),
        (("127.0.0.0/8",), "::ffff:127.0.0.1", "x", True),  # the embedded address counts
        (("127.0.0.0/8",), "::1", "x", False),
        (("127.0.0.0/8",), "10.0.0.1", "x", False),
        (("127.0.0.1/32",), "127.0.0.2", "x", False),
        (("10.0.0.0/8", "fd00::/8"), "fd00::5", "x", True),
        (("intranet.example.org",), "10.1.2.3", "intranet.example.org", True),
        (("intranet.example.org",), "10.1.2.3", "INTRANET.example.org.", True),
        (("intranet.example.org",), "10.1.2.3", "other.example.org", False),
        (("intranet.example.org",), "8.8.8.8", "other.example.org", True),
        (("fe80::/10",), "fe80::1%eth0", "x", True),
    ],
)
def test_allow_list(allow: bool | tuple[str, ...], ip: str, host: str, expected: bool) -> None:
    assert NetworkPolicy(allow).address_allowed(ip, host) is expected


def test_trusted_hosts_are_allowed_names() -> None:
    policy = NetworkPolicy(False, trusted_hosts=["proxy.corp"])
    assert policy.host_allowed("proxy.corp")
    assert policy.address_allowed("10.0.0.8", "proxy.corp")
    assert not policy.address_allowed("10.0.0.8", "elsewhere.org")


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", False), ("[::ffff:127.0.0.1]", False), ("8.8.8.8", True), ("example.org", None)],
)
def test_literal_allowed(host: str, expected: bool | None) -> None:
    assert NetworkPolicy(False).literal_allowed(host) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1", "127.0.0.1"), ("[::1]", "::1"), ("fe80::1%eth0", "fe80::1%eth0"), ("example.org", None), ("127.1", None)],
)
def test_parse_ip(text: str, expected: str | None) -> None:
    parsed = parse_ip(text)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("doi.invalid", "nxdomain"),
        ("site.test", "nxdomain"),
        ("www.example", "nxdomain"),
        ("WWW.EXAMPLE.", "nxdomain"),
        ("hidden.onion", "nxdomain"),
        ("localhost", "loopback"),
        ("app.localhost", "loopback"),
        ("example.org", None),
        ("test.org", None),
        ("invalid.com", None),
    ],
)
def test_special_use_names(host: str, expected: str | None) -> None:
    assert special_use(host) == expected


def test_private_address_error_is_an_oserror_with_a_message() -> None:
    err = PrivateAddressError("metadata.internal", ["169.254.169.254"])
    assert isinstance(err, OSError)
    assert "169.254.169.254" in err.strerror


# -- the resolver --------------------------------------------------------------


def addresses(results: list[ResolveResult]) -> list[tuple[str, int]]:
    return [(r["host"], r["port"]) for r in results]


@pytest.mark.parametrize("host", ["doi.invalid", "site.test", "www.example", "x.onion"])
async def test_special_use_names_fail_without_a_query(host: str, canned_dns: Canned) -> None:
    dns = canned_dns({host: ["8.8.8.8"]})
    with pytest.raises(socket.gaierror):
        await GuardedResolver(NetworkPolicy(True), delegate=dns).resolve(host, 80)
    assert dns.asked == []


async def test_localhost_is_loopback_without_a_query(canned_dns: Canned) -> None:
    dns = canned_dns({})
    allowed = GuardedResolver(NetworkPolicy(("127.0.0.0/8",)), delegate=dns)
    assert addresses(await allowed.resolve("localhost", 8080)) == [("127.0.0.1", 8080)]
    with pytest.raises(PrivateAddressError):
        await GuardedResolver(NetworkPolicy(False), delegate=dns).resolve("localhost", 8080)
    assert dns.asked == []


async def test_names_resolving_to_private_addresses_are_refused(canned_dns: Canned) -> None:
    # DNS rebinding and internal names alike: the answer is checked.
    dns = canned_dns({"rebind.example.com": ["169.254.169.254"], "mixed.example.com": ["10.0.0.1", "8.8.8.8"]})
    resolver = GuardedResolver(NetworkPolicy(False), delegate=dns)
    with pytest.raises(PrivateAddressError) as caught:
        await resolver.resolve("rebind.example.com", 80)
    assert caught.value.addresses == ("169.254.169.254",)
    assert addresses(await resolver.resolve("mixed.example.com", 80)) == [("8.8.8.8", 80)]


async def test_allowed_names_may_resolve_anywhere(canned_dns: Canned) -> None:
    dns = canned_dns({"intranet.corp": ["10.0.0.1"]})
    resolver = GuardedResolver(NetworkPolicy(("intranet.corp",)), delegate=dns)
    assert addresses(await resolver.resolve("intranet.corp", 80)) == [("10.0.0.1", 80)]


async def test_connect_to_maps_host_and_port_without_a_query(canned_dns: Canned) -> None:
    dns = canned_dns({})
    resolver = GuardedResolver(NetworkPolicy(False), [("pubmed.ncbi.nlm.nih.gov:443", "127.0.0.1:8443")], dns)
    results = await resolver.resolve("pubmed.ncbi.nlm.nih.gov", 443)
    assert addresses(results) == [("127.0.0.1", 8443)]
    assert results[0]["hostname"] == "pubmed.ncbi.nlm.nih.gov"
    # Another port of the same name is not mapped, and not trusted.
    with pytest.raises(OSError):
        await resolver.resolve("pubmed.ncbi.nlm.nih.gov", 80)
    assert dns.asked == ["pubmed.ncbi.nlm.nih.gov"]


async def test_connect_to_refuse_makes_unmapped_names_fail_without_a_query(canned_dns: Canned) -> None:
    dns = canned_dns({"www.sclero.org": ["8.8.8.8"]})
    pairs = [("www.sclero.org:80", "127.0.0.1:9000"), ("*", "refuse")]
    resolver = GuardedResolver(NetworkPolicy(("127.0.0.0/8",)), pairs, dns)
    assert addresses(await resolver.resolve("www.sclero.org", 80)) == [("127.0.0.1", 9000)]
    with pytest.raises(socket.gaierror):
        await resolver.resolve("pubmed.ncbi.nlm.nih.gov", 443)
    assert addresses(await resolver.resolve("localhost", 80)) == [("127.0.0.1", 80)]
    assert dns.asked == []


@pytest.mark.parametrize(
    ("pairs", "mapping", "refuse"),
    [
        ([("A.org:80", "127.0.0.1:81")], {("a.org", 80): ("127.0.0.1", 81)}, False),
        ([("a.org:80", "[::1]:81")], {("a.org", 80): ("::1", 81)}, False),
        ([("*", "refuse")], {}, True),
        ([("*", "REFUSE"), ("b.org:443", "127.0.0.2:8443")], {("b.org", 443): ("127.0.0.2", 8443)}, True),
    ],
)
def test_parse_connect_to(pairs: list[tuple[str, str]], mapping: dict[tuple[str, int], tuple[str, int]], refuse: bool) -> None:
    assert parse_connect_to(pairs) == (mapping, refuse)


@pytest.mark.parametrize("pair", [("a.org", "127.0.0.1:80"), ("a.org:80", "127.0.0.1"), ("a.org:x", "1.2.3.4:5")])
def test_parse_connect_to_rejects_malformed_pairs(pair: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        parse_connect_to([pair])
