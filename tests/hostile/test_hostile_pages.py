"""Watched pages and cited servers that answer, but badly: what is kept and said.

- A watched page that answers 200 with no page in it (an empty body, bytes
  that are no text, a charset label that makes it unreadable, HTML with no
  link) after a run that read links on it is a page that could not be read:
  last week's problems stay open, never "Fixed since last report". The same
  HTML with no link read twice in a row is the page (its links moved away):
  the second time its problems are fixed and a content note says why.
- A watched page announcing more than the page limit is refused at once.
- A cited server's long redirect chain of long Locations is stored bounded,
  and `monitor history` still reads it.

Real servers on loopback (aiohttp, a raw asyncio one), a real SQLite file,
a real SMTP sink (robust9 findings 1, 4, 13; review9 #8).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from monitor.cli import cli
from monitor.client import Client
from monitor.config import (CheckerSettings, DatabaseSettings, EmailSettings, PageSettings,
                            ReportSettings, Settings, load_settings)
from monitor.crawl import run_audit
from monitor.decode import decode_html
from monitor.extract import extract_page
from monitor.jobs import report_job
from monitor.pages import MAX_PAGE_BYTES, PageFetch, fetch_page, moved_to, no_page_read, stand_in_read
from monitor.store import Store
from monitor.types import Hop, PageRecord

from hostile_kit import RawServer, read_request, start_sink

GOOD = ('<html><head><title>Treatments</title></head><body><h2>Biologics</h2>'
        '<p><a href="/gone">Rituximab trial in early disease</a>. A summary. J Rheumatol. 2020;1(2):3-4.</p>'
        '<p><a href="/fine">Tocilizumab trial in early disease</a>. A summary. J Rheumatol. 2020;1(2):3-4.</p>'
        '</body></html>').encode()
EDITED = GOOD.replace(b'<p><a href="/gone">Rituximab', b'<p>Rituximab')
"""The page as an editor fixes it: the dead link removed, the other kept."""
NO_LINKS = b"<html><head><title>Maintenance</title></head><body><p>Back soon.</p></body></html>"


def settings_for(tmp: Path, port: int, smtp_port: int) -> Settings:
    return Settings(
        pages=(PageSettings(url=f"http://127.0.0.1:{port}/page.html"),),
        checker=CheckerSettings(timeout=2.0, retries=0, soft404_probe=False,
                                allow_private_networks=("127.0.0.1/32",)),
        database=DatabaseSettings(path=str(tmp / "m.db")),
        report=ReportSettings(dir=str(tmp / "out"), confirm_after_hours=0),
        email=EmailSettings(host="127.0.0.1", port=smtp_port, security="none",
                            sender="m@example.org", recipients=("w@example.org",)),
    )


def write_config(tmp: Path, page_url: str, *, timeout: int = 5, report: str = "",
                 email: str = "enabled = false\n") -> Path:
    """monitor.toml watching `page_url` on loopback, no retries and no soft-404
    probe, the database and reports under `tmp`; `report` adds to [report],
    `email` is the [email] table's body."""
    config = tmp / "monitor.toml"
    config.write_text(f'[[pages]]\nurl = "{page_url}"\n'
                      '[checker]\nallow_private_networks = ["127.0.0.1/32"]\n'
                      f'timeout = {timeout}\nretries = 0\nsoft404_probe = false\n'
                      f'[database]\npath = "{tmp / "m.db"}"\n'
                      f'[report]\ndir = "{tmp / "out"}"\n{report}[email]\n{email}', encoding="utf-8")
    return config


async def serve(aiohttp_server: Any, page: dict[str, Any]) -> int:
    """The watched page (`page["body"]`, served as `page["type"]`, HTML by
    default, as the test changes it), a gone link, and fine ones: /fine with
    the cited title of the one-entry pages, /fine/N, /menu/NAME and / for
    the pages of many entries."""
    async def watched(request: web.Request) -> web.Response:
        return web.Response(body=page["body"], headers={"Content-Type": page.get("type", "text/html")})

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=404, text="<title>Not found</title>", content_type="text/html")

    async def cited(request: web.Request) -> web.Response:
        return web.Response(text="<title>Tocilizumab trial in early disease</title>", content_type="text/html")

    async def fine(request: web.Request) -> web.Response:
        return web.Response(text="<title>A study</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/page.html", watched)
    app.router.add_get("/gone", gone)
    app.router.add_get("/fine", cited)
    app.router.add_get("/fine/{n}", fine)
    app.router.add_get("/menu/{name}", fine)
    app.router.add_get("/", fine)
    return int((await aiohttp_server(app)).port)


