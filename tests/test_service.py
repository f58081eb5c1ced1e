"""`monitor serve`: schedule, make-up runs, the cross-process lock, resumable
runs after SIGKILL and SIGTERM, rechecks and the outbox.

Everything is real: a local aiohttp site whose links answer slowly when a
test needs an audit to last a few seconds, an aiosmtpd sink, SQLite files,
and for kills and locks, `python -m monitor serve` subprocesses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from apscheduler.triggers.cron import CronTrigger

from monitor.classify import is_confirmed
from monitor.config import Settings, audit_scope, load_settings
from monitor.crawl import run_audit
from monitor.demo.run import MailSink
from monitor.jobs import weekly_job
from monitor.schedule import WEEKLY_JOB
from monitor.service import AUDIT_LOCK, LAST_AUDIT_KEY, OPEN_JOB_KEY, Service, ServiceOptions
from monitor.store import Store
from simkit import DATABASE_HOLDER

UTC = dt.timezone.utc
LOG_LINE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (INFO|WARNING|ERROR|DEBUG) [\w.]+ event=\w+'
    r'( \w+=("([^"\\]|\\.)*"|[^\s"]+))*$'  # a value with spaces is quoted, as JSON writes it
)


# -- the watched site ------------------------------------------------------------


@dataclass
class Site:
    base: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    flaky_down: bool = True
    hold: asyncio.Event | None = None
    """When set, /status/N answers only once the event is set (a recheck caught mid-way)."""

    def page(self, n: int, delay: float = 0.0, bad: bool = False) -> str:
        return f"{self.base}/page?n={n}&d={delay}" + ("&bad=1" if bad else "")

    def url(self, path: str) -> str:
        return self.base + path


def site_app(site: Site) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        site.hits["/page"] += 1
        n, d = int(request.query["n"]), request.query["d"]
        items = "".join(f'<li><a href="/article/{i}?d={d}">Article number {i}</a></li>' for i in range(n))
        if request.query.get("bad"):
            items += '<li><a href="/status/500">Down for good</a></li><li><a href="/flaky">Flaky one</a></li>'
        body = f"<html><head><title>Watched page</title></head><body><ul>{items}</ul></body></html>"
        return web.Response(text=body, content_type="text/html")

    async def article(request: web.Request) -> web.Response:
        site.hits[request.path] += 1
        await asyncio.sleep(float(request.query.get("d", "0")))
        i = request.match_info["i"]
        return web.Response(text=f"<html><head><title>Article number {i}</title></head><body>x</body></html>",
                            content_type="text/html")

    async def status(request: web.Request) -> web.Response:
        site.hits[request.path] += 1
        if site.hold is not None:
            await site.hold.wait()
        return web.Response(status=int(request.match_info["n"]), text="<html><title>Error</title></html>",
                            content_type="text/html")

    async def flaky(request: web.Request) -> web.Response:
        site.hits["/flaky"] += 1
        if site.flaky_down:
            return web.Response(status=500, text="down")
        return web.Response(text="<html><head><title>Flaky one</title></head><body>up</body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/article/{i}", article)
    app.router.add_get("/status/{n}", status)
    app.router.add_get("/flaky", flaky)
    return app


@pytest.fixture
async def site(aiohttp_server: Any) -> Site:
    s = Site()
    server = await aiohttp_server(site_app(s))
    s.base = f"http://127.0.0.1:{server.port}"
    return s


@pytest.fixture
def sink(mail_sink: MailSink) -> MailSink:
    return mail_sink  # tests/simkit.py


def write_config(tmp_path: Path, page: str, smtp_port: int, cron: str = "0 6 * * mon",
                 name: str = "monitor.toml") -> Path:
    text = f"""
[[pages]]
url = "{page}"
name = "Watched"

[checker]
timeout = 5
retries = 0
concurrency = 4
per_host = 2
soft404_probe = false
allow_private_networks = ["127.0.0.1/32"]

[database]
path = "{tmp_path / 'monitor.db'}"

[schedule]
cron = "{cron}"
timezone = "UTC"

[report]
dir = "{tmp_path / 'reports'}"

[email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "monitor@example.org"
recipients = ["webmaster@example.org"]
"""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def settings_for(tmp_path: Path, site: Site, sink: MailSink, page: str, cron: str = "0 6 * * mon") -> Settings:
    return load_settings(write_config(tmp_path, page, sink.port, cron))


def just_missed_cron() -> str:
    """A daily cron whose latest fire was a minute or two ago: a start makes it up, once."""
    fire = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
    return f"{fire.minute} {fire.hour} * * *"


# -- helpers -----------------------------------------------------------------------


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def db_path(settings: Settings) -> str:
    return settings.database.path


def query(path: str | Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(str(path), timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def set_meta(path: str, key: str, value: str) -> None:
    with Store.open(path) as store:
        store.set_meta(key, value)


async def until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition",
                logs: tuple[Proc, ...] = ()) -> None:
    """Wait for `condition`; on a timeout, show the logs of the processes under test."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            tails = "".join(f"\n---- {p.log.name} (exit {p.process.returncode}):\n{p.text()[-3000:]}"
                            for p in logs)
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{tails}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Service], Awaitable[asyncio.Task[int]]]]:
    """Start a Service in this loop; stopped at the end of the test whatever happens."""
    started: list[tuple[Service, asyncio.Task[int]]] = []

    async def start(service: Service) -> asyncio.Task[int]:
        task = asyncio.create_task(service.run())
        started.append((service, task))
        await until(lambda: service.ready.is_set() or task.done(), 10, "the service to start")
        if task.done():
            task.result()
        return task

    yield start
    for service, task in started:
        if not task.done():
            service.request_stop()
            await asyncio.wait_for(task, 20)


