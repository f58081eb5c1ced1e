"""How a one-shot command ends when it is stopped, runs out of disk, or finds
nothing it could audit: what a cron wrapper (its exit status, its mail of
stderr) and the next command see. Real subprocesses against local servers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.config import audit_scope, load_settings
from monitor.crawl import run_audit
from monitor.locking import holder_words
from monitor.store import Store, lock_owner
from simkit import run_monitor

LINKS = 200


class Pace:
    """What the cited server has been asked, and how slowly it answers (changed mid-test)."""

    def __init__(self, delay: float) -> None:
        self.asked = 0
        self.delay = delay


def cited_site(delay: float = 0.0, status: int = 200, links: int = LINKS,
               pace: Pace | None = None) -> web.Application:
    """A watched page of `links` citations to one local server, each answered after `pace.delay`."""
    entries = "".join(f'<p><a href="/study/{i}">Study number {i} of a treatment</a>. '
                      f'J Rheumatol. 2020;1(2):3-4.</p>' for i in range(links))
    app = web.Application()
    pace = pace or Pace(delay)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=f"<html><head><title>T</title></head><body><h2>Refs</h2>{entries}</body></html>",
                            content_type="text/html")

    async def study(request: web.Request) -> web.Response:
        pace.asked += 1
        await asyncio.sleep(pace.delay)
        return web.Response(status=status, text="<title>Study</title>", content_type="text/html")

    app.router.add_get("/page.html", page)
    app.router.add_get("/study/{i}", study)
    return app


def write_config(tmp_path: Path, *urls: str, db: Path | None = None) -> Path:
    config = tmp_path / "monitor.toml"
    pages = "".join(f'[[pages]]\nurl = "{url}"\n' for url in urls)
    config.write_text(pages + '[checker]\nallow_private_networks = ["127.0.0.1/32"]\ntimeout = 2\n'
                      f'retries = 0\nsoft404_probe = false\nper_host = 2\n'
                      f'[database]\npath = "{db or tmp_path / "m.db"}"\n'
                      f'[report]\ndir = "{tmp_path / "out"}"\n[email]\nenabled = false\n', encoding="utf-8")
    return config


def runs(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT id, status FROM runs ORDER BY id").fetchall()


def observations(db: Path, run_id: int) -> tuple[int, int]:
    """(observations of the run, distinct URLs among them)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT url) FROM observations WHERE run_id = ?",
                           (run_id,)).fetchone()
    return row[0], row[1]


# -- SIGTERM (cron's `timeout`, `systemctl stop`) ------------------------------------------


@pytest.mark.parametrize("command", ["check", "run"])
async def test_sigterm_ends_the_audit_as_ctrl_c_does_and_loses_nothing(
        tmp_path: Path, aiohttp_server: Any, command: str) -> None:
    """Was: killed by the signal's default action (exit -15), nothing on
    stderr, the run left "running"."""
    pace = Pace(0.2)
    server = await aiohttp_server(cited_site(pace=pace))
    config = write_config(tmp_path, f"http://127.0.0.1:{server.port}/page.html")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", command, "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    while pace.asked < 30:
        await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    pace.delay = 0.0  # the resumed run need not be slow
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 1, (proc.returncode, lines)  # as Ctrl-C: the contract's "anything else"
    assert len(lines) == 1 and lines[0].startswith("monitor: stopped by SIGTERM"), lines
    assert "saved" in lines[0] and "resumes" in lines[0]
    assert runs(tmp_path / "m.db") == [(1, "interrupted")]
    kept, _ = observations(tmp_path / "m.db", 1)
    assert kept > 0
    code, _, err2 = await run_monitor("check", "--config", str(config))
    assert code == 0, err2
    assert runs(tmp_path / "m.db") == [(1, "finished")]  # resumed, not started again
    assert observations(tmp_path / "m.db", 1) == (LINKS, LINKS)  # each URL once


# -- a full disk -------------------------------------------------------------------------------


