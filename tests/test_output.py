"""monitor/output.py and the check command's printing: the contract's JSON
and CSV written link by link, and the terminal table fed from an iterator."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from monitor.output import (
    LINK_FIELDS,
    StatusTally,
    counts,
    history_dicts,
    link_dict,
    page_dict,
    tag_words,
    to_csv,
    to_json,
    moved_pages,
    unfetched_pages,
    url_spellings,
    write_csv,
    write_json,
    write_text,
)
from monitor.types import HistoryEntry, LinkKind, LinkResult, LinkStatus, PageRecord, RunInfo

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
RUN = RunInfo(id=7, started_at=T0, finished_at=T0 + dt.timedelta(minutes=3), status="finished")
PAGE = "https://www.sclero.org/treatments.html"
PAGES = [PageRecord(run_id=7, url=PAGE, status="ok", http_status=200, title="Traitements – Sjögren", links=3)]


def link(n: int, status: LinkStatus = LinkStatus.OK, **extra: object) -> LinkResult:
    base = LinkResult(
        page=PAGE, url=f"https://pubmed.ncbi.nlm.nih.gov/{n}/", text=f"Étude {n} «quote» \"x\"",
        section="Biologics", kind=LinkKind.CITATION, status=status, reason=status.value,
        http_status=200, final_url=None, suggested_url=None, strikes=0, failing_since=None,
        checked_at=T0, entry_date=dt.date(2019, 8, 1),
    )
    return replace(base, **extra)  # type: ignore[arg-type]


LINKS = [
    link(1),
    link(2, LinkStatus.EXPIRED, strikes=3, failing_since=T0 - dt.timedelta(days=9), http_status=404),
    link(3, LinkStatus.MOVED, suggested_url="https://new.example.org/3", kind=LinkKind.NAVIGATION),
    link(4, LinkStatus.SKIPPED, url="mailto:x@example.org", http_status=None, checked_at=None),
    link(1, text="=HYPERLINK(\"evil\")"),
]


def test_write_json_is_the_contract_document() -> None:
    out = io.StringIO()
    assert write_json(out, RUN, PAGES, iter(LINKS)) == len(LINKS)
    doc = json.loads(out.getvalue())
    assert list(doc) == ["run", "pages", "links"]
    assert doc["run"] == {"id": 7, "started_at": T0.isoformat(),
                          "finished_at": (T0 + dt.timedelta(minutes=3)).isoformat(), "status": "finished",
                          "partial": False}
    assert doc["pages"] == [{"url": PAGE, "status": "ok", "title": "Traitements – Sjögren", "links": 3,
                             "http_status": 200, "error": "", "moved_to": None, "not_modified": False}]
    assert doc["links"] == [link_dict(x) for x in LINKS]
    assert list(doc["links"][0]) == list(LINK_FIELDS)
    expired = doc["links"][1]
    assert (expired["status"], expired["strikes"], expired["failing_since"], expired["kind"]) == (
        "expired", 3, (T0 - dt.timedelta(days=9)).isoformat(), "citation")
    assert "Sjögren" in out.getvalue(), "UTF-8 text is written as is"


def test_links_carry_the_entry_date_after_the_earlier_fields_as_the_report_json_does() -> None:
    """Additive: after every earlier column, in the same order in JSON and CSV."""
    undated = replace(LINKS[0], entry_date=None)
    doc = json.loads(to_json(RUN, PAGES, [LINKS[0], undated]))
    assert [l["entry_date"] for l in doc["links"]] == ["2019-08-01", None]
    assert list(doc["links"][0])[:len(LinkResult.CONTRACT_FIELDS) + 9] == [
        *LinkResult.CONTRACT_FIELDS, "detail", "entry_title", "entry_source",
        "expired_mark", "flapping", "archived_url", "notice", "notice_detail", "entry_date"]
    rows = list(csv.reader(io.StringIO(write_csv_text([LINKS[0], undated]))))
    assert rows[0] == list(doc["links"][0])
    at = rows[0].index("entry_date")
    assert [row[at] for row in rows[1:]] == ["2019-08-01", ""]


def test_links_say_where_they_sit_in_the_source_after_every_earlier_field() -> None:
    """The href as written, its line and tag: additive, last, in JSON and CSV alike."""
    bg = link(9, LinkStatus.EXPIRED, url="https://www.sclero.org/img/bg-missing.png", kind=LinkKind.RESOURCE,
              text="", line=1234, written="/img/bg-missing.png", element="td", attribute="style")
    bare = link(10)
    doc = json.loads(to_json(RUN, PAGES, [bg, bare]))
    assert list(doc["links"][0])[-5:] == ["entry_date", "line", "written", "element", "attribute"]
    assert [(l["line"], l["written"], l["element"], l["attribute"]) for l in doc["links"]] == [
        (1234, "/img/bg-missing.png", "td", "style"), (None, "", "", "")]
    rows = list(csv.reader(io.StringIO(write_csv_text([bg, bare]))))
    assert rows[0] == list(doc["links"][0])
    assert [row[-4:] for row in rows[1:]] == [["1234", "/img/bg-missing.png", "td", "style"], ["", "", "", ""]]
    # an href is web text: a spreadsheet must not run it
    evil = link(11, written="=HYPERLINK(\"x\")")
    assert list(csv.reader(io.StringIO(write_csv_text([evil]))))[1][-3] == "'=HYPERLINK(\"x\")"


@pytest.mark.parametrize("char", ["\x7f", "\x80", "\x9b", "\x9f", "\u2028", "\u2029", "\u202a", "\u202e",
                                  "\u2066", "\u2069"])
@pytest.mark.parametrize("field", ["title", "text"])
@pytest.mark.parametrize("words", ["Sjögren", "Sjogren"])
def test_json_writes_what_a_terminal_would_obey_as_an_escape(char: str, field: str, words: str) -> None:
    """`jq` or `cat` of the output must not run an 8-bit CSI (U+009B) or
    reorder a line (bidi overrides): the character is written \\uXXXX, the
    same data for a JSON reader, in an otherwise ASCII line too; other text
    from the web stays as it is."""
    page = replace(PAGES[0], title=f"{words}{char}[2J")
    cited = link(12, text=f"{words}{char}x")
    written = to_json(RUN, [page] if field == "title" else [], [cited] if field == "text" else [])
    assert char not in written
    assert f"\\u{ord(char):04x}" in written
    doc = json.loads(written)
    assert (doc["pages"][0]["title"] if field == "title" else doc["links"][0]["text"]) == (
        f"{words}{char}[2J" if field == "title" else f"{words}{char}x")
    assert words in written, "other non-ASCII text is written as is"


def write_csv_text(links: list[LinkResult]) -> str:
    out = io.StringIO()
    write_csv(out, links)
    return out.getvalue()


def test_write_json_with_nothing_is_still_one_document() -> None:
    out = io.StringIO()
    write_json(out, RUN, [], iter(()))
    assert json.loads(out.getvalue()) == {"run": json.loads(to_json(RUN, [], []))["run"], "pages": [], "links": []}


def test_write_json_writes_each_link_before_reading_the_next() -> None:
    out = io.StringIO()

    def links() -> Iterator[LinkResult]:
        for n in range(5):
            if n:
                assert out.getvalue().count('"url": "https://pubmed') == n, "the previous link is out"
            yield link(n)

    write_json(out, RUN, PAGES, links())
    assert len(json.loads(out.getvalue())["links"]) == 5


def test_write_csv_has_the_json_columns_and_defuses_formulas() -> None:
    out = io.StringIO()
    assert write_csv(out, iter(LINKS)) == len(LINKS)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == list(LINK_FIELDS)
    assert rows[0][:13] == ["page", "url", "text", "section", "kind", "status", "reason", "http_status",
                            "final_url", "suggested_url", "strikes", "failing_since", "checked_at"]
    first = dict(zip(rows[0], rows[1]))
    assert (first["status"], first["kind"], first["final_url"], first["checked_at"]) == (
        "ok", "citation", "", T0.isoformat())
    assert dict(zip(rows[0], rows[5]))["text"] == "'=HYPERLINK(\"evil\")"
    assert len(rows) == len(LINKS) + 1


@pytest.mark.parametrize(("cell", "written"), [
    # OWASP's list: the first character
    ("=1+1", "'=1+1"),
    ("+1", "'+1"),
    ("-1", "'-1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("\tplain", "'\tplain"),
    ("\n=1", "'\n=1"),
    ("\r=1", "'\n=1"),  # a bare CR ends the row for a CSV reader: written as a line feed
    ("\x00=1", "'=1"),  # NUL (ASVS) is removed, what follows is judged
    # the same signs behind what a cell may begin with unseen
    (" =1", "' =1"),
    ("   +cmd", "'   +cmd"),
    ("\ufeff=HYPERLINK(\"x\")", "'\ufeff=HYPERLINK(\"x\")"),
    ("\u200b@x", "'\u200b@x"),
    ("\u00a0-2", "'\u00a0-2"),
    ("\u3000=1", "'\u3000=1"),
    (" \ufeff \u200d=1", "' \ufeff \u200d=1"),
    ("\x1b[31m=1", "[31m=1"),  # ESC removed: "[" comes first, no formula
    # fullwidth and small forms
    ("＝1+1", "'＝1+1"),
    ("＋1", "'＋1"),
    ("－1", "'－1"),
    ("＠SUM(A1)", "'＠SUM(A1)"),
    ("﹦1", "'﹦1"),
    (" ＝1", "' ＝1"),
    # left alone
    ("Étude 1", "Étude 1"),
    ("a = b", "a = b"),
    ("x-ray", "x-ray"),
    ("'=already", "'=already"),
    ("   ", "   "),
    ("", ""),
    ("1-2", "1-2"),
])
def test_csv_cells_a_spreadsheet_would_run_are_prefixed(cell: str, written: str) -> None:
    out = io.StringIO()
    write_csv(out, [link(1, text=cell, section=cell, entry_title=cell)])
    header, row = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    values = dict(zip(header, row))
    assert (values["text"], values["section"], values["entry_title"]) == (written, written, written)


@pytest.mark.parametrize(("cell", "written"), [
    ("x\r=HYPERLINK(\"evil\")", "x\n=HYPERLINK(\"evil\")"),
    ("x\r\n=1+1", "x\n=1+1"),
    ("a\rb\rc", "a\nb\nc"),
])
def test_a_carriage_return_in_a_cell_does_not_start_a_row(cell: str, written: str) -> None:
    """Python's csv quotes a cell holding a line feed but not one holding a
    bare CR (the line terminator is \\n): a reader, a spreadsheet among them,
    ended the row at the CR and read what followed as a new row's first
    cell, where no quote defused "=HYPERLINK(...)"."""
    out = io.StringIO()
    write_csv(out, [link(1, text=cell), link(2)])
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert len(rows) == 3 and all(len(row) == len(LINK_FIELDS) for row in rows)
    assert dict(zip(rows[0], rows[1]))["text"] == written


def test_tally_counts_each_url_once_by_its_first_status() -> None:
    tally = StatusTally()
    for x in LINKS:
        tally.add(x)
    assert tally.links == 5
    assert tally.counts() == counts(LINKS) == {
        "expired": 1, "moved": 1, "drifted": 0, "error": 0, "blocked": 0, "ok": 1, "skipped": 1}


@pytest.mark.parametrize("oldest", [True, False])
def test_text_says_an_oldest_archived_copy_is_to_check_as_the_report_does(oldest: bool) -> None:
    """`monitor check` printed an undated link's oldest copy bare, while the
    report's row asks the editor to check it first (verify 15 R1)."""
    gone = link(3, LinkStatus.EXPIRED, http_status=404, reason="http_404", entry_title="Entry 3", strikes=3,
                failing_since=T0 - dt.timedelta(days=9), archived_oldest=oldest,
                archived_url="https://web.archive.org/web/2015/https://pubmed.ncbi.nlm.nih.gov/3/")
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, iter([gone]))
    text = buffer.getvalue()
    assert "    archived copy: https://web.archive.org/web/2015/https://pubmed.ncbi.nlm.nih.gov/3/\n" in text
    said = "      (the oldest copy the archive holds: check it shows the article before you link it)\n"
    assert (said in text) is oldest


