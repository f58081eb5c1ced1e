"""Page HTML -> every link on it, with its kind, section and citation entry.

Pure: a decoded ``str`` in, value objects out; no I/O. One lexbor parse, one
CSS query that yields headings and links in document order, then small
bounded passes. Nothing here is keyed on one page's wording.

Link kinds (the heuristic, in the order it is applied)
------------------------------------------------------
1. ``resource``: what the page loads (img src and every srcset candidate,
   script src, link rel=stylesheet/icon/preload/manifest href, iframe/frame
   src, video src/poster, audio/source/track src, embed src, object data,
   input type=image src, the background= of body/table/thead/tbody/tfoot/
   tr/td/th, bgsound src, an applet's archive jars -- or its code class file
   when it has none -- resolved against its codebase, and what CSS in the
   page names: see "CSS" below).
   Targets outside <a>/<area>/<link> that a reader is sent or pointed to are
   ``navigation``: <meta http-equiv=refresh> (element "meta", attribute
   "content"; the page forwards its readers there), the cite= of blockquote/
   q/ins/del (the source of a quote or an edit: it has no entry -- no title,
   summary or source line -- so as a citation it would raise a false "no
   source line" and be judged for drift against the quoted words), and
   longdesc. A <form action> is not extracted: it names a program that
   expects the form's fields, often by POST, and a working one answers a
   bare GET with 405 or an error page.
2. ``navigation``: links that are not checkable URLs of an entry (fragment,
   mailto:, tel:, javascript:, data:), links inside a *chrome container*
   (nav, menu, aside, a header/footer outside an article, role=navigation /
   banner / contentinfo, or an id/class naming nav, menu, footer, sidebar,
   breadcrumb, toolbar, masthead, site-header, topbar), and links inside an
   "(Also see ...)" / "(See also ...)" / "(see ...)" parenthesis.
3. ``citation``: a link that *starts its block* -- the first content of its
   paragraph-like block (p, li, td, dd, div ...; two <br> in a row also end a
   block, or of a line after a <br> when its text has at least three words
   and does not name a source such as "PubMed"; the entry then ends before
   the next such line), possibly after a short bracketed mark such as
   "(Expired Article)" or "(Link Expired)", a bare "Expired Article:", a
   bullet or "3." -- and either
     a. is followed by at least two words of plain (non-link) text that are
        not an "(Also see ...)" part, with a title boundary between them (the
        text after it opens with punctuation, a capital, a digit or a <br>,
        or the link text ends a sentence) -- the title of an entry with its
        summary or source line; or
     b. points to another host than the page's and has a title of at least
        three words -- a title-only entry.
   The link must have text of its own. Short same-site link lists (menus
   without markup hints), links in running text ("See <a>Types</a>") and
   image-only links (logos, badges) therefore stay navigation. Chrome names
   are matched as substrings of id/class ("leftmenu", "page-footer").
4. everything else: ``navigation``.

Sections
--------
The section of a link is the text of the nearest preceding heading outside
chrome containers. A heading is h1-h6, or -- for old sites -- a p/div/td/th/
center/dt block whose only content is one bold (b, strong, big), larger
font (<font size="+1">, size 4-7) or named anchor (<a name>/<a id> without
href) run of at most 100 characters that does not end like a sentence (".",
"!") and holds no link; or such a run on
a line of its own among the entries ("<b>Biologics</b><br>" in a <td>, a <p>
or <body>) when no plain text follows on the next line. Links inside chrome
containers get the section "".

Entry context (citations only)
------------------------------
title = the link text without an "(Expired ...)" mark (the bare mark also
counts after the title or at the end of the entry); the text after the
link, with "(Also see ...)" parts removed, is split into sentences, and the
trailing sentences that look like a source line (a known source prefix such
as "PubMed", or a date or volume(issue) pattern in a short mostly capitalised
chunk, or at most six mostly capitalised words such as "ATS Journal.") form
``source``; the rest is ``summary``. ``date`` comes only from the source
line (`parse_source_date`); it is never invented.

Phantom links
-------------
Lexbor, like a browser, re-opens an unclosed <a> in the following blocks; the
clones carry the same href. The raw text is scanned once for the start tags
that carry links: a DOM <a> that repeats the previous <a>'s href while the DOM
holds more such <a> than the source has start tags is a clone and is dropped.
The same scan gives each link its source line (None when no start tag in the
raw text carries that value, e.g. a link written by a script).

CSS
---
Old pages load backgrounds and stylesheets through CSS written in the page:
every url() of a style="..." attribute (element: its tag, attribute
"style"; one link per distinct URL, on the tag's line like srcset
candidates) and every url() and @import target of a <style> block (element
"style", attribute "url" or "@import", each on its own line) is a
``resource``, resolved against the document's base URL as a browser does.
They are read as CSS Syntax 3 reads them: unquoted, 'single' or "double"
quoted, with white space inside the parentheses and escapes; nothing in a
comment or a string; no empty url(), "#fragment" (an SVG element of this
page) or data: URI; no bad URL a browser drops ("url(a b)", a string cut
by a newline); a url() left open at the end of the text counts, as browsers
close it there. An @import is taken wherever it stands in a block (a
browser ignores one placed after other rules; it still names a file).
Stylesheets the page links to are not fetched, so their url()s are not
checked. A page without a <style> or a "url(" in a style attribute pays
one lexbor query for CSS.

URLs
----
`normalize_url` follows the browser (WHATWG) where it matters for checking:
whitespace trimmed, tabs/newlines dropped, "\\" read as "/", <base href>
honoured, dot segments removed, scheme and host lower-cased, IDN hosts in
punycode (UTS 46), default ports dropped, spaces and non-ASCII
percent-encoded, the fragment dropped. It is stricter on hosts (letters,
digits, "-", "_", "." only) so that junk is reported as "invalid_url" now
rather than as a DNS failure later. "Another host" in rule 3b means another
site: "www." is ignored and subdomains count as the same site.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import html as htmllib
import ipaddress
import operator
import re
from collections import defaultdict, deque
from dataclasses import dataclass, field, replace
from urllib.parse import quote, urljoin, urlsplit

import idna
from selectolax.lexbor import LexborHTMLParser, LexborNode

from monitor.textfragment import fragment_words, locate
from monitor.types import HREF_MAX, URL_KEPT_MAX, Citation, EntryContext, LinkKind

__all__ = ["PageExtract", "extract_page", "normalize_url", "parse_source_date"]


@dataclass(frozen=True, slots=True)
class PageExtract:
    """Everything the audit needs from one fetched page."""

    url: str
    title: str
    base_url: str
    citations: tuple[Citation, ...]
    entries: tuple[str, ...]
    """Titles of the citation entries in page order, to notice heavy edits."""


# --------------------------------------------------------------------------
# URLs

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_SKIP_SCHEMES = frozenset({"mailto", "tel", "javascript", "data"})
_C0_AND_SPACE = "".join(chr(i) for i in range(0x21))
_DROP_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
# Stricter than WHATWG on purpose: only names that DNS can resolve pass.
_ASCII_HOST_RE = re.compile(r"[a-z0-9_\-.]*[a-z0-9][a-z0-9_\-.]*")
_NUMERIC_HOST_RE = re.compile(r"[0-9.]+")
# What browsers leave alone in a path and a query (WHATWG percent-encode
# sets, "^" kept as Chrome does); "%" stays so existing escapes survive.
_PATH_SAFE = "!$%&'()*+,/:;=@[]^|"
_QUERY_SAFE = "!$%&()*+,/:;=?@[\\]^`{|}"
# What they leave out of "!"-"~", each as one character class (found twice
# as fast as `[^!-~]|["#<>?\\`{}]` and `[^!-~]|["#'<>]`, which they equal).
_PATH_QUOTE_RE = re.compile(r"""[^!$-;=@-\[\]-_a-z|~]""")
_QUERY_QUOTE_RE = re.compile(r"""[^!$-&(-;=?-~]""")
# A user part ("name:password@") is percent-encoded as browsers do (WHATWG
# userinfo set): raw, it carried terminal escapes, bidi overrides and quotes
# into the CSV, the logs and the report.
_USERINFO_SAFE = "!$%&'()*+,;=:"
_USERINFO_QUOTE_RE = re.compile(r"[^-A-Za-z0-9_.~!$%&'()*+,;=:]")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def normalize_url(
    href: str, base: str, *, document: str | None = None
) -> tuple[str | None, str | None]:
    """Resolve `href` against `base` the way a browser would, for checking.

    Returns ``(absolute_url, None)`` or ``(None, skip_reason)``; never raises.
    The fragment is dropped from what gets checked; an href that only points
    into the page itself (`document`, default `base`) is a "fragment".
    """
    ref = href.strip(_C0_AND_SPACE)
    if "\t" in ref or "\n" in ref or "\r" in ref:  # str.translate reads a table per character
        ref = ref.translate(_DROP_TAB_NEWLINE)
    if not ref or len(ref) > HREF_MAX:
        # Longer than any server takes: a paste gone wrong, or a hostile
        # page's 500,000 characters, kept in four rows a link every week.
        return None, "invalid_url"
    match = _SCHEME_RE.match(ref)
    if match:
        scheme = match.group(1).lower()
        if scheme in _SKIP_SCHEMES:
            return None, scheme
        if scheme not in _DEFAULT_PORTS:
            return None, "unsupported_scheme"
    # Browsers read "\" as "/" before the query in http(s) URLs.
    if "\\" in ref:
        cut = min((i for i in (ref.find("?"), ref.find("#")) if i >= 0), default=len(ref))
        if "\\" in ref[:cut]:
            ref = ref[:cut].replace("\\", "/") + ref[cut:]
    try:
        absolute = match is not None and ref.startswith("//", match.end())
        url = _canonical(ref if absolute else urljoin(base, ref))
    except ValueError:
        url = None
    if url is None or len(url) > HREF_MAX:  # percent-escaped, one character can take twelve
        return None, "invalid_url"
    if "#" in ref:
        if document is None:
            document = _canonical_or_none(base)
        if url == document:
            return None, "fragment"
    return url, None


def _canonical_or_none(url: str) -> str | None:
    try:
        return _canonical(url)
    except ValueError:
        return None


def _canonical(url: str) -> str | None:
    """An absolute http(s) URL in the form we check and store, or None."""
    scheme, netloc, path, query = _split(url)
    if scheme not in _DEFAULT_PORTS:
        return None
    netloc = _canonical_netloc(netloc, scheme)
    if netloc is None:
        return None
    path = _remove_dot_segments(path or "/")
    if _PATH_QUOTE_RE.search(path):
        path = quote(path, safe=_PATH_SAFE)
    if query and _QUERY_QUOTE_RE.search(query):
        query = quote(query, safe=_QUERY_SAFE)
    return f"{scheme}://{netloc}{path}?{query}" if query else f"{scheme}://{netloc}{path}"


def _split(url: str) -> tuple[str, str, str, str]:
    """(scheme lower-cased, netloc, path, query) as `urlsplit` gives them.

    Most links are plain ASCII http(s) URLs: a host and port, a path and a
    query of printable characters, no user, brackets or fragment. Of such a
    URL `urlsplit` gives the scheme (lower-cased), what runs to the first
    "/" or "?", to the first "?", and the rest; a pattern reads them so in a
    third of the time. Any other URL goes to `urlsplit`, which raises for
    the malformed ones.
    """
    simple = _SIMPLE_URL_RE.fullmatch(url)
    if simple is not None:
        scheme, netloc, path, query = simple.groups()
        return scheme.lower(), netloc, path or "", query or ""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc, parts.path, parts.query


_SIMPLE_URL_RE = re.compile(
    r'([Hh][Tt][Tt][Pp][Ss]?)://([-A-Za-z0-9._:]+)(/[!-"$->@-~]*)?(?:\?([!-"$-~]*))?')
"""See `_split`: a path of "!"-"~" without "#" or "?", a query without "#"."""


def _canonical_netloc(netloc: str, scheme: str) -> str | None:
    """The host part as we check and store it, or None when it is no host.

    A page's links name few hosts (a page of 50 citations, 30): the same
    netloc is worked out once, in `_cached_netloc`. It is a function of its
    two arguments alone, so a cached answer is the answer. Netlocs longer
    than any host name are not kept, lest a hostile page fill the cache.
    """
    if len(netloc) > _NETLOC_CACHED_MAX:
        return _netloc(netloc, scheme)
    return _cached_netloc(netloc, scheme)


_NETLOC_CACHED_MAX = 300


def _netloc(netloc: str, scheme: str) -> str | None:
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return None
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:]
    else:
        host, _, port = hostport.partition(":")
    host = _canonical_host(host)
    if host is None:
        return None
    if port:
        if not port.isascii() or not port.isdigit() or int(port) > 65535:
            return None
        port = str(int(port))
        if port == _DEFAULT_PORTS[scheme]:
            port = ""
    if userinfo and _USERINFO_QUOTE_RE.search(userinfo):
        userinfo = quote(userinfo, safe=_USERINFO_SAFE)
    return f"{userinfo}{at}{host}{':' + port if port else ''}"


_cached_netloc = functools.lru_cache(maxsize=1024)(_netloc)


def _canonical_host(host: str) -> str | None:
    if not host:
        return None
    if host.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return None
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (UnicodeError, ValueError):
            return None
    host = host.lower()
    if not _ASCII_HOST_RE.fullmatch(host):
        return None
    if _NUMERIC_HOST_RE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host.rstrip("."))
        except ValueError:
            return None
    return host


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4; urljoin does it for relative refs only."""
    if "/." not in path:
        return path
    segments = path.split("/")
    out: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    result = "/" + "/".join(out)
    if segments[-1] in (".", "..") and not result.endswith("/"):
        result += "/"
    return result


def _site(url: str | None) -> str:
    """The host without "www.", to tell this site's links from others'."""
    if not url:
        return ""
    host = url.split("/", 3)[2].rpartition("@")[2].partition(":")[0] if "//" in url else ""
    return host[4:] if host.startswith("www.") else host


def _same_site(host: str, page_host: str) -> bool:
    return (
        host == page_host
        or host.endswith("." + page_host)
        or page_host.endswith("." + host)
    )


# --------------------------------------------------------------------------
# Dates in source lines

_MON = (
    r"\b(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|"
    r"aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
_MON_ANY = _MON.replace("(", "(?:", 1)
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
)}
# (regex, order of the groups): y=year, m=month number, b=month name, d=day.
_DATE_FORMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d/])"), "mdy"),  # needs "/"
    (re.compile(r"(?<!\d)(\d{4})\s+" + _MON + r"(?:\s*-\s*" + _MON_ANY
                + r")?(?:\s+(\d{1,2}))?(?![\d/:])", re.I), "ybd"),
    (re.compile(r"(?<![\d-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d-])"), "ymd"),  # needs "-"
    (re.compile(_MON + r"\s+(\d{1,2}),?\s+(\d{4})(?!\d)", re.I), "bdy"),
    (re.compile(r"(?<!\d)(\d{1,2})\s+" + _MON + r",?\s+(\d{4})(?!\d)", re.I), "dby"),
)
# A part of every match of each form, looked for first: most source lines
# hold none of most forms, and these are found fast (a literal, a digit or
# a white space opens them, where the forms open with a look-behind or a
# word boundary that the engine tries at every character; "\d\d\d\d" is
# found faster than "\d{4}"). A month name is 3-9 letters.
_DATE_PROBES: dict[str, re.Pattern[str]] = {
    "mdy": re.compile(r"/\d{1,2}/\d{4}"),
    "ybd": re.compile(r"\d\d\d\d\s+[^\W\d_]{3}"),
    "ymd": re.compile(r"-\d{1,2}-\d"),
    "bdy": re.compile(r"\s\d\d?,?\s+\d{4}"),  # the white space after the month
    "dby": re.compile(r"\d\s+[^\W\d_]{3,9}\.?,?\s+\d\d\d\d"),
}
# How far before its probe's first match a form's first match can start
# (its look-behind still sees the text before): the year of "2019 Aug" is
# where the probe starts, the "/" of "4/30/2018" at most 2 characters in,
# the "-" of "2018-04-30" 4. None: anywhere before (a month name and white
# space of any length open "April 30, 2018" and "30 April 2018").
_PROBE_LEAD: dict[str, int | None] = {"mdy": 2, "ybd": 0, "ymd": 4, "bdy": None, "dby": None}
_DATE_STEPS = tuple((regex, order, _DATE_PROBES[order], _PROBE_LEAD[order])
                    for regex, order in _DATE_FORMS)


