"""extract: page HTML -> every link with kind, section and entry context.

The main fixture is the reconstruction of the sclero.org DM/PM treatments page
(monitor/demo/pages/treatments.html, Windows-1252 bytes without a charset);
the others are in tests/fixtures/pages/.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

import monitor
from monitor.decode import decode_html
from monitor.extract import PageExtract, extract_page, normalize_url, parse_source_date
from monitor.types import Citation, EntryContext, LinkKind

TREATMENTS = Path(monitor.__file__).parent / "demo" / "pages" / "treatments.html"
PAGES = Path(__file__).parent / "fixtures" / "pages"
SEED = Path(__file__).parent / "fixtures" / "seed" / "treatments-dm-pm.txt"
PAGE_URL = "https://www.sclero.org/scleroderma/autoimmune/dermatomyositis/treatments.html"
SITE = "https://www.sclero.org"
CIT, NAV, RES = LinkKind.CITATION, LinkKind.NAVIGATION, LinkKind.RESOURCE


@pytest.fixture(scope="module")
def page_html() -> str:
    return decode_html(TREATMENTS.read_bytes())


@pytest.fixture(scope="module")
def page(page_html: str) -> PageExtract:
    return extract_page(page_html, PAGE_URL)


def _of_kind(extract: PageExtract, kind: LinkKind) -> list[Citation]:
    return [c for c in extract.citations if c.kind is kind]


# --- the reconstructed sclero.org page -------------------------------------

def test_fixture_is_windows_1252_without_a_declared_charset() -> None:
    raw = TREATMENTS.read_bytes()
    assert b"charset" not in raw.lower()
    assert b"\x96" in raw  # the en dash of "(RP\x96ILD)" in Windows-1252
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_en_dashes_decode_right(page_html: str, page: PageExtract) -> None:
    assert "(RP\u2013ILD)" in page_html
    assert "steroid\u2013sparing" in page_html
    assert "\ufffd" not in page_html
    assert "(RP\u2013ILD)" in page.entries[0]
    assert "(ADM) \u2013 Report" in page.entries[8]


def test_every_text_of_the_seed_is_on_the_page(page_html: str) -> None:
    body = LexborHTMLParser(page_html).body
    assert body is not None
    visible = " ".join(body.text().split())
    # The seed was scraped behind Cloudflare's address obfuscation.
    seed = SEED.read_text(encoding="utf-8").replace("[email\u00a0protected]", "isn@sclero.org")
    seed = seed.replace("[email protected]", "isn@sclero.org")
    missing = [
        line for line in (" ".join(raw.split()) for raw in seed.splitlines())
        if line and line not in visible
    ]
    assert missing == []


def test_page_title_and_base(page: PageExtract) -> None:
    assert page.url == PAGE_URL
    assert page.title == "Treatments for Dermatomyositis (DM) and Polymyositis (PM)"
    assert page.base_url == PAGE_URL


EXPECTED_ENTRIES = [
    (
        "Biological Agents",
        "https://www.ncbi.nlm.nih.gov/pubmed/29713888",
        EntryContext(
            title="Rituximab for refractory rapidly progressive interstitial lung disease "
            "(RP\u2013ILD) related to anti-MDA5 antibody\u2013positive amyopathic "
            "dermatomyositis",
            summary="Our results suggest that RTX may be a useful therapy for anti-MDA5 "
            "Ab-positive ADM associated with RP\u2013ILD, although infection is the major risk.",
            source="PubMed, Clin Rheumatol, 04/30/2018.",
            date=dt.date(2018, 4, 30),
        ),
    ),
    (
        "Biological Agents",
        "https://pubmed.ncbi.nlm.nih.gov/28329375/",
        EntryContext(
            title="The Use of Rituximab in the Management of Refractory Dermatomyositis",
            summary="This is a retrospective study of 25 patients with dermatomyositis who "
            "were treated with rituximab.",
            source="PubMed, J Drugs Dermatol. 2017 Feb 1;16(2):162-166.",
            date=dt.date(2017, 2, 1),
        ),
    ),
    (
        "Cannabinoid Receptor Type 2 (CB2) Agonist",
        "https://globenewswire.com/news-release/2018/07/25/1542139/0/en/Corbus-Pharmaceuticals"
        "-to-Commence-Phase-3-Study-of-Lenabasum-for-the-Treatment-of-Rare-Autoimmune-Disease"
        "-Dermatomyositis.html",
        EntryContext(
            title="Corbus Pharmaceuticals to Commence Phase 3 Study of Lenabasum for the "
            "Treatment of Rare Autoimmune Disease Dermatomyositis",
            summary="Corbus Pharmaceuticals announced today that the Company will proceed "
            "with a Phase 3 trial evaluating the efficacy and safety of lenabasum for the "
            "treatment of dermatomyositis.",
            source="Globe Newswire, 07/25/2018.",
            date=dt.date(2018, 7, 25),
        ),
    ),
    (
        "Combination Therapies",
        "http://www.jrheum.org/content/39/2/345.abstract",
        EntryContext(
            title="Dermatomyositis and Polymyositis Associated with Malignancy: A 21-year "
            "Retrospective Study",
            summary="In patients with tumor-associated myositis, it was more frequently "
            "necessary to administer other immunosuppressive drugs along with glucocorticoids.",
            source="J Rheumatol .",
            date=None,
            expired_mark=True,
        ),
    ),
    (
        "Combination Therapies",
        "https://pubmed.ncbi.nlm.nih.gov/31197643/",
        EntryContext(
            title="Physical therapy in adult inflammatory myopathy patients: a systematic review",
            summary="Physical therapy does not have a negative effect on the disease activity "
            "of idiopathic inflammatory myopathies in quiescent disease and could improve "
            "functional outcome.",
            source="PubMed, Clin Rheumatol, 2019 Aug;38(8):2039-2051.",
            date=dt.date(2019, 8, 1),
        ),
    ),
    (
        "Combination Therapies",
        "https://www.hopkinsarthritis.org/arthritis-info/polymyositis/treatment/",
        EntryContext(
            title="How is Polymyositis Treated?",
            summary="Initially, polymyositis is treated with high doses of corticosteroids.",
        ),
    ),
    (
        "Combination Therapies",
        "https://academic.oup.com/rheumatology/article/57/suppl_3/key075.537/5037456",
        EntryContext(
            title="Expression of interleukin-18 in muscle tissue of patients with polymyositis "
            "or dermatomyositis and effects of conventional immunosuppressive treatment",
            summary="IL-18 is highly expressed in muscle tissue in the context of inflammatory "
            "myopathies and based on its plausible effector functions could provide a novel "
            "therapeutic target in future.",
            source="PubMed, Rheumatology (Oxford), 08/08/2018.",
            date=dt.date(2018, 8, 8),
        ),
    ),
    (
        "Intravenous Immunoglobulin (IVIg)",
        "https://www.sciencedirect.com/science/article/pii/S1568997219302605",
        EntryContext(
            title="Corticosteroid-sparing (CS) benefit of intravenous immunoglobulin (IVIg) in "
            "systemic sclerosis-associated myopathy (SScAM): A comparative study in 52 patients",
            summary="This study suggests the benefit of IVIg as adjunctive therapy, with an "
            "acceptable tolerance profile, and supports its use as a CS-sparing agent, in SScAM.",
            source="PubMed, Autoimmun Rev, 2020 Jan;19(1):102431.",
            date=dt.date(2020, 1, 1),
        ),
    ),
    (
        "Intravenous Immunoglobulin (IVIg)",
        "http://benthamopen.com/ABSTRACT/TORJ-7-94",
        EntryContext(
            title="Case Report: Intravenous Immune Globulin in Amyopathic Dermatomyositis (ADM) "
            "\u2013 Report of Two Cases and Review of the Literature",
            summary="We present both cases in describing IVIG as a rescue and maintenance "
            "steroid\u2013sparing agent in the treatment of severe refractory ADM.",
            source="PubMed, Open Rheumatol J.",
        ),
    ),
    (
        "Intravenous Immunoglobulin (IVIg)",
        "https://www.atsjournals.org/doi/abs/10.1164/ajrccm-conference.2019.199.1_"
        "MeetingAbstracts.A6070",
        EntryContext(
            title="Successful Treatment With Intravenous High-Dose Immunoglobulin For "
            "Cardiomyopathy In Dermatomyositis Complicated With Rapid Progressive Interstitial "
            "Pneumonia And Macrophage Activation Syndrome",
            summary="This is the first report that IVIg may be effective for cardiomyopathy "
            "in dermatomyositis.",
            source="ATS Journal.",
        ),
    ),
    (
        "Stem Cell Transplants",
        "https://onlinelibrary.wiley.com/doi/abs/10.1002/mus.26321",
        EntryContext(
            title="Inflammatory myopathies (IM) after allogeneic stem cell transplantation (SCT)",
            summary="Among recipients of allo-SCT, weakness is common, and the incidence of IM "
            "is increased.",
            source="PubMed, Muscle Nerve, 2018 Dec;58(6):790-795.",
            date=dt.date(2018, 12, 1),
        ),
    ),
]


def test_the_eleven_citation_entries(page: PageExtract) -> None:
    got = [(c.section, c.url, c.context) for c in _of_kind(page, CIT)]
    assert got == EXPECTED_ENTRIES


def test_citations_keep_their_href_and_anchor_text(page: PageExtract) -> None:
    for citation in _of_kind(page, CIT):
        assert citation.raw_href == citation.url
        assert citation.context is not None
        assert citation.anchor_text == citation.context.title or (
            citation.context.expired_mark and citation.anchor_text.endswith(citation.context.title)
        )
        assert (citation.element, citation.attribute, citation.skip_reason) == ("a", "href", None)
        assert citation.page_url == PAGE_URL


def test_entries_list_the_citation_titles_in_order(page: PageExtract) -> None:
    assert page.entries == tuple(ctx.title for _, _, ctx in EXPECTED_ENTRIES)


# Every site path the fixture links to (the demo server answers these).
NAVIGATION_PATHS = {
    "/index.html",
    "/scleroderma/a-to-z.html",
    "/scleroderma/symptoms/a-to-z.html",
    "/scleroderma/treatments/a-to-z.html",
    "/about/support.html",
    "/about/a-to-z.html",
    "/about/donate.html",
    "/scleroderma/autoimmune/a-to-z.html",
    "/scleroderma/autoimmune/dermatomyositis/a-to-z.html",
    "/scleroderma/autoimmune/diabetes/a-to-z.html",
    "/scleroderma/clinical-trials/a-to-z.html",
    "/about/news/a-to-z.html",
    "/about/shelley-ensz.html",
    "/scleroderma/types.html",
    "/scleroderma/disclaimer.html",
    "/scleroderma/treatments/biologic-agents/a-to-z.html",
    "/scleroderma/treatments/endocannabinoid/a-to-z.html",
    "/scleroderma/symptoms/interleukins.html",
    "/about/team.html",
    "/about/privacy.html",
}


def test_navigation_is_told_apart_from_citations(page: PageExtract) -> None:
    navigation = _of_kind(page, NAV)
    assert len(page.citations) == 46
    assert (len(_of_kind(page, CIT)), len(navigation), len(_of_kind(page, RES))) == (11, 32, 3)
    assert {c.url.removeprefix(SITE) for c in navigation if c.url} == NAVIGATION_PATHS
    named = {(c.anchor_text, c.url) for c in navigation}
    for text, path in [
        ("Go to Diabetes", "/scleroderma/autoimmune/diabetes/a-to-z.html"),
        ("Disclaimer", "/scleroderma/disclaimer.html"),
        ("Privacy Policy", "/about/privacy.html"),
        ("Meet Our Team", "/about/team.html"),
        ("Types of Scleroderma", "/scleroderma/types.html"),
        ("Biologic Agents", "/scleroderma/treatments/biologic-agents/a-to-z.html"),
        ("Interleukins", "/scleroderma/symptoms/interleukins.html"),
        ("International Scleroderma Network", "/index.html"),  # the logo link: its alt
    ]:
        assert (text, SITE + path) in named
    assert [c.anchor_text for c in navigation].count("Disclaimer") == 2


def test_also_see_links_are_navigation_in_their_entry_section(page: PageExtract) -> None:
    texts = ["Biologic Agents", "Endocannabinoid System", "Clinical Trials", "Interleukins"]
    got = [
        (c.anchor_text, c.kind, c.section) for c in page.citations
        if c.anchor_text in texts and c.section
    ]
    assert got == [
        ("Biologic Agents", NAV, "Biological Agents"),
        ("Endocannabinoid System", NAV, "Cannabinoid Receptor Type 2 (CB2) Agonist"),
        ("Clinical Trials", NAV, "Cannabinoid Receptor Type 2 (CB2) Agonist"),
        ("Interleukins", NAV, "Combination Therapies"),
    ]


def test_menus_and_footer_have_no_section(page: PageExtract) -> None:
    footer = [c for c in page.citations if c.anchor_text in ("Privacy Policy", "Meet Our Team")]
    menu = [c for c in page.citations if c.anchor_text in ("Symptoms", "About Us", "Diabetes")]
    assert {c.section for c in footer + menu} == {""}
    assert len(footer) == 2 and len(menu) == 3


def test_resources_are_detected(page: PageExtract) -> None:
    got = [(c.element, c.attribute, c.url, c.section) for c in _of_kind(page, RES)]
    assert got == [
        ("link", "href", SITE + "/css/sclero.css", ""),
        ("script", "src", SITE + "/js/menu.js", ""),
        ("img", "src", SITE + "/images/isn-logo.gif", ""),
    ]


def test_fragments_and_mailto_are_skipped(page: PageExtract) -> None:
    got = [(c.anchor_text, c.raw_href, c.skip_reason, c.kind) for c in page.citations if c.url is None]
    assert got == [
        ("Biological Agents", "#bio", "fragment", NAV),
        ("CB2 Agonist", "#cb2", "fragment", NAV),
        ("Combination Therapies", "#combo", "fragment", NAV),
        ("Stem Cell Transplants", "#stem", "fragment", NAV),
        ("isn@sclero.org", "mailto:isn@sclero.org", "mailto", NAV),
    ]


def test_line_numbers_point_at_the_attribute(page_html: str, page: PageExtract) -> None:
    lines = page_html.splitlines()
    for citation in page.citations:
        assert citation.line is not None
        assert f'{citation.attribute}="{citation.raw_href}"' in lines[citation.line - 1]


# --- other pages -----------------------------------------------------------

def test_windows_1252_page_without_charset() -> None:
    html = decode_html((PAGES / "cp1252-no-charset.html").read_bytes())
    extract = extract_page(html, "https://x.example/a/b.html")
    assert extract.title == "Sjögren’s Syndrome – Treatments"
    got = [(c.kind, c.section, c.url, c.anchor_text, c.context) for c in extract.citations]
    section = "Café-au-lait & “Smart” Quotes"
    assert got == [
        (CIT, section, "https://pubmed.ncbi.nlm.nih.gov/222/",
         "Sjögren’s syndrome: a “naïve” approach — update",
         EntryContext(
             title="Sjögren’s syndrome: a “naïve” approach — update",
             summary="Patients’ quality of life improved in Zürich.",
             source="PubMed, Rev Méd Suisse, 03/15/2019.", date=dt.date(2019, 3, 15),
         )),
        (CIT, section, "https://www.example.de/m%C3%BCller/stra%C3%9Fe",
         "Müller’s résumé of Raynaud’s phenomenon",
         EntryContext(
             title="Müller’s résumé of Raynaud’s phenomenon",
             summary="Costs €12 per dose…",
             source="PubMed, Clin Rheumatol, 2018 Mar 5;37(3):1-9.", date=dt.date(2018, 3, 5),
         )),
        (NAV, section, "https://x.example/glossary/d%C3%A9j%C3%A0-vu.html", "the glossary", None),
    ]


def test_malformed_html_still_yields_the_right_links() -> None:
    html = (PAGES / "malformed.html").read_text(encoding="utf-8")
    extract = extract_page(html, "https://lupus.example/treat/index.html")
    assert extract.title == "Lupus treatments"
    got = [(c.kind, c.section, c.url, c.anchor_text, c.line) for c in extract.citations]
    assert got == [
        (NAV, "", "https://lupus.example/index.html", "Home", 8),
        (NAV, "", "https://lupus.example/about/", "About", 8),
        (CIT, "Antimalarials", "https://pubmed.ncbi.nlm.nih.gov/111/",
         "Hydroxychloroquine in lupus: a review", 11),
        (CIT, "Antimalarials", "https://example.com/split-end-tag",
         "End tag split over two lines", 12),
        # Never closed: the browser links the whole paragraph, and re-opens the
        # <a> in the next one; that clone is not a second link.
        (CIT, "Antimalarials", "https://example.net/open",
         "Open anchor entry about azathioprine. Summary of the open entry.", 14),
        # A nested <a> closes the outer one.
        (CIT, "Antimalarials", "https://a.example/outer", "Outer entry title words", 16),
        (NAV, "Antimalarials", "https://b.example/inner", "inner title", 16),
        (CIT, "Other Drugs", "https://journals.example.org/x?a=1&b=2",
         "Methotrexate for cutaneous lupus in adults", 18),
        (CIT, "Other Drugs", "https://pubmed.ncbi.nlm.nih.gov/333/",
         "Belimumab and lupus nephritis", 20),
        # Misplaced inside <tr>: the parser moves it before the table.
        (CIT, "Other Drugs", "https://foster.example/fostered", "Fostered link text here", 24),
    ]
    contexts = {c.url: c.context for c in extract.citations if c.context}
    assert contexts["https://example.com/split-end-tag"] == EntryContext(
        title="End tag split over two lines", summary="Its summary follows here.")
    assert contexts["https://pubmed.ncbi.nlm.nih.gov/333/"] == EntryContext(
        title="Belimumab and lupus nephritis", summary="A long trial.",
        source="NEJM, 2020 Sep 17;383(12):1117-1128.", date=dt.date(2020, 9, 17))


def test_reopened_anchor_clones_are_dropped_but_real_repeats_kept() -> None:
    html = (
        '<p><a href="https://ext.example/a">Entry title never closed here'
        "<p>The next paragraph, inside the clone."
        '<p><a href="https://ext.example/a">The same link once more</a>. Its summary text.'
    )
    extract = extract_page(html, "https://site.example/page.html")
    assert [(c.url, c.anchor_text) for c in extract.citations] == [
        ("https://ext.example/a", "Entry title never closed here"),
        ("https://ext.example/a", "The same link once more"),
    ]


def test_base_href_resolves_relative_links() -> None:
    html = (
        '<html><head><base href="/mirror/docs/"><base href="https://ignored.example/">'
        "</head><body>"
        '<p><a href="a.html">Relative</a> <a href="/root.html">Rooted</a> '
        '<a href="../up.html">Up</a> <a href="?q=1">Query</a> '
        '<a href="https://other.example/x">Absolute</a> <a href="#top">Top</a>'
        "</body></html>"
    )
    extract = extract_page(html, "https://site.example/page.html")
    assert extract.base_url == "https://site.example/mirror/docs/"
    assert [(c.url, c.skip_reason) for c in extract.citations] == [
        ("https://site.example/mirror/docs/a.html", None),
        ("https://site.example/root.html", None),
        ("https://site.example/mirror/up.html", None),
        ("https://site.example/mirror/docs/?q=1", None),
        ("https://other.example/x", None),
        # As in a browser, "#top" follows <base>: another page here.
        ("https://site.example/mirror/docs/", None),
    ]


def test_malformed_hrefs_are_accounted_for_never_raised() -> None:
    hrefs = [
        "http://", "http:///x", "https://exa mple.com/", "http://[::1", "", "   ",
        "javascript:void(0)", " JavaScript:alert(1)", "http://example.com:99999/",
        "https://bücher.example/", "/a b/c d.html ", "tel:+15555550100", "data:,x",
        "ftp://ftp.example.org/x", "#", "http://exa\tmple.com/",
    ]
    html = "<ul>" + "".join(f'<li><a href="{h}">link {i}</a>' for i, h in enumerate(hrefs))
    extract = extract_page(html, "https://site.example/dir/page.html")
    got = [(c.anchor_text, c.url, c.skip_reason) for c in extract.citations]
    assert got == [
        ("link 0", None, "invalid_url"),
        ("link 1", None, "invalid_url"),
        ("link 2", None, "invalid_url"),
        ("link 3", None, "invalid_url"),
        ("link 4", None, "invalid_url"),
        ("link 5", None, "invalid_url"),
        ("link 6", None, "javascript"),
        ("link 7", None, "javascript"),
        ("link 8", None, "invalid_url"),
        ("link 9", "https://xn--bcher-kva.example/", None),
        ("link 10", "https://site.example/a%20b/c%20d.html", None),
        ("link 11", None, "tel"),
        ("link 12", None, "data"),
        ("link 13", None, "unsupported_scheme"),
        ("link 14", None, "fragment"),
        ("link 15", "http://example.com/", None),  # tabs and newlines are dropped
    ]


def test_ten_thousand_malformed_hrefs_one_citation_each() -> None:
    rng = random.Random(7)
    shapes = [
        "http://", "http:///x{}", "https://exa mple{}.com/", "http://[::1{}", "",
        "javascript:go({})", "http://h{}.example:99999/", "mailto:x{}@y", "#s{}",
        "https://bücher{}.example/ä ö", "../../{}/a b", "ftp://x/{}", "//cdn{}.example/x",
        "http://h.example/{}&amp;x", "http:\\\\h{}.example\\a", "%zz{}", "https://{}",
    ]
    hrefs = [rng.choice(shapes).format(i) for i in range(10_000)]
    # Half in closed <a>, half never closed: lexbor re-opens and nests those.
    rows = "".join(
        f'<p><a href="{h}">t{i}</a> x' if i % 2 else f'<a href="{h}">t{i}'
        for i, h in enumerate(hrefs)
    )
    extract = extract_page(f"<html><body>{rows}</body></html>", "https://site.example/p.html")
    assert [c.raw_href for c in extract.citations] == [
        h.replace("&amp;", "&") for h in hrefs
    ]
    for citation in extract.citations:
        assert (citation.url is None) != (citation.skip_reason is None)
        assert citation.line == 1


# --- tables of small cases -------------------------------------------------

BASE = "https://www.sclero.org/scleroderma/autoimmune/dermatomyositis/treatments.html"


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("https://x.example/a#b", ("https://x.example/a", None)),
        ("#bio", (None, "fragment")),
        ("treatments.html#bio", (None, "fragment")),
        (BASE + "#stem", (None, "fragment")),
        ("a-to-z.html#x", ("https://www.sclero.org/scleroderma/autoimmune/dermatomyositis/"
                           "a-to-z.html", None)),
        ("../../types.html", ("https://www.sclero.org/scleroderma/types.html", None)),
        ("//cdn.example.net/lib.js", ("https://cdn.example.net/lib.js", None)),
        ("HTTPS://WWW.Example.COM:443/A B", ("https://www.example.com/A%20B", None)),
        ("http://example.com:80/x", ("http://example.com/x", None)),
        ("https://example.com:8443/x", ("https://example.com:8443/x", None)),
        ("http://example.com", ("http://example.com/", None)),
        ("http://example.com/a/./b/../c", ("http://example.com/a/c", None)),
        ("http://example.com/?q=a b&x=\"y\"", ("http://example.com/?q=a%20b&x=%22y%22", None)),
        ("https://example.com/ü?q=ü", ("https://example.com/%C3%BC?q=%C3%BC", None)),
        ("https://example.com/a%20b", ("https://example.com/a%20b", None)),
        ("http://[2001:DB8::1]:8080/x", ("http://[2001:db8::1]:8080/x", None)),
        ("http:\\\\example.com\\a\\b", ("http://example.com/a/b", None)),
        ("https://bücher.example/", ("https://xn--bcher-kva.example/", None)),
        ("https://BÜCHER.example/", ("https://xn--bcher-kva.example/", None)),
        ("http://user@example.com/", ("http://user@example.com/", None)),
        ("http://exa_mple.com/", ("http://exa_mple.com/", None)),
        ("  https://example.com/x  ", ("https://example.com/x", None)),
        ("http://", (None, "invalid_url")),
        ("http:///x", (None, "invalid_url")),
        ("https://exa mple.com/", (None, "invalid_url")),
        ("http://[::1", (None, "invalid_url")),
        ("http://example.com:99999/", (None, "invalid_url")),
        ("http://example.com:8o/", (None, "invalid_url")),
        ("http://256.1.1.1/", (None, "invalid_url")),
        ("http://-/", (None, "invalid_url")),
        ("http://a..b/", ("http://a..b/", None)),
        ("", (None, "invalid_url")),
        ("mailto:isn@sclero.org", (None, "mailto")),
        ("MAILTO:isn@sclero.org", (None, "mailto")),
        ("tel:+1-555-0100", (None, "tel")),
        ("javascript:void(0)", (None, "javascript")),
        ("java\nscript:alert(1)", (None, "javascript")),
        ("data:image/png;base64,AAAA", (None, "data")),
        ("ftp://ftp.example.org/x", (None, "unsupported_scheme")),
        ("file:///etc/passwd", (None, "unsupported_scheme")),
    ],
)
def test_normalize_url(href: str, expected: tuple[str | None, str | None]) -> None:
    assert normalize_url(href, BASE) == expected


_SKIPS = {"invalid_url", "fragment", "mailto", "tel", "javascript", "data", "unsupported_scheme"}


@given(st.text(max_size=60))
def test_normalize_url_never_raises(href: str) -> None:
    url, skip = normalize_url(href, BASE)
    if url is None:
        assert skip in _SKIPS
    else:
        assert skip is None
        assert url.startswith(("http://", "https://"))
        assert "#" not in url and " " not in url and url.isascii()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PubMed, Clin Rheumatol, 04/30/2018.", dt.date(2018, 4, 30)),
        ("Globe Newswire, 07/25/2018.", dt.date(2018, 7, 25)),
        ("PubMed, J Drugs Dermatol. 2017 Feb 1;16(2):162-166.", dt.date(2017, 2, 1)),
        ("PubMed, Clin Rheumatol, 2019 Aug;38(8):2039-2051.", dt.date(2019, 8, 1)),
        ("PubMed, Muscle Nerve, 2018 Dec;58(6):790-795.", dt.date(2018, 12, 1)),
        ("PubMed, Autoimmun Rev, 2020 Jan;19(1):102431.", dt.date(2020, 1, 1)),
        ("NEJM, 2020 Sep 17;383(12):1117-1128.", dt.date(2020, 9, 17)),
        ("Arthritis Res Ther. 2019 Jul-Aug;21(4):1-9.", dt.date(2019, 7, 1)),
        ("Lupus. 2021 September 3;30(2):5.", dt.date(2021, 9, 3)),
        ("Medscape, 2018-04-30.", dt.date(2018, 4, 30)),
        ("Reuters Health, April 30, 2018.", dt.date(2018, 4, 30)),
        ("The Lancet, 30 April 2018.", dt.date(2018, 4, 30)),
        ("BBC News, 30/04/2018.", dt.date(2018, 4, 30)),  # cannot be month 30: day first
        ("Two dates 01/02/2019 then 2018 Dec;1(1).", dt.date(2019, 1, 2)),  # the first wins
        ("Bad 13/45/2018 then 05/06/2019.", dt.date(2019, 5, 6)),
        ("J Rheumatol .", None),
        ("ATS Journal.", None),
        ("PubMed, Open Rheumatol J.", None),
        ("Clin Rheumatol, 2019.", None),  # a bare year: no day invented
        ("Arthritis Care, 2019 Spring;12(1).", None),
        ("J Foo, 2019 Feb 30;1(1).", None),  # impossible day
        ("Issue 02/30/2019.", None),
        ("1/2/3 and 12/12/12", None),
        ("", None),
        # Month names the patterns match by Unicode's case rules: a long s
        # (old typography, OCR'd sources) raised KeyError, and the page failed.
        ("Phil Trans, 1 \u017fept, 2018.", dt.date(2018, 9, 1)),
        ("J Foo, 2018 \u017fEP 3;1(1).", dt.date(2018, 9, 3)),
        ("\u017fEPTEMBER 3, 2018", dt.date(2018, 9, 3)),
    ],
)
def test_parse_source_date(text: str, expected: dt.date | None) -> None:
    assert parse_source_date(text) == expected


def test_a_page_whose_source_line_has_a_long_s_month_is_read() -> None:
    """extract_page raised KeyError on it: the page's whole read failed."""
    html = ('<p><a href="https://example.org/a">A study of skin thickening in scleroderma</a> '
            "Phil Trans, 1 \u017fept, 2018.</p>")
    [cited] = extract_page(html, "https://www.sclero.org/x.html").citations
    assert cited.context is not None and cited.context.date == dt.date(2018, 9, 1)



