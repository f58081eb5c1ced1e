"""Servers that misbehave on purpose, each checked in one run with good links.

Every case runs `Checker.check_many` on the hostile URL together with four
good URLs on another server, then asserts:

- the hostile link's observation and verdict (status and reason);
- the bound: its answer came within timeout x (retries + 1), plus a little
  for scheduling (the backoff between attempts is 10 ms here);
- the good links are `ok` and were not held up (each answered in well under
  one timeout), so one bad server costs a run nothing but its own slot;
- for the bombs and the endless body, the bounded read: `bytes_read` is
  `max_body_bytes` of DECODED data and the peak of Python memory allocated
  during the run (tracemalloc) stays a few MB, where decompressing the bomb
  would take gigabytes.

Raw asyncio servers (`raw_server` in conftest.py) play the parts aiohttp's
server cannot; redirects use the shared `site` and a two-host `pingpong`.
"""

from __future__ import annotations

import asyncio
import random
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import brotli
import pytest

from monitor.check import Checker
from monitor.classify import classify
from monitor.config import CheckerSettings
from monitor.types import ErrorKind, LinkStatus, Observation

from hostile_kit import PingPong, RawServer, mapped, read_request

if TYPE_CHECKING:
    from tests.conftest import CannedDNS, Site

TIMEOUT = 1.0
RETRIES = 1
SLACK = 0.75
"""Seconds allowed beyond timeout x (retries + 1): backoff, scheduling, parsing."""
BOUND = TIMEOUT * (RETRIES + 1) + SLACK
MAX_BODY = 65536
PEAK_MEMORY = 16 * 1024 * 1024
"""Python memory a whole mixed run may allocate at its peak: the bombs would
need 1 GiB and more to be decompressed."""

Settings = Callable[..., CheckerSettings]
OpenClient = Callable[..., Awaitable[Any]]
StartRaw = Callable[..., Awaitable[RawServer]]


def good_urls(site: Site) -> list[str]:
    return [site.url("/ok"), site.url("/redirect/1"), site.url("/cp1252"), site.url("/echo-host")]


async def run_mixed(
    client_for: OpenClient, settings: Settings, canned_dns: Callable[..., CannedDNS],
    site: Site, hostile: str, *, connect_to: tuple[tuple[str, str], ...] = (),
    measure_memory: bool = False,
) -> tuple[Observation, float, int]:
    """Check `hostile` with the good URLs; assert the good ones; return the
    hostile observation, when it arrived (s) and the memory peak (bytes)."""
    s = settings(timeout=TIMEOUT, retries=RETRIES, max_body_bytes=MAX_BODY, connect_to=connect_to)
    client = await client_for(s, dns=canned_dns({}))  # no real DNS, ever
    checker = Checker(client, s)
    good = good_urls(site)
    got: dict[str, Observation] = {}
    arrived: dict[str, float] = {}
    if measure_memory:
        tracemalloc.start()
    start = time.monotonic()
    try:
        async for obs in checker.check_many([hostile, *good]):
            got[obs.url] = obs
            arrived[obs.url] = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1] if measure_memory else 0
    finally:
        if measure_memory:
            tracemalloc.stop()
    assert set(got) == {hostile, *good}
    for url in good:
        assert classify(got[url]).status is LinkStatus.OK, (url, got[url])
        assert arrived[url] < TIMEOUT / 2, f"{url} waited behind the hostile server"
    return got[hostile], arrived[hostile], peak


def verdict_of(obs: Observation) -> tuple[str, str]:
    v = classify(obs)
    return v.status.value, v.reason


# -- handlers -------------------------------------------------------------------------


