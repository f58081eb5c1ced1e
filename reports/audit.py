"""One run's links -> the `Audit` an editor acts on. Pure.

The audit answers the editor's questions in their order: what needs fixing
(by page, then section, then entry, because that is how they walk the site),
what a person must look at (bot walls, logins), what got fixed since the last
report, and what is odd about the entries themselves (cited articles retracted
or withdrawn since, first; stale "(Expired Article)" marks, duplicate citations, entries
without a source). It compares with the run of the previous *report*, not the
previous run, because "new" means "new since you last heard from us".

It takes plain lists of `monitor.types` values (the store's answers) so that
tests build them by hand, and the clock comes in as `now`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from monitor.accept import current, ended_words, in_force, lapsed_since
from monitor.classify import gone_here
from monitor.config import ReportSettings
from monitor.notices import RETRACTED, WITHDRAWN
from monitor.textfragment import FRAGMENT_WORDS, encode_piece, fragment_words
from monitor.types import (
    Acceptance,
    FailTally,
    LinkKind,
    LinkResult,
    LinkStatus,
    PageRecord,
    RunInfo,
    SiteCut,
    UrlState,
    as_utc,
)
from monitor.wording import (
    GROUPS,
    HOLDS_NO_LINKS,
    MARKED_DEAD,
    NEEDS_A_PERSON,
    NEEDS_FIXING,
    WATCHING,
    acknowledged,
    attention,
    private_address,
    problem_confirmed,
)
from reports import wording

__all__ = [
    "BULK_MIN_HOSTS",
    "BULK_MIN_MOVED",
    "BULK_MIN_PAGES",
    "BULK_SHOWN",
    "CONTENT_FIELDS",
    "BulkFixes",
    "HostMove",
    "SharedLink",
    "SharedRewrite",
    "bulk_fixes",
    "FLAGGED",
    "Audit",
    "ContentAudit",
    "ContentIssue",
    "Counts",
    "Entry",
    "Fixed",
    "GonePage",
    "OtherLinks",
    "PageGroup",
    "Problem",
    "Section",
    "audit_for_pages",
    "build_audit",
    "default_site_name",
    "in_summary_order",
    "newest_problems",
    "page_slug",
    "page_slugs",
    "summary_order",
    "summary_reading_keys",
    "summary_tier",
    "SUMMARY_TIERS",
    "pages_with_gone_problems",
    "search_for",
]

FLAGGED = frozenset({LinkStatus.MOVED, LinkStatus.EXPIRED, LinkStatus.ERROR,
                     LinkStatus.BLOCKED, LinkStatus.DRIFTED})
"""Statuses that put a link in the report's problem sections."""

HEAVY_CHANGE_MIN = 3
"""A page "changed heavily" when at least this many entries came or went..."""
HEAVY_CHANGE_FRACTION = 0.25
"""...and at least this share of its previous entries: small pages stay quiet."""

TEXT_FRAGMENT_WORDS = FRAGMENT_WORDS
"""Words of the entry title in "open the entry" links: enough to be unique on a
page, few enough to survive whitespace quirks and keep the mail small (the
extractor, which checks they find this link, counts them the same)."""

_DEAD = frozenset({LinkStatus.EXPIRED, LinkStatus.ERROR, LinkStatus.DRIFTED, LinkStatus.MOVED})
_READ = frozenset({"ok", "not_modified"})
"""Page statuses whose links and entries are known: a 304 is read from its last copy."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One flagged link, with everything the editor needs to act on it."""

    link: LinkResult
    words: str
    """What happened, in plain words ("The publisher removed this article")."""
    advice: str
    """What to do about it."""
    since: dt.datetime | None
    weeks_open: int
    confirmed: bool
    """False for a first failure that rechecks may still clear ("suspected")."""
    new: bool
    """Not flagged in the previous report's run."""
    fix_url: str | None = None
    fix_label: str = ""
    """ "New address", "Archived copy" or "Suggested address"."""
    page_link: str = ""
    """The page, scrolled to the entry where browsers support text fragments."""
    search_url: str | None = None
    """A search for the entry's title, to find where the article lives now."""
    occurrences: int = 1
    """How many times this entry links this URL on the page (menus repeat links)."""
    suspicion: str = ""
    """Why an unconfirmed failure is only suspected ("failed 3 checks in a row, over
    less than a day so far"); empty when confirmed, and for blocked links."""
    rechecked: bool = True
    """False for a problem of the last report whose page could not be fetched
    this time: `link` is as the last report saw it."""
    since_at_least: bool = False
    """`since` is only when the last report listed it (a malformed address is
    never checked, so nothing dates it better): it may be older."""
    more_lines: tuple[int, ...] = ()
    """The source lines of the link's other `occurrences` (the first is
    `link.line`): the editor fixes every copy."""
    confirmed_now: bool = False
    """New to the editor because the previous report only watched it (a first
    failure) and it is confirmed now: shown "NEW · NOW CONFIRMED", not plain "NEW" a
    second week running."""
    search_label: str = ""
    """What `search_url` searches, as its link says: "Search PubMed for the
    title", "... Google Scholar ...", "Search the web for the title"."""
    watched_again: bool = False
    """The previous report only watched it too (a first failure, never
    listed as a problem) and it is still only watched: not NEW again at
    each report (a webmaster's same-day reruns), but "watched since 27 Nov"."""
    replaced_url: str | None = None
    """The dead address of the previous report's row that the editor
    replaced by this link, broken too: this row continues that one (still
    open, since its first week), and says so (walkthrough 10 #1)."""
    replaced_on: dt.datetime | None = None
    """When the new link was first seen there (this run, or the first check
    of its address since the previous report)."""
    reported_fixed_on: dt.datetime | None = None
    """A problem of the report before the previous one, which the previous
    report listed as fixed (its run's start): it is back, new again to the
    editor, badged "BACK" (walkthrough 10 #7)."""
    worked_again: bool = False
    """With `reported_fixed_on`: the link itself answered again then (else
    the entry had stopped linking it, and links it again now)."""
    acceptance: Acceptance | None = None
    """A person's "checked by hand, it is fine" (`monitor accept`): holding,
    for a row of `Audit.accepted`; for a listed row, the one that just
    stopped holding (`back` says why)."""
    back: str = ""
    """Why a row an acceptance kept out of the problems is listed again
    ("Checked by ana on 20 Nov 2026; listed again: its answer changed ...")."""
    flaps: FailTally | None = None
    """For a failing link that keeps switching between working and failing
    (`LinkResult.flapping`): how often it failed over the checks kept. Its
    row says that ("fails now and then: failed 18 of the last 52 checks,
    since 24 Nov 2025; last ok 9 Nov 2026"), never "NEW", "first seen" or
    "failed once so far" each time it fails after a good week
    (walkthrough 11 #1)."""

    @property
    def label(self) -> str:
        return wording.status_label(self.link.status)

    @property
    def fix_note(self) -> str:
        """Said under an archived copy that is the oldest the archive holds."""
        return _fix_note(self.link, self.fix_label)

    @property
    def quiet_fix(self) -> str:
        """For a row only watched, the words of its fix's quiet line ("If it
        stays down, an archived copy"); "" for the others, whose fix is a box."""
        return wording.if_it_stays_down(self.fix_label) if self.fix_url and self.only_watched else ""

    @property
    def only_watched(self) -> bool:
        """Under "Watching" (a first timeout or 5xx): not a problem yet,
        counted neither new nor still open, so it carries no badge."""
        return attention(self.link.status, self.link.reason, confirmed=self.confirmed) == WATCHING

    @property
    def badge(self) -> str:
        """ "NEW", "NEW · NOW CONFIRMED", "NEW · BACK", "NEW · AGAIN", or ""
        for a problem still open and for a row only watched: a row says NEW
        exactly when the headline's "8 new" counts it (`_count`: the problems
        with `new`), so an editor searching the report for NEW finds them all
        (review 13 #3: 2 rows said "NEW", 6 only "NOW CONFIRMED"). What
        follows the word says how it is new; the JSON keeps `new`."""
        if self.only_watched or not self.new:
            return ""
        if self.flaps is not None:
            return "NEW · AGAIN"  # fails now and then, and again now: its age line says how often
        if self.confirmed_now:
            return "NEW · NOW CONFIRMED"
        if self.reported_fixed_on is not None or self.back:
            return "NEW · BACK"  # reported fixed, or checked by hand, and listed again
        return "NEW"

    @property
    def since_words(self) -> str:
        if self.flaps is not None:
            return wording.flap_words(self.flaps)
        return wording.since_words(self.since, self.weeks_open, new=self.new,
                                   at_least=self.since_at_least)

    @property
    def age_words(self) -> str:
        """ "open 3 weeks, since 2 Nov 2026" / "first seen 23 Nov 2026" /
        "watched since 23 Nov 2026" / "back: reported fixed on 20 Nov 2026; ..." /
        "fails now and then: failed 18 of the last 52 checks, ..."."""
        if self.flaps is not None:
            flaps = wording.flap_words(self.flaps)
            if self.new or self.watched_again or self.only_watched:
                return flaps  # its failing streak is this week's: its history says more
            return wording.age_words(self.since, self.weeks_open, new=False,
                                     at_least=self.since_at_least) + "; " + flaps
        if self.reported_fixed_on is not None:
            return wording.back_words(self.reported_fixed_on, worked_again=self.worked_again)
        return wording.age_words(self.since, self.weeks_open, new=self.new,
                                 at_least=self.since_at_least, watched=self.watched_again,
                                 failing=self.link.status in (LinkStatus.EXPIRED, LinkStatus.ERROR))

    @property
    def kind_note(self) -> str:
        """ "navigation link", "image the page loads"; "" for a citation."""
        return wording.kind_note(self.link.kind, self.link.url)

    @property
    def page_link_note(self) -> str:
        """ "it is the 2nd “Symptoms” on the page": the page link's words
        stand earlier too, and nothing near the link sets it apart."""
        return nth_note(self.link)

    @property
    def page_link_label(self) -> str:
        """A menu link or an image is no entry: the link to the page says so."""
        if self.link.kind == LinkKind.CITATION:
            return "Open the entry on the page"
        return "Find the link on the page" if self.link.kind == LinkKind.NAVIGATION else "Open the page"


@dataclass(frozen=True, slots=True)
class Entry:
    """A citation entry as it reads on the page, with its flagged links."""

    title: str
    source: str
    expired_mark: bool
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class PageGroup:
    """One watched page's problems, grouped as the page reads."""

    url: str
    title: str
    owner: str
    sections: tuple[Section, ...]

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(p for s in self.sections for e in s.entries for p in e.problems)


@dataclass(frozen=True, slots=True)
class Fixed:
    """A link flagged in the previous report that is no longer a problem."""

    link: LinkResult
    """The link as the previous report saw it."""
    how: str
    """works_again | link_updated | removed | not_checked"""
    words: str
    page_title: str
    new_url: str | None = None
    was: str = ""
    """What the previous report said about it."""
    more_lines: tuple[int, ...] = ()
    """The source lines of the link's other copies in that row (menu and
    footer), as the previous report listed them: with `link.line`, where the
    editor checking the fix finds the entry."""


@dataclass(frozen=True, slots=True)
class GonePage:
    """A page of the previous report with open problems that this run did
    not audit at all (taken out of the configuration, no longer reached by a
    crawl): its problems are neither fixed nor still open here, and without
    a word they vanished from the counts (walkthrough 9, finding 5)."""

    url: str
    title: str
    open: int
    """The previous report's problems on it (needs fixing, needs a person)."""
    watching: int = 0
    """The links the previous report only watched on it (not in `open`)."""
    why: str = ""
    """Why it was not audited, as far as the configuration tells:
    "no longer in the configuration"."""
    owner: str = ""


@dataclass(frozen=True, slots=True)
class ContentIssue:
    """Something about a page's entries rather than a link's target."""

    kind: str
    """retracted | withdrawn | stale_mark | dead_mark | duplicate | no_link |
    no_source | old_citation | page_error | page_changed"""
    page: str
    page_title: str
    entry: str
    words: str
    url: str | None = None
    fix_url: str | None = None
    fix_label: str = ""
    fix_note: str = ""
    """Said under the fix: `wording.OLDEST_COPY` for the oldest archived copy,
    as under a problem's (`Problem.fix_note`)."""
    related: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    """Every page concerned (a duplicate spans several); filters owner reports."""
    rechecked: bool = True
    """False for a note of a page this run could not fetch, as the last
    report that read the page saw it (its words say so)."""
    section: str = ""
    """The page section of the entry ("" for a page-wide note)."""
    page_link: str = ""
    """The page scrolled to the entry (a text fragment) when the entry's
    words are known: the editor must find the entry to act on the note."""
    line: int | None = None
    """Where the note's link sits in the page's source, as `LinkResult`
    has it (None, "": unknown, or a note without a link): the report shows
    it as it does for a problem's link (`output.where_parts`), since the
    editor must find the entry to annotate or fix it."""
    written: str = ""
    element: str = ""
    attribute: str = ""
    more_lines: tuple[int, ...] = ()
    """The lines of the link's other copies: the entry's other listings
    (each carries the mark to remove, the notice to add), or, for a
    duplicate, every entry of the page citing the address."""
    page_link_note: str = ""
    """With `page_link`: "it is the 2nd “...” on the page" when its words
    stand earlier on the page too and nothing near the entry sets it apart."""
    link_reason: str = ""
    """The check's reason for the note's link ("parked_domain"...): the
    report shows the address as text, not as a link, where a reader should
    not be sent (`wording.not_linked`)."""
    link_confirmed: bool = False
    """The note's link is a problem whose failure is confirmed (`Problem.confirmed`):
    a lapsed domain is then shown as text, as its row shows it
    (`wording.not_linked`; a content note read it as a live link)."""


