"""An editor's three weeks, through a real store: how each changed entry is
told week over week (walkthrough 10 #1, #2, #7, #8, #12).

Week 1 lists the problems; week 2 the editor replaces a dead link by another
broken one, updates one listing of a cross-listed entry, links an archived
copy, updates a moved link; week 3 restores that moved link's old address,
updates the other listing and a menu link. Each week is recorded as the
checker records it (citations, observations, URL states moved on by
`classify.next_state`), and read back by `load_audit` as a report would.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from html import unescape
from pathlib import Path

from monitor.classify import next_state
from monitor.config import PageSettings, Settings
from monitor.store import Store
from monitor.types import (
    Citation,
    EntryContext,
    LinkKind,
    LinkStatus,
    Observation,
    PageRecord,
    RunInfo,
    Verdict,
)
from reports.audit import Audit, Problem
from reports.deliver import load_audit
from reports.mail import subject_for
from reports.render import headline, render_html, render_json, render_text

UTC = dt.timezone.utc
WEEK1 = dt.datetime(2026, 11, 13, 6, 0, tzinfo=UTC)
WEEK = dt.timedelta(days=7)
PAGE = "https://www.sclero.org/raynauds/treatments.html"
SETTINGS = Settings(pages=(PageSettings(url=PAGE),))

AMLODIPINE = "Amlodipine vs Nifedipine in Raynaud's phenomenon"
MEDSCAPE_OLD = "https://www.medscape.com/viewarticle/883512"
MEDSCAPE_NEW = "https://www.medscape.com/viewarticle/883599"
RITUXIMAB = "Rituximab for refractory dermatomyositis"
NCBI = "http://www.ncbi.nlm.nih.gov/pubmed/29713888"
PUBMED = "https://pubmed.ncbi.nlm.nih.gov/29713888/"
PDE5 = "Phosphodiesterase-5 inhibitors for secondary Raynaud's phenomenon"
PMC_OLD = "http://www.ncbi.nlm.nih.gov/pmc/articles/PMC5123456/"
PMC_NEW = "https://pmc.ncbi.nlm.nih.gov/articles/PMC5123456/"
CORBUS = "Corbus announces topline results"
GLOBE = "https://globenewswire.com/news-release/2018/07/26/corbus.html"
GLOBE_ARCHIVED = "https://web.archive.org/web/20180726000000/" + GLOBE
NEWS = "ISN News"
NEWS_OLD = "https://www.sclero.org/about/news/a-to-z.html"
NEWS_NEW = "https://www.sclero.org/about/a-to-z.html"


@dataclass(frozen=True)
class L:
    """One link on the page this week, and what its check found."""

    section: str
    title: str
    url: str
    status: str = "ok"
    reason: str = "ok"
    kind: LinkKind = LinkKind.CITATION
    suggested: str | None = None


def week1() -> list[L]:
    return [
        L("Menu", NEWS, NEWS_OLD, "expired", "http_404", LinkKind.NAVIGATION),
        L("Calcium Channel Blockers", AMLODIPINE, MEDSCAPE_OLD, "expired", "http_410"),
        L("Biologics", RITUXIMAB, NCBI, "moved", "permanent_redirect", suggested=PUBMED),
        L("PDE-5 Inhibitors", PDE5, PMC_OLD, "moved", "permanent_redirect", suggested=PMC_NEW),
        L("Digital Ulcers", PDE5, PMC_OLD, "moved", "permanent_redirect", suggested=PMC_NEW),
        L("News", CORBUS, GLOBE, "expired", "http_404"),
    ]


def week2() -> list[L]:
    return [
        L("Menu", NEWS, NEWS_OLD, "expired", "http_404", LinkKind.NAVIGATION),
        L("Calcium Channel Blockers", AMLODIPINE, MEDSCAPE_NEW, "expired", "http_404"),
        L("Biologics", RITUXIMAB, PUBMED),
        L("PDE-5 Inhibitors", PDE5, PMC_NEW),
        L("Digital Ulcers", PDE5, PMC_OLD, "moved", "permanent_redirect", suggested=PMC_NEW),
        L("News", CORBUS, GLOBE_ARCHIVED),
    ]


def week3() -> list[L]:
    return [
        L("Menu", NEWS, NEWS_NEW, kind=LinkKind.NAVIGATION),
        L("Calcium Channel Blockers", AMLODIPINE, MEDSCAPE_NEW, "expired", "http_404"),
        L("Biologics", RITUXIMAB, NCBI, "moved", "permanent_redirect", suggested=PUBMED),
        L("PDE-5 Inhibitors", PDE5, PMC_NEW),
        L("Digital Ulcers", PDE5, PMC_NEW),
        L("News", CORBUS, GLOBE_ARCHIVED),
    ]


def record_week(store: Store, when: dt.datetime, links: list[L]) -> RunInfo:
    """A finished run of PAGE as the checker records it: one observation per URL."""
    run = store.start_run(when)
    store.record_page(PageRecord(run_id=run.id, url=PAGE, status="ok", title="Raynaud's treatments",
                                 entries=tuple(dict.fromkeys(l.title for l in links
                                                             if l.kind == LinkKind.CITATION))), when)
    store.record_citations(run.id, PAGE, [
        Citation(page_url=PAGE, url=l.url, raw_href=l.url, anchor_text=l.title, section=l.section,
                 kind=l.kind, line=40 + i,
                 context=EntryContext(title=l.title, source="PubMed, 2019.")
                 if l.kind == LinkKind.CITATION else None)
        for i, l in enumerate(links)])
    observed = []
    for l in {l.url: l for l in links}.values():
        obs = Observation(url=l.url, checked_at=when + dt.timedelta(seconds=4),
                          http_status={"http_404": 404, "http_410": 410,
                                       "permanent_redirect": 301}.get(l.reason, 200))
        verdict = Verdict(url=l.url, status=LinkStatus(l.status), reason=l.reason,
                          suggested_url=l.suggested)
        observed.append((obs, verdict, next_state(store.url_state(l.url), verdict, obs)))
    store.record_observations(run.id, observed)
    store.finish_run(run.id, when + dt.timedelta(minutes=1))
    return run


def report(store: Store, n: int, links: list[L]) -> Audit:
    """Week `n`'s run and its report, sent (the next week compares with it)."""
    when = WEEK1 + (n - 1) * WEEK
    run = record_week(store, when, links)
    audit = load_audit(store, run.id, SETTINGS, when + dt.timedelta(minutes=2))
    store.mark_reported(run.id, when + dt.timedelta(minutes=2))
    return audit


