"""The weekly job end to end: `monitor run`, `monitor report --send`, `monitor demo`.

Real parts only: the simulated site on loopback (monitor/demo/site.py), a
real aiosmtpd server receiving the mail, real SQLite files, the CLI run as a
subprocess the way cron or a webmaster runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import socket
import sqlite3
import ssl
import sys
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult

from monitor.config import EmailSettings, load_settings
from monitor.crawl import run_audit
from monitor.demo.run import MailSink, _require_loopback, demo_settings
from monitor.errors import MonitorError
from monitor.types import PageRecord
from monitor.demo.site import SimulatedSite
from monitor.jobs import report_job
from simkit import run_monitor, site_config


@pytest.fixture
async def site(sim_site: SimulatedSite) -> SimulatedSite:
    return sim_site


@pytest.fixture
async def sink(mail_sink: MailSink) -> MailSink:
    return mail_sink


def parse(path: Path) -> EmailMessage:
    return message_from_bytes(path.read_bytes(), policy=default_policy)  # type: ignore[return-value]


def write_config(tmp_path: Path, site: SimulatedSite, smtp_port: int) -> Path:
    return site_config(tmp_path, site, smtp_port=smtp_port)


async def test_run_then_report_send_again(site: SimulatedSite, sink: MailSink, tmp_path: Path) -> None:
    config = write_config(tmp_path, site, sink.port)
    code, out, err = await run_monitor("run", "--config", str(config))
    assert code == 0, err
    assert len(sink.received) == 1
    first = parse(sink.received[0])
    assert str(first["Subject"]).startswith("Link audit for www.sclero.org, ")
    assert first["To"] == "webmaster@sclero.org"
    assert first.get_content_type() == "multipart/alternative"
    html_path = Path(out.split("report: ")[1].split()[0])
    assert html_path.is_file() and (html_path.parent / "index.html").is_file()

    # The weekly job again: a new run, a new report, mailed once.
    code, _, err = await run_monitor("run", "--config", str(config))
    assert code == 0, err
    assert len(sink.received) == 2
    second = parse(sink.received[1])
    assert second["Message-ID"] != first["Message-ID"]

    # `report` alone renders without sending; `report --send` sends again on purpose.
    code, out, err = await run_monitor("report", "--config", str(config), "--run", "1",
                                   "--out", str(tmp_path / "past"))
    assert code == 0, err
    assert len(sink.received) == 2
    assert list((tmp_path / "past").glob("report-*-run-1.html"))
    code, out, err = await run_monitor("report", "--config", str(config), "--send")
    assert code == 0, err
    assert len(sink.received) == 3
    assert parse(sink.received[2])["Message-ID"] == second["Message-ID"]

    # Without [report] base_url the webmaster's copy says where the full
    # report is saved, and how to link it instead (was "The full report is
    # kept by the webmaster.", to the webmaster: review 13 #5).
    saved = next(html_path.parent.glob("report-*-run-2.html")).resolve()
    for kind in ("html", "plain"):
        part = second.get_body((kind,)).get_content()
        assert f"The full report is saved on the monitor's machine: {saved}" in part, part[:2000]
        assert "set [report] base_url to link it here" in part
        assert "kept by the webmaster" not in part

    code, _, err = await run_monitor("report", "--config", str(config), "--run", "99")
    assert code == 2 and "no run 99" in err and "Traceback" not in err  # a usage mistake


def _flagged(report_json: Path) -> set[tuple[str, str]]:
    data = json.loads(report_json.read_text(encoding="utf-8"))
    return {(p["link"]["page"], p["link"]["url"])
            for group in ("needs_fixing", "needs_a_person") for g in data[group]
            for s in g["sections"] for e in s["entries"] for p in e["problems"]}


async def test_a_reported_check_of_one_page_leaves_the_weekly_reports_right(
        site: SimulatedSite, sink: MailSink, tmp_path: Path) -> None:
    """The weekly report, then an editor's `check --page` of one page, reported
    and sent by hand: that report says it covers some pages, and next week's
    report still compares with last week's audit. Compared with the partial
    run, every problem on the other page would be "new" again."""
    config = write_config(tmp_path, site, sink.port)
    code, out, err = await run_monitor("run", "--config", str(config))
    assert code == 0, err
    week1 = _flagged(Path(out.split("report: ")[1].split()[0]).with_suffix(".json"))
    other_page = {page for page, _ in week1} - {site.pages[0]}
    assert other_page and any(page in other_page for page, _ in week1)

    code, out, err = await run_monitor("check", "--config", str(config), "--page", site.pages[0],
                                       "--format", "json")
    assert code == 0, err
    checked = json.loads(out)
    assert checked["run"]["id"] == 2 and checked["run"]["partial"] is True
    assert {l["page"] for l in checked["links"]} == {site.pages[0]}

    code, out, err = await run_monitor("report", "--config", str(config), "--send")
    assert code == 0, err
    assert ("note:   run 2 checked only some pages (monitor check --page); "
            "the latest audit of every page is run 1: monitor report --run 1") in out
    mail = parse(sink.received[-1])
    assert str(mail["Subject"]).startswith("Link check of some pages for www.sclero.org, ")
    assert "Only some pages were checked in this run" in mail.get_body(("plain",)).get_content()
    assert "LINK CHECK OF SOME PAGES" in mail.get_body(("html",)).get_content()

    code, out, err = await run_monitor("run", "--config", str(config))
    assert code == 0, err
    week2_json = Path(out.split("report: ")[1].split()[0]).with_suffix(".json")
    week2 = json.loads(week2_json.read_text(encoding="utf-8"))
    assert week2["run"]["id"] == 3 and week2["run"]["partial"] is False
    assert week2["previous_run"]["id"] == 1
    assert week2["counts"]["new"] == len(_flagged(week2_json) - week1)
    assert str(parse(sink.received[-1])["Subject"]).startswith("Link audit for www.sclero.org, ")


async def test_mail_server_down_keeps_the_report_for_the_next_run(
        site: SimulatedSite, tmp_path: Path) -> None:
    # Nothing listens on this port yet: the report stays in the outbox.
    probe = MailSink(tmp_path / "mail")
    await probe.start()
    port = probe.port
    await probe.stop()
    config = write_config(tmp_path, site, port)
    code, out, err = await run_monitor("run", "--config", str(config))
    # Nothing delivered: exit 1, for cron or a systemd timer to tell someone
    # (walkthrough 9 #11); the report itself is saved.
    assert code == 1, err
    assert "report: " in out
    assert "mail:   NOT SENT to webmaster@sclero.org (email.recipients): cannot reach" in err
    # Said once, in a reader's words: no log line with the outbox's own ids.
    assert "WARNING" not in err and "run-1:all" not in err, err
    # Run from cron, nobody retries it at a given time: say what sends it.
    assert "next attempt" not in err
    assert "goes out with the next `monitor run` or `monitor report --send`" in err
    db = sqlite3.connect(tmp_path / "monitor.db")
    (attempts, due) = db.execute("SELECT attempts, next_attempt_at FROM outbox").fetchone()
    assert attempts == 1 and due
    # A week passes: the backoff is long over by the next weekly run.
    db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
    db.commit()
    db.close()

    # The server is back: the next run delivers the kept report first, then its own.
    sink = MailSink(tmp_path / "mail")
    loop = asyncio.get_running_loop()
    sink.server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", port)
    try:
        code, _, err = await run_monitor("run", "--config", str(config))
        assert code == 0, err
        ids = [parse(p)["Message-ID"] for p in sink.received]
        assert len(ids) == 2 and len(set(ids)) == 2
        dbid = db_id(tmp_path / "monitor.db")[:8]
        assert ids[0].startswith(f"<report-{dbid}-1-") and ids[1].startswith(f"<report-{dbid}-2-")
    finally:
        await sink.stop()


class _RefusingOwners:
    """A mail server that takes the webmaster's report and refuses, at DATA,
    any message for a page owner (a message-level failure: the others go)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(r.startswith("editor@") for r in envelope.rcpt_tos):
            return "554 5.6.0 message refused for this test"
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