@dataclass(frozen=True, slots=True)
class ContentAudit:
    retracted: tuple[ContentIssue, ...] = ()
    """Cited articles whose page says they were retracted: first, because a
    medical page resting on a retracted study misleads its readers."""
    withdrawn: tuple[ContentIssue, ...] = ()
    """Cited articles whose page says they were withdrawn (a Cochrane review
    out of date or in error, an article in press pulled): shown in the
    retracted group, after the retracted, each row saying which; apart in
    the data (JSON `content_audit.withdrawn`)."""
    stale_marks: tuple[ContentIssue, ...] = ()
    dead_marks: tuple[ContentIssue, ...] = ()
    duplicates: tuple[ContentIssue, ...] = ()
    no_link: tuple[ContentIssue, ...] = ()
    no_source: tuple[ContentIssue, ...] = ()
    old_citations: tuple[ContentIssue, ...] = ()
    pages_failed: tuple[ContentIssue, ...] = ()
    pages_changed: tuple[ContentIssue, ...] = ()
    notices_marked: tuple[ContentIssue, ...] = ()
    """Cited articles retracted or withdrawn whose entries already say so
    (the editor followed the advice): listed apart, quietly, never in the
    headline or the subject, which would otherwise repeat them every week
    and teach editors to skip the group. Rows keep their notice as kind."""

    GROUPS = (
        ("retracted", "Cited articles that were retracted"),
        ("pages_failed", "Pages that could not be fetched"),
        ("pages_changed", "Pages that changed heavily since the last run"),
        ("stale_marks", "Marked \u201c(Expired Article)\u201d but the link works again"),
        ("dead_marks", "Marked \u201c(Expired Article)\u201d and the link is still dead"),
        ("notices_marked", "Retracted or withdrawn, already marked in the entry"),
        ("duplicates", "One address cited under different titles"),
        ("no_link", "Entries without a link"),
        ("no_source", "Entries without a source line"),
        ("old_citations", "Old citations"),
    )

    def heading(self, key: str) -> str:
        """The group's heading; the first one's names what it holds
        ("retracted", "withdrawn", or "retracted or withdrawn")."""
        if key == "retracted" and self.withdrawn:
            return ("Cited articles that were retracted or withdrawn" if self.retracted
                    else "Cited articles that were withdrawn")
        return dict(self.GROUPS)[key]

    def issues(self, key: str) -> tuple[ContentIssue, ...]:
        """The rows of group `key`: the "retracted" group holds the
        withdrawn articles too, after the retracted ones."""
        return self.notices if key == "retracted" else getattr(self, key)

    @property
    def notices(self) -> tuple[ContentIssue, ...]:
        """The cited articles retracted, then those withdrawn: one group,
        since the editor does the same kind of thing about both."""
        return self.retracted + self.withdrawn

    def groups(self) -> list[tuple[str, str, tuple[ContentIssue, ...]]]:
        """(key, heading, issues) for every non-empty group, in report order."""
        return [(key, self.heading(key), self.issues(key)) for key, _ in self.GROUPS if self.issues(key)]

    @property
    def total(self) -> int:
        return sum(len(getattr(self, key)) for key in CONTENT_FIELDS)


CONTENT_FIELDS = tuple(f.name for f in fields(ContentAudit))
"""ContentAudit's lists, each group's and the withdrawn (shown in the retracted group)."""


@dataclass(frozen=True, slots=True)
class OtherLinks:
    """A page's links that ask nothing of anyone: the compact list."""

    url: str
    title: str
    links: tuple[LinkResult, ...]

    @property
    def ok(self) -> int:
        """Its links that work; the others were not checked (mailto, in-page
        jumps, excluded). Counted here for the report, the mail, the text and
        the JSON alike."""
        return sum(l.status == LinkStatus.OK for l in self.links)


@dataclass(frozen=True, slots=True)
class Counts:
    checked: int = 0
    ok: int = 0
    moved: int = 0
    expired: int = 0
    error: int = 0
    blocked: int = 0
    drifted: int = 0
    skipped: int = 0
    new: int = 0
    still: int = 0
    fixed: int = 0
    confirmed: int = 0
    suspected: int = 0
    watching: int = 0
    urls: int = 0
    pages: int = 0
    pages_failed: int = 0
    content: int = 0
    no_longer_checked: int = 0
    """Problems of the previous report whose link is not checked any more
    (excluded since): not fixed, not open (`Audit.no_longer_checked`)."""
    no_longer_audited: int = 0
    """Problems of the previous report on pages this run did not audit
    (`Audit.no_longer_audited`): with `still`, `fixed` and
    `no_longer_checked`, the previous report's open problems, reconciled."""
    needs_fixing: int = 0
    """Of `open`, the rows under "Needs fixing" (an editor changes the
    entry); the rest, `needs_a_person`, only need opening in a browser. The
    report's tiles, and the index of reports' summary reads them here."""
    needs_a_person: int = 0
    accepted: int = 0
    """Rows a person checked by hand and found fine (`Audit.accepted`): not
    problems, not in `new` or `still`."""
    newly_accepted: int = 0
    """Of `accepted`, the rows the previous report listed as open problems:
    with `still`, `fixed`, `no_longer_checked` and `no_longer_audited`, the
    previous report's open problems, reconciled."""
    private_address: int = 0
    """Of `blocked`, the links to a private network address (an intranet):
    to fix, under "Needs fixing", badged PRIVATE ADDRESS; the totals line
    says them apart ("3 blocked · 1 private address"), so that "4 blocked"
    no longer sits above "3 Needs a person" (review 15 #2)."""

    @property
    def open(self) -> int:
        return self.new + self.still


BULK_MIN_PAGES = 3
"""A URL flagged on at least this many pages is one fix (a menu or footer of
the site's template, a source cited everywhere), said once at the top."""
BULK_MIN_MOVED = 5
"""A host with at least this many moved addresses whose new addresses share
one rewrite (walkthrough 11 #4: a publisher moving all its URLs) is one
search and replace, said once at the top."""
BULK_MIN_HOSTS = 3
"""At least this many hosts whose links moved the same way on each (the same
path change, or http to https with the same paths) are one line, not a line
per host (walkthrough 12: 372 publishers' "/doi/" -> "/doi/full/" were 20
near-identical lines and "352 more"; a hosting platform changing its
journals' addresses, hundreds of sites moving to https): one search and
replace clears them all."""
BULK_SHOWN = 20
"""At most this many of each (the biggest): the block stays short at the top
of a report of 10,000 rows; the rest are counted."""


@dataclass(frozen=True, slots=True)
class SharedLink:
    """One URL flagged on `BULK_MIN_PAGES` pages or more: one fix clears
    all its rows (a dead "Contact us" in the footer of 100 pages was 100
    cards, and 100 of the headline's "new")."""

    url: str
    status: LinkStatus
    reason: str
    http_status: int | None
    pages: int
    rows: int
    """The report's rows of it (one per page and entry)."""
    text: str
    """The link's text on most pages ("Contact us"), else its entry's title."""
    navigation: bool
    """Most of its rows are navigation links: likely in the site's template."""
    line: int | None
    """The source line, when it is the same on every page (a template's)."""
    fix_url: str | None
    """The new (or archived) address, when every row has the same."""
    first_page: str
    """The page of its first row in the report's order, ..."""
    place: str
    """... and where that row is ("fix": Needs fixing, "person")."""


@dataclass(frozen=True, slots=True)
class HostMove:
    """A host whose moved links' new addresses share one rewrite: the same
    new host ("journal5.example.org moved to www.newpublisher.example.com",
    `same_paths` when only the host changes), or, on the same host, the
    same path change ("/doi/" -> "/doi/full/")."""

    host: str
    new_host: str
    new_scheme: str
    """The new addresses' scheme when it differs from the old ones' (http ->
    https), else ""."""
    old_part: str
    new_part: str
    """The path change on one host ("/doi/", "/doi/full/"); "" for a move to
    another host."""
    same_paths: bool
    """The new addresses keep the old paths: a search and replace of the host."""
    urls: int
    links: int
    """The report's rows (a URL cited on two pages is two rows)."""
    pages: int
    first_page: str
    place: str


@dataclass(frozen=True, slots=True)
class SharedRewrite:
    """One rewrite that `BULK_MIN_HOSTS` hosts or more made, each on its own
    host: the same path change ("/doi/" -> "/doi/full/"), or the same scheme
    change (http -> https). One search and replace over these hosts'
    addresses clears all their moved rows, so it is one line, not one per
    host. A host's move to another host is never shared (each publisher's
    new site differs): that stays a `HostMove`."""

    hosts: tuple[str, ...]
    """Every host that made it, the most rows first (then in the report's
    order): a script builds its pattern from them."""
    old_scheme: str
    new_scheme: str
    """The schemes when they differ (http, https), else both ""."""
    old_part: str
    new_part: str
    """The path change ("/doi/", "/doi/full/"); both "" for a scheme change alone."""
    same_paths: bool
    """Only the scheme changed: every new address keeps its old path and query."""
    replace_gives_new: bool
    """Doing the line's search and replace (`_after_replace`) to each old address
    gives its new one. False when some also changed their query (a tracking
    tag dropped): the line then sends the reader to the rows (review 12 #2)."""
    urls: int
    links: int
    """The report's rows (a URL cited on two pages is two rows)."""
    pages: int
    first_page: str
    place: str


@dataclass(frozen=True, slots=True)
class BulkFixes:
    """The fixes that clear many rows at once, biggest first, at most
    `BULK_SHOWN` of each (`bulk_fixes`): a webmaster facing thousands of
    rows starts there. The rows stay in the report and in its counts."""

    links: tuple[SharedLink, ...] = ()
    hosts: tuple[HostMove, ...] = ()
    more_links: int = 0
    """URLs on `BULK_MIN_PAGES` pages or more beyond the `BULK_SHOWN` listed."""
    more_hosts: int = 0
    """Hosts whose links moved one way beyond those listed (`hosts`)."""
    rewrites: tuple[SharedRewrite, ...] = ()
    """The rewrites shared by `BULK_MIN_HOSTS` hosts or more; their hosts are
    not in `hosts`. With `hosts`, at most `BULK_SHOWN` in all, the most rows
    first (`moves`)."""
    more_rewrites: int = 0
    """Shared rewrites beyond those listed."""

    def __bool__(self) -> bool:
        return bool(self.links or self.hosts or self.rewrites)

    @property
    def moves(self) -> list[SharedRewrite | HostMove]:
        """The shared rewrites and the hosts' moves as one list, the most rows
        first; at equal rows a shared rewrite first (it clears several
        hosts), then in the report's order (`bulk_fixes` chose them so)."""
        return sorted((*self.rewrites, *self.hosts), key=_move_order)


def _move_order(move: SharedRewrite | HostMove) -> tuple[int, bool]:
    return -move.links, isinstance(move, HostMove)


