"""What a working page says about the cited work itself: notices beside the link status.

A retracted article keeps answering 200: publishers leave it online, marked,
so the scholarly record stays whole. For the link checker it is `ok`; for a
medical site citing it, it is the worst content problem there is. The link
status stays what it is (CONTRACT.md's statuses are fixed); the retraction is
a *notice* that rides along with the verdict and the report lists apart.
A *withdrawn* article is the second notice (`WITHDRAWN`): Cochrane withdraws
reviews that are out of date or in error, Elsevier withdraws articles in
press; the page stays, marked, and the entry citing it needs the editor as
much (see "Withdrawn" below). A page marked both ways is `retracted`, the
stronger verdict.

How the sites mark it (what the table in tests/test_notices.py is built on):

| where                         | mark                                                      |
|-------------------------------|-----------------------------------------------------------|
| Elsevier (ScienceDirect),     | the article's title, <title> and `citation_title` open     |
| Wiley, Rockefeller UP, Hindawi| with "RETRACTED:" (Hindawi's notices "Retracted: ...")    |
| Springer, SciELO              | "RETRACTED ARTICLE: ..." ("[RETRACTED ARTICLE]: ...")      |
| ScienceDirect, PMC            | a banner "This article has been retracted: please see ..."|
|                               | ("... retracted. See <the notice's citation>")            |
| PubMed                        | "Retraction in" + the notice's citation (Lancet. 2010 Feb  |
|                               | 6;375(9713):445.) at the top; publication type            |
|                               | "Retracted Publication" under "Publication types"         |
| the notice itself             | "Retraction notice to ...", "Retraction Note: ...",       |
|                               | "Retraction: ...", "Notice of Retraction: ..." (IEEE,      |
|                               | JAMA); PubMed's "Retraction of" + the article's citation  |

What is *not* a retraction, and never flagged: an article about retractions
("Why retractions matter", "Retracted papers keep being cited", Retraction
Watch), a news story mentioning one ("... led to a retraction in The
Lancet") or quoting a notice's body ("This article has been retracted at
the request of the Editor-in-Chief"), an expression of concern (an investigation, not a verdict: no
notice at all; it could become a weaker notice of its own), a partial
retraction (NLM files those as errata), "Erratum in", "Comment in".

Withdrawn: the marks, and where they were seen (stored copies found with the
project's search tool, November 2026; no live page was fetched):

| where                         | mark                                                       |
|-------------------------------|------------------------------------------------------------|
| PubMed, a withdrawn Cochrane  | the title opens with "WITHDRAWN:" (Cochrane's editorial    |
| review                        | resource, documentation.cochrane.org pageId=117382100:     |
|                               | "Article title preceded by 'WITHDRAWN:'"; Retraction       |
|                               | Watch 2010/09/20 on Cochrane titles starting "WITHDRAWN")  |
| Elsevier (ScienceDirect),     | "WITHDRAWN: <title>", also written "WITHDRAWN :<title>"    |
| a withdrawn article in press  | (Neurotoxicology 2009, quoted by abainternational          |
|                               | .blogspot.com 2010/02: "WITHDRAWN :Delayed acquisition...")|
| ScienceDirect                 | the banner "This article has been withdrawn: please see    |
|                               | Elsevier Policy on Article Withdrawal": NOT confirmed, no  |
|                               | stored copy has it; matched as the retraction banner is    |
|                               | (the same template; the brief's wording)                   |
| the Cochrane Library, and     | "The editorial group responsible for this previously       |
| PubMed's abstract of the      | published document have withdrawn it from publication."    |
| review                        | (inserted automatically, pageId=117382100; seen in PubMed  |
|                               | 26043867's abstract), the heading "Reason for withdrawal   |
|                               | from publication" (same page), and the note opening        |
|                               | "This review has been withdrawn ..." (PubMed 26043867:     |
|                               | "... for the following reasons"; kraftylibrarian.com       |
|                               | quoting the Library: "... from The Cochrane Library as it  |
|                               | has not been updated since 1996")                          |

Not marks: Elsevier's withdrawal notice body ("This article has been
withdrawn at the request of the author(s) and/or editor. The Publisher
apologizes ...", Retraction Watch 2010/12/07) and its "Note to users:
Withdrawn Articles in Press are ..." are quoted word for word by the posts
about them, as a retraction notice's body is; the page's "WITHDRAWN:" title
is the mark. PubMed has no withdrawn publication type that could be
confirmed ("Retracted Publication" has no withdrawn counterpart in the
stored NLM pages). "Withdrawn Article in Press", ScienceDirect's label, is
not read (not confirmed as page text). Never flagged: the medical senses of
the word ("withdrawal symptoms", "Withdrawal of methotrexate in ...",
"treatment withdrawal", "consent was withdrawn", "a drug withdrawn from the
market"), a page titled "Withdrawn drugs list", and a story mentioning a
paper "withdrawn by the author" (no title mark, no banner). Doubtful, so
said: a page quoting Cochrane's note as a sentence of its own ("This review
has been withdrawn ...", capitalised) within its first 2,000 characters is
flagged; "an earlier version of this review has been withdrawn" is not.
The classifier's expiry rule reads "this article has been withdrawn" as an
expired page when the page does not show the cited title: that link is
`expired` (a problem to fix), and carries no notice.

Cheap by construction: it runs on every working link of an audit (100,000
links). The texts are the ones the checker already keeps (title, meta
title, the first 2,000 characters of visible text); a substring test rejects
the pages that never say "retract" (nearly all) before the one precompiled
regular expression reads the rest ("retraction" is common in medical text:
eyelid, clot, gingival retraction); the same gate for "withdraw", which
medical pages say more often (the withdrawal of a treatment, of consent):
then the title mark is one anchored test, and the notes are looked for only
in the few dozen characters around each "withdraw" the page has.

Measured (best of 5 x 20,000 calls of `notice_for`, Python 3.11, this
container): a page that says neither word, 2,000 characters of text, 4.0 us
(2.2 before withdrawals were read: their gate is two more substring tests
of each text); a trial of withdrawing methotrexate ("withdrawal" in its
titles and four times in its text), 16-17 us (50 us if the notes were
searched for at every position); a "WITHDRAWN:" title, 3.7 us.

Pure: an observation in, a `Notice` or None out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

from monitor.types import LinkStatus, Observation

__all__ = ["CITATION_CHARS", "NOTICED_STATUSES", "Notice", "QUOTE_CHARS", "RETRACTED", "WITHDRAWN",
           "entry_says_so", "notice_for", "retraction", "withdrawal"]

RETRACTED = "retracted"
"""The `notice` token of a retracted article (or of its retraction notice)."""

WITHDRAWN = "withdrawn"
"""The `notice` token of a withdrawn article (a Cochrane review, an article in press)."""

NOTICED_STATUSES = frozenset({LinkStatus.OK, LinkStatus.MOVED, LinkStatus.DRIFTED})
"""Statuses whose page was read and shown: a 404 or a bot wall says nothing
about the cited work. A drifted page can be the retraction notice itself."""

QUOTE_CHARS = 120
"""What a notice quotes of the page: enough to recognise the article."""

CITATION_CHARS = 300
"""What a notice quotes of PubMed's linked notice: its citation whole (the
journal, the year the editor is asked to write, the doi), within reason."""

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
# PubMed's citation of the linked record: "Lancet. 2010 Feb 6;375(9713):445."
# or, ahead of print, "Sci Rep. 2024 Jan 10. doi: ...". Prose ("a retraction
# in The Lancet in February 2010") never has this shape.
_CITATION = rf"\b(?:19|20)\d\d(?: {_MONTH}(?: \d{{1,2}})?)?(?:;\s?\d|\.\s+doi:)"

# The rest of the linked notice's citation after `_CITATION`'s match: the
# volume and pages ("0(2):168."), then its doi; or, when the match ended on
# an ahead-of-print "doi:", the doi itself.
_CITATION_REST = re.compile(r"\S*(?:\s+doi:\s*\S+)?")
_DOI_REST = re.compile(r"\s*\S+")
_LINKED = re.compile(r"(retraction (?:in|of))\b:?\s*", re.IGNORECASE)

_RETRACTION = re.compile(
    # Every alternative starts with one of these: the lookahead rejects the
    # other positions at once (4.5 times faster than trying each alternative
    # at each of 2,000 positions: 20 instead of 90 us for 700 characters).
    r"(?=[\[(rntp])(?:"
    # A title (or the page's first words) opening with the publishers' mark.
    r"^[\[(]?\s*(?P<mark>retracted(?: article| publication| paper)?)\s*[\])]?\s*(?:[:.\-\u2013\u2014]|$)"
    # A title opening as a retraction notice's does.
    r"|^(?P<notice>retraction (?:note|notice|statement)\b|notice of retraction\b"
    r"|retraction\s*(?::|--|[\u2013\u2014]))"
    # The banner above the article, pointing to the notice. A notice's own
    # body ("This article has been retracted at the request of ...") is what
    # news posts quote: not enough by itself.
    r"|(?P<banner>\bthis (?:article|paper|publication) has been retracted[.:,;]?\s+(?:please\s+)?see\b)"
    # PubMed's linked notices: "Retraction in" on the article, "Retraction of"
    # on the notice; never "Partial retraction in" (an erratum for NLM).
    r"|(?P<pubmed>(?<!partial )\bretraction (?:in|of)\b:?\s(?!publication as topic)"
    rf".{{0,400}}?{_CITATION})"
    # PubMed's publication type, as its list renders it (capitalised, unquoted:
    # an abstract that searched for 'publication type "retracted publication"'
    # writes it otherwise).
    r'|(?P<ptype>(?-i:\bPublication types\b[^"\u201c\u201d\u2018\u2019]{0,200}?'
    r"\bRetracted Publication\b)))",
    re.IGNORECASE,
)


_WITHDRAWN_MARK = re.compile(
    # A title (or the page's first words) opening with the mark, read with
    # `match`: "WITHDRAWN:" as PubMed and ScienceDirect write it, "WITHDRAWN :"
    # as older ScienceDirect titles did, in capitals as both write it. The
    # colon is required and the capitals too: "Withdrawn drugs list",
    # "Withdrawn: a memoir", "Withdrawn: The Hidden Epidemic of Prescription
    # Drug Withdrawal" and "Withdrawal of methotrexate" are titles, not
    # marks. No bracketed or "WITHDRAWN ARTICLE" form was seen: none is read.
    r"\s*WITHDRAWN\s*:",
)

_WITHDRAWN_NOTE = re.compile(
    # Every alternative starts with a "t" or an "r": the lookahead rejects
    # the other positions at once (as `_RETRACTION`'s does).
    r"(?=[tr])(?:"
    # ScienceDirect's banner, pointing to the policy (see the table).
    # Only with what it points to: "please see Elsevier Policy on Article
    # Withdrawal"; "this paper has been withdrawn. See our earlier post" in a
    # news story, or "withdrawn, see the updated guideline", is no banner.
    r"(?P<banner>\bthis (?:article|paper|publication) has been withdrawn[.:,;]?\s+please\s+see\b"
    r"(?=[^.]{0,40}?\b(?:elsevier|policy)\b))"
    # Cochrane's sentence, added to every withdrawn review and protocol.
    r"|(?P<cochrane>\b(?:the editorial group responsible for )?"
    r"this previously published document ha(?:ve|s) withdrawn it from publication\b"
    # Cochrane's heading and note, capitalised as the Library writes them:
    # a sentence of the page's own, not "(an earlier version) of this review".
    # (A withdrawn protocol's note was not seen: its sentence above is read.)
    r"|(?-i:\bReason) for withdrawal from publication\b"
    r"|(?-i:\bThis) review has been withdrawn\b))",
    re.IGNORECASE,
)
_NOTE_REACH = 80
"""Characters a note's match starts before its "withdraw" (76 at most: "The
editorial group responsible for this previously published document have ")."""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a page says about the cited work, for the editor.

    `kind` is the token stored and written out ("retracted"); `detail` says
    in one sentence what the page showed, quoting it.
    """

    kind: str
    detail: str


def _search(value: str) -> re.Match[str] | None:
    """`_RETRACTION`, once the cheap gate let the text through: every mark
    contains "retract", so a page that never says it (nearly all) costs two
    substring searches."""
    if "etract" not in value and "ETRACT" not in value:
        return None
    return _RETRACTION.search(value)


def _search_withdrawn(value: str) -> re.Match[str] | None:
    """The first withdrawal mark of `value`, behind the same gate as
    `_search`: every mark contains "withdraw", "Withdraw" or "WITHDRAW",
    hence "ithdraw" or "ITHDRAW".

    Medical text says "withdrawal" often (of a treatment, of consent, the
    symptoms), so the notes are not searched for at every position (50 us
    for 2,000 characters): only around each "withdraw" (~2 us each).
    """
    if "ithdraw" not in value and "ITHDRAW" not in value:
        return None
    m = _WITHDRAWN_MARK.match(value)
    if m is not None:
        return m
    for needle in ("ithdraw", "ITHDRAW"):
        at = value.find(needle)
        while at >= 0:
            m = _WITHDRAWN_NOTE.search(value, max(0, at - _NOTE_REACH), at + 40)
            if m is not None:
                return m
            at = value.find(needle, at + 7)
    return None


def _quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` in quotes, cut at a word boundary to `limit` characters."""
    text = " ".join(html.unescape(text).split())
    if len(text) > limit:
        cut = text[: limit - 1]
        space = cut.rfind(" ", limit // 2)
        text = (cut[:space] if space > 0 else cut).rstrip() + "\u2026"
    return "\u2018" + text + "\u2019"


def _linked_notice(m: re.Match[str], value: str) -> str:
    """PubMed's "Retraction in" (or "of") and the linked notice's citation
    whole: the match stops inside it (at "2021 Mar;5"), which cut off the
    year and doi the editor is asked to cite. The page's list puts no
    punctuation after its heading ("Retraction in Notice of retraction: ..."
    read as one phrase): a colon is put there."""
    rest = (_DOI_REST if m.group(0).rstrip().endswith("doi:") else _CITATION_REST).match(value, m.end())
    end = rest.end() if rest is not None else m.end()
    return _LINKED.sub(r"\1: ", value[m.start():end], count=1).rstrip(".")


def retraction(title: str, meta_title: str = "", text: str = "") -> Notice | None:
    """The retraction notice of a page, from its titles and the start of its text.

    The scholarly title (`citation_title`, dc.title) comes first, then the
    <title>, then the text: the first mark found is the one quoted.
    """
    return _first_mark(RETRACTED, _search, _detail, title, meta_title, text)


def _first_mark(kind: str, search: Callable[[str], re.Match[str] | None],
                detail: Callable[[re.Match[str], str, str], str],
                title: str, meta_title: str, text: str) -> Notice | None:
    """The first mark `search` finds in the scholarly title, the <title>,
    then the text, said by `detail`: the order both notices read a page in."""
    for where, value in (("meta", meta_title), ("title", title), ("text", text)):
        m = search(value) if value else None
        if m is not None:
            return Notice(kind, detail(m, where, value))
    return None


def _detail(m: re.Match[str], where: str, value: str) -> str:
    if m.lastgroup == "mark" and where != "text":
        return f"The publisher's page is titled {_quote(value)}."
    if m.lastgroup == "notice" and where != "text":
        return f"The link leads to the retraction notice, titled {_quote(value)}."
    if m.lastgroup == "pubmed":
        return f"PubMed links a retraction notice: {_quote(_linked_notice(m, value), CITATION_CHARS)}."
    if m.lastgroup == "ptype":
        return "PubMed lists it as a \u2018Retracted Publication\u2019."
    return f"The page says {_quote(m.group(0) if m.lastgroup == 'banner' else value[:QUOTE_CHARS])}."


def withdrawal(title: str, meta_title: str = "", text: str = "") -> Notice | None:
    """The withdrawal notice of a page, read as `retraction` reads its own:
    the scholarly title, the <title>, then the start of the text."""
    return _first_mark(WITHDRAWN, _search_withdrawn, _withdrawn_detail, title, meta_title, text)


def _withdrawn_detail(m: re.Match[str], where: str, value: str) -> str:
    if m.re is _WITHDRAWN_MARK and where != "text":
        return f"The page is titled {_quote(value)}."
    if m.lastgroup == "banner":
        return f"The page says {_quote(m.group(0))}."
    if m.lastgroup == "cochrane":
        return f"The page says {_quote(_sentence(value, m.start()))}."
    return f"The page says {_quote(value[:QUOTE_CHARS])}."


def _sentence(value: str, start: int) -> str:
    """From `start` to the end of its sentence (its full stop left to the
    detail's own), or as much as a quote takes."""
    part = value[start:start + QUOTE_CHARS + 1]
    end = part.find(".")
    return part[:end] if end >= 0 else part


# What an editor writes in an entry to say its article was retracted or
# withdrawn, as the report advises ("Retracted in 2021"). Either word
# answers either notice: publishers say "withdrawn" of retractions too.
# A word alone is not enough: an entry *about* retractions ("Retracted
# papers keep being cited", "Why retractions matter", "Retraction Watch")
# and the medical senses ("eyelid retraction in thyroid eye disease",
# "methotrexate was withdrawn in 12 patients", "a drug withdrawn from the
# market") would silence the note of an entry that never said so. Read
# only for entries whose article carries a notice (a few per site).
_TOPIC_NOUN = r"(?:papers|articles|publications|studies|trials|research|science|literature|watch|index|rates?)"
_YEAR = r"(?:19|20)\d\d\b"
_ENTRY_MARK = re.compile(
    # A mark of its own: opening the text, after a bracket, a stop or a
    # dash: "RETRACTED: ...", "(Retracted Article)", "[Withdrawn]",
    # "... 2016 Nov;55(11):1990-1999. Retracted in 2021." Not "Retracted
    # papers keep being cited", "Retraction Watch".
    rf"(?:^|[.;:!?(\[\u2014\u2013]|\s-)\s*(?:retracted|retraction|withdrawn)\b(?!\s+{_TOPIC_NOUN}\b)"
    # Said with a date, a notice or who did it: "retracted in 2021",
    # "withdrawn in March 2019", "Retraction notice", "Retraction in: J
    # Rheumatol 2021", "withdrawn by the authors", "withdrawn from publication".
    rf"|\b(?:retracted|withdrawn)\s+(?:in|on)\s+(?:[a-z]+\.?\s+){{0,2}}{_YEAR}"
    r"|\bretraction\s+(?:notice|note|statement)\b"
    rf"|\bretraction\s+(?:in|of)\b:?\s.{{0,80}}?\b{_YEAR}"
    r"|\b(?:retracted|withdrawn)\s+by\s+(?:the\s+)?(?:authors?|publisher|journal|editors?|cochrane)\b"
    r"|\bwithdrawn\s+from\s+publication\b"
    # Said of the article: "the article was retracted", "review withdrawn".
    r"|\b(?:article|paper|study|review|publication)\s+(?:(?:has|had)\s+been\s+|was\s+|is\s+)?"
    r"(?:retracted|withdrawn)\b",
    re.IGNORECASE,
)


def entry_says_so(*texts: str) -> bool:
    """Whether an entry's texts (title, summary, source line) already say
    that its article was retracted or withdrawn: the editor did what the
    report asked, and the note is listed apart, not counted at the top
    every week. Cheap: a substring gate, then one regular expression."""
    for text in texts:
        low = text.lower()
        if ("retract" in low or "withdrawn" in low) and _ENTRY_MARK.search(text):
            return True
    return False


def notice_for(obs: Observation, status: LinkStatus) -> Notice | None:
    """The notice an observation carries, for a link judged `status`: a
    retraction first (a retracted article's banner names Elsevier's "Policy
    on Article Withdrawal"), else a withdrawal."""
    if status not in NOTICED_STATUSES:
        return None
    return (retraction(obs.title, obs.meta_title, obs.text)
            or withdrawal(obs.title, obs.meta_title, obs.text))
