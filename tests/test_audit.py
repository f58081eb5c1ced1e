"""build_audit and the wording: table tests over hand-built link lists."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from html import unescape
from urllib.parse import quote

import pytest

from monitor.config import ReportSettings
from monitor.types import FailTally, LinkKind, LinkResult, LinkStatus, PageRecord, RunInfo, UrlState
from reports import wording
from reports.mail import subject_for
from reports.render import headline, render_html, render_json, render_text
from reports.audit import Audit, audit_for_pages, build_audit, search_for, text_fragment_link

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
PAGE = "https://www.sclero.org/scleroderma/dm/treatments.html"
PAGE2 = "https://www.sclero.org/scleroderma/ssc/treatments.html"
RUN = RunInfo(id=8, started_at=NOW, finished_at=NOW, status="finished")


def link(url: str, status: str = "ok", reason: str = "", *, page: str = PAGE,
         section: str = "Biological Agents", title: str | None = None, source: str = "PubMed, 2019.",
         kind: LinkKind = LinkKind.CITATION, **extra: object) -> LinkResult:
    base = LinkResult(
        page=page, url=url, text=title if title is not None else f"Entry for {url}", section=section,
        kind=kind, status=LinkStatus(status), reason=reason or status, http_status=None,
        final_url=None, suggested_url=None, strikes=0, failing_since=None, checked_at=NOW,
        entry_title=title if title is not None else f"Entry for {url}", entry_source=source,
    )
    return replace(base, **extra)  # type: ignore[arg-type]


def page(url: str = PAGE, status: str = "ok", entries: tuple[str, ...] = (), **extra: object) -> PageRecord:
    return replace(PageRecord(run_id=RUN.id, url=url, status=status, title=f"Title of {url}",
                              entries=entries), **extra)  # type: ignore[arg-type]


def audit_of(links: list[LinkResult], *, previous: list[LinkResult] | None = None,
             pages: list[PageRecord] | None = None, previous_pages: list[PageRecord] | None = None,
             states: dict[str, UrlState] | None = None,
             previous_cited: set[tuple[str, str, str, str]] | None = None,
             last_read: list[tuple[PageRecord, list[LinkResult]]] | None = None,
             **settings: object) -> Audit:
    return build_audit(
        RUN, links, pages if pages is not None else [page()],
        previous_links=previous, previous_pages=previous_pages, states=states or {},
        now=NOW, settings=ReportSettings(**settings), site_name="www.sclero.org",  # type: ignore[arg-type]
        previous_cited=previous_cited, last_read=last_read or (),
    )


def failing(url: str, status: str = "expired", reason: str = "http_404", days: float = 10,
            strikes: int = 5, **extra: object) -> LinkResult:
    return link(url, status, reason, failing_since=NOW - dt.timedelta(days=days), strikes=strikes,
                **extra)


def verdict_of(audit: Audit, url: str) -> str:
    """Where a URL ended up: new / still / fixed:<how> / ok."""
    for p in audit.problems + audit.watched:
        if p.link.url == url:
            return "new" if p.new else "still"
    for f in audit.fixed_since_last:
        if f.link.url == url:
            return f"fixed:{f.how}"
    for f in audit.no_longer_checked:
        if f.link.url == url:
            return f"no longer checked:{f.how}"
    return "ok"


# -- new / still / fixed -------------------------------------------------------

U = "https://example.org/article"


@pytest.mark.parametrize(
    ("previous", "current", "page_status", "expected"),
    [
        (None, failing(U), "ok", "new"),  # first report: everything is new
        ([link(U)], failing(U), "ok", "new"),
        ([failing(U)], failing(U), "ok", "still"),
        ([failing(U, "error", "timeout")], failing(U), "ok", "still"),  # kind changed, still open
        ([failing(U)], link(U), "ok", "fixed:works_again"),
        # excluded since: nobody fixed it (walkthrough 9, finding 4)
        ([failing(U)], link(U, "skipped", "excluded"), "ok", "no longer checked:not_checked"),
        ([failing(U)], link("https://example.org/new-home", title=f"Entry for {U}"), "ok",
         "fixed:link_updated"),
        ([failing(U)], link("https://example.org/other", title="Another entry"), "ok", "fixed:removed"),
        # the page could not be read: we cannot say it was fixed; it is still open
        ([failing(U)], link("https://example.org/other", title="Another entry"), "error", "still"),
        ([link(U, "moved", "permanent_redirect", suggested_url=U + "/v2")],
         link(U, "moved", "permanent_redirect", suggested_url=U + "/v2"), "ok", "still"),
    ],
)
def test_new_still_fixed(previous: list[LinkResult] | None, current: LinkResult,
                         page_status: str, expected: str) -> None:
    audit = audit_of([current], previous=previous, pages=[page(status=page_status)])
    assert verdict_of(audit, U) == expected


def test_a_dead_link_replaced_by_another_dead_link_is_not_fixed() -> None:
    """The editor replaced the dead link with an address that is broken too: the
    entry was "fixed: now links to a new address" and its new link a new problem.
    Then its new link was "NEW, first seen this week" and the previous report's
    row vanished (walkthrough 10 #1): it is that row, still open since its first
    week, saying what the editor did."""
    old = failing(U, title="The entry")
    audit = audit_of([failing(U + "/v2", title="The entry", days=0.1, strikes=1)], previous=[old])
    assert audit.fixed_since_last == () and audit.counts.fixed == 0
    (row,) = audit.problems
    assert (row.link.url, row.new, row.since, row.replaced_url) == (U + "/v2", False, old.failing_since, U)
    assert row.words.startswith("You replaced the link on 23 Nov 2026; the new one "
                                "(https://example.org/article/v2) is broken too. The page is gone")
    assert row.words.endswith("(HTTP 404)")
    assert (audit.counts.new, audit.counts.still) == (0, 1)


# -- excluded since, pages no longer audited: not fixed, not vanished --------------

WEEK = dt.timedelta(days=7)
RUN1 = RunInfo(id=7, started_at=NOW - WEEK, finished_at=NOW - WEEK, status="finished",
               reported_at=NOW - WEEK)
NCBI = "https://www.ncbi.nlm.nih.gov/pubmed/29713888"
RAYNAUD = "https://www.sclero.org/raynauds/a-to-z.html"


def week_of(run: RunInfo, links: list[LinkResult], pages: list[PageRecord], *,
            previous: list[LinkResult] | None = None,
            previous_pages: list[PageRecord] | None = None,
            configured: list[str] | None = None, crawls: bool = False) -> Audit:
    return build_audit(run, links, pages, previous_links=previous, previous_pages=previous_pages,
                       states={}, now=run.started_at, settings=ReportSettings(),
                       site_name="www.sclero.org", previous_run=RUN1 if previous else None,
                       configured=configured, crawls=crawls)


def moved_ncbi(**extra: object) -> LinkResult:
    return link(NCBI, "moved", "permanent_redirect", title="Rituximab for refractory DM",
                suggested_url="https://pubmed.ncbi.nlm.nih.gov/29713888/", **extra)


def excluded_ncbi() -> LinkResult:
    return link(NCBI, "skipped", "excluded", title="Rituximab for refractory DM", checked_at=None)


def test_a_link_excluded_since_is_no_longer_checked_not_fixed() -> None:
    """Walkthrough 9, finding 4: `checker.exclude` added for a noisy host made
    its moved link "1 link fixed since the report of ..." in the headline,
    the subject and the tile. Nobody changed the entry."""
    audit = audit_of([excluded_ncbi(), failing(U)], previous=[moved_ncbi(), failing(U)],
                     previous_pages=[page()])
    assert audit.fixed_since_last == () and audit.counts.fixed == 0
    assert [f.link.url for f in audit.no_longer_checked] == [NCBI]
    assert audit.counts.no_longer_checked == 1 and audit.counts.still == 1
    line = "1 link no longer checked (ncbi.nlm.nih.gov): now excluded by checker.exclude (it was: moved)."
    html, text = render_html(audit), render_text(audit)
    assert line in text and line in html
    assert "Fixed since last report: 0" in text and "FIXED SINCE" not in text
    assert "fixed" not in headline(audit) and ", 0 fixed" in subject_for(audit)
    data = json.loads(render_json(audit))
    assert (data["counts"]["fixed"], data["counts"]["no_longer_checked"]) == (0, 1)
    assert data["fixed_since_last"] == [] and [f["link"]["url"] for f in data["no_longer_checked"]] == [NCBI]
    assert list(data["counts"])[-8:] == ["open", "no_longer_checked", "no_longer_audited",
                                         "needs_fixing", "needs_a_person", "accepted", "newly_accepted",
                                         "private_address"]  # added at the end (review 15 #2)
    part = audit_for_pages(audit, [PAGE], "editor@example.org")
    assert part.counts.no_longer_checked == 1 and line in render_text(part)


def test_links_excluded_by_a_crawl_are_said_with_both_keys() -> None:
    gone = link("https://doi.org/10.1/x", "expired", "http_404", title="Other")
    audit = week_of(RUN, [excluded_ncbi(), link("https://doi.org/10.1/x", "skipped", "excluded", title="Other")],
                    [page()], previous=[moved_ncbi(), gone], previous_pages=[page()], crawls=True)
    assert render_text(audit).count("no longer checked") == 1
    assert ("2 links no longer checked (ncbi.nlm.nih.gov, doi.org): now excluded by checker.exclude "
            "or a [[sites]] exclude_links (they were: 1 moved, 1 expired).") in render_text(audit)


def raynaud_week1() -> tuple[list[LinkResult], list[PageRecord]]:
    """Week 1 of the walkthrough, small: the DM/PM page (a moved PubMed link,
    two dead links, one to be fixed) and the Raynaud page (three dead links
    and one timeout only watched)."""
    dm = [moved_ncbi(), failing(U), failing(U + "/2"), failing(U + "/fixed")]
    raynaud = [failing(f"https://r.org/{i}", page=RAYNAUD) for i in range(3)]
    raynaud.append(failing("https://r.org/slow", "error", "timeout", days=0.1, strikes=1,
                           page=RAYNAUD, checked_at=RUN1.started_at))
    return dm + raynaud, [page(), page(RAYNAUD, name="Raynaud's", owner="r@example.org")]


def test_the_counts_reconcile_with_the_previous_report() -> None:
    """Walkthrough 9, finding 5: 19 open, then the Raynaud page removed and
    checker.exclude added: "7 still open, 1 fixed", and eleven problems
    gone without a word. Every open problem of the previous report is now
    still open, fixed, no longer checked, or on a page no longer audited."""
    links1, pages1 = raynaud_week1()
    week1 = week_of(RUN1, links1, pages1)
    assert (week1.counts.open, week1.counts.watching) == (7, 1)
    links2 = [excluded_ncbi(), failing(U), failing(U + "/2"), link(U + "/fixed", title=f"Entry for {U}/fixed")]
    week2 = week_of(RUN, links2, [page()], previous=links1, previous_pages=pages1, configured=[PAGE])
    c = week2.counts
    assert (c.new, c.still, c.fixed, c.no_longer_checked, c.no_longer_audited) == (0, 2, 1, 1, 3)
    assert week1.counts.open == c.still + c.fixed + c.no_longer_checked + c.no_longer_audited
    (gone,) = week2.no_longer_audited
    assert (gone.url, gone.title, gone.open, gone.watching) == (RAYNAUD, "Raynaud's", 3, 1)
    line = (f"No longer audited: Raynaud's ({RAYNAUD}), no longer in the configuration: its 3 open "
            "problems (and 1 suspected problem, not confirmed yet) are not followed any more.")
    text, html = render_text(week2), render_html(week2)
    assert line in text and line in html
    # under the counts, before any section
    assert text.index(line) < text.index("NEEDS FIXING")
    # the subject says that 4 problems left the count (was "0 new, 2 still open, 1 fixed" after 7)
    assert subject_for(week2).endswith(": no new problems, 2 still open, 1 fixed, 4 no longer followed")
    assert "no longer followed" not in subject_for(week1)
    data = json.loads(render_json(week2))
    assert data["counts"]["no_longer_audited"] == 3
    assert data["no_longer_audited"][0]["url"] == RAYNAUD


@pytest.mark.parametrize(("configured", "crawls", "why"), [
    (None, False, "not audited in this run"),
    ([PAGE], False, "no longer in the configuration"),
    ([PAGE], True, "no longer in the configuration's [[pages]], nor reached by its [[sites]] crawl"),
    # still configured (a run resumed with the pages it started with): not "removed"
    ([PAGE, RAYNAUD], False, "in the configuration, but not audited in this run"),
])
def test_why_a_page_is_no_longer_audited(configured: list[str] | None, crawls: bool, why: str) -> None:
    links1, pages1 = raynaud_week1()
    week2 = week_of(RUN, [failing(U)], [page()], previous=links1, previous_pages=pages1,
                    configured=configured, crawls=crawls)
    assert [g.why for g in week2.no_longer_audited] == [why]


def test_a_check_of_some_pages_does_not_say_the_others_are_no_longer_watched() -> None:
    """`check --page` audits some pages on purpose, and its report says so."""
    links1, pages1 = raynaud_week1()
    week2 = week_of(replace(RUN, partial=True), [failing(U)], [page()], previous=links1,
                    previous_pages=pages1, configured=[PAGE, RAYNAUD])
    assert week2.no_longer_audited == () and week2.counts.no_longer_audited == 0
    assert "No longer audited" not in render_text(week2)


# -- where "Search for the title" searches ------------------------------------------

KEEPING_WARM = "Keeping Warm: Practical Tips for Raynaud's"


@pytest.mark.parametrize(("source", "url", "engine"), [
    ("Raynaud's Association, 11/20/2018.", "http://", "duckduckgo.com"),
    ("Scleroderma Foundation patient leaflet, 2019.", "https://www.scleroderma.org/leaflet", "duckduckgo.com"),
    ("Arthritis Rheum. 2018;70(3):405-12.", "http://", "scholar.google.com"),
    ("J Rheumatol, 57(3):123-9", "", "scholar.google.com"),
    ("Smith A, Jones B, et al. 2019.", "", "scholar.google.com"),
    ("doi:10.1002/art.40111", "", "scholar.google.com"),
    ("Raynaud's Association, 2018.", "https://doi.org/10.1002/art.40111", "scholar.google.com"),
    ("Raynaud's Association, 2018.", "https://www.sciencedirect.com/science/article/1", "scholar.google.com"),
    ("PubMed, 2019.", "http://", "pubmed.ncbi.nlm.nih.gov"),
])
def test_the_title_is_searched_where_such_an_entry_is_found(source: str, url: str, engine: str) -> None:
    """Walkthrough 9, finding 19: "Search for the title" of a patients'
    leaflet went to Google Scholar, which does not have it."""
    found = search_for(KEEPING_WARM, source, url)
    assert found is not None
    address, label = found
    assert address.startswith(f"https://{engine}/")
    assert label == {"duckduckgo.com": "Search the web for the title",
                     "scholar.google.com": "Search Google Scholar for the title",
                     "pubmed.ncbi.nlm.nih.gov": "Search PubMed for the title"}[engine]


def test_a_malformed_leaflet_link_offers_a_web_search_in_both_parts() -> None:
    malformed = link("http://", "error", "invalid_url", title=KEEPING_WARM, checked_at=None,
                     source="Raynaud's Association, 11/20/2018.", written="http://")
    audit = audit_of([malformed])
    (p,) = audit.problems
    assert p.search_url == "https://duckduckgo.com/?q=" + quote(f'"{KEEPING_WARM}"', safe="")
    html, text = render_html(audit), render_text(audit)
    assert "Search the web for the title" in html and "scholar.google" not in html
    assert f"Search the web for the title: {p.search_url}" in text


PUBMED_LINK, FULL_TEXT = "https://pubmed.ncbi.nlm.nih.gov/29713888/", "https://journal.example.org/full/1"
NEW_FULL_TEXT = "https://journal.example.org/article/1"


@pytest.mark.parametrize(
    ("now_cited", "expected"),
    [
        # The editor deleted the dead full-text link; the PubMed link was there all along.
        ([PUBMED_LINK], [("removed", PUBMED_LINK)]),
        # ... or replaced it: the new address is the one the entry did not have.
        ([PUBMED_LINK, NEW_FULL_TEXT], [("link_updated", NEW_FULL_TEXT)]),
        ([NEW_FULL_TEXT, PUBMED_LINK], [("link_updated", NEW_FULL_TEXT)]),
        # Both links removed from the entry (the entry itself stays, unlinked).
        ([], [("removed", None)]),
    ],
)
def test_an_entry_with_two_links_that_lost_its_dead_one(now_cited: list[str],
                                                        expected: list[tuple[str, str | None]]) -> None:
    """An entry citing PubMed and the full text; the full text died and was
    reported. The week it is gone, "The entry now links to a new address:
    <the PubMed link>" told the editor of an address the entry always had."""
    title = "Rituximab in refractory DM"
    previous_links = [failing(FULL_TEXT, title=title)]
    cited = {(PAGE, "Biological Agents", title, PUBMED_LINK), (PAGE, "Biological Agents", title, FULL_TEXT)}
    audit = audit_of([link(url, title=title) for url in now_cited] or
                     [link("https://example.org/other", title="Another entry")],
                     previous=previous_links, previous_cited=cited)
    assert [(f.how, f.new_url) for f in audit.fixed_since_last] == expected
    assert audit.counts.fixed == 1 and audit.counts.new == 0


def test_one_url_cited_by_two_entries_is_followed_entry_by_entry() -> None:
    """The previous report listed one problem per entry; "fixed" and "new" were
    decided per (page, URL): both entries updated gave one "fixed", one entry
    updated gave none, and a new entry citing the same dead URL was "still open"."""
    a, b = failing(U, title="Entry A"), failing(U, title="Entry B", section="IVIg")
    both = audit_of([link(U + "/a", title="Entry A"), link(U + "/b", title="Entry B", section="IVIg")],
                    previous=[a, b])
    assert sorted((f.link.entry_title, f.how, f.new_url) for f in both.fixed_since_last) == [
        ("Entry A", "link_updated", U + "/a"), ("Entry B", "link_updated", U + "/b")]
    one = audit_of([link(U + "/a", title="Entry A"), b], previous=[a, b])
    assert [(f.link.entry_title, f.how) for f in one.fixed_since_last] == [("Entry A", "link_updated")]
    assert [(p.link.entry_title, p.new) for p in one.problems] == [("Entry B", False)]
    added = audit_of([a, b, failing(U, title="Entry C", section="IVIg")], previous=[a, b])
    assert [(p.link.entry_title, p.new) for p in added.problems] == [
        ("Entry A", False), ("Entry B", False), ("Entry C", True)]
    assert (added.counts.new, added.counts.still, added.counts.fixed) == (1, 2, 0)


def test_an_entry_renamed_or_moved_keeps_its_problem_open() -> None:
    """A retitled entry (a typo fixed) still cites the dead URL: still open, not
    "new" plus "fixed: removed"; if the link works now, it "works again"."""
    before = failing(U, title="Rituximab in DM")
    renamed = audit_of([failing(U, title="Rituximab in dermatomyositis", section="IVIg")],
                       previous=[before])
    assert verdict_of(renamed, U) == "still" and renamed.fixed_since_last == ()
    works = audit_of([link(U, title="Rituximab in dermatomyositis")], previous=[before])
    assert verdict_of(works, U) == "fixed:works_again"


def test_a_cross_listed_entry_is_one_row_per_section() -> None:
    """One entry listed in two sections is two rows; moved to another section
    it continues its row (still open, or works again); deleted from one
    section while the other keeps the dead link, it says which."""
    pde5, ulcers = (failing(U, title="PDE-5 inhibitors", section=s)
                    for s in ("Phosphodiesterase-5 Inhibitors", "Digital Ulcers"))
    both = audit_of([pde5, ulcers], previous=[pde5, ulcers])
    assert [(p.link.section, p.new) for p in both.problems] == [(pde5.section, False), (ulcers.section, False)]
    moved = audit_of([replace(pde5, section="Vasodilators")], previous=[pde5])
    assert verdict_of(moved, U) == "still" and moved.fixed_since_last == ()
    works = audit_of([link(U, title="PDE-5 inhibitors", section="Vasodilators")], previous=[pde5])
    assert verdict_of(works, U) == "fixed:works_again"
    one = audit_of([pde5], previous=[pde5, ulcers])
    assert [(p.link.section, p.new) for p in one.problems] == [(pde5.section, False)]
    assert [(f.how, f.link.section, f.words) for f in one.fixed_since_last] == [
        ("removed", ulcers.section,
         "Removed from \u201cDigital Ulcers\u201d; the link is still listed under "
         "\u201cPhosphodiesterase-5 Inhibitors\u201d")]


def test_a_renamed_page_keeps_its_problems_open() -> None:
    """The watched page moved to a new address (renamed in the configuration,
    or filed under a redirect's final address): every problem on it was "new"."""
    before = failing(U, title="Rituximab", page=PAGE)
    audit = audit_of([failing(U, title="Rituximab", page=PAGE2), failing(U + "/x", page=PAGE2)],
                     previous=[before], pages=[page(PAGE2)], previous_pages=[page(PAGE)])
    assert [(p.link.url, p.new) for p in audit.problems] == [(U, False), (U + "/x", True)]
    assert audit.fixed_since_last == ()
    # a page added beside the old one is not a rename: its problems are new
    added = audit_of([failing(U, title="Rituximab", page=PAGE2)], previous=[before],
                     pages=[page(PAGE), page(PAGE2)], previous_pages=[page(PAGE)])
    assert [(p.link.page, p.new) for p in added.problems] == [(PAGE2, True)]


def test_the_entry_linking_a_still_dead_url_was_removed() -> None:
    """Entry A is gone from the page, entry B still cites the dead URL: A's row is
    accounted for ("removed"), B's is still open."""
    a, b = failing(U, title="Entry A"), failing(U, title="Entry B")
    audit = audit_of([b], previous=[a, b])
    assert [(f.link.entry_title, f.how) for f in audit.fixed_since_last] == [("Entry A", "removed")]
    assert [(p.link.entry_title, p.new) for p in audit.problems] == [("Entry B", False)]


def test_problems_of_a_page_that_could_not_be_fetched_stay_open() -> None:
    """The page failed this week, so its links were not checked: its problems
    of the last report are not fixed, but they vanished from the lists and
    the counts ("Nothing needs fixing this week" with 2 known dead links)."""
    dead, blocked = failing(U, title="Dead"), failing(U + "/b", "blocked", "http_403", title="Walled")
    audit = audit_of([], previous=[dead, blocked], pages=[page(status="error", error="timeout")])
    assert [(p.link.url, p.new, p.since) for p in audit.problems] == [
        (U, False, dead.failing_since), (U + "/b", False, blocked.failing_since)]
    assert all(wording.NOT_RECHECKED in p.words for p in audit.problems)
    assert (audit.counts.new, audit.counts.still, audit.counts.fixed) == (0, 2, 0)
    assert audit.counts.checked == 0  # not checked this run: not in the run's link counts


def test_fixed_by_link_update_names_the_new_url() -> None:
    audit = audit_of([link("https://example.org/new-home", title="The entry")],
                     previous=[failing(U, title="The entry")])
    (fixed,) = audit.fixed_since_last
    assert fixed.new_url == "https://example.org/new-home"
    assert "404" in fixed.was


@pytest.mark.parametrize(("days", "weeks"), [(0.5, 0), (6.9, 1), (7, 1), (22, 3), (70, 10)])
def test_weeks_open_count_from_failing_since(days: float, weeks: int) -> None:
    audit = audit_of([failing(U, days=days)], previous=[failing(U, days=days)])
    (problem,) = audit.problems
    assert problem.weeks_open == weeks
    assert problem.since == NOW - dt.timedelta(days=days)


# (when the failure began, weeks open, the date said beside them) in the report of
# Mon 23 Nov 2026 06:00 UTC: whole weeks between the dates, whatever the hour.
_WEEKS_TABLE = [
    # first checked a moment later in its first audit than the report's clock reads now
    (NOW - 2 * dt.timedelta(days=7) + dt.timedelta(seconds=0.3), 2, "9 Nov 2026"),
    (NOW - dt.timedelta(days=7) + dt.timedelta(seconds=4), 1, "16 Nov 2026"),
    (dt.datetime(2026, 11, 16, 23, 59, 59, tzinfo=UTC), 1, "16 Nov 2026"),
    (dt.datetime(2026, 11, 17, 0, 0, tzinfo=UTC), 0, "17 Nov 2026"),
    (dt.datetime(2026, 11, 22, 23, 59, tzinfo=UTC), 0, "22 Nov 2026"),
    (dt.datetime(2026, 11, 9, 0, 0, tzinfo=UTC), 2, "9 Nov 2026"),
    (dt.datetime(2026, 11, 2, 5, 59, tzinfo=UTC), 3, "2 Nov 2026"),
    (dt.datetime(2026, 11, 9, 6, 0, 1), 2, "9 Nov 2026"),  # naive: UTC, as the store keeps it
]


@pytest.mark.parametrize(("since", "weeks", "day"), _WEEKS_TABLE)
def test_weeks_open_agree_with_the_date_said_beside_them(since: dt.datetime, weeks: int, day: str) -> None:
    """Walkthrough 10 #3: "Open 1 week, since 13 Nov 2026" in the report of
    27 Nov (a timeout first seen 0.4 s later in the audit of 13 Nov than the
    27 Nov report's clock read): weeks counted from the instants were a week
    short for every link checked late in its first audit."""
    row = link(U, "error", "timeout", failing_since=since, strikes=3)
    audit = audit_of([row], previous=[link(U, "error", "timeout", failing_since=since, strikes=2)])
    (problem,) = audit.problems + audit.watched  # the latest ones are not confirmed yet
    assert (problem.weeks_open, wording.format_date(problem.since)) == (weeks, day)
    if problem.confirmed:
        said = f"open {wording.plural(weeks, 'week')}, since {day}" if weeks else f"open since {day}"
        assert problem.age_words == said


@pytest.mark.parametrize(("since", "weeks", "day"), _WEEKS_TABLE)
def test_weeks_open_of_a_page_not_read_again_agree_with_the_date(since: dt.datetime, weeks: int,
                                                                 day: str) -> None:
    """The same count for a problem carried over from a page this run could
    not fetch (aged from the last report that read it)."""
    before = [link(U, "expired", "http_404", failing_since=since, strikes=3, checked_at=since)]
    audit = build_audit(RUN, [], [page(status="error")], previous_links=before,
                        previous_pages=[page()], states={}, now=NOW, settings=ReportSettings(),
                        site_name="www.sclero.org", previous_run=None)
    (problem,) = audit.problems + audit.watched
    assert (problem.weeks_open, wording.format_date(problem.since), problem.rechecked) == (weeks, day, False)


def test_a_problem_still_open_under_another_status_keeps_its_date() -> None:
    """Moved last report, expired now: the failure began this week, but the
    problem was listed a week ago; it read "still open since" today."""
    before = link(U, "moved", "permanent_redirect", suggested_url=U + "/v2",
                  checked_at=NOW - dt.timedelta(days=7))
    audit = audit_of([failing(U, days=0.2, strikes=1)], previous=[before])
    (problem,) = audit.problems
    assert (problem.new, problem.since, problem.weeks_open) == (False, NOW - dt.timedelta(days=7), 1)


def test_counts_new_still_fixed() -> None:
    a, b, c, d = (f"https://example.org/{n}" for n in "abcd")
    audit = audit_of(
        [failing(a), failing(b), link(c), link(d)],
        previous=[failing(b), failing(c), link(d)],
    )
    assert (audit.counts.new, audit.counts.still, audit.counts.fixed) == (1, 1, 1)


# -- confirmed vs suspected ----------------------------------------------------


def state(url: str, status: str, strikes: int, hours: float) -> UrlState:
    return UrlState(url=url, status=LinkStatus(status), strikes=strikes,
                    failing_since=NOW - dt.timedelta(hours=hours))


ONCE = "suspected: failed once so far"


@pytest.mark.parametrize(
    ("status", "strikes", "hours", "confirm_after", "confirmed", "suspicion"),
    [
        ("expired", 1, 1, 24, False, ONCE),   # first failure
        ("expired", 3, 30, 24, True, ""),     # several failures over more than a day
        ("expired", 3, 5, 24, False,          # several, but all within a few hours
         "suspected: failed 3 checks in a row, over less than a day so far"),
        ("expired", 3, 5, 4, True, ""),       # ...which is enough with a 4 h setting
        ("error", 1, 0.1, 24, False, ONCE),
        ("error", 2, 0.5, 4, False, "suspected: failed 2 checks in a row, over less than 4 hours so far"),
        ("error", 3, 0.2, 1, False, "suspected: failed 3 checks in a row, over less than 1 hour so far"),
        ("error", 4, 48, 24, True, ""),
        ("blocked", 4, 48, 24, True, ""),
        ("blocked", 1, 1, 24, False, ""),     # a person looks at it anyway: nothing "suspected"
        ("moved", 0, 0, 24, True, ""),        # a 301 is a fact on the first sight
        ("drifted", 0, 0, 24, True, ""),
    ],
)
def test_confirmed_versus_suspected(status: str, strikes: int, hours: float,
                                    confirm_after: float, confirmed: bool, suspicion: str) -> None:
    """Confirmed, or suspected with how often it failed (four failed checks
    within hours were "failed once so far" in the report)."""
    current = link(U, status, strikes=strikes, failing_since=NOW - dt.timedelta(hours=hours),
                   suggested_url=U + "/new" if status == "moved" else None)
    audit = audit_of([current], states={U: state(U, status, strikes, hours)},
                     confirm_after_hours=confirm_after)
    (problem,) = audit.problems + audit.watched
    assert problem.confirmed is confirmed
    assert problem.suspicion == suspicion


def test_suspected_site_errors_are_watched_not_to_fix() -> None:
    suspected = failing(U, "error", "timeout", days=0.1, strikes=1)
    confirmed = failing(U + "2", "error", "http_503", days=3, strikes=4)
    audit = audit_of([suspected, confirmed])
    assert [p.link.url for p in audit.watched] == [U]
    assert [p.link.url for p in audit.problems] == [U + "2"]
    assert audit.counts.watching == 1 and audit.counts.open == 1
    assert "Nothing to do yet" in audit.watched[0].advice


def test_a_malformed_address_is_to_fix_at_once_not_watched() -> None:
    """`href="http://[bad"` is a typo on the page: no recheck will clear it,
    so it is not "Nothing to do yet: this may be temporary", and it was never
    checked, so its date is the report's, not a blank "First seen  "."""
    typo = link("http://[bad", "error", "invalid_url", checked_at=None)
    audit = audit_of([typo])
    assert audit.watched == ()
    (problem,) = audit.problems
    assert problem.confirmed
    assert "Nothing to do yet" not in problem.advice
    assert "address" in problem.advice and "page" in problem.advice
    assert problem.age_words == f"first seen {wording.format_date(NOW)}"


def test_first_404_is_suspected_but_listed_to_fix() -> None:
    audit = audit_of([failing(U, days=0.1, strikes=1)])
    (problem,) = audit.problems
    assert not problem.confirmed
    assert problem.advice.startswith("Not confirmed yet")
    assert problem.suspicion == ONCE


# -- grouping ------------------------------------------------------------------


def test_grouped_by_page_then_section_then_entry_in_page_order() -> None:
    links = [
        failing("https://a.org/1", page=PAGE2, section="Stem Cells", title="E1"),
        failing("https://a.org/2", page=PAGE, section="Biological Agents", title="E2"),
        failing("https://a.org/3", page=PAGE, section="IVIg", title="E3"),
        failing("https://a.org/4", page=PAGE, section="Biological Agents", title="E2",
                status="moved", reason="permanent_redirect", suggested_url="https://a.org/4b"),
        failing("https://a.org/5", page=PAGE, section="Biological Agents", title="E5",
                status="blocked", reason="bot_challenge"),
    ]
    audit = audit_of(links, pages=[page(PAGE), page(PAGE2)])
    shape = [(g.url, [(s.heading, [(e.title, [p.link.url for p in e.problems]) for e in s.entries])
                      for s in g.sections]) for g in audit.needs_fixing]
    assert shape == [
        (PAGE, [("Biological Agents", [("E2", ["https://a.org/2", "https://a.org/4"])]),
                ("IVIg", [("E3", ["https://a.org/3"])])]),
        (PAGE2, [("Stem Cells", [("E1", ["https://a.org/1"])])]),
    ]
    assert [p.link.url for g in audit.needs_a_person for p in g.problems] == ["https://a.org/5"]


@pytest.mark.parametrize(
    ("current", "fix_url", "fix_label"),
    [
        (link(U, "moved", "permanent_redirect", suggested_url=U + "/new"), U + "/new", "New address"),
        (failing(U, archived_url="https://web.archive.org/web/2019/" + U),
         "https://web.archive.org/web/2019/" + U, "Archived copy"),
        (failing(U), None, ""),
        (link(U, "drifted", "title_mismatch"), None, ""),
    ],
)
def test_the_fix_offered(current: LinkResult, fix_url: str | None, fix_label: str) -> None:
    (problem,) = audit_of([current]).problems
    assert (problem.fix_url, problem.fix_label) == (fix_url, fix_label)
    assert problem.page_link.startswith(PAGE + "#:~:text=Entry%20for")


def test_navigation_links_without_entry_are_their_own_entries() -> None:
    nav = failing("https://www.sclero.org/gone.html", kind=LinkKind.NAVIGATION, title="",
                  text="Go to Diabetes", section="")
    (group,) = audit_of([nav]).needs_fixing
    assert group.sections[0].entries[0].title == "Go to Diabetes"


def test_a_link_repeated_in_one_place_is_one_row_counted() -> None:
    # The same broken menu link in the top bar and the footer of one page.
    nav = failing("https://www.sclero.org/about/news/a-to-z.html", kind=LinkKind.NAVIGATION, title="",
                  text="ISN News", section="")
    other_page = replace(nav, page=PAGE2)
    audit = audit_of([nav, nav, other_page], pages=[page(), page(PAGE2)])
    first, second = audit.needs_fixing
    (entry,) = first.sections[0].entries
    assert [p.occurrences for p in entry.problems] == [2]
    assert [p.occurrences for p in second.problems] == [1]
    html = render_html(audit)
    assert "(2 times here)" in html


def test_everything_else_holds_ok_and_skipped_links() -> None:
    audit = audit_of([link(U), link("mailto:x@y.org", "skipped", "mailto"), failing(U + "/x")])
    (others,) = audit.everything_else
    assert [l.url for l in others.links] == [U, "mailto:x@y.org"]


def test_counts_by_status() -> None:
    statuses = ["ok", "ok", "moved", "expired", "error", "blocked", "drifted", "skipped"]
    audit = audit_of([link(f"https://e.org/{i}", s) for i, s in enumerate(statuses)])
    c = audit.counts
    assert (c.checked, c.ok, c.moved, c.expired, c.error, c.blocked, c.drifted, c.skipped) == (
        7, 2, 1, 1, 1, 1, 1, 1)


# -- content audit -------------------------------------------------------------


def test_stale_and_dead_expired_marks() -> None:
    archived = "https://web.archive.org/web/2018/https://e.org/dead"
    audit = audit_of([
        link("https://e.org/back", expired_mark=True, title="Back again"),
        failing("https://e.org/dead", expired_mark=True, title="Still dead", archived_url=archived),
        failing("https://e.org/gone", expired_mark=True, title="Gone for good"),
        link("https://e.org/fine", title="Never marked"),
    ])
    content = audit.content_audit
    assert [i.entry for i in content.stale_marks] == ["Back again"]
    assert [(i.entry, i.fix_url) for i in content.dead_marks] == [
        ("Still dead", archived), ("Gone for good", None)]
    # editors know these are dead: they are not listed as problems every week
    assert [p.link.url for p in audit.problems] == []


def test_a_marked_dead_link_was_not_a_problem_of_the_last_report() -> None:
    """An entry marked "(Expired Article)" whose link was dead is a content
    note, not a problem: when the link works again it was claimed "fixed"
    (besides its stale-mark note), and when editors dropped the mark it was
    "still open" although no report had listed it as a problem."""
    marked = failing(U, expired_mark=True, title="Marked entry")
    back = audit_of([link(U, expired_mark=True, title="Marked entry")], previous=[marked])
    assert back.fixed_since_last == () and back.counts.fixed == 0
    assert [i.entry for i in back.content_audit.stale_marks] == ["Marked entry"]
    unmarked = audit_of([failing(U, title="Marked entry")], previous=[marked])
    assert verdict_of(unmarked, U) == "new"


def test_a_marked_entry_that_moved_is_still_to_fix() -> None:
    moved = link(U, "moved", "permanent_redirect", suggested_url=U + "/new", expired_mark=True)
    (problem,) = audit_of([moved]).problems
    assert problem.advice.startswith("Already marked")
    assert "remove the mark" in problem.advice


def test_same_url_cited_by_several_entries() -> None:
    audit = audit_of([
        link(U, title="First entry"), link(U, title="Second entry", section="IVIg"),
        link(U, title="First entry"),  # the same entry linking twice is not a duplicate
        link(U + "/other", title="Third entry"),
    ])
    (dup,) = audit.content_audit.duplicates
    assert dup.url == U and len(dup.related) == 2


def test_entries_without_link_or_source() -> None:
    audit = audit_of(
        [link(U, title="Has a link", source=""), link(U + "/2", title="Complete")],
        pages=[page(entries=("Has a link", "Complete", "No link at all"))],
    )
    assert [i.entry for i in audit.content_audit.no_source] == ["Has a link"]
    assert [i.entry for i in audit.content_audit.no_link] == ["No link at all"]


@pytest.mark.parametrize(("max_age", "expected"), [(0, []), (5, ["Old"]), (10, [])])
def test_old_citations(max_age: int, expected: list[str]) -> None:
    links = [link(U, title="Old", entry_date=dt.date(2018, 4, 30)),
             link(U + "/2", title="Recent", entry_date=dt.date(2025, 1, 1)),
             link(U + "/3", title="Undated")]
    audit = audit_of(links, max_citation_age_years=max_age)
    assert [i.entry for i in audit.content_audit.old_citations] == expected


def test_pages_that_failed_or_changed_heavily() -> None:
    before = tuple(f"Entry {i}" for i in range(10))
    heavy = before[4:] + ("New 1", "New 2")
    light = before + ("One more",)
    pages = [page(PAGE, entries=heavy), page(PAGE2, entries=light),
             page("https://www.sclero.org/down.html", status="error", http_status=503)]
    previous = [replace(page(PAGE, entries=before), run_id=7),
                replace(page(PAGE2, entries=before), run_id=7)]
    audit = audit_of([], pages=pages, previous_pages=previous)
    (changed,) = audit.content_audit.pages_changed
    assert changed.page == PAGE
    assert "2 entries added and 4 removed" in changed.words
    assert "+ New 1" in changed.related and "\u2212 Entry 0" in changed.related
    (failed,) = audit.content_audit.pages_failed
    assert "HTTP 503" in failed.words
    assert audit.counts.pages_failed == 1


def test_an_unchanged_page_304_keeps_its_content_notes() -> None:
    """A page answering 304 Not Modified is read from its last copy (links and
    entries): its entries without a link vanished from the report for the
    weeks it did not change, and a heavy edit right after a 304 week was not
    noticed (only an "ok" fetch counted as the baseline)."""
    unchanged = audit_of([link(U, title="Has a link")],
                         pages=[page(status="not_modified", entries=("Has a link", "No link"))])
    assert [i.entry for i in unchanged.content_audit.no_link] == ["No link"]
    before = tuple(f"Entry {i}" for i in range(10))
    edited = audit_of([], pages=[page(entries=before[5:])],
                      previous_pages=[replace(page(status="not_modified", entries=before), run_id=7)])
    assert [i.page for i in edited.content_audit.pages_changed] == [PAGE]


def test_the_content_notes_of_a_page_that_could_not_be_fetched_are_carried_over() -> None:
    """PAGE failed this week: its notes as the last report read it (a
    retraction, an entry without a link, one without a source, a stale mark)
    stay, said to be not checked again, and a duplicate between it and PAGE2
    (read this week) is still seen; the failure note itself is not "carried".
    A page read this week does not take notes from `last_read`."""
    then = [link(U, title="Retracted trial", notice="retracted", notice_detail="Retracted."),
            link(U + "/2", title="Unsourced", source=""),
            link(U + "/3", title="Marked", expired_mark=True),
            link(U + "/dup", title="Copied entry")]
    read_before = replace(page(PAGE, entries=("Retracted trial", "Unsourced", "Marked",
                                              "Copied entry", "No link")), run_id=7)
    audit = audit_of([link(U + "/dup", title="Another title", page=PAGE2)],
                     pages=[page(PAGE, status="error", error="timeout", title=""), page(PAGE2)],
                     last_read=[(read_before, then)])
    notes = audit.content_audit
    carried = [(i.kind, i.entry, i.rechecked) for key in ("retracted", "no_link", "no_source",
                                                          "stale_marks", "duplicates")
               for i in getattr(notes, key)]
    assert carried == [("retracted", "Retracted trial", False), ("no_link", "No link", False),
                       ("no_source", "Unsourced", False), ("stale_mark", "Marked", False),
                       ("duplicate", "Another title", False)]
    assert notes.retracted[0].words.endswith(f" {wording.NOT_RECHECKED}.")
    assert [(i.page_title, i.rechecked) for i in notes.pages_failed] == [("Title of " + PAGE, True)]
    assert notes.total == 6 and audit.counts.checked == 1
    read_now = audit_of([link(U, title="Fine")], last_read=[(read_before, then)])
    assert read_now.content_audit.total == 0


# -- slicing for page owners ---------------------------------------------------


def test_audit_for_pages_keeps_only_those_pages_and_recounts() -> None:
    audit = audit_of(
        [failing(U, page=PAGE), failing(U + "/2", page=PAGE2), link(U + "/3", page=PAGE2)],
        pages=[page(PAGE), page(PAGE2)],
    )
    part = audit_for_pages(audit, [PAGE2], "owner@example.org")
    assert [g.url for g in part.needs_fixing] == [PAGE2]
    assert (part.counts.checked, part.counts.expired, part.counts.ok, part.counts.new) == (2, 1, 1, 1)
    assert part.audience == "owner@example.org"
    assert audit.counts.checked == 3  # the whole audit is untouched


# -- wording -------------------------------------------------------------------

TOKENS = ("ok temporary_redirect permanent_redirect known_move http_404 http_410 http_4xx soft_404 "
          "redirect_to_home expired_notice parked_domain http_5xx timeout dns connection_refused "
          "connection_reset tls redirect_loop too_many_redirects bad_response unsupported_scheme "
          "invalid_url http_401 http_403 http_999 bot_challenge login_required rate_limited "
          "private_address robots_disallowed title_mismatch content_changed flapping").split()


@pytest.mark.parametrize("token", TOKENS)
def test_every_reason_token_has_its_own_sentence(token: str) -> None:
    sentence = wording.describe(token)
    assert sentence and token not in sentence and "reported a problem" not in sentence


def test_reason_sentences_are_distinct() -> None:
    assert len({wording.describe(t) for t in TOKENS}) == len(TOKENS)


@pytest.mark.parametrize(
    ("reason", "url", "http_status", "expected"),
    [
        ("http_410", None, 410, "The publisher removed this article (HTTP 410)"),
        ("permanent_redirect", "https://www.ncbi.nlm.nih.gov/pubmed/123", 301,
         "PubMed moved this article to a new address"),
        ("permanent_redirect", "https://example.org/a", 301, "This article has a new address"),
        ("redirect_to_home", None, 200,
         "The link now lands on the site's home page: the article was removed"),
        ("soft_404", None, 200, "The site shows a 'page not found' page (while answering 200 OK)"),
        ("bot_challenge", None, 403,
         "The site blocks automated checks (bot wall); please open it in a browser"),
        ("title_mismatch", None, 200, "The page now shows a different article"),
        ("http_500", None, 500, "The site had a server error (HTTP 500)"),
        ("http_5xx", None, 502, "The site had a server error (HTTP 502)"),
        ("http_418", None, 418, "The site refuses this address (HTTP 418)"),
        ("http_4xx", None, 451, "The site refuses this address (HTTP 451)"),
        ("HTTP_404", None, None, wording.REASONS["http_404"]),
    ],
)
def test_describe(reason: str, url: str | None, http_status: int | None, expected: str) -> None:
    assert wording.describe(reason, url=url, http_status=http_status) == expected


def test_unknown_reason_gets_a_generic_sentence_naming_it() -> None:
    assert "cosmic_rays" in wording.describe("cosmic_rays")


@pytest.mark.parametrize(("n", "word", "expected"),
                         [(0, "link", "0 links"), (1, "link", "1 link"), (2, "entry", "2 entries"),
                          (3, "day", "3 days"), (1, "new problem", "1 new problem")])
def test_plural(n: int, word: str, expected: str) -> None:
    assert wording.plural(n, word) == expected


def test_text_fragment_link_escapes_its_special_characters() -> None:
    url = text_fragment_link(PAGE + "#top", "RP-ILD, a study & more")
    assert url == PAGE + "#:~:text=RP%2DILD%2C%20a%20study%20%26%20more"
    assert text_fragment_link("javascript:alert(1)", "x") == "javascript:alert(1)"


# -- wording by the link's kind --------------------------------------------------

NAV, RES, CIT = LinkKind.NAVIGATION, LinkKind.RESOURCE, LinkKind.CITATION
MENU = "https://www.sclero.org/about/news/a-to-z.html"
IMG = "https://www.sclero.org/images/raynauds-hand.jpg"


@pytest.mark.parametrize(
    ("kind", "url", "status", "reason", "extra", "words", "advice"),
    [
        # a menu link: a page, with no entry to mark
        (NAV, MENU, "expired", "http_404", {},
         "The page is gone: the site answers 'not found' (HTTP 404)",
         "Find the page's new address and update the link, or remove it."),
        (NAV, MENU, "moved", "permanent_redirect", {"suggested_url": MENU + "?v=2"},
         "This page has a new address", "Replace the link with the new address."),
        (NAV, MENU, "expired", "http_410", {"archived_url": "https://web.archive.org/web/2019/" + MENU},
         "The site removed this page (HTTP 410)",
         "Find the page's new address and update the link, or link the archived copy, "
         "or remove the link."),
        (NAV, MENU, "error", "timeout", {},
         "The site did not answer in time",
         "The site keeps failing: find the page's new address and update the link, or remove it."),
        # another title: the same page renamed (accepted) or another one (review 15 #4)
        (NAV, MENU, "drifted", "title_mismatch", {},
         "The link now leads to a different page",
         "If it is the same page under a new title, tell the webmaster, who can mark it checked (monitor accept); "
         "if not, update the link or remove it."),
        (NAV, MENU, "drifted", "title_mismatch", {"archived_url": "https://web.archive.org/web/2019/" + MENU},
         "The link now leads to a different page",
         "If it is the same page under a new title, tell the webmaster, who can mark it checked (monitor accept); "
         "if not, link the archived copy or another page, or remove the link."),
        (CIT, U, "drifted", "title_mismatch", {"archived_url": "https://web.archive.org/web/2019/" + U},
         "The page now shows a different article",
         "If it is the cited article under a new title, tell the webmaster, who can mark it checked (monitor accept); "
         "if not, link to the archived copy or find its new address."),
        (CIT, U, "drifted", "title_mismatch", {},
         "The page now shows a different article",
         "If it is the cited article under a new title, tell the webmaster, who can mark it checked (monitor accept); "
         "if not, find its new address or mark the entry expired."),
        (CIT, U, "drifted", "content_changed", {},  # the same title, other words: nothing renamed
         "The page changed a lot since it was cited; check that it still says what the entry claims",
         "Open the link and check it still holds the cited article; update the link or the entry."),
        (NAV, MENU, "blocked", "bot_challenge", {},
         "The site blocks automated checks (bot wall); please open it in a browser",
         "Open the link in a browser: if the page is there, nothing to do."),
        # what the page loads: an image, a script
        (RES, IMG, "expired", "http_404", {},
         "The image is gone: the site answers 'not found' (HTTP 404)",
         "Replace the image with a working copy, or remove it from the page."),
        (RES, "https://cdn.example.org/menu.js", "expired", "redirect_to_home", {},
         "The link now lands on the site's home page: the script was removed",
         "Replace the script with a working copy, or remove it from the page."),
        (RES, "https://cdn.example.org/font", "moved", "permanent_redirect", {},
         "This file has a new address", "Find the file's new address and update the page, or remove the file."),
        # a citation keeps today's words
        (CIT, U, "expired", "http_404", {},
         "The page is gone: the site answers 'not found' (HTTP 404)",
         "Find the article's new address, or mark the entry expired."),
        (CIT, U, "moved", "permanent_redirect", {},
         "This article has a new address", "Find the article's new address and update the link."),
        (CIT, U, "expired", "http_410", {"archived_url": "https://web.archive.org/web/2019/" + U},
         "The publisher removed this article (HTTP 410)",
         "Link to the archived copy, or find the article's new address, or mark the entry expired."),
        (CIT, U, "blocked", "bot_challenge", {},
         "The site blocks automated checks (bot wall); please open it in a browser",
         "Open the link in a browser: if the article is there, nothing to do."),
        # an intranet address: broken for every reader outside that network
        (CIT, "http://192.168.1.20/intranet/raynauds-protocol.pdf", "blocked", "private_address", {},
         "The link points at a private network address (an intranet or a local machine): "
         "readers outside that network cannot open it",
         "Link a public copy of the document instead, or remove the link."),
        (NAV, "http://10.0.0.5/intranet/", "blocked", "private_address", {},
         "The page is at a private network address (an intranet or a local machine): "
         "readers outside that network cannot open it",
         "Link a public copy of the page instead, or remove the link."),
        (RES, "http://10.0.0.5/logo.png", "blocked", "private_address", {},
         "The image is at a private network address (an intranet or a local machine): "
         "readers outside that network cannot open it",
         "Put a public copy of the image on the site, or remove it from the page."),
    ],
)
def test_a_problem_is_worded_for_its_kind_of_link(kind: LinkKind, url: str, status: str, reason: str,
                                                   extra: dict[str, object], words: str, advice: str) -> None:
    title = "" if kind != CIT else "An entry"
    problem = failing(url, status, reason, kind=kind, title=title, text="ISN News", **extra)
    (p,) = audit_of([problem]).problems
    assert (p.words, p.advice) == (words, advice)


STATUSES = ("moved", "expired", "error", "blocked", "drifted")


@pytest.mark.parametrize("kind", [NAV, RES])
@pytest.mark.parametrize("token", TOKENS)
def test_no_sentence_about_a_menu_link_or_an_image_speaks_of_an_article(kind: LinkKind, token: str) -> None:
    """Every reason's sentence and every "What to do" a menu link or an image
    can get: none speaks of an article, an entry or a citation."""
    url = MENU if kind == NAV else IMG
    said = [wording.describe(token, url=url, kind=kind)]
    for status in STATUSES:
        for confirmed in (True, False):
            for fix_url, archived in ((None, False), (url + "x", False), (url + "x", True)):
                said.append(wording.advice(status, confirmed=confirmed, fix_url=fix_url,
                                           archived=archived, reason=token, kind=kind, url=url))
    for sentence in said:
        for word in ("article", "entry", "cited", "citation"):
            assert word not in sentence.lower(), (sentence, word)


def test_a_private_address_is_to_fix_not_for_a_person_to_open() -> None:
    intranet = failing("http://192.168.1.20/intranet/raynauds-protocol.pdf", "blocked", "private_address",
                       days=0.1, strikes=1)
    bot_wall = failing(U, "blocked", "bot_challenge")
    audit = audit_of([intranet, bot_wall])
    assert [p.link.reason for g in audit.needs_fixing for p in g.problems] == ["private_address"]
    assert [p.link.reason for g in audit.needs_a_person for p in g.problems] == ["bot_challenge"]
    (p,) = audit.needs_fixing[0].problems
    assert p.confirmed and "nothing to do" not in p.advice


@pytest.mark.parametrize(("kind", "url", "said"), [
    (CIT, "https://pubmed.ncbi.nlm.nih.gov/1/", "article"),
    (NAV, "https://www.sclero.org/news.html", "page"),
    (RES, "https://www.sclero.org/images/bg.GIF", "image"),
    (RES, "https://www.sclero.org/js/menu.js", "script"),
    (RES, "https://www.sclero.org/css/sclero.css?v=2", "stylesheet"),
    (RES, "https://www.sclero.org/fonts/verdana.woff2", "font"),
    (RES, "https://fonts.example.org/a/Font.TTF#x", "font"),
    (RES, "https://www.sclero.org/media/talk.mp3", "video or sound file"),
    (RES, "https://www.sclero.org/applets/ticker.jar", "file"),
    (RES, "https://www.sclero.org/fonts.d/readme", "file"),
])
def test_what_a_link_leads_to_in_one_word(kind: LinkKind, url: str, said: str) -> None:
    assert wording.thing(kind, url) == said


@pytest.mark.parametrize(
    ("kind", "label", "note"),
    [(CIT, "Open the entry on the page", ""),
     (NAV, "Find the link on the page", "navigation link"),
     (RES, "Open the page", "image the page loads")],
)
def test_the_page_link_and_the_note_name_the_kind(kind: LinkKind, label: str, note: str) -> None:
    (p,) = audit_of([failing(IMG, kind=kind, title="" if kind != CIT else "An entry",
                             text="Hand")]).problems
    assert (p.page_link_label, p.kind_note) == (label, note)
    html = render_html(audit_of([p.link]))
    assert label in html
    if note:
        assert f"({note})" in html


def test_a_watched_page_that_failed_is_a_page_not_an_article() -> None:
    audit = audit_of([], pages=[page(status="error", http_status=410)])
    (issue,) = audit.content_audit.pages_failed
    assert issue.words == ("The page could not be fetched: the site removed this page (HTTP 410). "
                           "Its links were not checked.")


def test_a_watched_page_not_found_may_be_moved_or_mistyped() -> None:
    audit = audit_of([], pages=[page(status="error", http_status=404)])
    (issue,) = audit.content_audit.pages_failed
    assert issue.words == ("The page could not be fetched: the page is not at this address (HTTP 404): "
                           "it was moved or renamed, or its address in the monitor's configuration is "
                           "mistyped. Its links were not checked.")


@pytest.mark.parametrize(("error", "said"), [
    ("not a web page (image/gif)", "not a web page but an image (image/gif)"),
    ("not a web page (application/pdf)", "not a web page but a PDF document (application/pdf)"),
    ("not a web page (application/octet-stream)", "not a web page but a file (application/octet-stream)"),
    ("page larger than 20 MB", "page larger than 20 MB"),
])
def test_a_watched_address_that_answers_200_but_is_no_page_says_what_it_is(error: str, said: str) -> None:
    """Walkthrough 9, finding 3: a [[pages]] url of an image answered 200 and
    was said as "an unexpected HTTP status (200)" in the banner and both mail
    parts, where the terminal says "not a web page (image/gif)"."""
    record = page(status="error", http_status=200, error=error, name="Logo (not html)")
    assert said in wording.page_failure(200, error)
    audit = audit_of([], pages=[record])
    (issue,) = audit.content_audit.pages_failed
    assert said in issue.words
    html, text = render_html(audit), render_text(audit)
    for part in (html, text, issue.words):
        assert "unexpected" not in part and "(200)" not in part
    assert said in text and "Logo (not html): " in text
    assert said in html

# -- duplicates: a copy-paste slip, not a cross-listing ----------------------------


@pytest.mark.parametrize(
    ("cited", "flagged"),
    [
        # the same article under the same title on two pages: a cross-listing
        ([("Rituximab in refractory DM", PAGE), ("Rituximab in refractory DM", PAGE2)], []),
        # ... in two sections of one page
        ([("Rituximab in refractory DM", PAGE), ("Rituximab in refractory DM", PAGE)], []),
        # ... spelt with other case, spacing or punctuation
        ([("Rituximab in Refractory DM.", PAGE), ("rituximab  in refractory DM", PAGE2)], []),
        # one address under two different titles: a slip, on one page or across pages
        ([("Rituximab in refractory DM", PAGE), ("IVIg for myositis", PAGE)], [2]),
        ([("Rituximab in refractory DM", PAGE), ("IVIg for myositis", PAGE2)], [2]),
        ([("Rituximab in refractory DM", PAGE), ("Rituximab in refractory DM", PAGE2),
          ("IVIg for myositis", PAGE2)], [3]),
    ],
)
def test_only_one_address_under_different_titles_is_a_copy_paste_slip(
        cited: list[tuple[str, str]], flagged: list[int]) -> None:
    sections = iter(["Biological Agents", "IVIg", "Stem Cells"])
    links = [link(U, title=title, page=where, section=next(sections)) for title, where in cited]
    audit = audit_of(links, pages=[page(), page(PAGE2)])
    assert [len(d.related) for d in audit.content_audit.duplicates] == flagged
    for d in audit.content_audit.duplicates:
        assert "copy-paste slip" in d.words and d.url == U


# -- how long a malformed address has been open ------------------------------------

LAST = RunInfo(id=7, started_at=NOW - dt.timedelta(days=7), status="finished")


@pytest.mark.parametrize(
    ("previous", "previous_run", "expected"),
    [
        # never checked, so never dated: the last report's date, as the lower bound it is
        (True, LAST, f"open 1 week or more, since {wording.format_date(LAST.started_at)} or earlier"),
        (True, None, "already listed in the last report"),
        (False, LAST, f"first seen {wording.format_date(NOW)}"),
    ],
)
def test_a_malformed_address_still_open_gives_a_date(previous: bool, previous_run: RunInfo | None,
                                                     expected: str) -> None:
    typo = link("http://", "error", "invalid_url", checked_at=None, title="Keeping Warm")
    audit = build_audit(RUN, [typo], [page()], previous_links=[typo] if previous else [],
                        previous_pages=None, states={}, now=NOW, settings=ReportSettings(),
                        site_name="www.sclero.org", previous_run=previous_run)
    (p,) = audit.problems
    assert p.age_words == expected
    assert "since the last report" not in p.age_words


@pytest.mark.parametrize(("kinds", "expected"), [
    ((0, 0, 0), ""),
    ((5, 8, 9), "Of the 22 to fix: 5 have their new address ready to paste, "
                "8 an archived copy to link, 9 need looking up."),
    ((1, 0, 0), "Of the 1 to fix: 1 has its new address ready to paste."),
    ((0, 1, 1), "Of the 2 to fix: 1 has an archived copy to link, 1 needs looking up."),
    ((0, 0, 3), "Of the 3 to fix: 3 need looking up."),
])
def test_fix_order_sentence(kinds: tuple[int, int, int], expected: str) -> None:
    assert wording.fix_order(*kinds) == expected


def test_fix_kinds_count_the_quick_wins_among_the_problems_to_fix() -> None:
    """Listed in page order, a report hid where the quick fixes were."""
    audit = audit_of([
        link(U + "/moved", "moved", "permanent_redirect", suggested_url=U + "/new"),
        failing(U + "/gone", archived_url="https://web.archive.org/web/2019/" + U + "/gone"),
        failing(U + "/gone-too"),
        failing(U + "/walled", "blocked", "http_403"),  # a person's, not counted here
    ])
    assert audit.fix_kinds() == (1, 1, 1) and audit.fixing_count == 3


PAGE_B = "https://www.sclero.org/scleroderma/b.html"


@pytest.mark.parametrize(("failed", "problems", "top", "subject_end"), [
    # every watched page failed: "Nothing needs fixing" would read as good news
    ((PAGE, PAGE_B), 0, "No page could be fetched this week: nothing was checked.",
     "0 fixed, 2 of 2 pages could not be fetched"),
    ((PAGE_B,), 0, "Nothing needs fixing on the pages read this week; 1 of 2 pages could not be fetched.",
     "0 fixed, 1 of 2 pages could not be fetched"),
    ((PAGE_B,), 1, "1 problem needs attention (1 new, 0 still open). 1 of 2 pages could not be fetched.",
     "0 fixed, 1 of 2 pages could not be fetched"),
    ((), 0, "Nothing needs fixing this week.", "0 still open, 0 fixed"),
])
def test_the_headline_and_subject_say_how_many_pages_could_not_be_fetched(
        failed: tuple[str, ...], problems: int, top: str, subject_end: str) -> None:
    pages = [page(url, "error" if url in failed else "ok", error="HTTP 404: the page is not at this address")
             for url in (PAGE, PAGE_B)]
    links = [failing(U, days=0.1, strikes=1)] if problems else []
    audit = audit_of(links, pages=pages, previous=[])  # compared with a report (of no problem)
    assert headline(audit) == top
    assert subject_for(audit).endswith(subject_end)


def test_a_run_that_recorded_no_page_is_no_clean_week() -> None:
    """A [[sites]] crawl whose robots.txt answered 503 records no page at
    all. Was: "Nothing needs fixing this week." and a subject of zeros
    (review 9, finding 3), and the index row said nothing (`_unread_words`)."""
    from reports.render import _unread_words

    audit = audit_of([], pages=[], previous=[])
    assert headline(audit) == "No page could be fetched this week: nothing was checked."
    assert subject_for(audit).endswith("0 fixed, no page could be fetched")
    first = audit_of([], pages=[])
    assert subject_for(first).endswith(": first report, no problems, no page could be fetched")
    assert [_unread_words(c) for c in ({"pages": 0, "pages_failed": 0}, {"pages": 2, "pages_failed": 2},
                                       {"pages": 3, "pages_failed": 1}, {"pages": 3, "pages_failed": 0}, {})] \
        == ["not fetched", "not fetched", "1 of 3 pages not fetched", "", ""]


# -- where each row's link sits in the page's source ---------------------------


def placed(url: str, status: str = "ok", reason: str = "", *, line: int, written: str = "",
           element: str = "a", attribute: str = "href", **extra: object) -> LinkResult:
    return link(url, status, reason, line=line, written=written, element=element,
                attribute=attribute, **extra)


def place_of(row: object) -> tuple[object, ...]:
    return tuple(getattr(row, name) for name in ("line", "written", "element", "attribute", "more_lines"))


DEAD = {"status": "expired", "reason": "http_404", "strikes": 5,
        "failing_since": NOW - dt.timedelta(days=10)}


@pytest.mark.parametrize(("group", "links", "expected"), [
    # a cross-listed retracted entry: each listing needs the notice
    ("retracted", [placed(U, line=90, title="T", notice="retracted"),
                   placed(U, line=140, title="T", notice="retracted", section="Ulcers")],
     [(90, "", "a", "href", (140,))]),
    ("withdrawn", [placed(U, line=7, title="T", notice="withdrawn", written="/cd/1")],
     [(7, "/cd/1", "a", "href", ())]),
    ("notices_marked", [placed(U, line=12, title="T (Retracted)", notice="retracted",
                               notice_marked=True)], [(12, "", "a", "href", ())]),
    ("stale_marks", [placed(U, line=92, expired_mark=True, written="../a.html")],
     [(92, "../a.html", "a", "href", ())]),
    ("dead_marks", [placed(U, line=66, expired_mark=True, element="area", **DEAD),
                    placed(U, line=67, expired_mark=True, element="area", **DEAD)],
     [(66, "", "area", "href", (67,))]),
    # every copy on the row's page; the one on another page is that page's line
    ("duplicates", [placed(U, line=34, title="Rituximab in DM"),
                    placed(U, line=97, title="IVIg in PM"),
                    placed(U, line=5, title="Another", page=PAGE2)],
     [(34, "", "a", "href", (97,))]),
    ("no_source", [placed(U, line=74, source=" ", element="img", attribute="src")],
     [(74, "", "img", "src", ())]),
    ("old_citations", [placed(U, line=20, title="T", entry_date=dt.date(2001, 5, 1)),
                       placed(U + "/other", line=21, title="T", entry_date=dt.date(2001, 5, 1))],
     [(20, "", "a", "href", ())]),  # the entry's other link is another address
    ("no_link", [placed(U, line=3, title="Linked")], [(None, "", "", "", ())]),
])
def test_content_notes_say_where_their_link_sits(group: str, links: list[LinkResult],
                                                 expected: list[tuple[object, ...]]) -> None:
    """An editor must find the entry to annotate or fix it, as for a problem."""
    audit = audit_of(links, pages=[page(entries=("Linked", "Unlinked"))], max_citation_age_years=10)
    assert [place_of(i) for i in getattr(audit.content_audit, group)] == expected


@pytest.mark.parametrize(("current", "how"), [
    ([placed(U, line=36)], "works_again"),  # the page moved on: still last week's place
    ([placed(U + "/new", line=36, title=f"Entry for {U}")], "link_updated"),
    ([placed("https://example.org/other", line=36, title="Another entry")], "removed"),
])
def test_a_fixed_row_says_where_the_previous_report_saw_its_link(current: list[LinkResult],
                                                                 how: str) -> None:
    """The editor checking the fix finds the entry: each copy of the link
    (a menu and a footer), first copy first, as the last report listed them."""
    previous = [placed(U, line=34, written="/article", **DEAD),
                placed(U, line=97, written="/article", **DEAD)]
    (fixed,) = audit_of(current, previous=previous).fixed_since_last
    assert (fixed.how, fixed.link.line, fixed.link.written, fixed.more_lines) == (
        how, 34, "/article", (97,))


def test_a_problem_of_a_page_not_read_again_keeps_every_copy_s_line() -> None:
    previous = [placed(U, line=34, **DEAD), placed(U, line=97, **DEAD)]
    (problem,) = audit_of([], previous=previous, pages=[page(status="error")]).problems
    assert (problem.rechecked, problem.link.line, problem.more_lines) == (False, 34, (97,))


# -- across weeks: a page down keeps its rows' age; "watched" is not "listed" ---

WEEK = dt.timedelta(days=7)
LAST = RunInfo(id=7, started_at=NOW - WEEK, finished_at=NOW - WEEK, status="finished",
               reported_at=NOW - WEEK)
"""The previous report (the last one that read the page)."""
BEFORE = RunInfo(id=6, started_at=NOW - 2 * WEEK, finished_at=NOW - 2 * WEEK, status="finished",
                 reported_at=NOW - 2 * WEEK)
"""The report before it."""


def weekly(links: list[LinkResult], previous: list[LinkResult], *, earlier: list[LinkResult] = (),
           pages: list[PageRecord] | None = None) -> Audit:
    return build_audit(
        RUN, links, pages if pages is not None else [page()], previous_links=previous,
        previous_pages=[page()], states={}, now=NOW, settings=ReportSettings(),
        site_name="www.sclero.org", previous_run=LAST, earlier_links=list(earlier),
        earlier_run=BEFORE,
    )


def seen(url: str, status: str, reason: str, when: dt.datetime, **extra: object) -> LinkResult:
    """A link as a run at `when` saw it (a failure's streak began two weeks ago)."""
    failing_ = LinkStatus(status).is_failing and reason != "invalid_url"
    dates = {"checked_at": when, "failing_since": NOW - 2 * WEEK if failing_ else None}
    return link(url, status, reason, strikes=3 if failing_ else 0, **{**dates, **extra})


MALFORMED = {"checked_at": None, "failing_since": None}


@pytest.mark.parametrize(
    ("status", "reason", "extra", "in_earlier", "since", "weeks", "at_least"),
    [
        # Moved and drifted links have no failure streak: their age is the
        # report before's sighting, which the page's failure must not reset.
        ("moved", "permanent_redirect", {}, True, NOW - 2 * WEEK, 2, False),
        ("drifted", "title_mismatch", {}, True, NOW - 2 * WEEK, 2, False),
        ("expired", "http_404", {}, True, NOW - 2 * WEEK, 2, False),
        # New in the last report: its age is that report's sighting.
        ("moved", "permanent_redirect", {}, False, NOW - WEEK, 1, False),
        # A malformed address, never checked: "since <the report before> or earlier".
        ("error", "invalid_url", MALFORMED, True, NOW - 2 * WEEK, 2, True),
        ("error", "invalid_url", MALFORMED, False, NOW - WEEK, 1, False),
    ],
)
def test_a_problem_of_a_page_not_read_again_keeps_the_age_the_last_report_gave_it(
    status: str, reason: str, extra: dict[str, object], in_earlier: bool,
    since: dt.datetime, weeks: int, at_least: bool,
) -> None:
    previous = [seen(U, status, reason, NOW - WEEK, line=34, **extra),
                seen(U, status, reason, NOW - WEEK, line=97, **extra)]
    earlier = [seen(U, status, reason, NOW - 2 * WEEK, line=34, **extra)] if in_earlier else []
    (problem,) = weekly([], previous, earlier=earlier, pages=[page(status="error")]).problems
    assert (problem.since, problem.weeks_open, problem.since_at_least) == (since, weeks, at_least)
    assert (problem.new, problem.rechecked) == (False, False)
    assert (problem.occurrences, problem.link.line, problem.more_lines) == (2, 34, (97,))


def test_a_dns_failure_is_gone_only_once_confirmed() -> None:
    """Walkthrough 10 #14: a watched row (raynauds-association.invalid, one
    failed lookup) said "The site's domain name does not exist any more"
    with "Nothing to do yet: this may be temporary"."""
    watched = link("https://raynauds-association.invalid/", "error", "dns", strikes=1,
                   failing_since=NOW)
    gone = link("https://lapsed.example/", "error", "dns", strikes=5,
                failing_since=NOW - dt.timedelta(days=10))
    audit = audit_of([watched, gone])
    (w,), (g,) = audit.watched, audit.problems
    assert (w.link.url, w.confirmed, g.link.url, g.confirmed) == (watched.url, False, gone.url, True)
    assert w.words == "The site's name could not be found (DNS lookup failed)"
    assert g.words == "The site's domain name does not exist any more (DNS lookup failed)"
    for text in (render_text(audit), render_html(audit), render_json(audit)):
        assert text.count("does not exist any more") == 1
        assert text.count("could not be found (DNS lookup failed)") == 1


@pytest.mark.parametrize(("minutes_ago", "page_read", "said"), [
    (2, True, "watched since 23 Nov 2026"),  # a webmaster's rerun of the same day
    (7 * 24 * 60, True, "watched 1 week, since 16 Nov 2026"),  # failing again after answering
    (2, False, "watched 1 week, since 16 Nov 2026"),  # its page not read: as the last report had it
])
def test_a_row_watched_again_is_not_new_again(minutes_ago: int, page_read: bool, said: str) -> None:
    """Walkthrough 10 #15: three reports within 2 minutes each said "[ERROR,
    NEW] First seen 27 Nov 2026" of the same watched rows. NEW is what the
    previous report did not show; a row it watched and that is still only
    watched is "watched since"; confirmed now, it is new to the editor
    ("NEW · NOW CONFIRMED")."""
    last = RunInfo(id=7, started_at=NOW - dt.timedelta(minutes=minutes_ago + 1),
                   finished_at=NOW - dt.timedelta(minutes=minutes_ago),
                   status="finished", reported_at=NOW - dt.timedelta(minutes=minutes_ago))
    first = min(last.started_at, NOW - dt.timedelta(hours=1)) if page_read else NOW - WEEK
    before = link(U, "error", "timeout", strikes=1, failing_since=first, checked_at=last.started_at)
    now_row = link(U, "error", "timeout", strikes=1, failing_since=NOW - dt.timedelta(minutes=30))
    confirmed = link(U + "/2", "error", "timeout", strikes=6, failing_since=NOW - 2 * WEEK)
    audit = build_audit(
        RUN, [now_row, confirmed] if page_read else [], [page(status="ok" if page_read else "error")],
        previous_links=[before, replace(confirmed, strikes=1, failing_since=last.started_at)],
        previous_pages=[page()], states={}, now=NOW, settings=ReportSettings(),
        site_name="www.sclero.org", previous_run=last)
    watched = [p for p in audit.watched if p.link.url == U]
    assert [(p.new, p.watched_again, p.age_words) for p in watched] == [(False, True, said)]
    text = render_text(audit)
    assert f"[ERROR] {wording.upfirst(said)}" in text and "[ERROR, NEW]" not in text
    if page_read:  # the other one, watched last time, is confirmed now: new to the editor
        (p,) = audit.problems
        assert (p.link.url, p.new, p.confirmed_now, audit.counts.new) == (confirmed.url, True, True, 1)
        assert "[ERROR, NEW · NOW CONFIRMED]" in text


def test_a_page_down_keeps_a_watched_row_watched_not_still_open() -> None:
    """The last report only watched it (one timeout): carried, it is still
    watched, not counted "still open" as if the editor had been told."""
    previous = [link(U, "error", "timeout", strikes=1, failing_since=NOW - WEEK, checked_at=NOW - WEEK)]
    audit = weekly([], previous, pages=[page(status="error")])
    assert (len(audit.problems), len(audit.watched), audit.counts.still) == (0, 1, 0)


TIMEOUT = {"status": "error", "reason": "timeout"}
WATCHED = {**TIMEOUT, "strikes": 1, "failing_since": NOW - WEEK, "checked_at": NOW - WEEK}
"""A first timeout in the last report's run: that report watched it."""
LISTED = {**TIMEOUT, "strikes": 4, "failing_since": NOW - 2 * WEEK, "checked_at": NOW - WEEK}
"""A confirmed failure: that report listed it under "Needs fixing"."""
CONFIRMED_NOW = {**TIMEOUT, "strikes": 6, "failing_since": NOW - WEEK}
STILL_SUSPECT = {**TIMEOUT, "strikes": 1, "failing_since": NOW - dt.timedelta(hours=1)}


@pytest.mark.parametrize(
    ("before", "now", "where", "new", "still", "fixed", "cleared"),
    [
        # Confirmed this week: new to the editor, who never saw it listed.
        (WATCHED, CONFIRMED_NOW, "new", 1, 0, 0, 0),
        # Answers again by itself: no editor fixed it.
        (WATCHED, {"status": "ok", "reason": ""}, "ok", 0, 0, 0, 1),
        (LISTED, CONFIRMED_NOW, "still", 0, 1, 0, 0),
        (LISTED, {"status": "ok", "reason": ""}, "fixed:works_again", 0, 0, 1, 0),
        # Watched both weeks: neither new nor still open (it is not listed),
        # and not NEW again, but "watched since" (walkthrough 10 #15).
        (WATCHED, STILL_SUSPECT, "still", 0, 0, 0, 0),
    ],
)
def test_a_row_the_last_report_only_watched_is_new_when_confirmed_and_no_fix_when_cleared(
    before: dict[str, object], now: dict[str, object], where: str,
    new: int, still: int, fixed: int, cleared: int,
) -> None:
    audit = weekly([link(U, **now)], [link(U, **before)])  # type: ignore[arg-type]
    c = audit.counts
    assert (verdict_of(audit, U), c.new, c.still, c.fixed, len(audit.cleared_by_itself)) == (
        where, new, still, fixed, cleared)
    # The headline and the subject say what the rows say.
    assert f"{c.fixed} fixed" in subject_for(audit)
    if new or still:
        assert f"({new} new, {still} still open)" in headline(audit)
    # A row the editor saw under "Watching" last week is not "NEW" twice:
    # confirmed now, it says so.
    now_confirmed = before is WATCHED and now is CONFIRMED_NOW
    assert [p.confirmed_now for p in audit.problems] == ([True] if now_confirmed else [False] * len(audit.problems))
    html, text = render_html(audit), render_text(audit)
    assert ("NEW · NOW CONFIRMED" in unescape(html) and ", NEW · NOW CONFIRMED]" in text) is now_confirmed


# -- what the previous report judged with ----------------------------------------------------

_RUN_AT = NOW - WEEK
_SENT_AT = _RUN_AT + dt.timedelta(days=2)  # `monitor report --send` two days after the audit
_ROW_THEN = link(U, "error", "timeout", strikes=1, failing_since=_RUN_AT, checked_at=_RUN_AT)
_CONFIRMED_AT_SENDING = UrlState(url=U, status=LinkStatus.ERROR, reason="timeout", strikes=3,
                                 failing_since=_RUN_AT)  # the service's rechecks, before the report


@pytest.mark.parametrize(
    ("now_row", "expected"),
    [
        (link(U, "error", "timeout", strikes=6, failing_since=_RUN_AT), ("still", 0, 0)),
        (link(U, "ok", ""), (None, 1, 0)),
    ],
)
def test_a_row_the_previous_report_listed_as_confirmed_is_judged_as_it_was_listed(
        now_row: LinkResult, expected: tuple[str | None, int, int]) -> None:
    """A first timeout at the audit, confirmed by rechecks before the report
    was sent: the editor saw it under "Needs fixing". Judged from the run's
    own row (1 strike) it was "only watched": next week "new" again, or
    "cleared by itself" instead of fixed."""
    sent = replace(LAST, reported_at=_SENT_AT)
    audit = build_audit(RUN, [now_row], [page()], previous_links=[_ROW_THEN], previous_pages=[page()],
                        states={}, now=NOW, settings=ReportSettings(), site_name="www.sclero.org",
                        previous_run=sent, previous_states={U: _CONFIRMED_AT_SENDING})
    verdict = verdict_of(audit, U) if expected[0] else None
    assert (verdict, audit.counts.fixed, len(audit.cleared_by_itself)) == expected


# -- how a changed entry is told (walkthrough 10) ----------------------------------------------

MENU = "https://www.sclero.org/about/news/a-to-z.html"


def menu_link(url: str, status: str = "ok", reason: str = "", text: str = "ISN News",
              **extra: object) -> LinkResult:
    return link(url, status, reason, title="", text=text, section="Menu", kind=LinkKind.NAVIGATION, **extra)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # pointed at a working address: updated, not "removed from the page" (#8)
        ([menu_link("https://www.sclero.org/about/a-to-z.html")],
         ("fixed:link_updated", "The link now points to a new address")),
        # another menu link's text: the dead one was removed
        ([menu_link("https://www.sclero.org/about/a-to-z.html", text="News")],
         ("fixed:removed", "The link was removed from the page")),
        # pointed at another broken address: still open, on the new link (#1)
        ([menu_link("https://www.sclero.org/news/", "expired", "http_404",
                    failing_since=NOW, strikes=1)], ("still", "")),
    ],
)
def test_a_menu_link_pointed_elsewhere(now: list[LinkResult], expected: tuple[str, str]) -> None:
    """A navigation link has no entry title: its text and section stand for one."""
    old = menu_link(MENU, "expired", "http_404", failing_since=NOW - WEEK, strikes=4)
    cited = {(PAGE, "Menu", "ISN News", MENU), (PAGE, "Menu", "Home", "https://www.sclero.org/")}
    audit = audit_of(now, previous=[old], previous_cited=cited)
    words = [f.words for f in audit.fixed_since_last]
    still = [p for p in audit.problems if not p.new]
    assert (verdict_of(audit, MENU if words else now[0].url), words[0] if words else "") == expected
    assert len(still) + audit.counts.fixed == 1  # the last report's one problem, accounted for
    if still:
        assert still[0].replaced_url == MENU and still[0].since == old.failing_since


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://web.archive.org/web/20180726000000/https://globenewswire.com/x",
         "The entry now links to an archived copy (26 Jul 2018)"),
        ("http://web.archive.org/web/20170915000000id_/https://www.medscape.com/viewarticle/883512",
         "The entry now links to an archived copy (15 Sep 2017)"),
        ("https://archive.ph/Xy12z", "The entry now links to an archived copy"),
        ("https://archive.org/details/raynauds-leaflet", "The entry now links to a new address"),
        ("https://pubmed.ncbi.nlm.nih.gov/29713888/", "The entry now links to a new address"),
    ],
)
def test_a_fix_by_an_archived_copy_says_so_and_its_date(url: str, words: str) -> None:
    """Walkthrough 10 #12: "now links to a new address: https://web.archive.org/web/2018..."."""
    audit = audit_of([link(url, title="Corbus announces topline results")],
                     previous=[failing(U, title="Corbus announces topline results")])
    assert [(f.how, f.words, f.new_url) for f in audit.fixed_since_last] == [("link_updated", words, url)]