def parse_source_date(text: str) -> dt.date | None:
    """The publication date in a citation's source line, or None.

    Forms: "04/30/2018" (US month/day/year; day/month when the first number
    cannot be a month), "2017 Feb 1;16(2):162-166" and "2019 Aug;38(8):..."
    (PubMed; day 1 when absent, the first month of "Jul-Aug"), "2018-04-30",
    "April 30, 2018", "30 April 2018". The earliest valid one wins. A bare
    year, a season or an impossible date gives None: never invent a day.
    """
    if not _HAS_YEAR_RE.search(text):
        return None
    best: tuple[int, dt.date] | None = None
    for regex, order, probe_re, lead in _DATE_STEPS:
        probe = probe_re.search(text)
        if probe is None:
            continue  # no match anywhere (see `_DATE_PROBES`)
        start = 0 if lead is None else max(0, probe.start() - lead)
        for match in regex.finditer(text, start, best[0] + 40 if best else len(text)):
            if best is not None and match.start() >= best[0]:
                break
            found = _date_from(match.groups(), order)
            if found is not None:
                best = (match.start(), found)
                break
    return best[1] if best else None


def _date_from(groups: tuple[str | None, ...], order: str) -> dt.date | None:
    values: dict[str, int] = {}
    for key, raw in zip(order, groups):
        if raw is None:
            continue
        # casefold, not lower: the patterns ignore case as Unicode does, so
        # "ſept" (a long s) is September there, and lower() kept the "ſ".
        values[key] = _MONTHS[raw.casefold()[:3]] if key == "b" else int(raw)
    month = values.get("m", values.get("b", 0))
    day = values.get("d", 1)
    year = values["y"]
    if order == "mdy" and month > 12 >= day:
        month, day = day, month
    if not 1800 <= year <= 2200:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


# --------------------------------------------------------------------------
# Page structure

