"""The folder of saved reports: whose reports it holds, and what its index says.

End to end where it matters (the CLI as a subprocess on the simulated site,
real SQLite files, a real mail sink); the index's rows from saved JSON heads.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from monitor.demo.run import MailSink
from monitor.demo.site import SimulatedSite
from monitor.store import DATABASE_ID_KEY, Store
from reports.render import ForeignFolder, Source, prune_saved, refuse_foreign, render_index
from simkit import run_monitor, site_config

UTC = dt.timezone.utc


def second_config(tmp_path: Path, first: Path, name: str) -> Path:
    """A copy of `first` with its own database, the same report.dir (a trial
    configuration kept beside the real one, as a webmaster does)."""
    text = first.read_text(encoding="utf-8")
    db = re.search(r'\[database\]\npath = "([^"]+)"', text)
    assert db
    other = tmp_path / f"{name}.toml"
    other.write_text(text.replace(db.group(1), str(tmp_path / f"{name}.db")), encoding="utf-8")
    return other


def report_path(out: str) -> Path:
    return Path(out.split("report: ")[1].split()[0])


# -- the database's id -------------------------------------------------------------


def test_each_database_has_its_own_id_kept_across_opens(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.db") as a, Store.open(tmp_path / "b.db") as b:
        first, other = a.database_id, b.database_id
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != other
    with Store.open(tmp_path / "a.db") as a:
        assert a.database_id == first


def test_a_database_made_before_ids_gets_one_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:  # back to the file as m006 left it
        conn.execute("DELETE FROM meta WHERE key = ?", (DATABASE_ID_KEY,))
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm007_database_id'")
    with Store.open(path) as store:
        made = store.database_id
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    with Store.open(path) as store:
        assert store.database_id == made


# -- two databases, one report.dir ----------------------------------------------------


async def test_a_second_database_never_overwrites_the_reports_of_the_first(
        sim_site: SimulatedSite, tmp_path: Path) -> None:
    """Walkthrough 9, finding 6: a trial configuration with its own database
    and the real one's `[report] dir` replaced the real week's report (same
    date, run 1) and its index without a word. Now: exit 2, naming the
    folder and both databases, and nothing in the folder changes."""
    real = site_config(tmp_path, sim_site)
    code, _, err = await run_monitor("check", "--config", str(real))
    assert code == 0, err
    code, out, err = await run_monitor("report", "--config", str(real))
    assert code == 0, err
    saved = report_path(out)
    data = json.loads(saved.with_suffix(".json").read_text(encoding="utf-8"))
    with Store.open(tmp_path / "monitor.db") as store:
        assert data["database"] == {"id": store.database_id, "file": "monitor.db", "config": "monitor.toml"}
    assert list(data)[-1] == "database"  # added at the end: no field moved
    before = {p.name: p.read_bytes() for p in saved.parent.iterdir()}

    trial = second_config(tmp_path, real, "trial")
    code, _, err = await run_monitor("check", "--config", str(trial))
    assert code == 0, err
    code, out, err = await run_monitor("report", "--config", str(trial))
    assert code == 2, (out, err)
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"{trial}: report.dir: {saved.parent} holds reports of another database " \
           "(monitor.db of monitor.toml)" in line
    assert str(tmp_path / "trial.db") in line and "Nothing was written" in line
    assert {p.name: p.read_bytes() for p in saved.parent.iterdir()} == before

    # The weekly job is refused before its audit: no run is recorded for nothing.
    fresh = second_config(tmp_path, real, "fresh")
    code, out, err = await run_monitor("run", "--config", str(fresh))
    assert code == 2 and "holds reports of another database (monitor.db of monitor.toml)" in err, (out, err)
    with Store.open(tmp_path / "fresh.db") as store:
        assert store.runs() == []
    assert {p.name: p.read_bytes() for p in saved.parent.iterdir()} == before

    # Elsewhere (--out), the trial's report is written; the real one still reports into its folder.
    code, out, err = await run_monitor("report", "--config", str(trial), "--out", str(tmp_path / "trial"))
    assert code == 0, err
    code, out, err = await run_monitor("report", "--config", str(real))
    assert code == 0, err


async def test_a_database_deleted_and_made_anew_is_said_as_such(sim_site: SimulatedSite, tmp_path: Path) -> None:
    """Walkthrough 9b #7: the same config with its database file deleted and
    made anew was refused as "reports of another database (monitor.db of
    monitor.toml) ... this configuration's database is .../monitor.db", which
    read as a contradiction: it says the database was made anew."""
    config = site_config(tmp_path, sim_site)
    for command in ("check", "report"):
        code, _, err = await run_monitor(command, "--config", str(config))
        assert code == 0, err
    for leftover in tmp_path.glob("monitor.db*"):
        leftover.unlink()
    code, _, err = await run_monitor("check", "--config", str(config))
    assert code == 0, err
    code, _, err = await run_monitor("report", "--config", str(config))
    assert code == 2, err
    assert ("holds reports of an earlier database of the same name (monitor.db of monitor.toml, deleted "
            "and made anew since: its history is not this one's)") in err, err


def _old_report(folder: Path, run: int, started: dt.datetime) -> None:
    """A report saved before reports named their database (no "database" key)."""
    name = f"report-{started.date().isoformat()}-run-{run}"
    (folder / f"{name}.html").write_text("<html></html>", encoding="utf-8")
    (folder / f"{name}.json").write_text(json.dumps(
        {"format": "citation-monitor-audit", "version": 2, "site": "www.sclero.org",
         "run": {"id": run, "started_at": started.isoformat(), "partial": False},
         "counts": {"checked": 3}}), encoding="utf-8")


T0 = dt.datetime(2026, 11, 23, 6, 0, 1, 123456, tzinfo=UTC)


@pytest.mark.parametrize(("runs", "written", "refused"), [
    ({1: T0}, T0, False),                          # this database's own run 1: adopted
    ({}, T0, False),                               # a run pruned since (or never known): adopted
    ({1: T0 + dt.timedelta(hours=3)}, T0, True),   # this database's run 1 began at another time
    ({1: T0}, T0.replace(microsecond=0), False),   # the JSON's whole seconds (since session 12): the same start
    ({1: T0 + dt.timedelta(seconds=1)}, T0.replace(microsecond=0), True),  # a second later: another run
])
def test_an_old_report_without_its_database_is_adopted_unless_proven_anothers(
        tmp_path: Path, runs: dict[int, dt.datetime], written: dt.datetime, refused: bool) -> None:
    """Decided: a report saved before reports named their database is taken
    as this database's (an upgrade must not refuse every folder there is),
    unless its run number began at another time in this database: then it
    is another database's (or one made anew), whose index would mix. To the
    second: the report's JSON gives whole seconds, the database microseconds."""
    _old_report(tmp_path, 1, written)
    source = Source("a" * 32, "monitor.db", "monitor.toml", runs=runs, path="/srv/monitor.db")
    if not refused:
        refuse_foreign(tmp_path, source)
        return
    with pytest.raises(ForeignFolder) as caught:
        refuse_foreign(tmp_path, source)
    assert ("holds reports of another database (its run 1 began 23 Nov 2026 06:00:01 UTC, this "
            f"database's run 1 began {runs[1]:%d %b %Y %H:%M:%S} UTC): report-2026-11-23-run-1.html; this "
            "configuration's database is /srv/monitor.db") in str(caught.value)


