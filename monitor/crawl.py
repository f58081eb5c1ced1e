"""One audit run: pages -> extract -> check (bounded, concurrent) -> classify -> store.

Pages and checks overlap: each page's links go to the checker as soon as the
page and its link occurrences are recorded, so the first checks start with the
first page instead of after the last one (at 100,000 links the page phase
alone took 30 s with 2 or 3 requests in flight). Pages are read
`PAGES_AT_ONCE` at a time and recorded in the configured order; a page waits
for a slot of its host (shared with the checks: `Checker.slot`) before its
timeout starts, so a page queued behind others never fails for waiting.

The run keeps per URL only what classification and archive lookups need (the
cited title until the URL is classified, the date of its first dated
citation: `CitedUrls`), not every Citation, and a URL's previous state only
until its check is recorded: memory grows with distinct URLs, not with links.

A run is resumable: a page and its occurrences are written before any of its
links is checked, and every observation is committed within a short batch
window, so a run cut short by a crash or a kill is picked up by the next
start, and URLs already observed in that run are not checked again. The end
of the page phase is marked (`PAGES_DONE`): a run stopped before it redoes its
page phase (so it audits every page); a run stopped after it reloads its pages
and links from the database. It finishes as one run, with one report. Only
under the configuration it started with (`config.audit_scope`, recorded with
the run): a run whose pages, sites or exclusions were edited meanwhile is left
"interrupted" and a new run starts (`run_audit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor import archive
from monitor.check import Checker
from monitor.classify import classify, classify_unprobed, next_state
from monitor.client import Client
from monitor.config import Settings, SiteSettings, audit_scope
from monitor.decode import decode_html
from monitor.errors import StoreError
from monitor.extract import extract_page
from monitor.pages import PageFetch, fetch_page, links_moved, moved_to, no_page_read, stand_in_read
from monitor.store import StoreWriter
from monitor.types import (Citation, LinkKind, LinkStatus, Observation, PageRecord, RunInfo, SiteCut, UrlState,
                           Verdict)

if TYPE_CHECKING:
    from monitor.sites import Visited

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""progress(done, total): called after each checked URL."""

PAGES_DONE = "pages_done_run"
"""Meta key: the id of the latest run whose page phase completed."""

ARCHIVE_STATUSES = (LinkStatus.EXPIRED, LinkStatus.ERROR, LinkStatus.DRIFTED)

LOOKAHEAD_URLS = 20_000
"""URLs handed to the checker and not started yet, at most (plus one page's):
the page phase waits beyond that. Memory per run then stays flat however
many links a site has (each waiting URL holds its previous state, ~0.7 KB);
a look-ahead this wide still shows the scheduler every busy host long
before the end of the run, which is what it needs to finish them on time."""

PAGES_AT_ONCE = 8
"""Watched pages fetched and parsed at once, whatever their hosts (each host
also gives at most `per_host` slots, shared with the checks). Enough to stay
far ahead of the checker (a page of 50 links takes ~5 ms to read, its links
~0.1 s of the checker's whole budget); few enough that bodies and parse trees
stay small and extraction leaves the event loop to the checks."""

MIN_PAGE_TIMEOUT = 30.0
"""Seconds a watched page may take at least: it is read whole, not a prefix."""

