"""A page's rows can be linked to (walkthrough 11, findings 3 and 8).

An editor of one page among 500 was sent a 23 MB report whose only ids were
the sections': their page's rows sat at four places 3 million pixels apart,
their own mail's "Full report" link opened its top, and the links answering
again by themselves were one paragraph of 626, in no order they knew.
Now each page's group has an id made of its address (the same every week),
a "Pages" table under the counts links them, an owner's mail links the full
report at their page, and the links answering again come page by page.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser, LexborNode

from monitor.config import EmailSettings, PageSettings, ReportSettings, Settings
from monitor.store import Store
from monitor.types import PageRecord
from reports.audit import Audit, audit_for_pages, page_slug, page_slugs
from reports.deliver import queue_report
from reports import render
from reports.render import EVERYTHING_ELSE_OPEN, part_fragment, render_html, render_json, render_page, render_text
from tests.test_render import (
    CHROMIUM,
    NOW,
    XSS,
    audit_from,
    probed_dom,
    result,
    sideways_overflow,
    synthetic_audit,
)

SECTION_IDS = {"top", "needs-fixing", "needs-a-person", "watching", "cleared", "fixed", "everything-else",
               "content", "pages", "accepted", "not-fetched", "moved-pages"}
TOPIC = "https://www.sclero.org/scleroderma/topic-{}/treatments.html"


def ids_of(html: str) -> list[str]:
    return re.findall(r'\sid="([^"]+)"', html)


def top_of(html: str) -> str:
    return html[: html.index('id="needs-fixing"')]


@pytest.mark.parametrize(("url", "slug"), [
    ("https://www.sclero.org/scleroderma/topic-250/treatments.html", "scleroderma-topic-250-treatments"),
    ("https://www.sclero.org/", "home"),
    ("https://www.sclero.org", "home"),
    ("https://www.sclero.org/about/news/", "about-news"),
    ("https://www.sclero.org/view.php?id=12&lang=en", "view-id-12-lang-en"),
    ("https://www.sclero.org/Medical/Drugs/M%C3%A9thotrexate.HTM", "medical-drugs-methotrexate"),
    ("https://www.sclero.org/a/" + "x" * 200 + ".html", "a-" + "x" * 58),
    ("https://www.sclero.org/\"><script>alert(1)</script>", "script-alert-1-script"),
    ("https://www.sclero.org/\u0645\u0631\u0636", "home"),
])
def test_a_pages_slug_is_its_address_in_fragment_safe_words(url: str, slug: str) -> None:
    assert page_slug(url) == slug
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", page_slug(url))


def test_pages_with_the_same_words_get_ids_apart_and_each_keeps_its_own_every_week() -> None:
    one, two = "https://www.sclero.org/a-b.html", "https://www.sclero.org/a/b.html"
    plain = "https://www.sclero.org/scleroderma/topic-1/treatments.html"
    week1 = page_slugs([one, plain, two])
    assert len(set(week1.values())) == 3 and week1[plain] == "scleroderma-topic-1-treatments"
    assert week1[one].startswith("a-b-") and week1[two].startswith("a-b-")
    # another week: pages added and taken away, listed in another order
    week2 = page_slugs([TOPIC.format(7), two, "https://www.sclero.org/", plain, one])
    assert all(week2[url] == week1[url] for url in week1)


def test_each_pages_rows_are_linked_from_the_pages_table_at_the_top() -> None:
    """Every page with rows has "page-<slug>" where its rows start and an id
    per section; the table under the counts links each, the worst first."""
    audit = synthetic_audit(400, problem_every=4, pages=7)
    html = render_page(audit)
    ids = ids_of(html)
    assert len(ids) == len(set(ids)), "an id is given twice"
    table = top_of(html)[top_of(html).index('id="pages"'):]
    links = re.findall(r'href="#([^"]+)"', table)
    assert links and set(links) <= set(ids), set(links) - set(ids)
    for key, groups in (("fix", audit.needs_fixing), ("person", audit.needs_a_person)):
        assert groups
        for g in groups:
            slug = page_slug(g.url)
            assert f"{key}-{slug}" in ids and f"{key}-{slug}" in links
            # the page's own address leads to its first rows: under "Needs fixing"
            assert f'id="fix-{slug}"><a id="page-{slug}"></a>' in html
            assert f"page-{slug}" in links
    rows = re.findall(r'<tr><td><a href="#page-[^"]+">([^<]+)</a></td><td><a href="#fix-[^"]+">(\d+)</a></td>'
                      r'<td>(?:<a href="#person-[^"]+">)?(\d*)', table)
    assert len(rows) == 7
    open_counts = [int(fix) + int(person or 0) for _, fix, person in rows]
    assert open_counts == sorted(open_counts, reverse=True), rows
    for title, fix, person in rows:
        group = next(g for g in audit.needs_fixing if g.title == title)
        assert int(fix) == len(group.problems)


def test_the_table_says_owners_counts_watching_and_new_and_escapes_the_web() -> None:
    pages = [PageRecord(run_id=7, url=TOPIC.format(1), status="ok", title=XSS, owner="ana@sclero.org"),
             PageRecord(run_id=7, url=TOPIC.format(2), status="ok", title="Topic 2")]
    links = [result("https://a.org/1", "expired", "http_404", page=TOPIC.format(1), title="A", days=9,
                    strikes=5),
             result("https://a.org/2", "error", "timeout", page=TOPIC.format(1), title="B", days=0.1,
                    strikes=1),
             result("https://a.org/3", "moved", "permanent_redirect", page=TOPIC.format(2), title="C",
                    suggested_url="https://a.org/3b"),
             result("https://a.org/4", "expired", "http_410", page=TOPIC.format(2), title="D", days=20,
                    strikes=9)]
    previous = [replace(links[3], checked_at=NOW - dt.timedelta(days=7))]
    audit = audit_from(links, pages, previous=previous)
    assert [len(g.problems) for g in audit.watching] == [1]
    html = render_page(audit)
    table = top_of(html)[top_of(html).index('id="pages"'):]
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in table
    assert "<th>Page</th><th class=\"o\">Owner</th><th>To&nbsp;fix</th><th>Needs a person</th><th>Watching</th>" \
           "<th>New</th>" in table
    s1, s2 = page_slug(TOPIC.format(1)), page_slug(TOPIC.format(2))
    # Topic 2: 2 to fix, 1 of them new; the XSS page: 1 to fix (new), 1 watched.
    # "New" leads to the page's first new row, not where "To fix" leads (review 13 #3)
    assert (f'<td class="o"></td><td><a href="#fix-{s2}">2</a></td><td></td><td></td>'
            f'<td><a href="#new-{s2}">1</a></td></tr>') in table
    assert (f'<td class="o">ana@sclero.org</td><td><a href="#fix-{s1}">1</a></td><td></td>'
            f'<td><a href="#watch-{s1}">1</a></td><td><a href="#new-{s1}">1</a></td></tr>') in table
    assert table.index(s2) < table.index(s1)  # more open problems first
    assert f'id="watch-{s1}"' in html
    for slug, new_row, old_row in ((s2, "a.org/3", "a.org/4"), (s1, "a.org/1", None)):
        assert html.count(f'id="new-{slug}"') == 1
        row = html.split(f'id="new-{slug}"', 1)[1].split('class="p"', 1)[0]
        assert new_row in row and (old_row is None or old_row not in row), row


def test_a_mail_has_no_table_nor_page_ids() -> None:
    """Several webmail clients drop in-page ids, and the mail has its budget:
    the table and the ids are the saved report's."""
    audit = synthetic_audit(60, problem_every=3)
    for text in (render_html(audit), render_html(audit, max_bytes=None)):
        assert not set(ids_of(text)) - SECTION_IDS and 'href="#page-' not in text
        assert ">Pages</td>" not in text


