"""Rendering: escaping, inlined CSS, size budget, text twin, saved files, a real browser."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import subprocess
from dataclasses import replace
from html import escape, unescape
from html.parser import HTMLParser
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import ReportSettings
from monitor.types import LinkKind, LinkResult, LinkStatus, PageRecord, RunInfo, UrlState
from reports import render
from reports.audit import Audit, build_audit
from reports import wording
from reports.mail import build_message, build_report_message, message_id_for, subject_for
from monitor.output import INVISIBLE
from reports.render import (
    MAX_EMAIL_BYTES,
    PROBLEM_MIN_BYTES,
    is_web_url,
    render_email,
    render_html,
    render_index,
    render_json,
    render_page,
    render_text,
    _visible,
    save_report,
)

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 6, 12, tzinfo=UTC)
PAGE = "https://www.sclero.org/scleroderma/autoimmune/dermatomyositis/treatments.html"
SETTINGS = ReportSettings()


def result(url: str, status: str, reason: str, *, page: str = PAGE, section: str = "Biological Agents",
           title: str = "", source: str = "", text: str | None = None, days: float = 0,
           strikes: int = 0, kind: LinkKind = LinkKind.CITATION, **extra: object) -> LinkResult:
    failing = status in ("expired", "error", "blocked")
    base = LinkResult(
        page=page, url=url, text=title if text is None else text, section=section, kind=kind,
        status=LinkStatus(status), reason=reason, http_status=None, final_url=None,
        suggested_url=None, strikes=strikes, checked_at=NOW,
        failing_since=NOW - dt.timedelta(days=days) if failing else None,
        entry_title=title, entry_source=source,
    )
    return replace(base, **extra)  # type: ignore[arg-type]


def audit_from(links: list[LinkResult], pages: list[PageRecord], *, run_id: int = 7,
               previous: list[LinkResult] | None = None, site: str = "www.sclero.org",
               when: dt.datetime = NOW) -> Audit:
    states = {l.url: UrlState(url=l.url, status=l.status, strikes=l.strikes,
                              failing_since=l.failing_since) for l in links}
    run = RunInfo(id=run_id, started_at=when - dt.timedelta(minutes=12), finished_at=when,
                  status="finished")
    prev_run = RunInfo(id=run_id - 1, started_at=when - dt.timedelta(days=7)) if previous else None
    return build_audit(run, links, pages, previous_links=previous, previous_pages=None,
                       states=states, now=when, settings=SETTINGS, site_name=site,
                       previous_run=prev_run)


def sample_audit() -> Audit:
    """The seed page, as a realistic week: a move, removals, a bot wall, a fix."""
    title = "Treatments for Dermatomyositis (DM) and Polymyositis (PM)"
    links = [
        result("https://www.ncbi.nlm.nih.gov/pubmed/29713762", "moved", "permanent_redirect",
               title="Rituximab for refractory rapidly progressive interstitial lung disease (RP\u2013ILD) "
                     "related to anti-MDA5 antibody\u2013positive amyopathic dermatomyositis",
               source="PubMed, Clin Rheumatol, 04/30/2018.", http_status=301,
               suggested_url="https://pubmed.ncbi.nlm.nih.gov/29713762/"),
        result("https://pubmed.ncbi.nlm.nih.gov/28301622/", "ok", "ok",
               title="The Use of Rituximab in the Management of Refractory Dermatomyositis",
               source="PubMed, J Drugs Dermatol. 2017 Feb 1;16(2):162-166."),
        result("https://globenewswire.com/news-release/2018/07/25/1542296/0/en/Corbus-Pharmaceuticals.html",
               "expired", "http_410", section="Cannabinoid Receptor Type 2 (CB2) Agonist",
               title="Corbus Pharmaceuticals to Commence Phase 3 Study of Lenabasum for the Treatment "
                     "of Rare Autoimmune Disease Dermatomyositis",
               source="Globe Newswire, 07/25/2018.", http_status=410, days=4, strikes=4,
               archived_url="https://web.archive.org/web/20180726/https://globenewswire.com/"
                            "news-release/2018/07/25/1542296/0/en/Corbus-Pharmaceuticals.html"),
        result("http://www.jrheum.org/content/28/10/2230", "expired", "redirect_to_home",
               section="Combination Therapies", expired_mark=True, days=200, strikes=20,
               title="Dermatomyositis and Polymyositis Associated with Malignancy: "
                     "A 21-year Retrospective Study", source="J Rheumatol ."),
        result("https://pubmed.ncbi.nlm.nih.gov/31119428/", "ok", "ok", section="Combination Therapies",
               title="Physical therapy in adult inflammatory myopathy patients: a systematic review",
               source="PubMed, Clin Rheumatol, 2019 Aug;38(8):2039-2051."),
        result("https://www.hopkinsmedicine.org/health/conditions-and-diseases/polymyositis",
               "drifted", "title_mismatch", section="Combination Therapies",
               title="How is Polymyositis Treated?"),
        result("https://academic.oup.com/rheumatology/article/57/suppl_3/key075.471/4975213",
               "blocked", "bot_challenge", section="Combination Therapies", http_status=403,
               title="Expression of interleukin-18 in muscle tissue of patients with polymyositis "
                     "or dermatomyositis", source="PubMed, Rheumatology (Oxford), 08/08/2018.",
               days=0.1, strikes=1),
        result("https://pubmed.ncbi.nlm.nih.gov/31770613/", "ok", "ok",
               section="Intravenous Immunoglobulin (IVIg)",
               title="Corticosteroid-sparing (CS) benefit of intravenous immunoglobulin (IVIg) in "
                     "systemic sclerosis-associated myopathy (SScAM)",
               source="PubMed, Autoimmun Rev, 2020 Jan;19(1):102431."),
        result("https://www.atsjournals.org/doi/abs/10.1164/ajrccm-conference.2018.197.1", "error",
               "timeout", section="Intravenous Immunoglobulin (IVIg)", days=0.2, strikes=1,
               title="Successful Treatment With Intravenous High-Dose Immunoglobulin For "
                     "Cardiomyopathy In Dermatomyositis", source="ATS Journal."),
        result("https://pubmed.ncbi.nlm.nih.gov/30194861/", "ok", "ok", section="Stem Cell Transplants",
               title="Inflammatory myopathies (IM) after allogeneic stem cell transplantation (SCT)",
               source="PubMed, Muscle Nerve, 2018 Dec;58(6):790-795."),
        result("https://www.sclero.org/diabetes.html", "ok", "ok", section="", kind=LinkKind.NAVIGATION,
               text="Go to Diabetes"),
        result("mailto:info@sclero.org", "skipped", "mailto", section="", kind=LinkKind.NAVIGATION,
               text="info@sclero.org"),
    ]
    last_week = NOW - dt.timedelta(days=7)
    previous = [
        result("https://www.hopkinsmedicine.org/health/conditions-and-diseases/polymyositis",
               "drifted", "title_mismatch", section="Combination Therapies", checked_at=last_week,
               title="How is Polymyositis Treated?"),
        result("http://www.jrheum.org/content/28/10/2230", "expired", "redirect_to_home",
               section="Combination Therapies", expired_mark=True, days=193, strikes=19, checked_at=last_week,
               title="Dermatomyositis and Polymyositis Associated with Malignancy: "
                     "A 21-year Retrospective Study"),
        result("https://www.ncbi.nlm.nih.gov/pubmed/31770613", "expired", "http_404",
               section="Intravenous Immunoglobulin (IVIg)", days=9, strikes=3, checked_at=last_week,
               title="Corticosteroid-sparing (CS) benefit of intravenous immunoglobulin (IVIg) in "
                     "systemic sclerosis-associated myopathy (SScAM)"),
    ]
    pages = [PageRecord(run_id=7, url=PAGE, status="ok", title=title)]
    return audit_from(links, pages, previous=previous)


def synthetic_audit(n_links: int, problem_every: int = 10, pages: int = 5) -> Audit:
    """n links over a few pages; every `problem_every`-th one has a problem."""
    kinds = [("expired", "http_404"), ("moved", "permanent_redirect"), ("error", "http_503"),
             ("blocked", "http_403"), ("drifted", "title_mismatch"), ("expired", "soft_404")]
    page_urls = [f"https://www.sclero.org/scleroderma/topic-{p}/treatments.html" for p in range(pages)]
    links = []
    for i in range(n_links):
        status, reason = ("ok", "ok")
        if i % problem_every == 0:
            status, reason = kinds[(i // problem_every) % len(kinds)]
        url = f"https://pubmed.ncbi.nlm.nih.gov/{30000000 + i}/"
        links.append(result(
            url, status, reason, page=page_urls[i % pages], section=f"Section {(i // 7) % 9}",
            title=f"Study {i}: effect of a biological agent on interstitial lung disease in "
                  "dermatomyositis patients",
            source=f"PubMed, Clin Rheumatol, 2019 Aug;38(8):{i}-{i + 10}.",
            days=3 + i % 60, strikes=3,
            suggested_url=url + "v2" if status == "moved" else None,
            archived_url=f"https://web.archive.org/web/2020/{url}" if status == "expired" else None,
        ))
    records = [PageRecord(run_id=9, url=u, status="ok", title=f"Treatments, topic {p}")
               for p, u in enumerate(page_urls)]
    return audit_from(links, records, run_id=9)


# -- escaping ------------------------------------------------------------------

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def hostile_audit() -> Audit:
    links = [
        result("https://evil.example/" + XSS, "expired", "http_404", section="Heading " + XSS,
               title="Title " + XSS, source="Source " + XSS, text="Anchor " + XSS, days=9, strikes=3,
               archived_url="javascript:alert(3)"),
        result("javascript:alert(4)//https://x", "moved", "permanent_redirect", title="JS link",
               suggested_url="javascript:alert(5)"),
        result("https://ok.example/", "ok", "ok", text="Anchor " + XSS, section=XSS),
    ]
    pages = [PageRecord(run_id=7, url=PAGE, status="ok", title="Page " + XSS),
             PageRecord(run_id=7, url="https://www.sclero.org/x.html", status="error",
                        title="Down " + XSS, error=XSS)]
    return audit_from(links, pages, site="www.sclero.org" + XSS)


OWN_HREF = re.compile(r"#[a-z][a-z-]*|index\.html|report-\d{4}-\d{2}-\d{2}-run-\d+\.html")
"""The only hrefs that are not web URLs: the report's own anchors and the
saved reports beside it, names the monitor makes (never from the web)."""


def our_own_href(href: str | None) -> bool:
    return bool(href) and OWN_HREF.fullmatch(href or "") is not None


@pytest.mark.parametrize("max_bytes", [None, MAX_EMAIL_BYTES, 4000])
def test_web_data_is_inert_in_html(max_bytes: int | None) -> None:
    html = render_html(hostile_audit(), max_bytes=max_bytes, full_report="javascript:alert(6)")
    tags = tags_of(html)
    assert not [t for t, _ in tags if t in ("script", "img", "iframe", "object", "embed", "link")]
    for tag, attrs in tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if "href" in attrs:
            assert is_web_url(attrs["href"]) or our_own_href(attrs["href"]), attrs["href"]
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text


def test_javascript_urls_are_shown_as_text_not_links() -> None:
    html = render_html(hostile_audit(), max_bytes=None)
    assert "javascript:alert(4)" in html
    assert not re.search(r"href=\"\s*javascript", html, re.IGNORECASE)


@pytest.mark.parametrize(
    ("url", "ok"),
    [("https://a.org/x", True), ("HTTP://A.ORG", True), ("javascript:alert(1)", False),
     ("data:text/html,x", False), ("//evil.org/x", False), ("https://a.org/\nx", False),
     ("mailto:a@b.org", False), ("https://", False), ("", False)],
)
def test_is_web_url(url: str, ok: bool) -> None:
    assert is_web_url(url) is ok


def reference_is_web_url(value: str) -> bool:
    """The definition, spelled slowly: http(s), a host part, no whitespace or controls."""
    if not value or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


@pytest.mark.parametrize("url", [
    "https://a.org:8080/x", "https://user@a.org/", "https://[::1]/", "https://[::1/", "https://a]/",
    "https://\u212a.org/", "https://a\uff0fb.org/", "https://a.org\u00a0/", "https://a.org?q", "https://#x",
    "https:///x", "HtTpS://A.ORG", "https://a.org\\b", "ftp://a.org/", "https:a.org",
])
def test_is_web_url_agrees_with_its_definition(url: str) -> None:
    assert is_web_url(url) is reference_is_web_url(url)


URL_PIECES = st.sampled_from(["http", "https", "HTTPS", ":", "//", "/", "?", "#", "[", "]", "@", "%",
                              "a.org", "b", " ", "\t", "\x00", "\x7f", "\u00a0", "\u212a", "\uff0f", "\\"])


@given(st.lists(URL_PIECES, max_size=8).map("".join))
def test_is_web_url_fast_path_changes_no_answer(url: str) -> None:
    assert is_web_url(url) is reference_is_web_url(url)


TEXT_PIECES = st.sampled_from(["a", "\u00e9", "\u2026", "\u00a0", "\t", "\n", "\r", "\x00", "\x08", "\x0b",
                               "\x1b", "\x7f", "\x80", "\x9b", "\x9f", "\u00a0", "\u202a", "\u202e",
                               "\u2066", "\u2069", "\u2067", "\ud83d", "\U0001f600", "<b>"])


@given(st.lists(TEXT_PIECES, max_size=12).map("".join))
def test_the_pages_fast_look_for_invisible_characters_removes_what_invisible_names(text: str) -> None:
    """`_visible` skips the removal when its one-character search finds
    nothing: what it gives is always `INVISIBLE`'s removal."""
    assert _visible(text) == INVISIBLE.sub("", text)