def row(audit: Audit, title: str) -> Problem:
    (found,) = [p for p in audit.problems + audit.watched
                if (p.link.entry_title or p.link.text) == title]
    return found


def fixed(audit: Audit) -> dict[tuple[str, str], tuple[str, str, str | None]]:
    """(entry, section) -> (how, words, new address) of the fixed rows."""
    return {(f.link.entry_title or f.link.text, f.link.section): (f.how, f.words, f.new_url)
            for f in audit.fixed_since_last}


def three_weeks(tmp_path: Path) -> tuple[Audit, Audit, Audit]:
    with Store.open(tmp_path / "monitor.db") as store:
        return report(store, 1, week1()), report(store, 2, week2()), report(store, 3, week3())


def reconciled(before: Audit, now: Audit) -> bool:
    """README: the last report's open problems add up to this one's still
    open + fixed + no longer checked + no longer watched."""
    c = now.counts
    return before.counts.open == c.still + c.fixed + c.no_longer_checked + c.no_longer_audited


def test_a_dead_link_replaced_by_another_broken_one_stays_open_since_its_first_week(
        tmp_path: Path) -> None:
    """#1: the Medscape 410 replaced by another Medscape address that answers
    404 was "[EXPIRED, NEW] First seen 20 Nov", and last week's row was in
    neither still open nor fixed: 13 still + 4 fixed of 19."""
    one, two, _ = three_weeks(tmp_path)
    assert one.counts.open == 6  # the cross-listing is two rows
    assert reconciled(one, two)
    amlodipine = row(two, AMLODIPINE)
    assert (amlodipine.link.url, amlodipine.new, amlodipine.badge) == (MEDSCAPE_NEW, False, "")
    assert amlodipine.since is not None and amlodipine.since.date() == WEEK1.date()
    assert amlodipine.replaced_url == MEDSCAPE_OLD
    said = ("You replaced the link on 20 Nov 2026; the new one "
            "(https://www.medscape.com/viewarticle/883599) is broken too. ")
    assert amlodipine.words.startswith(said)
    assert amlodipine.age_words == "open 1 week, since 13 Nov 2026"
    text, html = render_text(two), render_html(two)
    assert said in text and "[EXPIRED] Open 1 week, since 13 Nov 2026" in text
    assert "You replaced the link on 20 Nov 2026; the new one" in html
    c = two.counts
    assert (c.new, c.still, c.fixed) == (0, 3, 3)
    assert headline(two).startswith("3 problems need attention (0 new, 3 still open). 3 links fixed")
    assert "no new problems, 3 still open, 3 fixed" in subject_for(two)
    data = json.loads(render_json(two))
    (entry,) = [p for g in data["needs_fixing"] for s in g["sections"] for e in s["entries"]
                for p in e["problems"] if p["link"]["entry_title"] == AMLODIPINE]
    assert (entry["new"], entry["replaced_url"]) == (False, MEDSCAPE_OLD)
    assert list(entry)[-7:] == ["replaced_url", "replaced_on", "reported_fixed_on", "worked_again",
                                "acceptance", "back",  # monitor accept's, added after
                                "flaps"]  # a link that fails now and then (walkthrough 11 #1)


