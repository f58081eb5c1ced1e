"""One audit run: pages -> extract -> check (bounded, concurrent) -> classify -> store.

A run is resumable: its pages and link occurrences are written before any
check, and every observation is committed within a short batch window, so a
run cut short by a crash or a kill is picked up by the next start: the pages
are not fetched again, and URLs already observed in that run are not checked
again. It finishes as one run, with one report.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from monitor import archive
from monitor.check import Checker
from monitor.classify import classify, next_state
from monitor.client import Client
from monitor.config import Settings, SiteSettings
from monitor.decode import decode_html
from monitor.extract import extract_page
from monitor.pages import fetch_page
from monitor.store import StoreWriter
from monitor.types import Citation, LinkKind, LinkStatus, Observation, PageRecord, RunInfo, UrlState, Verdict

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""progress(done, total): called after each checked URL."""

PAGES_DONE = "pages_done_run"
"""Meta key: the id of the latest run whose page phase completed."""

ARCHIVE_STATUSES = (LinkStatus.EXPIRED, LinkStatus.ERROR, LinkStatus.DRIFTED)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


def citation_dates(citations: Iterable[Citation]) -> dict[str, dt.date]:
    dates: dict[str, dt.date] = {}
    for c in citations:
        if c.url and c.context and c.context.date and c.url not in dates:
            dates[c.url] = c.context.date
    return dates


def urls_to_check(citations: Iterable[Citation], exclude: Sequence[str]) -> list[str]:
    """Distinct checkable URLs in page order; each is checked once per run."""
    patterns = [re.compile(p) for p in exclude]
    seen: dict[str, None] = {}
    for c in citations:
        if c.url is None or c.skip_reason:
            continue
        if any(p.search(c.url) for p in patterns):
            continue
        seen.setdefault(c.url, None)
    return list(seen)


