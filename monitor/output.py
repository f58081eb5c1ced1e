"""Results -> the contract's JSON and CSV, and the terminal listing of what needs a person.

Pure: the CLI decides where the text goes. The JSON and CSV columns are the
public contract (`LinkResult.CONTRACT_FIELDS`); new keys may be added after
them, never renamed or removed.

`write_json` and `write_csv` take the links as an iterable and write each one
as it comes (the CLI feeds them from the database's cursor): at 100,000 links,
building every dict and one JSON string first took 772 MiB. The JSON is one
document, the same shape as before, one link object per line.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import operator
import re
import shutil
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any, Protocol, TextIO

from monitor.accept import accepted_words, in_force
from monitor.classify import CONFIRM_AFTER
from monitor.notices import RETRACTED, WITHDRAWN
from monitor.types import (
    Acceptance,
    Citation,
    FailTally,
    HistoryEntry,
    LinkKind,
    LinkResult,
    LinkStatus,
    PageRead,
    PageRecord,
    RunInfo,
    SiteCut,
    Whereabouts,
    iso_moment,
)
from monitor.wording import GROUPS, LISTED_IN_SITEMAP, NEEDS_A_PERSON, NEEDS_FIXING, PRIVATE_BADGE, WATCHING, \
    acknowledged, attention, flap_words, link_words, oldest_copy, private_address, problem_confirmed, \
    site_cut_words

# The order a webmaster reads the table in: what needs a fix first.
STATUS_ORDER = (
    LinkStatus.EXPIRED,
    LinkStatus.MOVED,
    LinkStatus.DRIFTED,
    LinkStatus.ERROR,
    LinkStatus.BLOCKED,
    LinkStatus.OK,
    LinkStatus.SKIPPED,
)

EXTRA_FIELDS = ("detail", "entry_title", "entry_source", "expired_mark", "flapping", "archived_url",
                "notice", "notice_detail", "entry_date", "line", "written", "element", "attribute")
"""After the contract's fields, in this order; a new one goes last. `notice`
is "retracted" or "withdrawn" when the target says the cited article was
(monitor/notices.py), else "": the link's status stays what it is.
`entry_date` is the citation entry's date (ISO, "2019-08-01") or null, as
the report's JSON gives it. `line`, `written` (the href as the page writes
it when that is not `url`, else ""), `element` and `attribute` say where
the link sits in the page's source, as in the report's JSON."""
LINK_FIELDS = LinkResult.CONTRACT_FIELDS + EXTRA_FIELDS
_link_values = operator.attrgetter(*LINK_FIELDS)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso_moment(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _iso(value: Any) -> Any:
    """json's hook for what it cannot encode itself: dates and times."""
    if isinstance(value, dt.date):  # datetimes too
        return _plain(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# The C encoder walks the dict, calling back only for dates (no indent: with
# one, json falls back to its pure-Python encoder). One encoder for every
# call: `json.dumps` with options builds a new one each time (a third of the
# cost of a link's line, 5,900 of them printed after the last check).
_json = json.JSONEncoder(ensure_ascii=False, default=_iso).encode
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What `ensure_ascii=False` leaves raw but a terminal obeys (the 8-bit CSI)
or displays reordered (bidi overrides): written as \\u escapes, the same data."""


def _dumps(value: Any) -> str:
    text = _json(value)
    if text.isascii() and "\x7f" not in text:  # nearly every line: two scans in C, no regex
        return text
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class Writer(Protocol):
    """Where `write_json` and `write_csv` write: a text file, or the CLI's
    UTF-8 stdout (`monitor.cli.Utf8Stdout`), whatever the locale."""

    def write(self, text: str, /) -> int: ...


def link_dict(link: LinkResult) -> dict[str, Any]:
    return {name: _plain(value) for name, value in zip(LINK_FIELDS, _link_values(link))}


def run_dict(run: RunInfo) -> dict[str, Any]:
    return {
        "id": run.id,
        "started_at": _plain(run.started_at),
        "finished_at": _plain(run.finished_at),
        "status": run.status,
        "partial": run.partial,
    }


def page_dict(page: PageRecord) -> dict[str, Any]:
    """A page as CONTRACT.md shows it: `status` "ok" for every page read,
    one unchanged since the last read (304) too, as scripts select failed
    pages by it; `not_modified` (added last) tells that one apart."""
    return {
        "url": page.url,
        "status": page.public_status,
        "title": page.title,
        "links": page.links,
        "http_status": page.http_status,
        "error": page.error,
        "moved_to": page.moved_to,
        "not_modified": page.not_modified,
    }


def write_json(out: Writer, run: RunInfo, pages: Iterable[PageRecord], links: Iterable[LinkResult],
               site_cuts: Sequence[SiteCut] = ()) -> int:
    """The contract's document, {"run": ..., "pages": [...], "links": [...]},
    written link by link; returns the number of links. A run whose [[sites]]
    crawl max_pages or max_depth cut short ends with "sites_not_audited":
    [{"site", "start", "max_pages", "not_audited", "config", "max_depth",
    "too_deep"}, ...] (added at the end; absent otherwise)."""
    out.write(f'{{"run": {_dumps(run_dict(run))},\n "pages": [')
    sep = "\n  "
    for page in pages:
        out.write(sep + _dumps(page_dict(page)))
        sep = ",\n  "
    out.write('],\n "links": [')
    sep, n = "\n  ", 0
    for link in links:
        out.write(sep + _dumps(dict(zip(LINK_FIELDS, _link_values(link)))))
        sep = ",\n  "
        n += 1
    out.write("]")
    if site_cuts:
        out.write(',\n "sites_not_audited": ' + _dumps([
            {"site": c.site, "start": c.start, "max_pages": c.max_pages, "not_audited": c.not_audited,
             "config": c.config, "max_depth": c.max_depth, "too_deep": c.too_deep} for c in site_cuts]))
    out.write("}\n")
    return n


def write_csv(out: Writer, links: Iterable[LinkResult]) -> int:
    """The links as CSV (the JSON links' columns), row by row; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LINK_FIELDS)
    n = 0
    for link in links:
        writer.writerow(["" if v is None else _CSV_BOOL[v] if v is True or v is False else _csv_safe(_plain(v))
                         for v in _link_values(link)])
        n += 1
    return n


_CSV_BOOL = {True: "true", False: "false"}
"""As the JSON writes them: Python's "True"/"False" made a script reading
both formats (or a spreadsheet) see two spellings of one column."""


def to_json(run: RunInfo, pages: Sequence[PageRecord], links: Iterable[LinkResult]) -> str:
    buffer = io.StringIO()
    write_json(buffer, run, pages, links)
    return buffer.getvalue()


def to_csv(links: Iterable[LinkResult]) -> str:
    buffer = io.StringIO()
    write_csv(buffer, links)
    return buffer.getvalue()


def _csv_safe(value: Any) -> Any:
    """Defuse spreadsheet formulas and drop control characters and bidi
    overrides (a CSV goes to a terminal too): anchor text comes from the web."""
    if isinstance(value, str):
        value = INVISIBLE.sub("", value)
        if "\r" in value:  # the csv module quotes a cell with \n, not one with a bare \r:
            value = _CR.sub("\n", value)  # a reader would end the row there, the rest a new row
        if formula_like(value):
            return "'" + value
    return value


FORMULA_START = frozenset("=+-@")
_CR = re.compile("\r\n?")
_LINE_START = frozenset("\t\r\n")
_FIRST_SEEN = re.compile("[\\s\ufeff\u200b-\u200d\u2060]*(.)", re.DOTALL)
"""The first character after what a cell may begin with unseen: spaces (any
Unicode space: no-break, ideographic), a byte order mark, zero-width ones."""


def formula_like(cell: str) -> bool:
    """Whether a spreadsheet could run `cell` as a formula, so the CSV
    prefixes it with a quote. OWASP: a cell starting with = + - @, a tab or
    a carriage return (ASVS 1.2.10 adds NUL, which INVISIBLE removes
    first); a line feed likewise. Beyond that list: those signs behind
    leading blanks (a spreadsheet may trim spaces; a BOM or a zero-width
    space is invisible), and their fullwidth and small forms (＝ ＋ － ＠,
    ﹦ ﹢ ﹣ ﹫), which NFKC folds to the ASCII signs. A quote too many
    costs an editor nothing; a formula run on their machine does."""
    if cell[:1] in _LINE_START:
        return True
    first = _FIRST_SEEN.match(cell)
    return first is not None and unicodedata.normalize("NFKC", first.group(1)) in FORMULA_START


LISTED = (LinkStatus.EXPIRED, LinkStatus.MOVED, LinkStatus.DRIFTED, LinkStatus.ERROR, LinkStatus.BLOCKED)
"""What the terminal listing shows link by link: what asks something of an
editor. `ok` and `skipped` are counted (`--format csv|json` list every link)."""

_GROUP_HEADINGS = {
    NEEDS_FIXING: ("NEEDS FIXING", ""),
    NEEDS_A_PERSON: ("NEEDS A PERSON", "The monitor could not check these itself: open each link in a "
                     "browser; if the article or page is there, nothing to do."),
    WATCHING: ("WATCHING, MAY BE TEMPORARY", "Failures not confirmed yet: they are checked again, and need "
               "nothing unless they show up under NEEDS FIXING."),
}
"""The report's groups (`monitor.wording.attention`), as the report names
them. A heading says only what is true of every row under it: the old
"EXPIRED (the publisher removed it)" stood above a site's own 404 menu link,
"BLOCKED (... a person should look)" above an intranet PDF the report lists
as to fix. Under each, the statuses in `LISTED` order, by name only."""


def write_text(out: TextIO, run: RunInfo, pages: Sequence[PageRecord], links: Iterable[LinkResult],
               *, style: Any = None, now: dt.datetime | None = None,
               confirm_after: dt.timedelta = CONFIRM_AFTER,
               accepted: Mapping[str, Acceptance] | None = None,
               flaps: Mapping[str, FailTally] | None = None) -> StatusTally:
    """The terminal listing: the pages, then the flagged links in the
    report's groups (needs fixing, needs a person, watching: the same rule,
    `monitor.wording.attention`, judged at `now`, the run's end by default,
    with the report's `confirm_after`), by status within each (what needs a
    fix first), each as a small block an editor can act on: where it is
    (page, section, entry), the URL alone on its line (never folded, so it
    can be copied), why in the report's words, the check's own detail when
    it says more, and the fix.

    The links come once, in page order; each status's blocks wait in a
    temporary file of their own, so 100,000 links print in seconds with flat
    memory. `style(text, kind)` may colour headings on a terminal.

    A link repeated on a page where nothing tells the copies apart (a menu
    link in the top bar and the footer: same section, text, URL and status)
    is one block, "(2 times on this page)", as in the HTML report; a page's
    blocks are held until its last link has come (a page's worth of memory).

    `accepted`: URL -> its acceptance (`monitor accept`, `monitor.accept.current`):
    a link it holds for is listed apart, in one line each, as the report does.

    `flaps` (`Store.fail_tallies`): URL -> how often a link that flaps
    failed; its failing block says so ("fails now and then: failed 18 of
    the last 52 checks, ..."), not "failed 1 check in a row so far".
    """
    import tempfile

    paint = style or (lambda text, kind: text)
    names = {p.url: one_line(p.name or p.title or p.url) for p in pages}
    for page in pages:
        title = one_line(page.name or page.title)  # the name its blocks below go by
        if title:
            out.write(f"{paint(title, 'page')}\n  {one_line(page.url)}: ")
        else:  # the URL once, as the heading
            out.write(f"{paint(one_line(page.url), 'page')}\n  ")
        out.write(_links(page.links))
        if page.status == "error":
            out.write(f"; {paint('could not be fetched', 'error')}: {one_line(page.error)}")
        elif page.status == "not_modified":
            out.write(" (unchanged since the last fetch)")
        out.write("\n")
    tally = StatusTally()
    sizes: dict[LinkStatus, int] = {}
    private = 0  # of the blocked, links to a private address: the report says them apart
    requested: set[str] = set()  # the URLs requested: the report's "(53 URLs)", /healthz `urls`
    at = now or run.finished_at or run.started_at
    # (group, status) -> links, distinct URLs; a group -> distinct URLs (flagged links only)
    listed: dict[tuple[str, LinkStatus], list[Any]] = {}
    # (group, status) -> problems: the blocks, the report's rows (a link
    # repeated on a page is one), what its tiles and JSON count
    rows: dict[tuple[str, LinkStatus], int] = {}
    group_urls: dict[str, set[str]] = {}
    noticed: dict[str, list[str]] = {RETRACTED: [], WITHDRAWN: []}  # a handful a site, held as they come
    marked: list[str] = []  # dead links whose entries say "(Expired Article)": a few a page
    by_hand: dict[str, str] = {}  # accepted links (`monitor accept`): a few
    with contextlib.ExitStack() as stack:
        spools: dict[tuple[str, LinkStatus], TextIO] = {}
        page: str | None = None
        # (group, status, section, title, URL) -> [the page's first such link, times, the others'
        # lines, whether it is confirmed]
        held: dict[tuple[str, LinkStatus, str, str, str], list[Any]] = {}

        def flush() -> None:
            for (group, status, *_), (first, times, more_lines, confirmed) in held.items():
                rows[group, status] = rows.get((group, status), 0) + 1
                spool = spools.get((group, status))
                if spool is None:
                    spool = spools[group, status] = stack.enter_context(
                        tempfile.TemporaryFile("w+", encoding="utf-8"))
                # Under NEEDS FIXING a failure may still be a first one: the
                # report says "suspected"; WATCHING's heading says it already.
                suspected = (group != WATCHING and status.is_failing and status != LinkStatus.BLOCKED
                             and not confirmed)
                counts_from = (first.failing_since + confirm_after
                               if suspected and first.failing_since is not None else None)
                flapped = ((flaps or {}).get(first.url, FailTally(0, 0))
                           if first.flapping and status.is_failing else None)
                spool.write(_block(first, names.get(first.page, first.page), times=times,
                                   more_lines=more_lines, suspected=suspected, counts_from=counts_from,
                                   confirmed=confirmed, flaps=flapped))
            held.clear()

        for link in links:
            tally.add(link)
            sizes[link.status] = sizes.get(link.status, 0) + 1
            private += private_address(link)
            if link.status is not LinkStatus.SKIPPED and link.reason != "invalid_url":
                requested.add(link.url)
            if link.notice in noticed and link.kind == LinkKind.CITATION:
                noticed[link.notice].append(_block(link, names.get(link.page, link.page), notice=True))
            if link.status not in LISTED:
                continue
            if acknowledged(link):  # as the report: apart, not among the problems
                marked.append(_block(link, names.get(link.page, link.page)))
                continue
            fine = (accepted or {}).get(link.url)
            if fine is not None and in_force(fine, link.status, at):
                by_hand.setdefault(link.url, f"  {one_line(link.url)}\n    {accepted_words(fine)}\n")
                continue
            if link.page != page:
                flush()
                page = link.page
            confirmed = problem_confirmed(link, at, confirm_after)
            group = attention(link.status, link.reason, confirmed=confirmed)
            counted = listed.setdefault((group, link.status), [0, set()])
            counted[0] += 1
            counted[1].add(link.url)
            group_urls.setdefault(group, set()).add(link.url)
            key = (group, link.status, link.section, link.entry_title or link.text, link.url)
            same = held.get(key)
            if same is None:
                held[key] = [link, 1, [], confirmed]
            else:
                same[1] += 1
                if link.line is not None:
                    same[2].append(link.line)
        flush()
        for group in GROUPS:
            if group not in group_urls:
                continue
            name, intro = _GROUP_HEADINGS[group]
            total = sum(n for (g, _), (n, _) in listed.items() if g == group)
            problems = sum(n for (g, _), n in rows.items() if g == group)
            heading = f"{name}: {_problems(problems, total, len(group_urls[group]))}"
            out.write(f"\n{paint(heading, group)}\n{'-' * len(heading)}\n")
            if intro:
                out.write(f"{intro}\n")
            for status in LISTED:
                if (group, status) not in spools:
                    continue
                n, urls = listed[group, status]
                # a blocked link to fix is a private address (`attention`): the report's badge
                named = PRIVATE_BADGE.upper() if (group, status) == (NEEDS_FIXING, LinkStatus.BLOCKED) \
                    else status.value.upper()
                heading = f"{named}: {_problems(rows[group, status], n, len(urls))}"
                out.write(f"\n{paint(heading, status.value)}\n")
                spool = spools[group, status]
                spool.seek(0)
                shutil.copyfileobj(spool, out)
    for notice, blocks in noticed.items():
        if blocks:
            heading = f"{notice.upper()}: {len(blocks)} cited article{'s' if len(blocks) > 1 else ''}"
            out.write(f"\n{paint(heading, notice)} (the link works, but the page says the article "
                      f"was {notice}: {NOTICE_ADVICE[notice]})\n")
            out.writelines(blocks)
    if marked:
        heading = f"ALREADY MARKED (Expired Article), STILL DEAD: {_links(len(marked))}"
        out.write(f"\n{paint(heading, 'marked')} (the entries say so: nothing new to do; "
                  "link an archived copy where there is one)\n")
        out.writelines(marked)
    if by_hand:
        heading = f"CHECKED BY HAND, FOUND FINE: {_count(len(by_hand), 'URL')}"
        out.write(f"\n{paint(heading, 'page')} (monitor accept: not listed while they answer "
                  "as they did then)\n")
        out.writelines(by_hand.values())
    # Every count names its unit: problems (the report's rows, a link
    # repeated on a page is one), links (each place a page links from) or
    # distinct URLs (a menu link on every page is one URL). "EXPIRED: 11
    # links" above "8 expired" below read as a mistake.
    counts = tally.counts()
    quiet = ([_links_to_urls(sizes[LinkStatus.OK], counts[LinkStatus.OK.value], "ok")]
             if LinkStatus.OK in sizes else [])
    if LinkStatus.SKIPPED in sizes:
        quiet.append(_links(sizes[LinkStatus.SKIPPED]) + " not checked (mailto:, in-page jumps, excluded)")
    if quiet:
        out.write(f"\nNot listed: {' and '.join(quiet)}; --format csv or json lists every link.\n")
    # The report's words and figures: "links checked" leaves out the links
    # not checked, "URLs" are the distinct URLs requested, and the statuses
    # count the links checked, adding up to them as the report's "62 ok ·
    # 5 moved · ..." does (was "by status, each address once", a third set
    # of figures, the malformed address counted as a URL never requested).
    skipped = sizes.get(LinkStatus.SKIPPED, 0)
    checked = tally.links - skipped
    out.write(f"\nrun {run.id}: {_links(tally.links)}"
              + (f": {checked} checked ({_count(len(requested), 'URL')})"
                 f"{f', {skipped} not checked' if skipped else ''}"
                 f"{f'; {checked_by_status(sizes, private)}' if checked else ''}\n" if tally.links else ".\n"))
    return tally


REPORT_STATUS_ORDER = (LinkStatus.OK, LinkStatus.MOVED, LinkStatus.EXPIRED, LinkStatus.ERROR,
                       LinkStatus.BLOCKED, LinkStatus.DRIFTED)
"""The statuses in the order of the report's line "62 ok · 5 moved · ..."."""


def checked_by_status(sizes: Mapping[LinkStatus, int], private: int = 0) -> str:
    """ "the 90 checked: 62 ok, 5 moved, 11 expired, 7 error, 3 blocked,
    1 private address, 1 drifted": the links checked by status, the report's
    figures in its order, adding up to the number they follow (`sizes`:
    links by status). The `private` ones (`private_address`), blocked by
    status, are said apart as the report says them: to fix, not to open."""
    checked = sum(n for status, n in sizes.items() if status is not LinkStatus.SKIPPED)
    said = {s: sizes.get(s, 0) - (private if s is LinkStatus.BLOCKED else 0) for s in REPORT_STATUS_ORDER}
    parts = [f"{said[s]} {s.value}" for s in REPORT_STATUS_ORDER if said[s]]
    if private:
        at = sum(1 for s in REPORT_STATUS_ORDER[:REPORT_STATUS_ORDER.index(LinkStatus.BLOCKED) + 1] if said[s])
        parts.insert(at, f"{private} private address{'es' if private > 1 else ''}")
    return f"the {checked} checked: {', '.join(parts)}"


def _problems(problems: int, links: int, urls: int) -> str:
    """ "22 problems (24 links to 20 URLs)": first the report's count, its
    rows (tiles, JSON, Pages table: a link repeated on a page, "2 times on
    this page", is one), then the links and distinct URLs they are, named
    (was "24 links to 20 URLs" beside the report's "22 Needs fixing")."""
    return f"{_count(problems, 'problem')} ({_links_to_urls(links, urls)})"


def _links_to_urls(links: int, urls: int, what: str = "") -> str:
    """"11 links to 8 URLs": both units, so that a count of links and one of
    distinct URLs elsewhere (the last line, /metrics) are not read as a clash."""
    return f"{_links(links, what)} to {_count(urls, 'URL')}"


UNFETCHED_SHOWN = 10
"""Failed pages named one by one on stderr; the rest are counted (a site
down fails every page: the JSON lists them all)."""
_ADDRESS_SUSPECT = frozenset({400, 404, 410})
"""Answers that say the address itself is likely wrong (a typo, a page renamed)."""


def cut_sites(site_cuts: Sequence[SiteCut]) -> list[str]:
    """The lines that tell a webmaster, after `check` or `run`, which
    [[sites]] crawls max_pages cut short (was a WARNING log line only)."""
    return [site_cut_words(cut) for cut in site_cuts]


def unfetched_pages(pages: Sequence[PageRecord], *, source: str, configured: Iterable[str] = (),
                    given: Iterable[str] = (), shown: int = UNFETCHED_SHOWN) -> list[str]:
    """The lines that tell a webmaster, after `check` or `run`, which pages
    could not be fetched (their links went unchecked), or [] when all were.

    Without them a site down or a mistyped page URL ended in "0 URLs on 2
    pages checked" and an exit 0, said only by WARNING log lines. A page
    whose answer says the address is wrong is pointed at where it is typed:
    its [[pages]] url in the file, or the --page argument."""
    failed = [p for p in pages if p.status == "error"]
    if not failed:
        return []
    configured, given = set(configured), set(given)
    lines = [f"{len(failed)} of {_count(len(pages), 'page')} could not be fetched; "
             f"{'its' if len(failed) == 1 else 'their'} links were not checked:"]
    for page in failed[:shown]:
        error = one_line(page.error)
        policy = _POLICY_KEY.search(error)
        if policy:  # the configuration refused it: the url is not suspect, the key is
            lines.append(f"  {one_line(page.url)}: {error[:policy.end()]} in {source}{error[policy.end():]}")
            continue
        line = f"  {one_line(page.url)}: {error or 'no answer'}"
        if error.endswith(f"({LISTED_IN_SITEMAP})"):  # the report's next step, said here too
            line += ": restore the page, or take it out of the sitemap"
        if page.http_status in _ADDRESS_SUSPECT or "DNS" in page.error:
            line += _where_typed(page.url, configured, given, f" (check its [[pages]] url in {source})",
                                 " (check the --page URL)")
        lines.append(line)
    return lines + _more(len(failed), shown, "  ... and {} more (--format json lists them: pages[].error)")


def moved_pages(pages: Sequence[PageRecord], *, source: str, configured: Iterable[str] = (),
                given: Iterable[str] = (), shown: int = UNFETCHED_SHOWN) -> list[str]:
    """A line for each page whose address redirects permanently, saying
    where to: the monitor followed it silently, while the same redirect on
    a cited link is "moved", and the day the old address stops redirecting
    the page fails. Temporary redirects are not recorded (`moved_to`)."""
    moved = [p for p in pages if p.moved_to]
    configured, given = set(configured), set(given)
    lines = []
    for page in moved[:shown]:
        lines.append(f"{one_line(page.url)}: permanently redirects to {one_line(page.moved_to or '')}"
                     + _where_typed(page.url, configured, given, f"; update its [[pages]] url in {source}",
                                    "; use the new address with --page"))
    return lines + _more(len(moved), shown, "... and {} more pages that redirect "
                                            "(--format json lists them: pages[].moved_to)")


def _where_typed(url: str, configured: set[str], given: set[str], in_config: str, on_command: str) -> str:
    """Where the webmaster typed a page's address: a [[pages]] url, or --page."""
    return in_config if url in configured else on_command if url in given else ""


def _more(total: int, shown: int, line: str) -> list[str]:
    return [line.format(total - shown)] if total > shown else []


_POLICY_KEY = re.compile(r"\bchecker\.(?:connect_to|allow_private_networks)\b")
"""The keys whose refusals monitor/pages.py names: a page refused by the
configuration's policy, said with the file to look in."""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


NOTICE_ADVICE = {
    RETRACTED: "annotate or remove the entry",
    WITHDRAWN: "link the version that replaced it, or annotate or remove the entry",
}


def _links(n: int, what: str = "") -> str:
    return _count(n, f"{what} link" if what else "link")


def _block(link: LinkResult, page_name: str, *, notice: bool = False, times: int = 1,
           more_lines: Sequence[int] = (), suspected: bool = False,
           counts_from: dt.datetime | None = None, confirmed: bool = True,
           flaps: FailTally | None = None) -> str:
    where = " > ".join(part for part in (page_name, link.section) if part)
    repeated = f" ({times} times on this page)" if times > 1 else ""
    title = link.entry_title or link.text
    lines = [f"\n  {one_line(where)}{'' if title else repeated}"]
    if title:
        lines.append(f"  {one_line(title)}{repeated}")
    lines.append(f"    {one_line(link.url)}")
    place = where_parts(link, more_lines)
    if place:
        lines.append(f"    {one_line(', '.join(place))}")
    if notice:
        lines.append(f"    {link.notice}: {one_line(link.notice_detail)}")
        return "\n".join(lines) + "\n"
    words = link_words(link, confirmed=confirmed)
    lines.append(f"    {one_line(words)}.")
    if suspected:
        # When it will count, not only that it does not yet: a webmaster who
        # ran check ten times in an hour saw "failed 13 checks" and no end.
        when = (f"; it counts if it still fails at a check after {counts_from.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
                if counts_from is not None else "; checked again before it counts")
        if flaps is not None:  # its streak is one check after a good one: the line below says more
            lines.append(f"    not confirmed yet{when}")
        else:
            lines.append(f"    not confirmed yet: failed {_count(link.strikes or 1, 'check')} in a row so far{when}")
    if flaps is not None:
        lines.append(f"    {flap_words(flaps)}")
    if says_more(link.detail, words):  # a second, quieter line: the check's own account
        lines.append(f"      detail: {one_line(link.detail)}")
    if link.status == LinkStatus.DRIFTED and link.final_url and link.final_url != link.url:
        lines.append(f"    it now leads to: {one_line(link.final_url)}")  # as the report's row says
    if link.suggested_url:
        lines.append(f"    new address: {one_line(link.suggested_url)}")
    elif link.archived_url:
        lines.append(f"    archived copy: {one_line(link.archived_url)}")
        if link.archived_oldest:  # asked with no date: as the report's row says
            said = oldest_copy(link.kind, link.url)
            lines.append(f"      ({said[0].lower()}{said[1:].rstrip('.')})")
    return "\n".join(lines) + "\n"


_BARE_DETAILS = frozenset({
    "The server did not answer within the time limit.",
    "The host name does not resolve (DNS failure).",
    "The server refused the connection.",
    "The connection was cut before an answer came.",
    "The secure connection failed (certificate or TLS error).",
    "The redirects go round in a loop.",
    "The address redirects too many times.",
    "The server sent a malformed answer.",
    "The address is not a valid URL.",
    "The address leads to a private or local network, which the monitor does not visit.",
    "The site's robots.txt asks automated checkers not to fetch this address; check it by hand.",
    "The check produced no HTTP answer.",
    "The site answered 999, LinkedIn's refusal of automated requests; "
    "a person should check it in a browser.",
})
"""The classifier's details that only restate the reason (`classify`'s
sentences for an error kind with nothing added): below the report's
sentence they would say the same thing twice."""
_ANSWERED = re.compile(r"The server answered (\d{3})\b")


def says_more(detail: str, words: str) -> bool:
    """Whether the check's detail tells a webmaster more than the report's
    sentence `words`: where a redirect ended, what the page shows now, the
    network's own error ("... (no answer after 15 s)"), how often it was
    tried. Not a bare "The server answered 404 Not Found." under "... (HTTP
    404)", nor a sentence of the classifier that restates the reason."""
    detail = " ".join(detail.split())
    if not detail or detail in _BARE_DETAILS:
        return False
    answered = _ANSWERED.match(detail)
    if answered is None:
        return True
    code = int(answered.group(1))
    try:
        said = f"The server answered {code} {HTTPStatus(code).phrase}"
    except ValueError:
        said = f"The server answered {code}"
    bare = detail in (f"{said}.", f"{said}; it refuses automated checks or needs an account.")
    return not (bare and f"HTTP {code}" in words)


def tag_words(element: str, attribute: str) -> str:
    """Where in the markup a link sits, in an editor's words: "" for a plain
    <a href> (or unknown), else "in the style attribute of a <td>", "in a
    <style> block", "in the src of an <img>"... so that a resource with no
    text of its own can be found in the page's source."""
    if not element or (element, attribute) == ("a", "href"):
        return ""
    if attribute == "style":
        return f"in the style attribute of {_a(element)} <{element}>"
    if element == "style":
        return "in an @import of a <style> block" if attribute == "@import" else "in a <style> block"
    return f"in the {attribute} of {_a(element)} <{element}>" if attribute else f"in {_a(element)} <{element}>"


def _a(word: str) -> str:
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def where_parts(link: LinkResult, more_lines: Sequence[int] = ()) -> list[str]:
    """The link's place in the page's source, as separate phrases: "line 12"
    (or "lines 12, 40" for the same link repeated), "written as /img/x.png"
    when the page's href is not the absolute URL listed, and `tag_words`.
    Web text is returned as is: each output escapes it its own way."""
    parts = []
    lines = list(dict.fromkeys(n for n in (link.line, *more_lines) if n is not None))
    if lines:
        parts.append(("line " if len(lines) == 1 else "lines ") + ", ".join(map(str, lines)))
    if link.written:
        parts.append("written as " + link.written)
    tag = tag_words(link.element, link.attribute)
    if tag:
        parts.append(tag)
    return parts


def one_line(text: str) -> str:
    """Text from the web on one line: no newline or control character can
    break the listing's layout or reach the terminal, no bidi override can
    show the text after it reordered."""
    return _CONTROL.sub(" ", text).strip()


_BIDI = "\u202a-\u202e\u2066-\u2069"
"""The bidi embeddings, overrides and isolates: they display the text after
them reordered (a URL that looks like another)."""
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}\\ud800-\\udfff]+")
"""Controls, bidi overrides, and lone surrogates: a byte of a header that
was not UTF-8, which stdout would write back raw (0x9b: the 8-bit CSI)."""
INVISIBLE = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{_BIDI}]+")
"""What no output needs and the web can smuggle past escaping: the control
characters but tab and line ends (ESC, the 8-bit CSI: terminal commands)
and the bidi controls. Removed from CSV cells here, and from the report and
the mail (`reports.render`)."""


