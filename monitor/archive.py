"""Archived copies (Wayback Machine availability API) for dead links.

Like InternetArchiveBot, ask for the snapshot closest to the date the
citation was made (its source line's date), so the copy shows what the
editor cited rather than a later error page. The API is slow and
rate-limited (lychee #1501, #2167): ask only for links that need a fix, at
most a few at a time, once per URL (the answer is kept in `url_state`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging

from yarl import URL

from monitor.client import Client

log = logging.getLogger(__name__)

ARCHIVE_CONCURRENCY = 2


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


async def lookup(client: Client, api_url: str, url: str, when: dt.date | None, timeout: float) -> str | None:
    query = {"url": url}
    if when is not None:
        query["timestamp"] = when.strftime("%Y%m%d")
    try:
        async with client.session.get(
            URL(api_url).update_query(query), timeout=client.timeout(timeout), allow_redirects=True
        ) as resp:
            if resp.status != 200:
                return None
            return parse_availability((await resp.content.read(65536)).decode("utf-8", "replace"))
    except Exception as exc:  # the archive is a suggestion: never fail a run over it
        log.info("archive lookup failed url=%s error=%s", url, type(exc).__name__)
        return None


async def lookup_many(
    client: Client, api_url: str, wanted: dict[str, dt.date | None], timeout: float
) -> dict[str, str]:
    gate = asyncio.Semaphore(ARCHIVE_CONCURRENCY)
    found: dict[str, str] = {}

    async def one(url: str, when: dt.date | None) -> None:
        async with gate:
            snapshot = await lookup(client, api_url, url, when, timeout)
        if snapshot:
            found[url] = snapshot

    await asyncio.gather(*(one(u, w) for u, w in wanted.items()))
    return found
