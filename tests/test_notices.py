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

Withdrawals (notice "withdrawn"; the module's docstring has the table):

- "WITHDRAWN:" before the title: PubMed's record of a withdrawn Cochrane
  review (Cochrane's editorial resource, documentation.cochrane.org,
  pageId=117382100: "Article title preceded by 'WITHDRAWN:'"; the example
  "Androgens versus placebo or no treatment for idiopathic
  oligo/asthenospermia", Cochrane Database Syst Rev. 2007;(4):CD000150,
  from kraftylibrarian.com), and Elsevier's withdrawn articles in press,
  once written "WITHDRAWN :Delayed acquisition of neonatal reflexes ..."
  (Neurotoxicology, quoted by abainternational.blogspot.com, 2010).
- The Cochrane Library: "Reason for withdrawal from publication", the
  note "This review has been withdrawn ..." and the sentence "The
  editorial group responsible for this previously published document have
  withdrawn it from publication." (pageId=117382100; PubMed 26043867's
  abstract).
- ScienceDirect's banner "This article has been withdrawn: please see
  Elsevier Policy on Article Withdrawal": the brief's wording, not found in
  any stored copy (the retraction banner's template).
- Elsevier's notice body and note to users are what Retraction Watch
  quotes (2010/12/07): not marks by themselves.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from markupsafe import escape

from monitor.classify import classify
from monitor.config import ReportSettings, load_settings
from monitor.jobs import report_job
from monitor.notices import (
    CITATION_CHARS,
    NOTICED_STATUSES,
    RETRACTED,
    WITHDRAWN,
    entry_says_so,
    notice_for,
    retraction,
    withdrawal,
)
from monitor.output import LINK_FIELDS, to_csv, to_json, write_text
from monitor.store import Store
from monitor.types import (
    Citation,
    EntryContext,
    Hop,
    LinkKind,
    LinkResult,
    LinkStatus,
    Observation,
    PageRecord,
    RunInfo,
    UrlState,
    Verdict,
)
from reports.audit import Audit, audit_for_pages, build_audit
from reports.deliver import load_audit
from reports.mail import subject_for
from reports.render import headline, render_html, render_json, render_text
from simkit import run_monitor

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
     "Retraction in: Retraction--Ileal"),
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
     True, "Retraction of: Ileal"),
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


SCAND = ("Notice of retraction: Oral treprostinil reduces digital ulcer healing time in systemic "
         "sclerosis. Scand J Rheumatol. 2021 Mar;50(2):168. doi: 10.1080/03009742.2021.1880000")


@pytest.mark.parametrize(("text", "quoted"), [
    # PubMed's list: the heading, then the notice's title and citation, then the article's title
    ("Retraction in " + SCAND + ". Oral treprostinil reduces digital ulcer healing time",
     "Retraction in: " + SCAND),
    (PUBMED_RETRACTED, "Retraction in: Retraction--Ileal-lymphoid-nodular hyperplasia, non-specific "
     "colitis, and pervasive developmental disorder in children. Editors of The Lancet. Lancet. "
     "2010 Feb 6;375(9713):445. doi: 10.1016/S0140-6736(10)60175-4"),
    ("A trial. Retraction in: J Rheumatol. 2019;46(3):330. Abstract", "Retraction in: J Rheumatol. "
     "2019;46(3):330"),
    ("Sci Rep. 2023. Retraction in: Sci Rep. 2024 Jan 10. doi: 10.1038/x More", "Retraction in: Sci "
     "Rep. 2024 Jan 10. doi: 10.1038/x"),
])
def test_pubmed_s_linked_notice_is_quoted_with_its_whole_citation(text: str, quoted: str) -> None:
    """The year and doi of the notice are what the advice asks the editor to
    write: the quote kept 120 characters ('... Scand J\u2026') and read the
    heading into the title ('Retraction in Notice of retraction: ...')."""
    found = retraction("A trial - PubMed", "", text)
    assert found is not None
    assert found.detail == f"PubMed links a retraction notice: \u2018{quoted}\u2019."
    assert len(quoted) <= CITATION_CHARS


def test_a_linked_notice_titled_at_length_is_cut_at_a_word_within_the_cap() -> None:
    words = "Notice of retraction of a very long title " * 9
    found = retraction("A trial - PubMed", "", f"Retraction in {words}. J Rheumatol. 2019;46(3):330.")
    assert found is not None
    quoted = found.detail.removeprefix("PubMed links a retraction notice: \u2018").removesuffix("\u2019.")
    assert quoted.endswith("\u2026") and len(quoted) <= CITATION_CHARS
    assert ("Retraction in: " + words).startswith(quoted.removesuffix("\u2026") + " ")


# (title, summary, source line) of an entry, and whether it already says
# its article was retracted or withdrawn
ENTRY_MARKS: list[tuple[str, str, str, bool]] = [
    # -- what the advice asks for, as editors write it
    ("(Retracted Article) Oral treprostinil reduces digital ulcer healing time", "", "", True),
    ("Oral treprostinil trial", "Ulcers healed faster. Retracted in 2021.", "PubMed, 2018.", True),
    ("Oral treprostinil trial", "Ulcers healed faster.", "PubMed, Scand J Rheumatol, 2018. Retracted in 2021.",
     True),
    ("Oral treprostinil trial", "", "Retracted in March 2021. PubMed, 2018.", True),
    ("RETRACTED: Rituximab for refractory dermatomyositis", "", "", True),
    ("Rituximab for refractory dermatomyositis [Retracted]", "", "", True),
    ("Rituximab trial", "This article was retracted in 2021.", "", True),
    ("Rituximab trial", "Note: the study has been retracted.", "", True),
    ("Rituximab trial", "", "PubMed, 2018 (retracted)", True),
    ("Rituximab trial", "Retraction in: Scand J Rheumatol. 2021 Mar;50(2):168.", "", True),
    ("Rituximab trial", "See the retraction notice.", "", True),
    ("WITHDRAWN: Androgens for idiopathic oligo/asthenospermia", "", "", True),
    ("Androgens review", "Withdrawn by the authors.", "Cochrane, 2007.", True),
    ("Androgens review", "", "Cochrane Database Syst Rev, 2007. Review withdrawn in 2019.", True),
    ("Androgens review", "retracted in 2021", "", True),  # any case
    # -- entries about retractions, and the medical senses of the words
    ("Retracted papers keep being cited", "A study of citations of retracted articles.", "Nature, 2019.", False),
    ("Why retractions matter", "Retractions are rising.", "Science News, 2023.", False),
    ("Retraction Watch database", "Tracks retractions.", "", False),
    ("Retracted Science and the Retraction Index", "", "Infect Immun, 2011.", False),
    ("Eyelid retraction in thyroid eye disease", "Upper eyelid retraction is the most common sign.", "", False),
    ("Methotrexate withdrawal in remission", "Methotrexate was withdrawn in 12 patients.", "", False),
    ("Rofecoxib", "A drug withdrawn from the market; consent was withdrawn by 3 patients.", "", False),
    ("Oral treprostinil reduces digital ulcer healing time", "Ulcers healed faster.", "PubMed, 2018.", False),
]