async def stop(service: Service, task: asyncio.Task[int]) -> int:
    service.request_stop()
    return await asyncio.wait_for(task, 20)


# -- in-process: schedule and make-up runs --------------------------------------------


async def test_the_schedule_fires_and_each_run_is_reported(tmp_path: Path, site: Site, sink: MailSink,
                                                           running: Any) -> None:
    settings = settings_for(tmp_path, site, sink, site.page(3))
    set_meta(db_path(settings), LAST_AUDIT_KEY, dt.datetime.now(UTC).isoformat())  # nothing to make up
    service = Service(settings, ServiceOptions(trigger=CronTrigger(second="*/2", timezone=UTC)))
    task = await running(service)
    await until(lambda: service.audits_done >= 2, 15, "two scheduled audits")
    assert await stop(service, task) == 0

    runs = query(db_path(settings), "SELECT id, status, reported_at, started_at FROM runs ORDER BY id")
    finished = [r for r in runs if r[1] == "finished"]
    assert len(finished) >= 2
    assert all(r[2] is not None for r in finished)
    assert len(sink.received) == len(finished)
    # two fires of */2 are at least a couple of seconds apart
    first, second = (dt.datetime.fromisoformat(r[3]) for r in finished[:2])
    assert second - first >= dt.timedelta(seconds=1)


async def test_a_missed_run_is_made_up_once_at_start(tmp_path: Path, site: Site, sink: MailSink,
                                                      running: Any) -> None:
    settings = settings_for(tmp_path, site, sink, site.page(3), cron="*/20 * * * *")
    now = dt.datetime.now(UTC)
    # Down for two hours: six fires of */20 were missed.
    set_meta(db_path(settings), LAST_AUDIT_KEY, (now - dt.timedelta(hours=2)).isoformat())
    service = Service(settings)
    task = await running(service)
    await until(lambda: service.audits_done >= 1, 15, "the make-up run")
    # The next run is the trigger's next fire, not another make-up run.
    next_run = service.next_run()
    assert next_run is not None and next_run > dt.datetime.now(UTC)
    assert next_run == service.trigger.get_next_fire_time(None, dt.datetime.now(UTC))
    assert await stop(service, task) == 0
    assert query(db_path(settings), "SELECT count(*) FROM runs") == [(1,)]
    assert len(sink.received) == 1
    last = dt.datetime.fromisoformat(query(db_path(settings), "SELECT value FROM meta WHERE key = ?",
                                           LAST_AUDIT_KEY)[0][0])
    assert last >= now

    # Started again: the fire was made up, nothing runs.
    again = Service(settings)
    task = await running(again)
    assert await stop(again, task) == 0
    assert query(db_path(settings), "SELECT count(*) FROM runs") == [(1,)]
    assert again.audits_done == 0


async def test_a_finished_audit_whose_report_was_never_sent_is_reported_at_start(
        tmp_path: Path, site: Site, sink: MailSink, running: Any) -> None:
    settings = settings_for(tmp_path, site, sink, site.page(2))
    opened = dt.datetime.now(UTC)
    set_meta(db_path(settings), OPEN_JOB_KEY, opened.isoformat())
    await run_audit(settings)  # the job's audit finished; then the process died
    service = Service(settings)
    task = await running(service)
    await until(lambda: service.audits_done >= 1, 15, "the pending report")
    assert await stop(service, task) == 0
    assert query(db_path(settings), "SELECT count(*), min(reported_at) IS NOT NULL FROM runs") == [(1, 1)]
    assert len(sink.received) == 1
    assert query(db_path(settings), "SELECT key, value FROM meta WHERE key IN (?, ?) ORDER BY key",
                 LAST_AUDIT_KEY, OPEN_JOB_KEY) == [(OPEN_JOB_KEY, ""), (LAST_AUDIT_KEY, opened.isoformat())]