# Element -> the attributes that name a target besides <a>/<area>/<link>
# href. Old hand-written pages load backgrounds, applets and sounds, forward
# readers with <meta refresh> and name the source of a quote in cite=.
_TARGET_ATTRS: dict[str, tuple[str, ...]] = {
    "img": ("src", "srcset", "longdesc"),
    "script": ("src",),
    "iframe": ("src", "longdesc"),
    "frame": ("src", "longdesc"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "source": ("src", "srcset"),
    "track": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
    "bgsound": ("src",),
    "applet": ("code", "archive"),
    **dict.fromkeys(("body", "table", "thead", "tbody", "tfoot", "tr", "td", "th"),
                    ("background",)),
    "meta": ("content",),
    **dict.fromkeys(("blockquote", "q", "ins", "del"), ("cite",)),
}
# Targets a reader goes to rather than ones the page loads: kind navigation.
_NAVIGATION_ATTRS = frozenset({"longdesc", "cite", "content"})
_BACKGROUND_TAGS = frozenset(
    tag for tag, attrs in _TARGET_ATTRS.items() if attrs == ("background",))
_RESOURCE_RELS = frozenset({
    "stylesheet", "icon", "apple-touch-icon", "apple-touch-icon-precomposed",
    "preload", "modulepreload", "manifest", "mask-icon", "prefetch",
})
_IGNORED_RELS = frozenset({"dns-prefetch", "preconnect"})  # origins, not documents
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BOLD = frozenset({"b", "strong", "big"})
# One selector per tag: lexbor yields an element once per selector it matches.
# Rare elements are asked for bare and sorted out by `_not_a_target`: each
# attribute test in a selector costs as much as a tag test and a half, and
# one "[background]" is cheaper than eight "td[background]".
_QUERY = ", ".join(
    ["a", "area[href]", "link[href]", *sorted(_HEADINGS), *sorted(_BOLD), "font[size]"]
    + [tag if len(attrs) > 1 or tag in ("meta", "input") or attrs == ("cite",)
       else f"{tag}[{attrs[0]}]"
       for tag, attrs in _TARGET_ATTRS.items() if tag not in _BACKGROUND_TAGS]
    + ["[background]"]
)
# The elements that can name CSS targets (a style attribute holds no
# @import). Asked first on its own: a page without any pays one walk of
# its tree in C (3-8 us for 10 kB; lower-casing its text to look for "url("
# took 17-58 us) and the query it always had.
_CSS_NODES = '[style*="url(" i], style'
_CSS_QUERY = f"{_QUERY}, {_CSS_NODES}"
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
    "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html", "li",
    "main", "menu", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "ul", "-document",
})
_PSEUDO_HEADING_BLOCKS = frozenset({"p", "div", "td", "th", "center", "dt"})
_EMPHASIS = frozenset({"b", "strong", "big", "font", "u", "span", "em", "i", "a"})
_NO_TEXT = frozenset({"script", "style", "template", "title", "textarea", "noscript"})
# Inside these a block is not one run of inline text (see `_segments`).
_SEGMENT_BREAKERS = _NO_TEXT | {"br"} | _BLOCKS
_INLINE = frozenset({
    "a", "abbr", "b", "big", "br", "cite", "code", "em", "font", "i", "img", "q", "s",
    "small", "strike", "strong", "sub", "sup", "tt", "u", "wbr",
})
_CHROME_TAGS = frozenset({"nav", "menu", "aside"})
_CHROME_ROLES = frozenset({"navigation", "banner", "contentinfo", "menu", "menubar"})
_CHROME_NAME_RE = re.compile(
    r"nav|menu|footer|sidebar|breadcrumb|toolbar|masthead|site-?header|top-?bar"
)
_MAX_PREFIX = 80  # characters of "(Expired Article)"-like mark before a title
_PAREN_RE = re.compile(r"[()]")
_BR = "\x0b"  # stands for <br> in segment text; whitespace to str.split()
_ALSO_SEE_RE = re.compile(r"\s*(?:also\s+see|see\s+also|see|cf\.)(?!\w)", re.I)
_ALSO_SEE_OPEN_RE = re.compile(r"\(" + _ALSO_SEE_RE.pattern, re.I)
# An unbracketed expiry mark before a title: "Expired Article:", "EXPIRED -".
_BARE_EXPIRED = (
    r"(?i:(?:expired|dead|broken)(?:\s+(?:article|link|page|url))?\s*[:\-\u2013\u2014])"
)
# "RETRACTED: ", "Withdrawn article - ": what an editor writes before the
# title once the report said the cited article was retracted or withdrawn.
_BARE_RETRACTED = (
    r"(?i:(?:retracted|withdrawn)(?:\s+(?:article|paper|review))?\s*[:\-\u2013\u2014])"
)
_PREFIX_MARK_RE = re.compile(
    r"(?:[(\[][^()\[\]]{1,60}[)\]]|[^\w\s]{1,3}|\d{1,3}[.)]|" + _BARE_EXPIRED + "|"
    + _BARE_RETRACTED + r")"
    r"(?:\s*[^\w\s(\[]{0,2})"
)
# A mark before the title worth keeping with the entry, "(Retracted
# Article)" or "RETRACTED:" (an "(Expired Article)" becomes `expired_mark`):
# words, not a bullet or a number.
_WORDED_MARK_RE = re.compile(r"[(\[][^()\[\]]*[^\W\d_][^()\[\]]*[)\]]|" + _BARE_RETRACTED)
# "(Expired Article)", "[Expired]", "(Article Expired)", "(Link Expired)".
_EXPIRED_RE = re.compile(
    r"^\s*(?:[(\[]\s*(?:(?:article|link|page|url)\s+)?(?:expired|dead|broken|removed)\b"
    r"[^()\[\]]*[)\]]|" + _BARE_EXPIRED + ")",
    re.I,
)
# The same mark after the title or at the end of the entry: only the bare
# mark ("(Expired Article)", "[Expired]", "(dead link)"), never a sentence.
_EXPIRED_ANYWHERE_RE = re.compile(
    r"\s*[(\[]\s*(?:(?:article|link|page|url)\s+)?(?:expired|dead|broken|removed)"
    r"(?:\s+(?:article|link|page|url))?\s*[)\]]",
    re.I,
)
# What every match of `_EXPIRED_ANYWHERE_RE` holds (see `_without_expired_marks`).
_EXPIRED_PROBE_RE = re.compile(
    r"[(\[]\s*(?:(?:article|link|page|url)\s+)?(?:expired|dead|broken|removed)", re.I)
_BOUNDARY_START = frozenset(".:;,|()[]-\u2013\u2014")
_WORD_RE = re.compile(r"[^\W_]+")
_TWO_WORDS_RE = re.compile(r"[^\W_]+[\W_]+[^\W_]")
_THREE_WORDS_RE = re.compile(r"[^\W_]+[\W_]+[^\W_]+[\W_]+[^\W_]")
_HAS_YEAR_RE = re.compile(r"\d\d\d\d")  # as "\d{4}", found faster
_SENTENCE_END_RE = re.compile(r"(?<=[.!?\u2026])\s+")
_SENTENCE_GAP_RE = re.compile(r"[.!?\u2026]\s+")  # `_SENTENCE_END_RE` with its mark
_SOURCE_PREFIX_RE = re.compile(
    r"(?:pubmed|medline|medscape|medpage|eurekalert|globe\s*newswire|pr\s*newswire|"
    r"business\s*wire|science\s*daily|reuters|healthday|medical\s*xpress|news-medical|"
    r"healio|clinicaltrials\.gov|nih|fda)\b",
    re.I,
)
# The first letter or digit of each whitespace-separated token.
_INITIAL_RE = re.compile(r"(?<!\S)[^\w\s]*([^\W_])")
_CITE_NUMBERS_RE = re.compile(r"\d+\s*\(\s*\d+\s*\)|;\s*\d+|\b(?:19|20)\d\d\b")


@dataclass(slots=True)
class _Link:
    node: LexborNode
    element: str
    attribute: str
    value: str  # the attribute value as parsed (srcset whole)
    raw_href: str
    section: str
    chrome: bool
    resource: bool
    text: str = ""
    phantom: bool = False
    line: int | None = None
    codebase: str | None = None  # an applet's: its targets resolve against it
    in_text: bool = False  # named in the element's text (a <style> block), not an attribute
    newlines: int = 0  # lines between the text's start and the target, for `line`
    source: str = ""  # the attribute as the source writes it, when that is not `value` ("&amp;")


@dataclass(slots=True)
class _Segment:
    """The inline text of one block run; `plain` blanks link texts."""

    text: str
    plain: str
    spans: dict[int, tuple[int, int]]
    also_see: list[tuple[int, int]] = field(default_factory=list)
    entry_lines: list[int] | None = None
    """Offsets of the <br> before each line-opening entry title (lazy)."""

    def starts_line(self, start: int) -> tuple[bool, str]:
        """Whether a link at `start` opens a line after a <br>, and the mark before it."""
        br = self.text.rfind(_BR, 0, start)
        if br < 0 or start - br > _MAX_PREFIX:
            return False, ""
        prefix = " ".join(self.text[br + 1:start].split())
        return not prefix or bool(_PREFIX_MARK_RE.fullmatch(prefix)), prefix

    def entry_end(self, end: int) -> int:
        """Where the entry whose title ends at `end` stops: before the next
        line-opening title (entries separated by a single <br>)."""
        if self.entry_lines is None:
            # A title opens a line only after a <br>: most blocks have none.
            self.entry_lines = sorted(
                self.text.rfind(_BR, 0, lo) for lo, hi in self.spans.values()
                if self.starts_line(lo)[0] and _line_title(self.text[lo:hi])
                and not self.in_also_see(lo)
            ) if _BR in self.text else []
        i = bisect.bisect_right(self.entry_lines, end)
        return self.entry_lines[i] if i < len(self.entry_lines) else len(self.text)

    def starts_with(self, start: int) -> tuple[bool, str]:
        """Whether a link at `start` opens the block, and the mark before it."""
        lead = len(self.text) - len(self.text.lstrip())
        if start <= lead:
            return True, ""
        if start - lead > _MAX_PREFIX:
            return False, ""
        prefix = " ".join(self.text[lead:start].split())
        return bool(_PREFIX_MARK_RE.fullmatch(prefix)), prefix

    def in_also_see(self, pos: int) -> bool:
        i = bisect.bisect_right(self.also_see, (pos, len(self.text) + 1)) - 1
        return i >= 0 and self.also_see[i][0] <= pos < self.also_see[i][1]

    def after(self, end: int, source: str, stop: int | None = None) -> str:
        """`source[:stop]`[end:] without the "(Also see ...)" parts.

        `stop` instead of a slice of `source` up to it: that copied the
        block's text before each link, and a block of 16,000 links (one
        <p> of an A-Z index, entries one per line) took 5 s, 4x the links
        6x the time. Every slice is clipped at `stop`, as the shorter
        string clipped it."""
        stop = len(source) if stop is None else min(stop, len(source))
        if not self.also_see:
            return source[min(end, stop):stop]
        pieces, pos = [], end
        # From the part holding or following `end`, to the last before
        # `stop` (sorted, apart): a block of 4,000 entries, each with its
        # "(Also see ...)", took 13.7 s walking every part for every link.
        # Those past `stop` gave only spaces at the end, which every reader
        # of this text collapses.
        first = max(bisect.bisect_right(self.also_see, (end, len(source) + 1)) - 1, 0)
        for i in range(first, len(self.also_see)):
            lo, hi = self.also_see[i]
            if lo >= stop:
                break
            if hi <= pos:
                continue
            if lo > pos:
                pieces.append(source[pos:lo])
            pos = max(pos, hi)
        pieces.append(source[min(pos, stop):stop])
        return " ".join(pieces)