@pytest.mark.parametrize(("title", "summary", "source", "marked"), ENTRY_MARKS,
                         ids=[f"{i}-{c[0][:30]}" for i, c in enumerate(ENTRY_MARKS)])
def test_an_entry_that_already_says_so(title: str, summary: str, source: str, marked: bool) -> None:
    assert entry_says_so(title, summary, source) is marked


def test_the_scholarly_title_is_quoted_before_the_page_title() -> None:
    found = retraction("RETRACTED: " + CITED + " - ScienceDirect", "RETRACTED: " + CITED)
    assert found is not None
    assert found.detail == f"The publisher's page is titled \u2018RETRACTED: {CITED}\u2019."


def test_a_long_title_is_quoted_in_part() -> None:
    found = retraction("RETRACTED: " + "a very long title " * 30)
    assert found is not None and found.detail.endswith("\u2026\u2019.") and len(found.detail) < 200


COCHRANE = "Androgens versus placebo or no treatment for idiopathic oligo/asthenospermia"
COCHRANE_NOTE = ("This review has been withdrawn from The Cochrane Library as it has not been updated "
                 "since 1996.")
COCHRANE_SENTENCE = ("The editorial group responsible for this previously published document have "
                     "withdrawn it from publication.")
CHROME = ("Skip to main content Cochrane Library Trusted evidence. Informed decisions. Better health. "
          "Title Abstract Keyword Browse Advanced search Search history Help Cochrane Reviews ")

# (title, meta_title, text, withdrawn?, what the detail must quote)
WITHDRAWAL_CASES: list[tuple[str, str, str, bool, str]] = [
    # -- the withdrawn article's own page
    ("WITHDRAWN: " + COCHRANE + " - PubMed", "WITHDRAWN: " + COCHRANE,
     "Cochrane Database Syst Rev. 2007 Jul 18;(4):CD000150. " + COCHRANE_NOTE, True,
     "\u2018WITHDRAWN: Androgens"),
    ("WITHDRAWN: " + CITED + " - ScienceDirect", "WITHDRAWN: " + CITED, "", True,
     "\u2018WITHDRAWN: Rituximab"),
    ("WITHDRAWN :Delayed acquisition of neonatal reflexes in newborn primates - ScienceDirect", "",
     "", True, "WITHDRAWN :Delayed"),
    ("", "", "WITHDRAWN: " + CITED + " Journal of Autoimmunity, In Press", True, "WITHDRAWN: Rituximab"),
    (CITED + " - ScienceDirect", "", "Skip to main content ScienceDirect Journals & Books Volume 12, "
     "2019 This article has been withdrawn: please see Elsevier Policy on Article Withdrawal "
     "(https://www.elsevier.com/about/policies/article-withdrawal).", True,
     "\u2018This article has been withdrawn: please see\u2019"),
    (COCHRANE + " - Vandekerckhove, P - 2007 | Cochrane Library", "", CHROME + "Withdrawn Intervention "
     "Review Reason for withdrawal from publication " + COCHRANE_NOTE + " " + COCHRANE_SENTENCE, True,
     "\u2018Reason for withdrawal from publication This review"),
    (COCHRANE + " | Cochrane Library", "", CHROME + COCHRANE_NOTE, True, f"\u2018{COCHRANE_NOTE[:-1]}\u2019."),
    ("Inhaled corticosteroids for bronchiectasis - PubMed", "", "Abstract This review has been withdrawn "
     "for the following reasons: \u2010 a review author contravenes Cochrane's Commercial Sponsorship "
     "Policy. " + COCHRANE_SENTENCE, True, "\u2018This review has been withdrawn for the following"),
    (COCHRANE + " | Cochrane Library", "", CHROME + COCHRANE_SENTENCE, True,
     f"says \u2018{COCHRANE_SENTENCE[:-1]}\u2019."),
    # -- not withdrawals: the medical senses of the word, a list, a story, a quoted notice
    ("Withdrawal symptoms after stopping antidepressants", "",
     "Withdrawal symptoms are common: half of patients report them. WITHDRAWAL is not relapse.",
     False, ""),
    ("FDA: painkiller withdrawn from the market over liver injury | Reuters", "",
     "The drug was withdrawn from the market on Monday. Withdrawn drugs are listed by the agency.",
     False, ""),
    ("Withdrawal of methotrexate in rheumatoid arthritis patients in sustained remission: a randomised "
     "controlled trial - PubMed", "Withdrawal of methotrexate in rheumatoid arthritis patients in "
     "sustained remission", "Objective: to assess treatment withdrawal. Methods: withdrawal of "
     "methotrexate was compared with continuation; tapering before withdrawal.", False, ""),
    ("Tocilizumab in systemic sclerosis - PubMed", "", "Results: 87 patients; 3 withdrew and consent "
     "was withdrawn for 2 children; withdrawal for adverse events was rare.",
     False, ""),
    ("Lab notebook: the week in science | Science News", "", "Ocean heat hit a record. " * 60
     + "The article was withdrawn by the author after the journal raised questions.", False, ""),
    ("Withdrawn drugs list", "", "List of withdrawn drugs: drugs withdrawn from the market for safety "
     "reasons, by year.", False, ""),
    ("Withdrawn \u2013 a memoir of social anxiety", "", "", False, ""),
    # titles in sentence case are titles (PubMed and Elsevier write the mark in
    # capitals), and a story or a page saying "withdrawn, see ..." is no banner
    ("Withdrawn: a memoir", "", "", False, ""),
    ("Withdrawn: The Hidden Epidemic of Prescription Drug Withdrawal", "", "", False, ""),
    ("Journal retracts, then reinstates | Science News", "", "A spokesperson said: this paper has been "
     "withdrawn. See our earlier post on the case.", False, ""),
    ("Guideline: Raynaud's phenomenon | Medscape", "", "This article has been withdrawn, see the updated "
     "guideline on the treatment of Raynaud's phenomenon.", False, ""),
    ("Academic purgatory: Papers withdrawn before they\u2019re \u201cofficially\u201d published - "
     "Retraction Watch", "", "All we learn from the withdrawal notice is the following: This article has "
     "been withdrawn at the request of the author(s) and/or editor. The Publisher apologizes for any "
     "inconvenience this may cause. The full Elsevier Policy on Article Withdrawal can be found at "
     "Note to users: Withdrawn Articles in Press are proofs of articles which have been peer reviewed.",
     False, ""),
    (COCHRANE + " (Review) | Cochrane Library", "", CHROME + "What's new: an earlier version of this "
     "review has been withdrawn; this update includes 12 trials.", False, ""),
    (CITED + " - ScienceDirect", "", "This article has been retracted: please see Elsevier Policy on "
     "Article Withdrawal (https://www.elsevier.com/about/policies/article-withdrawal).", False, ""),
    (CITED, CITED, "The trial enrolled 200 patients with refractory dermatomyositis.", False, ""),
]


