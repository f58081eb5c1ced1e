"""One URL -> one Observation, and many URLs as fast as politeness allows.

The only place where aiohttp, asyncio and ssl exceptions become `ErrorKind`s
(`error_kind_of`); everything downstream reasons about the enum.

One check is: GET with a bounded body read (the title and meta tags are in
the first 64 KiB; a 20 MB PDF is cut there and its connection closed, not
drained), redirects followed hop by hop so the whole chain is recorded and
every hop passes the SSRF policy, HEAD (or GET) once when a server refuses
the method, and retries with backoff for transient failures (`retry.py`).
An attempt's requests (hops and fallback) share one `timeout`, so one URL
costs at most timeout x (retries + 1) of server time, plus the backoff.

Scheduling (`check_many`): per-host queues and a global budget of
`concurrency` requests. A request starts whenever a global slot is free and
SOME host with work has a free per-host slot, so a busy host never idles the
other slots (a single shared queue would stall behind it). Among the hosts
that can start one, the host with the longest queue goes first: under round
robin every host got the same share, so the busiest hosts finished last and
the run ended with a tail of a few hosts at `per_host` each and the global
slots idle (longest processing time first, the classic makespan rule).
URLs the caller expects to be slow (`first`: they failed last time, and
their retries or timeouts make a long chain) start before everything. A
redirect's next hop gives way to new checks (it waits, holding no slot,
until no new check could start): a link's first answer is what reveals a
retry chain (500, 503, a timeout: up to 1.5 s of backoff), so first answers
come as early as possible and those chains run under the remaining work,
while the hops, one request each, fill the end of the run. URLs
may keep arriving while checks run (an async iterable: the audit hands over
each page's links as soon as the page is recorded), read no further than
`backlog` URLs ahead of the checks when asked. A request holds its
host slot for its whole life, including backoff sleeps (politeness), but
gives the global slot back while it sleeps (throughput). A redirect to
another host trades host slots; a host slot is always taken before a global
one and never two host slots at once, so the locks cannot deadlock.
`Checker.slot` lets other requests of the run (the audit's page fetches)
share the same budgets, waiting for a slot before their own timeout starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import heapq
import itertools
import logging
import re
import secrets
import ssl
import time
from collections import Counter, deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Container, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from monitor.client import Client
from monitor.config import CheckerSettings
from monitor.netguard import PrivateAddressError
from monitor.retry import backoff_delay, parse_retry_after, should_retry, worth_waiting
from monitor.target import TargetInfo, read_target
from monitor.types import ErrorKind, Hop, Observation

__all__ = ["Checker", "Limiter", "error_kind_of", "sibling_url", "REDIRECT_STATUSES"]

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
METHOD_REFUSED = frozenset({405, 501})
REDIRECT_BODY_BYTES = 4096
"""Read this much of a redirect's body: enough to reuse the connection for
the usual tiny "Moved" page, not enough to matter when it is large."""
DETAIL_CHARS = 200
DEFERRED_PER_SLOT = 16

SILENT_HOST_TIMEOUTS = 5
"""Timeouts in a row, with no answer between, after which a host is taken
for silent (a firewall now dropping the monitor's packets, a dead server
that still accepts connections): its further timeouts are not retried.
Each retry of a silent host costs a whole `timeout`: 80 links on one took
(1 + retries) x timeout each, 2,000 links hours. The rechecks (1 and 24
hours later) and next week's audit check them again in full."""
"""Redirect hops that may wait for their turn, per global slot (1,024 at
concurrency 64): about as much work as keeps every slot busy through the
longest retry backoff (1.5 s at ~0.1 s a request)."""


# -- errors --------------------------------------------------------------------


def error_kind_of(exc: BaseException) -> tuple[ErrorKind, str]:
    """An exception from one request -> (kind, short detail without traceback)."""
    kind = _kind(exc)
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):
        # "Cannot connect to host h:80 ssl:default [why]" -> "h:80: why"
        why = exc.os_error
        reason = getattr(why, "verify_message", None) or why.strerror or str(why) or type(why).__name__
        detail = f"{exc.host}:{exc.port}: {reason}"
    if kind is ErrorKind.TIMEOUT and not str(exc):
        detail = "timed out"
    return kind, " ".join(detail.split())[:DETAIL_CHARS]