SMALL = "https://site.example/section/page.html"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param(
            '<ul><li><a href="/a.html">Home</a><li><a href="/b.html">About us</a></ul>',
            [NAV, NAV], id="same-site-link-list",
        ),
        pytest.param(
            '<ul><li><a href="https://ext.example/x">A long external entry title</a></ul>',
            [CIT], id="external-title-only-entry",
        ),
        pytest.param(
            '<p><a href="https://ext.example/"><img src="/badge.png" alt="Follow us on '
            'the network"></a> and more words follow here.</p>',
            [NAV, RES], id="image-link-is-not-an-entry",
        ),
        pytest.param(
            '<p>See <a href="https://ext.example/nih">the NIH page about it</a> for more.</p>',
            [NAV], id="link-in-running-text",
        ),
        pytest.param(
            '<p><a href="https://ext.example/">Dermatomyositis</a> is a rare disease of '
            "muscle.</p>",
            [NAV], id="sentence-subject-not-a-title",
        ),
        pytest.param(
            '<nav><p><a href="https://ext.example/x">A long external entry title</a>. '
            "With a summary.</p></nav>",
            [NAV], id="inside-nav",
        ),
        pytest.param(
            '<div id="page-footer"><p><a href="https://ext.example/x">A long external '
            "entry title</a>. With a summary.</p></div>",
            [NAV], id="inside-footer-by-id",
        ),
        pytest.param(
            '<article><header><h2><a href="https://ext.example/x">A long external entry '
            "title</a></h2></header></article>",
            [CIT], id="article-header-is-content",
        ),
        pytest.param(
            '<p><a href="/news/item.html">Same-site article title</a>. A summary of the '
            "article here.</p>",
            [CIT], id="same-site-entry-with-summary",
        ),
        pytest.param(
            '<p>Intro text. (see also <a href="/a.html">Alpha</a> and (notably) '
            '<a href="https://ext.example/b">Beta long title words</a>)</p>',
            [NAV, NAV], id="see-also-lowercase-nested-parens",
        ),
        pytest.param(
            '<p>&bull; <a href="https://ext.example/b">Bulleted entry</a>: its summary.</p>',
            [CIT], id="bullet-prefix",
        ),
        pytest.param(
            '<p><a href="">Empty href entry title</a>. Summary text here.</p>',
            [CIT], id="invalid-href-of-an-entry-is-still-a-citation",
        ),
        pytest.param(
            '<p><a href="mailto:a@b.example">Write to the editor now</a>. Any time.</p>',
            [NAV], id="mailto-is-navigation",
        ),
    ],
)
def test_kind_heuristic(html: str, expected: list[LinkKind]) -> None:
    assert [c.kind for c in extract_page(html, SMALL).citations] == expected


