"""SSRF: a link on a page must not turn the monitor into a probe of its own network.

By default every non-public destination is refused BEFORE connecting: the
`tripwire` (conftest.py) records every TCP connect the test process tries,
so "no attempt at all" is asserted directly, and where the target is the
local test server, that it saw no request. The refusal is the observation
`private_address`, which the classifier turns into `blocked`. DNS answers
come from a canned table (no real DNS is asked); public-looking names with
fixed addresses use connect_to, which the operator controls and is trusted.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from monitor.check import Checker
from monitor.classify import classify
from monitor.config import CheckerSettings, load_settings
from monitor.netguard import NetworkPolicy, is_public_address, legacy_ipv4
from monitor.types import ErrorKind, LinkStatus, Observation

from hostile_kit import Tripwire, mapped

if TYPE_CHECKING:
    from tests.conftest import Site

Settings = Callable[..., CheckerSettings]
OpenClient = Callable[..., Awaitable[Any]]

REFUSED_LITERALS = [
    # IPv4: loopback, unspecified, private, link-local and cloud metadata,
    # carrier-grade NAT, multicast, reserved, broadcast, benchmarking
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "10.0.0.1", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "169.254.169.254", "169.254.170.2", "100.64.0.1", "100.127.255.254",
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.0.192",
    # IPv6: loopback, unspecified, unique local (fd00::/8, AWS metadata fd00:ec2::254),
    # link-local, multicast
    "[::1]", "[::]", "[fd00::1]", "[fd00:ec2::254]", "[fc00::1]", "[fe80::1]", "[fec0::1]",
    "[ff02::1]",
    # IPv4 embedded in IPv6: mapped (both spellings), compatible, NAT64, 6to4
    "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]",
    "[::ffff:10.0.0.1]", "[::127.0.0.1]", "[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::1]",
    # what the socket layer and browsers read as 127.0.0.1 / 169.254.169.254
    "127.1", "2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "0xa9.0xfe.0xa9.0xfe",
    "localhost", "LOCALHOST.", "metadata.localhost",
    "0", "127.0.0.1.", "00000177.0.0.1", "0x7F.0X0.0.1", "[::ffff:0:7f00:1]",
    # IPv6 zone ids (RFC 6874 "%25"), on loopback, link-local and a mapped address
    "[::1%25lo]", "[fe80::1%25lo]", "[::ffff:127.0.0.1%25lo]",
    # fullwidth digits and ideographic dots: IDNA maps them to 127.0.0.1
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127\u30020\u30020\u30021",
    # a user part that names a public host: the host is what follows the "@"
    "www.sclero.org@127.0.0.1", "pubmed.ncbi.nlm.nih.gov:443@[::1]", "u:p@169.254.169.254",
]

PRIVATE_DNS = {
    "metadata.example.com": ["169.254.169.254"],
    "intranet.example.com": ["10.1.2.3"],
    "router.example.com": ["192.168.0.1"],
    "cgnat.example.com": ["100.64.0.7"],
    "mcast.example.com": ["224.0.0.251"],
    "loopback.example.com": ["127.0.0.1"],
    "ula.example.com": ["fd00::1"],
    "link6.example.com": ["fe80::1"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "nat64.example.com": ["64:ff9b::a9fe:a9fe"],
    "all-private.example.com": ["10.0.0.1", "127.0.0.1", "::1"],
}


async def check_one(client_for: OpenClient, settings: CheckerSettings, url: str,
                    dns: Any) -> Observation:
    client = await client_for(settings, dns=dns)
    return await Checker(client, settings).check(url)


def assert_blocked(obs: Observation) -> None:
    assert obs.error_kind is ErrorKind.PRIVATE_ADDRESS, obs
    assert obs.http_status is None and obs.attempts == 1, "refused, never retried"
    verdict = classify(obs)
    assert (verdict.status, verdict.reason) == (LinkStatus.BLOCKED, "private_address")


# -- refused by default -------------------------------------------------------------------


@pytest.mark.parametrize("host", REFUSED_LITERALS)
async def test_non_public_hosts_are_refused_before_connecting(
        host: str, site: Site, checker_settings: Settings, client_for: OpenClient,
        canned_dns: Any, tripwire: Tripwire) -> None:
    dns = canned_dns({})
    settings = checker_settings(allow_private_networks=False, retries=2)
    obs = await check_one(client_for, settings, f"http://{host}:{site.port}/ok", dns)
    assert_blocked(obs)
    assert tripwire.attempts == [], "refused before any connect"
    assert dns.asked == [], "an address is not a name to look up"
    assert site.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "0x7f.1", "localhost",
                                  "loopback.example.com", "www.sclero.org@127.0.0.1"])
async def test_https_to_a_private_address_is_refused_before_the_handshake(
        host: str, make_site: Any, tls_ca: Any, checker_settings: Settings, client_for: OpenClient,
        canned_dns: Any, tripwire: Tripwire) -> None:
    """A TLS server really listens there: no connect, so no ClientHello either."""
    tls_site = await make_site(tls_ca.server_context())
    dns = canned_dns(PRIVATE_DNS)
    settings = checker_settings(allow_private_networks=False, ca_file=tls_ca.ca_file)
    obs = await check_one(client_for, settings, f"https://{host}:{tls_site.port}/ok", dns)
    assert_blocked(obs)
    assert tripwire.attempts == [] and tls_site.requests == []


@pytest.mark.parametrize("name", sorted(PRIVATE_DNS))
async def test_public_looking_names_resolving_to_private_addresses_are_refused(
        name: str, site: Site, checker_settings: Settings, client_for: OpenClient,
        canned_dns: Any, tripwire: Tripwire) -> None:
    dns = canned_dns(PRIVATE_DNS)
    settings = checker_settings(allow_private_networks=False)
    obs = await check_one(client_for, settings, f"http://{name}:{site.port}/ok", dns)
    assert_blocked(obs)
    assert dns.asked == [name]
    assert tripwire.attempts == [] and site.requests == []


def redirect_targets(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/ok",
        f"http://localhost:{port}/ok",
        f"http://[::ffff:127.0.0.1]:{port}/ok",
        f"http://[::1]:{port}/ok",
        f"http://2130706433:{port}/ok",
        f"http://0x7f.1:{port}/ok",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        f"http://loopback.example.com:{port}/ok",
        "http://metadata.example.com/computeMetadata/v1/",
        "https://intranet.example.com/admin",
    ]


@pytest.mark.parametrize("index", range(12))
async def test_a_redirect_to_a_private_address_is_refused(
        index: int, site: Site, checker_settings: Settings, client_for: OpenClient,
        canned_dns: Any, tripwire: Tripwire) -> None:
    target = redirect_targets(site.port)[index]
    dns = canned_dns(PRIVATE_DNS)
    settings = checker_settings(allow_private_networks=False,
                                connect_to=mapped(site.port, "journal.example.com"))
    url = str(URL("http://journal.example.com/goto").with_query(to=target, status="301"))
    obs = await check_one(client_for, settings, url, dns)
    assert_blocked(obs)
    assert [(h.status, h.location) for h in obs.redirects] == [(301, str(URL(target)))]
    assert [r.path for r in site.requests] == ["/goto"], "the private target saw nothing"
    assert tripwire.attempts == [("127.0.0.1", site.port)], "one connect: the public hop"


async def test_a_chain_of_public_hops_ending_private_is_refused_at_its_last_hop(
        site: Site, checker_settings: Settings, client_for: OpenClient,
        canned_dns: Any, tripwire: Tripwire) -> None:
    settings = checker_settings(allow_private_networks=False,
                                connect_to=mapped(site.port, "journal.example.com", "cdn.example.com"))
    last = URL("http://cdn.example.com/goto").with_query(to=f"http://127.0.0.1:{site.port}/ok")
    middle = URL("http://cdn.example.com/goto").with_query(to=str(last), status="307")
    first = URL("http://journal.example.com/goto").with_query(to=str(middle), status="301")
    obs = await check_one(client_for, settings, str(first), canned_dns({}))
    assert_blocked(obs)
    assert [h.status for h in obs.redirects] == [301, 307, 302]
    assert [(r.host.split(":")[0], r.path) for r in site.requests] == [
        ("journal.example.com", "/goto"), ("cdn.example.com", "/goto"), ("cdn.example.com", "/goto")]
    assert {a for a in tripwire.attempts} == {("127.0.0.1", site.port)}, "only the mapped public hops"


class RebindingDNS(AbstractResolver):
    """The attacker's DNS server: a public answer first, then a private one."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        ip = self.answers[min(len(self.asked), len(self.answers) - 1)]
        self.asked.append(host)
        return [{"hostname": host, "host": ip, "port": port, "family": socket.AF_INET,
                 "proto": 0, "flags": 0}]

    async def close(self) -> None:
        pass