@pytest.mark.parametrize(("title", "meta_title", "text", "withdrawn", "quoted"), WITHDRAWAL_CASES,
                         ids=[f"{i}-{c[0][:40]}" for i, c in enumerate(WITHDRAWAL_CASES)])
def test_withdrawal_marks(title: str, meta_title: str, text: str, withdrawn: bool, quoted: str) -> None:
    found = withdrawal(title, meta_title, text)
    if not withdrawn:
        assert found is None
        return
    assert found is not None and found.kind == WITHDRAWN
    assert quoted in found.detail


def test_the_title_of_a_withdrawn_article_is_quoted_whole() -> None:
    found = withdrawal("WITHDRAWN: " + COCHRANE + " - PubMed", "WITHDRAWN: " + COCHRANE)
    assert found is not None
    assert found.detail == f"The page is titled \u2018WITHDRAWN: {COCHRANE}\u2019."


@pytest.mark.parametrize(("title", "meta_title", "text", "expected"), [
    # a retracted article's banner names Elsevier's "Policy on Article Withdrawal": retracted
    (CITED + " - ScienceDirect", "", "This article has been retracted: please see Elsevier Policy on "
     "Article Withdrawal.", RETRACTED),
    # marked both ways: the stronger verdict
    ("WITHDRAWN: " + CITED + " - PubMed", "", "Retraction in: Lancet. 2010 Feb 6;375(9713):445.", RETRACTED),
    ("WITHDRAWN: " + CITED + " - PubMed", "", "", WITHDRAWN),
    (CITED + " | Cochrane Library", "", CHROME + COCHRANE_SENTENCE, WITHDRAWN),
    ("Withdrawal of methotrexate in RA - PubMed", "", "Treatment withdrawal was safe.", None),
])
def test_a_page_carries_one_notice_the_retraction_first(title: str, meta_title: str, text: str,
                                                        expected: str | None) -> None:
    found = notice_for(obs(title=title, meta_title=meta_title, text=text), LinkStatus.OK)
    assert (found.kind if found else None) == expected


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


def test_a_withdrawn_review_stays_ok_and_carries_the_notice() -> None:
    verdict = classify(obs(title="WITHDRAWN: " + COCHRANE + " - PubMed", meta_title="WITHDRAWN: " + COCHRANE,
                           text="Abstract " + COCHRANE_NOTE), title=COCHRANE)
    assert (verdict.status, verdict.reason) == (LinkStatus.OK, "ok")
    assert verdict.notice == WITHDRAWN and "WITHDRAWN: Androgens" in verdict.notice_detail


def test_a_withdrawal_page_without_the_cited_title_is_expired_without_a_notice() -> None:
    """The classifier's expiry rule reads "this article has been withdrawn"
    on a page that does not show the cited title: a problem, not a note."""
    verdict = classify(obs(title="Article withdrawn - ScienceDirect",
                           text="This article has been withdrawn: please see Elsevier Policy on Article "
                                "Withdrawal."), title=CITED)
    assert (verdict.status, verdict.reason, verdict.notice) == (LinkStatus.EXPIRED, "expired_notice", "")


@pytest.mark.parametrize("status", [404, 410, 403, 500])
def test_a_failing_page_says_nothing_about_the_cited_work(status: int) -> None:
    verdict = classify(obs(status, title="RETRACTED: " + CITED), title=CITED)
    assert verdict.status.is_failing and verdict.notice == ""


@pytest.mark.parametrize("status", list(LinkStatus))
def test_notices_only_for_pages_that_were_read(status: LinkStatus) -> None:
    found = notice_for(obs(title="RETRACTED: " + CITED), status)
    assert (found is not None) == (status in NOTICED_STATUSES)


# -- the report and the outputs -------------------------------------------------------------

PAGE = "https://www.sclero.org/scleroderma/autoimmune/dermatomyositis/treatments.html"
PAGE2 = "https://www.sclero.org/scleroderma/raynauds/treatments.html"
SD = "https://www.sciencedirect.com/science/article/pii/S0896841118300012"
PM = "https://pubmed.ncbi.nlm.nih.gov/9500320/"
HOSTILE = "RETRACTED: <script>alert('x')</script> & friends"


def link_result(url: str, *, page: str = PAGE, title: str = CITED, notice: str = "",
                detail: str = "", status: LinkStatus = LinkStatus.OK, reason: str = "ok",
                kind: LinkKind = LinkKind.CITATION, source: str = "J Autoimmun, 2019.") -> LinkResult:
    return LinkResult(page=page, url=url, text=title, section="Biological Agents", kind=kind,
                      status=status, reason=reason, http_status=200, final_url=url,
                      suggested_url=None, strikes=0, failing_since=None, checked_at=T0,
                      entry_title=title, entry_source=source, notice=notice,
                      notice_detail=detail)


def retraction_audit() -> Audit:
    """Two pages: a retracted article (its page quoted with markup in its
    title), a PubMed record, an unretracted article, a dead link, and a
    retracted article linked from a menu (not an entry: no note)."""
    hostile = retraction(HOSTILE)
    pubmed = retraction("Ileal hyperplasia - PubMed", "", PUBMED_RETRACTED)
    assert hostile is not None and pubmed is not None
    links = [
        link_result(SD, title="Rituximab <b>for</b> refractory dermatomyositis", notice=RETRACTED,
                    detail=hostile.detail),
        link_result("https://www.nejm.org/doi/full/10.1056/x", title="An unretracted trial", source=""),
        link_result("https://example.org/gone", title="A removed article", status=LinkStatus.EXPIRED,
                    reason="http_404"),
        link_result(PM, page=PAGE2, title="Ileal-lymphoid-nodular hyperplasia", notice=RETRACTED,
                    detail=pubmed.detail),
        link_result("https://www.sciencedirect.com/menu", page=PAGE2, title="Journals",
                    notice=RETRACTED, detail="The publisher's page is titled 'RETRACTED: x'.",
                    kind=LinkKind.NAVIGATION),
    ]
    pages = [PageRecord(run_id=7, url=PAGE, status="ok", title="DM treatments", owner="dm@example.org"),
             PageRecord(run_id=7, url=PAGE2, status="ok", title="Raynaud's", owner="rp@example.org")]
    run = RunInfo(id=7, started_at=T0, finished_at=T0, status="finished")
    return build_audit(run, links, pages, previous_links=None, previous_pages=None, states={},
                       now=T0, settings=ReportSettings(), site_name="www.sclero.org")