def test_the_json_is_unchanged_by_the_ids() -> None:
    """The slugs name places in the HTML: the JSON gains no field, and its
    last field stays "first_report" (the index reads it from the tail)."""
    text = render_json(synthetic_audit(40, problem_every=3))
    assert "page_slugs" not in text and "scleroderma-topic-0-treatments\"" not in text
    assert text.rstrip().endswith('"first_report":true}')


def owners_audit() -> Audit:
    pages = [PageRecord(run_id=1, url=TOPIC.format(n), status="ok", title=f"Topic {n}",
                        owner="ana@sclero.org" if n in (250, 251) else "ben@sclero.org" if n == 3 else "")
             for n in (0, 3, 250, 251)]
    links = [result(f"https://a.org/{n}", "expired", "http_404", page=TOPIC.format(n), title=f"Study {n}",
                    days=9, strikes=5) for n in (0, 3, 250)]
    links.append(result("https://a.org/ok", "ok", "ok", page=TOPIC.format(251), title="Fine"))
    return audit_from(links, pages, run_id=1)


def queued_parts(tmp_path: Path, audit: Audit, full: str) -> dict[str, email.message.EmailMessage]:
    settings = Settings(pages=tuple(PageSettings(url=p.url, owner=p.owner) for p in audit.pages),
                        email=EmailSettings(recipients=("webmaster@sclero.org",)),
                        report=ReportSettings(base_url="https://links.sclero.org/reports/"))
    with Store.open(tmp_path / "m.db") as store:
        assert store.start_run(NOW - dt.timedelta(minutes=12)).id == audit.run.id
        queued = queue_report(store, audit, settings, NOW, full_report=full)
        return {m.key: email.message_from_bytes(m.message, policy=email.policy.default)  # type: ignore
                for m in queued}


