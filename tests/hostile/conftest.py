"""Fixtures for the hostile tests: misbehaving servers and a network tripwire.

Everything here runs on loopback. The parent `tests/conftest.py` still
applies (`site`, `checker_settings`, `client_for`, `canned_dns`, ...); the
helper types are in `hostile_kit.py`.

- `tripwire` (autouse): every outgoing TCP connect of the test process goes
  through it. A connect to anything but 127.0.0.0/8 or ::1 is refused on the
  spot, so a failing SSRF test can never send a packet to a private or
  public address, and every attempt is recorded in `tripwire.attempts`,
  which lets a test assert that a refusal happened BEFORE connecting.
- `raw_server(handler)`: a plain asyncio TCP server for the misbehaviour
  aiohttp's server will not produce (dripped bytes, broken status lines,
  100 KB headers, half answers, SMTP banners, TLS that never answers).
  `handler(reader, writer, raw)` serves one connection; `raw.sent` counts
  the bytes the kernel took, and every connection is closed at teardown,
  even one whose handler loops for ever.
- `pingpong`: an aiohttp server on which ping.example.net/pp redirects to
  pong.example.net/pp and back: a redirect loop across two hosts.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from hostile_kit import Handler, PingPong, RawServer, Tripwire, is_loopback


@pytest.fixture(autouse=True)
def tripwire(monkeypatch: pytest.MonkeyPatch) -> Tripwire:
    """Refuse (and record) any connect that would leave loopback."""
    import asyncio.selector_events as selector_events

    wire = Tripwire()
    original = selector_events.BaseSelectorEventLoop.sock_connect

    async def guarded(self: Any, sock: socket.socket, address: Any) -> None:
        host, port = str(address[0]), int(address[1])
        wire.attempts.append((host, port))
        if not is_loopback(host):
            raise ConnectionRefusedError(f"tripwire: the tests never connect to {host}")
        await original(self, sock, address)

    monkeypatch.setattr(selector_events.BaseSelectorEventLoop, "sock_connect", guarded)
    return wire


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[RawServer]]]:
    servers: list[RawServer] = []

    async def start(handler: Handler) -> RawServer:
        raw = RawServer()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            raw.connections += 1
            task = asyncio.current_task()
            assert task is not None
            raw.tasks.add(task)  # type: ignore[arg-type]
            try:
                await handler(reader, writer, raw)
            except (ConnectionError, asyncio.CancelledError):
                pass  # the client went away, or the test is over
            finally:
                raw.tasks.discard(task)  # type: ignore[arg-type]
                writer.close()

        raw.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        raw.port = raw.server.sockets[0].getsockname()[1]
        servers.append(raw)
        return raw

    yield start
    for raw in servers:
        assert raw.server is not None
        raw.server.close()
        for task in list(raw.tasks):
            task.cancel()
        await asyncio.gather(*raw.tasks, return_exceptions=True)
        await raw.server.wait_closed()


@pytest.fixture
async def pingpong(aiohttp_server: Any) -> PingPong:
    state = PingPong()

    async def bounce(request: web.Request) -> web.Response:
        host = request.host.split(":", 1)[0]
        state.hits.append(host)
        other = "pong.example.net" if host.startswith("ping.") else "ping.example.net"
        return web.Response(status=302, headers={"Location": f"http://{other}/pp"})

    app = web.Application()
    app.router.add_get("/pp", bounce)
    server = await aiohttp_server(app)
    state.port = int(server.port)
    return state
