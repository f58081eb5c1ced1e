"""One fix, many rows: a rewrite many sites made is one line (walkthrough 12).

On the benchmark's 100,000 links, 372 publishers had each moved /doi/... to
/doi/full/...: "One fix, many rows" gave 20 near-identical lines, one per
host, and "352 more". A hosting platform changing its journals' addresses,
or hundreds of sites moving to https, is one search and replace: now a
rewrite that `BULK_MIN_HOSTS` hosts or more made, each on its own host, is
one line naming the hosts, in the saved report, the mail and the JSON
("rewrites", with every host). A move to another host stays a line per host.
"""

from __future__ import annotations

import html
import json
import re

import pytest

from monitor.types import LinkResult
from reports.audit import BULK_MIN_HOSTS, BULK_SHOWN, BulkFixes, HostMove, SharedRewrite
from reports.mail import build_report_message
from reports.render import bulk_lines, render_json, render_page
from reports.wording import bulk_more_line, shared_rewrite_line
from tests.test_bulk_fixes import TOPIC, pages
from tests.test_render import audit_from, result

DOI = ("https://{h}/doi/10.1/{h}-{i}", "https://{h}/doi/full/10.1/{h}-{i}")
HTTPS = ("http://{h}/article/{i}", "https://{h}/article/{i}")
BOTH = ("http://{h}/doi/10.1/{i}", "https://{h}/doi/full/10.1/{i}")
ABS = ("https://{h}/abs/{i}", "https://{h}/full/{i}")
AWAY = ("https://{h}/doi/{i}", "https://new.example.com/doi/{i}")


def rows(host: str, n: int, how: tuple[str, str], *, on: int | None = None) -> list[LinkResult]:
    """n moved citations of `host`, rewritten `how` (old, new address
    patterns), spread over 3 pages (or all on page `on`)."""
    h = f"{host}.example.org"
    return [result(how[0].format(h=h, i=i), "moved", "permanent_redirect",
                   page=TOPIC.format(i % 3 if on is None else on), title=f"Study {h} {i}", http_status=301,
                   suggested_url=how[1].format(h=h, i=i))
            for i in range(n)]


def moves_of(b: BulkFixes) -> list[tuple[object, ...]]:
    return [("rewrite", m.hosts, m.old_scheme, m.new_scheme, m.old_part, m.new_part, m.same_paths, m.links)
            if isinstance(m, SharedRewrite) else ("host", m.host, m.new_host, m.old_part, m.new_part, m.links)
            for m in b.moves]


def hosts(*names: str) -> tuple[str, ...]:
    return tuple(f"{n}.example.org" for n in names)


