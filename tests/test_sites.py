"""Whole-site discovery against a real local site of 50 pages.

The site: "/" links to seven sections "/sec{i}/", each listing six pages
"/sec{i}/p{j}.html" (1 + 7 + 42 = 50 pages). Every page also carries a
menu, citations of another server (a second real server on another port),
links to "localhost" (the same server under another host name), PDFs,
images and a mailto: none of these may be visited. Sitemaps: an index
pointing to a plain and a gzipped sitemap that list the 50 pages between
them.
"""

from __future__ import annotations

import asyncio
import re
import gzip
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from protego import Protego

from monitor.client import Client
from monitor.config import CheckerSettings, DatabaseSettings, PageSettings, Settings, SiteSettings
from monitor.crawl import run_audit
from monitor.decode import decode_html
from monitor.errors import ConfigError
from monitor.extract import extract_page
from monitor.sites import (
    MAX_SITEMAP_DEPTH,
    RobotsRules,
    SiteCrawl,
    discover_pages,
    discover_site,
    link_excluded,
    looks_like_html,
    page_wanted,
    parse_sitemap,
    product_token,
    same_site,
    without_session,
)
from monitor.store import Store
from monitor.types import Citation

AGENT = "citation-monitor/0.1 (link-rot audit; +https://example.org)"
SECTIONS = 7
LEAVES = 6
SECTION_PATHS = [f"/sec{i}/" for i in range(SECTIONS)]
LEAF_PATHS = [f"/sec{i}/p{j}.html" for i in range(SECTIONS) for j in range(LEAVES)]
ALL_PATHS = ["/", *SECTION_PATHS, *LEAF_PATHS]
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


# -- the local sites -----------------------------------------------------------------


@dataclass
class Server:
    """A real HTTP server on 127.0.0.1 that logs (Host, path) of every request."""

    pages: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    robots: tuple[int, str] = (404, "")
    delay: float = 0.0
    requests: list[tuple[str, str]] = field(default_factory=list)
    inflight: int = 0
    max_inflight: int = 0
    port: int = 0
    redirects: dict[str, str] = field(default_factory=dict)
    """path -> Location of a 301."""
    statuses: dict[str, int] = field(default_factory=dict)
    """path -> an error status answered instead of the page."""
    accepts: list[tuple[str, str]] = field(default_factory=list)
    """(path, Accept header) of every request: a page is read with its own."""
    canonical: Callable[[str], str] | None = None
    """Maps a requested path and query to the page served (a server that
    ignores session ids, tracking parameters, parameter order ...)."""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for _, path in self.requests]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path
        self.requests.append((request.headers.get("Host", ""), path))
        self.accepts.append((path, request.headers.get("Accept", "")))
        if path in self.redirects:
            raise web.HTTPMovedPermanently(self.redirects[path])
        if path in self.statuses:
            return web.Response(status=self.statuses[path], text="<html><title>Error</title></html>",
                                content_type="text/html")
        if self.canonical is not None:
            path = self.canonical(path)
        if path == "/robots.txt":
            status, text = self.robots
            return web.Response(status=status, text=text, content_type="text/plain")
        if path in self.files:
            body, ctype = self.files[path]
            return web.Response(body=body, content_type=ctype)
        if path not in self.pages:
            return web.Response(status=404, text="<html><title>Not found</title></html>", content_type="text/html")
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.Response(text=self.pages[path], content_type="text/html")
        finally:
            self.inflight -= 1


async def _start(server: Server) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    server.port = runner.addresses[0][1]
    return runner


def _menu() -> str:
    links = " ".join(f'<a href="/sec{i}/">Section {i}</a>' for i in range(SECTIONS))
    return f'<nav id="menu"><a href="/">Home</a> {links}</nav>'


def _citation(other: Server, n: int) -> str:
    return (f'<p><a href="{other.url(f"/article/{n}")}">Efficacy of rituximab in refractory '
            f'myositis number {n}</a>. A randomised trial of many patients. '
            f"Arthritis Rheum. 2013 Feb;65(2):314-324.</p>")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<link rel='stylesheet' href='/style.css'></head><body>{_menu()}"
            f"<h1>{title}</h1>{body}<footer><a href='mailto:webmaster@example.org'>Mail</a></footer>"
            "</body></html>")


def build_site(site: Server, other: Server) -> None:
    """The 50 pages, with every kind of link the crawl must not follow."""
    decoys = (
        f'<p><a href="http://localhost:{site.port}/sec0/">Same server, other host name</a></p>'
        '<p><a href="http://www.other.example/page.html">Another site</a></p>'
        '<p><a href="/files/annual-report.pdf">Annual report (PDF)</a> '
        '<a href="/files/archive.zip">Archive</a> <a href="#top">Top</a></p>'
        '<img src="/img/logo.png" alt="logo">'
    )
    sections = "".join(f'<li><a href="sec{i}/">Section {i} overview</a></li>' for i in range(SECTIONS))
    site.pages["/"] = _page("Home", f"<ul>{sections}</ul>{decoys}{_citation(other, 0)}")
    for i in range(SECTIONS):
        leaves = "".join(f'<li><a href="p{j}.html">Page {i}.{j}</a></li>' for j in range(LEAVES))
        site.pages[f"/sec{i}/"] = _page(f"Section {i}", f"<ul>{leaves}</ul>{_citation(other, i + 1)}")
        for j in range(LEAVES):
            body = (f'<h2>References</h2>{_citation(other, 100 + 10 * i + j)}'
                    f'<p>(Also see <a href="../../sec{i}/">the section</a>)</p>'
                    f'<p><a href="/files/p{i}-{j}.pdf">Handout</a></p>')
            site.pages[f"/sec{i}/p{j}.html"] = _page(f"Page {i}.{j}", body)


def add_sitemaps(site: Server) -> None:
    """An index -> a.xml (plain) and b.xml.gz (gzip, served as a file)."""
    first, second = ALL_PATHS[:25], ALL_PATHS[25:]
    a = (f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS} '
         'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">'
         + "".join(f"<url><loc>{site.url(p)}</loc><lastmod>2026-01-01</lastmod>"
                   f"<image:image><image:loc>{site.url('/img/logo.png')}</image:loc></image:image></url>"
                   for p in first)
         + f"<!-- <url><loc>{site.url('/commented-out.html')}</loc></url> --></urlset>")
    b = (f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>'
         + "".join(f"<url>\n  <loc>\n    {site.url(p)}\n  </loc>\n</url>" for p in second) + "</urlset>")
    index = (f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex {NS}>'
             f"<sitemap><loc>{site.url('/sitemaps/a.xml')}</loc></sitemap>"
             f"<sitemap><loc>{site.url('/sitemaps/b.xml.gz')}</loc></sitemap></sitemapindex>")
    site.files["/sitemaps/a.xml"] = (a.encode(), "application/xml")
    site.files["/sitemaps/b.xml.gz"] = (gzip.compress(b.encode()), "application/gzip")
    site.files["/sitemap_index.xml"] = (index.encode(), "application/xml")


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Server, Server]]:
    site, other = Server(), Server()
    runners = [await _start(site), await _start(other)]
    build_site(site, other)
    add_sitemaps(site)
    try:
        yield site, other
    finally:
        for runner in runners:
            await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    settings = CheckerSettings(allow_private_networks=("127.0.0.0/8",), timeout=5.0, retries=0)
    async with Client(settings) as opened:
        yield opened


