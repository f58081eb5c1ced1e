"""Crash safety: `monitor run` killed with SIGKILL at 20 random moments.

A local site of 40 cited links on four hosts (latencies of 20-200 ms) and an
SMTP sink that takes 0.3 s to accept each message make the job last about
two seconds, spent checking, writing the database and sending. The test
kills the real command (`python -m monitor run --config ...`) at moments
drawn with a fixed seed within each process's expected lifetime, restarts
it, and goes on until 20 kills have landed and a last run has completed.

After every stop, and at the end:
- the database passes `PRAGMA integrity_check`;
- no committed observation is lost: the set of observation ids only grows;
- no report is sent twice: the sink counts the Message-IDs it accepted;
- every report is eventually sent: each finished run's report reached the
  sink, and that run has an observation for each of its links.

One moment is excluded from the kills on purpose: the few milliseconds
between the sink accepting a message (its "250") and the client recording
that in the outbox. No SMTP client can close that window (RFC 1047): a
client killed there cannot know the message went, so it sends it again
(with the same Message-ID, which mail clients thread as one). The killer
waits for that record, and only that, before it fires.
"""

from __future__ import annotations

import asyncio
import email
import random
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

SEED = 62026
KILLS = 20
LINKS = 40
HOSTS = 4
SINK_DELAY = 0.3
"""Seconds the sink waits before accepting a message's DATA."""
FIRST_GUESS = 2.5
"""Seconds a whole job is expected to take before one has been timed."""
DEADLINE = 120.0
"""The whole test gives up (and fails) after this long."""


# -- the site ---------------------------------------------------------------------------------


def title(i: int) -> str:
    return f"Study number {i} of a scleroderma treatment"


def build_page(rng: random.Random) -> str:
    entries = "".join(
        f'<p><a href="http://h{i % HOSTS}.crash.example.org/doc/{i}?ms={rng.randint(20, 200)}">'
        f"{title(i)}</a>. A summary of what the study found. "
        f"J Rheumatol. 2020;{i}(2):100-110.</p>\n"
        for i in range(LINKS)
    )
    return ("<html><head><title>Treatments</title></head><body><h1>Treatments</h1>"
            f"<h2>Studies</h2>\n{entries}</body></html>")


@dataclass
class SiteState:
    page_requests: int = 0
    page_gate: asyncio.Event | None = None
    """When set up, the watched page is held until the event is set."""


async def start_site(page: str, state: SiteState | None = None) -> tuple[web.AppRunner, int]:
    state = state or SiteState()

    async def serve_page(request: web.Request) -> web.Response:
        state.page_requests += 1
        if state.page_gate is not None:
            await state.page_gate.wait()
        return web.Response(text=page, content_type="text/html")

    async def serve_doc(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.query.get("ms", "50")) / 1000)
        name = request.match_info["name"]
        i = int(name.removesuffix("-new"))
        if name == str(i) and i % 10 == 3:
            return web.Response(status=404, text="<title>Not found</title>", content_type="text/html")
        if name == str(i) and i % 10 == 7:
            raise web.HTTPMovedPermanently(f"/doc/{i}-new")
        return web.Response(text=f"<html><head><title>{title(i)}</title></head><body>"
                                 f"<p>{title(i)}: the full text.</p></body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/treatments.html", serve_page)
    app.router.add_get("/doc/{name}", serve_doc)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


# -- the mail sink ------------------------------------------------------------------------------


@dataclass
class SlowSink:
    """aiosmtpd handler: waits before accepting DATA, then counts the Message-ID.

    A client killed during the wait drops the connection; aiosmtpd then
    cancels this handler, so the message is not accepted, as with a real
    server that never answered 250.
    """

    delay: float = SINK_DELAY
    accepted: Counter[str] = field(default_factory=Counter)
    in_data: int = 0
    gate: asyncio.Event | None = None
    """When set up, DATA waits for this event instead of `delay`."""
    client_killed: bool = False
    """Set by the killer just before its SIGKILL (same event loop, no await in
    between): a DATA whose wait ends after that moment is not accepted. The
    kernel closes the dead client's socket a few milliseconds after the
    signal; without the flag, a wait ending in those milliseconds would
    accept a message whose client never saw the 250."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.in_data += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(self.delay)
        finally:
            self.in_data -= 1
        if self.client_killed:
            return "421 4.3.0 client gone"
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        self.accepted[str(message["Message-ID"])] += 1
        return "250 2.0.0 Ok: queued"


async def start_sink(sink: SlowSink) -> tuple[asyncio.base_events.Server, int]:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


# -- the database, as seen from outside ----------------------------------------------------


def db_facts(path: Path) -> dict[str, Any]:
    """Integrity, observation ids per run, runs, outbox: read-only looks."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'observations'").fetchone() is None:
            # Killed before its first migration committed (all of them are one
            # transaction): the file exists and holds no schema yet, as after a
            # kill before the file was made. The next start migrates it; an
            # observation seen before would now be missing, and be caught.
            return {"integrity": integrity, "observations": [], "runs": [], "outbox": [],
                    "links": {}, "observed": {}, "started": {}}
        observations = conn.execute("SELECT id, run_id FROM observations").fetchall()
        runs = conn.execute("SELECT id, status, reported_at FROM runs ORDER BY id").fetchall()
        outbox = conn.execute("SELECT key, run_id, message_id, sent_at FROM outbox").fetchall()
        links = dict(conn.execute("SELECT run_id, count(DISTINCT url) FROM occurrences "
                                  "WHERE url IS NOT NULL GROUP BY run_id").fetchall())
        observed = dict(conn.execute("SELECT run_id, count(DISTINCT url) FROM observations "
                                     "GROUP BY run_id").fetchall())
        started = dict(conn.execute("SELECT id, started_at FROM runs").fetchall())
    finally:
        conn.close()
    return {"integrity": integrity, "observations": observations, "runs": runs,
            "outbox": outbox, "links": links, "observed": observed, "started": started}