def drip_headers(every: float) -> Callable[..., Awaitable[None]]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        await read_request(reader, raw)
        await raw.send(writer, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Slow: ")
        while True:
            await asyncio.sleep(every)
            await raw.send(writer, b"a")

    return handler


def drip_body(every: float) -> Callable[..., Awaitable[None]]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        await read_request(reader, raw)
        await raw.send(writer, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                               b"Content-Length: 100000\r\n\r\n<html><head><title>Drip")
        while True:
            await asyncio.sleep(every)
            await raw.send(writer, b"a")

    return handler


def endless(head: bytes, first: bytes, chunk: bytes) -> Callable[..., Awaitable[None]]:
    """Headers, then `first`, then `chunk` for ever (as fast as the client reads)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        await read_request(reader, raw)
        await raw.send(writer, head + first)
        while True:
            await raw.send(writer, chunk)

    return handler


def answer(data: bytes, then_close: bool = True) -> Callable[..., Awaitable[None]]:
    """Send `data` once; then close (or wait for the client to give up)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        await read_request(reader, raw)
        await raw.send(writer, data)
        if not then_close:
            await reader.read()

    return handler


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
    """Accept and never say a word (a TLS ClientHello gets no ServerHello)."""
    while await reader.read(4096):
        pass


async def smtp_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
    """A mail server on the port: banner first, then 502 to each line."""
    await raw.send(writer, b"220 mx.example.net ESMTP Postfix (Debian/GNU)\r\n")
    while line := await reader.readline():
        raw.requests.append(line)
        await raw.send(writer, b"502 5.5.2 Error: command not recognized\r\n")


async def random_bytes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
    await read_request(reader, raw)
    await raw.send(writer, random.Random(6).randbytes(8192))
    await reader.read()


HTML_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"


def gzip_stream() -> tuple[bytes, bytes]:
    """A gzip stream that never ends: `first`, then `block` repeated, each
    block 1 KB on the wire and 1 MiB of spaces once decoded. A full flush
    resets the compressor, so every block after the first is byte-identical."""
    spaces = b" " * (1 << 20)
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = co.compress(b"<html><head><title>Bomb</title></head><body>" + spaces) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(spaces) + co.flush(zlib.Z_FULL_FLUSH)
    assert block == co.compress(spaces) + co.flush(zlib.Z_FULL_FLUSH)
    return first, block


def brotli_bomb(gib: int = 1) -> bytes:
    """1 GiB of spaces after a title, in about 200 KB of brotli."""
    c = brotli.Compressor(quality=1)
    parts = [c.process(b"<html><head><title>Bomb</title></head><body>")]
    spaces = b" " * (4 << 20)
    parts += [c.process(spaces) for _ in range(256 * gib)]
    parts.append(c.finish())
    return b"".join(parts)


# -- slow servers ------------------------------------------------------------------------


@pytest.mark.parametrize("every", [1.0, 0.2], ids=["1-byte-per-s", "5-bytes-per-s"])
async def test_slowloris_headers_are_cut_at_the_deadline(
        every: float, raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    # 5 bytes a second defeats a read-gap timeout; only the deadline stops it.
    raw = await raw_server(drip_headers(every))
    url = "http://slowloris.example.net/"
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site, url,
                                      connect_to=mapped(raw.port, "slowloris.example.net"))
    assert (obs.error_kind, obs.http_status, obs.attempts) == (ErrorKind.TIMEOUT, None, RETRIES + 1)
    assert verdict_of(obs) == ("error", "timeout")
    assert TIMEOUT * (RETRIES + 1) * 0.9 <= elapsed <= BOUND
    assert raw.connections == RETRIES + 1


@pytest.mark.parametrize("every", [1.0, 0.2], ids=["1-byte-per-s", "5-bytes-per-s"])
async def test_slowloris_body_is_cut_at_the_deadline(
        every: float, raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    raw = await raw_server(drip_body(every))
    url = "http://slowbody.example.net/page"
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site, url,
                                      connect_to=mapped(raw.port, "slowbody.example.net"))
    # The status arrived, but a page that cannot deliver its first 64 KiB
    # within the timeout is down for a reader too.
    assert (obs.http_status, obs.error_kind, obs.attempts) == (200, ErrorKind.TIMEOUT, RETRIES + 1)
    assert verdict_of(obs) == ("error", "timeout")
    assert "reading the body" in obs.error_detail
    assert elapsed <= BOUND


async def test_a_tls_handshake_that_never_completes_times_out(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    raw = await raw_server(silent)
    url = "https://tls-stall.example.net/"
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site, url,
                                      connect_to=mapped(raw.port, "https://tls-stall.example.net"))
    assert (obs.error_kind, obs.http_status) == (ErrorKind.TIMEOUT, None)
    assert verdict_of(obs) == ("error", "timeout")
    assert elapsed <= BOUND
    assert raw.connections == RETRIES + 1


# -- endless and explosive bodies ---------------------------------------------------------


async def test_an_endless_body_is_read_to_the_bound_and_dropped(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    chunk = b"<p>and on and on</p>" * 3277  # 64 KiB a write
    raw = await raw_server(endless(HTML_HEAD + b"\r\n", b"<html><head><title>Endless</title></head><body>", chunk))
    url = "http://endless.example.net/"
    obs, elapsed, peak = await run_mixed(client_for, checker_settings, canned_dns, site, url,
                                         connect_to=mapped(raw.port, "endless.example.net"),
                                         measure_memory=True)
    assert (obs.http_status, obs.error_kind, obs.bytes_read, obs.title) == (200, None, MAX_BODY, "Endless")
    assert verdict_of(obs) == ("ok", "ok")
    assert elapsed <= BOUND
    assert peak < PEAK_MEMORY
    # The connection was closed, not drained: the server could only fill the
    # socket buffers (a few MB), far from "endless".
    await asyncio.sleep(0.1)
    assert raw.sent < 64 * 1024 * 1024


async def test_a_gzip_bomb_is_decoded_only_to_the_bound(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    first, block = gzip_stream()
    raw = await raw_server(endless(HTML_HEAD + b"Content-Encoding: gzip\r\n\r\n", first, block * 64))
    url = "http://gzip-bomb.example.net/"
    obs, elapsed, peak = await run_mixed(client_for, checker_settings, canned_dns, site, url,
                                         connect_to=mapped(raw.port, "gzip-bomb.example.net"),
                                         measure_memory=True)
    assert (obs.http_status, obs.error_kind, obs.title) == (200, None, "Bomb")
    assert obs.bytes_read == MAX_BODY, "the bound is on decoded bytes"
    assert verdict_of(obs) == ("ok", "ok")
    assert elapsed <= BOUND
    assert peak < PEAK_MEMORY, f"peak {peak / 2**20:.1f} MiB: the bomb was decompressed"


async def test_a_brotli_bomb_is_decoded_only_to_the_bound(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    bomb = brotli_bomb()
    head = HTML_HEAD + b"Content-Encoding: br\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    raw = await raw_server(answer(head + bomb, then_close=False))
    url = "http://br-bomb.example.net/"
    obs, elapsed, peak = await run_mixed(client_for, checker_settings, canned_dns, site, url,
                                         connect_to=mapped(raw.port, "br-bomb.example.net"),
                                         measure_memory=True)
    assert (obs.http_status, obs.error_kind, obs.title) == (200, None, "Bomb")
    assert obs.bytes_read == MAX_BODY
    assert verdict_of(obs) == ("ok", "ok")
    assert elapsed <= BOUND
    assert peak < PEAK_MEMORY, f"peak {peak / 2**20:.1f} MiB: the bomb was decompressed"


# -- broken answers ----------------------------------------------------------------------


BROKEN = {
    "100KB-header": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    "10000-header-lines": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000)) + b"\r\n",
    "status-not-a-number": b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
    "status-out-of-range": b"HTTP/1.1 99999 Big\r\nContent-Length: 0\r\n\r\n",
    "not-http": b"SPDY/9 200 OK\r\nContent-Length: 0\r\n\r\n",
    "binary-status-line": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
async def test_malformed_answers_are_bad_responses(
        name: str, raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    raw = await raw_server(answer(BROKEN[name]))
    url = "http://broken.example.net/"
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site, url,
                                      connect_to=mapped(raw.port, "broken.example.net"))
    assert (obs.error_kind, obs.http_status) == (ErrorKind.BAD_RESPONSE, None), obs
    assert verdict_of(obs) == ("error", "bad_response")
    assert obs.attempts == 1, "a malformed answer is not retried"
    assert elapsed <= BOUND
    assert len(obs.error_detail) <= 200


async def test_a_huge_title_is_cut(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    from monitor.target import MAX_TITLE_CHARS

    title = b"Sorry this page was not found " * 1000  # 30 KB twice, within the body bound
    body = b"<html><head><title>" + title + b"</title><meta name=citation_title content='" + title + b"'>"
    raw = await raw_server(answer(HTML_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body))
    obs, _, _ = await run_mixed(client_for, checker_settings, canned_dns, site, "http://huge-title.example.net/",
                                connect_to=mapped(raw.port, "huge-title.example.net"))
    assert 0 < len(obs.title) <= MAX_TITLE_CHARS and 0 < len(obs.meta_title) <= MAX_TITLE_CHARS
    assert obs.title.startswith("Sorry this page was not found") and not obs.title.endswith(" Sorr")
    assert verdict_of(obs)[0] == "expired", "cut, the title still reads as a missing page"


def many_headers(count: int, size: int) -> Callable[..., Awaitable[None]]:
    """Header lines written one by one, so that the peak measured is the
    client's, not this server's send buffer."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        await read_request(reader, raw)
        await raw.send(writer, HTML_HEAD)
        for i in range(count):
            await raw.send(writer, b"X-Pad-%d: " % i + b"a" * size + b"\r\n")
        await raw.send(writer, b"Content-Length: 21\r\n\r\n<title>Padded</title>")
        await reader.read()

    return handler


async def test_the_largest_header_set_we_take_stays_small(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    # Just inside both limits (HEADER_LIMIT bytes a line, MAX_HEADERS lines).
    from monitor.client import HEADER_LIMIT, MAX_HEADERS

    raw = await raw_server(many_headers(MAX_HEADERS - 4, HEADER_LIMIT - 100))
    obs, elapsed, peak = await run_mixed(client_for, checker_settings, canned_dns, site,
                                         "http://padded.example.net/",
                                         connect_to=mapped(raw.port, "padded.example.net"),
                                         measure_memory=True)
    assert (obs.http_status, obs.title) == (200, "Padded")
    assert peak < PEAK_MEMORY, f"peak {peak / 2**20:.1f} MiB for one answer's headers"


async def test_headers_past_the_limits_are_refused_early(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    # 500 lines of 60 KB (30 MB): parsed whole, they took 59 MiB of memory.
    raw = await raw_server(many_headers(500, 60_000))
    obs, elapsed, peak = await run_mixed(client_for, checker_settings, canned_dns, site,
                                         "http://padded.example.net/",
                                         connect_to=mapped(raw.port, "padded.example.net"),
                                         measure_memory=True)
    assert verdict_of(obs) == ("error", "bad_response")
    assert peak < PEAK_MEMORY, f"peak {peak / 2**20:.1f} MiB"
    assert elapsed <= BOUND
    assert raw.sent < 10 * 1024 * 1024, "refused at the first long line, not read to the end"


async def test_a_12_kb_cookie_is_still_welcome(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    raw = await raw_server(answer(HTML_HEAD + b"Set-Cookie: session=" + b"c" * 12_288
                                  + b"\r\nContent-Length: 21\r\n\r\n<title>Cookie</title>", then_close=False))
    obs, _, _ = await run_mixed(client_for, checker_settings, canned_dns, site, "http://cookie.example.net/",
                                connect_to=mapped(raw.port, "cookie.example.net"))
    assert (obs.http_status, obs.title, obs.error_kind) == (200, "Cookie", None)


async def test_closing_before_any_answer_is_a_reset(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    raw = await raw_server(answer(b""))
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site,
                                      "http://hangup.example.net/",
                                      connect_to=mapped(raw.port, "hangup.example.net"))
    assert (obs.error_kind, obs.http_status, obs.attempts) == (ErrorKind.CONNECTION_RESET, None, RETRIES + 1)
    assert verdict_of(obs) == ("error", "connection_reset")
    assert elapsed <= BOUND


async def test_closing_in_the_middle_of_the_headers_is_a_reset(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    raw = await raw_server(answer(b"HTTP/1.1 200 OK\r\nContent-Type: text/ht"))
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site,
                                      "http://half-head.example.net/",
                                      connect_to=mapped(raw.port, "half-head.example.net"))
    assert (obs.error_kind, obs.http_status) == (ErrorKind.CONNECTION_RESET, None)
    assert verdict_of(obs) == ("error", "connection_reset")
    assert elapsed <= BOUND


async def test_closing_in_the_middle_of_the_body_keeps_the_status(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    # The server did answer 200 with the start of the page: the link works,
    # the cut is recorded in the detail.
    body = b"<html><head><title>Half a page</title></head><body>" + b"x" * 900
    raw = await raw_server(answer(HTML_HEAD + b"Content-Length: 50000\r\n\r\n" + body))
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site,
                                      "http://half-body.example.net/",
                                      connect_to=mapped(raw.port, "half-body.example.net"))
    assert (obs.http_status, obs.error_kind, obs.title, obs.bytes_read) == (200, None, "Half a page", len(body))
    assert "reading the body" in obs.error_detail
    assert verdict_of(obs) == ("ok", "ok")
    assert elapsed <= BOUND


@pytest.mark.parametrize("handler", [smtp_banner, random_bytes], ids=["smtp-banner", "random-bytes"])
async def test_a_service_that_is_not_http(
        handler: Callable[..., Awaitable[None]], raw_server: StartRaw, site: Site,
        checker_settings: Settings, client_for: OpenClient, canned_dns: Any) -> None:
    raw = await raw_server(handler)
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site,
                                      "http://mail.example.net/",
                                      connect_to=mapped(raw.port, "mail.example.net"))
    assert (obs.error_kind, obs.http_status) == (ErrorKind.BAD_RESPONSE, None), obs
    assert verdict_of(obs) == ("error", "bad_response")
    assert elapsed <= BOUND


# -- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "file:///etc/passwd",
    "ftp://ftp.example.net/pub/",
    "data:text/html,<script>alert(1)</script>",
    "javascript:alert(document.cookie)",
])
async def test_a_redirect_to_another_scheme_is_not_followed(
        target: str, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    from yarl import URL

    url = str(URL(site.url("/goto")).with_query(to=target, status="301"))
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site, url)
    assert obs.error_kind is ErrorKind.UNSUPPORTED_SCHEME
    assert [h.status for h in obs.redirects] == [301]
    assert obs.redirects[0].location.split(":", 1)[0] == target.split(":", 1)[0]
    assert verdict_of(obs) == ("blocked", "unsupported_scheme")
    assert site.hits("/goto") == 1
    assert elapsed <= BOUND


async def test_a_50_hop_redirect_chain_stops_at_the_limit(
        site: Site, checker_settings: Settings, client_for: OpenClient, canned_dns: Any) -> None:
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site,
                                      site.url("/redirect/50"))
    limit = CheckerSettings().max_redirects
    assert obs.error_kind is ErrorKind.TOO_MANY_REDIRECTS
    assert len(obs.redirects) == limit + 1
    assert verdict_of(obs) == ("error", "too_many_redirects")
    hops = sum(1 for r in site.requests if r.path.startswith("/redirect/") and r.path != "/redirect/1"
               and r.path != "/redirect/0")
    assert hops == limit + 1, "not one request past the limit, and no retry"
    assert elapsed <= BOUND


def slow_hops(delay: float) -> Callable[..., Awaitable[None]]:
    """Each answer after `delay` seconds: a redirect to the next hop, for ever."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        while head := await read_request(reader, raw):
            hop = head.split(b" ", 2)[1].rsplit(b"/", 1)[-1]
            await asyncio.sleep(delay)
            await raw.send(writer, b"HTTP/1.1 302 Found\r\nLocation: /hop/%d\r\nContent-Length: 0\r\n\r\n"
                           % (int(hop or b"0") + 1))

    return handler


async def test_a_slow_redirect_chain_shares_one_timeout(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    # Each hop just inside the timeout: with a timeout per hop, 21 hops took
    # 21 x 0.4 s. One timeout for the whole chain ends it after ~2 hops.
    raw = await raw_server(slow_hops(0.4))
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site,
                                      "http://slowhops.example.net/hop/0",
                                      connect_to=mapped(raw.port, "slowhops.example.net"))
    assert (obs.error_kind, obs.attempts) == (ErrorKind.TIMEOUT, RETRIES + 1)
    assert 1 <= len(obs.redirects) <= 3
    assert verdict_of(obs) == ("error", "timeout")
    assert elapsed <= BOUND


async def slow_refusal(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
    """405 to GET after 0.8 s; a HEAD gets no answer at all."""
    head = await read_request(reader, raw)
    if head.startswith(b"GET"):
        await asyncio.sleep(0.8)
        await raw.send(writer, b"HTTP/1.1 405 Method Not Allowed\r\nAllow: HEAD\r\n"
                               b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    else:
        await reader.read()


async def test_the_head_fallback_draws_on_the_same_timeout(
        raw_server: StartRaw, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    raw = await raw_server(slow_refusal)
    obs, elapsed, _ = await run_mixed(client_for, checker_settings, canned_dns, site,
                                      "http://nohead.example.net/",
                                      connect_to=mapped(raw.port, "nohead.example.net"))
    assert (obs.http_status, obs.attempts) == (405, 1), "the GET answer stands; 405 is not retried"
    assert elapsed <= TIMEOUT + SLACK / 2


async def test_a_redirect_loop_across_two_hosts(
        pingpong: PingPong, site: Site, checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    obs, elapsed, _ = await run_mixed(
        client_for, checker_settings, canned_dns, site, "http://ping.example.net/pp",
        connect_to=mapped(pingpong.port, "ping.example.net", "pong.example.net"))
    assert obs.error_kind is ErrorKind.REDIRECT_LOOP
    assert [h.url for h in obs.redirects] == ["http://ping.example.net/pp", "http://pong.example.net/pp"]
    assert verdict_of(obs) == ("error", "redirect_loop")
    assert pingpong.hits == ["ping.example.net", "pong.example.net"]
    assert elapsed <= BOUND