@dataclass
class Visitor:
    """The test's `visit`: fetch with the client's session, extract, log."""

    client: Client
    visited: list[str] = field(default_factory=list)

    async def __call__(self, url: str) -> list[Citation] | None:
        self.visited.append(url)
        async with self.client.session.get(url) as resp:
            if resp.status != 200:
                return None
            body = await resp.read()
            html = decode_html(body, resp.headers.get("Content-Type", ""))
            return list(extract_page(html, str(resp.url)).citations)


async def crawl(client: Client, site: SiteSettings, *, concurrency: int = 4) -> tuple[SiteCrawl, Visitor]:
    visitor = Visitor(client)
    result = await discover_site(client, site, visitor, user_agent=AGENT, timeout=5.0, concurrency=concurrency)
    return result, visitor


def paths_of(server: Server, urls: list[str]) -> list[str]:
    prefix = server.url("")
    assert all(u.startswith(prefix) for u in urls), urls
    return [u[len(prefix):] for u in urls]


# -- discovery from sitemaps ------------------------------------------------------------


async def test_sitemap_index_with_a_gzipped_sitemap_gives_the_50_pages(servers: tuple[Server, Server], client: Client) -> None:
    site, other = servers
    result, visitor = await crawl(client, SiteSettings(sitemap=site.url("/sitemap_index.xml")))
    assert paths_of(site, result.pages) == ALL_PATHS
    assert visitor.visited == result.pages
    assert result.sitemap_urls == 50
    assert result.errors == [] and result.skipped_by_robots == []
    # A sitemap-only site is not crawled: the links of its pages are not followed.
    assert not any(p.endswith(".pdf") or p.startswith("/img") for p in site.paths())
    assert other.requests == []


async def test_robots_sitemap_line_is_read_when_none_is_configured(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.robots = (200, f"User-agent: *\nDisallow:\nSitemap: {site.url('/sitemap_index.xml')}\n")
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), max_depth=0))
    assert sorted(paths_of(site, result.pages)) == sorted(ALL_PATHS)
    assert result.pages[0] == site.url("/")
    assert result.sitemap_urls == 50


async def test_robots_disallowing_a_folder_skips_and_lists_its_sitemap_pages(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.robots = (200, "User-agent: *\nDisallow: /sec3/\n")
    result, visitor = await crawl(client, SiteSettings(sitemap=site.url("/sitemap_index.xml")))
    folder = [p for p in ALL_PATHS if p.startswith("/sec3/")]
    assert len(folder) == 7
    assert paths_of(site, result.skipped_by_robots) == folder
    assert paths_of(site, result.pages) == [p for p in ALL_PATHS if p not in folder]
    assert not any(p.startswith("/sec3/") for p in site.paths())
    assert set(visitor.visited) == set(result.pages)


async def test_junk_sitemap_is_an_error_not_a_crash(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.files["/junk.xml"] = (b"\x1f\x8b\x08\x00 definitely not gzip <urlset><url><loc>", "application/xml")
    result, visitor = await crawl(client, SiteSettings(sitemap=site.url("/junk.xml")))
    assert result.pages == [] and visitor.visited == []
    assert [url for url, _ in result.errors] == [site.url("/junk.xml")]


async def test_missing_sitemap_is_an_error_and_the_start_is_still_crawled(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), sitemap=site.url("/nope.xml"), max_depth=1))
    assert result.errors == [(site.url("/nope.xml"), "HTTP 404")]
    assert paths_of(site, result.pages) == ["/", *SECTION_PATHS]


async def test_sitemap_pages_on_another_host_are_not_visited(servers: tuple[Server, Server], client: Client) -> None:
    site, other = servers
    body = (f"<urlset {NS}><url><loc>{site.url('/sec0/')}</loc></url>"
            f"<url><loc>{other.url('/sec0/')}</loc></url>"
            f"<url><loc>http://localhost:{site.port}/sec1/</loc></url></urlset>")
    site.files["/mixed.xml"] = (body.encode(), "application/xml")
    result, _ = await crawl(client, SiteSettings(sitemap=site.url("/mixed.xml")))
    assert paths_of(site, result.pages) == ["/sec0/"]
    assert result.off_site == 2 and result.sitemap_urls == 3
    assert other.requests == []


