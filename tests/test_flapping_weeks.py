"""A link that fails now and then, over seven weekly audits of a real
loopback site (walkthrough 11 #1): 503, 200, 200, 503, 200, 200, 503.

Each failure after a good week starts a new streak (one strike, failing
since this check), so its row read "NEW · first seen <this week> ·
suspected: failed once so far" every third week, under "Watching", while
the headline's "N new" did not count it. The weeks are the weekly job's
(`monitor.jobs.weekly_job` with its clock, as the service runs it); the
last is `monitor check`, then `monitor report --send`, as a webmaster runs
them, with the real clock.
"""

from __future__ import annotations

import datetime as dt
import email
import json
import re
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiohttp import web

from monitor.config import load_settings
from monitor.demo.run import MailSink
from monitor.jobs import weekly_job
from reports.wording import format_date
from simkit import loopback_config, run_monitor

ANSWERS = (503, 200, 200, 503, 200, 200, 503)
"""What the flapping link answers, week by week (the last: `monitor check`)."""

PAGE = """<html><head><title>Treatments</title></head><body><h2>Reviews</h2><ul>
<li><a href="/flaky">Bosentan in digital ulcers: a review of trials</a>. Rheumatology, 2018.</li>
<li><a href="/ok">Sildenafil and digital ulcers</a>. J Rheumatol, 2019.</li>
</ul></body></html>"""


def _site(week: list[int]) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def flaky(request: web.Request) -> web.Response:
        status = ANSWERS[week[0]]
        if status != 200:
            return web.Response(status=status, text="<html><title>Busy</title>try later</html>",
                                content_type="text/html")
        return web.Response(text="<html><head><title>Bosentan in digital ulcers: a review of trials"
                                 "</title></head><body>the review</body></html>", content_type="text/html")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="<html><head><title>Sildenafil and digital ulcers</title></head>"
                                 "<body>the article</body></html>", content_type="text/html")

    app = web.Application()
    for path, handler in (("/page.html", page), ("/flaky", flaky), ("/ok", ok)):
        app.router.add_get(path, handler)
    return app


def _saved(tmp_path: Path, run: int) -> tuple[dict[str, Any], str]:
    (json_path,) = (tmp_path / "out").glob(f"report-*-run-{run}.json")
    return (json.loads(json_path.read_text(encoding="utf-8")),
            json_path.with_suffix(".html").read_text(encoding="utf-8"))


def _row(data: dict[str, Any], url: str) -> tuple[str, dict[str, Any]]:
    """(its group, the row) of `url` in a saved report's JSON."""
    for group in ("needs_fixing", "needs_a_person", "watching"):
        for g in data[group]:
            for s in g["sections"]:
                for e in s["entries"]:
                    for p in e["problems"]:
                        if p["link"]["url"] == url:
                            return group, p
    raise AssertionError(f"{url} is not among the rows")


def _mail(sink: MailSink) -> tuple[str, str]:
    message = email.message_from_bytes(sink.received[-1].read_bytes(), policy=default_policy)
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    return text, html


def _badges(html: str) -> list[str]:
    return re.findall(r'<b class="new"[^>]*>([^<]+)</b>', html)


async def test_a_link_that_fails_every_third_week_is_never_new_and_says_how_often_it_failed(
        tmp_path: Path, aiohttp_server: Any, mail_sink: MailSink) -> None:
    week = [0]
    server = await aiohttp_server(_site(week))
    base = f"http://127.0.0.1:{server.port}"
    flaky = f"{base}/flaky"
    config = loopback_config(tmp_path, base, mail_sink.port)
    settings = load_settings(config)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    start = now - dt.timedelta(weeks=len(ANSWERS) - 1)
    for w in range(len(ANSWERS) - 1):
        week[0] = w
        at = start + dt.timedelta(weeks=w)
        await weekly_job(settings, now=lambda at=at: at)

    # Week 4: the second 503, not flapping yet (two changes). Only watched: no badge,
    # since the headline's "0 new" does not count it (it said NEW, beside "0 new").
    data, html = _saved(tmp_path, 4)
    group, row = _row(data, flaky)
    assert data["counts"]["new"] == 0 and _badges(html) == []
    assert group == "watching" and row.get("flaps") is None and "first seen" in html
    assert "Those that fail now and then" not in html  # the Watching intro: no flapping row yet
    text, mail_html = _mail(mail_sink)
    assert ", NEW]" not in text and _badges(mail_html) == []

    # Week 7, as a webmaster runs it: the third 503 after two good weeks. The
    # terminal says how often it failed, over what span...
    week[0] = len(ANSWERS) - 1
    code, out, err = await run_monitor("check", "--config", str(config))
    assert code == 0, err
    block = out[out.index(flaky):].split("\n\n")[0]
    first, last_ok = start, start + dt.timedelta(weeks=5)
    assert f"fails now and then: failed 3 of the last 7 checks, since {first:%Y-%m-%d}; " \
           f"last ok {last_ok:%Y-%m-%d}" in block, block
    assert "failed 1 check in a row" not in block

    # ...and so do the report and the mail (HTML and text): no NEW, no "first
    # seen", no "failed once"; the counts agree with the badges.
    code, out, err = await run_monitor("report", "--send", "--config", str(config))
    assert code == 0, err
    data, html = _saved(tmp_path, 7)
    group, row = _row(data, flaky)
    says = (f"fails now and then: failed 3 of the last 7 checks, since {format_date(first)}; "
            f"last ok {format_date(last_ok)}")
    assert group == "watching"
    assert (row["flaps"]["checks"], row["flaps"]["failed"]) == (3 + 4, 3)
    text, mail_html = _mail(mail_sink)
    for shown in (html, mail_html, text):
        assert "first seen" not in shown and "failed once" not in shown
        assert says in shown or says[0].upper() + says[1:] in shown, shown[-3000:]
    assert data["counts"]["new"] == 0 and _badges(html) == _badges(mail_html) == []
    assert ", NEW]" not in text
    # The Watching intro ("not often enough yet to be sure it lasts") says
    # what such a row is, in both parts.
    for shown in (html, mail_html):
        assert "Those that fail now and then say how often they failed" in shown
    assert "Those that fail now and then say how often they failed over the checks kept" in " ".join(text.split())
