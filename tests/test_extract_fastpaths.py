"""extract: each shortcut taken for speed answers as the rule it stands for.

`monitor.extract` and `monitor.textfragment` skip work where they can prove
the answer (a probe pattern before a slow one, words split by `str.split`
instead of a pattern, a plain URL split by a pattern, Latin-1 marks on an
ASCII page).
Each test below compares a shortcut with the plain rule on generated text
rich in the characters the rules turn on; tests/test_extract_golden.py pins
the whole output on real pages.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor import extract as ex
from monitor.textfragment import _once_each, _words, _words_each

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


def _parse_source_date_as_written(text: str) -> dt.date | None:
    """The date rule before each form was probed for first."""
    if not ex._HAS_YEAR_RE.search(text):
        return None
    best: tuple[int, dt.date] | None = None
    for regex, order in ex._DATE_FORMS:
        if (order == "mdy" and "/" not in text) or (order == "ymd" and "-" not in text):
            continue
        for match in regex.finditer(text, 0, best[0] + 40 if best else len(text)):
            if best is not None and match.start() >= best[0]:
                break
            found = ex._date_from(match.groups(), order)
            if found is not None:
                best = (match.start(), found)
                break
    return best[1] if best else None


DATE_PIECES = st.sampled_from([
    " ", "  ", "\t", ",", ", ", ".", ";", "-", "/", "(", ")", ":", "0", "1", "2", "4", "9",
    "12", "30", "31", "04", "13", "2018", "1999", "2200", "2201", "1799", "38(8)",
    "Jan", "jan.", "January", "Feb", "Mar", "May", "June", "Jul", "july", "Aug", "Sept",
    "September", "Oct", "Nov", "Dec", "\u017fep", "\u017fept", "JU\u0130", "Jul-Aug", "Spring",
    "PubMed", "Journal", "x", "\u0663",
])


@given(st.lists(DATE_PIECES, max_size=14).map("".join))
@settings(max_examples=3000)
@example("PubMed, J Rheumatol, 2019 Aug;38(8):162-966.")
@example("April 30, 2018")
@example("30 April 2018")
@example("04/30/2018 and 2018-04-30")
@example("2017 Feb 1;16(2):162-166")
@example("1 \u017fept, 2018")
@example("12/31/2019, 1/2/2019, 9/13/2019")
@example("x2018-04-30 and 12018-4-3 and 2018-4-3-")
@example("1 2019 Aug 2019  Sep 3")
def test_source_dates_are_the_rules(text: str) -> None:
    assert _outcome(ex.parse_source_date, text) == _outcome(_parse_source_date_as_written, text)


def _outcome(rule: Callable[[str], object], text: str) -> object:
    """The answer, or the kind of error, compared."""
    try:
        return rule(text)
    except Exception as error:  # noqa: BLE001 -- compared, not hidden
        return type(error)


EVERY_CHARACTER = "".join(map(chr, range(0x110000)))


@pytest.mark.parametrize(("fast", "as_written"), [
    (ex._PATH_QUOTE_RE, r"""[^!-~]|["#<>?\\`{}]"""),
    (ex._QUERY_QUOTE_RE, r"""[^!-~]|["#'<>]"""),
])
def test_the_quoting_classes_take_the_characters_of_the_rules(
        fast: re.Pattern[str], as_written: str) -> None:
    assert fast.findall(EVERY_CHARACTER) == re.compile(as_written).findall(EVERY_CHARACTER)


@pytest.mark.parametrize("href", [
    "http://a.example/x", " \thttp://a.exa\nmple/x\r ", "http:\\\\a.example\\b\\c?d\\e#f\\g",
    "\\\\a.example\\p", "x\\y#z", "http://a.example/a b?c d#e",
])
def test_hrefs_with_tabs_newlines_and_backslashes_resolve_as_before(href: str) -> None:
    expected = {
        "http://a.example/x": ("http://a.example/x", None),
        " \thttp://a.exa\nmple/x\r ": ("http://a.example/x", None),
        "http:\\\\a.example\\b\\c?d\\e#f\\g": ("http://a.example/b/c?d\\e", None),
        "\\\\a.example\\p": ("https://a.example/p", None),
        "x\\y#z": ("https://www.sclero.org/dir/x/y", None),
        "http://a.example/a b?c d#e": ("http://a.example/a%20b?c%20d", None),
    }
    assert ex.normalize_url(href, "https://www.sclero.org/dir/page.html") == expected[href]


@given(TEXT)
@settings(max_examples=800)
@example("One. Two!  Three?\u2026 four\u2026\tfive.")
def test_sentences_are_the_patterns_split(text: str) -> None:
    assert ex._sentences(text) == ex._SENTENCE_END_RE.split(text)