async def test_a_report_cut_by_a_full_disk_leaves_no_partial_file(tmp_path: Path, aiohttp_server: Any) -> None:
    """Was: `report-...-run-1.json.tmp` left (on the disk that is full) next
    to the run's HTML report, with the error saying the report was not saved."""
    server = await aiohttp_server(cited_site(status=404, links=400))
    config = write_config(tmp_path, f"http://127.0.0.1:{server.port}/page.html")
    await run_audit(load_settings(config))
    limit = (tmp_path / "m.db").stat().st_size + 200_000  # the HTML fits, its JSON does not

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([sys.executable, "-m", "monitor", "report", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, preexec_fn=small_disk)
    assert result.returncode == 1, result
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot save the report" in result.stderr
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert not [n for n in left if n.startswith("report-")], f"left behind: {left}"  # both or neither
    result = subprocess.run([sys.executable, "-m", "monitor", "report", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".html", ".html", ".json"]


FULL_DISK = """
set -e
mount -t tmpfs -o size=2m tmpfs "$DIR"
set +e
"$PY" -m monitor check --config "$CONFIG" > /dev/null 2> "$OUT/full.err"
echo $? > "$OUT/full.rc"
mount -o remount,size=64m "$DIR"
"$PY" -m monitor check --config "$CONFIG" > /dev/null 2> "$OUT/again.err"
echo $? > "$OUT/again.rc"
cp "$DIR/m.db" "$OUT/m.db"
"""


async def test_a_full_disk_during_a_check_is_one_line_and_loses_nothing(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """A 2 MB disk (a tmpfs in a mount namespace of its own) fills during the
    checks of 3,000 links. Was: two to four "ERROR monitor.store store
    writer: a batch of N failed" lines (and a lock WARNING) before the one
    line, which did not say what to do."""
    links = 3000
    server = await aiohttp_server(cited_site(status=404, links=links))
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    config = write_config(tmp_path, f"http://127.0.0.1:{server.port}/page.html", db=disk / "m.db")
    config.write_text(config.read_text().replace("per_host = 2", "per_host = 16"))
    proc = await asyncio.create_subprocess_exec(
        "unshare", "-m", "--propagation", "private", "sh", "-c", FULL_DISK,
        env={**os.environ, "DIR": str(disk), "OUT": str(out), "CONFIG": str(config), "PY": sys.executable},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    if proc.returncode != 0 or not (out / "full.rc").exists():
        pytest.skip(f"no mount namespace here (needs root): {err.decode().strip()}")
    said = (out / "full.err").read_text()
    assert (out / "full.rc").read_text().strip() == "1", said
    assert len(said.strip().splitlines()) == 1, said
    assert said.startswith(f"monitor: database {disk / 'm.db'}: database or disk is full; free some space"), said
    assert (out / "again.rc").read_text().strip() == "0", (out / "again.err").read_text()
    assert runs(out / "m.db") == [(1, "finished")]
    assert observations(out / "m.db", 1) == (links, links)


# -- `report` after a run that did not finish --------------------------------------------------


@pytest.mark.parametrize(("ending", "said"), [
    ("killed", "run 2 did not finish (started 2026-11-23 06:00 UTC; its process was killed or the machine "
               "stopped): this is run 1's report, the latest finished; the next `monitor check` or "
               "`monitor run` resumes run 2"),
    ("interrupted", "run 2 was interrupted (started 2026-11-23 06:00 UTC): this is run 1's report, the "
                    "latest finished; the next `monitor check` or `monitor run` resumes run 2"),
    ("running", "run 2 is running now (started 2026-11-23 06:00 UTC; run by {holder}): this is "
                "run 1's report, the latest finished; `monitor report` once it has finished reports run 2"),
    # killed, while `monitor serve`'s recheck (or a `check --page`) holds the audit lock: not running
    ("recheck", "run 2 did not finish (started 2026-11-23 06:00 UTC; its process was killed or the machine "
                "stopped): this is run 1's report, the latest finished; the next `monitor check` or "
                "`monitor run` resumes run 2"),
    ("changed", "run 2 was interrupted (started 2026-11-23 06:00 UTC): this is run 1's report, the "
                "latest finished; the next `monitor check` or `monitor run` starts a new run: the "
                "[[pages]], [[sites]] or checker.exclude of {config} are not those run 2 started with"),
    ("finished", None),
])
async def test_report_after_an_unfinished_newer_run_says_which_run_it_reports(
        tmp_path: Path, aiohttp_server: Any, ending: str, said: str | None) -> None:
    """Was: run 1's report, without a word about run 2 (SIGKILL of `monitor
    check` 3 s in, then `monitor report`)."""
    server = await aiohttp_server(cited_site(links=3))
    config = write_config(tmp_path, f"http://127.0.0.1:{server.port}/page.html")
    await run_audit(load_settings(config))
    started = dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC)
    with Store.open(tmp_path / "m.db") as store:
        # started under this configuration, or ("changed") under one edited since
        scope = "another configuration" if ending == "changed" else audit_scope(load_settings(config))
        run = store.start_run(started, scope=scope)
        if ending in ("interrupted", "finished", "changed"):
            store.finish_run(run.id, started + dt.timedelta(minutes=5),
                             status="finished" if ending == "finished" else "interrupted")
        if ending == "recheck":  # started by a `check` since killed (review 9, finding 6)
            store.drive_run(run.id, f"{socket.gethostname()}:999999999")
        if ending in ("running", "recheck"):  # a live holder: this test's own process
            assert store.acquire_lock("audit", lock_owner(), started, dt.timedelta(days=3650))
    code, out, err = await run_monitor("report", "--config", str(config))
    assert code == 0, err
    if said is None:
        assert err == "" and "run-2" in out
        return
    holder = holder_words(lock_owner(), started.isoformat(), dt.datetime.now(dt.UTC))
    assert err.strip() == said.format(holder=holder, config=config), err
    assert "run-1.html" in out
    code, out, err = await run_monitor("report", "--config", str(config), "--run", "1")
    assert code == 0 and err == "", err  # asked for by number: nothing to say


async def test_a_resumed_run_names_the_process_that_resumed_it(tmp_path: Path, aiohttp_server: Any) -> None:
    """`report` calls a run "running now" only while the process that
    started or resumed it holds the audit lock (store.run_driver)."""
    server = await aiohttp_server(cited_site(links=3))
    config = write_config(tmp_path, f"http://127.0.0.1:{server.port}/page.html")
    settings = load_settings(config)
    with Store.open(tmp_path / "m.db") as store:
        run = store.start_run(dt.datetime.now(dt.UTC), scope=audit_scope(settings))
        assert store.run_driver(run.id) == lock_owner()
        store.drive_run(run.id, "elsewhere.example:4242")  # a check on another machine, then stopped
        store.finish_run(run.id, dt.datetime.now(dt.UTC), status="interrupted")
        assert store.run_driver(run.id) == "elsewhere.example:4242" and store.run_driver(run.id + 1) is None
    outcome = await run_audit(settings)
    assert outcome.resumed and outcome.run.id == run.id
    with Store.open(tmp_path / "m.db") as store:
        assert store.run_driver(run.id) == lock_owner()


# -- no page could be fetched ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["check", "run"])
async def test_no_page_fetched_is_exit_1_some_pages_fetched_is_exit_0(
        tmp_path: Path, aiohttp_server: Any, command: str) -> None:
    """Was: exit 0 and "0 links" when the site was down or every url wrong: a
    cron wrapper reading the exit status took it for a week with nothing to fix."""
    server = await aiohttp_server(cited_site(links=3))
    base = f"http://127.0.0.1:{server.port}"
    config = write_config(tmp_path, f"{base}/missing.html", f"{base}/also-missing.html")
    code, out, err = await run_monitor(command, "--config", str(config))
    lines = err.strip().splitlines()
    assert code == 1, err
    assert lines[0].startswith("2 of 2 pages could not be fetched"), err
    assert lines[-1] == ("monitor: no watched page could be fetched, so no link was checked (run 1); "
                         "the lines above say why"), err
    if command == "run":  # the report (which says so too) is made all the same
        assert "report: " in out
    config = write_config(tmp_path, f"{base}/missing.html", f"{base}/page.html")
    code, out, err = await run_monitor(command, "--config", str(config))
    assert code == 0, err
    assert err.startswith("1 of 2 pages could not be fetched") and "monitor:" not in err, err


@pytest.mark.parametrize("command", ["check", "run"])
async def test_a_sites_crawl_that_recorded_no_page_is_exit_1_and_no_clean_week(
        tmp_path: Path, aiohttp_server: Any, command: str) -> None:
    """robots.txt answering 503 is disallow-all (RFC 9309): a [[sites]]-only
    audit then records no page at all. Was: exit 0 ("run 1: 0 links."), the
    report "Nothing needs fixing this week." and an index row of zeros
    (review 9, findings 3 and 10: the rule was `pages and all(failed)`)."""
    async def robots(request: web.Request) -> web.Response:
        return web.Response(status=503, text="busy")

    async def home(request: web.Request) -> web.Response:
        return web.Response(text="<html><body><a href='/x'>A cited article title here</a></body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/", home)
    server = await aiohttp_server(app)
    config = write_config(tmp_path)
    config.write_text(f'[[sites]]\nstart = "http://127.0.0.1:{server.port}/"\n' + config.read_text(),
                      encoding="utf-8")
    code, out, err = await run_monitor(command, "--config", str(config))
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        "monitor: no watched page could be fetched, so no link was checked (run 1); "
        "the lines above say why"), err
    # and the lines above say why: the site's robots.txt (was a WARNING log line only)
    why = "its robots.txt could not be read (HTTP 503)"
    assert "1 of 1 page could not be fetched" in err and why in err, err
    code, out, err = await run_monitor("report", "--config", str(config))
    assert code == 0, err
    report = next((tmp_path / "out").glob("report-*-run-1.html")).read_text(encoding="utf-8")
    assert why in report, report
    assert "No page could be fetched this week: nothing was checked." in report
    assert "Nothing needs fixing" not in report
    index = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "not fetched" in index, index