@contextlib.asynccontextmanager
async def owner_config_mailing_to(handler: Any, site: SimulatedSite, tmp_path: Path) -> AsyncIterator[Path]:
    """A real SMTP server on loopback answering with `handler`, and a
    config mailing to it whose first page is owned by editor@sclero.org."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler), "127.0.0.1", 0)
    try:
        config = write_config(tmp_path, site, server.sockets[0].getsockname()[1])
        first = f'url = "{site.pages[0]}"\n'
        config.write_text(config.read_text(encoding="utf-8").replace(
            first, first + 'owner = "editor@sclero.org"\n', 1), encoding="utf-8")
        yield config
    finally:
        server.close()
        await server.wait_closed()


async def test_report_send_partly_delivered_says_which_and_exits_1(
        site: SimulatedSite, tmp_path: Path) -> None:
    inbox = _RefusingOwners()
    async with owner_config_mailing_to(inbox, site, tmp_path) as config:
        code, out, err = await run_monitor("check", "--config", str(config))
        assert code == 0, err
        code, out, err = await run_monitor("report", "--config", str(config), "--send")
    assert len(inbox.messages) == 1
    assert code == 1, (out, err)
    assert "sent to webmaster@sclero.org (email.recipients)" in out
    assert "mail:   partly sent: NOT SENT to editor@sclero.org (page owner): " in err
    assert "554" in err and "WARNING" not in err and "run-1:owner" not in err, err


def db_id(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT value FROM meta WHERE key = 'database_id'").fetchone()[0])
    finally:
        db.close()


class _NoWebmaster:
    """A mail server that has no mailbox for webmaster@ (550 at RCPT) and
    takes every other recipient; the address can be 'created' later."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.unknown = {"webmaster@sclero.org"}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.unknown:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered += envelope.rcpt_tos
        return "250 OK"