def test_text_lists_what_needs_a_person_by_status_and_counts_the_rest() -> None:
    many = [link(n, LinkStatus.EXPIRED if n % 3 == 0 else LinkStatus.OK, http_status=404, reason="http_404",
                 entry_title=f"Entry {n}", detail="The server answered 404 Not Found.",
                 strikes=3 if n % 3 == 0 else 0,
                 failing_since=T0 - dt.timedelta(days=9) if n % 3 == 0 else None,
                 archived_url=f"https://web.archive.org/web/2019/https://pubmed.ncbi.nlm.nih.gov/{n}/")
            for n in range(40)]
    moved = link(99, LinkStatus.MOVED, suggested_url="https://pubmed.ncbi.nlm.nih.gov/99/",
                 archived_url="https://web.archive.org/never-shown")
    buffer = io.StringIO()
    tally = write_text(buffer, RUN, PAGES, iter([moved, *many, LINKS[3], many[1]]))  # /1/ cited twice
    text = buffer.getvalue()
    assert tally.links == 43
    # the statuses in the order of what to fix first, whatever order the links came in
    assert (text.index("EXPIRED: 14 problems (14 links to 14 URLs)\n")
            < text.index("MOVED: 1 problem (1 link to 1 URL)\n"))
    for n in range(0, 40, 3):  # every flagged link, its URL whole on a line of its own
        assert f"\n    https://pubmed.ncbi.nlm.nih.gov/{n}/\n" in text
        assert f"  Entry {n}\n" in text
    assert "https://pubmed.ncbi.nlm.nih.gov/1/" not in text  # ok links are counted, not listed
    # the report's words; the bare detail ("The server answered 404 Not Found.") adds nothing
    assert "    The page is gone: the site answers 'not found' (HTTP 404).\n    archived copy" in text
    assert "http_404" not in text and "404 Not Found" not in text
    assert "    archived copy: https://web.archive.org/web/2019/https://pubmed.ncbi.nlm.nih.gov/3/\n" in text
    assert "    new address: https://pubmed.ncbi.nlm.nih.gov/99/\n" in text
    assert "never-shown" not in text  # a new address is the fix; no archived copy offered then
    assert "  Traitements – Sjögren > Biologics\n" in text
    # links where they are listed, distinct URLs in the summary: each line says which
    assert ("Not listed: 27 ok links to 26 URLs and 1 link not checked (mailto:, in-page jumps, excluded); "
            "--format csv") in text
    # the statuses count the links checked, as the report's line does, and add up to them
    assert ("run 7: 43 links: 42 checked (41 URLs), 1 not checked; the 42 checked: "
            "27 ok, 1 moved, 14 expired\n") in text


def test_text_names_the_unit_of_every_count() -> None:
    """Was: "EXPIRED: 3 links" above, "2 expired" on the last line (distinct
    URLs): a URL linked from two places is two links, one URL. Then "NEEDS
    FIXING: 24 links to 20 URLs" beside the report's "22 Needs fixing"
    (review 13 #2): the first figure is the report's, its rows (a link
    repeated on a page is one problem), the others named after it."""
    dead = link(1, LinkStatus.EXPIRED, reason="http_404", entry_title="Entry 1")
    links = [dead, replace(dead, section="Other", entry_title="Entry 1 again", line=80),
             link(2, LinkStatus.EXPIRED, reason="http_404", entry_title="Entry 2"),
             replace(dead, line=90)]  # the first one again, lower on the page: one problem, 2 times
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, iter(links))
    text = buffer.getvalue()
    assert "\n  Entry 1 (2 times on this page)\n" in text
    assert "\nNEEDS FIXING: 3 problems (4 links to 2 URLs)\n" in text, text
    assert "\nEXPIRED: 3 problems (4 links to 2 URLs)\n" in text, text
    assert text.endswith("\nrun 7: 4 links: 4 checked (2 URLs); the 4 checked: 4 expired\n"), text