CASES = [
    ("2 hosts sharing a path change stay a line each",
     rows("a", 5, DOI) + rows("b", 6, DOI),
     [("host", "b.example.org", "b.example.org", "/doi/", "/doi/full/", 6),
      ("host", "a.example.org", "a.example.org", "/doi/", "/doi/full/", 5)]),
    ("3 hosts sharing it are one line, the host with most rows named first",
     rows("a", 5, DOI) + rows("b", 6, DOI) + rows("c", 5, DOI),
     [("rewrite", hosts("b", "a", "c"), "", "", "/doi/", "/doi/full/", False, 16)]),
    ("3 hosts under 5 moved URLs each: the one change clears 5 rows",
     rows("a", 2, DOI) + rows("b", 2, DOI) + rows("c", 1, DOI),
     [("rewrite", hosts("a", "b", "c"), "", "", "/doi/", "/doi/full/", False, 5)]),
    ("3 hosts with 3 moved URLs in all are not enough",
     rows("a", 1, DOI) + rows("b", 1, DOI) + rows("c", 1, DOI), []),
    ("3 sites from http to https, same paths",
     rows("a", 2, HTTPS) + rows("b", 2, HTTPS) + rows("c", 2, HTTPS),
     [("rewrite", hosts("a", "b", "c"), "http", "https", "", "", True, 6)]),
    ("a scheme change and a path change are two rewrites",
     rows("a", 2, HTTPS) + rows("b", 2, HTTPS) + rows("c", 2, HTTPS)
     + rows("d", 2, DOI) + rows("e", 3, DOI) + rows("f", 2, DOI),
     [("rewrite", hosts("e", "d", "f"), "", "", "/doi/", "/doi/full/", False, 7),
      ("rewrite", hosts("a", "b", "c"), "http", "https", "", "", True, 6)]),
    ("the path change with https is its own rewrite",
     rows("a", 2, BOTH) + rows("b", 2, BOTH) + rows("c", 2, BOTH) + rows("d", 5, DOI),
     [("rewrite", hosts("a", "b", "c"), "http", "https", "/doi/", "/doi/full/", False, 6),
      ("host", "d.example.org", "d.example.org", "/doi/", "/doi/full/", 5)]),
    ("hosts moving to another host stay a line each, even to the same one",
     rows("a", 5, AWAY) + rows("b", 5, AWAY) + rows("c", 5, AWAY),
     [("host", f"{h}.example.org", "new.example.com", "", "", 5) for h in "abc"]),
    ("a host with two rewrites: in the shared line, and in a line of its own",
     rows("a", 2, DOI) + rows("b", 2, DOI) + rows("c", 2, DOI) + rows("a", 5, ABS),
     [("rewrite", hosts("a", "b", "c"), "", "", "/doi/", "/doi/full/", False, 6),
      ("host", "a.example.org", "a.example.org", "/abs/", "/full/", 5)]),
    ("mixed: the most rows first among shared rewrites and hosts",
     rows("a", 1, DOI) + rows("b", 1, DOI) + rows("c", 3, DOI) + rows("d", 7, ABS) + rows("e", 6, AWAY)
     + rows("f", 4, DOI),
     [("rewrite", hosts("f", "c", "a", "b"), "", "", "/doi/", "/doi/full/", False, 9),
      ("host", "d.example.org", "d.example.org", "/abs/", "/full/", 7),
      ("host", "e.example.org", "new.example.com", "", "", 6)]),
]


