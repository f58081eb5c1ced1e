"""/healthz and /metrics over a real database filled by real audits, and the
endpoint as `monitor serve` starts it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import os
import re
import socket
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from monitor.config import (
    CheckerSettings,
    DatabaseSettings,
    EmailSettings,
    PageSettings,
    ReportSettings,
    ServerSettings,
    Settings,
)
from monitor.crawl import run_audit
from monitor.errors import MonitorError
from monitor.service import LAST_AUDIT_KEY, Service, ServiceOptions
from monitor.store import Store
import monitor.web as web_module
from monitor.web import (
    METRICS_CONTENT_TYPE,
    create_app,
    open_report,
    public_reason,
    report_path,
    start_server,
)

UTC = dt.timezone.utc

# -- a strict reader of the Prometheus text format 0.0.4 ---------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{((?:{_LABEL})(?:,{_LABEL})*)?\}})? (\S+)(?: (-?\d+))?$")
_LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
_COMMENT = re.compile(rf"^# (HELP|TYPE) ({_NAME}) ?(.*)$")
KINDS = {"counter", "gauge", "histogram", "summary", "untyped"}

Series = tuple[str, frozenset[tuple[str, str]]]


def parse_prometheus(text: str) -> tuple[dict[Series, float], dict[str, str]]:
    """Samples and types; raises AssertionError on anything the format does not allow."""
    assert text.endswith("\n"), "the exposition must end with a line feed"
    samples: dict[Series, float] = {}
    types: dict[str, str] = {}
    helps: set[str] = set()
    finished: set[str] = set()  # families whose samples are over (they must be contiguous)
    current: str | None = None
    for number, line in enumerate(text[:-1].split("\n"), 1):
        assert line.strip(), f"line {number}: empty line"
        if line.startswith("#"):
            comment = _COMMENT.match(line)
            assert comment, f"line {number}: bad comment {line!r}"
            kind, name, rest = comment.groups()
            if kind == "TYPE":
                assert rest in KINDS, f"line {number}: unknown type {rest!r}"
                assert name not in types, f"line {number}: second TYPE for {name}"
                assert not any(s[0] == name for s in samples), f"line {number}: TYPE after samples"
                types[name] = rest
            else:
                assert name not in helps, f"line {number}: second HELP for {name}"
                assert re.fullmatch(r"(?:[^\\\n]|\\[\\n])*", rest), f"line {number}: bad HELP escape"
                helps.add(name)
            continue
        match = _SAMPLE.match(line)
        assert match, f"line {number}: not a sample: {line!r}"
        name, labels_text, value_text, _ = match.groups()
        if name != current:
            assert name not in finished, f"line {number}: samples of {name} are not together"
            if current is not None:
                finished.add(current)
            current = name
        labels = frozenset(_LABEL_PAIR.findall(labels_text or ""))
        assert len(labels) == len(_LABEL_PAIR.findall(labels_text or "")), f"line {number}: repeated label"
        assert (name, labels) not in samples, f"line {number}: duplicate series"
        if value_text in ("NaN", "+Inf", "-Inf"):
            value = float(value_text.replace("Inf", "inf").replace("NaN", "nan"))
        else:
            assert re.fullmatch(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value_text), \
                f"line {number}: bad value {value_text!r}"
            value = float(value_text)
        if types.get(name) == "counter":
            assert name.endswith("_total") and value >= 0 and not math.isnan(value), f"line {number}"
        samples[(name, labels)] = value
    return samples, types


def test_the_parser_refuses_what_prometheus_refuses() -> None:
    good = '# HELP a_total A.\n# TYPE a_total counter\na_total{s="x"} 1\n'
    assert parse_prometheus(good)[0] == {("a_total", frozenset({("s", "x")})): 1.0}
    for bad in (
        good.rstrip("\n"),                                        # no final line feed
        good + "\n",                                              # empty line
        good + 'a_total{s="x"} 2\n',                              # duplicate series
        good + "# TYPE a_total counter\n",                        # second TYPE
        good.replace("counter", "countr"),                        # unknown type
        good.replace("1\n", "one\n"),                             # not a number
        good.replace('{s="x"}', "{s=x}"),                         # unquoted label
        good + 'b 1\na_total{s="y"} 1\n',                         # family split
        good.replace("1\n", "-1\n"),                              # negative counter
    ):
        with pytest.raises(AssertionError):
            parse_prometheus(bad)


# -- a small site, audited for real ---------------------------------------------------


def site_app() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in ("/ok", "/gone", "/articles/old-name", "/down", "/ok"))
        return web.Response(text=f"<html><head><title>Page</title></head><body><ul>{links}</ul></body></html>",
                            content_type="text/html")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="<html><head><title>Fine</title></head><body>fine</body></html>",
                            content_type="text/html")

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=404, text="gone")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/articles/new-name")

    async def down(request: web.Request) -> web.Response:
        return web.Response(status=500, text="down")

    app = web.Application()
    for path, handler in (("/page", page), ("/ok", ok), ("/gone", gone), ("/articles/old-name", moved),
                          ("/articles/new-name", ok), ("/down", down)):
        app.router.add_get(path, handler)
    return app


def make_settings(tmp_path: Path, base: str, **server: Any) -> Settings:
    return Settings(
        pages=(PageSettings(url=f"{base}/page"),),
        checker=CheckerSettings(timeout=2.0, retries=0, soft404_probe=False,
                                allow_private_networks=("127.0.0.1/32",)),
        database=DatabaseSettings(path=str(tmp_path / "monitor.db")),
        report=ReportSettings(dir=str(tmp_path / "reports")),
        email=EmailSettings(enabled=False),
        server=ServerSettings(**server),
        source="test.toml",
    )


@pytest.fixture
async def audited(tmp_path: Path, aiohttp_server: Any) -> Settings:
    """Two finished runs, then an interrupted one, and one report waiting in the outbox."""
    server = await aiohttp_server(site_app())
    settings = make_settings(tmp_path, f"http://127.0.0.1:{server.port}")
    await run_audit(settings)
    await run_audit(settings)
    now = dt.datetime.now(UTC)
    with Store.open(settings.database.path) as store:
        run = store.start_run(now)
        store.finish_run(run.id, now, status="interrupted")
        store.enqueue_message("run-2:all", 2, ["webmaster@example.org"], b"Subject: x\r\n\r\nx", "<m@x>", now)
    return settings


class Status:
    """What the service would say: a plain object, as /healthz sees it."""

    def __init__(self, running: bool, next_run: dt.datetime | None) -> None:
        self.running = running
        self._next = next_run

    def next_run(self) -> dt.datetime | None:
        return self._next


NEXT = dt.datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


async def test_healthz_reports_the_last_finished_run_the_schedule_and_the_outbox(
        audited: Settings, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(audited, Status(True, NEXT)))
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    with Store.open(audited.database.path) as store:
        latest = store.latest_run()
    assert latest is not None and latest.id == 2
    assert body["last_run"]["id"] == 2 and body["last_run"]["status"] == "finished"
    assert dt.datetime.fromisoformat(body["last_run"]["finished_at"]) == latest.finished_at.replace(microsecond=0)
    assert body["last_run"]["urls"] == latest.urls == 4
    assert body["next_run"] == "2026-11-30T06:00:00+00:00"
    assert body["outbox"] == 1
    assert body["running"] is True


async def test_metrics_parse_as_prometheus_text_and_match_the_database(
        audited: Settings, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(audited, Status(False, NEXT)))
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == METRICS_CONTENT_TYPE
    samples, types = parse_prometheus(await resp.text())

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    # runs move between statuses and are pruned: a gauge (review 15b #2), under
    # its own name and the old one
    assert types["monitor_runs"] == types["monitor_runs_total"] == "gauge"
    assert value("monitor_runs", status="finished") == 2
    assert not [name for name, kind in types.items() if kind == "counter"]
    assert value("monitor_runs_total", status="finished") == 2
    assert value("monitor_runs_total", status="interrupted") == 1
    assert value("monitor_runs_total", status="running") == 0
    checked = {dict(labels)["status"]: v for (name, labels), v in samples.items()
               if name == "monitor_last_run_links_checked"}
    # /ok (cited twice, counted once), /gone, /articles/old-name (301), /down
    assert {s: n for s, n in checked.items() if n} == {"ok": 1, "expired": 1, "moved": 1, "error": 1}
    with Store.open(audited.database.path) as store:
        run = store.latest_run()
        assert run is not None and run.finished_at is not None
        expected_counts = Counter(link.status.value for link in {l.url: l for l in store.run_links(run.id)}.values())
    assert {s: n for s, n in checked.items() if n} == dict(expected_counts)
    # the name says links; the help says what the number counts (the check listing counts both)
    help_line = next(line for line in (await (await client.get("/metrics")).text()).splitlines()
                     if line.startswith("# HELP monitor_last_run_links_checked "))
    assert "Distinct URLs, not links," in help_line and "counts once" in help_line
    assert value("monitor_last_run_duration_seconds") == pytest.approx(
        (run.finished_at - run.started_at).total_seconds())
    assert value("monitor_last_run_timestamp_seconds") == pytest.approx(run.finished_at.timestamp())
    assert value("monitor_outbox_messages") == 1
    assert value("monitor_audit_running") == 0
    with Store.open(audited.database.path) as store:
        pages = store.run_pages(run.id)
    assert pages and value("monitor_last_run_pages", state="failed") == sum(p.status == "error" for p in pages)
    assert value("monitor_last_run_pages", state="read") == sum(p.status != "error" for p in pages) > 0
    assert value("monitor_next_run_timestamp_seconds") == NEXT.timestamp()


async def test_an_editors_check_of_one_page_is_not_the_last_audit(
        audited: Settings, aiohttp_client: Any) -> None:
    """`monitor check --page` runs after the weekly audits (one finished, one
    stopped) must not make /healthz's freshness check pass, nor show their
    few links as the site's counts: the alerts in the README read these."""
    base = audited.pages[0].url.rsplit("/", 1)[0]
    partial = await run_audit(audited, only_pages=[f"{base}/ok"])  # a page with no links
    assert partial.run.partial and partial.run.links == 0
    with Store.open(audited.database.path) as store:
        stopped = store.start_run(dt.datetime.now(UTC), partial=True)
        store.finish_run(stopped.id, dt.datetime.now(UTC), status="interrupted")
        audit = store.get_run(2)
    assert audit is not None and audit.finished_at is not None
    client = await aiohttp_client(create_app(audited, Status(False, NEXT)))
    body = await (await client.get("/healthz")).json()
    assert body["last_run"]["id"] == 2
    samples, _ = parse_prometheus(await (await client.get("/metrics")).text())
    checked = {dict(labels)["status"]: v for (name, labels), v in samples.items()
               if name == "monitor_last_run_links_checked" and v}
    assert checked == {"ok": 1, "expired": 1, "moved": 1, "error": 1}
    assert samples[("monitor_last_run_timestamp_seconds", frozenset())] == pytest.approx(
        audit.finished_at.timestamp())
    assert samples[("monitor_runs_total", frozenset({("status", "interrupted")}))] == 1
    assert samples[("monitor_runs_total", frozenset({("status", "finished")}))] == 2


