"""One observation of a URL (plus its history) -> the action it asks of an editor.

Pure: no I/O, no clock. The checker records facts (`Observation`); this module
judges them, so the judgement can be tested with hand-made observations and
changed without touching the network code.

Order of precedence (the first rule that fires decides):

| #  | signal                                                        | status   | reason |
|----|---------------------------------------------------------------|----------|--------|
| 1  | `error_kind` private_address / robots_disallowed /            | blocked  | the kind's value |
|    | unsupported_scheme (a redirect to ftp:, file:, data:...)      |          |        |
| 1  | any other `error_kind` (timeout, dns, tls, redirect_loop...)  | error    | the kind's value |
| 2  | no HTTP status and no error kind                              | error    | bad_response |
| 3  | redirected to a known domain-parking host                     | expired  | parked_domain |
| 4  | redirected to a sign-in page (final status 2xx/401/403), or   | blocked  | login_required |
|    | a 2xx page titled "Sign in" / "Log in"                        |          |        |
| 5  | bot-wall page: Cloudflare, Akamai, DataDome, PerimeterX,      | blocked  | bot_challenge |
|    | Imperva, DDoS-Guard, Sucuri, captcha (any status but 404/410  |          |        |
|    | and the gateway errors 502/504)                               |          |        |
| 6  | a status the old address form is known to answer spuriously   | moved    | known_move |
|    | (quirks: old PubMed form answering 431/5xx)                   |          |        |
| 7  | 404, 410                                                      | expired  | http_404, http_410 |
| 7  | 429                                                           | blocked  | rate_limited |
| 7  | 401, 402, 403, 406, 418, 451, 999                             | blocked  | http_NNN |
| 7  | 5xx, and every other non-2xx (400, 405, 408, 414, 431, a     | error    | http_NNN |
|    | final 3xx without a usable Location...)                       |          |        |
|    | -- from here on the final answer is 2xx --                    |          |        |
| 8  | parking wording ("this domain is for sale", sedoparking...)   | expired  | parked_domain |
| 9  | expiry notice ("this article has expired", "this press        | expired  | expired_notice |
|    | release is no longer available", "content has been archived") |          |        |
| 9  | 2xx empty shell a host serves for a missing item (quirks:     | blocked  | video_unavailable |
|    | YouTube's "<title> - YouTube" for a removed video, or its bot |          |        |
|    | wall: the check saw no video)                                 |          |        |
| 10 | error-page title, error wording in the text, or a redirect    | expired  | soft_404 |
|    | to an error address (/404, notfound, /error)                  |          |        |
| 11 | a deep link redirected to the home page, a listing or search, | expired  | redirect_to_home |
|    | a search for its own words, or an ancestor section two or     |          |        |
|    | more levels up                                                |          |        |
| 12 | same content as the probe (a random sibling path)             | expired  | soft_404 |
| 13 | a specific title naming another item than the cited title     | drifted  | title_mismatch |
| 13 | no usable cited title: the title differs from the one seen    | drifted  | content_changed |
|    | when the link was last ok                                     |          |        |
| 14 | a quirk knows the new address (rewrite of the original URL)   | moved    | known_move |
|    | and the site announces no other permanent move                |          |        |
| 15 | the chain starts with permanent hops (301/308, or http->https | moved    | permanent_redirect |
|    | of the same URL whatever its code)                            |          |        |
| 15 | ... but the cited URL is a persistent-identifier resolver     | ok       | resolver_redirect |
|    | (doi.org, hdl.handle.net...)                                  |          |        |
| 16 | any other redirect chain (it starts with 302/303/307)         | ok       | temporary_redirect |
| 17 | 2xx                                                           | ok       | ok |

Decisions worth knowing:
- `suggested_url` of a moved link is the URL reached by the *leading run* of
  permanent hops: 301 A->B, 302 B->C suggests B (C is only where B points
  today). A chain that starts with a temporary hop is not a move at all: the
  site says "keep using A", whatever follows. Fragments of the cited URL are
  carried over. A quirk also normalises the suggestion.
- Persistent resolvers (doi.org, hdl.handle.net...) are never "moved" by their
  redirects: the DOI is the stable citation, the publisher URL is not.
- A quirk's rewrite is suggested even when the old address answers 200
  (reason `known_move`; `permanent_redirect` when the chain itself agrees).
- 400 is an error, not "gone": it usually means the server disliked the
  request (headers, cookies), and strikes over days confirm real breakage.
  406 and 418 are blocked: mod_security-style firewalls answer them to bots.
  451 is blocked: a person should look at what the law hides.
- Redirect to an unsupported scheme is `blocked` (refused by policy, a person
  should look), not `error` (which promises it may pass by itself).
- Wording found in a page's *text* is weighed against its *title*: when the
  title matches the cited title, the item is there, and error, parking and
  bot-wall wording elsewhere on the page is ignored (a review about "404
  errors", an article on domain sales). Bare phrases ("no longer available",
  "404 error") count only when the page has no specific title of its own.
  Structured expiry notices ("this article has expired") count always: news
  sites keep the headline above them.
- A retraction is not a status: a retracted article's page still holds the
  cited item. `notices.notice_for` reads it from the titles and text of an
  ok, moved or drifted page, and the verdict carries it (`notice`,
  `notice_detail`) beside whatever status the rules gave.
- Drift needs evidence on both sides: a cited title of at least
  `MIN_CITED_TOKENS` content words and a seen title that is specific (not a
  site name like "ScienceDirect", not "Home"). A generic title means "ok".
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from monitor import notices, quirks
from monitor.urlnoise import PATH_SESSION, SESSION_KEY
from monitor.types import URL_KEPT_MAX, ErrorKind, LinkStatus, Observation, UrlState, Verdict, as_utc

__all__ = [
    "CONFIRM_AFTER",
    "CONFIRM_MIN_STRIKES",
    "DRIFT_THRESHOLD",
    "FLAP_TRANSITIONS",
    "MIN_CITED_TOKENS",
    "MIN_SPECIFIC_TOKENS",
    "PRESENT_THRESHOLD",
    "PROBE_TEXT_SIMILARITY",
    "RECENT_WINDOW",
    "classify",
    "classify_unprobed",
    "is_confirmed",
    "is_specific_title",
    "next_state",
    "permanent_target",
    "stand_in",
    "StandIn",
    "titles_match",
]

# -- thresholds ------------------------------------------------------------------

DRIFT_THRESHOLD = 0.5
"""Below this title similarity a specific title names another item."""
PRESENT_THRESHOLD = 0.8
"""At or above this similarity the cited item is on the page: text heuristics are off."""
MIN_CITED_TOKENS = 3
"""Content words a cited title needs before it can prove drift."""
MIN_SPECIFIC_TOKENS = 3
"""Content words a seen title needs to be evidence of anything."""
PROBE_TEXT_SIMILARITY = 0.9
"""Text similarity with the probe above which the page is the site's 'not found' page."""
TEXT_COMPARE_CHARS = 2000
"""How much text is compared with the probe's (difflib is quadratic)."""
ANCESTOR_MIN_DROP = 2
"""Levels a redirect must climb up the same path to count as 'sent to a section page'."""
RECENT_WINDOW = 8
"""Statuses kept in `UrlState.recent`."""
FLAP_TRANSITIONS = 3
"""Failing <-> not failing changes within `recent` that make a URL flapping."""
CONFIRM_MIN_STRIKES = 2
CONFIRM_AFTER = dt.timedelta(days=1)
QUOTE_CHARS = 80
"""Longest quotation of web text in a detail sentence (two make at most ~160)."""
URL_CHARS = 150
SITE_SEGMENT_MAX_TOKENS = 5
"""Longest segment of a seen title that may be dropped as a site or journal name."""
FUZZY_WORD_RATIO = 0.9
"""difflib ratio at which two long words count as one spelling (tumour/tumor 0.91;
systemic/systematic, 0.89, must stay apart)."""

# -- text normalisation --------------------------------------------------------------

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), "-")
_QUOTES = dict.fromkeys(map(ord, "\u2018\u2019\u02bc\u0060\u00b4"), "'")
_TOKEN = re.compile(r"[^\W_]+")
_SITE_SEPARATORS = re.compile(r"\s*\|\s*|\s+[-\u00b7\u2022~\u00bb\u00ab/]\s+|\s+::\s+")
_SEPARATORS = re.compile(r"\s*\|\s*|\s+[-\u00b7\u2022~\u00bb\u00ab/]\s+|\s+::\s+|:\s+")
_EXPIRED_MARK = re.compile(r"^\(?\s*expired(?: article)?\s*\)?\s*[:\-]?\s*", re.IGNORECASE)
_STOPWORDS = frozenset(
    "a an the of in on for and or to with by at from as is are was were be been "
    "vs versus its it their this that via into after before among between than "
    "how what why when who does do can".split()
)


