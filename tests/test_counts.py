"""One run, one set of counts: the terminal (`check`, `run`), the report
(HTML, JSON), the mail, the index of reports, /healthz and /metrics give each
figure under one word (walkthrough 9b #9: 53 / 90 / 105 for one run, and
/healthz `urls` counting URLs excluded by `checker.exclude`, never requested).

The words (README, "What the counts mean"): *links* are every place a page
links from; *links checked* those less the links not checked (mailto:, in-page
jumps, excluded); *URLs* the distinct URLs requested.
"""

from __future__ import annotations

import email
import re
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiohttp import web

from monitor.config import load_settings
from monitor.demo.run import MailSink
from monitor.web import create_app
from simkit import run_monitor
from test_web import parse_prometheus

PAGE_ONE = ("/ok", "/ok", "/gone", "mailto:editor@example.org", "#top", "/private/draft", "http://")
PAGE_TWO = ("/ok", "/moved", "mailto:editor@example.org")
"""Ten links; not checked: two mailto:, one in-page jump, one excluded (four);
checked: six, the malformed "http://" among them (an error to fix, no request);
URLs requested: /ok, /gone, /moved (three)."""


def _site() -> web.Application:
    def page(hrefs: tuple[str, ...], title: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            links = "".join(f'<li><a href="{h}">Entry {i}</a></li>' for i, h in enumerate(hrefs))
            return web.Response(text=f"<html><head><title>{title}</title></head><body><ul>{links}</ul>"
                                     "</body></html>", content_type="text/html")
        return handler

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="<html><head><title>Fine</title></head><body>fine</body></html>",
                            content_type="text/html")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/articles/new-name")

    app = web.Application()
    app.router.add_get("/one.html", page(PAGE_ONE, "One"))
    app.router.add_get("/two.html", page(PAGE_TWO, "Two"))
    app.router.add_get("/ok", ok)
    app.router.add_get("/articles/new-name", ok)
    app.router.add_get("/moved", moved)
    return app


def _number(pattern: str, text: str) -> tuple[int, ...]:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return tuple(int(n) for n in found.groups())


async def test_one_run_gives_the_same_counts_under_the_same_words_everywhere(
        tmp_path: Path, aiohttp_server: Any, aiohttp_client: Any, mail_sink: MailSink) -> None:
    server = await aiohttp_server(_site())
    base = f"http://127.0.0.1:{server.port}"
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[[pages]]\nurl = "{base}/one.html"\n[[pages]]\nurl = "{base}/two.html"\n'
        '[checker]\nallow_private_networks = ["127.0.0.1/32"]\ntimeout = 2\nretries = 0\n'
        'soft404_probe = false\nexclude = ["/private/"]\n'
        f'[database]\npath = "{tmp_path / "m.db"}"\n[report]\ndir = "{tmp_path / "out"}"\n'
        f'[email]\nhost = "127.0.0.1"\nport = {mail_sink.port}\nsecurity = "none"\n'
        'sender = "monitor@sclero.org"\nrecipients = ["webmaster@sclero.org"]\n', encoding="utf-8")
    links, checked, urls, skipped = 10, 6, 3, 4  # as PAGE_ONE and PAGE_TWO hold them

    code, out, err = await run_monitor("check", "--config", str(config))
    assert code == 0, err
    assert _number(r"and (\d+) links not checked \(mailto:, in-page jumps, excluded\)", out) == (skipped,)
    assert _number(r"\nrun 1: (\d+) links: (\d+) checked \((\d+) URLs\), (\d+) not checked;", out) == (
        links, checked, urls, skipped)

    code, out, err = await run_monitor("run", "--config", str(config))
    assert code == 0, err
    # the terminal says the report's figure, in the report's words
    assert _number(r"run 2: (\d+) links checked \((\d+) URLs\) on 2 pages in ", out) == (checked, urls)

    json_path = next((tmp_path / "out").glob("report-*-run-2.json"))
    data = __import__("json").loads(json_path.read_text(encoding="utf-8"))
    assert (data["run"]["links"], data["run"]["urls"]) == (links, urls)  # urls: 4 with the excluded one
    assert (data["counts"]["checked"], data["counts"]["urls"], data["counts"]["skipped"]) == (
        checked, urls, skipped)

    html = json_path.with_suffix(".html").read_text(encoding="utf-8")
    assert _number(r"<b>(\d+) links checked</b> \((\d+) URLs\) on 2 pages:", html) == (checked, urls)
    assert _number(r"; (\d+) links not checked \(", html) == (skipped,)

    message = email.message_from_bytes(mail_sink.received[-1].read_bytes(), policy=default_policy)
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert _number(r"(\d+) links checked \((\d+) URLs\) on 2 pages:", text) == (checked, urls)
    assert _number(r"; (\d+) links not checked \(", text) == (skipped,)

    index = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    head = re.sub(r"<[^>]+>", "|", re.findall(r"<tr>(.*?)</tr>", index, re.S)[0])
    row = re.sub(r"<[^>]+>", "|", re.findall(r"<tr>(.*?)</tr>", index, re.S)[1])
    titles = [c.strip() for c in head.split("|") if c.strip()]
    cells = [c.strip() for c in row.split("|") if c.strip()]
    assert cells[1 + titles.index("Links checked")] == str(checked), (titles, cells)  # date, time UTC, run...

    client = await aiohttp_client(create_app(load_settings(config)))
    last = (await (await client.get("/healthz")).json())["last_run"]
    assert (last["id"], last["links"], last["links_checked"], last["urls"]) == (2, links, checked, urls)

    samples, _ = parse_prometheus(await (await client.get("/metrics")).text())

    def by_status(name: str) -> dict[str, float]:
        return {dict(labels)["status"]: v for (metric, labels), v in samples.items() if metric == name}

    requested = by_status("monitor_last_run_urls_checked")
    assert sum(requested.values()) == urls
    assert {s: n for s, n in requested.items() if n} == {"ok": 1, "expired": 1, "moved": 1}
    # the old name, kept: the same URLs plus the malformed address, an error
    old = by_status("monitor_last_run_links_checked")
    assert {s: old[s] - requested[s] for s in old if old[s] != requested[s]} == {"error": 1}