async def test_an_audit_run_outside_the_service_shows_in_healthz_and_metrics(
        tmp_path: Path, aiohttp_client: Any) -> None:
    """Review 15b #3: during `monitor run` from cron, /healthz said "running":
    false and monitor_audit_running 0 beside runs{status="running"} 1. The
    audit lock names its holder: said as running_elsewhere; the service's own
    rounds (it holds that lock too) are not "elsewhere"."""
    from monitor.store import Store

    settings = make_settings(tmp_path, "http://127.0.0.1:9")
    now = dt.datetime.now(UTC)
    with Store.open(settings.database.path) as store:
        assert store.acquire_lock("audit", "otherhost:4242", now, dt.timedelta(minutes=10))
    status = Status(False, NEXT)
    client = await aiohttp_client(create_app(settings, status))
    body = await (await client.get("/healthz")).json()
    assert body["running"] is False
    assert body["running_elsewhere"] == f"process 4242 on otherhost, since {now:%H:%M:%S} UTC"
    samples, _ = parse_prometheus(await (await client.get("/metrics")).text())
    assert samples[("monitor_audit_running", frozenset())] == 1
    status.owner = "otherhost:4242"  # the service's own round, not an audit elsewhere
    assert (await (await client.get("/healthz")).json())["running_elsewhere"] is None
    samples, _ = parse_prometheus(await (await client.get("/metrics")).text())
    assert samples[("monitor_audit_running", frozenset())] == 0
    with Store.open(settings.database.path) as store:
        store.release_lock("audit", "otherhost:4242")
    status.owner = "vm:1"
    assert (await (await client.get("/healthz")).json())["running_elsewhere"] is None


