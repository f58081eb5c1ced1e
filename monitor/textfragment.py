"""Where a `#:~:text=` link lands: the words that scroll to *this* link.

The report's "Find the link on the page" opens the page with a text
fragment (https://wicg.github.io/scroll-to-text-fragment/) naming the
first words of the link's text or entry title. A browser highlights the
first place on the page where those words stand, and menus repeat short
titles: on the Raynaud's page the menu's "Symptoms" came first, a working
link, while the one to fix was the "(Also see Symptoms" further down. An
editor fixing "the highlighted link" found nothing wrong.

So the extractor, which has the page, asks here, for each link whose words
also stand earlier on the page, for the few words around it that set it
apart: a prefix (`see-,Symptoms`: the words just before it) and/or a suffix
(`Symptoms,-and`), as the spec's `prefix-,text,-suffix`. When a few words
are not enough, the link is "the Nth" match of its words instead, which the
report says in words.

The page's text is read as a browser searches it, approximately: text nodes
in document order, none of <script>, <style>, <template>, <title>,
<textarea>, <noscript>, <select>, <iframe>, <object> or an element marked
`hidden` or `style="display:none"`, white space runs one space. Matching is
case-insensitive and bounded at words where the spec bounds it. Where the
model is unsure it errs towards "not unique": text nodes are read apart (a
match may run across elements, and across blocks, which a browser's does
not), and a directive's text is looked for inside longer words too. Its
prefix and suffix are words of the link's own block (p, li, td...): a
browser does not run them across a block boundary.

Pure and bounded: lexbor reads the page's text in C, once to count its
words and, when some link's words stand more than once, once more with
marks around those links; then `str.find` within a budget
of characters scanned per page (a hostile page of 10,000 links all reading
"x" gets the plain fragment, not a quadratic scan).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:  # the report imports this module for its words: not lexbor
    from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = ["FRAGMENT_WORDS", "Finding", "encode_piece", "fragment_words", "locate"]

FRAGMENT_WORDS = 6
"""Words of a link's text (or entry title) in its text fragment: enough to
be specific, few enough that the extractor's whitespace and the page's agree."""

CONTEXT_WORDS = 3
"""At most this many words before and after a link are tried as its
prefix and suffix; beyond that a row says "the Nth" instead."""

SCAN_BUDGET = 40
"""Characters a page's searches may scan, as a multiple of its text's
length (plus `SCAN_FLOOR`): a few dozen repeated titles on an ordinary page,
not 10,000 on a hostile one."""
SCAN_FLOOR = 2_000_000
MOST_EARLIER = 50
"""A link whose words stand earlier more often keeps the plain fragment."""

_UNSEARCHABLE = ", ".join((
    "script", "style", "template", "title", "textarea", "noscript", "select", "iframe",
    "object", "[hidden]", '[style*="display:none" i]', '[style*="display: none" i]'))
"""What a browser does not search: no text shown, or hidden."""
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
    "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "li", "main",
    "menu", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "ul", "legend",
})
"""Elements whose text a prefix or suffix does not run out of."""
_PLANES = ((0xE000, 1600), (0xF0000, 16383))
"""Where the marks are taken (`_Marks`): the private use area of Unicode's
Basic Multilingual Plane while a page has few links to mark (a text of its
characters takes half the memory and time of one of astral characters),
else plane 15."""


@dataclass(frozen=True, slots=True)
class Finding:
    """How to reach one link whose words also stand earlier on the page."""

    directive: str = ""
    """The text directive, percent-encoded (`see-,Symptoms`), whose first
    match on the page is this link; "" when none of a few words was found."""
    nth: int = 0
    """With no directive: which match of the link's words it is (2: the
    second on the page), for the report to say; 0 with a directive."""


def fragment_words(text: str) -> str:
    """The words a text fragment names for a link: the first few of its text."""
    return " ".join(text.split()[:FRAGMENT_WORDS])


def encode_piece(words: str) -> str:
    """One piece of a text directive, percent-encoded: '-', ',' and '&' too,
    which the directive's syntax reserves."""
    return quote(words, safe="").replace("-", "%2D")