def extract_page(html: str, page_url: str) -> PageExtract:
    """Every link occurrence on the page, in document order, with context."""
    tree = LexborHTMLParser(html)
    document = _canonical_or_none(page_url) or page_url
    base_url = _base_url(tree, document)
    links = _collect(tree)
    _match_source(html, links)
    citations: list[Citation] = []
    page_site = _site(document)
    segments: dict[int, dict[int, _Segment]] = {}
    resolve_cache: dict[str, tuple[str | None, str | None]] = {}
    ids = _LinkIds(links)
    nodes: list[LexborNode | None] = []
    for i, link in enumerate(links):
        if link.phantom:
            continue
        if link.codebase is not None:
            resolved = normalize_url(
                link.raw_href, _codebase_url(link.codebase, base_url), document=document)
        else:
            resolved = resolve_cache.get(link.raw_href)
            if resolved is None:
                resolved = normalize_url(link.raw_href, base_url, document=document)
                resolve_cache[link.raw_href] = resolved
        url, skip = resolved
        kind, context = LinkKind.NAVIGATION, None
        if link.resource:
            kind = LinkKind.RESOURCE
        elif link.element in ("a", "area") and not link.chrome and skip not in _NAV_SKIPS:
            segment = _segment_of(link, i, segments, ids)
            if segment is not None:
                kind, context = _classify(link, i, segment, url, page_site)
        citations.append(Citation(
            page_url=page_url, url=url, raw_href=_kept_href(link.raw_href), anchor_text=link.text,
            section="" if link.chrome else link.section, kind=kind,
            element=link.element, attribute=link.attribute, line=link.line,
            context=context, skip_reason=skip,
            source_href=_kept_href(link.source) if link.source else "",
        ))
        nodes.append(link.node if link.element == "a" and link.attribute == "href" else None)
    entries = tuple(c.context.title for c in citations if c.context is not None)
    title = _title(tree)
    return PageExtract(
        url=page_url, title=title, base_url=base_url,
        citations=tuple(_with_fragments(tree, citations, nodes)), entries=entries,
    )


_NAV_SKIPS = frozenset({"fragment", "mailto", "tel", "javascript", "data"})


def _with_fragments(tree: LexborHTMLParser, citations: list[Citation],
                    nodes: list[LexborNode | None]) -> list[Citation]:
    """The citations, those of them whose words first stand elsewhere on the
    page with the text fragment that finds them (`monitor.textfragment`):
    the report's "Find the link on the page" must highlight this link, not
    a menu's link of the same words. Marks the tree: called last."""
    wanted: list[tuple[LexborNode, str]] = []
    at: list[int] = []
    for i, (citation, node) in enumerate(zip(citations, nodes)):
        words = fragment_words((citation.context.title if citation.context else "")
                               or citation.anchor_text) if node is not None else ""
        if node is not None and words:
            wanted.append((node, words))
            at.append(i)
    for i, finding in zip(at, locate(tree, wanted)):
        if finding is not None:
            citations[i] = replace(citations[i], fragment=finding.directive,
                                   fragment_nth=finding.nth)
    return citations


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _kept_href(href: str) -> str:
    """An href as the history keeps it: one too long to check (`HREF_MAX`)
    is clipped, with an ellipsis, to what an editor needs to find it."""
    return href if len(href) <= HREF_MAX else _clip(href[:URL_KEPT_MAX + 1], URL_KEPT_MAX)


def _title(tree: LexborHTMLParser) -> str:
    node = tree.css_first("head > title") or tree.css_first("title")
    return _bounded_text(node, _TITLE_MAX, _TITLE_NODES) if node is not None else ""


def _codebase_url(codebase: str, base_url: str) -> str:
    """An applet's codebase names a directory even without its final "/"."""
    codebase = codebase.strip(_C0_AND_SPACE)
    if not codebase.endswith("/"):
        codebase += "/"
    url, _ = normalize_url(codebase, base_url, document="")
    return url or base_url


def _base_url(tree: LexborHTMLParser, document: str) -> str:
    """The first <base href> that resolves to an http(s) URL wins, as in browsers."""
    node = tree.css_first("base[href]")
    if node is None:
        return document
    href = node.attributes.get("href") or ""
    url, _ = normalize_url(href, document, document="")
    return url or document


# --- one pass over headings and links in document order ---

class _Ancestry:
    """Per-node "inside a chrome container" flags, computed once per node."""

    def __init__(self) -> None:
        self._chrome: dict[int, tuple[bool, bool]] = {}

    def chrome(self, node: LexborNode) -> bool:
        parent = node.parent
        return self._flags(parent)[0] if parent is not None else False

    def _flags(self, node: LexborNode) -> tuple[bool, bool]:
        chain: list[LexborNode] = []
        cur: LexborNode | None = node
        known: tuple[bool, bool] = (False, False)
        while cur is not None:
            hit = self._chrome.get(cur.mem_id)
            if hit is not None:
                known = hit
                break
            chain.append(cur)
            cur = cur.parent
        for element in reversed(chain):
            known = _own_flags(element, known)
            self._chrome[element.mem_id] = known
        return known


def _own_flags(node: LexborNode, parent: tuple[bool, bool]) -> tuple[bool, bool]:
    """(inside chrome, inside an article) for `node`, given its parent's."""
    chrome, article = parent
    tag = node.tag or ""
    if tag in ("article", "main"):
        article = True
    if chrome or tag.startswith("-") or tag in _INLINE:
        return chrome, article
    if tag in _CHROME_TAGS or (tag in ("header", "footer") and not article):
        return True, article
    attrs = node.attributes
    if (attrs.get("role") or "").lower() in _CHROME_ROLES:
        return True, article
    names = f"{attrs.get('id') or ''} {attrs.get('class') or ''}".lower()
    return bool(names.strip() and _CHROME_NAME_RE.search(names)), article


def _collect(tree: LexborHTMLParser) -> list[_Link]:
    """Headings and links in document order, with what CSS in the page names."""
    styled = {node.mem_id for node in tree.css(_CSS_NODES)}
    ancestry = _Ancestry()
    links: list[_Link] = []
    section = ""
    last_pseudo = -1
    previous = -1
    walked: set[int] = set()
    for node in tree.css(_CSS_QUERY if styled else _QUERY):
        mem_id = node.mem_id
        if mem_id == previous:
            continue  # the same element matched twice (see `_QUERY`)
        previous = mem_id
        tag = node.tag or ""
        attrs = node.attributes  # a new dict at each call: asked once
        if (tag in _HEADINGS or tag in _BOLD or tag == "font"
                or tag == "a" and "href" not in attrs):
            heading = _heading_text(node, tag, walked)
            if heading is not None and not ancestry.chrome(node):
                block_id = heading[1]
                if block_id != last_pseudo:
                    section, last_pseudo = heading[0], block_id
            if tag in _HEADINGS or tag in _BOLD or tag in ("a", "font"):
                if styled and mem_id in styled:
                    _add_css_targets(node, tag, section, ancestry, links)
                continue
        if not _not_a_target(tag, attrs):
            _add_element_targets(node, tag, attrs, section, ancestry.chrome(node), links)
        if styled and mem_id in styled:
            _add_css_targets(node, tag, section, ancestry, links)
    return links


def _add_element_targets(
    node: LexborNode, tag: str, attrs: dict[str, str | None], section: str,
    chrome: bool, links: list[_Link],
) -> None:
    """The targets of the element's own attributes (its style's: `_add_css_targets`)."""
    if tag in ("a", "area"):
        value = attrs.get("href") or ""
        text = _bounded_text(node, _ANCHOR_MAX, _ANCHOR_NODES) or _img_alt(node) or (
            _collapse(attrs.get("alt") or attrs.get("title") or "") if tag == "area" else "")
        links.append(_Link(node, tag, "href", value, value, section, chrome, False, text))
    elif tag == "link":
        rels = set((attrs.get("rel") or "").lower().split())
        if rels & _IGNORED_RELS:
            return
        value = attrs.get("href") or ""
        links.append(_Link(node, tag, "href", value, value, section, chrome,
                           bool(rels & _RESOURCE_RELS), attrs.get("title") or ""))
    else:
        _add_targets(node, tag, attrs, section, chrome, links)