async def test_nested_sitemap_indexes_stop_at_the_depth_limit(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    for level in range(MAX_SITEMAP_DEPTH + 2):
        child = site.url(f"/nest{level + 1}.xml")
        body = (f"<sitemapindex {NS}><sitemap><loc>{child}</loc></sitemap></sitemapindex>"
                if level <= MAX_SITEMAP_DEPTH else f"<urlset {NS}><url><loc>{site.url('/')}</loc></url></urlset>")
        site.files[f"/nest{level}.xml"] = (body.encode(), "application/xml")
    result, _ = await crawl(client, SiteSettings(sitemap=site.url("/nest0.xml")))
    assert result.pages == []
    assert result.errors == [(site.url(f"/nest{MAX_SITEMAP_DEPTH}.xml"),
                              f"sitemap index nested deeper than {MAX_SITEMAP_DEPTH}")]
    assert f"/nest{MAX_SITEMAP_DEPTH + 1}.xml" not in site.paths()


# -- discovery by crawling ----------------------------------------------------------


async def test_crawl_from_the_start_page_finds_the_same_50_pages(servers: tuple[Server, Server], client: Client) -> None:
    site, other = servers
    result, visitor = await crawl(client, SiteSettings(start=site.url("/")))
    assert sorted(paths_of(site, result.pages)) == sorted(ALL_PATHS)
    # Breadth first: the start, then the sections, then the pages.
    assert paths_of(site, result.pages[:8]) == ["/", *SECTION_PATHS]
    assert visitor.visited == result.pages
    assert result.errors == [] and result.sitemap_urls == 0
    # Each page was fetched once; nothing off-site, no PDF, image or stylesheet.
    page_requests = [p for p in site.paths() if p != "/robots.txt"]
    assert sorted(page_requests) == sorted(ALL_PATHS)
    assert other.requests == []
    assert all(host == f"127.0.0.1:{site.port}" for host, _ in site.requests)


async def test_crawl_discovery_order_does_not_depend_on_timing(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    first, _ = await crawl(client, SiteSettings(start=site.url("/")), concurrency=1)
    second, _ = await crawl(client, SiteSettings(start=site.url("/")), concurrency=8)
    assert first.pages == second.pages


async def test_robots_disallowed_folder_is_not_crawled_and_is_reported(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.robots = (200, "User-agent: *\nDisallow: /sec3/\n")
    result, _ = await crawl(client, SiteSettings(start=site.url("/")))
    assert paths_of(site, result.skipped_by_robots) == ["/sec3/"]  # its pages are only linked from it
    assert sorted(paths_of(site, result.pages)) == sorted(p for p in ALL_PATHS if not p.startswith("/sec3/"))
    assert not any(p.startswith("/sec3/") for p in site.paths())
    assert site.paths().count("/robots.txt") == 1


async def test_robots_group_of_our_product_token_wins_over_star(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.robots = (200, "User-agent: *\nDisallow: /\n\nUser-agent: citation-monitor\nDisallow: /sec1/\n")
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), max_depth=1))
    assert paths_of(site, result.pages) == ["/", *(p for p in SECTION_PATHS if p != "/sec1/")]
    assert paths_of(site, result.skipped_by_robots) == ["/sec1/"]


async def test_robots_404_allows_everything(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.robots = (404, "not here")
    result, _ = await crawl(client, SiteSettings(start=site.url("/")))
    assert len(result.pages) == 50 and result.skipped_by_robots == []
    assert result.robots.startswith("allow_all")


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_robots_server_error_disallows_the_whole_crawl(servers: tuple[Server, Server], client: Client, status: int) -> None:
    site, _ = servers
    site.robots = (status, "down")
    result, visitor = await crawl(client, SiteSettings(start=site.url("/"), sitemap=site.url("/sitemap_index.xml")))
    assert result.pages == [] and visitor.visited == []
    assert result.skipped_by_robots == [site.url("/")]
    assert result.errors == [(site.url("/sitemap_index.xml"), "sitemap disallowed by robots.txt")]
    assert site.paths() == ["/robots.txt"]


async def test_unreachable_site_disallows_the_crawl(client: Client) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = f"http://127.0.0.1:{port}/"
    result, visitor = await crawl(client, SiteSettings(start=start))
    assert result.pages == [] and visitor.visited == []
    assert result.skipped_by_robots == [start]
    assert result.robots.startswith("disallow_all")


async def test_max_pages_is_respected(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    result, visitor = await crawl(client, SiteSettings(start=site.url("/"), max_pages=10))
    assert paths_of(site, result.pages) == ["/", *SECTION_PATHS, "/sec0/p0.html", "/sec0/p1.html"]
    assert visitor.visited == result.pages
    assert len([p for p in site.paths() if p != "/robots.txt"]) == 10


async def test_max_pages_applies_to_sitemap_pages(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    result, _ = await crawl(client, SiteSettings(sitemap=site.url("/sitemap_index.xml"), max_pages=5))
    assert paths_of(site, result.pages) == ALL_PATHS[:5]


@pytest.mark.parametrize(("depth", "expected"), [
    (0, ["/"]),
    (1, ["/", *SECTION_PATHS]),
    (2, None),  # everything
])
async def test_max_depth_is_respected(servers: tuple[Server, Server], client: Client, depth: int, expected: list[str] | None) -> None:
    site, _ = servers
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), max_depth=depth))
    if expected is None:
        assert sorted(paths_of(site, result.pages)) == sorted(ALL_PATHS)
    else:
        assert paths_of(site, result.pages) == expected
        assert sorted(p for p in site.paths() if p != "/robots.txt") == sorted(expected)


async def test_include_patterns_narrow_the_crawl_but_the_start_is_visited(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), include=(r"/sec[12]/",)))
    wanted = ["/", *(p for p in ALL_PATHS if p.startswith(("/sec1/", "/sec2/")))]
    assert sorted(paths_of(site, result.pages)) == sorted(wanted)
    assert len(result.pages) == 15
    assert result.filtered > 0


async def test_exclude_patterns_drop_pages(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), exclude=(r"p5\.html$", r"/sec6/")))
    expected = [p for p in ALL_PATHS if not p.endswith("p5.html") and not p.startswith("/sec6/")]
    assert sorted(paths_of(site, result.pages)) == sorted(expected)
    assert not any(p.endswith("p5.html") for p in site.paths())


async def test_include_and_exclude_apply_to_sitemap_pages(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    result, _ = await crawl(client, SiteSettings(sitemap=site.url("/sitemap_index.xml"),
                                                 include=(r"/sec0/",), exclude=(r"p0\.html$",)))
    assert paths_of(site, result.pages) == ["/sec0/", *(f"/sec0/p{j}.html" for j in range(1, LEAVES))]


async def test_pages_that_fail_are_errors_and_the_crawl_goes_on(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.pages["/"] = site.pages["/"].replace("<ul>", '<ul><li><a href="/gone/">Gone section</a></li>', 1)

    async def visit(url: str) -> list[Citation] | None:
        if url.endswith("/sec2/"):
            raise RuntimeError("extraction blew up")
        return await Visitor(client)(url)

    result = await discover_site(client, SiteSettings(start=site.url("/"), max_depth=1), visit,
                                 user_agent=AGENT, timeout=5.0)
    # In discovery order: the menu (with /sec2/) comes before the list (with /gone/).
    assert result.errors == [(site.url("/sec2/"), "RuntimeError: extraction blew up"),
                             (site.url("/gone/"), "page could not be fetched")]
    assert len(result.pages) == 9


async def test_concurrency_is_bounded(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.delay = 0.02
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), max_depth=1), concurrency=2)
    assert len(result.pages) == 8
    assert 1 <= site.max_inflight <= 2


async def test_crawl_delay_makes_the_crawl_sequential(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.delay = 0.05  # pages slower than the delay: without one-at-a-time they would overlap
    site.robots = (200, "User-agent: *\nCrawl-delay: 0.01\n")
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), max_depth=1, max_pages=5), concurrency=8)
    assert len(result.pages) == 5
    assert site.max_inflight == 1