@functools.lru_cache(maxsize=256)
def _clean(text: str) -> str:
    """Entities decoded, NFKC, casefolded, one kind of dash and quote, one space.

    Cached, like the other title helpers below: one observation's titles
    go through several rules (a third of classify's time was spent on the
    same strings again). A small cache: the repeats are within one
    observation, and a few hundred entries cost well under a megabyte."""
    text = html.unescape(text or "")
    if "&" in text and ";" in text:  # double-escaped titles are common in CMS output
        text = html.unescape(text)
    return " ".join(_unified(text).split()).casefold()


def _unified(text: str) -> str:
    """NFKC, with one kind of dash and quote.

    ASCII text (most pages) is NFKC already and holds no dash to unify, only
    the backquote: skipping the rest saves ~9 us on a page's 2,000 characters."""
    if text.isascii():
        return text.replace("`", "'")
    return unicodedata.normalize("NFKC", text).translate(_DASHES).translate(_QUOTES)


def _one_space(text: str) -> str:
    """Each run of whitespace as one space, as `re.sub(r"\\s+", " ", text)`
    does (str.split knows the same whitespace), in a fifth of its time on a
    page's text: the regex built a replacement for every single space."""
    words = text.split()
    if not words:
        return " " if text else ""
    joined = " ".join(words)
    return (" " if text[0].isspace() else "") + joined + (" " if text[-1].isspace() else "")


def _fold(text: str) -> str:
    """Diacritics removed and apostrophes dropped ("Sjögren's" ~ "sjogrens")."""
    if not text.isascii():  # ASCII has nothing to decompose: the common case, kept cheap
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.replace("'", "")