def test_entries_split_by_double_br_in_one_cell() -> None:
    html = (
        '<table><tr><td><b>Reviews</b><br><br>'
        '<a href="https://ext.example/1">First title here</a><br>'
        "First summary sentence. PubMed, Lupus, 01/02/2019.<br><br>"
        '<a href="https://ext.example/2">(Expired Article) Second title</a>. Second summary '
        "sentence here. J Rheumatol.<br><br>"
        '<a href="/more.html">More</a></td></tr></table>'
    )
    extract = extract_page(html, SMALL)
    got = [(c.kind, c.section, c.context) for c in extract.citations]
    # "<b>Reviews</b><br><br>" is the heading of the cell's entries.
    assert got == [
        (CIT, "Reviews", EntryContext(title="First title here", summary="First summary sentence.",
                                      source="PubMed, Lupus, 01/02/2019.",
                                      date=dt.date(2019, 1, 2))),
        (CIT, "Reviews", EntryContext(title="Second title", summary="Second summary sentence here.",
                                      source="J Rheumatol.", expired_mark=True)),
        (NAV, "Reviews", None),
    ]


@pytest.mark.parametrize(
    ("html", "sections"),
    [
        pytest.param('<h3>Alpha</h3><p><a href="/x">x</a>', ["Alpha"], id="h3"),
        pytest.param('<p><b>Alpha</b></p><p><a href="/x">x</a>', ["Alpha"], id="bold-block"),
        pytest.param('<p><font size=+1><strong>Alpha</strong></font><br></p><p><a href="/x">x</a>',
                     ["Alpha"], id="strong-in-font"),
        pytest.param('<p><a name="al">Alpha</a></p><p><a href="/x">x</a>', ["Alpha"],
                     id="named-anchor-block"),
        pytest.param('<h2>Alpha</h2><p><b>Note:</b> read this.</p><p><a href="/x">x</a>',
                     ["Alpha"], id="bold-lead-in-is-not-a-heading"),
        pytest.param('<h2>Alpha</h2><p><b>This is bold and ends a sentence.</b></p>'
                     '<p><a href="/x">x</a>', ["Alpha"], id="bold-sentence-is-not-a-heading"),
        pytest.param('<h2>Alpha</h2><div class="sidebar"><h3>Menu</h3></div><p><a href="/x">x</a>',
                     ["Alpha"], id="heading-in-chrome-ignored"),
        pytest.param('<p><a href="/x">x</a><h2>Beta</h2><p><a href="/y">y</a>', ["", "Beta"],
                     id="before-any-heading"),
        # A heading on its own line among the entries (not alone in its block)
        # was no heading: the entries below it kept the previous section.
        pytest.param('<h2>Alpha</h2><p><b>Beta</b><br><a href="/x">x</a>. Its text.</p>',
                     ["Beta"], id="bold-line-then-br-in-block"),
        pytest.param('<h2>Alpha</h2><a name="b"><b>Beta</b></a><br><a href="/x">x</a>',
                     ["Beta"], id="named-bold-line-in-body"),
        pytest.param('<h2>Alpha</h2><strong>Beta</strong><br><br><a href="/x">x</a>',
                     ["Beta"], id="strong-line-in-body"),
        pytest.param('<h2>Alpha</h2><a name="b">Beta</a><p><a href="/x">x</a>',
                     ["Beta"], id="named-anchor-before-a-block"),
        pytest.param('<h2>Alpha</h2><td><font size=2><b>Beta</b><br>\n<a href="/x">x</a></font>',
                     ["Beta"], id="bold-line-in-font"),
        # A larger <font> was no heading (only bold was).
        pytest.param('<h2>Alpha</h2><p><font size="+1" color="#336699">Beta</font></p>'
                     '<p><a href="/x">x</a>', ["Beta"], id="font-size-plus-one-block"),
        pytest.param('<h2>Alpha</h2><font size=5>Beta</font><br><a href="/x">x</a>',
                     ["Beta"], id="font-size-5-line"),
        pytest.param('<h2>Alpha</h2><p><font size="2">Beta</font></p><p><a href="/x">x</a>',
                     ["Alpha"], id="small-font-is-not-a-heading"),
        pytest.param('<h2>Alpha</h2><font size="+1"><p><a href="/x">x</a>. Its text.</p></font>',
                     ["Alpha"], id="big-font-around-entries-is-not-a-heading"),
        pytest.param('<h2>Alpha</h2><p><b>Study title here</b><br>Its summary. '
                     '<a href="/x">PubMed</a></p>', ["Alpha"],
                     id="bold-title-with-summary-below-is-not-a-heading"),
        pytest.param('<h2>Alpha</h2><p>Read <b>Beta</b><br><a href="/x">x</a></p>', ["Alpha"],
                     id="bold-inside-a-line-is-not-a-heading"),
        pytest.param('<h2>Alpha</h2><p><b>Beta</b> and text<br><a href="/x">x</a></p>', ["Alpha"],
                     id="bold-lead-in-of-a-line-is-not-a-heading"),
    ],
)
def test_sections(html: str, sections: list[str]) -> None:
    assert [c.section for c in extract_page(html, SMALL).citations] == sections