def _not_a_target(tag: str, attrs: dict[str, str | None]) -> bool:
    """The elements `_QUERY` asks for more broadly than they name targets."""
    if tag == "meta":
        return (attrs.get("http-equiv") or "").lower() != "refresh" or "content" not in attrs
    if tag == "input":
        return (attrs.get("type") or "").lower() != "image" or "src" not in attrs
    if tag in _QUOTES:
        return "cite" not in attrs
    return tag not in _WANTED_ATTRS  # "[background]" on a <div>, a <p> ...


def _add_targets(
    node: LexborNode, tag: str, attrs: dict[str, str | None], section: str,
    chrome: bool, links: list[_Link],
) -> None:
    """The element's targets: one link per URL, a srcset giving each candidate."""
    if tag == "applet":
        _add_applet(node, attrs, section, chrome, links)
        return
    seen: set[str] = set()
    label = _collapse(attrs.get("alt") or attrs.get("title") or "")
    if not label and tag in _QUOTES:
        label = _quote_label(node)
    for attr in _TARGET_ATTRS[tag]:
        value = attrs.get(attr)
        if value is None:
            continue
        if attr == "srcset":
            raws = [raw for raw in _srcset_urls(value) if raw not in seen]
        elif attr == "content":
            raws = [raw] if (raw := _refresh_url(value)) is not None else []
        elif attr == "background" and not value:
            continue  # an empty background is no background
        else:
            raws = [value]
        seen.update(raws)
        resource = attr not in _NAVIGATION_ATTRS
        links.extend(_Link(node, tag, attr, value, raw, section, chrome, resource, label)
                     for raw in raws)


_QUOTES = frozenset({"blockquote", "q", "ins", "del"})
_LABEL_MAX = 80
_LABEL_NODES = 64
_ANCHOR_MAX = 500
"""A link's text kept at most (an article title runs to 300): an unclosed
<a>, which lexbor reopens around what follows, or a hostile page's 500,000
characters of anchor text made each occurrence row (and the JSON report, and
the terminal's listing) that long; 300 such links, a 73 MB database."""
_ANCHOR_NODES = 2_000
_HEADING_MAX = 200
"""A section heading's text kept at most: the section is stored with every
link under it, so one unclosed <h2> above 2,000 entries (whose text is the
rest of the page) made a 338 MB database in one run."""
_HEADING_NODES = 1_000
_TITLE_MAX = 500
"""A page's <title> kept at most (real ones run to 150): it is stored with
each read of the page and shown in the report and on the terminal; a
hostile page's 500,000 characters were kept whole, every week."""
_TITLE_NODES = 64


def _quote_label(node: LexborNode) -> str:
    """A quote's opening words, enough for an editor to find it on the page.

    A bounded walk, not `node.text()`: an old page's unclosed <blockquote
    cite> holds the rest of the page, and nested ones made that quadratic.
    """
    return _bounded_text(node, _LABEL_MAX, _LABEL_NODES)


def _bounded_text(node: LexborNode, limit: int, max_nodes: int, *, stop_at_block: bool = False) -> str:
    """`_collapse(node.text())` read no further than `limit` characters (and
    `max_nodes` nodes), clipped at a word with an ellipsis when there was more.

    A bounded walk, not `node.text()`: an element left unclosed holds the rest
    of the page, read once per link. With `stop_at_block` the text ends at the
    first block inside the element (no ellipsis: what precedes it is the
    element's own text): an <h2> left open holds the paragraphs after it.
    """
    pieces: list[str] = []
    size = 0
    space = more = False  # white space before the next word; text left unread
    walk = node.traverse(include_text=True)
    next(walk, None)  # the element itself
    for count, child in enumerate(walk):
        tag = child.tag
        if tag == "-text":
            if size > limit or count > max_nodes:
                more = True
                break
            text = child.text_content or ""
            if len(text) > _READ_PER_CHAR * limit:  # no longer than its window: kept whole
                window = len(text) - len(text.lstrip()) + _READ_PER_CHAR * limit
                if len(text) > window:  # one node of the rest of the page
                    more = not text[window:].isspace()
                    text = text[:window]
            words = text.split()
            if words:
                # As `_collapse("".join(texts))`: "Refer" + "ences" runs on.
                if pieces and (space or text[0].isspace()):
                    pieces.append(" ")
                pieces.append(" ".join(words))
                size += len(pieces[-1]) + 1
                space = text[-1].isspace()
            elif text:
                space = True
            if more:
                break
        elif stop_at_block and tag in _BLOCKS:
            break
    text = "".join(pieces)
    if not more and len(text) <= limit:
        return text
    return _clip(text, limit, more=True)


_READ_PER_CHAR = 20
"""How much of one text node a bounded walk reads per character it may keep."""


def _clip(text: str, limit: int, *, more: bool = False) -> str:
    """`text` cut to `limit` characters at a word, an ellipsis marking the
    cut (or, with `more`, that text was left unread after it)."""
    if len(text) <= limit:
        return text + "\u2026" if more and text else text
    return (text[:limit].rsplit(" ", 1)[0] or text[:limit]).rstrip() + "\u2026"


_SRCSET_SPACE = " \t\n\r\f"


def _srcset_urls(value: str) -> list[str]:
    """Every candidate URL of a srcset, split as browsers do (WHATWG).

    A URL runs to white space and may hold commas ("a.png?w=1,2 2x"); only
    trailing commas end it; a candidate's descriptors run to a comma outside
    parentheses.
    """
    urls: list[str] = []
    pos, end = 0, len(value)
    while True:
        while pos < end and (value[pos] in _SRCSET_SPACE or value[pos] == ","):
            pos += 1
        if pos >= end:
            return urls
        start = pos
        while pos < end and value[pos] not in _SRCSET_SPACE:
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            in_parens = False
            while pos < end:
                char = value[pos]
                pos += 1
                if char == "(":
                    in_parens = True
                elif char == ")":
                    in_parens = False
                elif char == "," and not in_parens:
                    break
        if url:
            urls.append(url)


# The delay (digits and dots, or a dot first), its separator (";", "," or
# white space), then an optional "url =": the HTML "declarative refresh"
# steps. "url" is taken as the keyword only when "=" follows, so "0;
# urban.html" forwards to urban.html (the spec's letter would drop "ur").
_REFRESH_RE = re.compile(
    r"[\t\n\f\r ]*(?:\d+|(?=\.))[\d.]*(?=[\t\n\f\r ;,]|\Z)[\t\n\f\r ]*[;,]?[\t\n\f\r ]*"
    r"(?:url[\t\n\f\r ]*=[\t\n\f\r ]*)?(.*)",
    re.I | re.S,
)


def _refresh_url(content: str) -> str | None:
    """Where <meta http-equiv=refresh content=...> forwards the reader, or None.

    None for a plain reload ("30"), an empty URL, or content a browser does
    not act on ("soon; url=x"): the reader is not sent anywhere then.
    """
    match = _REFRESH_RE.match(content)
    if match is None:
        return None
    url = match.group(1)
    if url[:1] in ("'", '"'):
        url = url[1:].split(url[0], 1)[0]
    return url if url.strip(_C0_AND_SPACE) else None


# --- CSS inside the page: style="..." attributes and <style> blocks ---

def _css_hint(text: str) -> bool:
    """Whether a <style> block may name a target: most blocks do not."""
    lowered = text.lower()
    return "url(" in lowered or "@import" in lowered


def _add_css_targets(
    node: LexborNode, tag: str, section: str, ancestry: _Ancestry, links: list[_Link],
) -> None:
    """The url()s of the element's style attribute (one link per distinct
    URL, sharing the tag's line like srcset candidates) and, for a <style>
    block, its url()s and @imports (each on its own line in the block)."""
    attrs = node.attributes
    style = attrs.get("style")  # holds "url(": see `_CSS_NODES`
    if tag == "style":
        text = node.text()
        targets = _css_targets(text, imports=True) if _css_hint(text) else []
        if targets:
            chrome = ancestry.chrome(node)
            newlines, counted = 0, 0
            for attribute, raw, offset in targets:
                newlines += text.count("\n", counted, offset)
                counted = offset
                links.append(_Link(node, "style", attribute, text, raw, section, chrome, True,
                                   in_text=True, newlines=newlines))
    if style:
        raws = list(dict.fromkeys(raw for _, raw, _ in _css_targets(style, imports=False)))
        if raws:
            chrome = ancestry.chrome(node)
            label = _collapse(attrs.get("alt") or attrs.get("title") or "")
            links.extend(_Link(node, tag, "style", style, raw, section, chrome, True, label)
                         for raw in raws)