def _stem(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


@functools.lru_cache(maxsize=256)
def _tokens(text: str) -> tuple[str, ...]:
    """Content words of cleaned text, lightly stemmed, in order.

    Cached: the cited title's are counted, then scored, for each link."""
    return tuple(_stem(t) for t in _TOKEN.findall(_fold(text)) if t not in _STOPWORDS)


def _segments(title: str) -> list[str]:
    """A cleaned title cut at site separators ("X | Oxford Academic", "X - PubMed")."""
    return [s for s in _SEPARATORS.split(title) if s.strip(" -|:")][:8]


# -- titles ----------------------------------------------------------------------------

_GENERIC_TITLES = frozenset({
    "home", "home page", "homepage", "welcome", "index", "untitled", "untitled document",
    "article", "articles", "full text", "abstract", "page", "document", "default", "news",
    "news release", "press release", "search", "search results", "redirecting", "loading",
    "please wait", "pdf", "sciencedirect", "sciencedirect com", "science direct", "pubmed",
    "ncbi", "nih", "pmc", "pubmed central", "europe pmc", "wiley online library", "wiley",
    "oxford academic", "oup academic", "springerlink", "springer", "springer link", "jstor",
    "researchgate", "google scholar", "semantic scholar", "globenewswire", "globe newswire",
    "pr newswire", "business wire", "medscape", "healio", "nejm", "jama", "jama network",
    "the bmj", "bmj", "nature", "the lancet", "lancet", "taylor francis online",
    "taylor francis", "tandfonline", "sage journals", "karger", "karger publishers",
    "frontiers", "mdpi", "bentham science", "bentham open", "cureus", "ats journals",
    "atsjournals", "american thoracic society", "the journal of rheumatology",
    "journal of rheumatology", "rheumatology", "clinical rheumatology", "mayo clinic",
    "webmd", "medlineplus", "clinicaltrials gov", "youtube", "facebook", "twitter", "x",
    "linkedin", "wikipedia", "not found", "error", "access denied", "forbidden",
    "sign in", "log in", "login",
})


def _is_generic_segment(segment: str) -> bool:
    return " ".join(_TOKEN.findall(_fold(segment))) in _GENERIC_TITLES


@functools.lru_cache(maxsize=256)
def is_specific_title(title: str) -> bool:
    """Whether a seen title could name one item (not "Home", not "ScienceDirect").

    Site-name segments are dropped first, then at least MIN_SPECIFIC_TOKENS
    content words must remain.
    """
    if _title_hit((title,), _ERROR_TITLE) or _title_hit((title,), _LOGIN_TITLE):
        return False
    kept = [s for s in _segments(_clean(title)) if not _is_generic_segment(s)]
    return len(_tokens(" ".join(kept))) >= MIN_SPECIFIC_TOKENS


_CUT = re.compile(r"(?:\.{3,}|\u2026)")


@functools.lru_cache(maxsize=256)
def _title_tokens(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """Content words of a cleaned title, and those cut short by an ellipsis."""
    words: set[str] = set()
    cut: set[str] = set()
    folded = _fold(text)
    ellipsis = "..." in folded or "\u2026" in folded
    for m in _TOKEN.finditer(folded):
        raw = m.group(0)
        if raw in _STOPWORDS:
            continue
        token = _stem(raw)
        words.add(token)
        if ellipsis and _CUT.match(folded, m.end()):
            cut.add(token)
    return frozenset(words), frozenset(cut)


def _same_word(a: str, b: str, cut: frozenset[str]) -> bool:
    """Equal, a truncated prefix ("antibody-pos..."), or a spelling variant (tumour/tumor)."""
    if a == b or _prefix(a, b, cut) or _prefix(b, a, cut):
        return True
    if len(a) >= 6 and len(b) >= 6 and abs(len(a) - len(b)) <= 2:
        return difflib.SequenceMatcher(None, a, b).ratio() >= FUZZY_WORD_RATIO
    return False


def _prefix(short: str, full: str, cut: frozenset[str]) -> bool:
    """`short` was cut by an ellipsis and begins `full` (its last letter may be stemmed)."""
    return short in cut and len(short) >= 2 and full.startswith(short[: max(2, len(short) - 1)])


def _covered(side: frozenset[str], other: frozenset[str], cut: frozenset[str]) -> float:
    """Share of `side`'s letters in words that also appear in `other`.

    Weighting words by length lets "dermatomyositis" and "lenabasum" say
    more than "3" or "rare": same-company press releases share short words.
    """
    total = sum(len(t) for t in side)
    # Exact membership first: the fuzzy comparison is for the few words left.
    found = sum(len(t) for t in side if t in other or any(_same_word(t, u, cut) for u in other))
    return found / total if total else 0.0


def _title_variants(seen: str) -> list[str]:
    """The seen title, and the same without site-name segments at either end.

    Segments are cut at "|", " - ", " · "... but not at ": " (a scientific
    title's subtitle). A dropped segment must be short (a site or journal
    name) and what remains must still be MIN_SPECIFIC_TOKENS words long, so
    that "X in systemic sclerosis: a systematic review - Journal" cannot
    shrink to "a systematic review".
    """
    parts = [p for p in _SITE_SEPARATORS.split(seen) if p.strip(" -|")][:8]
    sizes = [len(_tokens(p)) for p in parts]
    droppable = [n <= SITE_SEGMENT_MAX_TOKENS or _is_generic_segment(p) for p, n in zip(parts, sizes)]
    variants = [seen]
    for i in range(len(parts)):
        if i and not droppable[i - 1]:
            break
        for j in range(len(parts), i, -1):
            if (i, j) != (0, len(parts)) and sum(sizes[i:j]) >= MIN_SPECIFIC_TOKENS:
                variants.append(" | ".join(parts[i:j]))
            if not droppable[j - 1]:
                break
    return variants


def _without_shared_segments(a: str, b: str) -> tuple[str, str]:
    """Both titles without the segments they share (the same site name).

    Two titles of one site, "Treatments | Scleroderma Network" and "Gift
    Shop | Scleroderma Network", must be compared on what tells them apart.
    """
    parts_a = _SITE_SEPARATORS.split(a)
    parts_b = _SITE_SEPARATORS.split(b)
    if len(parts_a) < 2 and len(parts_b) < 2:
        return a, b
    key = lambda p: " ".join(_tokens(p))  # noqa: E731
    shared = {key(p) for p in parts_a} & {key(p) for p in parts_b}
    rest_a = [p for p in parts_a if key(p) not in shared]
    rest_b = [p for p in parts_b if key(p) not in shared]
    if not rest_a or not rest_b:
        return a, b
    return " | ".join(rest_a), " | ".join(rest_b)


def _score(a: frozenset[str], b: frozenset[str], cut: frozenset[str]) -> float:
    weight_a, weight_b = sum(map(len, a)), sum(map(len, b))
    small, large = (a, b) if weight_a <= weight_b else (b, a)
    return _covered(small, large, cut) * min(1.0, len(small) / MIN_SPECIFIC_TOKENS)


def titles_match(cited: str, seen: str) -> float:
    """Similarity 0..1 of a cited title and a seen one.

    The score is the length-weighted share of the shorter title's content
    words found in the longer one, at best over the seen title with and
    without the site names around it ("- PubMed", "| Rheumatology | Oxford
    Academic"). Truncation ("...") costs nothing; case, punctuation, dashes,
    entities, accents, plurals and an editor's "(Expired Article)" mark are
    normalised away. A shorter side of fewer than MIN_SPECIFIC_TOKENS words
    is discounted: it proves little. (A character-level difflib ratio was
    tried and rejected: it scored two different rituximab papers 0.67.)
    """
    cited_text, seen_text = _EXPIRED_MARK.sub("", _clean(cited)), _clean(seen)
    if cited_text == seen_text:
        return _self_score(cited_text)  # most links: ~30 us less than the general case
    return _best_score(cited_text, seen_text)


def _self_score(title: str) -> float:
    """`_best_score(title, title)`, without the work: each variant of a title
    holds a part of its words, so the whole title scores best, and it covers
    itself entirely."""
    return round(min(1.0, len(set(_tokens(title))) / MIN_SPECIFIC_TOKENS), 4)


def _best_score(cited_text: str, seen_text: str) -> float:
    """The score of two cleaned titles, at best over the seen one's variants."""
    cited_text, seen_text = _without_shared_segments(cited_text, seen_text)
    a, a_cut = _title_tokens(cited_text)
    if not a:
        return 0.0
    best = 0.0
    for variant in _title_variants(seen_text):
        b, b_cut = _title_tokens(variant)
        if b:
            best = max(best, _score(a, b, a_cut | b_cut))
    return round(best, 4)


# -- URLs ------------------------------------------------------------------------------

_TRACKING = re.compile(r"^(utm_\w+|ref|source|src|from|fbclid|gclid|mc_cid|mc_eid|lang|locale|hl)$")
_SEARCH_PARAMS = frozenset({"q", "query", "term", "search", "s", "keyword", "keywords",
                            "searchterm", "search_api_fulltext"})
_HOME_SEGMENT = re.compile(r"^(index|default|home|homepage|welcome|main|start|portal)(\.[a-z0-9]+)?$")
_LOCALE_SEGMENT = re.compile(r"^[a-z]{2}(?:[-_][a-z]{2})?$")
_LISTING_SEGMENTS = frozenset({
    "news", "news-releases", "news-release", "newsreleases", "newsroom", "news-room",
    "press", "press-releases", "press-release", "pressreleases", "press-room", "pressroom",
    "media", "media-center", "releases", "search", "archive", "archives", "articles",
    "blog", "blogs", "latest", "all", "list", "stories", "publications", "topics",
    "categories", "category", "issues", "current", "toc", "sitemap", "results",
    "search-results", "events", "investors", "investor-relations",
})
_ERROR_URL = re.compile(
    r"/(?:404|410|error|errors|error404|404error|errorpage|error[-_]page|not-?found|"
    r"page-?not-?found|pagenotfound|file-?not-?found|notfound)(?:\.[a-z0-9]+)?(?:[/?#]|$)|"
    r"[?&]aspxerrorpath=",
    re.IGNORECASE,
)
_LOGIN_PATH = re.compile(
    r"/(?:login|log-in|logon|log_in|signin|sign-in|sign_in|showlogin|userlogin|auth|oauth2?|"
    r"authorize|authenticate|sso|saml2?|shibboleth(?:\.sso)?|wayf|accountlogin)(?:[./?#;]|$)",
    re.IGNORECASE,
)
_LOGIN_HOST = re.compile(r"^(?:login|signin|sso|auth|accounts|idp|secure-login)\.", re.IGNORECASE)
_PARKING_HOSTS = (
    "sedoparking.com", "sedo.com", "hugedomains.com", "dan.com", "afternic.com",
    "parkingcrew.net", "bodis.com", "above.com", "domainmarket.com", "buydomains.com",
    "undeveloped.com", "parklogic.com", "domainnamesales.com", "brandbucket.com",
    "perfectdomain.com", "namebright.com", "searchvity.com", "smartname.com",
)


def _split(url: str) -> tuple[str, str, list[str], list[tuple[str, str]]]:
    """(scheme, host, path segments, query pairs) with hosts lowercased."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "", "", [], []
    segments = [s for s in parts.path.split("/") if s]
    return parts.scheme.lower(), host, segments, parse_qsl(parts.query, keep_blank_values=True)


def _content_query(pairs: list[tuple[str, str]]) -> bool:
    return any(not _TRACKING.match(k.lower()) for k, _ in pairs)


def _trimmed(segments: list[str]) -> list[str]:
    """Path segments without a trailing index/home document."""
    if segments and _HOME_SEGMENT.match(segments[-1].lower()):
        return segments[:-1]
    return segments


def _is_home(url: str) -> bool:
    _, _, segments, pairs = _split(url)
    rest = _trimmed(segments)
    return len(rest) <= 2 and all(_LOCALE_SEGMENT.match(s.lower()) for s in rest) \
        and not _content_query(pairs)


_SEARCH_SEGMENTS = frozenset({"search", "search-results"})


def _is_listing(url: str) -> bool:
    """A listing or search page: by its last segment, a search segment anywhere
    in its path (GlobeNewswire's /en/search/organization/<name>, Drupal's
    /search/node/<words>), or a search parameter."""
    _, _, segments, pairs = _split(url)
    rest = _trimmed(segments)
    last = rest[-1].lower().rsplit(".", 1)[0] if rest else ""
    return last in _LISTING_SEGMENTS or any(s.lower() in _SEARCH_SEGMENTS for s in rest) \
        or any(k.lower() in _SEARCH_PARAMS for k, _ in pairs)


def _path_query(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return parts.path + ("?" + parts.query if parts.query else "")


def _bare_host(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def _same_page(a: str, b: str) -> bool:
    """Equal URLs, ignoring the fragment, a trailing slash and the host's case."""
    sa, ha, pa, qa = _split(a)
    sb, hb, pb, qb = _split(b)
    return (sa, ha, pa, qa) == (sb, hb, pb, qb)


def _is_https_upgrade(a: str, b: str) -> bool:
    sa, ha, pa, qa = _split(a)
    sb, hb, pb, qb = _split(b)
    return sa == "http" and sb == "https" and (ha, pa, qa) == (hb, pb, qb)


def _host(url: str) -> str:
    return _split(url)[1]


def _with_fragment(url: str, original: str) -> str:
    """Carry the cited URL's #fragment over, as browsers do across redirects."""
    try:
        target, cited = urlsplit(url), urlsplit(original)
    except ValueError:
        return url
    if cited.fragment and not target.fragment:
        return urlunsplit(target._replace(fragment=cited.fragment))
    return url


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _q(text: str) -> str:
    """Web text quoted for a detail sentence: bounded, never raw HTML."""
    return "'" + _shorten(html.unescape(text), QUOTE_CHARS).rstrip(" .") + "'"


def _u(url: str) -> str:
    return _shorten(url, URL_CHARS)


# -- page wording ------------------------------------------------------------------------

_ERROR_TITLE = re.compile(
    r"^(?:(?:http )?(?:error|status) ?)?(?:404|410)(?: ?error)?(?: ?page)?(?: ?-? ?(?:page |file )?not found)?$|"
    r"^(?:error ?)?(?:page|file|document|article|content|resource|url|item|story|post)? ?not found!?$|"
    r"^(?:(?:were|we are|we re) )?(?:sorry|oops|whoops|uh oh)\b.{0,60}(?:found|exist|missing|wrong|moved|find)|"
    r"^(?:we |i )?(?:cant|cannot|can not|couldnt|could not) (?:seem to )?find (?:that|this|the|your) page|"
    r"^(?:the )?page (?:you requested |you are looking for )?(?:could not|cannot|can ?not|cant|couldnt) be found\.?$|"
    r"^(?:this |the )?page (?:does not|doesnt|no longer) exists?\.?$|"
    r"^(?:page|content|article) (?:not |un)available$|^nothing found(?: for .*)?$|"
    r"^(?:seite nicht gefunden|page introuvable|p[aá]gina no encontrada|pagina non trovata|"
    r"pagina niet gevonden|fehler 404|erreur 404)$"
)
_SOFT404_SAID = re.compile(
    r"(?:the |this )?(?:page|file|document|url|article|resource|content|item|story)"
    r"(?: (?:that )?you(?:'re| are| were| have)? (?:looking for|requested|tried to access|trying to reach))?"
    r" (?:could not|cannot|can ?not|can'?t|couldn'?t|was not|wasn'?t) (?:be )?found|"
    r"(?:page|file|document|article|content|url) (?:that )?you(?:'re| are| were)? (?:looking for|requested)"
    r" (?:does not|doesn'?t|did not|didn'?t|no longer) exists?|"
    r"(?:this|the) page (?:does not|doesn'?t|no longer) exists?|"
    r"\b(?:we|i) (?:can'?t|cannot|can not|couldn'?t|could not) (?:seem to )?find (?:the|that|this) "
    r"(?:page|article|file|content)|"
    r"requested url (?:\S+ )?was not found on this server|"
    # German, French, Spanish, Portuguese, Italian, Dutch: cited foundations and hospitals
    r"\bseite (?:wurde |konnte |kann )?nicht gefunden\b|\bseite (?:existiert nicht|nicht gefunden)\b|"
    r"\bpage (?:que vous (?:recherchez|cherchez|demandez|avez demand[ée]e) )?(?:est )?introuvable\b|"
    r"\bpage (?:demand[ée]e )?n'existe pas\b|\bpage non trouv[ée]e\b|"
    r"\bp[aá]gina (?:que (?:busca|buscas|buscaba|está buscando|esta buscando|solicit[oó]) |solicitada )?"
    r"no (?:existe|se encuentra|(?:ha sido |fue )?encontrada)\b|\bp[aá]gina n[aã]o (?:encontrada|existe)\b|"
    r"\bpagina (?:richiesta |che stai cercando )?non (?:trovata|esiste|(?:è|e) stata trovata)\b|"
    r"\bpagina (?:is )?niet gevonden\b"
)
_SOFT404_BARE = r"\bpage not found\b|\b404[ .:-]+(?:page |file )?not found\b|\berror 404\b"
"""Error words that are a name, not a sentence: in a footer too ("Report a
page not found to the webmaster"), so a watched page's text is not judged
by them (`stand_in`)."""
_SOFT404_STRONG = re.compile(f"{_SOFT404_SAID.pattern}|{_SOFT404_BARE}")
_SOFT404_WEAK = re.compile(r"\bno longer exists\b|\b404 error\b|\bnot found\b")
_NOUNS = (r"(?:article|page|content|story|press release|news release|release|item|post|listing|"
          r"announcement|document|link|video|web ?page|news item|resource)s?")
_EXPIRED_STRONG = re.compile(
    rf"\b(?:this|the|that) {_NOUNS}(?: you (?:are|were) looking for| you requested| requested)? "
    r"(?:has|have|is|are|was) (?:expired|no longer (?:available|online|accessible|active|published)|"
    r"been (?:removed|deleted|archived|taken down|withdrawn|unpublished|retired|expired))|"
    r"\bcontent has been archived\b|\bpress release is no longer available\b|"
    r"\barticle has expired\b|\bthis (?:content|page) is archived\b"
)
_EXPIRED_WEAK = re.compile(r"\bno longer available\b|\bhas been removed\b|\bhas expired\b|"
                           r"\bhas been archived\b|\bno longer online\b")
_PARKED_STRONG = re.compile(
    r"\bth(?:is|e) domain(?: name)?(?: \S+)? (?:is|may be|might be) (?:for sale|available for (?:sale|purchase))|"
    r"\bbuy this domain\b|\bdomain parking\b|\bsedo ?parking\b|\bhugedomains\b|"
    r"\bparked free,? courtesy of godaddy\b|\bthis (?:web ?page|domain) (?:is|has been) parked\b|"
    r"\bthis domain (?:name )?has expired\b|\binquire about (?:buying )?this domain\b|"
    r"\bmake an offer on this domain\b|\bparkingcrew\b|\bdomain is parked\b"
)
_PARKED_TITLE = re.compile(r"\b(?:is|may be) for sale\b|\bdomain\b.{0,40}\bsale\b|hugedomains|"
                           r"sedo ?parking|\bdan\.com\b|afternic|\bparked domain\b")
_PARKED_WEAK = re.compile(r"\brelated searches\b|\bsponsored listings\b|\bthis domain\b.{0,40}\bsale\b")
_LOGIN_TITLE = re.compile(
    r"^(?:please )?(?:sign|log) ?(?:in|on)(?: to (?:your account|continue|.{1,40}))?$|"
    r"^(?:user|member|members|institutional|secure|account|customer) (?:login|log in|sign in|sign on)$|"
    r"^login(?: required| page)?$|^authentication(?: required)?$|^single sign ?on$"
)
# (vendor, pattern) pairs. Strong markers are specific to bot walls; weak ones
# ("captcha", "access denied") need a refusal status or a page with no title of its own.
_CHALLENGE_STRONG: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Cloudflare", re.compile(r"cf[-_]chl|just a moment\.\.\.|attention required! \| cloudflare|"
                              r"checking (?:if the site connection is secure|your browser before accessing)|"
                              r"enable javascript and cookies to continue|cf-browser-verification|"
                              r"verifying you are human|needs to review the security of your connection")),
    ("DataDome", re.compile(r"captcha-delivery\.com|\bdatadome\b|"
                            r"please enable js and disable any ad blocker")),
    ("PerimeterX", re.compile(r"press (?:&|&amp;|and) hold|px-captcha|perimeterx|"
                              r"access to this page has been denied")),
    ("Imperva", re.compile(r"incapsula incident id|request unsuccessful\. incapsula|"
                           r"pardon our interruption")),
    ("Akamai", re.compile(r"access denied.{0,400}reference ?#\s?\d+\.[0-9a-f]+")),
    ("DDoS-Guard", re.compile(r"ddos-guard")),
    ("Sucuri", re.compile(r"sucuri website firewall")),
    ("", re.compile(r"verify (?:that )?you are (?:a )?human|are you a robot\??|"
                             r"checking your browser|robot or human\?|human verification")),
)
_CHALLENGE_WEAK = re.compile(r"\bcaptcha\b|\baccess denied\b|\bunusual traffic\b|"
                             r"\bsecurity check\b|\bbot detection\b")
