"""`Audit` -> the HTML mail, its plain-text twin, JSON, and saved files.

The saved full report is the same template rendered for a browser
(`render_page`): every problem and link, never summarised, its CSS left in
the `<style>` block. The mail is what the next paragraph constrains.

Mail clients are the constraint: Gmail keeps `<style>` only in `<head>`,
drops the block on any error and clips messages over 102 KB, Outlook lays out
only tables. So the HTML is table-based, its CSS is inlined by css-inline
(keeping `@media` for phones), it has no scripts, images or web fonts, and
when a site has so many problems that the full report would be clipped the
mail becomes a summary pointing at the saved full report.

Everything in an audit came from the web (titles, anchor text, section
headings, URLs), so the Jinja environment autoescapes, nothing from the web
is ever marked safe, and a URL becomes an `href` only when it is http(s).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from html import unescape as html_unescape
from pathlib import Path
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import css_inline
import jinja2
from markupsafe import Markup, escape

try:
    import orjson
except ImportError:  # optional: only the speed of writing the JSON report depends on it
    orjson = None  # type: ignore[assignment]

from monitor.accept import accepted_head, accepted_words
from monitor.output import INVISIBLE, one_line, where_parts
from monitor.types import LinkResult, LinkStatus, PageRecord, RunInfo, as_utc, iso_moment, read_no_page, \
    whole_second
from monitor.wording import site_cut_words
from reports import wording
from reports.audit import (
    SUMMARY_TIERS,
    Audit,
    ContentIssue,
    Counts,
    Fixed,
    HostMove,
    OtherLinks,
    Problem,
    in_summary_order,
    page_slug,
    page_slugs,
    summary_order,
    summary_reading_keys,
    summary_tier,
)
from reports.files import write_all, write_atomic

__all__ = [
    "MAX_EMAIL_BYTES",
    "ForeignFolder",
    "SavedReport",
    "Source",
    "is_web_url",
    "render_email",
    "render_html",
    "render_index",
    "render_json",
    "render_page",
    "render_text",
    "report_basename",
    "save_report",
]

MAX_EMAIL_BYTES = 100_000
"""Gmail clips a message's HTML beyond 102 KB; stay clear of it."""

PAGES_SHOWN = 20
"""Rows of the saved report's Pages table shown open; the others are in a
<details> (a find in page opens it): at 500 pages the whole table stood
12,000 px tall between the counts and the first problem."""

EVERYTHING_ELSE_OPEN = 1_000
"""Links the saved report's "Everything else" shows unfolded; past it they
are in a closed <details> (find in page, and a link to a page's `#ok-...`,
open it in Chromium). At 100,000 links its 89,000 working links were half
of the 23 MB file, and Chromium took 6.6-6.8 s to lay the report out with
them open, 3.1-3.5 s with them folded (bench/README.md). A page with no
rows elsewhere has its `#page-...` on a line above the fold
(`_everything_else_fold`), which every browser shows."""

CONCURRENT_WRITE_LINKS = 5_000
"""From this many links the saved report's JSON is written by a forked child
while the HTML is rendered (`reports.files`): 0.5 s of a 4.5 s report at
100,000 links. Below it a fork costs more than it saves (the test suite's
pytest process is big, its reports small)."""

SUMMARY_FLOOR = 10
"""Rows a summary shows when not even its counts alone fit the budget (a
content audit of thousands of notes): the message is clipped anyway, and
these rows are what its reader needs most."""

SUMMARY_FIRST_PROBE = 10
"""The summary's second try (the first shows no row): from the two sizes,
the bytes a row takes, hence how many rows fit (`_most_that_fit`)."""

MIME_OVERHEAD = 1_000
"""Bytes a message adds to its two parts (headers, MIME boundaries; the
text part's encoding when not ASCII adds more): the first guess of how
much of `MAX_EMAIL_BYTES` the parts may take. Only a guess: whether a
rendering fits is always measured on the built message."""

PROBLEM_MIN_BYTES = 400
"""Fewer bytes than any problem takes in the mail's HTML (its card, inlined
CSS and links; at least ~630 in practice, pinned by a test): with more
problems than the budget allows at this rate, the full and compact views
cannot fit and are not rendered (at 10,000 problems each cost seconds)."""

_TEMPLATES = Path(__file__).parent / "templates"
_INLINER = css_inline.CSSInliner(keep_style_tags=False, keep_link_tags=False,
                                 keep_at_rules=True, load_remote_stylesheets=False)
_REPORT_NAME = re.compile(r"^report-(\d{4}-\d{2}-\d{2})-run-(\d+)\.html$")
_UNSAFE_IN_URL = re.compile(r"[\s\x00-\x1f\x7f]")
"""Whitespace (as `str.isspace` means it) and control characters."""
_PLAIN_WEB_URL = re.compile(r"https?://[!$-.0-9:;=A-Z_a-z~]+(?:[/?#]|\Z)", re.IGNORECASE | re.ASCII)
"""The common case decided without `urlsplit` (3 us each, 100,000 links a
report): http(s) and a non-empty host part of plain ASCII characters. The
rest (brackets, "@", non-ASCII hosts) goes through `urlsplit`."""


@dataclass(frozen=True, slots=True)
class SavedReport:
    html: Path
    json: Path
    index: Path


@dataclass(frozen=True, slots=True)
class Source:
    """The database a report is made from, as a saved report names it.

    Only file names, not paths: the reports are published (`[report]
    base_url`), and the server's folders are nobody's business (the
    endpoint's 503 keeps them out too). `runs` (run id -> start) and
    `mail` (run id -> messages delivered, waiting, refused for good) are this database's,
    read when the folder is checked and the index rendered."""

    id: str
    file: str = ""
    config: str = ""
    runs: Mapping[int, dt.datetime] = field(default_factory=dict)
    mail: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    path: str = ""
    """The database's full path, for messages on this machine; never written."""
    site: str = ""
    """The site an index was made for (read back from index.html)."""
    outbox: int | None = None
    """Messages waiting in the outbox (`Store.outbox_size`, /healthz
    `outbox`) when the index is written; None: not known here."""

    def words(self) -> str:
        """"s3.db of trial.toml": how a report names its database to a person."""
        name = self.file or "a database"
        return f"{name} of {self.config}" if self.config else name


class ForeignFolder(Exception):
    """The folder holds reports (or an index) made from another database:
    writing there would replace them, or mix two histories in one index."""


def is_web_url(value: object) -> bool:
    """True for an absolute http(s) URL: the only kind we put in an href.

    `javascript:`, `data:` and scheme-relative tricks fail here and are shown
    as text; so are URLs with whitespace or control characters, which some
    clients would "repair" into something else.
    """
    if not isinstance(value, str) or not value:
        return False
    if _UNSAFE_IN_URL.search(value):
        return False
    if _PLAIN_WEB_URL.match(value):
        return True
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _short_url(url: str, limit: int = 70) -> str:
    """The URL without "https://", cut in the middle when very long.

    "http://" stays: an editor must see that a link moved only to https.
    """
    text = re.sub(r"^https://", "", url or "")
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: keep * 2 // 3] + "\u2026" + text[-(keep - keep * 2 // 3):]