def test_an_index_made_from_another_database_is_refused(tmp_path: Path) -> None:
    theirs = Source("b" * 32, "trial.db", "trial.toml")
    (tmp_path / "index.html").write_text(render_index(tmp_path, site="www.sclero.org", source=theirs),
                                         encoding="utf-8")
    refuse_foreign(tmp_path, theirs)  # its own index
    with pytest.raises(ForeignFolder, match=r"another database \(trial\.db of trial\.toml\): index\.html"):
        refuse_foreign(tmp_path, Source("a" * 32, "monitor.db", "monitor.toml"))


# -- the index's rows -------------------------------------------------------------------


def _saved(folder: Path, run: int, started: dt.datetime, counts: dict[str, int], *,
           partial: bool = False, database: str | None = None) -> str:
    """A saved report's pair; `database`: the id its JSON names last, as
    `save_report` writes it (compact, after `first_report`)."""
    name = f"report-{started.date().isoformat()}-run-{run}"
    (folder / f"{name}.html").write_text("<html></html>", encoding="utf-8")
    named = {} if database is None else {"first_report": False,
                                         "database": {"id": database, "file": f"{database[:4]}.db"}}
    tmp = folder / f"{name}.json.tmp"  # then renamed, as `save_report` does: a new file each time
    tmp.write_text(json.dumps(
        {"format": "citation-monitor-audit", "version": 2, "site": "www.sclero.org",
         "run": {"id": run, "started_at": started.isoformat(), "partial": partial},
         "counts": counts, **named}, separators=(",", ":")), encoding="utf-8")
    tmp.replace(folder / f"{name}.json")
    return name + ".html"


