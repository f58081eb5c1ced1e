"""Reason tokens -> the plain sentence an editor reads, and which group a
flagged link belongs to: one table and one rule for the terminal listing
(`monitor.output`) and the weekly report (`reports`).

The terminal said "http_404: The server answered 404 Not Found." where the
report said "The page is gone: the site answers 'not found' (HTTP 404)",
and listed an intranet PDF under "a person should look" where the report
said "Needs fixing" (walkthrough 8, finding 8). Here, below both, so that
`monitor` needs nothing from `reports` (the layering in STYLE.md).

Every token the classifier emits has a sentence, and an unknown token
still gets one (naming the token), so a new classifier reason never breaks
a listing. Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from monitor.classify import is_confirmed
from collections.abc import Callable

from monitor.types import FailTally, LinkKind, LinkResult, LinkStatus, SiteCut, UrlState

__all__ = [
    "CONFIRMED_AT_ONCE",
    "MARKED_DEAD",
    "OLDEST_COPY",
    "PRIVATE_BADGE",
    "oldest_copy",
    "acknowledged",
    "GROUPS",
    "NEEDS_A_PERSON",
    "NEEDS_FIXING",
    "REASONS",
    "SUSPECTED_REASONS",
    "WATCHING",
    "attention",
    "private_address",
    "problem_confirmed",
    "describe",
    "flap_words",
    "host_of",
    "link_words",
    "thing",
]

REASONS: dict[str, str] = {
    "ok": "The link works",
    "temporary_redirect": "The link works (the site forwards it temporarily to another address)",
    "permanent_redirect": "This article has a new address",
    "known_move": "This site moved its pages to a new address",
    "http_404": "The page is gone: the site answers 'not found' (HTTP 404)",
    "http_410": "The publisher removed this article (HTTP 410)",
    "http_4xx": "The site refuses this address (HTTP 4xx error)",
    "soft_404": "The site shows a 'page not found' page (while answering 200 OK)",
    "redirect_to_home": "The link now lands on the site's home page: the article was removed",
    "expired_notice": "The page says the article has expired or was removed",
    "parked_domain": "The domain no longer belongs to the publisher: it shows a parked or for-sale page",
    "http_5xx": "The site had a server error (HTTP 5xx)",
    "timeout": "The site did not answer in time",
    "dns": "The site's domain name does not exist any more (DNS lookup failed)",
    "connection_refused": "The site's server refused the connection",
    "connection_reset": "The site's server cut the connection off",
    "tls": "The site's secure connection is broken (HTTPS certificate problem)",
    "redirect_loop": "The site sends this link round in a loop of redirects",
    "too_many_redirects": "The site forwards this link too many times to follow",
    "bad_response": "The site sent an answer that could not be read",
    "unsupported_scheme": "The link is not a web address that can be checked",
    "invalid_url": "The link address is malformed (a typo in the address?)",
    "http_401": "The site asks for a login (HTTP 401); please open it in a browser",
    "http_403": "The site refuses automated checks (HTTP 403); please open it in a browser",
    "http_999": "LinkedIn refuses automated checks (HTTP 999); please open it in a browser",
    "bot_challenge": "The site blocks automated checks (bot wall); please open it in a browser",
    "login_required": "The article is behind a login or paywall; please open it in a browser",
    "video_unavailable": "YouTube shows no video here (removed, private, or hidden from "
                         "automated checks); please open it in a browser",
    "rate_limited": "The site asked us to slow down (too many requests); please open it in a browser",
    "private_address": "The link points at a private network address (an intranet or a local "
                       "machine): readers outside that network cannot open it",
    "robots_disallowed": "The site's robots.txt asks robots not to visit this address; "
                         "please open it in a browser",
    "title_mismatch": "The page now shows a different article",
    "content_changed": "The page changed a lot since it was cited; "
                       "check that it still says what the entry claims",
    "flapping": "The link keeps switching between working and failing",
}

SUSPECTED_REASONS: dict[str, str] = {
    "dns": "The site's name could not be found (DNS lookup failed)",
}
"""The sentences of `REASONS` said while the failure is not confirmed (a
watched link): one failed DNS lookup (a resolver's hiccup, a domain's lapse
of a day) proves nothing gone, and "does not exist any more" beside "Nothing
to do yet: this may be temporary" contradicted itself (walkthrough 10 #14).
The confirmed sentence stays in `REASONS`."""

# Sites whose moves editors recognise by name: the sentence names them.
_NAMED_HOSTS = {
    "ncbi.nlm.nih.gov": "PubMed",
    "pubmed.ncbi.nlm.nih.gov": "PubMed",
    "doi.org": "DOI",
    "linkedin.com": "LinkedIn",
}

_HTTP_CODE = re.compile(r"^http_(\d{3})$")


OLDEST_COPY = "The oldest copy the archive holds: check it shows the article before you link it."
"""Said under an archived copy asked for a link with no date
(`LinkResult.archived_oldest`): nearest to when the article was cited, but
it may be an earlier page at that address, or the error page already. The
report's rows and notes and `monitor check`'s lines say it alike."""


def oldest_copy(kind: str, url: str | None = None) -> str:
    """`OLDEST_COPY` for what the link leads to (`thing`): a menu link's
    copy shows a "page", not an "article" (verify 15 R10)."""
    return OLDEST_COPY.replace("the article", f"the {thing(kind, url)}")

def host_of(url: str | None) -> str:
    """The host name without "www.", for naming a site in a sentence."""
    if not url:
        return ""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _path(url: str | None) -> str:
    try:
        return urlsplit(url or "").path
    except ValueError:
        return ""


def _site_name(url: str | None) -> str:
    host = host_of(url)
    if host == "pmc.ncbi.nlm.nih.gov" or host == "ncbi.nlm.nih.gov" and _path(url).startswith("/pmc/"):
        return "PubMed Central"  # NCBI's full-text archive: "PubMed" named another site
    for suffix, name in _NAMED_HOSTS.items():
        if host == suffix or host.endswith("." + suffix):
            return name
    return ""


_OTHER_REASONS: dict[str, str] = {
    "permanent_redirect": "This {thing} has a new address",
    "http_404": "The {thing} is gone: the site answers 'not found' (HTTP 404)",
    "http_410": "The site removed this {thing} (HTTP 410)",
    "soft_404": "The site shows a 'page not found' page instead of the {thing} (while answering 200 OK)",
    "redirect_to_home": "The link now lands on the site's home page: the {thing} was removed",
    "expired_notice": "The site says this {thing} has expired or was removed",
    "login_required": "The {thing} is behind a login; please open it in a browser",
    "private_address": "The {thing} is at a private network address (an intranet or a local "
                       "machine): readers outside that network cannot open it",
    "title_mismatch": "The link now leads to a different {thing}",
    "content_changed": "The {thing} changed a lot since it was linked; check it is still the one meant",
}
"""The sentences of `REASONS` that speak of an article or an entry, for the
links that are neither: a menu link or a cross-reference (`navigation`: a
page) and what the page loads (`resource`: an image, a script...). "{thing}"
is `thing(kind, url)`."""

_IMAGE = frozenset("png jpg jpeg gif svg webp avif bmp ico tif tiff".split())
_MEDIA = frozenset("mp4 webm ogg ogv mp3 m4a wav mov".split())
_FONT = frozenset("woff woff2 ttf otf eot".split())  # a stylesheet's @font-face url()


def thing(kind: str, url: str | None = None) -> str:
    """What the link leads to, in one word: an "article" (a citation), a
    "page" (a menu link, a cross-reference), or for what a page loads, an
    "image", "script", "stylesheet", "font", "video or sound file" or "file"
    as the address's extension says (the element is not kept with the link)."""
    if kind == LinkKind.NAVIGATION:
        return "page"
    if kind != LinkKind.RESOURCE:
        return "article"
    try:
        path = urlsplit(url or "").path.lower()
    except ValueError:
        path = ""
    ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    if ext in _IMAGE:
        return "image"
    if ext in ("js", "mjs"):
        return "script"
    if ext == "css":
        return "stylesheet"
    if ext in _MEDIA:
        return "video or sound file"
    if ext in _FONT:
        return "font"
    return "file"



