"""What the checker records for servers that bend HTTP, on 127.0.0.1.

Each test fails if the recorded facts (status, hops, final URL, the bytes
of the request line) differ from what the server actually did, or from
what a browser would have asked. Raw asyncio servers play the parts an
aiohttp server will not (raw bytes in a Location, odd headers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

from monitor.check import Checker
from monitor.classify import classify
from monitor.config import CheckerSettings
from monitor.types import Hop

if TYPE_CHECKING:
    from conftest import CannedDNS

Settings = Callable[..., CheckerSettings]
OpenClient = Callable[..., Awaitable[Any]]
Answer = Callable[[bytes, bytes], bytes]
"""(method, request target) -> the whole answer to send."""


class RawHTTP:
    """A keep-alive HTTP/1.1 server answering from a function; records every
    request line's target exactly as the bytes arrived."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.targets: list[bytes] = []
        self.port = 0

    def url(self, target: str) -> str:
        return f"http://127.0.0.1:{self.port}{target}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method, target = head.split(b" ", 2)[:2]
                self.targets.append(target)
                writer.write(self.answer(method, target))
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def raw_http() -> AsyncIterator[Callable[[Answer], Awaitable[RawHTTP]]]:
    servers: list[asyncio.base_events.Server] = []

    async def start(answer: Answer) -> RawHTTP:
        raw = RawHTTP(answer)
        server = await asyncio.start_server(raw.serve, "127.0.0.1", 0)
        raw.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return raw

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def page(title: bytes = b"Page", *, status: bytes = b"200 OK", headers: bytes = b"") -> bytes:
    body = b"<html><head><title>" + title + b"</title></head><body>text</body></html>"
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html\r\n" + headers
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


async def checker(client_for: OpenClient, settings: CheckerSettings, canned_dns: Callable[..., CannedDNS]) -> Checker:
    client = await client_for(settings, dns=canned_dns({}))  # no real DNS, ever
    return Checker(client, settings)


# -- Retry-After ---------------------------------------------------------------------


