"""Archived copies (Wayback Machine availability API) for dead links.

Like InternetArchiveBot, ask for the snapshot closest to the date the
citation was made (its source line's date), else the day the link last
worked, else the oldest snapshot (`OLDEST`), so the copy shows what the
editor cited rather than a later error page. The API is slow and
rate-limited (lychee #1501, #2167): ask only for links that need a fix, at
most a few at a time, once per URL (the answer is kept in `url_state`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging

import aiohttp
from yarl import URL

from monitor.client import Client

log = logging.getLogger(__name__)

ARCHIVE_CONCURRENCY = 2
OLDEST = "1996"
"""The timestamp asked for a link with no date: the year the archive began.
The API answers the capture closest to `timestamp`, and its newest without
one: for a dead link the newest is often the error page, the parked domain
or the home page that made it fail. The oldest is nearest to when the
article was new (and cited); the editor is told to check it first."""

MAX_FAILURES = 3
"""Failed lookups in a row after which the API is not asked again this run."""


def parse_availability(payload: str) -> str | None:
    """The snapshot URL from an availability API answer, or None."""
    try:
        data = json.loads(payload)
        closest = data["archived_snapshots"]["closest"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(closest, dict) or not closest.get("available"):
        return None
    if str(closest.get("status", "200")) != "200":
        return None
    url = closest.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    # The API answers http:// snapshot URLs; editors should paste https://.
    return "https://" + url.removeprefix("http://") if url.startswith("http://web.archive.org/") else url


class _Unavailable(Exception):
    """The API refused (429) or failed: a reason to stop asking it this run."""

    def __init__(self, throttled: bool) -> None:
        super().__init__("throttled" if throttled else "failed")
        self.throttled = throttled


async def _ask(client: Client, api_url: str, url: str, when: dt.date | None, timeout: float) -> str | None:
    """The snapshot, None when the API has none; _Unavailable when it did not answer."""
    query = {"url": url, "timestamp": when.strftime("%Y%m%d") if when is not None else OLDEST}
    try:
        async with client.session.get(
            URL(api_url).update_query(query), timeout=client.timeout(timeout), allow_redirects=True
        ) as resp:
            if resp.status != 200:
                raise _Unavailable(resp.status == 429)
            return parse_availability((await _read_answer(resp.content)).decode("utf-8", "replace"))
    except _Unavailable:
        raise
    except Exception as exc:  # the archive is a suggestion: never fail a run over it
        log.info("archive lookup failed url=%s error=%s", url, type(exc).__name__)
        raise _Unavailable(False) from None


ANSWER_LIMIT = 65536
"""The most of an availability answer read (a real one is under 1 KB)."""


async def _read_answer(content: aiohttp.StreamReader) -> bytes:
    """The answer up to `ANSWER_LIMIT` bytes. `read(n)` returns what has
    arrived, not n bytes: an answer in two TCP writes (a proxy, a slow link)
    was cut after the first, failed to parse, and the editor got no copy."""
    body = bytearray()
    while len(body) < ANSWER_LIMIT:
        chunk = await content.read(ANSWER_LIMIT - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


async def lookup(client: Client, api_url: str, url: str, when: dt.date | None, timeout: float) -> str | None:
    try:
        return await _ask(client, api_url, url, when, timeout)
    except _Unavailable:
        return None


async def lookup_many(
    client: Client, api_url: str, wanted: dict[str, dt.date | None], timeout: float
) -> dict[str, str]:
    """Snapshots for `wanted`. After a 429, or MAX_FAILURES failures in a row
    (timeouts, 5xx), the API is not asked again this run: the links left are
    asked next run (nothing is stored for them), and a dead API costs a few
    timeouts rather than one per dead link."""
    gate = asyncio.Semaphore(ARCHIVE_CONCURRENCY)
    found: dict[str, str] = {}
    failures = 0
    stopped = False

    async def one(url: str, when: dt.date | None) -> None:
        nonlocal failures, stopped
        async with gate:
            if stopped:
                return
            try:
                snapshot = await _ask(client, api_url, url, when, timeout)
            except _Unavailable as exc:
                failures += 1
                if exc.throttled or failures >= MAX_FAILURES:
                    if not stopped:
                        log.info("archive lookups stopped for this run (%s)", exc)
                    stopped = True
                return
            failures = 0
        if snapshot:
            found[url] = snapshot

    await asyncio.gather(*(one(u, w) for u, w in wanted.items()))
    return found
