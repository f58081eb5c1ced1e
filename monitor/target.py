"""A bounded prefix of a checked target -> what classification needs.

The checker reads at most `max_body_bytes` (64 KiB by default) of each
target: enough for the <title>, the scholarly <meta> tags and the first
screen of text, which is what tells a soft 404, a parked domain, a bot wall
or a drifted page apart. Parsing is selectolax (lexbor) on that prefix: about
1 ms for 64 KiB, several times cheaper than the request itself, and it copes
with a document cut in the middle of a tag the way a browser does.

Pure: bytes in, a frozen value out; no I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from monitor.decode import decode_html

__all__ = ["TargetInfo", "read_target", "read_html", "is_html", "MAX_TEXT_CHARS", "MAX_TITLE_CHARS"]

MAX_TEXT_CHARS = 2000
"""Visible text kept per target: error notices and parking pages say what
they are in their first few hundred words."""
MAX_TITLE_CHARS = 1000
"""Title and meta title kept per target. Real titles are under 300
characters; a hostile 60 KB <title> cost 0.3 s of classification per link
(on the event loop) and would be stored and shown in reports whole."""

# The first matching name wins: a journal's citation_title is the cited
# article's own title; Dublin Core comes next; og:title is often the site's
# marketing line and is the weakest.
_META_TITLE_NAMES = ("citation_title", "dc.title", "dcterms.title", "og:title")

_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Content types that say nothing: a misconfigured server serving HTML.
_SNIFFABLE_TYPES = ("", "application/octet-stream", "unknown/unknown", "application/unknown")
_HTML_SNIFF = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|title|meta|script|div|p|h1|table|a|br|b|font|iframe|style)[\s>/]",
    re.IGNORECASE | re.DOTALL,
)
_INVISIBLE = ["script", "style", "noscript", "template", "head", "title", "svg", "math"]


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """What the first bytes of a target say about it.

    `content_hash` is the SHA-1 of the normalised (case-folded,
    whitespace-collapsed) visible text for HTML, of the raw prefix for other
    types, and "" when there is nothing to hash: an empty hash must never make
    two unrelated empty pages (JavaScript shells) look identical.
    """

    title: str = ""
    meta_title: str = ""
    text: str = ""
    content_hash: str = ""


def is_html(body: bytes, content_type: str) -> bool:
    """HTML by its declared type, or by sniffing when the type says nothing."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in _HTML_TYPES:
        return True
    if mime in _SNIFFABLE_TYPES:
        head = body[:1024].removeprefix(b"\xef\xbb\xbf")
        return bool(_HTML_SNIFF.match(head))
    return False


def read_target(body: bytes, content_type: str) -> TargetInfo:
    """Title, meta title, visible text excerpt and content hash of a prefix."""
    if not body:
        return TargetInfo()
    if not is_html(body, content_type):
        return TargetInfo(content_hash=hashlib.sha1(body).hexdigest())
    return read_html(decode_html(body, content_type))


def read_html(html: str) -> TargetInfo:
    """`read_target` of a document already decoded (a watched page, read
    whole and decoded once for its links: `pages.stand_in_read`)."""
    tree = LexborHTMLParser(html)
    meta_title = _meta_title(tree)
    title = _title(tree)
    tree.strip_tags(_INVISIBLE)
    root = tree.body or tree.root
    full_text = _collapse(root.text(separator=" ")) if root is not None else ""
    return TargetInfo(
        title=_excerpt(title, MAX_TITLE_CHARS),
        meta_title=_excerpt(meta_title, MAX_TITLE_CHARS),
        text=_excerpt(full_text, MAX_TEXT_CHARS),
        content_hash=_text_hash(full_text),
    )


def _title(tree: LexborHTMLParser) -> str:
    node = tree.css_first("head > title")
    if node is None:
        # A <title> misplaced in the body counts; an <svg><title> is a tooltip.
        node = next((n for n in tree.css("title") if not _in_svg(n)), None)
    return _collapse(node.text(deep=True)) if node is not None else ""


def _in_svg(node: Any) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in ("svg", "math"):
            return True
        parent = parent.parent
    return False


def _meta_title(tree: LexborHTMLParser) -> str:
    found: dict[str, str] = {}
    for node in tree.css("meta[content]"):
        attrs = node.attributes
        key = (attrs.get("name") or attrs.get("property") or "").strip().lower()
        if key in _META_TITLE_NAMES and key not in found:
            value = _collapse(attrs.get("content") or "")
            if value:
                found[key] = value
    return next((found[name] for name in _META_TITLE_NAMES if name in found), "")


def _collapse(text: str) -> str:
    # str.split() is five times faster than a \s+ regex on 40 KB of text.
    return " ".join(text.split())


def _excerpt(text: str, limit: int) -> str:
    """Cut at a word boundary so an excerpt never ends in half a word."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit + 1)
    return text[: cut if cut > limit // 2 else limit]


def _text_hash(text: str) -> str:
    if not text:
        return ""
    return hashlib.sha1(text.casefold().encode("utf-8")).hexdigest()
