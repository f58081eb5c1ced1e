"""The history database, against real SQLite files under tmp_path."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys
from dataclasses import FrozenInstanceError, dataclass, fields, replace
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import StoreError
from monitor.store import (
    HISTORY_SQL,
    MIGRATIONS,
    RUN_FLAGGED_LINKS_SQL, RUN_URLS_FLAGGED_LINKS_SQL,
    RUN_LINKS_SQL,
    RUN_LINKS_UNMARKED_SQL,
    RUN_PAGE_CITATIONS_SQL,
    Store,
    StoreWriter,
    _link_result,
    _new_link_result,
    _slot_setting_constructor,
    lock_owner,
)
from monitor.classify import next_state
from monitor.types import (
    Citation,
    FailTally,
    EntryContext,
    ErrorKind,
    HistoryEntry,
    Hop,
    LinkKind,
    LinkResult,
    LinkStatus,
    Observation,
    PageRecord,
    SiteCut,
    UrlState,
    Verdict,
    Whereabouts,
)

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
PAGE_A = "https://www.sclero.org/a.html"
PAGE_B = "https://www.sclero.org/b.html"
PUBMED = "https://pubmed.ncbi.nlm.nih.gov/29713845/"


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(hours=n)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "monitor.db"


@pytest.fixture
def store(db_path: Path):  # type: ignore[no-untyped-def]
    s = Store.open(db_path)
    yield s
    s.close()


def cite(page: str, url: str | None, text: str = "anchor", **kw) -> Citation:  # type: ignore[no-untyped-def]
    return Citation(
        page_url=page, url=url, raw_href=kw.pop("raw_href", url or ""), anchor_text=text,
        section=kw.pop("section", "Biological Agents"), kind=kw.pop("kind", LinkKind.CITATION),
        **kw,
    )


def record_links(store: Store, run_id: int, page: str, citations: list[Citation]) -> None:
    """A page fetched in full with these links, as the crawl records it: a
    run's links are found through its pages."""
    store.record_page(PageRecord(run_id=run_id, url=page, status="ok", http_status=200,
                                 links=len(citations)))
    store.record_citations(run_id, page, citations)


def check(
    url: str,
    at: dt.datetime,
    status: LinkStatus = LinkStatus.OK,
    *,
    reason: str = "http_200",
    strikes: int = 0,
    failing_since: dt.datetime | None = None,
    http_status: int | None = 200,
    **obs_kw,  # type: ignore[no-untyped-def]
) -> tuple[Observation, Verdict, UrlState]:
    obs = Observation(url=url, checked_at=at, http_status=http_status, **obs_kw)
    verdict = Verdict(url=url, status=status, reason=reason)
    state = UrlState(
        url=url, status=status, reason=reason, strikes=strikes, failing_since=failing_since,
        last_checked_at=at, first_seen_at=at, recent=(status.value,),
    )
    return obs, verdict, state


# ---------------------------------------------------------------- opening


def test_open_creates_parent_dirs_and_twice_applies_migrations_once(db_path: Path) -> None:
    Store.open(db_path).close()
    Store.open(db_path).close()
    conn = sqlite3.connect(db_path)
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names == [m.name for m in MIGRATIONS._migrations]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "pages", "occurrences", "observations", "url_state", "outbox", "locks", "meta"} <= tables


def _open_new_files(paths: list[str], barrier: Any, results: Any) -> None:
    failed = []
    for path in paths:
        barrier.wait()  # every process opens the same new file at the same instant
        try:
            Store.open(path).close()
        except StoreError as exc:
            failed.append(str(exc))
    results.put(failed)


