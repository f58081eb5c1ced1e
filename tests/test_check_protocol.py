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
