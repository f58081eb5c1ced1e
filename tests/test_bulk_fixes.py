"""One fix, many rows (walkthrough 11 #4).

A dead "Contact us" in the footer of 100 pages was 100 cards scattered over
the report, and a publisher moving its 21 URLs to a new host was 21 cards
from 0.1 % to 40 % down the file: nothing said that each was one change.
Now the audit finds the URLs flagged on several pages and the hosts whose
moved links share one rewrite (`bulk_fixes`), the saved report says each in
one line under the Pages table, linking its first row, the mail only where
the lines fit beside its rows, and the JSON keeps them ("bulk_fixes", just
before "first_report", which the index reads from the file's tail).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from bench.report_scale import build
from monitor.config import load_settings
from monitor.store import Store
from monitor.types import LinkKind, LinkResult, PageRecord
from reports.audit import BULK_SHOWN, Audit, BulkFixes, audit_for_pages
from reports.deliver import load_audit
from reports.mail import build_report_message
from reports.render import Source, render_email, render_index, render_json, render_page, save_report
from tests.test_render import XSS, audit_from, result

TOPIC = "https://www.sclero.org/scleroderma/topic-{}/treatments.html"
CONTACT = "https://www.sclero.org/about/contact-us.html"


def pages(n: int) -> list[PageRecord]:
    return [PageRecord(run_id=7, url=TOPIC.format(i), status="ok", title=f"Topic {i}") for i in range(n)]


def footer(url: str, status: str, reason: str, on: range, **extra: object) -> list[LinkResult]:
    """The same navigation link on each page of `on` (a template's footer, line 30)."""
    return [result(url, status, reason, page=TOPIC.format(i), section="", text="Contact us", title="",
                   kind=LinkKind.NAVIGATION, days=14, strikes=3, line=30, http_status=404, **extra)
            for i in on]


def moved(host: str, new: str, n: int, *, path: str = "/doi/10.1/a{}", new_path: str | None = None,
          pages_: int = 1) -> list[LinkResult]:
    """n citations of `host` whose new addresses are on `new` (`new_path`:
    the path each moved to, else the same path)."""
    rows = []
    for i in range(n):
        old = f"https://{host}{path.format(i)}"
        rows.append(result(old, "moved", "permanent_redirect", page=TOPIC.format(i % pages_),
                           title=f"Study {host} {i}", http_status=301,
                           suggested_url=f"https://{new}{(new_path or path).format(i)}"))
    return rows


def shared_of(b: BulkFixes) -> list[tuple[str, int, bool]]:
    return [(s.url, s.pages, s.navigation) for s in b.links]


def hosts_of(b: BulkFixes) -> list[tuple[str, str, str, str, bool, int]]:
    return [(h.host, h.new_host, h.old_part, h.new_part, h.same_paths, h.links) for h in b.hosts]


CASES = [
    ("a footer link dead on 3 pages is one fix in the template",
     footer(CONTACT, "expired", "http_404", range(3)), 3,
     [(CONTACT, 3, True)], []),
    ("on 2 pages it is not", footer(CONTACT, "expired", "http_404", range(2)), 3, [], []),
    ("a citation blocked on 4 pages, one look in a browser",
     [result("https://www.nejm.org/x", "blocked", "bot_challenge", page=TOPIC.format(i), title="Trial",
             http_status=403, strikes=3, days=14) for i in range(4)], 4,
     [("https://www.nejm.org/x", 4, False)], []),
    ("a publisher's 5 URLs to one new host, same paths",
     moved("journal5.example.org", "www.newpublisher.example.com", 5), 1,
     [], [("journal5.example.org", "www.newpublisher.example.com", "", "", True, 5)]),
    ("4 are not enough", moved("journal5.example.org", "www.newpublisher.example.com", 4), 1, [], []),
    ("to one new host with new paths: still one host to replace",
     moved("journal5.example.org", "www.newpublisher.example.com", 6, new_path="/article/{}"), 1,
     [], [("journal5.example.org", "www.newpublisher.example.com", "", "", False, 6)]),
    ("one path change on the same host, over 3 pages",
     moved("journal7.example.org", "journal7.example.org", 6, new_path="/doi/full/10.1/a{}", pages_=3), 3,
     [], [("journal7.example.org", "journal7.example.org", "/doi/", "/doi/full/", False, 6)]),
    ("5 moved URLs going 5 different ways share no rewrite",
     [r for i in range(5) for r in moved("j.example.org", f"new{i}.example.com", 1, path=f"/p{i}/{{}}")], 1,
     [], []),
    ("http to https",
     [replace(r, url=r.url.replace("https:", "http:"))
      for r in moved("journal9.example.org", "journal9.example.org", 5)], 1,
     [], [("journal9.example.org", "journal9.example.org", "", "", False, 5)]),
]


@pytest.mark.parametrize(("links", "n_pages", "shared", "hosts"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_fixes_that_clear_many_rows(links: list[LinkResult], n_pages: int,
                                        shared: list[tuple[str, int, bool]],
                                        hosts: list[tuple[str, str, str, str, bool, int]]) -> None:
    audit = audit_from(links, pages(n_pages))
    assert shared_of(audit.bulk_fixes) == shared
    assert hosts_of(audit.bulk_fixes) == hosts
    # additive: every row is still a row, and counted
    assert len(audit.problems) == len(links)


def test_the_biggest_first_at_most_twenty_of_each_the_rest_counted() -> None:
    links = [r for k in range(25) for r in
             footer(f"https://www.sclero.org/nav/{k}.html", "expired", "http_404", range(3 + k % 7))]
    links += [r for k in range(23) for r in moved(f"journal{k}.example.org", "new.example.com", 5 + k % 4)]
    audit = audit_from(links, pages(9))
    b = audit.bulk_fixes
    assert len(b.links) == BULK_SHOWN and b.more_links == 5
    assert len(b.hosts) == BULK_SHOWN and b.more_hosts == 3
    assert [s.pages for s in b.links] == sorted((s.pages for s in b.links), reverse=True)
    assert b.links[0].pages == 9 and b.hosts[0].links == 8
    assert [h.links for h in b.hosts] == sorted((h.links for h in b.hosts), reverse=True)


def test_a_shared_links_first_row_is_where_the_report_lists_it_first() -> None:
    """Its first page in the report's order (the configuration's), and its
    place: under Needs fixing, or Needs a person for a site refusing checks."""
    links = footer(CONTACT, "expired", "http_404", range(2, 6))
    links += [result("https://www.nejm.org/x", "blocked", "bot_challenge", page=TOPIC.format(i), title="T",
                     http_status=403, strikes=3, days=14) for i in (4, 1, 3)]
    b = audit_from(links, pages(6)).bulk_fixes
    assert [(s.first_page, s.place, s.line) for s in b.links] == [
        (TOPIC.format(2), "fix", 30), (TOPIC.format(1), "person", None)]


def test_an_owners_part_has_the_fixes_of_its_own_pages_only() -> None:
    audit = audit_from(footer(CONTACT, "expired", "http_404", range(4)), pages(4))
    assert shared_of(audit_for_pages(audit, [TOPIC.format(0), TOPIC.format(1), TOPIC.format(2)], "a@x").bulk_fixes) \
        == [(CONTACT, 3, True)]
    assert not audit_for_pages(audit, [TOPIC.format(0)], "a@x").bulk_fixes


# -- the saved report, the mail, the JSON ------------------------------------------


@pytest.fixture(scope="module")
def site_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bench/report_scale.py's site (2 weekly runs, 2,000 links on 10 pages)
    in a real SQLite file; in run 2, as walkthrough 11's r_bulk.db has it,
    every page's footer links "Contact us", which answers 404, and the 6
    URLs of journal5.example.org moved to www.newpublisher.example.com."""
    db = tmp_path_factory.mktemp("bulk") / "site.db"
    build(db, 2, 2000)
    conn = sqlite3.connect(db)
    conn.execute("""INSERT INTO occurrences (run_id, page_url, url, raw_href, anchor_text, section, kind,
        element, attribute, line, entry_title, entry_summary, entry_source, entry_date, expired_mark,
        skip_reason) SELECT 2, url, ?, '/about/contact-us.html', ?, '', 'navigation', 'a',
        'href', 30, '', '', '', '', 0, NULL FROM pages WHERE run_id = 2""", (CONTACT, "Contact us " + XSS))
    conn.execute("""INSERT INTO observations (run_id, url, checked_at, status, reason, detail,
        http_status, final_url, redirects, error_detail, elapsed_ms, bytes_read, content_type, title,
        meta_title, content_hash, attempts, method, strikes, failing_since) SELECT 2, ?, checked_at,
        'expired', 'http_404', 'The page answered 404.', 404, ?, '[]', '', 80, 100, 'text/html',
        'Not found', '', 'x', 1, 'GET', 3, checked_at FROM observations WHERE run_id = 2 LIMIT 1""",
                 (CONTACT, CONTACT))
    for k in range(6):  # journal5.example.org's 6 articles, cited on 6 pages, moved to the new publisher
        old = f"https://journal5.example.org/doi/10.5/bulk-{k}"
        conn.execute("""INSERT INTO occurrences (run_id, page_url, url, raw_href, anchor_text, section, kind,
            element, attribute, line, entry_title, entry_summary, entry_source, entry_date, expired_mark,
            skip_reason) SELECT 2, page_url, ?, ?, 'Full text', section, 'citation', 'a', 'href', 40 + ?,
            ?, '', 'J Five', '', 0, NULL FROM occurrences WHERE run_id = 2 AND kind = 'citation'
            AND page_url = (SELECT url FROM pages WHERE run_id = 2 ORDER BY url LIMIT 1 OFFSET ?) LIMIT 1""",
                     (old, old, k, f"Journal five study {k}", k))
        conn.execute("""INSERT INTO observations (run_id, url, checked_at, status, reason, detail,
            suggested_url, http_status, final_url, redirects, error_detail, elapsed_ms, bytes_read,
            content_type, title, meta_title, content_hash, attempts, method, strikes, failing_since)
            SELECT 2, ?1, checked_at, 'moved', 'permanent_redirect', '', ?2, 301, ?2, '[]', '', 80, 100,
            'text/html', 'Study', '', 'x', 1, 'GET', 0, NULL FROM observations WHERE run_id = 2 LIMIT 1""",
                     (old, old.replace("journal5.example.org", "www.newpublisher.example.com")))
    conn.commit()
    conn.close()
    return db


def site_audit(db: Path, tmp: Path) -> Audit:
    cfg = tmp / "m.toml"
    cfg.write_text(f'[[pages]]\nurl = "{TOPIC.format(0)}"\n[database]\npath = "{db}"\n'
                   f'[report]\ndir = "{tmp / "out"}"\n', encoding="utf-8")
    settings = load_settings(cfg)
    with Store.open(db) as store:
        run = store.get_run(2)
        assert run is not None
        return load_audit(store, 2, settings, run.started_at + dt.timedelta(minutes=26))


def test_the_saved_report_says_each_fix_once_under_the_pages_linking_its_first_row(
        site_db: Path, tmp_path: Path) -> None:
    audit = site_audit(site_db, tmp_path)
    page = render_page(audit)
    top = page[: page.index('id="needs-fixing"')]
    block = top[top.index('id="bulk-fixes"'):]
    assert top.index('id="pages"') < top.index('id="bulk-fixes"')
    text = html.unescape(re.sub(r"<[^>]+>", "", block))
    assert ("Fix it in the site\u2019s template: \u201cContact us " + XSS + "\u201d \u2192 "
            "/about/contact-us.html answers 404 on 10 pages, line 30") in text
    assert re.search(r"journal5\.example\.org moved to www\.newpublisher\.example\.com \(same paths: "
                     r"replace the host\): 6 links on 6 pages; the new addresses are in each row", text)
    # the site's other moves, /doi/ to /doi/full/ on 89 journals' own hosts
    # (1 or 2 each): one line for all (tests/test_bulk_rewrites.py)
    assert re.search(r"89 sites changed /doi/ to /doi/full/ in their addresses: 91 links on 10 pages \("
                     r"journal\d+\.example\.org, journal\d+\.example\.org, journal\d+\.example\.org and 86 "
                     r"more\); replace \u201c/doi/\u201d with \u201c/doi/full/\u201d in these sites\u2019 "
                     r"addresses", text)
    assert XSS not in page  # the link text came from the web
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    firsts = re.findall(r'\(first: <a href="#([^"]+)">', block)
    assert len(firsts) == 3 and set(firsts) <= ids
    assert firsts[0] == "fix-" + audit.page_slugs[audit.bulk_fixes.links[0].first_page]
    # additive: the rows and the counts stay
    assert sum(p.link.url == CONTACT for p in audit.problems) == 10
    assert page.count('<a href="https://www.sclero.org/about/contact-us.html">') == 1 + 10


def test_the_json_keeps_the_fixes_before_first_report_which_the_index_still_reads(
        tmp_path: Path) -> None:
    """A field after "first_report" would push it out of the 4 KB tail the
    index reads (20 long addresses): the first report's row would read
    "0 0" again instead of "– –"."""
    links = [r for k in range(BULK_SHOWN) for r in
             footer(f"https://www.sclero.org/nav/{'x' * 300}/{k}.html", "expired", "http_404", range(3))]
    audit = audit_from(links, pages(3))
    assert audit.first_report and len(audit.bulk_fixes.links) == BULK_SHOWN
    data = json.loads(render_json(audit))
    assert list(data)[-2:] == ["bulk_fixes", "first_report"]
    assert [s["pages"] for s in data["bulk_fixes"]["links"]] == [3] * BULK_SHOWN
    assert data["bulk_fixes"]["links"][0]["status"] == "expired"
    saved = save_report(audit, tmp_path, Source("a" * 32, runs={7: audit.run.started_at}))
    text = saved.json.read_text(encoding="utf-8")
    assert len(text) - text.index('"bulk_fixes"') > 4096
    index = render_index(tmp_path, site="www.sclero.org", source=Source("a" * 32, runs={7: audit.run.started_at}))
    row = next(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
               for r in re.findall(r"<tr>(.*?)</tr>", index, re.S) if "run-7" in r or "2026-11-23" in r)
    assert "\u2013 \u2013" in html.unescape(row), row


def test_the_mail_shows_the_fixes_where_they_fit_and_never_instead_of_rows(
        site_db: Path, tmp_path: Path) -> None:
    small = audit_from(footer(CONTACT, "expired", "http_404", range(3)), pages(3))
    msg = build_report_message(small, sender="m@sclero.org", recipients=["w@sclero.org"],
                               message_id="<a@sclero.org>")
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_content()
    assert "ONE FIX, MANY ROWS" in text and CONTACT + " answers 404 on 3 pages" in text

    audit = site_audit(site_db, tmp_path)  # 2,000 links: a summary of what fits in 30 KB

    def fits(html_part: str, text_part: str) -> bool:
        return len(html_part.encode()) + len(text_part.encode()) <= 30_000

    with_lines = render_email(audit, fits, max_bytes=30_000)
    without = render_email(replace(audit, bulk_fixes=BulkFixes()), fits, max_bytes=30_000)
    assert "The newest problems" in with_lines[0]
    shown = re.search(r"here are (\d+) of its", with_lines[0])
    shown_without = re.search(r"here are (\d+) of its", without[0])
    assert shown and shown_without and shown.group(1) == shown_without.group(1)
