"""End to end: the simulated site (monitor/demo/site.py) through the whole pipeline.

The simulated hosts imitate sclero.org, PubMed, a news wire, publishers,
journals and the Wayback Machine on loopback (docs/simulated-site.md says
what each real site does and where that is known from). Every link of both
watched pages has an expected (status, reason) in `site.truth`: one case per
status and reason of the contract, checked here by the real checker, the
real classifier and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from monitor import crawl
from monitor.crawl import run_audit
from monitor.demo.run import demo_settings
from monitor.demo.site import SimulatedSite
from monitor.store import Store
from reports.deliver import load_audit
from simkit import run_monitor, site_config


@pytest.fixture
async def site(sim_site: SimulatedSite) -> SimulatedSite:
    return sim_site


async def test_every_link_gets_its_true_status(site: SimulatedSite, tmp_path: Path) -> None:
    settings = demo_settings(site, tmp_path, smtp_port=1)
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        links = store.run_links(outcome.run.id)
        observed = store._conn.execute(
            "SELECT url, count(*) FROM observations WHERE run_id = ? GROUP BY url", (outcome.run.id,)
        ).fetchall()
    got = {link.url: (link.status.value, link.reason) for link in links}
    assert set(got) == set(site.truth), "every link of both pages is accounted for"
    wrong = {url: (got[url], site.truth[url]) for url in site.truth if got[url] != site.truth[url]}
    assert wrong == {}
    # each distinct URL checked once, although some are cited on both pages
    assert all(count == 1 for _, count in observed)
    assert len({link.page for link in links}) == 2
    statuses = {status for status, _ in site.truth.values()}
    assert statuses >= {"ok", "moved", "expired", "error", "blocked", "drifted", "skipped"}


async def test_a_narrow_look_ahead_changes_no_verdict(site: SimulatedSite, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The page phase waiting for the checks (crawl.LOOKAHEAD_URLS) must not
    # change what is found: menus held back to the end, URLs cited on both
    # pages, probes and redirects all as with an unbounded look-ahead.
    monkeypatch.setattr(crawl, "LOOKAHEAD_URLS", 2)
    settings = demo_settings(site, tmp_path, smtp_port=1)
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        got = {link.url: (link.status.value, link.reason) for link in store.run_links(outcome.run.id)}
    assert got == site.truth


async def test_moved_links_suggest_the_new_address(site: SimulatedSite, tmp_path: Path) -> None:
    settings = demo_settings(site, tmp_path, smtp_port=1)
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        links = {link.url: link for link in store.run_links(outcome.run.id)}
    pubmed = links["https://www.ncbi.nlm.nih.gov/pubmed/29713888"]
    assert pubmed.suggested_url == "https://pubmed.ncbi.nlm.nih.gov/29713888/"
    bentham = links["http://benthamopen.com/ABSTRACT/TORJ-7-94"]
    assert bentham.suggested_url == "https://openrheumatologyjournal.com/VOLUME/7/PAGE/94/"
    # a dead link with a snapshot gets the archived copy as its fix
    medscape = links["https://www.medscape.com/viewarticle/883512"]
    assert medscape.archived_url and medscape.archived_url.startswith("https://web.archive.org/web/")


async def test_the_report_finds_the_moved_menu_word_not_the_menus_own(
        site: SimulatedSite, tmp_path: Path) -> None:
    # Walkthrough 10 #4: the Raynaud's page's menu links "Symptoms" (https,
    # fine) above "(Also see Symptoms" (http, moved): the row's "Find the
    # link on the page" highlighted the menu's. The words before the moved
    # one go with it, through the store, into the report's row.
    settings = demo_settings(site, tmp_path, smtp_port=1)
    outcome = await run_audit(settings)
    with Store.open(settings.database.path) as store:
        links = store.run_links(outcome.run.id)
        audit = load_audit(store, outcome.run.id, settings, outcome.run.started_at)
    [moved] = [l for l in links if l.url == "http://www.sclero.org/scleroderma/symptoms/a-to-z.html"]
    assert (moved.status.value, moved.fragment) == ("moved", "see-,Symptoms")
    [row] = [p for p in audit.problems if p.link.url == moved.url]
    assert row.page_link == moved.page + "#:~:text=see-,Symptoms"
    assert row.page_link_label == "Find the link on the page"


async def test_cli_check_json_matches_the_contract(site: SimulatedSite, tmp_path: Path) -> None:
    config = site_config(tmp_path, site, db=tmp_path / "cli.db")
    code, out, err = await run_monitor("check", "--config", str(config), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"run", "pages", "links"}
    assert set(doc["run"]) >= {"id", "started_at", "finished_at"}
    assert [p["url"] for p in doc["pages"]] == list(site.pages)
    assert all(p["status"] == "ok" and p["links"] > 10 for p in doc["pages"])
    contract = {"page", "url", "text", "section", "kind", "status", "reason", "http_status",
                "final_url", "suggested_url", "strikes", "failing_since", "checked_at"}
    for link in doc["links"]:
        assert contract <= set(link)
        assert link["kind"] in ("citation", "navigation", "resource")
        assert (link["status"], link["reason"]) == site.truth[link["url"]]
    failing = [l for l in doc["links"] if l["status"] in ("expired", "error", "blocked")
               and l["reason"] != "invalid_url"]
    assert failing and all(l["strikes"] == 1 and l["failing_since"] for l in failing)
    # As in the contract's example: a move is told by its redirect's code, the
    # chain's end by final_url; a 404 by its own code.
    moved = [l for l in doc["links"] if l["reason"] == "permanent_redirect"]
    assert moved and all(l["http_status"] in (301, 308) and l["final_url"] != l["url"] for l in moved)
    assert {l["http_status"] for l in doc["links"] if l["reason"] == "http_404"} == {404}

    # the CSV has the same columns, and the text table names the statuses
    code, csv_out, err = await run_monitor("check", "--config", str(config), "--format", "csv",
                                       "--page", site.pages[0])
    assert code == 0, err
    header = csv_out.splitlines()[0].split(",")
    assert header[:13] == ["page", "url", "text", "section", "kind", "status", "reason", "http_status",
                           "final_url", "suggested_url", "strikes", "failing_since", "checked_at"]
    assert "could not be fetched" not in csv_out
    # The page did not change: the server answered 304 to its ETag, it was not
    # parsed again, and its links came from the previous run.
    with Store.open(tmp_path / "cli.db") as store:
        latest = store.latest_run()
        assert latest is not None
        (page,) = store.run_pages(latest.id)
        assert (page.status, page.http_status) == ("not_modified", 304)
        assert len(store.run_links(latest.id)) == page.links > 10
    code, text_out, err = await run_monitor("check", "--config", str(config), "--page", site.pages[0])
    assert code == 0, err
    for word in ("expired", "moved", "blocked", "drifted", "error"):
        assert word in text_out

    code, history, err = await run_monitor("history", "http://www.jrheum.org/content/39/2/345.abstract",
                                       "--config", str(config), "--format", "json")
    timeline = json.loads(history)["observations"]
    assert len(timeline) == 3  # three checks: json, csv and text runs
    assert {o["reason"] for o in timeline} == {"http_404"}


def _link_rows(store: Store, run_id: int) -> list[tuple[str, str, str, str, str]]:
    return [(l.page, l.url, l.text, l.section, l.entry_title) for l in store.run_links(run_id)]


async def test_an_unchanged_page_shares_its_links_with_the_run_that_read_it(
        site: SimulatedSite, tmp_path: Path) -> None:
    """Both pages answer 304 the second week: their links are not copied
    (pages.links_run points at the first run's), yet the second run's
    report, counts and "where is it cited" read them with its own checks."""
    settings = demo_settings(site, tmp_path, smtp_port=1)
    first = await run_audit(settings)
    second = await run_audit(settings)
    path = settings.database.path
    with sqlite3.connect(path) as db:
        own = dict(db.execute("SELECT run_id, count(*) FROM occurrences GROUP BY run_id").fetchall())
        pointers = db.execute("SELECT status, links_run FROM pages WHERE run_id = ?",
                              (second.run.id,)).fetchall()
    assert list(own) == [first.run.id]
    assert pointers == [("not_modified", first.run.id)] * len(site.pages)
    with Store.open(path) as store:
        runs = {r.id: r for r in store.runs()}
        assert _link_rows(store, second.run.id) == _link_rows(store, first.run.id)
        assert (runs[second.run.id].links, runs[second.run.id].urls) == (
            runs[first.run.id].links, runs[first.run.id].urls) and runs[first.run.id].links > 20
        got = {l.url: (l.status.value, l.reason) for l in store.run_links(second.run.id)}
        assert got == site.truth
        checked = {l.checked_at for l in store.run_links(second.run.id) if l.checked_at}
        assert checked and min(checked) > max(
            l.checked_at for l in store.run_links(first.run.id) if l.checked_at)
        jrheum = "http://www.jrheum.org/content/39/2/345.abstract"
        assert [c.page_url for c in store.citations_of(jrheum)] == [
            c.page_url for c in store.citations_of(jrheum, run_id=first.run.id)] != []


async def test_an_exclusion_changed_since_reaches_an_unchanged_page(
        site: SimulatedSite, tmp_path: Path) -> None:
    """The links of a 304 page come back as an earlier run marked them: an
    exclusion added since applies (the page gets links of its own for that
    run), and one removed since is lifted (before, "excluded" stuck)."""
    settings = demo_settings(site, tmp_path, smtp_port=1)
    await run_audit(settings)
    jrheum = "http://www.jrheum.org/content/39/2/345.abstract"
    excluding = replace(settings, checker=replace(settings.checker, exclude=(r"jrheum\.org",)))
    excluded = await run_audit(excluding)
    still = await run_audit(excluding)  # shares the copy made under the new exclusions
    lifted = await run_audit(settings)
    with sqlite3.connect(settings.database.path) as db:
        copies = dict(db.execute("SELECT run_id, count(DISTINCT page_url) FROM occurrences "
                                 "GROUP BY run_id").fetchall())
    assert copies == {1: 2, excluded.run.id: 1, lifted.run.id: 1}
    with Store.open(settings.database.path) as store:
        assert [l.reason for l in store.run_links(still.run.id) if l.url == jrheum] == ["excluded"]
        marked = {l.url: l for l in store.run_links(excluded.run.id)}
        assert (marked[jrheum].status.value, marked[jrheum].reason) == ("skipped", "excluded")
        pages = {p.url: p for p in store.run_pages(excluded.run.id)}
        again = {l.url: l for l in store.run_links(lifted.run.id)}
        assert (again[jrheum].status.value, again[jrheum].reason) == site.truth[jrheum]
    own = {p.url for p in pages.values() if p.links_run is None}
    assert own == {marked[jrheum].page} and all(p.status == "not_modified" for p in pages.values())


async def test_a_resumed_run_does_not_check_again(site: SimulatedSite, tmp_path: Path) -> None:
    settings = demo_settings(site, tmp_path, smtp_port=1)
    first = await run_audit(settings)
    db = sqlite3.connect(settings.database.path)
    # Simulate a crash half-way: the run is unfinished and half its observations are gone.
    db.execute("UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?", (first.run.id,))
    kept = db.execute("SELECT count(*) FROM observations WHERE run_id = ?", (first.run.id,)).fetchone()[0]
    db.execute("DELETE FROM observations WHERE run_id = ? AND id % 2 = 0", (first.run.id,))
    remaining = db.execute("SELECT count(*) FROM observations WHERE run_id = ?", (first.run.id,)).fetchone()[0]
    db.commit()
    db.close()
    again = await run_audit(settings)
    assert again.resumed and again.run.id == first.run.id
    assert again.checked == kept - remaining
    assert again.run.status == "finished"


async def test_a_run_stopped_while_fetching_pages_resumes_them_all(
        site: SimulatedSite, tmp_path: Path) -> None:
    settings = demo_settings(site, tmp_path, smtp_port=1)
    task = asyncio.create_task(run_audit(settings))
    # Stop it as soon as the run exists, while its pages are being fetched.
    for _ in range(400):
        await asyncio.sleep(0.002)
        if Path(settings.database.path).exists():
            with Store.open(settings.database.path) as store:
                run = store.latest_run(finished_only=False)
            if run is not None:
                assert store is not None
                break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with Store.open(settings.database.path) as store:
        (run,) = store.runs()
        assert run.status == "interrupted" and store.observed_urls(run.id) == set()
    again = await run_audit(settings)
    assert again.resumed and again.run.id == run.id and again.pages == 2
    with Store.open(settings.database.path) as store:
        assert len(store.runs()) == 1, "the interrupted run is finished, not replaced"
        pages = store.run_pages(again.run.id)
        links = store.run_links(again.run.id)
    assert [p.url for p in pages] == list(site.pages)
    assert {link.url for link in links} == set(site.truth)


async def test_a_run_stopped_while_it_is_being_created_is_closed_as_interrupted(
        site: SimulatedSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM at the first instant: the writer thread commits the run's row
    while the audit is cancelled; the row was left "running" (and the test
    above failed once under load, stopping the audit at that instant)."""
    import time

    created = threading.Event()
    real_start = Store.start_run

    def slow_start(self: Store, *args: Any, **kwargs: Any) -> Any:
        run = real_start(self, *args, **kwargs)
        created.set()
        time.sleep(0.3)  # committed; the audit has not heard back yet
        return run

    monkeypatch.setattr(Store, "start_run", slow_start)
    settings = demo_settings(site, tmp_path, smtp_port=1)
    task = asyncio.create_task(run_audit(settings))
    while not created.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with Store.open(settings.database.path) as store:
        (run,) = store.runs()
    assert run.status == "interrupted"


async def test_ctrl_c_in_a_check_says_that_the_next_audit_resumes(tmp_path: Path, aiohttp_server: Any) -> None:
    """Ctrl-C during `monitor check`: one line telling the user that nothing
    checked is lost and what resumes the run, not a bare "interrupted"."""
    import signal
    import sys

    from aiohttp import web

    asked = asyncio.Event()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text='<html><head><title>P</title></head><body><p><a href="/ok">Fine</a></p>'
                                 '<p><a href="/slow">Slow</a></p></body></html>', content_type="text/html")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="<html><head><title>Fine</title></head><body>x</body></html>",
                            content_type="text/html")

    async def slow(request: web.Request) -> web.Response:
        if not asked.is_set():  # the first check hangs until the Ctrl-C; the resumed one is answered
            asked.set()
            await asyncio.sleep(60)
        return web.Response(text="<html><head><title>Late</title></head><body>x</body></html>",
                            content_type="text/html")

    app = web.Application()
    for path, handler in (("/page", page), ("/ok", ok), ("/slow", slow)):
        app.router.add_get(path, handler)
    server = await aiohttp_server(app)
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[[pages]]\nurl = "http://127.0.0.1:{server.port}/page"\n'
        '[checker]\ntimeout = 30\nretries = 0\nsoft404_probe = false\n'
        'allow_private_networks = ["127.0.0.1/32"]\n'
        f'[database]\npath = "{tmp_path / "monitor.db"}"\n', encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "check", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await asyncio.wait_for(asked.wait(), timeout=30)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 1
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("monitor: interrupted") and "resumes" in last, last
    code, out, err2 = await run_monitor("check", "--config", str(config), "--format", "json")
    assert code == 0, err2
    assert json.loads(out)["run"]["id"] == 1  # the interrupted run, resumed


