"""What scripts read: `check --format json|csv`, `history`, `report`'s JSON.

The CLI runs as a subprocess against a real aiohttp site on loopback and a
real SQLite file. Three promises (contract review 12, findings 2, 3 and 5):

- JSON and CSV are UTF-8 whatever the locale; the text output escapes what
  the terminal's encoding lacks instead of failing half-way;
- a page answered 304 is `"status": "ok"` (as CONTRACT.md shows), with
  `"not_modified": true` beside it; the database keeps "not_modified";
- every moment in the JSON is whole seconds in UTC ("2026-11-23T06:00:00+00:00"),
  and the README's jq recipes work on them; the database keeps microseconds.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.types import iso_moment, whole_second

TITLE = "Raynaud’s treatments — 日本語"
TEXT = "Nifédipine — 日本語 ✓"
ETAG = '"v1"'
PAGE = ("<html><head><meta charset='utf-8'><title>" + TITLE + "</title></head><body>"
        "<h2>Calcium channel blockers</h2><ul>"
        "<li><a href='/ok'>" + TEXT + "</a></li>"
        "<li><a href='/gone'>Article retiré “archivé”</a></li>"
        "</ul></body></html>")
LATIN1 = {"LANG": "C", "PYTHONIOENCODING": "latin-1"}
"""A cron job's environment on an older server: Latin-1 stdout and stderr
(LANG=C alone is coerced to UTF-8 by Python; the Latin-1 encoding is what
`LANG=en_US` on glibc gives)."""
SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:")


async def _site(aiohttp_server: Any) -> str:
    async def page(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == ETAG:  # unchanged: the conditional GET's 304
            return web.Response(status=304, headers={"ETag": ETAG})
        return web.Response(text=PAGE, content_type="text/html", headers={"ETag": ETAG})

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="<html><head><title>Fine</title></head><body>fine</body></html>",
                            content_type="text/html")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="not found")

    app = web.Application()
    app.router.add_get("/page.html", page)
    app.router.add_get("/ok", ok)
    app.router.add_get("/gone", missing)
    app.router.add_get("/missing-page.html", missing)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


def _config(tmp_path: Path, base: str, *, failing_page: bool = False) -> Path:
    path = tmp_path / "monitor.toml"
    more = f'[[pages]]\nurl = "{base}/missing-page.html"\n' if failing_page else ""
    path.write_text(
        f'[[pages]]\nurl = "{base}/page.html"\n{more}'
        '[checker]\nallow_private_networks = ["127.0.0.1/32"]\ntimeout = 2\nretries = 0\n'
        'soft404_probe = false\nconnect_to = {"*" = "refuse"}\n'
        f'[database]\npath = "{tmp_path / "m.db"}"\n'
        f'[report]\ndir = "{tmp_path / "rapports — 2026"}"\nsite_name = "Sclérodermie — “Raynaud’s”"\n'
        '[email]\nenabled = false\n', encoding="utf-8")
    return path


async def _monitor(*args: str, env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """`python -m monitor ARGS`: (exit status, stdout's bytes, stderr's bytes)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, env={**base, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out, err


async def _check_json(config: Path) -> dict[str, Any]:
    code, out, err = await _monitor("check", "--format", "json", "--config", str(config))
    assert code == 0, err.decode("utf-8", "replace")
    return json.loads(out.decode("utf-8"))


# -- finding 2: the locale -------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "csv"])
async def test_json_and_csv_are_utf8_on_a_latin1_stdout(tmp_path: Path, aiohttp_server: Any, fmt: str) -> None:
    """Was: "monitor: UnicodeEncodeError: 'latin-1' codec can't encode
    character '\\u2019'", exit 1, half a document, the audit recorded."""
    config = _config(tmp_path, await _site(aiohttp_server))
    code, raw, err = await _monitor("check", "--format", fmt, "--config", str(config), env=LATIN1)
    assert code == 0, err.decode("latin-1")
    out = raw.decode("utf-8")  # JSON is UTF-8 (RFC 8259); the CSV goes to the same scripts
    if fmt == "json":
        doc = json.loads(out)
        texts = [link["text"] for link in doc["links"]]
        assert [p["title"] for p in doc["pages"]] == [TITLE]
    else:
        texts = [row["text"] for row in csv.DictReader(io.StringIO(out, newline=""))]
    assert TEXT in texts and "Article retiré “archivé”" in texts, texts


async def test_the_listing_escapes_what_a_latin1_terminal_lacks(tmp_path: Path, aiohttp_server: Any) -> None:
    """The text listing goes to a person's terminal: a character its encoding
    lacks is shown as an escape, the rest as it is, and the listing is whole."""
    config = _config(tmp_path, await _site(aiohttp_server))
    code, raw, err = await _monitor("check", "--config", str(config), env=LATIN1)
    out, said = raw.decode("latin-1"), err.decode("latin-1")
    assert code == 0, said
    assert "Raynaud\\u2019s treatments \\u2014 \\u65e5\\u672c\\u8a9e" in out, out
    assert "/gone" in out and "NEEDS FIXING" in out, out  # the listing went on past the title
    assert "UnicodeEncodeError" not in said, said


async def test_history_and_report_under_a_latin1_locale(tmp_path: Path, aiohttp_server: Any) -> None:
    """`monitor history` names the page by its title; `monitor report` prints
    the report's folder, here with a dash the terminal lacks."""
    base = await _site(aiohttp_server)
    config = _config(tmp_path, base)
    await _check_json(config)
    code, raw, err = await _monitor("history", f"{base}/gone", "--config", str(config), env=LATIN1)
    assert code == 0, err.decode("latin-1")
    assert "Raynaud\\u2019s" in raw.decode("latin-1"), raw
    code, raw, err = await _monitor("history", f"{base}/gone", "--format", "json", "--config", str(config),
                                    env=LATIN1)
    assert code == 0, err.decode("latin-1")
    assert json.loads(raw.decode("utf-8"))["observations"][0]["status"] == "expired"
    code, raw, err = await _monitor("report", "--config", str(config), env=LATIN1)
    assert code == 0, err.decode("latin-1")
    assert "rapports \\u2014 2026" in raw.decode("latin-1"), raw
    assert list((tmp_path / "rapports — 2026").glob("report-*.json"))


@pytest.mark.parametrize("encoding, errors", [("latin-1", "strict"), ("ascii", "strict"),
                                              ("latin-1", "surrogateescape")])
def test_the_streams_are_made_tolerant_of_any_encoding(encoding: str, errors: str) -> None:
    """`tolerant_streams` on the real streams of a process started with them."""
    code = ("from monitor.cli import tolerant_streams; import sys; tolerant_streams(); "
            "print('Raynaud\\u2019s'); print('caf\\u00e9 \\u2014', file=sys.stderr)")
    env = {**os.environ, "PYTHONIOENCODING": f"{encoding}:{errors}"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode(encoding) == "Raynaud\\u2019s\n"
    assert done.stderr.decode(encoding) == ("caf\u00e9 \\u2014\n" if encoding == "latin-1" else "caf\\xe9 \\u2014\n")


# -- finding 5: a page answered 304 ----------------------------------------------


async def test_a_page_unchanged_since_the_last_read_is_ok_and_says_not_modified(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """A script written to the contract (`select(.status != "ok")`: which
    pages failed) listed every unchanged page as failing, every week."""
    config = _config(tmp_path, await _site(aiohttp_server), failing_page=True)
    first = await _check_json(config)
    again = await _check_json(config)
    read, failed = again["pages"]
    assert (read["status"], read["not_modified"], read["http_status"]) == ("ok", True, 304)
    assert read["links"] == 2 == first["pages"][0]["links"]
    assert (first["pages"][0]["status"], first["pages"][0]["not_modified"]) == ("ok", False)
    assert (failed["status"], failed["not_modified"], failed["http_status"]) == ("error", False, 404)
    assert [p["url"] for p in again["pages"] if p["status"] != "ok"] == [failed["url"]]
    assert list(read)[:4] == ["url", "status", "title", "links"]  # the contract's keys first
    # The listing's words stay; the database keeps its own value (docs/schema.md).
    code, raw, err = await _monitor("check", "--config", str(config))
    assert code == 0, err
    assert "2 links (unchanged since the last fetch)" in raw.decode("utf-8"), raw
    with sqlite3.connect(tmp_path / "m.db") as db:
        assert [s for s, in db.execute("SELECT status FROM pages WHERE url LIKE '%/page.html' ORDER BY run_id")] \
            == ["ok", "not_modified", "not_modified"]
    # The report's JSON as the check's.
    code, _, err = await _monitor("report", "--config", str(config))
    assert code == 0, err
    (saved,) = (tmp_path / "rapports — 2026").glob("report-*.json")
    pages = json.loads(saved.read_text(encoding="utf-8"))["pages"]
    assert [(p["status"], p["not_modified"], p["http_status"]) for p in pages] == [("ok", True, 304),
                                                                                   ("error", False, 404)]


# -- finding 3: moments ----------------------------------------------------------


UTC = dt.timezone.utc


@pytest.mark.parametrize("moment, written", [
    (dt.datetime(2026, 11, 23, 6, 0, 0, 593289, tzinfo=UTC), "2026-11-23T06:00:00+00:00"),
    (dt.datetime(2026, 11, 23, 6, 0, 59, 999999, tzinfo=UTC), "2026-11-23T06:00:59+00:00"),  # cut, not rounded
    (dt.datetime(2026, 11, 23, 6, 0, tzinfo=UTC), "2026-11-23T06:00:00+00:00"),
    (dt.datetime(2026, 11, 23, 7, 30, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=1, minutes=30))),
     "2026-11-23T06:00:05+00:00"),
    (dt.datetime(2026, 11, 23, 6, 0, 5, 12), "2026-11-23T06:00:05+00:00"),  # naive is UTC
    (dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "2026-12-31T23:59:59+00:00"),
])
def test_a_moment_is_written_in_whole_seconds_in_utc(moment: dt.datetime, written: str) -> None:
    assert iso_moment(moment) == written
    assert whole_second(moment) == dt.datetime.fromisoformat(written)


def _moments(value: Any) -> Iterator[str]:
    """Every string in a JSON document that begins like a moment."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _moments(item)
    elif isinstance(value, list):
        for item in value:
            yield from _moments(item)
    elif isinstance(value, str) and MOMENT.match(value):
        yield value


async def test_every_json_moment_is_whole_seconds_the_database_keeps_microseconds(
        tmp_path: Path, aiohttp_server: Any) -> None:
    """check, history and the report's JSON gave "2026-11-27T23:49:31.593289+00:00"
    where the contract and /healthz give seconds."""
    base = await _site(aiohttp_server)
    config = _config(tmp_path, base)
    await _check_json(config)
    doc = await _check_json(config)
    code, raw, err = await _monitor("history", f"{base}/gone", "--format", "json", "--config", str(config))
    assert code == 0, err
    history = json.loads(raw)
    assert len(history["observations"]) == 2
    code, _, err = await _monitor("report", "--config", str(config))
    assert code == 0, err
    (saved,) = (tmp_path / "rapports — 2026").glob("report-*.json")
    report = json.loads(saved.read_text(encoding="utf-8"))
    for name, document, least in (("check", doc, 5), ("history", history, 2), ("report", report, 6)):
        found = list(_moments(document))
        assert len(found) >= least, (name, found)
        assert [m for m in found if not SECONDS.fullmatch(m)] == [], name
    assert report["run"]["started_at"] == doc["run"]["started_at"]
    with sqlite3.connect(tmp_path / "m.db") as db:
        kept = [at for at, in db.execute("SELECT started_at FROM runs ORDER BY id")]
    assert len(kept) == 2 and all(re.search(r"\.\d{6}\+00:00$", at) for at in kept), kept
    assert doc["run"]["started_at"] == iso_moment(dt.datetime.fromisoformat(kept[1]))


def _readme_jq_recipes() -> list[str]:
    """The README's jq filters that read a moment (`fromdateiso8601`)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    return re.findall(r"jq (?:-\w+ )*'([^']*fromdateiso8601[^']*)'", readme)


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
async def test_the_readme_jq_recipes_work_on_the_json(tmp_path: Path, aiohttp_server: Any) -> None:
    """`sub("\\\\+00:00$"; "Z") | fromdateiso8601` refused a moment with
    microseconds ("does not match format"): the recipe worked on /healthz
    only. Each recipe runs on what it is written for: /healthz's `last_run`
    (whose moments are a run's, as the check's `run`), and the check's JSON."""
    recipes = _readme_jq_recipes()
    assert len(recipes) >= 2, recipes
    doc = await _check_json(_config(tmp_path, await _site(aiohttp_server)))
    for recipe in recipes:
        source = {"last_run": doc["run"]} if ".last_run" in recipe else doc
        done = subprocess.run(["jq", recipe], input=json.dumps(source).encode(), capture_output=True, timeout=60)
        assert (done.returncode, done.stderr) == (0, b""), recipe
        # The moment was read: a threshold in the future finds it.
        later = recipe.replace("now - ", "now + ").replace("> now", "< now")
        done = subprocess.run(["jq", later], input=json.dumps(source).encode(), capture_output=True, timeout=60)
        assert (done.returncode, done.stderr) == (0, b""), later
        failing = [link["url"] for link in doc["links"] if link["failing_since"]]
        assert json.loads(done.stdout) in (True, *failing) and failing, (later, done.stdout)