_CSS_SPACE = " \t\n\r\f"
# What the CSS tokenizer must see whole so that a "url(" inside it is not
# taken: comments, strings (a bad one ends at its line), escapes; and the
# two tokens wanted. "url(" is a function only when "url" is a whole name.
_CSS_TOKEN_RE = re.compile(
    r"""/\*.*?(?:\*/|\Z)"""
    r"""|"(?:[^"\\\n\r\f]|\\.|\\\Z)*"?|'(?:[^'\\\n\r\f]|\\.|\\\Z)*'?"""
    r"""|(?<![\w\-\\])(url)\(|(@import)(?![\w\-\\])|\\.""",
    re.I | re.S,
)
_CSS_STRING_RES = {
    quote: re.compile(
        quote + r"((?:[^" + quote + r"\\\n\r\f]|\\.|\\\Z)*)(" + quote + r"|\Z)?", re.S)
    for quote in "\"'"
}
_CSS_COMMENT_OR_SPACE_RE = re.compile(r"(?:[ \t\n\r\f]+|/\*.*?(?:\*/|\Z))*", re.S)
_CSS_URL_OPEN_RE = re.compile(r"url\(", re.I)
# An unquoted url() ends at ")"; white space, a quote, "(", a control
# character or a "\" before a newline inside it make it a bad URL, which
# browsers drop up to the next ")" (or the end).
_CSS_BARE_URL_RE = re.compile(
    r"((?:[^)\\ \t\n\r\f\"'(\x00-\x08\x0b\x0e-\x1f\x7f]"
    r"|\\(?:[0-9a-fA-F]{1,6}[ \t\n\r\f]?|[^\n\r\f0-9a-fA-F]))*)"
    r"[ \t\n\r\f]*(\)|\Z)?", re.S)
_CSS_BAD_URL_END_RE = re.compile(r"(?:[^)\\]|\\.)*(?:\)|\Z)", re.S)
_CSS_ESCAPE_RE = re.compile(
    r"\\(?:([0-9a-fA-F]{1,6})(?:\r\n|[ \t\n\r\f])?|(\r\n|[\n\r\f])|(.)|\Z)", re.S)


def _css_targets(text: str, *, imports: bool) -> list[tuple[str, str, int]]:
    """(attribute, raw URL, offset) of each url() and, with `imports`, each
    @import target in CSS text, as a browser reads them (CSS Syntax 3).

    Left out: anything in a comment or a string ("content: 'url(x)'"), an
    empty url(), a "#fragment" (an SVG element of this page: url(#clip)),
    data: URIs (no request), and bad URLs a browser drops. A url() or a
    string cut off by the end of the text counts: browsers close it there.
    """
    found: list[tuple[str, str, int]] = []
    pos, end = 0, len(text)
    while pos < end:
        match = _CSS_TOKEN_RE.search(text, pos)
        if match is None:
            break
        pos = match.end()
        if match.group(1):
            raw, pos = _css_url(text, pos)
            _keep_css_target(found, "url", raw, match.start())
        elif match.group(2):
            raw, pos = _css_import(text, pos)
            if imports:
                _keep_css_target(found, "@import", raw, match.start())
    return found


def _keep_css_target(found: list[tuple[str, str, int]], attribute: str, raw: str | None,
                     offset: int) -> None:
    if raw is None:
        return
    ref = raw.strip(_C0_AND_SPACE)
    if not ref or ref.startswith("#") or ref[:5].lower() == "data:":
        return
    found.append((attribute, raw, offset))


def _css_url(text: str, pos: int) -> tuple[str | None, int]:
    """The URL of a url( whose "(" ends before `pos`, and where it ends."""
    while pos < len(text) and text[pos] in _CSS_SPACE:
        pos += 1
    if text[pos:pos + 1] in ('"', "'"):
        value, pos = _css_string(text, pos)
        pos = _CSS_COMMENT_OR_SPACE_RE.match(text, pos).end()  # type: ignore[union-attr]
        if value is None or pos < len(text) and text[pos] != ")":
            return None, pos  # url("a" b) is no URL; the scan goes on from b
        return value, pos + 1
    match = _CSS_BARE_URL_RE.match(text, pos)
    assert match is not None  # every part is optional
    if match.group(2) is None:  # a bad URL: dropped up to the next ")"
        bad = _CSS_BAD_URL_END_RE.match(text, match.end())
        return None, bad.end() if bad is not None else len(text)
    return _css_unescape(match.group(1)), match.end()


def _css_string(text: str, pos: int) -> tuple[str | None, int]:
    """A quoted string at `pos`: its value (None when a newline cut it: a
    browser drops it) and where it ends."""
    match = _CSS_STRING_RES[text[pos]].match(text, pos)
    assert match is not None  # the opening quote always matches
    if match.group(2) is None:
        return None, match.end()
    return _css_unescape(match.group(1)), match.end()


def _css_import(text: str, pos: int) -> tuple[str | None, int]:
    """The target of an @import: a string or a url(), after spaces and comments."""
    pos = _CSS_COMMENT_OR_SPACE_RE.match(text, pos).end()  # type: ignore[union-attr]
    if text[pos:pos + 1] in ('"', "'"):
        return _css_string(text, pos)
    opening = _CSS_URL_OPEN_RE.match(text, pos)
    if opening is not None:
        return _css_url(text, opening.end())
    return None, pos


def _css_unescape(value: str) -> str:
    """CSS escapes: "\\20 " is a space, "\\)" a ")", a "\\" before a newline
    continues a string; an escape of 0, a surrogate or past U+10FFFF is
    U+FFFD."""
    if "\\" not in value:
        return value
    return _CSS_ESCAPE_RE.sub(_css_escaped, value)


def _css_escaped(match: re.Match[str]) -> str:
    digits, newline, char = match.groups()
    if digits:
        code = int(digits, 16)
        return "\ufffd" if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF \
            else chr(code)
    if newline is not None:
        return ""
    return char if char is not None else "\ufffd"


def _add_applet(
    node: LexborNode, attrs: dict[str, str | None], section: str, chrome: bool,
    links: list[_Link],
) -> None:
    """An applet's jars (archive=, comma-separated) or else its class file.

    Both resolve against codebase=. With a jar the class is inside it: its
    own URL would 404 on a working applet. "org.demo.Clock" is the class
    file org/demo/Clock.class, and that path is the link's raw href.
    """
    codebase = attrs.get("codebase") or None
    label = _collapse(attrs.get("alt") or attrs.get("title") or "")
    archive = attrs.get("archive") or ""
    jars = [jar for jar in (part.strip(_C0_AND_SPACE) for part in archive.split(",")) if jar]
    if jars:
        links.extend(_Link(node, "applet", "archive", archive, jar, section, chrome, True,
                           label, codebase=codebase) for jar in jars)
        return
    code = attrs.get("code") or ""
    name = code.strip(_C0_AND_SPACE).removesuffix(".class")
    if name:
        links.append(_Link(node, "applet", "code", code, name.replace(".", "/") + ".class",
                           section, chrome, True, label, codebase=codebase))


def _img_alt(node: LexborNode) -> str:
    img = node.css_first("img[alt]")
    return _collapse(img.attributes.get("alt") or "") if img is not None else ""


def _heading_text(node: LexborNode, tag: str, walked: set[int]) -> tuple[str, int] | None:
    """(section text, id of its block) when `node` makes a heading.

    `walked` holds the candidates already judged by walking up (documents
    are visited in order, so ancestors first): a walk that meets one stops,
    since that ancestor's walk went on from there the same way and its
    answer stands. Without it, 20,000 nested <b> cost 20,000 walks of up to
    20,000 steps (26 s).
    """
    if tag in _HEADINGS:
        text = _bounded_text(node, _HEADING_MAX, _HEADING_NODES, stop_at_block=True)
        return (text, node.mem_id) if text else None
    # An old-style heading: a block holding only a bold or named-anchor run.
    if tag == "a" and not (node.attributes.keys() & {"name", "id"}):
        return None
    if tag == "font" and not _big_font(node.attributes.get("size") or ""):
        return None
    walked.add(node.mem_id)
    top = node
    parent = node.parent
    while parent is not None and parent.tag in _EMPHASIS:
        if parent.tag == "a" and "href" in parent.attributes or parent.mem_id in walked:
            return None
        top, parent = parent, parent.parent
    block_id = parent.mem_id if parent is not None else -1
    if parent is None or parent.tag not in _PSEUDO_HEADING_BLOCKS or any(
        not _blank(child) and child.mem_id != top.mem_id
        for child in parent.iter(include_text=True, skip_empty=True)
    ):
        line = _line_run(node)
        if line is None:
            return None
        top, block_id = line, line.mem_id
    text = _collapse(top.text())
    if not 0 < len(text) <= 100 or text[-1] in ".!" or not _WORD_RE.search(text):
        return None
    if top.css_first("a[href]") is not None:
        return None
    return text, block_id


def _big_font(size: str) -> bool:
    """<font size="+1">..."+4"> or size 4-7: larger than the text (3)."""
    size = size.strip()
    try:
        return int(size[1:]) >= 1 if size.startswith("+") else int(size) >= 4
    except ValueError:
        return False


def _blank(node: LexborNode) -> bool:
    """A <br>, a comment or white space: nothing that a reader sees as text."""
    if node.tag in ("br", "-comment"):
        return True
    return node.tag == "-text" and not (node.text_content or "").strip()


def _sibling(node: LexborNode, forward: bool) -> LexborNode | None:
    """The nearest sibling that is neither white space nor a comment."""
    cur = node.next if forward else node.prev
    while cur is not None and (cur.tag == "-comment" or (
            cur.tag == "-text" and not (cur.text_content or "").strip())):
        cur = cur.next if forward else cur.prev
    return cur


def _line_run(node: LexborNode) -> LexborNode | None:
    """The emphasis run around `node` when it fills a line of its own.

    Old pages put a heading on its own line among the entries: "<b>Biologics
    </b><br>", "<a name=x><b>..</b></a><br>" in <body>, a <td> or a <p>. The
    line must begin the block or follow a <br>/<hr>/block, and end the block,
    meet a block, or end at a <br> after which no plain text follows (a bold
    entry title with its summary on the next line is no heading).
    """
    top = node
    while (
        top.parent is not None and top.parent.tag in _EMPHASIS
        and not (top.parent.tag == "a" and "href" in top.parent.attributes)
        and _sibling(top, False) is None and _sibling(top, True) is None
    ):
        top = top.parent
    if top.parent is None or top.parent.tag in ("a", "-document", "html"):
        return None
    before = _sibling(top, False)
    if before is not None and before.tag not in ("br", "hr") and before.tag not in _BLOCKS:
        return None
    after = _sibling(top, True)
    if after is None or after.tag in _BLOCKS:
        return top
    if after.tag != "br":
        return None
    following = _sibling(after, True)
    if following is None or following.tag == "br" or following.tag in _BLOCKS:
        return top
    if following.tag == "-text" or following.css_first("a[href]") is None and following.tag != "a":
        return None
    return top