def test_the_report_lists_retracted_entries_first_among_its_content_notes() -> None:
    audit = retraction_audit()
    groups = audit.content_audit.groups()
    assert groups[0][:2] == ("retracted", "Cited articles that were retracted")
    retracted = groups[0][2]
    assert [(i.page, i.entry, i.url) for i in retracted] == [
        (PAGE, "Rituximab <b>for</b> refractory dermatomyositis", SD),
        (PAGE2, "Ileal-lymphoid-nodular hyperplasia", PM)]
    assert retracted[0].words.startswith("The publisher's page is titled \u2018RETRACTED: <script>")
    assert "The cited article was retracted" in retracted[0].words
    assert retracted[1].words.startswith("PubMed links a retraction notice: \u2018Retraction in")
    # a note, not a problem: counted with the content notes, the links stay ok
    assert audit.counts.content == audit.content_audit.total == 3  # and one entry without a source
    assert audit.counts.ok == 4 and audit.fixing_count == 1


def test_an_owner_gets_only_the_retractions_of_their_pages() -> None:
    part = audit_for_pages(retraction_audit(), [PAGE2], "rp@example.org")
    assert [i.url for i in part.content_audit.retracted] == [PM]
    assert part.counts.content == part.content_audit.total
    assert "1 cited article was retracted" in headline(part)
    assert "retracted" not in headline(audit_for_pages(retraction_audit(), [], "nobody@example.org"))


def test_the_report_says_so_at_the_top_names_page_and_entry_and_escapes_the_web() -> None:
    audit = retraction_audit()
    assert headline(audit).endswith(
        "2 cited articles were retracted: see \u201cCited articles that were retracted\u201d.")
    html = render_html(audit, max_bytes=None)
    text = render_text(audit)
    section = html[html.index("Cited articles that were retracted (2)"):html.index("Entries without")]
    assert "<script>" not in html and "&lt;script&gt;alert(" in section and "&amp; friends" in section
    assert "Rituximab &lt;b&gt;for&lt;/b&gt; refractory dermatomyositis" in section
    assert f'<a href="{PAGE}">DM treatments</a>' in section  # the page, with the entry
    assert f'<a href="{SD}">' in section
    assert text.index("Cited articles that were retracted (2):") < text.index("Entries without")
    assert f"  - Ileal-lymphoid-nodular hyperplasia (Raynaud's, {PAGE2})\n" in text
    assert "Journals" not in section  # a menu link is no entry


def test_a_retracted_entry_is_found_as_a_link_to_fix_is_by_section_and_text_fragment() -> None:
    """The row named the page and linked its top: on a page of 200 entries the
    editor had to search for the title. Now its section, and the page
    scrolled to the entry (as "Needs fixing" rows do); an entry listed in two
    sections says so."""
    audit = retraction_audit()
    pubmed = audit.content_audit.retracted[1]
    fragment = f"{PAGE2}#:~:text=Ileal%2Dlymphoid%2Dnodular%20hyperplasia"
    assert (pubmed.section, pubmed.page_link) == ("Biological Agents", fragment)
    html = render_html(audit, max_bytes=None)
    row = html[html.index("Ileal-lymphoid-nodular hyperplasia</b>"):html.index("Entries without")]
    assert f'<a href="{PAGE2}">Raynaud\'s</a> &#183; Biological Agents)' in row
    assert f'<a href="{fragment}">Open the entry on the page</a>' in row
    text = render_text(audit)
    row_text = text[text.index("  - Ileal-lymphoid-nodular hyperplasia"):text.index("Entries without")]
    assert row_text.startswith(f"  - Ileal-lymphoid-nodular hyperplasia (Raynaud's, {PAGE2})\n"
                               "    Section: Biological Agents\n    PubMed links")
    assert f"    Open the entry on the page: {fragment}\n" in row_text
    listed = [replace(l, section=s) for l in audit.links if l.url == PM for s in ("Vasodilators", "Ulcers")]
    twice = build_audit(audit.run, listed, audit.pages, previous_links=None, previous_pages=None,
                        states={}, now=T0, settings=ReportSettings(), site_name="www.sclero.org")
    [(row_twice)] = twice.content_audit.retracted
    assert (row_twice.section, row_twice.related) == ("Vasodilators", ("Also listed under \u201cUlcers\u201d",))


def test_a_retraction_the_entry_already_mentions_is_listed_quietly() -> None:
    """The editor wrote "Retracted in 2021" as advised: the note was still
    counted at the top and in the subject every week. Now it is listed apart,
    "already marked in the entry", counted only among the content notes."""
    base = retraction_audit()
    links = [replace(l, notice_marked=True) if l.url == SD else l for l in base.links]
    audit = build_audit(base.run, links, base.pages, previous_links=None, previous_pages=None,
                        states={}, now=T0, settings=ReportSettings(), site_name="www.sclero.org")
    notes = audit.content_audit
    assert [i.url for i in notes.retracted] == [PM]
    assert [(i.kind, i.url, i.section) for i in notes.notices_marked] == [(RETRACTED, SD, "Biological Agents")]
    assert "Already marked in the entry (it says the article was retracted)" in notes.notices_marked[0].words
    assert "say so in the entry" not in notes.notices_marked[0].words
    assert headline(audit).endswith("1 cited article was retracted: see \u201cCited articles that were retracted\u201d.")
    assert subject_for(audit).endswith(", 1 cited article retracted")
    assert audit.counts.content == base.counts.content
    html, text = render_html(audit, max_bytes=None), render_text(audit)
    assert "Retracted or withdrawn, already marked in the entry (1)" in html
    assert "Retracted or withdrawn, already marked in the entry (1):" in text
    assert "Rituximab &lt;b&gt;for" in html[html.index("already marked in the entry (1)"):]
    every = [replace(l, notice_marked=bool(l.notice)) for l in base.links]
    quiet = build_audit(base.run, every, base.pages, previous_links=None, previous_pages=None,
                        states={}, now=T0, settings=ReportSettings(), site_name="www.sclero.org")
    assert "retracted" not in headline(quiet) and "retracted" not in subject_for(quiet)
    assert "Cited articles that were retracted" not in render_html(quiet, max_bytes=None)
    assert "Cited articles that were retracted" not in render_html(quiet, max_bytes=6000)


def test_a_summarised_mail_still_lists_the_retractions() -> None:
    audit = retraction_audit()
    html = render_html(audit, max_bytes=6000)
    assert "The newest problems" in html  # the summary view
    assert "Cited articles that were retracted (2)" in html


CD = "https://www.cochranelibrary.com/cdsr/doi/10.1002/14651858.CD000150.pub2/full"
PM_WITHDRAWN = "https://pubmed.ncbi.nlm.nih.gov/17943736/"