def group_by_status(links: Sequence[LinkResult]) -> list[tuple[LinkStatus, list[LinkResult]]]:
    groups: dict[LinkStatus, list[LinkResult]] = {}
    for link in links:
        groups.setdefault(link.status, []).append(link)
    return [(status, groups[status]) for status in STATUS_ORDER if status in groups]


class StatusTally:
    """Counts by status over distinct URLs (a URL cited twice counts once, by
    its first occurrence), taken one link at a time."""

    def __init__(self) -> None:
        self.links = 0
        self._seen: dict[str, LinkStatus] = {}

    def add(self, link: LinkResult) -> None:
        self.links += 1
        self._seen.setdefault(link.url, link.status)

    def counts(self) -> dict[str, int]:
        result = {status.value: 0 for status in STATUS_ORDER}
        for status in self._seen.values():
            result[status.value] += 1
        return result


def counts(links: Iterable[LinkResult]) -> dict[str, int]:
    """Counts by status over distinct (url, status): a URL cited twice counts once."""
    tally = StatusTally()
    for link in links:
        tally.add(link)
    return tally.counts()


def url_spellings(url: str) -> list[str]:
    """Other spellings of `url` that may be the one the monitor stored: a
    URL is kept as the page wrote it (resolved), and a user typing it from
    memory drops the trailing slash, the "www." or the "s" of https."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url.strip())
    except ValueError:  # "https://a[b/": no other spelling to offer
        return []
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return []
    hosts = [parts.netloc.lower()]
    hosts.append(hosts[0][4:] if hosts[0].startswith("www.") else "www." + hosts[0])
    path = parts.path or "/"
    paths = [path, path[:-1] if path.endswith("/") and path != "/" else path + "/"]
    found: list[str] = []
    for scheme in (parts.scheme, "https" if parts.scheme == "http" else "http"):
        for host in hosts:
            for p in paths:
                candidate = urlunsplit((scheme, host, p, parts.query, ""))
                if candidate != url and candidate not in found:
                    found.append(candidate)
    return found


def _spans(ids: Iterable[int]) -> list[list[int]]:
    spans: list[list[int]] = []
    for n in sorted(set(ids)):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return spans


def runs_phrase(ids: Iterable[int], shown: int = 6) -> str:
    """The runs a database holds, as ranges: "runs 1-3 exist", "runs 1-40,
    45, 47-52 exist", "no run exists yet"; what `report --run 99` says
    besides "there is no run 99" (pruning leaves gaps). A long list keeps
    its first and last ranges."""
    spans = _spans(ids)
    if not spans:
        return "no run exists yet"
    words = [f"{a}" if a == b else f"{a}-{b}" for a, b in spans]
    if len(words) > shown:
        words = [*words[:shown // 2], "...", *words[-(shown - shown // 2):]]
    one = len(spans) == 1 and spans[0][0] == spans[0][1]
    return f"run {words[0]} exists" if one else f"runs {', '.join(words)} exist"


FIX_ON_PAGE = "; fix the link on the page"
"""What a malformed link asks, while a page lists it."""
NEVER_REQUESTED = {
    "invalid_url": "malformed, never requested: it is not a valid address, so nobody can open it" + FIX_ON_PAGE,
    "unsupported_scheme": "never requested: the monitor checks http and https links only",
    "mailto": "not checked: an e-mail address (mailto:), which the monitor does not request",
    "tel": "not checked: a telephone number (tel:), which the monitor does not request",
    "javascript": "not checked: a script (javascript:), which the monitor does not request",
    "data": "not checked: data written inside the page (data:)",
    "fragment": "not checked: a jump within the page",
    "excluded": "not checked: excluded by the configuration (checker.exclude)",
}
"""What `monitor history` says of a link the pages list but the monitor
never requests, by its skip reason: it has occurrences and no check."""


def sighting_lines(href: str, citations: Sequence[Any], page_names: dict[str, str], since_run: int,
                   since: dt.datetime | None, told: Story | None = None,
                   instead: Sequence[tuple[str, str | None, str | None]] = ()) -> list[str]:
    """`monitor history` of a link listed but never requested (`http://`, a
    mailto:): why it has no checks, and where it sits, page by page with its
    lines, since which run. Was "never checked (not found in the database)"
    of a link the report lists."""
    reasons = [c.skip_reason for c in citations if c.skip_reason]
    words = NEVER_REQUESTED.get(reasons[0], f"not checked ({reasons[0]})") if reasons else (
        "listed, not checked yet (its audit stopped before it)")
    if told is not None and told.known and not told.cited:  # off the pages: where it was, since when
        flagged = bool(reasons) and reasons[0] == "invalid_url"
        return [f"{one_line(href)}: {words.removesuffix(FIX_ON_PAGE)}",
                *(f"  {line}" for line in place_lines(told, flagged=flagged, instead=instead))]
    lines = [f"{one_line(href)}: {words}"]
    by_page: dict[str, list[int]] = {}
    for c in citations:
        by_page.setdefault(c.page_url, [])
        if c.line is not None:
            by_page[c.page_url].append(c.line)
    for page, numbers in by_page.items():
        name = page_names.get(page, "")
        place = f"{one_line(name)} ({one_line(page)})" if name else one_line(page)
        numbers = list(dict.fromkeys(numbers))
        at = (": line " if len(numbers) == 1 else ": lines ") + ", ".join(map(str, numbers)) if numbers else ""
        lines.append(f"  on {place}{at}")
    when = f" ({since:%Y-%m-%d})" if since is not None else ""
    lines.append(f"  listed since run {since_run}{when}")
    if told is not None:  # removed, then restored
        lines += [f"  {line}" for _, line in absence_lines(told)]
    return lines


def sighting_dict(citations: Sequence[Any], latest_run: int, since_run: int) -> dict[str, Any]:
    """`monitor history --format json` of a link never requested: what
    `sighting_lines` says, for a script (`observations` alone was [])."""
    reasons = [c.skip_reason for c in citations if c.skip_reason]
    return {
        "reason": reasons[0] if reasons else "not_checked_yet",
        "places": [{"page": c.page_url, "line": c.line, "section": c.section} for c in citations],
        "listed_since_run": since_run,
        "latest_run": latest_run,
    }


def history_dicts(entries: Sequence[HistoryEntry]) -> list[dict[str, Any]]:
    """`monitor history --format json`: `http_status` as `check` gives it (the
    answer that decided the status: a permanent redirect's own 301/308), and
    `final_http_status`, the last answer of the chain, as the text shows it."""
    out = []
    for e in entries:
        deciding = e.http_status
        if e.reason == "permanent_redirect" and e.redirects:
            deciding = e.redirects[0].status
        out.append({
            "run_id": e.run_id,
            "checked_at": _plain(e.checked_at),
            "status": e.status.value,
            "reason": e.reason,
            "http_status": deciding,
            "final_http_status": e.http_status,
            "final_url": e.final_url,
            "redirects": [{"url": h.url, "status": h.status, "location": h.location} for h in e.redirects],
            "elapsed_ms": e.elapsed_ms,
            "bytes_read": e.bytes_read,
            "title": e.title,
            "detail": e.detail,
            "suggested_url": e.suggested_url,
            "notice": e.notice,
            "notice_detail": e.notice_detail,
        })
    return out


# -- where a link stands on the pages (monitor history) -------------------------


@dataclass(frozen=True, slots=True)
class Story:
    """`Whereabouts` as an editor asks it: where is the link now, or since
    when is it on no watched page, and was it off the page in between."""

    cited: tuple[Citation, ...] = ()
    """Where it is now: its occurrences on each page whose latest read lists it."""
    last: tuple[tuple[Citation, RunInfo | None], ...] = ()
    """On no page now: where it was last, each with the run that last listed it."""
    left: RunInfo | None = None
    """On no page now: the run since which no read of its pages lists it."""
    absent: tuple[tuple[dt.datetime, int], ...] = ()
    """(when, run) of the runs after it first appeared that read its page(s)
    and found it on none: a link removed, then restored, shows the gap."""
    runs: Mapping[int, RunInfo] = field(default_factory=dict)
    as_of: Mapping[str, RunInfo] = field(default_factory=dict)
    """Each page's latest read's run: `cited` is as of it."""
    stale: frozenset[str] = frozenset()
    """Pages of `cited` the latest full audit did not read at all."""
    pages: int = 0
    names: Mapping[str, str] = field(default_factory=dict)
    excluded: RunInfo | None = None
    """Cited, but excluded by the configuration wherever it is: the run
    since which every read listing it had it excluded. The report counts it
    "no longer checked"; its latest check is the last there will be."""

    @property
    def known(self) -> bool:
        """Some kept run listed the link (else nothing is said of pages)."""
        return bool(self.cited or self.last)

    @property
    def checked_now(self) -> bool:
        """On a page the audits still read, not excluded there: its latest
        check is "now"."""
        return any(c.page_url not in self.stale and c.skip_reason != "excluded" for c in self.cited)


def story(where: Whereabouts) -> Story:
    """Read `Whereabouts` run by run (pure): a page's latest read says
    whether the link is there now; a run whose reads of its pages all lack
    it is a gap; with every page's latest read lacking it, it left in the
    latest of the runs that first lacked it on each page."""
    if not where.reads:
        return Story()
    runs = {r.id: r for r in where.runs}
    by_page: dict[str, list[PageRead]] = {}
    by_run: dict[int, list[PageRead]] = {}
    for read in where.reads:
        by_page.setdefault(read.page_url, []).append(read)
        by_run.setdefault(read.run_id, []).append(read)
    listing = {page: max((r.run_id for r in reads if r.present), default=0) for page, reads in by_page.items()}
    now = {page for page, reads in by_page.items() if reads[-1].present}
    first = min((r.run_id for r in where.reads if r.present), default=None)
    absent = tuple((min(r.at for r in reads), run_id) for run_id, reads in sorted(by_run.items())
                   if first is not None and run_id > first and not any(r.present for r in reads))
    as_of = {page: runs[reads[-1].run_id] for page, reads in by_page.items() if reads[-1].run_id in runs}
    base = Story(runs=runs, absent=absent, pages=len(by_page), names=where.names, as_of=as_of,
                 stale=frozenset(p for p in now if p in where.dropped))
    if now:
        cited = tuple(c for c in where.last_cited if c.page_url in now)
        return replace(base, cited=cited, excluded=_excluded_since(by_run, runs) if cited and all(
            c.skip_reason == "excluded" for c in cited) else None)
    since = max((min(r.run_id for r in reads if r.run_id > listing[page])
                 for page, reads in by_page.items() if listing[page]), default=None)
    last = tuple((c, runs.get(listing.get(c.page_url, 0))) for c in where.last_cited)
    return replace(base, last=last, left=runs.get(since) if since is not None else None)


def _excluded_since(by_run: Mapping[int, Sequence[PageRead]], runs: Mapping[int, RunInfo]) -> RunInfo | None:
    """The first of the latest runs in a row whose reads listing the link
    all had it excluded: since when it is no longer checked."""
    since = None
    for run_id in sorted(by_run, reverse=True):
        listed = [r for r in by_run[run_id] if r.present]
        if not listed:  # a check of its other pages only, or a gap: no word either way
            continue
        if not all(r.excluded for r in listed):
            break
        since = run_id
    return runs.get(since) if since is not None else None


def _where_cited(citations: Sequence[Citation], names: Mapping[str, str], run: RunInfo | None,
                 lead: str) -> list[str]:
    """ "last on Raynaud's treatments (URL): line 118, “Keeping Warm” (run 1,
    2026-11-27)": one line per page and entry, its lines together."""
    by_place: dict[tuple[str, str], list[int]] = {}
    for c in citations:
        title = one_line((c.context.title if c.context is not None and c.context.title else c.anchor_text) or "")
        numbers = by_place.setdefault((c.page_url, title), [])
        if c.line is not None:
            numbers.append(c.line)
    when = f" (run {run.id}, {run.started_at:%Y-%m-%d})" if run is not None else ""
    lines = []
    for (page, title), numbers in by_place.items():
        name = names.get(page, "")
        place = f"{one_line(name)} ({one_line(page)})" if name else one_line(page)
        numbers = list(dict.fromkeys(numbers))
        at = [("line " if len(numbers) == 1 else "lines ") + ", ".join(map(str, numbers))] if numbers else []
        if title:
            at.append("\u201c" + (title if len(title) <= 80 else title[:79] + "\u2026") + "\u201d")
        lines.append(f"{lead} {place}" + (f": {', '.join(at)}" if at else "") + when)
    return lines