_ENTRIES = "".join(f'<p><a href="http://e.org/{i}">Study {i}</a>. A summary of it. '
                   f"J Rheumatol. 2020;1(2):3-4.</p>\n" for i in range(200))
_LONG = " ".join(f"word{i}" for i in range(100_000))  # 688,890 characters


@pytest.mark.parametrize(
    ("html", "section"),
    [
        # One missing </h2> over 2,000 entries made each link's section the
        # rest of the page (167 KB a link: 338 MB of database in one run).
        pytest.param(f"<h2>References\n{_ENTRIES}", "References", id="unclosed-h2-over-paragraphs"),
        pytest.param(f"<h3>Biologics <i>(new)</i>\n<div>{_ENTRIES}</div>", "Biologics (new)",
                     id="unclosed-h3-with-markup-over-a-div"),
        pytest.param(f"<h2>References {_LONG}</h2>{_ENTRIES}",
                     "References " + " ".join(f"word{i}" for i in range(28)) + "\u2026",
                     id="long-heading-clipped-at-a-word"),
        pytest.param(f"<h2>References {'x' * 5000}</h2>{_ENTRIES}",
                     "References\u2026", id="long-word-clipped-at-the-last-space"),
        pytest.param(f"<h2>{'x' * 5000}</h2>{_ENTRIES}", "x" * 200 + "\u2026",
                     id="one-long-word-cut-in-it"),
        pytest.param(f"<h2><a name='r'>References</a> <a href='/all'>(all)</a></h2>{_ENTRIES}",
                     "References (all)", id="linked-heading-read-whole"),
        pytest.param(f"<h2>Refer<b>ences</b>   and\n\n   notes</h2>{_ENTRIES}", "References and notes",
                     id="closed-heading-as-before"),
    ],
)
def test_sections_are_bounded(html: str, section: str) -> None:
    citations = [c for c in extract_page(html, SMALL).citations if c.url and "e.org" in c.url]
    assert len(citations) == 200
    assert {c.section for c in citations} == {section}
    assert len(section) <= 201


