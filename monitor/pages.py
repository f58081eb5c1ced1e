"""Fetch a watched page whole (not a bounded prefix), conditionally.

Watched pages are the site's own and are parsed in full, unlike link
targets. ETag / Last-Modified from the last successful fetch make an
unchanged page cost one 304 and no parsing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from selectolax.lexbor import LexborHTMLParser

from monitor.classify import gone_here, permanent_target, stand_in  # the link checker's own rules, not copies
from monitor.client import Client, ConnectToRefusal
from monitor.netguard import PrivateAddressError, allow_line
from monitor.target import read_html
from monitor.types import URL_KEPT_MAX, ErrorKind, Hop, Observation, PageRecord
# Said by this module's verdicts, defined with the pure words so that the
# report and the terminal read them without importing aiohttp.
from monitor.wording import HOLDS_NO_LINKS

MAX_PAGE_BYTES = 20 * 1024 * 1024
"""A watched page larger than this is refused rather than parsed."""

NOT_A_WEB_PAGE = "not a web page"
"""How the error of an address that serves a file (a PDF, an image) begins."""


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
    redirects: tuple[Hop, ...] = ()
    """The redirects followed to the answer, first hop first (see `moved_to`)."""


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
                    redirects=_hops(resp.history),
                    http_status=resp.status,
                    content_type=resp.headers.get("Content-Type", ""),
                    etag=_validator(resp.headers.get("ETag", "")),
                    last_modified=_validator(resp.headers.get("Last-Modified", "")),
                )
                if resp.status == 304:
                    return PageFetch(status="not_modified", **common)
                if resp.status >= 400:
                    return PageFetch(status="error", error=_http_problem(resp.status), **common)
                media = _media_type(common["content_type"])
                if not _readable(media):
                    # A link of a crawled site, or a watched address, that serves a
                    # PDF: never read 20 MB of it to find no links.
                    return PageFetch(status="error", error=f"{NOT_A_WEB_PAGE} ({printable(media)})", **common)
                if (resp.content_length or 0) > MAX_PAGE_BYTES:
                    # Refused at once: a server announcing 2 GB that then
                    # sends slowly held the page until the page timeout.
                    return PageFetch(status="error", error=f"page larger than 20 MB (the server "
                                     f"announced {_megabytes(resp.content_length or 0)})", **common)
                body = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > MAX_PAGE_BYTES:
                        return PageFetch(status="error", error="page larger than 20 MB", **common)
                return PageFetch(status="ok", body=bytes(body), **common)
    except TimeoutError:
        return PageFetch(url=url, final_url=url, status="error", error=f"timed out after {timeout:g} s")
    except aiohttp.TooManyRedirects:
        return PageFetch(url=url, final_url=url, status="error",
                         error="too many redirects (more than 10): the address leads nowhere")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return PageFetch(url=url, final_url=url, status="error", error=_describe(exc, timeout))


def no_page_there(http_status: int | None, error: str) -> bool:
    """Whether a failed fetch says there is no page at this address (4xx:
    gone, never there, refused; or a file, not a page), rather than that the
    page could not be read this time (a timeout, a 5xx, a 429). A site crawl
    reaches such an address through a link of the site: a dead link, which
    the link's own row reports, not a page of the site whose links went
    unchecked."""
    if http_status is None:
        return False
    if 400 <= http_status < 500:
        return gone_here(http_status)
    return 200 <= http_status < 300 and error.startswith(NOT_A_WEB_PAGE)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.0f} MB"


def _hops(history: Sequence[aiohttp.ClientResponse]) -> tuple[Hop, ...]:
    return tuple(Hop(str(r.url), r.status, r.headers.get("Location", "")) for r in history)


def moved_to(fetched: PageFetch) -> str | None:
    """Where a watched page's configured address now lives, when the site
    says so permanently; None when it answers there, or redirects only
    temporarily (302/303/307: the site says "keep using this address").

    Judged as a cited link's move is (monitor/classify.py, rule 15): the
    leading run of permanent hops (301/308, or http -> https of the same
    address), a slash or tracking parameters added not counting. Without
    it the monitor followed the redirect silently, and the day the old
    address stops redirecting the page fails. Only for a page that was
    read (200 or 304): a redirect to an error is said by the error."""
    if fetched.status == "error" or not fetched.redirects:
        return None
    seen = Observation(url=fetched.url, checked_at=_EPOCH, http_status=fetched.http_status,
                       final_url=fetched.final_url, redirects=fetched.redirects)
    target = permanent_target(seen)
    # A Location is the server's text: shown to a webmaster, stored in SQLite;
    # one longer than any address an editor would paste is not suggested.
    return None if target is None or len(target) > URL_KEPT_MAX else printable(target)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


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


_HTTP_PROBLEMS = {
    400: "the server refused the address as malformed",
    401: "the page asks for a login",
    403: "the server refused access to the monitor",
    404: "the page is not at this address",
    410: "the site says the page was removed",
    429: "the server asked the monitor to slow down (too many requests)",
}


def _http_problem(status: int) -> str:
    """An error answer in a webmaster's words, its code first ("HTTP 404:
    the page is not at this address"): this text reaches the terminal, the
    JSON's pages[].error and the report's note on the page."""
    meaning = _HTTP_PROBLEMS.get(status) or (
        "the site had a server error (often temporary)" if status >= 500
        else "the server refused the request")
    return f"HTTP {status}: {meaning}"


def _describe(exc: BaseException, timeout: float) -> str:
    """A failed connection in a webmaster's words, the technical cause in
    brackets. Was the exception's own text ("ClientConnectorDNSError:
    Cannot connect to host www.sclero.org:443 ssl:default [...]"), shown as
    is to editors in the report."""
    from monitor.check import error_kind_of

    kind, detail = error_kind_of(exc)
    host = getattr(exc, "host", None)
    if isinstance(getattr(exc, "os_error", None), ConnectToRefusal):
        # The configuration's choice, not the name's fault: no DNS query was
        # made, and the page's url may well be right (the demo's config, run
        # after the demo's simulated site has stopped).
        words = (f'refused by checker.connect_to ("*" = "refuse"): {host or "its host"} is not '
                 "mapped there, so the page was not requested")
    elif kind is ErrorKind.DNS:
        words = f"the server could not be reached (DNS: {_dns_problem(exc, host or '')})"
    elif kind is ErrorKind.PRIVATE_ADDRESS:
        policy = exc if isinstance(exc, PrivateAddressError) else getattr(exc, "os_error", None)
        why = policy.strerror if isinstance(policy, OSError) and policy.strerror else detail
        words = f"{why} (checker.allow_private_networks; to check it: {_allowing(policy, host)})"
    elif kind is ErrorKind.CONNECTION_REFUSED:
        cause = getattr(exc, "os_error", exc)
        refused = isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        words = f"the server could not be reached ({'connection refused' if refused else _after_host(detail)})"
    elif kind is ErrorKind.CONNECTION_RESET:
        words = f"the server closed the connection without answering ({_after_host(detail)})"
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError):
        words = f"the secure connection failed (TLS: certificate not trusted: {_after_host(detail)})"
    elif kind is ErrorKind.TLS:
        words = f"the secure connection failed (TLS: {_after_host(detail)})"
    elif kind is ErrorKind.TIMEOUT:
        words = f"timed out after {timeout:g} s"
    elif kind in (ErrorKind.INVALID_URL, ErrorKind.UNSUPPORTED_SCHEME):
        words = f"not a usable address ({detail})"
    else:
        words = f"the server's answer could not be read ({type(exc).__name__}: {detail})"
    return printable(" ".join(words.split())[:300])


_NOT_FOUND = frozenset({socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)})


def _allowing(policy: object, host: str | None) -> str:
    """What to write to let the checker fetch a refused private page: the
    line itself, with the address it resolved to (walkthrough 9 #17: the
    refusal named the key, not its value)."""
    addresses = getattr(policy, "addresses", ()) or ()
    return allow_line(addresses[0] if addresses else host or "")


def _dns_problem(exc: BaseException, host: str) -> str:
    """"name www.sclero.org not found", with the monitor's own resolver's
    reason when it gave one (a name checker.connect_to refuses), or the
    resolver's words when the name was not simply unknown ("Temporary
    failure in name resolution": no DNS server answered)."""
    cause = getattr(exc, "os_error", None)
    why = (cause.strerror or "") if isinstance(cause, OSError) else ""
    ours = bool(host) and why.startswith(f"{host}: ")
    if ours:
        why = why[len(host) + 2:]
    name = f"name {host}" if host else "name"
    if ours or not why:
        return f"{name} not found" + (f": {why}" if why else "")
    if isinstance(cause, OSError) and cause.errno in _NOT_FOUND:
        return f"{name} not found"
    return f"{why}, looking up {host}" if host else why