def place_lines(told: Story, *, flagged: bool,
                instead: Sequence[tuple[str, str | None, str | None]] = (),
                excluded_by: str = "excluded by checker.exclude") -> list[str]:
    """Where the link is cited now, as of the latest read of each page, or
    since which run it is on no watched page and where it was last.
    "reported fixed" when it was a problem then (`flagged`), a weekly report
    came since, and its entry does not link to another broken address:
    `instead` holds the entry's links in the run it left in (URL or href,
    status, skip reason), as the report's "fixed" tells them apart.
    Cited but excluded: since which run, in the words of the report's "no
    longer checked" line (`excluded_by`: which settings exclude)."""
    if told.cited:
        lines = []
        for page in dict.fromkeys(c.page_url for c in told.cited):
            gone = "; that page is no longer audited" if page in told.stale else ""
            lines += [line + gone for line in _where_cited(
                [c for c in told.cited if c.page_url == page], told.names, told.as_of.get(page), "cited on")]
        if told.excluded is not None:
            lines.append(f"{excluded_by} since run {told.excluded.id} "
                         f"({told.excluded.started_at:%Y-%m-%d}): no longer checked")
        return lines
    if not told.last:
        return []
    left = told.left
    since = f" since run {left.id} ({left.started_at:%Y-%m-%d})" if left is not None else ""
    broken = [(link, status) for link, status, skip in instead
              if status not in (None, "ok", "skipped") or (status is None and skip == "invalid_url")]
    reported = flagged and not broken and left is not None and any(
        r.id >= left.id and not r.partial and r.reported_at is not None for r in told.runs.values())
    head = f"not on any watched page{since}" + (": reported fixed" if reported else "")
    if broken:
        head += f"; its entry links to {one_line(broken[0][0])} instead, a problem too ({broken[0][1] or 'malformed'})"
    elif instead:
        head += f"; its entry now links to {one_line(instead[0][0])}"
    lines = [head]
    for c, run in told.last:
        lines += _where_cited([c], told.names, run, "last on")
    return list(dict.fromkeys(lines))


