"""The standard proxy variables: a corporate network reaches the web through a proxy.

The proxy here is a real server on loopback that answers absolute-form
requests ("GET http://host/path HTTP/1.1") itself, as a forward proxy's
upstream would; the target name is never resolved by the monitor (only the
proxy would resolve it), so no DNS query leaves the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from monitor.check import Checker
from monitor.client import Client
from monitor.config import CheckerSettings

PAGE = (b"<html><head><title>Nailfold capillaroscopy in systemic sclerosis</title></head>"
        b"<body>Article</body></html>")


class ForwardProxy:
    def __init__(self) -> None:
        self.request_lines: list[str] = []
        self.port = 0
        self.server: asyncio.base_events.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        self.request_lines.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                     + str(len(PAGE)).encode() + b"\r\nConnection: close\r\n\r\n" + PAGE)
        await writer.drain()
        writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    p = ForwardProxy()
    await p.start()
    yield p
    assert p.server is not None
    p.server.close()
    await p.server.wait_closed()


async def test_http_proxy_from_the_environment_is_used(proxy: ForwardProxy,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    # Private networks stay refused: the configured proxy itself is trusted, targets are not.
    settings = CheckerSettings(timeout=3, retries=0)
    async with Client(settings) as client:
        obs = await Checker(client, settings).check("http://journals.proxied-example.org/article/42")
    assert obs.error_kind is None, obs.error_detail
    assert obs.http_status == 200
    assert obs.title == "Nailfold capillaroscopy in systemic sclerosis"
    assert proxy.request_lines == ["GET http://journals.proxied-example.org/article/42 HTTP/1.1"]


async def test_no_proxy_bypasses_the_proxy(proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "intranet.invalid")
    settings = CheckerSettings(timeout=3, retries=0)
    async with Client(settings) as client:
        obs = await Checker(client, settings).check("http://intranet.invalid/page")
    # Not sent to the proxy; resolved directly, and .invalid never resolves.
    assert proxy.request_lines == []
    assert obs.error_kind is not None and obs.error_kind.value == "dns"


async def test_without_proxy_variables_no_proxy_is_used(proxy: ForwardProxy) -> None:
    settings = CheckerSettings(timeout=3, retries=0, connect_to=(("*", "refuse"),))
    async with Client(settings) as client:
        obs = await Checker(client, settings).check("http://journals.proxied-example.org/article/42")
    assert proxy.request_lines == []
    assert obs.error_kind is not None and obs.error_kind.value == "dns"