def _rows(index: str) -> list[str]:
    """Each table row's text, tags dropped, in page order."""
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
            for r in re.findall(r"<tr>(.*?)</tr>", index, re.S)]


ZEROS = {"checked": 0, "new": 0, "still": 0, "fixed": 0, "content": 0}


OURS, THEIRS = "a" * 32, "b" * 32


@pytest.mark.parametrize("theirs_at", [T0 - dt.timedelta(hours=5), T0 + dt.timedelta(hours=5)])
def test_the_summary_opens_this_databases_latest_report_not_anothers(
        tmp_path: Path, theirs_at: dt.datetime) -> None:
    """Review 10 #5: a database made anew starts at run 1 again; the folder
    keeps the earlier database's run 40 of the same day. The summary took
    the highest run number, and "open the report" opened the other
    database's. It speaks of this database's newest report (one naming no
    database too: saved before reports did); the table lists both, the same
    day's by their start time."""
    ours = _saved(tmp_path, 3, T0, {**ZEROS, "new": 2, "needs_fixing": 2, "needs_a_person": 0},
                  database=OURS)
    theirs = _saved(tmp_path, 40, theirs_at, {**ZEROS, "new": 9, "needs_fixing": 9, "needs_a_person": 0},
                    database=THEIRS)
    index = re.sub(r' style="[^"]*"', "", render_index(tmp_path, site="www.sclero.org",
                                                       source=Source(OURS, runs={3: T0})))
    lead = re.search(r'Latest audit ([^<]*): <b>([^<]*)</b>: <a href="([^"]+)">open the report', index)
    assert lead is not None and lead.groups() == ("23 Nov 06:00 UTC", "2 problems need attention (all to fix)", ours)
    listed = re.findall(r'href="(report-[^"]+\.html)"', index[index.index("<table"):])
    assert listed == ([ours, theirs] if theirs_at < T0 else [theirs, ours])
    old = _saved(tmp_path, 2, T0 - dt.timedelta(days=7), {**ZEROS, "new": 1}, database=None)
    (tmp_path / ours).unlink()
    index = render_index(tmp_path, site="www.sclero.org", source=Source(OURS, runs={3: T0}))
    assert re.search(r'<a href="([^"]+)">open the report', index).group(1) == old  # type: ignore[union-attr]