async def test_discover_pages_fetches_pages_itself(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    pages = await discover_pages(client, SiteSettings(start=site.url("/"), max_depth=1), client.settings)
    assert paths_of(site, pages) == ["/", *SECTION_PATHS]


async def test_invalid_pattern_is_a_config_error(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    with pytest.raises(ConfigError, match=r"sites: include: invalid regular expression '\('"):
        await crawl(client, SiteSettings(start=site.url("/"), include=("(",)))


# -- pure parts -------------------------------------------------------------------------

URLSET = f"<?xml version='1.0'?><urlset {NS}>{{}}</urlset>"


@pytest.mark.parametrize(("body", "pages", "children"), [
    pytest.param(URLSET.format("<url><loc>https://a.org/x</loc></url>"), ["https://a.org/x"], [], id="plain"),
    pytest.param(URLSET.format("<url><loc>\n  https://a.org/x?a=1&amp;b=2\n</loc></url>"),
                 ["https://a.org/x?a=1&b=2"], [], id="entity-and-whitespace"),
    pytest.param(URLSET.format("<url><loc><![CDATA[https://a.org/c?a=1&b=2]]></loc></url>"),
                 ["https://a.org/c?a=1&b=2"], [], id="cdata"),
    pytest.param(URLSET.format("<url><loc>https://a.org/x</loc></url>" * 2 + "<url><loc>/relative</loc></url>"
                               "<url><loc>ftp://a.org/f</loc></url><url><loc>https://A.ORG:443/y</loc></url>"),
                 ["https://a.org/x", "https://a.org/y"], [], id="dedup-relative-other-scheme-normalised"),
    pytest.param(URLSET.format("<url><loc>https://a.org/p</loc><image:image><image:loc>https://a.org/i.jpg"
                               "</image:loc></image:image><xhtml:link rel='alternate' href='https://a.org/fr'/></url>"),
                 ["https://a.org/p"], [], id="image-extension-ignored"),
    pytest.param(URLSET.format("<url><image:image><image:loc>https://a.org/i.jpg</image:loc></image:image>"
                               "<loc>https://a.org/q</loc></url>"),
                 ["https://a.org/q"], [], id="image-loc-before-loc"),
    pytest.param("<s:urlset xmlns:s='http://www.sitemaps.org/schemas/sitemap/0.9'><s:url><s:loc>https://a.org/n"
                 "</s:loc></s:url></s:urlset>", ["https://a.org/n"], [], id="prefixed-namespace"),
    pytest.param(f"<sitemapindex {NS}><sitemap><loc>https://a.org/1.xml</loc></sitemap>"
                 "<sitemap><loc>https://a.org/2.xml.gz</loc><lastmod>2026</lastmod></sitemap></sitemapindex>",
                 [], ["https://a.org/1.xml", "https://a.org/2.xml.gz"], id="index"),
    pytest.param(URLSET.format("<!-- <url><loc>https://a.org/hidden</loc></url> --><url><loc>https://a.org/v</loc></url>"),
                 ["https://a.org/v"], [], id="comment"),
    pytest.param(URLSET.format("<url><loc>https://a.org/ok</loc></url><url><loc>https://a.org/cut"),
                 ["https://a.org/ok"], [], id="truncated"),
    pytest.param("https://a.org/t1\n\nhttps://a.org/t2\n", ["https://a.org/t1", "https://a.org/t2"], [], id="text"),
    pytest.param("https://a.org/t1\nnot a url\n", [], [], id="text-with-junk"),
    pytest.param("<html><body><a href='https://a.org/'>x</a> <loc>https://a.org/</loc></body></html>", [], [], id="html"),
    pytest.param("", [], [], id="empty"),
    pytest.param("<urlset><url><loc>", [], [], id="broken"),
    pytest.param('<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                 + URLSET.split("?>", 1)[1].format("<url><loc>https://a.org/&xxe;</loc></url>"),
                 ["https://a.org/&xxe;"], [], id="xxe-not-expanded"),
])
def test_parse_sitemap(body: str, pages: list[str], children: list[str]) -> None:
    assert parse_sitemap(body.encode()) == (pages, children)
    assert parse_sitemap(gzip.compress(body.encode())) == (pages, children)


def test_parse_sitemap_never_expands_entities() -> None:
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                        for i in range(1, 10))
              + f"]><urlset {NS}><url><loc>https://a.org/&lol9;</loc></url></urlset>")
    assert parse_sitemap(laughs.encode()) == (["https://a.org/&lol9;"], [])


@pytest.mark.parametrize("body", [
    b"\x1f\x8b", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", b"\xff\xfe\x00<\x00u", bytes(range(256)) * 4,
    b"<urlset " * 5000, b"<url><loc>" * 5000, gzip.compress(b"\x00" * 100000),
])
def test_parse_sitemap_junk_gives_nothing(body: bytes) -> None:
    assert parse_sitemap(body) == ([], [])


def test_parse_sitemap_utf16_and_bom() -> None:
    doc = URLSET.format("<url><loc>https://a.org/é</loc></url>")
    assert parse_sitemap(b"\xef\xbb\xbf" + doc.encode())[0] == ["https://a.org/%C3%A9"]
    assert parse_sitemap(doc.encode("utf-16"))[0] == ["https://a.org/%C3%A9"]


@pytest.mark.parametrize(("url", "start", "expected"), [
    ("https://www.sclero.org/a.html", "https://www.sclero.org/", True),
    ("http://www.sclero.org/a.html", "https://www.sclero.org/", True),   # scheme ignored
    ("https://sclero.org/a.html", "https://www.sclero.org/", True),      # www. ignored
    ("https://WWW.Sclero.ORG./a", "https://www.sclero.org/", True),
    ("https://www.sclero.org:443/a", "https://www.sclero.org/", True),
    ("http://www.sclero.org:443/a", "https://www.sclero.org/", False),   # another port
    ("https://news.sclero.org/a", "https://www.sclero.org/", False),     # another subdomain
    ("https://sclero.org.evil.com/a", "https://www.sclero.org/", False),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8081/", False),
    ("http://localhost:8080/", "http://127.0.0.1:8080/", False),
    ("mailto:a@sclero.org", "https://www.sclero.org/", False),
    ("https://[::1", "https://www.sclero.org/", False),
    ("https://www.sclero.org:99999/", "https://www.sclero.org/", False),
])
def test_same_site(url: str, start: str, expected: bool) -> None:
    assert same_site(url, start) is expected


@pytest.mark.parametrize(("url", "expected"), [
    ("https://a.org/", True), ("https://a.org/page", True), ("https://a.org/page.html", True),
    ("https://a.org/page.php?x=1.pdf", True), ("https://a.org/v1.2/", True), ("https://a.org/x.shtml", True),
    ("https://a.org/doc.pdf", False), ("https://a.org/IMG.JPG", False), ("https://a.org/a.zip", False),
    ("https://a.org/feed.xml", False), ("https://a.org/s.css", False), ("https://a.org/t.tar.gz", False),
])
def test_looks_like_html(url: str, expected: bool) -> None:
    assert looks_like_html(url) is expected


def test_page_and_link_patterns() -> None:
    site = SiteSettings(start="https://a.org/", include=(r"/news/",), exclude=(r"/news/old/",),
                        exclude_links=(r"^https://ads\.",))
    assert page_wanted("https://a.org/news/1.html", site)
    assert not page_wanted("https://a.org/news/old/1.html", site)
    assert not page_wanted("https://a.org/about.html", site)
    assert page_wanted("https://a.org/about.html", SiteSettings(start="https://a.org/"))
    assert link_excluded("https://ads.example/x", site)
    assert not link_excluded("https://a.org/ads.html", site)