def withdrawal_audit(*, retracted: bool = True) -> Audit:
    """`retraction_audit`'s links (or none of its retracted ones) and two
    withdrawn Cochrane reviews: one on each page, one read from PubMed."""
    cochrane = withdrawal(COCHRANE + " | Cochrane Library", "", CHROME + COCHRANE_SENTENCE)
    pubmed = withdrawal("WITHDRAWN: " + COCHRANE + " - PubMed", "WITHDRAWN: " + COCHRANE)
    assert cochrane is not None and pubmed is not None
    base = retraction_audit()
    links = [l for l in base.links if retracted or not l.notice] + [
        link_result(CD, title="Androgens for idiopathic oligo/asthenospermia", notice=WITHDRAWN,
                    detail=cochrane.detail, source="Cochrane Database Syst Rev, 2007."),
        link_result(PM_WITHDRAWN, page=PAGE2, title="Calcium channel blockers for Raynaud's phenomenon",
                    notice=WITHDRAWN, detail=pubmed.detail, source="Cochrane Database Syst Rev, 2007."),
    ]
    return build_audit(base.run, links, base.pages, previous_links=None, previous_pages=None, states={},
                       now=T0, settings=ReportSettings(), site_name="www.sclero.org")


def test_withdrawn_entries_follow_the_retracted_in_one_group_each_row_saying_which() -> None:
    audit = withdrawal_audit()
    key, heading, rows = audit.content_audit.groups()[0]
    assert (key, heading) == ("retracted", "Cited articles that were retracted or withdrawn")
    assert [(i.kind, i.url) for i in rows] == [
        (RETRACTED, SD), (RETRACTED, PM), (WITHDRAWN, CD), (WITHDRAWN, PM_WITHDRAWN)]
    assert [i.url for i in audit.content_audit.withdrawn] == [CD, PM_WITHDRAWN]
    assert [i.url for i in audit.content_audit.retracted] == [SD, PM]  # the retracted stay apart
    cochrane, pubmed = rows[2:]
    assert cochrane.words.startswith("The page says \u2018The editorial group responsible for this previously")
    assert pubmed.words.startswith(f"The page is titled \u2018WITHDRAWN: {COCHRANE}\u2019.")
    for row in (cochrane, pubmed):
        assert "The cited article was withdrawn by its publisher: link the version that replaced it" in row.words
        assert "retracted" not in row.words
    assert all("The cited article was retracted" in i.words for i in rows[:2])
    # notes, not problems: the links stay ok, the content count has them
    assert audit.counts.content == audit.content_audit.total == 5  # and one entry without a source
    assert audit.counts.ok == 6 and audit.fixing_count == 1


def test_the_group_is_named_for_what_it_holds() -> None:
    only = withdrawal_audit(retracted=False).content_audit
    assert [(k, h) for k, h, _ in only.groups()][:1] == [("retracted", "Cited articles that were withdrawn")]
    assert [i.kind for i in only.notices] == [WITHDRAWN, WITHDRAWN]
    assert retraction_audit().content_audit.heading("retracted") == "Cited articles that were retracted"


def test_the_headline_and_the_subject_count_the_withdrawn() -> None:
    both, only = withdrawal_audit(), withdrawal_audit(retracted=False)
    assert headline(both).endswith("2 cited articles were retracted and 2 were withdrawn: see "
                                   "\u201cCited articles that were retracted or withdrawn\u201d.")
    assert headline(only).endswith(
        "2 cited articles were withdrawn: see \u201cCited articles that were withdrawn\u201d.")
    assert subject_for(both).endswith(", 2 cited articles retracted, 2 withdrawn")
    assert subject_for(only).endswith(", 2 cited articles withdrawn")
    part = audit_for_pages(both, [PAGE2], "rp@example.org")
    assert headline(part).endswith("1 cited article was retracted and 1 was withdrawn: see "
                                   "\u201cCited articles that were retracted or withdrawn\u201d.")
    assert subject_for(part).endswith(", 1 cited article retracted, 1 withdrawn")


def test_an_owner_gets_only_the_withdrawals_of_their_pages() -> None:
    part = audit_for_pages(withdrawal_audit(retracted=False), [PAGE], "dm@example.org")
    assert [i.url for i in part.content_audit.withdrawn] == [CD]
    assert part.counts.content == part.content_audit.total
    assert "1 cited article was withdrawn" in headline(part)
    assert "withdrawn" not in headline(audit_for_pages(withdrawal_audit(), [], "nobody@example.org"))


def test_the_report_names_page_and_entry_of_a_withdrawn_article() -> None:
    audit = withdrawal_audit()
    html = render_html(audit, max_bytes=None)
    text = render_text(audit)
    section = html[html.index("Cited articles that were retracted or withdrawn (4)"):html.index("Entries without")]
    assert section.index("Rituximab &lt;b&gt;for") < section.index("Androgens for idiopathic")
    assert f'<a href="{PAGE}">DM treatments</a>' in section[section.index("Androgens for idiopathic"):]
    assert f'<a href="{CD}">' in section and "WITHDRAWN: Androgens" in section
    notes = text[text.index("Cited articles that were retracted or withdrawn (4):"):text.index("Entries without")]
    assert f"  - Androgens for idiopathic oligo/asthenospermia (DM treatments, {PAGE})\n" in notes
    assert f"  - Calcium channel blockers for Raynaud's phenomenon (Raynaud's, {PAGE2})\n" in notes
    assert notes.count("The cited article was withdrawn by its publisher") == 2
    summary = render_html(audit, max_bytes=6000)
    assert "The newest problems" in summary
    assert "Cited articles that were retracted or withdrawn (4)" in summary
    assert "Androgens for idiopathic" in summary


def test_the_report_data_keeps_the_withdrawn_apart() -> None:
    doc = json.loads(render_json(withdrawal_audit()))
    content = doc["content_audit"]
    assert [(i["kind"], i["url"]) for i in content["retracted"]] == [(RETRACTED, SD), (RETRACTED, PM)]
    assert [(i["kind"], i["url"]) for i in content["withdrawn"]] == [(WITHDRAWN, CD), (WITHDRAWN, PM_WITHDRAWN)]
    assert {l["url"]: l["notice"] for l in doc["links"]}[CD] == WITHDRAWN


def test_json_and_csv_links_carry_the_notice_in_the_same_columns() -> None:
    links = [link_result(SD, notice=RETRACTED, detail="The publisher's page is titled 'RETRACTED: x'."),
             link_result("https://www.nejm.org/doi/full/10.1056/x"),
             link_result(CD, notice=WITHDRAWN, detail="The page is titled 'WITHDRAWN: y'.")]
    run = RunInfo(id=7, started_at=T0)
    doc = json.loads(to_json(run, [], links))
    assert [(l["notice"], l["status"]) for l in doc["links"]] == [(RETRACTED, "ok"), ("", "ok"), (WITHDRAWN, "ok")]
    assert doc["links"][0]["notice_detail"] == "The publisher's page is titled 'RETRACTED: x'."
    assert doc["links"][2]["notice_detail"] == "The page is titled 'WITHDRAWN: y'."
    rows = list(csv.reader(io.StringIO(to_csv(links))))
    assert rows[0] == list(doc["links"][0]) == list(LINK_FIELDS)
    # entry_date, then where the link sits (line, written, element, attribute) came after
    assert list(LINK_FIELDS[-7:-5]) == ["notice", "notice_detail"]
    assert [dict(zip(rows[0], r))["notice"] for r in rows[1:]] == [RETRACTED, "", WITHDRAWN]


