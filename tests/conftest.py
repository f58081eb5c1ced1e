"""Shared fixtures. Everything runs on loopback; nothing here mocks the network.

Fixtures (add yours below, documented the same way):

- `hermetic_env` (autouse): removes proxy variables so that no test traffic
  can leave 127.0.0.1 through a proxy configured on the developer's machine.
- `checker_settings(**overrides)`: a `CheckerSettings` factory tuned for
  tests: short timeouts, tiny backoff, no retries, loopback allowed
  (`allow_private_networks=("127.0.0.0/8",)`). Pass overrides to change any
  field, e.g. `checker_settings(retries=2, allow_private_networks=False)`.
- `site`: a started local HTTP server (`Site`) with named resources (table
  below) that records every request it receives, including the ones no route
  matches, with the concurrency it saw per host name (the Host header
  without its port).
  `site.url("/ok")` builds an absolute URL; `site.requests` is the log;
  `site.hits("/ok")` counts requests to a path.
- `make_site(ssl_context=None)`: the same as a factory, for a second server
  or TLS.
- `tls_ca`: a trustme CA; `tls_ca.server_context()` is an SSL context for a
  server certificate valid for localhost and 127.0.0.1, `tls_ca.ca_file` the
  PEM path a client can trust.
- `free_port`: a TCP port on 127.0.0.1 that nothing listens on (bound, then
  closed), for "connection refused".
- `client_for(settings, **kwargs)`: an open `monitor.client.Client`, closed
  after the test.
- `canned_dns(table)`: an aiohttp resolver answering {name: [ip, ...]} from
  the table (gaierror otherwise) and recording every name asked in `.asked`;
  pass it as `Client(settings, dns=...)`. No real DNS may be asked in tests.

Test modules import the helper types for annotations only
(`if TYPE_CHECKING: from conftest import Site`), so nothing depends on how
pytest puts this directory on sys.path.

`Site` resources:

    /ok                 200 HTML, <title>OK page</title>, citation_title meta
    /status/{n}         answers status n with a small HTML body
    /redirect/{n}       302 -> /redirect/{n-1}; /redirect/0 answers like /ok
    /loop/{name}        /loop/a -> /loop/b -> /loop/a ...
    /goto?to=URL[&status=301]   redirects to any URL, even file: or private
    /slow?delay=S       waits S seconds, then 200
    /hold?ms=N          waits N ms, then 200 (for concurrency counting)
    /drip?every=S       200, then one byte every S seconds, forever
    /big?mb=N           N MB of application/pdf, streamed
    /pdf                a small PDF
    /cp1252             a Windows-1252 page with no declared charset
    /echo-host          the Host header, as the <title>
    /only-head          405 to GET, 200 to HEAD
    /rate/{n}?after=S   429 with Retry-After: S for the first n requests, then 200
    /unavailable        503 always
    /robots.txt         disallows /private/
    /drift              the title changes on every request
    /cookie-dance       302 to itself setting a cookie, then 200 once it comes back
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from monitor import forked
from monitor.config import CheckerSettings

# Fixtures of the whole-program tests: sim_site, mail_sink (tests/simkit.py).
pytest_plugins = ["simkit"]

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy")

OK_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>OK page</title>"
    "<meta name='citation_title' content='A cited article'>"
    "<meta property='og:title' content='Social title'></head>"
    "<body><h1>Hello</h1><p>Some visible text.</p><script>var hidden = 1;</script></body></html>"
)


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def checker_settings() -> Callable[..., CheckerSettings]:
    base = CheckerSettings(
        timeout=2.0,
        retries=0,
        backoff_base=0.01,
        retry_after_max=2.0,
        allow_private_networks=("127.0.0.0/8",),
    )

    def make(**overrides: Any) -> CheckerSettings:
        return replace(base, **overrides)

    return make


@dataclass
class Request:
    method: str
    path: str
    host: str
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Site:
    """A running test server and what it saw."""

    server: Any = None
    requests: list[Request] = field(default_factory=list)
    active: Counter[str] = field(default_factory=Counter)
    max_active: Counter[str] = field(default_factory=Counter)
    """Most requests in progress at once, per host name (Host header without port)."""
    max_total: int = 0
    """Most requests in progress at once, all hosts together."""
    counters: Counter[str] = field(default_factory=Counter)

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def scheme(self) -> str:
        return str(self.server.scheme)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


def _page(title: str, body: str = "") -> str:
    return f"<html><head><title>{title}</title></head><body>{body}</body></html>"


def build_app(site: Site) -> web.Application:
    """The routes of the table in this module's docstring."""

    @web.middleware
    async def record(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        site.requests.append(Request(request.method, request.path, host, dict(request.headers)))
        name = request.url.host or host  # politeness is per host name, whatever the port
        site.active[name] += 1
        site.max_active[name] = max(site.max_active[name], site.active[name])
        site.max_total = max(site.max_total, sum(site.active.values()))
        try:
            return await handler(request)
        finally:
            site.active[name] -= 1

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text=OK_PAGE, content_type="text/html")

    async def status(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        return web.Response(status=n, text=_page(f"Status {n}"), content_type="text/html")

    async def redirect(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n <= 0:
            return await ok(request)
        raise web.HTTPFound(f"/redirect/{n - 1}")

    async def loop(request: web.Request) -> web.Response:
        other = "b" if request.match_info["name"] == "a" else "a"
        raise web.HTTPFound(f"/loop/{other}")

    async def goto(request: web.Request) -> web.Response:
        code = int(request.query.get("status", "302"))
        return web.Response(status=code, headers={"Location": request.query["to"]})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("delay", "5")))
        return web.Response(text=_page("Slow"), content_type="text/html")

    async def hold(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.query.get("ms", "50")) / 1000)
        return web.Response(text=_page("Held"), content_type="text/html")

    async def drip(request: web.Request) -> web.StreamResponse:
        every = float(request.query.get("every", "1"))
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        await resp.write(b"<html><head><title>Drip</title></head><body>")
        while True:
            await asyncio.sleep(every)
            await resp.write(b"x")

    async def big(request: web.Request) -> web.StreamResponse:
        size = int(float(request.query.get("mb", "20")) * 1024 * 1024)
        resp = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        resp.content_length = size
        await resp.prepare(request)
        chunk = b"%PDF-1.4\n" + b"0" * (65536 - 9)
        sent = 0
        while sent < size:
            part = chunk[: size - sent]
            await resp.write(part)
            sent += len(part)
            site.counters["big/sent"] = sent
        return resp

    async def pdf(request: web.Request) -> web.Response:
        return web.Response(body=b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", content_type="application/pdf")

    async def cp1252(request: web.Request) -> web.Response:
        body = "<html><head><title>Sjögren’s – café</title></head><body>Ré</body></html>".encode("cp1252")
        return web.Response(body=body, headers={"Content-Type": "text/html"})

    async def echo_host(request: web.Request) -> web.Response:
        return web.Response(text=_page(request.headers.get("Host", "")), content_type="text/html")

    async def only_head(request: web.Request) -> web.Response:
        if request.method == "HEAD":
            return web.Response(status=200, content_type="text/html")
        return web.Response(status=405, headers={"Allow": "HEAD"})

    async def rate(request: web.Request) -> web.Response:
        key = f"rate:{request.path}"
        site.counters[key] += 1
        if site.counters[key] <= int(request.match_info["n"]):
            return web.Response(status=429, headers={"Retry-After": request.query.get("after", "1")})
        return await ok(request)

    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503, text=_page("Down"), content_type="text/html")

    async def robots(request: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nDisallow: /private/\n")

    async def drift(request: web.Request) -> web.Response:
        site.counters["drift"] += 1
        return web.Response(text=_page(f"Version {site.counters['drift']}"), content_type="text/html")

    async def cookie_dance(request: web.Request) -> web.Response:
        if request.cookies.get("seen") == "1":
            return await ok(request)
        resp = web.Response(status=302, headers={"Location": request.path})
        resp.set_cookie("seen", "1")
        return resp

    app = web.Application(middlewares=[record])
    app.router.add_get("/ok", ok)
    app.router.add_get("/status/{n}", status)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/loop/{name}", loop)
    app.router.add_get("/goto", goto)
    app.router.add_get("/slow", slow)
    app.router.add_get("/hold", hold)
    app.router.add_get("/drip", drip)
    app.router.add_get("/big", big)
    app.router.add_get("/pdf", pdf)
    app.router.add_get("/cp1252", cp1252)
    app.router.add_get("/echo-host", echo_host)
    app.router.add_route("*", "/only-head", only_head)
    app.router.add_get("/rate/{n}", rate)
    app.router.add_get("/unavailable", unavailable)
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/drift", drift)
    app.router.add_get("/cookie-dance", cookie_dance)
    return app


@pytest.fixture
async def make_site(aiohttp_server: Any) -> Callable[..., Awaitable[Site]]:
    async def make(ssl_context: ssl.SSLContext | None = None) -> Site:
        site = Site()
        site.server = await aiohttp_server(build_app(site), ssl=ssl_context)
        return site

    return make


@pytest.fixture
async def site(make_site: Callable[..., Awaitable[Site]]) -> Site:
    return await make_site()


@dataclass
class TlsCa:
    ca: trustme.CA
    ca_file: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        return context


@pytest.fixture
def tls_ca(tmp_path: Path) -> TlsCa:
    ca = trustme.CA()
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return TlsCa(ca, str(path))


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[CheckerSettings], Awaitable[Any]]]:
    from monitor.client import Client

    opened: list[Client] = []

    async def open_client(settings: CheckerSettings, **kwargs: Any) -> Client:
        client = Client(settings, **kwargs)
        await client.__aenter__()
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.__aexit__(None, None, None)


class CannedDNS(AbstractResolver):
    """Answers from a table and records every question."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: not in the canned table")
        return [{"hostname": host, "host": ip, "port": port,
                 "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                 "proto": 0, "flags": 0} for ip in self.table[host]]

    async def close(self) -> None:
        pass


@pytest.fixture
def canned_dns() -> Callable[[dict[str, list[str]]], CannedDNS]:
    return CannedDNS


@pytest.fixture
def fork_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytest process keeps threads that other tests started (pycares
    keeps one for good), and `can_fork()` rightly refuses there. These
    children take no lock, so they are forked anyway; the refusal has a
    test of its own (tests/test_files.py)."""
    monkeypatch.setattr(forked, "can_fork", lambda: True)
