"""Helpers of the hostile tests: the tripwire, raw servers, connect_to pairs.

A module with a name of its own (not `conftest`, of which there are two) so
that test modules can import it unambiguously; the fixtures built on it live
in `tests/hostile/conftest.py`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawServer"], Awaitable[None]]


@dataclass
class Tripwire:
    """Every TCP connect the test process attempted, as (host, port)."""

    attempts: list[tuple[str, int]] = field(default_factory=list)

    def outside(self) -> list[tuple[str, int]]:
        return [a for a in self.attempts if not is_loopback(a[0])]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@dataclass
class RawServer:
    """A plain asyncio TCP server and what it did."""

    port: int = 0
    connections: int = 0
    sent: int = 0
    requests: list[bytes] = field(default_factory=list)
    server: asyncio.base_events.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Write and wait until the kernel took it; counts the bytes."""
        writer.write(data)
        await writer.drain()
        self.sent += len(data)


async def read_request(reader: asyncio.StreamReader, server: RawServer) -> bytes:
    """The request head (up to the blank line), or whatever came before EOF."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
        head = getattr(exc, "partial", b"")
    server.requests.append(head)
    return head


@dataclass
class PingPong:
    """Two host names on one server, each redirecting /pp to the other."""

    port: int = 0
    hits: list[str] = field(default_factory=list)


def mapped(port: int, *names: str) -> tuple[tuple[str, str], ...]:
    """connect_to pairs for names: "name" is port 80, "https://name" port 443."""
    pairs = []
    for name in names:
        if name.startswith("https://"):
            pairs.append((f"{name.removeprefix('https://')}:443", f"127.0.0.1:{port}"))
        else:
            pairs.append((f"{name}:80", f"127.0.0.1:{port}"))
    return tuple(pairs)


class Sink:
    """aiosmtpd handler keeping each message with its envelope."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 OK"


async def start_sink() -> tuple[Sink, asyncio.base_events.Server, int]:
    """A real SMTP server on loopback: (its handler, the server, its port)."""
    from aiosmtpd.smtp import SMTP

    sink = Sink()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    return sink, server, server.sockets[0].getsockname()[1]


async def audit_and_mail(settings: Any, smtp: asyncio.base_events.Server) -> tuple[Any, list[Any]]:
    """A real audit, its report saved and mailed (the SMTP server closed
    after): (the report job's outcome, the run's links as stored)."""
    from monitor.crawl import run_audit
    from monitor.jobs import report_job
    from monitor.store import Store

    try:
        outcome = await run_audit(settings)
        report = await report_job(settings, run_id=outcome.run.id, send=True)
    finally:
        smtp.close()
    with Store.open(settings.database.path) as store:
        return report, store.run_links(outcome.run.id)
