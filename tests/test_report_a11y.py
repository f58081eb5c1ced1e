"""The report and the mail read without their styles (review 13 #8, #12).

Some webmail clients and "plain view" modes drop `<style>` and every
`style=`; screen readers move from heading to heading. The report was
tables of `<td class="h2">`: no heading to jump to, and with the styles
gone the tiles read "22Needs fixing" and a badge ran into its words
("EXPIRED open 1 week"). These tests strip the styles as such a client does
and read what is left, as text and as headings.
"""

from __future__ import annotations

import re
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from reports.audit import Audit
from reports.render import render_html, render_page
from tests.test_page_anchors import owners_audit
from tests.test_render import CHROMIUM, _mail_parts, _placed_rows_audit, probed_dom, sample_audit

RENDERINGS: dict[str, Callable[[Audit], str]] = {
    "saved page": render_page,
    "mail": lambda audit: _mail_parts(audit)[0],
}


def unstyled(html: str) -> LexborHTMLParser:
    """`html` as a client that drops styles has it: no <style>, no style=."""
    tree = LexborHTMLParser(html)
    for node in tree.css("style"):
        node.decompose()
    for node in tree.css("[style]"):
        del node.attrs["style"]
    return tree


def text_of(html: str) -> str:
    """The text nodes joined as they stand (no separator added between
    elements, as a plain-text view of unstyled HTML joins them), spaces
    folded."""
    body = unstyled(html).body
    assert body is not None
    return " ".join(body.text(separator="").split())


def headings(html: str, tag: str) -> list[str]:
    return [" ".join(n.text().split()) for n in unstyled(html).css(tag)]


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_section_and_page_titles_are_headings(rendering: str) -> None:
    audit = sample_audit()
    html = RENDERINGS[rendering](audit)
    assert headings(html, "h1") == ["www.sclero.org"]
    h2 = headings(html, "h2")
    assert {"Needs fixing", "Needs a person", "Fixed since the last report"} <= set(h2), h2
    assert ("Pages" in h2) == (rendering == "saved page")  # the table is the saved report's
    assert 'class="h2">' not in re.sub(r"<h2[^>]*>", "", html)  # no title left in a bare cell
    page = "Treatments for Dermatomyositis (DM) and Polymyositis (PM)"
    assert page in headings(html, "h3")  # the page's title, under each section
    assert "BIOLOGICAL AGENTS" in headings(html, "h4")  # the page's own sections


def test_a_summary_mail_has_its_headings_too() -> None:
    summary = render_html(sample_audit(), max_bytes=1)
    assert "The newest problems" in headings(summary, "h2")


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_without_styles_a_tile_s_number_and_its_label_are_apart(rendering: str) -> None:
    audit = sample_audit()
    text = text_of(RENDERINGS[rendering](audit))
    for label in ("Needs fixing", "Needs a person", "Fixed since last report", "Content notes"):
        assert re.search(rf"(?<![\w])\d+ {label}", text), label
    assert re.search(r"\dNeeds", text) is None


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_without_styles_a_badge_is_set_apart_from_its_words(rendering: str) -> None:
    text = text_of(RENDERINGS[rendering](sample_audit()))
    assert "MOVED: NEW" in text
    assert re.search(r"\b(EXPIRED|MOVED|BLOCKED|DRIFTED|ERROR) (open|first seen|NEW)", text) is None


def test_with_styles_the_separator_is_hidden() -> None:
    """The browser and a mail client that keeps styles show the badge as before."""
    page = render_page(sample_audit())
    assert '<span class="sep">:</span>' in page and ".sep { display: none; }" in page
    mail = _mail_parts(sample_audit())[0]
    assert '<span style="display:none">:</span>' in mail


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_every_content_note_about_an_entry_opens_the_entry_on_the_page(rendering: str) -> None:
    """A stale "(Expired Article)" mark's row had only "line 92" (review 13
    #15): the editor looked for the entry by hand; the retraction's had the link."""
    html = RENDERINGS[rendering](_placed_rows_audit())
    content = html[html.index('id="content"'):]
    for key, opens in (("retracted", "Oral%20treprostinil"), ("stale_marks", "Selexipag"), ("no_source", "Physical%20therapy")):
        group = re.search(rf'id="content-{key}".*?(?=<h3|</td>)', content, re.S)
        assert group is not None
        assert re.search(rf'<a href="[^"]*#:~:text={opens}[^"]*"[^>]*>Open the entry on the page</a>',
                         group.group(0)), key


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("owner", ["", "editor.of.the.raynauds.phenomenon.pages@scleroderma-foundation.org"])
def test_at_phone_width_the_pages_table_s_headers_break_between_words(tmp_path: Path, owner: str) -> None:
    """At 390 px "Watching" wrapped as "Watchin / g", "New" as "Ne / w"
    (review 13 #12): each header word is measured in Chromium. Long page
    names (and a long owner's address) take the room the headers had."""
    audit = owners_audit()
    audit = replace(audit, needs_fixing=tuple(
        replace(g, owner=owner, title=f"Raynaud's phenomenon treatments and trials, {g.title}")
        for g in audit.needs_fixing))
    probe = ("<script>window.onload=function(){var bad=[];"
             "document.querySelectorAll('table th').forEach(function(th){var t=th.firstChild;"
             "if(!t||t.nodeType!==3)return;var re=/\\S+/g,m;while((m=re.exec(t.data))){"
             "var r=document.createRange();r.setStart(t,m.index);r.setEnd(t,m.index+m[0].length);"
             "if(r.getClientRects().length>1)bad.push(m[0]);}});"
             "document.body.setAttribute('data-split','['+bad.join('|')+']');}</script></body>")
    dom = probed_dom(render_page(audit), probe, tmp_path, "390,1200")
    split = re.search(r'data-split="\[([^"]*)\]"', dom)
    assert split is not None, "the probe did not run"
    assert split.group(1) == ""