_CHALLENGE_STATUSES = frozenset({401, 403, 405, 406, 429, 503})
# A CDN's page for an origin that failed names the CDN (Sucuri's "Bad Gateway",
# Akamai's "Reference #" on every error) but is no bot check.
_GATEWAY_STATUSES = frozenset({502, 504})


def _lower_text(text: str) -> str:
    return _one_space(_unified(text or "")).casefold()


def _title_hit(titles: tuple[str, ...], pattern: re.Pattern[str]) -> str | None:
    """The title one of whose separator-cut segments is wholly `pattern`."""
    for title in titles:
        if any(pattern.match(words) for words in _segment_words(title)):
            return title
    return None


@functools.lru_cache(maxsize=256)
def _segment_words(title: str) -> tuple[str, ...]:
    """The words of a title and of each separator-cut segment: what the
    title rules match their patterns against (several per observation)."""
    cleaned = _clean(title)
    return tuple(" ".join(_TOKEN.findall(_fold(segment))) for segment in [cleaned, *_segments(cleaned)])


def _phrase(pattern: re.Pattern[str], *texts: str) -> str | None:
    for text in texts:
        m = pattern.search(text)
        if m:
            return m.group(0)
    return None


# -- the evidence of one observation ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the rules look at, computed once per observation."""

    obs: Observation
    cited: str
    probe: Observation | None
    previous: UrlState | None
    final: str
    redirected: bool
    titles: tuple[str, ...]
    cited_long: bool
    score: float | None
    present: bool
    specific: bool
    """A seen title could name one item; left False when `present` (no rule asks then)."""
    text: str
    title_text: str

    @property
    def status(self) -> int:
        return self.obs.http_status or 0

    @property
    def strong_ok(self) -> bool:
        """Page-level wording counts unless the page shows its own identity.

        It does when its title matches the cited title, or, with nothing
        cited to compare, when it has a specific title of its own.
        """
        return not self.present and (self.cited_long or not self.specific)

    @property
    def weak_ok(self) -> bool:
        """Bare phrases count only on pages with no specific title of their own."""
        return not self.present and not self.specific