async def test_dns_rebinding_is_refused_at_the_address_connected_to(
        site: Site, aiohttp_server: Any, checker_settings: Settings, client_for: OpenClient,
        tripwire: Tripwire) -> None:
    """rebind.example.com answers a "public" address (127.0.0.2, allowed here
    to stand for one) and, asked again, 127.0.0.1: the guard judges each
    answer where it is used, so the second check connects nowhere."""
    from aiohttp import web

    public_hits: list[str] = []

    async def public(request: web.Request) -> web.Response:
        public_hits.append(request.path)
        return web.Response(text="<title>Public</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", public)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.2", site.port).start()  # the same port, another address
    try:
        dns = RebindingDNS(["127.0.0.2", "127.0.0.1"])
        settings = checker_settings(allow_private_networks=("127.0.0.2/32",))
        client = await client_for(settings, dns=dns)
        checker = Checker(client, settings)
        url = f"http://rebind.example.com:{site.port}/ok"
        assert (await checker.check(url)).http_status == 200
        client.session.connector.clear_dns_cache()  # the short TTL of a rebinding answer
        await client.session.connector.close()  # and no pooled connection to reuse
        second = await Checker(await client_for(settings, dns=dns), settings).check(url)
    finally:
        await runner.cleanup()
    assert_blocked(second)
    assert dns.asked == ["rebind.example.com", "rebind.example.com"]
    assert public_hits == ["/ok"] and site.requests == [], "127.0.0.1 saw nothing"
    assert tripwire.attempts == [("127.0.0.2", site.port)]


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/ok", "http://[::ffff:7f00:1]:{port}/ok",
                                    "http://0x7f.1:{port}/ok", "http://loopback.example.com:{port}/ok",
                                    "http://169.254.169.254/latest/meta-data/"])