EARLIER = RunInfo(id=6, started_at=NOW - 2 * WEEK, finished_at=NOW - 2 * WEEK, status="finished",
                  reported_at=NOW - 2 * WEEK + dt.timedelta(minutes=2))


@pytest.mark.parametrize(
    ("now_row", "state", "age"),
    [
        # the entry links the old address again (the link was not on the page last week)
        (link(U, "moved", "permanent_redirect", suggested_url=U + "/v2"),
         UrlState(url=U, status=LinkStatus.MOVED, status_since=EARLIER.started_at,
                  last_ok_at=NOW), "the entry links to the old address again"),
        # the link answered again last week, and fails again now
        (failing(U, days=0.01, strikes=1),
         UrlState(url=U, status=LinkStatus.EXPIRED, status_since=NOW, failing_since=NOW,
                  last_ok_at=NOW - WEEK, strikes=1), "it answered again then, and fails again now"),
    ],
)
def test_a_problem_back_after_the_last_report_listed_it_fixed(now_row: LinkResult, state: UrlState,
                                                              age: str) -> None:
    """Walkthrough 10 #7: it was "[MOVED, NEW] Failing since" its first week."""
    audit = build_audit(RUN, [now_row], [page()], previous_links=[failing(U + "/other", title="Other")],
                        previous_pages=[page()], states={U: state}, now=NOW, settings=ReportSettings(),
                        site_name="www.sclero.org", previous_run=LAST,
                        before_previous=[failing(U, "moved", "permanent_redirect")],
                        before_previous_run=EARLIER)
    (back,) = audit.problems
    assert (back.new, back.badge, back.reported_fixed_on) == (True, "NEW · BACK", LAST.started_at)
    assert back.age_words == f"back: reported fixed on {wording.format_date(LAST.started_at)}; {age}"
    assert f"[{back.label.upper()}, NEW · BACK] Back: reported fixed on " in render_text(audit)
    assert audit.counts.new == 1 and "(1 new, 0 still open)" in headline(audit)
    # never listed before the last report, or listed by it: no "back"
    fresh = build_audit(RUN, [now_row], [page()], previous_links=[failing(U + "/other", title="Other")],
                        previous_pages=[page()], states={U: state}, now=NOW, settings=ReportSettings(),
                        site_name="www.sclero.org", previous_run=LAST, before_previous=[],
                        before_previous_run=EARLIER)
    assert [p.badge for p in fresh.problems] == ["NEW"]