def test_an_owners_mail_links_the_full_report_at_their_page(tmp_path: Path) -> None:
    """Ben looks after one page: "Full report" opens it at his page's rows;
    Ana looks after two: at the table of pages. The ids are the full report's."""
    audit = owners_audit()
    full = "https://links.sclero.org/reports/report-2026-11-23-run-1.html"
    saved_ids = set(ids_of(render_page(audit)))
    parts = queued_parts(tmp_path, audit, full)
    ben, ana, whole = (parts["run-1:owner:ben@sclero.org"], parts["run-1:owner:ana@sclero.org"],
                       parts["run-1:all"])
    for msg, fragment in ((ben, f"page-{page_slug(TOPIC.format(3))}"), (ana, "pages")):
        assert fragment in saved_ids
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert f'href="{full}#{fragment}"' in html
        assert f"Full report: {full}#{fragment}" in text
        # the other links of the footer are the folder's, without the fragment
        assert "https://links.sclero.org/reports/index.html" in text
    assert f"{full}#" not in whole.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_one_page_with_only_working_links_is_linked_where_its_links_are() -> None:
    audit = owners_audit()
    part = audit_for_pages(audit, [TOPIC.format(251)], "cy@sclero.org")
    full = "https://links.sclero.org/reports/report-2026-11-23-run-1.html"
    slug = page_slug(TOPIC.format(251))
    assert f"Full report: {full}#page-{slug}" in render_text(part, full_report=full)
    assert f'id="ok-{slug}"><a id="page-{slug}"></a>' in render_page(audit)


def cleared_audit() -> Audit:
    """Three pages' watched links (a first timeout) that answer again."""
    before, now = [], []
    for n, count in ((12, 2), (3, 3), (100, 1)):
        for i in range(count):
            url = f"https://slow{n}.example.org/article-{i}"
            before.append(result(url, "error", "timeout", page=TOPIC.format(n), title=f"Article {n}.{i}",
                                 strikes=1, checked_at=NOW - dt.timedelta(days=7)))
            now.append(result(url, "ok", "ok", page=TOPIC.format(n), title=f"Article {n}.{i}"))
    pages = [PageRecord(run_id=7, url=TOPIC.format(n), status="ok", title=f"Topic {n}") for n in (3, 12, 100)]
    return audit_from(now, pages, previous=before)