async def test_a_watched_page_or_robots_txt_redirected_to_a_private_address_is_not_fetched(
        target: str, site: Site, aiohttp_server: Any, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any, tripwire: Tripwire) -> None:
    """The audit's own fetches (watched pages, robots.txt, sitemaps) let
    aiohttp follow redirects: every hop passes the same guard."""
    from aiohttp import web

    from monitor.pages import fetch_page
    from monitor.sites import fetch_robots

    seen: list[str] = []

    async def away(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(status=301, headers={"Location": target.format(port=site.port)})

    app = web.Application()
    app.router.add_get("/{tail:.*}", away)
    cms = await aiohttp_server(app)
    settings = checker_settings(allow_private_networks=False,
                                connect_to=mapped(int(cms.port), "www.cms.example.org"))
    client = await client_for(settings, dns=canned_dns(PRIVATE_DNS))
    page = await fetch_page(client, "http://www.cms.example.org/refs.html", timeout=2)
    assert page.status == "error" and "not a public address" in page.error, page
    robots = await fetch_robots(client, "http://www.cms.example.org/refs.html", timeout=2)
    assert not robots.allows("http://www.cms.example.org/refs.html", "citation-monitor")
    assert seen == ["/refs.html", "/robots.txt"]
    assert site.requests == [], "the private target saw nothing"
    assert set(tripwire.attempts) == {("127.0.0.1", int(cms.port))}


async def test_a_page_full_of_private_links_is_audited_without_touching_them(
        site: Site, tmp_path: Path, aiohttp_server: Any) -> None:
    """The whole pipeline: the links are recorded as blocked, nothing is fetched."""
    from aiohttp import web

    from monitor.config import DatabaseSettings, PageSettings, Settings as Config
    from monitor.crawl import run_audit
    from monitor.store import Store

    targets = [f"http://127.0.0.1:{site.port}/ok", f"http://[::ffff:127.0.0.1]:{site.port}/ok",
               "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[fd00::1]/",
               f"http://0x7f.1:{site.port}/ok", f"http://localhost:{site.port}/ok"]
    links = "".join(f'<p><a href="{t}">Internal thing number {i}</a> described here. Source 2020.</p>'
                    for i, t in enumerate(targets))
    page = f"<html><head><title>Links</title></head><body><h2>Refs</h2>{links}</body></html>"

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/refs.html", serve)
    server = await aiohttp_server(app)
    settings = Config(
        pages=(PageSettings(url="http://www.cms.example.org/refs.html"),),
        checker=CheckerSettings(
            timeout=2.0, retries=0, soft404_probe=False,
            connect_to=mapped(int(server.port), "www.cms.example.org") + (("*", "refuse"),)),
        database=DatabaseSettings(path=str(tmp_path / "m.db")),
    )
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        results = {link.url: (link.status.value, link.reason) for link in store.run_links(outcome.run.id)}
    assert len(results) == len(targets)
    assert set(results.values()) == {("blocked", "private_address")}
    assert site.requests == []


# -- opting in ----------------------------------------------------------------------------------


async def test_allow_private_networks_true_opts_in(
        site: Site, checker_settings: Settings, client_for: OpenClient, canned_dns: Any) -> None:
    settings = checker_settings(allow_private_networks=True)
    dns = canned_dns(PRIVATE_DNS)
    for url in (site.url("/ok"), f"http://loopback.example.com:{site.port}/ok"):
        obs = await check_one(client_for, settings, url, dns)
        assert (obs.http_status, classify(obs).status) == (200, LinkStatus.OK), url
    assert len(site.requests) == 2


async def test_a_cidr_allows_just_that_network(
        site: Site, checker_settings: Settings, client_for: OpenClient,
        canned_dns: Any, tripwire: Tripwire) -> None:
    settings = checker_settings(allow_private_networks=("127.0.0.1/32",))
    dns = canned_dns(PRIVATE_DNS)
    allowed = await check_one(client_for, settings, site.url("/ok"), dns)
    assert allowed.http_status == 200
    # The same listed address named in the legacy forms is the same address.
    assert (await check_one(client_for, settings, f"http://0x7f.1:{site.port}/ok", dns)).http_status == 200
    connects = len(tripwire.attempts)
    for url in (f"http://127.0.0.2:{site.port}/ok", f"http://[::1]:{site.port}/ok",
                "http://169.254.169.254/", "http://10.0.0.1/", "http://metadata.example.com/",
                "http://intranet.example.com/"):
        assert_blocked(await check_one(client_for, settings, url, dns))
    assert len(tripwire.attempts) == connects, "nothing else was even tried"
    assert len(site.requests) == 2


async def test_a_host_name_allows_just_that_host_wherever_it_resolves(
        site: Site, checker_settings: Settings, client_for: OpenClient,
        canned_dns: Any, tripwire: Tripwire) -> None:
    # An intranet staging host: allowed by name, resolving to loopback here.
    dns = canned_dns({"staging.intranet": ["127.0.0.1"], "other.intranet": ["127.0.0.1"]})
    settings = checker_settings(allow_private_networks=("staging.intranet",))
    staging = f"http://staging.intranet:{site.port}"
    assert (await check_one(client_for, settings, f"{staging}/ok", dns)).http_status == 200
    for url in (f"http://other.intranet:{site.port}/ok", site.url("/ok"),
                str(URL(f"{staging}/goto").with_query(to=site.url("/ok")))):
        assert_blocked(await check_one(client_for, settings, url, dns))
    assert [r.path for r in site.requests] == ["/ok", "/goto"]
    assert all(host == "127.0.0.1" for host, _ in tripwire.attempts)


def test_the_allow_list_comes_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text('[[pages]]\nurl = "https://www.sclero.org/a.html"\n[checker]\n'
                    'allow_private_networks = ["10.20.0.0/16", "staging.intranet"]\n', encoding="utf-8")
    policy = NetworkPolicy.from_settings(load_settings(path).checker)
    assert policy.address_allowed("10.20.3.4", "cms.intranet")
    assert policy.address_allowed("192.168.1.1", "staging.intranet")
    assert not policy.address_allowed("10.21.0.1", "cms.intranet")
    assert not policy.address_allowed("169.254.169.254", "metadata.google.internal")
    assert not NetworkPolicy.from_settings(CheckerSettings()).address_allowed("10.20.3.4", "x")


# -- the numeric forms (netguard.legacy_ipv4, a fix made with these tests) ------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("127.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0xA9.0xFE.0xA9.0xFE", "169.254.169.254"),
    ("10.1", "10.0.0.1"), ("127.0.0.1.", "127.0.0.1"), ("8.8.8.8", "8.8.8.8"),
    ("example.org", None), ("deadbeef", None), ("1.2.3.4.5", None), ("08.1", None), ("0x", None),
    ("1.2.3.4 evil", None), ("", None), ("99999999999", None),
])
def test_legacy_ipv4(text: str, expected: str | None) -> None:
    parsed = legacy_ipv4(text)
    assert (str(parsed) if parsed else None) == expected


def test_every_refused_literal_really_is_non_public() -> None:
    """The table above is not padded with addresses the policy would allow anyway."""
    for host in REFUSED_LITERALS:
        bare = host.strip("[]").rstrip(".")
        try:
            ip: Any = ipaddress.ip_address(bare)
        except ValueError:
            ip = legacy_ipv4(bare)
        if ip is not None:
            assert not is_public_address(ip), host