def describe(reason: str, *, url: str | None = None, http_status: int | None = None,
             kind: str = LinkKind.CITATION, confirmed: bool = True) -> str:
    """One sentence saying what happened to the link, for an editor.

    A citation's sentence speaks of the article; a menu link's of the page,
    an image's of the image (`kind`). A failure not `confirmed` yet is said
    as no more than one check shows (`SUSPECTED_REASONS`)."""
    token = (reason or "").strip().lower()
    if not confirmed and token in SUSPECTED_REASONS:
        return SUSPECTED_REASONS[token]
    if kind in (LinkKind.NAVIGATION, LinkKind.RESOURCE):
        if token in _OTHER_REASONS:
            return _OTHER_REASONS[token].format(thing=thing(kind, url))
    named = _site_name(url)
    if token in ("permanent_redirect", "known_move") and named.startswith("PubMed") \
            and kind == LinkKind.CITATION:
        return f"{named} moved this article to a new address"
    if token == "http_403" and named == "LinkedIn":
        return REASONS["http_999"]
    if token in REASONS:
        return _with_code(REASONS[token], http_status)
    match = _HTTP_CODE.match(token)
    if match:
        return _http_words(int(match.group(1)))
    if not token:
        return "The check gave no reason"
    return f"The check reported a problem it names '{token.replace('_', ' ')}' ({token})"


