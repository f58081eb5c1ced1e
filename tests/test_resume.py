"""An interrupted audit, resumed or not (walkthrough 9, findings 1 and 14).

Real runs: `python -m monitor` in a subprocess, stopped with SIGINT or
SIGTERM while a link of a local aiohttp server hangs, then started again,
with the configuration unchanged or edited in between. What is checked: the
resumed run says so in one line; a run whose pages or exclusions changed
meanwhile is not resumed (it stays "interrupted", its checks kept) and a new
run audits the file as it is now; reports and the next week's baseline pick
the finished runs only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.config import PageSettings, Settings, audit_scope, load_settings
from monitor.store import Store
from simkit import run_monitor


def page(title: str, *paths: str) -> str:
    links = "".join(f'<p><a href="{p}">Study {p.strip("/")}</a></p>' for p in paths)
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{links}</body></html>"


PAGES = {"/p1": page("One", "/ok", "/slow", "/gone"), "/p2": page("Two", "/ok2"),
         "/p3": page("Three", "/new")}


@dataclass
class Site:
    port: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    slow_asked: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def site(aiohttp_server: Any) -> Site:
    """Pages /p1 /p2 /p3; /slow hangs the first time it is asked (until the
    audit is stopped), then answers; /gone is a 404."""
    state = Site()

    async def handle(request: web.Request) -> web.Response:
        path = request.path
        state.hits[path] = state.hits.get(path, 0) + 1
        if path in PAGES:
            return web.Response(text=PAGES[path], content_type="text/html")
        if path == "/gone":
            return web.Response(status=404, text="not here")
        if path == "/slow" and state.hits[path] == 1:
            state.slow_asked.set()
            await asyncio.sleep(60)
        return web.Response(text=f"<html><head><title>Study {path.strip('/')}</title></head>"
                                 "<body>x</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    server = await aiohttp_server(app)
    state.port = server.port
    return state


def write_config(path: Path, site: Site, pages: list[str], exclude: list[str] | None = None) -> Path:
    db, reports = path.parent / "monitor.db", path.parent / "reports"
    text = "".join(f'[[pages]]\nurl = "{site.url(p)}"\nname = "Page {p}"\n' for p in pages)
    text += ('[checker]\ntimeout = 30\nretries = 0\nsoft404_probe = false\n'
             'allow_private_networks = ["127.0.0.1/32"]\n')
    if exclude:
        text += f"exclude = {json.dumps(exclude)}\n"
    text += (f'[database]\npath = "{db}"\n[report]\ndir = "{reports}"\n'
             '[email]\nenabled = false\n')
    path.write_text(text, encoding="utf-8")
    return path


def observed(db: Path, run_id: int) -> set[str]:
    with Store.open(db) as store:
        return store.observed_urls(run_id)


async def stopped_check(config: Path, site: Site, db: Path, sig: signal.Signals) -> str:
    """`monitor check`, stopped with `sig` once /slow hangs and /ok's check
    is in the database; its stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "check", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await asyncio.wait_for(site.slow_asked.wait(), timeout=30)
        for _ in range(600):
            if db.exists() and site.url("/ok") in observed(db, 1):
                break
            await asyncio.sleep(0.05)
        proc.send_signal(sig)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == (-sig if sig == signal.SIGKILL else 1), err.decode()
    return err.decode()


def run_row(db: Path, run_id: int) -> tuple[str, str | None]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT status, finished_at FROM runs WHERE id = ?", (run_id,)).fetchone()


async def test_a_resumed_check_says_which_run_it_resumes_and_what_was_checked(
        site: Site, tmp_path: Path) -> None:
    config = write_config(tmp_path / "monitor.toml", site, ["/p1", "/p2"])
    db = tmp_path / "monitor.db"
    err = await stopped_check(config, site, db, signal.SIGINT)
    # The figure without a unit ("run interrupted run=1 written=2") is for -v only.
    assert "run interrupted" not in err and "WARNING" not in err, err
    assert err.strip().splitlines()[-1].startswith("monitor: interrupted"), err
    status, finished_at = run_row(db, 1)
    assert status == "interrupted" and finished_at is not None
    done = observed(db, 1)
    assert site.url("/ok") in done and site.url("/slow") not in done
    at = dt.datetime.fromisoformat(finished_at).astimezone(dt.UTC)

    code, out, err = await run_monitor("check", "--config", str(config), "--format", "json")
    assert code == 0, err
    n = len(done)
    line = (f"resuming run 1, interrupted at {at:%H:%M} UTC: {n} URL{'' if n == 1 else 's'} "
            f"{'was' if n == 1 else 'were'} already checked")
    assert line in err.splitlines(), err
    assert "not resuming" not in err
    report = json.loads(out)
    assert report["run"]["id"] == 1
    assert {link["url"] for link in report["links"]} == {site.url(p) for p in ("/ok", "/slow", "/gone", "/ok2")}
    assert site.hits["/ok"] == 1, "a URL checked before the stop is not checked again"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