# --- raw-source scan: phantom clones and line numbers ---

# A tag (or quoted value) still open at the end of the text ends there: each
# start then matches, so the scan is linear. Requiring a closing ">" made
# every start of `<a href="x" ` x 20,000 rescan to the end (17 s).
_WANTED_ATTRS: dict[str, tuple[str, ...]] = {
    "a": ("href",), "area": ("href",), "link": ("href",), **_TARGET_ATTRS,
}


_TAG_REST = r"""(?=[\s/>])((?:[^>"']++|"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z))*+)(?:>|\Z)"""


@functools.lru_cache(maxsize=64)
def _source_tag_re(tags: frozenset[str]) -> re.Pattern[str]:
    """Comments, and start tags of the elements that gave links.

    Only those: a table-built page has hundreds of <td> start tags, and
    scanning them all for a background= that one of them has cost more
    than the rest of the scan. A <style> start tag is read with its text
    (groups 3-5), up to its end tag as the HTML tokenizer ends it: a "<!--"
    in the CSS is no comment there.
    """
    others = sorted(tags - {"style"})
    alternatives = [r"<!--(?:.*?-->|.*\Z)",
                    r"<(" + ("|".join(others) if others else "(?!)") + ")" + _TAG_REST]
    if "style" in tags:
        alternatives.append(r"<(style)" + _TAG_REST + r"(.*?)(?=</style[\s/>]|\Z)")
    return re.compile("|".join(alternatives), re.I | re.S)

# One finder per attribute name: faster than parsing every attribute, and an
# attribute name only counts after whitespace, a quote or "/".
_SOURCE_ATTR_RES = {
    name: re.compile(
        r"""(?:^|(?<=[\s"'/]))""" + name
        + r"""(?![\w:-])(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?""",
        re.I,
    )
    for name in {n for names in _WANTED_ATTRS.values() for n in names} | {"style"}
}
_CHAR_REF_RE = re.compile(
    r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;|[A-Za-z][A-Za-z0-9]*(?![=\w]))"
)


class _LineCounter:
    """Line numbers of offsets asked mostly in increasing order: linear overall."""

    def __init__(self, text: str) -> None:
        self._text = text
        # Old Mac pages end lines with a bare CR.
        self._newline = "\n" if "\n" in text or "\r" not in text else "\r"
        self._offset = 0
        self._line = 1
        self._starts: list[int] | None = None

    def line_at(self, offset: int) -> int:
        if offset < self._offset:  # rare (foster-parented links): index once
            if self._starts is None:
                self._starts = [
                    i + 1 for i, char in enumerate(self._text) if char == self._newline
                ]
            return bisect.bisect_right(self._starts, offset) + 1
        self._line += self._text.count(self._newline, self._offset, offset)
        self._offset = offset
        return self._line


def _attr_value(raw: str) -> str:
    """An attribute value as the parser stores it (newlines, NULs, references)."""
    if "\x00" in raw:  # the tokenizer stores U+FFFD for a NUL
        raw = raw.replace("\x00", "\ufffd")
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    if "&" in raw:
        raw = _CHAR_REF_RE.sub(lambda m: htmllib.unescape(m.group()), raw)
    return raw


def _raw_text(raw: str) -> str:
    """A <style> element's text as the parser stores it (newlines, NULs)."""
    if "\x00" in raw:
        raw = raw.replace("\x00", "\ufffd")
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    return raw


def _source_tags(
    html: str, wanted: dict[str, set[str]], written: dict[tuple[int, str], str]
) -> dict[tuple[str, str, str], deque[int]]:
    """Offsets of the start tags of `wanted`, by (element, attribute, value);
    the attribute "" keys an element by its text, at the text's offset.
    `written` gets (offset, attribute) -> the value as the source writes it,
    for the few values with a character reference ("&amp;"): what an editor
    searches the source for. Its line breaks and NULs are the parser's, as
    in the value (a NUL is not searched for, nor stored)."""
    found: dict[tuple[str, str, str], deque[int]] = defaultdict(deque)
    if not wanted:
        return found
    pattern = _source_tag_re(frozenset(wanted))
    styles = pattern.groups > 2
    for match in pattern.finditer(html):
        tag, attrs = match.group(1, 2)
        if tag is None:
            if not styles:
                continue  # a comment
            tag, attrs = match.group(3, 4)
            if tag is None:
                continue
        tag = tag.lower()
        for name in wanted[tag]:
            if not name:
                found[(tag, "", _raw_text(match.group(5)))].append(match.start(5))
                continue
            attr = _SOURCE_ATTR_RES[name].search(attrs)
            if attr is not None:
                double, single, bare = attr.groups()
                value = (double if double is not None else single if single is not None
                         else bare or "")
                parsed = _attr_value(value)
                if "&" in value and parsed != value:
                    written[(match.start(), name)] = _raw_text(value)
                found[(tag, name, parsed)].append(match.start())
    return found


# The elements lexbor re-opens (clones) when a block cuts them open: their
# links repeat in the DOM. <a> gives its href, the others their style url()s.
_CLONED = frozenset({
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong",
    "tt", "u",
})


def _clonable(key: tuple[str, str, str]) -> bool:
    return key[1] == "href" and key[0] == "a" or key[1] == "style" and key[0] in _CLONED


def _match_source(html: str, links: list[_Link]) -> None:
    """Mark lexbor's re-opened clones and give every link its line.

    A clone repeats the value of the previous element of its kind while the
    DOM holds more such elements than the source has start tags (counted
    once per element: a style's url()s are one). The targets that one
    attribute or block gives (srcset candidates, jars, url()s) share its
    tag's line, those of a <style> block each count their own lines.
    """
    # (element, attribute or "" for the element's text, value): what the
    # source scan finds a start tag by.
    keys = [(link.element, "" if link.in_text else link.attribute, link.value)
            for link in links]
    nodes = [link.node.mem_id for link in links]
    clonable = list(map(_clonable, keys))
    wanted: dict[str, set[str]] = defaultdict(set)
    dom_count: dict[tuple[str, str, str], int] = defaultdict(int)
    for i, key in enumerate(keys):
        wanted[key[0]].add(key[1])
        if clonable[i] and not (i and nodes[i - 1] == nodes[i] and keys[i - 1] == key):
            dom_count[key] += 1
    written: dict[tuple[int, str], str] = {}
    source = _source_tags(html, wanted, written)
    excess = {
        key: count - len(source.get(key, ()))
        for key, count in dom_count.items()
        if count > len(source.get(key, ()))
    }
    lines = _LineCounter(html)
    last_value: dict[tuple[str, str], str] = {}
    previous = -1
    tag_line: int | None = None
    for i, link in enumerate(links):
        key = keys[i]
        if previous >= 0 and nodes[previous] == nodes[i] and keys[previous] == key:
            # another srcset candidate, jar or url() of one attribute or block
            link.phantom = links[previous].phantom
            link.line = None if tag_line is None else tag_line + link.newlines
            continue
        previous = i
        if clonable[i]:
            if excess.get(key, 0) > 0 and last_value.get(key[:2]) == key[2]:
                link.phantom = True
                excess[key] -= 1
                continue
            last_value[key[:2]] = key[2]
        offsets = source.get(key)
        offset = offsets.popleft() if offsets else None
        tag_line = None if offset is None else lines.line_at(offset)
        link.line = None if tag_line is None else tag_line + link.newlines
        if written and offset is not None and link.value == link.raw_href:
            # one URL in the attribute (not a srcset's or a style's several)
            link.source = written.get((offset, key[1]), "")


# --- blocks, segments and the citation decision ---

def _block_of(node: LexborNode) -> LexborNode:
    cur = node.parent
    while cur is not None and cur.tag not in _BLOCKS:
        cur = cur.parent
    return cur if cur is not None else node


def _segment_of(
    link: _Link, index: int, cache: dict[int, dict[int, _Segment]], ids: _LinkIds
) -> _Segment | None:
    """The segment holding link `index`; each block is split only once."""
    block = _block_of(link.node)
    by_link = cache.get(block.mem_id)
    if by_link is None:
        by_link = _segments(block, ids)
        cache[block.mem_id] = by_link
    return by_link.get(index)


class _LinkIds:
    """Lazy mem_id -> link index over the non-phantom <a>/<area> links."""

    def __init__(self, links: list[_Link]) -> None:
        self._links = links
        self._map: dict[int, int] | None = None

    def get(self, mem_id: int) -> int | None:
        if self._map is None:
            self._map = {
                link.node.mem_id: i for i, link in enumerate(self._links)
                if link.element in ("a", "area") and link.attribute == "href"
                and not link.phantom
            }
        return self._map.get(mem_id)


