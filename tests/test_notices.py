"""Retraction notices (monitor/notices.py): a table of what real pages show.

How the sites mark a retraction, and where that is known from (stored copies
found with the project's search tool, November 2026; the rest is marked):

- "RETRACTED: " before the title: Rockefeller University Press's production
  wiki ("When an article is retracted, 'RETRACTED:' needs to be placed in
  front of the online article's title", prodwiki.rupress.org/retractions/
  retraction-stamps). Elsevier (ScienceDirect) and Wiley titles read the
  same on their sites (the lead's brief; Elsevier's policy page,
  elsevier.com/about/policies-and-standards/article-withdrawal, describes
  the retraction but the stored copy does not show a page), as does the
  `citation_title` meta those pages carry. Hindawi titles its notices
  "Retracted: ...".
- "RETRACTED ARTICLE: " (Springer; the brief) and "[RETRACTED ARTICLE]: "
  (SciELO's publishing schema, github.com/scieloorg/scielo_publishing_schema,
  docs/source/narr/retratacao.rst: the article-title holds "RETRACTED
  ARTICLE" in brackets, a colon, then the title).
- The notice itself: "Retraction: [article title]" (the COPE-based policies
  of many journals, e.g. auo.asmepress.com/Article-Retraction.html,
  archmedrep.com/index.php/amr/arwp), Springer's "Retraction Note"
  (springer.com editorial policy "Corrections and Retractions"; a stored
  "Retraction Note: Enhanced tribology ..." record at pure.uj.ac.za),
  Elsevier's "Retraction notice to ...", IEEE's and JAMA's "Notice of
  Retraction" (the brief; not in the stored copies), The Lancet's
  "Retraction--<title>".
- ScienceDirect's banner "This article has been retracted: please see
  Elsevier Policy on Article Withdrawal" and PMC's "This article has been
  retracted. See <notice>" (known from the live sites, not the stored
  copies). A notice's own body, "This article has been retracted at the
  request of the Editor-in-Chief", is quoted verbatim by Retraction Watch
  posts (retractionwatch.com, stored): not a mark by itself.
- PubMed: NLM links the citation of a retracted article to its notice
  (sites.nlm.nih.gov/bsd/policy/errata.html, "Errata, Retractions, and Other
  Linked Citations in PubMed"); the notice reads like NLM's erratum example
  "Erratum in: JAMA. 2015 Jan 27;313(4):422." (NLM's policy as copied at
  wjgnet.com/bpg/GerInfo/286), i.e. "Retraction in: Lancet. 2010 Feb
  6;375(9713):445.", shown at the top of the record since 2016 (Retraction
  Watch's interview of NLM's Hilda Bastian, 2016/07/20). The record also
  gets the publication type "Retracted Publication" (MeSH D016441,
  meshb.nlm.nih.gov), listed under "Publication types"; the notice's own
  record links back with "Retraction of". Partial retractions are errata
  for NLM since 2016 (errata.html): "Partial retraction in" is no mark.
- An expression of concern is not a retraction (Wiley's and Elsevier's
  policies treat it apart; retraction checkers report it separately, e.g.
  litcheck-mcp's retraction_status): it gets no notice at all here.
"""

from __future__ import annotations

import datetime as dt

import pytest

from monitor.classify import classify
from monitor.notices import NOTICED_STATUSES, RETRACTED, notice_for, retraction
from monitor.types import Hop, LinkStatus, Observation

T0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.timezone.utc)
CITED = "Rituximab for refractory dermatomyositis: a randomized controlled trial"

PUBMED_RETRACTED = (
    "Skip to main page content An official website of the United States government Here's how "
    "you know Log in Dashboard Publications Account settings Log out Search: Search Advanced Clipboard "
    "User Guide Save Email Send to Clipboard My Bibliography Collections Citation manager Display "
    "options Display options Format Abstract PubMed PMID Full text links Actions Cite Collections "
    "Add to Collections Create a new collection Add to an existing collection Share Page navigation "
    "Title & authors Abstract Comment in Similar articles Publication types MeSH terms Related "
    "information LinkOut - more resources Lancet . 1998 Feb 28;351(9103):637-41. "
    "doi: 10.1016/s0140-6736(97)11096-0. Retraction in Retraction--Ileal-lymphoid-nodular "
    "hyperplasia, non-specific colitis, and pervasive developmental disorder in children. "
    "Editors of The Lancet. Lancet. 2010 Feb 6;375(9713):445. doi: 10.1016/S0140-6736(10)60175-4. "
    "Epub 2010 Feb 2. PMID: 20137807 No abstract available. Ileal-lymphoid-nodular hyperplasia, "
    "non-specific colitis, and pervasive developmental disorder in children A J Wakefield 1 ..."
)