def _with_code(sentence: str, http_status: int | None) -> str:
    """Put the real code into the class sentences ("HTTP 4xx" -> "HTTP 418")."""
    if http_status is not None and ("HTTP 4xx" in sentence or "HTTP 5xx" in sentence):
        sentence = sentence.replace("4xx error", str(http_status)).replace("5xx", str(http_status))
    return sentence


def _http_words(code: int) -> str:
    token = f"http_{code}"
    if token in REASONS:
        return REASONS[token]
    if code == 429:
        return REASONS["rate_limited"]
    if 500 <= code <= 599:
        return REASONS["http_5xx"].replace("5xx", str(code))
    if 400 <= code <= 499:
        return REASONS["http_4xx"].replace("4xx error", str(code))
    return f"The site answered with an unexpected HTTP status ({code})"


# -- which group a flagged link is listed in ---------------------------------------

LISTED_IN_SITEMAP = "listed in the site's sitemap"
"""Added to the error of a crawled page the sitemap lists but the site
cannot give (`monitor.pages` adds it; the terminal and the report read it).
Here, not in `monitor.pages`: importing that module (aiohttp) for two
strings and `gone_here` cost every `monitor report` 0.2 s."""

HOLDS_NO_LINKS = "a page that holds no links"
"""`monitor.pages.no_page_read`'s only verdict that can be the page: HTML
that reads well, with no link in it (its references moved to another page)."""


NEEDS_FIXING = "needs_fixing"
NEEDS_A_PERSON = "needs_a_person"
WATCHING = "watching"
GROUPS = (NEEDS_FIXING, NEEDS_A_PERSON, WATCHING)
"""The groups of flagged links, in the order both outputs list them."""

CONFIRMED_AT_ONCE = frozenset({"invalid_url", "private_address"})
"""Reasons that are facts of the address, not of an answer: no recheck will clear them."""


def problem_confirmed(link: LinkResult, now: dt.datetime, confirm_after: dt.timedelta,
              state: UrlState | None = None) -> bool:
    """Whether a flagged link's problem is established, or only suspected.

    Redirects and blocks are facts of one answer; failures need repeating. A
    301 says "moved" as clearly the first time as the tenth, and drift is
    measured against the title the link had when it last worked, so both are
    confirmed at once. So are a malformed address (a typo on the page) and a
    private one (an intranet's). Failures are confirmed only when the
    classifier's history rule says so (several failures over at least
    `confirm_after`), judged from `state` when given, else from the link's
    own strikes.
    """
    if link.status in (LinkStatus.MOVED, LinkStatus.DRIFTED) or link.reason in CONFIRMED_AT_ONCE:
        return True
    if state is None:
        state = UrlState(url=link.url, status=link.status, reason=link.reason,
                         strikes=link.strikes, failing_since=link.failing_since)
    return bool(is_confirmed(state, now, confirm_after))


MARKED_DEAD = frozenset({LinkStatus.EXPIRED, LinkStatus.ERROR, LinkStatus.DRIFTED, LinkStatus.BLOCKED})
"""Statuses under which a link editors marked "(Expired Article)" needs nothing new."""