def test_a_named_page_goes_by_its_name_in_its_heading_and_its_blocks() -> None:
    """The heading said the page's HTML title, the blocks under it the configured name."""
    page = replace(PAGES[0], name="Sjögren (fr)")
    buffer = io.StringIO()
    write_text(buffer, RUN, [page], iter([link(1, LinkStatus.EXPIRED, reason="http_404")]))
    text = buffer.getvalue()
    assert text.startswith(f"Sjögren (fr)\n  {PAGE}: 3 links\n")
    assert "\n  Sjögren (fr) > Biologics\n" in text
    assert "Traitements" not in text


def test_an_entry_already_marked_expired_is_listed_apart_as_the_report_does() -> None:
    """The report lists it under "Marked 'Expired Article' and the link is
    still dead", not among the problems; the listing showed it as any other
    EXPIRED link, then under NEEDS FIXING with "(already marked ...)"."""
    marked = link(2, LinkStatus.EXPIRED, reason="http_404", entry_title="Old trial", expired_mark=True)
    plain = link(3, LinkStatus.EXPIRED, reason="http_404", entry_title="Other trial")
    untitled = link(4, LinkStatus.ERROR, reason="timeout", text="", expired_mark=True)
    moved = link(5, LinkStatus.MOVED, entry_title="Moved trial", expired_mark=True,
                 suggested_url="https://pubmed.ncbi.nlm.nih.gov/55/")  # a plain fix: still a problem
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, [marked, plain, untitled, moved])
    text = buffer.getvalue()
    fixing, apart = text.split("\nALREADY MARKED (Expired Article), STILL DEAD: 2 links")
    assert "\nNEEDS FIXING: 2 problems (2 links to 2 URLs)\n" in fixing
    assert "\n  Other trial\n" in fixing and "\n  Moved trial\n" in fixing and "Old trial" not in fixing
    assert "\n  Old trial\n" in apart and "\n  Traitements – Sjögren > Biologics\n" in apart
    assert "Other trial" not in apart


@pytest.mark.parametrize(("element", "attribute", "words"), [
    ("a", "href", ""),  # a plain link: the line and text find it
    ("", "", ""),  # unknown (a link recorded before these were kept)
    ("td", "style", "in the style attribute of a <td>"),
    ("div", "style", "in the style attribute of a <div>"),
    ("style", "url", "in a <style> block"),
    ("style", "@import", "in an @import of a <style> block"),
    ("img", "src", "in the src of an <img>"),
    ("img", "srcset", "in the srcset of an <img>"),
    ("link", "href", "in the href of a <link>"),
    ("td", "background", "in the background of a <td>"),
    ("area", "href", "in the href of an <area>"),
])
def test_tag_words_name_the_element_holding_a_link(element: str, attribute: str, words: str) -> None:
    assert tag_words(element, attribute) == words


def test_the_listing_says_where_each_link_sits_in_the_source() -> None:
    """A relative href is not found by searching the source for the absolute
    URL, and an image has no text: the block gives its line, the href as
    written and its element; a repeated link, every line."""
    bg = link(9, LinkStatus.EXPIRED, reason="http_404", url="https://www.sclero.org/img/bg-missing.png",
              kind=LinkKind.RESOURCE, text="", entry_title="", line=1234, written="/img/bg-missing.png",
              element="td", attribute="style")
    again = replace(bg, line=1290)
    cited = link(2, LinkStatus.EXPIRED, reason="http_404", line=40, element="a", attribute="href")
    hostile = replace(cited, url="https://x.org/", written="x.org/\x1b[2J\u202e", line=None)
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, [bg, again, cited, hostile])
    text = buffer.getvalue()
    assert ("    https://www.sclero.org/img/bg-missing.png\n"
            "    lines 1234, 1290, written as /img/bg-missing.png, in the style attribute of a <td>\n") in text
    assert "(2 times on this page)" in text
    assert "    https://pubmed.ncbi.nlm.nih.gov/2/\n    line 40\n" in text
    assert "    written as x.org/ [2J\n" in text and "\x1b" not in text and "\u202e" not in text


def test_text_of_a_run_whose_only_page_failed() -> None:
    page = PageRecord(run_id=7, url=PAGE, status="error", error="connection refused")
    buffer = io.StringIO()
    write_text(buffer, RUN, [page], [])
    assert buffer.getvalue() == (f"{PAGE}\n  0 links; could not be fetched: connection refused\n"
                                 "\nrun 7: 0 links.\n")


def _page(url: str, status: str = "ok", http_status: int | None = 200, error: str = "") -> PageRecord:
    return PageRecord(run_id=7, url=url, status=status, http_status=http_status, error=error)


A, B, C = (f"https://www.sclero.org/{n}.html" for n in "abc")


@pytest.mark.parametrize(("pages", "configured", "given", "expected"), [
    ([_page(A), _page(B, "not_modified", 304)], [A, B], [], []),
    ([_page(A), _page(B, "error", 404, "HTTP 404: the page is not at this address"), _page(C)], [A, B, C], [],
     ["1 of 3 pages could not be fetched; its links were not checked:",
      f"  {B}: HTTP 404: the page is not at this address (check its [[pages]] url in m.toml)"]),
    # the site down: each page named, the address blamed only when the name is unknown
    ([_page(A, "error", None, "the server could not be reached (DNS: name www.sclero.org not found)"),
      _page(B, "error", None, "timed out after 15 s")], [A, B], [],
     ["2 of 2 pages could not be fetched; their links were not checked:",
      f"  {A}: the server could not be reached (DNS: name www.sclero.org not found) "
      "(check its [[pages]] url in m.toml)",
      f"  {B}: timed out after 15 s"]),
    # a --page URL that is not configured is pointed at where it was typed
    ([_page(C, "error", 410, "HTTP 410")], [A], [C],
     ["1 of 1 page could not be fetched; its links were not checked:",
      f"  {C}: HTTP 410 (check the --page URL)"]),
    # refused by the configuration's policy: the file and the key, not the url, to look at
    ([_page(A, "error", None, 'refused by checker.connect_to ("*" = "refuse"): www.sclero.org is not '
                              "mapped there, so the page was not requested")], [A], [],
     ["1 of 1 page could not be fetched; its links were not checked:",
      f'  {A}: refused by checker.connect_to in m.toml ("*" = "refuse"): www.sclero.org is not '
      "mapped there, so the page was not requested"]),
    ([_page(C, "error", None, "refused by policy: 10.0.0.1 -> 10.0.0.1 is not a public address "
                              "(checker.allow_private_networks)")], [A], [C],
     ["1 of 1 page could not be fetched; its links were not checked:",
      f"  {C}: refused by policy: 10.0.0.1 -> 10.0.0.1 is not a public address "
      "(checker.allow_private_networks in m.toml)"]),
    # what to write is said, the file named after the key (walkthrough 9 #17)
    ([_page(C, "error", None, "refused by policy: 10.0.0.1 -> 10.0.0.1 is not a public address "
                              '(checker.allow_private_networks; to check it: allow_private_networks '
                              '= ["10.0.0.1/32"] under [checker])')], [A], [C],
     ["1 of 1 page could not be fetched; its links were not checked:",
      f"  {C}: refused by policy: 10.0.0.1 -> 10.0.0.1 is not a public address "
      '(checker.allow_private_networks in m.toml; to check it: allow_private_networks = ["10.0.0.1/32"] '
      "under [checker])"]),
    # a page of a crawled site: neither
    ([_page(C, "error", 404, "HTTP 404\n\x1b[2J")], [A], [],
     ["1 of 1 page could not be fetched; its links were not checked:", f"  {C}: HTTP 404 [2J"]),
])
def test_unfetched_pages_are_named_with_where_to_fix_them(
        pages: list[PageRecord], configured: list[str], given: list[str], expected: list[str]) -> None:
    assert unfetched_pages(pages, source="m.toml", configured=configured, given=given) == expected


def test_unfetched_pages_beyond_the_cap_are_counted() -> None:
    pages = [_page(f"https://x.example/{i}", "error", 503, "HTTP 503") for i in range(14)]
    lines = unfetched_pages(pages, source="m.toml", shown=10)
    assert lines[0].startswith("14 of 14 pages could not be fetched")
    assert len(lines) == 12 and lines[-1].startswith("  ... and 4 more (--format json lists them")