async def test_a_live_lock_holder_makes_the_audit_skip_and_a_dead_one_is_taken_over(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path, site, sink, site.page(2), cron=just_missed_cron())
    now = dt.datetime.now(UTC)
    with Store.open(db_path(settings)) as store:
        # Another machine holds it (only its ttl can free it).
        assert store.acquire_lock(AUDIT_LOCK, "elsewhere.example:4242", now, dt.timedelta(minutes=10))
    caplog.set_level("INFO", logger="monitor.service")
    service = Service(settings)
    task = await running(service)
    await until(lambda: "event=audit_skipped reason=lock_held" in caplog.text, 10, "the skip")
    assert await stop(service, task) == 0
    assert query(db_path(settings), "SELECT count(*) FROM runs") == [(0,)]
    assert query(db_path(settings), "SELECT owner FROM locks") == [("elsewhere.example:4242",)]

    # A holder that crashed on this host (its pid is gone) is stale: the next start takes over.
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    host = __import__("socket").gethostname()
    with Store.open(db_path(settings)) as store:
        store.release_lock(AUDIT_LOCK, "elsewhere.example:4242")
        assert store.acquire_lock(AUDIT_LOCK, f"{host}:{dead.pid}", now, dt.timedelta(minutes=10))
    service = Service(settings)
    task = await running(service)
    await until(lambda: service.audits_done >= 1, 15, "the audit after taking the stale lock over")
    assert await stop(service, task) == 0
    assert query(db_path(settings), "SELECT count(*) FROM runs WHERE status = 'finished'") == [(1,)]
    assert query(db_path(settings), "SELECT count(*) FROM locks WHERE name = ?", AUDIT_LOCK) == [(0,)]


async def test_the_heartbeat_keeps_the_lock_past_its_ttl_and_a_lost_lock_stops_the_audit(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path, site, sink, site.page(16, delay=0.3), cron=just_missed_cron())
    ttl = dt.timedelta(seconds=0.6)
    service = Service(settings, ServiceOptions(lock_ttl=ttl))
    caplog.set_level("INFO", logger="monitor.service")
    task = await running(service)
    db = Path(db_path(settings))
    await until(lambda: observed(db) >= 2, 10, "the audit to be under way")
    await asyncio.sleep(2 * ttl.total_seconds())  # longer than the ttl: only the heartbeat keeps it
    with Store.open(db) as store:
        assert not store.acquire_lock(AUDIT_LOCK, "elsewhere.example:1", dt.datetime.now(UTC), ttl)
        # Now the other process takes it over (as it would after our ttl passed unrefreshed).
        store.release_lock(AUDIT_LOCK, service.owner)
        assert store.acquire_lock(AUDIT_LOCK, "elsewhere.example:1", dt.datetime.now(UTC),
                                  dt.timedelta(minutes=10))
    await until(lambda: (run_row(db) or ("",))[0] == "interrupted", 10, "the audit to stop")
    # The run is closed before its job unwinds: `running` drops a moment later.
    await until(lambda: not service.running, 10, "the job to end")
    assert "event=lock_lost" in caplog.text
    assert service.audits_done == 0 and not service.running
    assert await stop(service, task) == 0
    assert observed(db) < 16
    assert sink.received == []
    # Our release did not free the other holder's lock.
    assert query(db, "SELECT owner FROM locks WHERE name = ?", AUDIT_LOCK) == [("elsewhere.example:1",)]


# -- in-process: rechecks and the outbox ------------------------------------------------


async def test_rechecks_confirm_a_failure_and_clear_a_passing_one(tmp_path: Path, site: Site,
                                                                  sink: MailSink, running: Any) -> None:
    settings = settings_for(tmp_path, site, sink, site.page(1, bad=True))
    t0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    await run_audit(settings, now=lambda: t0)
    down, flaky = site.url("/status/500"), site.url("/flaky")
    clock = Clock(t0 + dt.timedelta(hours=2))
    set_meta(db_path(settings), LAST_AUDIT_KEY, clock.now.isoformat())

    def state(url: str) -> Any:
        with Store.open(db_path(settings)) as store:
            return store.url_state(url)

    assert state(down).strikes == 1 and state(flaky).strikes == 1
    site.flaky_down = False
    service = Service(settings, ServiceOptions(recheck_interval=0.2, now=clock))
    task = await running(service)
    # The 1-hour recheck: the flaky link is cleared; the other has two strikes, not a day yet.
    await until(lambda: state(down).last_checked_at == clock.now, 10, "the 1-hour recheck")
    assert state(flaky).strikes == 0 and state(flaky).failing_since is None
    assert state(flaky).status.value == "ok"
    assert state(down).strikes == 2
    assert not is_confirmed(state(down), clock.now)

    # The 24-hour recheck: several failures over more than a day confirm it.
    clock.now = t0 + dt.timedelta(hours=25)
    await until(lambda: state(down).last_checked_at == clock.now, 10, "the 24-hour recheck")
    assert await stop(service, task) == 0
    confirmed = state(down)
    assert confirmed.strikes == 3 and confirmed.failing_since == t0
    assert is_confirmed(confirmed, clock.now)
    # Nothing was rechecked more than its due times, and the passing link was not checked again.
    assert site.hits["/status/500"] == 3
    assert site.hits["/flaky"] == 2