@pytest.mark.parametrize(("body", "content_type", "failed", "fixed"), [
    pytest.param(os.urandom(200_000), "text/html", True, 0, id="random-bytes"),
    pytest.param(b"", "text/html", True, 0, id="empty"),
    pytest.param(b"\r\n \n", "text/html", True, 0, id="blank"),
    pytest.param(GOOD, "text/html; charset=utf-16", True, 0, id="utf16-label-on-ascii"),
    pytest.param(NO_LINKS, "text/html", True, 0, id="html-without-links"),
    # Controls: the page unchanged, and the page edited to drop the dead link.
    pytest.param(GOOD, "text/html", False, 0, id="unchanged"),
    pytest.param(EDITED, "text/html", False, 1, id="dead-link-removed-is-fixed"),
])
async def test_a_watched_page_with_no_page_in_it_keeps_its_problems_open(
        tmp_path: Path, aiohttp_server: Any, body: bytes, content_type: str, failed: bool,
        fixed: int) -> None:
    """It was "ok" with 0 links, and last week's open 404 went under "Fixed
    since last report" (how: removed), the report saying nothing about the
    page; the terminal said "run 2: 0 links."."""
    page = {"body": GOOD, "type": "text/html"}
    port = await serve(aiohttp_server, page)
    sink, smtp, smtp_port = await start_sink()
    settings = settings_for(tmp_path, port, smtp_port)
    try:
        first = await run_audit(settings)
        await report_job(settings, run_id=first.run.id, send=True)
        page["body"], page["type"] = body, content_type
        second = await run_audit(settings)
        await report_job(settings, run_id=second.run.id, send=True)
    finally:
        smtp.close()
    data = json.loads(next((tmp_path / "out").glob(f"*run-{second.run.id}.json")).read_text())
    assert data["counts"]["fixed"] == fixed, data["counts"]
    assert data["counts"]["pages_failed"] == int(failed)
    assert second.pages_failed == int(failed)
    (record,) = data["pages"]
    if failed:
        assert record["error"].endswith(
            "it had 2 links when last read, so this is not taken as their removal"), record["error"]
        # The webmaster is told why, in the mail (its text part) as in the report.
        mail = email.message_from_bytes(sink.messages[-1][2], policy=email.policy.default)
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert record["error"].split(";")[0] in " ".join(text.split()), text
        # The failed read does not become the copy that a later 304 reuses.
        with Store.open(settings.database.path) as store:
            last = store.last_page(settings.pages[0].url)
        assert last is not None and last.run_id == first.run.id


