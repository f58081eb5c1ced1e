"""Value types shared by every stage of the audit pipeline.

They are frozen and slotted so that the pure core (extract, classify, audit)
can pass them around freely and tests can compare whole lists of them.
This module imports nothing local.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class LinkKind(StrEnum):
    """What a link is for on its page; editors only fix `citation`s by hand."""

    CITATION = "citation"
    NAVIGATION = "navigation"
    RESOURCE = "resource"


class LinkStatus(StrEnum):
    """The action a link asks of an editor (CONTRACT.md, "Link statuses")."""

    OK = "ok"
    MOVED = "moved"
    EXPIRED = "expired"
    ERROR = "error"
    BLOCKED = "blocked"
    DRIFTED = "drifted"
    SKIPPED = "skipped"

    @property
    def is_failing(self) -> bool:
        """Failing statuses count strikes; moved/drifted still answer."""
        return self in (LinkStatus.EXPIRED, LinkStatus.ERROR, LinkStatus.BLOCKED)

    @property
    def needs_fixing(self) -> bool:
        return self in (
            LinkStatus.MOVED,
            LinkStatus.EXPIRED,
            LinkStatus.ERROR,
            LinkStatus.DRIFTED,
        )


class ErrorKind(StrEnum):
    """Why a check produced no usable HTTP answer.

    `check.py` is the only place that maps aiohttp/asyncio/ssl exceptions to
    these; everything downstream reasons about the enum.
    """

    TIMEOUT = "timeout"
    DNS = "dns"
    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_RESET = "connection_reset"
    TLS = "tls"
    REDIRECT_LOOP = "redirect_loop"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    PRIVATE_ADDRESS = "private_address"
    INVALID_URL = "invalid_url"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    BAD_RESPONSE = "bad_response"
    ROBOTS_DISALLOWED = "robots_disallowed"


URL_KEPT_MAX = 2048
"""The longest address the history keeps whole (a redirect hop, a final
address) or suggests (a link's new address): no editor pastes a longer
link, and a hostile server sends 30 KB Locations, a hostile page 500,000
characters of href. A longer one is clipped with an ellipsis where it is
evidence, and not suggested at all (a clipped address leads nowhere)."""

HREF_MAX = 8192
"""The longest href checked: servers refuse longer request lines (Apache
8,190 bytes, nginx 8 KB); a longer one is a malformed link, kept clipped to
`URL_KEPT_MAX`."""


@dataclass(frozen=True, slots=True)
class EntryContext:
    """The citation entry around a link, as an editor reads it on the page."""

    title: str = ""
    summary: str = ""
    source: str = ""
    date: dt.date | None = None
    expired_mark: bool = False


@dataclass(frozen=True, slots=True)
class Citation:
    """One link occurrence on a watched page.

    `url` is the absolute, normalised URL to check, or None when the href is
    not a checkable URL (then `skip_reason` says why: "mailto", "javascript",
    "fragment", "tel", "data", "invalid_url", "excluded").
    """

    page_url: str
    url: str | None
    raw_href: str
    anchor_text: str
    section: str
    kind: LinkKind
    element: str = "a"
    attribute: str = "href"
    line: int | None = None
    context: EntryContext | None = None
    skip_reason: str | None = None
    fragment: str = ""
    """The text directive that scrolls to this link ("see-,Symptoms",
    percent-encoded: `monitor.textfragment`) when the first words of its
    text (or entry title) stand earlier on the page; "" when they find it."""
    fragment_nth: int = 0
    """When no few words around it set it apart: which match of its words
    on the page it is (2: the second); else 0."""
    source_href: str = ""
    """The attribute as the page's source writes it when that is not
    `raw_href` (the parser's value), as it is with a character reference:
    "soft?id=7&amp;src=rss" for "soft?id=7&src=rss". An editor searches the
    source for this; "" for nearly every link."""


@dataclass(frozen=True, slots=True)
class Hop:
    """One redirect answer: the URL asked, its status, where it pointed."""

    url: str
    status: int
    location: str


@dataclass(frozen=True, slots=True)
class Observation:
    """What one check of one URL saw. Facts only; no verdict.

    `title` is the target's <title>; `meta_title` the first scholarly or
    social title found (citation_title, dc.title, og:title). `text` is a
    bounded excerpt of the visible text, enough to recognise error pages,
    parked domains and bot challenges.
    """

    url: str
    checked_at: dt.datetime
    http_status: int | None = None
    final_url: str | None = None
    redirects: tuple[Hop, ...] = ()
    error_kind: ErrorKind | None = None
    error_detail: str = ""
    elapsed_ms: int = 0
    bytes_read: int = 0
    content_type: str = ""
    title: str = ""
    meta_title: str = ""
    text: str = ""
    server: str = ""
    retry_after: float | None = None
    content_hash: str = ""
    attempts: int = 1
    method: str = "GET"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The classification of one observation of one URL."""

    url: str
    status: LinkStatus
    reason: str
    detail: str = ""
    suggested_url: str | None = None
    notice: str = ""
    """What the page says about the cited work beside its status: "retracted"
    or "withdrawn" (monitor/notices.py), or "". The status stays the link's."""
    notice_detail: str = ""
    """The notice in one sentence, quoting the page."""


@dataclass(frozen=True, slots=True)
class UrlState:
    """Per-URL state carried between runs (the `url_state` table)."""

    url: str
    status: LinkStatus
    reason: str = ""
    strikes: int = 0
    failing_since: dt.datetime | None = None
    last_ok_at: dt.datetime | None = None
    last_checked_at: dt.datetime | None = None
    first_seen_at: dt.datetime | None = None
    flapping: bool = False
    recent: tuple[str, ...] = field(default=())
    """Statuses of the latest observations, newest last (for flapping)."""
    last_ok_title: str = ""
    """The target's title when it last answered ok: the baseline for drift."""
    status_since: dt.datetime | None = None
    """The check time of the first observation of the current status: how
    long a moved or drifted link (which never fails) has waited for a fix."""
    checks: int = 0
    """Checks counted since `counted_since` (skipped ones left out)."""
    failures: int = 0
    """Of those, the ones that failed (expired, error, blocked). Kept with the
    state so that "failed 18 of the last 52 checks" costs a report nothing:
    counted from the observations, it read 37,000 scattered rows at 100,000
    links (0.2-0.7 s warm, 9.5 s cold)."""
    counted_since: dt.datetime | None = None
    """The first check counted (None: none yet, as on a database made before
    the counters: `fail_tally` uses `recent` until they hold more)."""

    def fail_tally(self) -> FailTally:
        """How often it failed: the counters once they hold at least the
        checks `recent` does, else the `recent` statuses themselves."""
        recent = [LinkStatus(s) for s in self.recent
                  if s in LinkStatus._value2member_map_ and s != LinkStatus.SKIPPED]
        if self.counted_since is not None and self.checks >= len(recent):
            return FailTally(self.checks, self.failures, self.counted_since, self.last_ok_at)
        return FailTally(len(recent), sum(s.is_failing for s in recent), None, self.last_ok_at)


@dataclass(frozen=True, slots=True)
class LinkResult:
    """One link occurrence of a run with its verdict: a row of `check --format json`.

    The first fields are exactly the contract's `links` objects; the rest
    (`detail`, the entry context) feed the report.
    """

    page: str
    url: str
    text: str
    section: str
    kind: LinkKind
    status: LinkStatus
    reason: str
    http_status: int | None
    final_url: str | None
    suggested_url: str | None
    strikes: int
    failing_since: dt.datetime | None
    checked_at: dt.datetime | None
    detail: str = ""
    entry_title: str = ""
    entry_source: str = ""
    entry_date: dt.date | None = None
    expired_mark: bool = False
    flapping: bool = False
    archived_url: str | None = None
    archived_oldest: bool = False
    """`archived_url` is the oldest copy the archive holds (the link has no
    date to ask for): the editor checks it shows the article before linking it."""
    notice: str = ""
    """ "retracted" or "withdrawn" when the cited article's page says so, else ""."""
    notice_detail: str = ""
    notice_marked: bool = False
    """The entry already says its article was retracted or withdrawn (its
    title, summary or source line: `notices.entry_says_so`): the note is
    listed apart, not counted in the report's headline. False without a notice."""
    line: int | None = None
    """The source line of the tag holding the link (None: not found in the raw text)."""
    written: str = ""
    """The href as the page writes it ('/img/bg.png', '../x.gif') when that
    differs from `url`, else "": what an editor searches the source for."""
    element: str = ""
    """The tag holding the link ("a", "img", "style" for a <style> block);
    "" when unknown. With `attribute`, says where it sits (output.tag_words)."""
    attribute: str = ""
    """"href", "src", "style" (a style="..." attribute), "url" or "@import"
    (in a <style> block)...; "" when unknown."""
    fragment: str = ""
    """`Citation.fragment`: the text directive that finds this link on its
    page when its first words alone would find an earlier place; ""."""
    fragment_nth: int = 0
    """`Citation.fragment_nth`: which match of its words it is, when no
    directive sets it apart (the report says "the 2nd ..."); else 0."""

    CONTRACT_FIELDS = (
        "page", "url", "text", "section", "kind", "status", "reason", "http_status",
        "final_url", "suggested_url", "strikes", "failing_since", "checked_at",
    )


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One audit run. `status` is running, finished or interrupted; `partial`
    when it audited only the pages given (`monitor check --page`)."""

    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    status: str = "running"
    reported_at: dt.datetime | None = None
    links: int = 0
    urls: int = 0
    partial: bool = False


@dataclass(frozen=True, slots=True)
class PageRecord:
    """A watched page as fetched in one run.

    `status` is "ok", "not_modified" (304, not re-parsed) or "error";
    `entries` holds the titles of its citation entries, to spot heavy edits;
    `links_run` is the run whose recorded links are this fetch's (None: its
    own run; an earlier one for an unchanged page, whose links are not copied).
    `moved_to` is where the page's address redirects permanently (301/308)
    in this fetch, so the configured url can be updated; None when it does not.
    """

    run_id: int
    url: str
    status: str
    http_status: int | None = None
    title: str = ""
    error: str = ""
    links: int = 0
    entries: tuple[str, ...] = ()
    name: str = ""
    owner: str = ""
    etag: str = ""
    last_modified: str = ""
    links_run: int | None = None
    moved_to: str | None = None

    @property
    def not_modified(self) -> bool:
        """It answered 304: its links are those of the last read, not re-read."""
        return self.status == "not_modified"

    @property
    def public_status(self) -> str:
        """`status` as the JSON gives it to scripts (CONTRACT.md: "ok"): a page
        unchanged since the last read is read, so "ok", with `not_modified`
        true beside it. The database keeps "not_modified" (docs/schema.md)."""
        return "ok" if self.not_modified else self.status


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A naive datetime is UTC (the database's and the checker's clocks are):
    aware, it compares with any other."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def whole_second(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC, cut to its second (never rounded up: a check cut
    this way is never after the run's end cut the same way)."""
    if moment.tzinfo is not dt.timezone.utc:  # the database's moments are: no conversion then
        moment = as_utc(moment).astimezone(dt.timezone.utc)
    return moment.replace(microsecond=0)


def iso_moment(moment: dt.datetime) -> str:
    """Every moment in every JSON the monitor writes (check, history, the
    report's JSON, /healthz): "2026-11-23T06:00:00+00:00", as CONTRACT.md
    shows it. Whole seconds: with microseconds jq's `fromdateiso8601`
    refused them, and one field had two shapes across the outputs. The
    database keeps microseconds (the order of observations)."""
    return whole_second(moment).isoformat()


def read_no_page(pages: int, pages_failed: int) -> bool:
    """The one rule for "this run read no page" (`check`/`run`'s exit 1, the
    report's headline, the index row, the demo, `monitor serve`'s WARNING and
    /healthz): every page recorded failed, or none was recorded at all. A
    configuration always watches something (config.py refuses one with no
    [[pages]] and no [[sites]]), so zero pages is not "nothing to do": it is a
    [[sites]] crawl that fetched nothing (robots.txt answering 503 is
    disallow-all, RFC 9309), and its zeros would read as a clean week."""
    return pages_failed >= pages


def pages_read_none(pages: Iterable[PageRecord]) -> bool:
    """`read_no_page` of a run's page records."""
    records = list(pages)
    return read_no_page(len(records), sum(p.status == "error" for p in records))


@dataclass(frozen=True, slots=True)
class SiteCut:
    """A `[[sites]]` crawl of a run cut short by its `max_pages`: pages were
    found that were not audited (at least `not_audited`: their own links
    were never read). Kept with the run so that its report says it, not
    only a log line: a site larger than its limits is never audited in part
    silently. `site` names the entry (its name, else its host), `start` is
    its start (or sitemap) URL, `config` the file its max_pages is set in."""

    site: str
    start: str
    max_pages: int
    not_audited: int
    config: str = ""
    max_depth: int = 0
    too_deep: int = 0
    """Pages linked from the crawl's deepest pages (at `max_depth`), not
    audited: found, never read. 0 when the depth limit left nothing out."""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A report waiting in (or sent from) the outbox table.

    `key` identifies the report and its audience (e.g. "run-7:all" or
    "run-7:owner:editor@example.org") so that one report is never queued or
    sent twice; `message` is the serialised RFC 5322 message.
    """

    id: int
    key: str
    run_id: int
    recipients: tuple[str, ...]
    message: bytes
    message_id: str
    created_at: dt.datetime
    attempts: int = 0
    next_attempt_at: dt.datetime | None = None
    last_error: str = ""
    sent_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One observation of a URL with its verdict, for `monitor history`."""

    run_id: int | None
    checked_at: dt.datetime
    status: LinkStatus
    reason: str
    http_status: int | None = None
    final_url: str | None = None
    redirects: tuple[Hop, ...] = ()
    elapsed_ms: int = 0
    bytes_read: int = 0
    title: str = ""
    error_kind: str = ""
    detail: str = ""
    suggested_url: str | None = None
    notice: str = ""
    """What the page said about the cited work ("retracted", "withdrawn"), see monitor.notices."""
    notice_detail: str = ""


@dataclass(frozen=True, slots=True)
class PageRead:
    """One read of a watched page by a run (fetched, or unchanged since: a
    304), and whether a given link was on it then."""

    run_id: int
    page_url: str
    at: dt.datetime
    present: bool
    excluded: bool = False
    """On it, but excluded there by the configuration (`checker.exclude`, a
    `[[sites]]` exclude_links): listed, no longer checked. Such a link read
    as cited and checked "now", though the report had it "no longer checked"."""


@dataclass(frozen=True, slots=True)
class Whereabouts:
    """Where a link stood on the watched pages, run by run, for `monitor
    history`: its checks alone told the story of a link taken off the page
    as if it were still there ("now: moved", "on ... line 118"), and a link
    removed then restored as two checks with nothing in between.

    `reads` are the reads of every page that listed the link in a kept run,
    oldest first; `last_cited` its occurrences in the latest read of each
    page that listed it (whether a later read still does is in `reads`);
    `runs` the runs of `reads`; `dropped` the pages the latest finished full
    run did not audit at all (taken out of the configuration): their reads
    are old news; `names` each page's name (or title) as last read."""

    reads: tuple[PageRead, ...] = ()
    last_cited: tuple[Citation, ...] = ()
    runs: tuple[RunInfo, ...] = ()
    dropped: frozenset[str] = frozenset()
    names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Acceptance:
    """A person's word that a link the monitor cannot judge is fine: "opened
    it on 27 Nov, the article is there" (`monitor accept`).

    A bot wall answers the same whether the article is behind it or not, so
    only a person can clear such a row; without this it came back every
    week. It holds while the link answers as it did when accepted (`status`;
    for a guessed verdict also `reason`, `final_url` and `title`), until
    `until`, unless undone; `changed_at` is the first check since with
    another answer (a failure to answer, `error`, is no answer and does not
    count), after which it never holds again (`monitor.accept.in_force`).
    """

    id: int
    url: str
    status: LinkStatus
    reason: str
    accepted_at: dt.datetime
    until: dt.datetime
    by: str = ""
    note: str = ""
    run_id: int | None = None
    """The run whose answer the person judged (the latest one then)."""
    undone_at: dt.datetime | None = None
    changed_at: dt.datetime | None = None
    changed_status: str = ""
    changed_reason: str = ""
    final_url: str | None = None
    """For a verdict the monitor guessed from a page that answered 200 (a
    soft 404...: `monitor.accept.GUESSED`), the address the answer ended at
    and its title when accepted: the same reason over another page is
    another answer. None: only `status` is compared (a bot wall's title and
    address say nothing of the article behind it)."""
    title: str | None = None
    changed_final_url: str = ""
    changed_title: str = ""


@dataclass(frozen=True, slots=True)
class FailTally:
    """How often a link that keeps switching between working and failing
    (`UrlState.flapping`) failed, over the checks the database still keeps:
    what its row says instead of "first seen" and "failed once so far" each
    time it fails again after a good week (walkthrough 11 #1)."""

    checks: int
    """Checks of the URL kept (skipped ones left out), up to the report's time."""
    failed: int
    """Of those, the checks that failed (expired, error, blocked)."""
    since: dt.datetime | None = None
    """The first of those checks."""
    last_ok_at: dt.datetime | None = None
    """The latest check that did not fail, None if none did."""
