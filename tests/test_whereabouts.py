"""`monitor history` and `monitor check --page` tell an editor the story of
their edits (walkthrough 10, findings 5 and 13).

Three weekly runs (`monitor run`, a subprocess as cron runs it) of a real
page on a loopback server, edited between them as an editor does:

- week 2: the PMC entry's moved link is updated to its new address; the
  Rituximab entry's moved link too; "Keeping Warm"'s malformed `http://`
  is replaced by an address that answers 404 (broken as well);
- week 3: Rituximab's old link is restored (a regression); "Keeping Warm"
  loses its link.

Was: `history http://` said "fix the link on the page ... line 12" of a link
gone since week 2; the PMC link's history ended "now: moved ... new address:"
though the report had counted it fixed; Rituximab's old link showed two
checks with no word that it was off the page in between.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from monitor.cli import cli
from simkit import run_monitor

PMC, RITUXIMAB, WARM = ("Phosphodiesterase-5 inhibitors for secondary Raynaud's: a systematic review",
                        "Rituximab for refractory interstitial lung disease in dermatomyositis",
                        "Keeping Warm: Practical Tips for Raynaud's")


class EditablePage:
    """A watched page an editor changes between runs, and the addresses it cites."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []

    def html(self) -> str:
        rows = "\n".join(f'<p><a href="{href}">{title}</a>. A study of 25 patients. PubMed, 2019.</p>'
                         if href else f"<p>{title}. A study of 25 patients. PubMed, 2019.</p>"
                         for title, href in self.entries)
        return ("<html><head><title>Raynaud's treatments</title></head><body>\n"
                f'<h1>Treatments</h1>\n<a name="r"></a><h2>Reviews</h2>\n{rows}\n</body></html>\n')


@pytest.fixture
async def loopback(aiohttp_server: Any) -> tuple[EditablePage, Callable[[str], str]]:
    page = EditablePage()

    async def watched(request: web.Request) -> web.Response:
        return web.Response(text=page.html(), content_type="text/html")

    async def article(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return web.Response(text=f"<html><head><title>{name}</title></head><body>{name}</body></html>",
                            content_type="text/html")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(f"/articles/{request.match_info['name']}")

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=404, text="<html><head><title>Not found</title></head></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/raynauds.html", watched)
    app.router.add_get("/articles/{name}", article)
    app.router.add_get("/old/{name}", moved)
    app.router.add_get("/gone/{name}", gone)
    server = await aiohttp_server(app)
    return page, lambda path: f"http://127.0.0.1:{server.port}{path}"


def _config(tmp_path: Path, page_url: str) -> Path:
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[[pages]]\nurl = "{page_url}"\nname = "Raynaud\'s treatments"\n\n'
        '[checker]\ntimeout = 2\nretries = 0\nallow_private_networks = ["127.0.0.1/32"]\n\n'
        f'[database]\npath = "{tmp_path / "monitor.db"}"\n\n'
        f'[report]\ndir = "{tmp_path / "reports"}"\nsite_name = "www.sclero.org"\n\n'
        "[email]\nenabled = false\n", encoding="utf-8")
    return config


def history(config: Path, url: str, *more: str) -> str:
    result = CliRunner().invoke(cli, ["history", url, "--config", str(config), *more])
    assert result.exit_code == 0, result.output
    return result.output


async def _three_weeks(tmp_path: Path, loopback: tuple[EditablePage, Callable[[str], str]]) -> Path:
    page, at = loopback
    config = _config(tmp_path, at("/raynauds.html"))
    weeks = [
        [(PMC, at("/old/pmc")), (RITUXIMAB, at("/old/rituximab")), (WARM, "http://")],
        [(PMC, at("/articles/pmc")), (RITUXIMAB, at("/articles/rituximab")), (WARM, at("/gone/warm"))],
        [(PMC, at("/articles/pmc")), (RITUXIMAB, at("/old/rituximab")), (WARM, "")],
    ]
    for week, entries in enumerate(weeks, 1):
        page.entries = entries
        code, out, err = await run_monitor("run", "--config", str(config))
        assert code == 0, err
    return config