@pytest.mark.parametrize(
    ("html", "anchor"),
    [
        pytest.param(f'<p><a href="http://e.org/1">{_LONG}</a></p>',
                     " ".join(f"word{i}" for i in range(72)) + "\u2026", id="500-chars-at-a-word"),
        pytest.param(f'<p><a href="http://e.org/1">{"<i>a</i> " * 5000}</a></p>',
                     "a " * 249 + "a\u2026", id="many-small-nodes"),
        pytest.param(f'<p><a href="http://e.org/1">{"y" * 600}</a></p>', "y" * 500 + "\u2026",
                     id="one-long-word"),
        pytest.param('<p><a href="http://e.org/1">' + " " * 100_000 + "Title  of\n the <b>study</b>"
                     + " " * 100_000 + "</a></p>", "Title of the study", id="white-space-collapsed"),
        pytest.param('<p><a href="http://e.org/1">' + "x" * 200 + " " * 400 + "yz</a></p>", "x" * 200 + " yz",
                     id="just-over-500-raw-is-kept-when-it-collapses"),
        pytest.param('<p><a href="http://e.org/1">Rituximab in <i>early</i> disease</a></p>',
                     "Rituximab in early disease", id="ordinary"),
    ],
)
def test_anchor_text_is_bounded(html: str, anchor: str) -> None:
    (citation,) = extract_page(html, SMALL).citations
    assert citation.anchor_text == anchor
    assert len(citation.anchor_text) <= 501


_PIECES = st.one_of(st.sampled_from(["<i>", "</i>", "<b>", "</b>", "<br>", "<!-- c -->", "&amp;", " ", "\n\t"]),
                    st.text(alphabet="ab \n\u00a0\u2003", max_size=8))


@given(st.lists(_PIECES, max_size=40))
def test_a_short_anchor_text_reads_as_the_whole_text(pieces: list[str]) -> None:
    """The bounded walk joins and collapses text nodes as `node.text()` did."""
    html = f'<p><a href="http://e.org/1">{"".join(pieces)}</a></p>'
    anchor = LexborHTMLParser(html).css_first("a")
    assert anchor is not None
    (citation,) = extract_page(html, SMALL).citations
    assert citation.anchor_text == " ".join(anchor.text().split())


def test_an_unclosed_anchor_over_the_rest_of_the_page_keeps_small_texts() -> None:
    """lexbor reopens an unclosed <a> around what follows; with no other
    link to close it, its text is the rest of the page."""
    lines = "".join(f"Study {i} of a long series. Summary. J Rheumatol. 2020;1(2):3-4.<br>\n"
                    for i in range(2000))
    html = f'<h2>References</h2><a href="http://e.org/start">Start here {lines}'
    (citation,) = extract_page(html, SMALL).citations
    assert citation.anchor_text.startswith("Start here Study 0 of a long series.")
    assert len(citation.anchor_text) <= 501
    assert citation.context is None or len(citation.context.title) <= 501


def test_an_entry_summary_is_bounded() -> None:
    """Its summary is the text after the title, which a page with no
    paragraphs makes the rest of the page, stored with each occurrence."""
    html = ('<p><a href="http://e.org/1">Rituximab in early diffuse disease</a>. '
            + "A long sentence of the summary. " * 20_000 + "J Rheumatol. 2020;1(2):3-4.</p>")
    (citation,) = extract_page(html, SMALL).citations
    assert citation.kind is CIT and citation.context is not None
    assert citation.context.summary.startswith("A long sentence of the summary. A long")
    assert citation.context.summary.endswith("\u2026") and len(citation.context.summary) <= 1001
    assert citation.context.source == "J Rheumatol. 2020;1(2):3-4."


@pytest.mark.parametrize(("title", "kept"), [
    pytest.param("T" * 500_000, "T" * 500 + "\u2026", id="500,000-characters"),
    pytest.param("Treatments " * 60, ("Treatments " * 45).strip() + "\u2026", id="clipped-at-a-word"),
    pytest.param("  Treatments for\n Dermatomyositis  ", "Treatments for Dermatomyositis", id="ordinary"),
])
def test_the_page_title_is_bounded(title: str, kept: str) -> None:
    """Kept with each read of the page, shown in the report and on the terminal."""
    assert extract_page(f"<html><head><title>{title}</title></head><body></body></html>", SMALL).title == kept


@pytest.mark.parametrize(("href", "url", "raw", "skip"), [
    pytest.param("/x?" + "b" * 500_000, None, "/x?" + "b" * 2045 + "\u2026", "invalid_url", id="500,000-characters"),
    pytest.param("http://e.org/x?" + "b" * 8177, "http://e.org/x?" + "b" * 8177, None, None, id="8,192-checked"),
    pytest.param("http://e.org/x?" + "b" * 8178, None, "http://e.org/x?" + "b" * 2033 + "\u2026", "invalid_url",
                 id="8,193-not"),
    pytest.param("/x?" + "b" * 8189, None, None, "invalid_url", id="8,192-made-longer-by-the-base"),
    pytest.param("/x?" + "\u00e9" * 2000, None, None, "invalid_url", id="escaped-too-long"),
])
def test_an_href_too_long_for_any_server_is_a_malformed_link_kept_clipped(
        href: str, url: str | None, raw: str | None, skip: str | None) -> None:
    """Servers refuse request lines over 8 KB: a 500,000-character href was
    requested, and kept whole in four rows a week (href, URL, observation,
    state). It is a link to correct; the history keeps what finds it."""
    (citation,) = extract_page(f'<p><a href="{href}">A study</a></p>', "http://e.org/p").citations
    assert (citation.url, citation.raw_href, citation.skip_reason) == (url, href if raw is None else raw, skip)


def test_resources_of_every_kind() -> None:
    html = (
        '<head><link rel="stylesheet" href="/s.css"><link rel="shortcut icon" href="/f.ico">'
        '<link rel="canonical" href="/canon.html"><link rel="preconnect" href="//fonts.example">'
        '<script src="/a.js"></script><script>var x = "<a href=/no>";</script></head>'
        '<body><img src="/i.png" srcset="/i-2x.png 2x, /i-3x.png 3x" alt="Pic">'
        '<picture><source srcset="/p.webp 1x, /p2.webp 2x"></picture>'
        '<iframe src="https://video.example/embed/1"></iframe><video src="/v.mp4" '
        'poster="/v.jpg"></video><audio src="/a.mp3"></audio><embed src="/e.swf">'
        '<object data="/o.pdf"></object><img src="data:image/gif;base64,R0lGOD">'
        "</body>"
    )
    got = [(c.kind, c.element, c.attribute, c.raw_href, c.skip_reason)
           for c in extract_page(html, SMALL).citations]
    assert got == [
        (RES, "link", "href", "/s.css", None),
        (RES, "link", "href", "/f.ico", None),
        (NAV, "link", "href", "/canon.html", None),
        (RES, "script", "src", "/a.js", None),
        (RES, "img", "src", "/i.png", None),
        (RES, "img", "srcset", "/i-2x.png", None),
        (RES, "img", "srcset", "/i-3x.png", None),  # every candidate, not just the first
        (RES, "source", "srcset", "/p.webp", None),
        (RES, "source", "srcset", "/p2.webp", None),
        (RES, "iframe", "src", "https://video.example/embed/1", None),
        (RES, "video", "src", "/v.mp4", None),
        (RES, "video", "poster", "/v.jpg", None),
        (RES, "audio", "src", "/a.mp3", None),
        (RES, "embed", "src", "/e.swf", None),
        (RES, "object", "data", "/o.pdf", None),
        (RES, "img", "src", "data:image/gif;base64,R0lGOD", "data"),
    ]