async def test_an_unreadable_retry_after_does_not_end_the_run(
        raw_http: Callable[[Answer], Awaitable[RawHTTP]], checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    # "Retry-After: ²" ("²".isdigit() is True) raised out of check_many and
    # ended the whole audit.
    def answer(method: bytes, target: bytes) -> bytes:
        if target == b"/limited":
            return page(status=b"429 Too Many Requests", headers="Retry-After: ²\r\n".encode())
        return page()

    raw = await raw_http(answer)
    c = await checker(client_for, checker_settings(retries=1), canned_dns)
    got = {o.url: o async for o in c.check_many([raw.url("/limited"), raw.url("/fine")])}
    limited = got[raw.url("/limited")]
    assert (limited.http_status, limited.retry_after, limited.attempts) == (429, None, 2)
    assert got[raw.url("/fine")].http_status == 200


# -- the request target -------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "/a%3Bb",          # yarl decoded it to "/a;b": a Tomcat path parameter, another resource
    "/a%2Cb%3Dc%26d",  # ... to "/a,b=c&d"
    "/a%7e",           # ... to "/a~"
    "/caf%c3%a9",      # ... to "/caf%C3%A9"
    "/100%sure",       # ... to "/100%25sure": another path once the server decodes it
    "/%7Bx%7D|^%60",   # ... to "/%7Bx%7D%7C%5E%60"
    "/p?k=[1]&q=%7e",  # ... to "/p?k=%5B1%5D&q=~"
    "/a%2Fb?u=http://x/?y=1%26z",
])
async def test_the_request_target_is_sent_as_the_page_wrote_it(
        target: str, raw_http: Callable[[Answer], Awaitable[RawHTTP]], checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    # URLs as extract.normalize_url hands them over: what a browser sends.
    raw = await raw_http(lambda method, t: page())
    c = await checker(client_for, checker_settings(), canned_dns)
    [obs] = [o async for o in c.check_many([raw.url(target)])]  # the audit's way
    assert raw.targets == [target.encode()]
    assert (obs.http_status, obs.redirects, obs.final_url) == (200, (), raw.url(target))
    assert (classify(obs).status.value, classify(obs).reason) == ("ok", "ok")


async def test_without_a_redirect_the_final_url_is_the_url_checked(
        raw_http: Callable[[Answer], Awaitable[RawHTTP]], checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    # A URL yarl has to encode is still the URL that answered: its encoded
    # form as final_url read as a redirect ("ok/temporary_redirect").
    raw = await raw_http(lambda method, t: page())
    c = await checker(client_for, checker_settings(), canned_dns)
    url = raw.url("/café?q=é")
    obs = await c.check(url)
    assert raw.targets == [b"/caf%C3%A9?q=%C3%A9"]
    assert (obs.http_status, obs.redirects, obs.final_url) == (200, (), url)
    assert (classify(obs).status.value, classify(obs).reason) == ("ok", "ok")


# -- Location ------------------------------------------------------------------------


@pytest.mark.parametrize(("location", "sent"), [
    (b"/caf\xe9", b"/caf%E9"),            # a Latin-1 byte: was dropped ("/caf", another page)
    (b"/r?q=caf\xe9", b"/r?q=caf%E9"),
    ("/café".encode(), b"/caf%C3%A9"),   # UTF-8, as browsers encode it
    (b"/a%3Bb", b"/a%3Bb"),               # was decoded to "/a;b"
    (b"/a%7e?q=%7e", b"/a%7e?q=%7e"),     # was "/a~?q=~"
    (b"/a b", b"/a%20b"),
    (b"../../x/./y", b"/x/y"),
    (b"?q=1", b"/dir/start?q=1"),
])
async def test_a_location_is_followed_as_a_browser_would(
        location: bytes, sent: bytes, raw_http: Callable[[Answer], Awaitable[RawHTTP]],
        checker_settings: Settings, client_for: OpenClient, canned_dns: Any) -> None:
    def answer(method: bytes, target: bytes) -> bytes:
        if target == b"/dir/start":
            return b"HTTP/1.1 301 Moved\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"
        return page(b"Target")

    raw = await raw_http(answer)
    c = await checker(client_for, checker_settings(), canned_dns)
    obs = await c.check(raw.url("/dir/start"))
    assert raw.targets == [b"/dir/start", sent]
    assert (obs.http_status, obs.title, obs.error_kind) == (200, "Target", None)
    assert obs.redirects == (Hop(raw.url("/dir/start"), 301, raw.url(sent.decode())),)
    assert obs.final_url == raw.url(sent.decode())


async def test_a_location_keeps_its_fragment(
        raw_http: Callable[[Answer], Awaitable[RawHTTP]], checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    def answer(method: bytes, target: bytes) -> bytes:
        if target == b"/old":
            return b"HTTP/1.1 301 Moved\r\nLocation: /new%3B#sec-2\r\nContent-Length: 0\r\n\r\n"
        return page(b"Target")

    raw = await raw_http(answer)
    obs = await (await checker(client_for, checker_settings(), canned_dns)).check(raw.url("/old"))
    assert raw.targets == [b"/old", b"/new%3B"]
    assert obs.final_url == raw.url("/new%3B#sec-2") == obs.redirects[0].location


async def test_an_absolute_location_is_followed_as_written(
        raw_http: Callable[[Answer], Awaitable[RawHTTP]], checker_settings: Settings,
        client_for: OpenClient, canned_dns: Any) -> None:
    def answer(method: bytes, target: bytes) -> bytes:
        if target == b"/old":
            location = b"http://127.0.0.1:%d/new/a%%3Bb?q=%%7e" % raw.port
            return b"HTTP/1.1 308 Moved\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"
        return page(b"Target")

    raw = await raw_http(answer)
    obs = await (await checker(client_for, checker_settings(), canned_dns)).check(raw.url("/old"))
    assert raw.targets == [b"/old", b"/new/a%3Bb?q=%7e"]
    assert obs.final_url == raw.url("/new/a%3Bb?q=%7e")
    assert (classify(obs).status.value, classify(obs).suggested_url) == ("moved", raw.url("/new/a%3Bb?q=%7e"))