async def test_a_report_kept_after_a_mail_failure_is_retried_with_its_backoff(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, free_port: int) -> None:
    settings = settings_for(tmp_path, site, sink, site.page(1))
    start = dt.datetime.now(UTC)
    down = replace(settings, email=replace(settings.email, port=free_port))
    audit, report = await weekly_job(down, now=lambda: start)
    assert report.failed and not report.sent
    clock = Clock(start + dt.timedelta(seconds=10))  # before the first backoff
    # (audited as late as the clock will go: a Monday 06:00 in between is no missed run)
    set_meta(db_path(settings), LAST_AUDIT_KEY, (start + dt.timedelta(hours=1)).isoformat())
    service = Service(settings, ServiceOptions(recheck_interval=0.2, now=clock))
    task = await running(service)
    await asyncio.sleep(0.6)  # three rounds
    assert sink.received == []
    clock.now = start + dt.timedelta(hours=1)  # past the backoff
    await until(lambda: len(sink.received) == 1, 10, "the retried report")
    assert await stop(service, task) == 0
    with Store.open(db_path(settings)) as store:
        assert store.outbox_size() == 0
    assert len(sink.received) == 1


# -- in-process: overlaps ----------------------------------------------------------------


def fire_now(service: Service) -> None:
    """What the cron does at the scheduled time: the weekly job runs now."""
    service.scheduler.modify_job(WEEKLY_JOB, next_run_time=dt.datetime.now(UTC))