def _segments(block: LexborNode, ids: _LinkIds) -> dict[int, _Segment]:
    """Split a block's own inline content into segments, link index -> segment."""
    simple = _simple_segment(block, ids)
    if simple is not None:
        return simple
    result: dict[int, _Segment] = {}
    parts: list[str] = []
    plain: list[str] = []
    spans: dict[int, tuple[int, int]] = {}
    open_spans: set[int] = set()
    pos = 0
    link_depth = 0
    last_br = False

    def flush() -> None:
        nonlocal parts, plain, spans, pos, last_br
        if spans:
            segment = _Segment("".join(parts), "".join(plain), {
                i: (lo, hi if hi >= 0 else pos) for i, (lo, hi) in spans.items()
            })
            segment.also_see = _also_see_spans(segment.text)
            for i in spans:
                result[i] = segment
        parts, plain, spans, pos, last_br = [], [], {}, 0, False
        open_spans.clear()

    stack: list[LexborNode | int] = list(block.iter(include_text=True))[::-1]
    while stack:
        item = stack.pop()
        if isinstance(item, int):
            link_depth -= 1
            if item in open_spans:
                spans[item] = (spans[item][0], pos)
                open_spans.discard(item)
            continue
        tag = item.tag or ""
        if tag == "-text":
            text = item.text_content or ""
            parts.append(text)
            plain.append(" " * len(text) if link_depth else text)
            pos += len(text)
            if last_br and text.strip():
                last_br = False
        elif tag == "br":
            if last_br:
                flush()
            else:
                last_br = True
                parts.append(_BR)
                plain.append(_BR)
                pos += 1
        elif tag in _BLOCKS:
            flush()
        elif tag.startswith("-") or tag in _NO_TEXT:
            continue
        else:
            if tag in ("a", "area"):
                index = ids.get(item.mem_id)
                if index is not None:
                    spans[index] = (pos, -1)
                    open_spans.add(index)
                    link_depth += 1
                    last_br = False
                    stack.append(index)
            stack.extend(list(item.iter(include_text=True))[::-1])
    flush()
    return result


def _simple_segment(block: LexborNode, ids: _LinkIds) -> dict[int, _Segment] | None:
    """The common case, one run of inline content: lexbor walks it for us.

    None when the block holds anything that splits or hides text (a nested
    block, <br>, <script> ...): then `_segments` walks it itself.
    """
    parts: list[str] = []
    plain: list[str] = []
    spans: dict[int, tuple[int, int]] = {}
    pos = 0
    link_end = -1
    nodes = block.traverse(include_text=True)
    next(nodes, None)  # the block itself
    for node in nodes:
        tag = node.tag
        if tag == "-text":
            text = node.text_content or ""
            parts.append(text)
            plain.append(" " * len(text) if pos < link_end else text)
            pos += len(text)
        elif tag == "a" or tag == "area":
            index = ids.get(node.mem_id)
            if index is not None:
                end = pos + len(node.text())
                spans[index] = (pos, end)
                link_end = max(link_end, end)
        elif tag in _SEGMENT_BREAKERS:
            return None
    if not spans:
        return {}
    text = "".join(parts)
    segment = _Segment(text, "".join(plain), spans, _also_see_spans(text))
    return dict.fromkeys(spans, segment)


def _also_see_spans(text: str) -> list[tuple[int, int]]:
    """Disjoint, sorted spans of "(Also see ...)"-like parentheses."""
    if not _ALSO_SEE_OPEN_RE.search(text):
        return []
    spans: list[tuple[int, int]] = []
    stack: list[tuple[int, bool]] = []
    for match in _PAREN_RE.finditer(text):
        if match.group() == "(":
            stack.append((match.start(), bool(_ALSO_SEE_RE.match(text, match.end()))))
        elif stack:
            start, also = stack.pop()
            if also:
                spans.append((start, match.end()))
    spans.extend((start, len(text)) for start, also in stack if also)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        if merged and lo < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _classify(
    link: _Link, index: int, segment: _Segment, url: str | None, page_site: str
) -> tuple[LinkKind, EntryContext | None]:
    start, end = segment.spans[index]
    # An image-only link (a logo, a badge) is never an entry title.
    if segment.in_also_see(start) or not _WORD_RE.search(segment.text, start, end):
        return LinkKind.NAVIGATION, None
    opens, prefix = segment.starts_with(start)
    if not opens:
        # A title opening a line after a single <br>: entries one per line.
        opens, prefix = segment.starts_line(start)
        if not opens or not _line_title(link.text):
            return LinkKind.NAVIGATION, None
    cut = segment.entry_end(end)
    stop = None if cut >= len(segment.text) else cut
    raw_after = segment.after(end, segment.text, stop)
    described = _title_boundary(link.text, raw_after) and bool(
        _TWO_WORDS_RE.search(segment.after(end, segment.plain, stop))
    )
    if not described:
        external = url is not None and not _same_site(_site(url), page_site)
        if not (external and _THREE_WORDS_RE.search(link.text)):
            return LinkKind.NAVIGATION, None
    return LinkKind.CITATION, _context(link.text, prefix, raw_after)


def _line_title(text: str) -> bool:
    """Whether a link opening a line can title an entry: not "PubMed" or "here"."""
    return bool(_THREE_WORDS_RE.search(text)) and not _SOURCE_PREFIX_RE.match(text.lstrip())


def _title_boundary(title: str, after: str) -> bool:
    """Whether the text after a link starts a new sentence, not continues one."""
    if title[-1:] in ".?!:":
        return True
    stripped = after.lstrip(" \t\r\n\f\xa0")
    if not stripped or stripped[0] == _BR:
        return True
    first = stripped[0]
    return first in _BOUNDARY_START or first.isupper() or first.isdigit()


def _context(title: str, prefix: str, after: str) -> EntryContext:
    """The entry around a citation. A worded mark before its title that is
    no expiry ("(Retracted Article)", "RETRACTED:") opens the summary: the
    report reads it there to know the entry already says so."""
    expired = bool(prefix) and bool(_EXPIRED_RE.match(prefix))  # most titles have none
    worded = None if expired or not prefix else _WORDED_MARK_RE.search(prefix)
    mark = _EXPIRED_RE.match(title)
    if mark:
        expired = True
        title = title[mark.end():].strip()
    title, marks = _without_expired_marks(title)
    body, more = _without_expired_marks(_collapse(after))
    expired = expired or bool(marks or more)
    body = body.lstrip(" .,:;|-\u2013\u2014")
    summary, source = _split_source(body)
    if worded is not None:
        summary = f"{worded.group().strip()} {summary}".rstrip()
    return EntryContext(
        # Stored with each occurrence: a page with no paragraphs made one
        # entry's summary the rest of the page.
        title=title, summary=_clip(summary, _SUMMARY_MAX), source=_clip(source, _ANCHOR_MAX),
        date=parse_source_date(source) if source else None, expired_mark=expired,
    )


_SUMMARY_MAX = 1_000


def _split_source(body: str) -> tuple[str, str]:
    """Split an entry's text into (summary, source line) from its end."""
    chunks = _sentences(body) if body else []
    cut = len(chunks)
    while cut > 0 and _looks_like_source(chunks[cut - 1]):
        cut -= 1
    return " ".join(chunks[:cut]), " ".join(chunks[cut:])


def _without_expired_marks(text: str) -> tuple[str, int]:
    """`_EXPIRED_ANYWHERE_RE.subn("", text)`, most texts spared its scan: its
    pattern opens with white space, so the engine tries it at every
    character. Every mark holds a match of `_EXPIRED_PROBE_RE`, which opens
    with the bracket: it is tried at each bracket only (`str.find` is
    faster than the engine's scan). No probe match, no mark."""
    for bracket in "([":
        at = text.find(bracket)
        while at >= 0:
            if _EXPIRED_PROBE_RE.match(text, at):
                return _EXPIRED_ANYWHERE_RE.subn("", text)
            at = text.find(bracket, at + 1)
    return text, 0


_FIRST = operator.itemgetter(0)


def _sentences(text: str) -> list[str]:
    """`_SENTENCE_END_RE.split(text)`: its look-behind is tried at every
    character, while `_SENTENCE_GAP_RE` (the same gaps with the mark
    before them, which every gap has) is found fast."""
    chunks: list[str] = []
    start = 0
    for gap in _SENTENCE_GAP_RE.finditer(text):
        chunks.append(text[start:gap.start() + 1])
        start = gap.end()
    chunks.append(text[start:])
    return chunks


def _looks_like_source(chunk: str) -> bool:
    """A short, mostly capitalised chunk, or one naming a known source or date.

    The rules: a known source prefix; else, with a date or volume(issue)
    pattern (`_CITE_NUMBERS_RE`), at most 15 words and half capitalised; else
    at most 6 words and 60 % capitalised. They are asked cheapest first: the
    pattern is looked for only when its answer decides (at most 15 words,
    half capitalised, and not already within the last rule). The initials
    of words that open with a letter or digit are their first characters
    (`str.split` splits at the pattern's white space, and `str.isalnum` is
    its "word character but not _"); a word that opens with a mark
    ("(Also") sends the chunk to the pattern.
    """
    if chunk.count(" ") >= 20:
        return False
    if _SOURCE_PREFIX_RE.match(chunk):
        return True  # it opens with a letter: the chunk has a word
    words = chunk.split()
    initials: str | list[str] = "".join(map(_FIRST, words))
    count = len(words)
    if not initials.isalnum():  # a word opens with a mark (or none): the pattern reads it
        initials = _INITIAL_RE.findall(chunk)
        count = len(initials)
    if not count:
        return bool(chunk.strip())
    if count > 15:
        return False
    capitals = sum(1 for c in initials if c.isupper() or c.isdigit())
    if capitals * 2 < count:
        return False
    if count <= 6 and capitals * 10 >= count * 6:
        return True
    return _CITE_NUMBERS_RE.search(chunk) is not None