# --- entry context of small pages: (kind, section, context) per link --------

_TITLE = "A randomised trial of rituximab in myositis"
_SUMMARY = "Rituximab helped most patients."
_SOURCE = "PubMed, Clin Rheumatol, 04/30/2018."
_ENTRY = EntryContext(title=_TITLE, summary=_SUMMARY, source=_SOURCE, date=dt.date(2018, 4, 30))
_EXPIRED = EntryContext(title=_TITLE, summary=_SUMMARY, source=_SOURCE, date=dt.date(2018, 4, 30),
                        expired_mark=True)


def _entry(before: str = "", after: str = "", inside: str = "", tail: str = "") -> str:
    return (f'<h2>Sec</h2><p>{before}<a href="https://pubmed.example/1">{inside}{_TITLE}</a>'
            f"{after}. {_SUMMARY} {_SOURCE}{tail}</p>")


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param(_entry(), [(CIT, "Sec", _ENTRY)], id="plain-entry"),
        pytest.param(_entry(before="(Expired Article) "), [(CIT, "Sec", _EXPIRED)],
                     id="expired-before-title"),
        # Editors also put the mark after the title or at the end of the entry:
        # it was read as part of the summary or the source, and the entry as live.
        pytest.param(_entry(after=" (Expired Article)"), [(CIT, "Sec", _EXPIRED)],
                     id="expired-after-title"),
        pytest.param(_entry(after=" <font color=red>[Expired]</font>"), [(CIT, "Sec", _EXPIRED)],
                     id="expired-bracketed-after-title"),
        pytest.param(_entry(tail=" (expired link)"), [(CIT, "Sec", _EXPIRED)],
                     id="expired-at-end-of-entry"),
        pytest.param(_entry(inside="", after="", tail="").replace(
            "</a>", " (Expired Article)</a>"), [(CIT, "Sec", _EXPIRED)],
                     id="expired-at-end-of-link-text"),
        # Other wordings of the mark before the title: "(Article Expired)" was not
        # a mark, and an unbracketed "Expired Article:" lost the entry (navigation).
        pytest.param(_entry(before="(Article Expired) "), [(CIT, "Sec", _EXPIRED)],
                     id="article-expired-before-title"),
        pytest.param(_entry(before="<b>(Link Expired)</b> "), [(CIT, "Sec", _EXPIRED)],
                     id="link-expired-before-title"),
        pytest.param(_entry(before="Expired Article: "), [(CIT, "Sec", _EXPIRED)],
                     id="unbracketed-expired-article-colon"),
        pytest.param(_entry(before="<font color=red>EXPIRED</font> - "), [(CIT, "Sec", _EXPIRED)],
                     id="unbracketed-expired-dash"),
        pytest.param(_entry(before="Expired drugs: "), [(NAV, "Sec", None)],
                     id="expired-words-are-no-mark"),
        # What an editor writes once the report says the article was retracted:
        # the mark before the title was dropped, and a bare "RETRACTED:" made
        # the link a menu link (its notice vanished with the entry).
        pytest.param(_entry(before="(Retracted Article) "), [(CIT, "Sec", dataclasses.replace(
            _ENTRY, summary="(Retracted Article) " + _SUMMARY))], id="retracted-mark-before-title"),
        pytest.param(_entry(before="<b>RETRACTED:</b> "), [(CIT, "Sec", dataclasses.replace(
            _ENTRY, summary="RETRACTED: " + _SUMMARY))], id="bare-retracted-before-title"),
        pytest.param(_entry(before="Withdrawn review - "), [(CIT, "Sec", dataclasses.replace(
            _ENTRY, summary="Withdrawn review - " + _SUMMARY))], id="bare-withdrawn-before-title"),
        pytest.param(_entry(before="\u2022 "), [(CIT, "Sec", _ENTRY)], id="a-bullet-is-no-mark"),
        pytest.param(_entry(before="12. "), [(CIT, "Sec", _ENTRY)], id="a-number-is-no-mark"),
        pytest.param(_entry(before="Retracted drugs: "), [(NAV, "Sec", None)],
                     id="retracted-words-are-no-mark"),
        pytest.param(_entry().replace("helped", "(removed in 2005) helped"),
                     [(CIT, "Sec", EntryContext(
                         title=_TITLE, summary="Rituximab (removed in 2005) helped most patients.",
                         source=_SOURCE, date=dt.date(2018, 4, 30)))],
                     id="removed-in-a-sentence-is-no-mark"),
    ],
)
def test_entry_context(html: str, expected: list[tuple[LinkKind, str, EntryContext | None]]) -> None:
    got = [(c.kind, c.section, c.context) for c in extract_page(html, SMALL).citations]
    assert got == expected


_ONE = EntryContext(title="First trial of rituximab", summary="Summary one here.",
                    source="PubMed, Lupus, 04/30/2019.", date=dt.date(2019, 4, 30))
_TWO = EntryContext(title="Second trial of abatacept", summary="Summary two here.",
                    source="PubMed, Lupus, 2018 Dec;27(4):1-9.", date=dt.date(2018, 12, 1))
_LINE_ONE = ('<a href="https://x.example/1">First trial of rituximab</a>. Summary one here. '
             "PubMed, Lupus, 04/30/2019.")
_LINE_TWO = ('<a href="https://x.example/2">Second trial of abatacept</a>. Summary two here. '
             "PubMed, Lupus, 2018 Dec;27(4):1-9.")


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        # Entries one per line in one paragraph: the second was navigation and
        # the first entry's summary ran on through the second entry.
        pytest.param(f"<h2>Sec</h2><p>{_LINE_ONE}<br>{_LINE_TWO}<br></p>",
                     [(CIT, "Sec", _ONE), (CIT, "Sec", _TWO)], id="entries-one-per-line"),
        pytest.param(f"<h2>Sec</h2><p>{_LINE_ONE}<br>\n(Expired Article) {_LINE_TWO}</p>",
                     [(CIT, "Sec", _ONE), (CIT, "Sec", dataclasses.replace(_TWO, expired_mark=True))],
                     id="expired-entry-on-its-own-line"),
        # A source link on its own line stays with its entry's text.
        pytest.param('<h2>Sec</h2><p><a href="https://x.example/1">First trial of rituximab</a>'
                     '<br>Summary one here.<br><a href="https://pubmed.example/1">PubMed</a>, '
                     "Lupus, 04/30/2019.</p>",
                     [(CIT, "Sec", _ONE), (NAV, "Sec", None)], id="source-link-on-its-own-line"),
        pytest.param('<td><a href="/a.html">Home</a><br><a href="/b.html">About Us</a><br>'
                     '<a href="/c.html">Treatments for scleroderma</a><br></td>',
                     [(NAV, "", None)] * 3, id="same-site-menu-one-per-line"),
        pytest.param('<p>Our study of it. <a href="https://x.example/1">PubMed</a>.<br>'
                     'See <a href="https://x.example/2">the NIH page about it</a> for more.</p>',
                     [(NAV, "", None)] * 2, id="running-text-after-br"),
    ],
)
def test_entries_by_line(html: str, expected: list[tuple[LinkKind, str, EntryContext | None]]) -> None:
    got = [(c.kind, c.section, c.context) for c in extract_page(html, SMALL).citations]
    assert got == expected


def test_image_map_areas_are_named_by_their_alt() -> None:
    # Was "": the report could not tell an editor which region of the map.
    html = ('<img src="/map.gif" usemap="#m"><map name="m"><area shape="rect" href="/a.html" '
            'alt="Hand symptoms"><area href="/b.html" title="Feet"><area href="/c.html"></map>')
    got = [(c.element, c.anchor_text, c.kind) for c in extract_page(html, SMALL).citations]
    assert got == [("img", "", RES), ("area", "Hand symptoms", NAV), ("area", "Feet", NAV),
                   ("area", "", NAV)]


# --- srcset: every candidate URL --------------------------------------------

@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param('<img src="a.png" srcset="a.png 1x, b.png 2x, /c.png 3x">',
                     ["https://site.example/section/a.png", "https://site.example/section/b.png",
                      "https://site.example/c.png"], id="img-srcset-every-candidate"),
        pytest.param('<picture><source srcset="/p.webp?w=1,2 1x,/q.webp 2x (a, b), r.webp 3x">'
                     "</picture>",
                     ["https://site.example/p.webp?w=1,2", "https://site.example/q.webp",
                      "https://site.example/section/r.webp"], id="source-srcset-commas-in-urls"),
        pytest.param('<img srcset="one.png, two.png 2x,three.png">',
                     ["https://site.example/section/one.png", "https://site.example/section/two.png",
                      "https://site.example/section/three.png"], id="srcset-bare-commas"),
    ],
)
def test_srcset_candidates(html: str, expected: list[str]) -> None:
    got = extract_page(f"<p>\n{html}", SMALL).citations
    assert [c.url for c in got] == expected
    assert {c.line for c in got} == {2}


