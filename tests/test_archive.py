"""Archived-copy suggestions against a local availability API.

The server below plays https://archive.org/wayback/available as it answers:

- GET ?url=U[&timestamp=YYYYMMDD[hhmmss]]: `url` is one query value (the
  client percent-encodes it once: '&' '%' '+' '#' inside U arrive encoded);
- 200 JSON {"url": U, "archived_snapshots": {"closest": {"status": "200",
  "available": true, "url": "http://web.archive.org/web/TS/ORIGINAL",
  "timestamp": TS}}, "timestamp": T}; or "archived_snapshots": {} when it
  has nothing (also what an overloaded API answers);
- the snapshot is the one closest to `timestamp` in either direction (a
  1-14 digit prefix of YYYYMMDDhhmmss, padded with zeros: "1996" is the
  archive's first day, so it answers the oldest capture), the newest
  without one; `status` is the capture's own HTTP status ("301" for a
  redirect capture), and its `url` is http:// even though https works
  (`Wayback` below holds captures and answers by this rule);
- throttled clients get 429 (lychee #1501, #2167), slow answers are common.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import pytest
from aiohttp import web

from monitor import archive

if TYPE_CHECKING:
    from monitor.client import Client

SNAP = "http://web.archive.org/web/20160615000000/"


def answer(url: str, status: str = "200", ts: str = "20160615000000") -> dict[str, Any]:
    return {"url": url, "archived_snapshots": {"closest": {
        "status": status, "available": True, "timestamp": ts,
        "url": f"http://web.archive.org/web/{ts}/{url}"}}}


class Api:
    """The availability API: answers by `behave(url, timestamp)`; logs queries."""

    def __init__(self, behave: Callable[[str, str | None], Awaitable[web.StreamResponse]]) -> None:
        self.behave = behave
        self.asked: list[tuple[str, str | None]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        url, ts = request.query.get("url", ""), request.query.get("timestamp")
        self.asked.append((url, ts))
        return await self.behave(url, ts)


async def found(url: str, ts: str | None) -> web.StreamResponse:
    return web.json_response(answer(url))


@pytest.fixture
async def serve(aiohttp_server: Any) -> Callable[..., Awaitable[tuple[Api, str]]]:
    async def start(behave: Callable[[str, str | None], Awaitable[web.StreamResponse]] = found
                    ) -> tuple[Api, str]:
        api = Api(behave)
        app = web.Application()
        app.router.add_get("/wayback/available", api.handle)
        server = await aiohttp_server(app, host="127.0.0.1")
        return api, f"http://127.0.0.1:{server.port}/wayback/available"
    return start


@pytest.fixture
async def client(checker_settings: Any, client_for: Any) -> Client:
    return await client_for(checker_settings(timeout=0.5))


@pytest.mark.parametrize("status,expected", [
    ("200", "https://web.archive.org/web/20160615000000/https://e.org/x"),  # https to paste
    ("302", None),  # a redirect capture shows no page
    ("404", None),
])
def test_parse_availability(status: str, expected: str | None) -> None:
    assert archive.parse_availability(json.dumps(answer("https://e.org/x", status))) == expected


@pytest.mark.parametrize("payload", ['{"archived_snapshots": {}}', "[]", "not json",
                                     '{"archived_snapshots": {"closest": {"available": true, '
                                     '"status": "200", "url": "javascript:alert(1)"}}}'])
def test_parse_availability_nothing(payload: str) -> None:
    assert archive.parse_availability(payload) is None


async def test_url_is_sent_encoded_once_with_the_citation_date(serve: Any, client: Client) -> None:
    api, endpoint = await serve()
    cited = "https://e.org/a%20b/view.php?q=a%26b&t=x+y"
    got = await archive.lookup_many(client, endpoint, {cited: dt.date(2016, 5, 2),
                                                       "https://e.org/undated": None}, 0.5)
    assert sorted(api.asked, key=str) == sorted([(cited, "20160502"),
                                                 ("https://e.org/undated", archive.OLDEST)], key=str)
    assert got[cited] == "https://web.archive.org/web/20160615000000/" + cited


async def test_rate_limited_api_is_not_asked_again_this_run(serve: Any, client: Client) -> None:
    """After a 429 the rest wait for the next run (nothing is stored for them):
    hammering a throttled API only prolongs the throttle."""
    async def throttled(url: str, ts: str | None) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": "60"})
    api, endpoint = await serve(throttled)
    wanted = {f"https://e.org/{i}": None for i in range(20)}
    assert await archive.lookup_many(client, endpoint, wanted, 0.5) == {}
    assert len(api.asked) <= archive.ARCHIVE_CONCURRENCY


async def test_a_hanging_api_does_not_hold_the_run(serve: Any, client: Client) -> None:
    """An API that never answers costs a few timeouts, not one per dead link."""
    async def hangs(url: str, ts: str | None) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.json_response(answer(url))
    api, endpoint = await serve(hangs)
    wanted = {f"https://e.org/{i}": None for i in range(40)}
    started = time.monotonic()
    assert await archive.lookup_many(client, endpoint, wanted, 0.2) == {}
    assert time.monotonic() - started < 2.0  # 40 x 0.2 s / 2 = 4 s before
    assert len(api.asked) < 10


async def test_an_undated_citation_asks_for_the_copy_of_the_day_it_last_worked(
        serve: Any, aiohttp_server: Any, tmp_path: Any) -> None:
    """A menu link or an entry without a dated source line has no citation
    date: the archive's newest snapshot is then often the error page itself.
    The day the link was last seen working is asked for instead; a dated
    citation keeps its own date."""
    from monitor.config import CheckerSettings, DatabaseSettings, PageSettings, Settings
    from monitor.crawl import run_audit

    alive = {"yes": True}

    async def page(request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=(
            "<html><title>Treatments</title><h2>Reviews</h2>"
            '<p><a href="/undated">Rituximab in refractory myositis, a review of twelve cases</a>. '
            "A short summary of the review.</p>"
            '<p><a href="/dated">Lenabasum for dermatomyositis, a phase 2 trial</a>. '
            "A short summary. PubMed, Clin Rheumatol, 04/30/2018.</p></html>"))

    async def target(request: web.Request) -> web.Response:
        if alive["yes"]:
            return web.Response(content_type="text/html", text="<title>The article</title>")
        return web.Response(status=404, text="gone")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/undated", target)
    app.router.add_get("/dated", target)
    site = await aiohttp_server(app, host="127.0.0.1")
    api, endpoint = await serve()
    base = f"http://127.0.0.1:{site.port}"
    settings = Settings(
        pages=(PageSettings(url=f"{base}/page"),),
        checker=CheckerSettings(timeout=2.0, retries=0, soft404_probe=False, archive_url=endpoint,
                                allow_private_networks=("127.0.0.1/32",)),
        database=DatabaseSettings(path=str(tmp_path / "monitor.db")),
    )
    worked = dt.datetime(2026, 10, 5, 6, tzinfo=dt.timezone.utc)
    await run_audit(settings, now=lambda: worked)  # both links work
    assert api.asked == []
    alive["yes"] = False
    await run_audit(settings, now=lambda: worked + dt.timedelta(weeks=7))  # both dead now
    assert sorted(api.asked) == [(f"{base}/dated", "20180430"), (f"{base}/undated", "20261005")]


@pytest.mark.parametrize("pieces", [1, 2, 5])
async def test_an_answer_in_several_writes_is_read_whole(aiohttp_server: Any, client: Client,
                                                         pieces: int) -> None:
    """`content.read(65536)` returns what has arrived: an answer in two TCP
    writes 50 ms apart (a proxy, a slow link) was cut after the first, did
    not parse, and the editor got no archived copy (robust9, finding 5)."""
    body = json.dumps(answer("https://e.org/a")).encode()
    cut = len(body) // pieces

    async def api(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for i in range(pieces):
            await resp.write(body[i * cut:(i + 1) * cut if i < pieces - 1 else len(body)])
            await asyncio.sleep(0.05)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/wayback/available", api)
    server = await aiohttp_server(app, host="127.0.0.1")
    got = await archive.lookup(client, f"http://127.0.0.1:{server.port}/wayback/available",
                               "https://e.org/a", None, 2.0)
    assert got == "https://web.archive.org/web/20160615000000/https://e.org/a"


class Wayback:
    """The availability API over captures it holds, answering as the real
    one does: the capture closest to `timestamp` (a 1-14 digit prefix,
    padded with zeros), the newest without one; `status` is the capture's
    own. `captures`: original URL -> (timestamp, status) ascending."""

    def __init__(self, captures: dict[str, list[tuple[str, str]]]) -> None:
        self.captures = captures
        self.asked: list[tuple[str, str | None]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        url, wanted = request.query.get("url", ""), request.query.get("timestamp")
        self.asked.append((url, wanted))
        held = self.captures.get(url)
        if not held:
            return web.json_response({"url": url, "archived_snapshots": {}})
        if wanted and wanted.isdigit():
            target = int(wanted.ljust(14, "0")[:14])
            ts, status = min(held, key=lambda c: (abs(int(c[0]) - target), c[0]))
        else:
            ts, status = held[-1]
        return web.json_response(answer(url, status, ts))


async def test_an_undated_link_dead_at_the_first_run_gets_the_oldest_copy(
        aiohttp_server: Any, tmp_path: Any) -> None:
    """Review 15 #1: on a site's first run a dead link with no date (no dated
    source line, never seen working) was asked with no timestamp, and the
    archive answered its newest capture: the error page that made the link
    fail, kept and offered every week. It gets the oldest capture now (and
    the row says to check it); a dated one still the nearest to its date."""
    from monitor.config import CheckerSettings, DatabaseSettings, PageSettings, Settings
    from monitor.crawl import run_audit
    from monitor.store import Store

    source = {"soft": ""}

    async def page(request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=(
            "<html><title>Lupus</title><h2>Treatments</h2>"
            '<p><a href="/soft">Rituximab in Refractory Lupus, a review of twelve cases</a>. '
            f"A short summary of the review.{source['soft']}</p>"
            '<p><a href="/dated">Belimumab for lupus nephritis, a phase 3 trial</a>. '
            "A short summary. PubMed, N Engl J Med, 09/17/2020.</p></html>"))

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=404, text="gone")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/soft", gone)
    app.router.add_get("/dated", gone)
    site = await aiohttp_server(app, host="127.0.0.1")
    base = f"http://127.0.0.1:{site.port}"
    captures = [("20150301000000", "200"), ("20200915000000", "200"), ("20251101000000", "200")]
    wayback = Wayback({f"{base}/soft": captures, f"{base}/dated": captures})
    api_app = web.Application()
    api_app.router.add_get("/wayback/available", wayback.handle)
    api = await aiohttp_server(api_app, host="127.0.0.1")
    settings = Settings(
        pages=(PageSettings(url=f"{base}/page"),),
        checker=CheckerSettings(timeout=2.0, retries=0, soft404_probe=False,
                                archive_url=f"http://127.0.0.1:{api.port}/wayback/available",
                                allow_private_networks=("127.0.0.1/32",)),
        database=DatabaseSettings(path=str(tmp_path / "monitor.db")),
    )
    await run_audit(settings, now=lambda: dt.datetime(2026, 11, 28, 6, tzinfo=dt.timezone.utc))
    assert sorted(wayback.asked) == [(f"{base}/dated", "20200917"), (f"{base}/soft", archive.OLDEST)]
    with Store.open(settings.database.path) as store:
        links = {link.url: link for link in store.run_links(store.latest_run().id)}
    soft, dated = links[f"{base}/soft"], links[f"{base}/dated"]
    assert soft.archived_url == f"https://web.archive.org/web/20150301000000/{base}/soft"
    assert soft.archived_oldest
    assert dated.archived_url == f"https://web.archive.org/web/20200915000000/{base}/dated"
    assert not dated.archived_oldest
    # An editor adds the entry's source line: its oldest copy is asked again, once, for its date.
    source["soft"] = " PubMed, Lupus, 09/01/2020."
    wayback.asked.clear()
    for day in (5, 12):
        await run_audit(settings, now=lambda: dt.datetime(2026, 12, day, 6, tzinfo=dt.timezone.utc))
    assert wayback.asked == [(f"{base}/soft", "20200901")]
    with Store.open(settings.database.path) as store:
        soft = next(link for link in store.run_links(store.latest_run().id) if link.url == f"{base}/soft")
    assert soft.archived_url == f"https://web.archive.org/web/20200915000000/{base}/soft"
    assert not soft.archived_oldest