def locate(tree: LexborHTMLParser,
           wanted: Sequence[tuple[LexborNode, str]]) -> list[Finding | None]:
    """For each link (its <a> node, the words of its fragment), in the
    order given: how to reach it when its words first match earlier on the
    page, else None (its words alone find it, or it could not be placed).

    Marks the tree for its reading (see `_PageText.read`): call it last.
    """
    found: list[Finding | None] = [None] * len(wanted)
    body = tree.body
    if body is None or not wanted:
        return found
    # Most links' words stand once on the page: counted in its text as
    # lexbor gives it at once, the page is marked and read again only for
    # the others.
    asked = _words_each([words for _, words in wanted])
    low = body.text(deep=True, separator=" ", strip=False).lower()
    maybe = [i for i, alone in enumerate(_once_each(low, asked)) if not alone]
    page = _PageText.read(tree, [wanted[i][0] for i in maybe]) if maybe else None
    if page is None:
        return found
    budget = SCAN_BUDGET * len(page.low) + SCAN_FLOOR
    for mark, i in enumerate(maybe):
        span = page.spans.get(mark)
        words = " ".join(wanted[i][1].split())
        if span is None or budget <= 0 or not words:
            continue
        folded = words.lower()
        own = page.find(folded, span[0], span[1])
        if own < 0:
            continue
        first = page.find(folded, 0, own + len(folded))
        budget -= own
        if first < own:
            found[i], scanned = _reach(page, words, own, mark)
            budget -= scanned
    return found


def _once_each(low: str, asked: Sequence[list[str]]) -> list[bool]:
    """For each link's words (`asked`), whether one of them, or one pair of
    them in a row, stands only once on the page (`low`, lower-cased): then
    its words alone find it, with no scan of the page. The text counted
    holds hidden text and scripts and crosses block boundaries (more, never
    fewer, than a browser's matches); it parts the text nodes, so a word
    written with markup inside it ("<b>S</b>ymptoms") is not counted.

    A link without a word is looked for (False). A link of one word stands
    once when its word does. For a link of more, a pair of its words
    standing once decides alone: each of its words is in one of its pairs,
    and a pair stands no more often than either of its words. So only the
    words of one-word links and the pairs of the others are counted; to
    count every word and pair of a page of 2,000 words took as long as the
    rest of the search.
    """
    words = _words(low)
    once: list[bool] = [False] * len(asked)
    single = {link[0] for link in asked if len(link) == 1}
    if single:
        count = Counter(filter(single.__contains__, words)).__getitem__  # 0: not on the page
        for i, link in enumerate(asked):
            if len(link) == 1:
                once[i] = count(link[0]) < 2
    needed = {pair for link in asked if len(link) > 1 for pair in itertools.pairwise(link)}
    if needed:
        pairs = Counter(filter(needed.__contains__, itertools.pairwise(words))).__getitem__
        for i, link in enumerate(asked):
            if len(link) > 1:
                once[i] = min(map(pairs, itertools.pairwise(link))) < 2
    return once


_ASCII_SEPARATORS = str.maketrans({c: " " for c in map(chr, range(128))
                                   if not (c.isalnum() or c == "_" or c.isspace())})
_WORD_RE = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    """The words (`\\w+`) of `text`: split after `str.translate` for ASCII
    (4x faster than the regular expression), by it otherwise (where a table
    lookup per character is 4x slower than it)."""
    return text.translate(_ASCII_SEPARATORS).split() if text.isascii() else _WORD_RE.findall(text)


def _words_each(texts: list[str]) -> list[list[str]]:
    """`_words(text.lower())` of each text, lower-cased and split at once
    when together they are ASCII and hold no newline of their own (a few
    dozen short texts: one call each cost more than the work)."""
    joined = "\n".join(texts).lower()
    if not joined.isascii() or joined.count("\n") != len(texts) - 1:
        return [_words(text.lower()) for text in texts]
    return [line.split() for line in joined.translate(_ASCII_SEPARATORS).split("\n")]


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _block_of(node: LexborNode) -> LexborNode | None:
    cur = node.parent
    while cur is not None and cur.tag not in _BLOCKS:
        cur = cur.parent
    return cur