async def test_a_check_that_cannot_be_recorded_ends_the_audit(
        tmp_path: Path, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holds the database past the busy timeout in the middle
    of the checks (a backup, the sqlite3 shell; a full disk fails the same
    way): every later check would fail to be recorded too. The audit went on
    requesting every remaining URL, and each failure was printed at the end
    as "Task exception was never retrieved"; it now ends at once with the
    database's error, and the run stays open for the next audit to resume."""
    import sys

    import monitor.store
    from aiohttp import web

    from monitor.config import parse_settings
    from monitor.errors import StoreError
    from simkit import DATABASE_HOLDER

    monkeypatch.setattr(monitor.store, "BUSY_TIMEOUT_S", 0.2)  # the 10 s wait, shortened
    links, asked = 300, []
    enough = asyncio.Event()

    async def page(request: web.Request) -> web.Response:
        body = "".join(f'<p><a href="/a/{i}">Article {i}</a>. PubMed, 2019.</p>' for i in range(links))
        return web.Response(text=f"<html><head><title>P</title></head><body>{body}</body></html>",
                            content_type="text/html")

    async def article(request: web.Request) -> web.Response:
        asked.append(request.path)
        if len(asked) == 20:
            enough.set()
        await asyncio.sleep(0.05)
        return web.Response(text=f"<html><head><title>Article {request.match_info['n']}</title></head>"
                                 "<body>x</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/a/{n}", article)
    server = await aiohttp_server(app)
    db = tmp_path / "monitor.db"
    settings = parse_settings({
        "pages": [{"url": f"http://127.0.0.1:{server.port}/page"}],
        "checker": {"concurrency": 4, "per_host": 4, "retries": 0, "soft404_probe": False,
                    "allow_private_networks": ["127.0.0.1/32"]},
        "database": {"path": str(db)}}, "test.toml")
    Store.open(db).close()
    never_retrieved: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: never_retrieved.append(context))
    audit = asyncio.create_task(run_audit(settings))
    await asyncio.wait_for(enough.wait(), 30)
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", DATABASE_HOLDER, str(db),
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert await holder.stdout.readline() == b"held\n"
        with pytest.raises(StoreError, match="locked"):
            await asyncio.wait_for(audit, 60)
        assert len(asked) < links / 2, f"{len(asked)} of {links} URLs requested after the failure"
    finally:
        holder.stdin.write(b"go\n")
        await holder.stdin.drain()
        await holder.wait()
        loop.set_exception_handler(None)
    import gc
    gc.collect()
    assert not [c for c in never_retrieved if "never retrieved" in c.get("message", "")]
    with Store.open(db) as store:
        unfinished = store.unfinished_run()
        assert unfinished is not None and unfinished.id == 1  # resumed by the next audit
