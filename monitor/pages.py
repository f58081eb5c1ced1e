"""Fetch a watched page whole (not a bounded prefix), conditionally.

Watched pages are the site's own and are parsed in full, unlike link
targets. ETag / Last-Modified from the last successful fetch make an
unchanged page cost one 304 and no parsing.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import aiohttp

from monitor.client import Client

MAX_PAGE_BYTES = 20 * 1024 * 1024
"""A watched page larger than this is refused rather than parsed."""


@dataclass(frozen=True, slots=True)
class PageFetch:
    url: str
    final_url: str
    status: str  # "ok" | "not_modified" | "error"
    http_status: int | None = None
    body: bytes = b""
    content_type: str = ""
    etag: str = ""
    last_modified: str = ""
    error: str = ""


async def fetch_page(
    client: Client, url: str, *, etag: str = "", last_modified: str = "", timeout: float = 30.0
) -> PageFetch:
    headers = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with asyncio.timeout(timeout):
            async with client.session.get(
                url, headers=headers, allow_redirects=True, max_redirects=10,
                timeout=client.timeout(timeout),
            ) as resp:
                common = dict(
                    url=url,
                    final_url=str(resp.url),
                    http_status=resp.status,
                    content_type=resp.headers.get("Content-Type", ""),
                    etag=_validator(resp.headers.get("ETag", "")),
                    last_modified=_validator(resp.headers.get("Last-Modified", "")),
                )
                if resp.status == 304:
                    return PageFetch(status="not_modified", **common)
                if resp.status >= 400:
                    return PageFetch(status="error", error=f"HTTP {resp.status}", **common)
                media = _media_type(common["content_type"])
                if not _readable(media):
                    # A link of a crawled site, or a watched address, that serves a
                    # PDF: never read 20 MB of it to find no links.
                    return PageFetch(status="error", error=f"not a web page ({printable(media)})", **common)
                body = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > MAX_PAGE_BYTES:
                        return PageFetch(status="error", error="page larger than 20 MB", **common)
                return PageFetch(status="ok", body=bytes(body), **common)
    except TimeoutError:
        return PageFetch(url=url, final_url=url, status="error", error=f"timed out after {timeout:g} s")
    except aiohttp.TooManyRedirects:
        return PageFetch(url=url, final_url=url, status="error", error="too many redirects")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return PageFetch(url=url, final_url=url, status="error", error=_describe(exc))


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _readable(media: str) -> bool:
    """Whether a body of this type can be a page: HTML, XHTML, any text, or no
    type at all (old servers send none); not a PDF, an image, an archive."""
    return not media or media.startswith("text/") or "html" in media or "xml" in media


def _validator(value: str) -> str:
    """An ETag or Last-Modified worth keeping for the next fetch: printable
    ASCII. Anything else (a byte that is not UTF-8 arrives as a lone
    surrogate, which SQLite refuses) is dropped: the page is fetched whole."""
    return value if value.isascii() and value.isprintable() else ""


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return printable(f"{type(exc).__name__}: {text}"[:200])


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """An error message that quotes a server (aiohttp quotes a bad Location
    raw) made safe to log and store: controls, bidi overrides and the lone
    surrogates of bytes that were not UTF-8 (which SQLite refuses) become
    escapes such as \\x1b."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