def mark_excluded(citations: Sequence[Citation], exclude: Sequence[str]) -> list[Citation]:
    if not exclude:
        return list(citations)
    from dataclasses import replace

    patterns = [re.compile(p) for p in exclude]
    return [
        replace(c, skip_reason="excluded")
        if c.url and not c.skip_reason and any(p.search(c.url) for p in patterns)
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

    # -- pages -------------------------------------------------------------

    async def fetch_pages(self, run: RunInfo, pages: Sequence[tuple[str, str, str]]) -> tuple[list[Citation], int]:
        """Fetch and extract each (url, name, owner) page concurrently; record them in order.

        Recording in the configured order keeps the report's page order the
        webmaster's, whatever page answered first.
        """
        results = await asyncio.gather(*(self._read_page(run, *page) for page in pages))
        citations: list[Citation] = []
        for record, page_citations in results:
            await self._record_page(run, record, page_citations)
            citations += page_citations
        return citations, sum(1 for record, _ in results if record.status == "error")

    async def _one_page(self, run: RunInfo, url: str, name: str, owner: str,
                        exclude_links: Sequence[str] = ()) -> tuple[list[Citation], bool]:
        record, citations = await self._read_page(run, url, name, owner, exclude_links)
        await self._record_page(run, record, citations)
        return citations, record.status != "error"

    async def _record_page(self, run: RunInfo, record: PageRecord, citations: list[Citation]) -> None:
        await self.writer.call("record_page", record)
        await self.writer.call("record_citations", run.id, record.url, citations)

    async def _read_page(self, run: RunInfo, url: str, name: str, owner: str,
                         exclude_links: Sequence[str] = ()) -> tuple[PageRecord, list[Citation]]:
        last: PageRecord | None = await self.writer.call("last_page", url)
        fetched = await fetch_page(
            self.client, url,
            etag=last.etag if last else "", last_modified=last.last_modified if last else "",
            timeout=max(self.settings.checker.timeout, 30.0),
        )
        if fetched.status == "not_modified" and last is not None:
            # Unchanged since the last fetch: not parsed again, its links come from that run.
            citations = await self.writer.call("run_citations", last.run_id, url)
            record = PageRecord(
                run_id=run.id, url=url, status="not_modified", http_status=304, title=last.title,
                links=len(citations), entries=last.entries, name=name, owner=owner,
                etag=fetched.etag or last.etag, last_modified=fetched.last_modified or last.last_modified,
            )
        elif fetched.status == "ok":
            html = decode_html(fetched.body, fetched.content_type)
            extracted = extract_page(html, fetched.final_url or url)
            # Occurrences are filed under the configured URL: that is the page editors know.
            citations = [_on_page(c, url) for c in extracted.citations]
            citations = mark_excluded(citations, [*self.settings.checker.exclude, *exclude_links])
            record = PageRecord(
                run_id=run.id, url=url, status="ok", http_status=fetched.http_status,
                title=extracted.title, links=len(citations), entries=extracted.entries,
                name=name, owner=owner, etag=fetched.etag, last_modified=fetched.last_modified,
            )
        else:
            log.warning("page fetch failed url=%s error=%s", url, fetched.error)
            citations = []
            record = PageRecord(
                run_id=run.id, url=url, status="error", http_status=fetched.http_status,
                error=fetched.error or "not modified, but no earlier copy", name=name, owner=owner,
            )
        return record, citations

    # -- links -------------------------------------------------------------

    async def check_urls(self, run_id: int | None, urls: Sequence[str], titles: dict[str, str],
                         counter: Counter[str]) -> int:
        """Check, classify and record each URL; returns how many were checked."""
        self.states.update(await self.writer.call("url_states", list(urls)))
        pending: set[asyncio.Task[None]] = set()
        done = 0
        total = len(urls)

        async def finish(obs: Observation) -> None:
            nonlocal done
            probe = await self.checker.probe(obs.final_url or obs.url) if wants_probe(obs) else None
            verdict = classify(obs, title=titles.get(obs.url, ""), probe=probe,
                               previous=self.states.get(obs.url))
            await self.record(run_id, obs, verdict)
            counter[verdict.status.value] += 1
            done += 1
            if self.progress:
                self.progress(done, total)

        try:
            async for obs in self.checker.check_many(urls):
                task = asyncio.create_task(finish(obs))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending)
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
        state = next_state(self.states.get(obs.url), verdict, obs)
        self.states[obs.url] = state
        await self.writer.add(run_id, obs, verdict, state)

    async def suggest_archives(self, citations: Sequence[Citation]) -> int:
        """Look up archived copies for links that need one and have none yet."""
        api = self.settings.checker.archive_url
        if not api:
            return 0
        dates = citation_dates(citations)
        wanted = {
            url: dates.get(url)
            for url, state in self.states.items()
            if state.status in ARCHIVE_STATUSES
        }
        # Looked up once per URL: the answer is kept in url_state.
        known = {u for u in wanted if await self.writer.call("archived_url", u)}
        wanted = {u: d for u, d in wanted.items() if u not in known}
        found = await archive.lookup_many(self.client, api, wanted, self.settings.checker.timeout)
        for url, snapshot in found.items():
            await self.writer.call("set_archived_url", url, snapshot)
        return len(found)


def _on_page(c: Citation, page_url: str) -> Citation:
    if c.page_url == page_url:
        return c
    from dataclasses import replace

    return replace(c, page_url=page_url)