@dataclass(frozen=True, slots=True)
class Audit:
    site: str
    run: RunInfo
    generated_at: dt.datetime
    counts: Counts
    needs_fixing: tuple[PageGroup, ...]
    needs_a_person: tuple[PageGroup, ...]
    watching: tuple[PageGroup, ...]
    """Suspected site errors (a first timeout or 5xx): rechecked, no action yet."""
    fixed_since_last: tuple[Fixed, ...]
    content_audit: ContentAudit
    everything_else: tuple[OtherLinks, ...]
    pages: tuple[PageRecord, ...]
    pages_failed: tuple[PageRecord, ...]
    links: tuple[LinkResult, ...] = field(repr=False, default=())
    previous_run: RunInfo | None = None
    audience: str = ""
    """ "" for the whole report; an owner's address for their part of it."""
    cleared_by_itself: tuple[Fixed, ...] = ()
    """Links the previous report only watched (a first timeout or 5xx, never
    listed as a problem) that answer again: no editor fixed them, so they are
    not "fixed since the last report" (nor counted so); kept for the data."""
    no_longer_checked: tuple[Fixed, ...] = ()
    """The previous report's problems whose link is not checked any more
    (excluded by the configuration since): nobody changed the entry, so
    they are not "fixed" (nor counted so); said in one quiet line."""
    no_longer_audited: tuple[GonePage, ...] = ()
    """The pages of the previous report's problems that this run did not
    audit (none for a run of some pages, `check --page`, which says so)."""
    sites_not_audited: tuple[SiteCut, ...] = ()
    """The [[sites]] crawls that max_pages cut short: pages found and not
    audited, said under the counts (which cover the audited pages only)."""
    accepted: tuple[Problem, ...] = ()
    """Flagged rows a person checked by hand and found fine (`monitor
    accept`), while the link answers as it did then: one quiet line, not
    problems, not counted in the headline, tiles or subject."""
    bulk_fixes: BulkFixes = field(default_factory=BulkFixes)
    """The fixes that clear many rows at once (`bulk_fixes`): said under the
    Pages table; in the JSON just before "first_report", which stays the
    audit's last field (the index reads it from the file's last 4 KB, which
    a field of 40 long addresses after it would push it out of)."""
    first_report: bool = False
    """No earlier report to compare with: every problem is new, and "0 still
    open, 0 fixed" would say a comparison was made. The subject, headline
    and tiles say "first report" instead; the JSON's counts stay numbers,
    and this field (the document's last, read from its tail by the index of
    reports) tells its still open and fixed are not comparisons."""
    page_slugs: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """Page URL -> the slug of its ids in the saved report ("page-<slug>",
    "fix-<slug>"...: `page_slugs`), made over every page of the whole
    report, so that an owner's part (`audit_for_pages`) links the ids the
    full report has. Not in the JSON: they name places in the HTML."""

    @property
    def date(self) -> dt.date:
        return self.run.started_at.date()

    @property
    def as_of(self) -> dt.date | None:
        """The day the report was made, when it is two days or more after
        its run's (`check` on Monday, `report` on Thursday): its ages ("open
        52 weeks") and confirmations count to then, not to the date at its
        top (walkthrough 11 #9). None for a report made with its run."""
        made = self.generated_at.date()
        return made if (made - self.date).days >= 2 else None

    @property
    def problems(self) -> tuple[Problem, ...]:
        """What asks something of a person: needs fixing, then needs a person."""
        return tuple(p for g in self.needs_fixing + self.needs_a_person for p in g.problems)

    @property
    def watched(self) -> tuple[Problem, ...]:
        return tuple(p for g in self.watching for p in g.problems)

    @property
    def fixing_count(self) -> int:
        return sum(len(g.problems) for g in self.needs_fixing)

    def fix_kinds(self) -> tuple[int, int, int]:
        """(with a new address, with an archived copy, neither) among the
        problems that need fixing: the quick wins first (`wording.fix_order`)."""
        labels = [p.fix_label for g in self.needs_fixing for p in g.problems]
        new = sum(label in ("New address", "Suggested address") for label in labels)
        archived = labels.count("Archived copy")
        return new, archived, len(labels) - new - archived

    @property
    def person_count(self) -> int:
        return sum(len(g.problems) for g in self.needs_a_person)


# -- building ------------------------------------------------------------------


def build_audit(
    run: RunInfo,
    links: Sequence[LinkResult],
    pages: Sequence[PageRecord],
    *,
    previous_links: Sequence[LinkResult] | None,
    previous_pages: Sequence[PageRecord] | None,
    states: Mapping[str, UrlState],
    now: dt.datetime,
    settings: ReportSettings,
    site_name: str,
    previous_run: RunInfo | None = None,
    previous_cited: Collection[_Cited] | None = None,
    last_read: Sequence[tuple[PageRecord, Sequence[LinkResult]]] = (),
    earlier_links: Sequence[LinkResult] = (),
    earlier_run: RunInfo | None = None,
    first_listed: Mapping[tuple[str, str], tuple[dt.datetime, bool]] | None = None,
    previous_states: Mapping[str, UrlState] | None = None,
    configured: Collection[str] | None = None,
    crawls: bool = False,
    site_cuts: Sequence[SiteCut] = (),
    before_previous: Sequence[LinkResult] = (),
    before_previous_run: RunInfo | None = None,
    acceptances: Mapping[str, Sequence[Acceptance]] | None = None,
    flaps: Mapping[str, FailTally] | None = None,
) -> Audit:
    """The audit of `run`, compared with the run of the previous report.

    `previous_links` is None when there was no previous report: then every
    problem is new and nothing counts as fixed. Only its flagged links are
    read, so those alone will do (`Store.run_flagged_links`); `states` is
    read only for the flagged links of `links`. `previous_cited` holds
    (page, section, entry, URL) of the previous report's links on the pages
    where one of its problems is gone (`pages_with_gone_problems`;
    `Store.entry_links`): an entry that only lost its dead link keeps links
    it already had, and is not said to link to a new address; one whose
    new link is broken too keeps its problem open, on the new link. `last_read` holds the pages this run could not fetch
    as the last report that read them saw them, with their citations
    (`Store.citations_last_read`): their content notes are carried over,
    said to be not checked again, instead of vanishing for a week.
    `earlier_links` holds, for those pages, the flagged links of the report
    before the one that last read them (`Store.flagged_links_last_read`
    before that run), and `earlier_run` that report's run: with them a
    problem carried over says what the last report said of it (open since
    20 Nov, not since the day of the last read), since dates of moved and
    drifted links come from the report before.

    `first_listed` dates the links no check dates (a malformed address):
    (page, href as written) -> (the start of the first kept run listing it,
    whether that run is the history's first, so "or earlier").
    `previous_states` are the states of the previous report's flagged URLs
    as of its sending (`Store.url_states_at`): what it judged "confirmed"
    or "only watched" with, rechecks included.

    A link the previous report only watched (a first timeout or 5xx) was
    never listed to the editor as a problem: confirmed now, it is new; if it
    answers again, it cleared by itself (`Audit.cleared_by_itself`), no fix.
    A link now excluded by the configuration is no fix either
    (`Audit.no_longer_checked`); the rows of a page this run did not audit
    at all are counted per page (`Audit.no_longer_audited`). `configured`
    (the `[[pages]]` urls of the configuration now) and `crawls` (it has
    `[[sites]]`) say why a page was not audited and what excluded a link.

    `site_cuts`: the run's [[sites]] crawls that max_pages cut short
    (`Store.run_site_cuts`).

    `before_previous`: the flagged links of the report before the previous
    one (`Store.run_flagged_links`), of run `before_previous_run`: a
    problem new now that it listed and the previous report did not was
    reported fixed by the previous report, and is "back".
    `acceptances` (`Store.acceptances`): a row whose URL a person accepted
    (`monitor accept`), holding at `now`, goes to `Audit.accepted` instead
    of the problems; one whose acceptance stopped holding since the
    previous report is listed again, saying why (`Problem.back`). The
    previous report's rows an acceptance held at its time were not among
    its problems: they are left out of the comparison (a row back is new).
    That is what that report listed because every row of it, those kept
    from a page it could not fetch too, went through `_judged` at its time
    (`_report_time`: `monitor run` marks it reported at the `now` it built
    it with), with the statuses `previous_links` have.
    `flaps` (`Store.fail_tallies`): for the flagged URLs that flap, how
    often each failed over the checks kept; a failing row of one says so,
    and is never "NEW" nor "first seen" (`Problem.flaps`; without it, from
    its state's `recent` statuses).
    """
    records = acceptances or {}
    listed_then = _report_time(previous_run)
    listed_links = previous_links  # every row that report had, held or not: none was "fixed"
    if records and previous_links and listed_then is not None:
        previous_links = [l for l in previous_links if _held(records, l, listed_then) is None]
    if records and before_previous and (listed_before := _report_time(before_previous_run)) is not None:
        before_previous = [l for l in before_previous if _held(records, l, listed_before) is None]
    unread = {p.url for p in pages if p.status == "error"}
    read_before = [(page, then) for page, then in last_read if page.url in unread]
    then_titles = {pg.url: pg.title for pg, _ in read_before}  # a failed fetch has no <title>
    page_titles = {p.url: p.name or p.title or then_titles.get(p.url) or p.url for p in pages}
    owners = {p.url: p.owner for p in pages}
    carried = _carried(previous_links, links, pages, previous_pages)
    entries = _entry_links(links, _gone_entries(previous_links, links))
    replaced = _replaced(previous_links, links, pages, carried, previous_cited, entries)
    carried = {**carried, **replaced}
    confirm_after = dt.timedelta(hours=settings.confirm_after_hours)
    listed_at = previous_run.started_at if previous_run is not None else None
    watched_before = _watched_keys(previous_links, _report_time(previous_run), confirm_after,
                                   previous_states or {})
    back = _back(before_previous, before_previous_run, listed_links, previous_pages,
                 confirm_after) if previous_run is not None else {}

    problems: list[Problem] = []
    accepted: list[Problem] = []
    others: list[LinkResult] = []
    for link in links:
        if link.status in FLAGGED and not acknowledged(link):
            prev = carried.get(_key(link))
            problem = _problem(link, states.get(link.url), prev, now, confirm_after,
                               listed_at=listed_at, flaps=(flaps or {}).get(link.url),
                               first_listed=(first_listed or {}).get((link.page, link.url)))
            if prev is not None and _key(prev) in watched_before:
                problem = _after_watching(problem)
            if prev is not None and _key(link) in replaced:
                on = _first_seen(link, states.get(link.url), listed_at)
                problem = replace(problem, replaced_url=prev.url, replaced_on=on,
                                  words=wording.replaced_words(on, link.url, problem.words))
                problem = _dated_by(problem, prev, (first_listed or {}).get((prev.page, prev.url)),
                                    listed_at, now)
            elif prev is None and previous_run is not None and (link.page, link.url) in back:
                problem = replace(problem, reported_fixed_on=previous_run.started_at,
                                  worked_again=_worked_since(states.get(link.url), before_previous_run))
            problem, held = _judged(problem, records, now, listed_then)
            (accepted if held else problems).append(problem)
        elif link.status not in FLAGGED:
            others.append(link)
    if unread:
        # Every row the previous report had on a page not fetched now, those
        # an acceptance held then too: judged by the acceptances as the rows
        # above are, so one accepted the day before the page went down is not
        # asked of a person again, and one accepted before stays on the quiet
        # line. A row that report held was not among its problems: it is not
        # "still open" (nor "newly" accepted), as a row of the loop without `prev`.
        open_then = _flagged_keys(previous_links).keys()
        for p in _not_read_again(listed_links, unread, earlier_links, previous_run,
                                 earlier_run, now, confirm_after,
                                 states=previous_states or {}, first_listed=first_listed or {}):
            if _key(p.link) not in open_then:
                p = replace(p, new=True)
            elif _key(p.link) in watched_before:
                p = _after_watching(p)
            p, held = _judged(p, records, now, listed_then)
            (accepted if held else problems).append(p)

    order = _page_order(pages, links)
    fixing, person, watching = _partition(problems)
    fixed = _fixed(previous_links or (), links, pages, page_titles, carried, previous_cited, entries,
                   crawls=crawls)
    cleared = [f for f in fixed if f.how == "works_again" and _key(f.link) in watched_before]
    fixed = [f for f in fixed if not (f.how == "works_again" and _key(f.link) in watched_before)]
    unchecked = [f for f in fixed if f.how == "not_checked"]
    fixed = [f for f in fixed if f.how != "not_checked"]
    gone = () if run.partial else _no_longer_audited(
        previous_links, pages, previous_pages, carried, watched_before, configured, crawls,
        dead=_dead_pages(links))
    content = _content_audit(links, pages, previous_pages, now, settings, page_titles, read_before)
    content = _with_confirmed(content, {p.link.url for p in problems if p.confirmed})
    audit = Audit(
        site=" ".join(site_name.split()),  # one line, wherever it came from
        run=run,
        generated_at=now,
        counts=Counts(),
        needs_fixing=_group(fixing, order, page_titles, owners),
        needs_a_person=_group(person, order, page_titles, owners),
        watching=_group(watching, order, page_titles, owners),
        fixed_since_last=tuple(fixed),
        cleared_by_itself=tuple(cleared),
        no_longer_checked=tuple(unchecked),
        no_longer_audited=gone,
        content_audit=content,
        everything_else=_others(others, order, page_titles),
        pages=tuple(pages),
        pages_failed=tuple(p for p in pages if p.status == "error"),
        links=tuple(links),
        previous_run=previous_run,
        sites_not_audited=tuple(site_cuts),
        first_report=previous_links is None,
        accepted=tuple(p for g in _group(accepted, order, page_titles, owners) for p in g.problems),
        page_slugs=page_slugs(order),
    )
    return replace(audit, counts=_count(audit),
                   bulk_fixes=bulk_fixes(audit.needs_fixing, audit.needs_a_person))


