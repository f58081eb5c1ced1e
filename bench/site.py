"""A synthetic citation site and its cited hosts, served on loopback for the benchmark.

    python -m bench.site serve SPEC.pickle PORT     (run.py starts it for you)

Why it looks the way it does:

- Pages are sclero.org-like: a header of menu links, section headings, and
  entries of the form `<a href=URL>Title</a>. Summary. PubMed, Journal, date.`
  so that `monitor check` extracts them as citations with their titles, and
  the cited pages carry the same title (otherwise they would be "drifted").
- Every cited host is its own loopback address (127.0.X.Y): the same URLs go
  to all three tools, none of them resolves a name, and per-host limits key
  on a distinct host per simulated site for everyone. (`connect_to` would
  give only our checker a path the peers cannot take.) Linux routes all of
  127.0.0.0/8 to `lo`, so binding each address needs no setup.
- Each host answers after its own latency, drawn once per host from
  [latency_min, latency_max] (20-200 ms): every request to it costs exactly
  that, which makes the physical lower bound (`bounds` in run.py) exact
  arithmetic instead of an estimate.
- About 15 % of the links fail, in the ways the contract names: 404, 410,
  500, 503 (every time), a deep link redirected to the home page, soft 404s
  (a 200 "page not found", or the same generic page for every unknown path
  of the host), connection refused (a host whose address nobody listens on)
  and optionally timeouts (answers long after the checker's timeout). The
  rest are fine: 200, a temporary redirect to the article, or a permanent
  redirect (moved: fine for a reader, but the link should be updated).
- The server is one process, asyncio + aiohttp's low-level `web.Server`
  (no router), listening once per host address; the whole site is rendered
  into memory at start, so a request costs a dict lookup and a sleep.
  `run.py` measures its ceiling (`/__ping`, no latency) and its CPU time
  during each tool's run, so a reader can see it was not the bottleneck.
- The watched pages carry an ETag and answer a matching If-None-Match with
  304, as a static Apache or nginx does (sclero.org is static pages): the
  weekly run of `monitor` asks conditionally; the peers keep no state and
  always get the 200.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import pickle
import random
import signal
import socket
import sys
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Host", "Link", "Site", "generate", "serve", "KINDS", "BROKEN_KINDS"]

SITE_ADDR = "127.0.0.1"
SITE_LATENCY = 0.020
"""The audited site itself is close and fast (the monitor usually runs next to it)."""

# kind -> (expected status of a correct checker, broken?)
KINDS: dict[str, tuple[str, bool]] = {
    "ok": ("ok", False),
    "temp_redirect": ("ok", False),
    "moved": ("moved", False),
    "http_404": ("expired", True),
    "http_410": ("expired", True),
    "http_500": ("error", True),
    "http_503": ("error", True),
    "redirect_to_home": ("expired", True),
    "soft_404": ("expired", True),
    "connection_refused": ("error", True),
    "timeout": ("error", True),
    "nav": ("ok", False),
}
BROKEN_KINDS = frozenset(k for k, (_, broken) in KINDS.items() if broken)

# Per-link kind weights on an ordinary host (soft-404 and dead hosts differ).
ORDINARY_WEIGHTS: dict[str, float] = {
    "ok": 0.750,
    "temp_redirect": 0.030,
    "moved": 0.050,
    "http_404": 0.055,
    "http_410": 0.015,
    "http_500": 0.010,
    "http_503": 0.010,
    "redirect_to_home": 0.025,
}
SOFT_HOST_SHARE = 0.034
"""Hosts answering 200 for every unknown path; half their cited links are gone."""
DEAD_HOST_SHARE = 0.01
"""Hosts nobody listens on any more: every link is connection_refused."""

WORDS = (
    "rituximab dermatomyositis polymyositis scleroderma systemic sclerosis raynaud phenomenon "
    "interstitial lung disease myositis fibrosis tocilizumab nintedanib bosentan iloprost "
    "sildenafil digital ulcers calcinosis autoantibodies cohort randomised trial placebo "
    "efficacy safety outcomes patients treatment therapy refractory juvenile adult skin "
    "muscle weakness inflammation biomarkers imaging capillaroscopy pulmonary hypertension "
    "renal crisis mycophenolate cyclophosphamide methotrexate immunoglobulin stem cell "
    "transplantation retrospective prospective review meta-analysis case series"
).split()
JOURNALS = ("Clin Rheumatol", "Arthritis Rheumatol", "Ann Rheum Dis", "Rheumatology (Oxford)",
            "J Rheumatol", "Autoimmun Rev", "Muscle Nerve", "J Scleroderma Relat Disord")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NAV_PATHS = ("/index.html", "/about/a-to-z.html", "/scleroderma/a-to-z.html",
             "/about/donate.html", "/scleroderma/disclaimer.html")


@dataclass(slots=True)
class Host:
    index: int
    addr: str
    latency: float
    role: str = "ordinary"  # ordinary | soft_wording | soft_generic | dead

    @property
    def name(self) -> str:
        return f"Journal {self.index}"


@dataclass(slots=True)
class Link:
    url: str
    host: int  # index into Site.hosts; -1 for the audited site itself
    path: str
    kind: str
    title: str

    @property
    def expected(self) -> str:
        return KINDS[self.kind][0]

    @property
    def broken(self) -> bool:
        return KINDS[self.kind][1]


@dataclass(slots=True)
class Site:
    seed: int
    port: int
    timeout: float
    hosts: list[Host]
    links: list[Link]
    pages: list[str] = field(default_factory=list)
    """Page paths on the audited site; their HTML is rendered by `page_html`."""
    per_page: int = 50

    @property
    def base(self) -> str:
        return f"http://{SITE_ADDR}:{self.port}"

    @property
    def page_urls(self) -> list[str]:
        return [self.base + p for p in self.pages]

    def truth(self) -> dict[str, Link]:
        return {link.url: link for link in self.links}

    def kind_counts(self) -> Counter[str]:
        return Counter(link.kind for link in self.links)


# -- generation ------------------------------------------------------------------


def host_addr(index: int) -> str:
    """127.0.1.1, 127.0.1.2, ... 127.0.1.250, 127.0.2.1, ..."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def _title(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(6, 11))
    return " ".join(words).capitalize() + f" ({rng.randint(10, 999)} patients)"