def test_processes_opening_one_new_file_at_once_all_get_it(tmp_path: Path) -> None:
    """Two services (or a service and `monitor check`) started together on a new file.

    SQLite answers "database is locked" to the switch to WAL without waiting
    for busy_timeout; before the store waited for it, about one open in ten
    failed here (the CI run that killed a service at start).
    """
    ctx = multiprocessing.get_context("fork")
    n, rounds = 4, 30
    paths = [str(tmp_path / f"new{i}" / "monitor.db") for i in range(rounds)]
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_open_new_files, args=(paths, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    failures = [msg for _ in range(n) for msg in results.get(timeout=60)]
    for p in procs:
        p.join(timeout=20)
    assert failures == []
    for path in paths:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == len(
                MIGRATIONS._migrations)


def test_a_byte_that_is_not_utf8_from_a_server_loses_nothing_else(store: Store) -> None:
    """aiohttp decodes such header bytes as lone surrogates, which SQLite
    refuses: one in any field failed the whole batch (UnicodeEncodeError,
    every link of it lost, and the audit ended)."""
    from dataclasses import replace

    run = store.start_run(T0)
    odd = "https://e.org/odd"
    obs, verdict, state = check(odd, T0, title="A\udc9bB", error_detail="refused \udcff",
                                content_type="text/html; \udc9b", final_url="https://e.org/\udc9b",
                                meta_title="\udc80")
    store.record_observations(run.id, [
        check("https://e.org/fine", T0),
        (obs, replace(verdict, detail="moved to \udc9b"), replace(state, last_ok_title="T\udc9b")),
    ])
    store.record_page(PageRecord(run_id=run.id, url=PAGE_A, status="error", error="Location \udc9b"))
    (entry,) = store.history(odd)
    assert (entry.title, entry.final_url) == ("A\ufffdB", "https://e.org/\ufffd")
    assert store.url_state(odd).last_ok_title == "T\ufffd"  # type: ignore[union-attr]
    assert len(store.history("https://e.org/fine")) == 1
    assert store.run_pages(run.id)[0].error == "Location \ufffd"


def test_a_final_address_of_500000_characters_is_kept_clipped(store: Store) -> None:
    """Each redirected link's row kept its final address whole, every week
    (a server's Location, up to the client's header limit), as a hop's is."""
    run = store.start_run(T0)
    url = "https://e.org/moved"
    store.record_observations(run.id, [check(url, T0, final_url="https://e.org/new?" + "a" * 500_000)])
    (entry,) = store.history(url)
    assert entry.final_url == "https://e.org/new?" + "a" * (2048 - 18) + "\u2026"
    short = "https://e.org/short"
    store.record_observations(run.id, [check(short, T0, final_url="https://e.org/new")])
    assert store.history(short)[0].final_url == "https://e.org/new"


def test_wal_foreign_keys_and_busy_timeout_are_on(store: Store, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


async def test_readers_map_the_file_and_one_pass_connections_do_not(store: Store, db_path: Path) -> None:
    assert store._conn.execute("PRAGMA mmap_size").fetchone()[0] > 0  # reports
    with Store.open(db_path, mapped=False) as once:
        assert once._conn.execute("PRAGMA mmap_size").fetchone()[0] == 0
    async with await StoreWriter.open(db_path) as writer:  # the audit's writer
        assert await writer._in_thread(
            lambda: writer._store._conn.execute("PRAGMA mmap_size").fetchone()[0]) == 0


def test_a_file_that_is_not_sqlite_is_a_clear_store_error(tmp_path: Path) -> None:
    bogus = tmp_path / "monitor.db"
    bogus.write_text("[database]\npath = 'oops'\n" * 200)
    with pytest.raises(StoreError) as info:
        Store.open(bogus)
    message = str(info.value)
    assert "\n" not in message and str(bogus) in message and "not a SQLite database" in message


def test_a_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        Store.open(tmp_path)


def test_in_memory_store_works_for_fixtures() -> None:
    with Store.open(":memory:") as s:
        assert s.start_run(T0).id == 1


def test_foreign_keys_refuse_an_observation_of_an_unknown_run(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.record_observations(99, [check(PUBMED, T0)])


# -------------------------------------------------------------------- runs


def test_runs_lifecycle_and_counts(store: Store) -> None:
    run = store.start_run(T0)
    assert (run.status, run.started_at, run.finished_at) == ("running", T0, None)
    record_links(store, run.id, PAGE_A, [cite(PAGE_A, PUBMED), cite(PAGE_A, "https://b.org/")])
    record_links(store, run.id, PAGE_B, [cite(PAGE_B, PUBMED), cite(PAGE_B, None, raw_href="mailto:x@y")])
    store.finish_run(run.id, T0 + hours(1))
    done = store.get_run(run.id)
    assert done is not None
    assert (done.status, done.finished_at, done.links, done.urls) == ("finished", T0 + hours(1), 4, 2)
    assert store.latest_run() == done
    assert store.get_run(12345) is None


def test_a_run_counts_no_excluded_url_among_the_urls_requested(store: Store) -> None:
    """`checker.exclude` keeps a URL's address on its link but never requests
    it: a link (not checked), no URL. The run's `urls` (/healthz `urls`, the
    report JSON's `run.urls`) counted it: 34 beside the report's 31
    (walkthrough 9b #9)."""
    run = store.start_run(T0)
    record_links(store, run.id, PAGE_A, [cite(PAGE_A, PUBMED), cite(PAGE_A, PUBMED),
                                         cite(PAGE_A, "https://b.org/x", skip_reason="excluded")])
    store.finish_run(run.id, T0 + hours(1))
    done = store.get_run(run.id)
    assert done is not None and (done.links, done.urls) == (3, 1)


def test_latest_run_finished_only_and_runs_newest_first(store: Store) -> None:
    first = store.start_run(T0)
    store.finish_run(first.id, T0 + hours(1))
    second = store.start_run(T0 + hours(2))
    assert store.latest_run().id == first.id  # type: ignore[union-attr]
    assert store.latest_run(finished_only=False).id == second.id  # type: ignore[union-attr]
    assert [r.id for r in store.runs()] == [second.id, first.id]
    assert [r.id for r in store.runs(limit=1)] == [second.id]


@pytest.mark.parametrize(
    ("statuses", "expected_index"),
    [
        ([], None),
        (["running"], 0),
        (["interrupted"], 0),
        (["finished"], None),
        (["finished", "running"], 1),
        (["interrupted", "finished"], None),  # abandoned below a finished run
        # "p:" a partial run (`check --page`): never resumed, and it abandons nothing
        (["p:running"], None),
        (["p:interrupted"], None),
        (["interrupted", "p:finished"], 0),
        (["running", "p:interrupted", "p:finished"], 0),
        (["finished", "p:interrupted"], None),
        (["interrupted", "p:finished", "finished"], None),
    ],
)
def test_unfinished_run(store: Store, statuses: list[str], expected_index: int | None) -> None:
    ids = []
    for i, status in enumerate(statuses):
        partial, _, status = status.rpartition(":")
        run = store.start_run(T0 + hours(i), partial=bool(partial))
        ids.append(run.id)
        if status != "running":
            store.finish_run(run.id, T0 + hours(i) + hours(0.5), status)
    found = store.unfinished_run()
    assert (found.id if found else None) == (ids[expected_index] if expected_index is not None else None)


def test_a_partial_run_is_the_latest_run_but_not_the_latest_audit(store: Store) -> None:
    full = store.start_run(T0)
    store.finish_run(full.id, T0 + hours(1))
    partial = store.start_run(T0 + hours(2), partial=True)
    store.finish_run(partial.id, T0 + hours(3))
    assert store.get_run(partial.id).partial and not store.get_run(full.id).partial  # type: ignore[union-attr]
    assert store.latest_run().id == partial.id  # type: ignore[union-attr]
    assert store.latest_run(full_only=True).id == full.id  # type: ignore[union-attr]
    unfinished = store.start_run(T0 + hours(4))
    assert store.latest_run(full_only=True, finished_only=False).id == unfinished.id  # type: ignore[union-attr]
    assert store.latest_run(full_only=True).id == full.id  # type: ignore[union-attr]


def test_a_reported_partial_run_is_no_baseline_for_the_next_report(store: Store) -> None:
    r1 = store.start_run(T0)
    partial = store.start_run(T0 + hours(1), partial=True)
    r3 = store.start_run(T0 + hours(2))
    store.mark_reported(r1.id, T0 + hours(3))
    store.mark_reported(partial.id, T0 + hours(4))  # `monitor report --send` after `check --page`
    assert store.previous_reported_run(r3.id).id == r1.id  # type: ignore[union-attr]
    assert store.previous_reported_run(partial.id).id == r1.id  # type: ignore[union-attr]


def test_a_database_made_before_partial_runs_gains_the_column(db_path: Path) -> None:
    """Opening a file from before migration m002 adds `runs.partial`; its runs are full audits."""
    with Store.open(db_path) as store:
        kept = store.start_run(T0)
        store.finish_run(kept.id, T0 + hours(1))
    with sqlite3.connect(db_path) as conn:  # back to the file as the first release left it
        conn.execute("ALTER TABLE runs DROP COLUMN partial")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm002_partial_runs'")
    with Store.open(db_path) as store:
        run = store.get_run(kept.id)
        assert run is not None and run.partial is False and run.status == "finished"
        assert store.latest_run(full_only=True) == run
        assert store.start_run(T0 + hours(2), partial=True).partial


def test_a_database_made_before_shared_links_points_each_page_at_its_own_run(db_path: Path) -> None:
    """Opening a file from before migration m004 adds `pages.links_run`: every
    page's links are its own run's (they were copied every week). A row
    inserted without it, as older code and the benchmark's generator do,
    gets its own run too (the trigger)."""
    with Store.open(db_path) as store:
        old = store.start_run(T0)
        record_links(store, old.id, PAGE_A, [cite(PAGE_A, PUBMED)])
        store.finish_run(old.id, T0 + hours(1))
    with sqlite3.connect(db_path) as conn:  # back to the file as m003 left it
        conn.execute("DROP TRIGGER pages_links_run_default")
        conn.execute("DROP INDEX pages_links_run")
        conn.execute("ALTER TABLE pages DROP COLUMN links_run")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm004_shared_page_links'")
    with Store.open(db_path) as store:
        assert [c.url for c in store.run_citations(old.id)] == [PUBMED]
        assert [l.url for l in store.run_links(old.id)] == [PUBMED]
        later = store.start_run(T0 + WEEK)
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO pages (run_id, url, status, fetched_at) VALUES (?, ?, 'ok', ?)",
                     (later.id, PAGE_B, "2026-11-30T06:00:00+00:00"))
    with Store.open(db_path) as store:
        store.record_citations(later.id, PAGE_B, [cite(PAGE_B, "https://b.org/")])
        store.finish_run(later.id, T0 + WEEK + hours(1))
        assert (store.get_run(later.id).links, [p.links_run for p in store.run_pages(later.id)]) == (  # type: ignore[union-attr]
            1, [None])
    assert _count(db_path, "SELECT count(*) FROM pages WHERE links_run = run_id") == 2


def test_a_database_made_before_status_since_dates_its_moved_links_from_their_history(
        db_path: Path) -> None:
    """Opening a file from before migration m005 adds `url_state.status_since`,
    filled from each moved or drifted URL's history (the first check of its
    latest run of that status); the others get it at their next change."""
    with Store.open(db_path) as store:
        run = store.start_run(T0)
        for week, status in enumerate([LinkStatus.MOVED, LinkStatus.OK, LinkStatus.MOVED, LinkStatus.MOVED]):
            store.record_observations(run.id, [check(PUBMED, T0 + week * WEEK, status, reason="x")])
        store.record_observations(run.id, [check(PAGE_A, T0, LinkStatus.OK)])
    with sqlite3.connect(db_path) as conn:  # back to the file as m004 left it
        conn.execute("ALTER TABLE url_state DROP COLUMN status_since")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm005_url_status_since'")
    with Store.open(db_path) as store:
        states = store.url_states([PUBMED, PAGE_A])
    assert (states[PUBMED].status_since, states[PAGE_A].status_since) == (T0 + 2 * WEEK, None)


def test_a_database_made_before_the_counters_counts_from_its_next_check(db_path: Path) -> None:
    """m012 adds `url_state.checks`, `failures`, `counted_since` to a file
    m011 made, not filled from the observations (a pass over a year of
    them): its states read as counted from nothing, so a flapping row says
    its recent statuses; the next check counts from there."""
    with Store.open(db_path) as store:
        run = store.start_run(T0)
        state = None
        for week, status in enumerate([LinkStatus.OK, LinkStatus.ERROR, LinkStatus.OK, LinkStatus.ERROR]):
            obs, verdict, _ = check(PUBMED, T0 + week * WEEK, status, reason="x")
            state = next_state(state, verdict, obs)
            store.record_observations(run.id, [(obs, verdict, state)])
        assert store.fail_tallies([PUBMED])[PUBMED] == FailTally(4, 2, T0, T0 + 2 * WEEK)
    with sqlite3.connect(db_path) as conn:  # back to the file as m011 left it
        for column in ("checks", "failures", "counted_since"):
            conn.execute(f"ALTER TABLE url_state DROP COLUMN {column}")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm012_url_state_counts'")
    with Store.open(db_path) as store:
        state = store.url_state(PUBMED)
        assert state is not None and (state.checks, state.failures, state.counted_since) == (0, 0, None)
        assert store.fail_tallies([PUBMED])[PUBMED] == FailTally(len(state.recent), 2, None, T0 + 2 * WEEK)
        # a report already sent, rendered again: as of then, from the observations
        assert store.fail_tallies([PUBMED], until=T0 + 2 * WEEK)[PUBMED] == FailTally(3, 1, T0, T0 + 2 * WEEK)


def test_a_database_made_before_page_moves_reads_its_pages_as_not_moved(db_path: Path) -> None:
    """Opening a file from before migration m006 adds `pages.moved_to`: its
    pages read as not moved (their fetches kept no redirects); the next
    fetch records where its page now lives."""
    with Store.open(db_path) as store:
        old = store.start_run(T0)
        store.record_page(PageRecord(run_id=old.id, url=PAGE_A, status="ok", title="A"), now=T0)
    with sqlite3.connect(db_path) as conn:  # back to the file as m005 left it
        conn.execute("ALTER TABLE pages DROP COLUMN moved_to")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_page_moved_to'")
    with Store.open(db_path) as store:
        assert [(p.title, p.moved_to) for p in store.run_pages(old.id)] == [("A", None)]
        later = store.start_run(T0 + WEEK)
        store.record_page(PageRecord(run_id=later.id, url=PAGE_A, status="ok", moved_to=PAGE_B),
                          now=T0 + WEEK)
        assert store.last_page(PAGE_A).moved_to == PAGE_B  # type: ignore[union-attr]


def test_a_database_made_before_the_depth_cut_reads_its_cuts_as_not_too_deep(db_path: Path) -> None:
    """m009 adds `site_cuts.max_depth`/`.too_deep` to a file m008 made: its
    cuts read as before (max_pages only), later ones keep their depth."""
    with Store.open(db_path) as store:
        old = store.start_run(T0)
        store.record_site_cut(old.id, SiteCut(site="s", start="https://s.example/", max_pages=5, not_audited=3))
    with sqlite3.connect(db_path) as conn:  # back to the file as m008 left it
        conn.execute("ALTER TABLE site_cuts DROP COLUMN max_depth")
        conn.execute("ALTER TABLE site_cuts DROP COLUMN too_deep")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm009_site_cuts_depth'")
    with Store.open(db_path) as store:
        assert store.run_site_cuts(old.id) == [SiteCut(site="s", start="https://s.example/", max_pages=5,
                                                       not_audited=3)]
        later = store.start_run(T0 + WEEK)
        deep = SiteCut(site="s", start="https://s.example/", max_pages=5, not_audited=0, max_depth=2, too_deep=9)
        store.record_site_cut(later.id, deep)
        assert store.run_site_cuts(later.id) == [deep]


def test_a_database_made_before_site_cuts_reads_its_runs_as_not_cut(db_path: Path) -> None:
    """Opening a file from before migration m007 adds `site_cuts`: its runs
    read as not cut short (their reports said nothing of it); a run from
    then on keeps its cuts, which go with the run."""
    with Store.open(db_path) as store:
        old = store.start_run(T0)
    with sqlite3.connect(db_path) as conn:  # back to the file as m007 left it
        conn.execute("DROP TABLE site_cuts")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name IN ('m008_site_cuts', 'm009_site_cuts_depth')")
    with Store.open(db_path) as store:
        assert store.run_site_cuts(old.id) == []
        later = store.start_run(T0 + WEEK)
        cuts = [SiteCut(site="www.sclero.org", start="https://www.sclero.org/", max_pages=5,
                        not_audited=18, config="site.toml"),
                SiteCut(site="Blog", start="https://blog.sclero.org/", max_pages=2, not_audited=1)]
        for cut in cuts:
            store.record_site_cut(later.id, cut)
        store.record_site_cut(later.id, cuts[0])  # a redone page phase: replaced, not doubled
        assert sorted(store.run_site_cuts(later.id), key=lambda c: c.site) == sorted(cuts, key=lambda c: c.site)
        assert store.run_site_cuts(old.id) == []


def test_a_database_a_newer_version_migrated_is_refused_with_what_to_do(db_path: Path) -> None:
    Store.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                     "VALUES ('monitor', 'm999_from_the_future', '2027-01-01 00:00:00+00:00')")
    with pytest.raises(StoreError, match=r"written by a newer version of the monitor \(its schema has "
                                         r"m999_from_the_future\): this one would misread it"):
        Store.open(db_path)


def test_previous_reported_run(store: Store) -> None:
    r1, r2, r3 = (store.start_run(T0 + hours(i)) for i in range(3))
    assert store.previous_reported_run(r3.id) is None
    store.mark_reported(r1.id, T0 + hours(5))
    store.mark_reported(r3.id, T0 + hours(6))
    previous = store.previous_reported_run(r3.id)
    assert previous is not None and previous.id == r1.id and previous.reported_at == T0 + hours(5)
    assert store.previous_reported_run(r1.id) is None
    assert store.previous_reported_run(r2.id).id == r1.id  # type: ignore[union-attr]


# ------------------------------------------------------------------ pages


def test_pages_round_trip_and_last_page_is_the_latest_ok_fetch(store: Store) -> None:
    r1, r2 = store.start_run(T0), store.start_run(T0 + hours(168))
    ok = PageRecord(
        run_id=r1.id, url=PAGE_A, status="ok", http_status=200, title="Treatments",
        links=31, entries=("Rituximab in DM", "IVIG"), name="DM/PM", owner="ed@example.org",
        etag='"abc"', last_modified="Mon, 23 Nov 2026 06:00:00 GMT",
    )
    failed = PageRecord(run_id=r2.id, url=PAGE_A, status="error", error="timeout")
    store.record_page(ok, now=T0)
    store.record_page(failed, now=T0 + hours(168))
    assert store.run_pages(r1.id) == [ok]
    assert store.run_pages(r2.id) == [failed]
    assert store.last_page(PAGE_A) == ok
    assert store.last_page(PAGE_B) is None
    newer = PageRecord(run_id=r2.id, url=PAGE_A, status="ok", etag='"def"')
    store.record_page(newer, now=T0 + hours(169))  # replaces r2's error record
    assert store.run_pages(r2.id) == [newer]
    assert store.last_page(PAGE_A) == newer


def test_where_a_page_moved_is_kept_per_fetch_also_for_a_304(store: Store) -> None:
    """`moved_to` is the fetch's own, not the row's it shares links with: a
    304 that came through a 301 says so even when the full fetch did not."""
    r1, r2, r3 = (store.start_run(T0 + i * WEEK) for i in range(3))
    full = PageRecord(run_id=r1.id, url=PAGE_A, status="ok", title="A", entries=("x",), etag='"e"')
    moved = replace(full, run_id=r2.id, status="not_modified", http_status=304, links_run=r1.id,
                    moved_to="https://new.example/a.html")
    back = replace(moved, run_id=r3.id, moved_to=None)
    for i, page in enumerate((full, moved, back)):
        store.record_page(page, now=T0 + i * WEEK)
    assert [p for r in (r1, r2, r3) for p in store.run_pages(r.id)] == [full, moved, back]
    assert store.last_page(PAGE_A) == full


# ------------------------------------------------------------ occurrences


def test_citations_round_trip_with_and_without_context(store: Store) -> None:
    run = store.start_run(T0)
    citations = [
        cite(PAGE_A, PUBMED, "Rituximab", line=120, element="a", attribute="href",
             context=EntryContext("Rituximab in DM", "A trial.", "PubMed, Clin Rheumatol, 04/30/2018.",
                                  dt.date(2018, 4, 30), expired_mark=True)),
        cite(PAGE_A, PUBMED, "again", context=EntryContext()),
        cite(PAGE_A, None, "mail us", raw_href="mailto:ed@example.org", kind=LinkKind.NAVIGATION,
             skip_reason="mailto"),
        cite(PAGE_A, "https://x.org/s.js", "", kind=LinkKind.RESOURCE, element="script", attribute="src"),
    ]
    record_links(store, run.id, PAGE_A, citations)
    assert store.run_citations(run.id) == citations
    assert store.run_citations(run.id, page_url=PAGE_B) == []


def test_record_citations_again_replaces_the_page(store: Store) -> None:
    run = store.start_run(T0)
    record_links(store, run.id, PAGE_A, [cite(PAGE_A, PUBMED), cite(PAGE_A, "https://b.org/")])
    record_links(store, run.id, PAGE_B, [cite(PAGE_B, PUBMED)])
    record_links(store, run.id, PAGE_A, [cite(PAGE_A, "https://c.org/")])
    assert [c.url for c in store.run_citations(run.id)] == ["https://c.org/", PUBMED]


def test_citations_of_a_url(store: Store) -> None:
    r1, r2 = store.start_run(T0), store.start_run(T0 + hours(1))
    record_links(store, r1.id, PAGE_A, [cite(PAGE_A, PUBMED)])
    record_links(store, r2.id, PAGE_B, [cite(PAGE_B, PUBMED, "b")])
    assert [c.page_url for c in store.citations_of(PUBMED)] == [PAGE_B]
    assert [c.page_url for c in store.citations_of(PUBMED, run_id=r1.id)] == [PAGE_A]
    assert store.citations_of("https://never.example/") == []


# ------------------------------------------------------------ observations


def test_observation_round_trips_to_history_and_state(store: Store) -> None:
    run = store.start_run(T0)
    hops = (Hop("http://a.org/x", 301, "https://a.org/x"), Hop("https://a.org/x", 302, "https://a.org/y"))
    obs = Observation(
        url="http://a.org/x", checked_at=T0, http_status=404, final_url="https://a.org/y",
        redirects=hops, error_kind=None, elapsed_ms=321, bytes_read=2048,
        content_type="text/html", title="Not found", meta_title="", content_hash="h1",
        attempts=2, method="GET",
    )
    verdict = Verdict(url=obs.url, status=LinkStatus.EXPIRED, reason="http_404", detail="gone",
                      suggested_url="https://web.archive.org/x")
    state = UrlState(
        url=obs.url, status=LinkStatus.EXPIRED, reason="http_404", strikes=1, failing_since=T0,
        last_ok_at=T0 - hours(168), last_checked_at=T0, first_seen_at=T0 - hours(336),
        flapping=True, recent=("ok", "expired"), last_ok_title="Rituximab",
        checks=9, failures=4, counted_since=T0 - hours(336),
    )
    store.record_observations(run.id, [(obs, verdict, state)])
    assert store.url_state(obs.url) == state
    assert store.history(obs.url) == [
        HistoryEntry(
            run_id=run.id, checked_at=T0, status=LinkStatus.EXPIRED, reason="http_404",
            http_status=404, final_url="https://a.org/y", redirects=hops, elapsed_ms=321,
            bytes_read=2048, title="Not found", error_kind="", detail="gone",
            suggested_url="https://web.archive.org/x",
        )
    ]
    assert store.observed_urls(run.id) == {obs.url}


def _chain(n: int, pad: int = 0) -> tuple[Hop, ...]:
    return tuple(Hop(f"https://a.org/{i}?{'p' * pad}", 301 if i == 0 else 302,
                     f"https://a.org/{i + 1}?{'p' * pad}") for i in range(n))


_CLIPPED = "https://a.org/{}?" + "p" * (2048 - len("https://a.org/0?")) + "\u2026"


@pytest.mark.parametrize(
    ("hops", "kept"),
    [
        pytest.param(_chain(2), _chain(2), id="short-chain-whole"),
        pytest.param(_chain(6), _chain(6), id="six-hops-whole"),
        pytest.param(_chain(7), (*_chain(5), Hop("", 0, "1 more redirects, not kept"), _chain(7)[-1]),
                     id="seven-hops-first-five-and-last"),
        pytest.param(_chain(19), (*_chain(5), Hop("", 0, "13 more redirects, not kept"), _chain(19)[-1]),
                     id="nineteen-hops"),
        pytest.param(_chain(2, pad=30_000),
                     (Hop(_CLIPPED.format(0), 301, _CLIPPED.format(1)),
                      Hop(_CLIPPED.format(1), 302, _CLIPPED.format(2))), id="30-KB-locations-clipped"),
    ],
)
def test_a_redirect_chain_is_stored_bounded(store: Store, hops: tuple[Hop, ...],
                                            kept: tuple[Hop, ...]) -> None:
    """A cited server may send 19 hops of 30 KB Locations: stored whole that
    was 1.1 MB for one link, each week (robust9, finding 4)."""
    run = store.start_run(T0)
    obs = Observation(url=hops[0].url, checked_at=T0, http_status=404, final_url="https://a.org/end",
                      redirects=hops)
    verdict = Verdict(url=obs.url, status=LinkStatus.EXPIRED, reason="http_404")
    state = UrlState(url=obs.url, status=LinkStatus.EXPIRED, reason="http_404", last_checked_at=T0,
                     first_seen_at=T0)
    store.record_observations(run.id, [(obs, verdict, state)])
    (entry,) = store.history(obs.url)
    assert entry.redirects == kept
    assert len(store._conn.execute("SELECT redirects FROM observations").fetchone()[0]) < 6 * 2 * 2100


@pytest.mark.parametrize(
    ("final_url", "title", "meta_title", "stored"),
    [
        # nine answers in ten: no redirect, the scholarly title is the <title>
        (PUBMED, "Rituximab in SSc", "Rituximab in SSc", ("", "")),
        (PUBMED, "Rituximab in SSc - PubMed", "Rituximab in SSc", ("", "Rituximab in SSc")),
        ("https://pubmed.ncbi.nlm.nih.gov/29713845", "T", "", ("https://pubmed.ncbi.nlm.nih.gov/29713845", "")),
        (None, "", "", (None, "")),
    ],
)
def test_an_answer_stores_no_second_copy_of_its_url_or_its_title(
        store: Store, db_path: Path, final_url: str | None, title: str, meta_title: str,
        stored: tuple[str | None, str]) -> None:
    """The URL itself as the final URL and a meta title equal to the
    <title> are stored as '' (a third of a year's history at 100,000
    links); every reader still sees the URL."""
    run = store.start_run(T0)
    record_links(store, run.id, PAGE_A, [cite(PAGE_A, PUBMED)])
    store.record_observations(run.id, [check(PUBMED, T0, final_url=final_url, title=title,
                                              meta_title=meta_title)])
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT final_url, meta_title FROM observations").fetchone() == stored
        # a row written before this rule (the URL stored twice) reads the same
        expected = (store.history(PUBMED)[0].final_url, store.run_links(run.id)[0].final_url)
        assert expected == (final_url, final_url)
        with conn:
            conn.execute("UPDATE observations SET final_url = ? WHERE final_url = ''", (PUBMED,))
    finally:
        conn.close()
    assert (store.history(PUBMED)[0].final_url, store.run_links(run.id)[0].final_url) == expected


def test_url_states_at_a_past_instant_are_those_its_latest_observation_left(store: Store) -> None:
    """What a report sent at T knew: the rechecks after T are not in it."""
    run = store.start_run(T0)
    down = dict(status=LinkStatus.ERROR, reason="http_503", http_status=503)
    store.record_observations(run.id, [check(PUBMED, T0, strikes=1, failing_since=T0, **down)])
    store.record_observations(None, [check(PUBMED, T0 + hours(30), strikes=3, failing_since=T0, **down)])
    store.record_observations(None, [check(PAGE_A, T0 + hours(30))])  # first seen after T
    at_report = store.url_states_at([PUBMED, PAGE_A], T0 + hours(2))
    assert set(at_report) == {PUBMED}
    assert (at_report[PUBMED].strikes, at_report[PUBMED].failing_since) == (1, T0)
    # all of it now, and when its status began read from the history where
    # the state does not say (a state written before status_since)
    assert store.url_states_at([PUBMED], T0 + hours(31))[PUBMED] == replace(
        store.url_state(PUBMED), status_since=T0)  # type: ignore[type-var]
    store.mark_reported(run.id, T0 + hours(2))
    store.mark_reported(run.id, T0 + hours(50))  # sent again: still the report of its first date
    assert store.get_run(run.id).reported_at == T0 + hours(2)  # type: ignore[union-attr]


def test_error_kind_and_naive_datetimes_are_utc(store: Store) -> None:
    naive = dt.datetime(2026, 11, 23, 6, 0)
    obs, verdict, state = check(PUBMED, naive, LinkStatus.ERROR, reason="timeout", http_status=None,
                                error_kind=ErrorKind.TIMEOUT)
    store.record_observations(None, [(obs, verdict, state)])
    [entry] = store.history(PUBMED)
    assert entry.error_kind == "timeout" and entry.run_id is None
    assert entry.checked_at == T0 and entry.checked_at.tzinfo is not None


def test_first_seen_at_never_moves(store: Store) -> None:
    store.record_observations(None, [check(PUBMED, T0)])
    store.record_observations(None, [check(PUBMED, T0 + hours(168))])
    state = store.url_state(PUBMED)
    assert state is not None
    assert state.first_seen_at == T0 and state.last_checked_at == T0 + hours(168)


def test_history_is_newest_last_and_limit_keeps_the_latest(store: Store) -> None:
    times = [T0 + hours(h) for h in (48, 0, 24, 72)]  # recorded out of order
    for at in times:
        store.record_observations(None, [check(PUBMED, at)])
    store.record_observations(None, [check("https://other.org/", T0)])
    assert [e.checked_at for e in store.history(PUBMED)] == sorted(times)
    assert [e.checked_at for e in store.history(PUBMED, limit=2)] == sorted(times)[-2:]


def test_url_states_reads_more_urls_than_one_in_chunk(store: Store) -> None:
    urls = [f"https://example.org/{i}" for i in range(1234)]
    store.record_observations(None, [check(u, T0) for u in urls])
    states = store.url_states(urls + ["https://unknown.example/"])
    assert set(states) == set(urls)
    assert states[urls[700]].url == urls[700]


def test_archived_urls_are_read_for_many_urls_at_once(store: Store) -> None:
    urls = [f"https://example.org/{i}" for i in range(1234)]
    store.record_observations(None, [check(u, T0, LinkStatus.EXPIRED) for u in urls])
    assert store.set_archived_url(urls[3], "https://web.archive.org/web/2019/x")
    assert store.set_archived_url(urls[900], "https://web.archive.org/web/2020/y")
    found = store.archived_urls(urls + ["https://unknown.example/"])
    assert found == {urls[3]: "https://web.archive.org/web/2019/x",
                     urls[900]: "https://web.archive.org/web/2020/y"}


def test_a_mismatched_triple_is_refused(store: Store) -> None:
    obs, verdict, state = check(PUBMED, T0)
    with pytest.raises(ValueError, match="different URLs"):
        store.record_observations(None, [(obs, verdict, UrlState(url="https://x/", status=LinkStatus.OK))])


# --------------------------------------------------------------- run_links


def test_run_links_joins_occurrences_with_the_latest_verdict(store: Store) -> None:
    r1 = store.start_run(T0)
    store.record_observations(r1.id, [check(PUBMED, T0, LinkStatus.ERROR, reason="http_500",
                                            strikes=1, failing_since=T0, http_status=500)])
    run = store.start_run(T0 + hours(168))
    ctx = EntryContext("Rituximab in DM", "", "PubMed, Clin Rheumatol, 04/30/2018.", dt.date(2018, 4, 30))
    record_links(store, run.id, PAGE_A, [
        cite(PAGE_A, PUBMED, "Rituximab", section="Biologics", context=ctx),
        cite(PAGE_A, None, "write", raw_href="mailto:ed@example.org", kind=LinkKind.NAVIGATION,
             skip_reason="mailto"),
        cite(PAGE_A, "https://unchecked.org/", "later"),
        cite(PAGE_A, "https://excluded.org/", "ex", skip_reason="excluded"),
        cite(PAGE_A, None, "typo", raw_href="http://", skip_reason="invalid_url"),
    ])
    record_links(store, run.id, PAGE_B, [cite(PAGE_B, PUBMED, "see also", kind=LinkKind.NAVIGATION)])
    first = T0 + hours(168)
    store.record_observations(run.id, [
        check(PUBMED, first, LinkStatus.ERROR, reason="timeout", strikes=2, failing_since=T0,
              http_status=None),
    ])
    store.record_observations(run.id, [
        check(PUBMED, first + hours(1), LinkStatus.EXPIRED, reason="http_404", strikes=3,
              failing_since=T0, http_status=404),
    ])
    store.set_archived_url(PUBMED, "https://web.archive.org/web/2018/" + PUBMED)
    # a recheck after the run moves the state on; the run's links keep their snapshot
    store.record_observations(None, [check(PUBMED, first + hours(30))])

    links = store.run_links(run.id)
    assert [(l.page, l.url, l.status, l.reason) for l in links] == [
        (PAGE_A, PUBMED, LinkStatus.EXPIRED, "http_404"),
        (PAGE_A, "mailto:ed@example.org", LinkStatus.SKIPPED, "mailto"),
        (PAGE_A, "https://unchecked.org/", LinkStatus.SKIPPED, "not_checked"),
        (PAGE_A, "https://excluded.org/", LinkStatus.SKIPPED, "excluded"),
        # an href no browser can open is for an editor to fix: an error, not a skip
        (PAGE_A, "http://", LinkStatus.ERROR, "invalid_url"),
        (PAGE_B, PUBMED, LinkStatus.EXPIRED, "http_404"),
    ]
    cited, _, _, _, _, nav = links
    assert (cited.strikes, cited.failing_since, cited.http_status) == (3, T0, 404)
    assert cited.checked_at == first + hours(1)
    assert (cited.entry_title, cited.entry_source, cited.entry_date) == (
        "Rituximab in DM", "PubMed, Clin Rheumatol, 04/30/2018.", dt.date(2018, 4, 30))
    assert cited.archived_url == "https://web.archive.org/web/2018/" + PUBMED
    assert (cited.text, cited.section, cited.kind) == ("Rituximab", "Biologics", LinkKind.CITATION)
    assert (nav.text, nav.kind, nav.strikes) == ("see also", LinkKind.NAVIGATION, 3)
    assert links[1].checked_at is None and links[1].strikes == 0
    # one URL cited twice: one observation per check, not per occurrence
    assert store._conn.execute(
        "SELECT count(*) FROM observations WHERE run_id = ? AND url = ?", (run.id, PUBMED)
    ).fetchone()[0] == 2


def test_run_links_give_each_url_its_states_flapping_flag_and_archived_copy(store: Store) -> None:
    """The whole run's readers take the flags from one scan of the marked URL
    states, not a join per link: the same links as the join gives, marked
    or not, an invalid href (no URL) included."""
    run = store.start_run(T0)
    urls = [f"https://{name}.example.org/a" for name in ("flaps", "archived", "both", "plain")]
    record_links(store, run.id, PAGE_A, [
        *(cite(PAGE_A, url, url) for url in urls),
        cite(PAGE_A, None, "typo", raw_href="http://", skip_reason="invalid_url"),
    ])
    checks = [check(url, T0, LinkStatus.ERROR, reason="http_503", http_status=503) for url in urls]
    checks[0] = (*checks[0][:2], replace(checks[0][2], flapping=True))
    checks[2] = (*checks[2][:2], replace(checks[2][2], flapping=True))
    store.record_observations(run.id, checks)
    store.set_archived_url(urls[1], "https://web.archive.org/web/2019/b")
    store.set_archived_url(urls[2], "https://web.archive.org/web/2019/c")
    store.set_archived_url("https://not-in-this-run.example/", "https://web.archive.org/web/2019/d")

    links = store.run_links(run.id)
    assert [(l.url, l.flapping, l.archived_url) for l in links] == [
        (urls[0], True, None),
        (urls[1], False, "https://web.archive.org/web/2019/b"),
        (urls[2], True, "https://web.archive.org/web/2019/c"),
        (urls[3], False, None),
        ("http://", False, None),
    ]
    joined = [_link_result(r) for r in store._conn.execute(RUN_LINKS_SQL, (run.id,))]
    assert links == joined == list(store.iter_run_links(run.id))


def test_links_built_slot_by_slot_are_the_dataclasss_own() -> None:
    """`_link_result` builds its 100,000 LinkResults through the slots'
    descriptors (twice as fast as the frozen dataclass's `__init__`): the
    same objects, equal and hashed alike, still frozen; a dataclass whose
    `__init__` does more is refused, not built wrong."""
    values = {f.name: f"v-{f.name}" for f in fields(LinkResult)}
    values.update(kind=LinkKind.CITATION, status=LinkStatus.EXPIRED, strikes=3, line=12, expired_mark=False)
    built, own = _new_link_result(**values), LinkResult(**values)
    assert built == own and hash(built) == hash(own) and repr(built) == repr(own)
    assert _new_link_result(*values.values()) == own
    with pytest.raises(FrozenInstanceError):
        built.url = "https://elsewhere.example/"  # type: ignore[misc]

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            raise ValueError("refused")

    @dataclass(slots=True)
    class Mutable:
        a: int

    for cls in (Checked, Mutable):
        with pytest.raises(TypeError, match="not a plain frozen, slotted dataclass"):
            _slot_setting_constructor(cls)


def test_run_links_say_where_the_link_sits_in_the_page_source(store: Store) -> None:
    """An editor searching the page's source for a broken image needs the href
    as written (relative), its line and its tag: the occurrence knows them."""
    run = store.start_run(T0)
    bg = "https://www.sclero.org/img/bg-missing.png"
    record_links(store, run.id, PAGE_A, [
        cite(PAGE_A, bg, "", raw_href="/img/bg-missing.png", kind=LinkKind.RESOURCE,
             element="td", attribute="style", line=1234),
        cite(PAGE_A, bg, "", raw_href="../img/bg-missing.png", kind=LinkKind.RESOURCE,
             element="style", attribute="url", line=1234),
        cite(PAGE_A, PUBMED, "Rituximab", line=7),
        cite(PAGE_A, PUBMED, "again", raw_href=f"  {PUBMED}\n"),
    ])
    store.record_observations(run.id, [check(bg, T0, LinkStatus.EXPIRED, reason="http_404"),
                                       check(PUBMED, T0)])
    links = store.run_links(run.id)
    assert [(l.line, l.written, l.element, l.attribute) for l in links] == [
        (1234, "/img/bg-missing.png", "td", "style"),
        (1234, "../img/bg-missing.png", "style", "url"),
        (7, "", "a", "href"),
        # white space around an absolute href is no other spelling
        (None, "", "a", "href"),
    ]
    # equal values share one object, as the other repeated fields do
    assert links[0].line is links[1].line
    assert links[2].element is links[3].element
    flagged = store.run_flagged_links(run.id)
    assert [(l.line, l.written) for l in flagged] == [(1234, "/img/bg-missing.png"),
                                                      (1234, "../img/bg-missing.png")]


@pytest.mark.parametrize(
    ("url", "raw_href", "source_href", "written"),
    [
        # review 15 #6: the URL shown has "&", the source "&amp;"
        ("https://e.org/soft2?id=7&src=rss", "https://e.org/soft2?id=7&src=rss",
         "https://e.org/soft2?id=7&amp;src=rss", "https://e.org/soft2?id=7&amp;src=rss"),
        ("https://e.org/a?b=1&c=2", "/a?b=1&c=2", "/a?b=1&#38;c=2", "/a?b=1&#38;c=2"),
        # no reference: as before, the parser's value when it is not the URL
        ("https://e.org/a", "/a", "", "/a"),
        ("https://e.org/a", "HTTPS://E.ORG/a", "", "HTTPS://E.ORG/a"),
        ("https://e.org/a", "https://e.org/a", "", ""),
        # a malformed link is listed by its href: the source's spelling beside it
        (None, "http://exa mple.org/?a=1&b=2", "http://exa mple.org/?a=1&amp;b=2",
         "http://exa mple.org/?a=1&amp;b=2"),
        (None, "http://", "", ""),
    ],
)
def test_written_is_the_href_as_the_source_writes_it(
        store: Store, url: str | None, raw_href: str, source_href: str, written: str) -> None:
    run = store.start_run(T0)
    record_links(store, run.id, PAGE_A, [
        cite(PAGE_A, url, raw_href=raw_href, source_href=source_href, line=10,
             skip_reason=None if url else "invalid_url")])
    if url:
        store.record_observations(run.id, [check(url, T0, LinkStatus.EXPIRED, reason="http_404")])
    links = store.run_links(run.id)
    assert [(l.url, l.written) for l in links] == [(url or raw_href, written)]
    assert [l.written for l in store.run_flagged_links(run.id)] == [written]
    assert [c.source_href for c in store.run_citations(run.id)] == [source_href]


def test_resume_sets_citations_and_observed_urls(store: Store) -> None:
    run = store.start_run(T0)
    citations = [cite(PAGE_A, f"https://e.org/{i}") for i in range(5)]
    record_links(store, run.id, PAGE_A, citations)
    store.record_observations(run.id, [check(c.url, T0) for c in citations[:2]])  # type: ignore[arg-type]
    store.finish_run(run.id, T0 + hours(1), "interrupted")
    resumed = store.unfinished_run()
    assert resumed is not None and resumed.id == run.id
    remaining = [c for c in store.run_citations(run.id) if c.url not in store.observed_urls(run.id)]
    assert remaining == citations[2:]


# ------------------------------------------------------------- due_rechecks

FAILED_AT = T0


@pytest.mark.parametrize(
    ("status", "last_check", "now", "after", "due"),
    [
        (LinkStatus.EXPIRED, FAILED_AT, FAILED_AT + hours(23), (24,), False),  # too early
        (LinkStatus.EXPIRED, FAILED_AT, FAILED_AT + hours(24), (24,), True),  # exactly h
        (LinkStatus.ERROR, FAILED_AT, FAILED_AT + hours(30), (24,), True),
        (LinkStatus.BLOCKED, FAILED_AT, FAILED_AT + hours(30), (24,), True),
        (LinkStatus.EXPIRED, FAILED_AT + hours(25), FAILED_AT + hours(30), (24,), False),  # rechecked
        (LinkStatus.EXPIRED, FAILED_AT + hours(25), FAILED_AT + hours(71), (24, 72), False),
        (LinkStatus.EXPIRED, FAILED_AT + hours(25), FAILED_AT + hours(73), (24, 72), True),  # second h
        (LinkStatus.EXPIRED, FAILED_AT + hours(73), FAILED_AT + hours(200), (24, 72), False),
        (LinkStatus.OK, FAILED_AT, FAILED_AT + hours(100), (24,), False),  # not failing
        (LinkStatus.MOVED, FAILED_AT, FAILED_AT + hours(100), (24,), False),
        (LinkStatus.EXPIRED, FAILED_AT, FAILED_AT + hours(100), (), False),  # no delays
    ],
)
def test_due_rechecks(store: Store, status: LinkStatus, last_check: dt.datetime,
                      now: dt.datetime, after: tuple[float, ...], due: bool) -> None:
    failing_since = FAILED_AT if status.is_failing else None
    items = [check(PUBMED, FAILED_AT, status, strikes=1, failing_since=failing_since)]
    if last_check != FAILED_AT:
        items.append(check(PUBMED, last_check, status, strikes=2, failing_since=failing_since))
    store.record_observations(None, items)
    assert store.due_rechecks(now, after) == ([PUBMED] if due else [])


def test_due_rechecks_oldest_failure_first(store: Store) -> None:
    store.record_observations(None, [
        check("https://new.org/", T0 + hours(5), LinkStatus.ERROR, failing_since=T0 + hours(5)),
        check("https://old.org/", T0, LinkStatus.ERROR, failing_since=T0),
        check("https://fine.org/", T0),
    ])
    assert store.due_rechecks(T0 + hours(48), (24,)) == ["https://old.org/", "https://new.org/"]


# ------------------------------------------------------------------- outbox


def test_outbox_never_queues_a_key_twice(store: Store) -> None:
    run = store.start_run(T0)
    message = store.enqueue_message("run-1:all", run.id, ["a@example.org", "b@example.org"],
                                    b"Subject: x\r\n\r\nbody", "<1@monitor>", T0)
    assert message is not None
    assert message.recipients == ("a@example.org", "b@example.org")
    assert (message.message, message.created_at, message.next_attempt_at) == (
        b"Subject: x\r\n\r\nbody", T0, T0)
    assert store.enqueue_message("run-1:all", run.id, ["c@example.org"], b"other", "<2@m>", T0) is None
    assert store.get_message("run-1:all") == message
    assert store.outbox_size() == 1


def test_outbox_due_failed_backoff_sent_and_requeue(store: Store) -> None:
    run = store.start_run(T0)
    msg = store.enqueue_message("run-1:all", run.id, ["a@example.org"], b"m", "<1@m>", T0)
    assert msg is not None
    assert [m.key for m in store.due_messages(T0)] == ["run-1:all"]
    retry_at = T0 + dt.timedelta(minutes=5)  # the backoff itself is reports.deliver's
    store.mark_failed(msg.id, "421 try later", retry_at)
    assert store.due_messages(retry_at - dt.timedelta(seconds=1)) == []
    [due] = store.due_messages(retry_at)
    assert (due.attempts, due.last_error, due.next_attempt_at) == (1, "421 try later", retry_at)
    store.mark_sent(msg.id, retry_at)
    assert store.due_messages(retry_at + hours(100)) == []
    assert store.outbox_size() == 0
    sent = store.get_message("run-1:all")
    assert sent is not None and sent.sent_at == retry_at and sent.attempts == 2
    assert store.requeue_message("run-1:all", T0 + hours(2))
    again = store.get_message("run-1:all")
    assert again is not None and (again.sent_at, again.attempts, again.last_error) == (None, 0, "")
    assert [m.key for m in store.due_messages(T0 + hours(2))] == ["run-1:all"]
    assert not store.requeue_message("run-9:none", T0)


# -------------------------------------------------------------------- locks

TTL = dt.timedelta(minutes=10)


def test_lock_second_owner_refused_until_release(store: Store) -> None:
    me = lock_owner()
    other = f"{socket.gethostname()}:{os.getppid()}"  # a live process on this host
    assert store.acquire_lock("audit", me, T0, TTL)
    assert not store.acquire_lock("audit", other, T0 + dt.timedelta(minutes=1), TTL)
    assert not store.acquire_lock("audit", me, T0, TTL)  # not re-entrant: one audit at a time
    assert not store.refresh_lock("audit", other, T0, TTL)
    store.release_lock("audit", other)  # not the owner: no effect
    assert not store.acquire_lock("audit", other, T0, TTL)
    store.release_lock("audit", me)
    assert store.acquire_lock("audit", other, T0, TTL)


def test_lock_expired_ttl_is_stolen_and_refresh_extends(store: Store) -> None:
    holder = "elsewhere.example:1"  # another host: only the ttl can free it
    assert store.acquire_lock("audit", holder, T0, TTL)
    assert store.refresh_lock("audit", holder, T0 + dt.timedelta(minutes=9), TTL)
    assert not store.acquire_lock("audit", lock_owner(), T0 + dt.timedelta(minutes=18), TTL)
    assert store.acquire_lock("audit", lock_owner(), T0 + dt.timedelta(minutes=19), TTL)
    assert not store.refresh_lock("audit", holder, T0 + dt.timedelta(minutes=20), TTL)


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_lock_of_a_dead_pid_on_this_host_is_stolen(store: Store) -> None:
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    assert store.acquire_lock("audit", dead, T0, TTL)
    assert store.acquire_lock("audit", lock_owner(), T0 + dt.timedelta(seconds=1), TTL)


@pytest.mark.parametrize(
    ("owner", "stolen"),
    [
        ("{host}:{dead}", True),
        ("{host}:{dead}:{ours}", True),
        ("{host}:{dead}:pidns=1234", False),  # another container named like us: its pids are not ours
        ("{host}:{dead}:job:pidns=1234", False),
        ("{host}:{live}:{ours}", False),
        ("elsewhere.example:{dead}", False),
        ("{host}:notapid", False),
    ],
)
def test_a_dead_holder_is_judged_only_in_our_own_pid_namespace(
        store: Store, owner: str, stolen: bool) -> None:
    me = lock_owner()
    ours = me.split(":", 2)[2] if me.count(":") == 2 else "pidns=4026531836"
    holder = owner.format(host=socket.gethostname(), dead=_dead_pid(), live=os.getppid(), ours=ours)
    assert store.acquire_lock("audit", holder, T0, TTL)
    assert store.acquire_lock("audit", me, T0 + dt.timedelta(seconds=1), TTL) is stolen


def test_a_process_in_its_own_pid_namespace_names_it_in_its_locks(store: Store) -> None:
    """A real second pid namespace (`unshare --pid`, as a container has): its
    owner string says so, and its live lock is not taken for a dead pid's."""
    script = ("import sys, datetime as dt; from monitor.store import Store, lock_owner; "
              "s = Store.open(sys.argv[1]); "
              "assert s.acquire_lock('audit', lock_owner(), dt.datetime.now(dt.timezone.utc), "
              "dt.timedelta(minutes=10)); print(lock_owner(), flush=True); sys.stdin.read()")
    try:
        child = subprocess.Popen(["unshare", "--pid", "--fork", sys.executable, "-c", script, str(store.path)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        pytest.skip("no unshare(1) here")
    try:
        owner = child.stdout.readline().strip()  # type: ignore[union-attr]
        if not owner:
            child.stdin.close()  # type: ignore[union-attr]
            error = child.stderr.read().strip()  # type: ignore[union-attr]
            if error.startswith("unshare:"):  # not root, or namespaces disabled: unshare itself failed
                pytest.skip(f"cannot make a pid namespace here: {error}")
            pytest.fail(f"the process in its own pid namespace failed: {error}")
        assert owner.startswith(f"{socket.gethostname()}:") and ":pidns=" in owner
        assert owner.rpartition("=")[2] != str(os.stat("/proc/self/ns/pid").st_ino)
        assert not store.acquire_lock("audit", lock_owner(), dt.datetime.now(UTC), TTL)
    finally:
        if not child.stdin.closed:  # type: ignore[union-attr]
            child.stdin.close()  # type: ignore[union-attr]  # its end of input: it exits
        child.wait(timeout=20)


def _race(path: str, barrier: Any, results: Any) -> None:
    store = Store.open(path)
    barrier.wait()
    won = store.acquire_lock("audit", lock_owner(), dt.datetime.now(UTC), TTL)
    results.put(won)
    barrier.wait()  # stay alive until all tried: a dead winner's lock would be stale
    store.close()


def test_processes_racing_for_the_lock_exactly_one_wins(db_path: Path) -> None:
    Store.open(db_path).close()
    ctx = multiprocessing.get_context("fork")
    n = 6
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(db_path), barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=20) for _ in range(n)]
    for p in procs:
        p.join(timeout=20)
    assert sorted(outcomes) == [False] * (n - 1) + [True]
    assert all(p.exitcode == 0 for p in procs)


# --------------------------------------------------------------------- meta


def test_meta(store: Store) -> None:
    assert store.get_meta("last_audit_at") is None
    store.set_meta("last_audit_at", "2026-11-23T06:00:00+00:00")
    store.set_meta("last_audit_at", "2026-11-30T06:00:00+00:00")
    assert store.get_meta("last_audit_at") == "2026-11-30T06:00:00+00:00"


# -------------------------------------------------------------- query plans


def _plan(store: Store, sql: str, params: tuple[object, ...]) -> list[str]:
    return [row[3] for row in store._conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


def test_history_and_run_links_use_indexes(store: Store) -> None:
    history = _plan(store, HISTORY_SQL, (PUBMED,))
    assert history == ["SEARCH observations USING INDEX observations_url_checked_at (url=?)"]
    for sql in (RUN_LINKS_SQL, RUN_LINKS_UNMARKED_SQL):
        links = _plan(store, sql, (1,))
        assert links[:2] == ["SEARCH p USING INDEX sqlite_autoindex_pages_1 (run_id=?)",
                             "SEARCH o USING INDEX occurrences_run_page (run_id=? AND page_url=?)"]
        assert any(line.startswith("SEARCH x USING COVERING INDEX observations_run_url") for line in links)
        assert not [line for line in links if line.startswith("SCAN") or "TEMP B-TREE" in line]


def test_whereabouts_reads_a_link_run_by_run_through_indexes(store: Store) -> None:
    """`monitor history`'s where-is-it-now: a link on page A in runs 1 and 3,
    not in run 2 (removed, restored), page B read in run 3 without it; every
    query an index search (at 52 runs x 100,000 links: a few ms)."""
    other = "https://pubmed.ncbi.nlm.nih.gov/1/"
    for week, links in enumerate(([PUBMED], [other], [PUBMED]), 1):
        run = store.start_run(T0 + dt.timedelta(weeks=week))
        record_links(store, run.id, PAGE_A, [cite(PAGE_A, u, line=7) for u in links])
        if week == 3:
            record_links(store, run.id, PAGE_B, [cite(PAGE_B, other)])
        store.finish_run(run.id, T0 + dt.timedelta(weeks=week))
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    where = store.whereabouts(PUBMED)
    store.entry_links_in(2, PAGE_A, "Biological Agents", "")
    store._conn.set_trace_callback(None)
    assert [(r.run_id, r.page_url, r.present) for r in where.reads] == [
        (1, PAGE_A, True), (2, PAGE_A, False), (3, PAGE_A, True)]
    assert [(c.page_url, c.line) for c in where.last_cited] == [(PAGE_A, 7)]
    assert [r.id for r in where.runs] == [1, 2, 3] and where.dropped == frozenset()
    assert store.whereabouts("https://never.example.org/") == Whereabouts()
    plans = [line for sql in seen for line in _plan(store, sql, ())]
    assert plans and not [line for line in plans if line.startswith("SCAN") or "TEMP B-TREE" in line], plans
    assert "SEARCH occurrences USING INDEX occurrences_url (url=?)" in plans
    assert "SEARCH pages USING INDEX pages_url_fetched_at (url=?)" in plans


# ------------------------------------------------------------- StoreWriter


async def _eventually(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


def _count(path: Path, sql: str = "SELECT count(*) FROM observations") -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def test_writer_flush_commits_for_another_connection(db_path: Path) -> None:
    writer = await StoreWriter.open(db_path, batch_interval=60)
    run = await writer.call("start_run", T0)
    for i in range(50):
        await writer.add(run.id, *check(f"https://e.org/{i}", T0))
    assert writer.pending == 50
    await writer.flush()
    assert writer.pending == 0 and writer.written == 50
    with Store.open(db_path) as reader:
        assert len(reader.observed_urls(run.id)) == 50
        assert reader.url_state("https://e.org/7") is not None
    await writer.close()


async def test_writer_commits_a_full_batch_without_flush(db_path: Path) -> None:
    writer = await StoreWriter.open(db_path, batch_interval=60, batch_size=10)
    for i in range(10):
        await writer.add(None, *check(f"https://e.org/{i}", T0))
    await _eventually(lambda: _count(db_path) == 10)
    await writer.close()


async def test_writer_commits_on_the_interval(db_path: Path) -> None:
    writer = await StoreWriter.open(db_path, batch_interval=0.05, batch_size=1000)
    await writer.add(None, *check(PUBMED, T0))
    await _eventually(lambda: _count(db_path) == 1)
    await writer.close()


async def test_writer_call_sees_queued_adds_and_close_flushes(db_path: Path) -> None:
    writer = await StoreWriter.open(db_path, batch_interval=60)
    await writer.add(None, *check(PUBMED, T0, LinkStatus.EXPIRED, failing_since=T0))
    assert await writer.call("set_archived_url", PUBMED, "https://web.archive.org/x")
    await writer.add(None, *check("https://late.org/", T0))
    await writer.close()
    assert _count(db_path) == 2
    with pytest.raises(StoreError, match="closed"):
        await writer.add(None, *check(PUBMED, T0))


async def test_writer_call_runs_only_public_store_methods(db_path: Path) -> None:
    async with await StoreWriter.open(db_path) as writer:
        for name in ("_tx", "close", "no_such_method"):
            with pytest.raises(AttributeError):
                await writer.call(name)
        assert await writer.call("get_meta", "missing") is None


async def test_writer_failed_batch_is_kept_and_reported(db_path: Path) -> None:
    writer = await StoreWriter.open(db_path, batch_interval=60)
    await writer.add(777, *check(PUBMED, T0))  # no run 777: the foreign key refuses the batch
    with pytest.raises(StoreError, match="FOREIGN KEY") as failed:  # named, as Store's errors are
        await writer.flush()
    assert isinstance(failed.value.__cause__, sqlite3.IntegrityError)
    assert writer.pending == 1
    with pytest.raises(StoreError, match="a batch failed"):
        await writer.add(None, *check(PUBMED, T0))
    writer._buffer.clear()  # drop the bad item so that close() can finish
    await writer.close()
    assert _count(db_path) == 0


async def test_writer_cancelled_flush_neither_loses_nor_duplicates(db_path: Path) -> None:
    writer = await StoreWriter.open(db_path, batch_interval=60)
    for i in range(300):
        await writer.add(None, *check(f"https://e.org/{i}", T0))
    task = asyncio.create_task(writer.flush())
    await asyncio.sleep(0)  # the batch is handed to the thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.close()
    assert _count(db_path) == 300


# ------------------------------------------------------- run_flagged_links


def test_run_flagged_links_are_the_run_links_that_ask_for_work(store: Store) -> None:
    run = store.start_run(T0)
    urls = {status: f"https://{status.value}.example.org/x" for status in LinkStatus
            if status is not LinkStatus.SKIPPED}
    record_links(store, run.id, PAGE_B, [cite(PAGE_B, url, status.value) for status, url in urls.items()])
    record_links(store, run.id, PAGE_A, [
        cite(PAGE_A, urls[LinkStatus.OK], "ok again"),
        cite(PAGE_A, urls[LinkStatus.MOVED], "moved again"),
        cite(PAGE_A, None, "write", raw_href="mailto:ed@example.org", skip_reason="mailto"),
        cite(PAGE_A, "https://unchecked.org/", "never observed"),
        cite(PAGE_A, None, "typo", raw_href="http://", skip_reason="invalid_url"),
    ])
    store.record_observations(run.id, [check(url, T0, status, reason=status.value)
                                       for status, url in urls.items()])
    # a later observation in the same run decides: the drifted link is ok now
    store.record_observations(run.id, [check(urls[LinkStatus.DRIFTED], T0 + hours(1))])

    flagged = store.run_flagged_links(run.id)
    assert flagged == [l for l in store.run_links(run.id)
                       if l.status not in (LinkStatus.OK, LinkStatus.SKIPPED)]
    assert [(l.page, l.status) for l in flagged] == [
        (PAGE_A, LinkStatus.MOVED), (PAGE_A, LinkStatus.ERROR),
        (PAGE_B, LinkStatus.MOVED), (PAGE_B, LinkStatus.EXPIRED), (PAGE_B, LinkStatus.ERROR),
        (PAGE_B, LinkStatus.BLOCKED),
    ]
    assert flagged[1].reason == "invalid_url"
    assert store.run_flagged_links(run.id + 1) == []
    # only some URLs (a malformed link's is its href): the same rows, in the same order
    some = {urls[LinkStatus.MOVED], urls[LinkStatus.BLOCKED], "http://", "https://not-cited.org/"}
    assert store.run_flagged_links(run.id, some) == [l for l in flagged if l.url in some]
    assert [l.url for l in store.run_flagged_links(run.id, some)].count(urls[LinkStatus.MOVED]) == 2
    assert len(store.run_flagged_links(run.id, some)) == 4
    assert store.run_flagged_links(run.id, {urls[LinkStatus.OK]}) == []
    assert store.run_flagged_links(run.id, set()) == []


def test_some_urls_flagged_links_use_the_run_links_indexes(store: Store) -> None:
    plan = _plan(store, RUN_URLS_FLAGGED_LINKS_SQL, (1, "[]"))
    assert plan[:2] == ["SEARCH p USING INDEX sqlite_autoindex_pages_1 (run_id=?)",
                        "SEARCH o USING INDEX occurrences_run_page (run_id=? AND page_url=?)"]
    assert not [line for line in plan if line.startswith("SCAN") and "json_each" not in line]


def test_run_flagged_links_uses_the_run_links_indexes(store: Store) -> None:
    plan = _plan(store, RUN_FLAGGED_LINKS_SQL, (1,))
    assert plan[:2] == ["SEARCH p USING INDEX sqlite_autoindex_pages_1 (run_id=?)",
                        "SEARCH o USING INDEX occurrences_run_page (run_id=? AND page_url=?)"]
    assert not [line for line in plan if line.startswith("SCAN") or "TEMP B-TREE" in line]


def test_citations_last_read_are_the_page_as_the_last_report_read_it(store: Store) -> None:
    """A page that failed: its record and citations (every status, no menus)
    from the latest reported full run before the given one that read it."""
    read = store.start_run(T0)
    record_links(store, read.id, PAGE_A, [cite(PAGE_A, PUBMED, "Retracted trial"),
                                           cite(PAGE_A, "https://gone.org/x", "Gone"),
                                           cite(PAGE_A, "https://www.sclero.org/", "Home",
                                                kind=LinkKind.NAVIGATION)])
    store.record_observations(read.id, [check(PUBMED, T0),
                                        check("https://gone.org/x", T0, LinkStatus.EXPIRED)])
    store.finish_run(read.id, T0)
    store.mark_reported(read.id, T0)
    unreported = store.start_run(T0 + hours(1))  # read, never reported: not "the last report"
    record_links(store, unreported.id, PAGE_A, [cite(PAGE_A, PUBMED, "Retitled")])
    store.finish_run(unreported.id, T0 + hours(1))
    failed = store.start_run(T0 + hours(2))
    store.record_page(PageRecord(run_id=failed.id, url=PAGE_A, status="error", error="timeout"))
    store.finish_run(failed.id, T0 + hours(2))
    [(page, links)] = store.citations_last_read([PAGE_A, PAGE_A, PAGE_B], failed.id)
    assert (page.run_id, page.url, page.status) == (read.id, PAGE_A, "ok")
    assert [(l.entry_title or l.text, l.status) for l in links] == [
        ("Retracted trial", LinkStatus.OK), ("Gone", LinkStatus.EXPIRED)]
    assert store.citations_last_read([PAGE_A], read.id) == []


def test_citations_last_read_use_the_run_links_indexes(store: Store) -> None:
    plan = _plan(store, RUN_PAGE_CITATIONS_SQL, (1, PAGE_A))
    assert plan[:2] == ["SEARCH p USING INDEX sqlite_autoindex_pages_1 (run_id=? AND url=?)",
                        "SEARCH o USING INDEX occurrences_run_page (run_id=? AND page_url=?)"]
    assert not [line for line in plan if line.startswith("SCAN") or "TEMP B-TREE" in line]


def test_an_entry_that_already_says_its_article_was_retracted_is_marked(store: Store) -> None:
    """The flag is read from the entry's title, summary or source line, the
    summary fetched only for a link with a notice; an entry that says so
    without a notice, or has a notice without saying so, is not marked."""
    run = store.start_run(T0)
    entries = [  # (url, title, summary, source, notice)
        ("https://a.org/1", "Oral treprostinil trial", "Ulcers healed. Retracted in 2021.", "PubMed, 2018.",
         "retracted"),
        ("https://a.org/2", "(Retracted Article) Bosentan trial", "Fewer ulcers.", "PubMed, 2018.", "retracted"),
        ("https://a.org/3", "A review", "It helped.", "Cochrane, 2007. Withdrawn in 2019.", "withdrawn"),
        ("https://a.org/4", "Retracted papers keep being cited", "A study of citations.", "Nature, 2019.",
         "retracted"),
        ("https://a.org/5", "Sildenafil trial", "It helped.", "PubMed, 2019.", "retracted"),
        ("https://a.org/6", "Tadalafil trial", "Retracted in 2021.", "PubMed, 2019.", ""),
    ]
    record_links(store, run.id, PAGE_A, [
        cite(PAGE_A, url, title, context=EntryContext(title=title, summary=summary, source=source))
        for url, title, summary, source, _ in entries])
    store.record_observations(run.id, [
        (obs, replace(verdict, notice=notice, notice_detail="The page says so." if notice else ""), state)
        for url, *_, notice in entries for obs, verdict, state in [check(url, T0)]])
    links = store.run_links(run.id)
    assert [(l.url[-1], l.notice, l.notice_marked) for l in links] == [
        ("1", "retracted", True), ("2", "retracted", True), ("3", "withdrawn", True),
        ("4", "retracted", False), ("5", "retracted", False), ("6", "", False)]
    assert [l.notice_marked for l in store.run_flagged_links(run.id)] == []


def test_iter_run_links_streams_what_run_links_lists(store: Store) -> None:
    run = store.start_run(T0)
    urls = [f"https://pubmed.ncbi.nlm.nih.gov/{n}/" for n in range(300)]
    record_links(store, run.id, PAGE_A, [cite(PAGE_A, u, f"entry {n}") for n, u in enumerate(urls)])
    record_links(store, run.id, PAGE_B, [cite(PAGE_B, urls[0], "again", kind=LinkKind.NAVIGATION)])
    store.record_observations(run.id, [check(u, T0, LinkStatus.EXPIRED, reason="http_404", http_status=404)
                                       for u in urls[::2]])
    links = store.iter_run_links(run.id)
    assert not isinstance(links, list)
    first = next(links)
    assert (first.url, first.status) == (urls[0], LinkStatus.EXPIRED)
    assert [first, *links] == store.run_links(run.id)
    assert len(store.run_links(run.id)) == 301
    assert list(store.iter_run_links(run.id + 1)) == []


# ---------------------------------------------------------------- retention


WEEK = dt.timedelta(weeks=1)


def weekly_run(store: Store, week: int, *, pages: dict[str, bool], reported: bool = True) -> int:
    """A finished run `week` weeks after T0; each page fetched in full (True,
    a new link) or answered 304 (False, the links of its last full fetch),
    its links observed."""
    at = T0 + week * WEEK
    run = store.start_run(at)
    for page, full in pages.items():
        last = None if full else store.last_page(page)
        store.record_page(PageRecord(run_id=run.id, url=page, status="ok" if full else "not_modified",
                                     http_status=200 if full else 304,
                                     links_run=last.run_id if last else None), now=at)
        if full:
            store.record_citations(run.id, page, [cite(page, f"{page}#w{week}-link", "x")])
    store.record_observations(run.id, [check(c.url, at) for c in store.run_citations(run.id)
                                       if c.url is not None])
    store.finish_run(run.id, at + hours(1))
    if reported:
        store.mark_reported(run.id, at + hours(2))
    return run.id


def run_ids(store: Store) -> list[int]:
    return [r.id for r in store.runs(limit=1000)][::-1]


def test_prune_forgets_old_runs_with_their_pages_links_and_observations(store: Store, db_path: Path) -> None:
    ids = [weekly_run(store, w, pages={PAGE_A: True, PAGE_B: True}) for w in range(6)]
    store.record_observations(None, [check(PUBMED, T0 + 2 * WEEK + hours(1))])  # a recheck
    store.record_observations(None, [check(PUBMED, T0 + 5 * WEEK + hours(1))])
    removed = store.prune(T0 + 3 * WEEK)  # weeks 0, 1, 2 are older
    assert removed == (3, 3 * 2 + 1)
    assert run_ids(store) == ids[3:]
    for table in ("pages", "occurrences", "observations"):
        left = _count(db_path, f"SELECT count(*) FROM {table} WHERE run_id < {ids[3]}")
        assert left == 0, table
    assert [e.checked_at for e in store.history(PUBMED)] == [T0 + 5 * WEEK + hours(1)]
    # url_state outlives the observations: first seen stays the first sighting
    state = store.url_states([f"{PAGE_A}#w0-link"])[f"{PAGE_A}#w0-link"]
    assert state.first_seen_at == T0
    assert store.prune(T0 + 3 * WEEK) == (0, 0)  # nothing more to do


def test_prune_keeps_the_latest_run_the_report_baseline_and_unsent_reports(store: Store) -> None:
    old_reported = weekly_run(store, 0, pages={PAGE_A: True})
    old_unsent = weekly_run(store, 1, pages={PAGE_A: True})
    store.enqueue_message(f"run-{old_unsent}:all", old_unsent, ["w@example.org"], b"x", "<1@m>", T0)
    baseline = weekly_run(store, 2, pages={PAGE_A: True})
    latest = weekly_run(store, 3, pages={PAGE_A: True}, reported=False)
    assert store.prune(T0 + 10 * WEEK) == (1, 1)
    assert run_ids(store) == [old_unsent, baseline, latest]
    assert store.previous_reported_run(latest).id == baseline  # type: ignore[union-attr]
    assert store.get_message(f"run-{old_unsent}:all") is not None
    del old_reported


def test_prune_keeps_the_latest_audit_and_its_baseline_behind_partial_runs(store: Store) -> None:
    """Editors' `check --page` runs after the last weekly audits: they are
    neither the latest full run nor the baseline, so those two stay."""
    old = weekly_run(store, 0, pages={PAGE_A: True})
    baseline = weekly_run(store, 1, pages={PAGE_A: True})
    latest_audit = weekly_run(store, 2, pages={PAGE_A: True}, reported=False)
    partial = store.start_run(T0 + 3 * WEEK, partial=True)
    store.finish_run(partial.id, T0 + 3 * WEEK + hours(1))
    store.mark_reported(partial.id, T0 + 3 * WEEK + hours(2))
    later = store.start_run(T0 + 4 * WEEK, partial=True)
    store.finish_run(later.id, T0 + 4 * WEEK + hours(1))
    assert store.prune(T0 + 10 * WEEK) == (2, 1)  # `old` and the reported partial run
    assert run_ids(store) == [baseline, latest_audit, later.id]
    del old


def test_prune_keeps_the_links_of_a_page_unchanged_since_an_old_run(store: Store, db_path: Path) -> None:
    """PAGE_A answered 304 for weeks: its links are those recorded when it was
    last fetched in full, in week 0. Week 0 loses everything else."""
    first = weekly_run(store, 0, pages={PAGE_A: True, PAGE_B: True})
    for w in range(1, 5):
        weekly_run(store, w, pages={PAGE_A: False, PAGE_B: True})
    runs, _ = store.prune(T0 + 3 * WEEK)
    assert runs == 2  # weeks 1 and 2; week 0 is kept in part
    page = store.last_page(PAGE_A)
    assert page is not None and page.run_id == first
    assert [c.url for c in store.run_citations(first, page_url=PAGE_A)] == [f"{PAGE_A}#w0-link"]
    assert store.run_citations(first, page_url=PAGE_B) == []
    assert [p.url for p in store.run_pages(first)] == [PAGE_A]
    assert _count(db_path, f"SELECT count(*) FROM observations WHERE run_id = {first}") == 0


def test_prune_hands_the_links_of_an_unchanged_page_down_to_the_runs_that_share_them(
        store: Store, db_path: Path) -> None:
    """Week 1 read PAGE_A in full, weeks 2 and 3 got a 304 and point at week
    1's links; week 4 read it again. Pruning weeks 0-2 must not take week
    3's links with them: they move to week 3, where they then live."""
    weekly_run(store, 0, pages={PAGE_A: True})
    week1 = weekly_run(store, 1, pages={PAGE_A: True})
    weekly_run(store, 2, pages={PAGE_A: False})
    week3 = weekly_run(store, 3, pages={PAGE_A: False})
    week4 = weekly_run(store, 4, pages={PAGE_A: True})
    before = [c.url for c in store.run_citations(week3)]
    assert before == [f"{PAGE_A}#w1-link"]
    assert _count(db_path, f"SELECT count(*) FROM occurrences WHERE run_id = {week3}") == 0
    assert store.prune(T0 + 3 * WEEK) == (3, 3)
    assert run_ids(store) == [week3, week4]
    assert [c.url for c in store.run_citations(week3)] == before
    assert [(l.url, l.status) for l in store.run_links(week3)] == [(f"{PAGE_A}#w1-link", LinkStatus.OK)]
    assert [c.url for c in store.run_citations(week4)] == [f"{PAGE_A}#w4-link"]
    assert _count(db_path, f"SELECT count(*) FROM occurrences WHERE run_id < {week3}") == 0
    assert store.citations_of(f"{PAGE_A}#w1-link")[0].page_url == PAGE_A
    del week1


def test_prune_keeps_the_links_an_old_full_fetch_lends_to_kept_runs(store: Store, db_path: Path) -> None:
    """PAGE_A answered 304 ever since week 0: week 0 stays, in part, as the
    holder of its etag and its links, which every later run points at."""
    first = weekly_run(store, 0, pages={PAGE_A: True, PAGE_B: True})
    later = [weekly_run(store, w, pages={PAGE_A: False, PAGE_B: True}) for w in range(1, 5)]
    store.prune(T0 + 3 * WEEK)
    for run_id in later[2:]:
        assert [c.url for c in store.run_citations(run_id, page_url=PAGE_A)] == [f"{PAGE_A}#w0-link"]
    assert [p.url for p in store.run_pages(first)] == [PAGE_A]


def test_redoing_a_page_phase_leaves_a_check_page_run_made_meanwhile_its_links(store: Store) -> None:
    """An audit interrupted in its page phase, then `check --page` (a 304:
    it points at the audit's links), then the audit resumed, redoing its
    pages: the page now fails. The partial run still shows what it saw."""
    audit = store.start_run(T0)
    record_links(store, audit.id, PAGE_A, [cite(PAGE_A, PUBMED)])
    store.finish_run(audit.id, T0 + hours(1), "interrupted")
    partial = store.start_run(T0 + hours(2), partial=True)
    store.record_page(PageRecord(run_id=partial.id, url=PAGE_A, status="not_modified", http_status=304,
                                 links_run=audit.id), now=T0 + hours(2))
    store.finish_run(partial.id, T0 + hours(3))
    store.clear_run_pages(audit.id)
    store.record_page(PageRecord(run_id=audit.id, url=PAGE_A, status="error", http_status=503,
                                 error="HTTP 503"), now=T0 + hours(4))
    store.record_citations(audit.id, PAGE_A, [])
    assert [c.url for c in store.run_citations(partial.id)] == [PUBMED]
    assert store.run_citations(audit.id) == []
    assert store.latest_links_of(PAGE_A) == (partial.id, partial.id)


def test_an_unchanged_page_shares_the_titles_of_its_entries_with_the_run_that_read_it(
        store: Store, db_path: Path) -> None:
    """A 304 keeps no copy of the entries' titles (what the heavy-edit note
    compares): they are those of the run holding its links, and move with
    the links when that run is pruned."""
    titles = ("Rituximab in SSc", "Bosentan for digital ulcers")
    edited = ("Rituximab in SSc", "Iloprost for digital ulcers")

    def week(n: int, *, full: bool, entries: tuple[str, ...] = titles, partial: bool = False) -> int:
        at = T0 + n * WEEK + (hours(3) if partial else dt.timedelta())
        run = store.start_run(at, partial=partial)
        last = None if full else store.last_page(PAGE_A)
        store.record_page(PageRecord(run_id=run.id, url=PAGE_A, status="ok" if full else "not_modified",
                                     http_status=200 if full else 304, entries=entries,
                                     links_run=last.run_id if last else None), now=at)
        if full:
            store.record_citations(run.id, PAGE_A, [cite(PAGE_A, f"{PUBMED}?w={n}")])
        store.finish_run(run.id, at + hours(1))
        store.mark_reported(run.id, at + hours(2))
        return run.id

    runs = [week(0, full=True), week(1, full=False), week(2, full=False)]
    odd = week(2, full=False, entries=titles[:1], partial=True)  # not the titles it points at: its own
    runs.append(week(3, full=True, entries=edited))
    stored = [r[0] for r in sqlite3.connect(db_path).execute("SELECT entries FROM pages ORDER BY run_id")]
    assert stored == [json.dumps(list(titles)), "", "", json.dumps(list(titles[:1])), json.dumps(list(edited))]
    assert [store.run_pages(r)[0].entries for r in runs] == [titles] * 3 + [edited]
    store.prune(T0 + 2 * WEEK)  # weeks 0 and 1 go: week 2 now holds the links and the titles
    assert run_ids(store) == [runs[2], odd, runs[3]]
    assert [store.run_pages(r)[0].entries for r in (runs[2], odd, runs[3])] == [titles, titles[:1], edited]
    assert [c.url for c in store.run_citations(runs[2])] == [f"{PUBMED}?w=0"]


def test_prune_stops_between_runs_when_asked(store: Store) -> None:
    ids = [weekly_run(store, w, pages={PAGE_A: True}) for w in range(5)]
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 2  # two runs deleted, then a stop

    assert store.prune(T0 + 10 * WEEK, stop=stop) == (2, 2)
    assert run_ids(store) == ids[2:]
    assert store.prune(T0 + 10 * WEEK) == (2, 2)  # the rest next time; the latest run stays


def test_a_report_of_a_run_pruned_meanwhile_is_a_clear_error(store: Store) -> None:
    """The other order of the race above: the run went first (was an IntegrityError)."""
    ids = [weekly_run(store, w, pages={PAGE_A: True}) for w in range(3)]
    assert store.prune(T0 + 10 * WEEK) == (2, 2)  # the latest run stays
    with pytest.raises(StoreError, match=f"run {ids[0]} is no longer in the database .*nothing was queued"):
        store.enqueue_message(f"run-{ids[0]}:all", ids[0], ["w@example.org"], b"x", "<1@m>", T0)
    assert store.get_message(f"run-{ids[0]}:all") is None


def test_prune_keeps_a_run_whose_report_another_process_queued_meanwhile(store: Store, db_path: Path) -> None:
    """`monitor report --run N --send` by hand while the weekly job prunes.

    The runs to delete are listed first, then deleted one transaction each:
    a report queued in between (here, from another connection between two
    runs) was deleted with its run, though `enqueue_message` had returned it.
    A stress run of two processes lost 6 of 6 such reports in 30 rounds.
    """
    ids = [weekly_run(store, w, pages={PAGE_A: True}) for w in range(4)]
    key = f"run-{ids[1]}:all"
    queued: list[object] = []

    def stop() -> bool:
        if ids[0] not in run_ids(store) and not queued:  # run 1 is gone, run 2 is next
            with Store.open(db_path) as other:
                queued.append(other.enqueue_message(key, ids[1], ["w@example.org"], b"x", "<1@m>", T0))
        return False

    assert store.prune(T0 + 10 * WEEK, stop=stop) == (2, 2)
    assert queued[0] is not None
    assert run_ids(store) == [ids[1], ids[3]]
    assert store.get_message(key) is not None


async def test_writer_call_unflushed_leaves_the_queued_adds_to_their_batch(db_path: Path) -> None:
    """The page phase records pages while observations stream in: its calls
    must not commit (fsync) the pending batch each time."""
    writer = await StoreWriter.open(db_path, batch_interval=60)
    run = await writer.call("start_run", T0)
    await writer.add(run.id, *check(PUBMED, T0))
    await writer.call_unflushed("record_page", PageRecord(run_id=run.id, url=PAGE_A, status="ok"), T0)
    assert writer.pending == 1 and _count(db_path) == 0  # the observation still waits
    page = await writer.call_unflushed("last_page", PAGE_A)
    assert page is not None and page.run_id == run.id
    with pytest.raises(AttributeError):
        await writer.call_unflushed("_tx")
    await writer.call("get_meta", "x")  # an ordinary call commits first
    assert writer.pending == 0 and _count(db_path) == 1
    await writer.close()


def test_unrequested_sightings_find_a_malformed_or_skipped_link_where_the_report_lists_it(store: Store) -> None:
    """`monitor history http://` said "never checked" of a link the report
    lists: a malformed href has no URL, so no observation, only occurrences."""
    first, second = store.start_run(T0), store.start_run(T0 + hours(168))
    record_links(store, first.id, PAGE_A, [
        cite(PAGE_A, None, "Keeping warm", raw_href="http://", line=118, skip_reason="invalid_url"),
        cite(PAGE_A, PUBMED, line=120),
        cite(PAGE_A, None, "mail us", raw_href="mailto:isn@sclero.org", line=133, skip_reason="mailto"),
        cite(PAGE_A, None, "again", raw_href="http://", line=140, skip_reason="invalid_url")])
    # the next week's fetch answered 304: its links are those of the first run
    store.record_page(PageRecord(run_id=second.id, url=PAGE_A, status="not_modified", http_status=304,
                                 links_run=first.id), now=T0 + hours(168))
    record_links(store, second.id, PAGE_B, [cite(PAGE_B, None, raw_href="http://", line=7,
                                                 skip_reason="invalid_url")])
    found = store.unrequested_sightings("http://")
    assert found is not None
    citations, latest, since = found
    assert (latest, since) == (second.id, first.id)
    assert [(c.page_url, c.line, c.skip_reason) for c in citations] == [
        (PAGE_A, 118, "invalid_url"), (PAGE_A, 140, "invalid_url"), (PAGE_B, 7, "invalid_url")]
    mail = store.unrequested_sightings("mailto:isn@sclero.org")
    assert mail is not None and [c.line for c in mail[0]] == [133]
    assert store.unrequested_sightings("https://never.example.org/") is None
    excluded = store.unrequested_sightings(PUBMED)  # a URL: found by it (an excluded link has no check)
    assert excluded is not None and [c.line for c in excluded[0]] == [120]


def test_copies_of_links_never_seen_working_are_forgotten_once_to_be_asked_again(db_path: Path) -> None:
    """m014: a link never seen working (dead at a site's first run) used to
    be asked with no date, and the archive answered its newest copy, often
    the error page (review 15 #1). Opening such a file forgets those copies,
    so that the next run asks again, for the oldest; a copy asked with the
    day its link last worked is kept. Later copies are not forgotten again."""
    never, worked = PUBMED, "https://www.medscape.com/viewarticle/883512"
    with Store.open(db_path) as store:
        run = store.start_run(T0)
        for url, statuses in ((never, [LinkStatus.ERROR]), (worked, [LinkStatus.OK, LinkStatus.ERROR])):
            state = None
            for week, status in enumerate(statuses):
                obs, verdict, _ = check(url, T0 + week * WEEK, status, reason="x")
                state = next_state(state, verdict, obs)
                store.record_observations(run.id, [(obs, verdict, state)])
            assert store.set_archived_url(url, "https://web.archive.org/web/2025/" + url)
    with sqlite3.connect(db_path) as conn:  # back to the file as m013 left it
        conn.execute("ALTER TABLE url_state DROP COLUMN archived_oldest")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm014_archived_oldest'")
    with Store.open(db_path) as store:
        assert store.archived_urls([never, worked]) == {worked: "https://web.archive.org/web/2025/" + worked}
        assert store.set_archived_url(never, "https://web.archive.org/web/1999/" + never, oldest=True)
        assert store.oldest_archived_urls([never, worked]) == {never}
    with Store.open(db_path) as store:  # opened again: nothing more is forgotten
        assert set(store.archived_urls([never, worked])) == {never, worked}