def _clip(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _link_html(url: Any, text: Any = None) -> str:
    if not is_web_url(url):
        return f"<span>{escape(url)}</span>"
    if text:
        return f'<a href="{escape(url)}">{escape(text)}</a>'
    shown = _short_url(url)
    # cut in the middle: hovering shows the whole address, the one an
    # editor finds in the page's source (review 15 #6)
    title = f' title="{escape(url)}"' if len(shown) < len(url.removeprefix("https://")) else ""
    return f'<a href="{escape(url)}"{title}>{escape(shown)}</a>'


def link(url: Any, text: Any = None) -> Markup:
    """An `<a href>` for an http(s) URL, the URL as plain text otherwise.

    The one way a URL reaches the report. A Python function rather than a
    Jinja macro: a macro call costs ~20 us, and a report of 100,000 links
    shows some 120,000 URLs.
    """
    return Markup(_link_html(url, text))


def link_of(row: LinkResult | ContentIssue, confirmed: bool = False) -> Markup:
    """A row's link address: an `<a href>` as `link` gives it, but as text
    where a reader should not be sent (`wording.not_linked`: a parked
    domain, a private address, a broken certificate, a malformed address),
    saying so beside it and in its title. A `confirmed` failure adds a
    domain that no longer exists (`wording.NOT_LINKED_CONFIRMED`)."""
    url = row.url or ""
    why = wording.not_linked(row.reason if isinstance(row, LinkResult) else row.link_reason, confirmed)
    if not why:
        return link(url)
    return Markup(f'<span title="Shown as text, not as a link: {_escape(why)}">{_escape(url)}</span>'
                  f' <span class="mini">(not linked: {_escape(why)})</span>')


def not_linked_note(row: LinkResult | ContentIssue, confirmed: bool = False) -> str:
    """The text part's note beside an address the HTML shows as text
    (`link_of`): a mail client makes every address in plain text a link,
    so the reader is told there why not to follow it."""
    why = wording.not_linked(row.reason if isinstance(row, LinkResult) else row.link_reason, confirmed)
    return f" (not linked in the report: {why})" if why else ""


def _other_links(links: Iterable[LinkResult]) -> Markup:
    """The compact list of the links that ask nothing: ok ones as links, the
    rest (mailto, in-page jumps) as text with the reason they were skipped.
    A working link to a retracted or withdrawn article wears the notice's
    mark ("\u26a0 retracted:"), not the tick: the content audit lists it, and a
    green tick beside it read as "all is well with this citation".

    The same markup as `link()` gives (a test holds them together), built
    here rather than in the template because it is 85 % of a big site's
    links: 90,000 of 100,000.
    """
    items = []
    for l in links:
        if l.status == LinkStatus.OK:
            url = l.url
            label = (_clip(l.text, 50) if l.text else wording.bare_url(url)) or _short_url(url)
            mark = (f'<span class="mark">&#9888;&nbsp;{_escape(l.notice)}:</span>&nbsp;' if l.notice
                    else "&#10003;&nbsp;")
            if is_web_url(url):
                items.append(f'{mark}<a href="{_escape(url)}">{_escape(label)}</a>')
            else:
                items.append(f"{mark}<span>{_escape(url)}</span>")
        else:
            label = _clip(l.text, 40) if l.text else _clip(l.url, 40)
            items.append(f"&ndash;&nbsp;{_escape(label)} ({_escape(wording.skip_words(l.reason))})")
    return Markup("\u00a0\u00b7 ".join(items))


WRITTEN_CLIP = 120
"""An href as written is shown up to this many characters (a long query
string is still found by its start)."""


_Placed = Problem | Fixed | ContentIssue
"""A report row about one link of a page: each says where that link sits."""


def _where_text(row: _Placed) -> str:
    """"line 1234 · written as /img/x.png · in the style attribute of a <td>":
    where the editor finds the link in the page's source ("" if unknown)."""
    return " \u00b7 ".join(_where_phrases(row))


def _where_html(row: _Placed) -> Markup:
    """`_where_text` escaped, the href as written in <code>; one clipped
    (`WRITTEN_CLIP`) has its whole text in the <code>'s title."""
    written = _placed_link(row).written
    parts = []
    for part in _where_phrases(row):
        if part.startswith(_WRITTEN):
            shown = part[len(_WRITTEN):]
            title = f' title="{_escape(written)}"' if shown != written else ""
            parts.append(f"{_WRITTEN}<code{title}>{_escape(shown)}</code>")
        else:
            parts.append(_escape(part))
    return Markup(" &middot; ".join(parts))


_WRITTEN = "written as "


def _where_phrases(row: _Placed) -> list[str]:
    """`output.where_parts` of the row's link, the href as written clipped
    to WRITTEN_CLIP. A problem or a fixed link has its `LinkResult` (a
    fixed one as the previous report's run saw it); a content note carries
    its link's place fields under the same names, which are all
    `where_parts` reads."""
    link = _placed_link(row)
    written = _WRITTEN + link.written if link.written else None
    return [_WRITTEN + _clip(link.written, WRITTEN_CLIP) if part == written else part
            for part in where_parts(link, row.more_lines)]


def _placed_link(row: _Placed) -> LinkResult:
    """The row's link, or a content note itself: it carries its link's place
    fields under the same names."""
    return cast(LinkResult, row) if isinstance(row, ContentIssue) else row.link


DETAIL_CLIP = 400
"""A drifted link's detail is shown up to this many characters: classify
already quotes each title clipped (`QUOTE_CHARS`); this bounds the rest."""


def _detail(text: str) -> str:
    """The check's detail sentence ("The page's title is now '...', not the
    cited '...'") on one line, as the terminal prints it (`output.one_line`),
    and clipped: an editor judges from the mail whether it is another
    article or the same one retitled."""
    return _clip(one_line(text or ""), DETAIL_CLIP)


def _escape(text: str) -> str:
    """markupsafe's `escape` of a plain `str`, to the same characters."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&#39;").replace('"', "&#34;"))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.tests["web_url"] = is_web_url
    env.filters.update(
        short_url=_short_url,
        clip=_clip,
        date=wording.format_date,
        label=wording.status_label,
        badge=wording.badge_label,
        badge_key=wording.badge_key,
        skip_words=wording.skip_words,
        host=wording.host_of,
        bare_url=wording.bare_url,
        upfirst=wording.upfirst,
        other_links=_other_links,
        where=_where_html,
        detail=_detail,
        row_words=wording.without_not_rechecked,
        row_key=id,  # a row's key in `first_new_rows`
    )
    env.globals.update(plural=wording.plural, Status=LinkStatus, link=link, link_of=link_of,
                       not_linked_note=not_linked_note, page_not_rechecked=wording.PAGE_NOT_RECHECKED)
    return env


_ENV = _environment()


def _text_environment() -> jinja2.Environment:
    """Plain text is not HTML: escaping would print "&amp;" to the reader."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(_ENV.filters)
    env.filters["where"] = _where_text
    env.tests.update(_ENV.tests)
    env.globals.update(_ENV.globals)
    return env


_TEXT_ENV = _text_environment()


@dataclass(frozen=True, slots=True)
class _View:
    """How much of the audit one rendering shows (full, then ever shorter)."""

    mode: str
    """full | compact (everything else as counts) | summary (problems capped)"""
    problems: tuple[Problem, ...] = ()
    more: int = 0
    groups: tuple[tuple[str, tuple[Problem, ...]], ...] = ()
    """The summary's rows under their headings (`SUMMARY_TIERS`), as listed."""
    more_new: int = 0
    """Of `more`, the new rows not shown ..."""
    more_new_pages: int = 0
    """... and on how many pages they are."""
    bulk: bool = True
    """Shows the "One fix, many rows" lines (`Audit.bulk_fixes`): a mail
    shows them only where they fit beside the rows it would show without
    them (`_richest`), never in their place."""
    jumps: bool = True
    """The text part's rows to fix say "Open the entry on the page: URL" (the
    HTML part's link, review 15 #8). Some 145 bytes a row: a mail listing
    every problem leaves them out rather than summarise (`_richest`)."""

    @property
    def more_still(self) -> int:
        return self.more - self.more_new


def _whole_views(audit: Audit, budget: int | None = None) -> Iterator[_View]:
    """The renderings with every problem, richest first; with a `budget` in
    bytes of HTML, only if they might fit in it (at 10,000 problems each
    rendering costs seconds, and cannot fit)."""
    if budget is None or len(audit.problems) * PROBLEM_MIN_BYTES <= budget:
        yield _View("full")
        yield _View("compact")


def _summary_view(audit: Audit, order: Sequence[Problem], new_total: int, shown: int,
                  keys: Mapping[int, tuple[int, int, int]] | None = None) -> _View:
    """The summary of the first `shown` rows of `order` (`summary_order`:
    the new rows first), counting the new ones left out and their pages."""
    rows = in_summary_order(audit, order[:shown], keys)
    groups: list[tuple[str, tuple[Problem, ...]]] = []
    for p in rows:
        heading = SUMMARY_TIERS[summary_tier(p)]
        if groups and groups[-1][0] == heading:
            groups[-1] = (heading, groups[-1][1] + (p,))
        else:
            groups.append((heading, (p,)))
    left_new = order[shown:new_total]
    return _View("summary", tuple(rows), len(order) - len(rows), tuple(groups),
                 more_new=len(left_new), more_new_pages=len({p.link.page for p in left_new}))


def _most_that_fit(probe: Callable[[int], tuple[bool, int]], cap: int, goal: int) -> int | None:
    """The largest n in 0..cap for which `probe(n)` fits (None when not even
    0 does); `probe` gives (fits, size in bytes) and grows with n.

    A search that interpolates: 0 rows, then `SUMMARY_FIRST_PROBE`, give
    the bytes of a row; the next try is the count that should fill `goal`
    (the size that fits, estimated, then narrowed by every try), then the
    one after it, to know it does not fit. Rows differ in size, so a guess
    may miss by a row or two; after `GUESSES` guesses the rest is halving,
    which bounds the tries to 2 + GUESSES + log2(cap) whatever the sizes
    (4 at 10,000 problems: 0, 10, 45 and 44 rows, 0.2 s in all)."""
    fits, zero = probe(0)
    if not fits:
        return None
    lo, lo_size, hi, hi_size = 0, zero, cap + 1, -1
    n, guesses = min(cap, SUMMARY_FIRST_PROBE), 0
    while hi - lo > 1:
        fits, size = probe(n)
        if fits:
            lo, lo_size, goal = n, size, max(goal, size)
        else:
            hi, hi_size, goal = n, size, min(goal, size - 1)
        if hi_size >= 0:
            per_row = (hi_size - lo_size) / (hi - lo)
        else:
            per_row = (lo_size - zero) / lo if lo else 0.0
        if guesses < GUESSES and per_row > 0:
            guesses += 1
            n = min(hi - 1, max(lo + 1, lo + int((goal - lo_size) // per_row)))
        else:
            n = (lo + hi) // 2
    return lo


GUESSES = 4
"""Interpolated tries of `_most_that_fit` before it only halves."""


def _page_moves(audit: Audit) -> dict[str, str]:
    """Watched page -> the address its configured url now redirects to
    permanently: said under the page's title, for the webmaster (an owner's
    mail does not say it: the configuration is not the editor's to change)."""
    if audit.audience:
        return {}
    return {p.url: p.moved_to for p in audit.pages if p.moved_to}


def _headed_pages(audit: Audit, view: _View) -> set[str]:
    """The pages whose title this rendering shows as a heading (a summary shows none)."""
    if view.mode == "summary":
        return set()
    groups = (*audit.needs_fixing, *audit.needs_a_person, *audit.watching)
    return {g.url for g in groups} | {o.url for o in audit.everything_else}


PLACES = ("fix", "person", "watch", "again", "ok")
"""Where a page has rows in the saved report, in the report's order, as the
prefix of that group's id: "fix-<slug>" under Needs fixing, "person-",
"watch-" (Watching), "again-" (Answering again by themselves), "ok-"
(Everything else). The page's first group also holds "page-<slug>", the
page's own address in the report (`Audit.page_slugs`)."""


@dataclass(frozen=True, slots=True)
class PageRow:
    """One row of the saved report's "Pages" table."""

    url: str
    title: str
    owner: str
    slug: str
    fix: int = 0
    person: int = 0
    watch: int = 0
    new: int = 0


def slugs_of(audit: Audit) -> dict[str, str]:
    """Page URL -> its slug, for every page with a place in the report: the
    audit's own (made over the whole report's pages), else made here (an
    audit built by hand)."""
    places = _places(audit)
    if not audit.page_slugs:
        return page_slugs([*(p.url for p in audit.pages), *places])
    slugs = dict(audit.page_slugs)
    for url in places:
        if url not in slugs:  # a page known only from a previous run's row
            slugs[url] = f"{page_slug(url)}-{len(slugs)}"
    return slugs


def _places(audit: Audit) -> dict[str, list[str]]:
    """Page URL -> the `PLACES` where it has a group, in report order."""
    places: dict[str, list[str]] = {}
    for key, urls in (("fix", [g.url for g in audit.needs_fixing]),
                      ("person", [g.url for g in audit.needs_a_person]),
                      ("watch", [g.url for g in audit.watching]),
                      ("again", [f.link.page for f in audit.cleared_by_itself]),
                      ("ok", [o.url for o in audit.everything_else])):
        for url in urls:
            keys = places.setdefault(url, [])
            if key not in keys:
                keys.append(key)
    return places


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """"Topic 9" before "Topic 10": numbers as numbers. `isdecimal`, what
    `\\d` matches: "2019\u00b9" (a footnote mark, "\u2460") is a digit to
    `isdigit` but not to `int`, and a page so titled stopped the saved report."""
    return tuple((0, int(piece)) if piece.isdecimal() else (1, piece)
                 for piece in re.findall(r"\d+|\D+", text.casefold()))


def pages_table(audit: Audit, slugs: Mapping[str, str]) -> list[PageRow]:
    """The pages with rows to fix, to open in a browser or being watched:
    the most open problems (to fix and needs a person) first, then the most
    new ones, the most watched, then by name. The webmaster of 500 pages
    sees the worst first; an editor finds theirs by its name (the table is
    the first place it appears on the page, so a search for it lands here),
    or opens the link their own mail gives, at their page."""
    rows: dict[str, PageRow] = {}
    for key, groups in (("fix", audit.needs_fixing), ("person", audit.needs_a_person),
                        ("watch", audit.watching)):
        for g in groups:
            row = rows.get(g.url) or PageRow(g.url, g.title, g.owner, slugs[g.url])
            problems = g.problems
            new = sum(p.new for p in problems) if key != "watch" else 0
            rows[g.url] = replace(row, **{key: getattr(row, key) + len(problems)}, new=row.new + new)
    return sorted(rows.values(), key=lambda r: (-(r.fix + r.person), -r.new, -r.watch,
                                                 _natural(r.title), r.url))


def first_new_rows(audit: Audit, slugs: Mapping[str, str]) -> dict[int, str]:
    """id() of each page's first new row, in the report's order (to fix,
    then needs a person) -> its id in the saved report, "new-<slug>": the
    Pages table's "New" count lands on it (it led to "fix-<slug>", where
    "To fix" leads, and the page's first rows may be weeks old). One id a
    page, so 100,000 rows cost the report a few bytes a page."""
    firsts: dict[int, str] = {}
    seen: set[str] = set()
    for g in (*audit.needs_fixing, *audit.needs_a_person):
        if g.url in seen or g.url not in slugs:
            continue
        first = next((p for p in g.problems if p.new), None)
        if first is not None:
            firsts[id(first)] = f"new-{slugs[g.url]}"
            seen.add(g.url)
    return firsts


def _cleared_pages(audit: Audit) -> list[tuple[str, str, list[Fixed]]]:
    """(page, title, rows) of the links answering again by themselves, page
    by page in the report's page order, each page's rows as they come."""
    by_page: dict[str, list[Fixed]] = {}
    for f in audit.cleared_by_itself:
        by_page.setdefault(f.link.page, []).append(f)
    if len(by_page) < 2:
        return [(url, rows[0].page_title or url, rows) for url, rows in by_page.items()]
    order: dict[str, int] = {}
    for url in [*(p.url for p in audit.pages), *(l.page for l in audit.links)]:
        order.setdefault(url, len(order))
    pages = sorted(by_page, key=lambda url: order.get(url, len(order)))
    return [(url, by_page[url][0].page_title or url, by_page[url]) for url in pages]


def part_fragment(audit: Audit) -> str:
    """Where an owner's part links the full report: "#page-<slug>" (their
    page's first rows) for one page with rows; "#pages" (the table of
    pages) for several when one has a problem or a watched link; else ""
    (the top: nothing of theirs has an id there)."""
    places = _places(audit)
    if len(places) == 1:
        (url,) = places
        return f"#page-{slugs_of(audit)[url]}"
    if audit.needs_fixing or audit.needs_a_person or audit.watching:
        return "#pages"
    return ""


def _context(audit: Audit, view: _View, full_report: str | None, *,
             saved: bool = False, previous_saved: bool = True) -> dict[str, Any]:
    """What the templates read, for one view (`_base_context`, `_view_context`)."""
    base = _base_context(audit, full_report, saved=saved, previous_saved=previous_saved)
    return {**base, **_view_context(audit, view, base)}


def _view_context(audit: Audit, view: _View, base: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the context that depends on the view (the rest is made
    once for all the renderings a mail tries)."""
    moves = base["page_moves"]
    return {"view": view,
            "moves_unheaded": [p for p in audit.pages if p.url in moves
                               and p.url not in _headed_pages(audit, view)]}


def _base_context(audit: Audit, full_report: str | None, *,
                  saved: bool = False, previous_saved: bool = True) -> dict[str, Any]:
    """`full_report`: where the whole report is, an http(s) URL when
    `[report] base_url` publishes the reports, else the file's path on the
    server, which an editor can neither open nor change: a page owner's
    part then says once that the webmaster keeps the full report, and the
    webmaster's copy (`email.recipients`, no `audit.audience`) names the
    file and the key that would link it instead.

    `saved`: the saved report, beside index.html and the report it is
    compared with (relative links: dead in a mail, which gets them only
    from a published `full_report`); `previous_saved`: that report's file
    is there."""
    report_url = full_report if is_web_url(full_report) else None
    previous_name = (report_basename_of(audit.previous_run) + ".html"
                     if audit.previous_run is not None else "")
    if saved:
        index_url, previous_url = "index.html", previous_name if previous_saved else ""
    elif report_url:
        index_url = urljoin(report_url, "index.html")
        previous_url = urljoin(report_url, previous_name) if previous_name else ""
    else:
        index_url = previous_url = ""
    if report_url and audit.audience:
        # An owner's part: the full report at their page, not at its top
        # (one page among 500 is 3 million pixels down).
        report_url = report_url.split("#", 1)[0] + part_fragment(audit)
    slugs = slugs_of(audit) if saved else {}
    places = _places(audit) if saved else {}
    failures = {p.url: wording.page_failure(p.http_status, p.error) for p in audit.pages_failed}
    content_groups = [g for g in audit.content_audit.groups() if g[0] != "pages_failed"]
    content_count = audit.counts.content
    # the rows an editor fixes in the page's source: the text part gives
    # each the way to its entry, as the HTML does (review 15 #8)
    fixing = frozenset(id(p) for g in audit.needs_fixing for p in g.problems)
    not_rechecked = [p for p in audit.pages_failed
                     if any(not i.rechecked and p.url in (i.pages or (i.page,))
                            for _, _, issues in content_groups for i in issues)]
    return {
        "audit": audit,
        "c": audit.counts,
        "fixing_count": audit.fixing_count,
        "person_count": audit.person_count,
        "problem_total": len(audit.problems),
        "report_url": report_url,
        "report_kept": bool(full_report) and not report_url,
        # the webmaster's copy names the file: "kept by the webmaster" told
        # the webmaster that someone keeps it somewhere (review 13 #5)
        "report_saved_at": full_report if full_report and not report_url and not audit.audience else "",
        "index_url": index_url,
        "previous_url": previous_url,
        "page_failures": failures,
        "page_moves": _page_moves(audit),
        "content_groups": content_groups,
        "content_count": content_count,
        "content_not_rechecked": not_rechecked,
        "headline": headline(audit),
        "headline_html": _headline_html(audit, anchored=saved),
        "headline_text": headline_text(audit),
        "fix_order": wording.fix_order(*audit.fix_kinds()),
        "partial_note": wording.PARTIAL_RUN if audit.run.partial else "",
        "no_longer_lines": no_longer_lines(audit),
        "accepted_head": accepted_head(len(audit.accepted)),
        "accepted_rows": [((p.link.entry_title or p.link.text or p.link.url), p.link.url,
                           accepted_words(p.acceptance) if p.acceptance else "")
                          for p in audit.accepted],
        "period": _period(audit),
        "site_cuts": [site_cut_words(cut) for cut in audit.sites_not_audited],
        "subject_counts": count_phrase(audit),
        "multi_page": len({p.url for p in audit.pages} | {l.page for l in audit.links}) > 1,
        # the saved report's ids (a mail has none: several webmail clients drop them)
        "ids": slugs,
        "first_place": {url: keys[0] for url, keys in places.items()},
        **_everything_else_fold(audit, places),
        "pages_table": (table := pages_table(audit, slugs) if saved else []),
        "new_rows": first_new_rows(audit, slugs) if saved else {},
        "table_owners": any(r.owner for r in table) and not audit.audience,
        "pages_shown": PAGES_SHOWN,
        "watching_flaps": any(p.flaps is not None for g in audit.watching for p in g.problems),
        "to_fix": lambda p: id(p) in fixing,
        "fixing_suspected": (wording.SUSPECTED_FIXING if any(
            p.suspicion for g in audit.needs_fixing for p in g.problems) else ""),
        "cleared_pages": _cleared_pages(audit),
        "bulk_lines": bulk_lines(audit),
        "bulk_head": wording.BULK_HEAD,
        "rewrite_named": wording.REWRITE_HOSTS_NAMED,
        "bulk_intro": wording.BULK_INTRO,
        "bulk_more": wording.bulk_more_line(audit.bulk_fixes.more_links, audit.bulk_fixes.more_hosts,
                                            audit.bulk_fixes.more_rewrites),
    }


def _everything_else_fold(audit: Audit, places: Mapping[str, Sequence[str]]) -> dict[str, object]:
    """The size of "Everything else" and the line that stands for it when
    folded: an editor sees what it holds without opening 89,000 links.

    Folded, the pages with no rows elsewhere (`places`: the saved report's;
    a mail has none) get a line each above the fold ("else_listed": page,
    counts), which holds their "page-<slug>": an owner's mail and the
    README's addresses link it, and a browser that does not open a closed
    <details> for a link (Safari, older Firefox, a mail client's viewer)
    would land on nothing. One fold per page did it too, but Chromium took
    4.8-5.5 s to show 100,000 links instead of 3.4 s."""
    links = sum(len(o.links) for o in audit.everything_else)
    ok = sum(o.ok for o in audit.everything_else)
    parts = [wording.plural(ok, "link") + " that work" if ok != 1 else "1 link that works"]
    if links - ok:
        parts.append(f"{links - ok} not checked")
    pages = wording.plural(len(audit.everything_else), "page")
    listed = [(o, wording.page_link_counts(o.ok, len(o.links) - o.ok)) for o in audit.everything_else
              if places.get(o.url, ("",))[0] == "ok"] if links > EVERYTHING_ELSE_OPEN else []
    return {"else_links": links, "else_open": EVERYTHING_ELSE_OPEN,
            "else_summary": f"{' and '.join(parts)}, on {pages}",
            "else_listed": listed, "else_listed_urls": {o.url for o, _ in listed},
            "else_listed_head": wording.FOLD_PAGES_HEAD}


@dataclass(frozen=True, slots=True)
class BulkLine:
    """One line of "One fix, many rows": what to do once (`before`, the
    address, `after`), and where its first row is (the page's group under
    `place`: "#fix-<slug>" in the saved report; a mail, with no ids, names
    the page)."""

    before: str
    url: str
    """The address flagged on many pages ("" for a host's move), shown as
    `shown` (its path on the site's own host), a link unless the reader
    should not be sent there (`wording.not_linked`: `linked` False)."""
    shown: str
    after: str
    page: str
    page_title: str
    place: str
    linked: bool = True
    hosts: tuple[str, ...] = ()
    """Every site of a rewrite many sites made, listed under its line in the
    saved report: the line names three, and a search and replace scoped to
    these sites needs them all."""


def bulk_lines(audit: Audit) -> list[BulkLine]:
    """The audit's `bulk_fixes` as lines: the URLs on many pages, then the
    rewrites many sites made and the hosts whose links moved the same way,
    the most rows first (`BulkFixes.moves`)."""
    bulk = audit.bulk_fixes
    if not bulk:
        return []
    titles = {g.url: g.title for g in (*audit.needs_fixing, *audit.needs_a_person)}
    lines = []
    for s in bulk.links:
        before, shown, after = wording.shared_link_parts(s)
        lines.append(BulkLine(before, s.url, shown, after, s.first_page, titles.get(s.first_page, s.first_page),
                              s.place, linked=not wording.not_linked(s.reason)))
    for m in bulk.moves:
        said = wording.host_move_line(m) if isinstance(m, HostMove) else wording.shared_rewrite_line(m)
        lines.append(BulkLine(said, "", "", "", m.first_page, titles.get(m.first_page, m.first_page), m.place,
                              hosts=() if isinstance(m, HostMove) else m.hosts))
    return lines


RETRACTED_ANCHOR = "content-retracted"
"""The id of the retracted (and withdrawn) articles' group, which the
headline's "see ..." links to."""


def _headline_html(audit: Audit, *, anchored: bool = True) -> Markup:
    """`headline` escaped, its closing "see “Cited articles that were
    retracted”" a link to that group (on a ~9,000 px page, the words alone
    sent the reader scrolling). Not in a mail (`anchored` False): several
    webmail clients drop in-page anchors, and a link that does nothing
    reads as a dead one; the words say where the group is instead ("...
    retracted” below")."""
    text = headline(audit)
    notices = _noticed(audit)
    if not notices:
        return Markup(_escape(text))
    see = f"see \u201c{audit.content_audit.heading('retracted')}\u201d."
    if not text.endswith(see):
        return Markup(_escape(text))
    heading = _escape(audit.content_audit.heading("retracted"))
    if not anchored:
        return Markup(f"{_escape(text[: -len(see)])}see \u201c{heading}\u201d below.")
    return Markup(f'{_escape(text[: -len(see)])}see <a href="#{RETRACTED_ANCHOR}" class="hl">'
                  f"\u201c{heading}\u201d</a>.")


def headline_text(audit: Audit, where: str = "below") -> str:
    """`headline` for the text part, saying where the group is as the mail's
    HTML part does ("... retracted” below."): plain text has no link to
    follow, and the two parts of one message read differently (review 15 #5).
    The terminal's line after `check`, `run` and `demo` says "in the report"
    (verify 15 R7)."""
    text = headline(audit)
    see = f"see \u201c{audit.content_audit.heading('retracted')}\u201d."
    return f"{text[:-1]} {where}." if _noticed(audit) and text.endswith(see) else text


def render_html(audit: Audit, *, full_report: str | None = None,
                max_bytes: int | None = MAX_EMAIL_BYTES) -> str:
    """The report as mail-ready HTML, summarised if it would exceed `max_bytes`.

    `max_bytes=None` never summarises. The summary keeps the counts and as
    many problems as fit (`summary_order`), and says how many more there
    are and where the full report is. The saved report is `render_page`.
    """
    def fits(html: str, _: str) -> bool:
        return max_bytes is None or len(html.encode("utf-8")) <= max_bytes

    return _richest(audit, fits, full_report, max_bytes, text=False)[0]


def render_email(audit: Audit, fits: Callable[[str, str], bool], *,
                 full_report: str | None = None,
                 max_bytes: int | None = MAX_EMAIL_BYTES) -> tuple[str, str]:
    """(html, text) of the richest rendering for which `fits(html, text)`.

    The mail's budget is the whole message (both parts and their MIME
    wrapping), which only the caller can measure. The renderings with every
    problem come first (those that cannot fit in `max_bytes` are not
    tried); then the summary with as many rows as fit (`_most_that_fit`);
    if not even its counts fit, the summary of `SUMMARY_FLOOR` rows,
    rather than nothing.
    """
    return _richest(audit, fits, full_report, max_bytes, overhead=MIME_OVERHEAD)


def _richest(audit: Audit, fits: Callable[[str, str], bool], full_report: str | None,
             budget: int | None, *, html: bool = True, text: bool = True,
             overhead: int = 0) -> tuple[str, str]:
    """The richest rendering that fits (`render_email`), of the parts asked.

    The context is made once: what the templates read of the whole audit
    (at 10,000 problems its counts and page sets took 0.1 s a rendering)
    is the same in every try; only the view changes."""
    base = _base_context(audit, full_report)

    def render(view: _View) -> tuple[str, str]:
        context = {**base, **_view_context(audit, view, base)}
        return (_inline(_ENV.get_template("report.html.j2").render(context)) if html else "",
                _tidy(_TEXT_ENV.get_template("report.txt.j2").render(context)) if text else "")

    # PROBLEM_MIN_BYTES is the HTML's: a text part alone tries them all.
    # "One fix, many rows" only where it fits beside what would be shown
    # without it: first with it, then the same view without.
    # Then, before summarising, the text part without its rows' links to
    # their entries (the HTML part keeps them).
    bulky = bool(base["bulk_lines"])
    for whole in _whole_views(audit, budget if html else None):
        views = (whole, replace(whole, bulk=False)) if bulky else (whole,)
        for view in (*views, replace(whole, bulk=False, jumps=False)) if text else views:
            parts = render(view)
            if fits(*parts):
                return parts
    order = summary_order(audit)
    new_total = sum(p.new for p in order)
    keys = summary_reading_keys(audit)
    tried: dict[int, tuple[str, str]] = {}

    def summary(n: int, bulk: bool) -> _View:
        # Rows rather than their text part's links to the entries (some 145
        # bytes a row: of 10,000 problems, 40 rows with them, 42 without);
        # the HTML part keeps its links.
        return replace(_summary_view(audit, order, new_total, n, keys), bulk=bulk, jumps=False)

    def probe(n: int) -> tuple[bool, int]:
        tried[n] = render(summary(n, False))
        return fits(*tried[n]), sum(len(part.encode("utf-8")) for part in tried[n])

    cap = len(order) if budget is None else min(len(order), budget // PROBLEM_MIN_BYTES)
    goal = (budget if budget is not None else 2**62) - overhead
    shown = _most_that_fit(probe, cap, goal)
    if shown is None:
        shown = min(SUMMARY_FLOOR, len(order))
    elif bulky:  # the rows that fit without the lines; the lines only if they fit too
        parts = render(summary(shown, True))
        if fits(*parts):
            return parts
    return tried[shown] if shown in tried else render(summary(shown, False))


def render_page(audit: Audit, *, out_dir: Path | None = None) -> str:
    """The saved full report: every problem and every link, never summarised.

    A file for a browser, not a mail: the CSS stays one `<style>` block and
    the text UTF-8. Inlining the CSS of a 100,000-link report took 1.7 s
    and made it 28 MB instead of 23; browsers need none of it, and mail
    clients never see this file (the mail is rendered apart, and inlined).
    """
    return "".join(_page_chunks(audit, out_dir))


def _page_chunks(audit: Audit, out_dir: Path | None = None) -> Iterator[str]:
    """`render_page` in pieces, to write without holding the whole page twice.

    The footer links index.html and the report compared with, relative: the
    saved reports share one folder. With `out_dir` known, the compared
    report is linked only if its file is there (it may have been written
    elsewhere with `--out`)."""
    previous_saved = (out_dir is None or audit.previous_run is None
                      or (Path(out_dir) / (report_basename_of(audit.previous_run) + ".html")).exists())
    context = _context(audit, _View("full"), None, saved=True, previous_saved=previous_saved)
    return map(_visible, _ENV.get_template("report.html.j2").generate(context))


def _visible(text: str) -> str:
    """Without what `INVISIBLE` names (ESC in a text part read in a terminal,
    a bidi override reversing a URL); the JSON report keeps the data as it came.

    A piece holding none (nearly all) is given back as it is, found so by
    `_ANY_INVISIBLE`: the regex's scan of a 24 MB page took 0.35 s with
    `INVISIBLE` (a repeated class, which the engine scans for slowly), 0.07 s
    with the class alone.
    """
    if _ANY_INVISIBLE.search(text) is None:
        return text
    return INVISIBLE.sub("", text)


_ANY_INVISIBLE = re.compile(INVISIBLE.pattern.removesuffix("+"))
"""One character of those `INVISIBLE` removes (its pattern without the `+`)."""


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", _visible(text))


def render_text(audit: Audit, *, full_report: str | None = None,
                max_bytes: int | None = MAX_EMAIL_BYTES) -> str:
    """The plain-text alternative: the same sections, counts and fixes."""
    def fits(_: str, text: str) -> bool:
        return max_bytes is None or len(text.encode("utf-8")) <= max_bytes

    return _richest(audit, fits, full_report, max_bytes, html=False)[1]


_MEDIA_CLASSES = frozenset({"wrap", "pad", "page", "totals", "h2", "intro", "foot", "head",
                            "chips", "chip", "num"})
"""The classes the report's kept `@media` rules select (the index of reports
is not inlined: it keeps its classes and its <style> block)."""
_CLASS_ATTR = re.compile(r'\sclass="([^"]*)"')
_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')
_TITLE_ATTR = re.compile(r'\stitle="[^"<>]*[<>][^"]*"')
"""A title holding "<" or ">", which the inliner writes back bare: a clipped
address's whole text is web text ("<script>" stays "&lt;script&gt;")."""


def _inline(html: str) -> str:
    """Inline the CSS, then drop the classes only the inliner needed.

    Classes that the kept `@media` rules still select stay; the rest would
    only add bytes towards Gmail's clipping limit.
    """
    def keep(match: re.Match[str]) -> str:
        names = [n for n in match.group(1).split() if n in _MEDIA_CLASSES]
        return f' class="{" ".join(names)}"' if names else ""

    def tight(match: re.Match[str]) -> str:
        return ' style="' + re.sub(r"\s*([:;])\s*", r"\1", match.group(1)).rstrip(";") + '"'

    html = _STYLE_ATTR.sub(tight, _CLASS_ATTR.sub(keep, _INLINER.inline(_visible(html))))
    html = _TITLE_ATTR.sub(lambda m: m.group().replace("<", "&lt;").replace(">", "&gt;"), html)
    return _fold(html.encode("ascii", "xmlcharrefreplace").decode("ascii"))


MAX_LINE = 900
"""SMTP allows 998 octets a line; an ASCII HTML part with shorter lines goes
as 7bit, with none of quoted-printable's ~6 % overhead."""


def _fold(html: str) -> str:
    """Break over-long lines inside tags, where a newline is just whitespace.

    Only a space before `href="` or `style="` is replaced: in text those
    quotes would have been escaped, so the match is always inside a tag.
    """
    lines = []
    for line in html.split("\n"):
        if len(line) > MAX_LINE:
            line = re.sub(r' (href|style)="', r'\n\1="', line)
        lines.append(line)
    return "\n".join(lines)


def no_longer_lines(audit: Audit) -> list[str]:
    """The quiet lines under the counts about the previous report's problems
    this one no longer follows: the pages not audited, then the links now
    excluded. With them the counts reconcile with the previous report's
    (its open = still open + fixed + these), and nothing vanishes unsaid."""
    return ([wording.no_longer_audited_line(g) for g in audit.no_longer_audited]
            + wording.no_longer_checked_lines(audit.no_longer_checked))


def checked_phrase(c: Counts) -> str:
    """ "90 links checked (53 URLs)": links (every place a page links from)
    less those not checked, and the distinct URLs requested; the words of
    the report's totals line, for the terminal of `monitor run`."""
    return f"{wording.plural(c.checked, 'link')} checked ({wording.plural(c.urls, 'URL')})"


def count_phrase(audit: Audit) -> str:
    """ "3 new problems, 12 still open, 2 fixed": the subject's counts, and
    the retracted and withdrawn articles cited, if any (the subject is all
    many read): "..., 1 cited article retracted, 2 withdrawn"."""
    c = audit.counts
    new = "no new problems" if c.new == 0 else wording.plural(c.new, "new problem")
    cited = "".join(f", {wording.plural(n, 'cited article') if i == 0 else n} {notice}"
                    for i, (notice, n) in enumerate(_noticed(audit)))
    # The previous report's open problems that are neither still open nor
    # fixed (a page no longer audited, a link now excluded): the subject gave
    # "7 still open, 0 fixed" after 19, no hint that 12 left the count.
    left = c.no_longer_audited + c.no_longer_checked
    gone = f", {left} no longer followed" if left else ""
    # ...and those a person checked by hand since, out of the count too
    gone += f", {c.newly_accepted} checked by hand" if c.newly_accepted else ""
    if audit.first_report:
        # Nothing to compare with: "19 new, 0 still open, 0 fixed" said a comparison was made.
        found = wording.plural(c.open, "problem") if c.open else "no problems"
        return f"first report, {found}{cited}{_unread(audit, ', ')}"
    return f"{new}, {c.still} still open, {c.fixed} fixed{gone}{cited}{_unread(audit, ', ')}"


def _unread(audit: Audit, lead: str) -> str:
    """ "2 of 3 pages could not be fetched": said at the top and in the
    subject, since the counts beside it say nothing of those pages' links."""
    failed, total = len(audit.pages_failed), len(audit.pages)
    if not total:  # a [[sites]] crawl that recorded no page (robots.txt 503): nothing was read either
        return f"{lead}no page could be fetched"
    if not failed:
        return ""
    return f"{lead}{failed} of {wording.plural(total, 'page')} could not be fetched"


def _noticed(audit: Audit) -> list[tuple[str, int]]:
    """(notice, how many cited articles have it) for each notice seen,
    retracted first."""
    content = audit.content_audit
    return [(notice, n) for notice, n in (("retracted", len(content.retracted)),
                                          ("withdrawn", len(content.withdrawn))) if n]


def _period(audit: Audit) -> str:
    """"this week" for the weekly audit; an editor's `check --page` is no
    week's audit, and its report says "in this check"."""
    return "in this check" if audit.run.partial else "this week"


def headline(audit: Audit) -> str:
    """The one sentence at the top that says whether anything needs doing."""
    c = audit.counts
    week = "" if audit.run.partial else " this week"
    unread = _unread(audit, " ")
    if c.open == 0 and read_no_page(len(audit.pages), len(audit.pages_failed)):
        first = f"No page could be fetched{week}: nothing was checked."
    elif c.open == 0:
        first = (f"Nothing needs fixing {_period(audit)}." if not unread else
                 f"Nothing needs fixing on the pages read {_period(audit)};{unread}.")
    else:
        first = f"{wording.plural(c.open, 'problem')} need{'s' if c.open == 1 else ''} attention"
        first += (" (first report, nothing to compare with)." if audit.first_report
                  else f" ({c.new} new, {c.still} still open).")
        first += unread + ("." if unread else "")
    if audit.previous_run is not None:
        since = f" since the report of {wording.format_date(audit.previous_run.started_at)}"
    else:
        since = ""
    fixed = f" {wording.plural(c.fixed, 'link')} fixed{since}." if c.fixed else ""
    return first + fixed + _noticed_words(audit)


def _noticed_words(audit: Audit) -> str:
    """Said at the top, since a retraction (or a withdrawal) matters more
    than any dead link and would otherwise be one content note among many:
    " 2 cited articles were retracted and 1 was withdrawn: see ..."."""
    said = [f"{wording.plural(n, 'cited article') if i == 0 else n} {'was' if n == 1 else 'were'} {notice}"
            for i, (notice, n) in enumerate(_noticed(audit))]
    if not said:
        return ""
    heading = audit.content_audit.heading("retracted")
    return f" {' and '.join(said)}: see \u201c{heading}\u201d."


# -- JSON and files ------------------------------------------------------------

JSON_FORMAT = {"format": "citation-monitor-audit", "version": 2}
"""Version 2: compact separators; every link once, in "links" (the problem
groups keep their problems' links); "everything_else" gives each page's
counts instead of repeating its links. Version 1 was indented and wrote
85 % of the links twice: 192 MB at 100,000 links, 95 MB now."""

JSON_LINKS_PER_CHUNK = 2_000
"""Links encoded per call when a report is written: the encoder's speed
without one 77 MB string in memory."""

_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """The `default` hook of the C JSON encoder: our dataclasses become dicts
    of their fields, dates ISO 8601; the encoder walks the rest itself
    (a Python walk of every value first took 13 s at 100,000 links)."""
    if type(value) is dt.datetime:  # whole seconds in UTC, as every JSON output (the most frequent here)
        return iso_moment(value)
    names = _FIELDS.get(type(value))
    if names is not None:
        return {name: getattr(value, name) for name in names}
    if isinstance(value, dt.datetime):
        return iso_moment(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
        return _plain(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False,
                           default=_plain).encode


def _encode(value: Any, errors: str = "strict") -> bytes:
    """Compact JSON of `value`, UTF-8: orjson's when it is installed, else
    the same bytes from the standard library (0.2 s instead of 1 s for
    100,000 links).

    orjson writes dataclasses, dates, enums and strings as `_ENCODE` does
    (checked by a test); what it refuses (a lone surrogate, an integer
    beyond 64 bits) falls back to the standard library, encoded with
    `errors` (a lone surrogate is an error in a file written). Bytes, not
    text: the 100 MB of a 100,000-link report were decoded from orjson's
    bytes, then encoded again to be written (0.2-0.4 s).
    """
    if orjson is not None:
        try:
            # Moments go through `_plain` (`iso_moment`): orjson's own have microseconds.
            return orjson.dumps(value, default=_plain, option=orjson.OPT_PASSTHROUGH_DATETIME)
        except orjson.JSONEncodeError:
            pass
    return _ENCODE(value).encode("utf-8", errors)


def _other_counts(other: OtherLinks) -> dict[str, Any]:
    return {"url": other.url, "title": other.title,
            "counts": {"ok": other.ok, "not_checked": len(other.links) - other.ok}}


def _page_json(page: PageRecord) -> dict[str, Any]:
    """A page as `monitor check --format json` gives it: "status" "ok" for a
    page unchanged since the last read (304), with "not_modified" true, added
    after its fields."""
    return {**_plain(page), "status": page.public_status, "not_modified": page.not_modified}


_COUNTS_ADDED = ("no_longer_checked", "no_longer_audited", "needs_fixing", "needs_a_person", "accepted",
                 "newly_accepted", "private_address")
"""`Counts` fields added after "open" was the last key of "counts"."""


def _json_chunks(audit: Audit, source: Source | None = None, errors: str = "strict") -> Iterator[bytes]:
    """The audit's JSON document in pieces, UTF-8, in field order ("counts"
    early: the index reads it from the first bytes of the file); a saved one
    ends with the `source` database it was made from."""
    yield _encode(JSON_FORMAT, errors)[:-1]
    for f in dataclasses.fields(audit):
        if f.name == "page_slugs":
            continue  # the HTML's ids, not data (`Audit.page_slugs`)
        value = getattr(audit, f.name)
        key = b"," + _encode(f.name, errors) + b":"
        if f.name == "counts":
            # "open" where it always was; the counts added since come after it
            counts = _plain(value)
            added = {name: counts.pop(name) for name in _COUNTS_ADDED}
            yield key + _encode({**counts, "open": audit.counts.open, **added}, errors)
        elif f.name == "everything_else":
            yield key + _encode([_other_counts(o) for o in value], errors)
        elif f.name in ("pages", "pages_failed"):
            yield key + _encode([_page_json(p) for p in value], errors)
        elif f.name == "links":
            yield key + b"["
            for start in range(0, len(value), JSON_LINKS_PER_CHUNK):
                yield (b"," if start else b"") + _encode(value[start:start + JSON_LINKS_PER_CHUNK], errors)[1:-1]
            yield b"]"
        else:
            yield key + _encode(value, errors)
    if source is not None:
        # Last, after every field of the audit: a reader of the format
        # never finds a field moved, and the folder's check reads it from
        # the file's last bytes.
        yield _SOURCE_KEY.encode() + _encode({"id": source.id, "file": source.file, "config": source.config},
                                             errors)
    yield b"}\n"


_SOURCE_KEY = ',"database":'
"""The saved JSON's last key: the database the report was made from. Never
found inside a string: there every quote is escaped."""


def render_json(audit: Audit) -> str:
    """The whole audit as JSON, for scripts and for the index of past reports
    (text: a lone surrogate of the audit's strings is kept, as the standard
    library's encoder keeps it)."""
    return b"".join(_json_chunks(audit, errors="surrogatepass")).decode("utf-8", "surrogatepass")


def report_basename(audit: Audit) -> str:
    return report_basename_of(audit.run)


def report_basename_of(run: RunInfo) -> str:
    """The saved report's name without suffix, for any run (the footer links
    the report a run is compared with by it)."""
    return f"report-{run.started_at.date().isoformat()}-run-{run.id}"


def save_report(audit: Audit, out_dir: Path, source: Source | None = None) -> SavedReport:
    """Write the full (never summarised) HTML and JSON, then refresh index.html.

    With the `source` database known, a folder holding another database's
    reports or index is refused (`ForeignFolder`) before anything is
    written, and the files name this one."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if source is not None:
        refuse_foreign(out_dir, source)
    base = report_basename(audit)
    html_path = out_dir / f"{base}.html"
    json_path = out_dir / f"{base}.json"
    write_all((html_path, _page_chunks(audit, out_dir)), (json_path, _json_chunks(audit, source)),
              concurrent=len(audit.links) >= CONCURRENT_WRITE_LINKS)
    index = out_dir / "index.html"
    write_atomic(index, render_index(out_dir, site=audit.site, source=source))
    return SavedReport(html_path, json_path, index)


def refresh_index(out_dir: Path, source: Source) -> Path | None:
    """Write index.html again (a report mailed since it was written is
    marked so); None when the folder has no index of this database's."""
    index = Path(out_dir) / "index.html"
    made_by = _index_source(index)
    if made_by is None or made_by.id != source.id:
        return None
    write_atomic(index, render_index(Path(out_dir), site=made_by.site or "your site", source=source))
    return index


def prune_saved(out_dir: Path, before: dt.date, source: Source) -> list[str]:
    """Remove the saved reports (HTML and JSON) of `source`'s runs that
    started before `before`, then write the index again; the names removed.

    A weekly report is 131 MB at 100,000 links (23 MB of HTML, 108 MB of
    JSON), and nothing else ever removes one: `[report] keep_weeks` bounds
    the folder as `[database] keep_weeks` bounds the history. Only this
    database's reports go (one saved before reports named their database is
    taken as this one's, as `refuse_foreign` takes it); the index is written
    again only when something was removed, and only if it is this database's."""
    removed: list[str] = []
    for row in _saved_rows(Path(out_dir)):
        theirs = row["source"]
        if row["date"] >= before.isoformat() or (theirs is not None and theirs.id != source.id):
            continue
        html = Path(out_dir) / row["name"]
        for path in (html, html.with_suffix(".json")):
            try:
                path.unlink()
                removed.append(path.name)
            except FileNotFoundError:
                pass
    if removed:
        refresh_index(Path(out_dir), source)
    return removed + _remove_leftovers(Path(out_dir))


LEFTOVER_AGE = dt.timedelta(days=1)
"""A report's NAME.tmp or NAME.old older than this is what a writer killed
outright (SIGKILL, a power cut) left: no report takes a day to write."""


def _remove_leftovers(out_dir: Path) -> list[str]:
    """The half-written files a killed `monitor report` left (review 11 #3:
    `reports.files` removes its own on any error or stop it sees; a SIGKILL
    it does not see), when old enough not to be a report being written now."""
    removed: list[str] = []
    cutoff = dt.datetime.now().timestamp() - LEFTOVER_AGE.total_seconds()
    for pattern in ("report-*-run-*.tmp", "report-*-run-*.old", "index.html.tmp", "index.html.old"):
        for path in out_dir.glob(pattern):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path.name)
            except OSError:
                continue
    return removed


def refuse_foreign(out_dir: Path, source: Source) -> None:
    """Raise `ForeignFolder` when `out_dir` holds reports or an index made
    from another database than `source`.

    Two configurations given one `report.dir` replaced each other's
    reports (same date, same run number) and index without a word. A
    report saved before reports named their database is taken as this
    one's (an upgrade must not refuse every existing folder), unless it is
    proven another's: this database's run of its number began at another
    time (or the database was made anew, which would mix two histories
    just the same)."""
    index = _index_source(out_dir / "index.html")
    files = ["index.html"] if index is not None and index.id != source.id else []
    other = index if files else None
    evidence = ""
    for row in _saved_rows(out_dir):
        theirs = row["source"]
        if theirs is not None:
            if theirs.id != source.id:
                files.append(row["name"])
                other = other or theirs
            continue
        ours = source.runs.get(row["run"])
        began = _instant(row["started"])
        # To the second: a report's JSON gives whole seconds (older ones microseconds).
        if ours is not None and began is not None and whole_second(began) != whole_second(ours):
            files.append(row["name"])
            evidence = evidence or (
                f"its run {row['run']} began {_when(began)}, this database's run {row['run']} "
                f"began {_when(ours)}")
    if not files:
        return
    shown = ", ".join(sorted(files)[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    whose = (f"another database ({other.words()})" if other is not None
             else f"another database ({evidence})")
    if other is not None and (other.file, other.config) == (source.file, source.config):
        # Same names: the database file was deleted and made anew (a new id),
        # not a second configuration; "another database (nf.db of nf.toml)
        # ... this configuration's database is .../nf.db" read as a contradiction.
        whose = (f"an earlier database of the same name ({other.words()}, deleted and made anew "
                 "since: its history is not this one's)")
    raise ForeignFolder(
        f"{out_dir} holds reports of {whose}: {shown}; this configuration's database is "
        f"{source.path or source.words()}. Nothing was written: give each database its own "
        "[report] dir, or move those files out of the folder")


def _instant(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return as_utc(moment)


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%d %b %Y %H:%M:%S UTC")


def names_report_file(out: Path) -> bool:
    """`report --out weekly.html` names the HTML file itself (it made a folder
    called weekly.html); an existing folder, or any other name, is a folder."""
    return out.suffix.lower() in (".html", ".htm") and not out.is_dir()


def save_report_file(audit: Audit, html_path: Path, source: Source | None = None) -> SavedReport:
    """The report as one named HTML file, its JSON beside it (same stem);
    no index.html, since the folder is not a folder of reports."""
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    json_path = html_path.with_suffix(".json")
    write_all((html_path, _page_chunks(audit, html_path.parent)), (json_path, _json_chunks(audit, source)),
              concurrent=len(audit.links) >= CONCURRENT_WRITE_LINKS)
    return SavedReport(html_path, json_path, html_path)


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    """What only a running `monitor serve` knows, as its /healthz says it
    (`monitor.web.health`): the index it serves says when the next audit is.
    The file `monitor report` writes has none (nothing is scheduled there)."""

    next_run: dt.datetime | None
    running: bool
    overdue: str = ""
    """/healthz `overdue.message`: "No audit since 16 Nov (11 days): the audit
    of Mon 23 Nov 06:00 UTC did not run." ("" when none was missed)."""
    elsewhere: str = ""
    """/healthz `running_elsewhere`: who audits now outside the service
    ("process 23456 on vm, since 07:28:03 UTC"), or ""."""

    @classmethod
    def from_health(cls, doc: Mapping[str, Any]) -> ServiceFacts:
        """From the /healthz document itself: one source for both."""
        when = doc.get("next_run")
        overdue = doc.get("overdue")
        message = overdue.get("message") if isinstance(overdue, Mapping) else None
        elsewhere = doc.get("running_elsewhere")
        return cls(_instant(when) if isinstance(when, str) else None, bool(doc.get("running")),
                   message if isinstance(message, str) else "",
                   elsewhere if isinstance(elsewhere, str) else "")


@dataclass(frozen=True, slots=True)
class IndexSummary:
    """The lines above the index's table: what the latest weekly audit asks
    of the webmaster, and (served) when the next one is and whether mail waits.

    A bare table made a webmaster add New and Still open to learn how many
    problems need attention, and said nothing of the service (walkthrough 10
    #9). Every figure is read where the table's are: the latest report's
    JSON counts, and for the service, /healthz's own document."""

    latest: str = ""
    """ "Latest audit 27 Nov 17:56 UTC" ("" when no weekly audit is saved)."""
    state: str = ""
    """ "12 problems need attention (9 to fix, 3 to open in a browser)"."""
    report: str = ""
    """The latest report's file name, linked as "open the report"."""
    attention: int | None = None
    fixing: int | None = None
    person: int | None = None
    service: str = ""
    outbox: str = ""
    overdue: str = ""
    """Said first, when a scheduled audit did not happen (walkthrough 11 #6):
    "No audit since 16 Nov (11 days): the audit of Mon 23 Nov 06:00 UTC did
    not run. Next audit Mon 30 Nov 06:00 UTC." (the next audit then moves
    here from `service`)."""
    refresh: int = 0
    """Seconds after which the page reloads itself (`<meta http-equiv=refresh>`,
    no script: the CSP allows none): while an audit runs, so that "An audit is
    running now" does not stay on a tab left open after it ended (review 15b
    #11); 0: never."""


def _moment(when: dt.datetime, now: dt.datetime, weekday: bool = False) -> str:
    """ "27 Nov 17:56 UTC" ("Mon 30 Nov 06:00 UTC"); the year when it is not this one."""
    when = when.astimezone(dt.timezone.utc)
    text = f"{when.day} {when:%b}" + (f" {when.year}" if when.year != now.year else "") + f" {when:%H:%M} UTC"
    return f"{when:%a} {text}" if weekday else text


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


RUNNING_REFRESH_S = 30
"""How often the served index reloads itself while an audit runs."""


def index_summary(rows: Sequence[Mapping[str, Any]], source: Source | None,
                  service: ServiceFacts | None, now: dt.datetime) -> IndexSummary:
    """The summary of `rows` (the weekly audits, newest first, as the table
    lists them): the first row's counts as its report has them (`open` =
    new + still open; needs fixing + needs a person = open)."""
    summary = IndexSummary(outbox=_outbox_words(source, service))
    if service is not None:
        if service.running:
            summary = replace(summary, service="An audit is running now: its report appears here when it ends.",
                              refresh=RUNNING_REFRESH_S)
        elif service.elsewhere:
            summary = replace(summary, service=f"An audit is running now, started outside the service "
                                               f"(monitor run or check: {service.elsewhere}).",
                              refresh=RUNNING_REFRESH_S)
        elif service.next_run is not None:
            summary = replace(summary, service=f"Next audit {_moment(service.next_run, now, weekday=True)}.")
        else:
            summary = replace(summary, service="No audit is scheduled.")
        if service.overdue:
            moved = summary.service if summary.service.startswith("Next audit") else ""
            summary = replace(summary, overdue=f"{service.overdue} {moved}".strip(),
                              service="" if moved else summary.service)
    if not rows:
        return summary
    row = rows[0]
    started = _instant(row.get("started"))
    latest = f"Latest audit {_moment(started, now)}" if started else f"Latest audit {row['date']}"
    counts = row.get("counts") or {}
    new, still = _int(counts.get("new")), _int(counts.get("still"))
    fixing, person = _int(counts.get("needs_fixing")), _int(counts.get("needs_a_person"))
    attention = new + still if new is not None and still is not None else None
    if row.get("unread") == "not fetched":
        state = "no page could be fetched: nothing was checked"
    elif attention is None:
        state = "its counts could not be read"
    elif attention == 0:
        state = "nothing needs fixing"
    else:
        state = f"{wording.plural(attention, 'problem')} need{'s' if attention == 1 else ''} attention"
        if fixing is not None and person is not None and fixing + person == attention:
            if not person or not fixing:
                what = "to fix" if not person else "to open in a browser"
                state += f" ({'all ' if attention > 1 else ''}{what})"
            else:
                state += f" ({fixing} to fix, {person} to open in a browser)"
        else:  # a report saved before the counts were split
            fixing = person = None
    if row.get("unread") and row.get("unread") != "not fetched":
        state += f" ({row['unread']})"
    return replace(summary, latest=latest, state=state, report=row["name"], attention=attention,
                   fixing=fixing, person=person)


NOTHING_WAITS = "No report waits to be mailed."
"""The index's word for an empty outbox: editors read it, and "outbox" is
the service's word (review 13 #16). Not "All reports mailed": a report made
with mail turned off was never queued."""


def _outbox_words(source: Source | None, service: ServiceFacts | None) -> str:
    waiting = source.outbox if source is not None else None
    if waiting is None:
        return ""
    if waiting == 0:
        return NOTHING_WAITS
    said = f"{wording.plural(waiting, 'message')} not sent yet (sending failed)"
    if service is not None:
        return said + ": the service tries again."
    return said + ": the monitor's next run tries again; see the Mail column."


def render_index(out_dir: Path, *, site: str, source: Source | None = None,
                 service: ServiceFacts | None = None, now: dt.datetime | None = None) -> str:
    """index.html: every saved report in `out_dir`, newest first, with its
    counts. The weekly audits come first; an editor's check of some pages
    (`check --page`) is listed apart, below them: the latest row is what a
    reader takes for the state of the site. A run whose pages could not be
    fetched says so instead of counts of zero, which read as "all clear";
    with the `source` database known, each row says whether its report was
    mailed, and the page names the database (`refuse_foreign` reads it).

    The service renders this for every request of its index: the rows
    (`SAVED_ROWS`) and the tables (`_TABLES`) are kept until a report or a
    Mail cell changes, so a request renders only the summary (0.2 s of CPU
    a request at 520 reports before, review 10 #6)."""
    rows = SAVED_ROWS.rows(out_dir)
    mail = source.mail if source is not None else {}
    for row in rows:
        # A run pruned from the history took its outbox rows along: unknown, not "not mailed".
        known = source is not None and (row["run"] in source.runs or row["run"] in mail)
        row["mail"] = _mail_words(mail.get(row["run"])) if known else ""
        row["unread"] = _unread_words(row["counts"])
    rows.sort(key=_newest_first, reverse=True)
    weekly = [r for r in rows if not r["partial"]]
    summary = index_summary(_made_by(weekly, source), source, service,
                            now or dt.datetime.now(dt.timezone.utc))
    weekly_table, checks_table = _TABLES.tables(out_dir, rows, source is not None)
    return _ascii(_visible(_ENV.get_template("index.html.j2").render(
        site=site, source=source, summary=summary, weekly_table=weekly_table, checks_table=checks_table,
        nothing_waits=NOTHING_WAITS)))


def _newest_first(row: Mapping[str, Any]) -> tuple[str, float, int]:
    """The sort key of the index's rows (reversed): by date, then by the run's
    start, then by its number. A database made anew starts again at run 1: the
    number alone put an earlier database's run 57 of the same day above it."""
    began = _instant(row.get("started"))
    return row["date"], began.timestamp() if began is not None else -math.inf, row["run"]


def _made_by(rows: list[dict[str, Any]], source: Source | None) -> list[dict[str, Any]]:
    """The rows the summary may speak of: with the database known, its own
    reports and those naming none (saved before reports named it). The table
    lists every report; "Latest audit ...: open the report" opened another
    database's (review 10 #5)."""
    if source is None:
        return rows
    return [r for r in rows if r["source"] is None or r["source"].id == source.id]


def latest_report_counts(out_dir: Path, database_id: str) -> tuple[int, dict[str, Any]] | None:
    """(run, JSON counts) of the newest weekly report in `out_dir` made from
    this database (or naming none), as the index's summary reads it; None
    when there is none. For /metrics: the numbers the mail and the dashboard
    lead with ("22 to fix, 3 to open in a browser", "8 new") were in neither
    /metrics nor /healthz (review 15b #6)."""
    rows = _made_by([r for r in SAVED_ROWS.rows(out_dir) if not r["partial"]], Source(database_id))
    if not rows:
        return None
    newest = max(rows, key=_newest_first)
    return newest["run"], newest["counts"]


def _ascii(html: str) -> str:
    """Every character past ASCII as a character reference, as the mailed
    pages are: the page reads the same whatever charset a proxy claims."""
    return html.encode("ascii", "xmlcharrefreplace").decode("ascii")


_StatKey = tuple[int, int, int] | None
"""A saved JSON report's (inode, size, mtime in ns); None: it cannot be read."""


def _stat_key(path: Path) -> _StatKey:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class _SavedRows:
    """`_saved_rows`, kept per folder: a report is read again only when its
    JSON file changed (another inode, size or mtime: reports are written by
    a rename), or is new. Reading 520 reports' heads and tails took 0.11 s
    a request. `reads` counts the JSON files read, for the tests.

    Called from the service's worker threads: one lock over it all."""

    FOLDERS = 8
    """Folders kept (the service has one; tests make many)."""

    def __init__(self) -> None:
        self.reads = 0
        self._lock = threading.Lock()
        self._folders: dict[Path, dict[str, tuple[_StatKey, dict[str, Any]]]] = {}

    def rows(self, out_dir: Path) -> list[dict[str, Any]]:
        """The saved reports in `out_dir`, as `_saved_rows` reads them (each a
        fresh dict, the caller's to change); `stat` is their key here."""
        folder = Path(out_dir).absolute()
        with self._lock:
            known = self._folders.pop(folder, {})
            kept: dict[str, tuple[_StatKey, dict[str, Any]]] = {}
            for path in folder.glob("report-*-run-*.html"):
                match = _REPORT_NAME.match(path.name)
                if not match:
                    continue
                key = _stat_key(path.with_suffix(".json"))
                seen = known.get(path.name)
                if seen is None or seen[0] != key or key is None:
                    self.reads += 1
                    seen = key, _saved_row(path, match)
                kept[path.name] = seen
            self._folders[folder] = kept
            while len(self._folders) > self.FOLDERS:
                del self._folders[next(iter(self._folders))]
            return [{**row, "stat": key} for key, row in kept.values()]


SAVED_ROWS = _SavedRows()


class _IndexTables:
    """The index's two tables (weekly audits, checks of some pages) as HTML,
    kept per folder until a row changes: its report (`stat`) or its Mail
    cell. Rendering 520 rows with their styles inlined took 0.19 s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[Path, tuple[tuple[Any, ...], tuple[Markup, Markup]]] = {}

    def tables(self, out_dir: Path, rows: list[dict[str, Any]], mail_column: bool) -> tuple[Markup, Markup]:
        """`rows` sorted newest first; Markup("") for a table with no row."""
        key = (mail_column, *((r["name"], r["stat"], r["mail"]) for r in rows))
        folder = Path(out_dir).absolute()
        with self._lock:
            kept = self._kept.get(folder)
            if kept is not None and kept[0] == key:
                return kept[1]
        template = _ENV.get_template("index_table.html.j2")
        made = tuple(Markup(template.render(rows=part, source=mail_column, mail_waits=MAIL_WAITS)) if part else Markup("")
                     for part in ([r for r in rows if not r["partial"]], [r for r in rows if r["partial"]]))
        with self._lock:
            self._kept.pop(folder, None)
            self._kept[folder] = key, (made[0], made[1])
            while len(self._kept) > _SavedRows.FOLDERS:
                del self._kept[next(iter(self._kept))]
        return made[0], made[1]


_TABLES = _IndexTables()


def _saved_rows(out_dir: Path) -> list[dict[str, Any]]:
    """The saved reports in `out_dir` (`SAVED_ROWS`, read again only where a
    report changed)."""
    return SAVED_ROWS.rows(out_dir)


def _saved_row(path: Path, match: re.Match[str]) -> dict[str, Any]:
    """One saved report: name, date, run, the head of the JSON
    (`_saved_head`), the database it names (`_source_in`) and whether it
    was the first report (`_first_in`), both read from the JSON's tail."""
    data = path.with_suffix(".json")
    tail = _saved_tail(data)
    return {"name": path.name, "date": match.group(1), "run": int(match.group(2)),
            **_saved_head(data), "source": _source_in(tail), "first": _first_in(tail)}


MAIL_WAITS = "not sent yet: will retry"
"""The Mail column of a report kept after a mail failure (was "waiting in
the outbox": the service's word, review 13 #16)."""


def _mail_words(state: tuple[int, ...] | None) -> str:
    """The index's Mail column: "mailed" only when every message of the
    report went out (the webmaster's and each page owner's part); "partly
    mailed" when some did and some did not (the full report refused while
    an editor's part went out read "mailed"). No address is named: the index
    is published. "not sent yet: will retry" (kept after a mail failure),
    "not mailed: refused" or "not mailed" otherwise."""
    if state is None:
        return "not mailed"
    sent, waiting, refused = (tuple(state) + (0, 0, 0))[:3]
    if sent:
        return "partly mailed" if waiting or refused else "mailed"
    if waiting:
        return MAIL_WAITS
    return "not mailed: refused by the mail server" if refused else "not mailed"


def _unread_words(counts: dict[str, Any]) -> str:
    """"not fetched" when no page could be read (its zeros mean nothing was
    checked; `read_no_page`, a run with no page recorded too), "2 of 23
    pages not fetched" when some could not."""
    pages, failed = counts.get("pages"), counts.get("pages_failed")
    if not isinstance(pages, int) or not isinstance(failed, int):
        return ""
    if read_no_page(pages, failed):  # 0 of 0 too: a [[sites]] crawl that recorded no page
        return "not fetched"
    return f"{failed} of {pages} pages not fetched" if failed else ""


INDEX_HEAD_CHARS = 4_096
"""How much of index.html names its database: the `<meta>` tags of its head."""
_INDEX_META = re.compile(r'<meta\s+name="monitor-(database-id|database-file|config|site)"\s+content="([^"]*)"')


def _index_source(path: Path) -> Source | None:
    """The database index.html was made from; None when there is no index
    or it names none (written before indexes did)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            head = f.read(INDEX_HEAD_CHARS)
    except OSError:
        return None
    return index_source_in(head)


def index_source_in(head: str) -> Source | None:
    """The database named by the head of an index.html (`INDEX_HEAD_CHARS`)."""
    found = {key: html_unescape(value) for key, value in _INDEX_META.findall(head)}
    if not found.get("database-id"):
        return None
    return Source(found["database-id"], found.get("database-file", ""), found.get("config", ""),
                  site=found.get("site", ""))


JSON_TAIL_BYTES = 4_096
"""How much of a saved JSON report's end is read for the database it names."""


def _saved_tail(path: Path) -> str:
    """The last `JSON_TAIL_BYTES` of a saved JSON report ("" if unreadable)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - JSON_TAIL_BYTES))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


_FIRST_KEY = ',"first_report":'
"""The audit's last field: just before the database a saved report names."""


def _first_in(tail: str) -> bool:
    """Whether a saved report (by its JSON's tail) was the first: its still
    open and fixed, 0, compare with nothing, and the index shows "–". A
    report saved before the field was written is taken as compared."""
    at = tail.rfind(_FIRST_KEY)
    return at >= 0 and tail.startswith("true", at + len(_FIRST_KEY))


def _source_in(tail: str) -> Source | None:
    """The database a saved JSON report names (its last key), from its tail
    (`_saved_tail`); None for a report saved before reports named it, or a
    file cut short."""
    at = tail.rfind(_SOURCE_KEY)
    if at < 0:
        return None
    try:
        value, _ = _DECODER.raw_decode(tail, at + len(_SOURCE_KEY))
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        return None
    return Source(value["id"], str(value.get("file") or ""), str(value.get("config") or ""))


JSON_HEAD_CHARS = 65_536
"""How much of a saved JSON report the index reads: its "counts" come
within the first few hundred characters (after the site name and the run)."""
_HEAD_KEYS = re.compile(r'"(run|counts)":\s*')
_DECODER = json.JSONDecoder()


def _saved_head(path: Path) -> dict[str, Any]:
    """A saved report's counts, and whether its run was partial (`check
    --page`), read from the head of its JSON file.

    Parsing every saved report whole took 1.4 s per 100,000-link report,
    and the index lists all of them. The first `"run":` and `"counts":` are
    keys (a value is followed by `,`, `]` or `}`), and the audit's first
    fields (site, run, generated_at) hold no other such key: they are the
    document's own, in version 1 files too.
    """
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            head = f.read(JSON_HEAD_CHARS)
    except OSError:
        return {"counts": {}, "partial": False, "time": "", "started": None}
    found: dict[str, Any] = {}
    for match in _HEAD_KEYS.finditer(head):
        if match.group(1) in found:
            continue
        try:
            found[match.group(1)], _ = _DECODER.raw_decode(head, match.end())
        except ValueError:
            found[match.group(1)] = {}
        if len(found) == 2:
            break
    counts, run = found.get("counts"), found.get("run")
    started = run.get("started_at") if isinstance(run, dict) else None
    return {"counts": counts if isinstance(counts, dict) else {},
            "partial": isinstance(run, dict) and run.get("partial") is True,
            "time": _hour(started), "started": started}


def _hour(started_at: object) -> str:
    """"06:00 UTC" of a run's start: tells apart two audits of one day."""
    if not isinstance(started_at, str):
        return ""
    try:
        return dt.datetime.fromisoformat(started_at).astimezone(dt.timezone.utc).strftime("%H:%M UTC")
    except ValueError:
        return ""