def _roles(n: int, rng: random.Random) -> list[str]:
    roles = ["ordinary"] * n
    indexes = list(range(n))
    rng.shuffle(indexes)
    n_dead = max(1, round(n * DEAD_HOST_SHARE)) if n >= 20 else 0
    n_soft = max(2, round(n * SOFT_HOST_SHARE)) if n >= 20 else 0
    for i in indexes[:n_dead]:
        roles[i] = "dead"
    for j, i in enumerate(indexes[n_dead:n_dead + n_soft]):
        roles[i] = "soft_wording" if j % 2 == 0 else "soft_generic"
    return roles


def generate(n_links: int = 5000, n_hosts: int = 300, *, per_page: int = 50, seed: int = 1,
             port: int = 8080, timeout: float = 10.0, timeouts: int = 0,
             latency: tuple[float, float] = (0.020, 0.200)) -> Site:
    """The site and its truth: deterministic for a given seed."""
    rng = random.Random(seed)
    roles = _roles(n_hosts, rng)
    hosts = [Host(i, host_addr(i), round(rng.uniform(*latency), 4), roles[i]) for i in range(n_hosts)]
    kinds, weights = zip(*ORDINARY_WEIGHTS.items())
    live = [h for h in hosts if h.role == "ordinary"]
    links: list[Link] = []
    for i in range(n_links):
        host = hosts[rng.randrange(n_hosts)]
        if host.role == "dead":
            kind = "connection_refused"
        elif host.role.startswith("soft"):
            kind = "soft_404" if rng.random() < 0.5 else "ok"
        else:
            kind = rng.choices(kinds, weights)[0]
        if i < timeouts and live:
            host = live[i % len(live)]
            kind = "timeout"
        path = _path(kind, i)
        url = f"http://{host.addr}:{port}{path}"
        links.append(Link(url=url, host=host.index, path=path, kind=kind, title=_title(rng)))
    rng.shuffle(links)  # timeouts anywhere on the pages, not all on the first
    site = Site(seed=seed, port=port, timeout=timeout, hosts=hosts, links=links, per_page=per_page)
    site.pages = [f"/scleroderma/topics/page-{p}.html" for p in range(math.ceil(n_links / per_page))]
    base = site.base
    site.links += [Link(url=base + p, host=-1, path=p, kind="nav", title="") for p in NAV_PATHS]
    return site


def _path(kind: str, i: int) -> str:
    if kind == "temp_redirect":
        return f"/doc/{i}"
    if kind == "moved":
        return f"/old/abstract/{i}.html"
    if kind == "redirect_to_home":
        return f"/news/2019/story-{i}.html"
    if kind == "timeout":
        return f"/slow/article/{i}.html"
    return f"/article/{i}.html"