def _saved_report(folder: Path, run: int, counts: dict[str, int], *, partial: bool = False,
                  database: str | None = None) -> None:
    """A saved report's two files, as `save_report` names them (its JSON's
    head and tail are what the index and /metrics read)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {"format": "citation-monitor-audit", "version": 2, "site": "x",
            "run": {"id": run, "started_at": f"2026-11-{20 + run}T06:00:00+00:00", "partial": partial},
            "counts": counts, "first_report": False}
    text = json.dumps(data, separators=(",", ":"))
    if database is not None:
        text = text[:-1] + ',"database":' + json.dumps({"id": database, "file": "m.db", "config": "x"}) + "}"
    name = f"report-2026-11-{20 + run}-run-{run}"
    (folder / f"{name}.html").write_text("<p>report</p>", encoding="utf-8")
    (folder / f"{name}.json").write_text(text, encoding="utf-8")


async def test_metrics_carry_the_newest_report_s_own_figures(tmp_path: Path, aiohttp_client: Any) -> None:
    """Review 15b #6: the mail and the dashboard lead with "22 to fix, 3 to
    open in a browser" and "8 new"; /metrics had only URL counts by status
    (suspected and accepted links included), so "alert me when new problems
    appear" could not be written. A check of some pages and another
    database's report are not the site's weekly figures."""
    settings = make_settings(tmp_path, "http://127.0.0.1:9")
    folder = Path(settings.report.dir)
    client = await aiohttp_client(create_app(settings, Status(False, NEXT)))
    samples, _ = parse_prometheus(await (await client.get("/metrics")).text())
    assert not any(name.startswith("monitor_report_") for name, _ in samples)  # no report yet
    _saved_report(folder, 2, {"needs_fixing": 22, "needs_a_person": 3, "new": 8, "fixed": 0, "open": 25})
    _saved_report(folder, 3, {"needs_fixing": 1, "needs_a_person": 0, "new": 1, "fixed": 0}, partial=True)
    _saved_report(folder, 4, {"needs_fixing": 9, "needs_a_person": 9, "new": 9, "fixed": 9}, database="another")
    samples, types = parse_prometheus(await (await client.get("/metrics")).text())
    assert samples[("monitor_report_problems", frozenset({("group", "needs_fixing")}))] == 22
    assert samples[("monitor_report_problems", frozenset({("group", "needs_a_person")}))] == 3
    assert samples[("monitor_report_problems_new", frozenset())] == 8
    assert samples[("monitor_report_problems_fixed", frozenset())] == 0
    assert samples[("monitor_report_run", frozenset())] == 2
    assert types["monitor_report_problems"] == "gauge"


async def test_an_empty_database_is_healthy_and_has_zero_metrics(tmp_path: Path, aiohttp_client: Any) -> None:
    settings = make_settings(tmp_path, "http://127.0.0.1:9")
    client = await aiohttp_client(create_app(settings))
    body = await (await client.get("/healthz")).json()
    assert body == {"status": "ok", "last_run": None, "next_run": None, "outbox": 0, "running": False,
                    "overdue": None, "running_elsewhere": None}
    samples, _ = parse_prometheus(await (await client.get("/metrics")).text())
    assert samples[("monitor_runs_total", frozenset({("status", "finished")}))] == 0
    assert not any(name == "monitor_last_run_duration_seconds" for name, _ in samples)


async def test_an_unreadable_database_answers_503(tmp_path: Path, aiohttp_client: Any) -> None:
    settings = replace(make_settings(tmp_path, "http://127.0.0.1:9"),
                       database=DatabaseSettings(path=str(tmp_path)))  # a directory
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["status"] == "error"
    assert (await client.get("/metrics")).status == 503


@pytest.fixture
def keeping_databases() -> Any:
    """`Store.keep_existing` as `monitor serve` sets it, for one test."""
    from monitor.store import Store

    Store.keep_existing()
    try:
        yield
    finally:
        Store._kept = None


async def test_a_database_gone_while_serving_answers_503_and_is_not_made_anew(
        tmp_path: Path, aiohttp_client: Any, keeping_databases: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Review 15b #1: the database moved away under a running service (a
    volume not mounted, a clean-up): /healthz opened it by path, made a new
    empty one and answered 200 "ok", last_run null, the overdue alarm
    cleared; the next audit would have started over. Now 503, logged, and
    no file made; a database never opened is still made as before."""
    from monitor.errors import StoreError
    from monitor.store import Store

    settings = make_settings(tmp_path, "http://127.0.0.1:9")
    where = Path(settings.database.path)
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/healthz")).status == 200 and where.exists()
    for leftover in where.parent.glob(where.name + "*"):
        leftover.unlink()
    caplog.set_level("WARNING", logger="monitor.web")
    for endpoint in ("/healthz", "/metrics"):
        resp = await client.get(endpoint)
        assert resp.status == 503, endpoint
        assert "is gone: it was there when the service opened it" in await resp.text(), endpoint
    assert not where.exists()
    assert any("event=database_unavailable" in r.getMessage() and "is gone" in r.getMessage()
               for r in caplog.records)
    with pytest.raises(StoreError, match="restart the service to start a new, empty one"):
        Store.open(where)  # the lock's heartbeat and the jobs open it so too
    Store.open(tmp_path / "other.db").close()  # never opened here: made