async def test_a_scheduled_audit_waits_for_a_recheck_round_instead_of_skipping_the_week(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Rechecks hold the audit lock too: the weekly fire that came while this
    process rechecked found its own lock taken and skipped the week."""
    settings = settings_for(tmp_path, site, sink, site.page(1, bad=True))
    t0 = dt.datetime.now(UTC) - dt.timedelta(hours=2)
    await run_audit(settings, now=lambda: t0)  # two links failing since t0: the 1-hour recheck is due
    set_meta(db_path(settings), LAST_AUDIT_KEY, dt.datetime.now(UTC).isoformat())  # nothing to make up
    site.hold = asyncio.Event()
    caplog.set_level("INFO", logger="monitor.service")
    service = Service(settings, ServiceOptions(recheck_interval=0.2))
    task = await running(service)
    await until(lambda: site.hits["/status/500"] == 2, 10, "the recheck to be under way")
    fire_now(service)
    await until(lambda: "event=audit_" in caplog.text, 10, "the weekly job to start")
    site.hold.set()
    await until(lambda: service.audits_done >= 1, 15, "the audit after the recheck")
    assert await stop(service, task) == 0
    assert "audit_skipped" not in caplog.text
    assert "event=audit_waiting reason=recheck_running" in caplog.text
    assert query(db_path(settings), "SELECT count(*) FROM runs WHERE status = 'finished'") == [(2,)]
    assert len(sink.received) == 1


# -- in-process: a scheduled audit that did not happen is made up ----------------------------


def lines(caplog: pytest.LogCaptureFixture, text: str, level: str | None = None) -> int:
    return sum(text in r.getMessage() and (level is None or r.levelname == level) for r in caplog.records)


def weekly_just_missed_cron() -> str:
    """A weekly cron whose latest fire was a minute or two ago."""
    fire = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
    return f"{fire.minute} {fire.hour} * * {fire.strftime('%a').lower()}"



async def test_an_audit_that_failed_on_a_locked_database_runs_once_the_database_is_free(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process (a backup, the sqlite3 shell) holds the database past the
    busy timeout when the audit is due: one clear line, the service keeps
    serving, and the audit runs once the database is free, not a week later."""
    import monitor.store

    monkeypatch.setattr(monitor.store, "BUSY_TIMEOUT_S", 0.2)  # the 10 s wait, shortened
    settings = settings_for(tmp_path, site, sink, site.page(3), cron=just_missed_cron())
    Store.open(db_path(settings)).close()
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", DATABASE_HOLDER, db_path(settings),
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert holder.stdin is not None and holder.stdout is not None
    caplog.set_level("DEBUG", logger="monitor.service")
    try:
        assert await holder.stdout.readline() == b"held\n"
        service = Service(settings, ServiceOptions(recheck_interval=0.1))
        task = await running(service)
        await until(lambda: lines(caplog, "event=job_failed job=audit") >= 3, 15, "three failed tries")
        assert service.audits_done == 0 and not task.done()
    finally:
        holder.stdin.write(b"go\n")
        await holder.stdin.drain()
        assert await holder.wait() == 0
    await until(lambda: service.audits_done >= 1, 15, "the audit once the database is free")
    # said once the audit job has let go of its lock, a moment after audits_done counts it
    await until(lambda: lines(caplog, "event=job_recovered job=audit") >= 1, 15, "job_recovered")
    assert await stop(service, task) == 0
    # One line says it failed and that it is retried; the retries say it at DEBUG only.
    assert lines(caplog, "event=job_failed job=audit", "ERROR") == 1
    failed = next(r.getMessage() for r in caplog.records if "event=job_failed job=audit" in r.getMessage())
    # in the words the commands use (not SQLite's bare "database is locked")
    assert "is busy: another process is writing to it" in failed and "retry_in=" in failed
    assert lines(caplog, "event=job_recovered job=audit") == 1
    assert query(db_path(settings), "SELECT id, status FROM runs") == [(1, "finished")]
    assert len(sink.received) == 1


async def test_a_report_that_could_not_be_written_is_retried_without_auditing_again(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path, site, sink, site.page(3), cron=just_missed_cron())
    reports = Path(settings.report.dir)
    reports.write_text("a file where the report folder should be")  # as unwritable as it gets for root
    caplog.set_level("INFO", logger="monitor.service")
    service = Service(settings, ServiceOptions(recheck_interval=0.1))
    task = await running(service)
    await until(lambda: "event=job_failed job=audit" in caplog.text, 15, "the failed report")
    assert query(db_path(settings), "SELECT status, reported_at FROM runs") == [("finished", None)]
    reports.unlink()
    reports.mkdir()
    await until(lambda: service.audits_done >= 1, 15, "the report once the folder is back")
    assert await stop(service, task) == 0
    assert query(db_path(settings), "SELECT count(*), min(reported_at) IS NOT NULL FROM runs") == [(1, 1)]
    assert len(sink.received) == 1
    assert site.hits["/page"] == 1  # the retry reported the audit it had, it did not audit again
    assert any(p.name.startswith("report-") for p in reports.iterdir())


async def test_a_retry_gives_up_after_the_grace_period_and_stays_quiet(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path, site, sink, site.page(2), cron=weekly_just_missed_cron())
    Path(settings.report.dir).write_text("not a folder")
    clock = Clock(dt.datetime.now(UTC))
    caplog.set_level("DEBUG", logger="monitor.service")
    service = Service(settings, ServiceOptions(recheck_interval=0.05, now=clock))
    task = await running(service)
    await until(lambda: "event=job_failed job=audit" in caplog.text, 15, "the failure")
    clock.now += dt.timedelta(hours=settings.schedule.misfire_grace_hours + 1)
    await until(lambda: "event=audit_missed" in caplog.text, 10, "giving up")
    tries = lines(caplog, "event=job_failed job=audit")
    rounds = service.rounds_done
    await until(lambda: service.rounds_done >= rounds + 20, 10, "twenty more rounds")
    assert await stop(service, task) == 0
    assert lines(caplog, "event=job_failed job=audit") == tries  # no more tries until the next schedule
    assert lines(caplog, "event=audit_missed", "ERROR") == 1
    assert service.audits_done == 0 and site.hits["/page"] == 1


@pytest.mark.parametrize("other_audited", [False, True])
async def test_an_audit_skipped_for_another_holder_of_the_lock_runs_once_it_is_free(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, caplog: pytest.LogCaptureFixture,
        other_audited: bool) -> None:
    """A `monitor check --page` by hand, another host's process, a copy of
    the service: whoever held the lock at the scheduled time, the week's audit
    is done once it is free; by the holder if it ran the weekly job itself."""
    settings = settings_for(tmp_path, site, sink, site.page(2), cron=just_missed_cron())
    other = "elsewhere.example:4242"
    with Store.open(db_path(settings)) as store:
        assert store.acquire_lock(AUDIT_LOCK, other, dt.datetime.now(UTC), dt.timedelta(minutes=10))
    caplog.set_level("DEBUG", logger="monitor.service")
    service = Service(settings, ServiceOptions(recheck_interval=0.1))
    task = await running(service)
    await until(lambda: "event=audit_skipped reason=lock_held" in caplog.text, 10, "the skip")
    rounds = service.rounds_done
    await until(lambda: service.rounds_done >= rounds + 3, 10, "a few rounds while it is held")
    assert service.audits_done == 0
    with Store.open(db_path(settings)) as store:
        if other_audited:  # the holder ran the weekly job (`monitor run`): the week is done
            store.set_meta(LAST_AUDIT_KEY, dt.datetime.now(UTC).isoformat())
        store.release_lock(AUDIT_LOCK, other)
    if other_audited:
        await until(lambda: "event=audit_done_elsewhere" in caplog.text, 10, "the holder's audit noticed")
        rounds = service.rounds_done
        await until(lambda: service.rounds_done >= rounds + 5, 10, "more rounds")
        assert service.audits_done == 0
    else:
        await until(lambda: service.audits_done >= 1, 15, "the audit once the lock is free")
    assert await stop(service, task) == 0
    assert lines(caplog, "event=audit_skipped reason=lock_held", "INFO") == 1
    assert query(db_path(settings), "SELECT count(*) FROM runs") == [(0 if other_audited else 1,)]


async def test_a_scheduled_time_the_timer_slept_through_runs_at_the_next_round_once(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A machine suspended over Monday 06:00, or an NTP step forward: asyncio's
    timers count the monotonic clock, which stops during a suspend, so the
    scheduler's timer wakes up hours after the wall clock passed the time."""
    settings = settings_for(tmp_path, site, sink, site.page(2))  # 0 6 * * mon, UTC
    set_meta(db_path(settings), LAST_AUDIT_KEY, "2026-11-16T06:00:05+00:00")
    clock = Clock(dt.datetime(2026, 11, 22, 20, 0, tzinfo=UTC))  # Sunday evening
    caplog.set_level("INFO", logger="monitor.service")
    service = Service(settings, ServiceOptions(recheck_interval=0.1, now=clock))
    task = await running(service)
    await until(lambda: service.rounds_done >= 3, 10, "a few rounds on Sunday")
    assert service.audits_done == 0
    clock.now = dt.datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # resumed on Monday morning
    await until(lambda: service.audits_done >= 1, 15, "the audit at the next round")
    rounds = service.rounds_done
    await until(lambda: service.rounds_done >= rounds + 5, 10, "more rounds")
    assert await stop(service, task) == 0
    assert service.audits_done == 1 and len(sink.received) == 1
    assert "event=missed_run scheduled=2026-11-23T06:00:00+00:00" in caplog.text
    assert query(db_path(settings), "SELECT started_at FROM runs") == [("2026-11-23T09:30:00.000000+00:00",)]


async def test_a_run_resumed_after_the_scheduled_time_is_that_time_s_audit_not_one_more(
        tmp_path: Path, site: Site, sink: MailSink, running: Any) -> None:
    """An audit cut short on Sunday is finished when the service comes back on
    Monday morning: that is Monday's audit, and the rounds do not run another
    one for Monday 06:00 (the run began before it)."""
    settings = settings_for(tmp_path, site, sink, site.page(2))  # 0 6 * * mon, UTC
    set_meta(db_path(settings), LAST_AUDIT_KEY, "2026-11-16T06:00:05+00:00")
    with Store.open(db_path(settings)) as store:
        # Started with this configuration (a run whose settings are unknown is not resumed).
        run = store.start_run(dt.datetime(2026, 11, 22, 20, 0, tzinfo=UTC), scope=audit_scope(settings))
        store.finish_run(run.id, dt.datetime(2026, 11, 22, 20, 1, tzinfo=UTC), status="interrupted")
    clock = Clock(dt.datetime(2026, 11, 23, 9, 30, tzinfo=UTC))
    service = Service(settings, ServiceOptions(recheck_interval=0.1, now=clock))
    task = await running(service)
    await until(lambda: service.audits_done >= 1, 15, "the resumed run")
    rounds = service.rounds_done
    await until(lambda: service.rounds_done >= rounds + 5, 10, "more rounds")
    assert await stop(service, task) == 0
    assert service.audits_done == 1 and len(sink.received) == 1
    assert query(db_path(settings), "SELECT id, status FROM runs") == [(run.id, "finished")]


async def test_a_clock_that_went_back_does_not_stop_the_schedule(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Booted once with the clock a year ahead (a dead RTC battery), audited,
    then corrected by NTP: `last_audit_at` is in the future, and a missed
    Monday looked already done until the clock caught up a year later."""
    settings = settings_for(tmp_path, site, sink, site.page(2))  # 0 6 * * mon, UTC
    future = "2027-11-22T06:00:05+00:00"
    caplog.set_level("INFO", logger="monitor.service")
    # The schedule's own fire on Monday 06:00.
    set_meta(db_path(settings), LAST_AUDIT_KEY, future)
    clock = Clock(dt.datetime(2026, 11, 22, 20, 0, tzinfo=UTC))  # Sunday evening: nothing missed
    service = Service(settings, ServiceOptions(recheck_interval=0.1, now=clock))
    task = await running(service)
    clock.now = dt.datetime(2026, 11, 23, 6, 0, 1, tzinfo=UTC)
    fire_now(service)
    await until(lambda: service.audits_done >= 1, 15, "the scheduled audit")
    assert await stop(service, task) == 0
    # Down over the next Monday 06:00, back at 09:30: the missed audit is made up.
    set_meta(db_path(settings), LAST_AUDIT_KEY, future)
    clock = Clock(dt.datetime(2026, 11, 30, 9, 30, tzinfo=UTC))
    service = Service(settings, ServiceOptions(recheck_interval=0.1, now=clock))
    task = await running(service)
    await until(lambda: service.audits_done >= 1, 15, "the missed audit")
    assert await stop(service, task) == 0
    assert lines(caplog, "event=clock_behind", "WARNING") == 2
    assert len(sink.received) == 2


# -- subprocesses: kill -9, SIGTERM, two services ----------------------------------------


@dataclass
class Proc:
    process: asyncio.subprocess.Process
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def send(self, signum: int) -> None:
        """Signal the process; one that already died fails the test with its log."""
        code = self.process.returncode
        assert code is None, f"exited with {code} before the signal:\n{self.text()[-4000:]}"
        self.process.send_signal(signum)


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Proc]]]:
    procs: list[Proc] = []

    async def start(*args: str, name: str) -> Proc:
        log = tmp_path / f"{name}.log"
        with log.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable, *args, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=err, cwd=tmp_path,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        proc = Proc(process, log)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.process.returncode is None:
            proc.process.kill()
            await proc.process.wait()


def serve_args(config: Path) -> tuple[str, ...]:
    return ("-m", "monitor", "serve", "--config", str(config))


def ready_query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """A query that sees nothing while the service is still creating the database."""
    if not db.exists():
        return []
    try:
        return query(db, sql, *params)
    except sqlite3.OperationalError:  # no such table yet
        return []


def observed(db: Path, run_id: int = 1) -> int:
    rows = ready_query(db, "SELECT count(*) FROM observations WHERE run_id = ?", run_id)
    return rows[0][0] if rows else 0


def run_row(db: Path, run_id: int = 1) -> tuple[Any, ...] | None:
    rows = ready_query(db, "SELECT status, finished_at, reported_at FROM runs WHERE id = ?", run_id)
    return rows[0] if rows else None


def assert_one_clean_run(db: Path, urls: int) -> None:
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "SELECT url, count(*) FROM observations WHERE run_id = 1 "
                     "GROUP BY url HAVING count(*) > 1") == []
    assert query(db, "SELECT count(DISTINCT url) FROM observations WHERE run_id = 1") == [(urls,)]
    assert query(db, "SELECT id, status FROM runs") == [(1, "finished")]


async def test_a_service_killed_mid_audit_resumes_on_restart_and_reports_once(
        tmp_path: Path, site: Site, sink: MailSink, spawn: Any) -> None:
    n = 24
    config = write_config(tmp_path, site.page(n, delay=0.25), sink.port, cron=just_missed_cron())
    db = tmp_path / "monitor.db"
    first = await spawn(*serve_args(config), name="first")
    await until(lambda: observed(db) >= 6, 20, "some committed observations", (first,))
    first.send(signal.SIGKILL)
    assert await asyncio.wait_for(first.process.wait(), 10) == -signal.SIGKILL
    assert run_row(db)[0] == "running"
    done_before = {u for (u,) in query(db, "SELECT url FROM observations WHERE run_id = 1")}
    assert 6 <= len(done_before) < n

    second = await spawn(*serve_args(config), name="second")
    await until(lambda: (run_row(db) or ("",))[0] == "finished" and len(sink.received) >= 1, 20,
                "the resumed run and its report", (second,))
    second.send(signal.SIGTERM)
    assert await asyncio.wait_for(second.process.wait(), 15) == 0

    assert_one_clean_run(db, n)
    assert len(sink.received) == 1, first.text() + "\n----\n" + second.text()
    assert run_row(db)[2] is not None  # reported
    # Resumed, not restarted: the page was fetched once, and no URL already observed was asked again.
    assert site.hits["/page"] == 1
    for url in done_before:
        assert site.hits[url.removeprefix(site.base).split("?")[0]] == 1, url
    assert "event=resume_pending run=1" in second.text()
    assert "took over stale lock audit" in second.text()


async def test_sigterm_stops_cleanly_and_the_next_start_resumes(
        tmp_path: Path, site: Site, sink: MailSink, spawn: Any) -> None:
    n = 20
    config = write_config(tmp_path, site.page(n, delay=0.25), sink.port, cron=just_missed_cron())
    db = tmp_path / "monitor.db"
    first = await spawn(*serve_args(config), name="first")
    await until(lambda: observed(db) >= 4, 20, "some committed observations", (first,))
    seen = observed(db)
    first.send(signal.SIGTERM)
    assert await asyncio.wait_for(first.process.wait(), 15) == 0
    status, finished_at, reported_at = run_row(db)
    assert status == "interrupted" and finished_at is not None and reported_at is None
    assert seen <= observed(db) < n
    assert query(db, "SELECT count(*) FROM locks") == [(0,)]
    text = first.text()
    for line in text.splitlines():
        if " monitor.service " in line:
            assert LOG_LINE.match(line), line
    assert "event=stopping signal=SIGTERM" in text
    assert "event=service_stopped" in text
    assert sink.received == []

    second = await spawn(*serve_args(config), name="second")
    await until(lambda: (run_row(db) or ("",))[0] == "finished" and len(sink.received) >= 1, 20,
                "the resumed run and its report", (second,))
    second.send(signal.SIGINT)
    assert await asyncio.wait_for(second.process.wait(), 15) == 0
    assert_one_clean_run(db, n)
    assert len(sink.received) == 1
    assert "event=resume_pending run=1 status=interrupted" in second.text()


DRIVER = """
import asyncio, sys
from apscheduler.triggers.cron import CronTrigger
from monitor.cli import setup_logging
from monitor.config import load_settings
from monitor.service import ServiceOptions, serve

setup_logging(True, False)
options = ServiceOptions(trigger=CronTrigger(second="*/2", timezone="UTC"))
sys.exit(asyncio.run(serve(load_settings(sys.argv[1]), options)))
"""


async def test_two_services_on_one_database_never_audit_at_once(
        tmp_path: Path, site: Site, sink: MailSink, spawn: Any) -> None:
    """Both fire every two seconds on the same clock; the lock lets one audit at a time."""
    config = write_config(tmp_path, site.page(6, delay=0.3), sink.port)
    db = tmp_path / "monitor.db"
    a = await spawn("-c", DRIVER, str(config), name="a")
    b = await spawn("-c", DRIVER, str(config), name="b")

    def finished() -> int:
        rows = ready_query(db, "SELECT count(*) FROM runs WHERE status = 'finished'")
        return rows[0][0] if rows else 0

    await until(lambda: finished() >= 3, 25, "three audits", (a, b))
    for proc in (a, b):
        proc.send(signal.SIGTERM)
    for proc in (a, b):
        assert await asyncio.wait_for(proc.process.wait(), 15) == 0

    runs = query(db, "SELECT id, started_at, finished_at FROM runs ORDER BY started_at")
    assert all(r[2] is not None for r in runs)
    for before, after in zip(runs, runs[1:]):
        assert after[1] >= before[2], f"run {after[0]} started before run {before[0]} finished"
    for run_id, started_at, finished_at in runs:
        first_obs, last_obs = query(db, "SELECT min(checked_at), max(checked_at) FROM observations "
                                        "WHERE run_id = ?", run_id)[0]
        if first_obs is not None:
            assert started_at <= first_obs and last_obs <= finished_at
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    logs = a.text() + b.text()
    assert "event=audit_skipped reason=lock_held" in logs
    assert "event=audit_started" in a.text() or "event=audit_started" in b.text()


def test_serve_refuses_to_start_without_the_mail_password(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing secret is found at start, not at Monday's report: a
    configuration error (exit 2) naming the key and the variable."""
    from click.testing import CliRunner

    from monitor.cli import cli

    config = write_config(tmp_path, "http://127.0.0.1:9/page", 25)
    config.write_text(config.read_text().replace('security = "none"', 'security = "none"\nusername = "monitor"'))
    monkeypatch.delenv("MONITOR_SMTP_PASSWORD", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "MONITOR_SMTP_PASSWORD" in result.output and "email.password_env" in result.output
    assert "Traceback" not in result.output


async def test_an_audit_that_read_no_page_is_a_warning_and_healthz_says_so(
        tmp_path: Path, site: Site, sink: MailSink, running: Any, caplog: pytest.LogCaptureFixture,
        aiohttp_client: Any) -> None:
    """`check`/`run` exit 1 when no watched page could be fetched; a service
    has no exit status. Was: INFO `audit_finished pages_failed=1` only, and
    /healthz "ok" with nothing that told the week apart from a clean one
    (review 9, finding 9)."""
    from monitor.web import create_app

    settings = settings_for(tmp_path, site, sink, f"{site.base}/status/503", cron=just_missed_cron())
    caplog.set_level("INFO", logger="monitor.service")
    service = Service(settings)
    task = await running(service)
    await until(lambda: service.audits_done >= 1, 15, "the make-up run")
    assert await stop(service, task) == 0
    warned = [r.getMessage() for r in caplog.records
              if r.levelname == "WARNING" and "event=audit_read_no_page" in r.getMessage()]
    assert warned == ['event=audit_read_no_page run=1 pages=1 pages_failed=1 '
                      'note="no watched page could be fetched, so no link was checked"'], caplog.text
    client = await aiohttp_client(create_app(settings))
    last = (await (await client.get("/healthz")).json())["last_run"]
    assert (last["pages"], last["pages_failed"], last["read_no_page"]) == (1, 1, True)


async def test_serve_says_whether_it_serves_the_dashboard_and_where(tmp_path: Path, spawn: Any) -> None:
    """Was: without [server] enabled = true, `monitor serve` logged only
    `service_started`, and a newcomer waited for a dashboard that never
    came (review 13 #4). Now one line says it is off and how to turn it on;
    on, the address it listens on is logged."""
    import aiohttp

    config = write_config(tmp_path, "http://127.0.0.1:9/page", 9)
    off = await spawn(*serve_args(config), name="off")
    await until(lambda: "event=service_started" in off.text(), 60, "the service to start", (off,))
    said = [line for line in off.text().splitlines() if "event=dashboard_off" in line]
    assert len(said) == 1 and LOG_LINE.match(said[0]), off.text()
    assert said[0].endswith(
        f'event=dashboard_off note="[server] enabled = false in {config}: no dashboard, /healthz or '
        '/metrics; set enabled = true under [server] to serve them on 127.0.0.1:8089"'), said[0]
    assert "event=http_listening" not in off.text()
    off.send(signal.SIGTERM)
    assert await asyncio.wait_for(off.process.wait(), 30) == 0

    config.write_text(config.read_text() + '\n[server]\nenabled = true\nhost = "127.0.0.1"\nport = 0\n',
                      encoding="utf-8")
    on = await spawn(*serve_args(config), name="on")
    await until(lambda: "event=service_started" in on.text(), 60, "the service to start", (on,))
    listening = re.search(r"event=http_listening url=(http://127\.0\.0\.1:\d+)\n", on.text())
    assert listening and "event=dashboard_off" not in on.text(), on.text()
    async with aiohttp.ClientSession() as session:
        async with session.get(listening.group(1) + "/healthz") as resp:
            assert resp.status in (200, 503)  # answered: the address logged is the one it listens on
    on.send(signal.SIGTERM)
    assert await asyncio.wait_for(on.process.wait(), 30) == 0