def test_json_pages_say_where_a_page_moved_last_and_additively() -> None:
    """A page whose address redirects permanently: pages[].moved_to, a new
    last key (null when not moved), the contract's keys unchanged before it."""
    moved = replace(PAGES[0], moved_to="https://www.sclero.org/new/treatments.html")
    doc = json.loads(to_json(RUN, [moved, PAGES[0]], []))
    assert list(doc["pages"][0]) == ["url", "status", "title", "links", "http_status", "error", "moved_to",
                                     "not_modified"]
    assert [p["moved_to"] for p in doc["pages"]] == ["https://www.sclero.org/new/treatments.html", None]


@pytest.mark.parametrize("pages, configured, given, expected", [
    ([_page(A), _page(B, "not_modified", 304)], [A, B], [], []),
    # a configured page: the file to update; only pages that moved are named
    ([_page(A), replace(_page(B), moved_to="https://www.sclero.org/b2.html")], [A, B], [],
     [f"{B}: permanently redirects to https://www.sclero.org/b2.html; update its [[pages]] url in m.toml"]),
    # a 304 through the redirect says it too
    ([replace(_page(A, "not_modified", 304), moved_to="https://new.example/a")], [A], [],
     [f"{A}: permanently redirects to https://new.example/a; update its [[pages]] url in m.toml"]),
    # a --page URL that is not configured: where it was typed
    ([replace(_page(C), moved_to="https://new.example/c")], [A], [C],
     [f"{C}: permanently redirects to https://new.example/c; use the new address with --page"]),
    # a Location is the server's text: it cannot forge lines or drive the terminal
    ([replace(_page(A), moved_to="https://new.example/a\n\x1b[2Jforged")], [A], [],
     [f"{A}: permanently redirects to https://new.example/a [2Jforged; update its [[pages]] url in m.toml"]),
])
def test_pages_that_redirect_permanently_are_named_with_where_to_update_them(
        pages: list[PageRecord], configured: list[str], given: list[str], expected: list[str]) -> None:
    assert moved_pages(pages, source="m.toml", configured=configured, given=given) == expected


def test_pages_that_redirect_beyond_the_cap_are_counted() -> None:
    pages = [replace(_page(f"https://x.example/{i}"), moved_to=f"https://y.example/{i}") for i in range(13)]
    lines = moved_pages(pages, source="m.toml", configured=[p.url for p in pages], shown=10)
    assert len(lines) == 11 and lines[9].startswith("https://x.example/9: permanently redirects to")
    assert lines[-1] == "... and 3 more pages that redirect (--format json lists them: pages[].moved_to)"


def test_text_keeps_what_came_from_the_web_on_its_line() -> None:
    """A title or section with newlines or terminal escapes cannot forge lines
    of the listing or drive the terminal."""
    hostile = link(5, LinkStatus.EXPIRED, entry_title="Real title\n    https://evil.example/\x1b[2J",
                   section="Sec\r\ntion", detail="gone\x07")
    page = replace(PAGES[0], title="Page\x1b]0;pwned\x07", status="error", error="boom\nline")
    buffer = io.StringIO()
    write_text(buffer, RUN, [page], [hostile])
    text = buffer.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "\n    https://evil.example/" not in text
    assert "  Real title     https://evil.example/ [2J\n" in text
    assert "could not be fetched: boom line\n" in text


@pytest.mark.parametrize("status, reason, strikes, since, flapping, expected", [
    (LinkStatus.OK, "ok", 0, None, False, "ok"),
    (LinkStatus.MOVED, "permanent_redirect", 0, None, False,
     "moved \u2014 This article has a new address  [permanent_redirect]"),
    (LinkStatus.EXPIRED, "soft_404", 2, dt.datetime(2026, 11, 21, 1, 54, tzinfo=dt.UTC), False,
     "expired \u2014 The site shows a 'page not found' page (while answering 200 OK); "
     "failed 2 checks in a row since 2026-11-21 01:54  [soft_404]"),
    (LinkStatus.ERROR, "http_503", 1, dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC), False,
     "error \u2014 The site had a server error (HTTP 503); failed 1 check in a row since 2026-11-20 06:00  "
     "[http_503]"),
    (LinkStatus.ERROR, "timeout", 3, dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC), True,
     "error \u2014 The site did not answer in time; failed 3 checks in a row since 2026-11-02 06:00; "
     "flapping (alternates between ok and failing)  [timeout]"),
])
def test_history_state_line(status: LinkStatus, reason: str, strikes: int, since: dt.datetime | None,
                            flapping: bool, expected: str) -> None:
    from monitor.cli import state_line
    from monitor.types import UrlState

    state = UrlState(url="https://example.org/", status=status, reason=reason, strikes=strikes,
                     failing_since=since, flapping=flapping)
    assert state_line(state) == expected


@pytest.mark.parametrize("status, reason, http, hops, ms, expected", [
    ("ok", "ok", 200, [], 32, "The link works. Answered 200 (32 ms)"),
    ("expired", "soft_404", 200, [], 24,
     "The site shows a 'page not found' page (while answering 200 OK). Answered 200 (24 ms)  [soft_404]"),
    ("moved", "permanent_redirect", 200, [(301, "https://new.org/a")], 68,
     "This article has a new address. Answered 301 to https://new.org/a; the new address answers 200 "
     "(68 ms)  [permanent_redirect]"),
    ("expired", "redirect_to_home", 200, [(301, "https://old.org/"), (302, "https://www.old.org/")], 111,
     "The link now lands on the site's home page: the article was removed. Answered 301 to "
     "https://old.org/; that address answered 302 to https://www.old.org/; that address answers 200 "
     "(111 ms)  [redirect_to_home]"),
    ("error", "connection_refused", None, [], 15,
     "The site's server refused the connection. No answer (15 ms)  [connection_refused]"),
    ("error", "dns", None, [], 4,  # one check proves no more than this
     "The site's name could not be found (DNS lookup failed). No answer (4 ms)  [dns]"),
])
def test_history_check_line_says_the_reports_words(status: str, reason: str, http: int | None,
                                                    hops: list[tuple[int, str]], ms: int, expected: str) -> None:
    """Review 13 #10: "moved    permanent_redirect   HTTP 200 ...  via 301 ..."
    spoke in tokens, and showed a moved link as "HTTP 200"."""
    from monitor.cli import _check_lines
    from monitor.types import HistoryEntry, Hop

    at = dt.datetime(2026, 11, 28, 1, 54, tzinfo=dt.UTC)
    url = "https://old.org/a"
    entry = HistoryEntry(run_id=1, checked_at=at, status=LinkStatus(status), reason=reason, http_status=http,
                         final_url=hops[-1][1] if hops else url, elapsed_ms=ms,
                         redirects=tuple(Hop(url, code, loc) for code, loc in hops))
    assert _check_lines(entry) == [f"  2026-11-28 01:54  {status:<8} {expected}"]
    menu = _check_lines(entry, "navigation")[0]
    assert ("This page has a new address" in menu) is (reason == "permanent_redirect")


# -- the listing piped into a reader that stops early (`| head`) ----------------------


async def test_a_reader_that_stops_early_gets_no_traceback(tmp_path, aiohttp_server) -> None:
    """`monitor check --format csv | head -1`: the audit is recorded, the
    rest of the listing is dropped without a word (no BrokenPipeError, no
    "Exception ignored" about a closed database)."""
    import asyncio
    import os
    import sys

    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        links = "".join(f'<p><a href="/a{i}">Article {i}</a></p>' for i in range(400))
        return web.Response(text=f"<html><head><title>P</title></head><body>{links}</body></html>",
                            content_type="text/html")

    async def article(request: web.Request) -> web.Response:
        return web.Response(text="<html><head><title>A</title></head><body>a</body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/{name}", article)
    server = await aiohttp_server(app)
    config = _one_page_config(tmp_path, server.port)
    for fmt in ("csv", "json", "text"):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before the first line is written
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "check", "--config", str(config), "--format", fmt,
            stdout=write_end, stderr=asyncio.subprocess.PIPE)
        os.close(write_end)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert err.decode() == "", (fmt, err.decode())
        assert proc.returncode == 0, fmt