@pytest.mark.parametrize(
    ("status", "reason", "age"),
    [("moved", "permanent_redirect", "open since"), ("drifted", "title_mismatch", "open since"),
     ("expired", "http_404", "failing since")],
)
def test_a_new_problem_known_before_is_worded_for_its_status(status: str, reason: str, age: str) -> None:
    """A move or a drift never fails: "[MOVED, NEW] Failing since 13 Nov" (walkthrough 10 #7)."""
    since = NOW - 2 * WEEK
    audit = audit_of([link(U, status, reason, failing_since=since if status == "expired" else None,
                           strikes=5)],
                     states={U: UrlState(url=U, status=LinkStatus(status), status_since=since,
                                         failing_since=since if status == "expired" else None,
                                         strikes=5)})
    (row,) = audit.problems
    assert row.age_words == f"{age} {wording.format_date(since)}"


def test_a_malformed_link_replaced_by_a_broken_one_keeps_its_first_week() -> None:
    """Walkthrough 10 #1: Keeping Warm's "http://" replaced by a parked domain
    was open "since 20 Nov" (the replacement's week): no check dates a
    malformed address; the first run listing it does."""
    first = NOW - 2 * WEEK
    old = link("http://", "error", "invalid_url", title="Keeping Warm", checked_at=None)
    parked = failing("https://www.raynauds-cure-news.com/tips/keeping-warm.html", "expired",
                     "parked_domain", title="Keeping Warm", days=0.01, strikes=1)
    audit = build_audit(RUN, [parked], [page()], previous_links=[old], previous_pages=[page()],
                        states={}, now=NOW, settings=ReportSettings(), site_name="www.sclero.org",
                        previous_run=LAST, first_listed={(PAGE, "http://"): (first, False)})
    (row,) = audit.problems
    assert (row.new, row.replaced_url, row.since, row.weeks_open) == (False, "http://", first, 2)
    assert row.age_words == f"open 2 weeks, since {wording.format_date(first)}"