async def test_a_check_after_the_pages_and_exclusions_changed_starts_a_new_run(
        site: Site, tmp_path: Path, sig: signal.Signals) -> None:
    """SIGKILL (no clean-up: the run is left "running") or SIGTERM (ends a
    check as Ctrl-C does: "interrupted", tests/test_lifecycle.py), then the file edited:
    one page removed, one added, a link excluded. The next `monitor run`
    audits the file as it is now, in a new run, and says so; the old run is
    closed as interrupted with its checks kept; reports pick the new run."""
    config = write_config(tmp_path / "monitor.toml", site, ["/p1", "/p2"])
    db = tmp_path / "monitor.db"
    await stopped_check(config, site, db, sig)
    assert run_row(db, 1)[0] == ("running" if sig == signal.SIGKILL else "interrupted")
    before = observed(db, 1)
    assert site.url("/ok") in before

    write_config(config, site, ["/p1", "/p3"], exclude=["/gone$"])
    code, out, err = await run_monitor("run", "--config", str(config))
    assert code == 0, err
    assert out.startswith("run 2: "), out
    said = [line for line in err.splitlines() if line.startswith("not resuming run 1")]
    assert len(said) == 1, err
    assert str(config) in said[0] and "run 2 audits the configuration as it is now" in said[0]
    assert f"the checks it made of {len(before)} URL" in said[0]
    assert "resuming run 1," not in err

    status, finished_at = run_row(db, 1)
    assert status == "interrupted" and finished_at is not None, "closed as the stop would have"
    assert observed(db, 1) == before, "nothing the interrupted run checked is lost"
    with Store.open(db) as store:
        assert [(r.id, r.status) for r in store.runs()] == [(2, "finished"), (1, "interrupted")]
        assert [p.url for p in store.run_pages(2)] == [site.url("/p1"), site.url("/p3")]
        links = {link.url: link for link in store.run_links(2)}
        assert store.latest_run() is not None and store.latest_run().id == 2  # type: ignore[union-attr]
    assert set(links) == {site.url(p) for p in ("/ok", "/slow", "/gone", "/new")}
    assert links[site.url("/gone")].status.value == "skipped", "the new exclusion applies"
    assert links[site.url("/new")].status.value == "ok", "the added page is audited"
    saved = json.loads(next((tmp_path / "reports").glob("report-*-run-2.json")).read_text())
    assert saved["run"]["id"] == 2
    assert not list((tmp_path / "reports").glob("report-*-run-1.*")), "no report of the interrupted run"

    # `monitor report` without --run, and next week's baseline: run 2, never run 1.
    code, out, err = await run_monitor("check", "--config", str(config))
    assert code == 0 and "resuming" not in err, err
    code, out, err = await run_monitor("report", "--config", str(config))
    assert code == 0, err
    with Store.open(db) as store:
        previous = store.previous_reported_run(3)
    assert previous is not None and previous.id == 2
    third = json.loads(next((tmp_path / "reports").glob("report-*-run-3.json")).read_text())
    assert third["run"]["id"] == 3 and third["previous_run"]["id"] == 2, third["previous_run"]