def _after_host(detail: str) -> str:
    """error_kind_of's "host:port: why" without the host, which the page's URL already says."""
    head, sep, why = detail.partition(": ")
    return why if sep and ":" in head and " " not in head else detail


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """An error message that quotes a server (aiohttp quotes a bad Location
    raw) made safe to log and store: controls, bidi overrides and the lone
    surrogates of bytes that were not UTF-8 (which SQLite refuses) become
    escapes such as \\x1b."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_TAG = re.compile(r"<[A-Za-z!/?]")
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")
_NOT_TEXT_SHARE = 0.05
"""Above this share of controls and U+FFFD, decoded text is no text: a real
page (in any language) has almost none; random bytes read as Windows-1252
have about one in nine."""


def no_page_read(body: bytes, text: str, links_before: int) -> str | None:
    """Why a 200 answer with no link in it is no reading of the page, when
    the page had `links_before` links when last read; None when it may be
    the page (it had none before either).

    An empty body (a deploy in progress), bytes that are no text (a body
    compressed twice, a broken CMS), a charset label that makes ASCII read
    as Chinese: each read as "the page now has 0 links", and every problem
    the last report listed on it went under "Fixed since last report"
    (robust9, finding 1). Said as a failed fetch instead, its problems stay
    open, and the webmaster is told why."""
    if links_before <= 0:
        return None
    if not body.strip():
        what = "an empty body"
    elif len(_NOT_TEXT.findall(text)) > _NOT_TEXT_SHARE * len(text):
        what = "bytes that are not text (a wrong compression or character set?)"
    elif not _TAG.search(text):
        what = "text that is not HTML (a wrong character set?)"
    else:
        what = HOLDS_NO_LINKS
    had = f"{links_before} link{'s' if links_before != 1 else ''}"
    return f"it answered with {what}; it had {had} when last read, so this is not taken as their removal"


_STAND_IN_WORDS = {
    "parked_domain": "a domain-parking page ({evidence}): the site's domain may have lapsed",
    "soft_404": ("an error page ({evidence}): the page may have been moved or removed, "
                 "or the site is failing"),
    "login_required": "a sign-in page ({evidence}): the monitor reads no page behind a login",
    "bot_challenge": ("a bot check{evidence} instead of the page: the site turned the monitor away; "
                      "open the page in a browser"),
}
"""What stands in for a watched page (`classify.stand_in`'s reasons), in an editor's words."""


def stand_in_read(fetched: PageFetch, text: str, links: int, entries: Sequence[str],
                  last: PageRecord | None) -> str | None:
    """Why a 200 answer that lost the page's entries is something standing
    in for it (a parking page, an error page, a sign-in page, a bot wall),
    not an edit; None when it may be the page.

    A domain that lapsed answers 200 with a parking page: its handful of
    advertising links read as the page's new links, every cited link
    "removed", and last week's problems went under "Fixed since last
    report". The words are the link checker's (`classify.stand_in`), judged
    only on a page that lost most of the citation entries of `last` (its
    last full read; one that had none, some of its links): a page of many
    entries that mentions a domain sale or a "page not found" in one of
    them keeps them, and is read as the page. `text` is the decoded page;
    `links` and `entries` are what the extract found in it."""
    if last is None or last.links <= 0:
        return None
    if last.entries:
        if len(set(entries) & set(last.entries)) * 2 >= len(last.entries):
            return None  # most of its entries are there: the page
    elif links >= last.links:
        return None
    seen = read_html(text)
    headings, own_words = _face(text)
    found = stand_in(Observation(
        url=fetched.url, checked_at=_EPOCH, http_status=fetched.http_status,
        final_url=fetched.final_url, redirects=fetched.redirects, content_type=fetched.content_type,
        title=seen.title, meta_title=seen.meta_title, text=seen.text), title=last.title,
        headings=headings, own_words=own_words)
    if found is None:
        return None
    evidence = (f" ({found.evidence})" if found.evidence else "") if found.reason == "bot_challenge" \
        else found.evidence
    had = f"{last.links} link{'s' if last.links != 1 else ''}"
    return (f"the page now shows {_STAND_IN_WORDS[found.reason].format(evidence=evidence)}; "
            f"it had {had} when last read, so this is not taken as their removal")


_NOT_OWN_WORDS = ("a", "script", "style", "noscript", "template", "svg")


def _face(text: str) -> tuple[tuple[str, ...], int]:
    """A page's first-level headings, and how many words it says outside
    its links: what tells an error page from a page with few entries
    (`classify.stand_in`). A menu is links, so an error page with the
    site's menu still says a few dozen words of its own."""
    tree = LexborHTMLParser(text)
    headings = tuple(" ".join(h.text(deep=True).split()) for h in tree.css("h1")[:3])
    tree.strip_tags(list(_NOT_OWN_WORDS))
    root = tree.body or tree.root
    return headings, len(root.text(separator=" ").split()) if root is not None else 0


def links_moved(unread: str, title: str, previous: PageRecord | None) -> bool:
    """Whether a page `no_page_read` refused (`unread`) is taken as the page
    now: its links were removed (moved elsewhere), not lost to a bad read.

    Refused every week, a page whose editors moved its references to a
    sub-page failed forever, and a single-page configuration exited 1
    every week (review9 #8). So the same answer twice in a row (the same
    verdict, the same title) is the page's new state: the first time is
    said as a failed fetch, and an editor has had a week to look. An empty
    body, bytes that are no text, or text that is no HTML never are."""
    return (HOLDS_NO_LINKS in unread and previous is not None and previous.status == "error"
            and HOLDS_NO_LINKS in previous.error and previous.title == title)