class _PageText:
    """The page's searchable text, lower-cased (`low`), where each marked
    link's text starts and ends in it (`spans`), and the block holding each
    (`holders`), to read the words around it as the page writes them."""

    def __init__(self, text: str, spans: dict[int, tuple[int, int]],
                 holders: dict[int, LexborNode], marks: _Marks) -> None:
        self.low = text.lower()
        self.spans = spans
        self.holders = holders
        self.marks = marks

    def around(self, mark: int, folded: str) -> tuple[list[str], list[str]]:
        """The words before and after the link's `folded` words in the
        block holding it, as the page writes them: lexbor's text of the
        block with no separator (the model's spaces between text nodes are
        not the page's: "isn@sclero.org ." is no prefix of "isn@sclero.org.")."""
        block = self.holders.get(mark)
        if block is None:
            return [], []
        text = block.text(deep=True, separator="", strip=False)
        start, end = self.marks.char(0, mark), self.marks.char(1, mark)
        if start not in text or end not in text:
            return [], []
        head, rest = text.split(start, 1)
        inside, tail = rest.split(end, 1)
        clean = self.marks.pattern().sub
        inside = " ".join(clean("", inside).split())
        at = inside.lower().find(folded)
        at = max(at, 0)
        before = (clean("", head) + " " + inside[:at]).split()
        after = (inside[at + len(folded):] + " " + clean("", tail)).split()
        return before, after

    @classmethod
    def read(cls, tree: LexborHTMLParser, links: Sequence[LexborNode]) -> _PageText | None:
        """The body's text as lexbor reads it in one pass (in C), once the
        tree is marked: each link between two marks of its own, and the
        block holding it; then what holds no searchable text removed (last:
        a link inside it is not touched once freed). None: no text, or the
        page holds a mark's character itself."""
        body = tree.body
        plane, most = _PLANES[0] if len(links) <= _PLANES[0][1] else _PLANES[1]
        links = links[:most]
        if body is None or not links:
            return None
        marks = _Marks(plane, most)
        holders: dict[int, LexborNode] = {}
        for i, node in enumerate(links):
            block = _block_of(node)
            if block is not None:
                holders[i] = block
            node.insert_before(marks.char(0, i))
            node.insert_after(marks.char(1, i))
        for node in reversed(tree.css(_UNSEARCHABLE)):
            node.decompose()
        marked = " ".join(body.text(deep=True, separator=" ", strip=False).split())
        pieces: list[str] = []
        opened: dict[tuple[int, int], int] = {}
        closed: dict[tuple[int, int], tuple[int, int]] = {}
        pos = last = 0
        for found in marks.pattern().finditer(marked):
            piece = marked[last:found.start()]
            last = found.end()
            if piece[:1] == " " and (not pieces or pieces[-1][-1:] == " "):
                piece = piece[1:]  # a space on each side of a mark: one
            if piece:
                pieces.append(piece)
                pos += len(piece)
            kind, i = marks.read(found.group())
            key = (0, i)
            if kind == 0:
                if key in opened or key in closed:
                    return None  # the page uses the mark's character itself
                opened[key] = pos
            elif key in opened:
                closed[key] = (opened.pop(key), pos)
        piece = marked[last:]
        pieces.append(piece[1:] if piece[:1] == " " and pieces and pieces[-1][-1:] == " " else piece)
        text = "".join(pieces)
        if not text.strip() or len(text.lower()) != len(text):
            return None  # (lower-casing "İ" makes two characters: offsets would drift)
        spans = {i: span for (kind, i), span in closed.items() if kind == 0}
        return cls(text, spans, holders, marks)

    def find(self, words: str, start: int, end: int, *, bounded: bool = True) -> int:
        """Where lower-cased `words` first stand in [start, end), bounded at
        a word on each side where they begin or end with one; -1 if nowhere."""
        low, size = self.low, len(words)
        head, tail = bounded and _word(words[0]), bounded and _word(words[-1])
        pos = low.find(words, start, end)
        while pos >= 0:
            if not (head and pos > 0 and _word(low[pos - 1])
                    or tail and pos + size < len(low) and _word(low[pos + size])):
                return pos
            pos = low.find(words, pos + 1, end)
        return -1

    def occurrences(self, words: str, end: int, *, bounded: bool = True) -> Iterator[int]:
        """Every start of `words` before `end` (see `find`)."""
        pos = self.find(words, 0, end, bounded=bounded)
        while pos >= 0:
            yield pos
            pos = self.find(words, pos + 1, end, bounded=bounded)

    def stands(self, at: int, size: int, prefix: str, suffix: str) -> bool:
        """Whether the words at [at, at + size) have `prefix` before them
        and `suffix` after (lower-cased; "" for none), spaces aside (the
        model has more of them than the page), the prefix starting and the
        suffix ending at a word (the spec's bounds)."""
        low = self.low
        if prefix:
            start = _back(low, at, prefix.replace(" ", ""))
            if start < 0 or _word(prefix[0]) and start > 0 and _word(low[start - 1]):
                return False
        if suffix:
            end = _forth(low, at + size, suffix.replace(" ", ""))
            if end < 0 or _word(suffix[-1]) and end < len(low) and _word(low[end]):
                return False
        return True