# (title, meta_title, text, retracted?, what the detail must quote)
CASES: list[tuple[str, str, str, bool, str]] = [
    # -- the retracted article's own page
    ("RETRACTED: " + CITED + " - ScienceDirect", "RETRACTED: " + CITED,
     "Journal of Autoimmunity Volume 12, 2019, Pages 1-10", True, "RETRACTED: Rituximab"),
    (CITED + " - ScienceDirect", "", "Skip to main content ScienceDirect Journals & Books Volume 12, "
     "2019, Pages 1-10 This article has been retracted: please see Elsevier Policy on Article "
     "Withdrawal (https://www.elsevier.com/about/policies/article-withdrawal).", True,
     "This article has been retracted: please see"),
    ("RETRACTED: " + CITED + " - Smith - 2019 - Arthritis & Rheumatology - Wiley Online Library",
     "", "", True, "RETRACTED: Rituximab"),
    ("RETRACTED ARTICLE: " + CITED + " | Clinical Rheumatology", "RETRACTED ARTICLE: " + CITED,
     "", True, "RETRACTED ARTICLE: Rituximab"),
    ("", "[RETRACTED ARTICLE]: " + CITED, "", True, "[RETRACTED ARTICLE]"),
    ("Retracted: " + CITED, "", "", True, "Retracted: Rituximab"),
    ("retracted article. " + CITED, "", "", True, "retracted article."),
    ("Ileal-lymphoid-nodular hyperplasia - PubMed", "", PUBMED_RETRACTED, True,
     "Retraction in Retraction--Ileal"),
    ("A trial - PubMed", "", "A trial. Retraction in: J Rheumatol. 2019;46(3):330.", True,
     "Retraction in: J Rheumatol"),
    ("A trial - PubMed", "", "Sci Rep. 2023. Retraction in: Sci Rep. 2024 Jan 10. doi: 10.1038/x",
     True, "Retraction in: Sci Rep"),
    ("A trial - PubMed", "", "A trial ... Publication types Journal Article Research Support, "
     "Non-U.S. Gov't Retracted Publication MeSH terms Adult Humans", True, "Retracted Publication"),
    ("A trial", "", "The paper. This article has been retracted. See J Clin Invest. 2012 Aug 1;"
     "122(8):3024.", True, "This article has been retracted. See"),
    # -- the retraction notice itself
    ("Retraction notice to \u201c" + CITED + "\u201d [J Autoimmun 12 (2019) 1-10] - ScienceDirect",
     "", "", True, "Retraction notice to"),
    ("Retraction Note: " + CITED + " | Clinical Rheumatology", "", "", True, "Retraction Note:"),
    ("Retraction Note to: " + CITED, "", "", True, "Retraction Note to:"),
    ("Retraction: " + CITED, "", "", True, "Retraction: Rituximab"),
    ("RETRACTION STATEMENT: " + CITED, "", "", True, "RETRACTION STATEMENT"),
    ("Notice of Retraction: " + CITED + " | IEEE Conference Publication", "", "", True,
     "Notice of Retraction"),
    ("Notice of Retraction. " + CITED + " | JAMA", "", "", True, "Notice of Retraction."),
    ("Retraction--Ileal-lymphoid-nodular hyperplasia - PubMed", "", "", True, "Retraction--Ileal"),
    ("Retraction notice - PubMed", "", "Lancet. 2010 Feb 6;375(9713):445. Retraction of: "
     "Lancet. 1998 Feb 28;351(9103):637-41.", True, "Retraction notice - PubMed"),
    ("Editors' statement - PubMed", "", "Lancet. 2010 Feb 6;375(9713):445. Retraction of "
     "Ileal-lymphoid-nodular hyperplasia. Wakefield AJ, et al. Lancet. 1998 Feb 28;351(9103):637-41.",
     True, "Retraction of Ileal"),
    # -- not retractions: about retractions, mentioning one, or a weaker notice
    ("Retraction Watch \u2013 Tracking retractions as a window into the scientific process", "",
     "Journal retracts paper on scleroderma drug. The notice reads: This article has been "
     "retracted at the request of the Editor-in-Chief.", False, ""),
    ("Why retractions matter", "", "Retractions are rising. The retracted article keeps being "
     "cited.", False, ""),
    ("Retractions: a guide for editors", "", "", False, ""),
    ("Retracted papers keep being cited - Nature", "", "", False, ""),
    ("Retracted Science and the Retraction Index", "Retracted Science and the Retraction Index",
     "", False, ""),
    ("Retraction of publications: a study of PubMed", "", "We searched PubMed for the publication "
     "type \u201cRetracted Publication\u201d and for \u201cRetraction of Publication\u201d, 1988-2008. "
     "Publication types Journal Article Review", False, ""),
    ("A review - PubMed", "", "MeSH terms Retraction of Publication as Topic* Periodicals as "
     "Topic. J Med Ethics. 2011 Sep;37(9):567-70.", False, ""),
    ("EXPRESSION OF CONCERN: " + CITED, "EXPRESSION OF CONCERN: " + CITED, "", False, ""),
    ("A trial - PubMed", "", "Expression of concern in: Lancet. 2022 Oct 8;400(10359):1196.",
     False, ""),
    ("A trial - PubMed", "", "Partial retraction in: Lancet. 2004 Mar 6;363(9411):750.", False, ""),
    ("A trial - PubMed", "", "Erratum in: JAMA. 2015 Jan 27;313(4):422. Comment in: Lancet. 2015 "
     "Feb 1;385(9967):400.", False, ""),
    ("Study linking drug to lung damage retracted | Science News", "",
     "A much-discussed study has been pulled. " * 20 + "The paper, which led to a retraction in "
     "The Lancet in February 2010, had been cited 400 times; the journal retracted it.", False, ""),
    ("Eyelid retraction in thyroid eye disease", "", "Upper eyelid retraction is the most common "
     "sign; clot retraction and gingival retraction are unrelated. Retractors were used.", False, ""),
    (CITED, CITED, "The trial enrolled 200 patients with refractory dermatomyositis.", False, ""),
]