def _judged(problem: Problem, records: Mapping[str, Sequence[Acceptance]], now: dt.datetime,
            listed_then: dt.datetime | None) -> tuple[Problem, bool]:
    """`problem` as the acceptances have it at `now`, and whether one holds
    (then it goes to `Audit.accepted`); one that stopped holding since the
    previous report (`listed_then`) says why it is listed again. The one
    rule for a row read this week and one kept from a page not fetched:
    the next report's comparison (`_held` at this report's time) counts on
    every row of this one having gone through it."""
    link = problem.link
    if link.url not in records:
        return problem, False
    held = _held(records, link, now)
    if held is not None:
        return replace(problem, acceptance=held), True
    ended = lapsed_since(records[link.url], link.status, now, listed_then)
    if ended is not None:
        problem = replace(problem, acceptance=ended, back=ended_words(ended, link.status, now))
    return problem, False


def _held(records: Mapping[str, Sequence[Acceptance]], link: LinkResult,
          at: dt.datetime) -> Acceptance | None:
    """The acceptance clearing `link`'s row at `at`, if one holds."""
    if link.status not in FLAGGED or link.url not in records:
        return None
    a = current(records[link.url], at)
    return a if a is not None and in_force(a, link.status, at) else None


def _no_longer_audited(previous: Sequence[LinkResult] | None, pages: Sequence[PageRecord],
                       previous_pages: Sequence[PageRecord] | None,
                       carried: Mapping[_Key, LinkResult], watched_before: Collection[_Key],
                       configured: Collection[str] | None, crawls: bool,
                       dead: Mapping[str, int] | None = None) -> tuple[GonePage, ...]:
    """The pages whose rows of the previous report this run neither reads nor
    carries over (`_carried` continues those of a page audited under a new
    address): each with how many problems, and links only watched, it had.
    `_fixed` leaves their rows out (it cannot tell), and so they vanished.
    `dead`: pages this run found gone, by the status of a link to them
    (`_dead_pages`): a crawl reached them, and says so (review9 #4)."""
    audited = {p.url for p in pages}
    continuing = {_key(prev) for prev in carried.values()}
    tally: dict[str, list[int]] = {}
    for key, prev in _flagged_keys(previous).items():
        if prev.page in audited or key in continuing:
            continue
        tally.setdefault(prev.page, [0, 0])[key in watched_before] += 1
    if not tally:
        return ()
    before = {p.url: p for p in previous_pages or ()}
    order = list(dict.fromkeys([*before, *tally]))
    gone = []
    for url in order:
        if url not in tally:
            continue
        record = before.get(url)
        title = (record.name or record.title) if record is not None else ""
        gone.append(GonePage(url=url, title=" ".join(title.split()) or url, open=tally[url][0],
                             watching=tally[url][1], owner=record.owner if record is not None else "",
                             why=(wording.page_gone_why(dead[url]) if url in (dead or {})
                                  else wording.not_audited_why(url, configured, crawls=crawls))))
    return tuple(gone)


def _dead_pages(links: Iterable[LinkResult]) -> dict[str, int]:
    """The addresses this run's links found gone (a 4xx but 408/429, the
    rule by which a crawl takes them for no page), with the status: a page
    of the previous report among them was reached, not left out. Its own
    link's row says it as a problem."""
    dead: dict[str, int] = {}
    for link in links:
        if link.status in FLAGGED and link.http_status is not None and gone_here(link.http_status):
            for url in (link.url, link.final_url):
                if url:
                    dead.setdefault(url, link.http_status)
    return dead


def _partition(problems: Iterable[Problem]) -> tuple[list[Problem], list[Problem], list[Problem]]:
    """(needs fixing, needs a person, watching), each in the order given, by
    `monitor.wording.attention`: the rule `monitor check`'s listing groups by
    too, so the terminal and the report list a link under the same heading.
    One pass: testing membership in the other lists compared dataclasses
    field by field, 16.8 million times for 10,000 problems (42 s of a report).
    """
    groups: dict[str, list[Problem]] = {group: [] for group in GROUPS}
    for p in problems:
        groups[attention(p.link.status, p.link.reason, confirmed=p.confirmed)].append(p)
    return groups[NEEDS_FIXING], groups[NEEDS_A_PERSON], groups[WATCHING]


def _report_time(run: RunInfo | None) -> dt.datetime | None:
    """When the report of `run` was made: what it judged confirmation at."""
    if run is None:
        return None
    return run.reported_at or run.finished_at or run.started_at


def _after_watching(problem: Problem) -> Problem:
    """A row the previous report only watched. Never listed to the editor as
    a problem: listed now, it is new to them (said "NOW CONFIRMED" when
    confirmed). Still only watched, it is not new: that report showed it
    already, and it was "NEW" at every same-day rerun (walkthrough 10 #15)."""
    if attention(problem.link.status, problem.link.reason, confirmed=problem.confirmed) == WATCHING:
        return replace(problem, new=False, watched_again=True)
    return replace(problem, new=True, confirmed_now=problem.confirmed)


def _watched_keys(previous: Sequence[LinkResult] | None, listed_now: dt.datetime | None,
                  confirm_after: dt.timedelta, states: Mapping[str, UrlState]) -> set[_Key]:
    """The previous report's rows it only watched (`_partition`'s rule, as
    judged then: with the URL's state at its sending, the rechecks made
    between the audit and the report included): not problems it listed."""
    if not previous or listed_now is None:
        return set()
    return {key for key, prev in _flagged_keys(previous).items()
            if prev.status == LinkStatus.ERROR
            and not problem_confirmed(prev, listed_now, confirm_after, states.get(prev.url))}


def _not_read_again(previous: Sequence[LinkResult] | None, unread: Collection[str],
                    earlier: Sequence[LinkResult], previous_run: RunInfo | None,
                    earlier_run: RunInfo | None, now: dt.datetime,
                    confirm_after: dt.timedelta, *, states: Mapping[str, UrlState],
                    first_listed: Mapping[tuple[str, str], tuple[dt.datetime, bool]]) -> list[Problem]:
    """The previous report's rows on pages this run could not fetch: still
    open (not dropped, not fixed), as that report showed them.

    Each is rebuilt as the report that last read its page built it (its
    dates, matched against the report before it; confirmed or only watched
    as judged then), then aged to `now`: the editor who read "open 1 week,
    since 20 Nov" must not read "open since 27 Nov" because the page was
    down. Each keeps every copy's line and its count ("2 times here").
    """
    rows = {key: copies for key, copies in _report_rows(previous).items() if copies[0].page in unread}
    if not rows:
        return []
    then = _report_time(previous_run) or now
    before = _carried(earlier, [copies[0] for copies in rows.values()])
    listed_at = earlier_run.started_at if earlier_run is not None else None
    carried = []
    for key, copies in rows.items():
        prev = copies[0]
        shown = _problem(prev, states.get(prev.url), before.get(key), then, confirm_after,
                         rechecked=False, listed_at=listed_at,
                         first_listed=first_listed.get((prev.page, prev.url)))
        weeks = wording.weeks_between(shown.since, now) if shown.since else 0
        carried.append(replace(shown, new=False, weeks_open=weeks, more_lines=_other_lines(copies),
                               occurrences=len(copies)))
    return carried


_Key = tuple[str, str, str, str]


def _key(link: LinkResult) -> _Key:
    """(page, URL, entry, section): a problem row of the report. One URL cited
    by two entries is two problems, each fixed (or not) on its own; so is one
    entry listed in two sections (a cross-listing), as the report shows it."""
    return (link.page, link.url, link.entry_title or link.text, link.section)


def _report_rows(links: Sequence[LinkResult] | None) -> dict[_Key, list[LinkResult]]:
    """The problems of a run's report, each row with every copy of its link
    (a menu and a footer), in order: flagged links, but not those of entries
    marked "(Expired Article)" (a content note, never listed as a problem)."""
    rows: dict[_Key, list[LinkResult]] = {}
    for l in links or ():
        if l.status in FLAGGED and not acknowledged(l):
            rows.setdefault(_key(l), []).append(l)
    return rows


def _flagged_keys(links: Sequence[LinkResult] | None) -> dict[_Key, LinkResult]:
    """Each report row's link: its first copy, as the report's row has it (`_group`)."""
    return {key: copies[0] for key, copies in _report_rows(links).items()}


def _other_lines(copies: Sequence[LinkResult]) -> tuple[int, ...]:
    """The source lines of a row's other copies: a row of the previous report
    shown again (fixed since, or still open on a page not read this week)
    says where each copy was."""
    return tuple(l.line for l in copies[1:] if l.line is not None)


def _carried(previous: Sequence[LinkResult] | None, links: Sequence[LinkResult],
             pages: Sequence[PageRecord] = (), previous_pages: Sequence[PageRecord] | None = None,
             ) -> dict[_Key, LinkResult]:
    """This run's problem rows that continue one of the previous report's: the
    same entry citing the same URL in the same section, or, for a previous
    row whose entry no longer cites it there (the entry was retitled, moved
    to another section, or its text re-read), another entry of that page
    citing that URL that the previous report did not list.
    A page audited under a new address (renamed in the configuration, or a
    crawl filing it where a redirect ends) continues the rows of a page the
    previous report had and this run has not, entry by entry."""
    before = _flagged_keys(previous)
    if not before:
        return {}
    present = _still_cited(before, links)
    arrived: set[str] = set()
    gone: set[str] = set()
    if previous_pages is not None:
        now_pages, then_pages = {p.url for p in pages}, {p.url for p in previous_pages}
        arrived, gone = now_pages - then_pages, then_pages - now_pages
    orphans: dict[tuple[str, str], list[LinkResult]] = {}
    renamed: dict[tuple[str, str], list[LinkResult]] = {}
    for key, prev in before.items():
        if key not in present:
            orphans.setdefault(key[:2], []).append(prev)
            if prev.page in gone:
                renamed.setdefault(key[1:3], []).append(prev)
    carried: dict[_Key, LinkResult] = {}
    for link in links:
        if link.status not in FLAGGED or acknowledged(link):
            continue
        key = _key(link)
        if key in carried:
            continue
        prev = before.get(key)
        if prev is None and orphans.get(key[:2]):
            prev = orphans[key[:2]].pop(0)
        if prev is None and link.page in arrived and renamed.get(key[1:3]):
            prev = renamed[key[1:3]].pop(0)
        if prev is not None:
            carried[key] = prev
    return carried


def _problem(
    link: LinkResult,
    state: UrlState | None,
    previous: LinkResult | None,
    now: dt.datetime,
    confirm_after: dt.timedelta,
    *,
    rechecked: bool = True,
    listed_at: dt.datetime | None = None,
    first_listed: tuple[dt.datetime, bool] | None = None,
    flaps: FailTally | None = None,
) -> Problem:
    """`listed_at`: when the previous report's run started, the date of its
    rows that no check dates (a malformed address is never checked). A
    moved or drifted link never fails: the state's `status_since` says how
    long it has waited (the previous report's row alone said "since last
    week", every week)."""
    new = previous is None
    since = (link.failing_since or (state.failing_since if state else None)
             or (state.status_since if state and state.status is link.status else None)
             or link.checked_at or (state.first_seen_at if state else None))
    at_least = False
    if since is None and first_listed is not None:
        since, at_least = first_listed  # never checked: since the first run listing it
    if previous is not None:
        # Still open, so open since the previous report's sighting at least:
        # moved and drifted links never "fail" (no failing_since), and a
        # failure that changed its kind (moved -> expired) starts a new streak.
        before = previous.failing_since or previous.checked_at
        if before is None and since is None and listed_at is not None:
            before, at_least = listed_at, True  # on the page then, maybe before
        if before is not None and (since is None or as_utc(before) < as_utc(since)):
            since = before
    if since is None and new:
        since = now  # never checked (a malformed address): first seen in this report
    weeks = wording.weeks_between(since, now) if since else 0
    confirmed = problem_confirmed(link, now, confirm_after, state)
    fix_url, fix_label = _fix(link)
    words = wording.describe(link.reason, url=link.url, http_status=link.http_status, kind=link.kind,
                             confirmed=confirmed)
    if link.flapping and link.reason != "flapping":
        words += ". " + wording.REASONS["flapping"]
    if not rechecked:
        words += ". " + wording.NOT_RECHECKED
    advice = wording.advice(link.status, confirmed=confirmed, fix_url=fix_url,
                            archived=fix_label == "Archived copy", reason=link.reason,
                            kind=link.kind, url=link.url)
    if link.expired_mark and link.status in _DEAD:
        advice = wording.advice_marked(fix_url, archived=fix_label == "Archived copy")
    tally = _flap_tally(link, state, flaps)
    suspicion = ""
    if not confirmed and link.status != LinkStatus.BLOCKED and tally is None:
        strikes = state.strikes if state is not None else link.strikes
        suspicion = wording.suspicion(strikes, confirm_after)
    return Problem(
        link=link, words=words, advice=advice, since=since, weeks_open=weeks,
        confirmed=confirmed, new=new, fix_url=fix_url, fix_label=fix_label, suspicion=suspicion,
        rechecked=rechecked, since_at_least=at_least,
        page_link=page_link_of(link), flaps=tally,
        **_search(link),
    )


