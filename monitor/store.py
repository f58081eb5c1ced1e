"""The history database: the one place that knows SQL.

Everything the monitor remembers between runs lives in one SQLite file:
runs, the pages fetched, every link occurrence, every check (observation),
the per-URL state that confirms failures over several runs, the outbox of
reports, a cross-process lock and a small key/value table. `docs/schema.md`
documents the tables; this module returns our own types, never rows.

Why the details are the way they are:

- `Store` is synchronous and owns one `sqlite3` connection, which may only be
  used by the thread that opened it. The async crawler talks to it through
  `StoreWriter`, which keeps the store in one dedicated thread and commits
  observations in batches (one commit per row would cap us at ~3k rows/s).
- Writes open their transaction with `BEGIN IMMEDIATE`: in WAL mode a
  deferred transaction that reads then writes can fail with SQLITE_BUSY
  without waiting, whereas an immediate one waits for `busy_timeout`.
- Datetimes are stored as fixed-width ISO 8601 UTC text
  (`2026-11-23T06:00:00.000000+00:00`) so that text order is time order and
  the file stays readable with the sqlite3 shell. Naive datetimes are taken
  as UTC.
- Schema changes are named functions in `MIGRATIONS` (sqlite-utils), recorded
  in the `_sqlite_migrations` table; they run under one write lock so that
  two processes opening a new file at once do not both migrate it.
- `sqlite3.OperationalError` (locked, disk full, unreadable) and "not a
  database" errors become `StoreError` with one line naming the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import re
import socket
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from itertools import groupby
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from sqlite_utils import Database, Migrations

from monitor.errors import StoreError
from monitor.notices import entry_says_so
from monitor.types import (
    Acceptance,
    Citation,
    EntryContext,
    FailTally,
    HistoryEntry,
    Hop,
    LinkKind,
    LinkResult,
    LinkStatus,
    Observation,
    OutboxMessage,
    PageRead,
    PageRecord,
    RunInfo,
    SiteCut,
    URL_KEPT_MAX,
    UrlState,
    Verdict,
    Whereabouts,
)

__all__ = [
    "MIGRATIONS",
    "Store",
    "StoreWriter",
    "lock_owner",
]

log = logging.getLogger(__name__)

UTC = dt.timezone.utc
BUSY_TIMEOUT_S = 10.0
"""How long a writer waits for another process's write lock before failing."""
IN_CHUNK = 500
MMAP_BYTES = 256 * 1024 * 1024
CACHE_KIB = 32 * 1024
"""Parameters per `IN (...)` query; far below SQLite's limit, large enough to be fast."""
UNFINISHED = ("running", "interrupted")
FAILING = tuple(s.value for s in LinkStatus if s.is_failing)
RUN_SCOPE = "run_scope"
"""Meta key: "<run id> <digest>", the `config.audit_scope` the latest full
run started with; an interrupted run is resumed only under the same one."""
RUN_DRIVER = "run_driver"
"""Meta key: "<run id> <lock owner>", the process that started or resumed
the latest run (`lock_owner`, as its audit lock names it). The audit lock is
also held by `monitor serve`'s rechecks and `check --page`: a live lock
tells that run is running now only when its holder is this process."""
_READ_STATUSES = ("ok", "not_modified")
"""A page row whose links are the page's then: fetched, or unchanged since (304)."""
NOT_CHECKED = "not_checked"
"""Reason given to a link of a run that has no observation yet (an interrupted run)."""

F = TypeVar("F", bound=Callable[..., Any])
_T = TypeVar("_T")
ObservationItem = tuple[Observation, Verdict, UrlState]


# --------------------------------------------------------------------------
# Schema and migrations

MIGRATIONS = Migrations("monitor")

_SCHEMA_V1 = (
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL DEFAULT 'running',
        reported_at TEXT,
        links INTEGER NOT NULL DEFAULT 0,
        urls INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE pages (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        status TEXT NOT NULL,
        http_status INTEGER,
        title TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        links INTEGER NOT NULL DEFAULT 0,
        entries TEXT NOT NULL DEFAULT '[]',
        name TEXT NOT NULL DEFAULT '',
        owner TEXT NOT NULL DEFAULT '',
        etag TEXT NOT NULL DEFAULT '',
        last_modified TEXT NOT NULL DEFAULT '',
        fetched_at TEXT NOT NULL,
        PRIMARY KEY (run_id, url)
    )""",
    "CREATE INDEX pages_url_fetched_at ON pages(url, fetched_at)",
    """CREATE TABLE occurrences (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        page_url TEXT NOT NULL,
        url TEXT,
        raw_href TEXT NOT NULL,
        anchor_text TEXT NOT NULL DEFAULT '',
        section TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL,
        element TEXT NOT NULL DEFAULT 'a',
        attribute TEXT NOT NULL DEFAULT 'href',
        line INTEGER,
        entry_title TEXT,
        entry_summary TEXT,
        entry_source TEXT,
        entry_date TEXT,
        expired_mark INTEGER,
        skip_reason TEXT
    )""",
    "CREATE INDEX occurrences_run_page ON occurrences(run_id, page_url)",
    "CREATE INDEX occurrences_url ON occurrences(url)",
    """CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        checked_at TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '',
        suggested_url TEXT,
        http_status INTEGER,
        final_url TEXT,
        redirects TEXT NOT NULL DEFAULT '[]',
        error_kind TEXT,
        error_detail TEXT NOT NULL DEFAULT '',
        elapsed_ms INTEGER NOT NULL DEFAULT 0,
        bytes_read INTEGER NOT NULL DEFAULT 0,
        content_type TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        meta_title TEXT NOT NULL DEFAULT '',
        content_hash TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 1,
        method TEXT NOT NULL DEFAULT 'GET',
        strikes INTEGER NOT NULL DEFAULT 0,
        failing_since TEXT
    )""",
    "CREATE INDEX observations_url_checked_at ON observations(url, checked_at)",
    "CREATE INDEX observations_run_url ON observations(run_id, url, checked_at)",
    """CREATE TABLE url_state (
        url TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        strikes INTEGER NOT NULL DEFAULT 0,
        failing_since TEXT,
        last_ok_at TEXT,
        last_checked_at TEXT,
        first_seen_at TEXT,
        flapping INTEGER NOT NULL DEFAULT 0,
        recent TEXT NOT NULL DEFAULT '[]',
        last_ok_title TEXT NOT NULL DEFAULT '',
        archived_url TEXT
    ) WITHOUT ROWID""",
    "CREATE INDEX url_state_status ON url_state(status)",
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        recipients TEXT NOT NULL,
        message BLOB NOT NULL,
        message_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT NOT NULL DEFAULT '',
        sent_at TEXT
    )""",
    "CREATE INDEX outbox_due ON outbox(sent_at, next_attempt_at)",
    "CREATE INDEX outbox_run ON outbox(run_id)",
    """CREATE TABLE locks (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        acquired_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
)


FAIL_TALLY_SQL = """SELECT url, count(*), sum(status IN ('expired', 'error', 'blocked')), min(checked_at),
    max(CASE WHEN status NOT IN ('expired', 'error', 'blocked') THEN checked_at END)
    FROM observations WHERE url IN ({urls}) AND status != 'skipped'
      AND (?2 IS NULL OR checked_at <= ?2) GROUP BY url"""
"""Per URL: checks kept (not skipped), failed ones, the first, the latest that did not fail."""


_STREAK_START = """SELECT min(checked_at) FROM observations
    WHERE url = {url} AND checked_at <= {until} AND checked_at > coalesce((
        SELECT max(checked_at) FROM observations
        WHERE url = {url} AND checked_at <= {until} AND status != {status}), '')"""
"""The first observation of a URL's latest run of one status (up to a time)."""


@MIGRATIONS()
def m001_initial(db: Database) -> None:
    """Every table of the first release (docs/schema.md)."""
    for statement in _SCHEMA_V1:
        db.execute(statement)


@MIGRATIONS()
def m002_partial_runs(db: Database) -> None:
    """`runs.partial`: 1 for a `monitor check --page` of some pages. Such a run
    is no weekly audit: not the baseline of the next report, not resumed,
    not what /healthz and /metrics call the last run."""
    db.execute("ALTER TABLE runs ADD COLUMN partial INTEGER NOT NULL DEFAULT 0")


@MIGRATIONS()
def m003_observation_notices(db: Database) -> None:
    """`observations.notice` and `notice_detail`: what the checked page says
    about the cited work beside the status ("retracted", monitor/notices.py).
    On the observation, like `detail`: one check of one URL saw it, and an
    old run's report keeps saying what that run saw. Older rows get ""."""
    db.execute("ALTER TABLE observations ADD COLUMN notice TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE observations ADD COLUMN notice_detail TEXT NOT NULL DEFAULT ''")


@MIGRATIONS()
def m004_shared_page_links(db: Database) -> None:
    """`pages.links_run`: the run whose occurrences are the page's links.

    A page answering 304 is unchanged since the run that last read it: its
    row points at that run's occurrences instead of copying them (100,000
    links copied every week were ~60 MB a week, a year of history 3 GB of
    copies). Every reader goes through the page row (RUN_LINKS_SQL). A row
    inserted without it (older code, the benchmark's generator) means its
    own run: the trigger fills it in, as a default naming another column
    cannot."""
    db.execute("ALTER TABLE pages ADD COLUMN links_run INTEGER")
    db.execute("UPDATE pages SET links_run = run_id")
    db.execute("CREATE INDEX pages_links_run ON pages(links_run, url)")
    db.execute("""CREATE TRIGGER pages_links_run_default AFTER INSERT ON pages
        WHEN NEW.links_run IS NULL
        BEGIN UPDATE pages SET links_run = NEW.run_id WHERE rowid = NEW.rowid; END""")


@MIGRATIONS()
def m005_url_status_since(db: Database) -> None:
    """`url_state.status_since`: when the URL's current status began. A
    moved or drifted link never fails, so nothing dated it, and reading
    each one's history at every report cost a second at 100,000 links.
    Filled from the history for the moved and drifted ones (failures have
    `failing_since`); the others get it at their next change of status."""
    db.execute("ALTER TABLE url_state ADD COLUMN status_since TEXT")
    db.execute(f"""UPDATE url_state SET status_since = ({_STREAK_START.format(url="url_state.url",
                                                                           status="url_state.status",
                                                                           until="'9999'")})
                   WHERE status IN ('moved', 'drifted')""")


@MIGRATIONS()
def m006_page_moved_to(db: Database) -> None:
    """`pages.moved_to`: where a watched page's configured address now
    redirects permanently (NULL: it does not), to tell the webmaster to
    update the [[pages]] url before the old address stops redirecting.
    Older rows get NULL: their fetches did not keep the redirects."""
    db.execute("ALTER TABLE pages ADD COLUMN moved_to TEXT")


DATABASE_ID_KEY = "database_id"
"""Meta key: a random id of this database, written into every saved report
(and the index of reports) so that a folder of reports is never overwritten
by another database's: two configurations sharing one `report.dir` replaced
each other's reports and index without a word."""


@MIGRATIONS()
def m007_database_id(db: Database) -> None:
    """`meta.database_id`: made once, with the database or at the first open
    of an older one (a copy of the file keeps it: it is the same history)."""
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (DATABASE_ID_KEY, uuid.uuid4().hex))


@MIGRATIONS()
def m008_site_cuts(db: Database) -> None:
    """`site_cuts`: the [[sites]] crawls of a run that `max_pages` cut short,
    with how many pages found were not audited, for the run's report (it
    was only a log line). Older runs have none: their reports say nothing
    of it, as they did."""
    db.execute("""CREATE TABLE site_cuts (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        site TEXT NOT NULL,
        start TEXT NOT NULL,
        max_pages INTEGER NOT NULL,
        not_audited INTEGER NOT NULL,
        config TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, start)
    )""")


@MIGRATIONS()
def m009_site_cuts_depth(db: Database) -> None:
    """`site_cuts.max_depth`, `.too_deep`: a crawl whose `max_depth` left
    pages out is kept with its run as one cut by `max_pages` is (it was a
    WARNING log line only). Earlier rows read 0: nothing said, as before."""
    db.execute("ALTER TABLE site_cuts ADD COLUMN max_depth INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE site_cuts ADD COLUMN too_deep INTEGER NOT NULL DEFAULT 0")


