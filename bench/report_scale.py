"""`monitor report` and `monitor history` on a year of weekly runs over 100,000 links.

    python bench/report_scale.py                  # 52 runs x 100,000 links (builds once, ~5 min)
    python bench/report_scale.py --runs 4 --links 10000 --db /tmp/small.db

The database is built fast with direct SQL: `Store.open` first (so the
schema is exactly what monitor/store.py's migrations make), then its indexes
on the two big tables are dropped, rows are inserted with executemany in
one transaction per run, and the same CREATE INDEX statements (read back
from sqlite_master) are run again. No ANALYZE: the monitor does not run it
either, so the query planner sees what it sees in production.

Per run: every occurrence (the same links each week, as `monitor check`
records them), one observation per URL, 1 page row per 200 links, and one
url_state row per URL at the end. URLs have a fate: most stay ok, some move,
some expire at a given week and stay failing (with strikes), some flap.
Every run but the last is marked reported, so the report compares with the
previous one ("new since last report") as it does in production.

Then, as subprocesses like a user would run them: `monitor report` on the
latest run (wall time, CPU time, peak RSS, the files it wrote) and
`monitor history` of a few URLs. Last, what an editor waits for: the saved
report opened in headless Chromium (when installed), the time to its load
event and to its first full layout, measured by a script in a copy of it. The machine's load average is printed with
each report: other processes on its two cores show in the wall time, less
in the CPU time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import resource
import shutil
import sqlite3
import subprocess
import tempfile
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.run import measure_simple  # noqa: E402
from monitor.store import (  # noqa: E402
    HISTORY_SQL,
    RUN_FLAGGED_LINKS_SQL,
    RUN_LINKS_UNMARKED_SQL,
    URL_MARKS_SQL,
    Store,
    _ts,
)

UTC = dt.timezone.utc
START = dt.datetime(2025, 11, 24, 6, tzinfo=UTC)
BIG_TABLES = ("occurrences", "observations", "pages")

OCCURRENCE_SQL = (
    "INSERT INTO occurrences (run_id, page_url, url, raw_href, anchor_text, section, kind, element, "
    "attribute, line, entry_title, entry_summary, entry_source, entry_date, expired_mark, skip_reason) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
OBSERVATION_SQL = (
    "INSERT INTO observations (run_id, url, checked_at, status, reason, detail, suggested_url, "
    "http_status, final_url, redirects, error_kind, error_detail, elapsed_ms, bytes_read, "
    "content_type, title, meta_title, content_hash, attempts, method, strikes, failing_since) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
PAGE_SQL = (
    "INSERT INTO pages (run_id, url, status, http_status, title, error, links, entries, name, owner, "
    "etag, last_modified, fetched_at) VALUES (?, ?, 'ok', 200, ?, '', ?, '[]', '', '', '', '', ?)"
)
STATE_SQL = (
    "INSERT OR REPLACE INTO url_state (url, status, reason, strikes, failing_since, last_ok_at, "
    "last_checked_at, first_seen_at, flapping, recent, last_ok_title) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# (fate, share): what happens to a URL over the year.
FATES = (("ok", 0.88), ("moved", 0.04), ("expires", 0.04), ("flaps", 0.02), ("blocked", 0.01),
         ("drifts", 0.01))


def status_of(fate: str, week: int, turn: int) -> tuple[str, str, int | None]:
    """(status, reason, http status) of a URL with `fate` in run `week`."""
    if fate == "moved":
        return "moved", "permanent_redirect", 301
    if fate == "expires" and week >= turn:
        return "expired", "http_404", 404
    if fate == "flaps" and (week + turn) % 3 == 0:
        return "error", "http_503", 503
    if fate == "blocked":
        return "blocked", "http_403", 403
    if fate == "drifts" and week >= turn:
        return "drifted", "title_mismatch", 200
    return "ok", "ok", 200


def build(path: Path, runs: int, links: int, per_page: int = 200, seed: int = 7) -> None:
    rng = random.Random(seed)
    Store.open(path).close()  # the schema, exactly as the monitor migrates it
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    indexes = [row for row in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({', '.join('?' * len(BIG_TABLES))})", BIG_TABLES)]
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    n_pages = max(1, links // per_page)
    pages = [f"https://www.sclero.org/scleroderma/topic-{p}/treatments.html" for p in range(n_pages)]
    urls = [url_of(i) for i in range(links)]
    titles = [f"Outcome of treatment {i} in systemic sclerosis: a cohort study of {i % 300} patients"
              for i in range(links)]
    fates = rng.choices([f for f, _ in FATES], [w for _, w in FATES], k=links)
    turns = [rng.randrange(runs) for _ in range(links)]
    started = time.monotonic()
    for r in range(runs):
        run_id = r + 1
        when = START + dt.timedelta(weeks=r)
        finished = when + dt.timedelta(minutes=25)
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO runs (id, started_at, finished_at, status, reported_at, links, urls) "
            "VALUES (?, ?, ?, 'finished', ?, ?, ?)",
            (run_id, _ts(when), _ts(finished), _ts(finished) if r < runs - 1 else None, links, links))
        conn.executemany(PAGE_SQL, ((run_id, page, f"Topic {p}", per_page, _ts(when))
                                    for p, page in enumerate(pages)))
        conn.executemany(OCCURRENCE_SQL, (
            (run_id, pages[i // per_page], url, url, titles[i], f"Section {i % 12}", "citation", "a",
             "href", 40 + i % per_page, titles[i], "A summary sentence of the cited study.",
             "PubMed, Clin Rheumatol, 2019 Aug;38(8):2039-2051.", "2019-08-01", 0, None)
            for i, url in enumerate(urls)))
        checked0 = when + dt.timedelta(seconds=30)
        conn.executemany(OBSERVATION_SQL, (
            _observation(run_id, i, url, titles[i], fates[i], r, turns[i], checked0)
            for i, url in enumerate(urls)))
        conn.execute("COMMIT")
        print(f"  run {run_id}/{runs} written ({time.monotonic() - started:.0f} s)", flush=True)
    last = runs - 1
    conn.execute("BEGIN")
    conn.executemany(STATE_SQL, (_state(url, titles[i], fates[i], last, turns[i]) for i, url in enumerate(urls)))
    conn.execute("COMMIT")
    for name, sql in indexes:
        t = time.monotonic()
        conn.execute(sql)
        print(f"  index {name} rebuilt ({time.monotonic() - t:.0f} s)", flush=True)
    conn.close()


def url_of(i: int) -> str:
    return f"https://journal{i % 997}.example.org/doi/10.{1000 + i % 9000}/article-{i}"


def _failing_since(fate: str, week: int, turn: int) -> tuple[int, str | None]:
    if fate in ("expires", "drifts") and week >= turn:
        return week - turn + 1, _ts(START + dt.timedelta(weeks=turn, minutes=1))
    return 0, None


def _observation(run_id: int, i: int, url: str, title: str, fate: str, week: int, turn: int,
                 checked0: dt.datetime) -> tuple[object, ...]:
    status, reason, http = status_of(fate, week, turn)
    strikes, since = _failing_since(fate, week, turn)
    final = url.replace("/doi/", "/doi/full/") if status == "moved" else url
    hops = json.dumps([{"url": url, "status": 301, "location": final}]) if status == "moved" else "[]"
    return (run_id, url, _ts(checked0 + dt.timedelta(milliseconds=12 * i)), status, reason,
            f"The page answered {http}.", final if status == "moved" else None, http, final, hops,
            None, "", 80 + i % 400, 4096, "text/html", title, title, f"{i:040x}", 1, "GET",
            strikes, since)


def _state(url: str, title: str, fate: str, week: int, turn: int) -> tuple[object, ...]:
    status, reason, _ = status_of(fate, week, turn)
    strikes, since = _failing_since(fate, week, turn)
    recent = [status_of(fate, w, turn)[0] for w in range(max(0, week - 7), week + 1)]
    checked = _ts(START + dt.timedelta(weeks=week, minutes=10))
    return (url, status, reason, strikes, since, checked if status in ("ok", "moved") else None,
            checked, _ts(START), int(fate == "flaps"), json.dumps(recent), title)


def plans(path: Path) -> str:
    conn = sqlite3.connect(path)
    lines = []
    for name, sql, params in (("run_links", RUN_LINKS_UNMARKED_SQL, (1,)),
                              ("url_marks", URL_MARKS_SQL, ()),
                              ("run_flagged_links", RUN_FLAGGED_LINKS_SQL, (1,)),
                              ("history", HISTORY_SQL, ("x",))):
        lines.append(f"{name}: " + "; ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)))
    conn.close()
    return "\n".join(lines)


def _newest_report(out: Path) -> Path | None:
    htmls = sorted(out.glob("report-*-run-*.html"), key=lambda f: f.stat().st_mtime)
    return htmls[-1] if htmls else None


def _written(out: Path) -> str:
    """Sizes of the newest saved report's files."""
    html = _newest_report(out)
    if html is None:
        return "no report written"
    json_file = html.with_suffix(".json")
    size = json_file.stat().st_size if json_file.exists() else 0
    return f"{html.name}: HTML {html.stat().st_size / 2**20:.1f} MiB, JSON {size / 2**20:.1f} MiB"