def test_the_index_reads_again_only_the_reports_that_changed(tmp_path: Path) -> None:
    """Review 10 #6: the service renders the index for each request; the
    rows and the table are kept (`SAVED_ROWS`, counting the JSON files it
    reads) until a report is written, added or removed, or a Mail cell
    changes, and each of those shows at once."""
    from reports.render import SAVED_ROWS

    first = _saved(tmp_path, 1, T0, {**ZEROS, "checked": 40}, database=OURS)
    _saved(tmp_path, 2, T0 + dt.timedelta(days=7), {**ZEROS, "checked": 41}, database=OURS)
    source = Source(OURS, runs={1: T0, 2: T0 + dt.timedelta(days=7)}, mail={1: (1,), 2: (0, 1)})

    def index(source: Source = source) -> str:
        return render_index(tmp_path, site="www.sclero.org", source=source, now=T0)

    def reads(action: Any) -> tuple[int, list[str]]:
        before = SAVED_ROWS.reads
        page = action()
        return SAVED_ROWS.reads - before, _rows(page)[1:]

    read, rows = reads(index)
    assert read == 2 and [r.split()[4] for r in rows] == ["41", "40"]
    assert reads(index) == (0, rows)  # the next request: nothing read again
    _saved(tmp_path, 2, T0 + dt.timedelta(days=7), {**ZEROS, "checked": 42}, database=OURS)  # written again
    read, rows = reads(index)
    assert read == 1 and [r.split()[4] for r in rows] == ["42", "40"]
    _saved(tmp_path, 3, T0 + dt.timedelta(days=14), {**ZEROS, "checked": 43}, database=OURS)
    read, rows = reads(index)
    assert read == 1 and [r.split()[4] for r in rows] == ["43", "42", "40"]
    (tmp_path / first).unlink()
    (tmp_path / first).with_suffix(".json").unlink()
    read, rows = reads(index)
    assert read == 0 and [r.split()[4] for r in rows] == ["43", "42"]
    assert "not sent yet: will retry" in rows[1]
    read, rows = reads(lambda: index(replace(source, mail={2: (1,)})))  # the message went out
    assert read == 0 and rows[1].endswith("mailed JSON") and "not sent yet" not in rows[1]


def test_a_run_that_fetched_no_page_reads_not_fetched_not_zeros(tmp_path: Path) -> None:
    _saved(tmp_path, 1, T0, {**ZEROS, "pages": 2, "pages_failed": 2})
    _saved(tmp_path, 2, T0 + dt.timedelta(days=7), {**ZEROS, "checked": 40, "new": 3, "pages": 23,
                                                      "pages_failed": 1})
    _saved(tmp_path, 3, T0 + dt.timedelta(days=14), {**ZEROS, "checked": 41, "pages": 23, "pages_failed": 0})
    rows = _rows(render_index(tmp_path, site="www.sclero.org"))
    assert rows[1].startswith("2026-12-07 06:00 UTC 3 41 0 0 0 0")
    assert "not fetched" not in rows[1]
    assert rows[2].startswith("2026-11-30 06:00 UTC 2 40 1 of 23 pages not fetched 3 0 0 0")
    assert rows[3].startswith("2026-11-23 06:00 UTC 1 not fetched: nothing was checked")
    assert " 0 0" not in rows[3]