def test_the_terminal_listing_names_the_retracted_entries() -> None:
    out = io.StringIO()
    write_text(out, RunInfo(id=7, started_at=T0), [],
               [link_result(SD, notice=RETRACTED, detail="The publisher's page is titled 'RETRACTED: x'."),
                link_result("https://www.nejm.org/doi/full/10.1056/x")])
    text = out.getvalue()
    assert "RETRACTED: 1 cited article (the link works" in text
    assert f"\n    {SD}\n    retracted: The publisher's page is titled 'RETRACTED: x'.\n" in text
    assert "https://www.nejm.org" not in text


def test_the_terminal_listing_names_the_withdrawn_entries_after_the_retracted() -> None:
    out = io.StringIO()
    cochrane = "https://www.cochranelibrary.com/cdsr/doi/10.1002/14651858.CD000957.pub2/full"
    write_text(out, RunInfo(id=7, started_at=T0), [],
               [link_result(cochrane, notice=WITHDRAWN, detail="The page is titled 'WITHDRAWN: y'."),
                link_result(SD, notice=RETRACTED, detail="The publisher's page is titled 'RETRACTED: x'."),
                link_result(cochrane + "?2", notice=WITHDRAWN, detail="d")])
    text = out.getvalue()
    assert text.index("RETRACTED: 1 cited article") < text.index("WITHDRAWN: 2 cited articles (the link works, "
                                                               "but the page says the article was withdrawn: "
                                                               "link the version that replaced it")
    assert f"\n    {cochrane}\n    withdrawn: The page is titled 'WITHDRAWN: y'.\n" in text


# -- storage ---------------------------------------------------------------------------------


def record(store: Store, run_id: int, url: str, verdict: Verdict, at: dt.datetime = T0) -> None:
    obs = Observation(url=url, checked_at=at, http_status=200, title="RETRACTED: " + CITED)
    state = UrlState(url=url, status=verdict.status, reason=verdict.reason, last_checked_at=at,
                     first_seen_at=at, recent=(verdict.status.value,))
    store.record_observations(run_id, [(obs, verdict, state)])


def cite(url: str, title: str = CITED) -> Citation:
    return Citation(page_url=PAGE, url=url, raw_href=url, anchor_text=title, section="Biological Agents",
                    kind=LinkKind.CITATION, context=EntryContext(title=title, source="J X, 2019."))


def record_links(store: Store, run_id: int, citations: list[Citation]) -> None:
    """PAGE read in full with these links, as the crawl records it."""
    store.record_page(PageRecord(run_id=run_id, url=PAGE, status="ok", links=len(citations)))
    store.record_citations(run_id, PAGE, citations)


def test_a_notice_is_stored_with_its_check_and_comes_back_with_the_runs_links(tmp_path: Path) -> None:
    moved = "https://www.sciencedirect.com/science/article/pii/S08968411183"
    with Store.open(tmp_path / "monitor.db") as store:
        run = store.start_run(T0)
        record_links(store, run.id, [cite(SD), cite(moved), cite(PM, "Another trial")])
        record(store, run.id, SD, Verdict(SD, LinkStatus.OK, "ok", notice=RETRACTED,
                                          notice_detail="The publisher's page is titled \u2018RETRACTED: x\u2019."))
        record(store, run.id, moved, Verdict(moved, LinkStatus.MOVED, "permanent_redirect",
                                             suggested_url=SD, notice=RETRACTED, notice_detail="d"))
        record(store, run.id, PM, Verdict(PM, LinkStatus.OK, "ok"))
        links = {l.url: l for l in store.run_links(run.id)}
        flagged = store.run_flagged_links(run.id)
    assert (links[SD].status, links[SD].notice, links[SD].notice_detail) == (
        LinkStatus.OK, RETRACTED, "The publisher's page is titled \u2018RETRACTED: x\u2019.")
    assert (links[moved].notice, links[PM].notice, links[PM].notice_detail) == (RETRACTED, "", "")
    assert [(l.url, l.notice) for l in flagged] == [(moved, RETRACTED)]


def test_a_database_made_before_notices_gains_the_columns(tmp_path: Path) -> None:
    """Opening a file from before migration m003 adds `observations.notice` and
    `notice_detail`; its checks have none, and new checks store theirs."""
    path = tmp_path / "monitor.db"
    with Store.open(path) as store:
        run = store.start_run(T0)
        record_links(store, run.id, [cite(SD)])
        record(store, run.id, SD, Verdict(SD, LinkStatus.OK, "ok"))
        store.finish_run(run.id, T0)
    with sqlite3.connect(path) as conn:  # back to the file as m002 left it
        conn.execute("ALTER TABLE observations DROP COLUMN notice")
        conn.execute("ALTER TABLE observations DROP COLUMN notice_detail")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_observation_notices'")
    with Store.open(path) as store:
        [old] = store.run_links(run.id)
        assert (old.url, old.status, old.notice, old.notice_detail) == (SD, LinkStatus.OK, "", "")
        later = store.start_run(T0 + dt.timedelta(days=7))
        record_links(store, later.id, [cite(SD)])
        record(store, later.id, SD, Verdict(SD, LinkStatus.OK, "ok", notice=RETRACTED, notice_detail="d"),
               at=T0 + dt.timedelta(days=7))
        [new] = store.run_links(later.id)
        assert (new.notice, new.notice_detail) == (RETRACTED, "d")
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names[-1] == "m003_observation_notices" and names.count("m003_observation_notices") == 1


# -- end to end: a page citing three articles, on loopback --------------------------------------

RETRACTED_TITLE = "Rituximab for refractory dermatomyositis: a randomized placebo-phase trial"
PUBMED_TITLE = ("Ileal-lymphoid-nodular hyperplasia, non-specific colitis, and pervasive developmental "
                "disorder in children")
ABOUT_TITLE = "Why retractions matter to patients reading medical news"


def sciencedirect_page() -> str:
    """An Elsevier article page as ScienceDirect serves a retracted one."""
    return (f"<!DOCTYPE html><html><head><title>RETRACTED: {RETRACTED_TITLE} - ScienceDirect</title>"
            f'<meta name="citation_title" content="RETRACTED: {RETRACTED_TITLE}">'
            '<meta name="citation_journal_title" content="Journal of Autoimmunity"></head><body>'
            "<header><a href='/'>ScienceDirect</a> Journals &amp; Books Search Register Sign in</header>"
            "<div class='Banner'>This article has been retracted: please see Elsevier Policy on Article "
            "Withdrawal (https://www.elsevier.com/about/policies/article-withdrawal).</div>"
            f"<h1><span class='title-text'>RETRACTED: {RETRACTED_TITLE}</span></h1>"
            "<div class='abstract'><h2>Abstract</h2><p>Thirty-six patients were randomized.</p></div>"
            "</body></html>")