# -- a link that fails now and then (walkthrough 11 #1) ------------------------

F = "https://journal170.example.org/doi/10.2167/article-1167"
TALLY = FailTally(checks=52, failed=18, since=dt.datetime(2025, 11, 24, 6, tzinfo=UTC),
                  last_ok_at=NOW - dt.timedelta(weeks=1))
SAYS = "fails now and then: failed 18 of the last 52 checks, since 24 Nov 2025; last ok 16 Nov 2026"


def _flapping_state(url: str, strikes: int, since: dt.datetime, status: str = "error") -> UrlState:
    return UrlState(url=url, status=LinkStatus(status), reason="http_503", strikes=strikes,
                    failing_since=since, flapping=True, first_seen_at=dt.datetime(2025, 11, 24, 6, tzinfo=UTC),
                    recent=("ok", "error", "ok", "ok", "error", "ok", "ok", status),
                    last_ok_at=NOW - dt.timedelta(weeks=1))


@pytest.mark.parametrize(
    ("current", "previous", "tallies", "group", "badge", "age", "suspicion"),
    [
        # a 503 after a good week: a first strike, watched; was "NEW · first seen 23 Nov 2026 ·
        # suspected: failed once so far" each time it failed
        (link(F, "error", "http_503", strikes=1, failing_since=NOW, flapping=True), None, {F: TALLY},
         "watched", "", SAYS, ""),
        # without the store's count (an audit built by hand): from its state's last 8 statuses
        (link(F, "error", "http_503", strikes=1, failing_since=NOW, flapping=True), None, {},
         "watched", "", "fails now and then: failed 3 of the last 8 checks; last ok 16 Nov 2026", ""),
        # a 404 after a good week: to fix at once, new to the editor: "NEW · AGAIN", counted new
        (link(F, "expired", "http_404", strikes=1, failing_since=NOW, flapping=True), [link(F)], {F: TALLY},
         "problems", "NEW · AGAIN", SAYS, ""),
        # only watched last week, failing again now (confirmed): new to the editor, "NEW · AGAIN"
        # rather than "NEW · NOW CONFIRMED", since it has failed and worked by turns for a year
        (link(F, "error", "http_503", strikes=2, failing_since=NOW - dt.timedelta(weeks=1), flapping=True),
         [link(F, "error", "http_503", strikes=1, failing_since=NOW - dt.timedelta(weeks=1), flapping=True,
               checked_at=NOW - dt.timedelta(weeks=1))], {F: TALLY},
         "problems", "NEW · AGAIN", SAYS, ""),
        # listed last week as a problem and still failing: still open, and how often it failed
        (link(F, "expired", "http_404", strikes=3, failing_since=NOW - dt.timedelta(weeks=2), flapping=True),
         [link(F, "expired", "http_404", strikes=2, failing_since=NOW - dt.timedelta(weeks=2), flapping=True,
               checked_at=NOW - dt.timedelta(weeks=1))], {F: TALLY},
         "problems", "", "open 2 weeks, since 9 Nov 2026; " + SAYS, ""),
        # a link that does not flap: a first 503 is watched, no badge (the headline's "new" counts
        # problems only), and says it is a first failure
        (link(F, "error", "http_503", strikes=1, failing_since=NOW), None, {},
         "watched", "", "first seen 23 Nov 2026", "suspected: failed once so far"),
        (link(F, "expired", "http_404", strikes=1, failing_since=NOW), [link(F)], {},
         "problems", "NEW", "first seen 23 Nov 2026", "suspected: failed once so far"),
        # a flapping link that moved does not fail: its redirect is news
        (link(F, "moved", "permanent_redirect", suggested_url=F + "/v2", flapping=True), [link(F)], {F: TALLY},
         "problems", "NEW", "first seen 23 Nov 2026", ""),
    ],
)
def test_a_link_that_flaps_is_never_new_nor_first_seen_and_says_how_often_it_failed(
        current: LinkResult, previous: list[LinkResult] | None, tallies: dict[str, FailTally],
        group: str, badge: str, age: str, suspicion: str) -> None:
    status = current.status.value
    states = {F: _flapping_state(F, current.strikes, current.failing_since or NOW, status)
              if current.flapping else UrlState(url=F, status=current.status, reason=current.reason,
                                                strikes=current.strikes, failing_since=current.failing_since)}
    audit = build_audit(RUN, [current], [page()], previous_links=previous, previous_pages=[page()],
                        states=states, now=NOW, settings=ReportSettings(), site_name="www.sclero.org",
                        previous_run=RunInfo(id=7, started_at=NOW - dt.timedelta(weeks=1),
                                             finished_at=NOW - dt.timedelta(weeks=1), status="finished"),
                        flaps=tallies)
    (row,) = getattr(audit, group)
    assert (row.badge, row.age_words, row.suspicion) == (badge, age, suspicion)
    # a row has a badge exactly when the headline's "new" counts it; a watched row never
    assert audit.counts.new == sum(bool(p.badge) for p in audit.problems + audit.watched)
    html, text = render_html(audit), render_text(audit)
    assert (">NEW<" in html, ", NEW]" in text) == (badge == "NEW",) * 2
    assert age in html and age[0].upper() + age[1:] in text
    data = json.loads(render_json(audit))
    rows = [p for g in data["needs_fixing"] + data["watching"] for s in g["sections"] for e in s["entries"]
            for p in e["problems"]]
    assert list(rows[0])[-1] == "flaps"  # added last: the JSON's fields only grow
    assert rows[0]["flaps"] == (None if row.flaps is None else {
        "checks": row.flaps.checks, "failed": row.flaps.failed,
        "since": row.flaps.since and row.flaps.since.isoformat(),
        "last_ok_at": row.flaps.last_ok_at and row.flaps.last_ok_at.isoformat()})


