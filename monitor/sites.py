"""Whole sites: which pages of a `[[sites]]` entry to audit.

Pages come from the site's sitemap (a `<urlset>`, a `<sitemapindex>` of
them, gzip-compressed or not, or a plain-text list) and/or from a
breadth-first crawl from `start` that follows the `navigation` and
`citation` links of each page it visits, and its frames and iframes. The crawl:

- never leaves the site (`same_site`): the host of `start` (or of the
  sitemap when there is no start). http and https count as one site, and so
  do `www.host` and `host`, because the commonest redirects on old sites
  (http -> https, bare -> www) would otherwise end a crawl at its first page;
  URLs are de-duplicated on that same key (with the query parameters in
  any order, "%7E" as "~"), so a page is visited once. Another
  port or any other host name (even another subdomain, even `localhost` for
  `127.0.0.1`) is another site;
- visits a page under one URL: session ids (";jsessionid=", "?PHPSESSID=",
  a token-like "?sid=") and tracking tags ("utm_*", "fbclid" ...) are
  dropped before a URL is judged (`without_session`), so a cookieless site
  handing out new ids on every page is not an endless supply of new pages;
- visits a page at most once, at most `max_pages` pages in all, none deeper
  than `max_depth` links from `start` (start = depth 0; sitemap pages are
  depth 0 too). Pages left out by either limit are counted
  (`SiteCrawl.over_max_pages`, `beyond_max_depth`) and logged (the audit
  keeps the first with its run, and its report says it: `SiteCut`): a site
  larger than its limits is never audited in part silently;
- only visits URLs that look like HTML pages (not .pdf, .jpg, .zip ...: see
  `NON_HTML_EXTENSIONS`);
- applies the site's `include` (empty = every page) and `exclude` regexes
  (`re.search`) to every discovered page. The `start` page itself is always
  visited, because links are only found through it: `include = ["/news/"]`
  with the home page as start audits the news pages reachable from home;
- honours the site's robots.txt, fetched once per crawl (RFC 9309 through
  Protego, matched on the product token of our user agent): 2xx = its rules;
  429 and 5xx and network errors = nothing may be fetched this crawl; any
  other 4xx = everything may. Disallowed pages are not visited and are
  listed in `SiteCrawl.skipped_by_robots`; disallowed sitemaps are errors.
  `Crawl-delay` / `Request-rate` are honoured (one request at a time, spaced,
  capped at `MAX_CRAWL_DELAY`). robots.txt `Sitemap:` lines are read when the
  entry names no sitemap;
- visits pages through the caller's `visit` (the audit fetches, extracts and
  records the page there, conditionally), `concurrency` at a time. Levels
  are visited one after another, so a page's depth is its shortest distance
  from `start` and the discovery order does not depend on timing.

Sitemaps are parsed by a linear scan for `<url>`/`<sitemap>` and `<loc>` tags,
never by an XML parser: no entity is ever expanded (no XXE, no billion
laughs), a truncated or broken file still yields what it holds, and junk
yields nothing. Only the 5 XML entities and character references are decoded
in `<loc>`. Limits: 50 MB uncompressed per file (the protocol's), index
nesting `MAX_SITEMAP_DEPTH`, `MAX_SITEMAP_FILES` files per crawl.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import functools
import logging
import re
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlsplit

import aiohttp
from protego import Protego

from monitor.client import Client
from monitor.config import CheckerSettings, SiteSettings
from monitor.errors import ConfigError
from monitor.extract import normalize_url
from monitor.pages import printable
from monitor.types import Citation, LinkKind
from monitor.urlnoise import PATH_SESSION, SESSION_KEY

__all__ = [
    "MAX_CRAWL_DELAY",
    "MAX_SITEMAP_BYTES",
    "MAX_SITEMAP_DEPTH",
    "MAX_SITEMAP_FILES",
    "NON_HTML_EXTENSIONS",
    "NO_PAGE",
    "RobotsRules",
    "SiteCrawl",
    "SitePageVisitor",
    "Visited",
    "discover_pages",
    "discover_site",
    "fetch_robots",
    "link_excluded",
    "looks_like_html",
    "page_wanted",
    "page_key",
    "parse_sitemap",
    "product_token",
    "same_site",
    "without_session",
]

log = logging.getLogger(__name__)

class _Visited(enum.Enum):
    NO_PAGE = "no page"


NO_PAGE: Final = _Visited.NO_PAGE
"""What a `visit` returns for an address that turned out to be no page of
the site: a dead link (404, a PDF), a redirect off the site, or to a page
audited already. It is not one of `SiteCrawl.pages`, and does not use up
`max_pages`: a site with 100 dead links and max_pages = 500 audits 500
pages, not 400 (review9 #5)."""

Visited = list[Citation] | None | Literal[_Visited.NO_PAGE]
"""What a `visit` returns: the page's citations, None, or `NO_PAGE`."""

SitePageVisitor = Callable[[str], Awaitable[Visited]]
"""Fetch the page (conditionally), extract and record it, return its
citations; None when the page could not be fetched; `NO_PAGE` when there
is no page of the site there."""

MAX_SITEMAP_BYTES = 50 * 1024 * 1024
"""The sitemap protocol's limit for one uncompressed file; also the bound on
gzip expansion (a gzip bomb stops here)."""
MAX_SITEMAP_DEPTH = 3
"""Index nesting followed: an index of sitemaps is depth 1. The protocol
allows no nesting; a few sites do it anyway."""
MAX_SITEMAP_FILES = 200
"""Sitemap files fetched per crawl at most, whatever the indexes list."""
MAX_ROBOTS_BYTES = 512 * 1024
"""RFC 9309 asks parsers to read at least 500 KiB."""
MAX_CRAWL_DELAY = 10.0
"""A Crawl-delay beyond this many seconds is shortened to it (logged): a
weekly audit of 500 pages must still finish within the day."""

NON_HTML_EXTENSIONS = frozenset({
    # documents and data
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "pps", "ppsx", "odt", "ods", "odp",
    "rtf", "txt", "csv", "tsv", "json", "xml", "rss", "atom", "epub", "mobi", "ps", "eps",
    "ics", "vcf", "bib", "ris",
    # images
    "jpg", "jpeg", "png", "gif", "webp", "svg", "ico", "bmp", "tif", "tiff", "avif", "heic",
    # audio and video
    "mp3", "mp4", "m4a", "m4v", "mov", "avi", "wmv", "flv", "webm", "ogg", "ogv", "oga",
    "wav", "mpg", "mpeg", "mkv", "ra", "rm", "swf",
    # archives and binaries
    "zip", "gz", "tgz", "bz2", "xz", "7z", "rar", "tar", "exe", "dmg", "msi", "apk", "iso",
    "bin", "jar",
    # page resources
    "css", "js", "mjs", "map", "woff", "woff2", "ttf", "eot", "otf",
})
"""Extensions of the last path segment that are never an HTML page. Unknown
extensions (.php, .asp, .cfm, .shtml ...) are taken as pages."""

_FOLLOWED_KINDS = (LinkKind.NAVIGATION, LinkKind.CITATION)
_FRAME_ELEMENTS = frozenset({"frame", "iframe"})
"""Resources that are pages: a frameset's frames hold an old site's menu and content."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


# -- pure helpers ----------------------------------------------------------------


def _site_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _origin_key(url: str) -> tuple[str, int | None] | None:
    """(host without www., port unless the scheme's default): what makes two
    URLs one site. http://h and https://h are one site; http://h:443 is not."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return _site_host(parts.hostname), None if port in (None, _DEFAULT_PORTS[scheme]) else port


def same_site(url: str, start: str) -> bool:
    """Whether `url` belongs to the site of `start`: same host (a leading
    "www." ignored), same port, http and https alike. Never true for a
    malformed or non-http(s) URL."""
    key = _origin_key(url)
    return key is not None and key == _origin_key(start)


_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _unescape_unreserved(text: str) -> str:
    """RFC 3986 6.2.2: "%7e", "%7E" and "~" are one character; other escapes in upper case."""
    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else match.group(0).upper()

    return _ESCAPE_RE.sub(one, text)


def page_key(url: str) -> str:
    """The de-duplication key: one page whatever its scheme or "www.", the
    case of its escapes, or the order of its query parameters (a repeated
    parameter keeps the order of its values)."""
    parts = urlsplit(url)
    origin = _origin_key(url)
    host = f"{origin[0]}:{origin[1] or ''}" if origin else parts.netloc.lower()
    params = sorted((p for p in parts.query.split("&") if p), key=lambda p: p.partition("=")[0])
    query = _unescape_unreserved("&".join(params))
    return f"{host}{_unescape_unreserved(parts.path) or '/'}?{query}"


_TRACKING_KEY_RE = re.compile(
    r"(?:utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|mc_eid|_ga|_gl)", re.I)
_SID_VALUE_RE = re.compile(r"[0-9A-Za-z]{16,}")


def _noise_param(param: str) -> bool:
    key, _, value = param.partition("=")
    if _TRACKING_KEY_RE.fullmatch(key) or SESSION_KEY.fullmatch(key):
        return True
    # "sid" is a session id in phpBB and many CMSs, a story or section id in
    # others: dropped only when its value looks like a session token.
    return key.lower() == "sid" and bool(_SID_VALUE_RE.fullmatch(value))


def without_session(url: str) -> str:
    """`url` without session ids (";jsessionid=...", "?PHPSESSID=...", a
    token-like "?sid=...") and tracking tags ("utm_*", "fbclid" ...): each
    visit of a cookieless site hands out new ids, which would make every page
    a new URL, and a tagged link is the same page. Other parameters are kept
    as they are, in their order."""
    parts = urlsplit(url)
    path = PATH_SESSION.sub("", parts.path)
    query = parts.query
    if query:
        query = "&".join(p for p in query.split("&") if p and not _noise_param(p))
    if path == parts.path and query == parts.query:
        return url
    return parts._replace(path=path, query=query).geturl()


def looks_like_html(url: str) -> bool:
    """False when the path ends in a file extension that is never a page."""
    try:
        last = urlsplit(url).path.rsplit("/", 1)[-1]
    except ValueError:
        return False
    _, dot, ext = last.rpartition(".")
    return not dot or ext.lower() not in NON_HTML_EXTENSIONS


@functools.lru_cache(maxsize=64)
def _compile(patterns: tuple[str, ...], key: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigError(f"sites: {key}: invalid regular expression {pattern!r}: {exc}") from None
    return tuple(compiled)


def page_wanted(url: str, site: SiteSettings) -> bool:
    """The site's `include` (empty = all) and `exclude` regexes on a page URL."""
    include = _compile(site.include, "include")
    if include and not any(p.search(url) for p in include):
        return False
    return not any(p.search(url) for p in _compile(site.exclude, "exclude"))


def link_excluded(url: str, site: SiteSettings) -> bool:
    """Whether the site's `exclude_links` regexes leave this link unchecked."""
    return any(p.search(url) for p in _compile(site.exclude_links, "exclude_links"))


def product_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched on (RFC 9309 2.2.1):
    "citation-monitor" of "citation-monitor/0.1 (link-rot audit ...)". The
    whole header would also match a group named by a word of its comment
    ("User-agent: link")."""
    token = user_agent.strip().split(None, 1)[0] if user_agent.strip() else ""
    return token.split("/", 1)[0] or "*"


# -- sitemaps ----------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"
# An unclosed comment or DOCTYPE runs to the end: a lazy match that must
# find its terminator would retry from every "<!--" (quadratic on junk).
_COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_DOCTYPE_RE = re.compile(r"<!DOCTYPE[^\[>]*(?:\[.*?(?:\]|\Z))?[^>]*(?:>|\Z)", re.S | re.I)
_FIRST_TAG_RE = re.compile(r"<(?:([A-Za-z_][\w.\-]*):)?([A-Za-z_][\w.\-]*)")
# Bounded attribute run: junk without ">" cannot make the scan quadratic.
_TAG_RE = re.compile(r"<(/?)(?:([A-Za-z_][\w.\-]*):)?(url|sitemap|loc)(?=[\s/>])[^<>]{0,2000}>")
_CDATA_RE = re.compile(r"\s*<!\[CDATA\[(.*?)\]\]>\s*", re.S)
_XML_REF_RE = re.compile(r"&(amp|lt|gt|quot|apos|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_XML_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _gunzip(body: bytes) -> bytes:
    """Bounded gzip expansion; a corrupt or truncated stream gives what it held."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_SITEMAP_BYTES)
    except zlib.error:
        return b""
    if inflater.unconsumed_tail:
        log.warning("sitemap larger than %d bytes uncompressed: cut", MAX_SITEMAP_BYTES)
    return out


def _decode(body: bytes) -> str:
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if body.startswith(bom):
            return body[len(bom):].decode(codec, errors="replace")
    # The protocol requires UTF-8; a stray byte must not lose the file.
    return body.decode("utf-8-sig", errors="replace")


def _xml_unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref in _XML_ENTITIES:
            return _XML_ENTITIES[ref]
        try:
            return chr(int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:]))
        except (ValueError, OverflowError):
            return match.group(0)

    return _XML_REF_RE.sub(one, text)


def _loc_url(raw: str) -> str | None:
    cdata = _CDATA_RE.fullmatch(raw)
    text = cdata.group(1) if cdata else _xml_unescape(raw)
    text = text.strip()
    if not text.lower().startswith(("http://", "https://")):
        return None  # relative locs are invalid in sitemaps; a base would be a guess
    url, _ = normalize_url(text, text)
    return url


def _unique(urls: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(u for u in urls if u))


def _parse_text_sitemap(text: str) -> list[str]:
    """The protocol's plain-text form: one absolute URL per line, nothing else."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not all(
        line.lower().startswith(("http://", "https://")) and not any(c.isspace() for c in line)
        for line in lines
    ):
        return []
    return _unique(normalize_url(line, line)[0] for line in lines)


def parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of a sitemap file; ([], []) for junk.

    `<urlset>` gives pages, `<sitemapindex>` children; gzip is detected by
    its magic bytes (a .xml.gz served without Content-Encoding). Elements
    are matched by local name with the root's namespace prefix, so the
    `<image:loc>` of image sitemaps is not taken for a page. Never raises.
    """
    try:
        return _parse_sitemap(body)
    except Exception:  # noqa: BLE001 - junk from the network must not end a crawl
        log.warning("sitemap could not be parsed", exc_info=True)
        return [], []


def _parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    if body.startswith(_GZIP_MAGIC):
        body = _gunzip(body)
    text = _decode(body[:MAX_SITEMAP_BYTES])
    text = _DOCTYPE_RE.sub("", _COMMENT_RE.sub("", text))
    first = _FIRST_TAG_RE.search(text)  # "<?xml" and "<!" do not match: the root element
    if first is None or first.group(2) not in ("urlset", "sitemapindex"):
        return _parse_text_sitemap(text), []
    prefix, root = first.group(1), first.group(2)
    entry = "url" if root == "urlset" else "sitemap"
    locs: list[str | None] = []
    in_entry = has_loc = False
    loc_start: int | None = None
    for tag in _TAG_RE.finditer(text, first.end()):
        closing, tag_prefix, name = tag.group(1) == "/", tag.group(2), tag.group(3)
        if tag_prefix != prefix:
            continue
        if name == entry:
            in_entry, has_loc, loc_start = not closing, False, None
        elif name == "loc" and in_entry and not has_loc:
            if not closing:
                loc_start = tag.end()
            elif loc_start is not None:
                locs.append(_loc_url(text[loc_start:tag.start()]))
                has_loc = True
    found = _unique(locs)
    return (found, []) if root == "urlset" else ([], found)


# -- robots.txt --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """What the site's robots.txt allows this crawl.

    `outcome` is "rules" (parsed), "allow_all" (4xx: no robots.txt) or
    "disallow_all" (5xx, 429 or unreachable: RFC 9309 2.3.1.4, the server may
    be in trouble; nothing is fetched until the next crawl).
    """

    url: str
    outcome: str
    detail: str = ""
    parser: Protego | None = None

    def allows(self, url: str, user_agent: str) -> bool:
        if self.outcome == "allow_all":
            return True
        if self.outcome == "disallow_all" or self.parser is None:
            return False
        return bool(self.parser.can_fetch(url, product_token(user_agent)))

    def interval(self, user_agent: str) -> float:
        """Seconds between two requests asked for by Crawl-delay/Request-rate, capped."""
        if self.parser is None:
            return 0.0
        agent = product_token(user_agent)
        delay = self.parser.crawl_delay(agent) or 0.0
        rate = self.parser.request_rate(agent)
        if rate is not None and rate.requests:
            delay = max(delay, rate.seconds / rate.requests)
        if delay > MAX_CRAWL_DELAY:
            log.warning("robots.txt asks %.1f s between requests; using %.1f s", delay, MAX_CRAWL_DELAY)
            delay = MAX_CRAWL_DELAY
        return max(0.0, float(delay))

    def sitemaps(self) -> list[str]:
        return list(self.parser.sitemaps) if self.parser is not None else []


def _robots_url(site_url: str) -> str:
    parts = urlsplit(site_url)
    return f"{parts.scheme}://{parts.netloc}/robots.txt"


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of the body, and whether there was more."""
    body = bytearray()
    while len(body) <= limit:
        chunk = await resp.content.read(min(65536, limit + 1 - len(body)))
        if not chunk:
            return bytes(body), False
        body += chunk
    return bytes(body[:limit]), True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return printable(f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__)


async def fetch_robots(client: Client, site_url: str, *, timeout: float) -> RobotsRules:
    """The robots.txt of `site_url`'s origin, fetched once, as RobotsRules."""
    url = _robots_url(site_url)
    try:
        async with asyncio.timeout(timeout):
            async with client.session.get(url, timeout=client.timeout(timeout),
                                          headers={"Accept": "text/plain,*/*;q=0.5"}) as resp:
                status = resp.status
                body, cut = await _read_bounded(resp, MAX_ROBOTS_BYTES) if 200 <= status < 300 else (b"", False)
    except TimeoutError:
        return RobotsRules(url, "disallow_all", f"timed out after {timeout:g} s")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return RobotsRules(url, "disallow_all", _describe(exc))
    if 200 <= status < 300:
        if cut:
            log.warning("robots.txt longer than %d bytes: the rest is ignored url=%s", MAX_ROBOTS_BYTES, url)
        try:
            parser = Protego.parse(body.decode("utf-8-sig", errors="replace"))
        except Exception:  # noqa: BLE001 - unparseable rules are no rules (RFC 9309 2.2)
            log.warning("robots.txt could not be parsed: allowing all url=%s", url, exc_info=True)
            return RobotsRules(url, "allow_all", "unparseable")
        return RobotsRules(url, "rules", f"HTTP {status}", parser)
    if status == 429 or status >= 500:
        return RobotsRules(url, "disallow_all", f"HTTP {status}")
    if 400 <= status < 500:
        return RobotsRules(url, "allow_all", f"HTTP {status}")
    return RobotsRules(url, "disallow_all", f"HTTP {status}")


# -- the crawl ---------------------------------------------------------------------


@dataclass
class SiteCrawl:
    """What one discovery found.

    `pages` are the URLs given to `visit`, in discovery order, but for those
    it found no page at (`NO_PAGE`; those it could not fetch are in `errors` too); `sitemap_urls` counts the page URLs the
    sitemaps listed; `filtered` counts site pages left out by the include/
    exclude patterns or their extension; `off_site` counts sitemap URLs on
    another site. `over_max_pages` counts the pages found but not audited
    because `max_pages` was reached (at least that many: their links were
    never read), `beyond_max_depth` those linked from the pages at
    `max_depth`, not followed; either is logged (`over_max_pages` kept with the run: `SiteCut`).
    """

    pages: list[str] = field(default_factory=list)
    skipped_by_robots: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    sitemap_urls: int = 0
    filtered: int = 0
    off_site: int = 0
    over_max_pages: int = 0
    beyond_max_depth: int = 0
    robots: str = ""
    """The robots.txt outcome: rules, allow_all or disallow_all, with its cause."""
    robots_unreadable: str = ""
    """Why robots.txt could not be read ("HTTP 503"), when that made the
    whole site off limits (disallow_all); "" otherwise."""


class _Pacer:
    """Spaces the starts of requests by `interval` seconds (Crawl-delay)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = asyncio.Lock()
        self._next = 0.0

    async def wait(self) -> None:
        if self.interval <= 0:
            return
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = time.monotonic() + self.interval


class _Discovery:
    """The state of one site's discovery."""

    def __init__(self, client: Client, site: SiteSettings, visit: SitePageVisitor, *,
                 user_agent: str, timeout: float, concurrency: int, listed: set[str] | None = None) -> None:
        self.client = client
        self.listed = listed if listed is not None else set()
        """Page keys of the pages the sitemap lists, filled before any is visited."""
        self.site = site
        self.visit = visit
        self.user_agent = user_agent
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self.base = _normalized(site.start or site.sitemap)
        self.include = _compile(site.include, "include")
        self.exclude = _compile(site.exclude, "exclude")
        self.result = SiteCrawl()
        self.seen: set[str] = set()
        self.reserve: list[str] = []
        """Pages of the level being admitted that `max_pages` held back
        (counted in `over_max_pages`): visited after all when addresses of
        that level turn out to be no page (`NO_PAGE`) and free their places."""
        self.robots = RobotsRules("", "allow_all")
        self.pacer = _Pacer(0.0)

    @property
    def full(self) -> bool:
        return len(self.result.pages) >= self.site.max_pages

    def _wanted(self, url: str) -> bool:
        if self.include and not any(p.search(url) for p in self.include):
            return False
        return not any(p.search(url) for p in self.exclude)

    def admit(self, url: str, *, exempt: bool = False, too_deep: bool = False) -> str | None:
        """The URL to visit for `url` (without session ids and tracking
        tags), or None; a page is judged once. `exempt`: the start page,
        visited whatever the patterns say; `too_deep`: linked from a page at
        `max_depth`, only counted."""
        url = without_session(url)
        key = page_key(url)
        if key in self.seen:
            return None
        self.seen.add(key)
        if too_deep or self.full:
            # Counted, not listed: the webmaster learns that a limit was too low.
            if looks_like_html(url) and self._wanted(url) and self.robots.allows(url, self.user_agent):
                if too_deep:
                    self.result.beyond_max_depth += 1
                else:
                    self.result.over_max_pages += 1
                    self.reserve.append(url)
            return None
        if not exempt and not (looks_like_html(url) and self._wanted(url)):
            self.result.filtered += 1
            return None
        if not self.robots.allows(url, self.user_agent):
            self.result.skipped_by_robots.append(url)
            return None
        self.result.pages.append(url)
        return url

    async def run(self) -> SiteCrawl:
        self.robots = await fetch_robots(self.client, self.base, timeout=self.timeout)
        self.result.robots = f"{self.robots.outcome} ({self.robots.detail})"
        if self.robots.outcome == "disallow_all":
            self.result.robots_unreadable = self.robots.detail
            log.warning("robots.txt unavailable: nothing fetched from this site this time url=%s cause=%s",
                        self.robots.url, self.robots.detail)
        interval = self.robots.interval(self.user_agent)
        if interval > 0:
            self.concurrency = 1
            self.pacer = _Pacer(interval)
        level: list[str] = []
        if self.site.start and (admitted := self.admit(_normalized(self.site.start), exempt=True)):
            level.append(admitted)
        sitemaps = [self.site.sitemap] if self.site.sitemap else self.robots.sitemaps()
        for url in await self._sitemap_pages(sitemaps):
            if admitted := self.admit(url):
                level.append(admitted)
                self.listed.add(page_key(admitted))
        await self._crawl(level)
        r = self.result
        if r.over_max_pages:
            # INFO: the audit keeps it with the run (`SiteCut`): the report and
            # `check`/`run` say it in plain words (was a WARNING line only).
            log.info("site has more pages than max_pages=%d: at least %d found were not audited site=%s",
                     self.site.max_pages, r.over_max_pages, self.base)
        if r.beyond_max_depth:
            log.info("site has pages deeper than max_depth=%d: %d linked from the deepest pages were "
                        "not audited site=%s", self.site.max_depth, r.beyond_max_depth, self.base)
        log.info("site discovered site=%s pages=%d skipped_by_robots=%d errors=%d sitemap_urls=%d "
                 "filtered=%d off_site=%d robots=%s", self.base, len(r.pages), len(r.skipped_by_robots),
                 len(r.errors), r.sitemap_urls, r.filtered, r.off_site, r.robots)
        return r

    async def _crawl(self, level: list[str]) -> None:
        """Level by level: every page of depth d is visited before depth d+1."""
        follow = bool(self.site.start)
        depth = 0
        while level:
            found = await self._visit_level(level)
            found += await self._visit_reserve()
            if not follow:
                return
            # What max_pages held back at this level stays counted, not visited.
            self.reserve.clear()
            following: list[str] = []
            last = depth >= self.site.max_depth
            for citations in found:
                for c in citations or ():
                    followed = c.kind in _FOLLOWED_KINDS or c.element in _FRAME_ELEMENTS
                    if c.url and followed and same_site(c.url, self.base):
                        if admitted := self.admit(c.url, too_deep=last):
                            following.append(admitted)
            level, depth = following, depth + 1

    async def _visit_reserve(self) -> list[list[Citation] | None]:
        """Visit the pages `max_pages` held back at this level, as many as
        the addresses found to be no page left room for (and again, when
        some of those are no page either)."""
        found: list[list[Citation] | None] = []
        while self.reserve and not self.full:
            take = self.reserve[:self.site.max_pages - len(self.result.pages)]
            del self.reserve[:len(take)]
            self.result.over_max_pages -= len(take)
            self.result.pages.extend(take)
            found += await self._visit_level(take)
        return found

    async def _visit_level(self, urls: list[str]) -> list[list[Citation] | None]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(url: str) -> tuple[Visited, str]:
            async with gate:
                await self.pacer.wait()
                try:
                    found = await self.visit(url)
                except Exception as exc:  # noqa: BLE001 - one bad page must not end the crawl
                    log.warning("site page failed url=%s error=%s", url, _describe(exc), exc_info=True)
                    return None, _describe(exc)
                return found, "" if found is not None else "page could not be fetched"

        outcomes = await asyncio.gather(*(one(u) for u in urls))
        # Errors in discovery order, not completion order: reports stay stable.
        self.result.errors.extend((url, error) for url, (_, error) in zip(urls, outcomes) if error)
        no_page = {url for url, (found, _) in zip(urls, outcomes) if found is NO_PAGE}
        if no_page:
            # Their places in max_pages are free again (`_visit_reserve`).
            self.result.pages = [url for url in self.result.pages if url not in no_page]
        return [[] if found is NO_PAGE else found for found, _ in outcomes]

    async def _sitemap_pages(self, roots: Sequence[str]) -> list[str]:
        """Page URLs of the sitemaps, breadth first through indexes, until
        `max_pages` could be filled."""
        queue = deque((url, 0) for url in roots)
        fetched: set[str] = set()
        pages: list[str] = []
        while queue and len(fetched) < MAX_SITEMAP_FILES and len(pages) < self._sitemap_budget():
            url, depth = queue.popleft()
            if url in fetched:
                continue
            fetched.add(url)
            if same_site(url, self.base) and not self.robots.allows(url, self.user_agent):
                self.result.errors.append((url, "sitemap disallowed by robots.txt"))
                continue
            body = await self._fetch_sitemap(url)
            if body is None:
                continue
            # 50,000 URLs take about a second to parse: off the event loop.
            found, children = await asyncio.to_thread(parse_sitemap, body)
            if not found and not children:
                self.result.errors.append((url, "no URLs found: not a sitemap, or empty"))
            self.result.sitemap_urls += len(found)
            for page in found:
                if same_site(page, self.base):
                    pages.append(page)
                else:
                    self.result.off_site += 1
            if children and depth >= MAX_SITEMAP_DEPTH:
                self.result.errors.append((url, f"sitemap index nested deeper than {MAX_SITEMAP_DEPTH}"))
                continue
            queue.extend((child, depth + 1) for child in children)
        if queue and len(fetched) >= MAX_SITEMAP_FILES:
            log.warning("more than %d sitemap files: the rest are not read", MAX_SITEMAP_FILES)
        return pages

    def _sitemap_budget(self) -> int:
        # Some listed pages will be filtered or disallowed: read on while the
        # candidates do not exceed the page budget several times over.
        return 4 * self.site.max_pages + 100

    async def _fetch_sitemap(self, url: str) -> bytes | None:
        await self.pacer.wait()
        try:
            async with asyncio.timeout(self.timeout):
                async with self.client.session.get(
                    url, timeout=self.client.timeout(self.timeout),
                    headers={"Accept": "application/xml,text/xml;q=0.9,*/*;q=0.5"},
                ) as resp:
                    if resp.status != 200:
                        self.result.errors.append((url, f"HTTP {resp.status}"))
                        return None
                    body, cut = await _read_bounded(resp, MAX_SITEMAP_BYTES)
        except TimeoutError:
            self.result.errors.append((url, f"timed out after {self.timeout:g} s"))
            return None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            self.result.errors.append((url, _describe(exc)))
            return None
        if cut:
            log.warning("sitemap larger than %d bytes: cut url=%s", MAX_SITEMAP_BYTES, url)
        return body


def _normalized(url: str) -> str:
    return normalize_url(url, url)[0] or url


async def discover_site(client: Client, site: SiteSettings, visit: SitePageVisitor, *,
                        user_agent: str, timeout: float, concurrency: int = 4,
                        listed: set[str] | None = None) -> SiteCrawl:
    """Discover and visit the pages of one `[[sites]]` entry (module docstring).

    `listed`, when given, receives the `page_key` of each page the sitemap
    lists before `visit` is called for any: `visit` can tell a page the
    site's own sitemap names from one a link led to.
    Raises ConfigError for an invalid include/exclude regex; everything the
    network does wrong is reported in the result instead.
    """
    discovery = _Discovery(client, site, visit, user_agent=user_agent, timeout=timeout,
                           concurrency=concurrency, listed=listed)
    return await discovery.run()


async def discover_pages(client: Client, site: SiteSettings, checker: CheckerSettings) -> list[str]:
    """The site's page URLs, fetched and parsed here only to find links.

    For callers that fetch the pages again themselves; the audit passes its
    own `visit` to `discover_site` so that each page is fetched once.
    """
    from monitor.decode import decode_html
    from monitor.extract import extract_page
    from monitor.pages import fetch_page

    async def visit(url: str) -> list[Citation] | None:
        fetched = await fetch_page(client, url, timeout=checker.timeout)
        if fetched.status != "ok":
            return None
        html = decode_html(fetched.body, fetched.content_type)
        return list(extract_page(html, fetched.final_url or url).citations)

    crawl = await discover_site(client, site, visit, user_agent=checker.user_agent,
                                timeout=checker.timeout, concurrency=min(4, checker.per_host))
    return crawl.pages