async def test_check_loads_neither_the_scheduler_nor_the_report_templates(tmp_path, aiohttp_server) -> None:
    """`monitor check` schedules nothing and renders no report: APScheduler
    (7-17 ms) and Jinja2 stay unloaded, so its first request goes out sooner."""
    import asyncio
    import json
    import sys

    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(text='<html><head><title>P</title></head><body><a href="/a">A</a></body></html>',
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/a", page)
    server = await aiohttp_server(app)
    config = _one_page_config(tmp_path, server.port)
    program = (
        "import sys\n"
        "from monitor.cli import main\n"
        f"sys.argv = ['monitor', 'check', '--config', {str(config)!r}, '--format', 'json']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('apscheduler', 'jinja2')), code,"
        " file=sys.stderr)\n")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", program,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert err.decode() == "[] 0\n"
    assert [link["status"] for link in json.loads(out)["links"]] == ["ok"]


@pytest.mark.parametrize("fmt", ["json", "csv", "text"])
async def test_a_closed_output_is_one_line_and_the_audit_is_kept(tmp_path, aiohttp_server, fmt: str) -> None:
    """`monitor check --format json >&-` (no stdout at all): was "monitor:
    AttributeError: 'NoneType' object has no attribute 'flush'" after the
    audit was recorded (review 12 #6)."""
    import asyncio
    import sys

    from aiohttp import web

    from monitor.store import Store

    async def page(request: web.Request) -> web.Response:
        return web.Response(text='<html><head><title>P</title></head><body><a href="/a">A</a></body></html>',
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/a", page)
    server = await aiohttp_server(app)
    config = _one_page_config(tmp_path, server.port)
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", 'exec "$@" >&-', "sh",
        sys.executable, "-m", "monitor", "check", "--config", str(config), "--format", fmt,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert err.decode() == (
        f"monitor: the audit is recorded (run 1), but its results were not printed: the command's output "
        f"(stdout) is closed; `monitor report --config {config} --run 1` saves its report, or send the output "
        f"to a file: `monitor check --config {config} --format {fmt} > audit.{'txt' if fmt == 'text' else fmt}`\n")
    assert proc.returncode == 1
    with Store.open(tmp_path / "monitor.db") as store:
        run = store.get_run(1)
    assert run is not None and run.status == "finished"


@pytest.mark.parametrize(("typed", "stored"), [
    ("https://pubmed.ncbi.nlm.nih.gov/31197643", "https://pubmed.ncbi.nlm.nih.gov/31197643/"),
    ("https://pubmed.ncbi.nlm.nih.gov/31197643/", "https://pubmed.ncbi.nlm.nih.gov/31197643"),
    ("http://www.sclero.org/a.html", "https://www.sclero.org/a.html"),
    ("https://sclero.org/a.html", "https://www.sclero.org/a.html"),
    ("https://WWW.Sclero.org/a.html?x=1", "https://www.sclero.org/a.html?x=1"),
    ("https://example.org", "https://example.org/"),
    ("http://sclero.org/dir", "https://www.sclero.org/dir/"),
])
def test_url_spellings_include_the_stored_one(typed: str, stored: str) -> None:
    spellings = url_spellings(typed)
    assert stored in spellings and typed not in spellings


@pytest.mark.parametrize("typed", ["mailto:ed@example.org", "not a url", "ftp://x.org/a",
                                   "https://a[b/", "http://[::1/x"])  # urlsplit raises on these two
def test_url_spellings_of_what_is_no_web_address(typed: str) -> None:
    assert url_spellings(typed) == []


PAGE2 = "https://www.sclero.org/raynauds.html"
NEWS = "https://www.sclero.org/about/news/a-to-z.html"


def menu(page: str = PAGE, section: str = "", status: LinkStatus = LinkStatus.EXPIRED,
         text: str = "ISN News") -> LinkResult:
    return link(0, status, url=NEWS, page=page, section=section, text=text, kind=LinkKind.NAVIGATION,
                reason="http_404", detail="The server answered 404 Not Found.")


@pytest.mark.parametrize(
    ("links", "blocks"),
    [
        # the top bar and the footer of one page: nothing tells the copies apart
        ([menu(), menu()], ["ISN News (2 times on this page)"]),
        ([menu(), menu(), menu(PAGE2), menu(PAGE2)],
         ["ISN News (2 times on this page)", "ISN News (2 times on this page)"]),
        ([menu(), menu(PAGE2)], ["ISN News", "ISN News"]),
        # told apart by their section or their text: each its own block
        ([menu(), menu(section="Symptoms")], ["ISN News", "ISN News"]),
        ([menu(), menu(text="News")], ["ISN News", "News"]),
        ([menu(), menu(status=LinkStatus.BLOCKED)], ["ISN News", "ISN News"]),
        # three copies, counted as one block
        ([menu(), menu(), menu()], ["ISN News (3 times on this page)"]),
    ],
)
def test_text_merges_a_link_repeated_where_nothing_tells_the_copies_apart(
        links: list[LinkResult], blocks: list[str]) -> None:
    pages = [PAGES[0], PageRecord(run_id=7, url=PAGE2, status="ok", title="Raynaud's", links=2)]
    buffer = io.StringIO()
    tally = write_text(buffer, RUN, pages, iter(links))
    text = buffer.getvalue()
    titles = [line.strip() for line in text.splitlines() if line.strip().startswith(("ISN News", "News"))]
    assert titles == blocks
    assert text.count(f"\n    {NEWS}\n") == len(blocks)
    assert tally.links == len(links)  # the heading and the summary still count every link


def _seen(page: str, line: int | None, skip: str | None) -> object:
    from monitor.types import Citation

    return Citation(page_url=page, url=None, raw_href="x", anchor_text="", section="",
                    kind=LinkKind.CITATION, line=line, skip_reason=skip)


@pytest.mark.parametrize(("citations", "names", "expected"), [
    ([_seen(A, 118, "invalid_url")], {A: "Raynaud's treatments"},
     ["http://: malformed, never requested: it is not a valid address, so nobody can open it; "
      "fix the link on the page", f"  on Raynaud's treatments ({A}): line 118",
      "  listed since run 1 (2026-11-23)"]),
    # one page's lines together, another page after, a page without a name by its URL
    ([_seen(A, 12, "mailto"), _seen(A, 40, "mailto"), _seen(A, 40, "mailto"), _seen(B, None, "mailto")], {},
     ["http://: not checked: an e-mail address (mailto:), which the monitor does not request",
      f"  on {A}: lines 12, 40", f"  on {B}", "  listed since run 1 (2026-11-23)"]),
    ([_seen(A, 3, "gopher")], {}, ["http://: not checked (gopher)", f"  on {A}: line 3",
                                   "  listed since run 1 (2026-11-23)"]),
])
def test_a_link_never_requested_says_why_and_where(citations: list[object], names: dict[str, str],
                                                   expected: list[str]) -> None:
    """`monitor history http://` said "never checked (not found in the
    database)" of a link the report lists."""
    from monitor.output import sighting_lines

    assert sighting_lines("http://", citations, names, 1, T0) == expected


def test_csv_booleans_are_spelled_as_in_the_json() -> None:
    """Was "True"/"False" in the CSV, true/false in the JSON."""
    links = [link(1, flapping=True, expired_mark=False), link(2, flapping=False, expired_mark=True)]
    rows = list(csv.DictReader(io.StringIO(to_csv(links))))
    doc = json.loads(to_json(RUN, [], links))
    for row, obj in zip(rows, doc["links"]):
        for name in ("flapping", "expired_mark"):
            assert row[name] == json.dumps(obj[name]), (name, row[name])
    assert [r["flapping"] for r in rows] == ["true", "false"]
    assert rows[0]["strikes"] == "0"  # numbers stay numbers (an int is no boolean here)


# -- the listing speaks the report's words and groups as the report does ----------------------

HEADINGS = {"NEEDS FIXING", "NEEDS A PERSON", "WATCHING, MAY BE TEMPORARY"}
STATUSES = {s.value.upper() for s in LinkStatus} | {"PRIVATE ADDRESS"}


def listed(text: str) -> dict[str, tuple[str, str, list[str]]]:
    """Each listed URL -> (group heading, status heading, the lines of its
    block after the URL): where the listing puts it and what it says."""
    found: dict[str, tuple[str, str, list[str]]] = {}
    group = status = ""
    current: list[str] | None = None
    for line in text.splitlines():
        head = line.split(":")[0]
        if not line.startswith(" ") and head in HEADINGS:
            group, status, current = head, "", None
        elif not line.startswith(" ") and head in STATUSES:
            status, current = head, None
        elif line.startswith("    http") and current is None and group:
            current = found.setdefault(line.strip(), (group, status, []))[2]
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line)
    return found


NOT_FOUND = "The server answered 404 Not Found."
SLOW = "The server did not answer within the time limit."
INTRANET = "The address leads to a private or local network, which the monitor does not visit."


@pytest.mark.parametrize(("extra", "group", "status", "words", "detail"), [
    # the report's sentence, not "http_404: The server answered 404 Not Found."
    ({"status": LinkStatus.EXPIRED, "reason": "http_404", "http_status": 404, "detail": NOT_FOUND},
     "NEEDS FIXING", "EXPIRED", "The page is gone: the site answers 'not found' (HTTP 404).", None),
    # a site's own menu link: no "the publisher removed it" above it
    ({"status": LinkStatus.EXPIRED, "reason": "http_404", "http_status": 404, "detail": NOT_FOUND,
      "kind": LinkKind.NAVIGATION, "url": "https://www.sclero.org/about/news/"},
     "NEEDS FIXING", "EXPIRED", "The page is gone: the site answers 'not found' (HTTP 404).", None),
    # the check's detail says where the redirect ended: kept, on a quieter line
    ({"status": LinkStatus.EXPIRED, "reason": "http_404", "http_status": 404,
      "detail": "The server answered 404 Not Found at https://x.org/gone."},
     "NEEDS FIXING", "EXPIRED", "The page is gone: the site answers 'not found' (HTTP 404).",
     "The server answered 404 Not Found at https://x.org/gone."),
    # the intranet PDF: to fix (readers outside cannot open it), as in the report
    ({"status": LinkStatus.BLOCKED, "reason": "private_address", "http_status": None, "detail": INTRANET,
      "url": "http://10.0.0.5/protocol.pdf"},
     "NEEDS FIXING", "PRIVATE ADDRESS", "The link points at a private network address (an intranet or a local "
     "machine): readers outside that network cannot open it.", None),
    ({"status": LinkStatus.BLOCKED, "reason": "http_403", "http_status": 403,
      "detail": "The server answered 403 Forbidden; it refuses automated checks or needs an account."},
     "NEEDS A PERSON", "BLOCKED", "The site refuses automated checks (HTTP 403); please open it in a browser.",
     None),
    ({"status": LinkStatus.BLOCKED, "reason": "rate_limited", "http_status": 429,
      "detail": "The server answered 429 Too Many Requests after 3 attempts."},
     "NEEDS A PERSON", "BLOCKED", "The site asked us to slow down (too many requests); please open it in a "
     "browser.", "The server answered 429 Too Many Requests after 3 attempts."),
    # a first failure is watched, not to fix...
    ({"status": LinkStatus.ERROR, "reason": "timeout", "http_status": None, "detail": SLOW, "strikes": 1,
      "failing_since": T0},
     "WATCHING, MAY BE TEMPORARY", "ERROR", "The site did not answer in time.", None),
    # ...failures over more than a day are
    ({"status": LinkStatus.ERROR, "reason": "http_503", "http_status": 503, "strikes": 4,
      "failing_since": T0 - dt.timedelta(days=3), "detail": "The server answered 503 Service Unavailable."},
     "NEEDS FIXING", "ERROR", "The site had a server error (HTTP 503).", None),
    ({"status": LinkStatus.ERROR, "reason": "timeout", "http_status": None, "strikes": 3,
      "failing_since": T0 - dt.timedelta(days=2),
      "detail": "The server did not answer within the time limit (no answer after 15 s)."},
     "NEEDS FIXING", "ERROR", "The site did not answer in time.",
     "The server did not answer within the time limit (no answer after 15 s)."),
    ({"status": LinkStatus.MOVED, "reason": "permanent_redirect", "http_status": 301,
      "suggested_url": "https://pubmed.ncbi.nlm.nih.gov/77/", "detail": ""},
     "NEEDS FIXING", "MOVED", "PubMed moved this article to a new address.", None),
    ({"status": LinkStatus.DRIFTED, "reason": "title_mismatch",
      "detail": "The page's title is now 'Domain for sale'."},
     "NEEDS FIXING", "DRIFTED", "The page now shows a different article.",
     "The page's title is now 'Domain for sale'."),
    ({"status": LinkStatus.ERROR, "reason": "timeout", "http_status": None, "detail": SLOW, "strikes": 4,
      "failing_since": T0 - dt.timedelta(days=9), "flapping": True},
     "NEEDS FIXING", "ERROR",
     "The site did not answer in time. The link keeps switching between working and failing.", None),
])
def test_the_listing_says_each_link_in_the_reports_words_under_the_reports_group(
        extra: dict[str, object], group: str, status: str, words: str, detail: str | None) -> None:
    one = link(5, **extra)
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, [one])
    text = buffer.getvalue()
    where = listed(text)
    assert one.url in where, text
    got_group, got_status, lines = where[one.url]
    assert (got_group, got_status) == (group, status), text
    assert f"    {words}" in lines, text
    assert one.reason + ":" not in text  # no reason token where a sentence is due
    quiet = [line.strip() for line in lines if line.startswith("      ")]
    assert quiet == ([f"detail: {detail}"] if detail else []), text