@pytest.mark.parametrize("named", [True, False])
def test_the_first_reports_row_says_nothing_was_compared(tmp_path: Path, named: bool) -> None:
    """Walkthrough 10 #9, #10: the first report's row read "0 | 0" for still
    open and fixed, as if compared with a report; it reads "–". Its JSON
    keeps numbers there, and says `first_report` last (read from the file's
    tail, as the database it names is), before or without that database."""
    from monitor.config import ReportSettings
    from monitor.types import LinkKind, LinkResult, LinkStatus, PageRecord, RunInfo
    from reports.audit import build_audit
    from reports.render import save_report

    dead = LinkResult(page=PAGE, url="https://journal.example/gone", text="Gone", section="",
                      kind=LinkKind.CITATION, status=LinkStatus.EXPIRED, reason="http_410",
                      http_status=410, final_url=None, suggested_url=None, strikes=3,
                      failing_since=T0 - dt.timedelta(days=3), checked_at=T0, entry_title="Gone")
    source = Source("a" * 32, runs={1: T0, 2: T0}) if named else None
    for run_id, previous in ((1, None), (2, [dead])):
        when = T0 + dt.timedelta(days=7 * (run_id - 1))
        run = RunInfo(id=run_id, started_at=when, finished_at=when, status="finished")
        audit = build_audit(run, [dead], [PageRecord(run_id=run_id, url=PAGE, status="ok")],
                            previous_links=previous, previous_pages=None, states={}, now=when,
                            settings=ReportSettings(), site_name="www.sclero.org")
        saved = save_report(audit, tmp_path, source)
        data = json.loads(saved.json.read_text(encoding="utf-8"))
        assert (data["counts"]["still"], data["counts"]["fixed"], data["first_report"]) == (
            run_id - 1, 0, run_id == 1)
        assert list(data)[-1] == ("database" if named else "first_report")
    rows = [html.unescape(r) for r in _rows(render_index(tmp_path, site="www.sclero.org", source=source))]
    assert rows[1].startswith("2026-11-30 06:00 UTC 2 1 0 1 0 "), rows[1]  # checked, new, still, fixed
    assert rows[2].startswith("2026-11-23 06:00 UTC 1 1 1 \u2013 \u2013 "), rows[2]


def test_a_check_of_some_pages_is_listed_apart_below_the_audits(tmp_path: Path) -> None:
    """Walkthrough 9, finding 9: an editor's failed `check --page` headed the
    list, all zeros, above the weekly audits."""
    audit = _saved(tmp_path, 1, T0, {**ZEROS, "checked": 90, "new": 7, "pages": 2})
    check = _saved(tmp_path, 2, T0 + dt.timedelta(hours=9), {**ZEROS, "pages": 1, "pages_failed": 1},
                   partial=True)
    index = render_index(tmp_path, site="www.sclero.org")
    links = list(dict.fromkeys(re.findall(r'href="(report-[^"]+\.html)"', index)))  # the summary links the latest too
    assert links == [audit, check]  # the first report linked is the audit
    assert index.index("Checks of some pages") < index.index(check) and \
        index.index(audit) < index.index("Checks of some pages")
    assert "not fetched" in _rows(index)[-1]


def test_the_index_says_which_reports_were_mailed(tmp_path: Path) -> None:
    for run in (1, 2, 3):
        _saved(tmp_path, run, T0 + dt.timedelta(days=run), {**ZEROS, "pages": 1})
    _saved(tmp_path, 4, T0 + dt.timedelta(days=4), {**ZEROS, "pages": 1})
    source = Source("a" * 32, runs={run: T0 for run in (1, 2, 3)}, mail={1: (1, 0), 2: (0, 1)})
    rows = _rows(render_index(tmp_path, site="www.sclero.org", source=source))
    # run 4 is not in the history (pruned with its outbox rows): nothing is claimed of its mail
    said = [next((w for w in ("not mailed", "not sent yet: will retry", "mailed") if w in r), "") for r in rows[1:]]
    assert said == ["", "not mailed", "not sent yet: will retry", "mailed"]  # runs 4, 3, 2, 1


@pytest.mark.parametrize(("state", "said"), [
    ((2, 0, 0), "mailed"),
    ((1, 1, 0), "partly mailed"),  # the owner's part went out, the full report waits
    ((1, 0, 1), "partly mailed"),  # the full report refused for good (walkthrough 9b #5)
    ((0, 2, 0), "not sent yet: will retry"),
    ((0, 0, 1), "not mailed: refused by the mail server"),
    ((1, 0), "mailed"),  # the (sent, waiting) pair of before
])
def test_the_index_says_mailed_only_when_every_message_went_out(
        tmp_path: Path, state: tuple[int, ...], said: str) -> None:
    _saved(tmp_path, 1, T0, {**ZEROS, "pages": 1})
    index = render_index(tmp_path, site="www.sclero.org",
                         source=Source("a" * 32, runs={1: T0}, mail={1: state}))
    (row,) = _rows(index)[1:]
    assert row.endswith(f"{said} JSON"), row
    cell = re.search(r"<td[^>]*>" + re.escape(said) + "</td>", index)
    assert cell is not None
    # The cell's colour, by its class in the page's <style> block (the index is served, not mailed)
    (name,) = re.findall(r'class="([^"]*)"', cell.group(0))
    rule = re.search(r"\n\." + name + r" \{([^}]*)\}", index)
    assert rule is not None, name
    # green for mailed only; what needs a look stands out (the published page names no address)
    assert ("#1e6b3a" in rule.group(1)) == (said == "mailed")
    assert ("#b45309" in rule.group(1)) == (said.startswith(("partly", "not mailed:")))
    # waiting is neither done nor failed: not the grey of "not mailed" (walkthrough 9b #12)
    assert ("#8a5a00" in rule.group(1)) == (said == "not sent yet: will retry")