async def test_history_tells_where_a_link_is_and_since_when_it_is_off_the_page(
        tmp_path: Path, loopback: tuple[EditablePage, Callable[[str], str]]) -> None:
    page, at = loopback
    config = await _three_weeks(tmp_path, loopback)
    place = f"Raynaud's treatments ({at('/raynauds.html')})"

    # updated in week 2: off the page since run 2, which reported it fixed;
    # its last check is no longer "now", and its new address is no news
    out = history(config, at("/old/pmc"))
    lines = out.splitlines()
    assert lines[2].endswith("  not on the page in runs 2-3"), out  # after the one check, in time order
    assert "  not on any watched page since run 2 (" not in out
    assert any(line.startswith("not on any watched page since run 2 (") and
               line.endswith(f": reported fixed; its entry now links to {at('/articles/pmc')}")
               for line in lines), out
    assert f"last on {place}: line " in out and f"\u201c{PMC}\u201d (run 1, " in out
    assert lines[-1] == "last check: moved \u2014 This article has a new address  [permanent_redirect]", out
    assert "now:" not in out and "new address:" not in out

    # removed in week 2, restored in week 3: the gap is said between the two checks
    out = history(config, at("/old/rituximab"))
    lines = out.splitlines()
    assert [line.split("  ", 2)[2].split()[0] for line in lines[1:4]] == ["moved", "not", "moved"], out
    assert lines[2].endswith("  not on the page in run 2"), out
    assert any(line.startswith(f"cited on {place}: line ") and line.endswith(f"\u201c{RITUXIMAB}\u201d (run 3, "
                                                                               f"{line[-11:-1]})")
               for line in lines), out
    assert lines[-2:] == ["now: moved \u2014 This article has a new address  [permanent_redirect]", f"new address: {at('/articles/rituximab')}"], out

    # the malformed link replaced in week 2 by one that is broken too: not "fixed",
    # no "fix the link on the page" for a link that is not there
    out = history(config, "http://")
    assert out.splitlines()[0] == "http://: malformed, never requested: it is not a valid address, so nobody can open it"
    assert ("  not on any watched page since run 2 (" in out
            and f"; its entry links to {at('/gone/warm')} instead, a problem too (expired)" in out), out
    assert "reported fixed" not in out and "fix the link" not in out
    assert f"  last on {place}: line " in out and f"\u201c{WARM}\u201d (run 1, " in out

    # the one that replaced it, whose entry lost its link in week 3: reported fixed, removed
    out = history(config, at("/gone/warm"))
    assert "not on any watched page since run 3 (" in out and "): reported fixed\n" in out, out
    assert out.splitlines()[-1].startswith("last check: expired \u2014 The page is gone: the site answers "
                                           "'not found' (HTTP 404); failed 1 check in a row since "), out

    # the JSON: the same, in keys added after the others
    gone = json.loads(history(config, at("/old/pmc"), "--format", "json"))
    assert list(gone) == ["url", "observations", "cited", "off_the_pages_since_run", "absent_in_runs",
                          "excluded_since_run"]
    assert [o["run_id"] for o in gone["observations"]] == [1]
    assert gone["cited"] == [] and gone["off_the_pages_since_run"] == 2 and gone["absent_in_runs"] == [2, 3]
    back = json.loads(history(config, at("/old/rituximab"), "--format", "json"))
    assert [o["run_id"] for o in back["observations"]] == [1, 3]
    assert back["off_the_pages_since_run"] is None and back["absent_in_runs"] == [2]
    assert [(c["page"], c["section"], c["entry_title"], c["run_id"]) for c in back["cited"]] == [
        (at("/raynauds.html"), "Reviews", RITUXIMAB, 3)]


async def test_check_of_a_page_says_what_is_fixed_since_the_last_report(
        tmp_path: Path, loopback: tuple[EditablePage, Callable[[str], str]]) -> None:
    """Walkthrough 10 #13: `check --page` after a fix listed what was still
    wrong; the fixed row showed only by its absence."""
    page, at = loopback
    config = _config(tmp_path, at("/raynauds.html"))
    page.entries = [(PMC, at("/old/pmc")), (RITUXIMAB, at("/old/rituximab")), (WARM, at("/gone/warm"))]
    code, out, err = await run_monitor("run", "--config", str(config))
    assert code == 0, err

    # the editor pastes Rituximab's new address and removes the dead link; PMC is left as it was
    page.entries = [(PMC, at("/old/pmc")), (RITUXIMAB, at("/articles/rituximab")), (WARM, "")]
    code, out, err = await run_monitor("check", "--config", str(config), "--page", at("/raynauds.html"))
    assert code == 0, err
    fixed = out[out.index("\nFixed since the last report (run 1, "):].strip().splitlines()
    assert fixed[0].endswith("): 2 links"), out
    assert fixed[1:3] == [f"  + {RITUXIMAB} (Raynaud's treatments)",
                          f"    The entry now links to a new address: {at('/articles/rituximab')}"], out
    assert fixed[3].startswith("    Was: ") and f"({at('/old/rituximab')}), line " in fixed[3], out
    assert fixed[4:6] == [f"  + {WARM} (Raynaud's treatments)", "    The link was removed from the page"], out
    assert at("/old/pmc") in out.split("\nFixed since")[0]  # still listed, above: not fixed

    # checked again with nothing changed since: the report's fixes are still fixes
    # (compared with the last report, not the last check); JSON is the contract's only
    code, out, err = await run_monitor("check", "--config", str(config), "--page", at("/raynauds.html"),
                                       "--format", "json")
    assert code == 0, err
    assert "Fixed since" not in out and json.loads(out)["run"]["partial"] is True

    # a full check (no --page) lists as before: no comparison with the report
    code, out, err = await run_monitor("check", "--config", str(config))
    assert code == 0, err
    assert "Fixed since" not in out