def acknowledged(link: LinkResult) -> bool:
    """A dead link whose entry editors already marked "(Expired Article)".

    They know; listing it with the problems every week for years would bury
    the new ones: the report puts it in its content audit, the terminal
    listing in a group of its own. A marked link that *moved* is still a
    problem: it has a plain fix (the new address, and the mark can go).
    """
    return link.expired_mark and link.status in MARKED_DEAD


PRIVATE_BADGE = "Private address"
"""The badge of a link to a private network address (`private_address`):
`blocked` by status, as the contract keeps it, but to fix, under "Needs
fixing". BLOCKED meant "open it in a browser, nothing to do" in "Needs a
person" and "fix this link" there: an editor opening the intranet PDF from
inside the clinic's network sees it load and leaves it (review 15 #2)."""


def private_address(link: LinkResult) -> bool:
    """A link to a private network address (an intranet's PDF): `blocked`
    by status, as the contract says, but to fix (`attention`), so the
    report, the mail, `check` and the demo badge and count it apart."""
    return link.status == LinkStatus.BLOCKED and link.reason == "private_address"


def attention(status: str, reason: str, *, confirmed: bool) -> str:
    """The group a flagged link goes in: `NEEDS_FIXING`, `NEEDS_A_PERSON` or `WATCHING`.

    A first timeout or 5xx asks nothing of an editor yet: it is watched (and
    rechecked) apart, so "Needs fixing" holds only work to do. A link to a
    private address is `blocked` (the monitor refused it), but no person's
    look can clear it: it is broken for every reader outside that network,
    so it is to fix, not among the sites that refuse robots.
    """
    if status == LinkStatus.BLOCKED and reason != "private_address":
        return NEEDS_A_PERSON
    if status == LinkStatus.ERROR and not confirmed:
        return WATCHING
    return NEEDS_FIXING


def flap_words(tally: FailTally, date: Callable[[dt.datetime], str] = lambda d: f"{d:%Y-%m-%d}") -> str:
    """What a link that keeps switching between working and failing says
    instead of its latest streak: "fails now and then: failed 18 of the last
    52 checks, since 2025-11-24; last ok 2026-11-09" (`date` writes the
    dates: the report's "24 Nov 2025"). Each failure after a good week
    starts a new streak, which read "first seen" this week and "failed once
    so far" every time (walkthrough 11 #1)."""
    words = "fails now and then"
    if tally.checks:
        words += f": failed {tally.failed} of the last {tally.checks} check{'' if tally.checks == 1 else 's'}"
        if tally.since is not None:
            words += f", since {date(tally.since)}"
    if tally.last_ok_at is not None:
        words += f"; last ok {date(tally.last_ok_at)}"
    return words


def link_words(link: LinkResult, *, confirmed: bool = True) -> str:
    """What happened to one link, in the sentence of `describe`, with the
    flapping note when the link keeps switching (and that is not already
    its reason)."""
    words = describe(link.reason, url=link.url, http_status=link.http_status, kind=link.kind,
                     confirmed=confirmed)
    if link.flapping and link.reason != "flapping":
        words += ". " + REASONS["flapping"]
    return words


def site_cut_words(cut: SiteCut) -> str:
    """A [[sites]] crawl cut short by its max_pages or max_depth, in one line
    said by the terminal and the report alike: "www.sclero.org: at least 18
    more pages found were not audited ([[sites]] max_pages = 5 in site.toml);
    12 pages linked from its deepest pages were not audited ([[sites]]
    max_depth = 3 in site.toml)". "At
    least": the pages left out were never read, so the links they hold to
    further pages were never found."""
    where = f" in {cut.config}" if cut.config else ""
    said = []
    if cut.not_audited:
        more = "1 more page" if cut.not_audited == 1 else f"{cut.not_audited} more pages"
        said.append(f"at least {more} found {'was' if cut.not_audited == 1 else 'were'} not audited "
                    f"([[sites]] max_pages = {cut.max_pages}{where})")
    if cut.too_deep:
        deeper = "1 page" if cut.too_deep == 1 else f"{cut.too_deep} pages"
        said.append(f"{deeper} linked from its deepest pages {'was' if cut.too_deep == 1 else 'were'} "
                    f"not audited ([[sites]] max_depth = {cut.max_depth}{where})")
    return f"{cut.site}: " + "; ".join(said)