def absence_words(run_ids: Sequence[int], pages: int) -> str:
    """ "not on the page in run 2", "not on its 2 pages in runs 3-5": a
    stretch of audits that read the link's page and found it gone."""
    spans = _spans(run_ids)
    words = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
    where = "the page" if pages == 1 else f"its {pages} pages"
    plural = len(run_ids) > 1
    return f"not on {where} in run{'s' if plural else ''} {words}"


def whereabouts_dict(told: Story) -> dict[str, Any]:
    """`monitor history --format json`'s added keys (after the others):
    where the link is cited now, since which run it is on no watched page,
    and the runs that read its page without it."""
    return {
        "cited": [{"page": c.page_url, "line": c.line, "section": c.section,
                   "entry_title": c.context.title if c.context is not None else None,
                   "run_id": told.as_of[c.page_url].id if c.page_url in told.as_of else None}
                  for c in told.cited],
        "off_the_pages_since_run": told.left.id if told.left is not None else None,
        "absent_in_runs": [run_id for _, run_id in told.absent],
    }


def absence_lines(told: Story, entries: Sequence[HistoryEntry] = ()) -> list[tuple[dt.datetime, str]]:
    """(when, line) for the runs that found the link off its page, to go
    between the checks' lines: "2026-11-27 17:55  not on the page in run
    2"; runs in a row with no check between them are one line ("in runs
    3-52"). Without `entries`, the absences alone (a link never requested
    has no checks)."""
    lines: list[tuple[dt.datetime, str]] = []
    stretch: list[tuple[dt.datetime, int]] = []
    times = sorted(e.checked_at for e in entries)
    for at, run_id in told.absent:
        if stretch and any(stretch[-1][0] < t < at for t in times):
            lines.append(_absence_line(stretch, told.pages))
            stretch = []
        stretch.append((at, run_id))
    if stretch:
        lines.append(_absence_line(stretch, told.pages))
    return lines