def _flap_tally(link: LinkResult, state: UrlState | None, found: FailTally | None) -> FailTally | None:
    """How often a failing link that flaps failed: `found` (what the report
    was given: its states' counters, or a sent report's count as of then),
    else its state's own (`UrlState.fail_tally`); None for a link that does
    not flap, or does not fail now (a flapping link that moved is a new
    fact, its row as any)."""
    if not (link.flapping or (state is not None and state.flapping)) or not LinkStatus(link.status).is_failing:
        return None
    if found is not None:
        return found
    return state.fail_tally() if state is not None else FailTally(checks=0, failed=0)


def _search(link: LinkResult) -> dict[str, str | None]:
    """`Problem.search_url` and its label, for a link whose target is lost."""
    if link.status not in (LinkStatus.EXPIRED, LinkStatus.ERROR, LinkStatus.DRIFTED):
        return {"search_url": None}
    found = search_for(link.entry_title, link.entry_source, link.url)
    if found is None:
        return {"search_url": None}
    return {"search_url": found[0], "search_label": found[1]}


def _fix(link: LinkResult) -> tuple[str | None, str]:
    if link.status == LinkStatus.MOVED and link.suggested_url:
        return link.suggested_url, "New address"
    if link.archived_url and link.status in (LinkStatus.EXPIRED, LinkStatus.ERROR,
                                             LinkStatus.DRIFTED):
        return link.archived_url, "Archived copy"
    if link.suggested_url and link.suggested_url != link.url:
        return link.suggested_url, "Suggested address"
    return None, ""


def text_fragment_link(page: str, text: str, directive: str = "") -> str:
    """The page URL with a `#:~:text=` fragment that scrolls to the entry.

    Chrome, Edge and Safari highlight the entry; other browsers ignore the
    fragment and open the page, so nothing is lost. Only the first words are
    used: a text fragment must match exactly, and long titles are where the
    extractor's whitespace may differ from the page's. `directive`, when the
    extractor found those words earlier on the page (a menu's "Symptoms"
    above the one to fix), is the directive that finds this link instead
    ("see-,Symptoms": `monitor.textfragment`).
    """
    words = fragment_words(text)
    if not (words or directive) or not page.startswith(("http://", "https://")):
        return page
    try:
        parts = urlsplit(page)
    except ValueError:
        return page
    fragment = ":~:text=" + (directive or encode_piece(words))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, fragment))


def page_link_of(link: LinkResult) -> str:
    """The page scrolled to `link` (its entry's title, else its text)."""
    return text_fragment_link(link.page, link.entry_title or link.text, link.fragment)


def nth_note(link: LinkResult) -> str:
    """ "it is the 2nd “Symptoms” on the page" when the page link's words
    find an earlier place and no few words around the link set it apart; ""."""
    if link.fragment_nth < 2:
        return ""
    return wording.nth_on_page(link.fragment_nth, fragment_words(link.entry_title or link.text))


def search_link(title: str, source: str, url: str | None = None) -> str | None:
    """`search_for`'s address alone."""
    found = search_for(title, source, url)
    return found[0] if found is not None else None


def search_for(title: str, source: str, url: str | None = None) -> tuple[str, str] | None:
    """(a search that usually finds where a lost entry lives now, its label).

    PubMed for entries whose source line names it (editors trust it), Google
    Scholar for the other scholarly ones (a DOI, a PMID, a journal's
    citation, a publisher's address), a general web search for the rest: a
    patients' leaflet or an association's page ("Raynaud's Association,
    11/20/2018.") is not in Scholar (walkthrough 9, finding 19). DuckDuckGo,
    not Google: its results open without a consent page or a login.
    All take the exact title. Only a link: nothing is requested from here.
    """
    title = " ".join(title.split())
    if len(title) < 12:
        return None
    if "pubmed" in source.lower():
        return ("https://pubmed.ncbi.nlm.nih.gov/?term=" + quote(title, safe=""),
                "Search PubMed for the title")
    if looks_scholarly(source, url):
        return ("https://scholar.google.com/scholar?q=" + quote(f'"{title}"', safe=""),
                "Search Google Scholar for the title")
    return ("https://duckduckgo.com/?q=" + quote(f'"{title}"', safe=""),
            "Search the web for the title")


_SCHOLARLY_SOURCE = re.compile(
    r"""\b(?:doi|pmid|pmcid|pubmed|medline|cochrane|journal|j\.?|jama|bmj|lancet|nejm|
         n\s?engl\s?j\s?med|ann|arch|proc|acta|rev|clin|vol\.?|et\s+al\.?)\b
      | \b10\.\d{4,9}/\S+                  # a DOI
      | \b(?:19|20)\d\d\s*;\s*\d+           # "2018;57(3):123": a journal citation
      | \b\d+\s*\(\d+\)\s*:\s*\d+          # "57(3):123"
    """, re.IGNORECASE | re.VERBOSE)
"""What a journal citation's source line looks like: an identifier, a
journal's name or abbreviation, a volume(issue):page."""

_SCHOLARLY_HOSTS = (
    "doi.org", "ncbi.nlm.nih.gov", "europepmc.org", "sciencedirect.com", "springer.com",
    "wiley.com", "nature.com", "bmj.com", "thelancet.com", "nejm.org", "jamanetwork.com",
    "oup.com", "tandfonline.com", "sagepub.com", "karger.com", "cochranelibrary.com",
    "plos.org", "frontiersin.org", "mdpi.com", "medrxiv.org", "biorxiv.org", "jrheum.org",
    "cell.com", "annals.org", "acpjournals.org", "elsevier.com", "lww.com", "jstage.jst.go.jp",
    "researchgate.net", "semanticscholar.org", "hindawi.com", "biomedcentral.com",
)
"""Where journal articles live: a link to one of these is a scholarly entry."""


def looks_scholarly(source: str, url: str | None = None) -> bool:
    """Whether an entry cites a journal article (a DOI, a PMID, a journal's
    citation in its source line, or a link to a publisher of journals),
    which Google Scholar finds, rather than a leaflet or a web page."""
    if _SCHOLARLY_SOURCE.search(source or ""):
        return True
    try:
        host = (urlsplit(url or "").hostname or "").lower()
    except ValueError:
        return False
    return any(host == h or host.endswith("." + h) for h in _SCHOLARLY_HOSTS)


PAGE_SLUG_CHARS = 60
"""At most this many characters of a page's path in its ids: a link stays
readable in a chat message, and 500 pages' ids stay small."""

_PAGE_SUFFIX = re.compile(r"\.(?:s?html?|php|aspx?|jsp)$", re.IGNORECASE)


