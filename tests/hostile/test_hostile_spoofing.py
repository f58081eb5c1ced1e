"""Spoofing: what a page's URLs and words smuggle past the escaping.

HTML escaping keeps markup out of the report; these tests are about the
characters escaping lets through: terminal controls (ESC, BEL, the 8-bit
CSI U+009B, NEL) that drive a terminal or split a log line, and the Unicode
bidirectional overrides (U+202E ...) that make a link display as another.

A real page on a local aiohttp server, real `monitor check` processes, a
real SQLite file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from monitor.store import Store

from hostile_kit import mapped
from simkit import run_monitor

HOST = "www.spoof.example.org"
TARGETS = "targets.spoof.example.org"
CONTROLS = ("\x1b", "\x07", "\x9b", "\x85", "\u2028")
BIDI = ("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069")

# A user part ("name@") is legal in an http URL, and the parser kept it raw.
USERINFO_ESCAPES = f"http://x\x1bc\x9b2J\x07\x85y@{TARGETS}/gone-1"
USERINFO_BIDI = f"http://pubmed.ncbi.nlm.nih.gov\u202e@{TARGETS}/gone-2"
SITEMAP_PAGE = f"http://a\x1bc\x9b2J@{HOST}/missing.html"


def page_html() -> str:
    return (
        "<html><head><title>Treatments</title></head><body><h2>Trials</h2>\n"
        f'<p><a href="{USERINFO_ESCAPES}">Rituximab in early disease</a>. J Rheumatol. 2020;1:3.</p>\n'
        f'<p><a href="{USERINFO_BIDI}">Tocilizumab trial</a>. Lancet. 2021;2:4.</p>\n'
        "</body></html>"
    )


async def start_site(aiohttp_server: Any) -> int:
    page = page_html()
    sitemap = (f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
               f"<url><loc>http://{HOST}/page.html</loc></url>"
               f"<url><loc>{SITEMAP_PAGE.replace(chr(0x1b), '&#27;')}</loc></url></urlset>")

    async def serve(request: web.Request) -> web.StreamResponse:
        host = request.host.split(":", 1)[0]
        if host == HOST and request.path == "/page.html":
            return web.Response(text=page, content_type="text/html")
        if host == HOST and request.path == "/sitemap.xml":
            return web.Response(text=sitemap, content_type="application/xml")
        if host == HOST and request.path == "/robots.txt":
            return web.Response(text="User-agent: *\nAllow: /\n", content_type="text/plain")
        return web.Response(status=404, text="<title>Not found</title>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", serve)
    server = await aiohttp_server(app)
    return int(server.port)


def write_config(tmp_path: Path, port: int) -> Path:
    connect = ", ".join(f'"{k}" = "{v}"' for k, v in mapped(port, HOST, TARGETS) + (("*", "refuse"),))
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[[pages]]\nurl = "http://{HOST}/page.html"\n'
        f'[[sites]]\nsitemap = "http://{HOST}/sitemap.xml"\n'
        f"[checker]\ntimeout = 2\nretries = 0\nsoft404_probe = false\nconnect_to = {{ {connect} }}\n"
        f'[database]\npath = "{tmp_path / "m.db"}"\n'
        f'[report]\ndir = "{tmp_path / "out"}"\n',
        encoding="utf-8")
    return config


def assert_clean(text: str, where: str) -> None:
    for c in CONTROLS + BIDI:
        assert c not in text, f"{where}: {c!r} reached the output"


async def test_a_url_cannot_carry_terminal_controls_or_bidi_overrides_in_its_user_part(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """The user part of a URL is percent-encoded as browsers do: the stored
    URL, the CSV and JSON on stdout, the terminal listing and the log lines
    on stderr ("page fetch failed url=...") carry no raw control or bidi
    character from it."""
    config = write_config(tmp_path, await start_site(aiohttp_server))
    outputs = {}
    for fmt in ("csv", "json", "text"):
        code, out, err = await run_monitor("check", "--config", str(config), "--format", fmt)
        assert code == 0, err
        outputs[fmt] = out
        assert_clean(out, f"--format {fmt} stdout")
        assert_clean(err, f"--format {fmt} stderr")
    assert "page fetch failed" in err or "missing.html" in outputs["text"], (err, outputs["text"])
    with Store.open(str(tmp_path / "m.db")) as store:
        run = store.latest_run()
        assert run is not None
        urls = [link.url for link in store.run_links(run.id)]
    assert f"http://pubmed.ncbi.nlm.nih.gov%E2%80%AE@{TARGETS}/gone-2" in urls, urls
    assert any(u.endswith(f"@{TARGETS}/gone-1") and "%1B" in u for u in urls), urls
    for url in urls:
        assert_clean(url, "a stored URL")