async def test_the_week_after_a_page_with_no_page_in_it_reads_it_again(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """Two empty weeks in a row stay failed (last read: 2 links); when the
    page is back, its links are read and the 404 is still open."""
    page = {"body": GOOD, "type": "text/html"}
    port = await serve(aiohttp_server, page)
    sink, smtp, smtp_port = await start_sink()
    settings = settings_for(tmp_path, port, smtp_port)
    smtp.close()
    await run_audit(settings)
    page["body"] = b""
    assert (await run_audit(settings)).pages_failed == 1
    assert (await run_audit(settings)).pages_failed == 1
    page["body"] = GOOD
    back = await run_audit(settings)
    assert back.pages_failed == 0
    with Store.open(settings.database.path) as store:
        links = store.run_links(back.run.id)
    assert sorted((link.url.rsplit("/", 1)[-1], link.status.value) for link in links) == [
        ("fine", "ok"), ("gone", "expired")]


MOVED = (b"<html><head><title>Treatments</title></head><body><h1>Treatments</h1>"
         b"<p>The references of this page moved to its sub-page.</p></body></html>")
"""The page as its editors left it: valid HTML, its references moved elsewhere."""


async def weeks(tmp_path: Path, aiohttp_server: Any, bodies: list[bytes]) -> list[dict[str, Any]]:
    """One audit and report a week, the page answering each of `bodies` in turn: the reports' JSON."""
    page = {"body": GOOD, "type": "text/html"}
    port = await serve(aiohttp_server, page)
    _, smtp, smtp_port = await start_sink()
    settings = settings_for(tmp_path, port, smtp_port)
    reports = []
    try:
        for body in bodies:  # each report mailed: the next one compares with it
            page["body"] = body
            run = (await run_audit(settings)).run.id
            await report_job(settings, run_id=run, send=True)
            reports.append(json.loads(next((tmp_path / "out").glob(f"*run-{run}.json")).read_text()))
    finally:
        smtp.close()
    return reports


def no_links_notes(report: dict[str, Any]) -> list[str]:
    return [n["words"] for n in report["content_audit"]["pages_changed"] if "now has no links" in n["words"]]


async def test_a_page_whose_links_moved_fails_once_then_is_taken_as_edited(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """Review 9 #8: a page whose references moved to a sub-page (valid HTML,
    a title, no link) failed every week, forever: the last good read stayed
    the 2-link one. The first link-less read is a failed fetch (last week's
    404 stays open); the second in a row is the page's new state, said once
    as a content note, the 404 fixed ("removed from the page"); the weeks
    after are quiet; when links come back they are read again."""
    first, second, third, fourth, back = await weeks(tmp_path, aiohttp_server,
                                                     [GOOD, MOVED, MOVED, MOVED, GOOD])
    assert first["counts"]["pages_failed"] == 0 and first["counts"]["expired"] == 1
    assert second["counts"]["pages_failed"] == 1 and second["counts"]["fixed"] == 0
    assert "holds no links" in second["pages"][0]["error"] and not no_links_notes(second)
    assert third["counts"]["pages_failed"] == 0, third["pages"]
    assert third["pages"][0]["status"] == "ok" and third["pages"][0]["links"] == 0
    assert [f["how"] for f in third["fixed_since_last"]] == ["removed"], third["fixed_since_last"]
    (note,) = no_links_notes(third)
    assert note.startswith("The page now has no links (it had 2 links)"), note
    assert fourth["counts"]["pages_failed"] == 0 and fourth["counts"]["fixed"] == 0
    assert not no_links_notes(fourth) and not fourth["fixed_since_last"]
    assert back["counts"]["pages_failed"] == 0 and back["counts"]["expired"] == 1
    assert not no_links_notes(back)


@pytest.mark.parametrize("bodies", [
    pytest.param([GOOD, NO_LINKS, MOVED, MOVED], id="another-link-less-page-starts-again"),
    pytest.param([GOOD, b"", MOVED, MOVED], id="an-empty-body-is-no-first-read"),
    pytest.param([GOOD, MOVED, b"", MOVED, MOVED], id="an-empty-body-between-starts-again"),
])
async def test_only_the_same_link_less_page_twice_in_a_row_is_taken(
        tmp_path: Path, aiohttp_server: Any, bodies: list[bytes]) -> None:
    """Not the same answer (another title), or a hard failure (an empty body,
    never taken) between: the count starts again; the last two reads here
    are the same link-less page, so the last is taken."""
    reports = await weeks(tmp_path, aiohttp_server, bodies)
    assert [r["counts"]["pages_failed"] for r in reports] == [0] + [1] * (len(bodies) - 2) + [0]
    assert [len(no_links_notes(r)) for r in reports] == [0] * (len(bodies) - 1) + [1]
    assert reports[-1]["counts"]["fixed"] == 1


@pytest.mark.parametrize(("body", "content_type", "before", "words"), [
    (b"", "text/html", 3, "it answered with an empty body; it had 3 links when last read"),
    (bytes(range(256)) * 50, "text/html", 1, "it answered with bytes that are not text"),
    (GOOD, "text/html; charset=utf-16", 2, "it answered with text that is not HTML"),
    (b"plain words, no markup at all", "text/plain", 2, "it answered with text that is not HTML"),
    (NO_LINKS, "text/html", 2, "it answered with a page that holds no links; it had 2 links"),
    (NO_LINKS, "text/html", 0, None),  # it had none before either: the page as it is
    (b"", "text/html", 0, None),
])
def test_no_page_read(body: bytes, content_type: str, before: int, words: str | None) -> None:
    said = no_page_read(body, decode_html(body, content_type), before)
    assert said == words if words is None else said is not None and said.startswith(words)


# -- a page announcing more than the limit --------------------------------------------


async def test_a_page_announcing_more_than_the_limit_is_refused_at_once(
        raw_server: Any, checker_settings: Any) -> None:
    """It was read until the page timeout (30 s in a run): the server sends
    its 2 GB slowly, or never."""
    async def announce(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        await read_request(reader, raw)
        await raw.send(writer, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                               b"Content-Length: 2147483648\r\n\r\n<html><head><title>Huge")
        await asyncio.sleep(30)

    raw = await raw_server(announce)
    async with Client(checker_settings(timeout=5.0)) as client:
        fetched = await fetch_page(client, raw.url("/page.html"), timeout=5.0)
    assert fetched.status == "error"
    assert fetched.error == "page larger than 20 MB (the server announced 2,147 MB)"
    assert MAX_PAGE_BYTES < 2147483648


# -- a cited server's long redirect chain ----------------------------------------------


PAD = "a" * 30_000  # under client.HEADER_LIMIT (32 KB): every hop is accepted


async def test_a_redirect_chain_of_long_locations_is_stored_bounded(tmp_path: Path, aiohttp_server: Any) -> None:
    """19 hops of 30 KB Locations were kept whole: 1.1 MB per link per run,
    kept keep_weeks (104) weeks; `monitor history` still says the chain."""
    async def page(request: web.Request) -> web.Response:
        entries = "".join(f'<p><a href="/hop/0/s{i}">Study number {i}</a>. J Rheumatol. 2020;1(2):3-4.</p>'
                          for i in range(10))
        return web.Response(text=f"<html><head><title>T</title></head><body><h2>Refs</h2>{entries}</body></html>",
                            content_type="text/html")

    async def hop(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n >= 19:
            return web.Response(status=404, text="<title>Not found</title>", content_type="text/html")
        raise web.HTTPFound(f"/hop/{n + 1}/{request.match_info['tag'][:10]}?{PAD}")

    app = web.Application(handler_args={"max_line_size": 65536, "max_field_size": 65536})
    app.router.add_get("/page.html", page)
    app.router.add_get("/hop/{n}/{tag}", hop)
    server = await aiohttp_server(app)
    config = write_config(tmp_path, f"http://127.0.0.1:{server.port}/page.html")
    await run_audit(load_settings(config))
    with sqlite3.connect(tmp_path / "m.db") as conn:
        (longest, n) = conn.execute("SELECT max(length(redirects)), count(*) FROM observations").fetchone()
    conn.close()
    assert n == 10
    assert longest <= 6 * 2 * 2100, f"{longest:,} characters of redirects for one link"
    url = f"http://127.0.0.1:{server.port}/hop/0/s0"
    result = CliRunner().invoke(cli, ["history", url, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "(13 more redirects, not kept)" in result.output
    result = CliRunner().invoke(cli, ["history", url, "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.output)["observations"]
    assert [h["status"] for h in entry["redirects"]] == [302] * 5 + [0, 302]
    assert entry["redirects"][-1]["location"].endswith("\u2026")


# -- a page something else answers for: a parked domain, an error page, a wall --------


def sclero_page(extra: str = "", title: str = "Treatments for Dermatomyositis (DM) and Polymyositis (PM)") -> bytes:
    """A page as sclero.org's are: a menu, then citation entries under headings;
    one entry cites a link that is gone (404), the eleven others are fine."""
    entries = ['<p><a href="/gone">Rituximab for refractory dermatomyositis in adults</a>. A retrospective '
               'study of 25 patients. PubMed, Clin Rheumatol, 04/30/2018.</p>']
    entries += [f'<p><a href="/fine/{i}">Study {i} of intravenous immunoglobulin in polymyositis</a>. '
                f'Patients improved. PubMed, J Rheumatol, 0{i % 9 + 1}/12/2019.</p>' for i in range(11)]
    menu = "".join(f'<a href="/menu/{name}.html">{name}</a> ' for name in ("home", "types", "disclaimer"))
    return (f"<html><head><title>{title}</title></head><body><div>{menu}</div>"
            f"<h1>{title}</h1><h2>Biological Agents</h2>{''.join(entries[:6])}{extra}"
            f"<h2>Immunoglobulin</h2>{''.join(entries[6:])}</body></html>").encode()


ADS = "".join(f'<li><a href="/?q={words}">{words.replace("+", " ")}</a></li>'
              for words in ("scleroderma+treatment", "lupus+symptoms", "health+insurance",
                            "arthritis+pain+relief", "online+pharmacy", "cheap+flights"))
PARKED = (f"<html><head><title>sclero.org</title></head><body><h1>sclero.org</h1>"
          f"<p>This domain may be for sale!</p><h2>Related searches</h2><ul>{ADS}</ul></body></html>").encode()
"""A lapsed domain's parking page: six advertising links, "Related searches"."""
SOFT_404 = (b'<html><head><title>Page Not Found | International Scleroderma Network</title></head><body>'
            b'<a href="/menu/home.html">home</a> <a href="/menu/types.html">types</a>'
            b"<p>Sorry, the page you requested could not be found.</p></body></html>")
SOFT_404_SITE_TITLE = (b"<html><head><title>International Scleroderma Network</title></head><body>"
                       b'<a href="/menu/home.html">home</a> <a href="/">search</a>'
                       b"<p>The page you are looking for could not be found.</p></body></html>")
SIGN_IN = (b"<html><head><title>Sign in</title></head><body><form action='/login' method='post'>"
           b"<input name='user'><input name='password' type='password'></form></body></html>")
BOT_WALL = (b"<html><head><title>Just a moment...</title></head><body><p>Checking your browser before "
            b"accessing sclero.org.</p><p>Enable JavaScript and cookies to continue</p></body></html>")
MENTIONS = ('<p><a href="/fine/a">Domain for sale scams target patient forums</a>. "This domain may be for '
            'sale", the page said; related searches led to ads. The page not found errors... PubMed, '
            'J Med Internet Res, 05/01/2019.</p>')
"""An entry about parking pages, quoting their words: the page it is on is a real page."""


async def stand_in_weeks(tmp_path: Path, aiohttp_server: Any, bodies: list[bytes]) -> tuple[Path, list[dict[str, Any]]]:
    """One `monitor check` and report a week (the report mailed: the next
    compares with it), the page answering each of `bodies`: the config and
    the reports' JSON, each with the week's stderr under "stderr" and its
    mail's text part under "mail"."""
    page = {"body": bodies[0]}
    port = await serve(aiohttp_server, page)
    sink, smtp, smtp_port = await start_sink()
    settings = settings_for(tmp_path, port, smtp_port)
    config = write_config(tmp_path, settings.pages[0].url, timeout=2, report="confirm_after_hours = 0\n",
                          email=f'host = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
                                'sender = "m@example.org"\nrecipients = ["w@example.org"]\n')
    reports = []
    try:
        for body in bodies:
            page["body"] = body
            checked = await asyncio.to_thread(CliRunner().invoke, cli, ["check", "--config", str(config)])
            assert checked.exit_code in (0, 1), checked.output
            with Store.open(str(tmp_path / "m.db")) as store:
                run = store.latest_run()
            assert run is not None
            await report_job(load_settings(config), run_id=run.id, send=True)
            data = json.loads(next((tmp_path / "out").glob(f"*run-{run.id}.json")).read_text())
            data["stderr"] = " ".join(checked.stderr.split())
            mail = email.message_from_bytes(sink.messages[-1][2], policy=email.policy.default)
            data["mail"] = " ".join(mail.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
            reports.append(data)
    finally:
        smtp.close()
    return config, reports


PARKED_WORDS = ("the page now shows a domain-parking page (it says 'this domain may be for sale'): "
                "the site's domain may have lapsed; it had 15 links when last read, so this is not "
                "taken as their removal")


@pytest.mark.parametrize(("body", "words"), [
    pytest.param(PARKED, PARKED_WORDS, id="parked-domain"),
    pytest.param(SOFT_404, "the page now shows an error page (its title is 'Page Not Found | International "
                 "Scleroderma Network'): the page may have been moved or removed", id="soft-404-title"),
    pytest.param(SOFT_404_SITE_TITLE, "the page now shows an error page (it says 'the page you are looking for "
                 "could not be found'): the page may have been moved or removed", id="soft-404-text"),
    pytest.param(SIGN_IN, "the page now shows a sign-in page (its title is 'Sign in'): the monitor reads no "
                 "page behind a login", id="sign-in"),
    pytest.param(BOT_WALL, "the page now shows a bot check (Cloudflare) instead of the page: the site turned "
                 "the monitor away", id="bot-wall"),
])
async def test_a_page_something_else_answers_for_keeps_its_problems_open(
        tmp_path: Path, aiohttp_server: Any, body: bytes, words: str) -> None:
    """A domain that lapsed answered 200 with a parking page: its six
    advertising links were read as the page's links and last week's 404
    went under "Fixed since last report" ("removed"), the page "ok". An
    error page served 200, a sign-in page, a bot wall: the same. Now the
    page could not be read, saying what answered instead, on stderr, in the
    report (banner, JSON, mail), its problems kept open, the week after
    too; when the page is back, the 404 is still there."""
    _, (first, second, third, back) = await stand_in_weeks(
        tmp_path, aiohttp_server, [sclero_page(), body, body, sclero_page()])
    assert first["counts"]["expired"] == 1 and first["counts"]["pages_failed"] == 0
    for week in (second, third):
        assert week["counts"]["fixed"] == 0, week["fixed_since_last"]
        assert week["counts"]["pages_failed"] == 1, week["pages"]
        (record,) = week["pages"]
        assert record["status"] == "error" and record["error"].startswith(words), record["error"]
        assert words in week["stderr"], week["stderr"]
        assert words in week["mail"], week["mail"]
        assert record["error"].endswith("it had 15 links when last read, so this is not taken as their removal")
    html = next((tmp_path / "out").glob(f"*run-{second['run']['id']}.html")).read_text()
    assert " ".join(words.replace("'", "&#39;").split()) in " ".join(html.split())
    assert back["counts"]["pages_failed"] == 0 and back["counts"]["expired"] == 1
    assert not back["fixed_since_last"]


@pytest.mark.parametrize("body", [
    pytest.param(sclero_page(MENTIONS), id="same-title"),
    pytest.param(sclero_page(MENTIONS, title="Sorry, page not found? This domain may be for sale"), id="new-title"),
])
async def test_a_real_page_that_mentions_parking_words_is_read_as_the_page(
        tmp_path: Path, aiohttp_server: Any, body: bytes) -> None:
    """The page gained an entry about parking pages, quoting "this domain
    may be for sale", "related searches", "page not found" (even in a title
    an editor chose): it keeps its entries, so it is the page, read as
    ever; the 404 still open, the new link checked."""
    _, (first, second) = await stand_in_weeks(tmp_path, aiohttp_server, [sclero_page(), body])
    assert second["counts"]["pages_failed"] == 0, second["pages"]
    (record,) = second["pages"]
    assert record["status"] == "ok" and record["links"] == 16, record
    assert second["counts"]["expired"] == 1 and second["counts"]["fixed"] == 0


async def test_a_page_edited_to_drop_its_dead_link_is_still_fixed(tmp_path: Path, aiohttp_server: Any) -> None:
    """Control: the editor removed the 404's entry; the page is read and the 404 is fixed."""
    edited = sclero_page().replace(b'<a href="/gone">Rituximab', b'Rituximab')
    _, (_, second) = await stand_in_weeks(tmp_path, aiohttp_server, [sclero_page(), edited])
    assert second["counts"]["pages_failed"] == 0 and second["counts"]["fixed"] == 1
    assert [f["how"] for f in second["fixed_since_last"]] == ["removed"]


RESTRUCTURED = ("<html><head><title>Treatments</title></head><body><div>"
                + "".join(f'<a href="/menu/{name}.html">{name}</a> ' for name in ("home", "types", "disclaimer"))
                + '</div><h1>Treatments</h1><p>The treatments are now listed on two pages: '
                '<a href="/fine/a-m">A to M</a> and <a href="/fine/n-z">N to Z</a>.</p>'
                "<p>Link not working? Report a page not found to the webmaster.</p></body></html>").encode()


async def test_a_page_restructured_with_an_error_footer_is_read_as_the_page(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """Its entries moved to two sub-pages, retitled "Treatments", a footer
    asking to report a "page not found": it was "an error page standing in
    for it" every week, its 404 kept open, its new links never checked
    (review 10 #2). It is the page: the 404's entry removed, fixed."""
    _, (_, second) = await stand_in_weeks(tmp_path, aiohttp_server, [sclero_page(), RESTRUCTURED])
    assert second["counts"]["pages_failed"] == 0, second["pages"]
    (record,) = second["pages"]
    assert record["status"] == "ok" and record["links"] == 5, record
    assert [f["how"] for f in second["fixed_since_last"]] == ["removed"]


def _last_read(links: int, entries: tuple[str, ...]) -> PageRecord:
    return PageRecord(run_id=1, url="http://127.0.0.1:1/page.html", status="ok", links=links, entries=entries,
                      title="Treatments for Dermatomyositis (DM) and Polymyositis (PM)")


ENTRIES = tuple(f"Study {i} of intravenous immunoglobulin in polymyositis" for i in range(10))


@pytest.mark.parametrize(("last", "entries", "words"), [
    (_last_read(12, ENTRIES), (), "the page now shows a domain-parking page"),
    (_last_read(12, ENTRIES), ENTRIES[:4], "the page now shows a domain-parking page"),  # 4 of 10 kept
    (_last_read(12, ENTRIES), ENTRIES[:5], None),  # half its entries are there: the page
    (_last_read(20, ()), (), "the page now shows a domain-parking page"),  # no entries: 20 links -> 6
    (_last_read(3, ()), (), None),  # it had fewer links than the ads: nothing lost
    (_last_read(0, ()), (), None),
    (None, (), None),  # never read: nothing to keep open
])
def test_stand_in_read(last: PageRecord | None, entries: tuple[str, ...], words: str | None) -> None:
    fetched = PageFetch(url="http://127.0.0.1:1/page.html", final_url="http://127.0.0.1:1/page.html",
                        status="ok", http_status=200, body=PARKED, content_type="text/html")
    said = stand_in_read(fetched, PARKED.decode(), 6, entries, last)
    assert said == words if words is None else said is not None and said.startswith(words), said


RAYNAUD = "https://www.sclero.org/scleroderma/treatments/raynauds/a-to-z.html"
NAV = '<ul><li><a href="/">Home</a></li><li><a href="/about.html">About the ISN</a></li></ul>'
MOVED_ON = ('<p>The treatments are now listed on two pages: <a href="/r/a-m.html">A to M</a> and '
            '<a href="/r/n-z.html">N to Z</a>.</p>')
BIG_MENU = "<ul>" + "".join(f'<li><a href="/m/{i}.html">Scleroderma topic {i}</a></li>' for i in range(80)) + "</ul>"


@pytest.mark.parametrize(("title", "body", "words"), [
    # Restructured by its editors (review 10 #2): its entries moved to two
    # sub-pages, retitled, a footer naming an error. The page, read as such.
    *[pytest.param(title, f"{NAV}{MOVED_ON}<p>{footer}</p>", None, id=f"{title}|{footer[:20]}")
      for title in ("Raynaud's Treatments", "Raynaud's A to Z (index)", "Index")
      for footer in ("Link not working? Report a page not found to the webmaster.",
                     "Found a link that is not found? Tell us.", "Page not found? Use the search box.")],
    # Controls: the site's error page, with its menu (80 links), said by its
    # heading, or by its sentence (its own words are few).
    pytest.param("International Scleroderma Network", f"{BIG_MENU}<h1>Page Not Found</h1><p>Try the search.</p>",
                 "the page now shows an error page (its heading is 'Page Not Found')", id="error-heading"),
    pytest.param("International Scleroderma Network",
                 f"{BIG_MENU}<p>Sorry, the page you requested could not be found. Try the search box.</p>",
                 "the page now shows an error page (it says 'the page you requested could not be found')",
                 id="error-sentence"),
    pytest.param("Page not found", NAV, "the page now shows an error page (its title is 'Page not found')",
                 id="error-title"),
])
def test_a_restructured_page_is_no_error_page(title: str, body: str, words: str | None) -> None:
    html = f"<html><head><title>{title}</title></head><body>{body}</body></html>"
    last = PageRecord(run_id=1, url=RAYNAUD, status="ok", http_status=200, title="Raynaud's Treatments A to Z",
                      links=40, entries=tuple(f"Entry {i}" for i in range(30)))
    found = extract_page(html, RAYNAUD)
    fetched = PageFetch(url=RAYNAUD, final_url=RAYNAUD, status="ok", http_status=200, body=html.encode(),
                        content_type="text/html")
    said = stand_in_read(fetched, html, len(found.citations), found.entries, last)
    assert said == words if words is None else said is not None and said.startswith(words), said


# -- what a hostile page or server can make the history hold ---------------------------


HUGE = 500_000


async def test_a_huge_title_href_and_long_redirects_keep_the_history_small(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """A page's 500,000-character <title> and href were kept whole in every
    week's rows (the page's record; the occurrence's href and URL, the
    observation's and the URL state's URL), and a server's 30 KB Location
    (the most the client takes) as each redirected link's final address
    and as its "New address": a 4.7 MB database and a 3.2 MB JSON report
    for three links. Now: the title and the href clipped, the href not
    requested (no server takes it: it is a malformed link to correct), the
    final address clipped as a hop is, and no address offered that long.
    The report still renders and says what to do."""
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=(
            f"<html><head><title>{'T' * HUGE}</title></head><body><h2>Refs</h2>"
            f'<p><a href="/long?{"b" * HUGE}">A study of long hrefs in early disease</a>. J Rheumatol. 2020;1(2):3-4.</p>'
            '<p><a href="/moved">A study of moved pages in early disease</a>. J Rheumatol. 2020;1(2):3-4.</p>'
            '<p><a href="/temp">A study of temporary moves in early disease</a>. J Rheumatol. 2020;1(2):3-4.</p>'
            "</body></html>"), content_type="text/html")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(f"/new?{PAD}")

    async def temp(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/new?{PAD}")

    hits: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="<title>A study</title>", content_type="text/html")

    app = web.Application(handler_args={"max_line_size": 2 * HUGE, "max_field_size": 65536})
    app.router.add_get("/page.html", page)
    app.router.add_get("/moved", moved)
    app.router.add_get("/temp", temp)
    app.router.add_get("/new", elsewhere)
    app.router.add_get("/long", elsewhere)
    server = await aiohttp_server(app)
    config = write_config(tmp_path, f"http://127.0.0.1:{server.port}/page.html", report="confirm_after_hours = 0\n")
    settings = load_settings(config)
    run = (await run_audit(settings)).run.id
    await report_job(settings, run_id=run, send=False)
    assert "/long" not in hits, hits  # no server takes it; the redirects are followed to /new
    with sqlite3.connect(tmp_path / "m.db") as conn:
        longest = {f"{table}.{column}": conn.execute(f"SELECT max(length({column})) FROM {table}").fetchone()[0]
                   for table, column in [("pages", "title"), ("occurrences", "raw_href"), ("occurrences", "url"),
                                         ("observations", "url"), ("observations", "final_url"),
                                         ("observations", "suggested_url"), ("url_state", "url")]}
    conn.close()
    assert all((n or 0) <= 2100 for n in longest.values()), longest
    assert (tmp_path / "m.db").stat().st_size < 400_000
    data = json.loads(next((tmp_path / "out").glob(f"*run-{run}.json")).read_text())
    assert len(json.dumps(data)) < 100_000
    assert data["pages"][0]["title"].endswith("T\u2026")
    problems = {p["link"]["text"]: p for group in data["needs_fixing"] for s in group["sections"]
                for e in s["entries"] for p in e["problems"]}
    long_href = problems["A study of long hrefs in early disease"]
    assert long_href["link"]["reason"] == "invalid_url" and long_href["link"]["url"].endswith("b\u2026")
    assert long_href["advice"].startswith("Correct the link's address on the page")
    moved_link = problems["A study of moved pages in early disease"]
    assert moved_link["link"]["status"] == "moved" and moved_link["fix_url"] is None
    assert moved_link["advice"] == "Find the article's new address and update the link."
    assert moved_link["link"]["final_url"].endswith("a\u2026")
    html = next((tmp_path / "out").glob(f"*run-{run}.html")).read_text()
    assert "This article has a new address" in html and len(html) < 100_000


@pytest.mark.parametrize(("location", "moved"), [
    ("http://127.0.0.1:1/new?" + "a" * 30_000, None),
    ("http://127.0.0.1:1/new.html", "http://127.0.0.1:1/new.html"),
])
def test_a_watched_page_is_not_told_to_move_to_an_address_longer_than_any_link(
        location: str, moved: str | None) -> None:
    """Its [[pages]] url was to be updated to a 30 KB address, kept with each read."""
    url = "http://127.0.0.1:1/page.html"
    fetched = PageFetch(url=url, final_url=location, status="ok", http_status=200,
                        redirects=(Hop(url, 301, location),))
    assert moved_to(fetched) == moved