def _join(base: str, location: str) -> str:
    """A redirect target made absolute; a malformed one is kept as written."""
    try:
        return urljoin(base, location)
    except ValueError:
        return location


def _final_url(obs: Observation) -> str:
    if obs.final_url:
        return obs.final_url
    if obs.redirects:
        last = obs.redirects[-1]
        return _join(last.url, last.location)
    return obs.url


def _evidence(obs: Observation, cited: str, probe: Observation | None,
              previous: UrlState | None) -> _Seen:
    final = _final_url(obs)
    # The meta title and <title> are often the same string: judge it once.
    titles = tuple(dict.fromkeys(t for t in (obs.meta_title, obs.title) if t and t.strip()))
    cited_long = len(_tokens(_EXPIRED_MARK.sub("", _clean(cited)))) >= MIN_CITED_TOKENS
    score = max((titles_match(cited, t) for t in titles), default=0.0) if cited_long and titles else None
    present = score is not None and score >= PRESENT_THRESHOLD
    return _Seen(
        obs=obs, cited=cited, probe=probe, previous=previous, final=final,
        # Without a hop the checker gives the URL itself as the final one.
        redirected=bool(obs.redirects) or final != obs.url and not _same_page(final, obs.url),
        titles=titles, cited_long=cited_long, score=score, present=present,
        # Asked only of a page not showing the cited item (strong_ok, weak_ok).
        specific=not present and any(is_specific_title(t) for t in titles),
        text=_lower_text(obs.text),
        title_text=" ".join(_lower_text(t) for t in titles),
    )


def _verdict(s: _Seen, status: LinkStatus, reason: str, detail: str,
             suggested: str | None = None) -> Verdict:
    # An address longer than URL_KEPT_MAX is not suggested (a server's 30 KB
    # Location was kept in every week's row and offered as "New address");
    # the detail names it shortened, and the advice asks to find the new one.
    if suggested is not None and len(suggested) > URL_KEPT_MAX:
        suggested = None
    return Verdict(url=s.obs.url, status=status, reason=reason, detail=detail,
                   suggested_url=suggested)


def _phrase_of(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


# -- the rules, in order of precedence -----------------------------------------------------

_KIND_DETAIL: dict[ErrorKind, tuple[LinkStatus, str]] = {
    ErrorKind.TIMEOUT: (LinkStatus.ERROR, "The server did not answer within the time limit."),
    ErrorKind.DNS: (LinkStatus.ERROR, "The host name does not resolve (DNS failure)."),
    ErrorKind.CONNECTION_REFUSED: (LinkStatus.ERROR, "The server refused the connection."),
    ErrorKind.CONNECTION_RESET: (LinkStatus.ERROR, "The connection was cut before an answer came."),
    ErrorKind.TLS: (LinkStatus.ERROR, "The secure connection failed (certificate or TLS error)."),
    ErrorKind.REDIRECT_LOOP: (LinkStatus.ERROR, "The redirects go round in a loop."),
    ErrorKind.TOO_MANY_REDIRECTS: (LinkStatus.ERROR, "The address redirects too many times."),
    ErrorKind.BAD_RESPONSE: (LinkStatus.ERROR, "The server sent a malformed answer."),
    ErrorKind.INVALID_URL: (LinkStatus.ERROR, "The address is not a valid URL."),
    ErrorKind.PRIVATE_ADDRESS: (LinkStatus.BLOCKED, "The address leads to a private or local "
                                "network, which the monitor does not visit."),
    ErrorKind.ROBOTS_DISALLOWED: (LinkStatus.BLOCKED, "The site's robots.txt asks automated "
                                  "checkers not to fetch this address; check it by hand."),
    ErrorKind.UNSUPPORTED_SCHEME: (LinkStatus.BLOCKED, "Redirects to a non-web address, which "
                                   "the monitor does not follow; check it by hand."),
}


def _rule_error_kind(s: _Seen) -> Verdict | None:
    kind = s.obs.error_kind
    if kind is None:
        return None
    status, detail = _KIND_DETAIL.get(kind, (LinkStatus.ERROR, f"The check failed ({kind})."))
    if kind is ErrorKind.UNSUPPORTED_SCHEME and s.obs.redirects:
        target = s.obs.redirects[-1].location
        detail = (f"Redirects to a non-web address ({_u(target)}), which the monitor "
                  "does not follow; check it by hand.")
    elif s.obs.error_detail and status is LinkStatus.ERROR:
        detail = f"{detail[:-1]} ({_shorten(_plain_error(s.obs.error_detail), 100)})."
    return _verdict(s, status, str(kind), detail)


_CONNECT_FAILED = re.compile(r"(?:\[Errno \d+\] )?Connect call failed \('([^']+)', (\d+)(?:, \d+, \d+)?\)")


_HOST_TWICE = re.compile(r"(?P<host>[^\s:/]+):\d+: (?P=host): ")


def _plain_error(text: str) -> str:
    """The operating system's words, where they have plain ones: "[Errno
    111] Connect call failed ('192.0.2.7', 443)" is "at 192.0.2.7, port 443";
    "x.invalid:80: x.invalid: special-use name ..." names its host once (it
    was clipped after "(RFC 6761),")."""
    match = _CONNECT_FAILED.fullmatch(text.strip())
    if match:
        return f"at {match[1]}, port {match[2]}"
    return _HOST_TWICE.sub(lambda m: f"{m['host']}: ", text.strip(), count=1)


def _wait_words(seconds: float) -> str:
    """A Retry-After in words: a server may ask for anything ("inf",
    "1e+23"), which read as "it asked to wait 1e+23 s"."""
    if not seconds < 86_400:
        return "more than a day"
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7_200:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3_600)} hours"


def _rule_no_answer(s: _Seen) -> Verdict | None:
    if s.obs.http_status is None:
        return _verdict(s, LinkStatus.ERROR, "bad_response", "The check produced no HTTP answer.")
    return None


def _parking_host(url: str) -> str | None:
    host = _host(url)
    return next((p for p in _PARKING_HOSTS if host == p or host.endswith("." + p)), None)


def _parking_host_hit(s: _Seen) -> str | None:
    """The domain-parking service the address redirected to, if any."""
    if not s.redirected:
        return None
    parker = _parking_host(s.final)
    return None if parker is None or parker == _parking_host(s.obs.url) else parker


def _rule_parking_host(s: _Seen) -> Verdict | None:
    parker = _parking_host_hit(s)
    if parker is None:
        return None
    return _verdict(s, LinkStatus.EXPIRED, "parked_domain",
                    f"Redirects to {parker}, a domain-parking or domain-sale service.")


def _login_hit(s: _Seen) -> tuple[str, str] | None:
    """("url", the sign-in address it redirected to) or ("title", the
    sign-in title it shows), or None."""
    landed = 200 <= s.status < 300 or s.status in (401, 403)
    if s.redirected and landed and _is_login(s.final) \
            and not _is_login(s.obs.url):
        return "url", s.final
    if 200 <= s.status < 300 and not s.present:
        title = _title_hit(s.titles, _LOGIN_TITLE)
        if title is not None:
            return "title", title
    return None


def _rule_login(s: _Seen) -> Verdict | None:
    hit = _login_hit(s)
    if hit is None:
        return None
    where, what = hit
    if where == "url":
        return _verdict(s, LinkStatus.BLOCKED, "login_required",
                        f"Redirects to a sign-in page ({_u(what)}); the item may need a "
                        "subscription or an account.")
    return _verdict(s, LinkStatus.BLOCKED, "login_required",
                    f"The page asks to sign in (its title is {_q(what)}).")


def _is_login(url: str) -> bool:
    return bool(_LOGIN_PATH.search(_path_query(url)) or _LOGIN_HOST.match(_host(url)))


def _challenge_vendor(s: _Seen) -> str | None:
    """The bot wall's maker ("" when unknown), or None when there is no bot wall."""
    haystack = s.title_text + " \n " + s.text
    if s.strong_ok or s.status in _CHALLENGE_STATUSES and not s.present:
        for vendor, pattern in _CHALLENGE_STRONG:
            if pattern.search(haystack):
                return vendor
    refused = s.status in _CHALLENGE_STATUSES
    server = s.obs.server.lower()
    if s.status in (403, 429) and "ray id" in s.text and "cloudflare" in server + s.text:
        return "Cloudflare"  # a firewall rule (error 1020...), not the origin's own 403
    if s.status in (403, 429) and "akamai" in server and "reference #" in s.text:
        return "Akamai"  # its denials; its 503 "Zero size object" is the origin failing
    if (refused or s.weak_ok) and not s.present and _CHALLENGE_WEAK.search(haystack):
        return ""
    return None