@pytest.mark.parametrize(("agent", "token"), [
    (AGENT, "citation-monitor"), ("Mozilla/5.0 (compatible)", "Mozilla"), ("bot", "bot"), ("", "*"),
])
def test_product_token(agent: str, token: str) -> None:
    assert product_token(agent) == token


def test_robots_group_named_by_a_word_of_our_comment_does_not_apply() -> None:
    rules = RobotsRules("https://a.org/robots.txt", "rules",
                        parser=Protego.parse("User-agent: link\nDisallow: /\n"))
    assert rules.allows("https://a.org/x", AGENT)
    assert not rules.allows("https://a.org/x", "link-checker/1.0")


def test_robots_interval_uses_crawl_delay_and_request_rate_capped() -> None:
    def interval(text: str) -> float:
        return RobotsRules("u", "rules", parser=Protego.parse(text)).interval(AGENT)

    assert interval("User-agent: *\nDisallow:\n") == 0.0
    assert interval("User-agent: *\nCrawl-delay: 2\n") == 2.0
    assert interval("User-agent: *\nRequest-rate: 1/5s\n") == 5.0
    assert interval("User-agent: *\nCrawl-delay: 3600\n") == 10.0


# -- traps and duplicates ------------------------------------------------------------

_SESSION_IN_PATH = re.compile(r";jsessionid=[^/?#]*", re.I)
_NOISE_PARAM = re.compile(r"^(utm_\w+|fbclid|gclid|phpsessid|sid)=", re.I)


def _ignore_sessions(path: str) -> str:
    """A server that serves the same page whatever session id or tracking tag."""
    path, _, query = _SESSION_IN_PATH.sub("", path).partition("?")
    kept = [p for p in query.split("&") if p and not _NOISE_PARAM.match(p)]
    return f"{path}?{'&'.join(kept)}" if kept else path


async def test_session_ids_and_tracking_parameters_do_not_multiply_pages(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.canonical = _ignore_sessions
    # Every page hands out its own session id in its links (a servlet
    # without cookies), the home page also carries newsletter tags.
    for n, path in enumerate(ALL_PATHS):
        token = f"{n:032X}"
        site.pages[path] = re.sub(r'href="(/[^"?#]*)"', rf'href="\1;jsessionid={token}"', site.pages[path])
        site.pages[path] = re.sub(r"href='(p\d\.html)'", rf"href='\1?sid={token}'", site.pages[path])
    site.pages["/"] = site.pages["/"].replace(
        "</ul>", '<li><a href="/sec0/?utm_source=newsletter&amp;utm_medium=email">News</a></li>'
                 f'<li><a href="/sec1/?PHPSESSID={"ab" * 16}">Cookieless</a></li></ul>', 1)
    result, _ = await crawl(client, SiteSettings(start=site.url("/")))
    assert sorted(paths_of(site, result.pages)) == sorted(ALL_PATHS)
    assert sorted(p for p in site.paths() if p != "/robots.txt") == sorted(ALL_PATHS)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://a.org/x.jsp;jsessionid=A1B2C3?id=7", "https://a.org/x.jsp?id=7"),
    ("https://a.org/x?utm_source=a&id=7&UTM_Medium=b&fbclid=z", "https://a.org/x?id=7"),
    ("https://a.org/x?PHPSESSID=0123456789abcdef0123", "https://a.org/x"),
    ("https://a.org/forum?sid=0123456789abcdef0123abcd&t=5", "https://a.org/forum?t=5"),
    ("https://a.org/story?sid=12&b=2&a=1", "https://a.org/story?sid=12&b=2&a=1"),  # a story id, order kept
    ("https://a.org/x?lang=fr", "https://a.org/x?lang=fr"),
])
def test_without_session(url: str, expected: str) -> None:
    assert without_session(url) == expected


def _one_form(path: str) -> str:
    """A server that decodes escapes and ignores the order of parameters."""
    from urllib.parse import unquote

    path, _, query = path.partition("?")
    return unquote(path) + (f"?{'&'.join(sorted(query.split('&')))}" if query else "")


async def test_parameter_order_and_escapes_do_not_make_two_pages(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    site.canonical = _one_form
    site.pages["/list?a=1&b=2"] = _page("List", "<p>sorted</p>")
    site.pages["/~smith/cv.html"] = _page("CV", "<p>home page</p>")
    site.pages["/"] = site.pages["/"].replace("</ul>", (
        '<li><a href="/list?a=1&amp;b=2">List</a></li><li><a href="/list?b=2&amp;a=1">List again</a></li>'
        '<li><a href="/~smith/cv.html">CV</a></li><li><a href="/%7esmith/cv.html">CV</a></li>'
        '<li><a href="/%7Esmith/cv.html">CV</a></li></ul>'), 1)
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), max_depth=1))
    assert paths_of(site, result.pages) == ["/", *SECTION_PATHS, "/list?a=1&b=2", "/~smith/cv.html"]


@pytest.mark.parametrize(
    ("limits", "pages", "over_max_pages", "beyond_max_depth", "warning"),
    [
        # 40 pages found and left out: the links of the 10 visited pages
        ({"max_pages": 10}, 10, 40, 0, "max_pages=10"),
        ({"max_depth": 1}, 8, 0, 42, "max_depth=1"),
        ({}, 50, 0, 0, None),  # a complete crawl reports no limit
    ],
)
async def test_reaching_a_limit_is_counted_and_logged(
        servers: tuple[Server, Server], client: Client, caplog: pytest.LogCaptureFixture,
        limits: dict[str, int], pages: int, over_max_pages: int, beyond_max_depth: int,
        warning: str | None) -> None:
    site, _ = servers
    caplog.set_level("INFO", logger="monitor.sites")
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), **limits))  # type: ignore[arg-type]
    assert len(result.pages) == pages
    assert (result.over_max_pages, result.beyond_max_depth) == (over_max_pages, beyond_max_depth)
    said = [r.getMessage() for r in caplog.records if "not audited" in r.getMessage()]
    assert (any(warning in w for w in said) if warning else said == []), said
    assert not any(r.levelname == "WARNING" for r in caplog.records if "max_pages" in r.getMessage())