def _a_directory(path: Path) -> None:
    path.mkdir(parents=True)


def _not_a_database(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not SQLite " * 500)


def _under_a_file(path: Path) -> None:
    path.parent.parent.mkdir(parents=True)
    path.parent.write_text("a file where the database's folder should be")


@pytest.mark.parametrize(("breakage", "reason"), [
    (_a_directory, "unable to open database file"),
    (_not_a_database, "is not a SQLite database"),
    (_under_a_file, "cannot create the database"),
])
async def test_the_503_says_why_but_not_where_the_database_lives(
        tmp_path: Path, aiohttp_client: Any, caplog: pytest.LogCaptureFixture,
        breakage: Any, reason: str) -> None:
    """/healthz may be reachable through a proxy: its 503 keeps the reason
    and names the key (database.path), not the file, which tells the
    layout of the server and the service's account. The operator reads the
    path in the service's log, logged once however often a probe asks."""
    where = tmp_path / "srv" / "citation-monitor" / "monitor.db"
    breakage(where)
    settings = replace(make_settings(tmp_path, "http://127.0.0.1:9"), database=DatabaseSettings(path=str(where)))
    client = await aiohttp_client(create_app(settings))
    caplog.set_level("WARNING", logger="monitor.web")
    for _ in range(3):
        resp = await client.get("/healthz")
        body = await resp.json()
        assert resp.status == 503 and body["status"] == "error"
        assert reason in body["error"] and "<database.path>" in body["error"], body
        assert str(tmp_path) not in body["error"] and "citation-monitor" not in body["error"], body
        metrics = await client.get("/metrics")
        text = await metrics.text()
        assert metrics.status == 503 and reason in text and str(tmp_path) not in text, text
    logged = [r.getMessage() for r in caplog.records if "event=database_unavailable" in r.getMessage()]
    assert len(logged) == 1 and str(where) in logged[0], logged


async def test_a_database_unavailable_again_is_logged_again(tmp_path: Path, aiohttp_client: Any,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    where = tmp_path / "monitor.db"
    where.mkdir()
    settings = replace(make_settings(tmp_path, "http://127.0.0.1:9"), database=DatabaseSettings(path=str(where)))
    client = await aiohttp_client(create_app(settings))
    caplog.set_level("WARNING", logger="monitor.web")

    def logged() -> int:
        return sum("event=database_unavailable" in r.getMessage() for r in caplog.records)

    statuses = []
    for step in ("broken", "broken", "fixed", "fixed", "broken", "broken"):
        if step == "fixed" and where.is_dir():
            where.rmdir()
        if step == "broken" and where.is_file():
            where.unlink()
            where.mkdir()
        statuses.append(((await client.get("/healthz")).status, logged()))
    assert statuses == [(503, 1), (503, 1), (200, 1), (200, 1), (503, 2), (503, 2)]


@pytest.mark.parametrize(("message", "shown"), [
    ("database /var/lib/m/monitor.db: disk I/O error", "database <database.path>: disk I/O error"),
    ("cannot create the database var/monitor.db: [Errno 13] Permission denied: '/var/lib/x'",
     "cannot create the database <database.path>: [Errno 13] Permission denied: '<path>'"),
    ("database is locked", "database is locked"),
    # a folder with a space in its name is hidden whole, not as "<path> data"
    ("cannot create /srv/my data: [Errno 13] Permission denied", "cannot create <path>: [Errno 13] "
     "Permission denied"),
    ("unable to open '/home/alice smith/var'", "unable to open '<path>'"),
])
def test_public_reason_keeps_the_words_and_drops_the_paths(message: str, shown: str) -> None:
    database = ("/var/lib/m/monitor.db" if "/var/lib/m/" in message else
                "/srv/my data/var/monitor.db" if "/srv/my data" in message else
                "/home/alice smith/var/monitor.db" if "alice smith" in message else "var/monitor.db")
    assert public_reason(message, database) == shown


async def test_the_service_serves_the_endpoint_on_localhost(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "http://127.0.0.1:9", enabled=True, port=0)
    with Store.open(settings.database.path) as store:
        store.set_meta(LAST_AUDIT_KEY, dt.datetime.now(UTC).isoformat())  # no make-up run
    service = Service(settings, ServiceOptions())
    import asyncio

    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.ready.wait(), 10)
        assert service.http_url is not None and service.http_url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{service.http_url}/healthz") as resp:
                body = await resp.json()
            async with session.get(f"{service.http_url}/metrics") as resp:
                samples, _ = parse_prometheus(await resp.text())
        next_run = service.next_run()
        assert next_run is not None
        assert dt.datetime.fromisoformat(body["next_run"]) == next_run.replace(microsecond=0)
        assert body["running"] is False
        assert samples[("monitor_next_run_timestamp_seconds", frozenset())] == next_run.timestamp()
    finally:
        service.request_stop()
        assert await asyncio.wait_for(task, 10) == 0
    # and it is closed once the service stopped
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{service.http_url}/healthz")


async def test_a_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(tmp_path, "http://127.0.0.1:9", enabled=True, port=port)
        with pytest.raises(MonitorError, match=rf"test.toml: server: cannot listen on 127.0.0.1:{port}"):
            await start_server(settings)


# -- the saved reports ----------------------------------------------------------------


@pytest.fixture
async def reported(audited: Settings) -> Settings:
    from monitor.jobs import report_job

    await report_job(audited, run_id=1)
    await report_job(audited, run_id=2)
    (Path(audited.report.dir) / "notes.txt").write_text("not a report")
    return audited


async def test_the_reports_are_served_by_name_with_a_strict_policy(reported: Settings,
                                                                  aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(reported))
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/reports/index.html"
    assert "/reports/index.html" in await resp.text()  # said to a client that does not follow it
    index = await client.get("/reports/index.html")
    assert index.status == 200 and index.content_type == "text/html"
    assert "script-src" not in index.headers["Content-Security-Policy"]
    assert index.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert index.headers["X-Content-Type-Options"] == "nosniff"
    names = re.findall(r'href="(report-[^"]+)"', await index.text())
    # the summary's "open the report" links the latest one again
    assert {n.rsplit(".", 1)[1] for n in names} == {"html", "json"} and len(set(names)) == 4
    for name in names:
        resp = await client.get(f"/reports/{name}")
        assert resp.status == 200, name
        if name.endswith(".json"):
            assert (await resp.json())["run"]["id"] in (1, 2)
    for path in ("/reports/notes.txt", "/reports/..%2Fmonitor.db", "/reports/../monitor.db",
                 "/reports/report-2026-11-23-run-99.html", "/reports/%2e%2e/monitor.db"):
        assert (await client.get(path)).status == 404, path


async def test_the_reports_address_itself_leads_to_their_index(reported: Settings,
                                                              aiohttp_client: Any) -> None:
    """`[report] base_url` is the endpoint's `/reports/` address: opened as
    is (the mail's link trimmed, a bookmark), it leads to the index, not 404."""
    client = await aiohttp_client(create_app(reported))
    for path in ("/reports/", "/reports"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/reports/index.html", path


async def test_before_the_first_report_the_home_page_says_so(tmp_path: Path, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path, "http://127.0.0.1:9")))
    resp = await client.get("/")
    assert resp.status == 200 and "No report yet" in await resp.text()