async def test_history_of_a_link_excluded_since_says_it_is_no_longer_checked(
        tmp_path: Path, loopback: tuple[EditablePage, Callable[[str], str]]) -> None:
    """Review 10 #4: a problem link `checker.exclude` excludes since run 2,
    which the report puts under "no longer checked", read in its history as
    cited and checked: "now: expired", the check of run 1."""
    page, at = loopback
    config = _config(tmp_path, at("/raynauds.html"))
    page.entries = [(PMC, at("/articles/pmc")), (WARM, at("/gone/warm"))]
    code, out, err = await run_monitor("run", "--config", str(config))
    assert code == 0, err
    config.write_text(config.read_text().replace("retries = 0\n", f'retries = 0\nexclude = ["{at("/gone/warm")}"]\n'))
    for _ in range(2):  # excluded in runs 2 and 3: since run 2
        code, out, err = await run_monitor("run", "--config", str(config))
        assert code == 0, err
    report = json.loads(next((tmp_path / "reports").glob("report-*-run-2.json")).read_text(encoding="utf-8"))
    assert [row["link"]["url"] for row in report["no_longer_checked"]] == [at("/gone/warm")]

    out = history(config, at("/gone/warm"))
    lines = out.splitlines()
    assert [line.split()[2] for line in lines[1:-3]] == ["expired"], out  # one check: run 1's
    assert lines[-3].startswith(f"cited on Raynaud's treatments ({at('/raynauds.html')}): line "), out
    assert lines[-3].endswith(f"\u201c{WARM}\u201d (run 3, {lines[-3][-11:-1]})"), out
    assert lines[-2] == f"excluded by checker.exclude since run 2 ({lines[-3][-11:-1]}): no longer checked", out
    assert lines[-1].startswith("last check: expired \u2014 The page is gone: the site answers 'not found' "
                                "(HTTP 404); failed 1 check in a row since "), out
    assert lines[-1].endswith("  [http_404]"), out
    assert "now:" not in out

    data = json.loads(history(config, at("/gone/warm"), "--format", "json"))
    assert list(data)[-1] == "excluded_since_run" and data["excluded_since_run"] == 2
    assert [o["run_id"] for o in data["observations"]] == [1]
    # a link still checked has none
    assert json.loads(history(config, at("/articles/pmc"), "--format", "json"))["excluded_since_run"] is None
    assert "excluded" not in history(config, at("/articles/pmc"))


def test_a_long_history_collapses_the_same_answer_and_counts_the_failures(tmp_path: Path) -> None:
    """Walkthrough 11 #10: 52 weekly checks were 52 lines, 35 identical "ok"
    lines before the week it expired. Now a run of the same answer is one
    line with its first and last time and its count, and a link that both
    worked and failed says how often it failed; the JSON keeps every check."""
    import sqlite3

    from bench.report_scale import build

    db = tmp_path / "monitor.db"
    build(db, runs=12, links=400)
    config = _config(tmp_path, "https://www.sclero.org/scleroderma/topic-0/treatments.html")
    with sqlite3.connect(db) as conn:
        steady = conn.execute("SELECT url FROM url_state WHERE recent NOT LIKE '%error%' AND status = 'ok' "
                              "AND NOT flapping LIMIT 1").fetchone()[0]
        flapping = conn.execute("SELECT url FROM url_state WHERE flapping LIMIT 1").fetchone()[0]
        fails = conn.execute("SELECT count(*) FROM observations WHERE url = ? AND status != 'ok'",
                             (flapping,)).fetchone()[0]
    text = history(config, steady)
    checks = [line for line in text.splitlines() if line.startswith("  20")]
    assert len(checks) == 1 and " .. " in checks[0] and "(12 checks, the latest shown)" in checks[0], text
    assert "failed " not in text  # it never failed
    text = history(config, flapping)
    assert 0 < fails < 12 and f"failed {fails} of the 12 checks kept (since 2025-11-24)" in text, text
    checks = [line for line in text.splitlines() if line.startswith("  20")]
    assert len(checks) == 12  # two ok, one 503, over and over: no three alike in a row to collapse
    assert len(json.loads(history(config, steady, "--format", "json"))["observations"]) == 12
