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

from hostile_kit import audit_and_mail, mapped, start_sink
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


def config_for(tmp_path: Path, port: int, *names: str, page: str = f"http://{HOST}/page",
               extra: str = "") -> Path:
    """A config watching `page`, every name served by the local server on `port`, nothing else."""
    connect = ", ".join(f'"{k}" = "{v}"' for k, v in mapped(port, *names) + (("*", "refuse"),))
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[[pages]]\nurl = "{page}"\n{extra}'
        f"[checker]\ntimeout = 2\nretries = 0\nsoft404_probe = false\nconnect_to = {{ {connect} }}\n"
        f'[database]\npath = "{tmp_path / "m.db"}"\n'
        f'[report]\ndir = "{tmp_path / "out"}"\n',
        encoding="utf-8")
    return config


def write_config(tmp_path: Path, port: int) -> Path:
    return config_for(tmp_path, port, HOST, TARGETS, page=f"http://{HOST}/page.html",
                      extra=f'[[sites]]\nsitemap = "http://{HOST}/sitemap.xml"\n')


async def run_decoded(*args: str, expected: int = 0) -> tuple[str, str]:
    """`monitor ARGS`, which must end with `expected` (succeed) and write
    nothing that is not UTF-8 (a raw byte from the web fails decoding):
    (stdout, stderr)."""
    try:
        code, out, err = await run_monitor(*args)
    except UnicodeDecodeError as exc:
        raise AssertionError(f"monitor {' '.join(args[:2])} wrote a raw byte from the web: {exc}") from None
    assert code == expected, err
    return out, err


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


# -- the report and the mail ------------------------------------------------------

RLO_ANCHOR = "Smith 2020 \u202e"       # reverses what follows it on the line: the URL
ISOLATE_HEADING = "Trials \u2067\u2068 (updated)"
ESC_TITLE = "Treatments \x1b]0;pwned\x07\x1bc\x9b2J"
DRIFT_TITLE = "Casino \u202etrial of nintedanib\u202c bonus"


def report_page() -> str:
    t = f"http://{TARGETS}"
    return (
        f"<html><head><title>{ESC_TITLE}</title></head><body>"
        f"<h2>{ISOLATE_HEADING}</h2>\n"
        f'<p><a href="{t}/gone">{RLO_ANCHOR}</a>. A summary \u2066of\u2069 the study. J Rheumatol. 2020;1:3.</p>\n'
        f'<p><a href="{t}/drift">Nintedanib and the lungs: long follow up</a>. Lancet. 2021;2:4.</p>\n'
        "</body></html>"
    )


async def start_report_site(aiohttp_server: Any) -> int:
    page = report_page()

    async def serve(request: web.Request) -> web.StreamResponse:
        host = request.host.split(":", 1)[0]
        if host == HOST:
            return web.Response(text=page, content_type="text/html")
        if request.path == "/drift":
            return web.Response(text=f"<title>{DRIFT_TITLE}</title><p>{DRIFT_TITLE}</p>",
                                content_type="text/html")
        return web.Response(status=404, text="<title>Gone</title>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", serve)
    server = await aiohttp_server(app)
    return int(server.port)


def decoded_html(html: str) -> str:
    """The text a browser or mail client decodes: character references resolved."""
    import html as htmllib
    return htmllib.unescape(html)