@pytest.mark.parametrize(("status", "said"), [
    (Status(False, NEXT), ["No report yet.",
                           'The first audit is scheduled for Monday 30 November 2026, 06:00 UTC '
                           '([schedule] cron = "0 6 * * mon"); its report appears here then.',
                           "To have one now, run on this server: monitor run --config FILE "
                           "(FILE: the configuration file this service was started with)."]),
    (Status(True, NEXT), ["No report yet.",
                          "The first audit is running now: its report appears here when it ends."]),
    (None, ["No report yet.", "The first report appears here after the first audit.",
            "To have one now, run on this server: monitor run --config FILE "
            "(FILE: the configuration file this service was started with)."]),
])
async def test_before_the_first_report_the_home_page_says_when_and_how_to_have_one_now(
        tmp_path: Path, aiohttp_client: Any, status: Status | None, said: list[str]) -> None:
    """Was "No report yet: the first one is saved after the first audit.",
    though the service knows when that is."""
    settings = make_settings(tmp_path, "http://127.0.0.1:9")
    client = await aiohttp_client(create_app(settings, status))
    resp = await client.get("/")
    text = await resp.text()
    assert resp.status == 200 and text.splitlines() == said
    assert "test.toml" not in text and str(tmp_path) not in text  # no layout for whoever reaches it


async def test_a_symlink_in_the_reports_folder_serves_nothing_outside_it(tmp_path: Path,
                                                                          aiohttp_client: Any) -> None:
    """A file named like a report but linking out of the folder (to the
    configuration, to /etc/passwd) is not served: whoever can drop a link in
    the reports folder must not read what only the service user can. A link
    that stays inside the folder, and a folder that is itself a link, work."""
    real = tmp_path / "srv-reports"
    real.mkdir()
    (real / "report-2026-11-23-run-1.html").write_text("<p>run 1</p>", encoding="utf-8")
    (real / "report-2026-11-23-run-2.html").symlink_to(real / "report-2026-11-23-run-1.html")
    secret = tmp_path / "monitor.toml"
    secret.write_text("[email]\nusername = 'SECRET-CONFIG'\n", encoding="utf-8")
    (real / "report-2026-11-23-run-3.html").symlink_to(secret)
    (real / "report-2026-11-23-run-4.json").symlink_to(Path("..") / "monitor.toml")
    (real / "index.html").symlink_to("/etc/passwd")
    linked = tmp_path / "reports"
    linked.symlink_to(real, target_is_directory=True)
    client = await aiohttp_client(create_app(make_settings(tmp_path, "http://127.0.0.1:9")))
    for name in ("report-2026-11-23-run-1.html", "report-2026-11-23-run-2.html"):
        resp = await client.get(f"/reports/{name}")
        assert resp.status == 200 and await resp.text() == "<p>run 1</p>", name
    for name in ("report-2026-11-23-run-3.html", "report-2026-11-23-run-4.json", "index.html"):
        resp = await client.get(f"/reports/{name}")
        body = await resp.text()
        assert resp.status == 404 and "SECRET" not in body and "root:" not in body, name
    home = await client.get("/", allow_redirects=False)
    assert home.status == 200, "an index that is not served is not offered either"


def _swap_for_link(path: Path, secret: Path) -> None:
    path.unlink()
    path.symlink_to(secret)


def _swap_for_fifo(path: Path, secret: Path) -> None:
    path.unlink()
    os.mkfifo(path)  # opened for reading without O_NONBLOCK, it waits for a writer forever


def _swap_for_folder(path: Path, secret: Path) -> None:
    path.unlink()
    path.mkdir()


SWAPS = [_swap_for_link, _swap_for_fifo, _swap_for_folder]