async def test_the_same_page_under_www_and_bare_host_is_visited_once(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    bare, www = f"http://localhost:{site.port}", f"http://www.localhost:{site.port}"
    site.pages["/"] = site.pages["/"].replace(
        "</ul>", f'<li><a href="{bare}/sec0/">bare</a></li><li><a href="{www}/sec0/">www</a></li>'
                 f'<li><a href="{www.upper()}/sec1/">upper</a></li></ul>', 1)
    result, _ = await crawl(client, SiteSettings(start=f"{www}/", max_depth=1))
    assert [u.split(":", 2)[2].split("/", 1)[1] for u in result.pages] == ["", *(p[1:] for p in SECTION_PATHS)]
    assert sorted(p for p in site.paths() if p != "/robots.txt") == sorted(["/", *SECTION_PATHS])


async def test_robots_txt_redirected_to_another_host_is_followed(servers: tuple[Server, Server], client: Client) -> None:
    site, other = servers
    site.redirects["/robots.txt"] = other.url("/robots.txt")  # RFC 9309 2.3.1.2: even across authorities
    other.robots = (200, "User-agent: *\nDisallow: /sec2/\n")
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), max_depth=1))
    assert result.robots.startswith("rules")
    assert paths_of(site, result.skipped_by_robots) == ["/sec2/"]


async def test_frames_of_a_frameset_home_page_are_crawled(servers: tuple[Server, Server], client: Client) -> None:
    site, _ = servers
    # An old hand-edited site: the home page is a frameset, its menu a frame.
    site.pages["/"] = ("<html><head><title>Home</title></head><frameset cols='20%,80%'>"
                       "<frame src='menu.html' name='menu'><frame src='sec0/' name='main'>"
                       "<noframes>Your browser does not show frames.</noframes></frameset></html>")
    site.pages["/menu.html"] = _page("Menu", '<iframe src="/sec1/"></iframe>')
    result, _ = await crawl(client, SiteSettings(start=site.url("/"), max_depth=1))
    assert paths_of(site, result.pages) == ["/", "/menu.html", "/sec0/"]
    assert "/style.css" not in site.paths()


# -- the audit of a site: each page recorded once, where it lives -------------------