def test_every_heading_holds_only_what_it_says() -> None:
    """The old headings named a cause ("EXPIRED (the publisher removed it)",
    "BLOCKED (... a person should look)") that the site's own 404 menu link
    and the intranet PDF under them did not have."""
    links = [
        link(1, LinkStatus.EXPIRED, reason="http_404", kind=LinkKind.NAVIGATION),
        link(2, LinkStatus.BLOCKED, reason="private_address", url="http://10.0.0.5/a.pdf"),
        link(3, LinkStatus.BLOCKED, reason="bot_challenge"),
        link(4, LinkStatus.ERROR, reason="dns", strikes=1, failing_since=T0),
    ]
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, links)
    text = buffer.getvalue()
    assert "publisher removed" not in text and "a person should look" not in text
    headings = [line for line in text.splitlines() if line.split(":")[0] in HEADINGS | STATUSES]
    assert headings == [
        "NEEDS FIXING: 2 problems (2 links to 2 URLs)", "EXPIRED: 1 problem (1 link to 1 URL)",
        "PRIVATE ADDRESS: 1 problem (1 link to 1 URL)",  # the report's badge, not BLOCKED (review 15 #2)
        "NEEDS A PERSON: 1 problem (1 link to 1 URL)", "BLOCKED: 1 problem (1 link to 1 URL)",
        "WATCHING, MAY BE TEMPORARY: 1 problem (1 link to 1 URL)", "ERROR: 1 problem (1 link to 1 URL)"], text
    assert text.rstrip().endswith("the 4 checked: 1 expired, 1 error, 1 blocked, 1 private address"), text


@pytest.mark.parametrize("sizes, private, said", [
    ({LinkStatus.OK: 62, LinkStatus.MOVED: 5, LinkStatus.EXPIRED: 11, LinkStatus.ERROR: 7,
      LinkStatus.BLOCKED: 4, LinkStatus.DRIFTED: 1, LinkStatus.SKIPPED: 15}, 1,
     "the 90 checked: 62 ok, 5 moved, 11 expired, 7 error, 3 blocked, 1 private address, 1 drifted"),
    ({LinkStatus.OK: 3, LinkStatus.BLOCKED: 2}, 2, "the 5 checked: 3 ok, 2 private addresses"),
    ({LinkStatus.BLOCKED: 1, LinkStatus.DRIFTED: 2}, 0, "the 3 checked: 1 blocked, 2 drifted"),
])
def test_the_checked_line_says_private_addresses_apart_as_the_report_does(
        sizes: dict[LinkStatus, int], private: int, said: str) -> None:
    """Review 15 #2: the report's "3 blocked · 1 private address", in the
    demo's and `check`'s last line too."""
    from monitor.output import checked_by_status

    assert checked_by_status(sizes, private) == said