# -- rendering -----------------------------------------------------------------------

PAGE_HEAD = """<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">
<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>{title}</title><link rel="stylesheet" type="text/css" href="/css/sclero.css"></head>
<body><table width="100%" id="header"><tr><td>{nav}</td></tr></table>
<h1>{title}</h1>
<p><font size="2">Scleroderma is highly variable. Read <a href="/scleroderma/disclaimer.html">Disclaimer</a></font></p>
"""


def page_html(site: Site, page_index: int) -> str:
    """Page n holds links [n*per_page, (n+1)*per_page) of the cited ones, in sections."""
    rng = random.Random(site.seed * 1_000_003 + page_index)
    cited = [link for link in site.links if link.kind != "nav"]
    chunk = cited[page_index * site.per_page:(page_index + 1) * site.per_page]
    nav = " | ".join(f'<a href="{p}">{p.strip("/").split("/")[0].title()}</a>' for p in NAV_PATHS)
    parts = [PAGE_HEAD.format(title=f"Treatments {page_index}: Scleroderma topic {page_index}", nav=nav)]
    for j, link in enumerate(chunk):
        if j % 10 == 0:
            parts.append(f"<h3>{html.escape(rng.choice(WORDS).title())} Studies</h3>\n")
        summary = " ".join(rng.sample(WORDS, 14)).capitalize()
        year = rng.randint(2005, 2024)
        source = (f"PubMed, {rng.choice(JOURNALS)}, {year} {rng.choice(MONTHS)};"
                  f"{rng.randint(1, 80)}({rng.randint(1, 12)}):{rng.randint(1, 900)}-{rng.randint(901, 999)}.")
        parts.append(f'<p><a href="{html.escape(link.url)}" target="_blank">{html.escape(link.title)}</a>. '
                     f"{summary} with an acceptable tolerance profile. {source}</p>\n")
    parts.append('<p id="footer"><a href="/about/donate.html">Donate</a>. '
                 '<a href="/index.html">Home</a></p></body></html>\n')
    return "".join(parts)


def article_html(title: str, journal: str) -> str:
    t = html.escape(title)
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title>"
            f"<meta name=\"citation_title\" content=\"{t}\"></head><body>"
            f"<div id=\"nav\"><a href=\"/\">{journal}</a></div><h1>{t}</h1>"
            "<p>Background: " + " ".join(WORDS[:40]) + ".</p>"
            "<p>Methods and results: " + " ".join(WORDS[20:70]) + ".</p></body></html>")


def home_html(journal: str) -> str:
    return (f"<!DOCTYPE html><html><head><title>{journal}</title></head><body>"
            f"<h1>Welcome to {journal}</h1><p>Latest issue, current articles, "
            "submit a manuscript, contact the editors.</p></body></html>")


def soft_page(host: Host) -> str:
    if host.role == "soft_wording":
        return (f"<!DOCTYPE html><html><head><title>Page not found | {host.name}</title></head>"
                "<body><h1>Sorry, the page you requested could not be found.</h1>"
                f"<p>Try the search box or go back to the <a href=\"/\">{host.name} home page</a>."
                "</p></body></html>")
    # The same generic page for every unknown path: only a probe can tell.
    return home_html(host.name)


# -- the server ------------------------------------------------------------------------