# --- targets outside <a>/<img>: old hand-written HTML ------------------------
# One row per form: (html, [(kind, element, attribute, url or skip reason)]).
# Each row holds at least one target the extractor used to miss, so every
# row failed before; negatives sit beside a positive of the same family.

_S = "https://site.example/section/"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param('<meta http-equiv="refresh" content="0; url=https://new.example/p.html">',
                     [(NAV, "meta", "content", "https://new.example/p.html")], id="refresh"),
        pytest.param('<META HTTP-EQUIV="Refresh" CONTENT="5;URL=/moved/here.html">',
                     [(NAV, "meta", "content", "https://site.example/moved/here.html")],
                     id="refresh-upper-no-space"),
        pytest.param("<meta http-equiv=refresh content=\"0; url='new.html'\">",
                     [(NAV, "meta", "content", _S + "new.html")], id="refresh-single-quoted"),
        pytest.param("<meta http-equiv='refresh' content='3; URL = \"../up.html\"'>",
                     [(NAV, "meta", "content", "https://site.example/up.html")],
                     id="refresh-double-quoted-spaced"),
        pytest.param('<meta http-equiv="refresh" content="2.5, bare.html">',
                     [(NAV, "meta", "content", _S + "bare.html")], id="refresh-no-url-keyword"),
        pytest.param('<meta http-equiv="refresh" content="0; url=url.html">',
                     [(NAV, "meta", "content", _S + "url.html")], id="refresh-url-named-url"),
        pytest.param('<meta http-equiv="refresh" content="0; urban.html">',
                     [(NAV, "meta", "content", _S + "urban.html")], id="refresh-starts-like-url"),
        pytest.param('<base href="/b/"><meta http-equiv="refresh" content="0;url=x.html">',
                     [(NAV, "meta", "content", "https://site.example/b/x.html")],
                     id="refresh-base-href"),
        pytest.param('<meta http-equiv="refresh" content="0; url=javascript:go()">',
                     [(NAV, "meta", "content", "javascript")], id="refresh-javascript-skipped"),
        pytest.param('<meta http-equiv="refresh" content="30">'
                     '<meta http-equiv="refresh" content="0; url=">'
                     '<meta http-equiv="refresh" content="; url=/no-delay.html">'
                     '<meta http-equiv="refresh" content="soon; url=/words.html">'
                     '<meta name="refresh" content="0; url=/named.html">'
                     '<meta http-equiv="content-type" content="text/html; charset=utf-8">'
                     '<meta http-equiv="refresh" content="10; url=/real.html">',
                     [(NAV, "meta", "content", "https://site.example/real.html")],
                     id="refresh-negatives"),
        pytest.param('<body background="/img/paper.gif"><p>Text</p>',
                     [(RES, "body", "background", "https://site.example/img/paper.gif")],
                     id="body-background"),
        pytest.param('<table background="t.gif"><tr background="r.gif"><th background="h.gif">H'
                     '<td background="c.gif">C<td background="">E</table>'
                     '<div background="d.gif">D</div>',
                     [(RES, "table", "background", _S + "t.gif"),
                      (RES, "tr", "background", _S + "r.gif"),
                      (RES, "th", "background", _S + "h.gif"),
                      (RES, "td", "background", _S + "c.gif")], id="table-backgrounds"),
        pytest.param('<form action="/cgi-bin/search.pl"><input type="image" src="/go.gif" alt="Go">'
                     '<input type="IMAGE" src="go2.gif"><input type="text" src="/no.gif">'
                     '<input type="submit"></form>',
                     [(RES, "input", "src", "https://site.example/go.gif"),
                      (RES, "input", "src", _S + "go2.gif")], id="input-image-form-not-a-link"),
        pytest.param('<blockquote cite="https://journal.example/a1">Quoted.</blockquote>'
                     '<p>As <q cite="/q.html">said</q>, <ins cite="why.html">new</ins>'
                     '<del cite="data:,x">old</del>',
                     [(NAV, "blockquote", "cite", "https://journal.example/a1"),
                      (NAV, "q", "cite", "https://site.example/q.html"),
                      (NAV, "ins", "cite", _S + "why.html"), (NAV, "del", "cite", "data")],
                     id="quote-and-edit-sources"),
        pytest.param('<applet code="Lake.class" width="200"></applet>'
                     '<applet code="org.demo.Clock" codebase="/java"></applet>'
                     '<applet code="Ticker.class" codebase="http://old.example/j/" '
                     'archive="tick.jar, lib/util.jar"></applet>',
                     [(RES, "applet", "code", _S + "Lake.class"),
                      (RES, "applet", "code", "https://site.example/java/org/demo/Clock.class"),
                      (RES, "applet", "archive", "http://old.example/j/tick.jar"),
                      (RES, "applet", "archive", "http://old.example/j/lib/util.jar")],
                     id="applet-code-codebase-archive"),
        pytest.param('<bgsound src="/midi/theme.mid" loop="infinite">',
                     [(RES, "bgsound", "src", "https://site.example/midi/theme.mid")],
                     id="bgsound"),
        pytest.param('<img src="/chart.gif" longdesc="chart.html" alt="Chart">',
                     [(RES, "img", "src", "https://site.example/chart.gif"),
                      (NAV, "img", "longdesc", _S + "chart.html")], id="img-longdesc"),
        pytest.param('<frameset><frame src="/menu.html" longdesc="/menu-text.html"></frameset>',
                     [(RES, "frame", "src", "https://site.example/menu.html"),
                      (NAV, "frame", "longdesc", "https://site.example/menu-text.html")],
                     id="frame-longdesc"),
    ],
)
def test_old_html_targets(html: str, expected: list[tuple[LinkKind, str, str, str]]) -> None:
    got = [(c.kind, c.element, c.attribute, c.url or c.skip_reason)
           for c in extract_page(html, SMALL).citations]
    assert got == expected


def test_old_html_targets_carry_their_source_line_and_label() -> None:
    html = ('<html><head>\n<meta http-equiv="refresh" content="0; url=/new.html">\n</head>\n'
            '<body background="bg.gif">\n<table>\n<tr><td background="c.gif">x</td></tr>\n'
            '</table>\n<img src="a.png"\n srcset="b.png 2x, c.png 3x">\n'
            '<blockquote cite="/src.html" title="Osler, 1892">It is much more important '
            "to know what sort of patient has a disease than what sort of disease a patient "
            "has.</blockquote>\n<q cite=/q.html>Short</q>\n"
            '<input type="image" src="/go.gif" alt="Search">\n'
            '<applet code="A.class" archive="a.jar,b.jar"></applet>\n</body></html>')
    got = [(c.element, c.attribute, c.raw_href, c.line, c.anchor_text)
           for c in extract_page(html, SMALL).citations]
    assert got == [
        ("meta", "content", "/new.html", 2, ""),
        ("body", "background", "bg.gif", 4, ""),
        ("td", "background", "c.gif", 6, ""),
        ("img", "src", "a.png", 8, ""),
        ("img", "srcset", "b.png", 8, ""),
        ("img", "srcset", "c.png", 8, ""),
        ("blockquote", "cite", "/src.html", 10, "Osler, 1892"),
        ("q", "cite", "/q.html", 11, "Short"),
        ("input", "src", "/go.gif", 12, "Search"),
        ("applet", "archive", "a.jar", 13, ""),
        ("applet", "archive", "b.jar", 13, ""),
    ]


# --- targets CSS in the page names: style="..." and <style> -------------------
# One row per form: (html, [(kind, element, attribute, url)]). Every row holds
# a url() or an @import the extractor used to miss, so every row failed
# before; the forms a browser does not load sit beside one it does.