GC_YOUNG_THRESHOLD = 7_000
"""New container objects between two passes of Python's cyclic collector
over the young ones during an audit (its default: 700). See `_collector_relaxed`."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def _collector_relaxed() -> Iterator[None]:
    """Let Python's cyclic collector look at new objects ten times less often
    while an audit runs.

    Each check allocates a few hundred container objects (aiohttp's request,
    response and headers, asyncio's futures and handles, coroutine frames)
    that reference counting frees within milliseconds. At the default
    threshold the collector ran some 330 times at 5,000 links, mostly
    walking objects still in use: 1.3-2 s of the loop's time on a loaded
    2-core machine; at 7,000 it runs ~90 times and never over the old
    generation (0.4-0.6 s), ~0.5 s less CPU a run. Cyclic garbage is still
    collected (it waits for 7,000 allocations instead of 700: a few MB at
    most); the thresholds are restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass
class AuditOutcome:
    run: RunInfo
    resumed: bool = False
    pages: int = 0
    pages_failed: int = 0
    links: int = 0
    urls: int = 0
    checked: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    interrupted: bool = False
    left_run: RunInfo | None = None
    """An interrupted run not resumed because the configuration changed since
    it started (`run_audit`); it stays "interrupted"."""


def cited_titles(citations: Iterable[Citation]) -> dict[str, str]:
    """The title each URL is cited under, to detect drift.

    A URL cited by a citation entry uses the entry's title; one that only
    appears in menus has no cited title (drift is then judged from history).
    """
    titles: dict[str, str] = {}
    for c in citations:
        if c.url is None or c.kind is not LinkKind.CITATION:
            continue
        title = (c.context.title if c.context else "") or c.anchor_text
        if title and not titles.get(c.url):
            titles[c.url] = title
    return titles


def mark_excluded(citations: Sequence[Citation], exclude: Sequence[str]) -> list[Citation]:
    """Skip the links the configuration excludes, and only those: the links
    of a page answering 304 are read back as an earlier run marked them,
    under the configuration of then (an exclusion since removed is lifted)."""
    patterns = [re.compile(p) for p in exclude]

    def excluded(c: Citation) -> bool:
        return bool(c.url) and any(p.search(c.url) for p in patterns)  # type: ignore[arg-type]

    return [
        replace(c, skip_reason="excluded") if not c.skip_reason and excluded(c)
        else replace(c, skip_reason=None) if c.skip_reason == "excluded" and not excluded(c)
        else c
        for c in citations
    ]


def wants_probe(obs: Observation) -> bool:
    """Only a 2xx HTML answer on a deep path can be a soft 404 worth probing."""
    if obs.error_kind is not None or obs.http_status is None or not 200 <= obs.http_status < 300:
        return False
    if "html" not in obs.content_type.lower():
        return False
    path = urlsplit(obs.final_url or obs.url).path
    return path.strip("/") != ""


_WAITING, _HANDED = 0, 1


class CitedUrls:
    """What a run keeps per distinct URL as its pages come in, instead of
    every Citation: the cited title until the URL is classified (`title`
    hands it over), the date of its first dated citation (archive lookups
    ask for the snapshot nearest to it), and whether the URL went to the
    checker.

    A URL goes to the checker once it has a cited title, or at the end of the
    page phase (`rest`): a URL first met in a menu may be cited as an entry
    on a later page, and its drift must be judged against that entry's title,
    exactly as if every page had been read before any check. Menus repeat on
    every page, so the URLs held back are few. URLs in `observed` (already
    checked in this run, before a restart) are counted but never handed over.
    """

    def __init__(self, observed: set[str] | None = None) -> None:
        self.links = 0
        """Link occurrences seen."""
        self.urls = 0
        """Distinct checkable URLs seen (handed over or not)."""
        self.dates: dict[str, dt.date] = {}
        self._titles: dict[str, str] = {}
        self._fate: dict[str, int] = {}
        self._observed = observed or set()

    def add(self, citations: Iterable[Citation]) -> list[str]:
        """Take in one page's links; the URLs now ready to check, in page order."""
        ready: list[str] = []
        fates, titles = self._fate, self._titles
        for c in citations:
            self.links += 1
            url = c.url
            if url is None:
                continue
            context = c.context
            if context is not None and context.date and url not in self.dates:
                self.dates[url] = context.date
            fate = fates.get(url)
            if c.kind is LinkKind.CITATION and fate != _HANDED and not titles.get(url):
                title = (context.title if context else "") or c.anchor_text
                if title:
                    titles[url] = title
            if fate is None:
                if c.skip_reason:
                    continue
                self.urls += 1
                if url in self._observed:
                    fates[url] = _HANDED
                    continue
                fate = fates[url] = _WAITING
            if fate == _WAITING and titles.get(url):
                fates[url] = _HANDED
                ready.append(url)
        return ready

    def rest(self) -> list[str]:
        """The end of the page phase: the URLs still held back (no cited title)."""
        rest = [url for url, fate in self._fate.items() if fate == _WAITING]
        for url in rest:
            self._fate[url] = _HANDED
        # Titles of URLs never to be checked (skipped or excluded everywhere) are dead weight.
        self._titles = {u: t for u, t in self._titles.items() if self._fate.get(u) == _HANDED}
        return rest

    def title(self, url: str) -> str:
        """The cited title of `url`, for its classification (then forgotten)."""
        return self._titles.pop(url, "")


class UrlFeed:
    """The URLs handed to the checker as pages are recorded: an async
    iterable for `Checker.check_many`, ended by `close` (the page phase is
    over) or by `close(error)` (it failed: the checks stop with that error).

    `drained` lets the page phase wait until the checker has taken what it
    was given: with `check_many(backlog=...)` the checker stops taking while
    enough URLs wait, so the pages are read only so far ahead of the checks
    (`LOOKAHEAD_URLS`) and what a run holds per waiting URL stays bounded."""

    def __init__(self) -> None:
        self._batches: asyncio.Queue[list[str] | None] = asyncio.Queue()
        self._error: BaseException | None = None
        self._untaken = 0
        self._taken = asyncio.Event()
        self._taken.set()
        self.total = 0
        """URLs handed over so far (the progress bar's total)."""

    def put(self, urls: list[str]) -> None:
        if urls:
            self.total += len(urls)
            self._untaken += len(urls)
            self._taken.clear()
            self._batches.put_nowait(urls)

    async def drained(self) -> None:
        """Return once every URL put so far has been taken by the checker."""
        await self._taken.wait()

    def close(self, error: BaseException | None = None) -> None:
        self._error = error
        self._batches.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[str]:
        while True:
            batch = await self._batches.get()
            if batch is None:
                if self._error is not None:
                    raise self._error
                return
            for url in batch:
                self._untaken -= 1
                if not self._untaken:
                    self._taken.set()
                yield url


class Audit:
    """The moving parts of one run, held together for its duration."""

    def __init__(self, settings: Settings, writer: StoreWriter, client: Client,
                 progress: Progress | None = None, now: Callable[[], dt.datetime] = utcnow) -> None:
        self.settings = settings
        self.writer = writer
        self.client = client
        self.checker = Checker(client, settings.checker)
        self.progress = progress
        self.now = now
        self.states: dict[str, UrlState] = {}
        """Previous states of the URLs handed to the checker and not recorded yet."""
        self.to_archive: dict[str, dt.date | None] = {}
        """URLs whose new state may want an archived copy, in check order, with
        the day each last worked (the snapshot date when its citation has none)."""
        self.slow: set[str] = set()
        """URLs that failed last time (errors, rate limits): checked first,
        since their retries and timeouts make the longest chains."""
        self._page_gate = asyncio.Semaphore(PAGES_AT_ONCE)

    # -- pages -------------------------------------------------------------

    async def read_pages(self, run: RunInfo, pages: Sequence[tuple[str, str, str]]
                         ) -> AsyncIterator[tuple[PageRecord, list[Citation]]]:
        """Fetch and extract each (url, name, owner) page, `PAGES_AT_ONCE` at a
        time, yielding them in the configured order (recording them in that
        order keeps the report's page order the webmaster's, whatever page
        answered first). A slow page holds back the recording of the next
        ones, never their fetching beyond the window."""
        todo = iter(pages)
        window: deque[asyncio.Task[tuple[PageRecord, list[Citation]]]] = deque()

        def refill() -> None:
            while len(window) < PAGES_AT_ONCE:
                page = next(todo, None)
                if page is None:
                    return
                window.append(asyncio.create_task(self._read_page(run, *page)))

        try:
            refill()
            while window:
                result = await window[0]
                window.popleft()
                refill()
                yield result
        finally:
            for task in window:
                task.cancel()
            await asyncio.gather(*window, return_exceptions=True)

    async def _record_page(self, run: RunInfo, record: PageRecord, citations: list[Citation]) -> None:
        # Unflushed: pages and occurrences are not what the queued
        # observations write. Called once the page's links are handed over
        # (`hand_over` first): their checks start without waiting for these
        # two writes, which go through the writer's thread.
        await self.writer.call_unflushed("record_page", record)
        if record.links_run in (None, run.id):
            await self.writer.call_unflushed("record_citations", run.id, record.url, citations)

    async def _read_page(self, run: RunInfo, url: str, name: str, owner: str,
                         exclude_links: Sequence[str] = (), *,
                         under_final_url: bool = False) -> tuple[PageRecord, list[Citation]]:
        async with self._page_gate:
            last: PageRecord | None = await self.writer.call_unflushed("last_page", url)
            # The slot first, then the timeout: a page waiting behind others
            # for its host (or behind the checks) does not time out for it.
            async with self.checker.slot(url):
                fetched = await fetch_page(
                    self.client, url,
                    etag=last.etag if last else "", last_modified=last.last_modified if last else "",
                    timeout=max(self.settings.checker.timeout, MIN_PAGE_TIMEOUT),
                )
            if under_final_url and fetched.status == "ok" and fetched.final_url not in ("", None, url):
                # Filed where it lives (`_page_record`): its last read is
                # there, not under the link's address, which has none. Without
                # it an empty answer was "every link removed" (review9 #2).
                last = await self.writer.call_unflushed("last_page", fetched.final_url) or last
            return await self._page_record(run, url, name, owner, exclude_links, last, fetched,
                                           under_final_url)

    async def _page_record(self, run: RunInfo, url: str, name: str, owner: str,
                           exclude_links: Sequence[str], last: PageRecord | None,
                           fetched: PageFetch, under_final_url: bool = False
                           ) -> tuple[PageRecord, list[Citation]]:
        if fetched.status == "not_modified" and last is not None:
            # Unchanged since the last fetch: not parsed again, its links are
            # that run's, and stay recorded there (not copied) unless the
            # exclusions changed since.
            latest = await self.writer.call_unflushed("latest_links_of", url)
            source, links_run = latest or (last.run_id, last.run_id)
            recorded = await self.writer.call_unflushed("run_citations", source, url)
            citations = mark_excluded(recorded, [*self.settings.checker.exclude, *exclude_links])
            record = PageRecord(
                run_id=run.id, url=url, status="not_modified", http_status=304, title=last.title,
                links=len(citations), entries=last.entries, name=name, owner=owner,
                etag=fetched.etag or last.etag, last_modified=fetched.last_modified or last.last_modified,
                links_run=links_run if citations == recorded else None,
                # This fetch's own redirects, not those of the fetch it shares
                # links with: the 304 came through them again, and a redirect
                # removed since (or added) is this week's truth.
                moved_to=None if under_final_url else moved_to(fetched),
            )
        elif fetched.status == "ok":
            html = decode_html(fetched.body, fetched.content_type)
            try:
                extracted = extract_page(html, fetched.final_url or url)
            except Exception as exc:  # noqa: BLE001 -- one page's fault, not the audit's
                # A fault of the monitor's on one page's markup ("1 ſept,
                # 2018" raised KeyError) ended the whole audit, every other
                # page unread. The page fails, last week's problems stay open,
                # and the log keeps the traceback to report.
                log.exception("page could not be read url=%s", url)
                return PageRecord(
                    run_id=run.id, url=url, status="error", http_status=fetched.http_status,
                    error=(f"the monitor failed to read the page's links ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}); please report it with this page's address"),
                    name=name, owner=owner), []
            # Occurrences are filed under the configured URL: that is the page
            # editors know. A page a site crawl found by following a link that
            # redirects is filed where it lives (`under_final_url`), and so
            # is its failed read: the page whose problems were not read again.
            if under_final_url and fetched.final_url:
                url = fetched.final_url
            not_read = stand_in_read(fetched, html, len(extracted.citations), extracted.entries, last)
            if not_read is not None:
                # A parking page, an error page, a sign-in page or a bot wall
                # answering 200 in the page's place: its links are not the
                # page's, and last week's problems stay open.
                log.info("page answered with another page in its place url=%s error=%s", url, not_read)
            elif not extracted.citations and (unread := no_page_read(
                    fetched.body, html, last.links if last is not None else 0)) is not None:
                before = await self.writer.call_unflushed("page_before", url, run.id)
                if links_moved(unread, extracted.title, before):
                    log.info("page holds no links again: taken as their removal url=%s", url)
                else:
                    # Not an edit that removed every link (which would call last
                    # week's problems fixed): the page could not be read this time.
                    log.info("page answered with no page url=%s error=%s", url, unread)
                    not_read = unread
            if not_read is not None:
                # Its title is kept, to know the same answer next time.
                return PageRecord(run_id=run.id, url=url, status="error", http_status=fetched.http_status,
                                  title=extracted.title, error=not_read, name=name, owner=owner), []
            citations = [_on_page(c, url) for c in extracted.citations]
            citations = mark_excluded(citations, [*self.settings.checker.exclude, *exclude_links])
            record = PageRecord(
                run_id=run.id, url=url, status="ok", http_status=fetched.http_status,
                title=extracted.title, links=len(citations), entries=extracted.entries,
                name=name, owner=owner, etag=fetched.etag, last_modified=fetched.last_modified,
                # A site crawl's page is filed where it lives: no [[pages]] url to update.
                moved_to=None if under_final_url else moved_to(fetched),
            )
        else:
            # INFO: `check` and `run` say it on stderr in plain words after the
            # results, and `monitor serve` logs at INFO (was a third WARNING line)
            log.info("page fetch failed url=%s error=%s", url, fetched.error)
            citations = []
            record = PageRecord(
                run_id=run.id, url=url, status="error", http_status=fetched.http_status,
                error=fetched.error or "not modified, but no earlier copy", name=name, owner=owner,
            )
        return record, citations

    async def hand_over(self, urls: list[str], feed: UrlFeed) -> None:
        """Give URLs to the checker, their previous states loaded first.

        The states are read without committing the queued observations
        first: those are of URLs handed over before, never of these (a URL
        is handed over once per run), so they cannot change what is read."""
        if urls:
            # Not further ahead of the checks than LOOKAHEAD_URLS: the
            # previous states are loaded here and held until each check.
            await feed.drained()
            await self._load_states(urls, flushed=False)
            feed.put(urls)

    async def _load_states(self, urls: Sequence[str], *, flushed: bool = True) -> None:
        call = self.writer.call if flushed else self.writer.call_unflushed
        states: dict[str, UrlState] = await call("url_states", urls)
        self.states.update(states)
        self.slow.update(url for url, state in states.items()
                         if state.status is LinkStatus.ERROR or state.reason == "rate_limited")

    # -- links -------------------------------------------------------------

    async def check_urls(self, run_id: int | None, urls: Sequence[str], titles: dict[str, str],
                         counter: Counter[str]) -> int:
        """Check, classify and record each URL; returns how many were checked."""
        await self._load_states(list(urls))
        return await self.check_stream(run_id, urls, titles.get, counter, lambda: len(urls))

    async def check_stream(self, run_id: int | None, urls: Iterable[str] | AsyncIterable[str],
                           title_of: Callable[[str], str], counter: Counter[str],
                           total: Callable[[], int]) -> int:
        """Check, classify and record URLs as they come (their previous
        states already in `self.states`); returns how many were checked."""
        pending: set[asyncio.Task[None]] = set()
        done = 0

        async def finish(obs: Observation) -> None:
            nonlocal done
            title, previous = title_of(obs.url), self.states.get(obs.url)
            if not wants_probe(obs):
                verdict = classify(obs, title=title, previous=previous)
            elif (unprobed := classify_unprobed(obs, title=title, previous=previous)) is not None:
                verdict = unprobed  # no probe's answer could change it: the site is not asked
            else:
                probe = await self.checker.probe(obs.final_url or obs.url)
                verdict = classify(obs, title=title, probe=probe, previous=previous)
            await self.record(run_id, obs, verdict)
            counter[verdict.status.value] += 1
            done += 1
            if self.progress:
                self.progress(done, max(done, total()))

        failed: list[BaseException] = []

        def settled(task: asyncio.Task[None]) -> None:
            # A check that could not be recorded (the disk full, the database
            # locked past the busy timeout) ends the audit at once: checking
            # the rest would only fail to record them too, and the error,
            # never retrieved, was printed as a traceback when the run ended.
            # Any other failure is one link's (a bug on a strange page): said,
            # and the audit goes on; the next run checks that link again.
            pending.discard(task)
            if task.cancelled() or (exc := task.exception()) is None:
                return
            if isinstance(exc, StoreError):
                if not failed:
                    failed.append(exc)
            else:
                log.error("check failed url=%s error=%s: %s", task.get_name(), type(exc).__name__, exc)

        try:
            async with contextlib.aclosing(self.checker.check_many(
                    urls, first=self.slow, backlog=LOOKAHEAD_URLS)) as observations:
                async for obs in observations:
                    if failed:
                        raise failed[0]
                    task = asyncio.create_task(finish(obs), name=obs.url)
                    pending.add(task)
                    task.add_done_callback(settled)
            if pending:
                await asyncio.gather(*pending)
            if failed:
                raise failed[0]
        except BaseException:
            # Cancelled (or failed): a check still being classified is dropped, not
            # written after the run is closed; a resumed run checks that URL again.
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise
        return done

    async def record(self, run_id: int | None, obs: Observation, verdict: Verdict) -> None:
        if self.now is not utcnow:
            # A run with its own clock (the demo's "last week", tests) dates its observations by it.
            obs = replace(obs, checked_at=self.now())
        state = next_state(self.states.pop(obs.url, None), verdict, obs)
        self.slow.discard(obs.url)
        if state.status in ARCHIVE_STATUSES:
            self.to_archive[obs.url] = state.last_ok_at.date() if state.last_ok_at else None
        await self.writer.add(run_id, obs, verdict, state)

    async def suggest_archives(self, dates: dict[str, dt.date]) -> int:
        """Look up archived copies for links that need one and have none yet."""
        api = self.settings.checker.archive_url
        if not api:
            return 0
        # Looked up once per URL: the answer is kept in url_state, read here
        # for all of them at once (not a store call per failing link).
        known: dict[str, str] = await self.writer.call("archived_urls", list(self.to_archive))
        # The citation's date, else the day the link last worked; with
        # neither, the oldest copy (`archive.OLDEST`): asked without a date
        # the archive gives its newest, often of the error page, the parked
        # domain or the new content that made the link fail. An oldest copy
        # is asked again once the link has a date.
        wanted = {url: dates.get(url) or worked for url, worked in self.to_archive.items()}
        oldest = await self.writer.call("oldest_archived_urls", [u for u, when in wanted.items()
                                                                  if when is not None and u in known])
        wanted = {url: when for url, when in wanted.items() if url not in known or url in oldest}
        found = await archive.lookup_many(self.client, api, wanted, self.settings.checker.timeout)
        for url, snapshot in found.items():
            await self.writer.call("set_archived_url", url, snapshot, oldest=wanted[url] is None)
        return len(found)


def _on_page(c: Citation, page_url: str) -> Citation:
    if c.page_url == page_url:
        return c
    return replace(c, page_url=page_url)


def watched_pages(settings: Settings, only: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    pages = [(p.url, p.name, p.owner) for p in settings.pages]
    if only:
        wanted = set(only)
        known = {url for url, _, _ in pages}
        pages = [p for p in pages if p[0] in wanted] + [(u, "", "") for u in only if u not in known]
    return pages


Notice = Callable[[str], None]
"""notice(line): a plain sentence for whoever started the audit (stderr)."""


async def run_audit(
    settings: Settings,
    *,
    only_pages: Sequence[str] | None = None,
    progress: Progress | None = None,
    now: Callable[[], dt.datetime] = utcnow,
    resume: bool = True,
    notice: Notice | None = None,
) -> AuditOutcome:
    """One audit: resume the unfinished run if there is one, else start a new one.

    An unfinished run is resumed only if the configuration still watches
    the same pages and sites with the same exclusions (`audit_scope`, recorded
    when the run started). Otherwise it is left as it is, "interrupted" (what
    it checked stays in each URL's history; no report is made of it, since
    reports pick finished runs) and a new run audits the configuration as it
    is now: resuming would have reported the pages and exclusions of the
    old file, without a word (walkthrough 9, finding 1). `notice` hears, in
    one sentence, which of the two happened.
    """
    started = time.monotonic()
    scope = "" if only_pages else audit_scope(settings)
    async with await StoreWriter.open(settings.database.path) as writer:
        run: RunInfo | None = await writer.call("unfinished_run") if resume and not only_pages else None
        left: RunInfo | None = None
        left_checked = 0
        recorded: str | None = await writer.call("run_scope", run.id) if run is not None else None
        if run is not None and recorded != scope:
            left, run = run, None
            left_checked = len(await writer.call("observed_urls", left.id))
            if left.status == "running":  # killed without closing it: closed now, as a stop would have
                await writer.call("finish_run", left.id, now(), status="interrupted")
        resumed = run is not None
        if run is None:
            run = await _start_run(writer, now, partial=bool(only_pages), scope=scope)
        else:  # this process drives it now: `report` calls it running only while its driver holds the lock
            await writer.call("drive_run", run.id)
        assert run is not None
        if left is not None:
            log.info("event=run_not_resumed run=%d new_run=%d config_changed=true checked=%d",
                     left.id, run.id, left_checked)
            if notice:
                notice(not_resumed_words(left, run, left_checked, settings.source, now(),
                                         recorded=recorded is not None))
        outcome = AuditOutcome(run=run, resumed=resumed, left_run=left)
        try:
            with _collector_relaxed():
                await _audit_run(settings, writer, run, outcome, only_pages, progress, now, notice)
        except asyncio.CancelledError:
            # Stopped (SIGTERM, a lost lock): keep what was checked, let the next start resume.
            await writer.flush()
            await writer.call("finish_run", run.id, now(), status="interrupted")
            # The CLI and the service say it in words; the figure is for -v.
            log.info("run interrupted run=%d observations_saved=%d", run.id, writer.written)
            raise
        await writer.call("finish_run", run.id, now())
        outcome.run = await writer.call("get_run", run.id)
    outcome.seconds = time.monotonic() - started
    log.info("run finished run=%d pages=%d links=%d urls=%d checked=%d seconds=%.1f",
             outcome.run.id, outcome.pages, outcome.links, outcome.urls, outcome.checked, outcome.seconds)
    return outcome


def _when(moment: dt.datetime, now: dt.datetime) -> str:
    """"15:14 UTC" today, "20 Nov 2026 15:14 UTC" another day."""
    moment = moment.astimezone(dt.UTC)
    if moment.date() == now.astimezone(dt.UTC).date():
        return f"{moment:%H:%M} UTC"
    return f"{moment.day} {moment:%b %Y %H:%M} UTC"


def _stopped_words(run: RunInfo, now: dt.datetime) -> str:
    if run.status == "interrupted" and run.finished_at is not None:
        return f"interrupted at {_when(run.finished_at, now)}"
    return f"started at {_when(run.started_at, now)} and stopped without finishing"


def _urls(n: int) -> str:
    return f"{n} URL{'' if n == 1 else 's'} {'was' if n == 1 else 'were'}"


def resumed_words(run: RunInfo, checked: int, now: dt.datetime) -> str:
    return f"resuming run {run.id}, {_stopped_words(run, now)}: {_urls(checked)} already checked"


def not_resumed_words(left: RunInfo, new: RunInfo, checked: int, source: str, now: dt.datetime,
                      *, recorded: bool) -> str:
    why = (f"the [[pages]], [[sites]] or checker.exclude of {source} changed since it started" if recorded
           else "the pages and exclusions it started with were not recorded (an earlier version "
                "of the monitor started it)")
    kept = (f"the checks it made of {checked} URL{'' if checked == 1 else 's'} are kept in their histories"
            if checked else "it had checked nothing yet")
    return (f"not resuming run {left.id} ({_stopped_words(left, now)}): {why}. It stays in the "
            f"history as interrupted ({kept}; no report is made of it); run {new.id} audits the "
            "configuration as it is now")


async def _start_run(writer: StoreWriter, now: Callable[[], dt.datetime], *, partial: bool,
                     scope: str = "") -> RunInfo:
    """A new run's row. Stopped while the writer creates it (SIGTERM at the
    first instant), the row exists all the same once committed: it is closed
    as "interrupted", as any stopped run is, rather than left "running"."""
    creating = asyncio.ensure_future(writer.call("start_run", now(), partial=partial, scope=scope))
    try:
        run: RunInfo = await asyncio.shield(creating)
    except asyncio.CancelledError:
        if not creating.cancelled():
            created: RunInfo = await creating
            await writer.call("finish_run", created.id, now(), status="interrupted")
        raise
    return run


async def _audit_run(settings: Settings, writer: StoreWriter, run: RunInfo, outcome: AuditOutcome,
                     only_pages: Sequence[str] | None, progress: Progress | None,
                     now: Callable[[], dt.datetime], notice: Notice | None = None) -> None:
    """The body of a run: the page phase (or, when resuming after it, the
    pages reloaded) feeding the checker, then archive suggestions."""
    async with Client(settings.checker) as client:
        audit = Audit(settings, writer, client, progress, now)
        observed: set[str] = set()
        pages_done = False
        if outcome.resumed:
            observed = await writer.call("observed_urls", run.id)
            pages_done = await writer.call("get_meta", PAGES_DONE) == str(run.id)
            if notice:
                notice(resumed_words(run, len(observed), now()))
            if not pages_done:
                # Stopped while its pages were being fetched: redo that phase whole,
                # so the run audits every page; what it checked already stands.
                log.info("resuming run=%d from its page phase observed=%d", run.id, len(observed))
                await writer.call("clear_run_pages", run.id)
            else:
                log.info("resuming run=%d observed=%d", run.id, len(observed))
        book = CitedUrls(observed)
        feed = UrlFeed()
        if pages_done:
            pages = _reload_pages(audit, run, book, feed, outcome)
        else:
            pages = _page_phase(settings, audit, run, book, feed, outcome, only_pages)
        producer = asyncio.create_task(_feeding(pages, feed), name="page-phase")
        try:
            outcome.checked = await audit.check_stream(run.id, feed, book.title, outcome.by_status,
                                                       lambda: feed.total)
            await producer
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        outcome.links = book.links
        outcome.urls = book.urls
        await writer.flush()
        await audit.suggest_archives(book.dates)


async def _feeding(pages: Awaitable[None], feed: UrlFeed) -> None:
    """Run a page phase; the feed ends with it (with its error, if it fails)."""
    try:
        await pages
    except BaseException as exc:
        feed.close(exc if not isinstance(exc, asyncio.CancelledError) else None)
        raise
    feed.close()


async def _page_phase(settings: Settings, audit: Audit, run: RunInfo, book: CitedUrls, feed: UrlFeed,
                      outcome: AuditOutcome, only_pages: Sequence[str] | None) -> None:
    """Read, hand over and record the watched pages (then the sites' pages);
    mark the phase done once every page is recorded. A page's links go to
    the checker before its rows are written: the writes wait on the
    writer's thread, which the loop, busy reading the next pages and
    dispatching checks, answers late (40-65 ms for the first pages)."""
    page_list = watched_pages(settings, only_pages)
    crawling = bool(settings.sites) and not only_pages
    configured: dict[str, tuple[PageRecord, list[Citation]]] = {}
    async with contextlib.aclosing(audit.read_pages(run, page_list)) as pages:
        async for record, citations in pages:
            await audit.hand_over(book.add(citations), feed)
            await audit._record_page(run, record, citations)
            outcome.pages_failed += record.status == "error"
            if crawling:
                _keep_for_sites(configured, settings.sites, record, citations)
    outcome.pages = len(page_list)
    if crawling:
        site_pages, site_failed = await crawl_sites(settings, audit, run, book, feed, configured)
        outcome.pages += site_pages
        outcome.pages_failed += site_failed
    await audit.hand_over(book.rest(), feed)
    await audit.writer.call("set_meta", PAGES_DONE, str(run.id))


async def _reload_pages(audit: Audit, run: RunInfo, book: CitedUrls, feed: UrlFeed,
                        outcome: AuditOutcome) -> None:
    """A run resumed after its page phase: its pages and links come from the
    database, page by page (never the whole run's Citations at once)."""
    pages: list[PageRecord] = await audit.writer.call("run_pages", run.id)
    outcome.pages = len(pages)
    outcome.pages_failed = sum(1 for p in pages if p.status == "error")
    for page in pages:
        citations = await audit.writer.call("run_citations", run.id, page.url)
        await audit.hand_over(book.add(citations), feed)
    await audit.hand_over(book.rest(), feed)


def _keep_for_sites(configured: dict[str, tuple[PageRecord, list[Citation]]],
                    sites: Sequence[SiteSettings], record: PageRecord, citations: list[Citation]) -> None:
    """Keep a watched page that a [[sites]] crawl may reach (one of a site's
    host), under its address and the one it redirects to: the crawl then
    follows its links without fetching it again (`crawl_sites`)."""
    from monitor.sites import page_key, same_site

    if any(same_site(record.url, site.url) for site in sites):
        configured[page_key(record.url)] = (record, citations)
        if record.moved_to:
            configured.setdefault(page_key(record.moved_to), (record, citations))


async def crawl_sites(settings: Settings, audit: Audit, run: RunInfo, book: CitedUrls,
                      feed: UrlFeed,
                      configured: dict[str, tuple[PageRecord, list[Citation]]] | None = None,
                      ) -> tuple[int, int]:
    """Discover and audit the pages of each [[sites]] entry; (pages, failed).

    Each page is fetched once: the site crawler follows the links that the
    audit's own page visitor extracted and recorded; the visitor hands each
    recorded page's links to the checker at once. A [[pages]] url the crawl
    reaches is that page, read already (`configured`, by `page_key`): not
    fetched again (which answered 304, "unchanged since the last fetch", on
    a first audit) nor recorded again (which lost its name and owner).

    A link of the site that leads to no page (`no_page_there`: 404, 410,
    a PDF) is a dead link, which its own row reports: not a page of the
    site, nor one that "could not be fetched". The site's `start` is the
    configuration's, and stays a failed page; a page that times out or
    answers 5xx exists but could not be read this time (its links went
    unchecked, and the pages only it links to were not found): failed too.
    """
    from monitor.pages import gone_here, no_page_there
    from monitor.sites import NO_PAGE, discover_site, page_key, same_site
    from monitor.wording import LISTED_IN_SITEMAP

    configured = configured or {}
    pages = failed = 0
    for site in settings.sites:
        filed: set[str] = set()
        listed: set[str] = set()  # the sitemap's pages, filled by discover_site
        start = page_key(site.start) if site.start else None

        async def visit(url: str, site: SiteSettings = site, filed: set[str] = filed,
                        start: str | None = start, listed: set[str] = listed
                        ) -> Visited:
            """Fetch, extract and record one page of the site, once. A link that
            redirects (`/sec` -> `/sec/`, an old page -> the home page) leads to
            a page filed under its own address, which another link may reach
            too: it is recorded once. A page that redirects off the site is
            another site's, and not audited as ours."""
            if (watched := configured.get(page_key(url))) is not None:
                return _watched_links(url, *watched)
            record, found = await audit._read_page(run, url, site.name, site.owner, site.exclude_links,
                                                   under_final_url=True)
            if record.url != url and not same_site(record.url, site.url):
                log.info("site page redirects off the site, not audited url=%s to=%s", url, record.url)
                return NO_PAGE
            if (watched := configured.get(page_key(record.url))) is not None:
                return _watched_links(url, *watched)
            if page_key(url) in listed and record.status == "error" and gone_here(record.http_status):
                # The site's own sitemap names it: a page of the site that is
                # not there (a 4xx) is the sitemap's mistake, said as a page,
                # not a link. A file it lists (a PDF leaflet, 200) is no
                # mistake: no page there, as for a link (review9 #1).
                record = replace(record, error=f"{record.error} ({LISTED_IN_SITEMAP})")
            elif (record.status == "error" and page_key(url) != start
                    and no_page_there(record.http_status, record.error)):
                log.info("site link leads to no page (a dead link, said by its own row) url=%s error=%s",
                         url, record.error)
                return NO_PAGE
            if page_key(record.url) in filed:
                # Its links were followed from there: not a second page of max_pages.
                log.info("site page already audited under its own address url=%s page=%s", url, record.url)
                return NO_PAGE
            filed.add(page_key(record.url))
            await audit.hand_over(book.add(found), feed)
            await audit._record_page(run, record, found)
            return found if record.status != "error" else None

        crawl = await discover_site(
            audit.client, site, visit, user_agent=settings.checker.user_agent,
            timeout=settings.checker.timeout, listed=listed,
        )
        robots_failed = 0
        if not filed and crawl.robots_unreadable:
            # robots.txt answered 5xx/429 or not at all: RFC 9309 says crawl
            # nothing. The site is then a page that could not be fetched, with
            # the reason (it recorded no page: the report said nothing was
            # checked without a word of why; only a WARNING log line named it).
            await audit._record_page(run, PageRecord(
                run_id=run.id, url=site.url, status="error", name=site.name, owner=site.owner,
                error=(f"its robots.txt could not be read ({crawl.robots_unreadable}): a site that cannot say what may be "
                       "crawled is not crawled (RFC 9309), so none of its pages was fetched")), [])
            filed.add(page_key(site.url))
            robots_failed = 1
        if crawl.over_max_pages or crawl.beyond_max_depth:
            await audit.writer.call_unflushed("record_site_cut", run.id, SiteCut(
                site=site.name or (urlsplit(site.url).netloc.lower() or site.url), start=site.url,
                max_pages=site.max_pages, not_audited=crawl.over_max_pages, config=settings.source,
                max_depth=site.max_depth, too_deep=crawl.beyond_max_depth))
        # Sitemap failures are in `errors` too; only pages count as pages that failed.
        visited = set(crawl.pages)
        page_errors = sum(1 for url, _ in crawl.errors if url in visited)
        log.info("site crawled start=%s pages=%d robots_skipped=%d errors=%d over_max_pages=%d "
                 "beyond_max_depth=%d", site.url, len(filed), len(crawl.skipped_by_robots), page_errors,
                 crawl.over_max_pages, crawl.beyond_max_depth)
        pages += len(filed)
        failed += page_errors + robots_failed
    return pages, failed


def _watched_links(url: str, record: PageRecord, citations: list[Citation]) -> list[Citation]:
    """The links of a [[pages]] url the crawl reached, for the crawl to follow."""
    log.info("site page is a watched page, read already url=%s page=%s", url, record.url)
    return citations if record.status != "error" else []


async def recheck(settings: Settings, urls: Sequence[str], now: Callable[[], dt.datetime] = utcnow) -> Counter[str]:
    """Check failing URLs again outside a weekly run (run_id None) to confirm or clear them."""
    counter: Counter[str] = Counter()
    async with await StoreWriter.open(settings.database.path) as writer:
        titles: dict[str, str] = {}
        for url in urls:
            for c in await writer.call("citations_of", url):
                titles.update(cited_titles([c]))
        async with Client(settings.checker) as client:
            audit = Audit(settings, writer, client, None, now)
            await audit.check_urls(None, list(urls), titles, counter)
    return counter
