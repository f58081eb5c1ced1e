"""The dashboard's summary (walkthrough 10 #9): the index of reports says
what the latest audit asks of the webmaster, when the next audit is and
whether mail waits, from the report's own counts and /healthz's figures.

Through a real `monitor serve` (in process) auditing the bundled simulated
site on loopback, with a mail server that is down; the summary's wording
table-driven on `index_summary`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import re
from html.parser import HTMLParser
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.config import load_settings
from monitor.demo.site import SimulatedSite
from monitor.service import Service
from reports.render import ServiceFacts, Source, index_summary, render_index

from simkit import site_config

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 27, 18, 0, tzinfo=UTC)

LEAD = re.compile(r"Latest audit ([^<]+?): <b>(\d+) problems? needs? attention \((\d+) to fix, (\d+) to open in "
                  r"a browser\)</b>: <a href=\"(report-[^\"]+\.html)\"[^>]*>open the report</a>")
NEXT = re.compile(r"Next audit (\w{3} \d{1,2} \w{3} \d\d:\d\d) UTC\.")
WAITS = re.compile(r"(\d+) messages? not sent yet")


def rows_in(groups: list[dict[str, Any]]) -> int:
    """The problems a report JSON lists in a group (page, section, entry, problem)."""
    return sum(len(e["problems"]) for g in groups for s in g["sections"] for e in s["entries"])


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_the_served_index_says_what_the_report_and_healthz_say(
        tmp_path: Path, sim_site: SimulatedSite, free_port: int) -> None:
    """A service audits (a make-up run at start), cannot mail (nothing
    listens on the SMTP port: the report waits in the outbox), and serves
    its dashboard: the summary's figures are the report JSON's and
    /healthz's; the index file it wrote (as `monitor report` writes it)
    has the same audit line and no next audit."""
    config = site_config(tmp_path, sim_site, smtp_port=free_port)
    fire = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
    with config.open("a", encoding="utf-8") as f:
        f.write(f'\n[schedule]\ncron = "{fire.minute} {fire.hour} * * *"\ntimezone = "UTC"\n'
                '\n[server]\nenabled = true\nhost = "127.0.0.1"\nport = 0\n')
    settings = load_settings(config)
    service = Service(settings)
    task = asyncio.create_task(service.run())
    try:
        await until(lambda: service.ready.is_set() or task.done(), 10, "the service to start")
        await until(lambda: service.audits_done >= 1 or task.done(), 60, "the make-up audit")
        assert not task.done()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{service.http_url}/healthz") as resp:
                health = await resp.json()
            async with session.get(f"{service.http_url}/") as resp:  # leads to /reports/index.html
                assert resp.status == 200 and resp.url.path == "/reports/index.html"
                page = await resp.text()
                etag = resp.headers["ETag"]
            async with session.get(f"{service.http_url}/reports/index.html",
                                   headers={"If-None-Match": etag}) as resp:
                assert resp.status == 304  # an unchanged dashboard costs nothing
    finally:
        service.request_stop()
        assert await asyncio.wait_for(task, 20) == 0

    page = " ".join(page.split())  # long lines are folded for mail
    lead = LEAD.search(page)
    assert lead, text_of(page)[:600]
    attention, fixing, person = (int(n) for n in lead.group(2, 3, 4))
    report = json.loads((Path(settings.report.dir) / lead.group(5).replace(".html", ".json"))
                        .read_text(encoding="utf-8"))
    counts = report["counts"]
    assert report["run"]["id"] == health["last_run"]["id"]  # the latest audit's report
    assert attention == counts["new"] + counts["still"] == counts["open"]
    assert fixing == rows_in(report["needs_fixing"]) == counts["needs_fixing"]
    assert person == rows_in(report["needs_a_person"]) == counts["needs_a_person"]
    assert fixing and person, "the simulated site has links of both kinds"
    started = dt.datetime.fromisoformat(report["run"]["started_at"]).astimezone(UTC)
    assert lead.group(1) == f"{started.day} {started:%b %H:%M} UTC"

    next_run = dt.datetime.fromisoformat(health["next_run"]).astimezone(UTC)
    assert NEXT.search(page).group(1) == f"{next_run:%a} {next_run.day} {next_run:%b %H:%M}"  # type: ignore[union-attr]
    assert health["outbox"] >= 1
    assert int(WAITS.search(page).group(1)) == health["outbox"]  # type: ignore[union-attr]
    assert "Each date opens that audit's report" in page

    written = " ".join((Path(settings.report.dir) / "index.html").read_text(encoding="utf-8").split())
    assert LEAD.search(written).groups() == lead.groups()  # type: ignore[union-attr]
    assert "Next audit" not in written and "running now" not in written  # nothing is scheduled in a file
    assert int(WAITS.search(written).group(1)) == health["outbox"]  # type: ignore[union-attr]


def row(counts: dict[str, Any], *, unread: str = "", started: str = "2026-11-27T17:56:03+00:00",
        name: str = "report-2026-11-27-run-3.html") -> dict[str, Any]:
    return {"name": name, "date": started[:10], "run": 3, "counts": counts, "unread": unread,
            "started": started, "first": False}


def counts(new: int, still: int, fixing: int | None = None, person: int | None = None) -> dict[str, Any]:
    split = {} if fixing is None else {"needs_fixing": fixing, "needs_a_person": person}
    return {"checked": 89, "new": new, "still": still, "fixed": 4, **split}


MONDAY = ServiceFacts(dt.datetime(2026, 11, 30, 6, 0, tzinfo=UTC), running=False)


@pytest.mark.parametrize(("rows", "outbox", "service", "lead", "rest"), [
    ([row(counts(1, 11, 9, 3))], 0, MONDAY,
     "Latest audit 27 Nov 17:56 UTC: 12 problems need attention (9 to fix, 3 to open in a browser)",
     "Next audit Mon 30 Nov 06:00 UTC. No report waits to be mailed."),
    ([row(counts(0, 5, 5, 0))], 2, MONDAY,
     "Latest audit 27 Nov 17:56 UTC: 5 problems need attention (all to fix)",
     "Next audit Mon 30 Nov 06:00 UTC. 2 messages not sent yet (sending failed): "
     "the service tries again."),
    ([row(counts(1, 0, 0, 1))], 1, None,
     "Latest audit 27 Nov 17:56 UTC: 1 problem needs attention (to open in a browser)",
     "1 message not sent yet (sending failed): the monitor's next run tries again; see the Mail column."),
    ([row(counts(0, 0, 0, 0))], None, ServiceFacts(None, running=True),
     "Latest audit 27 Nov 17:56 UTC: nothing needs fixing",
     "An audit is running now: its report appears here when it ends."),
    ([row(counts(0, 0, 0, 0), unread="not fetched")], 0, None,
     "Latest audit 27 Nov 17:56 UTC: no page could be fetched: nothing was checked", "No report waits to be mailed."),
    ([row(counts(2, 1, 3, 0), unread="2 of 23 pages not fetched")], 0, ServiceFacts(None, running=False),
     "Latest audit 27 Nov 17:56 UTC: 3 problems need attention (all to fix) (2 of 23 pages not fetched)",
     "No audit is scheduled. No report waits to be mailed."),
    # saved before the counts were split: the total only
    ([row(counts(4, 8))], 0, None, "Latest audit 27 Nov 17:56 UTC: 12 problems need attention", "No report waits to be mailed."),
    # last year's
    ([row(counts(1, 0, 1, 0), started="2025-12-29T06:00:00+00:00")], None, None,
     "Latest audit 29 Dec 2025 06:00 UTC: 1 problem needs attention (to fix)", ""),
    ([], 0, MONDAY, "", "Next audit Mon 30 Nov 06:00 UTC. No report waits to be mailed."),
])
def test_the_summary_says_the_latest_audit_the_next_one_and_the_outbox(
        rows: list[dict[str, Any]], outbox: int | None, service: ServiceFacts | None, lead: str,
        rest: str) -> None:
    source = Source("db-id", outbox=outbox)
    summary = index_summary(rows, source, service, NOW)
    assert (f"{summary.latest}: {summary.state}" if summary.latest else "") == lead
    assert " ".join(s for s in (summary.service, summary.outbox) if s) == rest
    assert summary.report == (rows[0]["name"] if rows else "")


def test_the_summary_and_the_table_escape_what_came_from_the_web(tmp_path: Path) -> None:
    """The site's name may come from a page's <title>; a report's name is
    only ever one `save_report` gave (others are not listed)."""
    data = {"format": "citation-monitor-audit", "version": 2, "site": "x",
            "run": {"id": 3, "started_at": "2026-11-27T17:56:03+00:00", "partial": False},
            "counts": counts(1, 2, 2, 1)}
    (tmp_path / "report-2026-11-27-run-3.html").write_text("<p>report</p>", encoding="utf-8")
    (tmp_path / "report-2026-11-27-run-3.json").write_text(json.dumps(data), encoding="utf-8")
    (tmp_path / "report-2026-11-27-run-4<b>.html").write_text("<p>not a report</p>", encoding="utf-8")
    page = render_index(tmp_path, site='<script>alert(1)</script>"', source=Source("db-id", outbox=0),
                        service=MONDAY, now=NOW)
    tags: list[str] = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: tags.append(tag)  # type: ignore[method-assign]
    parser.feed(page)
    assert "script" not in tags
    assert "<h1>Link audits for &lt;script&gt;alert(1)&lt;/script&gt;&#34;</h1>" in page  # styles by class
    assert "run-4" not in page
    assert "3 problems need attention (2 to fix, 1 to open in a browser)" in text_of(page)


@pytest.mark.parametrize("running", [True, False])
def test_the_served_index_reloads_itself_while_an_audit_runs(tmp_path: Path, running: bool) -> None:
    """Review 15b #11: "An audit is running now" stayed on a tab left open
    after the audit ended; the page reloads every 30 s while one runs (a
    meta refresh: the CSP allows no script), and never otherwise."""
    page = render_index(tmp_path, site="x", source=Source("db-id", outbox=0),
                        service=ServiceFacts(None, running=running), now=NOW)
    assert ('<meta http-equiv="refresh" content="30">' in page) is running
    assert ("An audit is running now" in text_of(page)) is running
    assert "http-equiv" not in render_index(tmp_path, site="x", now=NOW)  # the file `report` writes


def test_the_index_says_an_audit_runs_outside_the_service(tmp_path: Path) -> None:
    """Review 15b #3: an audit by `monitor run` (cron) or `check` was
    invisible on the dashboard while it ran."""
    facts = ServiceFacts.from_health({"next_run": "2026-11-30T06:00:00+00:00", "running": False,
                                      "running_elsewhere": "process 4242 on vm, since 07:28:03 UTC"})
    page = render_index(tmp_path, site="x", source=Source("db-id", outbox=0), service=facts, now=NOW)
    assert ("An audit is running now, started outside the service (monitor run or check: "
            "process 4242 on vm, since 07:28:03 UTC).") in text_of(page)
    assert '<meta http-equiv="refresh" content="30">' in page
    quiet = ServiceFacts.from_health({"next_run": "2026-11-30T06:00:00+00:00", "running": False,
                                      "running_elsewhere": None})
    assert "running now" not in text_of(render_index(tmp_path, site="x", service=quiet, now=NOW))