def sent_message_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            rows = conn.execute("SELECT message_id FROM outbox WHERE sent_at IS NOT NULL").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return set()
    return {r[0] for r in rows}


def write_config(tmp: Path, site_port: int, smtp_port: int) -> Path:
    hosts = "\n".join(f'"h{k}.crash.example.org:80" = "127.0.0.1:{site_port}"' for k in range(HOSTS))
    text = f"""
[[pages]]
url = "http://www.crash.example.org/treatments.html"
name = "Treatments"
owner = "editor@crash.example.org"

[checker]
timeout = 3
retries = 0
concurrency = 8
per_host = 2
soft404_probe = false

[checker.connect_to]
"www.crash.example.org:80" = "127.0.0.1:{site_port}"
{hosts}
"*" = "refuse"

[database]
path = "{tmp / 'monitor.db'}"

[report]
dir = "{tmp / 'reports'}"

[email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "monitor@crash.example.org"
recipients = ["webmaster@crash.example.org"]
timeout = 10
"""
    path = tmp / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def launch(config: Path, errors: Path) -> asyncio.subprocess.Process:
    """`python -m monitor run --config ...`, its stderr kept for the failure message."""
    with errors.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "run", "--config", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err)


async def until(condition: Any, seconds: float = 30) -> None:
    give_up = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < give_up, "the moment to kill never came"
        await asyncio.sleep(0.005)


# -- the tests ---------------------------------------------------------------------------------


@dataclass
class Tally:
    kills: int = 0
    completed: int = 0
    starts: int = 0
    landed: Counter[str] = field(default_factory=Counter)
    """Where the kills landed: sending (sink in DATA) or elsewhere."""
    lifetimes: list[float] = field(default_factory=list)


async def wait_out_the_rfc1047_window(proc: asyncio.subprocess.Process, sink: SlowSink, db: Path) -> None:
    """Hold the kill while a message the sink accepted is not yet marked sent."""
    give_up = time.monotonic() + 5
    while proc.returncode is None and time.monotonic() < give_up:
        if not set(sink.accepted) - sent_message_ids(db):
            return
        await asyncio.sleep(0.002)