async def test_the_index_marks_the_mailed_report_and_the_rendered_one(
        sim_site: SimulatedSite, mail_sink: MailSink, tmp_path: Path) -> None:
    """`run` mails its report; `check` then `report` only renders one: the
    index told them apart by nothing (walkthrough 9, finding 9)."""
    config = site_config(tmp_path, sim_site, smtp_port=mail_sink.port)
    code, out, err = await run_monitor("run", "--config", str(config))
    assert code == 0 and len(mail_sink.received) == 1, err
    code, _, err = await run_monitor("check", "--config", str(config))
    assert code == 0, err
    code, out, err = await run_monitor("report", "--config", str(config))
    assert code == 0, err
    rows = _rows((report_path(out).parent / "index.html").read_text(encoding="utf-8"))
    assert [(r.split()[3], "not mailed" in r, r.count("mailed")) for r in rows[1:]] == [
        ("2", True, 1), ("1", False, 1)]


# -- a check of some pages speaks of itself, not of the week ----------------------------

PAGE = "https://www.sclero.org/scleroderma/raynauds/a-to-z"


@pytest.mark.parametrize(("partial", "failed", "top"), [
    (True, True, "No page could be fetched: nothing was checked."),
    (False, True, "No page could be fetched this week: nothing was checked."),
    (True, False, "Nothing needs fixing in this check."),
    (False, False, "Nothing needs fixing this week."),
])
def test_a_check_of_some_pages_says_this_check_not_this_week(partial: bool, failed: bool, top: str) -> None:
    """An editor's `check --page` of a mistyped page printed "No page could be
    fetched this week" (walkthrough 9, finding 9): it is no week's audit."""
    from monitor.config import ReportSettings
    from monitor.types import PageRecord, RunInfo
    from reports.audit import build_audit
    from reports.render import headline, render_html, render_text

    run = RunInfo(id=7, started_at=T0, finished_at=T0, status="finished", partial=partial)
    page = PageRecord(run_id=7, url=PAGE, status="error" if failed else "ok",
                      error="HTTP 404: the page is not at this address" if failed else "")
    audit = build_audit(run, [], [page], previous_links=None, previous_pages=None, states={}, now=T0,
                        settings=ReportSettings(), site_name="www.sclero.org")
    assert headline(audit) == top
    for text in (render_text(audit), render_html(audit)):
        assert ("this week" in text) is not partial


# -- keeping the folder bounded (`[report] keep_weeks`) ---------------------------------------------