def _challenge_hit(s: _Seen) -> str | None:
    """The bot wall's maker ("" when unknown) when one answered, else None."""
    if s.status in (404, 410) or s.status in _GATEWAY_STATUSES:
        return None
    return _challenge_vendor(s)


def _rule_bot_challenge(s: _Seen) -> Verdict | None:
    vendor = _challenge_hit(s)
    if vendor is None:
        return None
    who = f" ({vendor})" if vendor else ""
    return _verdict(s, LinkStatus.BLOCKED, "bot_challenge",
                    f"A bot check{who} answered {s.status} instead of the page; "
                    "a person should open it in a browser.")


def _rule_placeholder(s: _Seen) -> Verdict | None:
    if not 200 <= s.status < 300:
        return None
    site = quirks.placeholder_site(s.final, s.obs.title, s.obs.meta_title)
    if site is None:
        return None
    return _verdict(s, LinkStatus.BLOCKED, "video_unavailable",
                    f"{site} served its empty page (title {_q(s.obs.title.strip())}) instead of "
                    "the video: it was removed or made private, or the automated check was "
                    "refused; a person should open it in a browser.")


def _rule_quirk_masked(s: _Seen) -> Verdict | None:
    known = quirks.rewrite(s.obs.url)
    if known is None or s.status not in known.quirk.masks:
        return None
    return _verdict(s, LinkStatus.MOVED, "known_move",
                    f"The old address form answered {_phrase_of(s.status)}. "
                    f"{known.quirk.why}; use {_u(known.url)}.",
                    _with_fragment(known.url, s.obs.url))


_BLOCKED_STATUSES = frozenset({401, 402, 403, 406, 418, 451, 999})


def _rule_status(s: _Seen) -> Verdict | None:
    code = s.status
    if 200 <= code < 300:
        return None
    said = f"The server answered {_phrase_of(code)}"
    if code in (404, 410):
        where = f" at {_u(s.final)}" if s.redirected else ""
        return _verdict(s, LinkStatus.EXPIRED, f"http_{code}", f"{said}{where}.")
    if code == 429:
        wait = f" (it asked to wait {_wait_words(s.obs.retry_after)})" if s.obs.retry_after else ""
        return _verdict(s, LinkStatus.BLOCKED, "rate_limited",
                        f"{said} after {s.obs.attempts} attempt{'' if s.obs.attempts == 1 else 's'}{wait}.")
    if code == 999:
        return _verdict(s, LinkStatus.BLOCKED, "http_999",
                        "The site answered 999, LinkedIn's refusal of automated requests; "
                        "a person should check it in a browser.")
    if code in _BLOCKED_STATUSES:
        return _verdict(s, LinkStatus.BLOCKED, f"http_{code}",
                        f"{said}; it refuses automated checks or needs an account.")
    if 300 <= code < 400:
        return _verdict(s, LinkStatus.ERROR, f"http_{code}",
                        f"{said} without a usable redirect target.")
    if 520 <= code <= 527 and "cloudflare" in s.obs.server.lower():
        said += " (Cloudflare could not get an answer from the site's own server)"
    return _verdict(s, LinkStatus.ERROR, f"http_{code}", f"{said}.")


def _parked_hit(s: _Seen) -> str | None:
    """The parking or domain-sale words the page says, weighed against its title."""
    if s.present:
        return None
    hit = _phrase(_PARKED_TITLE, s.title_text)
    if hit is None and s.strong_ok:
        hit = _phrase(_PARKED_STRONG, s.title_text, s.text)
    if hit is None and s.weak_ok:
        hit = _phrase(_PARKED_WEAK, s.title_text, s.text)
    return hit


def _rule_parked_wording(s: _Seen) -> Verdict | None:
    hit = _parked_hit(s)
    if hit is None:
        return None
    return _verdict(s, LinkStatus.EXPIRED, "parked_domain",
                    f"The domain appears parked or for sale (the page says {_q(hit)}).")


def _rule_expired_notice(s: _Seen) -> Verdict | None:
    hit = _phrase(_EXPIRED_STRONG, s.title_text, s.text)
    if hit is None and s.weak_ok:
        hit = _phrase(_EXPIRED_WEAK, s.title_text, s.text)
    if hit is None:
        return None
    return _verdict(s, LinkStatus.EXPIRED, "expired_notice",
                    f"The page says {_q(hit)}.")


def _soft404_hit(s: _Seen) -> tuple[str, str] | None:
    """("title", its error title), ("url", the error address it redirected
    to) or ("text", the error words it says), or None."""
    title = _title_hit(s.titles, _ERROR_TITLE)
    if title is not None:
        return "title", title
    if s.redirected and _ERROR_URL.search(_path_query(s.final)) \
            and not _ERROR_URL.search(_path_query(s.obs.url)):
        return "url", s.final
    if not s.strong_ok:
        return None
    hit = _phrase(_SOFT404_STRONG, s.text)
    if hit is None and s.weak_ok:
        hit = _phrase(_SOFT404_WEAK, s.text)
    return None if hit is None else ("text", hit)


def _rule_soft404_wording(s: _Seen) -> Verdict | None:
    hit = _soft404_hit(s)
    if hit is None:
        return None
    where, what = hit
    if where == "title":
        return _verdict(s, LinkStatus.EXPIRED, "soft_404",
                        f"The page answers {s.status} but its title is {_q(what)}.")
    if where == "url":
        return _verdict(s, LinkStatus.EXPIRED, "soft_404", f"Redirects to an error page ({_u(what)}).")
    return _verdict(s, LinkStatus.EXPIRED, "soft_404",
                    f"The page answers {s.status} but reads like an error page ({_q(what)}).")


def _searches_for_itself(cited: str, final: str) -> bool:
    """The final URL searches for the words of the cited URL's last segment
    (/lenabasum-trial -> /search?q=lenabasum+trial): a CMS turning its 404
    into a site search. A cited search or listing is not an item."""
    if _is_listing(cited):
        return False
    segments = _trimmed(_split(cited)[2])
    if not segments:
        return False
    wanted = set(_TOKEN.findall(segments[-1].lower().rsplit(".", 1)[0]))
    asked = {t for k, v in _split(final)[3] if k.lower() in _SEARCH_PARAMS
             for t in _TOKEN.findall(v.lower())}
    return bool(wanted) and len(wanted & asked) * 2 >= len(wanted) + 1


def _rule_redirect_to_home(s: _Seen) -> Verdict | None:
    if not s.redirected or _is_home(s.obs.url):
        return None
    if _is_home(s.final):
        host = _host(s.final)
        whose = "the site's" if _bare_host(host) == _bare_host(_host(s.obs.url)) else f"{host}'s"
        return _verdict(s, LinkStatus.EXPIRED, "redirect_to_home",
                        f"Redirects to {_u(s.final)}, {whose} home page.")
    _, _, original, _ = _split(s.obs.url)
    _, _, landed, _ = _split(s.final)
    original, landed = _trimmed(original), _trimmed(landed)
    searched = any(k.lower() in _SEARCH_PARAMS for k, _ in _split(s.final)[3])
    if _is_listing(s.final) and len(landed) < len(original) and (len(original) >= 2 or searched):
        return _verdict(s, LinkStatus.EXPIRED, "redirect_to_home",
                        f"Redirects to {_u(s.final)}, a listing or search page, not the cited item.")
    if searched and _searches_for_itself(s.obs.url, s.final):
        return _verdict(s, LinkStatus.EXPIRED, "redirect_to_home",
                        f"Redirects to {_u(s.final)}, a search for the cited address's own words: "
                        "the site no longer has the item.")
    same_site = _bare_host(_host(s.final)) == _bare_host(_host(s.obs.url))
    if same_site and landed and original[: len(landed)] == landed \
            and len(landed) <= len(original) - ANCESTOR_MIN_DROP:
        return _verdict(s, LinkStatus.EXPIRED, "redirect_to_home",
                        f"Redirects to {_u(s.final)}, a section page above the cited item.")
    return None