async def test_monitor_run_survives_20_sigkills(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    runner, site_port = await start_site(build_page(rng))
    sink = SlowSink()
    smtp, smtp_port = await start_sink(sink)
    config = write_config(tmp_path, site_port, smtp_port)
    db = tmp_path / "monitor.db"
    tally = Tally()
    seen_ids: set[int] = set()
    per_run: Counter[int] = Counter()
    expected_life = FIRST_GUESS
    began = time.monotonic()
    proc: asyncio.subprocess.Process | None = None
    try:
        while True:
            assert time.monotonic() - began < DEADLINE, f"no end in sight: {tally}"
            tally.starts += 1
            errors = tmp_path / f"stderr-{tally.starts}.txt"
            proc = await launch(config, errors)
            sink.client_killed = False
            started = time.monotonic()
            killed = False
            if tally.kills < KILLS:
                delay = rng.uniform(0.0, expected_life)
                try:
                    await asyncio.wait_for(proc.wait(), delay)
                except TimeoutError:
                    await wait_out_the_rfc1047_window(proc, sink, db)
                    if proc.returncode is None:
                        tally.landed["sending" if sink.in_data else "other"] += 1
                        sink.client_killed = True
                        proc.kill()
                        killed = True
                await proc.wait()
            else:
                await asyncio.wait_for(proc.wait(), 60)
            if killed:
                tally.kills += 1
            else:
                assert proc.returncode == 0, errors.read_text(errors="replace")
                tally.completed += 1
                tally.lifetimes.append(time.monotonic() - started)
                expected_life = max(tally.lifetimes)
            if db.exists():
                facts = db_facts(db)
                assert facts["integrity"] == "ok"
                ids = {row[0] for row in facts["observations"]}
                assert seen_ids <= ids, f"committed observations lost: {sorted(seen_ids - ids)[:5]}"
                seen_ids = ids
                now_per_run = Counter(run_id for _, run_id in facts["observations"])
                assert all(now_per_run[r] >= n for r, n in per_run.items())
                per_run = now_per_run
            assert all(n == 1 for n in sink.accepted.values()), f"sent twice: {sink.accepted}"
            if tally.kills >= KILLS and not killed:
                break
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        smtp.close()
        await runner.cleanup()

    facts = db_facts(db)
    finished = [run_id for run_id, status, _ in facts["runs"] if status == "finished"]
    reports = {key: (run_id, mid, sent) for key, run_id, mid, sent in facts["outbox"]}
    assert facts["integrity"] == "ok"
    assert tally.completed >= 1 and tally.kills == KILLS
    # Every queued report reached the sink, once.
    for key, (run_id, message_id, sent_at) in reports.items():
        assert sent_at is not None, f"{key} still waits in the outbox"
        assert sink.accepted[message_id] == 1, key
    assert sum(sink.accepted.values()) == len(reports)
    # Each finished run is complete: every link it found was checked in it.
    for run_id in finished:
        assert facts["links"].get(run_id) == LINKS, (run_id, facts["links"])
        assert facts["observed"].get(run_id) == LINKS, (run_id, facts["observed"])
    print(f"crash test: {tally}, {len(finished)} finished runs")
    # Every finished run was reported, and each job audited once: a restart
    # after the audit of a job finished must report it, not audit again.
    unreported = [r for r in finished if f"run-{r}:all" not in reports]
    assert unreported == [], f"finished runs never reported: {unreported}"
    # A job is one run: no run starts before the previous one was reported.
    # (Counting exits would not do: a kill can land after a job is complete,
    # before its process exits.)
    reported = {run_id: at for run_id, _, at in facts["runs"]}
    ids = sorted(reported)
    for before, after in zip(ids, ids[1:]):
        assert reported[before] is not None and reported[before] <= facts["started"][after], (
            f"run {after} started before run {before} was reported: {facts['runs']}")
    assert len(finished) >= tally.completed


async def test_a_job_killed_while_sending_finishes_sending_without_auditing_again(tmp_path: Path) -> None:
    runner, site_port = await start_site(build_page(random.Random(SEED)))
    sink = SlowSink(gate=asyncio.Event())
    smtp, smtp_port = await start_sink(sink)
    config = write_config(tmp_path, site_port, smtp_port)
    db, errors = tmp_path / "monitor.db", tmp_path / "stderr.txt"
    try:
        proc = await launch(config, errors)
        await until(lambda: sink.in_data > 0)  # the audit is done, its report on the wire
        sink.client_killed = True
        proc.kill()
        await proc.wait()
        before = db_facts(db)
        assert [status for _, status, _ in before["runs"]] == ["finished"]
        assert before["outbox"] and all(sent is None for *_, sent in before["outbox"])
        assert sink.gate is not None
        sink.gate.set()
        await asyncio.sleep(0)  # the killed client's DATA ends now, unaccepted
        sink.client_killed = False
        proc = await launch(config, errors)
        assert await asyncio.wait_for(proc.wait(), 60) == 0, errors.read_text(errors="replace")
    finally:
        smtp.close()
        await runner.cleanup()
    after = db_facts(db)
    assert after["integrity"] == "ok"
    assert {mid for _, _, mid, _ in before["outbox"]} <= set(sink.accepted)
    assert all(n == 1 for n in sink.accepted.values()) and all(sent for *_, sent in after["outbox"])
    assert len(after["runs"]) == 1, f"the restart audited again: runs {after['runs']}"


async def test_a_run_killed_before_its_page_was_recorded_fetches_it_on_resume(tmp_path: Path) -> None:
    state = SiteState(page_gate=asyncio.Event())
    runner, site_port = await start_site(build_page(random.Random(SEED)), state)
    sink = SlowSink(delay=0)
    smtp, smtp_port = await start_sink(sink)
    config = write_config(tmp_path, site_port, smtp_port)
    db, errors = tmp_path / "monitor.db", tmp_path / "stderr.txt"
    try:
        proc = await launch(config, errors)
        await until(lambda: state.page_requests > 0)  # the run is started, its page in flight
        proc.kill()
        await proc.wait()
        assert [status for _, status, _ in db_facts(db)["runs"]] == ["running"]
        assert state.page_gate is not None
        state.page_gate.set()
        proc = await launch(config, errors)
        assert await asyncio.wait_for(proc.wait(), 60) == 0, errors.read_text(errors="replace")
    finally:
        smtp.close()
        await runner.cleanup()
    facts = db_facts(db)
    assert facts["integrity"] == "ok"
    assert [status for _, status, _ in facts["runs"]] == ["finished"], "resumed, not started anew"
    assert state.page_requests == 2, "the page was fetched again"
    assert (facts["links"].get(1), facts["observed"].get(1)) == (LINKS, LINKS)