def test_a_watched_row_has_no_new_badge_since_the_headline_does_not_count_it() -> None:
    """Watched rows carried "NEW" while the headline's "N new" counts the
    problems only: 822 NEW badges for "100 new" in the big report."""
    rows = [link(f"https://e{i}.org/a", "error", "timeout", strikes=1, failing_since=NOW) for i in range(3)]
    rows.append(failing("https://gone.org/a", days=3, strikes=3))
    audit = audit_of(rows, previous=[])
    assert (len(audit.watched), audit.counts.new) == (3, 1)
    assert [p.badge for p in audit.watched] == ["", "", ""] and [p.badge for p in audit.problems] == ["NEW"]
    assert render_html(audit).count(">NEW<") == 1 and render_text(audit).count(", NEW]") == 1


GONE = {"status": "expired", "reason": "http_404", "strikes": 3, "failing_since": NOW - WEEK}
FIRST_404 = {"status": "expired", "reason": "http_404", "strikes": 1, "failing_since": NOW}


def new_badges(audit: Audit) -> tuple[list[str], list[str], list[str]]:
    """The rows badged NEW: by the rows, in the HTML, in the text."""
    rows = [p.badge for p in audit.problems + audit.watched if p.badge.startswith("NEW")]
    html = re.findall(r"<b[^>]*>(NEW[^<]*)</b>", unescape(render_html(audit)))
    text = re.findall(r"\n *\[[A-Z]+, (NEW[^\]]*)\]", render_text(audit))
    return rows, html, text