def test_reports_older_than_keep_weeks_are_removed_and_the_index_follows(tmp_path: Path) -> None:
    """Walkthrough 11 #2: a weekly report is 131 MB at 100,000 links and no
    code ever removed one (6.6 GiB a year). Only this database's reports go,
    those saved before reports named their database included; another
    database's are not ours to remove; the index no longer lists them."""
    source = Source(OURS, "monitor.db", "monitor.toml", runs={})
    (tmp_path / "index.html").write_text(render_index(tmp_path, site="www.sclero.org", source=source))
    week = dt.timedelta(weeks=1)
    old = _saved(tmp_path, 1, T0 - 110 * week, {**ZEROS, "new": 1}, database=OURS)
    unnamed = _saved(tmp_path, 2, T0 - 105 * week, {**ZEROS, "new": 1}, database=None)
    theirs = _saved(tmp_path, 7, T0 - 106 * week, {**ZEROS, "new": 1}, database=THEIRS)
    edge = _saved(tmp_path, 3, T0 - 104 * week, {**ZEROS, "new": 1}, database=OURS)
    recent = _saved(tmp_path, 4, T0, {**ZEROS, "new": 1}, database=OURS)
    removed = prune_saved(tmp_path, (T0 - 104 * week).date(), source)
    assert sorted(removed) == sorted([old, old.replace(".html", ".json"), unnamed, unnamed.replace(".html", ".json")])
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["index.html", theirs, theirs.replace(".html", ".json"), edge,
                           edge.replace(".html", ".json"), recent, recent.replace(".html", ".json")])
    index = (tmp_path / "index.html").read_text()
    assert old not in index and unnamed not in index and edge in index and recent in index
    assert prune_saved(tmp_path, (T0 - 104 * week).date(), source) == []  # nothing more, nothing rewritten


async def test_the_weekly_job_removes_the_reports_past_keep_weeks(
        sim_site: SimulatedSite, mail_sink: MailSink, tmp_path: Path) -> None:
    """`monitor run` once with a report of 2 years ago in its folder (as the
    folder of a service running since then holds): removed; with
    `keep_weeks = 0` kept."""
    config = site_config(tmp_path, sim_site, smtp_port=mail_sink.port)
    text = config.read_text(encoding="utf-8")
    folder = Path(re.search(r'\[report\]\ndir = "([^"]+)"', text).group(1))  # type: ignore[union-attr]
    folder.mkdir(parents=True, exist_ok=True)
    ancient = _saved(folder, 99, dt.datetime.now(UTC) - dt.timedelta(weeks=120), {**ZEROS, "new": 1})
    keep = config.with_name("keep.toml")
    keep.write_text(text.replace('[report]\n', '[report]\nkeep_weeks = 0\n'), encoding="utf-8")
    code, out, err = await run_monitor("run", "--config", str(keep))
    assert code == 0, err
    assert (folder / ancient).exists()
    code, out, err = await run_monitor("run", "--config", str(config))
    assert code == 0, err
    assert not (folder / ancient).exists() and not (folder / ancient.replace(".html", ".json")).exists()
    assert ancient not in (folder / "index.html").read_text()


def test_the_weekly_pruning_removes_what_a_killed_report_left_a_day_ago(tmp_path: Path) -> None:
    """Review 11 #3: a `monitor report` killed outright (SIGKILL, a power
    cut) leaves NAME.json.tmp (113 MB at 100,000 links) that nothing removed
    until the same run was reported again. Older than a day: removed; a
    fresh one may be a report being written now: kept."""
    source = Source(OURS, "monitor.db", "monitor.toml", runs={})
    kept = _saved(tmp_path, 4, T0, {**ZEROS, "new": 1}, database=OURS)
    old_tmp = tmp_path / "report-2026-11-16-run-3.json.tmp"
    old_tmp.write_bytes(b'{"format":')
    fresh_tmp = tmp_path / "report-2026-11-23-run-4.html.tmp"
    fresh_tmp.write_text("<html>")
    old_link = tmp_path / "report-2026-11-16-run-3.html.old"
    old_link.write_text("<html>")
    day_ago = (dt.datetime.now() - dt.timedelta(days=1, minutes=5)).timestamp()
    for path in (old_tmp, old_link):
        os.utime(path, (day_ago, day_ago))
    removed = prune_saved(tmp_path, (T0 - dt.timedelta(weeks=104)).date(), source)
    assert sorted(removed) == sorted([old_tmp.name, old_link.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [kept, kept.replace(".html", ".json"), fresh_tmp.name])