def test_the_saved_page_shows_no_control_or_bidi_character_of_the_data() -> None:
    title = "Outcome\u202e of \x1b[31m treatment\x9b\u2066 in SSc \u2026"
    links = [result("https://a.example.org/x", "expired", "http_404", text=title, title=title),
             result("https://b.example.org/y", "ok", "ok", text=title)]
    page = render_page(audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok", title=title)]))
    assert "Outcome of [31m treatment in SSc \u2026" in page
    assert not INVISIBLE.search(page)


# -- mail-readiness ------------------------------------------------------------


def test_css_is_inlined_and_nothing_is_loaded_from_outside() -> None:
    html = render_html(sample_audit())
    assert html.count('style="') > 50
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "@font-face" not in html and "<img" not in html
    # only the phone rules stay in <head>, for the clients that honour them
    (style,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert style.strip().startswith("@media")
    assert 'name="viewport"' in html and "max-width:720px" in html


def test_html_is_ascii_with_short_lines() -> None:
    html = render_html(sample_audit())
    assert html.isascii()
    assert "RP&#8211;ILD" in html  # non-ASCII survives as character references
    assert max(len(line) for line in html.splitlines()) <= 998


def test_report_order_and_content() -> None:
    html = render_html(sample_audit())
    order = ["Needs fixing", "Needs a person", "Watching", "Fixed since the last report",
             "Content audit", "Everything else"]
    positions = [html.index(h) for h in order]
    assert positions == sorted(positions)
    for expected in ["PubMed moved this article to a new address",
                     "https://pubmed.ncbi.nlm.nih.gov/29713762/",
                     "The publisher removed this article (HTTP 410)",
                     "(Expired Article)", "Globe Newswire, 07/25/2018.", "Archived copy",
                     "#:~:text=Rituximab%20for%20refractory", "The entry now links to a new address"]:
        assert expected in html, expected


def test_text_part_tells_the_same() -> None:
    audit = sample_audit()
    text, html = render_text(audit), render_html(audit)
    c = audit.counts
    line = (f"{c.checked} links checked ({c.urls} URLs) on 1 page: {c.ok} ok, {c.moved} moved, {c.expired} expired, "
            f"{c.error} error, {c.blocked} blocked, {c.drifted} drifted")
    assert line in text
    assert f"Problems: {c.new} new, {c.still} still open, {c.fixed} fixed" in text
    assert f"Problems: {c.new} new &#183; {c.still} still open &#183; {c.fixed} fixed" in html
    for p in audit.problems + audit.watched:
        assert p.link.url in text and p.words in text
        if p.fix_url:
            assert p.fix_url in text


def test_500_links_fit_in_one_unclipped_message() -> None:
    audit = synthetic_audit(500)
    assert len(audit.problems) == 50  # 10 % of the links
    msg = build_report_message(audit, sender="monitor@example.org", recipients=["w@example.org"],
                               message_id=message_id_for(9, "all", "monitor@example.org"))
    size = len(msg.as_bytes())
    assert size <= MAX_EMAIL_BYTES
    html = msg.get_body(("html",)).get_content()
    assert "The newest problems" not in html  # not summarised: every problem is there
    for p in audit.problems:
        assert p.link.url.removeprefix("https://") in html


def test_a_huge_audit_is_summarised_and_points_to_the_full_report() -> None:
    audit = synthetic_audit(3000, problem_every=5)
    where = "https://reports.example.org/report-2026-11-23-run-9.html"
    html = render_html(audit, full_report=where)
    assert len(html.encode()) <= MAX_EMAIL_BYTES
    assert "The newest problems" in html and where in html
    shown = len(re.findall(r"What to do:", html))
    more = re.search(r"(\d+) more (?:new )?problems(?: on \d+ pages?)?(?:</b>)?(?:, (\d+) still open)?", html)
    assert more, html[-3000:]
    assert shown + int(more.group(1)) + int(more.group(2) or 0) == len(audit.problems)
    msg = build_report_message(audit, sender="m@example.org", recipients=["w@example.org"],
                               message_id="<x@example.org>", full_report=where)
    assert len(msg.as_bytes()) <= MAX_EMAIL_BYTES
    assert re.search(r"\d+ more (new )?problems", msg.get_body(("plain",)).get_content())


@pytest.mark.parametrize("view, where, linked, audience", [
    (view, where, linked, audience)
    for view in ("full", "summary")
    for where, linked, audiences in (
        ("https://www.sclero.org/link-audits/report-2026-11-23-run-9.html", True, ("",)),
        ("/var/lib/monitor/reports/report-2026-11-23-run-9.html", False, ("", "editor@sclero.org")))
    for audience in audiences])
def test_the_mail_says_where_the_full_report_is_at_the_top(view: str, where: str, linked: bool,
                                                           audience: str) -> None:
    """Under `[report] base_url` the mail links the full report under its
    headline, before any problem (at 10,000 problems the one thing every
    reader must do is open it: it came only after the summary's 25 cards,
    at 97 % of the text part, walkthrough 11 #5), and a summary again where
    it says what it left out. Without base_url the file's path on the
    server is no use to an editor (who can neither open it nor set
    base_url): a page owner's part says, once and at the top, that the
    webmaster keeps the full report, and names no path and no configuration
    key. The webmaster's copy (email.recipients) names the file and the key
    that would link it: it told the webmaster "The full report is kept by
    the webmaster." (review 13 #5)."""
    audit = synthetic_audit(50 if view == "full" else 3000, problem_every=5)
    if audience:
        audit = replace(audit, audience=audience)
    html, text = render_email(audit, lambda h, t: True if view == "full" else "The newest" in h,
                              full_report=where)
    assert ("The newest problems" in html) is (view == "summary")
    hrefs = [attrs.get("href") for _, attrs in tags_of(html)]
    times = 2 if view == "summary" else 1
    webmasters = not linked and not audience  # the webmaster's copy of an unpublished report
    saved = f"The full report is saved on the monitor's machine: {where}"
    for part, first_problem in ((html, "What to do:"), (text, "What to do:")):
        assert ("base_url" in part) is webmasters and "a file on the server" not in part
        assert part.count(where) == (times * (2 if part is html else 1) if linked else int(webmasters))
        assert part.count(saved) == int(webmasters)
        assert part.count("set [report] base_url to link it here") == int(webmasters)
        said = ["webmaster keeps", "kept by the webmaster"]
        assert sum(part.count(s) for s in said) == (0 if linked or webmasters else 1)
        top = part.index(where) if linked or webmasters else min(part.index(s) for s in said if s in part)
        assert top < part.index(first_problem) and top < part.index("Needs fixing")
    assert hrefs.count(where) == (times if linked else 0)


@pytest.mark.parametrize("view", ["full", "compact", "summary"])
def test_no_full_stop_is_glued_to_a_url_in_the_text_part(view: str) -> None:
    """A mail client that links a URL in plain text takes a full stop glued
    to it into the link: "...run-52.html." opened a 404 (walkthrough 11 #5).
    Every URL in the text part ends its line or is followed by a space."""
    where = "https://links.sclero.org/reports/report-2026-11-23-run-9.html"
    audit = sample_audit() if view != "summary" else synthetic_audit(3000, problem_every=5)
    budget = {"full": lambda h, t: True, "compact": lambda h, t: "Everything else" in h
              and "<ul" not in h and "ok, " in h, "summary": lambda h, t: "The newest" in h}[view]
    html, text = render_email(audit, budget, full_report=where)
    assert (view == "summary") is ("The newest problems" in html)
    assert (view == "compact") is ("The list of every link is in the full report" in text)
    assert where in text
    glued = re.findall(r"https?://[^\s()<>\"]*[.,;:]?(?=\s|$)", text)
    assert glued and not [u for u in glued if u[-1] in ".,;:"], [u for u in glued if u[-1] in ".,;:"]


def _suspected_and_confirmed(pages: int = 40) -> Audit:
    """One week of a site of `pages` pages, all rows new and failing since one
    moment (the rows of one run share it): on every page a suspected 404 first
    in page order; on the second half a moved link with its new address, on
    the last quarter a 404 confirmed with an archived copy."""
    urls = [f"https://www.sclero.org/scleroderma/topic-{p}/treatments.html" for p in range(pages)]
    links = []
    for p, page in enumerate(urls):
        links.append(result(f"https://j{p}.example.org/a", "expired", "http_404", page=page,
                            section="A", title=f"Suspected {p}", strikes=1, days=0))
        if p >= pages // 2:
            links.append(result(f"https://j{p}.example.org/b", "moved", "permanent_redirect", page=page,
                                section="B", title=f"Moved {p}", strikes=3, days=3,
                                suggested_url=f"https://new{p}.example.org/b"))
        if p >= pages * 3 // 4:
            links.append(result(f"https://j{p}.example.org/c", "expired", "http_404", page=page,
                                section="C", title=f"Archived {p}", strikes=4, days=3,
                                archived_url=f"https://web.archive.org/web/2020/https://j{p}.example.org/c"))
    records = [PageRecord(run_id=7, url=u, status="ok", title=f"Topic {p}") for p, u in enumerate(urls)]
    return audit_from(links, records)


def test_a_summary_shows_the_fixes_ready_first_spread_over_the_pages() -> None:
    """At 10,000 problems the mail showed "the newest 25": sorted on `since`,
    which the rows of one run share, so the first 25 in page order (topic-9
    to topic-128 of 500), 20 of them "suspected: failed once so far", and
    the 75 other new rows neither named nor counted. Now: the moved links
    with their new address, then the 404s with an archived copy, then the
    suspected ones; each tier spread over the pages; the new rows left out
    counted with their pages."""
    audit = _suspected_and_confirmed(40)
    assert all(p.new for p in audit.problems) and len(audit.problems) == 40 + 20 + 10
    html, text = render_email(audit, lambda h, t: h.count("What to do:") <= 35)
    cards = re.findall(r"\n  \* (\w+) (\d+)\n", text)
    assert len(cards) == 35
    kinds = [kind for kind, _ in cards]
    assert kinds == ["Moved"] * 20 + ["Archived"] * 10 + ["Suspected"] * 5, kinds
    suspected = sorted(int(n) for kind, n in cards if kind == "Suspected")
    assert suspected[-1] >= 20, suspected  # not topics 0-4: spread over the 40 pages
    assert "And 35 more new problems on 35 pages" in text
    assert "<b>And 35 more new problems on 35 pages</b>" in html
    # the headings say which tier a row is in
    assert text.index("New, with the new address ready to paste (20)") < text.index("Moved 20")
    assert text.index("New, not confirmed yet") > text.index("Archived 30")


def test_a_tier_of_many_pages_is_not_its_first_pages() -> None:
    """40 pages, one suspected row each: 8 rows shown come from the whole
    list of pages, not its first 8."""
    audit = _suspected_and_confirmed(40)
    _, text = render_email(audit, lambda h, t: h.count("What to do:") <= 38)
    shown = [int(n) for kind, n in re.findall(r"\n  \* (\w+) (\d+)\n", text) if kind == "Suspected"]
    assert len(shown) == 8
    assert min(shown) < 10 and max(shown) >= 30 and len({n // 10 for n in shown}) == 4, shown


def test_every_line_of_a_problem_in_the_text_part_stands_alone() -> None:
    """The link, the fix and the advice each on their own line (a template tag
    at a line's end once swallowed its newline: "Link: ... New address: ...")."""
    audit = sample_audit()
    text = render_text(audit)
    lines = text.splitlines()
    link_lines = [line for line in lines if line.strip().startswith("Link: ")]
    assert link_lines and not [line for line in link_lines if "What to do" in line or "address:" in line]
    moved = next(i for i, line in enumerate(lines) if "pubmed/29713762" in line and "Link: " in line)
    assert lines[moved + 1].strip() == "New address: https://pubmed.ncbi.nlm.nih.gov/29713762/"
    assert lines[moved + 2].strip().startswith("What to do: ")


def test_nothing_to_report_reads_as_good_news() -> None:
    audit = audit_from([result("https://a.org/", "ok", "ok", title="Fine")],
                       [PageRecord(run_id=7, url=PAGE, status="ok")])
    assert "Nothing needs fixing this week." in render_html(audit)
    assert "Nothing needs fixing this week." in render_text(audit)


# -- JSON and saved files ------------------------------------------------------


def test_json_holds_the_whole_audit() -> None:
    audit = sample_audit()
    doc = json.loads(render_json(audit))
    assert doc["counts"]["checked"] == audit.counts.checked
    assert doc["counts"]["open"] == audit.counts.open
    assert len(doc["links"]) == len(audit.links)
    assert doc["needs_fixing"][0]["sections"][0]["entries"][0]["problems"][0]["link"]["status"] == "moved"
    assert doc["run"]["started_at"].startswith("2026-11-23T06:00")


def test_save_report_writes_dated_full_files_and_an_index(tmp_path: Path) -> None:
    big = synthetic_audit(2000, problem_every=3)
    old = audit_from([result("https://a.org/", "ok", "ok")], [PageRecord(run_id=3, url=PAGE, status="ok")],
                     run_id=3, when=NOW - dt.timedelta(days=14))
    save_report(old, tmp_path)
    saved = save_report(big, tmp_path)
    assert saved.html.name == "report-2026-11-23-run-9.html"
    assert saved.json.name == "report-2026-11-23-run-9.json"
    html = saved.html.read_text()
    assert "The newest problems" not in html  # the saved report is never summarised
    assert all(l.url.removeprefix("https://") in html for l in big.links)
    index = saved.index.read_text()
    assert index.index("report-2026-11-23-run-9.html") < index.index("report-2026-11-09-run-3.html")
    # the column counts links, as the report's "N links checked" does (the
    # terminal's "53 checked" counts URLs: the unit is named)
    assert ">Links checked</th>" in index
    assert json.loads(saved.json.read_text())["run"]["id"] == 9


# -- a real browser ------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html_file: Path, png: Path, profile: Path, size: str = "1000,1800") -> None:
    subprocess.run(
        chromium_args(profile) + [f"--screenshot={png}", f"--window-size={size}", html_file.as_uri()],
        check=True, capture_output=True, timeout=60,
    )


def chromium_args(profile: Path) -> list[str]:
    return [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}"]


def probed_dom(html: str, probe: str, tmp_path: Path, size: str = "1000,1200", *, fragment: str = "",
               budget_ms: int = 3000, timeout: float = 60) -> str:
    """The DOM Chromium dumps of `html` with `probe` (a script that writes
    what it measures into the DOM) put before </body>, opened at
    `#fragment` when given: the report itself runs no script."""
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", probe), encoding="utf-8")
    return subprocess.run(
        chromium_args(tmp_path / "profile") + [f"--window-size={size}", f"--virtual-time-budget={budget_ms}",
                                               "--dump-dom", page.as_uri() + (f"#{fragment}" if fragment else "")],
        check=True, capture_output=True, text=True, timeout=timeout).stdout


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("width", [390, 1000])
def test_no_sideways_scrolling_on_a_phone_or_desktop(tmp_path: Path, width: int) -> None:
    """Long URLs and the count boxes must wrap, not widen the page.

    The report itself has no script; a copy gets one that measures the
    layout and writes the result into the DOM, which chromium dumps.
    """
    overflow = sideways_overflow(render_html(sample_audit()), tmp_path, width)
    assert overflow is not None, "the probe did not run"
    assert overflow <= 0


def sideways_overflow(html: str, tmp_path: Path, width: int) -> int | None:
    """How many pixels wider than the window `html` lays out in Chromium
    (None when the probe did not run): a copy of the page gets a script that
    writes the measure into the DOM, which chromium dumps."""
    probe = ("<script>window.onload=function(){var d=document.documentElement;"
             "document.body.setAttribute('data-overflow', String(d.scrollWidth - d.clientWidth));}"
             "</script></body>")
    dom = probed_dom(html, probe, tmp_path, f"{width},1200")
    overflow = re.search(r'data-overflow="(-?\d+)"', dom)
    return None if overflow is None else int(overflow.group(1))


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("size", ["1000,1800", "390,1600"])  # desktop, phone
def test_chromium_renders_the_report(tmp_path: Path, size: str) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_audit()), encoding="ascii")
    png = tmp_path / "report.png"
    screenshot(page, png, tmp_path / "profile", size)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == tuple(int(v) for v in size.split(","))
    assert len(data) > 50_000  # a blank page compresses to a few KB


# -- the saved page, the JSON, the index at scale --------------------------------


def test_saved_page_keeps_its_style_block_and_every_link() -> None:
    audit = synthetic_audit(300, problem_every=4)
    page = render_page(audit)
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    assert ".card {" in style and "@media" in style  # CSS for a browser, not inlined
    assert 'style="' not in page and 'class="card ' in page
    assert "The newest problems" not in page and "Everything else" in page
    assert all(l.url in page for l in audit.links)
    assert "\u00a0\u00b7 " in page  # UTF-8, no character references needed


def test_saved_page_lists_what_asks_nothing_compactly() -> None:
    links = [result("https://ok.example/a", "ok", "ok", text="  Spaced   anchor  "),
             result("https://www.ok.example/b", "ok", "ok", text=""),
             result("mailto:ed@example.org", "skipped", "mailto", text=""),
             result("http://[bad/", "ok", "ok", text="Broken <b>")]
    page = render_page(audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok")]))
    listed = re.search(r'<div class="mini">\n(.*?)</div>', page, re.DOTALL)
    assert listed is not None
    assert listed.group(1) == (
        '&#10003;&nbsp;<a href="https://ok.example/a">Spaced anchor</a>\u00a0\u00b7 '
        '&#10003;&nbsp;<a href="https://www.ok.example/b">ok.example/b</a>\u00a0\u00b7 '
        "&ndash;&nbsp;mailto:ed@example.org (an email address)\u00a0\u00b7 "
        "&#10003;&nbsp;<span>http://[bad/</span>")


def _missing_images_audit(written: str = "/img/bg-missing.png") -> Audit:
    bg = "https://www.sclero.org/img/bg-missing.png"
    links = [
        result(bg, "expired", "http_404", text="", section="", kind=LinkKind.RESOURCE, days=9, strikes=3,
               line=1234, written=written, element="td", attribute="style"),
        result(bg, "expired", "http_404", text="", section="", kind=LinkKind.RESOURCE, days=9, strikes=3,
               line=1290, written=written, element="td", attribute="style"),
        result("https://pubmed.ncbi.nlm.nih.gov/1/", "expired", "http_404", title="A trial", days=9,
               strikes=3, line=40, element="a", attribute="href"),
        result("https://www.sclero.org/css/gone.css", "expired", "http_404", text="", section="",
               kind=LinkKind.RESOURCE, days=9, strikes=3, line=12, written="../css/gone.css",
               element="style", attribute="@import"),
    ]
    return audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok")])


def test_a_problem_says_where_it_sits_in_the_page_source() -> None:
    """The editor searching the source for the absolute URL of an image written
    '/img/bg-missing.png' finds nothing: the row gives line, href and element."""
    audit = _missing_images_audit()
    for html in (render_page(audit), render_html(audit).replace("&#183;", "&middot;")):
        assert ('lines 1234, 1290 &middot; written as <code>/img/bg-missing.png</code> &middot; '
                'in the style attribute of a &lt;td&gt;') in html
        assert ">line 40</span>" in html
        assert ("line 12 &middot; written as <code>../css/gone.css</code> &middot; "
                "in an @import of a &lt;style&gt; block") in html
    text = render_text(audit)
    assert "lines 1234, 1290 \u00b7 written as /img/bg-missing.png \u00b7 in the style attribute of a <td>\n" in text
    assert "\n    Link: https://pubmed.ncbi.nlm.nih.gov/1/\n      line 40\n" in text


def test_the_href_as_written_is_inert_and_clipped() -> None:
    audit = _missing_images_audit(written=XSS + "x" * 300)
    html = render_page(audit)
    assert "<script" not in html and not [t for t, _ in tags_of(html) if t in ("script", "img")]
    (title, code), = set(re.findall(r'written as <code title="([^"]*)">(.*?)</code> &middot; in the style',
                                    html))
    assert code.startswith("&lt;script&gt;") and code.endswith("\u2026")
    # hovering the clipped href shows it whole (review 15 #6), inert too
    assert title == render._escape(XSS + "x" * 300)
    assert len(re.findall(r"written as (.*?) \u00b7", render_text(audit))[0]) == render.WRITTEN_CLIP


BACK = "https://pubmed.ncbi.nlm.nih.gov/31197643/"
RETRACTED_URL = "https://pubmed.ncbi.nlm.nih.gov/29470812/"
MARKED_URL = "https://pubmed.ncbi.nlm.nih.gov/30123456/"


def _placed_rows_audit(back: str = "/pubmed/31197643", retracted: str = "/pubmed/29470812") -> Audit:
    """A link fixed since the last report (two copies then, elsewhere now), a
    retracted article and a stale "(Expired Article)" mark: rows of the other
    groups, each about one link of the page. `back` and `retracted` are how
    the page wrote the first two."""
    entry = {"title": "Physical therapy in adult inflammatory myopathy patients",
             "section": "Combination Therapies"}
    previous = [result(BACK, "error", "http_503", days=9, strikes=3, line=line, written=back,
                       element="a", attribute="href", **entry) for line in (70, 71)]  # type: ignore[arg-type]
    links = [result(BACK, "ok", "ok", line=140, element="a", attribute="href", **entry),  # type: ignore[arg-type]
             result(RETRACTED_URL, "ok", "ok", title="Oral treprostinil reduces digital ulcer healing time",
                    source="PubMed.", notice="retracted", line=90, written=retracted, element="a",
                    attribute="href"),
             result(MARKED_URL, "ok", "ok", title="Selexipag for Raynaud's phenomenon", source="PubMed.",
                    expired_mark=True, line=92, element="area", attribute="href")]
    return audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok")], previous=previous)


def _mail_parts(audit: Audit) -> tuple[str, str]:
    msg = build_report_message(audit, sender="m@example.org", recipients=["w@example.org"],
                               message_id="<x@example.org>")
    return msg.get_body(("html",)).get_content(), msg.get_body(("plain",)).get_content()


def test_fixed_and_content_rows_say_where_their_link_sits() -> None:
    """A fixed link where the last report saw it (each copy), a content
    note's link where it is: the same quiet line as a problem's."""
    audit = _placed_rows_audit()
    mail_html, mail_text = _mail_parts(audit)
    for html in (render_page(audit), mail_html.replace("&#183;", "&middot;")):
        fixed = html[html.index("Fixed since the last report"):html.index("Content audit")]
        assert "lines 70, 71 &middot; written as <code>/pubmed/31197643</code></span>" in fixed
        content = html[html.index("Content audit"):]
        for url, place in ((RETRACTED_URL, "line 90 &middot; written as <code>/pubmed/29470812</code>"),
                           (MARKED_URL, "line 92 &middot; in the href of an &lt;area&gt;")):
            assert re.search(rf'Link: <a\s[^>]*>{re.escape(url[8:])}</a></span><br>'
                             rf'<span[^>]*>{re.escape(place)}</span>', content), url
    for text in (render_text(audit), mail_text):
        assert re.search(rf"\n    Was: [^\n]*\({re.escape(BACK)}\)\n"
                         "      lines 70, 71 \u00b7 written as /pubmed/31197643\n", text)
        assert (f"\n    Link: {RETRACTED_URL}\n      line 90 \u00b7 written as /pubmed/29470812\n"
                f"    Open the entry on the page: ") in text
        assert f"\n    Link: {MARKED_URL}\n      line 92 \u00b7 in the href of an <area>\n" in text
    summary = render_html(audit, max_bytes=1).replace("&#183;", "&middot;")
    assert "The newest problems" in summary
    assert "line 90 &middot; written as <code>/pubmed/29470812</code>" in summary


def test_a_fixed_or_content_row_s_href_as_written_is_inert_and_clipped() -> None:
    audit = _placed_rows_audit(back=XSS + "b" * 300, retracted=XSS + "r" * 300)
    mail_html, mail_text = _mail_parts(audit)
    for html in (render_page(audit), mail_html.replace("&#8230;", "\u2026")):  # the mail's HTML is ASCII
        assert "<script" not in html and not [t for t, _ in tags_of(html) if t in ("script", "img")]
        titles, codes = zip(*re.findall(r'written as <code title="([^"]*)">(.*?)</code>', html))
        assert len(codes) == 2 and all(c.startswith("&lt;script&gt;alert(1)") for c in codes)
        assert [c[-2:] for c in codes] == ["b\u2026", "r\u2026"]
        assert [render._escape(unescape(t)) for t in titles] == [
            render._escape(XSS + "b" * 300), render._escape(XSS + "r" * 300)]
    for text in (render_text(audit), mail_text):
        written = re.findall(r"written as (.*)\n", text)
        assert [len(w) for w in written] == [render.WRITTEN_CLIP] * 2
        assert [w[-2:] for w in written] == ["b\u2026", "r\u2026"]


def test_working_resources_of_one_host_are_told_apart_by_their_file() -> None:
    """Two images of one host read "✓ css.example.org · ✓ css.example.org"."""
    links = [result("https://css.example.org/img/ok.png", "ok", "ok", text="", kind=LinkKind.RESOURCE),
             result("https://css.example.org/style/site.css?v=2", "ok", "ok", text="", kind=LinkKind.RESOURCE),
             result("https://www.css.example.org/", "ok", "ok", text="", kind=LinkKind.RESOURCE)]
    html = str(render._other_links(links))
    assert re.findall(r">([^<]*)</a>", html) == ["css.example.org/img/ok.png",
                                                 "css.example.org/style/site.css?v=2", "css.example.org"]


@pytest.mark.parametrize(("url", "label"), [
    ("https://www.sclero.org/", "sclero.org"),
    ("https://www.sclero.org/img/bg.png", "sclero.org/img/bg.png"),
    ("http://x.org/a?b=1", "x.org/a?b=1"),
    ("mailto:ed@example.org", ""),
    ("http://[bad/", ""),
])
def test_bare_url_names_a_file_without_the_scheme(url: str, label: str) -> None:
    assert wording.bare_url(url) == label


def test_bare_url_cuts_a_long_path_in_the_middle_keeping_the_file_name() -> None:
    label = wording.bare_url("https://x.org/" + "d/" * 60 + "end.png")
    assert len(label) == 60 and label.startswith("x.org/d/") and label.endswith("/end.png")
    assert label.count("\u2026") == 1


@pytest.mark.parametrize("text", [XSS, "a & b", "it's \"quoted\""])
def test_compact_list_escapes_like_the_template(text: str) -> None:
    links = [result("https://ok.example/?a=1&b=" + text, "ok", "ok", text=text),
             result("mailto:" + text, "skipped", text, text="")]
    audit = audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok")])
    env = render._ENV
    expected = env.from_string(
        "{% for l in links %}{% if l.status == Status.OK %}&#10003;&nbsp;{{ link(l.url, l.text|clip(50) "
        "if l.text else l.url|bare_url) }}{% else %}&ndash;&nbsp;{{ l.text|clip(40) if l.text else "
        "l.url|clip(40) }} ({{ l.reason|skip_words }}){% endif %}{{ '\u00a0\u00b7 ' if not loop.last }}"
        "{% endfor %}").render(links=audit.everything_else[0].links)
    assert str(render._other_links(audit.everything_else[0].links)) == expected
    assert "<script" not in expected


@pytest.mark.parametrize("audit_of", [hostile_audit, sample_audit])
def test_web_data_is_inert_in_the_saved_page(audit_of) -> None:  # type: ignore[no-untyped-def]
    page = render_page(audit_of())
    tags = tags_of(page)
    assert not [t for t, _ in tags if t in ("script", "img", "iframe", "object", "embed", "link")]
    for tag, attrs in tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if "href" in attrs:
            assert is_web_url(attrs["href"]) or our_own_href(attrs["href"]), attrs["href"]


def test_no_mail_rendering_is_smaller_than_its_problems_allow() -> None:
    """PROBLEM_MIN_BYTES lets big audits skip the full and compact mail renderings:
    it must stay below what the smallest problem takes in the mail."""
    def mail_bytes(n: int, **kw: object) -> int:
        links = [result(f"http://a.b/{i}", section="", **kw) for i in range(n)]  # type: ignore[arg-type]
        audit = audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok")])
        assert len(audit.problems) == n
        return len(render_html(audit, max_bytes=None).encode())

    for status, reason in [("moved", "permanent_redirect"), ("expired", "http_404"),
                           ("blocked", "http_403"), ("drifted", "title_mismatch"), ("error", "timeout")]:
        for title in ("", "One entry for all"):
            kw = {"status": status, "reason": reason, "title": title, "text": "", "days": 3, "strikes": 5}
            per_problem = (mail_bytes(40, **kw) - mail_bytes(10, **kw)) / 30
            assert per_problem > PROBLEM_MIN_BYTES, (status, title, per_problem)


def test_a_mail_that_cannot_hold_every_problem_starts_with_the_summary() -> None:
    audit = synthetic_audit(3000, problem_every=5)
    assert len(audit.problems) * PROBLEM_MIN_BYTES > MAX_EMAIL_BYTES
    tried: list[str] = []

    def fits(html: str, text: str) -> bool:
        tried.append(html)
        return len(html.encode()) + len(text.encode()) <= MAX_EMAIL_BYTES

    html, _ = render_email(audit, fits)
    assert tried and all("The newest problems" in h for h in tried)
    assert html in tried and fits(html, _)

    small = synthetic_audit(40, problem_every=5)
    tried.clear()
    render_email(small, fits)
    assert len(tried) == 1 and "The newest problems" not in tried[0]


def test_a_summary_shows_as_many_problems_as_the_budget_holds() -> None:
    """The summary's size was one of three tiers (60, 25, 10 rows): at 10,000
    problems 60 did not fit, so 25 did, at 59 KB of 100 (walkthrough 11 #5:
    40 rows were 91 KB). Now the most rows that fit, found in a few tries."""
    audit = synthetic_audit(3000, problem_every=5)
    tries: list[tuple[int, bool]] = []
    where = "https://reports.example.org/report-2026-11-23-run-9.html"

    def fits(html: str, text: str) -> bool:
        size = len(build_message(audit, html, text, sender="m@example.org", recipients=["w@example.org"],
                                 message_id="<x@example.org>").as_bytes())
        tries.append((html.count("What to do:"), size <= MAX_EMAIL_BYTES))
        return tries[-1][1]

    html, _ = render_email(audit, fits, full_report=where)
    shown = html.count("What to do:")
    assert shown > 25
    assert (shown, True) in tries and (shown + 1, False) in tries, tries
    assert not [n for n, ok in tries if ok and n > shown], tries
    assert len(tries) <= 6, tries
    msg = build_report_message(audit, sender="m@example.org", recipients=["w@example.org"],
                               message_id="<x@example.org>", full_report=where)
    assert len(msg.as_bytes()) <= MAX_EMAIL_BYTES
    assert msg.get_body(("html",)).get_content().count("What to do:") == shown


def _rows(sizes: list[int], base: int, goal: int) -> tuple[Callable[[int], tuple[bool, int]], list[int]]:
    """A probe over rows of `sizes` bytes after `base`, fitting up to `goal`; and its log of tries."""
    log: list[int] = []

    def probe(n: int) -> tuple[bool, int]:
        log.append(n)
        size = base + sum(sizes[:n])
        return size <= goal, size

    return probe, log


@pytest.mark.parametrize("sizes, base, goal", [
    ([2000] * 9931, 12_000, 99_000),                       # even rows: the big site
    ([3000] * 20 + [1500] * 9911, 12_000, 99_000),         # big rows first (moved, with their fix)
    ([800] * 30 + [4000] * 9901, 12_000, 99_000),          # small rows first: the guess overshoots
    ([(i * 7919) % 3000 + 600 for i in range(9931)], 12_000, 99_000),  # uneven
    ([2000] * 10, 12_000, 99_000),                         # every row fits
    ([2000] * 9931, 12_000, 13_000),                       # none fits but the counts
    ([2000] * 9931, 12_000, 11_000),                       # not even the counts
    ([50_000] + [100] * 300, 1_000, 99_000),               # one huge row first
    ([2000] * 3, 12_000, 14_100),                          # a cap below the first probe
])
def test_the_most_rows_that_fit_are_found_in_few_tries(sizes: list[int], base: int, goal: int) -> None:
    cap = min(len(sizes), MAX_EMAIL_BYTES // PROBLEM_MIN_BYTES)
    probe, log = _rows(sizes, base, goal)
    found = render._most_that_fit(probe, cap, MAX_EMAIL_BYTES - render.MIME_OVERHEAD)
    fitting = [n for n in range(cap + 1) if base + sum(sizes[:n]) <= goal]
    assert found == (max(fitting) if fitting else None)
    assert len(log) <= 2 + render.GUESSES + math.ceil(math.log2(cap + 1)), log


def test_json_writes_each_link_once_and_counts_the_rest_per_page() -> None:
    audit = sample_audit()
    text = render_json(audit)
    doc = json.loads(text)
    assert (doc["format"], doc["version"]) == ("citation-monitor-audit", 2)
    assert text.index('"counts":') < 1000  # where the index looks for it
    (other,) = doc["everything_else"]
    assert other["url"] == PAGE
    assert other["counts"] == {"ok": 5, "not_checked": 1}
    assert [l["url"] for l in doc["links"]] == [l.url for l in audit.links]
    assert doc["links"][0]["failing_since"] is None and doc["links"][2]["entry_date"] is None
    assert doc["links"][0]["kind"] == "citation" and doc["links"][0]["checked_at"] == NOW.isoformat()


@pytest.mark.skipif(render.orjson is None, reason="orjson is not installed")
@pytest.mark.parametrize("audit_of", [sample_audit, hostile_audit, lambda: synthetic_audit(500)])
def test_json_is_the_same_with_or_without_orjson(audit_of, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    audit = audit_of()
    fast = render_json(audit)
    monkeypatch.setattr(render, "orjson", None)
    assert render_json(audit) == fast


@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "standard-library"])
def test_the_saved_json_is_render_json_in_utf8(fast: bool, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The saved file is written from the encoder's bytes (not decoded and
    encoded again): the same document, non-ASCII text as UTF-8, not escaped."""
    if not fast:
        monkeypatch.setattr(render, "orjson", None)
    title = "Sclérodermie \u2014 \u201cétude\u201d \u2026 \U0001f600"
    audit = audit_from([result("https://a.org/\u00e9", "expired", "http_404", title=title, text=title),
                        result("https://b.org/", "ok", "ok", text=title)],
                       [PageRecord(run_id=7, url=PAGE, status="ok", title=title)])
    saved = save_report(audit, tmp_path)
    assert saved.json.read_bytes() == render_json(audit).encode("utf-8")
    assert title.encode("utf-8") in saved.json.read_bytes()


def test_json_of_text_orjson_refuses_falls_back_to_the_standard_library() -> None:
    audit = audit_from([result("https://a.org/", "ok", "ok", detail="Lone \ud800")],
                       [PageRecord(run_id=7, url=PAGE, status="ok")])
    doc = json.loads(render_json(audit))
    assert doc["links"][0]["detail"] == "Lone \ud800"


def test_json_links_are_written_in_chunks_that_join_into_one_list(monkeypatch: pytest.MonkeyPatch) -> None:
    audit = synthetic_audit(25)
    monkeypatch.setattr(render, "JSON_LINKS_PER_CHUNK", 7)
    doc = json.loads(render_json(audit))
    assert [l["url"] for l in doc["links"]] == [l.url for l in audit.links]


def test_index_reads_only_the_head_of_each_saved_report(tmp_path: Path) -> None:
    saved = save_report(sample_audit(), tmp_path)
    head = saved.json.read_text()[:2000]
    saved.json.write_text(head + "... the rest is not JSON at all")
    # a report saved by the first version (indented), and one whose JSON is gone
    old = tmp_path / "report-2026-11-09-run-5.json"
    old.write_text(json.dumps({"format": "citation-monitor-audit", "version": 1, "site": "s",
                               "run": {"id": 5}, "counts": {"checked": 41, "new": 2, "still": 3,
                                                            "fixed": 1}, "links": []}, indent=1))
    old.with_suffix(".html").write_text("<html></html>")
    (tmp_path / "report-2026-11-02-run-4.html").write_text("<html></html>")
    index = render_index(tmp_path, site="www.sclero.org")
    rows = list(dict.fromkeys(re.findall(r'<a href="(report-[^"]+\.html)"', index)))  # the summary links the latest too
    assert rows == ["report-2026-11-23-run-7.html", "report-2026-11-09-run-5.html",
                    "report-2026-11-02-run-4.html"]
    cells = re.findall(r'<td class="num[^"]*"[^>]*>([^<]*)</td>', index)  # "num opt": a phone drops it
    c = sample_audit().counts
    assert cells[:5] == [str(c.checked), str(c.new), str(c.still), str(c.fixed), str(c.content)]
    assert cells[5:10] == ["41", "2", "3", "1", ""]  # version 1 had no content count
    assert cells[10:] == ["", "", "", "", ""]
    # the time of day tells apart two audits of one date
    started = sample_audit().run.started_at.astimezone(dt.timezone.utc)
    assert re.findall(r'</a> <span[^>]*>(\d\d:\d\d UTC)</span>', index) == [f"{started:%H:%M} UTC"]


def test_a_check_of_some_pages_says_so_in_its_report_and_the_index(tmp_path: Path) -> None:
    """`monitor check --page` makes a partial run: its report, mail parts and
    row in the index must not pass for the weekly audit of the whole site."""
    weekly = sample_audit()
    partial = replace(weekly, run=replace(weekly.run, id=8, partial=True))
    save_report(weekly, tmp_path)
    index = save_report(partial, tmp_path).index.read_text(encoding="utf-8")
    runs = re.findall(r'run-\d+\.html"[^>]*>[^<]*</a>(?: <span[^>]*>[^<]*</span>)?</td>\s*<td[^>]*>(\d+)(.*?)</td>',
                      index)
    assert sorted(runs) == [("7", ""), ("8", ' <span title="monitor check --page: not every watched page">'
                                            "(some pages)</span>")]
    for audit, marked in ((weekly, False), (partial, True)):
        html, text = render_html(audit), render_text(audit)
        assert ("LINK CHECK OF SOME PAGES" in html) is marked and ("WEEKLY LINK AUDIT" in html) is not marked
        assert (wording.PARTIAL_RUN in text) is marked and text.startswith("LINK CHECK OF SOME PAGES") is marked
        assert subject_for(audit).startswith("Link check of some pages for ") is marked


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("width", [390, 1000])
def test_the_saved_page_has_no_sideways_scrolling(tmp_path: Path, width: int) -> None:
    overflow = sideways_overflow(render_page(synthetic_audit(200, problem_every=3)), tmp_path, width)
    assert overflow is not None, "the probe did not run"
    assert overflow <= 0



def test_a_suspected_failure_says_how_often_it_failed_in_both_parts() -> None:
    """A 404 that failed three checks within hours is not "failed once so far"."""
    links = [result("https://journal.example/a", "expired", "http_404", title="An article",
                    days=0.1, strikes=3, http_status=404)]
    audit = audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok", title="Treatments")])
    for text in (render_html(audit), render_text(audit)):
        assert "suspected: failed 3 checks in a row, over less than a day so far" in text
        assert "failed once" not in text


@pytest.mark.parametrize(
    ("kind", "url", "title_line", "page_link"),
    [
        (LinkKind.NAVIGATION, "https://www.sclero.org/about/news/a-to-z.html",
         "* ISN News (navigation link)", "Find the link on the page"),
        (LinkKind.RESOURCE, "https://www.sclero.org/images/hand.png",
         "* ISN News (image the page loads)", "Open the page"),
        (LinkKind.CITATION, "https://example.org/article", "* ISN News\n", "Open the entry on the page"),
    ],
)
def test_a_menu_link_or_an_image_says_what_it_is_in_both_parts(
        kind: LinkKind, url: str, title_line: str, page_link: str) -> None:
    """"ISN News" in bold read as an entry's title; its page link said "Open the entry"."""
    title = "ISN News" if kind == LinkKind.CITATION else ""
    links = [result(url, "expired", "http_404", kind=kind, section="", title=title, text="ISN News",
                    days=10, strikes=5)]
    audit = audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok", title="DM")])
    text, page = render_text(audit), render_page(audit)
    assert title_line in text
    assert page_link in page
    assert ("Open the entry on the page" in page) is (kind == LinkKind.CITATION)


def test_the_private_address_is_not_among_the_sites_that_refuse_robots() -> None:
    links = [result("http://192.168.1.20/intranet/protocol.pdf", "blocked", "private_address",
                    title="Raynaud's Treatment Protocol", days=10, strikes=5)]
    audit = audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok", title="DM")])
    text = render_text(audit)
    assert "NEEDS A PERSON" not in text and "refuse automated checks" not in text
    assert "readers outside that network cannot open it" in text
    assert "Link a public copy of the document instead, or remove the link." in text


def test_a_private_address_wears_its_own_badge_and_is_counted_apart_from_the_blocked() -> None:
    """Review 15 #2: BLOCKED meant "open it in a browser, nothing to do" under
    Needs a person and "fix this link" under Needs fixing, and "4 blocked"
    sat above "3 Needs a person". The JSON keeps the contract's status."""
    links = [result("http://192.168.1.20/intranet/protocol.pdf", "blocked", "private_address",
                    title="Raynaud's Treatment Protocol", days=10, strikes=5),
             result("https://www.linkedin.com/pulse/scleroderma", "blocked", "http_999",
                    title="A LinkedIn post on scleroderma", days=10, strikes=5),
             result("https://academic.oup.com/rheumatology/article/57/3/410/4622921", "blocked",
                    "bot_challenge", title="An OUP article behind a bot wall", days=10, strikes=5)]
    audit = audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok", title="DM")])
    assert (audit.counts.blocked, audit.counts.private_address) == (3, 1)
    text = render_text(audit)
    fixing, person = text.split("NEEDS A PERSON")[0], text.split("NEEDS A PERSON")[1]
    assert "[PRIVATE ADDRESS, NEW] " in fixing and "[BLOCKED" not in fixing
    assert person.count("[BLOCKED, NEW] ") == 2 and "PRIVATE ADDRESS" not in person
    assert ", 0 error, 2 blocked, 1 private address, 0 drifted." in text
    for html in (render_page(audit), render_html(audit)):
        plain = re.sub(r"<[^>]+>", "", html).replace("&middot;", "\u00b7").replace("&#183;", "\u00b7")
        assert "2 blocked \u00b7 1 private address \u00b7 0 drifted" in plain
        badges = re.findall(r"<span[^>]*>(BLOCKED|PRIVATE ADDRESS)</span>", html)
        assert sorted(badges) == ["BLOCKED", "BLOCKED", "PRIVATE ADDRESS"], badges
    # its card's edge is the badge's colour, not BLOCKED's purple (verify 15 R3)
    assert render_page(audit).count('<div class="card private">') == 1
    mail = render_html(audit)
    assert mail.count("border-left:5px solid #9f1239") == 1 and mail.count("border-left:5px solid #6d28d9") == 2
    data = json.loads(render_json(audit))
    assert sorted(l["status"] for l in data["links"]) == ["blocked"] * 3  # the contract's status stays
    assert (data["counts"]["blocked"], data["counts"]["private_address"]) == (3, 1)


def test_the_quick_wins_are_said_under_the_counts() -> None:
    audit = sample_audit()
    sentence = wording.fix_order(*audit.fix_kinds())
    assert sentence.startswith(f"Of the {audit.fixing_count} to fix: ")
    assert sentence in render_html(audit) and f"\n{sentence}\n" in render_text(audit)


# -- walkthrough 8: what an editor needs on the row, and a way around the page --

DRIFT_DETAIL = ("The page's title is now 'Serum ferritin as a marker of disease activity " + XSS
                + "', not the cited 'Corticosteroid-sparing (CS) benefit'.")


def _drift_audit() -> Audit:
    links = [result("https://pubmed.ncbi.nlm.nih.gov/31770613/", "drifted", "title_mismatch",
                    title="Corticosteroid-sparing (CS) benefit", detail=DRIFT_DETAIL + "\n\x1b[31m"),
             result("https://pubmed.ncbi.nlm.nih.gov/29470812/", "ok", "ok", text="Oral treprostinil",
                    notice="retracted", notice_detail="Retracted: see the notice."),
             result("https://pubmed.ncbi.nlm.nih.gov/30123456/", "ok", "ok", text="Selexipag")]
    return audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM")])


@pytest.mark.parametrize("part", ["page", "html", "text"])
def test_a_drifted_row_quotes_what_the_page_shows_now(part: str) -> None:
    """Finding 5: "The page now shows a different article" alone made the
    editor open the link to learn what the check knew; the detail is shown
    on one line (no control character), escaped."""
    audit = _drift_audit()
    html, text = render_email(audit, lambda h, t: True)
    out = {"page": render_page(audit), "html": html, "text": text}[part]
    shown = wording.upfirst(DRIFT_DETAIL)
    if part == "text":
        assert shown in text and "\x1b" not in text
    else:
        assert "Serum ferritin as a marker of disease activity &lt;script&gt;" in out
        assert "<script" not in out.lower()


def test_a_retracted_article_wears_the_notice_mark_not_the_tick() -> None:
    """Finding 17: "✓ Oral treprostinil..." in "Everything else" read as all well."""
    for out in (render_page(_drift_audit()), render_html(_drift_audit())):
        items = re.findall(r"(&#10003;|\u2713|&#9888;|\u26a0)(?:&nbsp;|\xa0)?(?:<span[^>]*>)?([^<]*)</span>"
                           r"(?:&nbsp;|\xa0)?<a [^>]*>([^<]*)</a>|(&#10003;|\u2713)(?:&nbsp;|\xa0)<a [^>]*>([^<]*)</a>", out)
        ticked = {m[4] for m in items if m[3]}
        marked = {m[2] for m in items if m[0]}
        assert "Selexipag" in ticked and "Oral treprostinil" not in ticked
        assert "Oral treprostinil" in marked


FAILED_PAGE = "https://www.sclero.org/scleroderma/treatments/raynauds/a-to-z.html"


@pytest.mark.parametrize("http_status, error, why", [
    (503, "HTTP 503: the site had a server error (often temporary)", "the site had a server error (HTTP 503)"),
    (404, "HTTP 404: the page is not at this address",
     "the page is not at this address (HTTP 404): it was moved or renamed, or its address"),
    (None, "the server could not be reached (connection refused)",
     "the server could not be reached (connection refused)"),
    (None, "timed out after 30 s " + XSS, "timed out after 30 s &lt;script&gt;"),
])
def test_a_page_that_could_not_be_fetched_says_why_once(http_status: int | None, error: str, why: str) -> None:
    """Finding 9: the banner names each page and why; the rows carried from
    the last report no longer each say "Not checked again this week" (once
    per page heading instead), and the failed page is no content note."""
    previous = [result(f"https://gone.example/{i}", "expired", "http_404", page=FAILED_PAGE,
                       title=f"Entry {i}", days=9, strikes=3) for i in range(3)]
    pages = [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM"),
             PageRecord(run_id=7, url=FAILED_PAGE, status="error", http_status=http_status, error=error,
                        name="Raynaud's treatments")]
    ok = [result("https://pubmed.ncbi.nlm.nih.gov/1/", "ok", "ok", title="Fine", source="PubMed.")]
    audit = audit_from(ok, pages, previous=previous)
    assert len(audit.problems) == 3 and audit.content_audit.pages_failed  # as built by audit.py
    html, text = render_email(audit, lambda h, t: True)
    for out in (render_page(audit), html):
        banner = out[out.index('id="not-fetched"'):]
        banner = banner[:banner.index("</td>")].replace("&#39;", "'")  # css-inline writes "'"
        assert ">Raynaud's treatments</a>: " + why in banner, banner
        assert out.count(wording.NOT_RECHECKED) == 1  # in PAGE_NOT_RECHECKED, under the page's heading
        assert re.search(r'class="num"[^>]*>0</div> Content notes', out.replace("\n", ""))
        assert "Pages that could not be fetched" not in out
    assert f"Raynaud's treatments: {why.replace('&lt;script&gt;', '<script>')}" in text
    assert text.count(wording.NOT_RECHECKED) == 1 and "Content notes: 0" in text


def test_tiles_and_the_headline_link_to_their_groups() -> None:
    """Finding 14: on a ~9,000 px page the tiles and the headline's
    "see “Cited articles that were retracted”" lead to their groups."""
    links = list(sample_audit().links) + [
        result("https://pubmed.ncbi.nlm.nih.gov/29470812/", "ok", "ok", title="Oral treprostinil",
               section="Vasodilators", notice="retracted", notice_detail="Retracted.")]
    previous = [l for l in sample_audit().links if l.status not in ("ok", "skipped")] + [
        result("https://www.ncbi.nlm.nih.gov/pubmed/31770613", "expired", "http_404", title="Gone",
               checked_at=NOW - dt.timedelta(days=7))]
    audit = audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM")],
                       previous=previous)
    for out in (render_page(audit), render_html(audit)):
        ids = {attrs["id"] for _, attrs in tags_of(out) if attrs.get("id")}
        jumps = [attrs["href"] for _, attrs in tags_of(out) if (attrs.get("href") or "").startswith("#")]
        assert jumps and all(href[1:] in ids for href in jumps)
        assert {"#needs-fixing", "#needs-a-person", "#content"} <= set(jumps)
    out = render_page(audit)
    assert re.search(r'see <a href="#content-retracted"[^>]*>\u201cCited articles that were retracted'
                     r'\u201d</a>', out.replace("&#8220;", "\u201c").replace("&#8221;", "\u201d"))


def test_the_mails_headline_names_the_retracted_group_without_an_in_page_link() -> None:
    """Walkthrough 10 #11: several webmail clients drop in-page anchors, so
    the headline's "see “Cited articles that were retracted”" read as a dead
    link there. In the mail the words say where the group is, with no link;
    the saved report, read in a browser, keeps the jump."""
    links = list(sample_audit().links) + [
        result("https://pubmed.ncbi.nlm.nih.gov/29470812/", "ok", "ok", title="Oral treprostinil",
               section="Vasodilators", notice="retracted", notice_detail="Retracted.")]
    audit = audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM")])
    html, _ = render_email(audit, lambda h, t: True)
    for out in (html, render_html(audit)):
        headline = out[out.index('id="top"'):]
        headline = headline[:headline.index("</p>")].replace("&#8220;", "\u201c").replace("&#8221;", "\u201d")
        assert "<a " not in headline
        assert "see \u201cCited articles that were retracted\u201d below." in headline
        assert 'href="#content-retracted"' not in out

    # the text part of the same message says it as the HTML part (review 15 #5)
    _, text = render_email(audit, lambda h, t: True)
    assert "see \u201cCited articles that were retracted\u201d below.\n" in text
    assert "see \u201cCited articles that were retracted\u201d below." in render_text(audit)


def test_the_saved_report_links_all_reports_and_the_one_it_is_compared_with(tmp_path: Path) -> None:
    """Finding 14: the saved report links index.html and the report it is
    compared with (relative: they share the folder); a mail only with
    `[report] base_url` (a relative link in a mail is dead)."""
    week1 = audit_from(sample_audit().links, [PageRecord(run_id=6, url=PAGE, status="ok")], run_id=6,
                       when=NOW - dt.timedelta(days=7))
    week2 = sample_audit()  # run 7, compared with run 6
    first = save_report(week1, tmp_path)
    saved = save_report(week2, tmp_path)
    hrefs = {attrs.get("href") for _, attrs in tags_of(saved.html.read_text(encoding="utf-8"))}
    assert "index.html" in hrefs and first.html.name in hrefs
    assert "index.html" in {attrs.get("href") for _, attrs in tags_of(first.html.read_text(encoding="utf-8"))}
    elsewhere = save_report(week2, tmp_path / "out")  # run 6's report is not there: no dead link
    hrefs = {attrs.get("href") for _, attrs in tags_of(elsewhere.html.read_text(encoding="utf-8"))}
    assert "index.html" in hrefs and first.html.name not in hrefs
    base = "https://www.sclero.org/link-audits/"
    for where, expected in ((base + saved.html.name, {base + "index.html", base + first.html.name}),
                            (str(saved.html), set())):
        html, text = render_email(week2, lambda h, t: True, full_report=where)
        hrefs = {attrs.get("href") for _, attrs in tags_of(html)}
        assert {h for h in hrefs if h and "index.html" in h or h and "run-6" in h} == expected
        assert all(url in text for url in expected)


# -- a watched page whose configured address redirects (walkthrough 8, finding 16) ----------

MOVED_PAGE = "https://www.sclero.org/scleroderma/raynauds.html"
MOVED_NOTE = "address in the monitor\u2019s configuration redirects to"


def _moved_audit(new: str) -> Audit:
    """PAGE with a problem (a heading under "Needs fixing" and one under
    "Everything else"), MOVED_PAGE with only ok links (its heading only under
    "Everything else"), MOVED_PAGE's configured address redirecting to `new`."""
    links = [result("https://gone.example/1", "expired", "http_404", title="Gone", days=9, strikes=3),
             result("https://pubmed.ncbi.nlm.nih.gov/1/", "ok", "ok", title="Fine"),
             result("https://pubmed.ncbi.nlm.nih.gov/2/", "ok", "ok", title="Fine too", page=MOVED_PAGE)]
    pages = [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM"),
             PageRecord(run_id=7, url=MOVED_PAGE, status="ok", title="Raynaud's", moved_to=new)]
    return audit_from(links, pages)


def _unescaped(html: str) -> str:
    return html.replace("&rsquo;", "\u2019").replace("&#8217;", "\u2019").replace("&#39;", "'")


def test_a_page_whose_address_redirects_says_so_under_its_title() -> None:
    """Was: the monitor followed the page's 301 silently (the same redirect
    on a cited link is "moved"); the day the old address stops redirecting
    the page fails. Said once, under that page's title only."""
    new = "https://www.sclero.org/raynauds/index.html"
    audit = _moved_audit(new)
    html, text = render_email(audit, lambda h, t: True)
    for out in (render_page(audit), html):
        out = _unescaped(out)
        assert out.count(MOVED_NOTE) == 1, out
        heading = out[out.index(">Raynaud's</a></h3>"):]  # its title, a heading
        assert heading.index(MOVED_NOTE) < heading.index("</td>")  # under its title, not another page's
        assert f'redirects to <a href="{new}"' in heading and ">DM/PM</a>" not in heading[:heading.index("</td>")]
        assert 'id="moved-pages"' not in out  # it has a heading: no separate line
    assert text.count(f"This page's address in the monitor's configuration redirects to {new}: update it.") == 1
    assert text.index("Raynaud's (") < text.index(MOVED_NOTE.replace("\u2019", "'"))
    unmoved = _moved_audit("")
    assert MOVED_NOTE not in _unescaped(render_page(unmoved)) and "redirects to" not in render_text(unmoved)


def test_a_page_that_redirects_is_said_when_no_heading_shows_it() -> None:
    """A mail cut down to the newest problems shows no page headings: the
    moved page gets its own quiet line. An owner's mail says nothing: the
    configuration is the webmaster's, not the editor's."""
    from reports.audit import audit_for_pages

    new = "https://www.sclero.org/raynauds/index.html"
    audit = _moved_audit(new)
    summary = _unescaped(render_html(audit, max_bytes=3000))
    assert "The newest problems" in summary
    line = summary[summary.index('id="moved-pages"'):]
    assert ">Raynaud's</a>: this page\u2019s " + MOVED_NOTE in line[:line.index("</td>")]
    assert summary.count(MOVED_NOTE) == 1
    owner = audit_for_pages(audit, [MOVED_PAGE], "editor@sclero.org")
    html, text = render_email(owner, lambda h, t: True)
    assert MOVED_NOTE not in _unescaped(html) and "redirects to" not in text
    assert ">Raynaud's</a>" in _unescaped(html)  # the page is in it, without the note


@pytest.mark.parametrize("max_bytes", [None, 3000])
def test_a_hostile_redirect_target_is_inert(max_bytes: int | None) -> None:
    """The Location is the server's text: shown escaped, linked only when it is a web URL."""
    for new in ("https://new.example/" + XSS, "javascript:alert(7)"):
        html = render_html(_moved_audit(new), max_bytes=max_bytes)
        assert "<script" not in html.lower() and MOVED_NOTE in _unescaped(html)
        for tag, attrs in tags_of(html):
            assert tag not in ("script", "img") and not [a for a in attrs if a.startswith("on")]
            if "href" in attrs:
                assert is_web_url(attrs["href"]) or our_own_href(attrs["href"]), attrs["href"]
        assert "javascript:alert(7)" in html if new.startswith("javascript") else "&lt;script&gt;" in html


def test_a_watched_link_that_answers_again_is_said_once_quietly_not_as_a_fix() -> None:
    """The editor saw it under "Watching" last week: it does not vanish
    without a word, and is not counted as anyone's fix."""
    hostile = 'Rituximab <script>alert(1)</script> "trial"'
    before = result("https://a.org/slow", "error", "timeout", title=hostile, strikes=1,
                    checked_at=NOW - dt.timedelta(days=7))
    now = result("https://a.org/slow", "ok", "ok", title=hostile)
    audit = audit_from([now], [PageRecord(run_id=7, url=PAGE, status="ok")], previous=[before])
    assert (audit.counts.fixed, [f.link.url for f in audit.cleared_by_itself]) == (0, ["https://a.org/slow"])
    html, text = render_html(audit), render_text(audit)
    assert "Answering again by itself, nothing to do (under &#8220;Watching&#8221; in the last report): " \
           "<b>Rituximab &lt;script&gt;alert(1)&lt;/script&gt; \"trial\"</b>" in html
    assert "<script>alert" not in html
    assert f'nothing to do (under "Watching" in the last report):\n  - {hostile} (https://a.org/slow)' in text
    assert "Fixed since the last report" not in html


# -- addresses a reader should not be sent to (walkthrough 10, finding 11) ----------

NOT_TO_OPEN = [
    ("http://www.raynauds-cure-news.com/article/nifedipine.html", "expired", "parked_domain",
     "the domain no longer belongs to the publisher"),
    ("http://192.168.1.20/intranet/raynauds-protocol.pdf", "blocked", "private_address",
     "a private network address"),
    ("https://www.raynauds-clinic.org/treatments.html", "error", "tls", "the site's certificate fails"),
    ("http://www..example.org/x", "error", "invalid_url", "a malformed address"),
]


@pytest.mark.parametrize(("url", "status", "reason", "why"), NOT_TO_OPEN)
def test_an_address_a_reader_should_not_be_sent_to_is_text_not_a_link(
        url: str, status: str, reason: str, why: str) -> None:
    """A parked domain, an intranet address, a host whose certificate fails
    and a malformed address were live links in the mail (w1_web.html): the
    row shows the address as text, saying why beside it and in its title;
    a working link and an ordinary dead one stay links."""
    ok = "https://pubmed.ncbi.nlm.nih.gov/1/"
    dead = "https://www.medscape.com/viewarticle/883512"
    links = [result(url, status, reason, title="Nifedipine still first choice", days=9, strikes=3),
             result(ok, "ok", "ok", title="Working"),
             result(dead, "expired", "http_404", title="Gone", days=9, strikes=3)]
    audit = audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM")])
    html, text = render_email(audit, lambda h, t: True)
    for out in (html, render_page(audit)):
        hrefs = {attrs.get("href") for _, attrs in tags_of(out)}
        assert url not in hrefs
        assert {ok, dead} <= hrefs
        spans = [attrs for tag, attrs in tags_of(out) if tag == "span"
                 and (attrs.get("title") or "").startswith("Shown as text")]
        # the problem's row, and the content note of its entry (it has no source line)
        assert spans and {s["title"] for s in spans} == {f"Shown as text, not as a link: {why}"}
        assert f"(not linked: {why})" in out.replace("&#39;", "'")
        assert escape(url) in out
    # the text part names it, for the editor to find in the source, and says why not to follow
    # it: a mail client makes every address in plain text a link (review 13 #14)
    lines = [line.strip() for line in text.splitlines() if url in line]
    assert lines and all(line.endswith(f"{url} (not linked in the report: {why})") for line in lines)
    assert f"{dead} (not linked" not in text and dead in text


def test_a_fixed_links_old_address_on_a_parked_domain_is_text_too() -> None:
    parked = "http://www.raynauds-cure-news.com/article/nifedipine.html"
    before = [result(parked, "expired", "parked_domain", title="Nifedipine still first choice",
                     days=9, strikes=3, checked_at=NOW - dt.timedelta(days=7))]
    now = [result("https://web.archive.org/web/2016/" + parked, "ok", "ok",
                  title="Nifedipine still first choice")]
    audit = audit_from(now, [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM")], previous=before)
    assert audit.fixed_since_last
    out = render_page(audit)
    assert parked not in {attrs.get("href") for _, attrs in tags_of(out)}
    assert "(not linked: the domain no longer belongs to the publisher)" in out


@pytest.mark.parametrize(("days_after", "as_of"), [(0, None), (1, None), (3, "26 NOV 2026"), (10, "3 DEC 2026")])
def test_a_report_made_days_after_its_run_says_as_of_when(days_after: float, as_of: str | None) -> None:
    """Walkthrough 11 #9: `check` on Monday, `report` on Thursday: its rows
    said "open 52 weeks, since 24 Nov 2025" under "16 NOV 2026", counted to
    the day it was made. The top says that day too, in both parts."""
    audit = sample_audit()
    made = replace(audit, generated_at=audit.generated_at + dt.timedelta(days=days_after))
    kicker = re.search(r'class="kicker">([^<]*)<', render_page(made))
    assert kicker is not None
    heading = next(line for line in render_text(made).splitlines() if line.startswith("LINK AUDIT FOR"))
    if as_of is None:
        assert "AS OF" not in kicker.group(1) and "as of" not in heading
    else:
        assert kicker.group(1).endswith(f"23 NOV 2026 &middot; AS OF {as_of}")
        iso = (audit.generated_at + dt.timedelta(days=days_after)).date().isoformat()
        assert heading == f"LINK AUDIT FOR WWW.SCLERO.ORG, 2026-11-23 (as of {iso})"


@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "standard-library"])
@pytest.mark.parametrize("status, http_status, shown, not_modified", [
    ("ok", 200, "ok", False),
    ("not_modified", 304, "ok", True),  # read: its links are the last read's
    ("error", 404, "error", False),
])
def test_json_pages_are_ok_when_unchanged_and_say_not_modified(
        fast: bool, status: str, http_status: int, shown: str, not_modified: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As `monitor check --format json` gives pages (CONTRACT.md: "status": "ok"):
    a script's `select(.status != "ok")` lists the pages that failed only."""
    if not fast:
        monkeypatch.setattr(render, "orjson", None)
    page = PageRecord(run_id=7, url=PAGE, status=status, http_status=http_status, title="T", links=1)
    doc = json.loads(render_json(audit_from([result("https://a.org/", "ok", "ok")], [page])))
    (got,) = doc["pages"]
    assert (got["status"], got["not_modified"], got["http_status"]) == (shown, not_modified, http_status)
    assert list(got)[-1] == "not_modified" and list(got)[:3] == ["run_id", "url", "status"]


@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "standard-library"])
def test_json_moments_are_whole_seconds_in_utc(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """orjson wrote "2026-11-23T06:12:00.593289+00:00"; the contract and
    /healthz "2026-11-23T06:12:00+00:00"."""
    if not fast:
        monkeypatch.setattr(render, "orjson", None)
    when = NOW.replace(microsecond=593289)
    paris = dt.timezone(dt.timedelta(hours=1))
    links = [result("https://a.org/", "expired", "http_404", days=3, checked_at=when.astimezone(paris)),
             result("https://b.org/", "ok", "ok", entry_date=dt.date(2019, 8, 1))]
    doc = json.loads(render_json(audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok")], when=when)))
    assert doc["run"]["finished_at"] == doc["links"][0]["checked_at"] == "2026-11-23T06:12:00+00:00"
    assert doc["run"]["started_at"] == "2026-11-23T06:00:00+00:00"
    assert doc["links"][0]["failing_since"] == "2026-11-20T06:12:00+00:00"
    assert doc["links"][1]["entry_date"] == "2019-08-01"  # a date stays a date


@pytest.mark.parametrize(("days", "strikes", "status", "reason", "said"), [
    (0, 1, "expired", "http_404", True),       # first seen this week: listed, but not confirmed
    (0, 1, "expired", "soft_404", True),
    (9, 3, "expired", "http_404", False),      # confirmed: nothing to explain
    (0, 1, "error", "timeout", False),         # unconfirmed failure to answer: under "Watching"
])
def test_needs_fixing_says_what_a_suspected_row_asks(
        days: float, strikes: int, status: str, reason: str, said: bool) -> None:
    """Review 13 #9: a first-seen 404 is listed under "Needs fixing" with
    "suspected", a first timeout waits under "Watching": the section says,
    when it holds suspected rows, that they may wait until confirmed."""
    links = [result("https://www.medscape.com/viewarticle/883512", status, reason, title="Gone",
                    days=days, strikes=strikes),
             result("https://pubmed.ncbi.nlm.nih.gov/1/", "expired", "http_410", title="Removed",
                    days=9, strikes=3)]
    audit = audit_from(links, [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM")])
    html, text = render_email(audit, lambda h, t: True)
    sentence = "Rows marked \u201csuspected\u201d are not confirmed yet"
    for out in (html, render_page(audit), text):
        assert (sentence in " ".join(unescape(out).split())) is said


@pytest.mark.parametrize(("final_url", "shown"), [
    ("https://www.sciencedirect.com/science/article/pii/S1568997219302606", True),  # a 301 to another article
    ("https://www.sciencedirect.com/science/article/pii/S1568997219302605", False),  # the page itself changed
    (None, False),
])
def test_a_drifted_row_says_where_its_link_now_leads(final_url: str | None, shown: bool) -> None:
    """Walkthrough 13 #1: a 301 to a page whose title is not the citation's is
    `drifted`, and the address it led to was in the JSON only: the editor had
    to open the link to learn where it goes. The row says it, as a link."""
    url = "https://www.sciencedirect.com/science/article/pii/S1568997219302605"
    drifted = result(url, "drifted", "title_mismatch", title="Corticosteroid-sparing benefit of IVIg",
                     days=9, strikes=3, final_url=final_url,
                     detail="The page's title is now 'Serum ferritin as a marker', not the cited ...")
    audit = audit_from([drifted], [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM")])
    html, text = render_email(audit, lambda h, t: True)
    for out in (html, render_page(audit)):
        hrefs = {attrs.get("href") for _, attrs in tags_of(out)}
        assert ("It now leads to" in out and final_url in hrefs) is shown
    assert (f"It now leads to {final_url}" in text) is shown


@pytest.mark.parametrize(("titles", "ordered"), [
    (["Topic 10", "Topic 9", "topic 100"], ["Topic 9", "Topic 10", "topic 100"]),
    (["News 2019\u00b9", "News 2018\u00b2", "News 2019"], ["News 2018\u00b2", "News 2019", "News 2019\u00b9"]),
    (["\u2461 Second", "\u2460 First", "\u00b3"], ["\u00b3", "\u2460 First", "\u2461 Second"]),
    (["Part \u0661\u0660", "Part \u0669", "Part \uff11\uff11"], ["Part \u0669", "Part \u0661\u0660", "Part \uff11\uff11"]),
])
def test_pages_sort_by_their_numbers_whatever_digits_their_titles_hold(
        titles: list[str], ordered: list[str]) -> None:
    """A footnote mark after a year ("2019\u00b9") or a circled number is a
    digit to `str.isdigit` but not to `int`: the sort key raised
    ValueError and the saved report of a page so titled was not written."""
    from reports.render import _natural

    assert sorted(titles, key=_natural) == ordered


def test_a_page_titled_with_a_footnote_mark_is_in_the_saved_report() -> None:
    audit = sample_audit()
    first = replace(audit.needs_fixing[0], title="Scleroderma News 2019\u00b9")
    audit = replace(audit, needs_fixing=(first, *audit.needs_fixing[1:]))
    assert "Scleroderma News 2019\u00b9" in render_page(audit)


RAYNAUDS = "http://www.raynauds-association.invalid/treatments"
SNAPSHOT = "https://web.archive.org/web/20150101000000/" + RAYNAUDS


def _one_row(link: LinkResult) -> tuple[str, str, str]:
    """(the mail's HTML, its text, the saved page) of a report of one row."""
    audit = audit_from([link], [PageRecord(run_id=7, url=PAGE, status="ok", title="Raynaud's")])
    html, text = render_email(audit, lambda h, t: True)
    return html, text, render_page(audit)


@pytest.mark.parametrize(("days", "strikes", "linked"), [
    (9, 3, False),  # confirmed: the domain has lapsed, a squatter may register it next
    (0, 1, True),  # a first failed lookup (a resolver's hiccup?): watched, still a link
])
def test_a_domain_that_no_longer_exists_is_text_once_confirmed(days: float, strikes: int, linked: bool) -> None:
    """Review 15 #7: the parked-domain and bad-certificate rows were text,
    the lapsed domain's a live link."""
    why = "the domain no longer exists"
    html, text, page = _one_row(result(RAYNAUDS, "error", "dns", title="Treatment Options for Raynaud's",
                                       source="Raynaud's Association, 03/12/2015", days=days, strikes=strikes))
    for out in (html, page):
        assert (RAYNAUDS in {attrs.get("href") for _, attrs in tags_of(out)}) == linked
        assert (f"(not linked: {why})" in out) == (not linked)
        assert escape(RAYNAUDS) in out
    assert (f"{RAYNAUDS} (not linked in the report: {why})" in text) == (not linked)
    assert RAYNAUDS in text


@pytest.mark.parametrize(("days", "strikes", "linked"), [(9, 3, False), (0, 1, True)])
def test_a_content_note_shows_a_lapsed_domain_as_its_row_does(days: float, strikes: int, linked: bool) -> None:
    """The note "Entries without a source line" linked the lapsed domain the
    row above it showed as text (verify 15 R2): the note follows the row."""
    why = "the domain no longer exists"
    html, text, page = _one_row(result(RAYNAUDS, "error", "dns", title="Treatment Options for Raynaud's",
                                       days=days, strikes=strikes))
    for out in (html, page):
        assert "Entries without a source line" in out
        assert (RAYNAUDS in {attrs.get("href") for _, attrs in tags_of(out)}) == linked
        assert out.count(f"(not linked: {why})") == (0 if linked else 2)  # the row's and the note's
    assert text.count(f"{RAYNAUDS} (not linked in the report: {why})") == (0 if linked else 2)


@pytest.mark.parametrize(("days", "strikes", "watched"), [(0, 1, True), (9, 3, False)])
def test_a_watched_row_s_archived_copy_is_one_quiet_line(days: float, strikes: int, watched: bool) -> None:
    """Review 15 #11: under "Watching" ("Nothing to do yet") the archived
    copy's blue box read as an instruction; a row to fix keeps its box."""
    html, text, page = _one_row(result(RAYNAUDS, "error", "connection_refused", title="Pilocarpine for Dry Mouth",
                                       source="PubMed, 03/12/2015", days=days, strikes=strikes,
                                       archived_url=SNAPSHOT))
    quiet = "If it stays down, an archived copy: "
    for out in (html, page):
        assert ('<b>Archived copy:</b>' in out) == (not watched)  # the box
        assert (quiet in out) == watched
        assert SNAPSHOT in {attrs.get("href") for _, attrs in tags_of(out)}
    assert (f"({quiet}{SNAPSHOT})" in text) == watched
    assert (f"Archived copy: {SNAPSHOT}" in text) == (not watched)


@pytest.mark.parametrize("oldest", [True, False])
def test_the_oldest_archived_copy_asks_the_editor_to_check_it(oldest: bool) -> None:
    """Review 15 #1: a link with no date gets the archive's oldest copy,
    which may be an earlier page at that address: the row says so."""
    html, text, page = _one_row(result(RAYNAUDS, "expired", "soft_404", title="Rituximab in Refractory Lupus",
                                       days=9, strikes=3, archived_url=SNAPSHOT, archived_oldest=oldest))
    for out in (html, page, text):
        assert (wording.OLDEST_COPY in out.replace("&#39;", "'")) == oldest
        assert SNAPSHOT in out


def test_a_menu_link_s_oldest_archived_copy_is_checked_for_the_page_not_an_article() -> None:
    """A menu link leads to a page of the site: "check it shows the article"
    was said of it too (verify 15 R10)."""
    menu = result("https://www.sclero.org/about/news/a-to-z.html", "expired", "http_404", title="",
                  text="ISN News", kind=LinkKind.NAVIGATION, section="", days=9, strikes=3,
                  archived_url=SNAPSHOT, archived_oldest=True)
    html, text, page = _one_row(menu)
    said = "The oldest copy the archive holds: check it shows the page before you link it."
    for out in (html, page, text):
        assert said in out.replace("&#39;", "'") and "shows the article" not in out


@pytest.mark.parametrize("oldest", [True, False])
def test_an_entry_marked_expired_says_its_oldest_archived_copy_is_to_check(oldest: bool) -> None:
    """The content note "Marked (Expired Article) and the link is still
    dead" offers the archived copy too: an oldest one gets the same warning
    as a row to fix's (the demo's jrheum entry, undated, showed it bare)."""
    marked = result(RAYNAUDS, "expired", "http_404", title="(Expired Article) Malignancy in DM: a 21-year study",
                    expired_mark=True, days=200, strikes=20, archived_url=SNAPSHOT, archived_oldest=oldest)
    audit = audit_from([marked], [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM")])
    [issue] = [i for _, _, issues in audit.content_audit.groups() for i in issues if i.kind == "dead_mark"]
    assert issue.fix_url == SNAPSHOT
    html, text = render_email(audit, lambda h, t: True)
    for out in (html, render_page(audit), text):
        assert (wording.OLDEST_COPY in out.replace("&#39;", "'")) == oldest
        assert SNAPSHOT in out


def test_a_drifted_row_offers_the_title_search_beside_its_archived_copy() -> None:
    """Review 15 #4: the drifted row's advice is "link to the archived copy,
    or find the article's new address", and the expired and failing rows'
    "Search ... for the title" link is how an editor finds it; the archived
    copy hid it."""
    title = "Corticosteroid-sparing (CS) benefit of intravenous immunoglobulin (IVIg) in myopathy"
    drifted = result("https://www.sciencedirect.com/science/article/pii/S1568997219302605", "drifted",
                     "title_mismatch", title=title, source="PubMed, Autoimmun Rev, 2020 Jan;19(1):102431.",
                     archived_url="https://web.archive.org/web/20191201000000/https://www.sciencedirect.com/"
                                  "science/article/pii/S1568997219302605",
                     detail="The page's title is now 'Serum ferritin in lupus', not the cited one.")
    audit = audit_from([drifted], [PageRecord(run_id=7, url=PAGE, status="ok", title="DM/PM")])
    for out in (render_page(audit), render_html(audit)):
        todo = out[out.index("What to do:"):]
        todo = todo[:todo.index("</p>")]
        assert "If it is the cited article under a new title, tell the webmaster, who can mark it checked" in todo
        assert ">Search PubMed for the title</a>" in todo
        assert 'href="https://pubmed.ncbi.nlm.nih.gov/?term=Corticosteroid' in todo
        assert "Archived copy" in out


LONG = "https://www.globenewswire.com/news-release/2018/07/25/1542311/0/en/Corbus-Pharmaceuticals-Dermatomyositis.html"


@pytest.mark.parametrize(("url", "text", "expected"), [
    # cut in the middle: the whole address on hover, the one the source has (review 15 #6)
    (LONG, None, f'<a href="{LONG}" title="{LONG}">{render._short_url(LONG)}</a>'),
    ("http://x.org/" + "a" * 80 + "?b=1&c=<2>", None,
     '<a href="{u}" title="{u}">{cut}</a>'.format(
         u=escape("http://x.org/" + "a" * 80 + "?b=1&c=<2>"),
         cut=escape(render._short_url("http://x.org/" + "a" * 80 + "?b=1&c=<2>")))),
    # shown whole: nothing to hover for
    ("https://pubmed.ncbi.nlm.nih.gov/31197643/", None,
     '<a href="https://pubmed.ncbi.nlm.nih.gov/31197643/">pubmed.ncbi.nlm.nih.gov/31197643/</a>'),
    ("https://x.org/" + "a" * 64, None, f'<a href="https://x.org/{"a" * 64}">x.org/{"a" * 64}</a>'),
    (LONG, "the release", f'<a href="{LONG}">the release</a>'),
])
def test_a_shortened_address_has_the_whole_one_in_its_title(url: str, text: str | None, expected: str) -> None:
    assert str(render.link(url, text)) == expected


def test_the_mail_s_shortened_addresses_keep_their_title() -> None:
    audit = audit_from([result(LONG, "expired", "http_404", line=12)],
                       [PageRecord(run_id=7, url=PAGE, status="ok")])
    html, _ = _mail_parts(audit)
    assert re.search(rf'<a href="{re.escape(LONG)}"[^>]* title="{re.escape(LONG)}"[^>]*>'
                     rf'{re.escape(render._short_url(LONG)).replace(chr(0x2026), "&#8230;")}</a>', html)


@pytest.mark.parametrize("summary", [False, True])
def test_the_text_part_s_rows_to_fix_open_their_entry_on_the_page(summary: bool) -> None:
    """Review 15 #8: the HTML part has "Open the entry on the page" under
    each row to fix; the text part had it only for content notes. A
    summarised text gives rows instead (the lines are some 145 bytes each)."""
    audit = sample_audit()
    fixing = [p for g in audit.needs_fixing for p in g.problems]
    person = [p for g in audit.needs_a_person for p in g.problems]
    assert fixing and person and all(p.page_link for p in fixing + person)
    text = render_text(audit, max_bytes=3_000 if summary else None)
    html = render_page(audit)
    shown = fixing if not summary else [p for p in fixing if p.advice in text]
    assert shown
    for p in shown:
        line = f"What to do: {p.advice}\n    {p.page_link_label}: {p.page_link}\n"
        assert (line in text) is not summary
        assert f'href="{escape(p.page_link)}">{p.page_link_label}</a>' in html  # the same address
    for p in person:
        assert re.search(rf"What to do: {re.escape(p.advice)}\n\s*{re.escape(p.page_link_label)}:", text) is None


def test_a_summarised_mail_gives_its_rows_not_the_text_part_s_entry_links() -> None:
    """A mail that lists only the newest problems shows more of them without
    the text part's "Open the entry on the page" lines (some 145 bytes a
    row; 42 rows instead of 40 of the benchmark's 10,000 problems); its HTML
    part keeps the links, and the full report has them all."""
    audit = synthetic_audit(3000, problem_every=5)
    msg = build_report_message(audit, sender="monitor@example.org", recipients=["w@example.org"],
                               message_id=message_id_for(9, "all", "monitor@example.org"))
    html, text = msg.get_body(("html",)).get_content(), msg.get_body(("plain",)).get_content()
    assert "The newest problems" in html and "What to do:" in text
    rows = re.findall(r"What to do: .*\n(?:\s+(Open the entry on the page|Find the link on the page):)?", text)
    assert rows and not any(rows), [r for r in rows if r][:3]
    assert "Open the entry on the page</a>" in html


@pytest.mark.parametrize(("n_links", "jumps"), [(200, True), (500, False)])
def test_a_mail_listing_every_problem_drops_the_text_part_s_entry_links_before_summarising(
        n_links: int, jumps: bool) -> None:
    """50 problems in 500 links fit with every row, not with the text
    part's "Open the entry on the page" lines: those go first, the HTML
    part keeps its links."""
    audit = synthetic_audit(n_links)
    msg = build_report_message(audit, sender="monitor@example.org", recipients=["w@example.org"],
                               message_id=message_id_for(9, "all", "monitor@example.org"))
    assert len(msg.as_bytes()) <= MAX_EMAIL_BYTES
    html, text = msg.get_body(("html",)).get_content(), msg.get_body(("plain",)).get_content()
    assert "The newest problems" not in html and "NEWEST PROBLEMS" not in text
    fixing = [p for g in audit.needs_fixing for p in g.problems]
    assert all(escape(p.page_link) in html for p in fixing)
    assert text.count("Open the entry on the page: ") == (len(fixing) if jumps else 0)