def test_a_cross_listed_entry_updated_in_its_second_section_links_to_a_new_address(
        tmp_path: Path) -> None:
    """#2: week 2 updated the PDE-5 review's listing under "PDE-5 Inhibitors",
    week 3 the one under "Digital Ulcers": that was "The dead link was removed;
    the entry keeps its other link", the twin's address taken for one the
    entry already had."""
    _, two, three = three_weeks(tmp_path)
    assert fixed(two)[PDE5, "PDE-5 Inhibitors"] == (
        "link_updated", "The entry now links to a new address", PMC_NEW)
    assert fixed(three)[PDE5, "Digital Ulcers"] == (
        "link_updated", "The entry now links to a new address", PMC_NEW)
    assert "keeps its other link" not in render_text(three)


def test_a_fix_by_the_archived_copy_is_said_so(tmp_path: Path) -> None:
    """#12: "The entry now links to a new address: https://web.archive.org/web/2018..."."""
    _, two, _ = three_weeks(tmp_path)
    assert fixed(two)[CORBUS, "News"] == (
        "link_updated", "The entry now links to an archived copy (26 Jul 2018)", GLOBE_ARCHIVED)
    assert "The entry now links to an archived copy (26 Jul 2018): " in render_text(two)


def test_a_menu_link_pointed_at_a_working_address_is_updated_not_removed(tmp_path: Path) -> None:
    """#8: the menu's "ISN News" pointed at /about/a-to-z.html was "The link
    was removed from the page": a navigation link has no entry title."""
    _, _, three = three_weeks(tmp_path)
    assert fixed(three)[NEWS, "Menu"] == ("link_updated", "The link now points to a new address", NEWS_NEW)
    assert "The link now points to a new address: " + NEWS_NEW in render_text(three)


def test_a_link_back_after_it_was_reported_fixed_says_so_and_counts_new(tmp_path: Path) -> None:
    """#7: Rituximab's old address restored in week 3 was "[MOVED, NEW] Failing
    since 13 Nov 2026", the week after the report listed it as fixed. It is
    new to the editor (the last report's open problems still add up), badged
    NEW · BACK, and says when it was reported fixed."""
    _, two, three = three_weeks(tmp_path)
    assert fixed(two)[RITUXIMAB, "Biologics"][0] == "link_updated"
    text, html = render_text(three), render_html(three)
    assert ("[MOVED, NEW · BACK] Back: reported fixed on 20 Nov 2026; "
            "the entry links to the old address again") in text
    assert "NEW · BACK</b>" in unescape(html) and "Failing since" not in text
    back = row(three, RITUXIMAB)
    assert (back.link.url, back.new, back.badge) == (NCBI, True, "NEW · BACK")
    assert back.reported_fixed_on is not None and back.reported_fixed_on.date() == (WEEK1 + WEEK).date()
    assert reconciled(two, three)
    c = three.counts
    assert (c.new, c.still) == (1, 1)
    assert headline(three).startswith("2 problems need attention (1 new, 1 still open).")