def test_links_answering_again_come_page_by_page_with_the_pages_name() -> None:
    audit = cleared_audit()
    assert len(audit.cleared_by_itself) == 6
    html, text, page = render_html(audit), render_text(audit), render_page(audit)
    assert "6 links on 3 pages." in html
    blocks = re.findall(r'<div class="why"(?: id="again-[^"]+")?>(?:<a id="page-[^"]+"></a>)?<b>([^<]+)</b> '
                        r'\((\d)\): (.*?)</div>', page)
    assert [(title, int(n)) for title, n, _ in blocks] == [("Topic 3", 3), ("Topic 12", 2), ("Topic 100", 1)]
    for title, _, rows in blocks:
        n = title.split()[1]
        assert re.findall(r"<b>Article (\d+)\.\d</b>", rows) == [n] * rows.count("<b>Article")
    assert f'id="again-{page_slug(TOPIC.format(3))}"' in page and 'id="again-' not in html
    assert re.search(r"  Topic 3 \(3\):\n(    - Article 3\.\d \(https://slow3\.example\.org/article-\d\)\n){3}"
                     r"  Topic 12 \(2\):\n", text), text


# -- a real browser ------------------------------------------------------------

CLICK = """<script>
window.onload = function () {
  var link = document.querySelector('#pages a[href="#page-%(slug)s"], .pt a[href="#page-%(slug)s"]');
  link.click();
  setTimeout(function () {
    var target = document.getElementById('page-%(slug)s');
    document.body.setAttribute('data-landed', Math.round(target.getBoundingClientRect().top) + ' ' +
      Math.round(window.scrollY) + ' ' + target.parentElement.id);
  }, 100);
};
</script></body>"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_clicking_a_page_in_the_table_lands_on_its_rows_in_chromium(tmp_path: Path) -> None:
    """The table's link is followed by a real browser: the page's rows
    (its "Needs fixing" group, far down) come to the top of the window."""
    audit = synthetic_audit(600, problem_every=3, pages=12)
    last = audit.needs_fixing[-1].url
    slug = page_slug(last)
    dom = probed_dom(render_page(audit), CLICK % {"slug": slug}, tmp_path, "1000,900", budget_ms=5000, timeout=90)
    landed = re.search(r'data-landed="(-?\d+) (\d+) ([^"]*)"', dom)
    assert landed is not None, "the probe did not run"
    top, scrolled, group = int(landed.group(1)), int(landed.group(2)), landed.group(3)
    assert scrolled > 5_000  # it moved far down the page...
    assert abs(top) <= 2 and group == f"fix-{slug}"  # ...to the page's rows under "Needs fixing"


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_the_pages_table_with_owners_fits_a_phone(tmp_path: Path) -> None:
    audit = owners_audit()
    long = "editor.of.the.raynauds.phenomenon.pages@scleroderma-foundation.example.org"
    audit = replace(audit, needs_fixing=tuple(replace(g, owner=long) for g in audit.needs_fixing))
    page = render_page(audit)
    assert long in page[page.index('id="pages"'):page.index('id="needs-fixing"')]
    overflow = sideways_overflow(page, tmp_path, 390)
    assert overflow is not None and overflow <= 0


def test_a_long_pages_table_shows_the_worst_pages_and_folds_the_others() -> None:
    """At 500 pages the table stood 12,000 px between the counts and the
    first problem: the 20 with the most open problems are shown, the others
    in a <details> a browser's find in page opens (an editor's page name)."""
    audit = synthetic_audit(1200, problem_every=7, pages=30)
    top = top_of(render_page(audit))
    table = top[top.index('id="pages"'):]
    shown, _, folded = table.partition('<details class="more-pages"><summary>The other 10 pages</summary>')
    assert folded, "no fold"
    names = re.compile(r'<tr><td><a href="#page-[^"]+">')
    assert len(names.findall(shown)) == 20 and len(names.findall(folded)) == 10
    assert "30 pages with problems (to fix, for a person to open, or being watched), the worst first" in shown and "(the first 20 here, the other 10 below them)" in shown
    counts = [int(n) for n in re.findall(r'<a href="#fix-[^"]+">(\d+)</a>', shown + folded)]
    assert counts == sorted(counts, reverse=True)  # the worst shown, the rest folded
    small = top_of(render_page(synthetic_audit(400, problem_every=4, pages=7)))
    assert "<details" not in small and "below them" not in small


def everything_else_of(html: str) -> str:
    return html[html.index('id="everything-else"'):html.index('<td class="foot">')]


@pytest.mark.parametrize(("links", "problem_every", "is_open", "summary"), [
    (1200, 10, False, "1080 links that work, on 5 pages"),   # past EVERYTHING_ELSE_OPEN: folded
    (1111, 10, True, "999 links that work, on 5 pages"),
    (1112, 9, True, "988 links that work, on 5 pages"),
    (40, 2, True, "20 links that work, on 5 pages"),
    (2, 2, True, "1 link that works, on 1 page"),
])
def test_everything_else_is_folded_past_a_thousand_links(
        links: int, problem_every: int, is_open: bool, summary: str) -> None:
    """Walkthrough 11 #7: at 100,000 links the 89,000 working ones were half
    of the 23 MB report and Chromium took 6.7 s to show it, 3.4 s with them
    folded. Folded, none is left out: find in page and a link open the fold."""
    audit = synthetic_audit(links, problem_every=problem_every, pages=5)
    ok = sum(1 for o in audit.everything_else for l in o.links)
    section = everything_else_of(render_page(audit))
    fold = re.search(r'<details class="more-pages"( open)?><summary>([^<]*)</summary>', section)
    assert fold is not None
    assert (fold.group(1) == " open") is is_open and (ok > EVERYTHING_ELSE_OPEN) is not is_open
    assert fold.group(2) == summary
    assert section.count("&#10003;") == ok  # every working link is still in the file
    assert section.count('<div class="okp" id="ok-') == len(audit.everything_else)


def test_the_fold_says_how_many_links_were_not_checked() -> None:
    audit = synthetic_audit(20, problem_every=2, pages=2)
    page = audit.everything_else[0].url
    skipped = [result(f"mailto:editor{i}@sclero.org", "skipped", "mailto", page=page, text="")
               for i in range(3)]
    audit = audit_from(list(audit.links) + skipped, list(audit.pages), run_id=9)
    assert "<summary>10 links that work and 3 not checked, on 1 page</summary>" in render_page(audit)


def in_closed_fold(node: LexborNode) -> bool:
    """Inside a <details> not open: where a browser that does not open folds
    for a link (Safari, older Firefox, a mail client's viewer) lands on nothing."""
    parent = node.parent
    while parent is not None:
        if parent.tag == "details" and "open" not in parent.attributes:
            return True
        parent = parent.parent
    return False


def with_skipped_page(audit: Audit) -> Audit:
    """One more page whose links are all email addresses (none checked)."""
    page = TOPIC.format(77)
    skipped = [result(f"mailto:editor{i}@sclero.org", "skipped", "mailto", page=page, text="") for i in range(3)]
    return audit_from(list(audit.links) + skipped,
                      [*audit.pages, PageRecord(run_id=9, url=page, status="ok", title="Contacts")], run_id=9)


@pytest.mark.parametrize(("name", "make", "fold_from", "listed"), [
    # 5 pages, problems only on topic 0: topics 1-4 have only working links
    ("folded", lambda: synthetic_audit(60, problem_every=10, pages=5), 5,
     [f"Treatments, topic {n}: 12 links work" for n in (1, 2, 3, 4)]),
    ("one working link, folded", owners_audit, 0, ["Topic 251: 1 link works"]),
    ("links none checked", lambda: with_skipped_page(synthetic_audit(60, problem_every=10, pages=5)), 5,
     [*(f"Treatments, topic {n}: 12 links work" for n in (1, 2, 3, 4)), "Contacts: 3 not checked"]),
    # every page has a problem, or answers again: their ids are in those sections, nothing listed
    ("every page has rows elsewhere", lambda: synthetic_audit(60, problem_every=2, pages=5), 5, []),
    ("answering again", cleared_audit, 0, []),
    # below the threshold: open, as before, the page's id where its links are
    ("open", lambda: synthetic_audit(60, problem_every=10, pages=5), 1_000, []),
])
def test_every_link_to_a_page_lands_outside_the_closed_fold(
        monkeypatch: pytest.MonkeyPatch, name: str, make: Callable[[], Audit], fold_from: int,
        listed: list[str]) -> None:
    """Review 12 #4: past the threshold a page whose links all work had its
    `#page-…` (an owner's mail links it) only inside the closed "Everything
    else", which Chromium opens for a link and other browsers do not. Now
    it is on a line of its own above the fold; every link in the report
    and every owner's link leads to exactly one id, none in a closed fold."""
    monkeypatch.setattr(render, "EVERYTHING_ELSE_OPEN", fold_from)
    audit = make()
    tree = LexborHTMLParser(render_page(audit))
    ids = [n.attributes["id"] for n in tree.css("[id]")]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    by_id = {n.attributes["id"]: n for n in tree.css("[id]")}
    hrefs = {str(a.attributes["href"])[1:] for a in tree.css('a[href^="#"]')}
    assert hrefs and hrefs <= set(ids), hrefs - set(ids)
    owners = {url: part_fragment(audit_for_pages(audit, [url], "editor@sclero.org"))[1:]
              for url in {p.url for p in audit.pages}}
    assert all(f in by_id for f in owners.values() if f), owners
    for target in hrefs | {f for f in owners.values() if f}:
        assert not in_closed_fold(by_id[target]), target
    lines = [" ".join(n.text().split()) for n in tree.css("div.okl")]
    assert lines == listed
    fold = tree.css_first("td.fold details")
    assert fold is not None and ("open" in fold.attributes) is (fold_from >= 1_000)
    mail = render_html(audit, max_bytes=None)  # the mail has no ids, so no lines for them
    assert 'class="okl"' not in mail and 'id="page-' not in mail


FRAGMENT_PROBE = """<script>
window.addEventListener('load', function () {
  setTimeout(function () {
    var fold = document.querySelector('td.fold details');
    var target = document.getElementById('%(id)s');
    var box = target.getBoundingClientRect();
    document.body.setAttribute('data-landed', fold.open + ' ' + Math.round(box.top) + ' ' +
      Math.round(box.height) + ' ' + Math.round(window.scrollY));
  }, 300);
});
</script></body>"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("kind", ["ok", "page"])
def test_a_link_into_the_folded_list_opens_it_in_chromium(tmp_path: Path, kind: str) -> None:
    """The README documents `#ok-…`: it lands on the page's links, the fold
    opened by the browser (Chromium opens a closed <details> holding the
    target of a fragment, as it does for find in page). An owner's mail
    links `#page-…` of a page whose links all work: it lands on the page's
    line above the fold, shown with the fold closed (review 12 #4: other
    browsers do not open the fold)."""
    audit = synthetic_audit(3000, problem_every=40, pages=30)
    html = render_page(audit)
    assert '<details class="more-pages"><summary>' in everything_else_of(html)
    slug = page_slug(audit.everything_else[-1].url)
    target = f"{kind}-{slug}"
    dom = probed_dom(html, FRAGMENT_PROBE % {"id": target}, tmp_path, "1000,900", fragment=target,
                     budget_ms=5000, timeout=90)
    landed = re.search(r'data-landed="(\w+) (-?\d+) (\d+) (\d+)"', dom)
    assert landed is not None, "the probe did not run"
    is_open, top, height, scrolled = landed.group(1), int(landed.group(2)), int(landed.group(3)), int(landed.group(4))
    assert scrolled > 5_000 and height > 0  # it moved far down the page, to something shown...
    if kind == "ok":
        assert is_open == "true" and abs(top) <= 2  # ...the fold opened, the page's links at the top
    else:
        assert is_open == "false" and 0 <= top <= 900 - height  # ...the page's line, in the window