def _kind(exc: BaseException) -> ErrorKind:
    if isinstance(exc, PrivateAddressError):
        return ErrorKind.PRIVATE_ADDRESS
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        if isinstance(exc.os_error, PrivateAddressError):
            return ErrorKind.PRIVATE_ADDRESS
        return ErrorKind.DNS
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        return ErrorKind.TLS
    if isinstance(exc, TimeoutError):  # asyncio's, aiohttp's ServerTimeoutError
        return ErrorKind.TIMEOUT
    if isinstance(exc, aiohttp.NonHttpUrlClientError):
        return ErrorKind.UNSUPPORTED_SCHEME
    if isinstance(exc, (aiohttp.InvalidURL, ValueError)) and not isinstance(exc, OSError):
        return ErrorKind.INVALID_URL
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ssl.SSLError):
            return ErrorKind.TLS
        if exc.os_error.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
            return ErrorKind.CONNECTION_RESET
        # Refused, unreachable network or host: nobody answered.
        return ErrorKind.CONNECTION_REFUSED
    if isinstance(exc, (aiohttp.ServerDisconnectedError, ConnectionError,
                        aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
        return ErrorKind.CONNECTION_RESET
    return ErrorKind.BAD_RESPONSE  # ClientResponseError: an unparseable answer


# -- slots ---------------------------------------------------------------------


class _Slots:
    """A counting semaphore with FIFO hand-over and a non-blocking try."""

    __slots__ = ("capacity", "free", "_waiters")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.free = capacity
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_acquire(self) -> bool:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    def undo(self) -> None:
        """Give back a slot just taken by `try_acquire`, with no await in
        between: nobody can be waiting, and nobody needs waking."""
        self.free += 1

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed over just as we were cancelled
            else:
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            raise

    def release(self) -> bool:
        """Hand the slot to the first waiter; True if it became free instead."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return False
        self.free += 1
        return True

    @property
    def idle(self) -> bool:
        return self.free == self.capacity and not self._waiters


class Limiter:
    """The global budget and the per-host budgets of one Checker.

    `changed` is set whenever capacity appears that nobody was waiting for;
    `check_many`'s dispatchers sleep on it. Each dispatcher subscribes a set
    that collects the hosts which got a slot back since it last looked.
    """

    def __init__(self, concurrency: int, per_host: int) -> None:
        self.global_slots = _Slots(concurrency)
        self.per_host = per_host
        self._hosts: dict[str, _Slots] = {}
        self.changed = asyncio.Event()
        self._listeners: list[set[str]] = []
        self._deferred: deque[asyncio.Future[bool]] = deque()
        self.max_deferred = DEFERRED_PER_SLOT * concurrency

    def subscribe(self) -> set[str]:
        freed: set[str] = set()
        self._listeners.append(freed)
        return freed

    def unsubscribe(self, freed: set[str]) -> None:
        self._listeners = [s for s in self._listeners if s is not freed]
        if not self._listeners:
            # Nobody left to give way to: the waiting hops queue as usual.
            while self._deferred:
                self._stop_deferring(self._deferred.popleft())

    async def acquire_global_deferred(self) -> None:
        """A global slot for a redirect's next hop, once no new check could use it.

        Why: a link's first answer says whether it needs a retry chain
        (500, 503, a timeout: backoff sleeps of up to 1.5 s). Answers learnt
        in the last second of a run make its tail; hops learnt then make
        none (one request each). So while a dispatcher has checks to start,
        they go first, and the hops fill the end of the run.
        At most `max_deferred` wait (memory stays flat however many links
        redirect): past that, the oldest stops waiting for its turn. With no
        dispatcher running this is a plain acquire."""
        if not self._listeners:
            await self.global_slots.acquire()
            return
        if len(self._deferred) >= self.max_deferred:
            self._stop_deferring(self._deferred.popleft())
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._deferred.append(fut)
        self.changed.set()  # a dispatcher with nothing to start grants it
        try:
            granted = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.result():
                self.release_global()  # granted just as we were cancelled
            else:
                with contextlib.suppress(ValueError):
                    self._deferred.remove(fut)
            raise
        if not granted:
            await self.global_slots.acquire()

    @staticmethod
    def _stop_deferring(fut: asyncio.Future[bool]) -> None:
        """Let a waiting hop queue for a slot like any request."""
        if not fut.done():
            fut.set_result(False)

    def grant_deferred(self) -> None:
        """Hand the free global slots to waiting hops (called by a
        dispatcher that has no check to start)."""
        while self._deferred and self.global_slots.try_acquire():
            fut = self._deferred.popleft()
            if fut.done():
                self.global_slots.undo()
            else:
                fut.set_result(True)

    def host(self, key: str) -> _Slots:
        slots = self._hosts.get(key)
        if slots is None:
            slots = self._hosts[key] = _Slots(self.per_host)
        return slots

    def release_host(self, key: str) -> None:
        slots = self._hosts[key]
        if slots.release():
            for freed in self._listeners:
                freed.add(key)
            self.changed.set()
            if slots.idle:
                del self._hosts[key]

    def release_global(self) -> None:
        if self.global_slots.release():
            self.changed.set()


@dataclass(slots=True)
class _Lease:
    """The slots one URL's check holds right now: at most one host slot,
    taken before the global one."""

    limiter: Limiter
    host: str | None = None
    has_global: bool = False

    async def move_to(self, host: str) -> None:
        if host != self.host:
            if self.host is not None and self.limiter.host(host).try_acquire():
                self.limiter.release_host(self.host)
                self.host = host
            else:
                self._drop_global()
                if self.host is not None:
                    self.limiter.release_host(self.host)
                    self.host = None
                await self.limiter.host(host).acquire()
                self.host = host
        if not self.has_global:
            await self.limiter.global_slots.acquire()
            self.has_global = True

    async def defer_to(self, host: str) -> None:
        """Like `move_to`, for a redirect's next hop: give way to new checks
        first (`Limiter.acquire_global_deferred`), holding no slot while
        waiting (a host slot held through the wait would idle that host)."""
        limiter = self.limiter
        self.release()
        await limiter.acquire_global_deferred()
        self.has_global = True
        if limiter.host(host).try_acquire():
            self.host = host
            return
        self._drop_global()  # host full: wait for it the usual way, host slot first
        await self.move_to(host)

    async def pause(self, seconds: float) -> None:
        """Sleep without holding a global slot (the host slot is kept)."""
        self._drop_global()
        await asyncio.sleep(seconds)
        await self.limiter.global_slots.acquire()
        self.has_global = True

    def _drop_global(self) -> None:
        if self.has_global:
            self.has_global = False
            self.limiter.release_global()

    def release(self) -> None:
        self._drop_global()
        if self.host is not None:
            host, self.host = self.host, None
            self.limiter.release_host(host)


# -- one exchange --------------------------------------------------------------


@dataclass(slots=True)
class _Answer:
    """One HTTP response, redirects not followed, body bounded."""

    method: str
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    body_error: tuple[ErrorKind, str] | None = None


@dataclass(slots=True)
class _Chain:
    """The state of one attempt as it walks a redirect chain."""

    url: URL
    started: float
    checked_at: dt.datetime
    budget: float = 0.0
    """Seconds of server time left to this attempt. Every request of the
    chain (each redirect hop, the HEAD/GET fallback) draws on one `timeout`,
    so a server answering each hop just in time cannot stretch one check to
    max_redirects x timeout. Waiting for a host slot does not count."""
    hops: list[Hop] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    attempt: int = 1
    """Which attempt of the check this is (the observation's `attempts`)."""


def _host_key(url: URL) -> str:
    return (url.raw_host or "").lower()


def _loop_key(url: URL) -> str:
    return str(url.with_fragment(None))


def _url_of(url: str) -> URL:
    """The URL to request, sent as written when it can be: yarl re-encodes
    what it parses ("%3B" became ";", "%7e" "~", "100%sure" "100%25sure"),
    another request than a browser's. The audit's URLs come from
    `extract.normalize_url`, already in the form a browser sends; anything
    else (raw non-ASCII, spaces) is encoded by yarl."""
    if url.isascii() and url.isprintable() and " " not in url:
        return URL(url, encoded=True)
    return URL(url)


_RAW_BYTE = re.compile("[\udc80-\udcff]")
"""A header byte that was not UTF-8 (aiohttp decodes with surrogateescape)."""
_VERBATIM_REF = re.compile(r"[!#-;=?-\[\]_a-z~]*")
"""A reference with nothing a browser would %-encode (no space, quote,
angle bracket, backslash, backtick, brace, bar or caret; ASCII only)."""


def _location_url(base: URL, location: str) -> URL:
    """Where a Location points, requested as a browser requests it.

    yarl's parsing re-encodes: it decoded "%3B" to ";" and "%7e" to "~" (another
    request), and dropped a byte that is not UTF-8 ("/caf\\xe9" became
    "/caf", another page), where browsers send it as "%E9". So such bytes are
    %-escaped, and a reference that needs no encoding is joined as written;
    any other (spaces, non-ASCII; in an absolute URL a host to lowercase,
    an IPv6 literal, dot segments) is yarl's reading, as before."""
    if not location.isascii():
        location = _RAW_BYTE.sub(lambda m: f"%{ord(m.group()) - 0xDC00:02X}", location)
    if _VERBATIM_REF.fullmatch(location):
        ref = URL(location, encoded=True)
        host = ref.raw_host or ""
        if not ref.absolute or ("/." not in ref.raw_path and host == host.lower() and ":" not in host):
            return base.join(ref)
    return base.join(URL(location))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def sibling_url(url: URL, token: str) -> URL:
    """A URL that should not exist next to `url`: same directory, random
    name, same extension (a soft-404 server treats it like a real page).

    /a/b/page.html -> /a/b/<token>.html; /a/12345/ -> /a/<token>/
    """
    path = url.path or "/"
    if path.endswith("/"):
        parent = path.rstrip("/").rpartition("/")[0]
        new_path = f"{parent}/{token}/"
    else:
        directory, _, name = path.rpartition("/")
        stem, dot, ext = name.rpartition(".")
        suffix = f".{ext}" if dot and stem and 0 < len(ext) <= 5 and ext.isalnum() else ""
        new_path = f"{directory}/{token}{suffix}"
    return url.with_path(new_path).with_query(None).with_fragment(None)


class _Work:
    """The URLs of one `check_many` waiting for a check: a queue per host,
    and the hosts that may start one, longest queue first.

    URLs in `first` (expected to be slow: they failed last time, so their
    retries and timeouts make a long chain) go to the front of their host's
    queue, and hosts holding such URLs go before all others: a long chain
    started late is the end of the run.

    The ready hosts are a heap of (-first URLs queued, -queue length,
    sequence, host) with lazy deletion: a host's live entry is the one whose
    sequence number is in `_live`; a host pushed again (its queue grew, or it
    just started a check) leaves its older entries behind, skipped when they
    surface. Hosts whose slots are all taken leave the heap and come back
    when one is freed.
    """

    __slots__ = ("queues", "refused", "waiting", "room", "_parse", "_first", "_urgent", "_seen", "_heap",
                 "_live", "_seq", "_backlog")

    def __init__(self, parse: Callable[[str], URL | Observation], first: Container[str] = (),
                 backlog: int = 0) -> None:
        self.queues: dict[str, deque[str]] = {}
        self.waiting = 0
        """URLs queued and not started."""
        self.room = asyncio.Event()
        """Set while fewer than `backlog` URLs wait (always, without a backlog)."""
        self.room.set()
        self._backlog = backlog
        self.refused: deque[Observation] = deque()
        """Observations of URLs that cannot be checked, to yield at once."""
        self._parse = parse
        self._first = first
        self._urgent: Counter[str] = Counter()
        """Per host: how many URLs of `first` are at the front of its queue."""
        self._seen: set[str] = set()
        self._heap: list[tuple[int, int, int, str]] = []
        self._live: dict[str, int] = {}
        self._seq = itertools.count()

    def add(self, url: str) -> None:
        """Queue a URL (each distinct URL once per `check_many`)."""
        if url in self._seen:
            return
        self._seen.add(url)
        parsed = self._parse(url)
        if isinstance(parsed, Observation):
            self.refused.append(parsed)
            return
        host = _host_key(parsed)
        queue = self.queues.get(host)
        if queue is None:
            queue = self.queues[host] = deque()
        if url in self._first:
            queue.appendleft(url)
            self._urgent[host] += 1
        else:
            queue.append(url)
        self.waiting += 1
        if self._backlog and self.waiting >= self._backlog:
            self.room.clear()
        self._push(host)

    def ready(self, host: str) -> None:
        """A slot of `host` was freed: it may start a check if it has work."""
        if self.queues.get(host) and host not in self._live:
            self._push(host)

    def has_ready(self) -> bool:
        return bool(self._live)

    def pop_ready(self) -> str:
        """The ready host that goes first; it leaves the ready set."""
        while True:
            *_, seq, host = heapq.heappop(self._heap)
            if self._live.get(host) == seq:
                del self._live[host]
                return host

    def take(self, host: str) -> str:
        """The next URL of `host` (just popped); the host stays ready while it has work."""
        queue = self.queues[host]
        url = queue.popleft()
        self.waiting -= 1
        if self.waiting < self._backlog:
            self.room.set()
        if self._urgent[host]:
            self._urgent[host] -= 1
            if not self._urgent[host]:
                del self._urgent[host]
        if queue:
            self._push(host)
        else:
            del self.queues[host]
        return url

    def _key(self, host: str, seq: int) -> tuple[int, int, int, str]:
        return (-self._urgent.get(host, 0), -len(self.queues[host]), seq, host)

    def _push(self, host: str) -> None:
        seq = next(self._seq)
        self._live[host] = seq
        heapq.heappush(self._heap, self._key(host, seq))
        if len(self._heap) > 2 * len(self._live) + 64:
            # Mostly stale entries (a long feed into few hosts): rebuild.
            self._heap = [self._key(h, s) for h, s in self._live.items()]
            heapq.heapify(self._heap)


# -- the checker ---------------------------------------------------------------


class Checker:
    """Checks URLs through one `Client`; holds the scheduling state of a run."""

    def __init__(self, client: Client, settings: CheckerSettings) -> None:
        self.client = client
        self.settings = settings
        self.limiter = Limiter(settings.concurrency, settings.per_host)
        self.stats: Counter[str] = Counter()
        """Path-named counters: request/count, retry/count, probe/count..."""
        self._not_before: dict[str, float] = {}
        self._timeouts_in_a_row: Counter[str] = Counter()
        """Per host key: consecutive attempts that timed out (`SILENT_HOST_TIMEOUTS`)."""
        self._probes: dict[str, asyncio.Task[Observation]] = {}
        self._timeout = client.timeout()

    # public API

    async def check(self, url: str) -> Observation:
        """Check one URL; never raises except on cancellation."""
        parsed = self._parse(url)
        if isinstance(parsed, Observation):
            return parsed
        lease = _Lease(self.limiter)
        try:
            await lease.move_to(_host_key(parsed))
            return await self._check_leased(url, parsed, lease)
        finally:
            lease.release()

    async def probe(self, url: str) -> Observation | None:
        """The soft-404 probe for `url`'s site: a random sibling that should
        answer 404. One per origin per Checker; None when disabled."""
        if not self.settings.soft404_probe:
            return None
        try:
            parsed = URL(url)
        except ValueError:
            return None
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            return None
        origin = str(parsed.origin())
        # Not deferred like a redirect's next hop: every 2xx link of
        # the origin waits for this answer to be classified, and deferring
        # it piles their classification (CPU) up at the end of the run.
        task = self._probes.get(origin)
        if task is None:
            self.stats["probe/count"] += 1
            target = sibling_url(parsed, secrets.token_hex(8))
            task = self._probes[origin] = asyncio.ensure_future(self.check(str(target)))
        # Shielded: one caller giving up must not cancel the others' probe.
        return await asyncio.shield(task)

    async def check_many(self, urls: Iterable[str] | AsyncIterable[str], *,
                         first: Container[str] = (), backlog: int = 0) -> AsyncIterator[Observation]:
        """Check each distinct URL once; yield observations as they complete.

        `urls` may be an async iterable that grows while checks run: its URLs
        are queued as they arrive, and the iteration ends once it is
        exhausted and every check has finished. An exception it raises ends
        the iteration with that exception (the checks in flight are cancelled).
        URLs in `first` (looked up as each URL arrives) start before the
        others: those expected to take long (they failed last time).
        With `backlog`, an async iterable is read no further while that
        many of its URLs wait to start: its producer (the page phase) then
        waits too, and what it holds per URL stays bounded.
        """
        work = _Work(self._parse, first, backlog)
        feeder: asyncio.Task[None] | None = None
        if isinstance(urls, AsyncIterable):
            feeder = asyncio.create_task(self._feed(urls, work), name="check-many-feed")
            feeder.add_done_callback(lambda _: self.limiter.changed.set())
        else:
            for url in urls:
                work.add(url)
        try:
            # Closed here, not left to the garbage collector: a caller that
            # stops early gets the checks in flight cancelled and every slot
            # back before `aclose()` returns.
            async with contextlib.aclosing(self._dispatch(work, feeder)) as observations:
                async for obs in observations:
                    yield obs
        finally:
            if feeder is not None:
                feeder.cancel()
                await asyncio.gather(feeder, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        """Hold a host slot of `url` and a global slot for a request made
        outside `check` (the audit's page fetches): it then counts against
        the same politeness budget as the checks, and its caller can start a
        timeout once the slot is held, not while waiting for it. Waiters are
        served before the dispatcher starts new checks. An unparseable URL
        takes no slot (the request fails on its own)."""
        parsed = self._parse(url)
        lease = _Lease(self.limiter)
        try:
            if not isinstance(parsed, Observation):
                await lease.move_to(_host_key(parsed))
            yield
        finally:
            lease.release()

    # scheduling

    async def _feed(self, urls: AsyncIterable[str], work: _Work) -> None:
        changed = self.limiter.changed
        async for url in urls:
            work.add(url)
            changed.set()
            await work.room.wait()

    async def _dispatch(self, work: _Work, feeder: asyncio.Task[None] | None) -> AsyncIterator[Observation]:
        limiter = self.limiter
        running: dict[asyncio.Task[Observation], _Lease] = {}
        finished: deque[asyncio.Task[Observation]] = deque()
        freed = limiter.subscribe()

        def done(task: asyncio.Task[Observation]) -> None:
            finished.append(task)
            limiter.changed.set()

        try:
            while True:
                limiter.changed.clear()
                for host in freed:
                    work.ready(host)
                freed.clear()
                while work.has_ready() and limiter.global_slots.try_acquire():
                    host = work.pop_ready()
                    if not limiter.host(host).try_acquire():
                        limiter.global_slots.undo()  # host full: back when freed
                        continue
                    url = work.take(host)
                    lease = _Lease(limiter, host=host, has_global=True)
                    task = asyncio.create_task(self._run_leased(url, lease))
                    running[task] = lease
                    task.add_done_callback(done)
                if not work.has_ready():
                    limiter.grant_deferred()  # no check to start: waiting hops may go
                if work.refused:
                    batch_refused = list(work.refused)
                    work.refused.clear()
                    for obs in batch_refused:
                        yield obs
                    continue
                if not finished:
                    if feeder is not None and feeder.done():
                        if feeder.exception() is not None:
                            raise feeder.exception()  # type: ignore[misc]
                        feeder = None
                    if feeder is None and not work.queues and not running:
                        return
                    await limiter.changed.wait()
                    continue
                batch = list(finished)
                finished.clear()
                for task in batch:
                    del running[task]
                for task in batch:
                    yield task.result()
        finally:
            limiter.unsubscribe(freed)
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            for lease in running.values():
                # A task cancelled before it ever ran never reached its own
                # `finally`: give back the slots it was handed (idempotent).
                lease.release()

    async def _run_leased(self, url: str, lease: _Lease) -> Observation:
        try:
            return await self._check_leased(url, _url_of(url), lease)
        finally:
            lease.release()

    # one URL

    def _parse(self, url: str) -> URL | Observation:
        """A checkable URL, or the observation that says why it is not."""
        try:
            parsed = _url_of(url)
            if parsed.scheme not in ("http", "https"):
                return self._refusal(url, ErrorKind.UNSUPPORTED_SCHEME,
                                     f"not an http(s) URL: {parsed.scheme or 'no'} scheme")
            if not parsed.raw_host:
                return self._refusal(url, ErrorKind.INVALID_URL, "no host name")
            parsed.port  # noqa: B018 - raises on a bad port
        except (ValueError, TypeError) as exc:
            return self._refusal(url, ErrorKind.INVALID_URL, str(exc)[:DETAIL_CHARS])
        return parsed

    @staticmethod
    def _refusal(url: str, kind: ErrorKind, detail: str) -> Observation:
        return Observation(url=url, checked_at=_now(), error_kind=kind, error_detail=detail,
                           attempts=0, method="")

    async def _check_leased(self, url: str, parsed: URL, lease: _Lease) -> Observation:
        s = self.settings
        attempt = 0
        while True:
            attempt += 1
            obs = await self._attempt(url, parsed, lease, attempt)
            if not (should_retry(obs, attempt, s.retries)
                    and worth_waiting(obs.retry_after, s.retry_after_max)):
                self._note_silence(lease.host, obs)
                return obs
            if self._note_silence(lease.host, obs):
                self.stats["retry/skipped_silent_host"] += 1
                return replace(obs, error_detail=(
                    f"{obs.error_detail}; the host stopped answering ({self._timeouts_in_a_row[lease.host]} "
                    f"timeouts in a row): not retried{' again' * (attempt > 1)}").lstrip("; "))
            delay = backoff_delay(attempt, s.backoff_base, obs.retry_after, s.retry_after_max)
            if obs.retry_after is not None and lease.host is not None:
                # The server asked everyone to wait, not just this URL.
                self._not_before[lease.host] = time.monotonic() + delay
            self.stats["retry/count"] += 1
            log.debug("retrying %s in %.2fs after %s", url, delay,
                      obs.error_kind or obs.http_status)
            await lease.pause(delay)

    def _note_silence(self, host: str | None, obs: Observation) -> bool:
        """Count a host's timeouts in a row (any answer resets it); whether
        the host is now taken for silent and this timeout is not to be retried."""
        if host is None:
            return False
        if obs.error_kind is ErrorKind.TIMEOUT:
            self._timeouts_in_a_row[host] += 1
            return self._timeouts_in_a_row[host] >= SILENT_HOST_TIMEOUTS
        if obs.http_status is not None:
            self._timeouts_in_a_row.pop(host, None)
        return False

    async def _attempt(self, url: str, start: URL, lease: _Lease, attempt: int = 1) -> Observation:
        """Attempt number `attempt`: the redirect chain from `start` to a final answer."""
        chain = _Chain(url=start, started=time.monotonic(), checked_at=_now(),
                       budget=self.settings.timeout, attempt=attempt)
        chain.seen[_loop_key(start)] += 1
        while True:
            await self._enter_host(lease, _host_key(chain.url), next_hop=bool(chain.hops))
            try:
                answer = await self._exchange_with_fallback(chain)
            except Exception as exc:  # noqa: BLE001 - every failure is an observation
                kind, detail = error_kind_of(exc)
                if kind is ErrorKind.BAD_RESPONSE and not isinstance(exc, aiohttp.ClientError):
                    log.warning("unexpected error checking %s", chain.url, exc_info=exc)
                return self._observation(url, chain, error=(kind, detail))
            location = answer.headers.get("Location") if answer.status in REDIRECT_STATUSES else None
            if location is None:
                return self._observation(url, chain, answer=answer)
            failure = self._follow(chain, answer, location)
            if failure is not None:
                return self._observation(url, chain, answer=answer, error=failure)
            del answer  # not kept (its body, its headers) while the next hop waits its turn

    def _follow(self, chain: _Chain, answer: _Answer, location: str) -> tuple[ErrorKind, str] | None:
        """Record a redirect hop and move the chain on, or say why not."""
        try:
            target: URL | None = _location_url(chain.url, location)
        except (ValueError, TypeError):
            target = None
        chain.hops.append(Hop(str(chain.url), answer.status, str(target) if target else location))
        if target is None or (target.scheme in ("http", "https") and not target.raw_host):
            return ErrorKind.INVALID_URL, f"invalid Location: {location[:100]!r}"
        if target.scheme not in ("http", "https"):
            return ErrorKind.UNSUPPORTED_SCHEME, f"redirect to a {target.scheme}: URL, not followed"
        if len(chain.hops) > self.settings.max_redirects:
            return (ErrorKind.TOO_MANY_REDIRECTS,
                    f"more than {self.settings.max_redirects} redirects")
        key = _loop_key(target)
        # A redirect back to a page already seen is a loop, unless it just set
        # a cookie (the "cookie check" dance) and has not come back twice.
        if chain.seen[key] and ("Set-Cookie" not in answer.headers or chain.seen[key] > 1):
            return ErrorKind.REDIRECT_LOOP, f"redirect loop back to {str(target)[:150]}"
        chain.seen[key] += 1
        chain.url = target
        return None

    async def _enter_host(self, lease: _Lease, host: str, *, next_hop: bool = False) -> None:
        """Hold the slots for the chain's next request; a redirect's next
        hop gives way to new checks (`Limiter.acquire_global_deferred`)."""
        if next_hop:
            await lease.defer_to(host)
        else:
            await lease.move_to(host)
        wait = self._not_before.get(host, 0.0) - time.monotonic()
        if wait > 0:
            await lease.pause(wait)

    async def _exchange_with_fallback(self, chain: _Chain) -> _Answer:
        answer = await self._exchange("GET", chain)
        if answer.status not in METHOD_REFUSED:
            return answer
        fallback = "HEAD" if answer.method == "GET" else "GET"
        try:
            second = await self._exchange(fallback, chain)
        except Exception:  # noqa: BLE001 - the first answer stands
            return answer
        return answer if second.status in METHOD_REFUSED else second

    async def _exchange(self, method: str, chain: _Chain) -> _Answer:
        """One request to `chain.url`, no redirects, the body read to a bound,
        all within what is left of the attempt's timeout."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        if chain.budget <= 0:
            raise TimeoutError(f"timed out: the {self.settings.timeout:g} s timeout was spent "
                               "on earlier redirects")
        try:
            return await self._request(method, chain.url, started + chain.budget)
        finally:
            chain.budget -= loop.time() - started

    async def _request(self, method: str, url: URL, deadline: float) -> _Answer:
        s = self.settings
        self.stats["request/count"] += 1
        async with asyncio.timeout_at(deadline):
            resp = await self.client.session.request(
                method, url, allow_redirects=False, timeout=self._timeout)
        try:
            limit = s.max_body_bytes if method == "GET" else 0
            if resp.status in REDIRECT_STATUSES:
                limit = min(limit, REDIRECT_BODY_BYTES)
            chunks: list[bytes] = []
            body_error = None
            try:
                async with asyncio.timeout_at(deadline):
                    await _read_bounded(resp.content, limit, chunks)
            except Exception as exc:  # noqa: BLE001 - the status stands
                body_error = error_kind_of(exc)
            return _Answer(method, resp.status, resp.headers, b"".join(chunks), body_error)
        finally:
            # Not drained: an unfinished body closes the connection.
            resp.release()

    def _observation(self, url: str, chain: _Chain, *, answer: _Answer | None = None,
                     error: tuple[ErrorKind, str] | None = None) -> Observation:
        """The observation an attempt ends with: an answer, an error, or an
        answer with an error (a refused redirect, a body that timed out)."""
        fields = _answer_fields(answer) if answer is not None else {}
        if error is not None:
            fields["error_kind"], fields["error_detail"] = error
        return Observation(
            # Without a hop, the URL that answered is the one asked for,
            # whatever form yarl gave it (no false "redirect").
            url=url, checked_at=chain.checked_at, final_url=str(chain.url) if chain.hops else url,
            redirects=tuple(chain.hops),
            elapsed_ms=int((time.monotonic() - chain.started) * 1000),
            attempts=chain.attempt,
            **fields,
        )


def _answer_fields(answer: _Answer) -> dict[str, Any]:
    headers = answer.headers
    content_type = headers.get("Content-Type", "").strip()
    info = read_target(answer.body, content_type) if answer.method == "GET" else TargetInfo()
    fields: dict[str, Any] = {
        "http_status": answer.status,
        "bytes_read": len(answer.body),
        "content_type": content_type,
        "title": info.title,
        "meta_title": info.meta_title,
        "text": info.text,
        "server": headers.get("Server", "")[:DETAIL_CHARS],
        "retry_after": parse_retry_after(headers.get("Retry-After"), _now()),
        "content_hash": info.content_hash,
        "method": answer.method,
    }
    if answer.body_error is not None:
        kind, detail = answer.body_error
        fields["error_detail"] = f"reading the body: {detail}"
        # A server too slow to send its first 64 KiB within the timeout is
        # down for a reader too; a body cut short otherwise still answered.
        if kind is ErrorKind.TIMEOUT:
            fields["error_kind"] = kind
    return fields


async def _read_bounded(content: aiohttp.StreamReader, limit: int, chunks: list[bytes]) -> None:
    """Read up to `limit` bytes into `chunks` (kept if a timeout interrupts)."""
    remaining = limit
    while remaining > 0:
        chunk = await content.read(remaining)
        if not chunk:
            return
        chunks.append(chunk)
        remaining -= len(chunk)