async def test_an_audited_site_records_each_page_once_under_its_own_address(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """Old sites link to a section without its slash (Apache answers 301 to
    "/sec0/"), to a retired page that now redirects home, and to a page
    moved to another site. Each reachable page is audited once, under the
    address it lives at; the other site's page is not audited as ours; a
    broken sitemap is no failed page."""
    site, other = servers
    other.pages["/elsewhere/"] = _page("Elsewhere", _citation(other, 999))
    site.redirects.update({"/sec0": "/sec0/", "/old.html": "/", "/away.html": other.url("/elsewhere/")})
    site.pages["/"] = site.pages["/"].replace(
        "</ul>", '<li><a href="/sec0">Section 0, no slash</a></li><li><a href="/old.html">Old home</a></li>'
                 '<li><a href="/away.html">Moved away</a></li></ul>', 1)
    settings = Settings(
        sites=(SiteSettings(start=site.url("/"), sitemap=site.url("/no-such-sitemap.xml"), max_depth=1),),
        checker=CheckerSettings(timeout=5.0, retries=0, soft404_probe=False,
                                allow_private_networks=("127.0.0.0/8",)),
        database=DatabaseSettings(path=str(tmp_path / "monitor.db")),
    )
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        recorded = [p.url for p in store.run_pages(outcome.run.id)]
        occurrences = Counter(l.page for l in store.run_links(outcome.run.id))
    assert sorted(paths_of(site, recorded)) == sorted(["/", *SECTION_PATHS])
    assert outcome.pages == len(recorded) == 1 + SECTIONS
    assert outcome.pages_failed == 0
    # "/" was reached as "/" and as "/old.html", "/sec0/" as "/sec0/" and "/sec0": each filed once
    links_on_home = len(extract_page(site.pages["/"], site.url("/")).citations)
    assert occurrences[site.url("/")] == links_on_home
    assert occurrences[site.url("/sec0/")] == len(extract_page(site.pages["/sec0/"], site.url("/sec0/")).citations)
    assert all(not url.startswith(other.url("")) for url in recorded)


def _site_settings(tmp_path: Path, *sites: SiteSettings, pages: tuple[PageSettings, ...] = ()) -> Settings:
    return Settings(
        pages=pages, sites=sites,
        checker=CheckerSettings(timeout=5.0, retries=0, soft404_probe=False,
                                allow_private_networks=("127.0.0.0/8",)),
        database=DatabaseSettings(path=str(tmp_path / "monitor.db")),
        source="site.toml",
    )


async def test_a_dead_link_of_a_crawled_site_is_no_page_that_could_not_be_fetched(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """The menu link "ISN News" of sclero.org answers 404: a dead link, which
    its row says ("expired"), not "1 of 23 pages could not be fetched" with
    advice to fix a configuration that has no such line. A link to a file
    served from a page-like address is no page either. A crawled page that
    answers 503, the site's `start` and a [[pages]] url answering 404 are
    still pages that could not be fetched: the first exists (its links went
    unchecked this time), the others are the configuration's addresses."""
    from monitor.output import unfetched_pages

    site, _ = servers
    site.files["/download.php"] = (b"%PDF-1.4 not a page", "application/pdf")
    site.statuses.update({"/about/news.html": 404, "/gone.html": 410, "/sec3/": 503})
    site.pages["/"] = site.pages["/"].replace(
        "</ul>", '<li><a href="/about/news.html">ISN News</a></li><li><a href="/gone.html">Gone</a></li>'
                 '<li><a href="/download.php">Download</a></li></ul>', 1)
    settings = _site_settings(
        tmp_path, SiteSettings(start=site.url("/"), max_depth=1),
        SiteSettings(start=site.url("/no-such-start/"), max_depth=1),
        pages=(PageSettings(url=site.url("/no-such-page.html"), name="Mistyped"),))
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        recorded = {p.url: p for p in store.run_pages(outcome.run.id)}
        links = {l.url: l for l in store.run_links(outcome.run.id)}
    failed = sorted(paths_of(site, [u for u, p in recorded.items() if p.status == "error"]))
    assert failed == ["/no-such-page.html", "/no-such-start/", "/sec3/"]
    assert outcome.pages_failed == 3
    assert outcome.pages == len(recorded) == 1 + 1 + SECTIONS + 1  # the page, "/", the sections, the start
    for dead in ("/about/news.html", "/gone.html", "/download.php"):
        assert site.url(dead) not in recorded
    assert links[site.url("/about/news.html")].status == "expired"
    assert links[site.url("/gone.html")].status == "expired"
    lines = unfetched_pages(list(recorded.values()), source="site.toml", configured=[site.url("/no-such-page.html")])
    assert lines[0].startswith("3 of 10 pages could not be fetched"), lines
    assert not any("news" in line or "gone" in line or "download" in line for line in lines), lines


async def test_a_watched_page_the_crawl_reaches_is_fetched_once_and_keeps_its_name(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """A [[pages]] url that the crawl also finds (the site's menu, its
    sitemap) was fetched a second time in the same run: it answered 304, a
    first audit said "unchanged since the last fetch", and the page lost its
    configured name and owner."""
    site, _ = servers
    watched = PageSettings(url=site.url("/sec2/"), name="Section two", owner="editor@example.org")
    settings = _site_settings(tmp_path, SiteSettings(start=site.url("/"), max_depth=2, max_pages=30),
                              pages=(watched,))
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        recorded = [p for p in store.run_pages(outcome.run.id) if p.url == watched.url]
        pages = store.run_pages(outcome.run.id)
    from monitor.client import BROWSER_ACCEPT

    # read once as a page; its link in the menus is checked as a link, once
    assert [accept != BROWSER_ACCEPT for path, accept in site.accepts if path == "/sec2/"] == [True, False]
    assert [(p.status, p.name, p.owner) for p in recorded] == [("ok", "Section two", "editor@example.org")]
    assert outcome.pages == len(pages) == 30
    # its links were followed all the same: its leaves were audited
    assert {f"/sec2/p{j}.html" for j in range(LEAVES)} & set(paths_of(site, [p.url for p in pages]))


async def test_a_crawl_cut_short_by_max_pages_is_said_by_the_terminal_and_the_report(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """max_pages = 5 on a 50-page site: the report and its mail said "... on 5
    pages" as if the site were complete, and only a WARNING log line said
    otherwise (under `serve`, only the journal had it)."""
    import json
    import re

    from monitor.config import load_settings
    from reports.deliver import load_audit
    from reports.render import render_text
    from tests.simkit import run_monitor

    site, _ = servers
    config = tmp_path / "site.toml"
    config.write_text(
        f'[[sites]]\nstart = "{site.url("/")}"\nmax_pages = 5\n\n'
        '[checker]\ntimeout = 5\nretries = 0\nsoft404_probe = false\n'
        'allow_private_networks = ["127.0.0.0/8"]\n\n'
        f'[database]\npath = "{tmp_path / "monitor.db"}"\n\n[report]\ndir = "{tmp_path / "reports"}"\n',
        encoding="utf-8")
    said = re.compile(rf"127\.0\.0\.1:{site.port}: at least (\d+) more pages found were not audited "
                      rf"\(\[\[sites\]\] max_pages = 5 in {re.escape(str(config))}\)")

    code, _, err = await run_monitor("check", "--config", str(config), timeout=60)
    assert code == 0, err
    found = said.search(err)
    assert found, err
    assert "WARNING" not in err, err  # said once, in plain words
    not_audited = int(found.group(1))
    with Store.open(tmp_path / "monitor.db") as store:
        run_id = store.runs()[0].id
        assert len(store.run_pages(run_id)) == 5
        assert [(c.max_pages, c.not_audited) for c in store.run_site_cuts(run_id)] == [(5, not_audited)]

    code, out, err = await run_monitor("check", "--config", str(config), "--format", "json", timeout=60)
    assert code == 0, err
    assert json.loads(out)["sites_not_audited"] == [{
        "site": f"127.0.0.1:{site.port}", "start": site.url("/"), "max_pages": 5,
        "not_audited": not_audited, "config": str(config), "max_depth": 3, "too_deep": 0}]

    code, out, err = await run_monitor("report", "--config", str(config), timeout=60)
    assert code == 0, err
    html_path = Path(re.search(r"report: (\S+)", out).group(1))  # type: ignore[union-attr]
    html = html_path.read_text(encoding="utf-8")
    assert said.search(html), html[:3000]
    data = json.loads(html_path.with_suffix(".json").read_text(encoding="utf-8"))
    assert [(c["site"], c["not_audited"]) for c in data["sites_not_audited"]] == [
        (f"127.0.0.1:{site.port}", not_audited)]
    with Store.open(tmp_path / "monitor.db") as store:
        audit = load_audit(store, store.runs()[0].id, load_settings(config), store.runs()[0].started_at)
    assert said.search(render_text(audit)), render_text(audit)


async def test_a_complete_crawl_and_a_resumed_page_phase_say_no_cut(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """A crawl within its limits records no cut; a page phase redone (an
    interrupted run) forgets the cut of its first attempt."""
    site, _ = servers
    settings = _site_settings(tmp_path, SiteSettings(start=site.url("/"), max_depth=1, max_pages=5))
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        assert [c.not_audited for c in store.run_site_cuts(outcome.run.id)] == [3]  # 8 pages found, 5 audited
        store.clear_run_pages(outcome.run.id)
        assert store.run_site_cuts(outcome.run.id) == []
    settings = _site_settings(tmp_path, SiteSettings(start=site.url("/"), max_depth=5, max_pages=500))
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        assert store.run_site_cuts(outcome.run.id) == []


async def test_a_crawl_cut_short_by_max_depth_is_kept_with_its_run_and_said(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """Pages linked from the deepest pages were only a WARNING log line; now
    kept with the run (migration m009) and said as max_pages' cut is."""
    from monitor.wording import site_cut_words

    site, _ = servers
    settings = _site_settings(tmp_path, SiteSettings(start=site.url("/"), max_depth=1, max_pages=500))
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        [cut] = store.run_site_cuts(outcome.run.id)
        audited = {p.url for p in store.run_pages(outcome.run.id)}
    deeper = {site.url(f"/sec{i}/p{j}.html") for i in range(SECTIONS) for j in range(LEAVES)}
    assert not deeper & audited and (cut.not_audited, cut.max_depth) == (0, 1)
    assert cut.too_deep >= len(deeper), cut
    said = site_cut_words(cut)
    assert said == (f"127.0.0.1:{site.port}: {cut.too_deep} pages linked from its deepest pages were not "
                    "audited ([[sites]] max_depth = 1 in site.toml)"), said


async def test_a_page_the_sitemap_lists_that_is_not_there_is_a_failed_page_naming_the_sitemap(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """A 404 the crawl only knows from the site's own sitemap is no link of
    any page: as a "dead link" it was said nowhere (no row lists it). It is
    a page that could not be fetched, and the sitemap is what to fix, not
    the monitor's configuration; the same 404 reached only through a link
    stays a dead link (the test above), also when both lead to it."""
    from reports.wording import page_failure

    site, _ = servers
    site.statuses.update({"/listed-gone.html": 404, "/both-gone.html": 404})
    site.pages["/"] = site.pages["/"].replace(
        "</ul>", '<li><a href="/both-gone.html">Both</a></li></ul>', 1)
    site.files["/sm.xml"] = ((f'<?xml version="1.0"?><urlset {NS}>'
                              f"<url><loc>{site.url('/listed-gone.html')}</loc></url>"
                              f"<url><loc>{site.url('/both-gone.html')}</loc></url></urlset>").encode(),
                             "application/xml")
    settings = _site_settings(tmp_path, SiteSettings(start=site.url("/"), sitemap=site.url("/sm.xml"), max_depth=1))
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        failed = {p.url: p for p in store.run_pages(outcome.run.id) if p.status == "error"}
    assert sorted(paths_of(site, list(failed))) == ["/both-gone.html", "/listed-gone.html"]
    assert outcome.pages_failed == 2
    said = page_failure(failed[site.url("/listed-gone.html")].http_status, failed[site.url("/listed-gone.html")].error)
    assert "the site's sitemap lists it" in said and "configuration" not in said, said
    from monitor.output import unfetched_pages

    terminal = unfetched_pages(list(failed.values()), source="site.toml")
    assert (f"  {site.url('/listed-gone.html')}: HTTP 404: the page is not at this address (listed in the "
            "site's sitemap): restore the page, or take it out of the sitemap") in terminal, terminal


# -- review9: where the dead-link rule meets the sitemap, redirects, reports, max_pages --


async def test_a_file_the_sitemap_lists_is_no_page_and_no_failed_page(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """Sitemaps list PDFs and leaflets as a matter of course: a listed file
    at a page-like address (200 application/pdf) is no page there, as when a
    link leads to it; "a page could not be fetched" every week was untrue.
    The sitemap wording stays for a listed page that answers 4xx."""
    from reports.wording import page_failure

    site, _ = servers
    site.files["/leaflet"] = (b"%PDF-1.4 a leaflet", "application/pdf")
    site.files["/sm.xml"] = ((f'<?xml version="1.0"?><urlset {NS}>'
                              f"<url><loc>{site.url('/')}</loc></url>"
                              f"<url><loc>{site.url('/leaflet')}</loc></url></urlset>").encode(),
                             "application/xml")
    settings = _site_settings(tmp_path, SiteSettings(start=site.url("/"), sitemap=site.url("/sm.xml"), max_depth=0))
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        recorded = {p.url: p for p in store.run_pages(outcome.run.id)}
    assert site.url("/leaflet") not in recorded
    assert outcome.pages_failed == 0
    said = page_failure(200, "not a web page (application/pdf) (listed in the site's sitemap)")
    assert said.startswith("the address is not a web page but a PDF document"), said


P1 = "/sec1/p1.html"


async def _reported(settings: Settings, run_id: int):  # noqa: ANN202 - reports.audit.Audit
    import datetime as dt

    from reports.deliver import load_audit

    with Store.open(settings.database.path) as store:
        audit = load_audit(store, run_id, settings, dt.datetime.now(dt.UTC))
        store.mark_reported(run_id, dt.datetime.now(dt.UTC))
    return audit


async def test_an_empty_answer_of_a_crawled_page_reached_by_a_redirect_is_a_failed_read_not_a_fix(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """A crawled page reached through `/old.html -> 301 -> /sec1/p1.html` is
    filed under its final address; its last read was looked up under the
    link's, found none, and a 200 with an empty body (a deploy in progress)
    was "every link removed": its problems listed as fixed."""
    site, other = servers
    other.statuses["/article/111"] = 404  # a citation of p1: a problem in the first report
    site.redirects["/old.html"] = site.url(P1)
    site.pages["/"] = site.pages["/"].replace("</ul>", '<li><a href="/old.html">Old</a></li></ul>', 1)
    settings = _site_settings(tmp_path, SiteSettings(start=site.url("/"), max_depth=1))
    first = await run_audit(settings)
    a1 = await _reported(settings, first.run.id)
    assert any(p.link.page == site.url(P1) for p in a1.problems)
    site.files[P1] = (b"", "text/html")
    second = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        record = {p.url: p for p in store.run_pages(second.run.id)}[site.url(P1)]
    a2 = await _reported(settings, second.run.id)
    assert (record.status, record.links) == ("error", 0)
    assert a2.counts.fixed == 0, [f.link.url for f in a2.fixed_since_last]


async def test_a_crawled_page_now_gone_is_said_gone_not_unreached(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """/sec1/ had a problem; the section is removed but "/" still links to
    it: the crawl reached it and found it gone (a dead link, its own row).
    "nor reached by its [[sites]] crawl" was untrue."""
    site, other = servers
    other.statuses["/article/2"] = 404  # a citation of /sec1/
    settings = _site_settings(tmp_path, SiteSettings(start=site.url("/"), max_depth=1))
    first = await run_audit(settings)
    await _reported(settings, first.run.id)
    site.statuses["/sec1/"] = 404
    second = await run_audit(settings)
    a2 = await _reported(settings, second.run.id)
    gone = {g.url: g for g in a2.no_longer_audited}
    assert gone[site.url("/sec1/")].why == "the page is gone (HTTP 404): the link to it is listed as a problem"
    assert any(p.link.url == site.url("/sec1/") and p.link.status == "expired" for p in a2.problems)


async def test_dead_links_do_not_use_up_max_pages_and_the_cut_counts_pages_left(
        servers: tuple[Server, Server], tmp_path: Path) -> None:
    """"/" has two dead links before its menu; max_pages = 3. They used up
    two of the three places: 1 page audited, and the cut line blamed
    max_pages for 7 more."""
    site, _ = servers
    site.statuses.update({"/dead1.html": 404, "/dead2.html": 410})
    site.pages["/"] = site.pages["/"].replace(
        "<body>", '<body><a href="/dead1.html">D1</a> <a href="/dead2.html">D2</a>', 1)
    settings = _site_settings(tmp_path, SiteSettings(start=site.url("/"), max_depth=1, max_pages=3))
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        pages = store.run_pages(outcome.run.id)
        cuts = store.run_site_cuts(outcome.run.id)
    assert paths_of(site, [p.url for p in pages]) == ["/", *SECTION_PATHS[:2]]
    assert outcome.pages == 3
    assert [c.not_audited for c in cuts] == [SECTIONS - 2]  # the sections left, no dead link among them


async def test_no_page_frees_its_place_in_max_pages_in_the_discovery(
        servers: tuple[Server, Server], client: Client) -> None:
    """The crawler's side: an address `visit` finds no page at is not one of
    the crawl's pages, and the next page held back by max_pages takes its place."""
    from monitor.sites import NO_PAGE

    site, _ = servers
    visited: list[str] = []

    async def visit(url: str):  # noqa: ANN202 - monitor.sites.Visited
        visited.append(url)
        if url.endswith("/sec0/"):
            return NO_PAGE
        fetched = await client.session.get(url)
        html = await fetched.text()
        return list(extract_page(html, url).citations)

    result = await discover_site(client, SiteSettings(start=site.url("/"), max_depth=1, max_pages=3),
                                 visit, user_agent=AGENT, timeout=5.0)
    assert paths_of(site, visited) == ["/", *SECTION_PATHS[:3]]
    assert paths_of(site, result.pages) == ["/", *SECTION_PATHS[1:3]]
    assert result.over_max_pages == SECTIONS - 3
