"""Bad input: random and malformed HTML, bytes, URLs, observations and configs.

Property-based (hypothesis) where the input space is open, tables where the
mistakes are known:

- `decode_html` never raises on any bytes under any Content-Type;
- `extract_page` never raises, and accounts for every link: one Citation per
  href, in order; a Citation either carries a URL the checker accepts as is
  or says why not (`invalid_url` for a malformed one);
- `classify` never raises on any observation, history or probe;
- a page of 10,000 malformed hrefs goes through a whole real audit, each one
  recorded as `error` / `invalid_url`, with no request but the page's;
- `python -m monitor check --config BAD` on a dozen broken files: exit 2,
  one line on stderr naming the file, no traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html as htmllib
import os
import string
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from yarl import URL

from monitor.check import Checker
from monitor.classify import classify, classify_unprobed, next_state
from monitor.config import CheckerSettings
from monitor.decode import decode_html
from monitor.extract import extract_page, normalize_url
from monitor.types import ErrorKind, Hop, LinkStatus, Observation, UrlState

PAGE_URL = "https://www.sclero.org/scleroderma/treatments.html"
SKIP_REASONS = {"invalid_url", "unsupported_scheme", "mailto", "tel", "javascript", "data", "fragment"}
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters HTML text may carry (no surrogates: they cannot be encoded).
TEXT = st.characters(blacklist_categories=("Cs",))


# -- strategies --------------------------------------------------------------------------------


URL_PIECES = [
    "http://", "https://", "HTTP://", "//", "/", "\\", "..", ".", "?", "#", "&", "=", "%", "%2", "%zz",
    "@", ":", "::", "[", "]", "[::1]", "127.0.0.1", "0x7f.1", "www.sclero.org", "xn--", "münchen.de",
    "exa mple.com", ":99999", ":80", ":-1", "javascript:", "mailto:", "data:", "ftp://", "file:///",
    "\t", "\n", "\r", " ", "\x00", "\x7f", "\u2028", "\ufeff", "é", "💥", "'", '"', "<", ">", "`",
]

urls = st.one_of(
    st.lists(st.sampled_from(URL_PIECES) | st.text(TEXT, max_size=8), max_size=10).map("".join),
    st.text(TEXT, max_size=60),
    st.builds(lambda host, path: f"https://{host}/{path}",
              st.text(string.ascii_letters + string.digits + "-._~%[]:@", min_size=0, max_size=20),
              st.text(TEXT, max_size=20)),
)

TAGS = ["a", "p", "div", "li", "ul", "td", "tr", "table", "h1", "h2", "b", "strong", "nav", "footer",
        "base", "img", "script", "style", "title", "head", "body", "html", "svg", "math", "template",
        "iframe", "br", "form", "select", "option", "textarea", "noscript", "!--", "![CDATA["]

fragments = st.one_of(
    st.builds(lambda t: f"<{t}>", st.sampled_from(TAGS)),
    st.builds(lambda t: f"</{t}>", st.sampled_from(TAGS)),
    st.builds(lambda u: f'<a href="{u}">', urls),
    st.builds(lambda u: f"<a href='{u}'>x</a>", urls),
    st.builds(lambda u: f"<a href={u}>", urls),
    st.builds(lambda u: f'<base href="{u}">', urls),
    st.builds(lambda u: f'<img src="{u}" srcset="{u} 2x, {u}">', urls),
    st.text(TEXT, max_size=30),
    st.sampled_from(["<", ">", "&", "&amp", "&#0;", "&#x110000;", "<!--", "-->", "<a", "href=", '"', "'",
                     "<![CDATA[", "]]>", "<?xml ?>", "<!DOCTYPE html>", "\x00", "\r\n"]),
)
documents = st.lists(fragments, max_size=40).map("".join)


def checkable(url: str) -> bool:
    """What the checker does with a URL before any request: accept it, or refuse it."""
    parsed = Checker._parse(Checker.__new__(Checker), url)  # pure: no client needed
    return isinstance(parsed, URL)


def assert_accounted(citations: Any) -> None:
    for c in citations:
        if c.url is None:
            assert c.skip_reason in SKIP_REASONS, c
        else:
            assert c.skip_reason in (None, "excluded"), c
            assert checkable(c.url), f"extracted a URL the checker refuses: {c.url!r} from {c.raw_href!r}"
            assert normalize_url(c.url, c.url) == (c.url, None), "normal form is stable"


# -- decoding ---------------------------------------------------------------------------------


CONTENT_TYPES = st.one_of(
    st.text(TEXT, max_size=40),
    st.builds(lambda c: f"text/html; charset={c}",
              st.sampled_from(["utf-8", "UTF-16", "utf-16le", "utf-7", "cp1252", "latin1", "shift_jis",
                               "base64", "hex", "rot13", "idna", "punycode", "zlib", "x-unknown", "",
                               '"utf-8"', "utf-8;", "\x00", "utf-8" * 50]) | st.text(TEXT, max_size=15)),
)


@FAST
@given(body=st.binary(max_size=2000), content_type=CONTENT_TYPES | st.none())
@example(body=b'<meta charset="utf-16">\xff\xfe<\x00', content_type=None)
@example(body=b"\xef\xbb\xbf\xff\xfe\x00", content_type="text/html; charset=base64")
@example(body=b'<meta http-equiv="Content-Type" content="text/html; charset=rot13">', content_type=None)
def test_decode_html_never_raises(body: bytes, content_type: str | None) -> None:
    assert isinstance(decode_html(body, content_type), str)


@FAST
@given(text=st.text(TEXT, max_size=300), charset=st.sampled_from(["utf-8", "utf-16", "cp1252"]))
def test_what_a_page_declares_is_what_we_read(text: str, charset: str) -> None:
    # (latin-1 is not here: like browsers, a page labelled latin-1 is read as
    # windows-1252, so its 0x80-0x9f bytes are curly quotes, not C1 controls.)
    try:
        body = text.encode(charset)
    except UnicodeEncodeError:
        return
    decoded = decode_html(body, f"text/html; charset={charset}")
    assert decoded == text.removeprefix("\ufeff") or decoded == text


# -- extraction ---------------------------------------------------------------------------------


@FAST
@given(document=documents, page_url=st.sampled_from([PAGE_URL, "http://[::1]:8080/a/b?c#d", "https://xn--mnchen-3ya.de/"]))
def test_extract_page_never_raises_on_malformed_html(document: str, page_url: str) -> None:
    extracted = extract_page(document, page_url)
    assert_accounted(extracted.citations)
    assert all(c.page_url == page_url for c in extracted.citations)


def anchor_page(hrefs: list[str]) -> str:
    items = "".join(f'<p><a href="{htmllib.escape(h, quote=True)}">Entry {i}</a> text after it.</p>\n'
                    for i, h in enumerate(hrefs))
    return f"<html><head><title>T</title></head><body><h2>Refs</h2>\n{items}</body></html>"


def as_parsed(href: str) -> str:
    """What an HTML parser hands on for an attribute value (input preprocessing)."""
    return href.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")


@FAST
@given(hrefs=st.lists(urls, max_size=25))
@example(hrefs=["", " ", "http://", "https://exa mple.com/", "http://[::1", "http://a:99999/",
                "javascript:alert(1)", "#top", "mailto:x@y.org", "//cdn.example.org/x.js", "http:\\\\evil.com"])
def test_every_href_is_one_citation(hrefs: list[str]) -> None:
    extracted = extract_page(anchor_page(hrefs), PAGE_URL)
    anchors = [c for c in extracted.citations if c.element == "a"]
    assert [c.raw_href for c in anchors] == [as_parsed(h) for h in hrefs]
    assert [c.anchor_text for c in anchors] == [f"Entry {i}" for i in range(len(hrefs))]
    assert_accounted(anchors)


def test_repeated_hrefs_with_a_nul_are_not_taken_for_parser_clones() -> None:
    # Found by the property above: the source scan compared "\x00" with the
    # parser's U+FFFD and dropped the second link as a re-opened <a> clone.
    hrefs = ["http://a.org/\x00x", "http://a.org/\x00x", "http://b.org/\x00"]
    extracted = extract_page(anchor_page(hrefs), PAGE_URL)
    assert [c.raw_href for c in extracted.citations] == [as_parsed(h) for h in hrefs]
    assert [c.line for c in extracted.citations] == [2, 3, 4]


ADVERSARIAL: dict[str, Callable[[int], str]] = {
    # n nested <b>: each walked up the whole chain to see if it was an
    # old-style heading (26 s at 20,000).
    "nested-bold": lambda n: "<b>" * n + "".join(
        f"<a href='http://x{i}.example.org/'>L{i}</a> " for i in range(200)),
    # Tags that never close: the source scan rescanned to the end from each (8-17 s at 20,000).
    "unclosed-tags": lambda n: '<a href="x" ' * n,
    "unclosed-quotes": lambda n: '<a href="' * n,
    "unclosed-srcset": lambda n: "<img srcset='" * n,
}


def _extract_seconds(html: str, links: int) -> float:
    """The CPU time of this process, best of two: wall time counted the
    moments other processes held the cores (under the full suite's load the
    "(Also see" test once measured 2.9 s against 0.18 s, 16x, and failed on
    linear code). `links`: how many the page holds."""
    import time

    best = float("inf")
    for _ in range(2):
        started = time.process_time()
        extracted = extract_page(html, PAGE_URL)
        best = min(best, time.process_time() - started)
    assert len(extracted.citations) == links
    return best


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_markup_is_extracted_in_linear_time(name: str) -> None:
    # How the time grows, not how long it takes: 4x the markup takes about 4x
    # the time when linear, 16x when quadratic (the bugs above), whatever the
    # machine's speed or load. Below 0.3 s for the larger page nothing is at
    # stake and timer noise would dominate the ratio.
    cited = 200 if name == "nested-bold" else 0
    small = _extract_seconds(ADVERSARIAL[name](5_000), cited)
    large = _extract_seconds(ADVERSARIAL[name](20_000), cited)
    assert large < 0.3 or large / small < 9, f"5,000: {small:.3f} s, 20,000: {large:.3f} s"


def _entries_with_also_see(n: int) -> str:
    return "<p>" + "<br>".join(
        f'<a href="https://h{i % 300}.example.org/a/{i}">Article number {i} about scleroderma</a> '
        f'(Also see <a href="/t{i}.html">topic {i}</a>) J Foo, 2019.' for i in range(n)) + "</p>"


def test_a_block_of_entries_each_with_an_also_see_is_read_in_linear_time() -> None:
    """Each link walked every "(Also see ...)" part of its block: 4,000
    entries in one <p> (an A-Z index) took 13.7 s; 1,000 -> 4,000 entries
    took 12x the time, now 4x. A ratio, as above, 0.25 s on this machine."""
    small = _extract_seconds(_entries_with_also_see(1_000), 2_000)
    large = _extract_seconds(_entries_with_also_see(4_000), 8_000)
    assert large < 0.15 or large / small < 9, f"1,000: {small:.3f} s, 4,000: {large:.3f} s"


@pytest.mark.parametrize(("heading", "section"), [
    ("<p><b><i><b>Biologic agents</b></i></b></p>", "Biologic agents"),
    ("<p><a name='bio'><b>Biologic agents</b></a></p>", "Biologic agents"),
    ("<p><a><b><strong>Biologic agents</strong></b></a></p>", "Biologic agents"),
    ("<p><b>Biologic agents</b> and more text in the block.</p>", ""),
])
def test_nested_bold_headings_still_name_their_section(heading: str, section: str) -> None:
    html = (f"<html><body>{heading}<p><a href='http://x.example.org/a'>A long cited article title</a>. "
            "Summary of it. J Rheumatol. 2020;1(2):3-4.</p></body></html>")
    links = [c for c in extract_page(html, PAGE_URL).citations if c.raw_href.startswith("http://x.")]
    assert [c.section for c in links] == [section]


@pytest.mark.parametrize("junk", [b"<!--" * 10_000, b"<!DOCTYPE x [" * 6_000], ids=["comments", "doctype"])
def test_a_sitemap_of_unclosed_comments_is_parsed_in_linear_time(junk: bytes) -> None:
    import time

    from monitor.sites import parse_sitemap

    started = time.monotonic()
    assert parse_sitemap(junk) == ([], [])
    took = time.monotonic() - started
    # Quadratic parsing took 29 s on 160 KB; linear takes milliseconds.
    assert took < 0.25, f"{len(junk)} bytes took {took:.1f} s"


MALFORMED = [
    "http://exa mple{i}.org/",
    "http://[::1{i}/",
    "http://host{i}.org:99999/",
    "http://host{i}.org:8o/",
    "http:///path/{i}",
    "http://user@/{i}",
    "http://ex%41mple{i}.org/",
    "https://999.{i}.1.1/",
    "http://exa<mple{i}.org/",
    "https://host{i}.org:-1/",
]


def malformed_hrefs(n: int) -> list[str]:
    return [MALFORMED[k % len(MALFORMED)].format(i=k) for k in range(n)]


def test_a_page_of_10000_malformed_hrefs_is_all_invalid_url() -> None:
    hrefs = malformed_hrefs(10_000)
    extracted = extract_page(anchor_page(hrefs), PAGE_URL)
    assert len(extracted.citations) == 10_000
    assert {c.skip_reason for c in extracted.citations} == {"invalid_url"}
    assert [c.raw_href for c in extracted.citations] == hrefs


async def test_a_page_of_10000_malformed_hrefs_through_a_real_audit(tmp_path: Path, aiohttp_server: Any) -> None:
    from aiohttp import web

    from monitor.config import DatabaseSettings, PageSettings, Settings as Config
    from monitor.crawl import run_audit
    from monitor.store import Store

    page = anchor_page(malformed_hrefs(10_000))
    requests: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        requests.append(request.path)
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", serve)
    server = await aiohttp_server(app)
    settings = Config(
        pages=(PageSettings(url="http://www.sclero.org/bad.html"),),
        checker=CheckerSettings(timeout=2.0, retries=0, soft404_probe=False,
                                connect_to=(("www.sclero.org:80", f"127.0.0.1:{server.port}"), ("*", "refuse"))),
        database=DatabaseSettings(path=str(tmp_path / "m.db")),
    )
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        links = store.run_links(outcome.run.id)
    assert outcome.links == 10_000
    assert len(links) == 10_000
    assert {(link.status, link.reason) for link in links} == {(LinkStatus.ERROR, "invalid_url")}
    assert requests == ["/bad.html"]


# -- classification ---------------------------------------------------------------------------------


hops = st.builds(Hop, url=urls, status=st.sampled_from([301, 302, 303, 307, 308, 200, 0, 999]), location=urls)
observations = st.builds(
    Observation,
    url=urls,
    checked_at=st.datetimes(timezones=st.just(dt.timezone.utc)),
    http_status=st.none() | st.integers(0, 1000),
    final_url=st.none() | urls,
    redirects=st.lists(hops, max_size=4).map(tuple),
    error_kind=st.none() | st.sampled_from(list(ErrorKind)),
    error_detail=st.text(TEXT, max_size=50),
    elapsed_ms=st.integers(0, 10**7),
    bytes_read=st.integers(0, 10**6),
    content_type=st.text(TEXT, max_size=30) | st.sampled_from(["text/html", "application/pdf", ""]),
    title=st.text(TEXT, max_size=80) | st.sampled_from(["404 Not Found", "Page not found", "Just a moment...",
                                                       "This domain is for sale", "Home", "Expired"]),
    meta_title=st.text(TEXT, max_size=40),
    text=st.text(TEXT, max_size=300),
    server=st.text(TEXT, max_size=20) | st.sampled_from(["cloudflare", "AkamaiGHost", ""]),
    retry_after=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    content_hash=st.text("0123456789abcdef", max_size=40),
    attempts=st.integers(0, 5),
    method=st.sampled_from(["GET", "HEAD", ""]),
)
states = st.none() | st.builds(
    UrlState, url=urls, status=st.sampled_from(list(LinkStatus)), reason=st.text(TEXT, max_size=20),
    strikes=st.integers(0, 100), recent=st.lists(st.sampled_from([s.value for s in LinkStatus] + ["?"]),
                                                 max_size=10).map(tuple),
    last_ok_title=st.text(TEXT, max_size=60))


@FAST
@given(obs=observations, title=st.text(TEXT, max_size=80), probe=st.none() | observations, previous=states)
def test_classify_never_raises(obs: Observation, title: str, probe: Observation | None,
                               previous: UrlState | None) -> None:
    verdict = classify(obs, title=title, probe=probe, previous=previous)
    assert verdict.url == obs.url
    assert verdict.status in LinkStatus and verdict.reason and isinstance(verdict.detail, str)
    if obs.error_kind is ErrorKind.PRIVATE_ADDRESS:
        assert (verdict.status, verdict.reason) == (LinkStatus.BLOCKED, "private_address")
    state = next_state(previous if previous and previous.url == obs.url else None, verdict, obs)
    assert state.url == obs.url and state.strikes >= 0


@FAST
@given(obs=observations, title=st.text(TEXT, max_size=80), probe=st.none() | observations, previous=states)
def test_a_verdict_given_without_the_probe_is_the_one_any_probe_gives(
        obs: Observation, title: str, probe: Observation | None, previous: UrlState | None) -> None:
    # The audit asks a site for a probe only when `classify_unprobed` says it could matter.
    unprobed = classify_unprobed(obs, title=title, previous=previous)
    assert unprobed is None or unprobed == classify(obs, title=title, probe=probe, previous=previous)


# -- configuration files, through the CLI ---------------------------------------------------------

PAGE = '[[pages]]\nurl = "https://www.sclero.org/a.html"\n'

BROKEN_CONFIGS: dict[str, bytes | None] = {
    "missing": None,  # no file at all
    "binary-junk": bytes(range(256)) * 4,
    "binary-utf8-with-nul": b"\x00\x01\x02[[pages]]\x00",
    "empty": b"",
    "invalid-toml": b'[[pages]\nurl = "https://a.org/"\n',
    "duplicate-key": PAGE.encode() + b'[checker]\ntimeout = 5\ntimeout = 6\n',
    "wrong-type": PAGE.encode() + b'[checker]\ntimeout = "fast"\n',
    "wrong-type-list": PAGE.encode() + b'[email]\nrecipients = "a@b.org"\n',
    "unknown-key": PAGE.encode() + b"[checker]\nper_hosts = 1\n",
    "unknown-section": PAGE.encode() + b'[databse]\npath = "x.db"\n',
    "bad-url": b'[[pages]]\nurl = "javascript:alert(1)"\n',
    "url-with-space": b'[[pages]]\nurl = "https://exa mple.org/"\n',
    "password-in-file": PAGE.encode() + b'[email]\npassword = "hunter2"\n',
    "crlf-in-recipient": PAGE.encode() + b'[email]\nrecipients = ["a@b.org\\r\\nBcc: x@y.org"]\n',
    "bad-cron": PAGE.encode() + b'[schedule]\ncron = "every monday"\n',
    "no-pages": b"[checker]\ntimeout = 5\n",
    "utf8-bom": b"\xef\xbb\xbf" + PAGE.encode(),
    # contract12 #1, #8, #13: accepted, then failed or misbehaved later
    "escape-in-user-agent": PAGE.encode() + b'[checker]\nuser_agent = "a\\u001b[31mb"\n',
    "nul-in-site-name": PAGE.encode() + b'[report]\nsite_name = "Sclero\\u0000"\n',
    "crlf-in-page-name": b'[[pages]]\nurl = "https://a.org/"\nname = "A\\r\\nBcc: x@y.org"\n',
    "connect-to-port": PAGE.encode() + b'[checker]\nconnect_to = {"a.org:443" = "127.0.0.1:99999"}\n',
    "password-in-url": b'[[pages]]\nurl = "https://webmaster:hunter2@www.sclero.org/a.html"\n',
    "empty-report-dir": PAGE.encode() + b'[report]\ndir = ""\n',
}


async def run_cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"})
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode("utf-8", "replace")


def assert_one_clear_line(code: int, stderr: str, path: Path) -> None:
    lines = stderr.splitlines()
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].strip(), f"expected one line, got {lines!r}"
    assert str(path) in lines[0], f"the line must name the file: {lines[0]!r}"


async def test_broken_config_files_give_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    paths = {}
    for name, content in BROKEN_CONFIGS.items():
        path = tmp_path / f"{name}.toml"
        if content is not None:
            path.write_bytes(content)
        paths[name] = path
    loop_link = tmp_path / "symlink-loop.toml"
    loop_link.symlink_to(loop_link)
    paths["symlink-loop"] = loop_link
    results = await asyncio.gather(*(run_cli("check", "--config", str(p)) for p in paths.values()))
    for (name, path), (code, stderr) in zip(paths.items(), results):
        try:
            assert_one_clear_line(code, stderr, path)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    assert "hunter2" not in "".join(err for _, err in results), "a secret is never echoed"


async def test_a_directory_as_config_gives_one_clear_line(tmp_path: Path) -> None:
    code, stderr = await run_cli("check", "--config", str(tmp_path))
    assert_one_clear_line(code, stderr, tmp_path)