def _text_similarity(a: str, b: str) -> float:
    a, b = a[:TEXT_COMPARE_CHARS], b[:TEXT_COMPARE_CHARS]
    if not a or not b:
        return 0.0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < PROBE_TEXT_SIMILARITY or matcher.quick_ratio() < PROBE_TEXT_SIMILARITY:
        return 0.0
    return matcher.ratio()


def _probe_evidence(s: _Seen) -> str | None:
    p, o = s.probe, s.obs
    if p is None or p.error_kind is not None or not 200 <= (p.http_status or 0) < 300:
        return None
    if o.content_hash and o.content_hash == p.content_hash:
        return "it is byte for byte the page the site serves for an address that does not exist"
    probe_final = _final_url(p)
    if s.redirected and (p.redirects or not _same_page(probe_final, p.url)) \
            and _same_page(probe_final, s.final):
        return f"an address that does not exist redirects to the same place ({_u(s.final)})"
    if _clean(o.title) and _clean(o.title) == _clean(p.title) \
            and _text_similarity(s.text, _lower_text(p.text)) >= PROBE_TEXT_SIMILARITY:
        return "it is the same page the site serves for an address that does not exist"
    return None


def _probe_may_decide(s: _Seen) -> bool:
    """Whether the probe's answer can make this link a soft 404: not for a
    page showing the cited item, nor for a home page (its own address)."""
    return not (s.present or _is_home(s.obs.url))


def _rule_soft404_probe(s: _Seen) -> Verdict | None:
    if not _probe_may_decide(s):
        return None
    why = _probe_evidence(s)
    if why is None:
        return None
    return _verdict(s, LinkStatus.EXPIRED, "soft_404", f"The page answers {s.status} but {why}.")


def _rule_drift(s: _Seen) -> Verdict | None:
    if s.cited_long and (s.score is None or s.score >= DRIFT_THRESHOLD):
        return None  # the cited item is there: no need to weigh the titles
    evidence = [t for t in s.titles if is_specific_title(t)]
    if not evidence:
        return None
    if s.cited_long:
        return _verdict(s, LinkStatus.DRIFTED, "title_mismatch",
                        f"The page's title is now {_q(evidence[0])}, not the cited {_q(s.cited)}.")
    baseline = s.previous.last_ok_title if s.previous else ""
    if not baseline or not is_specific_title(baseline):
        return None
    if max(titles_match(baseline, t) for t in s.titles) >= DRIFT_THRESHOLD:
        return None
    return _verdict(s, LinkStatus.DRIFTED, "content_changed",
                    f"The page's title changed from {_q(baseline)} to {_q(evidence[0])} "
                    "since it was last checked ok.")




def _without_added_noise(target: str, cited: str) -> str:
    """`target` without the tracking and session parameters the cited URL did
    not have: a 301 that only adds ?utm_source=... or ;jsessionid=... moves
    nothing, and such a URL must never be suggested to an editor."""
    try:
        parts = urlsplit(target)
    except ValueError:
        return target
    had = {k.lower() for k, _ in _split(cited)[3]}
    path = parts.path if PATH_SESSION.search(cited) else PATH_SESSION.sub("", parts.path)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    # Added by the redirect, any "sid" is the visit's (the cited URL had none).
    kept = [(k, v) for k, v in pairs
            if k.lower() in had or not (_TRACKING.match(k.lower()) or SESSION_KEY.fullmatch(k)
                                        or k.lower() == "sid")]
    if path == parts.path and len(kept) == len(pairs):
        return target
    query = urlencode(kept) if len(kept) != len(pairs) else parts.query
    return urlunsplit(parts._replace(path=path, query=query))


def _without_user_part(url: str) -> str:
    """`url` without a user part: in "http://pubmed.ncbi.nlm.nih.gov@evil.example.net/1"
    the host is evil.example.net, and a redirect chosen by whoever runs it
    must not dress up the address the report tells an editor to paste."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


_PASSING_4XX = frozenset({408, 429})
"""Client errors that say "not now" (request timeout, too many requests), not "not here"."""


def gone_here(http_status: int | None) -> bool:
    """Whether an HTTP status says "not here" (a 4xx: gone, never there,
    refused), rather than "not now" (408, 429) or anything that answered.
    Of a watched page (`monitor.pages`) and of a cited link (the report)."""
    return http_status is not None and 400 <= http_status < 500 and http_status not in _PASSING_4XX


def permanent_target(obs: Observation) -> str | None:
    """Where the leading run of permanent hops leads, or None when there is none
    (or when it only adds a slash, tracking or session parameters)."""
    if obs.redirects and _same_page(_final_url(obs), obs.url):
        return None  # sent back to the cited address (a cookie or consent interstitial)
    target: str | None = None
    for hop in obs.redirects:
        nxt = _join(hop.url, hop.location)
        if hop.status in (301, 308) or _is_https_upgrade(hop.url, nxt):
            target = nxt
        else:
            break
    if target is None:
        return None
    target = _without_added_noise(_without_user_part(target), obs.url)
    normalised = quirks.rewrite(target)
    if normalised is not None:
        target = normalised.url
    # Compared after the quirk: a 301 to the old form of the cited address
    # (https -> http, new PubMed -> old) normalises back to the cited URL.
    if _same_page(target, obs.url):
        return None
    return _with_fragment(target, obs.url)


def _rule_known_move(s: _Seen) -> Verdict | None:
    known = quirks.rewrite(s.obs.url)
    if known is None:
        return None
    suggested = _with_fragment(known.url, s.obs.url)
    chained = permanent_target(s.obs)
    if chained is not None and _same_page(chained, suggested):
        return _verdict(s, LinkStatus.MOVED, "permanent_redirect",
                        f"Moved permanently to {_u(chained)} ({known.quirk.why}); update the link.",
                        chained)
    if chained is not None and not quirks.is_persistent_resolver(s.obs.url):
        return None  # a move the site itself announces beats the table
    return _verdict(s, LinkStatus.MOVED, "known_move",
                    f"{known.quirk.why}; update the link to {_u(suggested)}.", suggested)


def _rule_redirects(s: _Seen) -> Verdict | None:
    if not s.redirected:
        return None
    target = permanent_target(s.obs)
    if target is not None and quirks.is_persistent_resolver(s.obs.url):
        return _verdict(s, LinkStatus.OK, "resolver_redirect",
                        f"The identifier resolves to {_u(s.final)}; keep the identifier link.")
    if target is not None:
        how = "Now served over HTTPS at" if _is_https_upgrade(s.obs.url, target) \
            else "Moved permanently to"
        return _verdict(s, LinkStatus.MOVED, "permanent_redirect",
                        f"{how} {_u(target)}; update the link.", target)
    code = s.obs.redirects[0].status if s.obs.redirects else None
    how = "Redirects" if code in (301, 308) else "Redirects temporarily"  # a slash, a tracking parameter
    first = f" ({code})" if code else ""
    return _verdict(s, LinkStatus.OK, "temporary_redirect",
                    f"{how}{first} to {_u(s.final)}; the link is fine as it is.")


_RULES: tuple[Callable[[_Seen], Verdict | None], ...] = (
    _rule_error_kind,
    _rule_no_answer,
    _rule_parking_host,
    _rule_login,
    _rule_bot_challenge,
    _rule_quirk_masked,
    _rule_status,
    _rule_parked_wording,
    _rule_expired_notice,
    _rule_placeholder,
    _rule_soft404_wording,
    _rule_redirect_to_home,
    _rule_soft404_probe,
    _rule_drift,
    _rule_known_move,
    _rule_redirects,
)


@dataclass(frozen=True, slots=True)
class StandIn:
    """What answered 200 in a page's place (`stand_in`)."""

    reason: str
    """"parked_domain", "soft_404", "login_required" or "bot_challenge": the
    reasons a cited link gets for the same answer."""
    evidence: str
    """What shows it, in words: "it says 'this domain may be for sale'", "its
    title is 'Page not found'", "it redirects to sedoparking.com", and for a
    bot wall its maker ("Cloudflare") or ""."""


SHORT_ERROR_PAGE_WORDS = 60
"""An error page's own words (its menu's links aside) are a few dozen: a
watched page's text says it is one only when it is that short (`stand_in`)."""


