"""extract: each shortcut taken for speed answers as the rule it stands for.

`monitor.extract` skips work where it can prove the answer (a probe pattern
before a slow one, words split by `str.split` instead of a pattern, a cache).
Each test below compares a shortcut with the plain rule on generated text
rich in the characters the rules turn on; tests/test_extract_golden.py pins
the whole output on real pages.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor import extract as ex

# Text made of the pieces the rules look at, with odd white space and
# letters whose case folding is special (Kelvin sign, long s, dotless i).
PIECES = st.sampled_from([
    " ", "  ", "\t", "\n", "\x0b", "\xa0", "\u2003", ".", ",", ";", ":", "(", ")", "[", "]",
    "_", "-", "\u2013", "'", '"', "\u2026", "!", "?", "/", "a", "Z", "\u212a", "\u017f",
    "\u0131", "\u0130", "\xe9", "\u0663", "\u00b2", "1", "7", "19", "2018", "38(8)", "; 12",
    "PubMed", "pubmed", "NIH", "nih", "ATS", "Journal", "word", "the", "Expired", "expired",
    "dead", "broken", "removed", "article", "Link", "page", "url", "jan", "Aug", "ſep",
    "September", "april", "30", "04/30/2018", "2017-02-01",
])
TEXT = st.lists(PIECES, max_size=40).map("".join)


def _looks_like_source_as_written(chunk: str) -> bool:
    """The rule as it read before its checks were reordered."""
    if chunk.count(" ") >= 20:
        return False
    initials = ex._INITIAL_RE.findall(chunk)
    if not initials:
        return bool(chunk.strip())
    count = len(initials)
    capitals = sum(1 for c in initials if c.isupper() or c.isdigit())
    if ex._SOURCE_PREFIX_RE.match(chunk):
        return True
    if ex._CITE_NUMBERS_RE.search(chunk):
        return count <= 15 and capitals * 2 >= count
    return count <= 6 and capitals * 10 >= count * 6


@given(TEXT)
@settings(max_examples=1500)
@example("PubMed")
@example("A B C D E F G. 2019;3")
def test_looks_like_source_answers_as_the_rule(text: str) -> None:
    assert ex._looks_like_source(text) == _looks_like_source_as_written(text)


@given(TEXT)
@settings(max_examples=800)
@example("title (Expired Article) and [ link  dead ] (dead link)")
@example("(\u212aroken)")
def test_expired_marks_are_removed_as_the_pattern_removes_them(text: str) -> None:
    assert ex._without_expired_marks(text) == ex._EXPIRED_ANYWHERE_RE.subn("", text)