@MIGRATIONS()
def m010_occurrence_fragments(db: Database) -> None:
    """`occurrences.fragment`, `.fragment_nth`: the text directive that
    scrolls to the link when its first words stand earlier on its page
    ("see-,Symptoms"), or which match of them it is (`Citation.fragment`).
    NULL for the other links (nearly all), and for older rows: their report
    links the page with the words alone, as it did."""
    db.execute("ALTER TABLE occurrences ADD COLUMN fragment TEXT")
    db.execute("ALTER TABLE occurrences ADD COLUMN fragment_nth INTEGER")


@MIGRATIONS()
def m011_acceptances(db: Database) -> None:
    """`acceptances`: links a person opened and found fine (`monitor
    accept`), with who, when, their note and the answer they judged
    (monitor/accept.py). Rows are kept when undone or lapsed: `monitor
    history` tells them, and a report rendered again says what held then.
    No key to `runs`: pruning old runs keeps a person's word."""
    db.execute("""CREATE TABLE acceptances (
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        accepted_at TEXT NOT NULL,
        until TEXT NOT NULL,
        by TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '',
        run_id INTEGER,
        undone_at TEXT
    )""")
    db.execute("CREATE INDEX acceptances_url ON acceptances(url, accepted_at)")


@MIGRATIONS()
def m012_url_state_counts(db: Database) -> None:
    """How often each URL was checked and failed (`UrlState.checks`,
    `failures`, since `counted_since`), kept with its state: what the row of
    a link that fails now and then says, without reading its observations.
    Not filled from the history kept (a full pass over a year's
    observations); until the counters hold more than `recent`'s checks, a
    row says those (`UrlState.fail_tally`)."""
    db.execute("ALTER TABLE url_state ADD COLUMN checks INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE url_state ADD COLUMN failures INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE url_state ADD COLUMN counted_since TEXT")


@MIGRATIONS()
def m013_acceptance_answer(db: Database) -> None:
    """`acceptances.final_url` and `title`: the answer a person judged, for a
    verdict the monitor guessed from a page answering 200 (a soft 404, a
    redirect to the home page...: `monitor.accept.GUESSED`). Another title
    or address ends the acceptance (`Acceptance.final_url`). NULL in the
    rows before, and for a bot wall or a drifted page: their status alone
    is compared, as before."""
    db.execute("ALTER TABLE acceptances ADD COLUMN final_url TEXT")
    db.execute("ALTER TABLE acceptances ADD COLUMN title TEXT")


@MIGRATIONS()
def m014_archived_oldest(db: Database) -> None:
    """`url_state.archived_oldest`: 1 when the archived copy is the oldest
    the archive holds, asked for a link with no date (no dated source line,
    never seen working), whose row tells the editor to check it first.

    Such links used to be asked with no date, and the archive answers that
    with its newest copy: often the error page or the parked domain that
    made the link fail, kept and offered every week. Those copies are
    forgotten here, so that the next run asks again, once, the new way:
    the copies of URLs never seen working (`last_ok_at` NULL; a dated one
    among them costs one lookup that gives the same answer). A copy asked
    with the day the link last worked is kept."""
    db.execute("ALTER TABLE url_state ADD COLUMN archived_oldest INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE url_state SET archived_url = NULL WHERE archived_url IS NOT NULL AND last_ok_at IS NULL")


@MIGRATIONS()
def m015_occurrence_source_href(db: Database) -> None:
    """`occurrences.source_href`: the href as the page's source writes it
    when the parser's value differs ("&amp;" for "&": `Citation.source_href`),
    so the report's "written as" is what an editor finds in the source
    (review 15 #6). NULL for the other links (nearly all), and for older
    rows: their report shows the parser's value, as it did."""
    db.execute("ALTER TABLE occurrences ADD COLUMN source_href TEXT")


# --------------------------------------------------------------------------
# SQL shared with tests (EXPLAIN QUERY PLAN) and the benchmark

HISTORY_SQL = """
SELECT run_id, checked_at, status, reason, http_status,
       CASE final_url WHEN '' THEN url ELSE final_url END AS final_url, redirects,
       elapsed_ms, bytes_read, title, error_kind, detail, suggested_url, notice, notice_detail
FROM observations
WHERE url = ?
ORDER BY checked_at DESC, id DESC
"""

# One row per occurrence of the run. A page's links are the occurrences its
# row points at (`pages.links_run`): its own run's, or, for a page that
# answered 304, the run that last read it (not copied every week). The
# correlated subquery finds the URL's latest observation in *this* run
# through observations_run_url (a covering index search, no sort); url_state
# adds the current flapping flag and the archived copy. Order follows the
# pages' primary key, then occurrences_run_page: no temporary b-tree.
# `http_status` is the answer that decided the status: for a permanent
# redirect, the redirect's own code (301/308, as in the contract's example),
# not the 200 at the end of the chain (that is `final_url`'s answer).
# The entry's summary comes only with a notice (a retracted or withdrawn
# article, a few per site): whether the entry already says so is read from
# it, and the other 99.9 % of rows get a NULL, not their summary's text.
RUN_LINKS_SQL = """
SELECT o.page_url, o.url, o.raw_href, o.anchor_text, o.section, o.kind,
       o.skip_reason, o.entry_title, o.entry_source, o.entry_date, o.expired_mark,
       ob.status, ob.reason, ob.detail,
       CASE WHEN ob.reason = 'permanent_redirect'
            THEN coalesce(json_extract(ob.redirects, '$[0].status'), ob.http_status)
            ELSE ob.http_status END,
       ob.final_url,
       ob.suggested_url, ob.strikes, ob.failing_since, ob.checked_at,
       s.flapping, s.archived_url, s.archived_oldest, ob.notice, ob.notice_detail,
       CASE WHEN ob.notice != '' THEN o.entry_summary END,
       o.line, o.element, o.attribute, o.fragment, o.fragment_nth, o.source_href
FROM pages AS p
JOIN occurrences AS o ON o.run_id = p.links_run AND o.page_url = p.url
LEFT JOIN observations AS ob ON ob.id = (
    SELECT x.id FROM observations AS x
    WHERE x.run_id = p.run_id AND x.url = o.url
    ORDER BY x.checked_at DESC, x.id DESC
    LIMIT 1
)
LEFT JOIN url_state AS s ON s.url = o.url
WHERE p.run_id = ?
ORDER BY p.url, o.id
"""

# A whole run's links, their URL states' marks (flapping, archived copy)
# left NULL: `Store.run_links` fills them in from one scan of the few marked
# URLs (`URL_MARKS_SQL`). The join searched url_state's primary key once per
# link, 0.5 s of a 4.7 s report at 100,000 links, to find 2 % marked. The
# one-page queries below keep the join: a scan per page would cost more.
RUN_LINKS_UNMARKED_SQL = RUN_LINKS_SQL.replace(
    "       s.flapping, s.archived_url, s.archived_oldest, ob.notice", "       NULL, NULL, NULL, ob.notice").replace(
    "LEFT JOIN url_state AS s ON s.url = o.url\n", "")
assert "url_state" not in RUN_LINKS_UNMARKED_SQL

URL_MARKS_SQL = ("SELECT url, flapping, archived_url, archived_oldest FROM url_state "
                 "WHERE flapping OR archived_url IS NOT NULL")

# Where a run's occurrences are: (page, the run holding its links), the
# same resolution as RUN_LINKS_SQL's for whatever else reads a run's links.
_RUN_OCCURRENCES = """
FROM pages AS p
JOIN occurrences AS o ON o.run_id = p.links_run AND o.page_url = p.url
WHERE p.run_id = ?"""

# The run's links that ask something of someone (status neither ok nor
# skipped, as `_link_result` decides it): all a report needs of the previous
# report's run. Same plan as RUN_LINKS_SQL; the rows it drops (nine in ten)
# never become Python objects: 0.35 s instead of 1.6 s at 100,000 links.
RUN_FLAGGED_LINKS_SQL = RUN_LINKS_SQL.replace(
    "WHERE p.run_id = ?",
    "WHERE p.run_id = ?\n"
    "  AND (ob.status NOT IN ('ok', 'skipped')\n"
    "       OR (ob.status IS NULL AND o.skip_reason = 'invalid_url'))",
)

# The same for some URLs of the run (a JSON array; a malformed link's is its
# href, as `_link_result` gives it): the run's occurrences are searched as
# RUN_FLAGGED_LINKS_SQL's, only the rows of those URLs joined further.
RUN_URLS_FLAGGED_LINKS_SQL = RUN_FLAGGED_LINKS_SQL.replace(
    "WHERE p.run_id = ?\n", "WHERE p.run_id = ? AND coalesce(o.url, o.raw_href) IN (SELECT value FROM json_each(?))\n")

# The same for one page of the run: a page the previous report could not
# fetch is compared with the last report that read it.
RUN_PAGE_FLAGGED_LINKS_SQL = RUN_FLAGGED_LINKS_SQL.replace(
    "WHERE p.run_id = ?\n", "WHERE p.run_id = ? AND p.url = ?\n")

# A page's citations in one run, every status: the content notes of a page
# that could not be fetched are those of the last report that read it.
RUN_PAGE_CITATIONS_SQL = RUN_LINKS_SQL.replace(
    "WHERE p.run_id = ?", "WHERE p.run_id = ? AND p.url = ? AND o.kind = 'citation'")

# The runs `Store.prune` may delete (older than the cutoff given): not the
# latest, not the latest full one, not the latest reported full one, none
# with a report still in the outbox (one the mail server refused for good
# is not waiting: `mark_refused`).
_PRUNABLE = """started_at < ?
    AND id < (SELECT max(id) FROM runs)
    AND id IS NOT (SELECT max(id) FROM runs WHERE NOT partial)
    AND id IS NOT (SELECT max(id) FROM runs WHERE reported_at IS NOT NULL AND NOT partial)
    AND id NOT IN (SELECT run_id FROM outbox WHERE sent_at IS NULL AND next_attempt_at IS NOT NULL)"""

_OCCURRENCE_COLUMNS = (
    "run_id, page_url, url, raw_href, anchor_text, section, kind, element, attribute, "
    "line, entry_title, entry_summary, entry_source, entry_date, expired_mark, skip_reason, "
    "fragment, fragment_nth, source_href"
)
_OCCURRENCE_SELECT = ", ".join(f"o.{column}" for column in _OCCURRENCE_COLUMNS.split(", "))