def stand_in(obs: Observation, *, title: str = "", headings: Sequence[str] = (),
             own_words: int | None = None) -> StandIn | None:
    """Whether a 2xx answer is something standing in for the page rather than
    the page: a domain-parking page (the domain lapsed), an error page served
    as 200 (a soft 404), a sign-in page or a bot wall; None when it may be
    the page.

    The rules that judge a cited link's answer (3, 4, 5, 8 and 10), not a
    copy of them: a watched page whose domain lapsed read its parking page's
    advertising links as the page's new links, every cited link "removed".
    `title` is what the page was called when last read: a page still
    showing it is the page, and parking or error words in its text are then
    ignored (an entry about a domain sale), as for a cited title.

    An error page is known by its title, its first headings (`headings`)
    or an error address; by its text only when it says so in a sentence
    ("the page you requested could not be found"), never a bare "page not
    found", and holds few words of its own (`own_words`, the text's words
    when not given). A page restructured by its editors, with a short new
    title and a footer asking to "report a page not found", was an error
    page every week (review 10 #2): the link checker's bare phrases are
    evidence for a cited article, not for the site's own page."""
    seen = _evidence(obs, title, None, None)
    if not 200 <= seen.status < 300:
        return None
    parker = _parking_host_hit(seen)
    if parker is not None:
        return StandIn("parked_domain", f"it redirects to {parker}, a domain-parking or domain-sale service")
    login = _login_hit(seen)
    if login is not None:
        where, what = login
        return StandIn("login_required", f"it redirects to {_u(what)}" if where == "url"
                       else f"its title is {_q(what)}")
    vendor = _challenge_hit(seen)
    if vendor is not None:
        return StandIn("bot_challenge", vendor)
    parked = _parked_hit(seen)
    if parked is not None:
        return StandIn("parked_domain", f"it says {_q(parked)}")
    error = _stand_in_error(seen, headings, len(obs.text.split()) if own_words is None else own_words)
    if error is not None:
        where, what = error
        return StandIn("soft_404", f"its {where} is {_q(what)}" if where in ("title", "heading")
                       else f"it redirects to {_u(what)}" if where == "url" else f"it says {_q(what)}")
    return None


_MOVED_NOTE = re.compile(r"\bmoved\b", re.IGNORECASE)


def _stand_in_error(s: _Seen, headings: Sequence[str], own_words: int) -> tuple[str, str] | None:
    """`_soft404_hit` for a watched page: its title, a heading, an error
    address, or the sentence of a short page (see `stand_in`)."""
    hit = _soft404_hit(s)
    if hit is not None and hit[0] != "text":
        return hit
    # "Sorry, this page has moved" over a page whose entries went elsewhere
    # is an editor's note on the page, not an error page's heading.
    heading = _title_hit(tuple(h for h in headings if h.strip() and not _MOVED_NOTE.search(h)), _ERROR_TITLE)
    if heading is not None:
        return "heading", heading
    if not s.strong_ok or own_words > SHORT_ERROR_PAGE_WORDS:
        return None
    said = _phrase(_SOFT404_SAID, s.text)
    return None if said is None else ("text", said)


def classify(obs: Observation, *, title: str = "", probe: Observation | None = None,
             previous: UrlState | None = None) -> Verdict:
    """Judge one observation.

    `title` is the citation entry's title (or the anchor text); `probe` the
    observation of a random nonexistent sibling path on the same host;
    `previous` the URL's state from earlier runs (its `last_ok_title` is the
    drift baseline when there is no usable cited title).
    """
    verdict = _judge(_evidence(obs, title, probe, previous))
    assert verdict is not None
    return verdict


def classify_unprobed(obs: Observation, *, title: str = "", previous: UrlState | None = None
                      ) -> Verdict | None:
    """`classify` with no soft-404 probe, when no probe's answer could change
    the verdict; None when one could (then probe the site and `classify`).

    Why: a probe is a request for a page that should not exist, one per
    site. Asked at every site's first 2xx answer, it was 298 of the bench's
    6,039 requests, for 46 links whose verdict it could change: a page
    showing its cited title, an earlier rule's verdict (a 404, an error
    page's wording, a redirect to the home page) and a home page never need
    it. The verdict is the same as `classify`'s: the rules run in the same
    order and stop only where the probe's rule would run."""
    return _judge(_evidence(obs, title, None, previous), unprobed=True)


def _judge(seen: _Seen, *, unprobed: bool = False) -> Verdict | None:
    """The first rule's verdict; with `unprobed`, None where the probe's rule
    could decide (the probe is not known yet)."""
    for rule in _RULES:
        if unprobed and rule is _rule_soft404_probe and _probe_may_decide(seen):
            return None
        verdict = rule(seen)
        if verdict is not None:
            return _with_notice(verdict, seen.obs)
    answered = f"The page answered {_phrase_of(seen.status)}."
    return _with_notice(_verdict(seen, LinkStatus.OK, "ok", answered), seen.obs)


def _with_notice(verdict: Verdict, obs: Observation) -> Verdict:
    """The verdict with what the page says about the cited work (a retraction),
    which never changes its status."""
    found = notices.notice_for(obs, verdict.status)
    if found is None:
        return verdict
    return replace(verdict, notice=found.kind, notice_detail=found.detail)


# -- state between runs -----------------------------------------------------------------------


def _transitions(recent: tuple[str, ...]) -> int:
    """Changes between failing and not failing; `skipped` and unknown entries ignored."""
    flags = []
    for value in recent:
        try:
            status = LinkStatus(value)
        except ValueError:
            continue
        if status is not LinkStatus.SKIPPED:
            flags.append(status.is_failing)
    return sum(1 for a, b in zip(flags, flags[1:]) if a != b)


def next_state(previous: UrlState | None, verdict: Verdict, obs: Observation) -> UrlState:
    """The URL's state after one more observation.

    - `strikes` counts consecutive failing observations (expired, error,
      blocked); ok, moved and drifted reset it to 0.
    - `failing_since` is the check time of the first failure of the current
      streak; None when not failing.
    - `last_ok_at` moves on every non-failing observation.
    - `last_ok_title` (the drift baseline) is the page's scholarly title, else
      its <title>, taken when the link is ok or moved (a permanently moved
      link would otherwise never get a baseline) and after a `content_changed`
      drift, so a renamed navigation target is reported once, not every run.
      An empty title never erases the baseline.
    - `recent` keeps the last RECENT_WINDOW statuses, newest last; `flapping`
      is True when they change between failing and not failing at least
      FLAP_TRANSITIONS times (ok, error, ok, error is three changes).
    - `status_since` is the check time of the first observation of the
      current status (a new status starts it again).
    - `checks` and `failures` count the observations and the failing ones
      since `counted_since` (the first counted).
    - A `skipped` verdict is not an observation of the target: the streak and
      the baselines are kept as they were.
    """
    prev = previous or UrlState(url=obs.url, status=verdict.status)
    status = verdict.status
    recent = (*prev.recent, str(status))[-RECENT_WINDOW:]
    # The changes are gathered, then applied by one `replace` (5 us each, a
    # fifth of this function's time when it took three).
    changes: dict[str, Any] = dict(
        url=obs.url, status=status, reason=verdict.reason,
        last_checked_at=obs.checked_at, first_seen_at=prev.first_seen_at or obs.checked_at,
        recent=recent, flapping=_transitions(recent) >= FLAP_TRANSITIONS,
    )
    if status is LinkStatus.SKIPPED:
        return replace(prev, **changes)
    changes.update(checks=prev.checks + 1, failures=prev.failures + status.is_failing,
                   counted_since=prev.counted_since or obs.checked_at)
    if previous is None or prev.status is not status or prev.status_since is None:
        changes["status_since"] = obs.checked_at
    if status.is_failing:
        streak = prev.strikes > 0 and prev.failing_since is not None
        return replace(prev, **changes, strikes=prev.strikes + 1,
                       failing_since=prev.failing_since if streak else obs.checked_at)
    seen_title = (obs.meta_title or obs.title).strip()
    takes_title = status in (LinkStatus.OK, LinkStatus.MOVED) or verdict.reason == "content_changed"
    return replace(prev, **changes, strikes=0, failing_since=None, last_ok_at=obs.checked_at,
                   last_ok_title=seen_title if takes_title and seen_title else prev.last_ok_title)


def is_confirmed(state: UrlState, now: dt.datetime,
                 confirm_after: dt.timedelta = CONFIRM_AFTER) -> bool:
    """A confirmed failure failed on several observations over at least `confirm_after`.

    One failure is only suspected: sites go down for an hour, bot walls come
    and go. Naive datetimes are taken as UTC.
    """
    if not state.status.is_failing or state.strikes < CONFIRM_MIN_STRIKES:
        return False
    if state.failing_since is None:
        return False
    return as_utc(now) - as_utc(state.failing_since) >= confirm_after