@pytest.mark.parametrize("swap", SWAPS)
async def test_a_report_swapped_after_the_check_is_not_served(
        tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch, swap: Any) -> None:
    """The race between looking at the name and opening it, made
    deterministic: the swap happens exactly when `report_path` has said
    "a regular file in the folder", before anything opens it. Serving what
    that name is *now* would give out the configuration; the descriptor
    that is opened decides."""
    folder = tmp_path / "reports"
    folder.mkdir()
    name = "report-2026-11-23-run-1.html"
    (folder / name).write_text("<p>run 1</p>", encoding="utf-8")
    secret = tmp_path / "monitor.toml"
    secret.write_text("[email]\nusername = 'SECRET-CONFIG'\n", encoding="utf-8")
    checked = web_module.report_path

    def check_then_swap(folder_name: str, asked: str) -> Path | None:
        found = checked(folder_name, asked)
        assert found is not None, "the check saw a regular file"
        swap(found, secret)
        return found

    monkeypatch.setattr(web_module, "report_path", check_then_swap)
    client = await aiohttp_client(create_app(make_settings(tmp_path, "http://127.0.0.1:9")))
    resp = await asyncio.wait_for(client.get(f"/reports/{name}"), 5)
    body = await resp.text()
    assert resp.status == 404 and "SECRET" not in body, (resp.status, body)


@pytest.mark.parametrize("swap", SWAPS)
def test_open_report_judges_the_descriptor_not_the_name(tmp_path: Path, swap: Any) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "index.html").write_text("<p>the reports</p>", encoding="utf-8")
    secret = tmp_path / "monitor.toml"
    secret.write_text("SECRET", encoding="utf-8")
    path = report_path(str(folder), "index.html")
    assert path is not None
    opened = open_report(path)
    assert opened is not None
    with opened:
        assert opened.read() == b"<p>the reports</p>"
    swap(path, secret)
    assert open_report(path) is None