def _back(text: str, end: int, squeezed: str) -> int:
    """Where `squeezed` starts if it ends at `end` in `text`, spaces aside; -1."""
    j = end
    for char in reversed(squeezed):
        while j > 0 and text[j - 1] == " ":
            j -= 1
        if j == 0 or text[j - 1] != char:
            return -1
        j -= 1
    return j


def _forth(text: str, start: int, squeezed: str) -> int:
    """Where `squeezed` ends if it starts at `start` in `text`, spaces aside; -1."""
    k = start
    for char in squeezed:
        while k < len(text) and text[k] == " ":
            k += 1
        if k == len(text) or text[k] != char:
            return -1
        k += 1
    return k


class _Marks:
    """Characters marking, in the page text, where each link starts (kind
    0) and ends (kind 1)."""

    def __init__(self, plane: int, most: int) -> None:
        self.plane, self.most = plane, most

    def char(self, kind: int, i: int) -> str:
        return chr(self.plane + kind * self.most + i)

    def read(self, char: str) -> tuple[int, int]:
        kind, i = divmod(ord(char) - self.plane, self.most)
        return kind, i

    @functools.cached_property
    def _pattern(self) -> re.Pattern[str]:
        return re.compile(f"[{self.char(0, 0)}-{self.char(1, self.most - 1)}]")

    def pattern(self) -> re.Pattern[str]:
        return self._pattern


def _reach(page: _PageText, words: str, own: int, mark: int) -> tuple[Finding | None, int]:
    """(how to reach the words standing at `own`, link `mark`'s; characters
    scanned), knowing that they stand earlier too. None when they stand
    earlier more than `MOST_EARLIER` times: "the 80th 'x'" helps nobody."""
    folded = words.lower()
    size = len(folded)
    earlier = list(itertools.islice(page.occurrences(folded, own, bounded=False), MOST_EARLIER + 1))
    if len(earlier) > MOST_EARLIER:
        return None, own
    before, after = page.around(mark, folded)
    for prefix, suffix in _contexts(before, after):
        if not any(map(_word, prefix + suffix)):
            continue  # "." or "|" alone: words read better and hold better
        pre, suf = prefix.lower(), suffix.lower()
        if page.stands(own, size, pre, suf) and not any(
                page.stands(at, size, pre, suf) for at in earlier):
            directive = encode_piece(words)
            if prefix:
                directive = encode_piece(prefix) + "-," + directive
            if suffix:
                directive += ",-" + encode_piece(suffix)
            return Finding(directive=directive), own + len(earlier) * size
    nth = 1 + sum(1 for _ in page.occurrences(folded, own))
    return Finding(nth=nth), 2 * own + len(earlier) * size


def _contexts(before: list[str], after: list[str]) -> Iterator[tuple[str, str]]:
    """(prefix, suffix) to try, shortest first, a prefix before a suffix:
    "see-,Symptoms" reads more naturally than "Symptoms,-and"."""
    for n in range(1, CONTEXT_WORDS + 1):
        if len(before) >= n:
            yield " ".join(before[-n:]), ""
        if len(after) >= n:
            yield "", " ".join(after[:n])
        if len(before) >= n and len(after) >= n:
            yield " ".join(before[-n:]), " ".join(after[:n])