URL_PIECES = st.sampled_from([
    "http://", "https://", "HTTP://", "hTTps://", "ftp://", "http:", "//", "/", "?", "#", "@",
    ":", ":80", ":8080", "[", "]", "[::1]", "%20", " ", "\t", "\\", "..", ".", "a", "B", "z9",
    "-", "_", "~", "!", "$", "&", "'", "(", ")", "*", "+", ",", ";", "=", '"', "<", ">", "^",
    "`", "{", "|", "}", "\x7f", "\xe9", "\u2100", "127.0.0.1", "www.example.org", "x.html",
])


@given(st.lists(URL_PIECES, max_size=12).map("".join))
@settings(max_examples=3000)
@example("http://127.0.3.7:8081/a/b.html?x=1&y=?#f")
@example("http://h?x/y")
@example("http://h:80:90/")
@example("http://:80/")
@example("https://a.example")
def test_plain_urls_split_as_urlsplit_splits_them(url: str) -> None:
    def by_urlsplit() -> object:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.netloc, parts.path, parts.query

    assert _outcome(lambda _: ex._split(url), url) == _outcome(lambda _: by_urlsplit(), url)


@given(st.lists(st.one_of(TEXT, st.sampled_from(["", "a\nb", "Sym-ptoms", "\u0130stanbul"])),
                max_size=6))
@settings(max_examples=500)
def test_link_words_are_split_together_as_one_by_one(texts: list[str]) -> None:
    assert _words_each(texts) == [_words(text.lower()) for text in texts]


def _once_each_as_written(low: str, asked: list[list[str]]) -> list[bool]:
    """Every word and pair counted; a link's words first, then its pairs."""
    words = _words(low)
    counts, pairs = Counter(words), Counter(itertools.pairwise(words))
    once = []
    for link in asked:
        if not link:
            once.append(False)
        elif min(counts[w] for w in link) < 2:
            once.append(True)
        else:
            once.append(len(link) > 1 and min(pairs[p] for p in itertools.pairwise(link)) < 2)
    return once


VOCABULARY = st.sampled_from(["a", "b", "c", "d", "see", "symptoms", "x"])


@given(st.lists(VOCABULARY, max_size=30).map(" ".join),
       st.lists(st.lists(VOCABULARY, max_size=4), max_size=8))
@settings(max_examples=1500)
@example("a b a b c", [["a", "b"], ["b", "c"], ["c"], ["a"], ["d"], [], ["a", "b", "a"]])
def test_words_standing_once_are_found_as_by_counting_everything(
        low: str, asked: list[list[str]]) -> None:
    assert _once_each(low, asked) == _once_each_as_written(low, asked)


SEGMENT_TEXT = "Title one (Also see x) summary. Title two (see y) more (Also see z) end."


@pytest.mark.parametrize("also_see", [
    [], [(10, 22)], [(10, 22), (42, 49), (55, 67)], [(0, 5)], [(60, 80)], [(30, 40), (50, 60), (62, 70)],
    [(2, 4), (6, 8), (10, 22), (24, 26), (28, 30), (42, 49), (55, 67), (68, 70)]])
@pytest.mark.parametrize("end", [0, 5, 9, 23, 45, 70, 72])
@pytest.mark.parametrize("stop", [None, 0, 8, 12, 30, 41, 44, 56, 61, 72, 100])
def test_text_after_a_link_up_to_its_entry_s_end_is_the_shorter_string_s(
        also_see: list[tuple[int, int]], end: int, stop: int | None) -> None:
    """`after(end, text, stop)` replaced `after(end, text[:stop])`, which
    copied a block's text before each link (a block of 64,000 links took
    14.5 s, now 4.2 s), and it walks only the "(Also see ...)" parts from
    `end` to `stop` (4,000 entries each with one took 13.7 s, now 1.0 s):
    the same strings, parts astride or beyond `stop` included, but for the
    spaces the parts past `stop` left at the end (every reader collapses
    them: `_collapse`, `_title_boundary`, a words pattern)."""
    segment = ex._Segment(text=SEGMENT_TEXT, plain=SEGMENT_TEXT, spans={}, also_see=also_see)
    clipped = SEGMENT_TEXT if stop is None else SEGMENT_TEXT[:stop]
    got = segment.after(end, SEGMENT_TEXT, stop)
    written = _after_as_written(also_see, end, clipped)
    assert got == written.rstrip(" ") + " " * (len(got) - len(written.rstrip(" ")))
    assert len(got) <= len(written)


def _after_as_written(also_see: list[tuple[int, int]], end: int, source: str) -> str:
    """`_Segment.after` before `stop`, given the clipped string."""
    if not also_see:
        return source[end:]
    pieces, pos = [], end
    for lo, hi in also_see:
        if hi <= pos:
            continue
        if lo > pos:
            pieces.append(source[pos:lo])
        pos = max(pos, hi)
    pieces.append(source[pos:])
    return " ".join(pieces)