async def test_bidi_overrides_and_controls_from_the_web_do_not_reach_the_report_or_the_mail(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """An override in anchor text would display the URL after it reversed (a
    link that looks like another); ESC and the 8-bit CSI would drive the
    terminal of whoever reads the text part there."""
    import email
    from email.policy import default as default_policy

    from monitor.config import (CheckerSettings, DatabaseSettings, EmailSettings, PageSettings,
                                ReportSettings, Settings)

    port = await start_report_site(aiohttp_server)
    sink, smtp, smtp_port = await start_sink()
    settings = Settings(
        pages=(PageSettings(url=f"http://{HOST}/treatments.html"),),
        report=ReportSettings(dir=str(tmp_path / "out"), confirm_after_hours=0),
        checker=CheckerSettings(timeout=2.0, retries=0, soft404_probe=False,
                                connect_to=mapped(port, HOST, TARGETS) + (("*", "refuse"),)),
        database=DatabaseSettings(path=str(tmp_path / "m.db")),
        email=EmailSettings(host="127.0.0.1", port=smtp_port, security="none",
                            sender="monitor@spoof.example.org", recipients=("webmaster@spoof.example.org",)),
    )
    report, stored = await audit_and_mail(settings, smtp)
    assert any("\u202e" in (link.text or "") for link in stored), "the payload reached the audit"

    saved = report.html_path.read_text(encoding="utf-8")
    assert "Smith 2020" in saved and "TRIALS" in saved
    assert_clean(decoded_html(saved), "the saved report")
    assert_clean(decoded_html(report.index_path.read_text(encoding="utf-8")), "the index")
    assert len(sink.messages) == 1
    message = email.message_from_bytes(sink.messages[0][2], policy=default_policy)
    html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    assert "Smith 2020" in decoded_html(html_part.get_content())
    assert_clean(decoded_html(html_part.get_content()), "the mail's HTML part")
    assert "Smith 2020" in text_part.get_content()
    assert_clean(text_part.get_content(), "the mail's text part")
    assert_clean(str(message["Subject"]), "the subject")


async def test_the_cli_prints_no_control_or_bidi_character_from_the_web(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """`monitor check` in a terminal: the listing, the CSV and the JSON carry
    the titles, headings and anchor texts without ESC, the 8-bit CSI or a
    bidi override (JSON escapes them, so its data is unchanged)."""
    import json

    port = await start_report_site(aiohttp_server)
    config = config_for(tmp_path, port, HOST, TARGETS, page=f"http://{HOST}/treatments.html")
    for fmt in ("text", "csv", "json"):
        code, out, err = await run_monitor("check", "--config", str(config), "--format", fmt)
        assert code == 0, err
        assert "Smith 2020" in out, out
        assert_clean(out, f"--format {fmt}")
        assert_clean(err, f"--format {fmt} stderr")
        if fmt == "json":
            texts = {link["text"] for link in json.loads(out)["links"]}
            assert RLO_ANCHOR.strip() in texts, texts  # the data, escaped, not changed


async def test_history_prints_no_control_character_of_a_redirect_target(
        tmp_path: Path, raw_server: Any) -> None:
    """A Location header that is no URL is kept as the hop's target as it
    came: ESC c (reset the terminal) and a raw 8-bit CSI byte. `monitor
    history` shows the hops on one line each, without them."""
    from hostile_kit import read_request

    async def handler(reader: Any, writer: Any, raw: Any) -> None:
        request = await read_request(reader, raw)
        if b" /page " in request.split(b"\r\n", 1)[0]:
            body = (b'<html><title>P</title><p><a href="http://t.spoof.example.org/x">Study one</a>.'
                    b" J Rheumatol. 2020;1:2.</p></html>")
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body)
            await raw.send(writer, head + body)
        else:
            await raw.send(writer, b"HTTP/1.1 301 Moved\r\nLocation: http://[\x1bc\x9b2J\r\n"
                                   b"Content-Length: 0\r\n\r\n")

    raw = await raw_server(handler)
    config = config_for(tmp_path, raw.port, HOST, "t.spoof.example.org")
    code, _, err = await run_monitor("check", "--config", str(config))
    assert code == 0, err
    out, _ = await run_decoded("history", "http://t.spoof.example.org/x", "--config", str(config))
    assert "Answered 301 to http://[" in out, out
    assert_clean(out, "monitor history")
    assert "\udc9b" not in out and "\ufffd" not in out, repr(out)  # the raw 0x9b byte, decoded


async def test_a_page_redirecting_to_garbage_is_a_failed_page_not_a_crash_or_a_forged_log(
        tmp_path: Path, raw_server: Any) -> None:
    """The watched page (and a site's robots.txt) answer 301 to a Location
    that is no URL, with ESC c and a byte that is not UTF-8. aiohttp's error
    quotes it raw: it reached the log line on stderr (a terminal reset) and,
    as a lone surrogate, made SQLite refuse the page's record, which ended
    the whole run with exit status 1."""
    from hostile_kit import read_request

    async def handler(reader: Any, writer: Any, raw: Any) -> None:
        await read_request(reader, raw)
        await raw.send(writer, b"HTTP/1.1 301 Moved\r\nLocation: http://[\x1bc\x9b2J\r\n"
                               b"Content-Length: 0\r\n\r\n")

    raw = await raw_server(handler)
    site = "site.spoof.example.org"
    config = config_for(tmp_path, raw.port, HOST, site, extra=f'[[sites]]\nstart = "http://{site}/"\n')
    # its only page not fetched: nothing audited, exit 1 (the lines said cleanly all the same)
    out, err = await run_decoded("-v", "check", "--config", str(config), expected=1)
    assert "could not be fetched" in out, out
    assert "page fetch failed" in err and "robots.txt unavailable" in err, err
    assert_clean(out, "stdout")
    assert_clean(err, "the log lines")


async def test_a_validator_that_is_not_ascii_does_not_end_every_run(tmp_path: Path, raw_server: Any) -> None:
    """ETag and Last-Modified are kept to ask "changed since?" next time. A
    byte that is not UTF-8 in them (a lone surrogate once decoded) made
    SQLite refuse the page's record: every audit of the site ended with exit
    status 1. Such a validator is not kept; the page is fetched whole."""
    from hostile_kit import read_request

    async def handler(reader: Any, writer: Any, raw: Any) -> None:
        request = await read_request(reader, raw)
        body = (b'<html><title>P</title><p><a href="http://www.spoof.example.org/self">Study one</a>.'
                b" J Rheumatol. 2020;1:2.</p></html>")
        validators = (b'ETag: "\x9b\x1bc"\r\nLast-Modified: \x9b\x1bc\r\n'
                      if b" /page " in request.split(b"\r\n", 1)[0] else b"")
        await raw.send(writer, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" + validators
                       + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    raw = await raw_server(handler)
    config = config_for(tmp_path, raw.port, HOST)
    for _ in range(2):
        code, out, err = await run_monitor("check", "--config", str(config))
        assert code == 0, err
        assert f"{HOST}/page: 1 link\n" in out, out
    assert all(b"If-None-Match" not in r and b"If-Modified-Since" not in r for r in raw.requests)



async def test_a_cited_server_cannot_end_the_run_with_a_content_type_that_is_not_utf8(
        tmp_path: Path, raw_server: Any) -> None:
    """Any cited server: a byte that is not UTF-8 in its Content-Type (a lone
    surrogate once decoded) made the store's writer fail the batch and the
    audit end with exit status 1, every week."""
    from hostile_kit import read_request

    async def handler(reader: Any, writer: Any, raw: Any) -> None:
        request = await read_request(reader, raw)
        if b" /page " in request.split(b"\r\n", 1)[0]:
            body = (f'<html><title>P</title><p><a href="http://{TARGETS}/odd">Study one</a>.'
                    f' J Rheumatol. 2020;1:2.</p><p><a href="http://{TARGETS}/fine">Study two</a>.'
                    " Lancet. 2021;1:2.</p></html>").encode()
            content_type = b"text/html"
        else:
            body = b"<title>An article</title><p>Text</p>"
            content_type = b"text/html; charset=\x9b\x1bc" if b" /odd " in request else b"text/html"
        await raw.send(writer, b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type
                       + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    raw = await raw_server(handler)
    config = config_for(tmp_path, raw.port, HOST, TARGETS)
    code, out, err = await run_monitor("check", "--config", str(config), "--format", "json")
    assert code == 0, err
    import json
    links = {link["url"].rsplit("/", 1)[-1]: link for link in json.loads(out)["links"]}
    assert {name: link["status"] for name, link in links.items()} == {"odd": "ok", "fine": "ok"}
    assert_clean(out, "stdout")