async def test_a_report_answers_revalidation_and_head(reported: Settings, aiohttp_client: Any) -> None:
    """Served from the descriptor rather than by aiohttp's FileResponse,
    a report still carries its validators (Cache-Control: no-cache makes the
    browser ask each time: an unchanged report costs a 304) and answers HEAD."""
    client = await aiohttp_client(create_app(reported))
    first = await client.get("/reports/index.html")
    body = await first.read()
    assert first.status == 200 and first.headers["Content-Length"] == str(len(body))
    assert first.headers["Content-Type"] == "text/html; charset=utf-8"
    again = await client.get("/reports/index.html", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""
    # The index is made for each request (`live_index`: the next audit, the
    # outbox): its ETag revalidates it, a date could not; a report file has both.
    assert "Last-Modified" not in first.headers
    html_name = re.findall(r'href="(report-[^"]+\.html)"', body.decode())[0]
    report = await client.get(f"/reports/{html_name}")
    since = await client.get(f"/reports/{html_name}", headers={"If-Modified-Since": report.headers["Last-Modified"]})
    assert since.status == 304
    head = await client.head("/reports/index.html")
    assert head.status == 200 and head.headers["Content-Length"] == str(len(body))
    json_name = re.findall(r'href="(report-[^"]+\.json)"', body.decode())[0]
    as_json = await client.get(f"/reports/{json_name}")
    assert as_json.content_type == "application/json" and (await as_json.json())["run"]["id"] in (1, 2)


async def test_a_second_request_of_the_index_reads_no_report_again(reported: Settings,
                                                                  aiohttp_client: Any) -> None:
    """Review 10 #6: the index is rendered for each request (its summary is
    /healthz's of the moment), and read every saved report's JSON each time
    (0.1 s of 0.2 s of CPU at 520 reports), conditional requests too. Read
    again now only when a report changed: counted by the JSON files read."""
    from monitor.jobs import report_job
    from reports.render import SAVED_ROWS

    client = await aiohttp_client(create_app(reported))
    first = await client.get("/reports/index.html")
    body = await first.read()
    before = SAVED_ROWS.reads
    again = await client.get("/reports/index.html")
    assert await again.read() == body
    revalidated = await client.get("/reports/index.html", headers={"If-None-Match": first.headers["ETag"]})
    assert revalidated.status == 304
    assert SAVED_ROWS.reads == before  # nothing read again
    await report_job(reported, run_id=2)  # run 2's report written again, and the index file
    assert SAVED_ROWS.reads == before + 1  # run 2's only
    assert (await client.get("/reports/index.html")).status == 200
    assert SAVED_ROWS.reads == before + 1


async def test_a_report_answers_a_byte_range(reported: Settings, aiohttp_client: Any) -> None:
    """One range, as FileResponse served it before reports were sent from
    their descriptor: a download tool resumes a large report JSON."""
    client = await aiohttp_client(create_app(reported))
    whole = await (await client.get("/reports/index.html")).read()
    cases = {"bytes=0-9": (206, whole[:10]), "bytes=10-": (206, whole[10:]), "bytes=-5": (206, whole[-5:]),
             "bytes=0-9,20-29": (200, whole), "bytes=x": (200, whole)}
    for asked, (status, body) in cases.items():
        resp = await client.get("/reports/index.html", headers={"Range": asked})
        assert (resp.status, await resp.read()) == (status, body), asked
        assert resp.headers["Accept-Ranges"] == "bytes"
        if status == 206:
            start = len(whole) - len(body) if asked.startswith("bytes=-") or asked.endswith("-") else 0
            assert resp.headers["Content-Range"] == f"bytes {start}-{start + len(body) - 1}/{len(whole)}"
    beyond = await client.get("/reports/index.html", headers={"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{len(whole)}"
    stale = await client.get("/reports/index.html", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert (stale.status, await stale.read()) == (200, whole)


async def test_a_link_inside_the_folder_is_served_with_the_type_its_name_says(
        tmp_path: Path, aiohttp_client: Any) -> None:
    """A report name linking to a file of the folder that ends otherwise
    (.htm) was a 500 (the type was looked up from the target's suffix)."""
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "real.htm").write_text("<p>run 2</p>", encoding="utf-8")
    (folder / "report-2026-11-23-run-2.html").symlink_to(folder / "real.htm")
    client = await aiohttp_client(create_app(make_settings(tmp_path, "http://127.0.0.1:9")))
    resp = await client.get("/reports/report-2026-11-23-run-2.html")
    assert (resp.status, resp.content_type, await resp.text()) == (200, "text/html", "<p>run 2</p>")


@pytest.mark.parametrize(("server_host", "base_url", "host_header", "served"), [
    # DNS rebinding: a page the operator opens makes evil.example resolve to
    # 127.0.0.1, then reads the endpoint as its own origin. The browser still
    # names evil.example in Host: a local endpoint answers only local names.
    ("127.0.0.1", "", "evil.example:8089", False),
    ("127.0.0.1", "", "127.0.0.1.evil.example", False),
    ("127.0.0.1", "", "localhost.evil.example:8089", False),
    ("127.0.0.1", "https://www.sclero.org/link-audits/", "evil.example", False),
    ("::1", "", "evil.example", False),
    ("localhost", "", "evil.example:8089", False),
    ("127.0.0.1", "", "127.0.0.1:8089", True),
    ("127.0.0.1", "", "127.0.0.2", True),
    ("127.0.0.1", "", "[::1]:8089", True),
    ("127.0.0.1", "", "LOCALHOST.:8089", True),
    ("127.0.0.1", "", "monitor.localhost:8089", True),
    # published through a reverse proxy that passes its own Host on
    ("127.0.0.1", "https://www.sclero.org/link-audits/", "www.sclero.org", True),
    ("127.0.0.1", "https://www.sclero.org/link-audits/", "WWW.SCLERO.ORG:443", True),
    # bound beyond loopback on purpose: whatever name it is reached by
    ("0.0.0.0", "", "monitor.intranet:8089", True),
    ("10.1.2.3", "", "evil.example", True),
])
async def test_a_local_endpoint_answers_only_to_local_names(
        tmp_path: Path, aiohttp_client: Any, server_host: str, base_url: str,
        host_header: str, served: bool) -> None:
    settings = make_settings(tmp_path, "http://127.0.0.1:9", host=server_host)
    settings = replace(settings, report=replace(settings.report, base_url=base_url))
    Path(settings.report.dir).mkdir()
    (Path(settings.report.dir) / "index.html").write_text("<p>the reports</p>", encoding="utf-8")
    client = await aiohttp_client(create_app(settings))
    for path in ("/healthz", "/metrics", "/", "/reports/index.html"):
        resp = await client.get(path, headers={"Host": host_header}, allow_redirects=False)
        body = await resp.text()
        if served:
            assert resp.status in (200, 302), (path, resp.status)
        else:
            assert resp.status == 421 and "reports" not in body and "outbox" not in body, (path, body)


async def test_a_proxy_name_is_answered_once_allowed(tmp_path: Path, aiohttp_client: Any) -> None:
    """A reverse proxy that passes the visitor's Host on (Caddy does by
    default) without [report] base_url set got 421 with nothing to act on."""
    settings = make_settings(tmp_path, "http://127.0.0.1:9")
    client = await aiohttp_client(create_app(settings))
    refused = await client.get("/healthz", headers={"Host": "links.sclero.org"})
    assert refused.status == 421 and "[server] allowed_hosts" in await refused.text()
    allowed = replace(settings, server=replace(settings.server, allowed_hosts=("Links.Sclero.org",)))
    client = await aiohttp_client(create_app(allowed))
    for host in ("links.sclero.org", "LINKS.sclero.org:443"):
        assert (await client.get("/healthz", headers={"Host": host})).status == 200
    assert (await client.get("/healthz", headers={"Host": "evil.example"})).status == 421


async def test_every_answer_names_the_server_without_versions(reported: Settings) -> None:
    """aiohttp's default Server header, "Python/3.11 aiohttp/3.x", tells a
    scanner which advisories apply; every answer says "monitor" instead,
    aiohttp's own error pages included (no route, wrong method, a handler
    that raised). Over a real socket, as `monitor serve` listens."""
    app = create_app(replace(reported, report=replace(reported.report, base_url="")))

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug in a handler")

    app.router.add_get("/boom", boom)  # only a way to reach aiohttp's 500 page
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    broken = replace(reported, database=DatabaseSettings(path=str(Path(reported.database.path).parent)))
    broken_runner, broken_base = await start_server(replace(broken, server=ServerSettings(enabled=True, port=0)))
    answers = [
        ("GET", f"{base}/healthz", {}, 200),
        ("GET", f"{base}/metrics", {}, 200),
        ("GET", f"{base}/", {}, 302),
        ("GET", f"{base}/reports/index.html", {}, 200),
        ("HEAD", f"{base}/reports/index.html", {}, 200),
        ("GET", f"{base}/reports/report-2026-01-01-run-99.html", {}, 404),
        ("GET", f"{base}/no/such/page", {}, 404),
        ("POST", f"{base}/healthz", {}, 405),
        ("GET", f"{base}/healthz", {"Host": "evil.example"}, 421),
        ("GET", f"{base}/boom", {}, 500),
        ("GET", f"{base}/boom", {"Accept": "text/html"}, 500),
        ("GET", f"{broken_base}/healthz", {}, 503),
        ("GET", f"{broken_base}/metrics", {}, 503),
    ]
    try:
        async with aiohttp.ClientSession() as session:
            for method, url, headers, status in answers:
                async with session.request(method, url, headers=headers, allow_redirects=False) as resp:
                    await resp.read()
                    assert resp.status == status, (method, url, resp.status)
                    assert resp.headers.getall("Server") == ["monitor"], (method, url, resp.headers)
    finally:
        await runner.cleanup()
        await broken_runner.cleanup()


@pytest.mark.parametrize("request_bytes", [
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # a URL over aiohttp's 8190 bytes
    b"GET /reports/\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # not UTF-8
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: localhost\x00.evil.example\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
])
async def test_a_request_aiohttp_cannot_read_is_one_log_line_not_a_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, request_bytes: bytes) -> None:
    """Any local client (a scanner, a proxy gone wrong) sent these: each got
    its 400, and the service's log had ERROR with ten lines of aiohttp's
    parser traceback, in a journal of one line per event."""
    settings = make_settings(tmp_path, "http://127.0.0.1:9", enabled=True, port=0)
    runner, base = await start_server(settings)
    try:
        with caplog.at_level(logging.INFO):
            reader, writer = await asyncio.open_connection("127.0.0.1", int(base.rsplit(":", 1)[1]))
            writer.write(request_bytes)
            await writer.drain()
            answer = await reader.read()  # aiohttp closes after a request it cannot read
            writer.close()
    finally:
        await runner.cleanup()
    assert re.match(rb"HTTP/1\.[01] 400 ", answer), answer[:100]
    said = [r for r in caplog.records if r.name.startswith(("aiohttp", "monitor"))]
    assert [(r.levelno, r.exc_info) for r in said] == [(logging.INFO, None)], caplog.text
    line = said[0].getMessage()
    assert line.startswith("event=http_bad_request status=400 from=127.0.0.1 error=") and "\n" not in line


CHROMIUM = __import__("shutil").which("chromium") or __import__("shutil").which("chromium-browser")


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
async def test_a_browser_opens_the_latest_report_from_the_home_page(reported: Settings, tmp_path: Path) -> None:
    """Headless Chromium on the running endpoint: `/` leads to the index of
    reports, whose first row opens the latest report."""
    import asyncio

    settings = replace(reported, server=ServerSettings(enabled=True, port=0))
    runner, base = await start_server(settings)
    try:
        async def dom(url: str) -> str:
            proc = await asyncio.create_subprocess_exec(
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom", url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            return out.decode()

        index = await dom(f"{base}/")
        latest = re.findall(r'href="(report-[^"]+\.html)"', index)[0]
        assert latest.endswith("-run-2.html")
        page = await dom(f"{base}/reports/{latest}")
        assert "Run 2" in page and "<style>" in page
    finally:
        await runner.cleanup()


async def test_healthz_links_checked_is_the_index_of_reports_links_checked(
        tmp_path: Path, aiohttp_server: Any, aiohttp_client: Any) -> None:
    """`last_run.links` counts every link the pages list, skipped ones too;
    the index of reports' "Links checked" does not (walkthrough 9, finding
    20: 105 against 90). `links_checked` is that number, named as such."""
    from monitor.jobs import report_job

    async def page(request: web.Request) -> web.Response:
        links = "".join(f'<a href="{h}">x</a>' for h in ("/ok", "/ok", "mailto:a@b.org", "#top", "/gone"))
        return web.Response(text=f"<html><head><title>P</title></head><body>{links}</body></html>",
                            content_type="text/html")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="<html><head><title>Fine</title></head><body>fine</body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/ok", ok)
    server = await aiohttp_server(app)
    settings = make_settings(tmp_path, f"http://127.0.0.1:{server.port}")
    await run_audit(settings)
    outcome = await report_job(settings)
    counts = __import__("json").loads(outcome.json_path.read_text(encoding="utf-8"))["counts"]
    client = await aiohttp_client(create_app(settings))
    last = (await (await client.get("/healthz")).json())["last_run"]
    # added at the end of the object, in that order
    assert list(last)[-4:] == ["links_checked", "pages", "pages_failed", "read_no_page"]
    assert (last["pages"], last["pages_failed"], last["read_no_page"]) == (1, 0, False)
    assert (last["links"], last["links_checked"]) == (5, 3)
    assert last["links_checked"] == counts["checked"] and last["links"] - last["links_checked"] == counts["skipped"]
    index = (Path(settings.report.dir) / "index.html").read_text(encoding="utf-8")
    row = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.findall(r"<tr>(.*?)</tr>", index, re.S)[1]))
    assert row.split()[4] == str(last["links_checked"])  # date, time, "UTC", run, then Links checked


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
async def test_a_browser_sees_the_weekly_audit_first_and_a_failed_check_as_not_fetched(
        reported: Settings, tmp_path: Path) -> None:
    """Walkthrough 9, finding 9: an editor's `check --page` of a mistyped
    address, then `monitor report`, put a row of zeros at the top of the
    dashboard, read as "nothing to fix". In a real browser: the first row
    is still the latest weekly audit; the check is below, "not fetched"."""
    from monitor.crawl import run_audit as audit
    from monitor.jobs import report_job

    base_url = reported.pages[0].url.rsplit("/", 1)[0]
    await audit(reported, only_pages=[base_url + "/no-such-page"])
    with Store.open(reported.database.path) as store:
        latest = store.runs()[0]
    assert latest.partial, "a check of one page was recorded"
    await report_job(reported, run_id=latest.id)
    settings = replace(reported, server=ServerSettings(enabled=True, port=0))
    runner, base = await start_server(settings)
    try:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom", f"{base}/",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await runner.cleanup()
    dom = out.decode()
    rows = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
            for r in re.findall(r"<tr>(.*?)</tr>", dom, re.S)]
    links = re.findall(r'href="(report-[^"]+\.html)"', dom)
    assert links[0].endswith("-run-2.html") and links[-1].endswith(f"-run-{latest.id}.html")
    assert "Checks of some pages" in dom
    assert "not fetched: nothing was checked" in rows[-1] and "not fetched" not in "".join(rows[:3])