def watched_pages(settings: Settings, only: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    pages = [(p.url, p.name, p.owner) for p in settings.pages]
    if only:
        wanted = set(only)
        known = {url for url, _, _ in pages}
        pages = [p for p in pages if p[0] in wanted] + [(u, "", "") for u in only if u not in known]
    return pages


async def run_audit(
    settings: Settings,
    *,
    only_pages: Sequence[str] | None = None,
    progress: Progress | None = None,
    now: Callable[[], dt.datetime] = utcnow,
    resume: bool = True,
) -> AuditOutcome:
    """One audit: resume the unfinished run if there is one, else start a new one."""
    started = time.monotonic()
    async with await StoreWriter.open(settings.database.path) as writer:
        run: RunInfo | None = await writer.call("unfinished_run") if resume and not only_pages else None
        resumed = run is not None
        if run is None:
            run = await writer.call("start_run", now())
        assert run is not None
        outcome = AuditOutcome(run=run, resumed=resumed)
        try:
            await _audit_run(settings, writer, run, outcome, only_pages, progress, now)
        except asyncio.CancelledError:
            # Stopped (SIGTERM, a lost lock): keep what was checked, let the next start resume.
            await writer.flush()
            await writer.call("finish_run", run.id, now(), status="interrupted")
            log.warning("run interrupted run=%d written=%d", run.id, writer.written)
            raise
        await writer.call("finish_run", run.id, now())
        outcome.run = await writer.call("get_run", run.id)
    outcome.seconds = time.monotonic() - started
    log.info("run finished run=%d pages=%d links=%d urls=%d checked=%d seconds=%.1f",
             outcome.run.id, outcome.pages, outcome.links, outcome.urls, outcome.checked, outcome.seconds)
    return outcome


async def _audit_run(settings: Settings, writer: StoreWriter, run: RunInfo, outcome: AuditOutcome,
                     only_pages: Sequence[str] | None, progress: Progress | None,
                     now: Callable[[], dt.datetime]) -> None:
    """The body of a run: fetch (or reload, when resuming) the pages, then check what is left."""
    resumed = outcome.resumed
    async with Client(settings.checker) as client:
        audit = Audit(settings, writer, client, progress, now)
        if resumed and await writer.call("get_meta", PAGES_DONE) != str(run.id):
            # Stopped while its pages were being fetched: redo that phase whole,
            # so the run audits every page (nothing was checked yet).
            log.info("resuming run=%d from its page phase", run.id)
            await writer.call("clear_run_pages", run.id)
            resumed = False
        if resumed:
            citations = await writer.call("run_citations", run.id)
            pages = await writer.call("run_pages", run.id)
            outcome.pages = len(pages)
            outcome.pages_failed = sum(1 for p in pages if p.status == "error")
            observed: set[str] = await writer.call("observed_urls", run.id)
            log.info("resuming run=%d observed=%d", run.id, len(observed))
        else:
            page_list = watched_pages(settings, only_pages)
            citations, outcome.pages_failed = await audit.fetch_pages(run, page_list)
            outcome.pages = len(page_list)
            if settings.sites and not only_pages:
                site_citations, site_pages, site_failed = await crawl_sites(settings, audit, run)
                citations += site_citations
                outcome.pages += site_pages
                outcome.pages_failed += site_failed
            observed = set()
            await writer.call("set_meta", PAGES_DONE, str(run.id))
        urls = urls_to_check(citations, ())
        outcome.links = len(citations)
        outcome.urls = len(urls)
        todo = [u for u in urls if u not in observed]
        outcome.checked = await audit.check_urls(run.id, todo, cited_titles(citations), outcome.by_status)
        await writer.flush()
        await audit.suggest_archives(citations)


async def crawl_sites(settings: Settings, audit: "Audit", run: RunInfo) -> tuple[list[Citation], int, int]:
    """Discover and audit the pages of each [[sites]] entry; (citations, pages, failed).

    Each page is fetched once: the site crawler follows the links that the
    audit's own page visitor extracted and recorded.
    """
    from monitor.sites import discover_site

    citations: list[Citation] = []
    pages = failed = 0
    for site in settings.sites:
        async def visit(url: str, site: SiteSettings = site) -> list[Citation] | None:
            found, ok = await audit._one_page(run, url, site.name, site.owner, site.exclude_links)
            citations.extend(found)
            return found if ok else None

        crawl = await discover_site(
            audit.client, site, visit, user_agent=settings.checker.user_agent,
            timeout=settings.checker.timeout,
        )
        log.info("site crawled start=%s pages=%d robots_skipped=%d errors=%d",
                 site.url, len(crawl.pages), len(crawl.skipped_by_robots), len(crawl.errors))
        pages += len(crawl.pages)
        failed += len(crawl.errors)
    return citations, pages, failed


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
