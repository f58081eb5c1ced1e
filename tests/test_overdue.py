"""A week the audit did not run is said without reading logs (walkthrough 11
#6): the dashboard's first line, /healthz `overdue`, /metrics
`monitor_audit_overdue` and one WARNING at `monitor serve`'s start.

A real `python -m monitor serve` over a database whose latest audit is a
real audit of the bundled simulated site, made with its clock set 11 days
back (a week missed) or 3 days back (nothing missed); the rule itself
table-driven on `find_overdue`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.config import ScheduleSettings, load_settings
from monitor.demo.site import SimulatedSite
from monitor.jobs import weekly_job
from monitor.overdue import find_overdue
from monitor.schedule import weekly_trigger
from monitor.types import RunInfo

from simkit import site_config

UTC = dt.timezone.utc
DAY = dt.timedelta(days=1)
GRACE = dt.timedelta(hours=24)
WEEKLY = weekly_trigger(ScheduleSettings(cron="0 6 * * mon", timezone="UTC"))
PARIS = weekly_trigger(ScheduleSettings(cron="0 6 * * mon", timezone="Europe/Paris"))


def at(day: int, hour: int = 6, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def audit(day: int, minutes: int = 1, run: int = 1) -> RunInfo:
    return RunInfo(run, at(day), at(day) + dt.timedelta(minutes=minutes), "finished")


# -- the rule ------------------------------------------------------------------------


@pytest.mark.parametrize("trigger, last, unfinished, now, said", [
    # walkthrough 11 #6: Mon 16 Nov audited, Mon 23 Nov not, seen Fri 27 Nov
    (WEEKLY, audit(16), None, at(27, 21),
     "No audit since 16 Nov (11 days): the audit of Mon 23 Nov 06:00 UTC did not run."),
    # 3 days after the latest audit: nothing was due
    (WEEKLY, audit(23), None, at(26, 6), None),
    # the service may still make Monday's up (misfire_grace_hours) ...
    (WEEKLY, audit(16), None, at(24, 5, 59), None),
    # ... plus the time the latest audit took (5 min): one begun at the last moment ends by then
    (WEEKLY, audit(16, minutes=5), None, at(24, 6, 4), None),
    (WEEKLY, audit(16, minutes=5), None, at(24, 6, 6),
     "No audit since 16 Nov (8 days): the audit of Mon 23 Nov 06:00 UTC did not run."),
    # an audit resumed after its time (begun Sunday, finished Monday 06:30) is Monday's
    (WEEKLY, RunInfo(1, at(22, 20), at(23, 6, 30), "finished"), None, at(26, 12), None),
    # several weeks
    (WEEKLY, audit(2), None, at(27, 21),
     "No audit since 2 Nov (25 days): the audits from Mon 9 Nov 06:00 UTC to Mon 23 Nov 06:00 UTC did not run."),
    # a crash loop: Monday's run began and never finished
    (WEEKLY, audit(16), RunInfo(2, at(23, 6), status="interrupted"), at(25, 9),
     "No audit since 16 Nov (9 days): the audit of Mon 23 Nov 06:00 UTC began but did not finish "
     "(run 2 began Mon 23 Nov 06:00 UTC and is marked interrupted)."),
    (WEEKLY, None, RunInfo(1, at(23, 6), status="running"), at(25, 9),
     "No audit has finished yet: the audit of Mon 23 Nov 06:00 UTC began but did not finish "
     "(run 1 began Mon 23 Nov 06:00 UTC and is marked running)."),
    (WEEKLY, audit(2), RunInfo(2, at(16, 6), status="running"), at(27, 21),
     "No audit since 2 Nov (25 days): the audits from Mon 9 Nov 06:00 UTC to Mon 23 Nov 06:00 UTC did not "
     "run or did not finish (run 2 began Mon 16 Nov 06:00 UTC and is marked running)."),
    # nothing ever ran: nothing tells when the service was installed
    (WEEKLY, None, None, at(27, 21), None),
    # the schedule's own time zone: 06:00 in Paris is 05:00 UTC in winter
    (PARIS, audit(16), None, at(27, 21),
     "No audit since 16 Nov (11 days): the audit of Mon 23 Nov 05:00 UTC did not run."),
])
def test_a_scheduled_audit_that_did_not_happen_is_said_and_one_that_may_still_is_not(
        trigger: Any, last: RunInfo | None, unfinished: RunInfo | None, now: dt.datetime,
        said: str | None) -> None:
    found = find_overdue(trigger, last, unfinished, now, GRACE)
    assert (found.message() if found else None) == said
    if found is not None:
        doc = found.as_json()
        assert doc["message"] == said
        assert dt.datetime.fromisoformat(doc["overdue_since"]) <= now
        assert dt.datetime.fromisoformat(doc["scheduled"]) == found.scheduled


# -- a real `monitor serve` ------------------------------------------------------------


async def audited_days_ago(tmp_path: Path, sim_site: SimulatedSite, days: int) -> tuple[Path, dt.datetime]:
    """A database whose latest audit (a real one, with its report and index)
    ran `days` ago, at the time of a weekly cron on that weekday: the
    schedule was kept that day."""
    began = (dt.datetime.now(UTC) - days * DAY).replace(second=0, microsecond=0)
    config = site_config(tmp_path, sim_site)
    with config.open("a", encoding="utf-8") as f:
        f.write(f'\n[schedule]\ncron = "{began.minute} {began.hour} * * {began:%a}"\ntimezone = "UTC"\n'
                f'\n[server]\nenabled = true\nhost = "127.0.0.1"\nport = 0\n')  # no port race
    outcome, report = await weekly_job(load_settings(config), now=lambda: began)
    assert outcome is not None and outcome.run.started_at == began and report.index_path.exists()
    return config, began


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Any]:
    """`python -m monitor serve --config FILE` (stderr to a log); killed at the end if still up."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(config: Path) -> tuple[asyncio.subprocess.Process, Path, str]:
        log = tmp_path / "serve.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor", "serve", "--config", str(config),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err,
                cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append(proc)
        deadline = asyncio.get_running_loop().time() + 60  # two shared cores, a loaded machine
        while "event=service_started" not in log.read_text(encoding="utf-8", errors="replace"):
            assert proc.returncode is None, log.read_text(encoding="utf-8", errors="replace")
            assert asyncio.get_running_loop().time() < deadline, log.read_text(encoding="utf-8")
            await asyncio.sleep(0.05)
        listening = re.search(r"event=http_listening url=(\S+)", log.read_text(encoding="utf-8"))
        assert listening, log.read_text(encoding="utf-8")
        return proc, log, listening.group(1)

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def look(base: str) -> tuple[dict[str, Any], str, str]:
    """/healthz, /metrics, and the dashboard's summary as text."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 200  # a missed week is not "the database cannot be read" (503)
            health = await resp.json()
        async with session.get(f"{base}/metrics") as resp:
            metrics = await resp.text()
        async with session.get(f"{base}/") as resp:
            assert resp.status == 200 and resp.url.path == "/reports/index.html"
            page = await resp.text()
    summary = re.search(r'<div class="summary">(.*?)</div>', page, re.S)
    assert summary, page[:2000]
    text = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", summary.group(1)).split()))
    return health, metrics, text


def moment(when: dt.datetime, now: dt.datetime) -> str:
    return f"{when:%a} {when.day} {when:%b}" + (f" {when.year}" if when.year != now.year else "") \
        + f" {when:%H:%M} UTC"


async def stop(proc: asyncio.subprocess.Process, log: Path) -> str:
    proc.terminate()
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    return log.read_text(encoding="utf-8", errors="replace")


async def test_a_service_over_an_audit_eleven_days_old_says_the_week_was_missed(
        tmp_path: Path, sim_site: SimulatedSite, serve: Any) -> None:
    config, began = await audited_days_ago(tmp_path, sim_site, 11)
    missed, following = began + 7 * DAY, began + 14 * DAY
    now = dt.datetime.now(UTC)
    said = (f"No audit since {began.day} {began:%b}" + (f" {began.year}" if began.year != now.year else "")
            + f" (11 days): the audit of {moment(missed, now)} did not run.")
    proc, log, base = await serve(config)
    health, metrics, summary = await look(base)

    assert health["status"] == "ok" and health["last_run"]["started_at"] == began.isoformat()
    overdue = health["overdue"]
    assert overdue["message"] == said
    assert overdue["scheduled"] == missed.isoformat() and overdue["days"] == 11
    assert overdue["last_audit"] == began.isoformat() and overdue["unfinished_run"] is None
    assert list(health)[-2:] == ["overdue", "running_elsewhere"]  # each added at the end of the document
    assert "\nmonitor_audit_overdue 1\n" in metrics
    # said first, with the next audit; then the latest audit's line as before
    assert summary.startswith(f"{said} Next audit {moment(following, now)}. Latest audit "), summary
    assert summary.count("Next audit") == 1

    text = await stop(proc, log)
    started = [line for line in text.splitlines() if "event=audit_overdue" in line]
    assert len(started) == 1 and " WARNING " in started[0], text
    assert f"scheduled={missed.isoformat()}" in started[0] and "days=11" in started[0]
    assert "run_now=- " in started[0] and "It is not made up" in started[0]
    assert "event=audit_started" not in text  # past misfire_grace_hours: left for the next time


async def test_a_service_over_an_audit_three_days_old_says_nothing_of_it(
        tmp_path: Path, sim_site: SimulatedSite, serve: Any) -> None:
    config, began = await audited_days_ago(tmp_path, sim_site, 3)
    proc, log, base = await serve(config)
    health, metrics, summary = await look(base)

    assert health["status"] == "ok" and health["overdue"] is None
    assert health["last_run"]["started_at"] == began.isoformat()
    assert "\nmonitor_audit_overdue 0\n" in metrics
    assert summary.startswith("Latest audit "), summary
    assert "No audit" not in summary and "did not run" not in summary
    assert "event=audit_overdue" not in await stop(proc, log)


async def test_a_first_audit_that_never_finished_is_said_before_any_report(
        tmp_path: Path, aiohttp_client: Any) -> None:
    """No report, so no index: the service's page said only "No report yet.
    The first audit is scheduled for ..." while its first audit, begun 3
    days ago at its scheduled time, was cut short and never finished."""
    from monitor.store import Store
    from monitor.web import create_app

    began = (dt.datetime.now(UTC) - 3 * DAY).replace(second=0, microsecond=0)
    config = tmp_path / "monitor.toml"
    config.write_text(f'[[pages]]\nurl = "http://127.0.0.1:9/page"\n\n[database]\npath = "{tmp_path / "m.db"}"\n'
                      f'\n[report]\ndir = "{tmp_path / "reports"}"\n'
                      f'\n[schedule]\ncron = "{began.minute} {began.hour} * * {began:%a}"\ntimezone = "UTC"\n',
                      encoding="utf-8")
    settings = load_settings(config)
    with Store.open(settings.database.path) as store:
        run = store.start_run(began)
        store.finish_run(run.id, began + dt.timedelta(minutes=3), status="interrupted")

    class Status:  # what a service says; the schedule is the configured one
        running = False

        def next_run(self) -> dt.datetime | None:
            return None

    client = await aiohttp_client(create_app(settings, Status()))
    page = await (await client.get("/")).text()
    now = dt.datetime.now(UTC)
    assert page.startswith(f"No audit has finished yet: the audit of {moment(began, now)} began but did "
                           f"not finish (run 1 began {moment(began, now)} and is marked interrupted).\n"
                           "No report yet."), page
    health = await (await client.get("/healthz")).json()
    assert health["overdue"]["unfinished_run"] == {"id": 1, "status": "interrupted",
                                                   "started_at": began.isoformat()}