def page_slug(url: str) -> str:
    """The page's path (and query) as an id's words, "scleroderma-topic-250-
    treatments" for .../scleroderma/topic-250/treatments.html: made of the
    address alone, so the same every week (a link to the report's
    `#page-...` can be shared and bookmarked), readable in that link, and
    only [a-z0-9-] (safe in a fragment, an id, CSS). "home" for the site's
    root. Two pages can give the same words: `page_slugs` tells them apart."""
    try:
        parts = urlsplit(url)
        path, query = parts.path, parts.query
    except ValueError:
        path, query = url, ""
    text = _PAGE_SUFFIX.sub("", unquote(path)) + (" " + unquote(query) if query else "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:PAGE_SLUG_CHARS].rstrip("-")
    return slug or "home"


def page_slugs(urls: Iterable[str]) -> dict[str, str]:
    """Each page's `page_slug`, unique among `urls`: pages whose words are
    the same (two hosts' /index.html, "/a-b" and "/a/b", a path clipped)
    each get a short hash of their whole address after them, itself the
    same every week."""
    pages = list(dict.fromkeys(urls))
    plain = {url: page_slug(url) for url in pages}
    seen: dict[str, int] = {}
    for slug in plain.values():
        seen[slug] = seen.get(slug, 0) + 1
    slugs: dict[str, str] = {}
    taken: set[str] = set()
    for url, slug in plain.items():
        if seen[slug] > 1:
            slug = f"{slug}-{hashlib.sha1(url.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"
        while slug in taken:  # a hash meeting another page's words: ids must stay unique
            slug += "-x"
        taken.add(slug)
        slugs[url] = slug
    return slugs


def _page_order(pages: Sequence[PageRecord], links: Iterable[LinkResult]) -> dict[str, int]:
    order: dict[str, int] = {}
    for url in [p.url for p in pages] + [l.page for l in links]:
        order.setdefault(url, len(order))
    return order


def _group(problems: Sequence[Problem], order: Mapping[str, int],
           titles: Mapping[str, str], owners: Mapping[str, str]) -> tuple[PageGroup, ...]:
    """Page -> section -> entry, each in the order it appears on the page."""
    by_page: dict[str, dict[str, dict[tuple[str, str, bool], list[Problem]]]] = {}
    for p in problems:
        link = p.link
        # Navigation links have no entry: each is its own "entry", by its text.
        key = ((link.entry_title, link.entry_source, link.expired_mark) if link.entry_title
               else (link.text or link.url, "", False))
        entry = by_page.setdefault(link.page, {}).setdefault(link.section, {}).setdefault(key, [])
        same = next((i for i, q in enumerate(entry) if q.link.url == link.url), None)
        if same is None:
            entry.append(p)
        else:  # the same link repeated in one place (a menu and a footer): one row, counted
            more = entry[same].more_lines + ((link.line,) if link.line is not None else ())
            entry[same] = replace(entry[same], occurrences=entry[same].occurrences + 1, more_lines=more)
    groups = []
    for page in sorted(by_page, key=lambda u: order.get(u, len(order))):
        sections = tuple(
            Section(heading, tuple(Entry(t, s, m, tuple(ps)) for (t, s, m), ps in entries.items()))
            for heading, entries in by_page[page].items()
        )
        groups.append(PageGroup(page, titles.get(page, page), owners.get(page, ""), sections))
    return tuple(groups)


def _others(links: Sequence[LinkResult], order: Mapping[str, int],
            titles: Mapping[str, str]) -> tuple[OtherLinks, ...]:
    by_page: dict[str, list[LinkResult]] = {}
    for link in links:
        by_page.setdefault(link.page, []).append(link)
    return tuple(OtherLinks(page, titles.get(page, page), tuple(by_page[page]))
                 for page in sorted(by_page, key=lambda u: order.get(u, len(order))))


def _fixed(previous: Sequence[LinkResult], links: Sequence[LinkResult],
           pages: Sequence[PageRecord], titles: Mapping[str, str],
           carried: Mapping[_Key, LinkResult],
           previous_cited: Collection[_Cited] | None = None,
           entries: Mapping[_EntryOf, list[LinkResult]] | None = None, *,
           crawls: bool = False) -> list[Fixed]:
    """The previous report's problems (one per entry, section and URL) that are not problems any more.

    "Fixed" has three honest forms: the link works again (the site came
    back), the entry now links elsewhere (an editor updated it), or the link
    is gone from the page. When the page could not be read this time we
    cannot tell, so the link is left out rather than claimed fixed.
    `carried` holds the rows that continue under another entry (retitled).
    A link not checked now (excluded since) is returned too, as
    "not_checked", for `build_audit` to set apart: it is no fix.
    """
    rows = _flagged_keys(previous)
    cited = {key[1] for key in rows}  # only these URLs can answer for a previous row
    relevant = [l for l in links if l.url in cited]
    now_by_key = {_key(l): l for l in relevant}
    now_by_url = {(l.page, l.url): l for l in relevant}
    continuing = {_key(prev) for prev in carried.values()}
    readable = {p.url for p in pages if p.status in _READ}
    fixed = []
    for key, prev in rows.items():
        if key in continuing:
            continue  # still a problem (most of them, week after week)
        current = now_by_key.get(key)
        if current is not None and current.status in FLAGGED:
            continue  # flagged, but marked "(Expired Article)" now: a content note
        if current is None and prev.page not in readable:
            continue
        was = wording.describe(prev.reason, url=prev.url, http_status=prev.http_status,
                               kind=prev.kind)
        title = titles.get(prev.page, prev.page)
        if current is None:
            if entries is None:
                entries = _entry_links(links, _gone_entries(previous, links))
            entry = _entry_of(prev)
            kept = entries.get(entry, []) if entry is not None else []
            replacement = _replacement(prev, kept, previous_cited)
            if replacement is not None and replacement.status in FLAGGED:
                continue  # replaced by a broken link: `_replaced` carried the row onto it
            if replacement is not None:
                fixed.append(Fixed(prev, "link_updated", wording.updated_words(prev.kind, replacement.url),
                                   title, new_url=replacement.url, was=was))
                continue
            if kept and prev.kind == LinkKind.CITATION:
                fixed.append(Fixed(prev, "removed",
                                   "The dead link was removed; the entry keeps its other link",
                                   title, new_url=kept[0].url, was=was))
                continue
            current = now_by_url.get((prev.page, prev.url))  # under a retitled entry
            if current is None or current.status in FLAGGED:
                fixed.append(Fixed(prev, "removed", _removed_words(prev, current), title, was=was))
                continue
        if current.status == LinkStatus.OK:
            fixed.append(Fixed(prev, "works_again", "The link works again", title, was=was))
        else:
            fixed.append(Fixed(prev, "not_checked",
                               wording.no_longer_checked_why(current.reason, crawls=crawls),
                               title, was=was))
    rows = _report_rows(previous) if fixed else {}
    return [replace(f, more_lines=_other_lines(rows[_key(f.link)])) if _key(f.link) in rows else f
            for f in fixed]


def _removed_words(prev: LinkResult, current: LinkResult | None) -> str:
    """A cross-listing deleted from one section while the other still has
    the link says which: "the link was removed" alone reads as a fix of the
    row still listed."""
    if current is not None and prev.section and current.section and current.section != prev.section:
        return (f"Removed from \u201c{prev.section}\u201d; the link is still listed "
                f"under \u201c{current.section}\u201d")
    return "The link was removed from the page"


_Cited = tuple[str, str, str, str]
"""(page, section, entry, URL): a link as `Store.entry_links` gives the
previous report's run's, the entry being its title or a navigation link's text."""

_EntryOf = tuple[str, str, str, LinkKind]


def _entry_of(link: LinkResult) -> _EntryOf | None:
    """(page, section, entry, kind): where a link sits, for finding what
    replaced it. A navigation link has no entry: its text stands for one
    ("ISN News" in the menu), so a menu link pointed elsewhere is "now
    points to", not "removed" (walkthrough 10 #8). None for a link with
    neither (an image)."""
    entry = link.entry_title or (link.text if link.kind == LinkKind.NAVIGATION else "")
    return (link.page, link.section, entry, link.kind) if entry else None


def _replacement(prev: LinkResult, kept: Sequence[LinkResult],
                 previous_cited: Collection[_Cited] | None) -> LinkResult | None:
    """The link an editor put in place of `prev` in its entry: the entry's
    first link the previous report's run did not have in that listing (the
    section too: a cross-listing's twin updated last week does not make this
    listing's new address an old one, walkthrough 10 #2). Without that
    run's links, the entry's first link (an entry cites one address, mostly)."""
    if previous_cited is None:
        return kept[0] if kept else None
    return next((l for l in kept if (l.page, l.section, l.entry_title or l.text, l.url)
                 not in previous_cited), None)


def _gone_entries(previous: Sequence[LinkResult] | None, links: Sequence[LinkResult]) -> set[_EntryOf]:
    """The entries (`_entry_of`) of the previous report's rows whose link
    the entry no longer has there: the only ones whose links `_fixed` and
    `_replaced` look up."""
    rows = _flagged_keys(previous)
    present = _still_cited(rows, links)
    return {entry for key, prev in rows.items()
            if key not in present and (entry := _entry_of(prev)) is not None}


def _entry_links(links: Sequence[LinkResult], wanted: Collection[_EntryOf]) -> dict[_EntryOf, list[LinkResult]]:
    """(page, section, entry, kind) -> the entry's links (`_entry_of`), for
    the `wanted` entries: where a removed link went. The same entry in
    another section is another listing (a cross-listing's link is not "the
    other link" its twin kept).

    Built once: a scan of every link per removed link would be quadratic
    (10,000 x 100,000); and only the title is read of the links of other
    entries (nine in ten): keying all 100,000 added a second to a report.
    """
    titles = {entry[2] for entry in wanted}
    entries: dict[_EntryOf, list[LinkResult]] = {}
    if not titles:
        return entries
    for link in links:
        if (link.entry_title or link.text) in titles:
            entry = _entry_of(link)
            if entry in wanted:
                entries.setdefault(entry, []).append(link)  # type: ignore[arg-type]
    return entries


def _replaced(previous: Sequence[LinkResult] | None, links: Sequence[LinkResult],
              pages: Sequence[PageRecord], carried: Mapping[_Key, LinkResult],
              previous_cited: Collection[_Cited] | None,
              entries: Mapping[_EntryOf, list[LinkResult]]) -> dict[_Key, LinkResult]:
    """This run's problem rows whose link an editor put in place of a dead
    link the previous report listed, and which is broken too -> that row.

    The editor's attempt is no new problem and the old one is not gone: it
    is the same problem still open, since its first week (walkthrough 10
    #1: it was "NEW, first seen this week", and the previous report's row
    vanished from "still open + fixed")."""
    rows = _flagged_keys(previous)
    if not rows:
        return {}
    present = _still_cited(rows, links)
    continuing = {_key(prev) for prev in carried.values()}
    readable = {p.url for p in pages if p.status in _READ}
    gone = [prev for key, prev in rows.items()
            if key not in present and key not in continuing and prev.page in readable]
    if not gone:
        return {}
    found: dict[_Key, LinkResult] = {}
    for prev in gone:
        entry = _entry_of(prev)
        new = _replacement(prev, entries.get(entry, []), previous_cited) if entry is not None else None
        if new is None or new.status not in FLAGGED or acknowledged(new):
            continue
        key = _key(new)
        if key not in carried and key not in rows and key not in found:
            found[key] = prev
    return found


def _dated_by(problem: Problem, prev: LinkResult, first_listed: tuple[dt.datetime, bool] | None,
              listed_at: dt.datetime | None, now: dt.datetime) -> Problem:
    """A replacing link's problem, open since the replaced row was: a
    malformed address replaced by a parked domain was "open since" the
    week of the replacement, its row's first week lost (no check dates a
    malformed address; the first run listing it does)."""
    then = prev.failing_since or prev.checked_at
    if then is None and first_listed is not None:
        then = first_listed[0]
    then = then or listed_at
    if then is None or (problem.since is not None and as_utc(problem.since) <= as_utc(then)):
        return problem
    return replace(problem, since=then, weeks_open=wording.weeks_between(then, now))


def _first_seen(link: LinkResult, state: UrlState | None, listed_at: dt.datetime | None) -> dt.datetime | None:
    """When a replacing link was first seen: its address's first check, if
    that came after the previous report's run (a run between two reports),
    else this run's check of it."""
    first = state.first_seen_at if state is not None else None
    if first is not None and listed_at is not None and as_utc(first) > as_utc(listed_at):
        return first
    return link.checked_at or first


def _back(before: Sequence[LinkResult], before_run: RunInfo | None,
          previous: Sequence[LinkResult] | None, previous_pages: Sequence[PageRecord] | None,
          confirm_after: dt.timedelta) -> dict[tuple[str, str], LinkResult]:
    """(page, URL) of the problems the report before the previous one listed
    (not only watched) and the previous report had no row of on that page,
    though it read the page: reported fixed then. One of them a problem
    again is "back", not "NEW, failing since" its first week (walkthrough
    10 #7)."""
    if not before or before_run is None:
        return {}
    then = _flagged_keys(before)
    watched = _watched_keys(before, _report_time(before_run), confirm_after, {})
    listed = {(l.page, l.url) for l in previous or ()}
    read = {p.url for p in previous_pages or () if p.status in _READ}
    return {(l.page, l.url): l for key, l in then.items()
            if key not in watched and l.page in read and (l.page, l.url) not in listed}


def _worked_since(state: UrlState | None, before_run: RunInfo | None) -> bool:
    """Whether a link back among the problems answered after the report that
    first listed it (it came back by itself then), rather than the entry
    having stopped linking it. A move never fails, so `last_ok_at` alone
    moves with it: its status must have changed since too."""
    then = _report_time(before_run)
    if state is None or then is None or state.last_ok_at is None or state.status_since is None:
        return False
    return as_utc(state.last_ok_at) > as_utc(then) and as_utc(state.status_since) > as_utc(then)


def pages_with_gone_problems(previous_links: Sequence[LinkResult], links: Sequence[LinkResult]) -> set[str]:
    """The pages on which a problem of the previous report is no longer cited
    by its entry: those whose previous links `build_audit`'s `previous_cited`
    needs (one page of a hundred, most weeks, not the whole run)."""
    rows = _flagged_keys(previous_links)
    present = _still_cited(rows, links)
    return {key[0] for key in rows if key not in present}


def _still_cited(rows: Mapping[_Key, LinkResult],
                 links: Sequence[LinkResult]) -> set[_Key]:
    """The rows of `rows` (page, URL, entry, section) that this run's links still have.
    Only links citing one of their URLs are keyed: the other nine in ten
    cannot match."""
    cited = {key[1] for key in rows}
    return {_key(l) for l in links if l.url in cited}


# -- content audit -------------------------------------------------------------


def _content_audit(links: Sequence[LinkResult], pages: Sequence[PageRecord],
                   previous_pages: Sequence[PageRecord] | None, now: dt.datetime,
                   settings: ReportSettings, titles: Mapping[str, str],
                   read_before: Sequence[tuple[PageRecord, Sequence[LinkResult]]] = (),
                   ) -> ContentAudit:
    """`read_before`: the pages this run could not fetch, as last read, with
    their citations. Their notes are read with this run's (a duplicate may
    span a page read now and one read before) and say they were not
    checked again; whether a page changed heavily needs this week's read."""
    citations = [l for l in links if l.kind == LinkKind.CITATION]
    citations += [l for _, then in read_before for l in then if l.kind == LinkKind.CITATION]
    entry_pages = list(pages) + [page for page, _ in read_before]
    unread = {page.url for page, _ in read_before}
    notes = ContentAudit(
        retracted=tuple(_noticed(RETRACTED, citations, titles)),
        withdrawn=tuple(_noticed(WITHDRAWN, citations, titles)),
        notices_marked=(tuple(_noticed(RETRACTED, citations, titles, marked=True))
                        + tuple(_noticed(WITHDRAWN, citations, titles, marked=True))),
        stale_marks=tuple(_stale_marks(citations, titles)),
        dead_marks=tuple(_dead_marks(citations, titles)),
        duplicates=tuple(_duplicates(citations, titles)),
        no_link=tuple(_no_link(entry_pages, citations, titles)),
        no_source=tuple(_no_source(citations, titles)),
        old_citations=tuple(_old(citations, now.date(), settings.max_citation_age_years, titles)),
        pages_failed=tuple(_page_errors(pages, titles)),
        pages_changed=(tuple(_page_changes(pages, previous_pages or (), titles))
                       + tuple(_links_moved(pages, previous_pages or (), titles))),
    )
    if not unread:
        return notes
    return ContentAudit(**{key: tuple(_not_rechecked(i) if key != "pages_failed"
                                      and unread.intersection(i.pages) else i
                                      for i in getattr(notes, key))
                           for key in CONTENT_FIELDS})


def _with_confirmed(notes: ContentAudit, confirmed: Collection[str]) -> ContentAudit:
    """`notes` with `link_confirmed` set where the note's link is a confirmed
    problem: the same address is shown the same way in its row and its note."""
    if not confirmed:
        return notes
    return ContentAudit(**{key: tuple(replace(i, link_confirmed=True) if i.url in confirmed else i
                                      for i in getattr(notes, key))
                           for key in CONTENT_FIELDS})


def _not_rechecked(issue: ContentIssue) -> ContentIssue:
    """A note carried over from the last report that read its page."""
    return replace(issue, words=f"{issue.words} {wording.NOT_RECHECKED}.", rechecked=False)


_EntryKey = tuple[str, str]


def _entries(citations: Iterable[LinkResult],
             ) -> tuple[dict[_EntryKey, LinkResult], dict[_EntryKey, tuple[int, ...]]]:
    """One link per entry (its first): entries, not links, are what editors
    edit. With it, the source lines of that link's other copies in the entry
    (a cross-listing's other sections: each listing carries the mark, needs
    the notice), found in the same pass; only repeats cost anything more."""
    entries: dict[_EntryKey, LinkResult] = {}
    copies: dict[_EntryKey, list[int]] = {}
    for link in citations:
        key = (link.page, link.entry_title or link.text)
        first = entries.setdefault(key, link)
        if first is not link and link.url == first.url and link.line is not None:
            copies.setdefault(key, []).append(link.line)
    return entries, {key: tuple(lines) for key, lines in copies.items()}


def _issue(kind: str, link: LinkResult, titles: Mapping[str, str], words: str,
           **extra: object) -> ContentIssue:
    """A note about `link`'s entry, placed where `link` sits in the source,
    with the page scrolled to the entry: every note asks the editor to find
    it (a mark to remove, a source line to add), not only a retraction's
    (review 13 #15); a line number alone sent them to the page's source."""
    if link.entry_title or link.text:
        extra.setdefault("page_link", page_link_of(link))
        extra.setdefault("page_link_note", nth_note(link))
    return ContentIssue(kind=kind, page=link.page, page_title=titles.get(link.page, link.page),
                        entry=link.entry_title or link.text, words=words, url=link.url,
                        pages=(link.page,), section=link.section, line=link.line,
                        written=link.written, element=link.element, attribute=link.attribute,
                        link_reason=link.reason, **extra)  # type: ignore[arg-type]


def _noticed(notice: str, citations: Sequence[LinkResult],
             titles: Mapping[str, str], *, marked: bool = False) -> Iterable[ContentIssue]:
    """Entries citing an article retracted (or withdrawn) since: its link
    works (it is ok, or moved, or drifted to the notice), so only the notice
    tells. The row's kind is the notice. The editor has to find the entry
    to annotate it, as for a link to fix: its section, and the page
    scrolled to it ("Open the entry on the page"). `marked`: the entries
    that already say so instead (`LinkResult.notice_marked`)."""
    noticed = [l for l in citations if l.notice == notice and l.notice_marked == marked]
    sections: dict[tuple[str, str], list[str]] = {}
    for l in noticed:
        listed = sections.setdefault((l.page, l.entry_title or l.text), [])
        if l.section not in listed:
            listed.append(l.section)
    entries, copies = _entries(noticed)
    for key, link in entries.items():
        also = tuple(f"Also listed under \u201c{s}\u201d" for s in sections[key][1:] if s)
        yield _issue(notice, link, titles,
                     wording.notice_words(link.notice, link.notice_detail, marked=marked),
                     related=also, more_lines=copies.get(key, ()))


def _stale_marks(citations: Sequence[LinkResult], titles: Mapping[str, str]) -> Iterable[ContentIssue]:
    entries, copies = _entries(l for l in citations if l.expired_mark)
    for key, link in entries.items():
        if link.status == LinkStatus.OK:
            yield _issue("stale_mark", link, titles,
                         "The link works again: check the article and remove the mark if it is back.",
                         more_lines=copies.get(key, ()))


def _dead_marks(citations: Sequence[LinkResult], titles: Mapping[str, str]) -> Iterable[ContentIssue]:
    entries, copies = _entries(l for l in citations if l.expired_mark)
    for key, link in entries.items():
        if link.status not in MARKED_DEAD:
            continue
        fix_url, fix_label = _fix(link)
        said = wording.describe(link.reason, url=link.url, http_status=link.http_status)
        if fix_label == "Archived copy":
            words = f"Still dead ({_lower(said)}): link the archived copy so readers can still read it."
        else:
            words = (f"Still dead ({_lower(said)}) and no archived copy was found: "
                     "replace the entry with a current source, or remove it.")
        yield _issue("dead_mark", link, titles, words, fix_url=fix_url, fix_label=fix_label,
                     fix_note=_fix_note(link, fix_label), more_lines=copies.get(key, ()))


def _fix_note(link: LinkResult, fix_label: str) -> str:
    """Said under a fix: of the oldest archived copy, to check it first
    (`wording.oldest_copy`); "" for any other fix."""
    return wording.oldest_copy(link.kind, link.url) if fix_label == "Archived copy" and link.archived_oldest else ""


def _lower(sentence: str) -> str:
    return sentence[:1].lower() + sentence[1:] if sentence[1:2].islower() else sentence


def _duplicates(citations: Sequence[LinkResult], titles: Mapping[str, str]) -> Iterable[ContentIssue]:
    """One address under entries of different titles: one of them likely links
    the other's article (the editor copied an entry and forgot to change its
    link). The same article cited under the same title in two sections or on
    two pages is a cross-listing, normal on a site of topic pages: not a slip.
    Titles are compared as `_title_key` makes them (case, spacing, punctuation)."""
    # Entries are collected only for URLs seen twice: a dict per URL of a
    # 100,000-link site, nearly all cited once, was most of the time here.
    first: dict[str, LinkResult] = {}
    repeated: dict[str, dict[tuple[str, str], LinkResult]] = {}
    copies: dict[str, list[LinkResult]] = {}
    for link in citations:
        seen = first.setdefault(link.url, link)
        if seen is not link:
            entries = repeated.get(link.url)
            if entries is None:
                entries = repeated[link.url] = {(seen.page, seen.entry_title or seen.text): seen}
            entries.setdefault((link.page, link.entry_title or link.text), link)
            copies.setdefault(link.url, []).append(link)
    for url in first:
        entries = repeated.get(url, {})
        if len(entries) < 2:
            continue
        named = {_title_key(title) for _, title in entries}
        if len(named) < 2:
            continue  # one article, cross-listed
        lead = next(iter(entries.values()))
        related = tuple(f"{l.entry_title or l.text} ({titles.get(l.page, l.page)})"
                        for l in entries.values())
        pages = tuple(dict.fromkeys(l.page for l in entries.values()))
        # Every copy on the row's page: the editor compares the entries there.
        lines = tuple(l.line for l in copies[url] if l.page == lead.page and l.line is not None)
        yield replace(_issue("duplicate", lead, titles,
                             f"Cited by {len(entries)} entries under {len(named)} different titles: "
                             "does one of them link the wrong article (a copy-paste slip)?",
                             related=related, more_lines=lines), pages=pages)


_NOT_WORD = re.compile(r"[\W_]+")


def _title_key(title: str) -> str:
    """A title as two citations of one article spell it alike: case, spacing,
    punctuation and accents' composed forms aside ("Rituximab in DM." and
    "rituximab in DM" are one title)."""
    return " ".join(_NOT_WORD.sub(" ", unicodedata.normalize("NFKC", title).casefold()).split())


def _no_link(pages: Sequence[PageRecord], citations: Sequence[LinkResult],
             titles: Mapping[str, str]) -> Iterable[ContentIssue]:
    linked = {(l.page, l.entry_title) for l in citations}
    for page in pages:
        if page.status not in _READ:
            continue
        for title in page.entries:
            if title and (page.url, title) not in linked:
                yield ContentIssue("no_link", page.url, titles.get(page.url, page.url), title,
                                   "This entry has no link: readers cannot open the source.",
                                   pages=(page.url,), page_link=text_fragment_link(page.url, title))


def _no_source(citations: Sequence[LinkResult], titles: Mapping[str, str]) -> Iterable[ContentIssue]:
    entries, copies = _entries(citations)
    for key, link in entries.items():
        if not link.entry_source.strip():
            yield _issue("no_source", link, titles,
                         "No source line (journal or publisher, date): readers cannot judge the source.",
                         more_lines=copies.get(key, ()))


def _old(citations: Sequence[LinkResult], today: dt.date, years: int,
         titles: Mapping[str, str]) -> Iterable[ContentIssue]:
    if years <= 0:
        return
    try:
        limit = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        limit = today.replace(year=today.year - years, day=28)
    entries, copies = _entries(l for l in citations if l.entry_date)
    for key, link in entries.items():
        assert link.entry_date is not None
        if link.entry_date < limit:
            age = (today - link.entry_date).days // 365
            yield _issue("old_citation", link, titles,
                         f"Dated {wording.format_date(link.entry_date)}, "
                         f"{wording.plural(age, 'year')} old: is there newer research?",
                         more_lines=copies.get(key, ()))


def _page_errors(pages: Sequence[PageRecord], titles: Mapping[str, str]) -> Iterable[ContentIssue]:
    """A watched page is the site's own page: "the site removed this page",
    not "the publisher removed this article"; said as the banner says it
    (`wording.page_failure`), one rule for both."""
    for page in pages:
        if page.status != "error":
            continue
        cause = wording.page_failure(page.http_status, page.error)
        yield ContentIssue("page_error", page.url, titles.get(page.url, page.url), "",
                           f"The page could not be fetched: {cause}. Its links were not checked.",
                           url=page.url, pages=(page.url,))


def _page_changes(pages: Sequence[PageRecord], previous: Sequence[PageRecord],
                  titles: Mapping[str, str]) -> Iterable[ContentIssue]:
    before = {p.url: p for p in previous if p.status in _READ and p.entries}
    for page in pages:
        prev = before.get(page.url)
        if prev is None or page.status not in _READ:
            continue
        old, new = set(prev.entries), set(page.entries)
        added = [t for t in page.entries if t not in old]
        removed = [t for t in prev.entries if t not in new]
        churn = len(added) + len(removed)
        if churn < max(HEAVY_CHANGE_MIN, math.ceil(HEAVY_CHANGE_FRACTION * len(prev.entries))):
            continue
        related = tuple([f"+ {t}" for t in added[:10]] + [f"\u2212 {t}" for t in removed[:10]])
        yield ContentIssue(
            "page_changed", page.url, titles.get(page.url, page.url), "",
            f"{wording.plural(len(added), 'entry')} added and {len(removed)} removed since the "
            "last run: if that was not intended, check the page's last edit.",
            url=page.url, related=related, pages=(page.url,))


_HAD = re.compile(r"it had (\d+ links?) when last read")


def _links_moved(pages: Sequence[PageRecord], previous: Sequence[PageRecord],
                 titles: Mapping[str, str]) -> Iterable[ContentIssue]:
    """A page read with no links twice in a row, taken the second time as
    the page (`monitor.pages.links_moved`): said once, the week it is taken,
    since its earlier problems are then listed as fixed ("removed from the
    page") and an editor should know why, in case the links were lost."""
    failed = {p.url: p for p in previous if p.status == "error" and HOLDS_NO_LINKS in p.error}
    for page in pages:
        prev = failed.get(page.url)
        if prev is None or page.status != "ok" or page.links:
            continue
        had = _HAD.search(prev.error)
        yield ContentIssue(
            "page_changed", page.url, titles.get(page.url, page.url), "",
            f"The page now has no links{f' (it had {had.group(1)})' if had else ''}: it held none "
            "two runs in a row, so this is taken as an edit (the references moved to another "
            "page?) and its earlier problems are listed as fixed. If the links were lost, "
            "restore them.", url=page.url, pages=(page.url,))


# -- one fix, many rows ----------------------------------------------------------


def bulk_fixes(needs_fixing: Sequence[PageGroup], needs_a_person: Sequence[PageGroup]) -> BulkFixes:
    """The URLs flagged on `BULK_MIN_PAGES` pages or more (the most pages
    first), and the moved links whose new addresses share one rewrite
    (`_rewrite`): a rewrite made by `BULK_MIN_HOSTS` hosts or more, each on
    its own host, is one `SharedRewrite` (whatever each host's share); else
    a host with `BULK_MIN_MOVED` moved URLs or more is one `HostMove`.
    Those two kinds share one list, the most rows first (`BulkFixes.moves`),
    at most `BULK_SHOWN` in all, as the URLs are. One pass over the rows,
    a `urlsplit` per moved row, one over the hosts' rewrites: linear in the
    report's size."""
    by_url: dict[str, list[tuple[str, Problem]]] = {}
    moves: dict[tuple[str, ...], list[Problem]] = {}
    for place, groups in (("fix", needs_fixing), ("person", needs_a_person)):
        for g in groups:
            for p in g.problems:
                by_url.setdefault(p.link.url, []).append((place, p))
                if p.link.status == LinkStatus.MOVED and p.fix_url and place == "fix":
                    key = _rewrite(p.link.url, p.fix_url)
                    if key is not None:
                        moves.setdefault(key, []).append(p)
    shared = [_shared(url, rows) for url, rows in by_url.items()
              if len({p.link.page for _, p in rows}) >= BULK_MIN_PAGES]
    shared.sort(key=lambda s: -s.pages)  # stable: ties in the report's order
    # A host's rewrite on its own host, keyed without the host: the hosts
    # sharing it, in the order of their first row.
    alike: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for key in moves:
        if key[1] != "host":
            alike.setdefault(key[1:4] + key[5:], []).append(key)
    grouped = {key for keys in alike.values() if len(keys) >= BULK_MIN_HOSTS for key in keys}
    found: list[SharedRewrite | HostMove] = [
        _shared_rewrite(keys, moves) for keys in alike.values()
        if len(keys) >= BULK_MIN_HOSTS
        and sum(len({p.link.url for p in moves[k]}) for k in keys) >= BULK_MIN_MOVED]
    found += [_host_move(key, rows) for key, rows in moves.items()
              if key not in grouped and len({p.link.url for p in rows}) >= BULK_MIN_MOVED]
    found.sort(key=_move_order)  # stable: ties in the report's order
    shown, rest = found[:BULK_SHOWN], found[BULK_SHOWN:]
    return BulkFixes(links=tuple(shared[:BULK_SHOWN]),
                     hosts=tuple(m for m in shown if isinstance(m, HostMove)),
                     more_links=max(0, len(shared) - BULK_SHOWN),
                     more_hosts=sum(isinstance(m, HostMove) for m in rest),
                     rewrites=tuple(m for m in shown if isinstance(m, SharedRewrite)),
                     more_rewrites=sum(isinstance(m, SharedRewrite) for m in rest))


def _shared(url: str, rows: Sequence[tuple[str, Problem]]) -> SharedLink:
    place, first = rows[0]
    link = first.link
    texts = Counter(p.link.text or p.link.entry_title for _, p in rows)
    lines = {p.link.line for _, p in rows}
    fixes = {p.fix_url for _, p in rows}
    navigation = sum(p.link.kind == LinkKind.NAVIGATION for _, p in rows) * 2 > len(rows)
    return SharedLink(url=url, status=link.status, reason=link.reason, http_status=link.http_status,
                      pages=len({p.link.page for _, p in rows}), rows=len(rows),
                      text=" ".join(texts.most_common(1)[0][0].split()), navigation=navigation,
                      line=next(iter(lines)) if len(lines) == 1 else None,
                      fix_url=next(iter(fixes)) if len(fixes) == 1 else None,
                      first_page=link.page, place=place)


def _host_move(key: tuple[str, ...], rows: Sequence[Problem]) -> HostMove:
    host, kind, _, new_scheme, new_host, old_part, new_part = key
    first = rows[0]
    same = all(_path_of(p.link.url) == _path_of(p.fix_url) for p in rows)
    return HostMove(host=host, new_host=new_host, new_scheme=new_scheme,
                    old_part=old_part, new_part=new_part, same_paths=same and kind == "host",
                    urls=len({p.link.url for p in rows}), links=len(rows),
                    pages=len({p.link.page for p in rows}), first_page=first.link.page, place="fix")


def _shared_rewrite(keys: Sequence[tuple[str, ...]], moves: Mapping[tuple[str, ...], Sequence[Problem]]
                    ) -> SharedRewrite:
    """`keys` (the hosts' rewrites, in the order of their first row) as one
    line; its first row is the first host's first (the report's order)."""
    _, kind, old_scheme, new_scheme, _, old_part, new_part = keys[0]
    by_rows = sorted(keys, key=lambda k: -len(moves[k]))  # stable: ties in the report's order
    rows = [p for k in keys for p in moves[k]]
    return SharedRewrite(hosts=tuple(k[0] for k in by_rows), old_scheme=old_scheme, new_scheme=new_scheme,
                         old_part=old_part, new_part=new_part,
                         same_paths=kind == "scheme" and all(_path_of(p.link.url) == _path_of(p.fix_url)
                                                             for p in rows),
                         replace_gives_new=all(_after_replace(p.link.url, old_scheme, new_scheme, old_part, new_part)
                                               == p.fix_url for p in rows),
                         urls=len({p.link.url for p in rows}), links=len(rows),
                         pages=len({p.link.page for p in rows}), first_page=moves[keys[0]][0].link.page,
                         place="fix")


def _after_replace(url: str, old_scheme: str, new_scheme: str, old_part: str, new_part: str) -> str:
    """`url` after the search and replace a shared rewrite's line tells the
    editor to do: the scheme's "http://" by "https://", the first `old_part`
    by `new_part`."""
    if old_scheme and url.startswith(old_scheme + "://"):
        url = new_scheme + url[len(old_scheme):]
    return url.replace(old_part, new_part, 1) if old_part else url


def _path_of(url: str | None) -> str:
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return ""
    return parts.path + ("?" + parts.query if parts.query else "")


def _rewrite(old: str, new: str) -> tuple[str, ...] | None:
    """The rewrite taking `old` to `new`, as a key that every address moved
    the same way shares: to another host (whatever the paths: a publisher's
    new site), keyed by the two hosts; on the same host, the scheme (http ->
    https) or the path segments that changed, with the segments before them
    ("/doi/10.1/x" -> "/doi/full/10.1/x" is "/doi/" -> "/doi/full/"). None
    when not a web address, or when only the query changed.

    The key: (host, kind "host" | "path" | "scheme", old scheme, new scheme
    (both "" when the same), new host, old part, new part); without the two
    hosts it is the rewrite itself, which other hosts may share."""
    try:
        a, b = urlsplit(old), urlsplit(new)
        host, new_host = (a.hostname or "").lower(), (b.hostname or "").lower()
    except ValueError:
        return None
    if not host or not new_host:
        return None
    changed = b.scheme.lower() != a.scheme.lower()
    old_scheme, scheme = (a.scheme.lower(), b.scheme.lower()) if changed else ("", "")
    if new_host != host:
        return (host, "host", old_scheme, scheme, new_host, "", "")
    sa, sb = a.path.split("/"), b.path.split("/")
    i = 0
    while i < min(len(sa), len(sb)) and sa[i] == sb[i]:
        i += 1
    j = 0
    while j < min(len(sa), len(sb)) - i and sa[-1 - j] == sb[-1 - j]:
        j += 1
    old_mid, new_mid = sa[i:len(sa) - j], sb[i:len(sb) - j]
    if not old_mid and not new_mid:
        return (host, "scheme", old_scheme, scheme, host, "", "") if scheme else None
    if not "".join(sa[:i] + old_mid):
        # Something put in front of the path ("/article/1" -> "/en/article/1"):
        # the old part would be "/", and replacing "/" breaks every address
        # (review 12 #1). The first segment after it is the old part's
        # context: "/article/" -> "/en/article/"; none (the root page): no rewrite.
        if not j:
            return None
        old_mid, new_mid, j = old_mid + [sa[len(sa) - j]], new_mid + [sb[len(sb) - j]], j - 1
    tail = "/" if j else ""
    return (host, "path", old_scheme, scheme, host,
            "/".join(sa[:i] + old_mid) + tail, "/".join(sb[:i] + new_mid) + tail)


# -- counting and slicing ------------------------------------------------------


def _count(audit: Audit) -> Counts:
    """Counts come from the audit's own contents, so a slice recounts itself."""
    by_status = {s: 0 for s in LinkStatus}
    for link in audit.links:
        by_status[link.status] += 1
    problems = audit.problems
    flagged = problems + audit.watched
    return Counts(
        checked=len(audit.links) - by_status[LinkStatus.SKIPPED],
        ok=by_status[LinkStatus.OK],
        moved=by_status[LinkStatus.MOVED],
        expired=by_status[LinkStatus.EXPIRED],
        error=by_status[LinkStatus.ERROR],
        blocked=by_status[LinkStatus.BLOCKED],
        private_address=sum(map(private_address, audit.links)),
        drifted=by_status[LinkStatus.DRIFTED],
        skipped=by_status[LinkStatus.SKIPPED],
        new=sum(p.new for p in problems),
        still=sum(not p.new for p in problems),
        fixed=len(audit.fixed_since_last),
        confirmed=sum(p.confirmed for p in flagged),
        suspected=sum(not p.confirmed for p in flagged),
        watching=len(audit.watched),
        # URLs requested, as the run and /healthz count them (a malformed one is not)
        urls=len({l.url for l in audit.links
                  if l.status != LinkStatus.SKIPPED and l.reason != "invalid_url"}),
        pages=len(audit.pages),
        pages_failed=len(audit.pages_failed),
        # A page that could not be fetched is said in the warning at the top,
        # not counted as a note about the entries (the tile, JSON, subject).
        content=audit.content_audit.total - len(audit.content_audit.pages_failed),
        no_longer_checked=len(audit.no_longer_checked),
        no_longer_audited=sum(g.open for g in audit.no_longer_audited),
        needs_fixing=audit.fixing_count,
        needs_a_person=audit.person_count,
        accepted=len(audit.accepted),
        newly_accepted=sum(not p.new for p in audit.accepted),
    )


def audit_for_pages(audit: Audit, pages: Collection[str], audience: str) -> Audit:
    """The part of `audit` about `pages`: what one page owner receives."""
    wanted = set(pages)

    def keep(issues: tuple[ContentIssue, ...]) -> tuple[ContentIssue, ...]:
        return tuple(i for i in issues if wanted.intersection(i.pages))

    content = ContentAudit(**{key: keep(getattr(audit.content_audit, key)) for key in CONTENT_FIELDS})
    part = replace(
        audit,
        needs_fixing=tuple(g for g in audit.needs_fixing if g.url in wanted),
        needs_a_person=tuple(g for g in audit.needs_a_person if g.url in wanted),
        watching=tuple(g for g in audit.watching if g.url in wanted),
        fixed_since_last=tuple(f for f in audit.fixed_since_last if f.link.page in wanted),
        cleared_by_itself=tuple(f for f in audit.cleared_by_itself if f.link.page in wanted),
        no_longer_checked=tuple(f for f in audit.no_longer_checked if f.link.page in wanted),
        no_longer_audited=tuple(g for g in audit.no_longer_audited if g.url in wanted),
        content_audit=content,
        everything_else=tuple(o for o in audit.everything_else if o.url in wanted),
        pages=tuple(p for p in audit.pages if p.url in wanted),
        pages_failed=tuple(p for p in audit.pages_failed if p.url in wanted),
        links=tuple(l for l in audit.links if l.page in wanted),
        audience=audience,
        sites_not_audited=(),  # the configuration's limits are the webmaster's to change
        accepted=tuple(p for p in audit.accepted if p.link.page in wanted),
    )
    return replace(part, counts=_count(part), bulk_fixes=bulk_fixes(part.needs_fixing, part.needs_a_person))


SUMMARY_TIERS = (
    "New, with the new address ready to paste",
    "New, with an archived copy or a likely address ready",
    "New and confirmed",
    "New, not confirmed yet: checked again before the next report",
    "New, on sites that refuse automated checks: open them in a browser",
    "Still open, the most recent first",
)
"""The headings of a summarised mail's rows, in the order it picks them
(`summary_tier`): what an editor can fix now first, what may clear by
itself after."""


def summary_tier(p: Problem) -> int:
    """Index in `SUMMARY_TIERS`: a new row with its fix ready comes first
    (a moved link's new address, then an expired or drifted one's archived
    copy or likely address); a new suspected one, which the rechecks may
    clear, after every confirmed one; the rows still open from earlier
    reports last (the reader saw them last week)."""
    if not p.new:
        return 5
    status = p.link.status
    if status == LinkStatus.BLOCKED:
        return 4
    if not p.confirmed:
        return 3
    if p.fix_url and status == LinkStatus.MOVED:
        return 0
    if p.fix_url and status in (LinkStatus.EXPIRED, LinkStatus.DRIFTED):
        return 1
    return 2


def summary_order(audit: Audit) -> list[Problem]:
    """Every problem, in the order a summary picks them: by `summary_tier`;
    the rows still open the most recent first (by whole weeks), blocked ones
    after; then spread over the pages.

    Spread: within one tier (and week) each page gives its first row before
    any page gives its second, and the pages of one round are taken evenly
    over the report's page order (0, 1/2, 1/4, 3/4, ... of the list), so 40
    rows of 100 new ones on 100 pages are not the first 40 pages'. (Sorting
    on `since` alone gave the first 25 in page order: the rows of one run
    share nearly one `since`.)"""
    problems = audit.problems
    page_at = _page_positions(audit)
    spread = {url: _radical_inverse(i) for url, i in page_at.items()}
    floor = dt.datetime.min.replace(tzinfo=dt.timezone.utc)

    def bucket(p: Problem) -> tuple[int, ...]:
        tier = summary_tier(p)
        if tier < 5:
            return (tier,)
        return (tier, p.link.status == LinkStatus.BLOCKED, p.weeks_open)

    def since(p: Problem) -> dt.datetime:
        return as_utc(p.since) if p.since else floor

    by_bucket: dict[tuple[tuple[int, ...], str], list[int]] = {}
    for i in sorted(range(len(problems)), key=lambda i: since(problems[i]), reverse=True):
        p = problems[i]
        by_bucket.setdefault((bucket(p), p.link.page), []).append(i)
    keyed = []
    for (b, page), rows in by_bucket.items():
        for rank, i in enumerate(rows):
            keyed.append(((b, rank, spread.get(page, 1.0), page_at.get(page, 0), i), i))
    keyed.sort()
    return [problems[i] for _, i in keyed]


def newest_problems(audit: Audit, limit: int) -> list[Problem]:
    """The first `limit` rows of `summary_order`, as a summary lists them
    (`in_summary_order`)."""
    return in_summary_order(audit, summary_order(audit)[:limit])


def in_summary_order(audit: Audit, shown: Iterable[Problem],
                     keys: Mapping[int, tuple[int, int, int]] | None = None) -> list[Problem]:
    """The rows a summary picked, as it lists them: by tier, then in page
    order and, within a page, as the page reads (the order of
    `Audit.problems`), so one page's rows stand together. `keys`:
    `summary_reading_keys(audit)`, made once for several summaries."""
    keys = summary_reading_keys(audit) if keys is None else keys
    return sorted(shown, key=lambda p: keys[id(p)])


def summary_reading_keys(audit: Audit) -> dict[int, tuple[int, int, int]]:
    """id(problem) -> its place in a summary's list (`in_summary_order`)."""
    page_at = _page_positions(audit)
    return {id(p): (summary_tier(p), page_at.get(p.link.page, 0), i)
            for i, p in enumerate(audit.problems)}


def _page_positions(audit: Audit) -> dict[str, int]:
    """Page URL -> its place in the report (the groups' order: the configuration's)."""
    order: dict[str, int] = {}
    for g in audit.needs_fixing + audit.needs_a_person:
        order.setdefault(g.url, len(order))
    return order


def _radical_inverse(i: int) -> float:
    """i's binary digits mirrored after the point (0, .5, .25, .75, .125, ...):
    sorted on it, any first k of n positions are spread evenly over them."""
    value, weight = 0.0, 0.5
    while i:
        value += weight * (i & 1)
        i >>= 1
        weight /= 2
    return value


def default_site_name(urls: Iterable[str]) -> str:
    """The host of the first watched page: "www.sclero.org"."""
    for url in urls:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        if host:
            return host
    return "your site"