BROWSER_PROBE = """<script>
window.addEventListener('load', function () {
  var loaded = performance.now();
  var height = document.body.scrollHeight;  /* forces style and layout */
  document.body.setAttribute('data-bench', loaded.toFixed(0) + ' ' + performance.now().toFixed(0) + ' ' + height);
});
</script></body>"""


def browser_load(html: Path, repeat: int) -> str:
    """Chromium's time to show the saved report: parsed (load event) and
    laid out (the page's height read). The report has no script; a copy
    gets one that writes the figures into the DOM, which Chromium dumps."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return "chromium: not installed, browser load not measured"
    work = Path(tempfile.mkdtemp(prefix="report-scale-browser-"))
    try:
        copy = work / html.name
        copy.write_text(html.read_text(encoding="utf-8").replace("</body>", BROWSER_PROBE), encoding="utf-8")
        figures = []
        for _ in range(repeat):
            dom = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={work / 'profile'}",
                 "--window-size=1000,900", "--dump-dom", copy.as_uri()],
                capture_output=True, text=True, timeout=600).stdout
            found = re.search(r'data-bench="(\d+) (\d+) (\d+)"', dom)
            figures.append("no figures" if found is None else
                           f"load {int(found[1]) / 1000:.2f} s, laid out {int(found[2]) / 1000:.2f} s "
                           f"({int(found[3]):,} px)")
        return f"chromium, {html.name}: " + "; ".join(figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=52)
    p.add_argument("--links", type=int, default=100_000)
    p.add_argument("--db", type=Path, default=BENCH / "out" / "report_scale.db")
    p.add_argument("--rebuild", action="store_true")
    p.add_argument("--repeat", type=int, default=2,
                   help="times `monitor report` runs (the first may read a cold file)")
    args = p.parse_args()
    db = args.db.resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not db.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        print(f"building {db}: {args.runs} runs x {args.links:,} links ...", flush=True)
        t = time.monotonic()
        build(db, args.runs, args.links)
        print(f"built in {time.monotonic() - t:.0f} s", flush=True)
    # A database built before a migration gets it now, as `monitor report`
    # would give it, before the query plans are read with the new columns.
    Store.open(db).close()
    size = sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists())
    conn = sqlite3.connect(db)
    counts = {t: conn.execute(f"SELECT max(rowid) FROM {t}").fetchone()[0]
              for t in ("occurrences", "observations")}
    conn.close()
    print(f"database: {size / 2**30:.2f} GiB, {counts['occurrences']:,} occurrences, "
          f"{counts['observations']:,} observations")
    print(plans(db))
    out = db.parent / "report_scale"
    config = db.parent / "report_scale.toml"
    config.write_text(f'[[pages]]\nurl = "https://www.sclero.org/scleroderma/topic-0/treatments.html"\n'
                      f'[database]\npath = "{db}"\n[report]\ndir = "{out}"\n')
    # The first read of a cold file measures the disk, not the monitor: report more than once.
    walls = []
    for attempt in range(1, args.repeat + 1):
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        pss: dict[str, float] = {}
        wall, rss, code, text = measure_simple(
            [sys.executable, "-m", "monitor", "report", "--config", str(config)], pss=pss)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        walls.append(wall)
        print(f"monitor report ({attempt}): {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {rss:.0f} MiB "
              f"(PSS {pss['mib']:.0f} MiB: a forked child's shared pages once), "
              f"exit {code}, load average {load:.2f} before; " + " ".join(text.split())[:120])
    if walls:
        print(f"monitor report: best {min(walls):.2f} s, median {sorted(walls)[len(walls) // 2]:.2f} s "
              f"of {len(walls)}; {_written(out)}")
        if (html := _newest_report(out)) is not None:
            print(browser_load(html, 2), flush=True)
    for url in (url_of(0), url_of(args.links // 2)):
        wall, rss, code, text = measure_simple(
            [sys.executable, "-m", "monitor", "history", url, "--config", str(config), "--format", "json"])
        entries = len(json.loads(text)["observations"]) if code == 0 else -1
        print(f"monitor history: {wall:.2f} s, {entries} observations, peak RSS {rss:.0f} MiB, exit {code}")


if __name__ == "__main__":
    main()