def test_the_listing_says_a_watched_dns_failure_as_the_report_does() -> None:
    """Walkthrough 10 #14, on the terminal: "could not be found" while
    watched, "does not exist any more" once confirmed (monitor.wording)."""
    links = [link(1, LinkStatus.ERROR, reason="dns", strikes=1, failing_since=T0),
             link(2, LinkStatus.ERROR, reason="dns", strikes=5, failing_since=T0 - dt.timedelta(days=9))]
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, links)
    text = buffer.getvalue()
    watching, fixing = text.split("WATCHING, MAY BE TEMPORARY")[1], text.split("WATCHING")[0]
    assert "The site's name could not be found (DNS lookup failed)." in watching
    assert "does not exist any more" not in watching
    assert "The site's domain name does not exist any more (DNS lookup failed)." in fixing


def test_the_listing_groups_every_link_as_the_report_does() -> None:
    """One rule for both (monitor.wording.attention): the groups of the
    report built from the same links, at the run's end, are the listing's."""
    from monitor.config import ReportSettings
    from reports.audit import build_audit

    now = RUN.finished_at
    assert now is not None
    day = dt.timedelta(days=1)
    cases = [
        (LinkStatus.EXPIRED, "http_404", 1, now), (LinkStatus.EXPIRED, "soft_404", 5, now - 9 * day),
        (LinkStatus.MOVED, "permanent_redirect", 0, None), (LinkStatus.DRIFTED, "title_mismatch", 0, None),
        (LinkStatus.ERROR, "timeout", 1, now), (LinkStatus.ERROR, "timeout", 3, now - 2 * day),
        (LinkStatus.ERROR, "dns", 5, now - day / 2), (LinkStatus.ERROR, "invalid_url", 0, None),
        (LinkStatus.BLOCKED, "private_address", 0, None), (LinkStatus.BLOCKED, "http_403", 2, now - 3 * day),
        (LinkStatus.BLOCKED, "rate_limited", 1, now), (LinkStatus.BLOCKED, "robots_disallowed", 0, None),
    ]
    links = [link(n, status, reason=reason, strikes=strikes, failing_since=since, text=f"Entry {n}")
             for n, (status, reason, strikes, since) in enumerate(cases)]
    audit = build_audit(RUN, links, PAGES, previous_links=None, previous_pages=None, states={}, now=now,
                        settings=ReportSettings(), site_name="sclero.org")
    names = {"NEEDS FIXING": audit.needs_fixing, "NEEDS A PERSON": audit.needs_a_person,
             "WATCHING, MAY BE TEMPORARY": audit.watching}
    in_report = {p.link.url: heading for heading, groups in names.items()
                 for g in groups for s in g.sections for e in s.entries for p in e.problems}
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, links)
    in_listing = {url: group for url, (group, _, _) in listed(buffer.getvalue()).items()}
    assert in_listing == in_report
    assert set(in_report.values()) == set(names)  # every group is exercised


def test_the_classifiers_bare_sentences_are_not_said_twice() -> None:
    """Each error kind's own sentence restates the report's (no second line);
    with the network's error appended, or for a redirect to a non-web
    address (the plain words say only "not a web address"), it says more."""
    from monitor.classify import _KIND_DETAIL
    from monitor.errors import ErrorKind
    from monitor.output import says_more
    from monitor.wording import describe

    for kind, (_, detail) in _KIND_DETAIL.items():
        words = describe(str(kind))
        assert says_more(detail, words) is (kind is ErrorKind.UNSUPPORTED_SCHEME), kind
        assert says_more(f"{detail[:-1]} (Connection reset by peer).", words), kind


@pytest.mark.parametrize(("detail", "words", "more"), [
    ("The server answered 404 Not Found.", "The page is gone (HTTP 404)", False),
    ("The server answered 404 Not Found.", "The site shows a 'page not found' page", True),  # the code is news
    ("The server answered 410 Gone at https://x.org/b.", "The publisher removed this article (HTTP 410)", True),
    ("The server answered 403 Forbidden; it refuses automated checks or needs an account.",
     "The site refuses automated checks (HTTP 403)", False),
    ("The server answered 520 (Cloudflare could not get an answer from the site's own server).",
     "The site had a server error (HTTP 520)", True),
    ("The server answered 599.", "The site had a server error (HTTP 599)", False),
    ("", "anything", False),
    ("  The server answered\n404 Not Found. ", "The page is gone (HTTP 404)", False),
])
def test_a_detail_is_kept_when_it_says_more(detail: str, words: str, more: bool) -> None:
    from monitor.output import says_more

    assert says_more(detail, words) is more


@pytest.mark.parametrize(("strikes", "days", "said"), [
    # when it counts: failing since T0 - days, confirmed a day (confirm_after) later
    (1, 0, "    not confirmed yet: failed 1 check in a row so far; it counts if it still fails at a check "
           "after 2026-11-24 06:00 UTC\n"),
    (3, 0.25, "    not confirmed yet: failed 3 checks in a row so far; it counts if it still fails at a check "
              "after 2026-11-24 00:00 UTC\n"),
    (3, 9, None),  # confirmed: nothing more to say
])
def test_a_failure_not_confirmed_yet_says_so_under_needs_fixing(strikes: int, days: float,
                                                               said: str | None) -> None:
    """The report says "suspected: failed once so far" of an expired link
    seen failing once; the listing said nothing of it."""
    gone = link(6, LinkStatus.EXPIRED, reason="redirect_to_home", entry_title="Corbus", strikes=strikes,
                failing_since=T0 - dt.timedelta(days=days))
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, [gone])
    text = buffer.getvalue()
    assert "\nNEEDS FIXING: 1 problem (1 link to 1 URL)\n" in text
    assert (said in text) if said else ("not confirmed" not in text), text



@pytest.mark.parametrize(("status", "reason", "heading"), [
    (LinkStatus.EXPIRED, "http_404", "NEEDS FIXING"),  # a first 404: "not confirmed yet" under it
    (LinkStatus.ERROR, "http_5xx", "WATCHING, MAY BE TEMPORARY"),
])
def test_a_link_that_flaps_says_how_often_it_failed_not_that_it_failed_once(
        status: LinkStatus, reason: str, heading: str) -> None:
    """Walkthrough 11 #1: a link failing every third week read "failed 1 check
    in a row so far" each time; what it did over the year is the news."""
    from monitor.types import FailTally

    flaky = link(6, status, reason=reason, entry_title="Corbus", strikes=1, failing_since=T0, flapping=True)
    tally = FailTally(checks=52, failed=18, since=dt.datetime(2025, 11, 24, 6, tzinfo=dt.timezone.utc),
                      last_ok_at=T0 - dt.timedelta(weeks=1))
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, [flaky], flaps={flaky.url: tally})
    text = buffer.getvalue()
    assert f"\n{heading}: 1 problem (1 link to 1 URL)\n" in text
    assert ("    fails now and then: failed 18 of the last 52 checks, since 2025-11-24; last ok "
            f"{T0 - dt.timedelta(weeks=1):%Y-%m-%d}\n") in text, text
    assert "in a row" not in text
    # without the store's count, it still does not say "failed 1 check in a row"
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, [flaky])
    assert "    fails now and then\n" in buffer.getvalue() and "in a row" not in buffer.getvalue()


# -- where a link stands on the pages (monitor history) ---------------------------------

PA, PB = "https://www.sclero.org/a.html", "https://www.sclero.org/b.html"
WEEK = dt.timedelta(weeks=1)


def _where(reads: list[tuple[int, str, bool]], *, partial: tuple[int, ...] = (), reported: tuple[int, ...] = (),
           dropped: frozenset[str] = frozenset(), excluded: tuple[tuple[int, str], ...] = ()) -> object:
    """Reads (run, page, whether the link was on it) as `Store.whereabouts`
    gives them; `excluded`: the (run, page) reads that had it excluded."""
    from monitor.types import Citation, PageRead, Whereabouts

    ids = sorted({run for run, _, _ in reads})
    runs = tuple(RunInfo(id=i, started_at=T0 + (i - 1) * WEEK, status="finished", partial=i in partial,
                         reported_at=T0 + (i - 1) * WEEK if i in reported else None) for i in ids)
    listing = {page: max(run for run, p, on in reads if p == page and on) for _, page, on in reads if on}
    return Whereabouts(
        reads=tuple(PageRead(run, page, T0 + (run - 1) * WEEK, on, (run, page) in excluded)
                    for run, page, on in reads),
        last_cited=tuple(Citation(page_url=page, url="https://x.org/1", raw_href="https://x.org/1",
                                  anchor_text="Entry", section="", kind=LinkKind.CITATION, line=10 + listing[page],
                                  skip_reason="excluded" if (listing[page], page) in excluded else None)
                         for page in sorted(listing)),
        runs=runs, dropped=dropped, names={PA: "Page A"})