async def test_a_refused_webmaster_is_said_refused_not_retried_and_not_mailed(
        site: SimulatedSite, tmp_path: Path) -> None:
    """Walkthrough 9b #5 and #6: the owner's part went out, the webmaster's
    was refused (550). The index said "mailed", the terminal promised it
    would "go out with the next run", and `report --send` mailed the editor
    a second copy while the 550 came back."""
    inbox = _NoWebmaster()
    async with owner_config_mailing_to(inbox, site, tmp_path) as config:
        code, out, err = await run_monitor("run", "--config", str(config))
        assert code == 1, (out, err)
        assert inbox.delivered == ["editor@sclero.org"]
        assert "sent to editor@sclero.org (page owner)" in out
        assert ("mail:   partly sent: NOT SENT to webmaster@sclero.org (email.recipients): "
                "the mail server 127.0.0.1:") in err
        assert "550 5.1.1 mailbox unavailable" in err and "refused for good (5xx)" in err
        assert f"check email.recipients in {config}" in err and "not retried" in err
        assert f"`monitor report --config {config} --run 1 --send`" in err
        assert "goes out with the next" not in err and "WARNING" not in err and "ERROR" not in err, err
        index = (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
        assert "partly mailed" in index and ">mailed<" not in index
        assert "webmaster@" not in index and "editor@" not in index  # the index is published

        # The advice followed before fixing anything: the editor gets no second copy.
        code, out, err = await run_monitor("report", "--config", str(config), "--send")
        assert code == 1 and "refused for good" in err, (out, err)
        assert inbox.delivered == ["editor@sclero.org"]
        # The weekly job that follows does not try the refused message again.
        code, out, err = await run_monitor("run", "--config", str(config))
        assert inbox.delivered == ["editor@sclero.org", "editor@sclero.org"], (out, err)  # run 2's part
        assert "run 1's report" not in out + err

        # The address fixed (here, the mailbox created): run 1's report goes out, to it alone.
        inbox.unknown.clear()
        code, out, err = await run_monitor("report", "--config", str(config), "--run", "1", "--send")
        assert code == 0, (out, err)
        assert inbox.delivered[2:] == ["webmaster@sclero.org"]
        rows = re.findall(r"<tr>(.*?)</tr>", (tmp_path / "reports" / "index.html").read_text(
            encoding="utf-8"), re.S)
        run1 = next(r for r in rows if re.search(r"<td[^>]*>1</td>", r))
        assert ">mailed<" in run1, run1


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


async def test_starttls_with_a_private_ca_and_the_password_from_the_environment(
        site: SimulatedSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "mail-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    inbox = _Inbox()
    logins: list[tuple[bytes, bytes]] = []

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret")

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, tls_context=server_ctx, require_starttls=True, authenticator=check),
        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = demo_settings(site, tmp_path, port)
        settings = dataclasses.replace(settings, email=EmailSettings(
            host="127.0.0.1", port=port, security="starttls", username="monitor",
            password_env="TEST_SMTP_PASSWORD", sender="monitor@sclero.org",
            recipients=("webmaster@sclero.org",), ca_file=str(ca_file)))
        outcome = await run_audit(settings)
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
        report = await report_job(settings, run_id=outcome.run.id, send=True)
        assert report.sent == [f"run-{outcome.run.id}:all"]
        assert logins == [(b"monitor", b"s3cret")]
        assert len(inbox.messages) == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_the_demo_without_loopback_fails_saying_why(tmp_path: Path) -> None:
    """A machine whose loopback is down (a container without `lo` up: a
    fresh network namespace, made here with `unshare -n`) cannot run the
    demo: it exits 1 with one line saying loopback is the cause, instead of
    exit 0 after "No page could be fetched" and an empty summary."""
    proc = await asyncio.create_subprocess_exec(
        "unshare", "-n", sys.executable, "-m", "monitor", "demo", "--dir", str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out_b, err_b = await asyncio.wait_for(proc.communicate(), timeout=120)
    out, err = out_b.decode(), err_b.decode()
    if err.startswith("unshare:"):  # not root, or namespaces disabled: unshare itself failed
        pytest.skip(f"cannot make a network namespace here: {err.strip()}")
    assert proc.returncode == 1, (out, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("monitor: the demo could not reach its own simulated site on loopback"), err
    assert "Is the loopback interface (127.0.0.1) up" in last and "Traceback" not in err
    assert "Next:" not in out and "distinct URLs" not in out


@pytest.mark.parametrize("statuses, received, expected", [
    (["ok", "ok"], True, None),
    (["error", "ok"], True, None),  # the demo's own failing pages: a result, not a broken machine
    (["error", "error"], True, "could not reach its own simulated site"),
    ([], True, "could not reach its own simulated site on loopback: its crawl recorded no page"),
    (["ok"], False, "could not be mailed to its own mail sink"),
])
def test_the_demo_refuses_to_report_success_when_its_servers_were_unreachable(
        tmp_path: Path, statuses: list[str], received: bool, expected: str | None) -> None:
    pages = [PageRecord(run_id=1, url=f"https://www.sclero.org/{i}.html", status=status,
                        error="the server could not be reached (Network is unreachable)" if status == "error" else "")
             for i, status in enumerate(statuses)]
    sink = MailSink(tmp_path)
    if received:
        sink.received.append(tmp_path / "message-1.eml")
    if expected is None:
        _require_loopback(pages, sink)
    else:
        with pytest.raises(MonitorError, match=expected):
            _require_loopback(pages, sink)


async def test_demo_runs_offline_and_mails_its_report(tmp_path: Path) -> None:
    code, out, err = await run_monitor("demo", "--dir", str(tmp_path / "demo"))
    assert code == 0, err
    assert "differ from the simulated site's truth" not in err, err
    counted = next(line for line in out.splitlines() if " not checked (email, in-page)" in line)
    links, links_checked, checked, skipped = map(int, re.match(  # type: ignore[union-attr]
        r"(\d+) links: (\d+) checked \((\d+) URLs\) in [\d.]+ s, (\d+) not checked", counted).groups())
    assert links == links_checked + skipped
    # the same counts as the service's: links, URLs requested
    db = sqlite3.connect(tmp_path / "demo" / "monitor.db")
    assert db.execute("SELECT links, urls FROM runs ORDER BY id DESC LIMIT 1").fetchone() == (links, checked)
    db.close()
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith(" "))
    report = Path(lines["HTML report"].strip())
    message = Path(lines["Received message"].strip())
    assert report.is_file() and message.is_file()
    msg = parse(message)
    subject = str(msg["Subject"])
    assert "new problem" in subject and "still open" in subject and "fixed" in subject
    html = report.read_text(encoding="utf-8")
    for heading in ("Needs fixing", "Needs a person", "Cited articles that were retracted"):
        assert heading in html
    # The one retracted record of the simulated PubMed, and nothing else, in the report's data.
    data = json.loads(Path(lines["JSON data"].strip()).read_text(encoding="utf-8"))
    assert data["counts"]["urls"] == checked  # URLs requested, as /healthz says: not the malformed one
    assert (data["counts"]["checked"], data["counts"]["skipped"]) == (links_checked, skipped)
    # Week 1 only watched PubMed's 503 (a first failure); it answers again in
    # week 2: cleared by itself, not an editor's fix.
    assert [f["link"]["url"] for f in data["cleared_by_itself"]] == ["https://pubmed.ncbi.nlm.nih.gov/31197643/"]
    assert data["counts"]["fixed"] == len(data["fixed_since_last"]) == 0
    assert [(i["url"], i["entry"][:21]) for i in data["content_audit"]["retracted"]] == [
        ("https://pubmed.ncbi.nlm.nih.gov/29470812/", "Oral treprostinil red")]
    code, out, err = await run_monitor("history", "https://pubmed.ncbi.nlm.nih.gov/31197643/",
                                   "--config", str(tmp_path / "demo" / "demo.toml"))
    assert code == 0, err
    lines = out.splitlines()
    assert "http_503" in lines[1] and " ok " in lines[2]
    assert lines[-1] == "now: ok"  # fixed since last week: no strikes left
    # the retracted record's history says so, under each check that saw it
    code, out, err = await run_monitor("history", "https://pubmed.ncbi.nlm.nih.gov/29470812/",
                                       "--config", str(tmp_path / "demo" / "demo.toml"))
    assert code == 0, err
    assert out.count("    RETRACTED: PubMed links a retraction notice") == 2, out
    # a moved link's history ends with the address to paste, as the report's row does
    code, out, err = await run_monitor("history", "https://www.ncbi.nlm.nih.gov/pubmed/29713888",
                                       "--config", str(tmp_path / "demo" / "demo.toml"))
    assert code == 0, err
    assert out.splitlines()[-2:] == ["now: moved \u2014 PubMed moved this article to a new address  [permanent_redirect]",
                                     "new address: https://pubmed.ncbi.nlm.nih.gov/29713888/"], out
    # Last week's report rendered again is the report that was sent: the
    # rechecks and this week's checks since then confirmed failures it
    # listed as suspected (it said 17 problems; rendered with today's
    # states, 23), and it overwrote the file.
    week1 = next((tmp_path / "demo" / "reports").glob("report-*-run-1.html"))
    sent = week1.read_text(encoding="utf-8")
    code, out, err = await run_monitor("report", "--run", "1",
                                       "--config", str(tmp_path / "demo" / "demo.toml"))
    assert code == 0, err
    assert week1.read_text(encoding="utf-8") == sent
    # and `report --send` with it mails nothing: the demo's sink is gone, and
    # the machine's own mail server (the default localhost:587) is no sink
    assert load_settings(tmp_path / "demo" / "demo.toml").email.enabled is False
    # The config it leaves behind never reaches the real sites it names: it
    # refuses them all, so `check` records no run and says where to audit
    # again (review 15 #3; it recorded an empty run that led the index).
    code, out, err = await run_monitor("check", "--config", str(tmp_path / "demo" / "demo.toml"),
                                       "--format", "json")
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "refuses every page to audit" in err and "`monitor demo --serve`" in err, err
    from monitor.store import Store

    with Store.open(str(tmp_path / "demo" / "monitor.db")) as store:
        assert store.latest_run().id == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(("left", "removed"), [
    ((), True),                                       # a new directory
    ((".monitor-demo", "monitor.db", "reports/"), True),  # an earlier demo
    (("simulated-site-ca.pem", "demo.toml", "monitor.db", "mail/"), True),  # a demo older than the marker
    # the simulated site started there by hand (docs/simulated-site.md), next to a real monitor
    (("simulated-site-ca.pem", "monitor.db", "reports/"), False),
    (("monitor.db",), False),                         # a real monitor's history
    (("reports/", "monitor.db-wal"), False),
    (("demo.toml",), False),                          # not proof enough
])
def test_the_demo_replaces_only_what_a_demo_left(tmp_path: Path, left: tuple[str, ...],
                                                  removed: bool) -> None:
    from monitor.demo.run import OUR_FILES, clean
    from monitor.errors import ConfigError

    for name in left:
        if name.endswith("/"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "2026-11-23.html").write_text("kept?", encoding="utf-8")
        else:
            (tmp_path / name).write_text("kept?", encoding="utf-8")
    if removed:
        clean(tmp_path)
        assert not [name for name in OUR_FILES if (tmp_path / name).exists()]
        assert (tmp_path / ".monitor-demo").is_file()
    else:
        with pytest.raises(ConfigError, match="not made by the demo; nothing was removed"):
            clean(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n.rstrip("/") for n in left)


async def test_the_demo_in_a_real_monitor_directory_refuses_and_loses_nothing(tmp_path: Path) -> None:
    import datetime as dt

    from monitor.store import Store

    with Store.open(tmp_path / "monitor.db") as store:
        store.start_run(dt.datetime(2026, 11, 23, tzinfo=dt.UTC))
    before = (tmp_path / "monitor.db").read_bytes()
    code, out, err = await run_monitor("demo", "--dir", str(tmp_path))
    assert code == 2, err
    assert "already holds monitor.db" in err and "another --dir" in err and "Traceback" not in err
    assert "Auditing" not in err  # refused before announcing an audit
    assert (tmp_path / "monitor.db").read_bytes() == before


async def test_a_second_audit_on_one_database_is_refused(site: SimulatedSite, sink: MailSink,
                                                        tmp_path: Path) -> None:
    import datetime as dt

    from monitor.store import Store, lock_owner

    config = write_config(tmp_path, site, sink.port)
    with Store.open(tmp_path / "monitor.db") as store:
        # This test process is alive: its lock is not stale.
        assert store.acquire_lock("audit", lock_owner(), dt.datetime.now(dt.UTC), dt.timedelta(minutes=10))
    for command in (("check",), ("run", "--wait", "0")):
        code, out, err = await run_monitor(*command, "--config", str(config))
        assert code == 1
        assert "another audit is running" in err and f"(process {os.getpid()} on {socket.gethostname()}, since " in err
    with Store.open(tmp_path / "monitor.db") as store:
        assert store.runs() == []
        store.release_lock("audit", lock_owner())
    code, _, err = await run_monitor("check", "--config", str(config), "--format", "csv")
    assert code == 0, err


async def test_a_cron_run_waits_for_a_recheck_round_of_the_service(site: SimulatedSite, sink: MailSink,
                                                                   tmp_path: Path) -> None:
    """`monitor serve` holds the audit lock a few seconds every 5 minutes for
    its rechecks; a cron `monitor run` meeting one stopped at once, and that
    week's audit with it. It now waits (`--wait`, 300 s by default)."""
    import datetime as dt

    from monitor.store import Store, lock_owner

    config = write_config(tmp_path, site, sink.port)
    with Store.open(tmp_path / "monitor.db") as store:
        assert store.acquire_lock("audit", lock_owner(), dt.datetime.now(dt.UTC), dt.timedelta(minutes=10))
    cron = asyncio.create_task(run_monitor("run", "--config", str(config), "--wait", "60"))
    await asyncio.sleep(3)  # the round ends
    assert not cron.done()
    with Store.open(tmp_path / "monitor.db") as store:
        store.release_lock("audit", lock_owner())
    code, out, err = await cron
    assert code == 0, err
    assert (f"waiting for the audit lock of {tmp_path / 'monitor.db'}, held by process {os.getpid()} "
            f"on {socket.gethostname()}, since ") in err
    assert "run 1:" in out and len(sink.received) == 1


async def test_the_weekly_job_forgets_history_older_than_keep_weeks(
        site: SimulatedSite, sink: MailSink, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import datetime as dt

    from monitor.jobs import weekly_job

    settings = demo_settings(site, tmp_path, sink.port)
    settings = dataclasses.replace(settings, database=dataclasses.replace(settings.database, keep_weeks=2))
    start = dt.datetime.now(dt.UTC) - dt.timedelta(weeks=4)
    caplog.set_level("INFO", logger="monitor.jobs")
    for week in range(5):
        at = start + dt.timedelta(weeks=week)
        await weekly_job(settings, now=lambda at=at: at)
    db = sqlite3.connect(settings.database.path)
    try:
        runs = dict(db.execute("SELECT id, links FROM runs ORDER BY id").fetchall())
        observed = {r[0] for r in db.execute("SELECT DISTINCT run_id FROM observations")}
        kept_pages = db.execute("SELECT count(*) FROM pages WHERE run_id = 1").fetchone()[0]
        sent = db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL").fetchone()[0]
    finally:
        db.close()
    # Weeks 0-1 are more than two weeks before week 4's job (week 2 started
    # exactly two weeks before, and stays). The simulated pages answer 304
    # after their first fetch, so week 0 still holds the links they have
    # now: that run keeps its pages and links, and loses its observations.
    assert observed == {3, 4, 5}
    assert list(runs) == [1, 3, 4, 5] and kept_pages == 2
    assert "event=history_pruned runs=1" in caplog.text
    # Week 4 still found every link on the unchanged pages.
    assert runs[5] == runs[1] > 50
    assert len(sink.received) == 5 and sent == 4  # the pruned run's sent report went with it


async def test_with_a_base_url_the_mail_links_to_the_published_report(
        site: SimulatedSite, sink: MailSink, tmp_path: Path) -> None:
    from monitor.jobs import full_report_address

    settings = demo_settings(site, tmp_path, sink.port)
    settings = dataclasses.replace(settings, report=dataclasses.replace(
        settings.report, base_url="https://www.sclero.org/link-audits/"))
    outcome = await run_audit(settings)
    report = await report_job(settings, run_id=outcome.run.id, send=True)
    address = f"https://www.sclero.org/link-audits/{report.html_path.name}"
    assert full_report_address(settings, report.html_path) == address
    html_part = parse(sink.received[-1]).get_body(("html",)).get_content()
    assert f'href="{address}"' in html_part
    assert "file://" not in html_part


async def test_a_stop_during_pruning_ends_after_the_run_being_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`monitor serve` stopping while a year of history is deleted: the job is
    cancelled, the thread ends after its current run, nothing half-deleted."""
    import datetime as dt
    import time

    from monitor.config import DatabaseSettings, Settings
    from monitor.jobs import prune_job
    from monitor.store import Store

    db = tmp_path / "monitor.db"
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with Store.open(db) as store:
        for week in range(30):
            run = store.start_run(t0 + dt.timedelta(weeks=week))
            store.finish_run(run.id, t0 + dt.timedelta(weeks=week, hours=1))
            store.mark_reported(run.id, t0 + dt.timedelta(weeks=week, hours=2))
    settings = Settings(pages=(), database=DatabaseSettings(path=str(db), keep_weeks=1))
    asked: list[bool] = []
    original = Store.prune

    def slow_prune(self: Store, before: dt.datetime, stop: Any = None) -> tuple[int, int]:
        def slow_stop() -> bool:  # each run's deletion made to take 50 ms
            time.sleep(0.05)
            asked.append(bool(stop and stop()))
            return asked[-1]
        return original(self, before, stop=slow_stop)

    monkeypatch.setattr(Store, "prune", slow_prune)
    task = asyncio.create_task(prune_job(settings, t0 + dt.timedelta(weeks=40)))
    while len(asked) < 3:  # two runs deleted, the third under way
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with Store.open(db) as store:
        left = len(store.runs(limit=100))
    assert 2 < left < 29, left  # stopped part-way, between two runs
    assert asked[-1] is True and asked.count(True) == 1
    assert 30 - left == len(asked) - 1  # every run it was allowed to start, it finished


async def test_history_of_a_url_whose_checks_were_pruned_says_so(tmp_path: Path) -> None:
    import datetime as dt

    from monitor.store import Store
    from monitor.types import LinkStatus, Observation, UrlState, Verdict

    url = "https://pubmed.ncbi.nlm.nih.gov/29713762/"
    db = tmp_path / "monitor.db"
    t0 = dt.datetime(2023, 1, 2, 6, tzinfo=dt.UTC)
    with Store.open(db) as store:
        for week in range(3):  # cited in week 0 only; weeks 1-2 audit other things
            at = t0 + dt.timedelta(weeks=week)
            run = store.start_run(at)
            if week == 0:
                store.record_observations(run.id, [(
                    Observation(url=url, checked_at=at, http_status=404),
                    Verdict(url=url, status=LinkStatus.EXPIRED, reason="http_404"),
                    UrlState(url=url, status=LinkStatus.EXPIRED, reason="http_404", strikes=1,
                             failing_since=at, last_checked_at=at, first_seen_at=at))])
            store.finish_run(run.id, at)
            store.mark_reported(run.id, at)
        assert store.prune(t0 + dt.timedelta(weeks=2)) == (2, 1)
    config = tmp_path / "monitor.toml"
    config.write_text(f'[[pages]]\nurl = "https://www.sclero.org/a.html"\n[database]\npath = "{db}"\n'
                      "keep_weeks = 2\n", encoding="utf-8")
    code, out, err = await run_monitor("history", url, "--config", str(config))
    assert code == 0, err
    assert "never checked" not in out
    assert "no checks kept: those older than 2 weeks are forgotten" in out
    assert ("now: expired \u2014 The page is gone: the site answers 'not found' (HTTP 404); "
            "failed 1 check in a row since 2023-01-02 06:00  [http_404]") in out


def test_an_unreadable_mail_ca_file_is_a_config_error_naming_its_key(tmp_path: Path) -> None:
    from monitor.config import EmailSettings, Settings
    from monitor.errors import ConfigError
    from monitor.jobs import mail_tls_context

    settings = Settings(pages=(), email=EmailSettings(ca_file=str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError, match=r"^email\.ca_file: cannot load"):
        mail_tls_context(settings)
    assert mail_tls_context(dataclasses.replace(settings, email=EmailSettings())) is None


@pytest.mark.parametrize("args", [("history", "https://pubmed.ncbi.nlm.nih.gov/1/"), ("report",)])
def test_reading_a_database_that_is_not_there_says_so_and_creates_nothing(
        tmp_path: Path, args: tuple[str, ...]) -> None:
    """A typo in database.path read as "never checked", and left an empty file behind."""
    from click.testing import CliRunner

    from monitor.cli import cli

    db = tmp_path / "typo" / "monitr.db"
    config = tmp_path / "monitor.toml"
    config.write_text(f'[[pages]]\nurl = "https://www.sclero.org/a.html"\n[database]\npath = "{db}"\n',
                      encoding="utf-8")
    result = CliRunner().invoke(cli, [*args, "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert f"no database at {db} yet (database.path in {config})" in result.output
    assert "Traceback" not in result.output
    assert not db.parent.exists()


async def test_history_and_check_give_a_moved_link_the_same_http_status(
        site: SimulatedSite, tmp_path: Path) -> None:
    """`check` gives a permanent redirect the 301/308 that decided it (the
    contract's example); `history --format json` gave the 200 at the end of
    the chain, so a script comparing the two saw different answers."""
    config = site_config(tmp_path, site)
    code, out, err = await run_monitor("check", "--config", str(config), "--format", "json")
    assert code == 0, err
    moved = {l["url"]: l for l in json.loads(out)["links"] if l["reason"] == "permanent_redirect"}
    assert moved and all(l["http_status"] in (301, 308) for l in moved.values())
    for url, link in sorted(moved.items())[:3]:
        code, out, err = await run_monitor("history", url, "--config", str(config), "--format", "json")
        assert code == 0, err
        latest = json.loads(out)["observations"][-1]
        assert latest["http_status"] == link["http_status"]
        assert latest["final_http_status"] == 200 and latest["redirects"][0]["status"] == link["http_status"]


async def test_history_of_a_url_typed_without_its_slash_names_the_one_checked(
        site: SimulatedSite, tmp_path: Path) -> None:
    """Was: "never checked", though the page's link (with the slash) had its history."""
    config = site_config(tmp_path, site)
    code, out, err = await run_monitor("check", "--config", str(config), "--format", "json")
    assert code == 0, err
    stored = next(l["url"] for l in json.loads(out)["links"]
                  if l["url"].startswith("https://pubmed.ncbi.nlm.nih.gov/") and l["url"].endswith("/"))
    code, out, err = await run_monitor("history", stored.rstrip("/"), "--config", str(config))
    assert code == 0, err
    assert out.startswith(f"{stored.rstrip('/')}: never checked under this exact address\n"), out
    assert f"checked as: {stored}  (monitor history {stored}" in out
    assert "not found in" not in out  # it is there, under the other spelling


async def test_a_report_that_cannot_be_saved_names_the_key_and_keeps_the_run(tmp_path: Path) -> None:
    """At save time (the folder went away after the check before the audit):
    was "FileNotFoundError: [Errno 2] No such file or directory: '/proc/reports'"."""
    from monitor.config import CheckerSettings, DatabaseSettings, PageSettings, ReportSettings, Settings
    from monitor.errors import MonitorError

    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc, where no folder can be made")
    settings = Settings(
        pages=(PageSettings(url="http://127.0.0.1:9/a.html"),),
        checker=CheckerSettings(timeout=1, retries=0, allow_private_networks=("127.0.0.1/32",)),
        database=DatabaseSettings(path=str(tmp_path / "m.db")),
        report=ReportSettings(dir="/proc/monitor-test-reports"), source="conf/monitor.toml")
    run = (await run_audit(settings)).run
    with pytest.raises(MonitorError) as caught:
        await report_job(settings)
    said = str(caught.value)
    assert said.startswith("conf/monitor.toml: report.dir: cannot save the report in /proc/monitor-test-reports: ")
    assert f"monitor report --config conf/monitor.toml --run {run.id}" in said
    with pytest.raises(MonitorError, match=r"^--out: cannot save the report in /proc/monitor-test-reports/x: "):
        await report_job(settings, out=Path("/proc/monitor-test-reports/x"))


async def test_a_first_report_then_a_rerun_the_same_day(site: SimulatedSite, sink: MailSink,
                                                        tmp_path: Path) -> None:
    """Walkthrough 10 #10 and #15, as the mail arrives: the first report says
    "first report", not "0 still open, 0 fixed", and has no "Fixed since
    last report" tile; a rerun two minutes later (a webmaster running `run`
    by hand) does not badge the rows it only watches "NEW" again."""
    import datetime as dt

    from monitor.jobs import weekly_job

    settings = demo_settings(site, tmp_path, sink.port)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for minutes in (0, 2):
        at = start + dt.timedelta(minutes=minutes)
        await weekly_job(settings, now=lambda at=at: at)
    first, rerun = (parse(path) for path in sink.received)
    texts = [m.get_body(("plain",)).get_content() for m in (first, rerun)]
    subject = str(first["Subject"])
    assert ": first report, " in subject and "still open" not in subject, subject
    assert "Fixed since last report" not in texts[0] and "still open" not in texts[0]
    assert "problems need attention (first report, nothing to compare with)." in texts[0]
    assert "Fixed since last report: 0" in texts[1] and "still open" in str(rerun["Subject"])
    watching = [t.split("WATCHING")[1] if "WATCHING" in t else "" for t in texts]
    # a row only watched is not counted "new" by the headline, so it has no badge (walkthrough 11 #1)
    assert "NEW]" not in watching[0] and re.search(r"\[ERROR\] First seen", watching[0]), texts[0]
    assert "NEW]" not in watching[1] and re.search(r"\[ERROR\] Watched since", watching[1]), texts[1]


async def test_monitor_report_does_not_load_the_checker(site: SimulatedSite, tmp_path: Path) -> None:
    """`monitor report` reads the database and writes files: importing the
    checker's HTTP stack (aiohttp, through `monitor.pages` for two strings
    and a status rule) cost every report 0.2 s of its 5 s budget at 100,000
    links. The command as run, its imports listed by `-X importtime`."""
    config = site_config(tmp_path, site)
    code, _, err = await run_monitor("check", "--config", str(config))
    assert code == 0, err
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "importtime", "-m", "monitor", "report", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err_bytes = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err_bytes.decode()
    assert b"report: " in out
    imported = {line.rsplit("|", 1)[-1].strip() for line in err_bytes.decode().splitlines()
                if line.startswith("import time:")}
    assert "reports.render" in imported  # the listing is the report's own
    assert not imported & {"aiohttp", "monitor.pages", "monitor.client", "monitor.crawl", "monitor.check"}