def pubmed_page() -> str:
    """A PubMed record as pubmed.ncbi.nlm.nih.gov lays out a retracted one: the
    citation, the linked retraction ("Retraction in"), the title, the
    abstract, and the publication types further down."""
    return (f"<!DOCTYPE html><html lang='en'><head><title>{PUBMED_TITLE} - PubMed</title>"
            f'<meta name="citation_title" content="{PUBMED_TITLE}">'
            '<meta name="citation_pmid" content="9500320"></head><body>'
            "<div class='usa-banner'>An official website of the United States government</div>"
            "<main class='article-details'><header class='heading'>"
            "<div class='article-citation'><div class='article-source'><span class='citation-journal'>"
            "Lancet</span> . <span class='cit'>1998 Feb 28;351(9103):637-41.</span></div>"
            "<span class='citation-doi'>doi: 10.1016/s0140-6736(97)11096-0.</span></div>"
            "<div class='comment-correction-wrapper'><h3 class='comment-correction-type'>Retraction in"
            "</h3><ul class='comment-correction-list'><li class='comment-correction-item'>"
            "<a class='docsum-title' href='/20137807/'>Retraction--Ileal-lymphoid-nodular hyperplasia, "
            "non-specific colitis, and pervasive developmental disorder in children.</a> "
            "<span class='docsum-authors'>Editors of The Lancet.</span> <span class='docsum-journal-citation'>"
            "Lancet. 2010 Feb 6;375(9713):445. doi: 10.1016/S0140-6736(10)60175-4. Epub 2010 Feb 2."
            "</span> <span class='docsum-pmid'>PMID: 20137807</span></li></ul></div>"
            f"<h1 class='heading-title'>{PUBMED_TITLE}</h1>"
            "<div class='authors-list'>A J Wakefield, S H Murch, A Anthony</div></header>"
            "<div class='abstract' id='abstract'><h2>Abstract</h2><p>We investigated a consecutive "
            "series of children.</p></div>"
            "<div class='publication-types' id='publication-types'><h2 class='title'>Publication types"
            "</h2><ul class='keywords-list'><li><button>Case Reports</button></li>"
            "<li><button>Retracted Publication</button></li></ul></div></main></body></html>")


def about_page() -> str:
    """A news article about retractions: it quotes a notice and names one."""
    return (f"<!DOCTYPE html><html><head><title>{ABOUT_TITLE} | Science News</title></head><body>"
            f"<h1>{ABOUT_TITLE}</h1><p>Retraction Watch counts thousands of retractions a year. "
            "The best-known, a retraction in The Lancet in February 2010, came twelve years late. "
            "The notice reads: \u201cThis article has been retracted at the request of the editors.\u201d "
            "Expression of concern notices come first, sometimes.</p></body></html>")


def watched_page(base: str) -> str:
    entries = [(f"{base}/science/article/pii/S0896841118300012", RETRACTED_TITLE, "J Autoimmun, 2019."),
               (f"{base}/9500320/", PUBMED_TITLE, "PubMed, Lancet, 1998 Feb 28;351(9103):637-41."),
               (f"{base}/news/why-retractions-matter", ABOUT_TITLE, "Science News, 03/12/2023.")]
    body = "".join(f'<p><a href="{url}">{title}</a>. A summary of the article. {source}</p>\n'
                   for url, title, source in entries)
    return ("<html><head><title>Treatments for Dermatomyositis</title></head><body>"
            "<h1>Treatments for Dermatomyositis</h1><a name='bio'></a><h2>Biological Agents</h2>\n"
            f"{body}</body></html>")