def _absence_line(stretch: Sequence[tuple[dt.datetime, int]], pages: int) -> tuple[dt.datetime, str]:
    return stretch[0][0], f"{stretch[0][0]:%Y-%m-%d %H:%M}  {absence_words([r for _, r in stretch], pages)}"


def fixed_lines(fixed: Sequence[Any], previous: RunInfo | None) -> list[str]:
    """`monitor check --page`'s answer to the editor who just fixed an entry:
    the last report's problems on the pages checked that are fixed now, each
    as the report's "Fixed since the last report" says it (`Fixed`, from
    reports.audit: the entry now links to URL, the link was removed, it
    works again). Without a report to compare with, nothing."""
    if previous is None:
        return []
    since = f"the last report (run {previous.id}, {previous.started_at:%d %b %Y})"
    if not fixed:
        return [f"Fixed since {since}: nothing on the pages checked."]
    lines = [f"Fixed since {since}: {_count(len(fixed), 'link')}"]
    for f in fixed:
        link = f.link
        lines.append(f"  + {one_line(link.entry_title or link.text or link.url)} ({one_line(f.page_title)})")
        lines.append(f"    {f.words}" + (f": {one_line(f.new_url)}" if f.new_url else ""))
        where = " \u00b7 ".join(where_parts(link, f.more_lines))
        lines.append(f"    Was: {f.was} ({one_line(link.url)})" + (f", {where}" if where else ""))
    return lines