@pytest.mark.parametrize(("rows", "badges"), [
    # (before, now) of each URL -> the NEW badges, in the report's order
    ([(None, GONE)], ["NEW"]),
    ([(None, FIRST_404)], ["NEW"]),  # a first 404, not confirmed yet: new all the same
    ([(WATCHED, CONFIRMED_NOW)], ["NEW · NOW CONFIRMED"]),  # was only "NOW CONFIRMED"
    ([(LISTED, LISTED)], []),  # still open: no badge
    ([(WATCHED, STILL_SUSPECT)], []),  # watched again: neither new nor a problem
    ([(None, STILL_SUSPECT)], []),  # a first timeout: only watched
    ([(None, GONE), (WATCHED, CONFIRMED_NOW), (LISTED, LISTED), (WATCHED, CONFIRMED_NOW), (None, STILL_SUSPECT)],
     ["NEW", "NEW · NOW CONFIRMED", "NEW · NOW CONFIRMED"]),
])
def test_every_row_the_headline_counts_new_says_new(
        rows: list[tuple[dict[str, object] | None, dict[str, object]]], badges: list[str]) -> None:
    """Review 13 #3: "8 new" in the subject and headline, and 2 rows badged
    NEW (6 said only "NOW CONFIRMED"): an editor searching for NEW found 2.
    Every row counted new says NEW, in the rows, the HTML and the text."""
    urls = [f"{U}/{i}" for i in range(len(rows))]
    audit = weekly([link(u, **now) for u, (_, now) in zip(urls, rows)],  # type: ignore[arg-type]
                   [link(u, **before) for u, (before, _) in zip(urls, rows) if before])  # type: ignore[arg-type]
    assert new_badges(audit) == (badges, badges, badges)
    assert audit.counts.new == len(badges)
    if badges:
        assert f"({len(badges)} new, " in headline(audit)
