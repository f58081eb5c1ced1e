"""Measure the history database at the scale of a large site.

    python bench/store_bench.py [--runs 5] [--links 100000] [--db PATH] [--writer 50000]

Builds a synthetic database quickly (executemany, one transaction per table
and run): R runs x N link occurrences over N*0.8 distinct URLs on N/200 pages,
one observation per URL per run, one url_state row per URL. Then times
`run_links` on the latest run, `history` of one URL, `url_states` of 10,000
URLs, `due_rechecks`, and the insert rate of observations through
`StoreWriter`. Prints the query plans of run_links and history.

Not a unit test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.store import HISTORY_SQL, RUN_LINKS_SQL, Store, StoreWriter, _ts  # noqa: E402
from monitor.types import LinkStatus, Observation, UrlState, Verdict  # noqa: E402

UTC = dt.timezone.utc
STATUSES = ["ok"] * 90 + ["moved"] * 4 + ["expired"] * 3 + ["error", "blocked", "drifted"]


def build(store: Store, runs: int, links: int) -> None:
    rng = random.Random(7)
    n_urls = int(links * 0.8)
    urls = [f"https://host{i % 997}.example.org/article/{i}" for i in range(n_urls)]
    pages = [f"https://www.example.org/page/{p}.html" for p in range(max(1, links // 200))]
    conn = store._conn
    start = dt.datetime(2026, 1, 5, 6, tzinfo=UTC)
    for r in range(runs):
        when = start + dt.timedelta(weeks=r)
        run = store.start_run(when)
        occurrences = []
        for i in range(links):
            url = urls[i % n_urls] if i < n_urls else urls[rng.randrange(n_urls)]
            occurrences.append((
                run.id, pages[i % len(pages)], url, url, f"Anchor {i}", "Section", "citation",
                "a", "href", i, f"Entry {i}", "", "PubMed, J Rheumatol, 04/30/2018.",
                "2018-04-30", 0, None,
            ))
        observations = []
        for i, url in enumerate(urls):
            status = rng.choice(STATUSES)
            observations.append((
                run.id, url, _ts(when + dt.timedelta(seconds=i / 100)), status, "", "", None,
                200, url, "[]", None, "", 120, 4096, "text/html", "Title", "", "", 1, "GET",
                0, None,
            ))
        with store._tx():
            # A run's links are read through its pages rows (pages.links_run).
            conn.executemany(
                "INSERT INTO pages (run_id, url, status, http_status, links, fetched_at) "
                "VALUES (?, ?, 'ok', 200, ?, ?)",
                [(run.id, page, links // len(pages), _ts(when)) for page in pages],
            )
            conn.executemany(
                "INSERT INTO occurrences (run_id, page_url, url, raw_href, anchor_text, section, "
                "kind, element, attribute, line, entry_title, entry_summary, entry_source, "
                "entry_date, expired_mark, skip_reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                occurrences,
            )
            conn.executemany(
                "INSERT INTO observations (run_id, url, checked_at, status, reason, detail, "
                "suggested_url, http_status, final_url, redirects, error_kind, error_detail, "
                "elapsed_ms, bytes_read, content_type, title, meta_title, content_hash, "
                "attempts, method, strikes, failing_since) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                observations,
            )
            conn.executemany(
                "INSERT OR REPLACE INTO url_state (url, status, strikes, failing_since, "
                "last_checked_at, recent) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (o[1], o[3], 1 if o[3] in ("expired", "error", "blocked") else 0,
                     _ts(when - dt.timedelta(days=2)) if o[3] in ("expired", "error", "blocked")
                     else None, o[2], json.dumps([o[3]]))
                    for o in observations
                ),
            )
        store.finish_run(run.id, when + dt.timedelta(hours=1))
    conn.execute("ANALYZE")


def timed(label: str, fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn(*args)
    print(f"{label}: {(time.perf_counter() - t0) * 1000:.0f} ms")
    return result


def plans(store: Store, run_id: int, url: str) -> None:
    for label, sql, params in (("run_links", RUN_LINKS_SQL, (run_id,)), ("history", HISTORY_SQL, (url,))):
        print(f"plan {label}:")
        for row in store._conn.execute("EXPLAIN QUERY PLAN " + sql, params):
            print("   ", row[3])


async def writer_rate(path: str, n: int) -> float:
    writer = await StoreWriter.open(path)
    run = await writer.call("start_run", dt.datetime.now(UTC))
    now = dt.datetime.now(UTC)
    items = []
    for i in range(n):
        url = f"https://writer.example.org/{i}"
        items.append((
            Observation(url=url, checked_at=now, http_status=200, final_url=url, elapsed_ms=5),
            Verdict(url=url, status=LinkStatus.OK, reason="http_200"),
            UrlState(url=url, status=LinkStatus.OK, last_checked_at=now, recent=("ok",)),
        ))
    t0 = time.perf_counter()
    for obs, verdict, state in items:
        await writer.add(run.id, obs, verdict, state)
    await writer.close()
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--db", default="")
    parser.add_argument("--writer", type=int, default=50_000)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    path = args.db or str(Path(tmp.name) / "bench.db")
    store = Store.open(path)
    if store.latest_run() is None:
        timed(f"build {args.runs} runs x {args.links} links", build, store, args.runs, args.links)
    run = store.latest_run()
    assert run is not None
    url = "https://host1.example.org/article/1"
    plans(store, run.id, url)
    links = timed("run_links (latest run)", store.run_links, run.id)
    print(f"    {len(links)} LinkResults")
    timed("run_links again (warm)", store.run_links, run.id)
    timed("history (one URL)", store.history, url)
    sample = [f"https://host{i % 997}.example.org/article/{i}" for i in range(10_000)]
    timed("url_states (10,000 URLs)", store.url_states, sample)
    due = timed("due_rechecks", store.due_rechecks, dt.datetime(2026, 3, 1, tzinfo=UTC), (24, 72))
    print(f"    {len(due)} due")
    store.close()
    size = Path(path).stat().st_size / 1e6
    print(f"database size: {size:.0f} MB")
    rate = asyncio.run(writer_rate(str(Path(tmp.name) / "writer.db"), args.writer))
    print(f"StoreWriter: {rate:,.0f} observations/s ({args.writer} adds, batch 200 / 0.2 s)")


if __name__ == "__main__":
    main()
