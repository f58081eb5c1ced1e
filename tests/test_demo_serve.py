"""`monitor demo --serve`: the demo's results behind the running service.

The command runs as a subprocess, as a new user runs it; the test reads what
it prints, opens the dashboard over loopback, runs the printed commands in
other processes against the live simulated site, then stops it with SIGTERM
and checks that everything it opened is closed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import os
import re
import shlex
import signal
import sqlite3
import sys
import tomllib
from pathlib import Path

import aiohttp
import pytest

from monitor.config import ScheduleSettings, load_settings
from monitor.demo.run import demo_settings
from monitor.demo.run import write_config
from monitor.demo.serve import LIVE_CONFIG, toml_string, write_live_config
from monitor.demo.site import SimulatedSite, load_pages
from monitor.schedule import weekly_trigger

FAILING = {"expired", "moved", "error", "blocked", "drifted"}


# -- the live configuration file --------------------------------------------------


@pytest.mark.parametrize("text", ["plain", 'a "quoted" name', "back\\slash", "tab\there", "del\x7fete",
                                  "Raynaud’s ü", "new\nline"])
def test_toml_string_reads_back_as_written(text: str) -> None:
    assert tomllib.loads(f"key = {toml_string(text)}")["key"] == text


def test_live_config_is_the_demos_settings_with_the_dashboard_on(tmp_path: Path) -> None:
    """Read back by the loader the commands use: every setting the demo's
    audit used, paths made absolute (a second terminal may be elsewhere),
    even in a folder whose name TOML must escape."""
    workdir = tmp_path / 'odd "dir" \\ name'
    workdir.mkdir()
    ca = workdir / "simulated-site-ca.pem"
    ca.write_text("not read by the loader\n", encoding="utf-8")
    site = SimulatedSite(http_port=1, https_port=2, refused_port=3, ca_pem_path=ca,
                         connect_to=(("www.sclero.org:443", "127.0.0.1:2"), ("*", "refuse")),
                         pages=("https://www.sclero.org/a.html", "https://www.sclero.org/b.html"),
                         truth={})
    settings = demo_settings(site, workdir, smtp_port=2525)
    path = write_live_config(settings, workdir)
    assert path == (workdir / LIVE_CONFIG).absolute()
    live = load_settings(path)
    assert live.pages == settings.pages
    assert live.checker == settings.checker  # ca_file was already absolute here
    assert live.email == settings.email
    assert live.report.site_name == settings.report.site_name
    assert Path(live.database.path) == Path(settings.database.path).absolute()
    assert Path(live.report.dir) == Path(settings.report.dir).absolute()
    assert live.schedule == ScheduleSettings()
    assert (live.server.enabled, live.server.host, live.server.port) == (True, "127.0.0.1", 0)
    # demo.toml too, read after the demo: the same folder, its names escaped
    after = load_settings(write_config(settings, workdir))
    assert (after.pages, after.database.path, after.report.dir) == (
        settings.pages, settings.database.path, settings.report.dir)


# -- the command, end to end ------------------------------------------------------


async def read_until(stream: asyncio.StreamReader, last: str, seen: list[str], timeout: float) -> None:
    """Lines into `seen` until one starts with `last` (or the stream ends)."""
    async def loop() -> None:
        while True:
            line = await stream.readline()
            if not line:
                return
            seen.append(line.decode().rstrip("\n"))
            if seen[-1].startswith(last):
                return

    await asyncio.wait_for(loop(), timeout)


async def run(command: list[str], timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


def runs(db: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM runs ORDER BY id")]
    finally:
        conn.close()


def report_links(index_html: str) -> dict[int, str]:
    """Run number -> the HTML report's name, as the dashboard's index links them."""
    return {int(run): name for name, run in re.findall(r'href="(report-[\d-]+-run-(\d+)\.html)"', index_html)}


async def test_demo_serve_dashboard_printed_commands_and_clean_stop(tmp_path: Path) -> None:
    workdir = tmp_path / "my demo"  # a space: the printed commands must quote it
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "demo", "--serve", "--dir", str(workdir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ},
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.create_task(proc.stderr.read())  # drained meanwhile: the service logs there
    out: list[str] = []
    try:
        await read_until(proc.stdout, "Press Ctrl-C to stop.", out, timeout=90)
        if not out or out[-1] != "Press Ctrl-C to stop.":  # it stopped: say why
            pytest.fail("\n".join(out) + (await asyncio.wait_for(errors, 30)).decode())
        printed = dict(line.split(":", 1) for line in out if re.match(r"[A-Z][\w ]+:  ", line))
        dashboard = printed["Dashboard"].split()[0]
        config = Path(printed["Live config"].strip())
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", dashboard), dashboard
        assert config == (workdir / LIVE_CONFIG).absolute() and config.is_file()
        # Started as `python -m monitor`, it prints the commands so: this interpreter, not `python`.
        lines = [shlex.split(line, comments=True) for line in out if line.startswith("  ") and "--config" in line]
        assert all(argv[:3] == [sys.executable, "-m", "monitor"] for argv in lines), lines
        commands = {argv[3]: argv for argv in lines}
        assert set(commands) == {"check", "report", "history", "run"}, out
        assert all(argv[-2:] == ["--config", str(config)] for argv in commands.values())
        db = workdir / "monitor.db"
        demo_runs = runs(db)
        assert len(demo_runs) == 2  # last week's and this week's

        live = tomllib.loads(config.read_text(encoding="utf-8"))
        site_ports = {int(v.rpartition(":")[2]) for k, v in live["checker"]["connect_to"].items() if k != "*"}
        sink_port = live["email"]["port"]
        port = int(dashboard.rsplit(":", 1)[1].rstrip("/"))

        truth = load_pages().truth
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            # The dashboard: / leads to the index of the demo's reports, the
            # newest lists the demo's problems.
            async with http.get(dashboard) as response:
                assert response.status == 200
                assert str(response.url).endswith("/reports/index.html")
                index = await response.text()
            linked = report_links(index)
            assert sorted(linked) == demo_runs
            async with http.get(f"{dashboard}reports/{linked[demo_runs[-1]]}") as response:
                assert response.status == 200
                report = await response.text()
            problems = [url for url, (status, _) in truth.items()
                        if status in FAILING and url.startswith("http") and len(url) > len("http://")]
            assert len(problems) > 20
            assert [url for url in problems if html.escape(url) not in report] == []
            # Its security is kept: loopback names only.
            async with http.get(dashboard, headers={"Host": "demo.example.org"},
                                allow_redirects=False) as response:
                assert response.status == 421
            # No audit started by the service: the next is the cron's next fire.
            async with http.get(f"{dashboard}healthz") as response:
                health = await response.json()
            assert health["running"] is False and health["last_run"]["id"] == demo_runs[-1]
            expected = weekly_trigger(ScheduleSettings()).get_next_fire_time(None, dt.datetime.now(dt.UTC))
            assert dt.datetime.fromisoformat(health["next_run"]) == expected
            assert runs(db) == demo_runs

            # The printed commands work against the live site, in other processes.
            code, stdout, stderr = await run(commands["check"] + ["--format", "json"])
            assert code == 0, stderr
            audit = json.loads(stdout)
            # Both pages read (unchanged since the demo's audit: a conditional GET's 304).
            assert {p["status"] for p in audit["pages"]} <= {"ok", "not_modified"}, audit["pages"]
            assert len(audit["pages"]) == 2 and all(p["links"] for p in audit["pages"])
            verdicts = {link["url"]: (link["status"], link["reason"]) for link in audit["links"]}
            assert {u: v for u, v in verdicts.items() if u in truth and truth[u] != v} == {}
            assert len(runs(db)) == 3
            code, stdout, stderr = await run(commands["history"])
            assert code == 0, stderr
            assert len([line for line in stdout.splitlines() if line.startswith("  20")]) == 3, stdout
            code, stdout, stderr = await run(commands["report"])
            assert code == 0, stderr
            async with http.get(dashboard) as response:
                assert sorted(report_links(await response.text())) == runs(db)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
        rest = (await asyncio.wait_for(proc.stdout.read(), 5)).decode()
        err = (await asyncio.wait_for(errors, 5)).decode()
    assert code == 0, err
    assert "Traceback" not in err and "Traceback" not in rest, err
    # A check in another process hanging up on the 20 MiB PDF: no asyncio noise (walkthrough 9 #13).
    assert "raised exception" not in err and "SSL connection is closed" not in err, err
    assert "event=service_stopped" in err
    assert rest.strip().startswith("Stopped"), rest
    assert not config.exists()  # its ports are gone: so is the file
    assert (workdir / "demo.toml").is_file()
    for closed in [port, sink_port, *site_ports]:
        assert await refused(closed), closed