_SITE = "https://site.example/"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param('<table><tr><td style="background-image: url(images/bg.gif)">x</td></tr>'
                     "</table>",
                     [(RES, "td", "style", _S + "images/bg.gif")], id="td-unquoted"),
        pytest.param("<body style=\"background: #fff url('/img/paper.gif') repeat-y\"><p>Text",
                     [(RES, "body", "style", _SITE + "img/paper.gif")], id="body-single-quoted"),
        pytest.param("<div style='background:url( \"a b.png\" ) no-repeat'>d</div>",
                     [(RES, "div", "style", _S + "a%20b.png")], id="div-double-quoted-spaced"),
        pytest.param('<div style="background: URL(one.png), Url(two.png), url(one.png)">d</div>',
                     [(RES, "div", "style", _S + "one.png"), (RES, "div", "style", _S + "two.png")],
                     id="several-any-case-once-each"),
        pytest.param('<div style="background: url(//cdn.example/x.png); '
                     'list-style-image: url(http://old.example/dot.gif)">d</div>',
                     [(RES, "div", "style", "https://cdn.example/x.png"),
                      (RES, "div", "style", "http://old.example/dot.gif")], id="absolute"),
        pytest.param('<base href="/b/c/"><div style="background: url(../up/u.gif)">d</div>'
                     '<style>@import "s.css"; p { background: url(/top.gif) }</style>',
                     [(RES, "div", "style", _SITE + "b/up/u.gif"),
                      (RES, "style", "@import", _SITE + "b/c/s.css"),
                      (RES, "style", "url", _SITE + "top.gif")], id="relative-to-base-href"),
        pytest.param('<div style="background:url(a\\29 b\\).png)">1</div>'
                     "<div style=\"background:url('q\\22 x\\'.png')\">2</div>"
                     '<div style="background:url(&quot;e\\\n.png&quot;)">3</div>',
                     [(RES, "div", "style", _S + "a)b).png"),
                      (RES, "div", "style", _S + "q%22x'.png"),
                      (RES, "div", "style", _S + "e.png")], id="css-escapes"),
        pytest.param('<div style="background:url(data:image/gif;base64,R0lGOD); '
                     "clip-path:url(#clip); mask:url(); list-style:url(''); "
                     "border-image:url( ); /* background:url(old.gif) */ "
                     "content:'url(no.gif)'; background-image:url(kept.gif)\">d</div>",
                     [(RES, "div", "style", _S + "kept.gif")], id="ignored-forms"),
        pytest.param('<div style="background:url(a b.gif); list-style:url(q&quot;.gif); '
                     'cursor:myurl(x.gif); border-image:url(kept.gif)">d</div>',
                     [(RES, "div", "style", _S + "kept.gif")], id="bad-urls-dropped"),
        pytest.param('<span style="background:url(unclosed.gif">s</span>'
                     "<span style='background:url(\"quoted.gif'>q</span>",
                     [(RES, "span", "style", _S + "unclosed.gif"),
                      (RES, "span", "style", _S + "quoted.gif")], id="unclosed-at-the-end-kept"),
        pytest.param('<div style="@import url(no.css); background:url(yes.gif)">d</div>',
                     [(RES, "div", "style", _S + "yes.gif")], id="no-import-in-an-attribute"),
        pytest.param('<style type="text/css">\n<!--\n@import "base.css";\n'
                     "@import url(print.css) print;\n@IMPORT url('/css/menu.css');\n"
                     "body { background: #fff url(/images/paper.gif) repeat-y }\n"
                     'td.menu { background-image: url("tab.gif") } /* url(old.gif) */\n'
                     '@font-face { font-family: X; src: url(fonts/x.woff) format("woff") }\n'
                     ".c { clip-path: url(#c); content: \"url(no.gif)\" }\n-->\n</style>",
                     [(RES, "style", "@import", _S + "base.css"),
                      (RES, "style", "@import", _S + "print.css"),
                      (RES, "style", "@import", _SITE + "css/menu.css"),
                      (RES, "style", "url", _SITE + "images/paper.gif"),
                      (RES, "style", "url", _S + "tab.gif"),
                      (RES, "style", "url", _S + "fonts/x.woff")], id="style-block"),
        pytest.param("<style>@import'a.css';@import/**/url(b.css);@import bare.css;"
                     '/* @import "no.css"; */@importer "no2.css";</style>',
                     [(RES, "style", "@import", _S + "a.css"),
                      (RES, "style", "@import", _S + "b.css")], id="import-forms"),
        pytest.param("<style>p { background: url(a.gif; }\n.b { background: url(lost.gif) }\n"
                     ".c { background: url(kept.gif) }\n.d { background: url(end.gif</style>",
                     [(RES, "style", "url", _S + "kept.gif"),
                      (RES, "style", "url", _S + "end.gif")],
                     id="block-unclosed-url"),
        pytest.param('<script>var s = "<div style=\\"background:url(no.gif)\\">";</script>'
                     "<p>Write url(no2.gif) or @import x.css in CSS.</p>"
                     '<div style="background:url(yes.gif)">d</div>',
                     [(RES, "div", "style", _S + "yes.gif")], id="not-css-text"),
        pytest.param('<p><a href="https://j.example/1" style="background:url(/ext.gif) no-repeat">'
                     "A trial of rituximab in myositis</a>. Summary of it. PubMed, 2018.",
                     [(CIT, "a", "href", "https://j.example/1"),
                      (RES, "a", "style", _SITE + "ext.gif")], id="citation-link-keeps-its-kind"),
        pytest.param('<table><tr><td background="c.gif" style="background:url(c.gif)">x'
                     '<td style="color:red">y</table>',
                     [(RES, "td", "background", _S + "c.gif"), (RES, "td", "style", _S + "c.gif")],
                     id="background-attribute-and-style"),
    ],
)
def test_css_targets(html: str, expected: list[tuple[LinkKind, str, str, str]]) -> None:
    got = [(c.kind, c.element, c.attribute, c.url or c.skip_reason)
           for c in extract_page(html, SMALL).citations]
    assert got == expected


def test_css_targets_carry_their_line_section_and_label() -> None:
    html = ('<html><head>\r\n<style>\r\n@import "a.css";\r\n\r\n'
            "body { background: url(b.gif) }</style>\r\n</head>\r\n"
            '<body style="background-image: url(bg.gif)">\r\n<h2>Biologics</h2>\r\n'
            '<table><tr><td title="Tab" style="background:\r\n url(t.gif), url(u.gif)">x</td>'
            "</tr></table>\r\n<style>\r\np { background: url(b.gif) }</style>\r\n"
            '<div class="footer"><p style="background:url(f.gif)">Footer</div>\r\n</body></html>')
    got = [(c.element, c.attribute, c.raw_href, c.line, c.section, c.anchor_text)
           for c in extract_page(html, SMALL).citations]
    assert got == [
        ("style", "@import", "a.css", 3, "", ""),
        ("style", "url", "b.gif", 5, "", ""),
        ("body", "style", "bg.gif", 7, "", ""),
        ("td", "style", "t.gif", 9, "Biologics", "Tab"),
        ("td", "style", "u.gif", 9, "Biologics", "Tab"),
        ("style", "url", "b.gif", 12, "Biologics", ""),
        ("p", "style", "f.gif", 13, "", ""),
    ]


def test_css_targets_of_reopened_clones_are_dropped() -> None:
    # lexbor, like a browser, re-opens an unclosed <font> or <a> in each
    # following block, style attribute and all: one source tag, one link.
    html = ('<p><font style="background:url(f.gif), url(g.gif)">a\n<p>b\n<p>c\n'
            '<p><font style="background:url(f.gif), url(g.gif)">again</font>\n'
            '<p><a href="/x" style="background:url(a.gif)">Link text\n<p>more\n<p>end\n'
            '<p><b style="background:url(b.gif), url(c.gif)">1</b> '
            '<b style="background:url(b.gif), url(c.gif)">2</b>')
    got = [(c.element, c.attribute, c.raw_href, c.line)
           for c in extract_page(html, SMALL).citations]
    assert sorted(got, key=lambda row: (row[3], row[1])) == [
        ("font", "style", "f.gif", 1), ("font", "style", "g.gif", 1),
        ("font", "style", "f.gif", 4), ("font", "style", "g.gif", 4),
        ("a", "href", "/x", 5),
        ("a", "style", "a.gif", 5),
        ("b", "style", "b.gif", 8), ("b", "style", "c.gif", 8),
        ("b", "style", "b.gif", 8), ("b", "style", "c.gif", 8),
    ]


# --- the href as the source writes it (review 15 #6) -----------------------

@pytest.mark.parametrize(
    ("tag", "source_href"),
    [
        # a character reference: the editor searches for what the source says
        ('<a href="soft2?id=7&amp;src=rss">x</a>', "soft2?id=7&amp;src=rss"),
        ("<a href='/a?b=1&#38;c=2'>x</a>", "/a?b=1&#38;c=2"),
        ('<a href=/a?b=1&amp;c=2>x</a>', "/a?b=1&amp;c=2"),
        ('<img src="/i.png?a=1&amp;b=2">', "/i.png?a=1&amp;b=2"),
        ('<a href="/x?a=&quot;q&quot;">x</a>', "/x?a=&quot;q&quot;"),
        # the parser's value is the source's: nothing more to say
        ('<a href="/a?b=1&c=2">x</a>', ""),
        ('<a href="HTTP://Example.ORG/A">x</a>', ""),
        ('<a href=" /a ">x</a>', ""),
        ('<a href="/a\nb">x</a>', ""),
        # a srcset's candidates are parts of the attribute, not the attribute
        ('<img src="/a.png" srcset="/b.png?x=1&amp;y=2 2x">', ""),
    ],
)
def test_source_href_is_the_attribute_as_written_when_a_reference_changed_it(
        tag: str, source_href: str) -> None:
    citations = extract_page(f"<html><body>\n<p>{tag}</p>\n</body></html>", SMALL).citations
    assert [c.source_href for c in citations][-1:] == [source_href]
    assert all(c.line == 2 for c in citations)


def test_each_copy_of_a_link_keeps_its_own_writing() -> None:
    html = ('<p><a href="/a?b=1&c=2">one</a>\n<a href="/a?b=1&amp;c=2">two</a>\n'
            '<a href="/a?b=1&#x26;c=2">three</a></p>')
    got = [(c.raw_href, c.line, c.source_href) for c in extract_page(html, SMALL).citations]
    assert got == [("/a?b=1&c=2", 1, ""), ("/a?b=1&c=2", 2, "/a?b=1&amp;c=2"),
                   ("/a?b=1&c=2", 3, "/a?b=1&#x26;c=2")]