class Responder:
    """Everything a request may be answered with, precomputed."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.by_addr = {h.addr: h for h in site.hosts}
        self.routes: dict[tuple[int, str], Link] = {(l.host, l.path): l for l in site.links}
        self.pages = {p: i for i, p in enumerate(site.pages)}
        self.page_cache: dict[int, bytes] = {}
        self.home = {h.index: home_html(h.name).encode() for h in site.hosts}
        self.soft = {h.index: soft_page(h).encode() for h in site.hosts}
        self.stats: Counter[str] = Counter()
        self.timeline: list[tuple[float, float, int]] = []
        """(start, end, to the audited site?) of every request since the last /__timeline, loop clock."""
        self.nav_page = home_html("Scleroderma site").encode()

    def page(self, index: int) -> bytes:
        body = self.page_cache.get(index)
        if body is None:
            body = self.page_cache[index] = page_html(self.site, index).encode()
        return body

    def etag(self, index: int) -> str:
        """A validator that changes with the page's bytes, as a static server's."""
        return f'"{zlib.crc32(self.page(index)):08x}-{len(self.page(index)):x}"'


def _split_host(value: str) -> str:
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def serve(site: Site, ready: asyncio.Event | None = None) -> None:
    from aiohttp import web

    r = Responder(site)
    extra = {"LinkChecker": "1"}  # LinkChecker's documented opt-in to its faster rates

    def respond(status: int, body: bytes = b"", location: str | None = None,
                etag: str | None = None) -> web.Response:
        headers = dict(extra)
        if location:
            headers["Location"] = location
        if etag:
            headers["ETag"] = etag
        return web.Response(status=status, body=body, headers=headers,
                            content_type="text/html", charset="utf-8") if body else \
            web.Response(status=status, headers=headers)

    not_found = b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        r.stats["requests"] += 1
        r.stats[f"method/{request.method}"] += 1
        addr = _split_host(request.host)
        path = request.path
        if path == "/__ping":
            return web.Response(body=b"ok")
        if path == "/__stats":
            return web.Response(body=json.dumps(r.stats).encode(), content_type="application/json")
        if path == "/__timeline":
            spans, r.timeline = r.timeline, []
            now = loop.time()
            body = json.dumps([[round(now - a, 4), round(now - b, 4), site_] for a, b, site_ in spans])
            return web.Response(body=body.encode(), content_type="application/json")
        started = loop.time()
        try:
            return await answer(request, addr, path)
        finally:
            r.timeline.append((started, loop.time(), int(addr == SITE_ADDR)))

    async def answer(request: web.BaseRequest, addr: str, path: str) -> web.StreamResponse:
        if addr == SITE_ADDR:
            await asyncio.sleep(SITE_LATENCY)
            if path in r.pages:
                index = r.pages[path]
                if request.headers.get("If-None-Match") == r.etag(index):
                    r.stats["site/page_304"] += 1
                    return respond(304, etag=r.etag(index))
                r.stats["site/page"] += 1
                return respond(200, r.page(index), etag=r.etag(index))
            if path in NAV_PATHS:
                return respond(200, r.nav_page)
            return respond(404, not_found)
        host = r.by_addr.get(addr)
        if host is None:
            return respond(421, b"misdirected")
        await asyncio.sleep(host.latency)
        link = r.routes.get((host.index, path))
        if path == "/":
            return respond(200, r.home[host.index])
        if link is None:
            # Unknown paths (soft-404 probes among them), and redirect targets.
            if path.startswith("/fulltext/") or path.startswith("/abstract/"):
                original = r.routes.get((host.index, _origin_path(path)))
                if original is not None:
                    return respond(200, article_html(original.title, host.name).encode())
            if host.role.startswith("soft"):
                return respond(200, r.soft[host.index])
            return respond(404, not_found)
        r.stats[f"kind/{link.kind}"] += 1
        kind = link.kind
        if kind in ("ok",):
            return respond(200, article_html(link.title, host.name).encode())
        if kind == "soft_404":
            return respond(200, r.soft[host.index])
        if kind == "temp_redirect":
            return respond(302, location=f"/fulltext/{link.path.rsplit('/', 1)[1]}.html")
        if kind == "moved":
            return respond(301, location=f"/abstract/{link.path.rsplit('/', 1)[1]}")
        if kind == "redirect_to_home":
            return respond(301, location="/")
        if kind.startswith("http_"):
            code = int(kind[5:])
            return respond(code, not_found if code < 500 else b"<h1>Server Error</h1>")
        if kind == "timeout":
            await asyncio.sleep(site.timeout + 5)
            return respond(200, article_html(link.title, host.name).encode())
        return respond(500, b"unknown kind")

    loop = asyncio.get_running_loop()
    server = web.Server(handler, access_log=None)
    servers = []
    addrs = [SITE_ADDR] + [h.addr for h in site.hosts if h.role != "dead"]
    for addr in addrs:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr, site.port))
        servers.append(await loop.create_server(server, sock=sock, backlog=1024))
    if ready is not None:
        ready.set()
    print(f"READY {len(addrs)} addresses on port {site.port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    await server.shutdown(0.1)


def _origin_path(path: str) -> str:
    """/fulltext/123.html -> /doc/123 ; /abstract/123.html -> /old/abstract/123.html"""
    name = path.rsplit("/", 1)[1]
    if path.startswith("/fulltext/"):
        return f"/doc/{name.removesuffix('.html')}"
    return f"/old/abstract/{name}"


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] != "serve":
        sys.exit("usage: python -m bench.site serve SPEC.pickle")
    site: Site = pickle.loads(Path(argv[1]).read_bytes())
    asyncio.run(serve(site))


if __name__ == "__main__":
    main(sys.argv[1:])