@pytest.mark.parametrize(("links", "moves"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_rewrite_shared_by_three_hosts_is_one_line(links: list[LinkResult],
                                                     moves: list[tuple[object, ...]]) -> None:
    audit = audit_from(links, pages(3))
    assert BULK_MIN_HOSTS == 3
    assert moves_of(audit.bulk_fixes) == moves
    assert len(audit.problems) == len(links)  # every row stays a row, and counted


def test_shared_rewrites_and_hosts_share_the_cap_the_most_rows_first_the_rest_counted() -> None:
    """25 rewrites of 5-10 rows (3 hosts each) and 5 hosts of 11, 10, 5, 5, 5
    rows: the 20 biggest lines are the host of 11, the four rewrites of 10,
    the host of 10 (a shared rewrite first at equal rows), the rewrites of
    9, 8, 7, and two of the four of 6."""
    links = []
    for k in range(25):
        how = (f"https://{{h}}/v{k}/{{i}}", f"https://{{h}}/v{k}/full/{{i}}")
        links += rows(f"r{k}x", 2, how) + rows(f"r{k}y", 2, how) + rows(f"r{k}z", 1 + k % 6, how)
    for k, n in enumerate((11, 10, 5, 5, 5)):
        links += rows(f"h{k}", n, AWAY)
    b = audit_from(links, pages(3)).bulk_fixes
    assert len(b.rewrites) == 18 and len(b.hosts) == 2 and len(b.moves) == BULK_SHOWN
    assert b.more_rewrites == 7 and b.more_hosts == 3
    assert [m.links for m in b.moves] == [11] + [10] * 5 + [9] * 4 + [8] * 4 + [7] * 4 + [6] * 2
    assert [isinstance(m, HostMove) for m in b.moves][:6] == [True, False, False, False, False, True]
    assert bulk_more_line(b.more_links, b.more_hosts, b.more_rewrites) == (
        "And 3 more hosts whose links moved the same way and 7 more changes that several sites made "
        "to their addresses, in the rows below.")


def rewrite(n_hosts: int, **kw: object) -> SharedRewrite:
    fields: dict[str, object] = dict(hosts=tuple(f"journal{i}.example.org" for i in range(n_hosts)),
                                     old_scheme="", new_scheme="", old_part="/doi/", new_part="/doi/full/",
                                     same_paths=False, replace_gives_new=True, urls=4013, links=4013, pages=500,
                                     first_page=TOPIC.format(0), place="fix")
    return SharedRewrite(**{**fields, **kw})  # type: ignore[arg-type]


LINES = [
    ("a path change, 372 sites", rewrite(372),
     "372 sites changed /doi/ to /doi/full/ in their addresses: 4013 links on 500 pages "
     "(journal0.example.org, journal1.example.org, journal2.example.org and 369 more); "
     "replace \u201c/doi/\u201d with \u201c/doi/full/\u201d in these sites\u2019 addresses"),
    ("http to https, same paths, 3 sites: all named",
     rewrite(3, old_scheme="http", new_scheme="https", old_part="", new_part="", same_paths=True,
             urls=6, links=6, pages=1),
     "3 sites moved from http to https, same paths: 6 links on 1 page "
     "(journal0.example.org, journal1.example.org and journal2.example.org); "
     "replace \u201chttp://\u201d with \u201chttps://\u201d in these sites\u2019 addresses"),
    ("both at once, 1204 sites", rewrite(1204, old_scheme="http", new_scheme="https"),
     "1204 sites changed /doi/ to /doi/full/ in their addresses (and moved from http to https): "
     "4013 links on 500 pages (journal0.example.org, journal1.example.org, journal2.example.org and "
     "1201 more); replace \u201c/doi/\u201d with \u201c/doi/full/\u201d and \u201chttp://\u201d with "
     "\u201chttps://\u201d in these sites\u2019 addresses"),
]


@pytest.mark.parametrize(("move", "line"), [c[1:] for c in LINES], ids=[c[0] for c in LINES])
def test_the_line_names_what_to_replace_with_what(move: SharedRewrite, line: str) -> None:
    assert shared_rewrite_line(move) == line


def test_the_saved_report_and_the_mail_say_it_once_linking_its_first_row() -> None:
    """4 journals of one platform, 7 rows: no host had the 5 moved URLs a
    line of its own needs, so before this the block was not there at all.
    Its first row is journal-b's, on the second page of the report."""
    links = (rows("journal-a", 3, DOI, on=3) + rows("journal-b", 1, DOI, on=1) + rows("journal-c", 2, DOI, on=2)
             + rows("journal-d", 1, DOI, on=4))
    audit = audit_from(links, pages(5))
    page = render_page(audit)
    top = page[: page.index('id="needs-fixing"')]
    block = top[top.index('id="bulk-fixes"'):]
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", block)))
    line = ("4 sites changed /doi/ to /doi/full/ in their addresses: 7 links on 4 pages "
            "(journal-a.example.org, journal-c.example.org, journal-b.example.org and 1 more); "
            "replace \u201c/doi/\u201d with \u201c/doi/full/\u201d in these sites\u2019 addresses")
    assert line + " (first: " in text
    assert text.count("changed /doi/ to /doi/full/") == 1
    firsts = re.findall(r'\(first: <a href="#([^"]+)">', block)
    assert firsts == ["fix-" + audit.page_slugs[TOPIC.format(1)]]
    assert f'id="{firsts[0]}"' in page
    assert [b.page for b in bulk_lines(audit)] == [TOPIC.format(1)]
    # the line names three sites; a replace scoped to them needs all four, listed under it
    assert ('<details class="more-pages"><summary>The 4 sites</summary>journal-a.example.org · '
            "journal-c.example.org · journal-b.example.org · journal-d.example.org</details>") in block
    msg = build_report_message(audit, sender="m@sclero.org", recipients=["w@sclero.org"],
                               message_id="<a@sclero.org>")
    plain = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_content()
    assert "ONE FIX, MANY ROWS" in plain and line in re.sub(r"\s+", " ", plain)
    mail = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_content()
    assert "journal-a.example.org" in mail and "The 4 sites" not in mail  # a mail has no folds


def test_a_rewrite_of_three_sites_names_them_all_in_its_line_and_lists_nothing_more() -> None:
    links = rows("journal-a", 2, DOI, on=1) + rows("journal-b", 2, DOI, on=2) + rows("journal-c", 1, DOI, on=3)
    block = render_page(audit_from(links, pages(4)))
    block = block[block.index('id="bulk-fixes"'):block.index('id="needs-fixing"')]
    assert "journal-a.example.org, journal-b.example.org and journal-c.example.org" in block
    assert "<details" not in block


def test_the_json_lists_every_host_of_a_shared_rewrite_and_keeps_the_keys_it_had() -> None:
    links = [r for k in range(25) for r in rows(f"j{k}", 1, DOI)] + rows("gone", 5, AWAY)
    data = json.loads(render_json(audit_from(links, pages(3))))
    bulk = data["bulk_fixes"]
    assert list(bulk) == ["links", "hosts", "more_links", "more_hosts", "rewrites", "more_rewrites"]
    assert list(data)[-2:] == ["bulk_fixes", "first_report"]
    assert bulk["hosts"] == [{"host": "gone.example.org", "new_host": "new.example.com", "new_scheme": "",
                              "old_part": "", "new_part": "", "same_paths": True, "urls": 5, "links": 5,
                              "pages": 3, "first_page": TOPIC.format(0), "place": "fix"}]
    assert bulk["rewrites"] == [{"hosts": [f"j{k}.example.org" for k in range(25)], "old_scheme": "",
                                 "new_scheme": "", "old_part": "/doi/", "new_part": "/doi/full/",
                                 "same_paths": False, "replace_gives_new": True, "urls": 25, "links": 25,
                                 "pages": 1,
                                 "first_page": TOPIC.format(0), "place": "fix"}]
    assert bulk["more_hosts"] == bulk["more_rewrites"] == 0


EN = ("https://{h}/article/{i}", "https://{h}/en/article/{i}")  # a segment put in front of the path
ROOT = ("https://{h}/{i}.html", "https://{h}/archive/{i}.html")  # ... before a file at the root
QUERY = ("http://{h}/article?id={i}&from=rss", "https://{h}/article?id={i}")  # https, a tag dropped
DOI_QUERY = ("https://{h}/doi/10.1/{i}?cookieSet=1", "https://{h}/doi/full/10.1/{i}")


@pytest.mark.parametrize(("how", "said"), [
    (EN, "3 sites changed /article/ to /en/article/ in their addresses: 6 links on 2 pages "
         "(a.example.org, b.example.org and c.example.org); replace \u201c/article/\u201d with "
         "\u201c/en/article/\u201d in these sites\u2019 addresses"),
    (ROOT, None),  # no one replace does it: the rows give each new address
    (QUERY, "3 sites moved from http to https: 6 links on 2 pages (a.example.org, b.example.org and "
            "c.example.org); some changed more than that: the new addresses are in each row"),
    (DOI_QUERY, "3 sites changed /doi/ to /doi/full/ in their addresses: 6 links on 2 pages "
                "(a.example.org, b.example.org and c.example.org); some changed more than that: the new "
                "addresses are in each row"),
    (DOI, "3 sites changed /doi/ to /doi/full/ in their addresses: 6 links on 2 pages (a.example.org, "
          "b.example.org and c.example.org); replace \u201c/doi/\u201d with \u201c/doi/full/\u201d in "
          "these sites\u2019 addresses"),
], ids=["en-prefix", "root-prefix", "https-query-dropped", "doi-query-dropped", "doi"])
def test_a_replace_the_line_asks_for_gives_the_new_addresses(how: tuple[str, str], said: str | None) -> None:
    """Review 12 #1, #2: "/article/1" -> "/en/article/1" was "replace “/” with
    “/en/”" (every slash of the address), and an http -> https move that also
    dropped a tracking tag was "replace “http://” with “https://”"."""
    links = rows("a", 2, how) + rows("b", 2, how) + rows("c", 2, how)
    lines = [b.before for b in bulk_lines(audit_from(links, pages(3)))]
    assert lines == ([said] if said else [])
    for line in lines:
        swap = re.search(r"replace \u201c(.*?)\u201d with \u201c(.*?)\u201d", line)
        if swap:  # done to each old address, what the line asks gives its new one
            assert all(l.url.replace(*swap.groups(), 1) == l.suggested_url for l in links)