@pytest.fixture
async def cited_site(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    """The watched page and the three articles it cites, on one loopback server."""
    pages: dict[str, Callable[[], str]] = {
        "/science/article/pii/S0896841118300012": sciencedirect_page,
        "/9500320/": pubmed_page,
        "/news/why-retractions-matter": about_page,
    }

    async def serve(request: web.Request) -> web.Response:
        base = f"http://{request.host}"
        text = watched_page(base) if request.path == "/scleroderma/dm-treatments.html" else pages[request.path]()
        return web.Response(text=text, content_type="text/html")

    app = web.Application()
    for path in [*pages, "/scleroderma/dm-treatments.html"]:
        app.router.add_get(path, serve)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


async def test_a_page_citing_two_retracted_articles_gets_them_in_its_json_and_report(
        cited_site: str, tmp_path: Path) -> None:
    """The real pipeline: `monitor check --format json` as a subprocess, then
    the report of that run from the same database, as `monitor report` builds it."""
    page = f"{cited_site}/scleroderma/dm-treatments.html"
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[[pages]]\nurl = "{page}"\n\n[checker]\ntimeout = 2\nretries = 0\nsoft404_probe = false\n'
        f'allow_private_networks = ["127.0.0.1/32"]\n\n[database]\npath = "{tmp_path / "monitor.db"}"\n\n'
        f'[report]\ndir = "{tmp_path / "reports"}"\nsite_name = "www.sclero.org"\n', encoding="utf-8")
    code, out, err = await run_monitor("check", "--config", str(config), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    cited = {l["url"]: l for l in doc["links"] if l["kind"] == "citation"}
    sd, pm, news = (f"{cited_site}/science/article/pii/S0896841118300012", f"{cited_site}/9500320/",
                    f"{cited_site}/news/why-retractions-matter")
    assert set(cited) == {sd, pm, news}
    assert {url: (l["status"], l["notice"]) for url, l in cited.items()} == {
        sd: ("ok", RETRACTED), pm: ("ok", RETRACTED), news: ("ok", "")}
    assert cited[sd]["notice_detail"] == f"The publisher's page is titled \u2018RETRACTED: {RETRACTED_TITLE}\u2019."
    assert cited[pm]["notice_detail"].startswith("PubMed links a retraction notice: \u2018Retraction in")

    settings = load_settings(config)
    outcome = await report_job(settings)
    html = outcome.html_path.read_text(encoding="utf-8")
    with Store.open(settings.database.path) as store:
        text = render_text(load_audit(store, outcome.run_id, settings, T0))
    report = json.loads(outcome.json_path.read_text(encoding="utf-8"))
    assert [(i["url"], i["entry"]) for i in report["content_audit"]["retracted"]] == [
        (sd, RETRACTED_TITLE), (pm, PUBMED_TITLE)]
    assert "2 cited articles were retracted" in outcome.headline
    section = html[html.index("Cited articles that were retracted (2)"):]
    assert RETRACTED_TITLE in section and PUBMED_TITLE in section
    assert section.index(RETRACTED_TITLE) < section.index(PUBMED_TITLE)
    assert ABOUT_TITLE not in html[html.index("Cited articles that were retracted"):html.index("Everything else")]
    notes = text[text.index("Cited articles that were retracted (2):"):text.index("EVERYTHING ELSE")]
    assert f"  - {RETRACTED_TITLE} (Treatments for Dermatomyositis, {page})\n" in notes
    assert f"  - {PUBMED_TITLE} (Treatments for Dermatomyositis, {page})\n" in notes
    assert ABOUT_TITLE not in notes and notes.count("  - ") == 2


# -- end to end: withdrawn reviews, on loopback ---------------------------------------------------

TRIAL_TITLE = ("Withdrawal of methotrexate in patients with rheumatoid arthritis in sustained remission: "
               "a randomised trial")
RAYNAUD_TITLE = "Calcium channel blockers for primary Raynaud's phenomenon"


def pubmed_withdrawn_page() -> str:
    """PubMed's record of a withdrawn Cochrane review: "WITHDRAWN:" before
    its title, the abstract of the withdrawn version."""
    return (f"<!DOCTYPE html><html lang='en'><head><title>WITHDRAWN: {COCHRANE} - PubMed</title>"
            f'<meta name="citation_title" content="WITHDRAWN: {COCHRANE}"></head><body>'
            "<div class='usa-banner'>An official website of the United States government</div>"
            "<main><div class='article-source'>Cochrane Database Syst Rev. 2007 Jul 18;(4):CD000150.</div>"
            f"<h1 class='heading-title'>WITHDRAWN: {COCHRANE}</h1><div class='abstract'><h2>Abstract</h2>"
            f"<p>{COCHRANE_NOTE}</p></div></main></body></html>")


def cochrane_withdrawn_page() -> str:
    """The Cochrane Library's withdrawn version: its title as before, the
    reason and Cochrane's sentence at the top."""
    return (f"<!DOCTYPE html><html><head><title>{RAYNAUD_TITLE} - Thompson, AE - 2009 | Cochrane Library"
            "</title></head><body><nav>Cochrane Library Trusted evidence. Informed decisions. Better health."
            "</nav><main><span class='publish-type'>Intervention Review</span> <span>Withdrawn</span>"
            f"<h1>{RAYNAUD_TITLE}</h1><h2>Reason for withdrawal from publication</h2><p>This review has "
            f"been withdrawn because it is out of date. {COCHRANE_SENTENCE}</p></main></body></html>")


def trial_page() -> str:
    """A trial of withdrawing a treatment: "withdrawal" throughout, no mark."""
    return (f"<!DOCTYPE html><html><head><title>{TRIAL_TITLE} - PubMed</title></head><body>"
            f"<h1>{TRIAL_TITLE}</h1><p>Objective: to compare withdrawal of methotrexate with continuation. "
            "Withdrawal symptoms were not seen; consent was withdrawn by two patients.</p></body></html>")


def watched_withdrawn_page(base: str) -> str:
    entries = [(f"{base}/17943736/", COCHRANE, "Cochrane Database Syst Rev, 2007;(4):CD000150."),
               (f"{base}/cdsr/CD000467", RAYNAUD_TITLE, "Cochrane Database Syst Rev, 2009."),
               (f"{base}/30000001/", TRIAL_TITLE, "Ann Rheum Dis, 2019.")]
    body = "".join(f'<p><a href="{url}">{title}</a>. A summary of the review. {source}</p>\n'
                   for url, title, source in entries)
    return ("<html><head><title>Treatments for Raynaud's</title></head><body>"
            "<h1>Treatments for Raynaud's</h1><h2>Reviews</h2>\n"
            f"{body}</body></html>")


@pytest.fixture
async def withdrawn_site(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    """The watched page and the three works it cites, on one loopback server."""
    pages: dict[str, Callable[[], str]] = {
        "/17943736/": pubmed_withdrawn_page, "/cdsr/CD000467": cochrane_withdrawn_page,
        "/30000001/": trial_page,
    }

    async def serve(request: web.Request) -> web.Response:
        base = f"http://{request.host}"
        text = watched_withdrawn_page(base) if request.path == "/raynauds.html" else pages[request.path]()
        return web.Response(text=text, content_type="text/html")

    app = web.Application()
    for path in [*pages, "/raynauds.html"]:
        app.router.add_get(path, serve)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


async def test_withdrawn_reviews_reach_the_json_the_csv_the_report_and_the_history(
        withdrawn_site: str, tmp_path: Path) -> None:
    """`monitor check` (JSON, then CSV) as subprocesses, the report of the
    last run as `monitor report` builds it, and `monitor history`."""
    page = f"{withdrawn_site}/raynauds.html"
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[[pages]]\nurl = "{page}"\n\n[checker]\ntimeout = 2\nretries = 0\nsoft404_probe = false\n'
        f'allow_private_networks = ["127.0.0.1/32"]\n\n[database]\npath = "{tmp_path / "monitor.db"}"\n\n'
        f'[report]\ndir = "{tmp_path / "reports"}"\nsite_name = "www.sclero.org"\n', encoding="utf-8")
    pm, cd, trial = (f"{withdrawn_site}/17943736/", f"{withdrawn_site}/cdsr/CD000467",
                     f"{withdrawn_site}/30000001/")
    code, out, err = await run_monitor("check", "--config", str(config), "--format", "json")
    assert code == 0, err
    cited = {l["url"]: l for l in json.loads(out)["links"] if l["kind"] == "citation"}
    assert {url: (l["status"], l["notice"]) for url, l in cited.items()} == {
        pm: ("ok", WITHDRAWN), cd: ("ok", WITHDRAWN), trial: ("ok", "")}
    assert cited[pm]["notice_detail"] == f"The page is titled \u2018WITHDRAWN: {COCHRANE}\u2019."
    assert cited[cd]["notice_detail"].startswith("The page says \u2018Reason for withdrawal from publication")
    code, out, err = await run_monitor("check", "--config", str(config), "--format", "csv")
    assert code == 0, err
    rows = {r["url"]: r for r in csv.DictReader(io.StringIO(out))}
    assert (rows[pm]["notice"], rows[cd]["notice"], rows[trial]["notice"]) == (WITHDRAWN, WITHDRAWN, "")

    settings = load_settings(config)
    outcome = await report_job(settings)
    report = json.loads(outcome.json_path.read_text(encoding="utf-8"))
    assert [(i["kind"], i["url"]) for i in report["content_audit"]["withdrawn"]] == [
        (WITHDRAWN, pm), (WITHDRAWN, cd)]
    assert report["content_audit"]["retracted"] == []
    assert outcome.headline.endswith(
        "2 cited articles were withdrawn: see \u201cCited articles that were withdrawn\u201d in the report.")
    html = outcome.html_path.read_text(encoding="utf-8")
    section = html[html.index("Cited articles that were withdrawn (2)"):html.index("Everything else")]
    assert COCHRANE in section and str(escape(RAYNAUD_TITLE)) in section and TRIAL_TITLE not in section

    code, out, err = await run_monitor("history", pm, "--config", str(config))
    assert code == 0, err
    assert out.count(f"    WITHDRAWN: The page is titled \u2018WITHDRAWN: {COCHRANE}\u2019.") == 2, out
    code, out, err = await run_monitor("history", trial, "--config", str(config))
    assert code == 0, err
    assert "WITHDRAWN" not in out and " ok " in out