@pytest.mark.parametrize(("title", "meta_title", "text", "retracted", "quoted"), CASES,
                         ids=[f"{i}-{c[0][:40]}" for i, c in enumerate(CASES)])
def test_retraction_marks(title: str, meta_title: str, text: str, retracted: bool, quoted: str) -> None:
    found = retraction(title, meta_title, text)
    if not retracted:
        assert found is None
        return
    assert found is not None and found.kind == RETRACTED
    assert quoted in found.detail


def test_the_scholarly_title_is_quoted_before_the_page_title() -> None:
    found = retraction("RETRACTED: " + CITED + " - ScienceDirect", "RETRACTED: " + CITED)
    assert found is not None
    assert found.detail == f"The publisher's page is titled \u2018RETRACTED: {CITED}\u2019."


def test_a_long_title_is_quoted_in_part() -> None:
    found = retraction("RETRACTED: " + "a very long title " * 30)
    assert found is not None and found.detail.endswith("\u2026\u2019.") and len(found.detail) < 200


def obs(status: int | None = 200, **kw: object) -> Observation:
    return Observation(url="https://www.sciencedirect.com/science/article/pii/S0896841118300012",
                       checked_at=T0, http_status=status, **kw)  # type: ignore[arg-type]


def test_a_retracted_article_stays_ok_and_carries_the_notice() -> None:
    verdict = classify(obs(title="RETRACTED: " + CITED + " - ScienceDirect",
                           meta_title="RETRACTED: " + CITED), title=CITED)
    assert (verdict.status, verdict.reason) == (LinkStatus.OK, "ok")
    assert verdict.notice == RETRACTED and "RETRACTED: Rituximab" in verdict.notice_detail


def test_a_moved_retracted_article_keeps_its_move_and_its_notice() -> None:
    moved = obs(redirects=(Hop("https://www.sciencedirect.com/science/article/pii/S0896841118300012",
                               301, "https://www.sciencedirect.com/science/article/pii/S08968411183"),),
                final_url="https://www.sciencedirect.com/science/article/pii/S08968411183",
                title="RETRACTED: " + CITED)
    verdict = classify(moved, title=CITED)
    assert verdict.status == LinkStatus.MOVED and verdict.notice == RETRACTED


def test_an_unretracted_article_has_no_notice() -> None:
    verdict = classify(obs(title=CITED + " - ScienceDirect"), title=CITED)
    assert (verdict.status, verdict.notice, verdict.notice_detail) == (LinkStatus.OK, "", "")


@pytest.mark.parametrize("status", [404, 410, 403, 500])
def test_a_failing_page_says_nothing_about_the_cited_work(status: int) -> None:
    verdict = classify(obs(status, title="RETRACTED: " + CITED), title=CITED)
    assert verdict.status.is_failing and verdict.notice == ""


@pytest.mark.parametrize("status", list(LinkStatus))
def test_notices_only_for_pages_that_were_read(status: LinkStatus) -> None:
    found = notice_for(obs(title="RETRACTED: " + CITED), status)
    assert (found is not None) == (status in NOTICED_STATUSES)