_INSERT_OBSERVATION = """
INSERT INTO observations (
    run_id, url, checked_at, status, reason, detail, suggested_url, http_status,
    final_url, redirects, error_kind, error_detail, elapsed_ms, bytes_read,
    content_type, title, meta_title, content_hash, attempts, method, strikes,
    failing_since, notice, notice_detail
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

# first_seen_at never moves once known; archived_url is set on its own.
_UPSERT_URL_STATE = """
INSERT INTO url_state (
    url, status, reason, strikes, failing_since, last_ok_at, last_checked_at,
    first_seen_at, flapping, recent, last_ok_title, status_since, checks, failures, counted_since
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(url) DO UPDATE SET
    status = excluded.status,
    reason = excluded.reason,
    strikes = excluded.strikes,
    failing_since = excluded.failing_since,
    last_ok_at = excluded.last_ok_at,
    last_checked_at = excluded.last_checked_at,
    first_seen_at = COALESCE(url_state.first_seen_at, excluded.first_seen_at),
    flapping = excluded.flapping,
    recent = excluded.recent,
    last_ok_title = excluded.last_ok_title,
    status_since = excluded.status_since,
    checks = excluded.checks,
    failures = excluded.failures,
    counted_since = excluded.counted_since
"""

_URL_STATE_COLUMNS = (
    "url, status, reason, strikes, failing_since, last_ok_at, last_checked_at, "
    "first_seen_at, flapping, recent, last_ok_title, status_since, checks, failures, counted_since"
)
_OUTBOX_COLUMNS = (
    "id, key, run_id, recipients, message, message_id, created_at, attempts, "
    "next_attempt_at, last_error, sent_at"
)
_PAGE_COLUMNS = (
    "run_id, url, status, http_status, title, error, links, entries, name, owner, "
    "etag, last_modified, links_run, moved_to"
)
# A page's row as `_page` reads it. `entries` is '' on a row whose page
# answered 304 and whose links are another run's: the titles are that run's
# (`record_page`), not a copy (10 MiB a week at 100,000 links).
_PAGE_SELECT = ", ".join(
    "CASE p.entries WHEN '' THEN coalesce((SELECT l.entries FROM pages AS l "
    "WHERE l.run_id = p.links_run AND l.url = p.url), '[]') ELSE p.entries END AS entries"
    if column == "entries" else f"p.{column}"
    for column in _PAGE_COLUMNS.split(", ")
) + " FROM pages AS p"
_RUN_COLUMNS = "id, started_at, finished_at, status, reported_at, links, urls, partial"


# --------------------------------------------------------------------------
# Conversions between our types and column values


def _ts(value: dt.datetime | None) -> str | None:
    """Fixed-width UTC text, so that comparing text compares instants."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _date(text: str | None) -> dt.date | None:
    return None if not text else dt.date.fromisoformat(text)


@functools.lru_cache(maxsize=4096)
def _entry_date(text: str | None) -> dt.date | None:
    """`_date` for citation dates, one object per date: a site cites a few
    thousand dates, a report reads them 100,000 times."""
    return _date(text)


HOP_URL_MAX = URL_KEPT_MAX
"""A stored hop's URL and Location are clipped to this (no editor pastes a
longer link): a cited server can send 30 KB Locations, 20 hops deep."""
HOPS_KEPT = 5
"""A longer chain keeps its first hops and its last, and how many it left out."""


def _hops_json(hops: Sequence[Hop]) -> str:
    """The chain as stored, bounded: was kept whole, 1.1 MB for one link of
    19 hops of 30 KB Locations, each week, for keep_weeks (robust9, finding 4).
    The first hop (whose status says permanent or not) and the last (where it
    led) are always kept; the hops left out are one `{"omitted": N}` entry."""
    if not hops:
        return "[]"
    rows: list[dict[str, Any]] = [_hop_row(h) for h in hops[:HOPS_KEPT]]
    if len(hops) > HOPS_KEPT + 1:
        rows.append({"omitted": len(hops) - HOPS_KEPT - 1})
    rows.extend(_hop_row(h) for h in hops[HOPS_KEPT:][-1:])
    return json.dumps(rows)


def _hop_row(hop: Hop) -> dict[str, Any]:
    return {"url": _clipped_url(hop.url), "status": hop.status, "location": _clipped_url(hop.location)}


def _clipped_url(url: str) -> str:
    return url if len(url) <= HOP_URL_MAX else url[:HOP_URL_MAX] + "\u2026"


def _hops(text: str | None) -> tuple[Hop, ...]:
    """The stored chain; hops left out (`_hops_json`) read as one Hop of
    status 0, no url, and a location saying how many."""
    return tuple(Hop("", 0, f"{h['omitted']} more redirects, not kept") if "omitted" in h
                 else Hop(h["url"], int(h["status"]), h["location"]) for h in json.loads(text or "[]"))


def _run(row: sqlite3.Row | None) -> RunInfo | None:
    if row is None:
        return None
    return RunInfo(
        id=row["id"],
        started_at=_dt(row["started_at"]),  # type: ignore[arg-type]
        finished_at=_dt(row["finished_at"]),
        status=row["status"],
        reported_at=_dt(row["reported_at"]),
        links=row["links"],
        urls=row["urls"],
        partial=bool(row["partial"]),
    )


def _page(row: sqlite3.Row) -> PageRecord:
    return PageRecord(
        run_id=row["run_id"],
        url=row["url"],
        status=row["status"],
        http_status=row["http_status"],
        title=row["title"],
        error=row["error"],
        links=row["links"],
        entries=tuple(json.loads(row["entries"])),
        name=row["name"],
        owner=row["owner"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        links_run=None if row["links_run"] in (None, row["run_id"]) else row["links_run"],
        moved_to=row["moved_to"],
    )


def _occurrence_values(run_id: int, page_url: str, c: Citation) -> tuple[Any, ...]:
    """Entry columns stay NULL when the citation has no context, so None round-trips."""
    ctx = c.context
    entry: tuple[Any, ...] = (None,) * 5
    if ctx is not None:
        entry = (
            ctx.title,
            ctx.summary,
            ctx.source,
            ctx.date.isoformat() if ctx.date else None,
            int(ctx.expired_mark),
        )
    return (
        run_id, page_url, c.url, c.raw_href, c.anchor_text, c.section, c.kind.value,
        c.element, c.attribute, c.line, *entry, c.skip_reason,
        c.fragment or None, c.fragment_nth or None, c.source_href or None,
    )


def _citation(row: sqlite3.Row) -> Citation:
    context = None
    if row["expired_mark"] is not None:
        context = EntryContext(
            title=row["entry_title"] or "",
            summary=row["entry_summary"] or "",
            source=row["entry_source"] or "",
            date=_date(row["entry_date"]),
            expired_mark=bool(row["expired_mark"]),
        )
    return Citation(
        page_url=row["page_url"],
        url=row["url"],
        raw_href=row["raw_href"],
        anchor_text=row["anchor_text"],
        section=row["section"],
        kind=LinkKind(row["kind"]),
        element=row["element"],
        attribute=row["attribute"],
        line=row["line"],
        context=context,
        skip_reason=row["skip_reason"],
        fragment=row["fragment"] or "",
        fragment_nth=row["fragment_nth"] or 0,
        source_href=row["source_href"] or "",
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(text: str | None) -> str | None:
    """Text from a server as SQLite takes it.

    aiohttp decodes header bytes that are not UTF-8 as lone surrogates, which
    SQLite refuses: one such byte in any cited server's answer failed the
    writer's whole batch, and the audit, every week. They become U+FFFD.
    """
    if text is None or text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def _observation_values(
    run_id: int | None, obs: Observation, verdict: Verdict, state: UrlState
) -> tuple[Any, ...]:
    return (
        run_id, obs.url, _ts(obs.checked_at), verdict.status.value, verdict.reason,
        _storable(verdict.detail), _storable(verdict.suggested_url), obs.http_status,
        _stored_final_url(obs), _hops_json(obs.redirects),
        obs.error_kind.value if obs.error_kind else None, _storable(obs.error_detail),
        obs.elapsed_ms, obs.bytes_read, _storable(obs.content_type), _storable(obs.title),
        _stored_meta_title(obs), obs.content_hash, obs.attempts, obs.method, state.strikes,
        _ts(state.failing_since), verdict.notice, _storable(verdict.notice_detail),
    )


def _stored_final_url(obs: Observation) -> str | None:
    """'' for "the URL itself" (nine answers in ten come without a redirect):
    a second copy of the URL in every row was 8 MiB a week at 100,000
    links. Readers give the URL back (`HISTORY_SQL`, `_link_result`). A
    final address longer than `HOP_URL_MAX` is clipped with an ellipsis."""
    final = _storable(obs.final_url)
    # Clipped as a hop is: a 30 KB Location made each row of a redirected
    # link hold it, every week (the chain itself is clipped the same).
    return "" if final == obs.url else final if final is None else _clipped_url(final)


def _stored_meta_title(obs: Observation) -> str:
    """'' when the scholarly title is the <title> (most journals and PubMed
    repeat it): 14 MiB a week at 100,000 links. Nothing reads it back; it is
    the evidence of what the answer held, and "" then means "no other title"."""
    meta = _storable(obs.meta_title) or ""
    return "" if meta == _storable(obs.title) else meta


def _url_state_values(s: UrlState) -> tuple[Any, ...]:
    return (
        s.url, s.status.value, s.reason, s.strikes, _ts(s.failing_since), _ts(s.last_ok_at),
        _ts(s.last_checked_at), _ts(s.first_seen_at), int(s.flapping), json.dumps(list(s.recent)),
        _storable(s.last_ok_title), _ts(s.status_since), s.checks, s.failures, _ts(s.counted_since),
    )


def _url_state(row: sqlite3.Row) -> UrlState:
    return UrlState(
        url=row["url"],
        status=LinkStatus(row["status"]),
        reason=row["reason"],
        strikes=row["strikes"],
        failing_since=_dt(row["failing_since"]),
        last_ok_at=_dt(row["last_ok_at"]),
        last_checked_at=_dt(row["last_checked_at"]),
        first_seen_at=_dt(row["first_seen_at"]),
        flapping=bool(row["flapping"]),
        recent=tuple(json.loads(row["recent"])),
        last_ok_title=row["last_ok_title"],
        status_since=_dt(row["status_since"]),
        checks=row["checks"],
        failures=row["failures"],
        counted_since=_dt(row["counted_since"]),
    )


def _history_entry(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        run_id=row["run_id"],
        checked_at=_dt(row["checked_at"]),  # type: ignore[arg-type]
        status=LinkStatus(row["status"]),
        reason=row["reason"],
        http_status=row["http_status"],
        final_url=row["final_url"],
        redirects=_hops(row["redirects"]),
        elapsed_ms=row["elapsed_ms"],
        bytes_read=row["bytes_read"],
        title=row["title"],
        error_kind=row["error_kind"] or "",
        detail=row["detail"],
        suggested_url=row["suggested_url"],
        notice=row["notice"],
        notice_detail=row["notice_detail"],
    )


_intern = sys.intern
_STATUS = {s.value: s for s in LinkStatus}
_KIND = {k.value: k for k in LinkKind}
_LINES: dict[int, int] = {}
"""One int object per line number (a page has a few thousand lines): past
256, SQLite gives every row a new 32-byte int. Only lines under
`_SHARED_LINES` are shared, so the long-running service's cache stays
under ~5 MB whatever pages it reads."""
_SHARED_LINES = 65_536


def _slot_setting_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A constructor of the frozen, slotted dataclass `cls` taking its fields
    (by name or in order), that sets each slot through its descriptor.

    The same object as `cls(...)`: a frozen dataclass's own `__init__` sets
    each field with `object.__setattr__(self, name, value)`, the generic
    path, which made `LinkResult`'s 27 fields half the cost of `_link_result`
    (100,000 times per report: 0.2 s of `run_links`' 0.6 s under load). For
    classes with nothing more to their `__init__` (no `__post_init__`, no
    default computed at construction); a field added to `LinkResult` is a
    parameter here too.
    """
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    if (hasattr(cls, "__post_init__") or not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
            or "__slots__" not in cls.__dict__ or any(not f.init for f in fields.values())):
        raise TypeError(f"{cls.__name__}: not a plain frozen, slotted dataclass")
    names = list(fields)
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names)
    exec(f"def new_{cls.__name__}({', '.join(names)}):\n    self = _new(_cls)\n{body}    return self\n",
         namespace)
    return namespace[f"new_{cls.__name__}"]  # type: ignore[no-any-return]


_new_link_result = _slot_setting_constructor(LinkResult)


_UNMARKED: tuple[int, None, int] = (0, None, 0)
"""A URL's marks when url_state has neither (most URLs): not flapping, no archived copy."""


def _link_result(row: tuple[Any, ...], marks: Mapping[str, tuple[int, str | None, int]] | None = None,
                 ) -> LinkResult:
    """An occurrence with its verdict; unverdicted links are listed as skipped.

    Takes a plain tuple in RUN_LINKS_SQL's column order: this runs 100,000
    times per report, and tuple unpacking is several times cheaper than
    sqlite3.Row lookups by name. SQLite gives every row new strings: the
    page, section, reason and detail (a few hundred values among 100,000
    links) are interned, and a link's final URL and anchor text share the
    object of its URL and entry title when they are equal, which they mostly
    are: 50 MB less at 100,000 links (`monitor report` peaked at 271 MiB).
    The href as written is kept only when it differs from the URL, and the
    element and attribute (a handful of tag and attribute names) are
    interned: four more slots, 3 MB at 100,000 links.
    With `marks` (URL -> its state's flapping and archived copy, for the
    URLs that have either), the row is RUN_LINKS_UNMARKED_SQL's and they
    come from there, as the join would give them.
    """
    (page_url, url, raw_href, anchor_text, section, kind, skip_reason, entry_title,
     entry_source, entry_date, expired_mark, status, reason, detail, http_status, final_url,
     suggested_url, strikes, failing_since, checked_at, flapping, archived_url, archived_oldest, notice,
     notice_detail, noticed_summary, line, element, attribute, fragment, fragment_nth,
     source_href) = row
    if marks is not None:
        flapping, archived_url, archived_oldest = marks.get(url, _UNMARKED)
    if status is None and skip_reason == "invalid_url":
        # Not checkable, but an editor must fix it: an error, not a skip.
        status, reason = LinkStatus.ERROR, "invalid_url"
        detail = detail or "The link's address is not a valid URL; it cannot be opened"
    elif status is None:
        status, reason = LinkStatus.SKIPPED, skip_reason or NOT_CHECKED
    else:
        status = _STATUS[status]
    url = url if url is not None else raw_href
    # "written as": the href as the source writes it ("&amp;"), unless the
    # URL shown is found as it is (spaces around it aside)
    href = source_href or raw_href
    entry_title = entry_title or ""
    if line is not None and line < _SHARED_LINES:
        line = _LINES.setdefault(line, line)
    return _new_link_result(
        page=_intern(page_url),
        url=url,
        text=entry_title if anchor_text == entry_title else anchor_text,
        section=_intern(section),
        kind=_KIND[kind],
        status=status,
        reason=_intern(reason),
        http_status=http_status,
        final_url=url if final_url == url or final_url == "" else final_url,
        suggested_url=suggested_url,
        strikes=strikes or 0,
        failing_since=_dt(failing_since),
        checked_at=_dt(checked_at),
        detail=_intern(detail) if detail else "",
        entry_title=entry_title,
        entry_source=entry_source or "",
        entry_date=_entry_date(entry_date),
        expired_mark=bool(expired_mark),
        flapping=bool(flapping),
        archived_url=archived_url,
        archived_oldest=bool(archived_oldest) and archived_url is not None,
        notice=_intern(notice) if notice else "",
        notice_detail=notice_detail or "",
        notice_marked=bool(notice) and entry_says_so(entry_title, noticed_summary or "",
                                                      entry_source or ""),
        line=line,
        written="" if href == url or href.strip() == url else href,
        element=_intern(element or ""),
        attribute=_intern(attribute or ""),
        fragment=fragment or "",
        fragment_nth=fragment_nth or 0,
    )


def _outbox(row: sqlite3.Row | None) -> OutboxMessage | None:
    if row is None:
        return None
    return OutboxMessage(
        id=row["id"],
        key=row["key"],
        run_id=row["run_id"],
        recipients=tuple(json.loads(row["recipients"])),
        message=bytes(row["message"]),
        message_id=row["message_id"],
        created_at=_dt(row["created_at"]),  # type: ignore[arg-type]
        attempts=row["attempts"],
        next_attempt_at=_dt(row["next_attempt_at"]),
        last_error=row["last_error"],
        sent_at=_dt(row["sent_at"]),
    )


def _chunks(items: Sequence[str], size: int = IN_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------
# Locks and outbox helpers (pure)


_INIT_PID_NAMESPACE = "4026531836"
"""The kernel's first pid namespace (PROC_PID_INIT_INO): a process outside containers."""


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # not Linux, or /proc not mounted
        return _INIT_PID_NAMESPACE


def lock_owner() -> str:
    """The owner string of this process: "host:pid", as stale-lock detection
    expects; in a container with its own pid namespace, "host:pid:pidns=N":
    two containers given one hostname and one database file cannot read
    each other's pids."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    namespace = _pid_namespace()
    return owner if namespace == _INIT_PID_NAMESPACE else f"{owner}:pidns={namespace}"


def _owner_is_dead(owner: str) -> bool:
    """True only when the owner ran on this host, in our pid namespace, and
    its pid no longer exists.

    Owners on other hosts or in other pid namespaces, or strings we cannot
    parse, are assumed alive: only the ttl can free their locks. Extra
    ":suffix" parts are allowed.
    """
    host, _, rest = owner.partition(":")
    pid_text, *extra = rest.split(":")
    namespace = next((e.removeprefix("pidns=") for e in extra if e.startswith("pidns=")),
                     _INIT_PID_NAMESPACE)
    if host != socket.gethostname() or not pid_text.isdigit() or namespace != _pid_namespace():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, owned by another user
        return False
    return False


# --------------------------------------------------------------------------
# The store


def failure_words(path: str, exc: BaseException, what: str = "") -> str:
    """`database PATH: ERROR`, the one line a failed store call ends in; a
    full disk also says what to do, since it is the user's to fix and
    nothing recorded is lost (each batch is one transaction)."""
    words = f"database {path}: {what}{exc}"
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
        words += ("; free some space on its disk: what was recorded is kept, and the next audit "
                  "resumes an unfinished run where it stopped")
    return words


def _db_errors(fn: F) -> F:
    """Turn SQLite's operational failures into a one-line `StoreError`."""

    @functools.wraps(fn)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            raise StoreError(failure_words(self.path, exc), self.path) from exc
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:  # IntegrityError etc.: our bug
                raise
            raise StoreError(failure_words(self.path, exc), self.path) from exc

    return wrapper  # type: ignore[return-value]


def stores_open() -> int:
    """How many stores this process has open: a child that reads the
    database may be forked only at none (`monitor.forked`: nothing of
    SQLite may cross a fork). set.add and discard are atomic: stores open
    and close in the writer's thread too."""
    return len(Store._open)


def _translating(cls: type[Store]) -> type[Store]:
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and callable(member):
            setattr(cls, name, _db_errors(member))
    return cls


@_translating
class Store:
    """The history database, used from one thread (see `StoreWriter`)."""

    _open: ClassVar[set[int]] = set()
    """id() of the stores open in this process (`stores_open`)."""

    _kept: ClassVar[set[str] | None] = None
    """With `keep_existing`: the database files this process has opened."""

    def __init__(self, db: Database, path: str) -> None:
        self.db = db
        self.path = path
        self._conn = db.conn

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, path: str | Path, *, mapped: bool = True) -> Store:
        """Open (creating if needed) and migrate the database at `path`.

        ":memory:" gives a private in-memory database, for tests. `mapped`
        False reads without a memory map: for a connection that writes or
        makes one pass (the audit's writer, `check`'s output, pruning), the
        map only leaves the file resident (208 of 314 MiB at 100,000 links);
        reports, which read the same rows several times, keep it.
        """
        text = str(path)
        conn = None
        kept = Store._kept
        if kept is not None and text != ":memory:":
            where = os.path.abspath(text)
            if where in kept and not os.path.exists(where):
                raise StoreError(_GONE.format(path=text), text)
        try:
            if text != ":memory:":
                Path(text).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(text, timeout=BUSY_TIMEOUT_S)
            db = Database(conn, execute_plugins=False)
            store = cls(db, text)
            store._prepare(mapped)
            Store._open.add(id(store))
            if kept is not None and text != ":memory:":
                kept.add(os.path.abspath(text))
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(_open_error(text, exc), text) from exc
        except OSError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"cannot create the database {text}: {exc.strerror or exc}") from exc
        return store

    @classmethod
    def keep_existing(cls) -> None:
        """From now on, a database file this process opened is never made
        anew if it disappears (`monitor serve`): its /healthz, /metrics,
        dashboard, lock heartbeat and jobs each opened it by path, and an
        unmounted volume or a mistaken clean-up got a new empty database
        within minutes, "ok" with no last run, the overdue alarm cleared and
        the next audit starting over, every problem new and every acceptance
        lost (review 15b #1). They fail instead, saying so (503, job_failed)."""
        if cls._kept is None:
            cls._kept = set()

    def _prepare(self, mapped: bool) -> None:
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self._conn.execute("PRAGMA foreign_keys = ON")
        # run_links reads ~100k scattered rows: memory-mapped reads and a larger
        # page cache made it 3-5x faster than the 2 MB default cache.
        self._conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES if mapped else 0}")
        self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        if self.path != ":memory:":
            self._enable_wal()
        self._migrate()

    def _enable_wal(self) -> None:
        """Switch a new file to WAL, waiting for another process doing the same.

        SQLite does not call the busy handler for this pragma: two processes
        opening a new file at once (the service and a `monitor check`), one
        of them failed at once with "database is locked" (21 of 180 opens in
        a stress run of three processes). So wait here, as `busy_timeout`
        would, then give the same error.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        pause = 0.002
        while True:
            try:
                self.db.enable_wal()  # must run outside any transaction
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _migrate(self) -> None:
        """Apply pending migrations under one write lock (two processes, one
        migration). A file a newer version migrated further is refused: this
        code would misread what it does not know (the version before m005
        failed on a 304 page's '' titles, which mean "those of the run
        holding its links"), and an older process restarted on an upgraded
        file must say so, not fail somewhere in a report."""
        known = {m.name for m in MIGRATIONS._migrations}  # no public list (sqlite-utils 4)
        newer = [m.name for m in MIGRATIONS.applied(self.db) if m.name not in known]
        if newer:
            raise StoreError(
                f"{self.path} was written by a newer version of the monitor (its schema has "
                f"{', '.join(newer)}): this one would misread it. Use the newer version; if an "
                "older `monitor serve` is still running, stop it and start the new one")
        if not MIGRATIONS.pending(self.db):
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS.apply(self.db)
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        Store._open.discard(id(self))
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- helpers

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """A write transaction; nested calls become savepoints."""
        if self._conn.in_transaction:
            with self.db.atomic():
                yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.rollback()
            raise
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.rollback()
            raise

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        cursor = self._conn.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(sql, params).fetchall()

    def _row(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        cursor = self._conn.cursor()
        cursor.row_factory = sqlite3.Row
        row: sqlite3.Row | None = cursor.execute(sql, params).fetchone()
        return row

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._tx():
            return self._conn.execute(sql, params).rowcount

    # ----------------------------------------------------------------- runs

    def start_run(self, now: dt.datetime, *, partial: bool = False, scope: str = "") -> RunInfo:
        """A new run; `partial` when it audits only some of the watched pages.
        `scope` (config.audit_scope) is recorded in the same transaction: a
        run stopped at its first instant is never one whose settings are
        unknown (`run_scope`)."""
        with self._tx():
            cursor = self._conn.execute(
                "INSERT INTO runs (started_at, status, partial) VALUES (?, 'running', ?)",
                (_ts(now), int(partial)),
            )
            run_id = cursor.lastrowid
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (RUN_DRIVER, f"{run_id} {lock_owner()}"))
            if scope:
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (RUN_SCOPE, f"{run_id} {scope}"))
        run = self.get_run(run_id)  # type: ignore[arg-type]
        assert run is not None
        return run

    def unfinished_run(self) -> RunInfo | None:
        """The latest full audit if it never finished, to resume it.

        An unfinished run older than a finished full one is abandoned, not
        resumed. Partial runs (`check --page`) are never resumed, and one
        made meanwhile does not abandon the audit it interrupted.
        """
        row = self._row(f"SELECT {_RUN_COLUMNS} FROM runs WHERE NOT partial ORDER BY id DESC LIMIT 1")
        run = _run(row)
        return run if run is not None and run.status in UNFINISHED else None

    def run_scope(self, run_id: int) -> str | None:
        """The `scope` run `run_id` started with; None when not recorded (a
        run started by a version before it was, or not the latest full run)."""
        value = self.get_meta(RUN_SCOPE) or ""
        number, _, scope = value.partition(" ")
        return scope if number == str(run_id) and scope else None

    def drive_run(self, run_id: int, owner: str | None = None) -> None:
        """Record that this process (`owner`: `lock_owner()`) resumes run
        `run_id` (`start_run` records it for a new run)."""
        self.set_meta(RUN_DRIVER, f"{run_id} {owner or lock_owner()}")

    def run_driver(self, run_id: int) -> str | None:
        """The lock owner that started or last resumed run `run_id`; None
        when not recorded (a run started by a version before it was, or not
        the latest run)."""
        number, _, owner = (self.get_meta(RUN_DRIVER) or "").partition(" ")
        return owner if number == str(run_id) and owner else None

    def finish_run(self, run_id: int, now: dt.datetime, status: str = "finished") -> None:
        """Close a run and count its link occurrences and the distinct URLs
        requested: a URL excluded by `checker.exclude` has an address but is
        never requested, so it is a link (not checked) and no URL (it made
        /healthz `urls` 34 beside the report's 31)."""
        with self._tx():
            links, urls = self._conn.execute(
                "SELECT count(*), count(DISTINCT CASE WHEN o.skip_reason IS NULL THEN o.url END) "
                f"{_RUN_OCCURRENCES}", (run_id,),
            ).fetchone()
            self._conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, links = ?, urls = ? WHERE id = ?",
                (_ts(now), status, links, urls, run_id),
            )

    def get_run(self, run_id: int) -> RunInfo | None:
        return _run(self._row(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)))

    def latest_run(self, *, finished_only: bool = True, full_only: bool = False) -> RunInfo | None:
        """The latest run; `full_only` skips partial runs (`check --page`),
        for whatever means "the latest audit of the site"."""
        where = " AND ".join(
            (["status = 'finished'"] if finished_only else []) + (["NOT partial"] if full_only else []))
        where = f"WHERE {where}" if where else ""
        return _run(self._row(f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY id DESC LIMIT 1"))

    def runs(self, limit: int = 50) -> list[RunInfo]:
        """The latest runs, newest first."""
        rows = self._rows(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [r for r in map(_run, rows) if r is not None]

    def mark_reported(self, run_id: int, now: dt.datetime) -> None:
        """The first time only: a report sent again (`--run N --send`) is
        still the report of that date, which re-renders read it as of."""
        self._write("UPDATE runs SET reported_at = coalesce(reported_at, ?) WHERE id = ?",
                    (_ts(now), run_id))

    def previous_reported_run(self, before_run_id: int) -> RunInfo | None:
        """The full run the previous report covered: what "new since last
        report" compares with. A reported partial run is no baseline: every
        problem on the pages it left out would count as new next week."""
        return _run(
            self._row(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id < ? AND reported_at IS NOT NULL "
                "AND NOT partial ORDER BY id DESC LIMIT 1",
                (before_run_id,),
            )
        )

    def prune(self, before: dt.datetime, stop: Callable[[], bool] | None = None) -> tuple[int, int]:
        """Forget the runs started before `before` (their pages, links and
        observations) and the rechecks made before it; (runs, observations) removed.

        Kept whatever their age, because something still reads them: the
        latest run, the latest full run (partial runs of `check --page` may
        follow it), the latest reported full run (the baseline of "new since
        last report"), runs with a report still waiting in the outbox, and the run
        of each page's latest full fetch (its etag is what the next
        conditional request sends); of such a run only those pages and their
        links stay. Links that later runs' pages point at (they answered 304:
        `pages.links_run`) move to the earliest of those runs, which is then
        where they live. `url_state` is kept: strikes and "failing since" outlive the
        observations they came from. One transaction per run, so a week's
        audit never waits long behind a clean-up, and `stop()` is asked
        between runs (a service stopping does not wait for a year of history
        to be deleted).
        """
        cutoff = _ts(before)
        candidates = [row[0] for row in self._conn.execute(
            f"SELECT id FROM runs WHERE {_PRUNABLE} ORDER BY id", (cutoff,))]
        pinned: dict[int, list[str]] = {}
        if candidates:
            for page_url, run_id in self._conn.execute(
                    "SELECT u.url, (SELECT run_id FROM pages AS p WHERE p.url = u.url AND p.status = 'ok' "
                    "               ORDER BY fetched_at DESC, run_id DESC LIMIT 1) "
                    "FROM (SELECT DISTINCT url FROM pages) AS u"):
                if run_id is not None:
                    pinned.setdefault(run_id, []).append(page_url)
        runs_removed = observations = 0
        for run_id in candidates:
            if stop is not None and stop():
                return runs_removed, observations
            with self._tx():
                # Asked again under the write lock: another process may have queued
                # a report of this run (`monitor report --run N --send`) since the
                # list was made, and deleting the run would delete that report.
                if self._conn.execute(f"SELECT 1 FROM runs WHERE id = ? AND {_PRUNABLE}",
                                      (run_id, cutoff)).fetchone() is None:
                    continue
                observations += self._conn.execute(
                    "DELETE FROM observations WHERE run_id = ?", (run_id,)).rowcount
                keep = pinned.get(run_id, [])
                self._hand_down_links(run_id, keep)
                if not keep:
                    self._conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))  # cascades
                    runs_removed += 1
                    continue
                # Only the pages whose latest full fetch this is, and their links, stay.
                kept = json.dumps(keep)
                self._conn.execute("DELETE FROM occurrences WHERE run_id = ? "
                                   "AND page_url NOT IN (SELECT value FROM json_each(?))", (run_id, kept))
                self._conn.execute("DELETE FROM pages WHERE run_id = ? "
                                   "AND url NOT IN (SELECT value FROM json_each(?))", (run_id, kept))
        with self._tx():
            observations += self._conn.execute(
                "DELETE FROM observations WHERE run_id IS NULL AND checked_at < ?", (cutoff,)).rowcount
        return runs_removed, observations

    def _hand_down_links(self, run_id: int, keep: Sequence[str]) -> None:
        """Before a run is pruned, move the links of its pages that later
        runs point at (unchanged pages) to the earliest of those runs, and
        point every row there. The pages in `keep` stay where they are."""
        heirs = self._conn.execute(
            "SELECT url, min(run_id) FROM pages WHERE links_run = ? AND run_id != ? GROUP BY url",
            (run_id, run_id)).fetchall()
        for page_url, heir in heirs:
            if page_url in keep:
                continue
            self._conn.execute("UPDATE occurrences SET run_id = ? WHERE run_id = ? AND page_url = ?",
                               (heir, run_id, page_url))
            self._conn.execute("UPDATE pages SET entries = (SELECT entries FROM pages "
                               "WHERE run_id = ? AND url = ?) WHERE run_id = ? AND url = ? "
                               "AND entries = ''", (run_id, page_url, heir, page_url))
            self._conn.execute("UPDATE pages SET links_run = ? WHERE links_run = ? AND url = ?",
                               (heir, run_id, page_url))

    # -------------------------------------------------------------- pages

    def record_page(self, page: PageRecord, now: dt.datetime | None = None) -> None:
        """Record (or replace) a page fetch of a run; `now` defaults to the wall clock.

        A page whose links are another run's (`links_run`, a 304) has none
        of its own in this run: any recorded by an earlier attempt of the
        same run (a resumed audit) are dropped, so no reader finds two sets.
        """
        fetched_at = _ts(now or dt.datetime.now(UTC))
        links_run = page.run_id if page.links_run is None else page.links_run
        entries = json.dumps(list(page.entries))
        with self._tx():
            if links_run != page.run_id and self._conn.execute(
                    "SELECT entries = ? FROM pages WHERE run_id = ? AND url = ?",
                    (entries, links_run, page.url)).fetchone() == (1,):
                entries = ""  # those of the run holding its links (_PAGE_SELECT)
            self._conn.execute(
                f"INSERT OR REPLACE INTO pages ({_PAGE_COLUMNS}, fetched_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    page.run_id, page.url, page.status, page.http_status, _storable(page.title),
                    _storable(page.error),
                    page.links, entries, page.name, page.owner, page.etag,
                    page.last_modified, links_run, page.moved_to, fetched_at,
                ),
            )
            if links_run != page.run_id:
                self._conn.execute("DELETE FROM occurrences WHERE run_id = ? AND page_url = ?",
                                   (page.run_id, page.url))

    def run_pages(self, run_id: int) -> list[PageRecord]:
        rows = self._rows(
            f"SELECT {_PAGE_SELECT} WHERE p.run_id = ? ORDER BY p.rowid", (run_id,)
        )
        return [_page(r) for r in rows]

    def last_page(self, url: str) -> PageRecord | None:
        """The latest full fetch (status "ok") of a page.

        Its etag/last_modified are what a conditional request sends; a 304
        later means this fetch is still current, so its `run_id` tells where
        its citations are (`run_citations(page.run_id, page_url=url)`).
        """
        row = self._row(
            f"SELECT {_PAGE_SELECT} WHERE p.url = ? AND p.status = 'ok' "
            "ORDER BY p.fetched_at DESC, p.run_id DESC LIMIT 1",
            (url,),
        )
        return None if row is None else _page(row)

    def page_before(self, url: str, run_id: int) -> PageRecord | None:
        """The page's latest fetch by another run than `run_id`, whatever its
        status: whether the page failed last time, and how (`links_moved`)."""
        row = self._row(
            f"SELECT {_PAGE_SELECT} WHERE p.url = ? AND p.run_id != ? "
            "ORDER BY p.fetched_at DESC, p.run_id DESC LIMIT 1",
            (url, run_id),
        )
        return None if row is None else _page(row)

    def latest_links_of(self, url: str) -> tuple[int, int] | None:
        """(run, run holding its links) of the page's latest fetch that had
        links, full or 304: an unchanged page shares these. A 304 after the
        exclusions changed holds its own copy (`record_page`), and the next
        weeks share that copy rather than copying again."""
        row = self._row(
            "SELECT run_id, links_run FROM pages WHERE url = ? AND status IN ('ok', 'not_modified') "
            "ORDER BY fetched_at DESC, run_id DESC LIMIT 1", (url,))
        return None if row is None else (row[0], row[1] if row[1] is not None else row[0])

    def clear_run_pages(self, run_id: int) -> None:
        """Forget a run's pages and link occurrences, to redo an interrupted page phase.

        Only used before the run's first check: observations are kept. The
        links of a page a later run points at (a `check --page` made
        meanwhile that got a 304) move to that run first, as when pruning:
        the redo may find the page changed or gone, and that run's links
        are what it saw.
        """
        with self._tx():
            self._hand_down_links(run_id, ())
            self._conn.execute("DELETE FROM occurrences WHERE run_id = ?", (run_id,))
            self._conn.execute("DELETE FROM pages WHERE run_id = ?", (run_id,))
            self._conn.execute("DELETE FROM site_cuts WHERE run_id = ?", (run_id,))

    def record_site_cut(self, run_id: int, cut: SiteCut) -> None:
        """A [[sites]] crawl of the run that max_pages or max_depth cut short (again: replaced)."""
        self._write("INSERT OR REPLACE INTO site_cuts (run_id, site, start, max_pages, not_audited, config, "
                    "max_depth, too_deep) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, cut.site, cut.start, cut.max_pages, cut.not_audited, cut.config,
                     cut.max_depth, cut.too_deep))

    def run_site_cuts(self, run_id: int) -> list[SiteCut]:
        """The run's crawls cut short by max_pages or max_depth, in the order they were crawled."""
        rows = self._rows("SELECT site, start, max_pages, not_audited, config, max_depth, too_deep "
                          "FROM site_cuts WHERE run_id = ? ORDER BY rowid", (run_id,))
        return [SiteCut(site=r[0], start=r[1], max_pages=r[2], not_audited=r[3], config=r[4],
                        max_depth=r[5], too_deep=r[6]) for r in rows]

    # --------------------------------------------------------- occurrences

    def record_citations(self, run_id: int, page_url: str, citations: Sequence[Citation]) -> None:
        """Replace the page's occurrences in the run, so that a resumed run may re-record."""
        placeholders = ", ".join("?" * 19)
        with self._tx():
            self._conn.execute(
                "DELETE FROM occurrences WHERE run_id = ? AND page_url = ?", (run_id, page_url)
            )
            self._conn.executemany(
                f"INSERT INTO occurrences ({_OCCURRENCE_COLUMNS}) VALUES ({placeholders})",
                (_occurrence_values(run_id, page_url, c) for c in citations),
            )

    def run_citations(self, run_id: int, page_url: str | None = None) -> list[Citation]:
        """The links of a run's pages (optionally of one page), in page order,
        wherever they are recorded (`pages.links_run`)."""
        sql = f"SELECT {_OCCURRENCE_SELECT} {_RUN_OCCURRENCES}"
        params: tuple[Any, ...] = (run_id,)
        if page_url is not None:
            sql += " AND p.url = ?"
            params += (page_url,)
        rows = self._rows(sql + " ORDER BY p.url, o.id", params)
        return [_citation(r) for r in rows]

    def entry_links(self, run_id: int, page_urls: Iterable[str]) -> set[tuple[str, str, str, str]]:
        """(page, section, entry, URL) of every link a run had on these pages:
        what an entry cited then, without building its citations. The entry
        is its title, or a navigation link's text (it has no entry), as
        `LinkResult.entry_title or LinkResult.text` has it; the section keeps
        a cross-listing's two listings apart (walkthrough 10 #2)."""
        found: set[tuple[str, str, str, str]] = set()
        for page_url in sorted(set(page_urls)):
            found.update(self._conn.execute(
                "SELECT o.page_url, o.section, coalesce(nullif(o.entry_title, ''), o.anchor_text), "
                f"coalesce(o.url, o.raw_href) {_RUN_OCCURRENCES} AND p.url = ?", (run_id, page_url)))
        return found

    def citations_of(self, url: str, run_id: int | None = None) -> list[Citation]:
        """Where a URL is cited, in the given run or else the latest run that cites it.

        From the occurrences of the URL (occurrences_url) to the pages rows
        pointing at them (pages_links_run): the latest run citing a URL may
        be one whose page answered 304 and recorded nothing itself."""
        if run_id is None:
            row = self._row(
                "SELECT max(p.run_id) FROM occurrences AS o JOIN pages AS p "
                "ON p.links_run = o.run_id AND p.url = o.page_url WHERE o.url = ?", (url,))
            run_id = row[0] if row is not None else None
            if run_id is None:
                return []
        rows = self._rows(
            f"SELECT {_OCCURRENCE_SELECT} {_RUN_OCCURRENCES} AND o.url = ? ORDER BY p.url, o.id",
            (run_id, url),
        )
        return [_citation(r) for r in rows]

    # -------------------------------------------------------- observations

    def record_observations(self, run_id: int | None, items: Sequence[ObservationItem]) -> None:
        """Store a batch of checks in one transaction and move each URL's state."""
        self._record_many([(run_id, *item) for item in items])

    def _record_many(
        self, rows: Sequence[tuple[int | None, Observation, Verdict, UrlState]]
    ) -> None:
        for _, obs, verdict, state in rows:
            _check_same_url(obs, verdict, state)
        with self._tx():
            self._conn.executemany(
                _INSERT_OBSERVATION, (_observation_values(*row) for row in rows)
            )
            self._conn.executemany(
                _UPSERT_URL_STATE, (_url_state_values(row[3]) for row in rows)
            )

    def observed_urls(self, run_id: int) -> set[str]:
        rows = self._conn.execute(
            "SELECT DISTINCT url FROM observations WHERE run_id = ?", (run_id,)
        ).fetchall()
        return {r[0] for r in rows}

    def url_state(self, url: str) -> UrlState | None:
        row = self._row(f"SELECT {_URL_STATE_COLUMNS} FROM url_state WHERE url = ?", (url,))
        return None if row is None else _url_state(row)

    def url_states(self, urls: Iterable[str]) -> dict[str, UrlState]:
        wanted = sorted(set(urls))
        states: dict[str, UrlState] = {}
        for chunk in _chunks(wanted):
            marks = ", ".join("?" * len(chunk))
            for row in self._rows(
                f"SELECT {_URL_STATE_COLUMNS} FROM url_state WHERE url IN ({marks})", chunk
            ):
                states[row["url"]] = _url_state(row)
        return states

    def url_states_at(self, urls: Iterable[str], at: dt.datetime) -> dict[str, UrlState]:
        """`url_states` as they were at `at`: each URL's status, strikes and
        "failing since" from its latest observation then (each observation
        keeps them). What a report already sent is rendered with: the
        rechecks made since would confirm failures it listed as suspected.
        URLs not observed by then are absent."""
        states = self.url_states(urls)
        when = _ts(at)
        for url, state in list(states.items()):
            row = self._conn.execute(
                "SELECT status, reason, strikes, failing_since FROM observations "
                "WHERE url = ? AND checked_at <= ? ORDER BY checked_at DESC, id DESC LIMIT 1",
                (url, when)).fetchone()
            if row is None:
                del states[url]
                continue
            status = LinkStatus(row[0])
            since = state.status_since
            if since is None or status is not state.status or since > at:
                since = self._streak_start(url, status, at)
            states[url] = replace(state, status=status, reason=row[1], strikes=row[2],
                                  failing_since=_dt(row[3]), status_since=since)
        return states

    def fail_tallies(self, urls: Iterable[str] | None = None,
                     until: dt.datetime | None = None) -> dict[str, FailTally]:
        """URL -> how often it failed (`FailTally`), for `urls`, or with None
        for every URL whose state is flapping and failing (what `monitor
        check` just found): what the row of a link that fails now and then
        says instead of "first seen" and "failed once so far".

        Now: from the URL states' counters (`UrlState.fail_tally`). With
        `until` (a report already sent, rendered again), over the checks kept
        up to then, from the observations: one query on the (url,
        checked_at) index, for those few URLs (722 of 100,000 in
        bench/report_scale.py: 0.2 to 0.7 s warm, 9.5 s cold)."""
        picked = sorted(set(urls)) if urls is not None else None
        if picked == []:
            return {}
        if until is None:
            where = ("flapping AND status IN ('expired', 'error', 'blocked')" if picked is None
                     else "url IN (SELECT value FROM json_each(?))")
            return {row["url"]: _url_state(row).fail_tally() for row in self._rows(
                f"SELECT {_URL_STATE_COLUMNS} FROM url_state WHERE {where}",
                () if picked is None else (json.dumps(picked),))}
        wanted = (FAIL_TALLY_SQL.format(urls="SELECT url FROM url_state WHERE flapping AND status IN "
                                             "('expired', 'error', 'blocked')") if picked is None
                  else FAIL_TALLY_SQL.format(urls="SELECT value FROM json_each(?1)"))
        params = (json.dumps(picked) if picked is not None else None, _ts(until))
        return {row[0]: FailTally(checks=row[1], failed=row[2], since=_dt(row[3]), last_ok_at=_dt(row[4]))
                for row in self._conn.execute(wanted, params)}

    def _streak_start(self, url: str, status: LinkStatus, at: dt.datetime) -> dt.datetime | None:
        row = self._conn.execute(_STREAK_START.format(url="?1", status="?2", until="?3"),
                                 (url, status.value, _ts(at))).fetchone()
        return _dt(row[0])

    def first_listed(self, links: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[dt.datetime, bool]]:
        """(page, href) of links without a URL (malformed: never checked, so
        nothing else dates them) -> (the start of the first kept run whose
        page lists it, whether it may be older: no kept run read the page
        before, and runs before it were cleaned away, keep_weeks). Found in
        the database's very first run,
        it dates from it as every other problem found then does ("open 1
        week, since 21 Nov"), not "or earlier" (review 13 #13). Run ids are
        never reused (AUTOINCREMENT): fewer kept runs below an id than the
        id less one means some were removed. A few per site; each reads that
        page's rows of the kept runs."""
        found: dict[tuple[str, str], tuple[dt.datetime, bool]] = {}
        for page, href in set(links):
            row = self._conn.execute(
                "SELECT r.id, r.started_at, (SELECT count(*) FROM runs WHERE id < r.id), "
                "(SELECT count(*) FROM pages AS b WHERE b.url = o.page_url AND b.run_id < r.id "
                " AND b.links_run IS NOT NULL) "
                "FROM occurrences AS o "
                "JOIN pages AS p ON p.links_run = o.run_id AND p.url = o.page_url "
                "JOIN runs AS r ON r.id = p.run_id "
                "WHERE o.url IS NULL AND o.raw_href = ? AND o.page_url = ? "
                "ORDER BY r.id LIMIT 1", (href, page)).fetchone()
            if row is not None:
                # older only if no kept run read the page before, and runs were removed
                found[(page, href)] = (_dt(row[1]), not row[3] and row[2] < row[0] - 1)  # type: ignore[assignment]
        return found

    def history(self, url: str, limit: int | None = None) -> list[HistoryEntry]:
        """A URL's observations, newest last; with `limit`, only the latest ones."""
        sql, params = HISTORY_SQL, (url,)
        if limit is not None:
            sql, params = sql + " LIMIT ?", (url, limit)  # type: ignore[assignment]
        entries = [_history_entry(r) for r in self._rows(sql, params)]
        entries.reverse()
        return entries

    def run_links(self, run_id: int) -> list[LinkResult]:
        """Every link occurrence of the run with its verdict (see RUN_LINKS_SQL)."""
        marks = self._url_marks()
        return [_link_result(r, marks) for r in self._conn.execute(RUN_LINKS_UNMARKED_SQL, (run_id,))]

    def iter_run_links(self, run_id: int) -> Iterator[LinkResult]:
        """`run_links` one at a time, from the cursor: what a caller that writes
        each link out (`monitor check`'s output) holds stays flat however many
        links the run has. Do not write to this store until it is exhausted."""
        marks = self._url_marks()
        cursor = self._conn.execute(RUN_LINKS_UNMARKED_SQL, (run_id,))
        try:
            for row in cursor:
                yield _link_result(row, marks)
        finally:
            cursor.close()

    def _url_marks(self) -> dict[str, tuple[int, str | None, int]]:
        """URL -> (flapping, archived copy) of the URL states that have either:
        a few in a hundred (1,978 of 100,000 in bench/report_scale.py, read in
        0.03 s); the whole-run readers merge them instead of joining url_state."""
        return {url: (flapping, archived, oldest)
                for url, flapping, archived, oldest in self._conn.execute(URL_MARKS_SQL)}

    def run_flagged_links(self, run_id: int, urls: Collection[str] | None = None) -> list[LinkResult]:
        """The run's links whose status is neither ok nor skipped, in `run_links` order.

        What a report needs of the previous report's run ("new", "still open",
        "fixed since"): a tenth of the links, without building the rest.
        With `urls`, only the links to those: what a report needs of the
        report before the previous one (whether a problem new now is "back")
        is a few URLs, not its 10,000 flagged links (0.5 s at 100,000 links).
        """
        if urls is None:
            return [_link_result(r) for r in self._conn.execute(RUN_FLAGGED_LINKS_SQL, (run_id,))]
        if not urls:
            return []
        return [_link_result(r) for r in self._conn.execute(
            RUN_URLS_FLAGGED_LINKS_SQL, (run_id, json.dumps(list(urls))))]

    def flagged_links_last_read(self, page_urls: Iterable[str], before_run_id: int) -> list[LinkResult]:
        """Each page's flagged links in the latest reported full run before
        `before_run_id` that read it (fetched, or unchanged since).

        A page that failed in the previous report's run has no links there, yet
        that report listed its problems as still open; without these, the week
        it comes back every one of them is "new" again, and the week it fails
        once more they vanish from the report. Runs older than the history
        kept (`keep_weeks`) have lost their observations: nothing comes back.
        """
        links: list[LinkResult] = []
        for url in sorted(set(page_urls)):
            run_id = self._last_read_run(url, before_run_id)
            if run_id is not None:
                links.extend(map(_link_result, self._conn.execute(
                    RUN_PAGE_FLAGGED_LINKS_SQL, (run_id, url))))
        return links

    def citations_last_read(self, page_urls: Iterable[str], before_run_id: int,
                            ) -> list[tuple[PageRecord, list[LinkResult]]]:
        """Each page as the latest reported full run before `before_run_id`
        that read it, with its citations (every status): the content notes
        of a page this run could not fetch (a retraction, a stale mark, an
        entry without a source) are that report's, not nothing. Pages never
        read in a kept run are absent. One page's citations at a time, for
        the pages that failed only."""
        found: list[tuple[PageRecord, list[LinkResult]]] = []
        for url in sorted(set(page_urls)):
            run_id = self._last_read_run(url, before_run_id)
            row = None if run_id is None else self._row(
                f"SELECT {_PAGE_SELECT} WHERE p.run_id = ? AND p.url = ?", (run_id, url))
            if row is not None:
                found.append((_page(row), [_link_result(r) for r in self._conn.execute(
                    RUN_PAGE_CITATIONS_SQL, (run_id, url))]))
        return found

    def _last_read_run(self, url: str, before_run_id: int) -> int | None:
        """The latest reported full run before `before_run_id` that read the
        page (fetched, or unchanged since)."""
        row = self._row(
            "SELECT p.run_id FROM pages AS p JOIN runs AS r ON r.id = p.run_id "
            "WHERE p.url = ? AND p.run_id < ? AND p.status IN ('ok', 'not_modified') "
            "AND r.reported_at IS NOT NULL AND NOT r.partial "
            "ORDER BY p.run_id DESC LIMIT 1",
            (url, before_run_id),
        )
        return None if row is None else int(row[0])

    def archived_urls(self, urls: Iterable[str]) -> dict[str, str]:
        """The archived copies already found for these URLs (those without one are absent)."""
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(set(urls))):
            marks = ", ".join("?" * len(chunk))
            found.update(self._conn.execute(
                f"SELECT url, archived_url FROM url_state WHERE url IN ({marks}) "
                "AND archived_url IS NOT NULL", chunk).fetchall())
        return found

    def set_archived_url(self, url: str, archived_url: str, *, oldest: bool = False) -> bool:
        """Remember an archived copy of a URL (`oldest`: the oldest the
        archive holds, asked for an undated link); False if the URL was never observed."""
        return (
            self._write("UPDATE url_state SET archived_url = ?, archived_oldest = ? WHERE url = ?",
                        (archived_url, int(oldest), url))
            > 0
        )

    def oldest_archived_urls(self, urls: Iterable[str]) -> set[str]:
        """Those of `urls` whose archived copy is the oldest the archive holds
        (asked without a date): asked again once the link has a date."""
        found: set[str] = set()
        for chunk in _chunks(sorted(set(urls))):
            marks = ", ".join("?" * len(chunk))
            found.update(url for (url,) in self._conn.execute(
                f"SELECT url FROM url_state WHERE url IN ({marks}) "
                "AND archived_url IS NOT NULL AND archived_oldest", chunk))
        return found

    def due_rechecks(self, now: dt.datetime, after_hours: Sequence[float]) -> list[str]:
        """Failing URLs to confirm now, oldest failure first.

        For each delay h: the failure began at least h hours ago and the URL
        has not been observed since failing_since + h. Several delays (e.g.
        24 and 72) confirm a failure over days, like InternetArchiveBot.
        """
        marks = ", ".join("?" * len(FAILING))
        rows = self._conn.execute(
            f"""SELECT s.url, s.failing_since,
                       (SELECT max(x.checked_at) FROM observations AS x WHERE x.url = s.url)
                FROM url_state AS s
                WHERE s.status IN ({marks}) AND s.failing_since IS NOT NULL""",
            FAILING,
        ).fetchall()
        now = _dt(_ts(now))  # type: ignore[assignment]
        due: list[tuple[dt.datetime, str]] = []
        for url, since_text, last_text in rows:
            since, last = _dt(since_text), _dt(last_text)
            assert since is not None
            for hours in after_hours:
                cutoff = since + dt.timedelta(hours=hours)
                if now >= cutoff and (last is None or last < cutoff):
                    due.append((since, url))
                    break
        return [url for _, url in sorted(due)]

    # --------------------------------------------------------------- outbox

    def enqueue_message(
        self,
        key: str,
        run_id: int,
        recipients: Sequence[str],
        message: bytes,
        message_id: str,
        now: dt.datetime,
    ) -> OutboxMessage | None:
        """Queue a report once per key; None if that key was ever queued."""
        with self._tx():
            if self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                # `monitor report --run N --send` while the weekly job prunes run N.
                raise StoreError(f"run {run_id} is no longer in the database {self.path} (removed by "
                                 "the retention clean-up, keep_weeks, meanwhile); nothing was queued")
            cursor = self._conn.execute(
                "INSERT INTO outbox (key, run_id, recipients, message, message_id, created_at, "
                "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                (
                    key, run_id, json.dumps(list(recipients)), message, message_id,
                    _ts(now), _ts(now),
                ),
            )
            if cursor.rowcount == 0:
                return None
        return self.get_message(key)

    def requeue_message(self, key: str, now: dt.datetime) -> bool:
        """Send a queued report again on purpose (`monitor report --send`)."""
        return (
            self._write(
                "UPDATE outbox SET sent_at = NULL, attempts = 0, last_error = '', "
                "next_attempt_at = ? WHERE key = ?",
                (_ts(now), key),
            )
            > 0
        )

    def due_messages(self, now: dt.datetime) -> list[OutboxMessage]:
        rows = self._rows(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE sent_at IS NULL "
            "AND next_attempt_at <= ? ORDER BY next_attempt_at, id",
            (_ts(now),),
        )
        return [m for m in map(_outbox, rows) if m is not None]

    def mark_sent(self, message_id: int, now: dt.datetime) -> None:
        self._write(
            "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = '' WHERE id = ?",
            (_ts(now), message_id),
        )

    def mark_failed(self, message_id: int, error: str, next_attempt_at: dt.datetime) -> None:
        self._write(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
            "WHERE id = ?",
            (error, _ts(next_attempt_at), message_id),
        )

    def mark_refused(self, message_id: int, error: str) -> None:
        """The mail server refused every recipient for good (5xx): kept,
        never due again (`next_attempt_at` NULL), so no flush retries it
        week after week; `requeue_message` or `replace_message` (an explicit
        `monitor report --send`) arms it again."""
        self._write(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = NULL "
            "WHERE id = ?",
            (error, message_id),
        )

    def replace_message(self, key: str, recipients: Sequence[str], message: bytes,
                        now: dt.datetime) -> bool:
        """A queued report rebuilt for other recipients (the configured
        address was corrected since the server refused it), due now."""
        return (
            self._write(
                "UPDATE outbox SET recipients = ?, message = ?, sent_at = NULL, attempts = 0, "
                "last_error = '', next_attempt_at = ? WHERE key = ?",
                (json.dumps(list(recipients)), message, _ts(now), key),
            )
            > 0
        )

    def run_messages(self, run_id: int) -> list[OutboxMessage]:
        """Every message of a run's report, sent or not."""
        rows = self._rows(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE run_id = ? ORDER BY id", (run_id,))
        return [m for m in map(_outbox, rows) if m is not None]

    def outbox_size(self) -> int:
        """Messages waiting to be sent (not those refused for good)."""
        row = self._conn.execute(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND next_attempt_at IS NOT NULL").fetchone()
        return int(row[0])

    def get_message(self, key: str) -> OutboxMessage | None:
        return _outbox(self._row(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE key = ?", (key,)))

    # ---------------------------------------------------------------- locks

    def acquire_lock(self, name: str, owner: str, now: dt.datetime, ttl: dt.timedelta) -> bool:
        """Take the named lock unless a live holder has it (not re-entrant).

        A holder is stale once its ttl has passed, or when its owner ("host:pid")
        ran on this host and that process is gone. The check and the take happen
        in one BEGIN IMMEDIATE transaction, so two processes cannot both win.
        """
        with self._tx():
            row = self._conn.execute(
                "SELECT owner, expires_at FROM locks WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and not self._stale(row[0], row[1], now):
                return False
            self._conn.execute(
                "INSERT INTO locks (name, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, "
                "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                (name, owner, _ts(now), _ts(now + ttl)),
            )
        if row is not None:
            log.warning("took over stale lock %s from %s", name, row[0])
        return True

    @staticmethod
    def _stale(owner: str, expires_at: str, now: dt.datetime) -> bool:
        return expires_at <= (_ts(now) or "") or _owner_is_dead(owner)

    def refresh_lock(self, name: str, owner: str, now: dt.datetime, ttl: dt.timedelta) -> bool:
        """Extend our lock; False means we lost it (taken over as stale) and must stop."""
        return (
            self._write(
                "UPDATE locks SET expires_at = ? WHERE name = ? AND owner = ?",
                (_ts(now + ttl), name, owner),
            )
            > 0
        )

    def release_lock(self, name: str, owner: str) -> None:
        self._write("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    def lock_holder(self, name: str, now: dt.datetime) -> str | None:
        """The owner of the named lock if a live holder has it (by the same
        rule as `acquire_lock`), else None: tells an audit in progress from
        one whose process is gone."""
        held = self.live_lock(name, now)
        return None if held is None else held[0]

    def live_lock(self, name: str, now: dt.datetime) -> tuple[str, str] | None:
        """(owner, acquired_at) of the named lock if a live holder has it,
        for `locking.holder_words`; else None."""
        row = self._row("SELECT owner, expires_at, acquired_at FROM locks WHERE name = ?", (name,))
        if row is None or self._stale(row[0], row[1], now):
            return None
        return str(row[0]), str(row[2])

    # ----------------------------------------------------------------- meta

    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def database_id(self) -> str:
        """This database's random id (`m007_database_id`): what a saved
        report names as the database it was made from."""
        return self.get_meta(DATABASE_ID_KEY) or ""

    def mail_states(self, run_ids: Iterable[int]) -> dict[int, tuple[int, int, int]]:
        """Run id -> (messages delivered, waiting in the outbox, refused for
        good by the mail server) of its report, for the runs that were queued
        for mail at all: the index of reports marks what was mailed, apart
        from what was only rendered or only partly mailed."""
        states: dict[int, tuple[int, int, int]] = {}
        ids = sorted({int(i) for i in run_ids})
        for chunk in _chunks(ids):  # type: ignore[arg-type]
            for run_id, sent, waiting, refused in self._conn.execute(
                    "SELECT run_id, count(sent_at), "
                    "sum(sent_at IS NULL AND next_attempt_at IS NOT NULL), "
                    "sum(sent_at IS NULL AND next_attempt_at IS NULL) FROM outbox "
                    f"WHERE run_id IN ({','.join('?' * len(chunk))}) GROUP BY run_id", tuple(chunk)):
                states[int(run_id)] = (int(sent), int(waiting or 0), int(refused or 0))
        return states

    def set_meta(self, key: str, value: str) -> None:
        self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def unrequested_sightings(self, href: str) -> tuple[list[Citation], int, int] | None:
        """Where a link the monitor never requests sits: its occurrences in
        the latest run listing it, that run's id and the first run's id, or
        None. `href` is the link as the report shows it: the page's href for
        a malformed address (no URL: `occurrences.url` is NULL) or a skipped
        one (mailto:, a fragment), or a URL excluded by the configuration.
        For `monitor history`, which has no observation of such a link and
        said "never checked" of a link the report lists."""
        match = "(o.url = ? OR (o.url IS NULL AND o.raw_href = ?))"
        row = self._row(
            "SELECT min(p.run_id), max(p.run_id) FROM occurrences AS o JOIN pages AS p "
            f"ON p.links_run = o.run_id AND p.url = o.page_url WHERE {match}", (href, href))
        if row is None or row[1] is None:
            return None
        rows = self._rows(f"SELECT {_OCCURRENCE_SELECT} {_RUN_OCCURRENCES} AND {match} ORDER BY p.url, o.id",
                          (row[1], href, href))
        return [_citation(r) for r in rows], row[1], row[0]

    def whereabouts(self, link: str) -> Whereabouts:
        """Where `link` (a URL, or an href as written for a link without one:
        a malformed `http://`, a mailto:) stood on the watched pages, run by
        run (see `Whereabouts`). Three index searches, whatever the history's
        size: its occurrences (occurrences_url), the reads of the pages
        holding them (pages_url_fetched_at), those runs (primary key).
        The href form is searched only when no occurrence has that URL: the
        rows without a URL are every mailto: of every run."""
        rows = self._rows(f"SELECT {_OCCURRENCE_COLUMNS} FROM occurrences WHERE url = ? ORDER BY id", (link,))
        if not rows:
            rows = self._rows(f"SELECT {_OCCURRENCE_COLUMNS} FROM occurrences "
                              "WHERE url IS NULL AND raw_href = ? ORDER BY id", (link,))
        if not rows:
            return Whereabouts()
        held: dict[tuple[int, str], list[sqlite3.Row]] = {}
        for r in rows:
            held.setdefault((r["run_id"], r["page_url"]), []).append(r)
        pages = sorted({page for _, page in held})
        reads_of = sorted((r for chunk in _chunks(pages) for r in self._conn.execute(
            "SELECT run_id, links_run, url, fetched_at, status, name, title FROM pages "
            f"WHERE url IN ({', '.join('?' * len(chunk))})", chunk)), key=lambda r: (r[0], r[2]))
        reads = tuple(PageRead(run_id=r[0], page_url=r[2], at=_dt(r[3]),  # type: ignore[arg-type]
                               present=(r[1], r[2]) in held,
                               excluded=(r[1], r[2]) in held and all(
                                   o["skip_reason"] == "excluded" for o in held[(r[1], r[2])]))
                      for r in reads_of if r[4] in _READ_STATUSES)
        ids = sorted({read.run_id for read in reads})
        runs = tuple(r for chunk in _chunks(ids) for r in map(_run, self._rows(  # type: ignore[arg-type]
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
            if r is not None)
        links_run = {(r[0], r[2]): r[1] for r in reads_of}
        listing = {read.page_url: read.run_id for read in reads if read.present}  # the last wins
        last_cited = tuple(_citation(r) for page in pages if page in listing
                           for r in held[(links_run[(listing[page], page)], page)])
        full = self._row("SELECT max(id) FROM runs WHERE NOT partial AND status = 'finished'")
        latest_full = full[0] if full is not None else None
        audited = {r[2] for r in reads_of if r[0] == latest_full} if latest_full is not None else set(pages)
        names = {r[2]: " ".join((r[5] or r[6] or "").split()) for r in reads_of if r[4] in _READ_STATUSES}
        return Whereabouts(reads=reads, last_cited=last_cited, runs=runs,
                           dropped=frozenset(p for p in pages if p not in audited),
                           names={p: n for p, n in names.items() if n})

    def entry_links_in(self, run_id: int, page_url: str, section: str,
                       title: str) -> list[tuple[str, str | None, str | None]]:
        """(URL or href as written, status in that run, skip reason) of an entry's links in
        a run: what the entry cites once a link left it (`monitor history`).
        The page's row, then its occurrences (occurrences_run_page) and each
        one's observation in the run (observations_run_url), as RUN_LINKS_SQL."""
        return [(r[0], r[1], r[2]) for r in self._conn.execute(
            "SELECT coalesce(o.url, o.raw_href), ob.status, o.skip_reason FROM pages AS p "
            "JOIN occurrences AS o ON o.run_id = p.links_run AND o.page_url = p.url "
            "LEFT JOIN observations AS ob ON ob.id = (SELECT x.id FROM observations AS x "
            "WHERE x.run_id = p.run_id AND x.url = o.url ORDER BY x.checked_at DESC, x.id DESC LIMIT 1) "
            "WHERE p.run_id = ? AND p.url = ? AND o.section = ? AND o.entry_title = ? ORDER BY o.id",
            (run_id, page_url, section, title))]

    # ------------------------------------------------------------ acceptances

    def cited_in_run(self, url: str, run_id: int) -> bool:
        """Whether a page of `run_id` links `url` (its own links or, for a
        page that answered 304, those of the run that last read it)."""
        return self._row(f"SELECT 1 {_RUN_OCCURRENCES} AND o.url = ? LIMIT 1", (run_id, url)) is not None

    def accept(self, url: str, status: LinkStatus, reason: str, now: dt.datetime,
               until: dt.datetime, *, by: str = "", note: str = "",
               run_id: int | None = None, final_url: str | None = None,
               title: str | None = None) -> Acceptance:
        """Record that a person found `url` fine while it answered `status`
        (and, given them, `reason`, `final_url` and `title`: the answer of a
        guessed verdict, `Acceptance.final_url`)."""
        with self._tx():
            cursor = self._conn.execute(
                "INSERT INTO acceptances (url, status, reason, accepted_at, until, by, note, run_id, "
                "final_url, title) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (url, status.value, reason, _ts(now), _ts(until), by, note, run_id,
                 _storable(final_url), _storable(title)))
            new_id = cursor.lastrowid
        return Acceptance(id=int(new_id or 0), url=url, status=status, reason=reason,
                          accepted_at=_dt(_ts(now)) or now, until=_dt(_ts(until)) or until,
                          by=by, note=note, run_id=run_id, final_url=final_url, title=title)

    def undo_acceptance(self, url: str, now: dt.datetime) -> bool:
        """Undo `url`'s acceptances still standing (not undone, not
        expired); False when there is none. The rows stay, for history."""
        return self._write("UPDATE acceptances SET undone_at = ? WHERE url = ? AND undone_at IS NULL "
                           "AND until > ?", (_ts(now), url, _ts(now))) > 0

    def acceptances(self, urls: Iterable[str] | None = None) -> dict[str, list[Acceptance]]:
        """url -> its acceptances, oldest first (every URL's when `urls` is
        None: the table holds a person's few words, not one row per link).
        Each says its first check since with another answer than the one
        accepted (`changed_at`), an `error` aside (`accept.NOT_AN_ANSWER`):
        one indexed search per acceptance (observations_url_checked_at)."""
        wanted = None if urls is None else set(urls)
        found: dict[str, list[Acceptance]] = {}
        for row in self._rows("SELECT id, url, status, reason, accepted_at, until, by, note, run_id, "
                              "undone_at, final_url, title FROM acceptances ORDER BY accepted_at, id"):
            if wanted is not None and row["url"] not in wanted:
                continue
            if row["final_url"] is None:
                change = self._row(_FIRST_OTHER_ANSWER, (row["url"], row["accepted_at"], row["status"]))
            else:
                change = self._row(_FIRST_OTHER_PAGE, (row["url"], row["accepted_at"], row["status"],
                                                       row["reason"], row["final_url"], row["title"],
                                                       row["title"]))
            found.setdefault(row["url"], []).append(Acceptance(
                id=row["id"], url=row["url"], status=LinkStatus(row["status"]), reason=row["reason"],
                accepted_at=_dt(row["accepted_at"]) or dt.datetime.min.replace(tzinfo=UTC),
                until=_dt(row["until"]) or dt.datetime.min.replace(tzinfo=UTC),
                by=row["by"], note=row["note"], run_id=row["run_id"], undone_at=_dt(row["undone_at"]),
                changed_at=_dt(change["checked_at"]) if change is not None else None,
                changed_status=change["status"] if change is not None else "",
                changed_reason=change["reason"] if change is not None else "",
                final_url=row["final_url"], title=row["title"],
                changed_final_url=change["final_url"] if change is not None else "",
                changed_title=change["title"] if change is not None else ""))
        return found


_FIRST_OTHER_ANSWER = """SELECT checked_at, status, reason, '' AS final_url, '' AS title FROM observations
    WHERE url = ? AND checked_at > ? AND status NOT IN (?, 'error')
    ORDER BY checked_at LIMIT 1"""
"""The first check of a URL since an acceptance that answered otherwise."""

_FIRST_OTHER_PAGE = """SELECT checked_at, status, reason, final_url, title FROM (
        SELECT checked_at, status, reason, title,
               CASE COALESCE(final_url, '') WHEN '' THEN url ELSE final_url END AS final_url
        FROM observations WHERE url = ? AND checked_at > ? AND status != 'error')
    WHERE status != ? OR reason != ? OR final_url != ? OR (? IS NOT NULL AND COALESCE(title, '') != ?)
    ORDER BY checked_at LIMIT 1"""
"""`_FIRST_OTHER_ANSWER` for an acceptance of a guessed verdict: another
reason (a 404 now), another final address or, when one was kept
(`accept.TITLE_KEPT`), another title is another answer (the final address
as `HISTORY_SQL` gives it back)."""


_GONE = ("the database {path} is gone: it was there when the service opened it (a volume not mounted, "
         "a file moved or deleted?); restore it, or restart the service to start a new, empty one")
"""`Store.keep_existing`'s refusal."""


def _open_error(path: str, exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "not a database" in text:
        return f"{path} is not a SQLite database (file is not a database)"
    if "unable to open" in text:
        return f"cannot open the database {path}: {text}"
    return f"database {path}: {text}"


def _check_same_url(obs: Observation, verdict: Verdict, state: UrlState) -> None:
    """A mismatched triple would file a verdict under the wrong URL: refuse it early."""
    if not (obs.url == verdict.url == state.url):
        raise ValueError(
            f"observation, verdict and state name different URLs: "
            f"{obs.url!r}, {verdict.url!r}, {state.url!r}"
        )


# --------------------------------------------------------------------------
# The async side


class StoreWriter:
    """A `Store` owned by one dedicated thread, fed from asyncio.

    sqlite3 objects may only be used by the thread that created them, so the
    store is opened, used and closed on a single-thread executor. `add()`
    only appends to a buffer; a background task commits it every
    `batch_interval` seconds, and a commit starts as soon as `batch_size`
    items wait. A crash loses at most the uncommitted window, never a
    committed batch. Past `max_pending` queued items (the disk is slower than
    the checks) `add()` waits for the commit: backpressure, not unbounded
    memory. A failed commit keeps its items; the next `add()` raises and the
    next `flush()` retries. Cancelling a caller never cancels a commit in
    progress (the thread finishes it and its outcome settles the buffer), so
    an item is neither lost nor written twice.
    """

    def __init__(
        self, path: str | Path, *, batch_interval: float = 0.2, batch_size: int = 200
    ) -> None:
        self.path = str(path)
        self.batch_interval = batch_interval
        self.batch_size = batch_size
        self.max_pending = batch_size * 20
        self.written = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._store: Store | None = None
        self._buffer: list[tuple[int | None, Observation, Verdict, UrlState]] = []
        self._flush_lock = asyncio.Lock()
        self._inflight: set[asyncio.Future[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None
        self._closed = False
        self._kicked = False

    @classmethod
    async def open(
        cls, path: str | Path, *, batch_interval: float = 0.2, batch_size: int = 200
    ) -> StoreWriter:
        writer = cls(path, batch_interval=batch_interval, batch_size=batch_size)
        try:
            writer._store = await writer._in_thread(functools.partial(Store.open, writer.path, mapped=False))
        except BaseException:
            writer._executor.shutdown(wait=True)
            raise
        writer._spawn(writer._flusher(), "store-writer-flusher")
        return writer

    async def __aenter__(self) -> StoreWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def pending(self) -> int:
        """Items queued and not committed yet."""
        return len(self._buffer)

    async def add(
        self, run_id: int | None, obs: Observation, verdict: Verdict, state: UrlState
    ) -> None:
        """Queue one check for the next batch."""
        self._ensure_open()
        if self._error is not None:
            error = self._error
            raise StoreError(failure_words(self.path, error, "a batch failed: "), self.path) from error
        _check_same_url(obs, verdict, state)
        self._buffer.append((run_id, obs, verdict, state))
        if len(self._buffer) >= self.max_pending:
            await self.flush()
        elif len(self._buffer) >= self.batch_size and not self._kicked:
            self._kicked = True
            self._spawn(self._background_flush(), "store-writer-batch")

    async def flush(self) -> None:
        """Commit everything queued so far (retrying a batch that failed before)."""
        async with self._flush_lock:
            if not self._buffer:
                return
            batch, self._buffer = self._buffer, []
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._executor, self._write_batch, batch)
            self._inflight.add(future)
            # Registered before shield's own callback, so it runs first: the
            # buffer is settled by the time this coroutine resumes.
            future.add_done_callback(functools.partial(self._settle, batch))
            try:
                await asyncio.shield(future)
            except sqlite3.Error as exc:
                # As `Store` methods say it: a StoreError naming the file, not
                # sqlite3's bare "database is locked" out of the audit.
                raise StoreError(failure_words(self.path, exc), self.path) from exc

    async def call(self, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        """Run a public `Store` method on the writer thread, after the queued adds."""
        self._check_method(fn_name)
        await self.flush()
        return await self.call_unflushed(fn_name, *args, **kwargs)

    async def call_unflushed(self, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        """`call`, leaving the queued adds to their batch: for calls that do
        not read what those adds write, nor need to come after them. The
        page phase records pages and their links while checks stream in;
        with `call`, each of its four calls per page committed (and fsynced)
        the pending observations: some 8,000 commits at 100,000 links."""
        self._check_method(fn_name)
        return await self._in_thread(lambda: getattr(self._store, fn_name)(*args, **kwargs))

    def _check_method(self, fn_name: str) -> None:
        self._ensure_open()
        method = getattr(Store, fn_name, None)
        if fn_name.startswith("_") or fn_name == "close" or not callable(method):
            raise AttributeError(f"Store has no public method {fn_name!r}")

    async def close(self) -> None:
        """Commit what is queued, then close the store and its thread."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._inflight:
            await asyncio.wait(list(self._inflight))
        try:
            await self.flush()
        finally:
            if self._store is not None:
                await self._in_thread(self._store.close)
            self._executor.shutdown(wait=True)

    # ---------------------------------------------------------------- inside

    def _ensure_open(self) -> None:
        if self._closed or self._store is None:
            raise StoreError(f"database {self.path}: the writer is closed")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _write_batch(
        self, batch: Sequence[tuple[int | None, Observation, Verdict, UrlState]]
    ) -> None:
        """On the writer thread: the whole batch in one transaction."""
        assert self._store is not None
        with self._store._tx():
            for run_id, group in groupby(batch, key=lambda item: item[0]):
                self._store.record_observations(run_id, [item[1:] for item in group])

    def _settle(
        self,
        batch: list[tuple[int | None, Observation, Verdict, UrlState]],
        future: asyncio.Future[Any],
    ) -> None:
        self._inflight.discard(future)
        error = future.exception() if not future.cancelled() else asyncio.CancelledError()
        if error is None:
            self.written += len(batch)
            self._error = None
            return
        self._buffer[:0] = batch
        self._error = error
        # Not an ERROR line: the failure reaches the audit (the next add or
        # flush raises it) and is said once there; a batch retried with
        # success lost nothing.
        log.debug("store writer: a batch of %d failed: %s", len(batch), error)

    async def _background_flush(self) -> None:
        self._kicked = False
        if self._buffer and self._error is None:
            # the failure is kept in self._error and raised by the next add()
            with contextlib.suppress(Exception):
                await self.flush()

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.batch_interval)
            await self._background_flush()
