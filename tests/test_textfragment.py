"""textfragment: "Find the link on the page" must highlight the flagged link.

A text fragment (`#:~:text=Symptoms`) scrolls to the first place on the page
where its words stand: the menu's "Symptoms" on the Raynaud's page, a
working link, while the moved one was the "(Also see Symptoms" further down
(walkthrough 10 #4). The extractor gives each link whose words stand earlier
the directive that finds it, or which match of its words it is.

`first_match` below is an independent reading of the spec's matching
(https://wicg.github.io/scroll-to-text-fragment/, "find a range from a text
directive") over the page text as lexbor gives it, blocks apart: each
directive the extractor writes must land on its own link there.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from selectolax.lexbor import LexborHTMLParser

import monitor
from monitor.decode import decode_html
from monitor.extract import extract_page
from monitor.textfragment import FRAGMENT_WORDS, encode_piece, fragment_words
from monitor.types import Citation
from reports.audit import nth_note, page_link_of
from reports.wording import ordinal

PAGE = "https://www.sclero.org/scleroderma/treatments/raynauds/a-to-z.html"
RAYNAUDS = Path(monitor.__file__).parent / "demo" / "pages" / "raynauds.html"


def links_of(html: str) -> list[Citation]:
    return [c for c in extract_page(html, PAGE).citations if c.element == "a" and c.anchor_text]


def by_href(html: str, href: str) -> Citation:
    [found] = [c for c in links_of(html) if c.raw_href == href]
    return found


# -- an independent check of where a directive lands --------------------------

_BLOCKS = ("p", "div", "li", "ul", "ol", "td", "tr", "table", "h1", "h2", "h3", "h4", "nav",
           "header", "footer", "section", "dd", "dt", "dl", "blockquote", "br")


def page_blocks(html: str) -> str:
    """The page's visible text, one line per block, as a browser's search
    keeps blocks apart (script and hidden text left out)."""
    marked = re.sub(r"(?is)<(script|style|title|noscript)\b.*?</\1\s*>", " ", html)
    marked = re.sub(r'(?is)<(\w+)[^>]*\shidden\b[^>]*>.*?</\1\s*>', " ", marked)
    marked = re.sub(r"(?i)</?(?:%s)\b[^>]*>" % "|".join(_BLOCKS), "\n", marked)
    text = LexborHTMLParser(marked).body.text(deep=True, separator="", strip=False)
    return "\n".join(" ".join(line.split()) for line in text.split("\n"))


def first_match(blocks: str, directive: str) -> int:
    """Where the directive's text first lands in `blocks` (its start), or -1:
    prefix word-start bounded, text right after it past white space (a
    block boundary included), bounded at the end unless a suffix follows,
    then the suffix past white space, bounded at its end; case-insensitive."""
    prefix = text = suffix = ""
    parts = directive.split(",")
    if parts[0].endswith("-"):
        prefix, parts = unquote(parts[0][:-1]), parts[1:]
    if parts[-1].startswith("-"):
        suffix, parts = unquote(parts[-1][1:]), parts[:-1]
    text = unquote(parts[0])

    def words(piece: str) -> str:
        return r"[ ]".join(map(re.escape, piece.split()))

    pattern = ""
    if prefix:
        pattern += r"(?<!\w)" * bool(re.match(r"\w", prefix)) + words(prefix) + r"\s*"
    pattern += ("" if prefix else r"(?<!\w)" * bool(re.match(r"\w", text))) + f"(?P<text>{words(text)})"
    if suffix:
        pattern += r"\s*" + words(suffix) + r"(?!\w)" * bool(re.search(r"\w$", suffix))
    elif re.search(r"\w$", text):
        pattern += r"(?!\w)"
    found = re.search(pattern, blocks, re.IGNORECASE)
    return found.start("text") if found else -1


# -- the walkthrough's page ---------------------------------------------------

def test_the_moved_symptoms_link_is_found_past_the_menus_symptoms() -> None:
    html = decode_html(RAYNAUDS.read_bytes())
    menu = by_href(html, "/scleroderma/symptoms/a-to-z.html")
    moved = by_href(html, "http://www.sclero.org/scleroderma/symptoms/a-to-z.html")
    assert (menu.fragment, menu.fragment_nth) == ("", 0)  # the first: its words find it
    assert moved.fragment == "see-,Symptoms"
    blocks = page_blocks(html)
    assert first_match(blocks, "Symptoms") < first_match(blocks, "see-,Symptoms")
    assert blocks[first_match(blocks, "see-,Symptoms") - 4:].startswith("see Symptoms, and")


def test_every_directive_of_the_demo_pages_lands_on_its_own_link() -> None:
    for name in ("raynauds.html", "treatments.html"):
        html = decode_html((RAYNAUDS.parent / name).read_bytes())
        blocks = page_blocks(html)
        set_apart = [c for c in links_of(html) if c.fragment]
        assert set_apart, name
        for c in set_apart:
            words = fragment_words((c.context.title if c.context else "") or c.anchor_text)
            lands = first_match(blocks, c.fragment)
            plain = first_match(blocks, encode_piece(words))
            assert lands > plain >= 0, (name, c.fragment)
            assert blocks[lands:lands + len(words)].lower() == words.lower()


# -- table: what sets a link apart --------------------------------------------

MENU = ('<div class="menu"><a href="/a">Symptoms</a> | <a href="/b">Treatments</a></div>'
        '<h2>Symptoms</h2>')


@pytest.mark.parametrize(("body", "href", "fragment", "nth"), [
    # the words before it, in its own block
    (MENU + '<p>Raynaud\'s (also see <a href="/x">Symptoms</a>, and more)</p>', "/x",
     "see-,Symptoms", 0),
    # an earlier heading with the same words, not only a link
    ('<h2>Digital Ulcers</h2><p>Read <a href="/x">Digital Ulcers</a> first.</p>', "/x",
     "Read-,Digital%20Ulcers", 0),
    # a link opening its block: the words after it
    (MENU + '<p><a href="/x">Symptoms</a> of the disease</p>', "/x",
     "Symptoms,-of", 0),
    # matching is case-insensitive: an earlier "SYMPTOMS" counts
    ('<p>SYMPTOMS</p><p>see <a href="/x">Symptoms</a></p>', "/x", "see-,Symptoms", 0),
    # the words alone find it: nothing to add
    (MENU + '<p>see <a href="/x">Calcinosis</a></p>', "/x", "", 0),
    # a word inside a longer word is no match of a bounded text
    ('<p>Symptomsfree</p><p>see <a href="/x">Symptoms</a></p>', "/x", "", 0),
    # the first of two: the browser lands on it anyway
    ('<p>see <a href="/x">Symptoms</a></p><p>see <a href="/y">Symptoms</a> also</p>', "/x", "", 0),
    # ... the second: "see" is no longer enough, its suffix is
    ('<p>see <a href="/x">Symptoms</a></p><p>see <a href="/y">Symptoms</a> also</p>', "/y",
     "Symptoms,-also", 0),
    # script and hidden text are not searched: nothing earlier to skip
    ('<script>var t = "Symptoms";</script><div hidden>Symptoms</div><p>see <a href="/x">Symptoms</a></p>',
     "/x", "", 0),
    # the same entry listed twice, word for word: the second, said in words
    ('<p><a href="/x">Nifedipine still first choice</a></p><p><a href="/x2">Nifedipine still first choice</a></p>',
     "/x2", "", 2),
    # the prefix as the page writes it: no space the model adds between text nodes
    ('<p>Read <a href="/a">Disclaimer</a></p><p>Mail <a href="mailto:i@x.org">i@x.org</a>. <a href="/x">Disclaimer</a></p>',
     "/x", "i%40x.org.-,Disclaimer", 0),
    # a directive's reserved characters are encoded
    ('<p>RP-ILD, a study</p><p>see <a href="/x">RP-ILD, a study</a></p>', "/x",
     "see-,RP%2DILD%2C%20a%20study", 0),
])
def test_what_sets_a_link_apart(body: str, href: str, fragment: str, nth: int) -> None:
    html = f"<html><body>{body}</body></html>"
    c = by_href(html, href)
    assert (c.fragment, c.fragment_nth) == (fragment, nth)
    blocks = page_blocks(html)
    words = fragment_words((c.context.title if c.context else "") or c.anchor_text)
    if fragment:
        assert first_match(blocks, fragment) > first_match(blocks, encode_piece(words))


def test_a_citation_with_an_expired_mark_is_found_by_its_title_and_the_words_around_it() -> None:
    title = "Rituximab for refractory myositis"
    html = (f"<html><body><p>Featured: {title} in the news.</p>"
            f'<p><a href="https://pubmed.ncbi.nlm.nih.gov/1/">(Expired Article) {title}</a>. '
            "A trial of 200 patients. PubMed, 2019.</p></body></html>")
    [c] = [c for c in links_of(html) if c.context is not None]
    assert c.context.title == title
    assert c.fragment == encode_piece("Article)") + "-," + encode_piece(title)
    blocks = page_blocks(html)
    assert first_match(blocks, c.fragment) > first_match(blocks, encode_piece(title))


def test_the_row_says_which_match_when_nothing_near_it_sets_it_apart() -> None:
    html = decode_html(RAYNAUDS.read_bytes())
    twins = [c for c in links_of(html) if c.context and c.context.title.startswith("Phosphodiesterase-5")]
    assert [c.fragment_nth for c in twins] == [0, 2]
    from test_audit import link  # noqa: PLC0415 (the audit's row helper)

    row = link("http://www.ncbi.nlm.nih.gov/pmc/articles/PMC5123456/", "moved", page=PAGE,
               title=twins[1].context.title, fragment_nth=2)
    words = fragment_words(twins[1].context.title)
    assert nth_note(row) == f"it is the 2nd \u201c{words}\u201d on the page"
    assert page_link_of(row) == PAGE + "#:~:text=" + encode_piece(words)


def test_the_page_link_uses_the_directive() -> None:
    from test_audit import link  # noqa: PLC0415

    row = link("http://www.sclero.org/scleroderma/symptoms/a-to-z.html", "moved", page=PAGE,
               title="", text="Symptoms", fragment="see-,Symptoms")
    assert page_link_of(row) == PAGE + "#:~:text=see-,Symptoms"
    assert nth_note(row) == ""


@pytest.mark.parametrize(("n", "said"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"),
                                         (11, "11th"), (12, "12th"), (13, "13th"), (21, "21st"),
                                         (102, "102nd"), (111, "111th")])
def test_ordinals(n: int, said: str) -> None:
    assert ordinal(n) == said


def test_a_page_of_many_links_with_the_same_words_is_bounded() -> None:
    # 3,000 links all reading "x" (and the text "x" between them): a hostile
    # page must not cost a scan of the page per link. The budget stops the
    # searches; whatever was found is still right, the rest keep the plain
    # fragment (their words alone, as before).
    html = "<html><body>" + "".join(f'<p>x <a href="/{i}">x</a></p>' for i in range(3000)) + "</body></html>"
    found = links_of(html)
    assert len(found) == 3000
    assert all(c.fragment in ("", "x-,x") or c.fragment_nth for c in found)
    assert found[0].fragment == "x-,x" or found[0].fragment == ""
    assert sum(1 for c in found if c.fragment or c.fragment_nth) < 3000


def test_a_page_using_the_marks_characters_itself_gets_plain_fragments() -> None:
    html = ("<html><body><p>\ue000 Symptoms \ue640</p>"
            '<p>see <a href="/x">Symptoms</a></p></body></html>')
    c = by_href(html, "/x")
    assert c.fragment in ("", "see-,Symptoms")


def test_words_are_cut_as_the_report_cuts_them() -> None:
    assert fragment_words(" ".join(f"w{i}" for i in range(10))).split() == [
        f"w{i}" for i in range(FRAGMENT_WORDS)]