def test_the_scope_follows_what_decides_the_links_checked(tmp_path: Path) -> None:
    """Table: what changes the digest (and so starts a new run) and what does not."""
    config = tmp_path / "m.toml"
    config.write_text('[[pages]]\nurl = "https://www.sclero.org/a.html"\nname = "A"\n', encoding="utf-8")
    base = load_settings(config)
    same = audit_scope(base)
    from dataclasses import replace

    from monitor.config import CheckerSettings, SiteSettings

    changed = [
        replace(base, pages=base.pages + (PageSettings("https://www.sclero.org/b.html"),)),
        replace(base, pages=()),
        replace(base, pages=(replace(base.pages[0], owner="editor@sclero.org"),)),
        replace(base, sites=(SiteSettings(start="https://www.sclero.org/"),)),
        replace(base, checker=replace(base.checker, exclude=("ncbi",))),
    ]
    for settings in changed:
        assert audit_scope(settings) != same, settings
    unchanged = [
        replace(base, checker=replace(base.checker, timeout=3.0, concurrency=2)),
        replace(base, source="/elsewhere/m.toml"),
        load_settings(config),
    ]
    for settings in unchanged:
        assert audit_scope(settings) == same, settings
    assert isinstance(base, Settings) and isinstance(base.checker, CheckerSettings)


def test_resumable_run_only_under_the_scope_it_started_with(tmp_path: Path) -> None:
    """The decision `monitor serve` logs (`resume_pending config_changed=`)
    and `weekly_job` dates the job by, as `run_audit` makes it."""
    from monitor.jobs import resumable_run

    a = Settings(pages=(PageSettings("https://www.sclero.org/a.html"),))
    b = Settings(pages=(PageSettings("https://www.sclero.org/b.html"),))
    t0 = dt.datetime(2026, 11, 22, 20, 0, tzinfo=dt.UTC)
    with Store.open(tmp_path / "m.db") as store:
        assert resumable_run(store, a) is None  # nothing to resume
        old = store.start_run(t0)  # an earlier version: no scope recorded
        store.finish_run(old.id, t0, status="interrupted")
        assert store.run_scope(old.id) is None and resumable_run(store, a) is None
        run = store.start_run(t0, scope=audit_scope(a))
        store.finish_run(run.id, t0, status="interrupted")
        assert resumable_run(store, a) == store.get_run(run.id)
        assert resumable_run(store, b) is None
        page_check = store.start_run(t0, partial=True)  # `check --page`: records no scope
        assert store.run_scope(run.id) == audit_scope(a) and store.run_scope(page_check.id) is None
        assert resumable_run(store, a) == store.get_run(run.id)


async def test_a_weekly_job_that_starts_over_counts_from_now(site: Site, tmp_path: Path) -> None:
    """Not resumed, the job's audit begins now: dated by the interrupted run's
    start, it left the week's scheduled time looking undone, and the service
    audited a second time (`last_audit_at` before the fire)."""
    from monitor.jobs import LAST_AUDIT_KEY, weekly_job

    config = write_config(tmp_path / "monitor.toml", site, ["/p2"])
    settings = load_settings(config)
    sunday = dt.datetime(2026, 11, 22, 20, 0, tzinfo=dt.UTC)
    monday = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    with Store.open(settings.database.path) as store:
        old = Settings(pages=(PageSettings(site.url("/p1")),))
        run = store.start_run(sunday, scope=audit_scope(old))
        store.finish_run(run.id, sunday, status="interrupted")
    said: list[str] = []
    audit, report = await weekly_job(settings, now=lambda: monday, notice=said.append)
    assert audit is not None and audit.run.id == 2 and audit.left_run is not None
    assert report.run_id == 2 and len(said) == 1 and said[0].startswith("not resuming run 1")
    with Store.open(settings.database.path) as store:
        assert store.get_meta(LAST_AUDIT_KEY) == monday.isoformat()


@pytest.mark.parametrize(("status", "finished", "checked", "expected"), [
    ("interrupted", dt.datetime(2026, 11, 27, 9, 5, tzinfo=dt.UTC), 51,
     "resuming run 8, interrupted at 09:05 UTC: 51 URLs were already checked"),
    ("interrupted", dt.datetime(2026, 11, 20, 15, 14, tzinfo=dt.UTC), 1,
     "resuming run 8, interrupted at 20 Nov 2026 15:14 UTC: 1 URL was already checked"),
    ("running", None, 0,  # killed: no stop time, its start instead
     "resuming run 8, started at 09:00 UTC and stopped without finishing: 0 URLs were already checked"),
])
def test_resumed_words(status: str, finished: dt.datetime | None, checked: int, expected: str) -> None:
    from monitor.crawl import resumed_words
    from monitor.types import RunInfo

    run = RunInfo(id=8, started_at=dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC), finished_at=finished,
                  status=status)
    assert resumed_words(run, checked, dt.datetime(2026, 11, 27, 16, 0, tzinfo=dt.UTC)) == expected