@pytest.mark.parametrize(("reads", "options", "flagged", "expected", "absent", "checked_now"), [
    # on one of its two pages still: cited there, as of that page's latest read
    ([(1, PA, True), (1, PB, True), (2, PA, False), (2, PB, True)], {}, True,
     [f"cited on {PB}: line 12, \u201cEntry\u201d (run 2, 2026-11-30)"], [], True),
    # off both, at different runs: since the later one; where it was last on each
    ([(1, PA, True), (1, PB, True), (2, PA, False), (2, PB, True), (3, PA, False), (3, PB, False)],
     {"reported": (1, 2, 3)}, True,
     ["not on any watched page since run 3 (2026-12-07): reported fixed",
      f"last on Page A ({PA}): line 11, \u201cEntry\u201d (run 1, 2026-11-23)",
      f"last on {PB}: line 12, \u201cEntry\u201d (run 2, 2026-11-30)"], [3], False),
    # off the page in a check of some pages, not reported yet: no "reported fixed"
    ([(1, PA, True), (2, PA, False)], {"partial": (2,), "reported": (1,)}, True,
     ["not on any watched page since run 2 (2026-11-30)",
      f"last on Page A ({PA}): line 11, \u201cEntry\u201d (run 1, 2026-11-23)"], [2], False),
    # a link that worked is not "reported fixed" when it leaves
    ([(1, PA, True), (2, PA, False)], {"reported": (1, 2)}, False,
     ["not on any watched page since run 2 (2026-11-30)",
      f"last on Page A ({PA}): line 11, \u201cEntry\u201d (run 1, 2026-11-23)"], [2], False),
    # removed, then restored; read before it was first listed: no gap said for that
    ([(1, PA, False), (2, PA, True), (3, PA, False), (4, PA, False), (5, PA, True)], {}, True,
     [f"cited on Page A ({PA}): line 15, \u201cEntry\u201d (run 5, 2026-12-21)"], [3, 4], True),
    # its page is no longer audited: cited as of its last read, not checked now
    ([(1, PA, True)], {"dropped": frozenset({PA})}, True,
     [f"cited on Page A ({PA}): line 11, \u201cEntry\u201d (run 1, 2026-11-23); that page is no longer audited"],
     [], False),
    # excluded by checker.exclude since run 2, having left its other page (which run 3
    # alone read): no longer checked
    ([(1, PA, True), (1, PB, True), (2, PA, True), (2, PB, False), (3, PB, False), (4, PA, True)],
     {"excluded": ((2, PA), (4, PA))}, True,
     [f"cited on Page A ({PA}): line 14, \u201cEntry\u201d (run 4, 2026-12-14)",
      "excluded by checker.exclude since run 2 (2026-11-30): no longer checked"], [3], False),
    # excluded on one of its pages only: still checked (on the other)
    ([(1, PA, True), (1, PB, True), (2, PA, True), (2, PB, True)], {"excluded": ((2, PA),)}, True,
     [f"cited on Page A ({PA}): line 12, \u201cEntry\u201d (run 2, 2026-11-30)",
      f"cited on {PB}: line 12, \u201cEntry\u201d (run 2, 2026-11-30)"], [], True),
])
def test_where_a_link_stands(reads: list[tuple[int, str, bool]], options: dict[str, object], flagged: bool,
                             expected: list[str], absent: list[int], checked_now: bool) -> None:
    """Was: `monitor history` placed a link by its latest occurrence whatever
    the page's later reads said ("on ...: line 118" of a link gone two runs
    since), and said "now" of the last check of a link no longer checked."""
    from monitor.output import place_lines, story

    told = story(_where(reads, **options))  # type: ignore[arg-type]
    assert place_lines(told, flagged=flagged) == expected
    assert [run for _, run in told.absent] == absent
    assert told.checked_now is checked_now


@pytest.mark.parametrize(("runs", "pages", "expected"), [
    ([2], 1, "not on the page in run 2"),
    ([3, 4, 5, 9], 1, "not on the page in runs 3-5, 9"),
    ([2], 3, "not on its 3 pages in run 2"),
])
def test_absence_words(runs: list[int], pages: int, expected: str) -> None:
    from monitor.output import absence_words

    assert absence_words(runs, pages) == expected


@pytest.mark.parametrize("status, http_status, shown, not_modified", [
    ("ok", 200, "ok", False),
    ("not_modified", 304, "ok", True),  # read: unchanged since the last read, its links those read then
    ("error", 404, "error", False),
    ("error", None, "error", False),
])
def test_a_page_unchanged_since_the_last_read_is_ok_in_the_json(status: str, http_status: int | None, shown: str,
                                                                not_modified: bool) -> None:
    """CONTRACT.md's page is "status": "ok"; scripts select failed pages by
    `status != "ok"`. Was "not_modified" for every unchanged page, weekly."""
    got = page_dict(replace(PAGES[0], status=status, http_status=http_status))
    assert (got["status"], got["not_modified"], got["http_status"]) == (shown, not_modified, http_status)


def test_json_moments_are_whole_seconds_in_utc_in_check_and_history() -> None:
    """Were "2026-11-23T06:00:00.593289+00:00": jq's fromdateiso8601 refused them."""
    at = T0.replace(microsecond=593289)
    run = replace(RUN, started_at=at, finished_at=at.astimezone(dt.timezone(dt.timedelta(hours=-5))))
    doc = json.loads(to_json(run, PAGES, [link(1, checked_at=at, failing_since=at - dt.timedelta(days=2))]))
    assert (doc["run"]["started_at"], doc["run"]["finished_at"]) == ("2026-11-23T06:00:00+00:00",) * 2
    assert (doc["links"][0]["checked_at"], doc["links"][0]["failing_since"]) == (
        "2026-11-23T06:00:00+00:00", "2026-11-21T06:00:00+00:00")
    (entry,) = history_dicts([HistoryEntry(run_id=7, checked_at=at, status=LinkStatus.OK, reason="ok")])
    assert entry["checked_at"] == "2026-11-23T06:00:00+00:00"
    (row,) = csv.DictReader(io.StringIO(to_csv([link(1, checked_at=at)])))
    assert row["checked_at"] == "2026-11-23T06:00:00+00:00"  # the CSV has the JSON's columns and values


def _one_page_config(tmp_path: Path, port: int) -> Path:
    """monitor.toml for the loopback server's /page: no retries, no soft-404
    probe (the output tests need only the page's links checked once)."""
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[[pages]]\nurl = "http://127.0.0.1:{port}/page"\n'
        '[checker]\ntimeout = 2\nretries = 0\nsoft404_probe = false\n'
        'allow_private_networks = ["127.0.0.1/32"]\n'
        f'[database]\npath = "{tmp_path / "monitor.db"}"\n', encoding="utf-8")
    return config


@pytest.mark.parametrize(("final_url", "shown"), [
    ("https://www.sciencedirect.com/science/article/pii/OTHER", True),
    (None, False),
])
def test_check_says_where_a_drifted_link_now_leads(final_url: str | None, shown: bool) -> None:
    """Walkthrough 13 #1: a 301 to another article is `drifted`; the address
    it led to was in the JSON only. The listing says it, as the report does."""
    from monitor.output import write_text

    drifted = link(5, LinkStatus.DRIFTED, reason="title_mismatch", final_url=final_url, strikes=3,
                   failing_since=T0 - dt.timedelta(days=9))
    buffer = io.StringIO()
    write_text(buffer, RUN, PAGES, iter([drifted]))
    assert ("    it now leads to: https://www.sciencedirect.com/science/article/pii/OTHER\n"
            in buffer.getvalue()) is shown
